/**
 * The durable spool of the exactly-once label path (`sink.version` V1): each sealed batch is a file
 * `{label}.bin` (the encoded body) next to `{label}.json` (its Stream Load headers and row count), written and
 * fsynced before the checkpoint that lists the label is saved, loaded under its label after the save, and removed
 * once loaded.
 */
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { LoadBody } from "../LoadBody.js"
import { ExactlyOnceError } from "../StarRocksError.js"

export interface SpooledBatch {
  readonly label: string
  readonly headers: Readonly<Record<string, string>>
  readonly rows: number
  readonly body: LoadBody
}

const spoolError = (message: string) => (cause: unknown) =>
  new ExactlyOnceError({
    reason: "Spool",
    message: `${message}: ${cause instanceof Error ? cause.message : String(cause)}`
  })

const writeDurably = (file: string, chunks: ReadonlyArray<Uint8Array>) => {
  const tmp = `${file}.tmp`
  const fd = Fs.openSync(tmp, "w")
  try {
    for (const chunk of chunks) {
      let written = 0
      while (written < chunk.byteLength) written += Fs.writeSync(fd, chunk, written, chunk.byteLength - written)
    }
    Fs.fsyncSync(fd)
  } finally {
    Fs.closeSync(fd)
  }
  Fs.renameSync(tmp, file)
}

const syncDirectory = (directory: string) => {
  try {
    const fd = Fs.openSync(directory, "r")
    try {
      Fs.fsyncSync(fd)
    } finally {
      Fs.closeSync(fd)
    }
  } catch {
    // not supported on every platform
  }
}

export const make = (directory: string) => {
  const bin = (label: string) => Path.join(directory, `${label}.bin`)
  const meta = (label: string) => Path.join(directory, `${label}.json`)
  return {
    directory,
    /** Writes and fsyncs one batch (body, then metadata, then the directory). */
    write: (batch: SpooledBatch) =>
      Effect.try({
        try: () => {
          Fs.mkdirSync(directory, { recursive: true })
          writeDurably(bin(batch.label), batch.body.chunks)
          writeDurably(meta(batch.label), [
            Buffer.from(JSON.stringify({ headers: batch.headers, rows: batch.rows, bytes: batch.body.byteLength }))
          ])
          syncDirectory(directory)
        },
        catch: spoolError(`cannot write the spooled batch ${batch.label}`)
      }),
    /** The batch spooled under `label`, if its files are there. */
    read: (label: string) =>
      Effect.try({
        try: (): SpooledBatch | undefined => {
          if (!Fs.existsSync(meta(label)) || !Fs.existsSync(bin(label))) return undefined
          const m = JSON.parse(Fs.readFileSync(meta(label), "utf8")) as {
            headers: Record<string, string>
            rows: number
          }
          const body = Fs.readFileSync(bin(label))
          return { label, headers: m.headers, rows: m.rows, body: { chunks: [body], byteLength: body.byteLength } }
        },
        catch: spoolError(`cannot read the spooled batch ${label}`)
      }),
    remove: (label: string) =>
      Effect.sync(() => {
        Fs.rmSync(bin(label), { force: true })
        Fs.rmSync(meta(label), { force: true })
      }),
    /** Labels with files in the directory. */
    labels: Effect.sync(() => {
      try {
        return Array.from(
          new Set(
            Fs.readdirSync(directory).filter((f) => f.endsWith(".bin") || f.endsWith(".json")).map((f) =>
              f.replace(/\.(bin|json)$/, "")
            )
          )
        )
      } catch {
        return []
      }
    })
  }
}

export type LabelSpool = ReturnType<typeof make>
