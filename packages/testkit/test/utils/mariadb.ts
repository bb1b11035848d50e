/**
 * MariaDB for the MySQL-storage tests: 127.0.0.1:3306, root, empty password (override with SR_TEST_MYSQL_HOST /
 * SR_TEST_MYSQL_PORT). Every test works in a database of its own, dropped at the end of the test.
 */
import * as MysqlClient from "@effect/sql-mysql2/MysqlClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as net from "node:net"
import type { Storage } from "../../src/internal/storage.js"
import * as MysqlStorage from "../../src/MysqlStorage.js"

export const host = process.env["SR_TEST_MYSQL_HOST"] ?? "127.0.0.1"
export const port = Number(process.env["SR_TEST_MYSQL_PORT"] ?? 3306)

/** Under CI=true an unreachable MariaDB fails the tests instead of skipping them. */
export const isCI = process.env["CI"] === "true"

export const reachable = (): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(2000, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

let counter = 0
export const uniqueName = (prefix: string) =>
  `${prefix}_${process.pid}_${Date.now().toString(36)}_${(counter++).toString(36)}_${
    Math.floor(Math.random() * 1e6).toString(36)
  }`

export const urlFor = (database: string) => `mysql://root@${host}:${port}/${database}`

/** An admin SQL client (no default database), for `CREATE TABLE` by hand and `SELECT` checks. */
export const admin: Effect.Effect<SqlClient.SqlClient, unknown, Scope.Scope> = Effect.map(
  Layer.build(
    MysqlClient.layer({ host, port, username: "root", maxConnections: 2, poolConfig: { dateStrings: true } })
  ),
  (ctx) => Context.get(ctx, SqlClient.SqlClient)
)

/** A fresh database, dropped when the scope closes. */
export const freshDatabase = (prefix = "srt"): Effect.Effect<
  { readonly database: string; readonly url: string; readonly sql: SqlClient.SqlClient },
  unknown,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const sql = yield* admin
    const database = uniqueName(prefix)
    yield* Effect.acquireRelease(
      sql.unsafe(`CREATE DATABASE \`${database}\``).unprepared,
      () => Effect.ignore(sql.unsafe(`DROP DATABASE IF EXISTS \`${database}\``).unprepared)
    )
    return { database, url: urlFor(database), sql }
  })

/** Where an emulator test runs: its database and the emulator's storage (undefined: the memory storage). */
export interface Target {
  readonly db: string
  readonly storage: Storage | undefined
}

/**
 * The storages an emulator test runs against, by name: the memory storage (database `d`) and, when MariaDB is up
 * (always under CI), a MySQL storage in a fresh database named from `prefix`.
 */
export const targets = async (
  prefix: string
): Promise<ReadonlyArray<readonly [string, Effect.Effect<Target, unknown, Scope.Scope>]>> => [
  ["memory", Effect.succeed({ db: "d", storage: undefined })],
  ...(isCI || (await reachable())
    ? [
      [
        "mysql",
        Effect.gen(function*() {
          const { database, url } = yield* freshDatabase(prefix)
          return { db: database, storage: yield* MysqlStorage.make(url) }
        })
      ] as const
    ]
    : [])
]
