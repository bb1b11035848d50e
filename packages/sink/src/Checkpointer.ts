/**
 * Durable checkpoint records (exactly-once), one latest record per checkpoint key (one key per sink instance).
 * Three stores: in memory (`layerMemory`, for tests: nothing survives the process), on the file system
 * (`layerFileSystem`: one JSON file per key, replaced atomically and fsynced) and in SQL (`layerSql`: one row per
 * key in a shared table, MySQL / MariaDB). No store ever goes back to a lower checkpoint id.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as SqlClient from "@effect/sql/SqlClient"
import { Clock, Context, Effect, Layer, Option, Ref, Schema } from "effect"
import * as FileStore from "./internal/fileStore.js"
import * as SqlStore from "./internal/sqlStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export class CheckpointRecord extends Schema.Class<CheckpointRecord>("CheckpointRecord")({
  /** The checkpoint key (one per sink instance). */
  key: Schema.String,
  id: Schema.Number,
  /** The source position, Schema-encoded by the application (opaque to the sink). */
  position: Schema.Unknown,
  /** Labels prepared in this checkpoint, per `db.table`. */
  prepared: Schema.Record({ key: Schema.String, value: Schema.Array(Schema.String) }),
  /** Next label id per `db.table`. */
  nextLabelId: Schema.Record({ key: Schema.String, value: Schema.Number }),
  createdAt: Schema.Number
}) {}

/**
 * @since 0.1.0
 * @category errors
 */
