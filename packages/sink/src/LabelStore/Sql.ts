/**
 * The label store in SQL through `@effect/sql` (MySQL / MariaDB): one row per label, shareable by many processes.
 * Needs the optional peer dependencies `@effect/sql` and a MySQL client such as `@effect/sql-mysql2`.
 *
 * @since 0.2.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer, Schema } from "effect"
import * as SqlStore from "../internal/sqlStore.js"
import { checkNumbers } from "../internal/stores.js"
import { LabelRecord, LabelStore, LabelStoreError } from "../LabelStore.js"

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
