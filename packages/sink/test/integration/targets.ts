import { MysqlStorage, StarRocksEmulator } from "@effect-starrocks/testkit"
import { Reactivity } from "@effect/experimental"
import { MysqlClient } from "@effect/sql-mysql2"
import { Effect, Layer, Redacted } from "effect"
import type { TableSpec } from "./Target.js"
import { Target, textRow } from "./Target.js"

const orderBy = (spec: TableSpec) => (a: Record<string, unknown>, b: Record<string, unknown>) => {
  for (const k of spec.key) {
    const x = a[k]
    const y = b[k]
    const nx = typeof x === "bigint" || typeof x === "number" ? Number(x) : String(x)
    const ny = typeof y === "bigint" || typeof y === "number" ? Number(y) : String(y)
    if (nx < ny) return -1
    if (nx > ny) return 1
  }
  return 0
}

/** The emulator, in process, with one or two FEs and two BEs; memory storage or MariaDB. */
export const emulatorTarget = (options: {
  readonly storage: "memory" | "mariadb"
  readonly fes?: number
}): Layer.Layer<Target, unknown> =>
  Layer.scoped(
    Target,
    Effect.gen(function*() {
      const database = options.storage === "mariadb" ? "test" : "db"
      const storage = options.storage === "mariadb"
        ? yield* MysqlStorage.make("mysql://root@127.0.0.1:3306/test")
        : undefined
      const emulator = yield* StarRocksEmulator.make({
        users: { root: "", loader: "s3cret-pw" },
        fes: options.fes ?? 1,
        bes: 2,
        storage
      })
      return Target.of({
        name: `emulator (${options.storage})`,
        loadUrl: emulator.fe,
        jdbc: options.storage === "mariadb" ? { host: "127.0.0.1", port: 3306 } : undefined,
        username: "loader",
        password: "s3cret-pw",
        jdbcCredentials: { username: "root", password: Redacted.make("") },
        database,
        createTable: (spec) => emulator.createTable({ ...spec, columns: spec.columns.map((c) => ({ ...c })) }),
        rows: (spec) =>
          emulator.rows(spec.database, spec.table).pipe(
            Effect.map((rows) => [...rows].sort(orderBy(spec)).map(textRow))
          ),
        emulator
      })
    })
  )

/**
 * A real cluster: `STARROCKS_FE=host:8030 STARROCKS_JDBC=host:9030 [STARROCKS_USER=root STARROCKS_PASSWORD=]`.
 * Tables are created in database `effect_starrocks_it` with replication_num 1.
 */
export const realTarget: Layer.Layer<Target, unknown> = Layer.scoped(
  Target,
  Effect.gen(function*() {
    const fe = process.env["STARROCKS_FE"] ?? "127.0.0.1:8030"
    const [host, port] = (process.env["STARROCKS_JDBC"] ?? "127.0.0.1:9030").split(":")
    const username = process.env["STARROCKS_USER"] ?? "root"
    const password = process.env["STARROCKS_PASSWORD"] ?? ""
    const database = "effect_starrocks_it"
    const sql = yield* MysqlClient.make({
      host: host!,
      port: Number(port ?? 9030),
      username,
      password: Redacted.make(password),
      maxConnections: 2,
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true
    } as MysqlClient.MysqlClientConfig).pipe(Effect.provide(Reactivity.layer))
    yield* sql.unsafe(`CREATE DATABASE IF NOT EXISTS ${database}`).unprepared
    return Target.of({
      name: "real cluster",
      loadUrl: fe.split(";"),
      jdbc: { host: host!, port: Number(port ?? 9030) },
      username,
      password,
      jdbcCredentials: { username, password: Redacted.make(password) },
      database,
      createTable: (spec) => {
        const cols = spec.columns.map((c) =>
          `\`${c.name}\` ${c.type}${(c.nullable ?? !spec.key.includes(c.name)) ? " NULL" : " NOT NULL"}`
        ).join(", ")
        const keys = spec.key.map((k) => `\`${k}\``).join(", ")
        const model = spec.model === "PRIMARY" ? "PRIMARY KEY" : "DUPLICATE KEY"
        return sql.unsafe(
          `CREATE TABLE ${spec.database}.\`${spec.table}\` (${cols}) ${model}(${keys}) DISTRIBUTED BY HASH(${keys}) BUCKETS 1 PROPERTIES("replication_num" = "1")`
        ).unprepared
      },
      rows: (spec) =>
        sql.unsafe<Record<string, unknown>>(
          `SELECT * FROM ${spec.database}.\`${spec.table}\` ORDER BY ${spec.key.map((k) => `\`${k}\``).join(", ")}`
        ).unprepared.pipe(Effect.map((rows) => rows.map(textRow))),
      emulator: undefined
    })
  })
)
