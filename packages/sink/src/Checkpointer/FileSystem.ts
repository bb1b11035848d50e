/**
 * The checkpoint store on the file system: per key a numbered JSON file, each change a compare-and-set by an
 * exclusive hard link, fsynced (one host). Provide `FileSystem` and `Path` (`NodeContext.layer` from
 * `@effect/platform-node`).
 *
 * @since 0.2.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Effect, Layer, Option, Schema } from "effect"
import * as Crypto from "node:crypto"
import type { CheckpointRecord } from "../Checkpointer.js"
import * as Checkpointer from "../Checkpointer.js"
import { CheckpointerError } from "../Checkpointer.js"
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

/** What a version file holds: the fence and, once saved, the record (its fields at the top, as the record's JSON). */
const VersionFile = Schema.Struct({
  key: Schema.String,
  fence: Schema.Struct({ epoch: Schema.Number, owner: Schema.optional(Schema.String) })
})
const decodeVersionFile = Schema.decodeUnknown(VersionFile)

interface State {
  /** The highest version file (0: none, the key's state is the pre-fencing file or nothing). */
  readonly version: number
  readonly fence: Checkpointer.Fence
  readonly record: CheckpointRecord | undefined
}

/** How many times a read or a compare-and-set starts again after losing a race with another writer. */
const ATTEMPTS = 64

