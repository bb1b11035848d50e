/**
 * The checkpoint store in SQL through `@effect/sql`: one row per key in a shared table, on MySQL / MariaDB
 * (`@effect/sql-mysql2`) or PostgreSQL (`@effect/sql-pg`). Needs the optional peer dependency `@effect/sql` and the
 * client of your database; this module loads neither client: you provide the `SqlClient`.
 *
 * @since 0.2.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Clock, Effect, Layer, Option } from "effect"
import * as Checkpointer from "../Checkpointer.js"
import { CheckpointerError } from "../Checkpointer.js"
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

interface Row {
  readonly id: unknown
  readonly record: unknown
  readonly fence_epoch: unknown
  readonly fence_owner: unknown
}

/**
 * A store in SQL through `@effect/sql`: MySQL or MariaDB through `@effect/sql-mysql2`, or PostgreSQL through
 * `@effect/sql-pg` (tested on MariaDB and PostgreSQL). One row per checkpoint key, so many processes can share one
 * table, each key with its owner:
 *
 * ```sql
 * CREATE TABLE IF NOT EXISTS effect_starrocks_checkpoints (
 *   checkpoint_key VARBINARY(255) NOT NULL PRIMARY KEY,  -- UTF-8 bytes, compared exactly (PostgreSQL: TEXT)
 *   id BIGINT NOT NULL,
 *   record LONGTEXT NOT NULL,   -- the whole CheckpointRecord as JSON; '' after a claim on a key never saved
 *   updated_at BIGINT NOT NULL, -- epoch milliseconds of the last write
 *   fence_epoch BIGINT NOT NULL DEFAULT 0,  -- the key's epoch (claimed or saved)
 *   fence_owner VARBINARY(255) NULL         -- who claimed it (PostgreSQL: TEXT)
 * )
 * ```
 *
 * A table made before fencing gets the two `fence_*` columns at start (`ALTER TABLE … ADD COLUMN`; its rows are at
 * epoch 0). `claim` is one atomic statement (`INSERT … ON DUPLICATE KEY UPDATE fence_epoch = fence_epoch + 1` read
 * back in the same transaction; PostgreSQL `INSERT … ON CONFLICT DO UPDATE … RETURNING`). `save` is a transaction
 * that locks the key's row (`SELECT … FOR UPDATE`), applies the rule of `Checkpointer.saveDecision` (refused when
 * fenced, kept when a lower id of the same epoch) and updates it: so a claim and a save never interleave, whatever
 * the number of processes. Durable when the server commits durably (InnoDB with `innodb_flush_log_at_trx_commit =
 * 1`, PostgreSQL with `synchronous_commit = on`, the defaults). Checkpoint ids must be safe integers, keys and
 * owners at most 255 UTF-8 bytes (compared byte for byte: `A` and `a` are two keys). Other dialects are refused at
 * construction.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSql = (
  options?: SqlOptions
): Effect.Effect<Checkpointer.Checkpointer, CheckpointerError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const tableName = options?.table ?? "effect_starrocks_checkpoints"
    const invalid = SqlStore.checkTableName(tableName)
    if (invalid !== undefined) return yield* new CheckpointerError({ reason: invalid })
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const dialect = yield* SqlStore.requireMysqlOrPg(sql, "Checkpointer.makeSql").pipe(
      Effect.mapError((reason) => new CheckpointerError({ reason }))
    )
    const table = sql(tableName)
    const failure = (what: string) => (error: unknown) =>
      new CheckpointerError({ reason: SqlStore.sqlReason(`${what} (table ${tableName})`, error) })

    if (dialect === "pg") {
      yield* sql`CREATE TABLE IF NOT EXISTS ${table} (
        checkpoint_key TEXT NOT NULL PRIMARY KEY,
        id BIGINT NOT NULL,
        record TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        fence_epoch BIGINT NOT NULL DEFAULT 0,
        fence_owner TEXT NULL
      )`.unprepared.pipe(
        // two processes creating the table at once: one of them fails on the catalog's unique index
        Effect.retry({ times: 2 }),
        Effect.zipRight(
          sql`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS fence_epoch BIGINT NOT NULL DEFAULT 0`
            .unprepared
        ),
        Effect.zipRight(sql`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS fence_owner TEXT NULL`.unprepared),
        Effect.mapError(failure("cannot create or migrate the checkpoint table"))
      )
    } else {
      yield* sql`CREATE TABLE IF NOT EXISTS ${table} (
        checkpoint_key VARBINARY(255) NOT NULL PRIMARY KEY,
        id BIGINT NOT NULL,
        record LONGTEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        fence_epoch BIGINT NOT NULL DEFAULT 0,
        fence_owner VARBINARY(255) NULL
      )`.unprepared.pipe(Effect.mapError(failure("cannot create the checkpoint table")))
      yield* SqlStore.addMysqlColumns(sql, tableName, {
        fence_epoch: "BIGINT NOT NULL DEFAULT 0",
        fence_owner: "VARBINARY(255) NULL"
      }).pipe(Effect.mapError(failure("cannot migrate the checkpoint table (adding fence_epoch, fence_owner)")))
    }

    const fenceOf = (row: Row): Checkpointer.Fence => ({
      epoch: SqlStore.toNumber(row.fence_epoch),
      owner: row.fence_owner === null || row.fence_owner === undefined ? undefined : SqlStore.toText(row.fence_owner)
    })
    const recordOf = (row: Row, key: string) => {
      const text = SqlStore.toText(row.record)
      return text === ""
        ? Effect.succeed(undefined)
        : decodeStored(text, key, `table ${tableName}, key ${JSON.stringify(key)}`)
    }
    const lockRow = (key: string) =>
      sql<Row>`SELECT id, record, fence_epoch, fence_owner FROM ${table} WHERE checkpoint_key = ${key} FOR UPDATE`
    // a row to lock: a key never saved nor claimed gets an empty one (record '' reads as none)
    const ensureRow = (key: string, now: number) =>
      dialect === "pg"
        ? sql`INSERT INTO ${table} (checkpoint_key, id, record, updated_at, fence_epoch)
            VALUES (${key}, 0, '', ${now}, 0) ON CONFLICT (checkpoint_key) DO NOTHING`
        : sql`INSERT INTO ${table} (checkpoint_key, id, record, updated_at, fence_epoch)
            VALUES (${key}, 0, '', ${now}, 0) ON DUPLICATE KEY UPDATE checkpoint_key = checkpoint_key`

    const save = (record: Checkpointer.CheckpointRecord) =>
      Effect.gen(function*() {
        if (!Number.isSafeInteger(record.id) || !Number.isSafeInteger(record.epoch)) {
          return yield* new CheckpointerError({
            reason: `checkpoint ${JSON.stringify(record.key)}: the SQL store needs integer ids and epochs, got id ` +
              `${record.id}, epoch ${record.epoch}`
          })
        }
        const tooLong = SqlStore.keyTooLong("checkpoint key", record.key)
        if (tooLong !== undefined) return yield* new CheckpointerError({ reason: tooLong })
        const text = yield* recordJson(record)
        const now = yield* Clock.currentTimeMillis
        const what = `cannot save checkpoint ${JSON.stringify(record.key)} id ${record.id}`
        const attempt = sql.withTransaction(Effect.gen(function*() {
          const rows = yield* lockRow(record.key)
          if (rows.length === 0) return "missing" as const
          const row = rows[0]!
          const fence = fenceOf(row)
          const decision = Checkpointer.saveDecision(record, fence, yield* recordOf(row, record.key))
          if (decision === "fenced") return yield* Checkpointer.fencedError(record, fence)
          if (decision === "stale") return "done" as const
          const raised = record.epoch > fence.epoch
          yield* sql`UPDATE ${table} SET id = ${record.id}, record = ${text}, updated_at = ${now},
            fence_epoch = ${raised ? record.epoch : fence.epoch},
            fence_owner = ${raised ? null : fence.owner ?? null}
            WHERE checkpoint_key = ${record.key}`
          return "done" as const
        })).pipe(
          Effect.retry({ times: 3, while: SqlStore.isTransient }),
          Effect.catchTag("SqlError", (error) => Effect.fail(failure(what)(error)))
        )
        if ((yield* attempt) === "done") return
        yield* ensureRow(record.key, now).pipe(Effect.mapError(failure(what)))
        if ((yield* attempt) === "missing") {
          return yield* new CheckpointerError({ reason: `${what}: its row disappeared (table ${tableName})` })
        }
      })

    const claim = (key: string, owner: string) =>
      Effect.gen(function*() {
        const tooLong = SqlStore.keyTooLong("checkpoint key", key) ?? SqlStore.keyTooLong("owner", owner)
        if (tooLong !== undefined) return yield* new CheckpointerError({ reason: tooLong })
        const now = yield* Clock.currentTimeMillis
        const rows = dialect === "pg"
          ? yield* sql<{ readonly fence_epoch: unknown }>`INSERT INTO ${table} AS cur
              (checkpoint_key, id, record, updated_at, fence_epoch, fence_owner)
              VALUES (${key}, 0, '', ${now}, 1, ${owner})
              ON CONFLICT (checkpoint_key) DO UPDATE SET fence_epoch = cur.fence_epoch + 1,
                fence_owner = EXCLUDED.fence_owner
              RETURNING fence_epoch`
          : yield* sql.withTransaction(
            sql`INSERT INTO ${table} (checkpoint_key, id, record, updated_at, fence_epoch, fence_owner)
              VALUES (${key}, 0, '', ${now}, 1, ${owner})
              ON DUPLICATE KEY UPDATE fence_epoch = fence_epoch + 1, fence_owner = VALUES(fence_owner)`.pipe(
              Effect.zipRight(
                sql<{ readonly fence_epoch: unknown }>`SELECT fence_epoch FROM ${table} WHERE checkpoint_key = ${key}`
              )
            )
          )
        if (rows.length === 0) {
          return yield* new CheckpointerError({
            reason: `claim of ${JSON.stringify(key)}: no row (table ${tableName})`
          })
        }
        return SqlStore.toNumber(rows[0]!.fence_epoch)
      }).pipe(
        Effect.retry({ times: 3, while: SqlStore.isTransient }),
        Effect.catchTag(
          "SqlError",
          (error) =>
            Effect.fail(failure(`cannot claim checkpoint ${JSON.stringify(key)} for ${JSON.stringify(owner)}`)(error))
        )
      )

    return {
      save,
      claim,
      latest: (key) =>
        sql<Row>`SELECT id, record, fence_epoch, fence_owner FROM ${table} WHERE checkpoint_key = ${key}`.pipe(
          Effect.mapError(failure(`cannot read checkpoint ${JSON.stringify(key)}`)),
          Effect.flatMap((rows) =>
            rows.length === 0
              ? Effect.succeedNone
              : Effect.map(recordOf(rows[0]!, key), (record) =>
                record === undefined ? Option.none() : Option.some(record))
          )
        )
    }
  })

/**
 * The SQL store as a layer; provide a `SqlClient` (`MysqlClient.layer` from `@effect/sql-mysql2`, or
 * `PgClient.layer` from `@effect/sql-pg`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSql = (
  options?: SqlOptions
): Layer.Layer<Checkpointer.Checkpointer, CheckpointerError, SqlClient.SqlClient> =>
  Layer.effect(Checkpointer.Checkpointer, makeSql(options))
