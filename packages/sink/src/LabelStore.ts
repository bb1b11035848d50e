/**
 * Where the sink records the labels it loads under, so that no load is ever under an unknown label: a batch's
 * label is recorded `pending` before its first attempt and `committed` (or `failed`, `in-doubt`) after.
 * Exactly-once recovery reads it back.
 *
 * Three stores: in memory (`layerMemory`, the default: nothing survives the process), on the file system
 * (`layerFileSystem`: an fsynced append-only log, compacted atomically) and in SQL (`layerSql`: one row per label,
 * MySQL / MariaDB). All keep committed labels up to `maxCommitted` (oldest dropped first) and list in put order.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as SqlClient from "@effect/sql/SqlClient"
import { Context, Effect, Layer, Option, Ref, Schema } from "effect"
import * as FileStore from "./internal/fileStore.js"
import * as SqlStore from "./internal/sqlStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export const LabelState = Schema.Literal("pending", "committed", "failed", "in-doubt")

/**
 * @since 0.1.0
 * @category models
 */
export type LabelState = typeof LabelState.Type

/**
 * @since 0.1.0
 * @category models
 */
export class LabelRecord extends Schema.Class<LabelRecord>("LabelRecord")({
  label: Schema.String,
  /** `db.table` */
  table: Schema.String,
  state: LabelState,
  rows: Schema.Number,
  bytes: Schema.Number,
  updatedAt: Schema.Number
}) {}

/**
 * @since 0.1.0
 * @category errors
 */
export class LabelStoreError extends Schema.TaggedError<LabelStoreError>()("LabelStoreError", {
  reason: Schema.String
}) {}

/**
 * @since 0.1.0
 * @category models
 */
export interface LabelStore {
  readonly put: (record: LabelRecord) => Effect.Effect<void, LabelStoreError>
  readonly get: (label: string) => Effect.Effect<Option.Option<LabelRecord>, LabelStoreError>
  readonly list: (filter?: {
    readonly table?: string | undefined
    readonly state?: LabelState | undefined
  }) => Effect.Effect<ReadonlyArray<LabelRecord>, LabelStoreError>
  readonly remove: (label: string) => Effect.Effect<void, LabelStoreError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const LabelStore: Context.Tag<LabelStore, LabelStore> = Context.GenericTag<LabelStore>(
  "@effect-starrocks/sink/LabelStore"
)

/**
 * An in-memory store (the default). Committed labels are kept up to `maxCommitted` (oldest dropped first).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options?: { readonly maxCommitted?: number | undefined }): Effect.Effect<LabelStore> =>
  Effect.map(Ref.make(new Map<string, LabelRecord>()), (ref): LabelStore => {
    const maxCommitted = options?.maxCommitted ?? 10_000
    return {
      put: (record) =>
        Ref.update(ref, (map) => {
          const next = new Map(map)
          next.delete(record.label)
          next.set(record.label, record)
          let committed = 0
          for (const r of next.values()) if (r.state === "committed") committed++
          for (const [label, r] of next) {
            if (committed <= maxCommitted) break
            if (r.state === "committed") {
              next.delete(label)
              committed--
            }
          }
          return next
        }),
      get: (label) => Effect.map(Ref.get(ref), (map) => Option.fromNullable(map.get(label))),
      list: (filter) =>
        Effect.map(
          Ref.get(ref),
          (map) =>
            Array.from(map.values()).filter((r) =>
              (filter?.table === undefined || r.table === filter.table) &&
              (filter?.state === undefined || r.state === filter.state)
            )
        ),
      remove: (label) =>
        Ref.update(ref, (map) => {
          const next = new Map(map)
          next.delete(label)
          return next
        })
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<LabelStore> = Layer.effect(LabelStore, makeMemory())

/** Puts into a map with the retention rule of every store: re-put moves to the end, oldest committed go first. */
const putWithRetention = (map: Map<string, LabelRecord>, record: LabelRecord, maxCommitted: number): void => {
  map.delete(record.label)
  map.set(record.label, record)
  let committed = 0
  for (const r of map.values()) if (r.state === "committed") committed++
  for (const [label, r] of map) {
    if (committed <= maxCommitted) break
    if (r.state === "committed") {
      map.delete(label)
      committed--
    }
  }
}

const checkNumbers = (record: LabelRecord): Effect.Effect<void, LabelStoreError> =>
  Number.isFinite(record.rows) && Number.isFinite(record.bytes) && Number.isFinite(record.updatedAt)
    ? Effect.void
    : Effect.fail(
      new LabelStoreError({
        reason: `label ${JSON.stringify(record.label)}: rows, bytes and updatedAt must be finite numbers`
      })
    )

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

/**
 * Options of the SQL store.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqlOptions {
  /** The table (`name` or `schema.name`), created when missing. Default `effect_starrocks_labels`. */
  readonly table?: string | undefined
  /** Committed labels kept in the table, oldest dropped first. Default 10,000. */
  readonly maxCommitted?: number | undefined
}