/**
 * A store on the file system: per checkpoint key (`checkpoint-<hex of the key>`, or the key's SHA-256 for very long
 * keys) a numbered **version file** `checkpoint-<hex>.<n>.json` in `directory`; the highest `n` is the key's state.
 * It holds the record's JSON (what `Labels.decodeCheckpoint` and the CLI's `--checkpoint-file` read) with a `fence`
 * field (`{ epoch, owner }`); after a `claim` on a key never saved, only `key` and `fence`. A pre-fencing
 * `checkpoint-<hex>.json` is read as version 0 (epoch 0) and removed once a version file replaces it.
 *
 * Every change (`save`, `claim`) is a compare-and-set on the version: the new state is written to a temporary file,
 * fsynced, and **hard-linked** to `n + 1` (a link fails when the name exists, so of two writers that read version
 * `n` exactly one wins; the other reads again and decides again, e.g. that it is now fenced); then the directory is
 * fsynced and older versions removed. So once `save` or `claim` returns the state survives a crash or a power
 * loss, a reader never sees a torn file, and a claim and a save never interleave. It never goes back within an
 * epoch. `latest` reads and decodes the highest version: none is `None`, an unreadable or corrupt one a
 * `CheckpointerError` naming the file (never `None`).
 *
 * Scope: one host. The compare-and-set relies on `link(2)` being atomic, which holds on local file systems (not
 * on every network file system); processes on several hosts need the SQL store. Many processes of one host may
 * share a directory and keys.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFileSystem = (
  options: FileSystemOptions
): Effect.Effect<Checkpointer.Checkpointer, CheckpointerError, FileSystem.FileSystem | Path.Path> =>
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
    const baseOf = (key: string) => FileStore.fileNameForKey("checkpoint", key, "")
    const legacyFile = (key: string) => path.join(directory, `${baseOf(key)}.json`)
    const versionFile = (key: string, version: number) => path.join(directory, `${baseOf(key)}.${version}.json`)
    const failure = (what: string) => (error: { readonly message: string }) =>
      new CheckpointerError({ reason: `${what}: ${error.message}` })

    const versionsOf = (key: string): Effect.Effect<ReadonlyArray<number>, CheckpointerError> => {
      const head = `${baseOf(key)}.`
      return fs.readDirectory(directory).pipe(
        Effect.mapError(failure(`cannot list the checkpoint directory ${directory}`)),
        Effect.map((names) =>
          names.flatMap((name) => {
            if (!name.startsWith(head) || !name.endsWith(".json")) return []
            const n = name.slice(head.length, -".json".length)
            return /^[1-9][0-9]{0,15}$/.test(n) ? [Number(n)] : []
          }).sort((a, b) => a - b)
        )
      )
    }

    const decodeVersion = (text: string, key: string, file: string): Effect.Effect<State, CheckpointerError> =>
      Effect.gen(function*() {
        const json = yield* Effect.try({
          try: () => JSON.parse(text) as unknown,
          catch: (error) =>
            new CheckpointerError({ reason: `corrupt checkpoint in file ${file}: ${FileStore.errorMessage(error)}` })
        })
        const head = yield* decodeVersionFile(json).pipe(
          Effect.mapError((error) =>
            new CheckpointerError({ reason: `corrupt checkpoint in file ${file}: ${error.message}` })
          )
        )
        if (head.key !== key) {
          return yield* new CheckpointerError({
            reason: `checkpoint in file ${file} belongs to key ${JSON.stringify(head.key)}, not ${JSON.stringify(key)}`
          })
        }
        const record = typeof json === "object" && json !== null && "id" in json
          ? yield* decodeStored(text, key, `file ${file}`)
          : undefined
        return { version: 0, fence: { epoch: head.fence.epoch, owner: head.fence.owner }, record }
      })

    /** The key's state: its highest version file, else the pre-fencing file, else nothing. */
    const readState = (key: string): Effect.Effect<State, CheckpointerError> =>
      Effect.gen(function*() {
        for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
          const versions = yield* versionsOf(key)
          const version = versions[versions.length - 1]
          const file = version === undefined ? legacyFile(key) : versionFile(key, version)
          const text = yield* FileStore.readFileOption(fs, file).pipe(
            Effect.mapError(failure(`cannot read the checkpoint file ${file}`))
          )
          if (Option.isNone(text)) {
            // removed meanwhile by a writer that wrote a higher version: read again
            if (version !== undefined || (yield* versionsOf(key)).length > 0) continue
            return { version: 0, fence: { epoch: 0, owner: undefined }, record: undefined }
          }
          if (version === undefined) {
            const record = yield* decodeStored(text.value, key, `file ${file}`)
            return { version: 0, fence: { epoch: record.epoch, owner: undefined }, record }
          }
          return { ...(yield* decodeVersion(text.value, key, file)), version }
        }
        return yield* new CheckpointerError({
          reason: `cannot read checkpoint ${JSON.stringify(key)} in ${directory}: it kept changing (${ATTEMPTS} tries)`
        })
      })

    /** Writes version `version` unless it exists (false then); older versions and the pre-fencing file go. */
    const writeVersion = (key: string, version: number, content: string): Effect.Effect<boolean, CheckpointerError> =>
      Effect.gen(function*() {
        const file = versionFile(key, version)
        const temp = path.join(
          directory,
          `.${path.basename(file)}.${Crypto.randomBytes(6).toString("hex")}${FileStore.tempSuffix}`
        )
        const linked = yield* FileStore.writeNewFileSynced(fs, temp, content).pipe(
          Effect.zipRight(fs.link(temp, file)),
          Effect.as(true),
          Effect.catchIf(
            (error) => error._tag === "SystemError" && error.reason === "AlreadyExists",
            () => Effect.succeed(false)
          ),
          Effect.ensuring(Effect.ignore(fs.remove(temp))),
          Effect.mapError(failure(`cannot write the checkpoint file ${file}`))
        )
        if (!linked) return false
        yield* FileStore.syncDirectory(fs, directory).pipe(Effect.mapError(failure(`cannot sync ${directory}`)))
        for (const older of yield* versionsOf(key)) {
          if (older < version) yield* Effect.ignore(fs.remove(versionFile(key, older)))
        }
        yield* Effect.ignore(fs.remove(legacyFile(key)))
        return true
      })

    const contentOf = (key: string, fence: Checkpointer.Fence, record: CheckpointRecord | undefined) =>
      Effect.map(
        record === undefined ? Effect.succeed(undefined) : recordJson(record),
        (json) => {
          const fenceJson = JSON.stringify(fence.owner === undefined ? { epoch: fence.epoch } : fence)
          return json === undefined
            ? `{"key":${JSON.stringify(key)},"fence":${fenceJson}}\n`
            : `${json.slice(0, -1)},"fence":${fenceJson}}\n`
        }
      )

    /** Reads the state, decides, and writes the next version; starts again when another writer won the race. */
    const compareAndSet = <A>(
      key: string,
      decide: (state: State) => Effect.Effect<
        {
          readonly write: { fence: Checkpointer.Fence; record: CheckpointRecord | undefined } | undefined
          readonly result: A
        },
        CheckpointerError
      >
    ): Effect.Effect<A, CheckpointerError> =>
      lock.withPermits(1)(Effect.gen(function*() {
        for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
          const state = yield* readState(key)
          const { result, write } = yield* decide(state)
          if (write === undefined) return result
          if (yield* writeVersion(key, state.version + 1, yield* contentOf(key, write.fence, write.record))) {
            return result
          }
        }
        return yield* new CheckpointerError({
          reason: `cannot write checkpoint ${JSON.stringify(key)} in ${directory}: other writers kept winning ` +
            `(${ATTEMPTS} tries)`
        })
      }))

    return {
      save: (record) =>
        compareAndSet(record.key, (state) => {
          switch (Checkpointer.saveDecision(record, state.fence, state.record)) {
            case "fenced":
              return Effect.fail(Checkpointer.fencedError(record, state.fence))
            case "stale":
              return Effect.succeed({ write: undefined, result: undefined })
            case "write":
              return Effect.succeed({
                write: {
                  fence: record.epoch > state.fence.epoch ? { epoch: record.epoch, owner: undefined } : state.fence,
                  record
                },
                result: undefined
              })
          }
        }),
      latest: (key) => Effect.map(readState(key), (state) => Option.fromNullable(state.record)),
      claim: (key, owner) =>
        compareAndSet(key, (state) => {
          const epoch = state.fence.epoch + 1
          return Effect.succeed({ write: { fence: { epoch, owner }, record: state.record }, result: epoch })
        })
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
): Layer.Layer<Checkpointer.Checkpointer, CheckpointerError, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(Checkpointer.Checkpointer, makeFileSystem(options))
