/**
 * The checkpoint store in SQL through `@effect/sql` (MySQL / MariaDB): one row per key in a shared table. Needs the
 * optional peer dependencies `@effect/sql` and a MySQL client such as `@effect/sql-mysql2`.
 *
 * @since 0.2.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Clock, Effect, Layer } from "effect"
import { Checkpointer, CheckpointerError } from "../Checkpointer.js"
import * as SqlStore from "../internal/sqlStore.js"
import { decodeStored, recordJson } from "../internal/stores.js"

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
