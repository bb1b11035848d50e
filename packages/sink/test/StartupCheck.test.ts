/**
 * The startup check (issue #9, liveness; internal/startup.ts): before the first row, one `GET
 * /api/{db}/{table}/_schema` per table tells apart an FE that does not answer, refused credentials and a missing
 * database or table, each with a `StartupCheckError` naming the FE and the table; a table routed by function is
 * checked when it first appears. Settings that need a newer server than the known version are an
 * `UnsupportedByServerError` at start.
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { MysqlStorage } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Logger, LogLevel, Redacted, Ref, Schema, Stream } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import {
  Checkpoint,
  Checkpointer,
  ColumnType,
  LoadClient,
  StarRocksConfig,
  StarRocksError,
  StarRocksSink
} from "../src/index.js"
import { requireMariaDb } from "./integration/mariadb.js"

const Row = Schema.Struct({ id: ColumnType.Int, name: Schema.String })
type Row = typeof Row.Type
const rows: ReadonlyArray<Row> = [{ id: 1, name: "a" }, { id: 2, name: "b" }]

const columns = [{ name: "id", type: "INT" }, { name: "name", type: "VARCHAR(16)" }]

const emulator = (tables: ReadonlyArray<string> = ["t"]) =>
  Effect.gen(function*() {
    const emu = yield* StarRocksEmulator.make({ users: { root: "", loader: "s3cret-pw" }, fes: 1, bes: 1 })
    for (const table of tables) yield* emu.createTable({ database: "db", table, model: "DUPLICATE", key: [], columns })
    return emu
  })

const configFor = (loadUrl: string | ReadonlyArray<string>, extra: Partial<StarRocksConfig.Options> = {}) =>
  StarRocksConfig.make({
    loadUrl,
    database: "db",
    table: "t",
    username: "loader",
    password: Redacted.make("s3cret-pw"),
    allowSmallBuffers: true,
    maxRows: 1000,
    maxRetries: 0,
    ...extra
  })

const runMake = <In>(
  config: StarRocksConfig.StarRocksConfig,
  items: ReadonlyArray<In>,
  sink: StarRocksSink.Routing<In> | undefined = undefined
) =>
  Stream.run(
    Stream.fromIterable(items),
    sink === undefined ? StarRocksSink.make(Row) as any : StarRocksSink.make(sink)
  ).pipe(Effect.provide(StarRocksSink.layer(config)), Effect.exit) as Effect.Effect<
    Exit.Exit<StarRocksSink.SinkSummary, StarRocksSink.SinkError>
  >

const failure = (exit: Exit.Exit<unknown, unknown>): any => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") assert.fail(`no typed error: ${String(exit)}`)
  return (exit.cause as { error: unknown }).error
}

const schemaRequests = (emu: StarRocksEmulator.StarRocksEmulator) =>
  Effect.map(emu.requests, (rs) => rs.filter((r) => r.path.endsWith("/_schema")).map((r) => r.path))

const loads = (emu: StarRocksEmulator.StarRocksEmulator) =>
  Effect.map(emu.requests, (rs) => rs.filter((r) => r.path.includes("_stream_load") || r.path.includes("transaction")))

describe("startup check", () => {
  it.scoped("a table that exists: one _schema request, then the rows land", () =>
    Effect.gen(function*() {
      const emu = yield* emulator()
      const exit = yield* runMake(configFor(emu.fe), rows)
      assert.isTrue(Exit.isSuccess(exit), String(exit))
      assert.deepStrictEqual(yield* schemaRequests(emu), ["/api/db/t/_schema"])
      assert.strictEqual((yield* emu.rows("db", "t")).length, 2)
    }))

  it.scoped("no FE answers: Unreachable, naming the FE, before any row", () =>
    Effect.gen(function*() {
      const e = failure(yield* runMake(configFor("127.0.0.1:1"), rows))
      assert.strictEqual(e._tag, "StartupCheckError")
      assert.strictEqual(e.reason, "Unreachable")
      assert.strictEqual(e.fe, "http://127.0.0.1:1")
      assert.strictEqual(e.code, "ECONNREFUSED")
      assert.include(e.message, "no FE answered")
    }))

  it.scoped("the second FE answers when the first does not", () =>
    Effect.gen(function*() {
      const emu = yield* emulator()
      const exit = yield* runMake(configFor(["127.0.0.1:1", emu.fe[0]!]), rows)
      assert.isTrue(Exit.isSuccess(exit), String(exit))
    }))

  it.scoped("a wrong password: Unauthorized, naming the FE, never the password", () =>
    Effect.gen(function*() {
      const emu = yield* emulator()
      const e = failure(yield* runMake(configFor(emu.fe, { password: Redacted.make("not-the-pw-42") }), rows))
      assert.strictEqual(e._tag, "StartupCheckError")
      assert.strictEqual(e.reason, "Unauthorized")
      assert.strictEqual(e.fe, `http://${emu.fe[0]}`)
      assert.include(e.detail, "Access denied for loader@")
      assert.notInclude(`${e.message} ${JSON.stringify(e)}`, "not-the-pw-42")
      assert.deepStrictEqual(yield* loads(emu), [])
    }))

  it.scoped("a missing database and a missing table: each named", () =>
    Effect.gen(function*() {
      const emu = yield* emulator()
      const db = failure(yield* runMake(configFor(emu.fe, { database: "nodb" }), rows))
      assert.strictEqual(db.reason, "NoSuchDatabase")
      assert.strictEqual(db.database, "nodb")
      assert.include(db.message, "database nodb does not exist")
      const table = failure(yield* runMake(configFor(emu.fe, { table: "nope" }), rows))
      assert.strictEqual(table.reason, "NoSuchTable")
      assert.strictEqual(table.table, "nope")
      assert.include(table.message, "table db.nope does not exist")
      assert.deepStrictEqual(yield* loads(emu), [])
    }))

  it.scoped("a tagged union: every declared table is checked before the first row", () =>
    Effect.gen(function*() {
      const emu = yield* emulator(["a"])
      const A = Schema.TaggedStruct("a", { id: ColumnType.Int, name: Schema.String })
      const B = Schema.TaggedStruct("b", { id: ColumnType.Int, name: Schema.String })
      const routing = StarRocksSink.byTag({ a: StarRocksSink.table(A), b: StarRocksSink.table(B) })
      const e = failure(yield* runMake(configFor(emu.fe), [{ _tag: "a" as const, id: 1, name: "x" }], routing))
      assert.strictEqual(e.reason, "NoSuchTable")
      assert.strictEqual(e.table, "b")
      // the declared tables are looked up at once
      assert.deepStrictEqual([...(yield* schemaRequests(emu))].sort(), ["/api/db/a/_schema", "/api/db/b/_schema"])
      assert.deepStrictEqual(yield* loads(emu), [])
    }))

  it.scoped("tables routed by function: each checked once, when it first appears", () =>
    Effect.gen(function*() {
      const emu = yield* emulator(["t1", "t2"])
      const routing = StarRocksSink.byRoute(Row, (r) => (r.id < 100 ? `t${r.id % 2 + 1}` : "t9"))
      const ok = yield* runMake(configFor(emu.fe), [1, 2, 3, 4, 5].map((id) => ({ id, name: "x" })), routing)
      assert.isTrue(Exit.isSuccess(ok), String(ok))
      assert.deepStrictEqual([...(yield* schemaRequests(emu))].sort(), ["/api/db/t1/_schema", "/api/db/t2/_schema"])
      const e = failure(yield* runMake(configFor(emu.fe), [{ id: 1, name: "x" }, { id: 100, name: "y" }], routing))
      assert.strictEqual(e.reason, "NoSuchTable")
      assert.strictEqual(e.table, "t9")
      assert.isFalse((yield* loads(emu)).some((r) => r.path.includes("/t9/")))
    }))

  it.scoped("off (startupCheck: false): no _schema request; the first load finds the missing table", () =>
    Effect.gen(function*() {
      const emu = yield* emulator()
      const e = failure(yield* runMake(configFor(emu.fe, { table: "nope", startupCheck: false }), rows))
      assert.strictEqual(e._tag, "StreamLoadError")
      assert.deepStrictEqual(yield* schemaRequests(emu), [])
    }))

  it.scoped("the exactly-once sink checks its tables before recovery's first request", () =>
    Effect.gen(function*() {
      const emu = yield* emulator()
      const config = configFor(emu.fe, { table: "nope", semantic: "exactly-once" })
      // a checkpoint that prepared a label: recovery would ask get_load_state about it first
      const store = yield* Checkpointer.makeMemoryForTests
      yield* store.save(
        new Checkpointer.CheckpointRecord({
          key: `effect-sr-db.nope-0`,
          id: 1,
          position: 1,
          prepared: { "db.nope": ["effect-sr-nope-0-1"] },
          nextLabelId: { "db.nope": 2 },
          createdAt: 0
        })
      )
      const exit = yield* Stream.run(
        Stream.fromIterable(rows),
        StarRocksSink.exactlyOnce(Row, { position: Schema.Number })
      ).pipe(
        Effect.provide(StarRocksSink.layer(config)),
        Effect.provideService(Checkpointer.Checkpointer, store),
        Effect.exit
      )
      const e = failure(exit)
      assert.strictEqual(e._tag, "StartupCheckError")
      assert.strictEqual(e.reason, "NoSuchTable")
      // only the transaction interface's probe (sink.version AUTO) and the check: recovery never ran
      assert.deepStrictEqual((yield* emu.requests).map((r) => r.path), [
        "/api/transaction/begin",
        "/api/db/nope/_schema"
      ])
    }))

  it.scoped("an address that is not an FE: Unexpected, saying what load-url needs", () =>
    Effect.gen(function*() {
      const emu = yield* emulator()
      // a BE's HTTP port has no _schema route
      const e = failure(yield* runMake(configFor(emu.bes[0]!), rows))
      assert.strictEqual(e.reason, "Unexpected")
      assert.include(e.detail, "HTTP 404")
      assert.include(e.detail, "FE's HTTP port")
    }))
})

/** An HTTP server that answers every request with `status` and `body` (a FE whose answers a test chooses). */
const answering = (status: number, body: string) =>
  Effect.acquireRelease(
    Effect.async<Http.Server>((resume) => {
      const server = Http.createServer((_req, res) => {
        res.writeHead(status, { "Content-Type": "application/json" })
        res.end(body)
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server) => `127.0.0.1:${(server.address() as Net.AddressInfo).port}`))

/** `StarRocksSink.startupCheck` through the real client against `address`, with the warnings logged. */
const checkAgainst = (address: string) =>
  Effect.gen(function*() {
    const config = configFor(address)
    const client = yield* LoadClient.make(config)
    const logs = yield* Ref.make<ReadonlyArray<string>>([])
    const logger = Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) =>
        Effect.runSync(Ref.update(logs, (xs) => [...xs, `${logLevel.label} ${String(message)}`]))
      )
    )
    const exit = yield* StarRocksSink.startupCheck().pipe(
      Effect.provideService(StarRocksConfig.StarRocksConfig, config),
      Effect.provideService(LoadClient.LoadClient, client),
      Effect.provide(logger),
      Logger.withMinimumLogLevel(LogLevel.Debug),
      Effect.exit
    )
    return { exit, logs: yield* Ref.get(logs) }
  })

