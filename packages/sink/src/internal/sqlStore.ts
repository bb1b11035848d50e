/**
 * Helpers shared by the SQL `Checkpointer` and `LabelStore`.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import { errorMessage } from "./fileStore.js"

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,63}(\.[A-Za-z_][A-Za-z0-9_$]{0,63})?$/

/**
 * A table name (`table` or `schema.table`) that is safe to use as an identifier, or a reason why it is not.
 *
 * @internal
 */
export const checkTableName = (table: string): string | undefined =>
  IDENTIFIER.test(table)
    ? undefined
    : `invalid table name ${JSON.stringify(table)}: expected [A-Za-z_][A-Za-z0-9_$]* or schema.table, at most 64 ` +
      `characters each`

/**
 * A readable reason for a failed statement: the `SqlError` message and the driver's own message under it.
 *
 * @internal
 */
export const sqlReason = (what: string, error: unknown): string => {
  const outer = errorMessage(error)
  const cause = typeof error === "object" && error !== null && "cause" in error ? error.cause : undefined
  const inner = cause === undefined ? undefined : errorMessage(cause)
  return inner === undefined || inner === outer ? `${what}: ${outer}` : `${what}: ${outer}: ${inner}`
}

/**
 * Succeeds on the MySQL dialect (MySQL, MariaDB), the only one whose SQL these stores are written and tested for;
 * fails with a reason on any other.
 *
 * @internal
 */
export const requireMysql = (sql: SqlClient.SqlClient, store: string): Effect.Effect<void, string> =>
  sql.onDialectOrElse({
    mysql: () => Effect.void,
    orElse: () =>
      Effect.fail(
        `${store}: only the MySQL dialect (MySQL, MariaDB, through @effect/sql-mysql2) is supported; other ` +
          `databases need their own upsert (INSERT … ON CONFLICT on PostgreSQL and SQLite)`
      )
  })

/**
 * Integer columns come back as numbers or, with some driver settings (`bigNumberStrings`, `supportBigNumbers`), as
 * strings or bigints.
 *
 * @internal
 */
export const toNumber = (value: unknown): number =>
  typeof value === "number" ? value : typeof value === "bigint" ? Number(value) : Number(String(value))

/**
 * A text column read back: `VARBINARY` columns come as bytes.
 *
 * @internal
 */
export const toText = (value: unknown): string =>
  value instanceof Uint8Array ? Buffer.from(value).toString("utf8") : String(value)

/**
 * The longest key or label the SQL stores take (their `VARBINARY(255)` primary keys), in UTF-8 bytes.
 *
 * @internal
 */
export const MAX_KEY_BYTES = 255

/** @internal */
export const keyTooLong = (what: string, key: string): string | undefined =>
  Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES
    ? `${what} ${JSON.stringify(key)} is longer than ${MAX_KEY_BYTES} UTF-8 bytes, the SQL store's limit`
    : undefined

/**
 * The dialect of a client the checkpoint store runs on: MySQL (MySQL, MariaDB) or PostgreSQL; fails with a reason
 * on any other.
 *
 * @internal
 */
export const requireMysqlOrPg = (sql: SqlClient.SqlClient, store: string): Effect.Effect<"mysql" | "pg", string> =>
  sql.onDialectOrElse({
    mysql: () => Effect.succeed("mysql" as const),
    pg: () => Effect.succeed("pg" as const),
    orElse: () =>
      Effect.fail(
        `${store}: only MySQL / MariaDB (through @effect/sql-mysql2) and PostgreSQL (through @effect/sql-pg) are ` +
          `supported`
      )
  })

/**
 * Adds the columns a MySQL table lacks (`name` → its definition), for tables made by an older version. Another
 * process adding them at the same time is fine: the columns are read again after a failed `ALTER TABLE`.
 *
 * @internal
 */
export const addMysqlColumns = (
  sql: SqlClient.SqlClient,
  table: string,
  columns: Readonly<Record<string, string>>
): Effect.Effect<void, unknown> =>
  Effect.gen(function*() {
    const dot = table.indexOf(".")
    const schema = dot < 0 ? null : table.slice(0, dot)
    const name = dot < 0 ? table : table.slice(dot + 1)
    const quoted = table.split(".").map((part) => `\`${part}\``).join(".")
    const existing = sql<{ readonly name: unknown }>`SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = COALESCE(${schema}, DATABASE()) AND TABLE_NAME = ${name}`.pipe(
      Effect.map((rows) => new Set(rows.map((r) => toText(r.name).toLowerCase())))
    )
    const have = yield* existing
    for (const [column, definition] of Object.entries(columns)) {
      if (have.has(column)) continue
      // the table name passed checkTableName, the columns and definitions are the caller's constants
      yield* sql.unsafe(`ALTER TABLE ${quoted} ADD COLUMN ${column} ${definition}`)
        .unprepared.pipe(
          Effect.catchAll((error) =>
            Effect.flatMap(existing, (now) => now.has(column) ? Effect.void : Effect.fail(error))
          )
        )
    }
  })

/**
 * A deadlock or serialization failure, which the database resolves by failing one transaction: worth running it
 * again (MySQL / MariaDB errno 1213 and 1205, PostgreSQL SQLSTATE 40P01 and 40001).
 *
 * @internal
 */
export const isTransient = (error: unknown): boolean => {
  const cause = typeof error === "object" && error !== null && "cause" in error ? error.cause : undefined
  if (typeof cause !== "object" || cause === null) return false
  const errno = "errno" in cause ? cause.errno : undefined
  const code = "code" in cause ? cause.code : undefined
  return errno === 1213 || errno === 1205 || code === "40P01" || code === "40001"
}
