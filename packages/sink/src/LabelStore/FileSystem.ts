/**
 * The label store on the file system: an fsynced append-only log, compacted atomically. Provide `FileSystem` and
 * `Path` (`NodeContext.layer` from `@effect/platform-node`).
 *
 * @since 0.2.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Effect, Layer, Option, Schema } from "effect"
import * as FileStore from "../internal/fileStore.js"
import { checkNumbers, putWithRetention } from "../internal/stores.js"
import { LabelRecord, LabelStore, LabelStoreError } from "../LabelStore.js"

const LogEntry = Schema.Union(
  Schema.Struct({ put: LabelRecord }),
  Schema.Struct({ remove: Schema.String })
)
const decodeLogEntry = Schema.decodeUnknown(Schema.parseJson(LogEntry))
const encodeLogEntry = Schema.encode(LogEntry)

/**
 * Options of the file-system store.
 *
 * @since 0.1.0
 * @category models
 */
export interface FileSystemOptions {
  /** The directory of the store (`labels.jsonl` in it), created when missing. One store per directory. */
  readonly directory: string
  /** Committed labels kept, oldest dropped first. Default 10,000. */
  readonly maxCommitted?: number | undefined
}

/**
 * A store on the file system: an append-only log `labels.jsonl` in `directory`, one JSON line per `put` or
 * `remove`, read back into memory when the store is made.
 *
 * Every `put` and `remove` appends its line and fsyncs the file before it returns, so a recorded label survives a
 * crash or a power loss. When the log grows past twice the live records (and at least 1,000 lines) it is compacted:
 * the live records are written to a temporary file, fsynced and renamed over the log, and the directory is fsynced.
 * A line torn by a crash in the middle of an append (the last line, without its newline) was never acknowledged and
 * is dropped, with a compaction, when the store is opened; a corrupt line anywhere else is a `LabelStoreError`
 * naming the file and the line.
 *
 * A directory belongs to one store at a time (one process): the records are held in memory and appended to by this
 * store only. Give each process its own directory, or use the SQL store to share.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFileSystem = (
  options: FileSystemOptions
): Effect.Effect<LabelStore, LabelStoreError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const maxCommitted = options.maxCommitted ?? 10_000
    const directory = path.resolve(options.directory)
    const file = path.join(directory, "labels.jsonl")
    const failure = (what: string) => (error: { readonly message: string }) =>
      new LabelStoreError({ reason: `${what} ${file}: ${error.message}` })

    yield* fs.makeDirectory(directory, { recursive: true }).pipe(
      Effect.zipRight(FileStore.syncDirectory(fs, path.dirname(directory))),
      Effect.mapError(failure("cannot create the directory of"))
    )
    yield* FileStore.removeStaleTemporaries(fs, path, directory, 60 * 60 * 1000)

    const records = new Map<string, LabelRecord>()
    let lines = 0
    /** The log must be rewritten from `records` before the next append (a torn tail, a failed append). */
    let dirty = false

    const lineOf = (entry: typeof LogEntry.Type): Effect.Effect<string, LabelStoreError> =>
      encodeLogEntry(entry).pipe(
        Effect.map((encoded) => JSON.stringify(encoded) + "\n"),
        Effect.mapError((error) => new LabelStoreError({ reason: `cannot encode a label record: ${error.message}` }))
      )

    const compact = Effect.gen(function*() {
      let content = ""
      for (const record of records.values()) content += yield* lineOf({ put: record })
      yield* FileStore.writeFileAtomic(fs, path, file, content).pipe(Effect.mapError(failure("cannot rewrite")))
      lines = records.size
      dirty = false
    })

    const append = (entry: typeof LogEntry.Type) =>
      Effect.gen(function*() {
        const line = yield* lineOf(entry)
        if (dirty) yield* compact
        yield* FileStore.appendDurable(fs, file, line).pipe(
          Effect.tapError(() => Effect.sync(() => (dirty = true))),
          Effect.mapError(failure("cannot append to"))
        )
        lines++
      })

    // The operation is already durable when compaction runs: a failed compaction leaves the valid log in place and
    // is tried again at the next operation, so it is logged rather than failing the operation.
    const maybeCompact = Effect.suspend(() => lines > Math.max(1_000, 2 * records.size) ? compact : Effect.void).pipe(
      Effect.catchAll((error) => Effect.logWarning(`LabelStore: compaction failed: ${error.reason}`))
    )

    // Load.
    const text = yield* FileStore.readFileOption(fs, file).pipe(Effect.mapError(failure("cannot read")))
    if (Option.isNone(text)) {
      yield* FileStore.writeFileAtomic(fs, path, file, "").pipe(Effect.mapError(failure("cannot create")))
    } else {
      const segments = text.value.split("\n")
      const tail = segments.pop()!
      if (tail !== "") {
        dirty = true
        yield* Effect.logWarning(`LabelStore: dropping a line torn by a crash at the end of ${file}`)
      }
      for (let i = 0; i < segments.length; i++) {
        const entry = yield* decodeLogEntry(segments[i]).pipe(
          Effect.mapError((error) =>
            new LabelStoreError({ reason: `corrupt label log ${file}, line ${i + 1}: ${error.message}` })
          )
        )
        if ("put" in entry) putWithRetention(records, entry.put, maxCommitted)
        else records.delete(entry.remove)
        lines++
      }
      if (dirty) yield* compact
    }

    const lock = yield* Effect.makeSemaphore(1)

    return {
      put: (record) =>
        lock.withPermits(1)(
          checkNumbers(record).pipe(
            Effect.zipRight(append({ put: record })),
            Effect.zipRight(Effect.sync(() => putWithRetention(records, record, maxCommitted))),
            Effect.zipRight(maybeCompact)
          )
        ),
      get: (label) => Effect.sync(() => Option.fromNullable(records.get(label))),
      list: (filter) =>
        Effect.sync(() =>
          Array.from(records.values()).filter((r) =>
            (filter?.table === undefined || r.table === filter.table) &&
            (filter?.state === undefined || r.state === filter.state)
          )
        ),
      remove: (label) =>
        lock.withPermits(1)(
          Effect.suspend(() => records.has(label) ? append({ remove: label }) : Effect.void).pipe(
            Effect.zipRight(Effect.sync(() => records.delete(label))),
            Effect.zipRight(maybeCompact)
          )
        )
    }
  })

/**
 * The file-system store as a layer; provide `FileSystem` and `Path` with `NodeContext.layer` from
 * `@effect/platform-node`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFileSystem = (
  options: FileSystemOptions
): Layer.Layer<LabelStore, LabelStoreError, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(LabelStore, makeFileSystem(options))
