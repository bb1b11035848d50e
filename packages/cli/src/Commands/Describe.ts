/**
 * `effect-starrocks describe db.table --jdbc-url host:port [--user U] [--password-env VAR] [--json]`
 *
 * Reads a table through StarRocks' MySQL-protocol port (the Flink connector's `jdbc-url`): its columns (name, type,
 * nullable, key), whether it is a Primary Key table and its key, and the server's version (`current_version()`),
 * exactly as the sink learns them when `jdbc-url` is set. Prints a table for people, or one JSON object with
 * `--json`. A table that does not exist, or a server that cannot be reached, is the sink's `TableSchemaError`
 * naming the table, printed on stderr, and exit code 1.
 *
 * @since 0.2.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

const target = Args.text({ name: "db.table" }).pipe(Args.withDescription("the table, as database.table"))

const jdbcUrl = Options.text("jdbc-url").pipe(
  Options.withDescription("the FE's MySQL port: host:port or jdbc:mysql://host:port[/db] (default STARROCKS_JDBC_URL)"),
  Options.optional
)

const user = Options.text("user").pipe(
  Options.withDescription("user name (default STARROCKS_USERNAME, else root)"),
  Options.optional
)

const passwordEnv = Options.text("password-env").pipe(
  Options.withDescription("the environment variable holding the password (default STARROCKS_PASSWORD; none: empty)"),
  Options.optional
)

const json = Options.boolean("json").pipe(Options.withDescription("print one JSON object"))

/** `host:port` of a `jdbc:mysql://host:port[,…][/db][?…]` URL or a bare `host:port` (default port 9030). */
export const hostPort = (url: string): { readonly host: string; readonly port: number } | undefined => {
  const bare = url.replace(/^jdbc:mysql:\/\//i, "").split(/[/?]/)[0]!.split(",")[0]!
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(bare)
  if (m === null) return undefined
  return { host: m[1]!.replace(/^\[(.*)\]$/, "$1"), port: m[2] !== undefined ? Number(m[2]) : 9030 }
}

export const describe = Command.make(
  "describe",
  { target, jdbcUrl, user, passwordEnv, json },
  (args) =>
    Effect.gen(function*() {
      const dot = args.target.indexOf(".")
      if (dot <= 0 || dot === args.target.length - 1) {
        return yield* Effect.fail(new Error(`expected database.table, got '${args.target}'`))
      }
      const database = args.target.slice(0, dot)
      const table = args.target.slice(dot + 1)
      const url = Option.isSome(args.jdbcUrl)
        ? args.jdbcUrl.value
        : yield* Config.string("STARROCKS_JDBC_URL").pipe(
          Effect.mapError(() => new Error("no --jdbc-url and no STARROCKS_JDBC_URL: where is the FE's MySQL port?"))
        )
      const address = hostPort(url)
      if (address === undefined) return yield* Effect.fail(new Error(`not a jdbc-url or host:port: '${url}'`))
      const username = Option.isSome(args.user)
        ? args.user.value
        : yield* Config.string("STARROCKS_USERNAME").pipe(Config.withDefault("root"))
      const password = Option.isSome(args.passwordEnv)
        ? yield* Config.redacted(args.passwordEnv.value).pipe(
          Effect.mapError(() =>
            new Error(`--password-env ${args.passwordEnv.pipe(Option.getOrElse(() => ""))} is not set`)
          )
        )
        : yield* Config.redacted("STARROCKS_PASSWORD").pipe(Config.withDefault(Redacted.make("")))
      // loaded here, not with the command line: the MySQL client is for this command only
      const Mysql = yield* Effect.tryPromise({
        try: () => import("@effect-starrocks/sink/TableSchema/Mysql"),
        catch: (e) => new Error(`cannot load the MySQL client: ${String(e)}`)
      })
      const d = yield* Mysql.describe({ ...address, user: username, password, database, table })
      if (args.json) {
        yield* Console.log(JSON.stringify({
          database: d.database,
          table: d.table,
          isPrimaryKeyTable: d.isPrimaryKeyTable,
          primaryKey: d.primaryKey,
          serverVersion: d.serverVersion ?? null,
          columns: d.columns.map((c) => ({ name: c.name, type: c.columnType, nullable: c.nullable, key: c.key }))
        }))
        return
      }
      yield* Console.log(
        `${d.database}.${d.table}: ${
          d.isPrimaryKeyTable ? `Primary Key table (${d.primaryKey.join(", ")})` : "not a Primary Key table"
        }` +
          `; server ${d.serverVersion ?? "version unknown"}`
      )
      const width = Math.max(6, ...d.columns.map((c) => c.name.length))
      for (const c of d.columns) {
        yield* Console.log(
          `  ${c.name.padEnd(width)}  ${c.columnType}${c.nullable ? " NULL" : " NOT NULL"}${
            c.key !== "" ? `  ${c.key}` : ""
          }`
        )
      }
    }).pipe(
      Effect.tapError((e) => Console.error(`describe: ${e instanceof Error ? e.message : String(e)}`))
    )
).pipe(Command.withDescription("a table's columns, key and server version, read through jdbc-url"))
