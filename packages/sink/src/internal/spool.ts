/**
 * The replay spool of an open transaction: every body loaded into the transaction is kept until the transaction is
 * prepared or rolled back, so that a failed `transaction/load` can be replayed into a new transaction. Bodies are
 * kept in memory up to `memoryLimit` bytes (of this spool, or of all the spools sharing its `shared` budget), then
 * appended to a temporary file (removed when the spool is cleared or its scope closes). A body may be a compressed
 * frame (`rawBytes`: its size before compression): the spool keeps the frame, replays it as it is (never compressed
 * again), and never hands it to `release` (the encoder's buffer pool takes raw buffers only).
 */
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { LoadBody } from "../LoadBody.js"
import { ExactlyOnceError } from "../StarRocksError.js"

type Entry =
  | { readonly _tag: "memory"; readonly body: LoadBody; readonly rawBytes: number | undefined }
  | {
    readonly _tag: "disk"
    readonly offset: number
    readonly length: number
    readonly rawBytes: number | undefined
  }

export interface Spool {
  /** Bodies held (memory and disk). */
  readonly count: () => number
  /** Bytes held in memory. */
  readonly memoryBytes: () => number
  /** Bytes written to disk. */
  readonly diskBytes: () => number
  /** Keeps a body; `rawBytes` when it is a compressed frame (its size before compression). */
  readonly add: (body: LoadBody, rawBytes?: number | undefined) => Effect.Effect<void, ExactlyOnceError>
  /**
   * Calls `f` with every held body and its `rawBytes` (a frame's), in order (disk bodies read back one at a time).
   */
  readonly replay: <E>(
    f: (body: LoadBody, rawBytes: number | undefined) => Effect.Effect<void, E>
  ) => Effect.Effect<void, E | ExactlyOnceError>
  /** Drops every body (raw memory bodies go to `release`) and removes the file. */
  readonly clear: Effect.Effect<void>
}

const spoolError = (message: string, cause: unknown) =>
  new ExactlyOnceError({
    reason: "Spool",
    message: `${message}: ${cause instanceof Error ? cause.message : String(cause)}`
  })

/** Memory bytes held by the spools that share it (`make`'s `shared`). */
export interface Budget {
  used: number
}

export const make = (options: {
  readonly memoryLimit: number
  /**
   * Shared with other spools: `memoryLimit` bounds the memory of all of them together (the exactly-once sink's
   * table, whose transaction of one checkpoint is still being prepared while the next one's loads begin).
   */
  readonly shared?: Budget | undefined
  readonly directory?: string | undefined
  /** Receives memory bodies that will not be read again. */
  readonly release?: ((body: LoadBody) => void) | undefined
}): Spool => {
  let entries: Array<Entry> = []
  let memory = 0
  const shared = options.shared ?? { used: 0 }
  let disk = 0
  let fd: number | undefined
  let file: string | undefined

  const openFile = (): number => {
    if (fd !== undefined) return fd
    const dir = Fs.mkdtempSync(Path.join(options.directory ?? Os.tmpdir(), "starrocks-spool-"))
    file = Path.join(dir, "replay.bin")
    fd = Fs.openSync(file, "w+")
    return fd
  }

  const closeFile = () => {
    if (fd !== undefined) {
      try {
        Fs.closeSync(fd)
      } catch {
        // already closed
      }
      fd = undefined
    }
    if (file !== undefined) {
      try {
        Fs.rmSync(Path.dirname(file), { recursive: true, force: true })
      } catch {
        // best effort
      }
      file = undefined
    }
  }

  return {
    count: () => entries.length,
    memoryBytes: () => memory,
    diskBytes: () => disk,
    add: (body, rawBytes) =>
      Effect.try({
        try: () => {
          if (shared.used + body.byteLength <= options.memoryLimit) {
            entries.push({ _tag: "memory", body, rawBytes })
            memory += body.byteLength
            shared.used += body.byteLength
            return
          }
          const handle = openFile()
          const offset = disk
          for (const chunk of body.chunks) {
            let written = 0
            while (written < chunk.byteLength) {
              written += Fs.writeSync(handle, chunk, written, chunk.byteLength - written, disk + written)
            }
            disk += chunk.byteLength
          }
          entries.push({ _tag: "disk", offset, length: body.byteLength, rawBytes })
          if (rawBytes === undefined) options.release?.(body)
        },
        catch: (cause) => spoolError("cannot write the replay spool", cause)
      }),
    replay: <E>(f: (body: LoadBody, rawBytes: number | undefined) => Effect.Effect<void, E>) =>
      Effect.forEach(entries.slice(), (entry) => {
        if (entry._tag === "memory") return f(entry.body, entry.rawBytes)
        return Effect.try({
          try: (): LoadBody => {
            const buffer = Buffer.allocUnsafe(entry.length)
            let read = 0
            while (read < entry.length) {
              const n = Fs.readSync(fd!, buffer, read, entry.length - read, entry.offset + read)
              if (n === 0) throw new Error("unexpected end of spool file")
              read += n
            }
            return { chunks: [buffer], byteLength: entry.length }
          },
          catch: (cause) => spoolError("cannot read the replay spool", cause)
        }).pipe(Effect.flatMap((body) => f(body, entry.rawBytes)))
      }, { discard: true }),
    clear: Effect.sync(() => {
      for (const entry of entries) {
        if (entry._tag === "memory" && entry.rawBytes === undefined) options.release?.(entry.body)
      }
      entries = []
      shared.used -= memory
      memory = 0
      disk = 0
      closeFile()
    })
  }
}