export class CheckpointerError extends Schema.TaggedError<CheckpointerError>()("CheckpointerError", {
  reason: Schema.String
}) {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Checkpointer {
  readonly save: (record: CheckpointRecord) => Effect.Effect<void, CheckpointerError>
  readonly latest: (key: string) => Effect.Effect<Option.Option<CheckpointRecord>, CheckpointerError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Checkpointer: Context.Tag<Checkpointer, Checkpointer> = Context.GenericTag<Checkpointer>(
  "@effect-starrocks/sink/Checkpointer"
)

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Checkpointer> = Effect.map(
  Ref.make(new Map<string, CheckpointRecord>()),
  (ref): Checkpointer => ({
    save: (record) =>
      Ref.update(ref, (map) => {
        const current = map.get(record.key)
        if (current !== undefined && current.id > record.id) return map
        return new Map(map).set(record.key, record)
      }),
    latest: (key) => Effect.map(Ref.get(ref), (map) => Option.fromNullable(map.get(key)))
  })
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Checkpointer> = Layer.effect(Checkpointer, makeMemory)

const decodeRecordJson = Schema.decodeUnknown(Schema.parseJson(CheckpointRecord))
const encodeRecord = Schema.encode(CheckpointRecord)

/** The record as JSON text; fails when the position is not JSON-safe (a bigint, a cycle). */
const recordJson = (record: CheckpointRecord): Effect.Effect<string, CheckpointerError> =>
  encodeRecord(record).pipe(
    Effect.flatMap((encoded) => Effect.try(() => JSON.stringify(encoded))),
    Effect.mapError((error) =>
      new CheckpointerError({
        reason: `checkpoint ${JSON.stringify(record.key)} id ${record.id} cannot be written as JSON (the position ` +
          `must be Schema-encoded, JSON-safe): ${FileStore.errorMessage(error)}`
      })
    )
  )

/** Decodes stored JSON text, naming where it came from on failure; the stored key must be the one asked for. */
const decodeStored = (
  text: string,
  key: string,
  where: string
): Effect.Effect<CheckpointRecord, CheckpointerError> =>
  decodeRecordJson(text).pipe(
    Effect.mapError((error) => new CheckpointerError({ reason: `corrupt checkpoint in ${where}: ${error.message}` })),
    Effect.filterOrFail(
      (record) => record.key === key,
      (record) =>
        new CheckpointerError({
          reason: `checkpoint in ${where} belongs to key ${JSON.stringify(record.key)}, not ${JSON.stringify(key)}`
        })
    )
  )

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

/**
 * Options of the SQL store.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqlOptions {
  /** The table (`name` or `schema.name`), created when missing. Default `effect_starrocks_checkpoints`. */
  readonly table?: string | undefined
}

/**
 * A store in SQL through `@effect/sql` (the MySQL dialect: MySQL or MariaDB through `@effect/sql-mysql2`; tested
 * on MariaDB). One row per checkpoint key, so many processes can share one table, each with its own key:
 *
 * ```sql
 * CREATE TABLE IF NOT EXISTS effect_starrocks_checkpoints (
 *   checkpoint_key VARBINARY(255) NOT NULL PRIMARY KEY,  -- UTF-8 bytes, compared exactly
 *   id BIGINT NOT NULL,
 *   record LONGTEXT NOT NULL,   -- the whole CheckpointRecord as JSON
 *   updated_at BIGINT NOT NULL  -- epoch milliseconds of the last write
 * )
 * ```
 *
 * `save` is one `INSERT … ON DUPLICATE KEY UPDATE` that replaces the row only when the new id is at least the
 * stored one, so it never goes back, even with concurrent writers. It is durable when the server commits durably
 * (InnoDB with `innodb_flush_log_at_trx_commit = 1`, the default). Checkpoint ids must be safe integers and keys
 * at most 255 UTF-8 bytes (compared byte for byte: `A` and `a` are two keys).
 * Other dialects are refused at construction (PostgreSQL and SQLite would need `INSERT … ON CONFLICT`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSql = (
  options?: SqlOptions
): Effect.Effect<Checkpointer, CheckpointerError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const tableName = options?.table ?? "effect_starrocks_checkpoints"
    const invalid = SqlStore.checkTableName(tableName)
    if (invalid !== undefined) return yield* new CheckpointerError({ reason: invalid })
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    yield* SqlStore.requireMysql(sql, "Checkpointer.makeSql").pipe(
      Effect.mapError((reason) => new CheckpointerError({ reason }))
    )
    const table = sql(tableName)
    const failure = (what: string) => (error: unknown) =>
      new CheckpointerError({ reason: SqlStore.sqlReason(`${what} (table ${tableName})`, error) })

    yield* sql`CREATE TABLE IF NOT EXISTS ${table} (
      checkpoint_key VARBINARY(255) NOT NULL PRIMARY KEY,
      id BIGINT NOT NULL,
      record LONGTEXT NOT NULL,
      updated_at BIGINT NOT NULL
    )`.unprepared.pipe(Effect.mapError(failure("cannot create the checkpoint table")))

    return {
      save: (record) =>
        Effect.gen(function*() {
          if (!Number.isSafeInteger(record.id)) {
            return yield* new CheckpointerError({
              reason: `checkpoint ${JSON.stringify(record.key)}: the SQL store needs an integer id, got ${record.id}`
            })
          }
          const tooLong = SqlStore.keyTooLong("checkpoint key", record.key)
          if (tooLong !== undefined) return yield* new CheckpointerError({ reason: tooLong })
          const text = yield* recordJson(record)
          const now = yield* Clock.currentTimeMillis
          // MySQL applies the assignments left to right: `id` last, so that the conditions see the stored id.
          yield* sql`INSERT INTO ${table} (checkpoint_key, id, record, updated_at)
            VALUES (${record.key}, ${record.id}, ${text}, ${now})
            ON DUPLICATE KEY UPDATE
              record = IF(VALUES(id) >= id, VALUES(record), record),
              updated_at = IF(VALUES(id) >= id, VALUES(updated_at), updated_at),
              id = IF(VALUES(id) >= id, VALUES(id), id)`.pipe(
            Effect.mapError(failure(`cannot save checkpoint ${JSON.stringify(record.key)} id ${record.id}`))
          )
        }),
      latest: (key) =>
        sql<{ readonly record: string }>`SELECT record FROM ${table} WHERE checkpoint_key = ${key}`.pipe(
          Effect.mapError(failure(`cannot read checkpoint ${JSON.stringify(key)}`)),
          Effect.flatMap((rows) =>
            rows.length === 0
              ? Effect.succeedNone
              : Effect.asSome(
                decodeStored(String(rows[0]!.record), key, `table ${tableName}, key ${JSON.stringify(key)}`)
              )
          )
        )
    }
  })

/**
 * The SQL store as a layer; provide a `SqlClient` (e.g. `MysqlClient.layer` from `@effect/sql-mysql2`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSql = (options?: SqlOptions): Layer.Layer<Checkpointer, CheckpointerError, SqlClient.SqlClient> =>
  Layer.effect(Checkpointer, makeSql(options))
