/**
 * The checkpoint store on the file system: one JSON file per key, replaced atomically and fsynced. Provide
 * `FileSystem` and `Path` (`NodeContext.layer` from `@effect/platform-node`).
 *
 * @since 0.2.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Effect, Layer, Option } from "effect"
import type { CheckpointRecord } from "../Checkpointer.js"
import { Checkpointer, CheckpointerError } from "../Checkpointer.js"
import * as FileStore from "../internal/fileStore.js"
import { decodeStored, recordJson } from "../internal/stores.js"

/**
 * Options of the file-system store.
 *
 * @since 0.1.0
 * @category models
 */
export interface FileSystemOptions {
  /** The directory of the checkpoint files, created when missing. Many keys (instances) may share it. */
  readonly directory: string
}

/**
 * A store on the file system: one JSON file per checkpoint key (`checkpoint-<hex of the key>.json`, or the key's
 * SHA-256 for very long keys) in `directory`.
 *
 * `save` writes a temporary file in the same directory, fsyncs it, renames it over the key's file and fsyncs the
 * directory, so once it returns the record survives a crash or a power loss, and a reader sees either the previous
 * record or the new one, never a torn file. It never goes back: when the stored record has a higher id, it is kept.
 * `latest` reads and decodes the key's file: a missing file is `None`, an unreadable or corrupt one a
 * `CheckpointerError` naming the file (never `None`).
 *
 * Each key must have a single writer (one sink instance, one process) at a time; saves through one store are
 * serialised.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFileSystem = (
  options: FileSystemOptions
): Effect.Effect<Checkpointer, CheckpointerError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const directory = path.resolve(options.directory)
    yield* fs.makeDirectory(directory, { recursive: true }).pipe(
      Effect.zipRight(FileStore.syncDirectory(fs, path.dirname(directory))),
      Effect.mapError((error) =>
        new CheckpointerError({ reason: `cannot create the checkpoint directory ${directory}: ${error.message}` })
      )
    )
    yield* FileStore.removeStaleTemporaries(fs, path, directory, 60 * 60 * 1000)
    const lock = yield* Effect.makeSemaphore(1)
    const fileOf = (key: string) => path.join(directory, FileStore.fileNameForKey("checkpoint", key, ".json"))

    const read = (key: string): Effect.Effect<Option.Option<CheckpointRecord>, CheckpointerError> => {
      const file = fileOf(key)
      return FileStore.readFileOption(fs, file).pipe(
        Effect.mapError((error) =>
          new CheckpointerError({ reason: `cannot read the checkpoint file ${file}: ${error.message}` })
        ),
        Effect.flatMap(Option.match({
          onNone: () => Effect.succeedNone,
          onSome: (text) => Effect.asSome(decodeStored(text, key, `file ${file}`))
        }))
      )
    }

    return {
      save: (record) =>
        lock.withPermits(1)(Effect.gen(function*() {
          const current = yield* read(record.key)
          if (Option.isSome(current) && current.value.id > record.id) return
          const text = yield* recordJson(record)
          const file = fileOf(record.key)
          yield* FileStore.writeFileAtomic(fs, path, file, text + "\n").pipe(
            Effect.mapError((error) =>
              new CheckpointerError({ reason: `cannot write the checkpoint file ${file}: ${error.message}` })
            )
          )
        })),
      latest: read
    }
  })

/**
 * The file-system store as a layer; provide `FileSystem` and `Path` with `NodeContext.layer` (or
 * `NodeFileSystem.layer` and `NodePath.layer`) from `@effect/platform-node`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFileSystem = (
  options: FileSystemOptions
): Layer.Layer<Checkpointer, CheckpointerError, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(Checkpointer, makeFileSystem(options))