interface LabelRow {
  readonly label: unknown
  readonly table_name: unknown
  readonly state: unknown
  readonly row_count: unknown
  readonly byte_count: unknown
  readonly updated_at: unknown
}

const decodeLabelRecord = Schema.decodeUnknown(LabelRecord)

/**
 * A store in SQL through `@effect/sql` (the MySQL dialect: MySQL or MariaDB through `@effect/sql-mysql2`; tested
 * on MariaDB). One row per label; many processes can share the table:
 *
 * ```sql
 * CREATE TABLE IF NOT EXISTS effect_starrocks_labels (
 *   label VARBINARY(255) NOT NULL PRIMARY KEY,  -- UTF-8 bytes, compared exactly
 *   table_name VARBINARY(512) NOT NULL,         -- db.table
 *   state VARCHAR(16) NOT NULL,                 -- pending | committed | failed | in-doubt
 *   row_count BIGINT NOT NULL,
 *   byte_count BIGINT NOT NULL,
 *   updated_at BIGINT NOT NULL,                 -- epoch milliseconds
 *   seq BIGINT NOT NULL AUTO_INCREMENT UNIQUE,  -- put order
 *   INDEX (table_name, state),
 *   INDEX (state, seq)
 * )
 * ```
 *
 * `put` is a `REPLACE` (a new `seq`, so a re-put moves the label to the end, as in memory), followed, for a
 * committed label, by the retention step: committed labels older than the `maxCommitted` newest are deleted (a
 * step that never deletes more than it should, even when processes put concurrently). `rows`, `bytes` and
 * `updatedAt` must be integers, labels at most 255 UTF-8 bytes (compared byte for byte). Other dialects are refused at construction.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSql = (
  options?: SqlOptions
): Effect.Effect<LabelStore, LabelStoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const tableName = options?.table ?? "effect_starrocks_labels"
    const maxCommitted = Math.max(0, Math.floor(options?.maxCommitted ?? 10_000))
    const invalid = SqlStore.checkTableName(tableName)
    if (invalid !== undefined) return yield* new LabelStoreError({ reason: invalid })
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    yield* SqlStore.requireMysql(sql, "LabelStore.makeSql").pipe(
      Effect.mapError((reason) => new LabelStoreError({ reason }))
    )
    const table = sql(tableName)
    const failure = (what: string) => (error: unknown) =>
      new LabelStoreError({ reason: SqlStore.sqlReason(`${what} (table ${tableName})`, error) })

    yield* sql`CREATE TABLE IF NOT EXISTS ${table} (
      label VARBINARY(255) NOT NULL PRIMARY KEY,
      table_name VARBINARY(512) NOT NULL,
      state VARCHAR(16) NOT NULL,
      row_count BIGINT NOT NULL,
      byte_count BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      seq BIGINT NOT NULL AUTO_INCREMENT UNIQUE,
      INDEX table_state (table_name, state),
      INDEX state_seq (state, seq)
    )`.unprepared.pipe(Effect.mapError(failure("cannot create the label table")))

    const fromRow = (row: LabelRow): Effect.Effect<LabelRecord, LabelStoreError> =>
      decodeLabelRecord({
        label: SqlStore.toText(row.label),
        table: SqlStore.toText(row.table_name),
        state: SqlStore.toText(row.state),
        rows: SqlStore.toNumber(row.row_count),
        bytes: SqlStore.toNumber(row.byte_count),
        updatedAt: SqlStore.toNumber(row.updated_at)
      }).pipe(
        Effect.mapError((error) =>
          new LabelStoreError({
            reason: `corrupt label row ${
              JSON.stringify(SqlStore.toText(row.label))
            } in table ${tableName}: ${error.message}`
          })
        )
      )

    const columns = sql`label, table_name, state, row_count, byte_count, updated_at`

    const retain = Effect.gen(function*() {
      if (maxCommitted === 0) {
        yield* sql`DELETE FROM ${table} WHERE state = 'committed'`
        return
      }
      const newest = yield* sql<{ readonly seq: unknown }>`SELECT seq FROM ${table} WHERE state = 'committed'
        ORDER BY seq DESC LIMIT 1 OFFSET ${sql.literal(String(maxCommitted - 1))}`
      if (newest.length === 0) return
      yield* sql`DELETE FROM ${table} WHERE state = 'committed' AND seq < ${SqlStore.toNumber(newest[0]!.seq)}`
    })

    return {
      put: (record) =>
        Effect.gen(function*() {
          yield* checkNumbers(record)
          if (![record.rows, record.bytes, record.updatedAt].every(Number.isSafeInteger)) {
            return yield* new LabelStoreError({
              reason: `label ${JSON.stringify(record.label)}: the SQL store needs integer rows, bytes and updatedAt`
            })
          }
          const tooLong = SqlStore.keyTooLong("label", record.label) ??
            (Buffer.byteLength(record.table, "utf8") > 512 ? `table name ${record.table} is too long` : undefined)
          if (tooLong !== undefined) return yield* new LabelStoreError({ reason: tooLong })
          yield* sql`REPLACE INTO ${table} (${columns}) VALUES (${record.label}, ${record.table}, ${record.state},
            ${record.rows}, ${record.bytes}, ${record.updatedAt})`.pipe(
            Effect.mapError(failure(`cannot put label ${JSON.stringify(record.label)}`))
          )
          // The record is stored by now: a failed retention step is logged, not an error of the put.
          if (record.state === "committed") {
            yield* retain.pipe(
              Effect.catchAll((error) =>
                Effect.logWarning(
                  SqlStore.sqlReason(`LabelStore: cannot drop old committed labels (table ${tableName})`, error)
                )
              )
            )
          }
        }),
      get: (label) =>
        sql<LabelRow>`SELECT ${columns} FROM ${table} WHERE label = ${label}`.pipe(
          Effect.mapError(failure(`cannot read label ${JSON.stringify(label)}`)),
          Effect.flatMap((rows) => rows.length === 0 ? Effect.succeedNone : Effect.asSome(fromRow(rows[0]!)))
        ),
      list: (filter) =>
        sql<LabelRow>`SELECT ${columns} FROM ${table} WHERE ${
          sql.and([
            ...(filter?.table === undefined ? [] : [sql`table_name = ${filter.table}`]),
            ...(filter?.state === undefined ? [] : [sql`state = ${filter.state}`])
          ])
        } ORDER BY seq`.pipe(
          Effect.mapError(failure("cannot list labels")),
          Effect.flatMap((rows) => Effect.forEach(rows, fromRow))
        ),
      remove: (label) =>
        sql`DELETE FROM ${table} WHERE label = ${label}`.pipe(
          Effect.asVoid,
          Effect.mapError(failure(`cannot remove label ${JSON.stringify(label)}`))
        )
    }
  })

/**
 * The SQL store as a layer; provide a `SqlClient` (e.g. `MysqlClient.layer` from `@effect/sql-mysql2`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSql = (options?: SqlOptions): Layer.Layer<LabelStore, LabelStoreError, SqlClient.SqlClient> =>
  Layer.effect(LabelStore, makeSql(options))
