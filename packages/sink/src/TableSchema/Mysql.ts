/**
 * Reads the target table's columns over the MySQL protocol (`jdbc-url`) and checks a row schema against them. Needs
 * the optional peer dependencies `@effect/sql`, `@effect/sql-mysql2` and `@effect/experimental`; the sink loads this
 * module only when `jdbc-url` is set.
 *
 * @since 0.2.0
 */
import { Reactivity } from "@effect/experimental"
import { MysqlClient } from "@effect/sql-mysql2"
import type { SchemaAST } from "effect"
import { Duration, Effect, Either } from "effect"
import * as Net from "node:net"
import type { Checked, DescribeOptions, Description } from "../TableSchema.js"
import { check, columnFromRow, makeDescription, TableSchemaError } from "../TableSchema.js"

const toStr = (u: unknown): string =>
  u === null || u === undefined ? "" : Buffer.isBuffer(u) ? u.toString("utf8") : String(u)

/**
 * Reads the table's columns from `information_schema.COLUMNS` and the server version from `current_version()`
 * over the MySQL protocol (text protocol: `.unprepared`). Only columns that StarRocks and MySQL/MariaDB both have
 * are selected. A table without columns (missing, or no privilege) is a `TableSchemaError`.
 *
 * Nothing it opens outlives it, whether it succeeds, fails or is interrupted: the pool keeps no idle-connection
 * timer (`maxIdle` equal to its one connection; `@effect/sql-mysql2` sets 0, whose timer runs until `pool.end()`,
 * which it never calls when the first connection fails, so that a failed `jdbc-url` kept node alive forever), and
 * every socket the driver opened is destroyed when the reading ends.
 *
 * @since 0.1.0
 * @category constructors
 */
export const describe = (options: DescribeOptions): Effect.Effect<Description, TableSchemaError> => {
  const failWith = (reason: string) =>
    new TableSchemaError({ database: options.database, table: options.table, reason, mismatches: [] })
  const connectTimeout = Duration.toMillis(options.connectTimeout ?? Duration.seconds(10))
  // every socket the driver opens, destroyed when the reading ends (a connection still being made when a timeout
  // or an interruption ends it would otherwise sit in the pool with its socket open)
  const sockets = new Set<Net.Socket>()
  const openSocket = (): Net.Socket => {
    const socket = Net.connect(options.port, options.host)
    socket.setNoDelay(true)
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
    return socket
  }
  const closeSockets = Effect.sync(() => {
    // with an error, so that the driver fails what waits on the socket (and clears its connect timer)
    for (const socket of sockets) socket.destroy(new Error("closed: the reading of the table's columns ended"))
    sockets.clear()
  })
  return Effect.gen(function*() {
    const sql = yield* MysqlClient.make({
      host: options.host,
      port: options.port,
      username: options.user,
      password: options.password,
      maxConnections: 1,
      poolConfig: { connectTimeout, maxIdle: 1, stream: openSocket }
    })
    const rows = yield* sql<Record<string, unknown>>`
      SELECT COLUMN_NAME, ORDINAL_POSITION, COLUMN_KEY, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE,
             NUMERIC_PRECISION, NUMERIC_SCALE, CHARACTER_MAXIMUM_LENGTH
      FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = ${options.database} AND TABLE_NAME = ${options.table}
      ORDER BY ORDINAL_POSITION`.unprepared
    const version = yield* sql<{ v: unknown }>`SELECT current_version() AS v`.unprepared.pipe(
      Effect.map((r) => (r[0] === undefined ? undefined : toStr(r[0].v))),
      Effect.orElseSucceed(() => undefined)
    )
    return { rows, version }
  }).pipe(
    Effect.scoped,
    Effect.provide(Reactivity.layer),
    // the driver's first connection is made in an uninterruptible region (MysqlClient.make's acquire): detached,
    // an interruption or the timeout below returns at once, and closing the sockets ends that connection attempt
    Effect.disconnect,
    Effect.ensuring(closeSockets),
    Effect.mapError((e) => {
      const cause = (e as { readonly cause?: unknown }).cause
      const detail = cause instanceof Error && cause.message !== "" ? `: ${cause.message}` : ""
      return failWith(`cannot read information_schema.COLUMNS: ${e.message}${detail}`)
    }),
    Effect.timeoutFail({
      duration: Duration.millis(connectTimeout * 3),
      onTimeout: () => failWith("timed out reading information_schema.COLUMNS")
    }),
    Effect.flatMap(({ rows, version }) => {
      if (rows.length === 0) {
        return Effect.fail(failWith("table not found (no columns in information_schema.COLUMNS)"))
      }
      return Effect.succeed(makeDescription({
        database: options.database,
        table: options.table,
        columns: rows.map(columnFromRow),
        serverVersion: version ?? options.serverVersion
      }))
    })
  )
}

/**
 * `describe` then `check`: the table's description and the column types for the encoder.
 *
 * @since 0.1.0
 * @category check
 */
export const validate = (
  schema: { readonly ast: SchemaAST.AST },
  options: DescribeOptions & { readonly fields?: ReadonlyArray<string> | undefined }
): Effect.Effect<Description & Checked, TableSchemaError> =>
  Effect.flatMap(describe(options), (description) =>
    Either.match(
      check(schema, description.columns, {
        fields: options.fields,
        database: options.database,
        table: options.table
      }),
      {
        onLeft: Effect.fail,
        onRight: (checked) => Effect.succeed({ ...description, ...checked })
      }
    ))
