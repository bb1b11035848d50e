/**
 * The loader's checkpoint file: per input file, the byte offset up to which every batch has landed, and the
 * parameters that decide where batches are cut and how they are labelled. Written atomically (a temporary file in
 * the same directory, fsync, rename) after each landed batch.
 *
 * @internal
 */
import * as fs from "node:fs"
import * as path from "node:path"

export interface FileState {
  /** The path as given on the command line (`-` for stdin). */
  readonly path: string
  /** Every batch before this offset (of the decompressed input) has landed. */
  readonly offset: number
  /** Rows counted in the landed batches. */
  readonly rows: number
  /** The whole file landed. */
  readonly done: boolean
  /** Size and modification time of a regular file when its first batch landed (a changed file is refused). */
  readonly size?: number | undefined
  readonly mtimeMs?: number | undefined
}

/** What must be the same for a checkpoint to be resumed: the cut parameters and the labels. */
export interface CutParameters {
  readonly table: string
  readonly labelPrefix: string
  readonly format: string
  readonly maxBytes: number
  /** The row delimiter's bytes, hex. */
  readonly rowDelimiter: string
}

export interface CheckpointData extends CutParameters {
  readonly version: 1
  readonly files: Readonly<Record<string, FileState>>
  readonly updatedAt: string
}

/** The checkpoint file's content, or undefined when there is none; throws a message on an unreadable one. */
export const read = (file: string): CheckpointData | undefined => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw new Error(`cannot be read: ${(e as Error).message}`)
  }
  let json: any
  try {
    json = JSON.parse(text)
  } catch {
    throw new Error("is not JSON (not a checkpoint of effect-starrocks load)")
  }
  if (
    json === null || typeof json !== "object" || json.version !== 1 || typeof json.files !== "object" ||
    typeof json.maxBytes !== "number" || typeof json.rowDelimiter !== "string" ||
    typeof json.labelPrefix !== "string" || typeof json.table !== "string" || typeof json.format !== "string"
  ) {
    throw new Error("is not a checkpoint of effect-starrocks load (version 1)")
  }
  return json as CheckpointData
}

/** The first cut parameter that differs, as `name: checkpoint value vs this run's`. */
export const mismatch = (saved: CutParameters, now: CutParameters): string | undefined => {
  for (const key of ["table", "labelPrefix", "format", "maxBytes", "rowDelimiter"] as const) {
    if (saved[key] !== now[key]) {
      return `${key} is ${JSON.stringify(saved[key])} in the checkpoint but ${JSON.stringify(now[key])} now`
    }
  }
  return undefined
}

let seq = 0

/** Writes the checkpoint atomically: temporary file, fsync, rename over the old one. */
export const write = (file: string, data: CheckpointData): void => {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${seq++}.tmp`)
  const fd = fs.openSync(tmp, "w")
  try {
    fs.writeSync(fd, JSON.stringify(data, null, 2) + "\n")
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(tmp, file)
}