/**
 * An FE in front of the emulator's FE `target`: it sends every request on to it by a 307 (the client follows, as it
 * follows an FE's redirect to a BE), except the `_schema` GET of table `held`, which it forwards only once it has
 * redirected `releaseAfter` loads of other tables since that GET came (or after 10 s, so that a sink that waits for
 * the answer is not stuck: the test then fails on its counts). `events` says what came and went, in order.
 */
const holdingFe = (target: string, held: string, releaseAfter: number) =>
  Effect.gen(function*() {
    const events: Array<string> = []
    let heldSince: number | undefined
    let loadsSince = 0
    let release: (() => void) | undefined
    const handle = (req: Http.IncomingMessage, res: Http.ServerResponse) => {
      const url = req.url ?? "/"
      const table = /^\/api\/db\/([^/]+)\//.exec(url)?.[1] ?? "?"
      if (url.endsWith("/_schema") && table === held) {
        events.push(`schema ${table}`)
        heldSince = events.length
        const forward = () => {
          release = undefined
          clearTimeout(deadline)
          Http.get(`http://${target}${url}`, { headers: req.headers }, (answer) => {
            const parts: Array<Buffer> = []
            answer.on("data", (d: Buffer) => parts.push(d))
            answer.on("end", () => {
              events.push(`answered ${table}`)
              res.writeHead(answer.statusCode ?? 502, { "Content-Type": "application/json" })
              res.end(Buffer.concat(parts))
            })
          })
        }
        const deadline = setTimeout(forward, 10_000)
        release = forward
        return
      }
      if (url.includes("_stream_load")) {
        events.push(`load ${table}`)
        if (heldSince !== undefined && table !== held && ++loadsSince >= releaseAfter) release?.()
      }
      res.writeHead(307, { Location: `http://${target}${url}` })
      res.end()
    }
    const server = yield* Effect.acquireRelease(
      Effect.async<Http.Server>((resume) => {
        const server = Http.createServer(handle)
        // a load's 307 goes before its body, as an FE's does
        server.on("checkContinue", handle)
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    return { address: `127.0.0.1:${(server.address() as Net.AddressInfo).port}`, events }
  })

describe("startup check of a table that appears while the stream runs", () => {
  it.scoped("the row loop goes on while it runs; the table's first load waits for it", () =>
    Effect.gen(function*() {
      const emu = yield* emulator(["t1", "t2"])
      const fe = yield* holdingFe(emu.fe[0]!, "t2", 10)
      // t2's rows from id 50 on, one in 20 (its first batch, 10 rows, is sealed at id 245, with its check held);
      // t1's: the rest, a load every 10 rows
      const toT2 = (id: number) => id >= 50 && id % 20 === 5
      const routing = StarRocksSink.byRoute(Row, (r) => (toT2(r.id) ? "t2" : "t1"))
      const items = Array.from({ length: 400 }, (_, id) => ({ id, name: `n${id}` }))
      const exit = yield* runMake(configFor(fe.address, { maxRows: 10 }), items, routing)
      assert.isTrue(Exit.isSuccess(exit), String(exit))
      const events = fe.events
      const asked = events.indexOf("schema t2")
      const answered = events.indexOf("answered t2")
      assert.isAbove(asked, -1, events.join(", "))
      // t1's loads went on while t2's check was held: 10 of them were needed to release it
      assert.isAtLeast(
        events.slice(asked, answered).filter((e) => e === "load t1").length,
        10,
        events.join(", ")
      )
      // no load of t2 before its check was answered
      assert.isAbove(answered, asked, events.join(", "))
      assert.isFalse(events.slice(0, answered).includes("load t2"), events.join(", "))
      assert.isTrue(events.slice(answered).includes("load t2"), events.join(", "))
      assert.strictEqual((yield* emu.rows("db", "t1")).length, 400 - items.filter((r) => toT2(r.id)).length)
      assert.strictEqual((yield* emu.rows("db", "t2")).length, items.filter((r) => toT2(r.id)).length)
    }))

  it.scoped("exactly-once: a table that fails its check never gets a transaction", () =>
    Effect.gen(function*() {
      const emu = yield* emulator(["t1"])
      const config = configFor(emu.fe, { table: "t1", semantic: "exactly-once", maxRows: 1 })
      const routing = StarRocksSink.byRoute(Row, (r) => (r.id < 100 ? "t1" : "t9"))
      const exit = yield* Stream.run(
        Stream.fromIterable([{ id: 1, name: "a" }, { id: 100, name: "x" }, { id: 2, name: "b" }]),
        StarRocksSink.exactlyOnce(routing, { position: Schema.Number })
      ).pipe(
        Effect.provide(StarRocksSink.layer(config)),
        Effect.provideService(Checkpointer.Checkpointer, yield* Checkpointer.makeMemoryForTests),
        Effect.exit
      )
      const e = failure(exit)
      assert.strictEqual(e._tag, "StartupCheckError")
      assert.strictEqual(e.reason, "NoSuchTable")
      assert.strictEqual(e.table, "t9")
      const requests = yield* emu.requests
      assert.isTrue(requests.some((r) => r.path.endsWith("/api/db/t9/_schema")))
      assert.isFalse(requests.some((r) => r.path.includes("transaction") && r.headers["table"] === "t9"))
    }))
})

describe("startup check: answers the emulator does not give", () => {
  it.scoped("a 401 that names the SELECT privilege: the credentials worked; a warning, and the start goes on", () =>
    Effect.gen(function*() {
      const fe = yield* answering(
        401,
        JSON.stringify({
          status: "FAILED",
          msg: "Access denied; you need (at least one of) the SELECT privilege(s) on TABLE t for this operation."
        })
      )
      const { exit, logs } = yield* checkAgainst(fe)
      assert.isTrue(Exit.isSuccess(exit), String(exit))
      assert.isTrue(logs.some((l) => l.startsWith("WARN") && l.includes("lacks SELECT")), logs.join("\n"))
    }))

  it.scoped("a 200 whose body names a missing table, or says it failed: never taken for success", () =>
    Effect.gen(function*() {
      const missing = failure(
        (yield* checkAgainst(
          yield* answering(200, JSON.stringify({ status: "FAILED", msg: "Table [t] does not exists" }))
        ))
          .exit
      )
      assert.strictEqual(missing.reason, "NoSuchTable")
      const failed = failure(
        (yield* checkAgainst(yield* answering(200, JSON.stringify({ status: "FAILED", msg: "internal error" })))).exit
      )
      assert.strictEqual(failed.reason, "Unexpected")
      assert.include(failed.detail, "internal error")
    }))
})

describe("server versions", () => {
  const client = LoadClient.fromPartial({
    loadBatch: () => Effect.die("no load expected"),
    getLoadState: () => Effect.die("no label state expected")
  })
  const check = (extra: Partial<StarRocksConfig.Options>, semantic?: "at-least-once" | "exactly-once") =>
    StarRocksSink.startupCheck({ semantic }).pipe(
      Effect.provideService(StarRocksConfig.StarRocksConfig, configFor("127.0.0.1:1", extra)),
      Effect.provideService(LoadClient.LoadClient, client),
      Effect.exit
    )

  it.effect("each setting below its version: UnsupportedByServerError naming setting, version and requirement", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<
        readonly [Partial<StarRocksConfig.Options>, "at-least-once" | "exactly-once", string, string]
      > = [
        [
          { serverVersion: "3.0.5", properties: { partial_update_mode: "column" } },
          "at-least-once",
          "sink.properties.partial_update_mode",
          "3.1.0"
        ],
        [
          { serverVersion: "3.2.6", properties: { compression: "gzip" } },
          "at-least-once",
          "sink.properties.compression",
          "3.2.7"
        ],
        [
          {
            serverVersion: "3.3.9",
            properties: { enable_merge_commit: "true", merge_commit_interval_ms: "1000", merge_commit_parallel: "2" }
          },
          "at-least-once",
          "sink.properties.enable_merge_commit",
          "3.4.0"
        ],
        [
          { serverVersion: "2.4.1", properties: { merge_condition: "name" } },
          "at-least-once",
          "sink.properties.merge_condition",
          "2.5.0"
        ],
        [
          { serverVersion: "2.3.0", useTransactionStreamLoad: true },
          "at-least-once",
          "sink.at-least-once.use-transaction-stream-load",
          "2.4.0"
        ],
        [{ serverVersion: "2.3.0", version: "V2" }, "exactly-once", "sink.version=V2", "2.4.0"],
        [
          { serverVersion: "3.5.3", properties: { prepared_timeout: "600" } },
          "exactly-once",
          "sink.properties.prepared_timeout",
          "3.5.4"
        ]
      ]
      for (const [extra, semantic, setting, requires] of cases) {
        const e = failure(yield* check(extra, semantic))
        assert.instanceOf(e, StarRocksError.UnsupportedByServerError)
        assert.strictEqual(e.setting, setting)
        assert.strictEqual(e.requires, requires)
        assert.strictEqual(e.serverVersion, extra.serverVersion)
        assert.include(e.message, `not supported by StarRocks ${extra.serverVersion}`)
      }
    }))

  it.effect("at or above the version, or with no version known: no error", () =>
    Effect.gen(function*() {
      for (
        const extra of [
          { serverVersion: "3.1.0", properties: { partial_update_mode: "column" } },
          { serverVersion: "3.2.7", properties: { compression: "gzip" } },
          {
            serverVersion: "3.4",
            properties: { enable_merge_commit: "true", merge_commit_interval_ms: "1000", merge_commit_parallel: "2" }
          },
          { properties: { compression: "gzip", partial_update_mode: "column" } }
        ]
      ) {
        const exit = yield* check(extra, "at-least-once")
        assert.isTrue(Exit.isSuccess(exit), `${JSON.stringify(extra)}: ${String(exit)}`)
      }
    }))

  it.scoped("exactly-once with sink.version AUTO and a server older than 2.4: the label path, no probe, no error", () =>
    Effect.gen(function*() {
      const emu = yield* emulator()
      const spoolDirectory = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "startup-v1-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      const barrier = yield* Checkpoint.barrier(2)
      const exit = yield* Stream.run(
        Stream.concat(Stream.fromIterable(rows), Stream.make(barrier)),
        StarRocksSink.exactlyOnce(Row, { position: Schema.Number, spoolDirectory })
      ).pipe(
        Effect.provide(StarRocksSink.layer(configFor(emu.fe, { semantic: "exactly-once", serverVersion: "2.3.0" }))),
        Effect.provide(Checkpointer.layerMemoryForTests),
        Effect.exit
      )
      assert.isTrue(Exit.isSuccess(exit), String(exit))
      assert.strictEqual((yield* emu.rows("db", "t")).length, 2)
      const paths = (yield* emu.requests).map((r) => r.path)
      assert.isFalse(paths.some((p) => p.startsWith("/api/transaction/")), paths.join(", "))
      assert.isTrue(paths.some((p) => p.endsWith("/_stream_load")))
    }))

  it.scoped("the sink refuses at start, before any request, a table option its server lacks", () =>
    Effect.gen(function*() {
      const emu = yield* emulator()
      const exit = yield* Stream.run(
        Stream.fromIterable(rows),
        StarRocksSink.make(Row, { partialUpdateMode: "column", primaryKey: ["id"] })
      ).pipe(Effect.provide(StarRocksSink.layer(configFor(emu.fe, { serverVersion: "3.0.0" }))), Effect.exit)
      const e = failure(exit)
      assert.strictEqual(e._tag, "UnsupportedByServerError")
      assert.strictEqual(e.setting, "partialUpdateMode")
      assert.strictEqual(e.table, "db.t")
      assert.deepStrictEqual(yield* loads(emu), [])
    }))
})

describe.runIf(requireMariaDb())("server versions over jdbc-url (MariaDB has no current_version())", () => {
  const withMariaDb = Effect.gen(function*() {
    const storage = yield* MysqlStorage.make("mysql://root@127.0.0.1:3306/test")
    const emu = yield* StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 1, storage })
    const table = `startup_${Date.now()}_${Math.floor(Math.random() * 1e6)}`
    yield* emu.createTable({ database: "test", table, model: "DUPLICATE", key: [], columns })
    const config = (extra: Partial<StarRocksConfig.Options>) =>
      StarRocksConfig.make({
        loadUrl: emu.fe,
        jdbcUrl: "jdbc:mysql://127.0.0.1:3306",
        database: "test",
        table,
        username: "root",
        password: Redacted.make(""),
        allowSmallBuffers: true,
        maxRows: 1000,
        ...extra
      })
    return { emu, table, config }
  })

  it.scoped("without the function the sink runs; sink.server-version then decides", () =>
    Effect.gen(function*() {
      const { config, emu, table } = yield* withMariaDb
      const ok = yield* runMake(config({ properties: { partial_update_mode: "column" } }), rows)
      assert.isTrue(Exit.isSuccess(ok), String(ok))
      assert.strictEqual((yield* emu.rows("test", table)).length, 2)
      const e = failure(
        yield* runMake(config({ serverVersion: "3.0.0", properties: { partial_update_mode: "column" } }), rows)
      )
      assert.strictEqual(e._tag, "UnsupportedByServerError")
      assert.strictEqual(e.serverVersion, "3.0.0")
    }), { timeout: 30_000 })
})
