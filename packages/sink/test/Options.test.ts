/**
 * Every key `StarRocksConfig.fromProperties` accepts has an effect, or says that it has none (issue #9: "an accepted
 * option has an effect"). The table below has one row per accepted key (a test checks that it lists exactly
 * `StarRocksConfig.acceptedProperties`); each row runs a sink against the emulator with the key set and shows what
 * it changes (the requests, the rows stored, the error), is refused where it does not apply, or, for the Flink
 * connector's keys with no meaning here, is logged as a warning that says so.
 */
import type { StarRocksEmulator as Emu } from "@effect-starrocks/testkit"
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Logger, LogLevel, Metric, Ref, Schema, Stream } from "effect"
import * as Net from "node:net"
import { afterAll, beforeAll } from "vitest"
import { Checkpointer, ColumnType, SinkMetrics, StarRocksConfig, StarRocksSink } from "../src/index.js"
import type { Pki } from "./tlsFixture.js"
import { makePki } from "./tlsFixture.js"

class Emulator extends Context.Tag("test/Emulator")<Emulator, Emu.StarRocksEmulator>() {}

const EmulatorLive = Layer.scoped(Emulator, StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 1 }))

/** A TCP server that accepts and never answers (a silent FE, a silent MySQL port). */
const silentServer = Effect.acquireRelease(
  Effect.async<Net.Server>((resume) => {
    const sockets = new Set<Net.Socket>()
    const server = Net.createServer((s) => {
      sockets.add(s)
      s.on("error", () => {})
      s.on("close", () => sockets.delete(s))
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(Object.assign(server, { sockets }))))
  }),
  (server) =>
    Effect.async<void>((resume) => {
      for (const s of (server as Net.Server & { sockets: Set<Net.Socket> }).sockets) s.destroy()
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map((server) => `127.0.0.1:${(server.address() as Net.AddressInfo).port}`))

const Row = Schema.Struct({ id: ColumnType.Int, name: Schema.String, at: ColumnType.DateTime })
type Row = typeof Row.Type
const at = new Date("2024-01-02T03:04:05Z")
const threeRows: ReadonlyArray<Row> = [1, 2, 3].map((id) => ({ id, name: `n${id}`, at }))

interface Outcome {
  readonly exit: Exit.Exit<StarRocksSink.SinkSummary, StarRocksSink.SinkError>
  /** This table's requests (loads, transactions, label states). */
  readonly requests: ReadonlyArray<Emu.RequestLogEntry>
  readonly loads: ReadonlyArray<Emu.RequestLogEntry>
  readonly rows: ReadonlyArray<Record<string, unknown>>
  readonly ms: number
  readonly logs: ReadonlyArray<string>
  readonly table: string
}

let seq = 0

interface RunOptions {
  readonly rows?: ReadonlyArray<Row> | undefined
  readonly raw?: ReadonlyArray<string> | undefined
  readonly faults?: ReadonlyArray<Emu.Fault> | undefined
  /** Between the first row and the others (the stream waits for it). */
  readonly between?: ((table: string) => Effect.Effect<void, never, Emulator>) | undefined
}

/** Runs `make(Row)` (or `make(raw(...))`) into a new table, with the base properties and `props` over them. */
const outcomeOf = (props: Record<string, string | undefined>, options: RunOptions = {}) =>
  Effect.gen(function*() {
    const emulator = yield* Emulator
    const table = `opt_${++seq}`
    yield* emulator.createTable({
      database: "db",
      table,
      model: "DUPLICATE",
      key: [],
      columns: [{ name: "id", type: "INT" }, { name: "name", type: "VARCHAR(16)" }, { name: "at", type: "DATETIME" }]
    })
    yield* emulator.clearFaults
    for (const f of options.faults ?? []) yield* emulator.addFault(f)
    const record: Record<string, string> = {}
    const all: Record<string, string | undefined> = {
      "load-url": emulator.fe.join(";"),
      "database-name": "db",
      "table-name": table,
      username: "root",
      password: "",
      "sink.buffer-flush.allow-small": "true",
      "sink.buffer-flush.max-rows": "1000",
      "sink.buffer-flush.max-bytes": "1000000",
      "sink.max-retries": "0",
      "sink.retry.interval-ms": "1",
      ...props
    }
    for (const [k, v] of Object.entries(all)) if (v !== undefined) record[k] = v
    const logs = yield* Ref.make<ReadonlyArray<string>>([])
    const logger = Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) => {
        const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
        Effect.runSync(Ref.update(logs, (xs) => [...xs, `${logLevel.label} ${text}`]))
      })
    )
    const started = Date.now()
    const rows = options.rows ?? threeRows
    const stream: Stream.Stream<any, never, Emulator> = options.raw !== undefined
      ? Stream.fromIterable(options.raw)
      : options.between !== undefined
      ? Stream.concat(
        Stream.make(rows[0]!),
        Stream.concat(Stream.fromEffect(options.between(table)).pipe(Stream.drain), Stream.fromIterable(rows.slice(1)))
      )
      : Stream.fromIterable(rows)
    const sink: StarRocksSink.Routing<any> | undefined = options.raw !== undefined
      ? StarRocksSink.raw({ format: "csv", columns: ["id", "name", "at"] })
      : undefined
    const exit = yield* StarRocksConfig.fromProperties(record).pipe(
      Effect.flatMap((config) =>
        Stream.run(stream, sink !== undefined ? StarRocksSink.make(sink) : StarRocksSink.make(Row)).pipe(
          Effect.provide(StarRocksSink.layer(config))
        )
      ),
      Effect.provide(logger),
      Logger.withMinimumLogLevel(LogLevel.Debug),
      Effect.exit
    )
    const ms = Date.now() - started
    yield* emulator.clearFaults
    const requests = (yield* emulator.requests).filter((r) =>
      r.path.includes(`/${table}/`) || r.headers["table"] === table ||
      (r.headers["label"] ?? "").includes(table)
    )
    return {
      exit: exit as Outcome["exit"],
      requests,
      loads: requests.filter((r) => r.path.includes("_stream_load") || r.path.includes("/transaction/load")),
      rows: yield* emulator.rows("db", table).pipe(Effect.orElseSucceed(() => [])),
      ms,
      logs: yield* Ref.get(logs),
      table
    } satisfies Outcome
  })

/**
 * Runs `StarRocksSink.recover` with the base properties and `props`, over a last checkpoint 1000 s old that
 * prepared `prepared` (default: a label StarRocks does not know).
 */
const recoverOutcome = (
  props: Record<string, string>,
  options: { readonly prepared?: ReadonlyArray<string> } = {}
) =>
  Effect.gen(function*() {
    const emulator = yield* Emulator
    const table = `opt_${++seq}`
    const tag = `db.${table}`
    const checkpointer = yield* Checkpointer.makeMemoryForTests
    yield* checkpointer.save(
      new Checkpointer.CheckpointRecord({
        key: `effect-sr-${tag}-0`,
        id: 1,
        position: 7,
        prepared: { [tag]: [...(options.prepared ?? [`effect-sr-${table}-0-0`])] },
        nextLabelId: { [tag]: 1 },
        createdAt: Date.now() - 1_000_000
      })
    )
    const logs = yield* Ref.make<ReadonlyArray<string>>([])
    const logger = Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) => {
        const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
        Effect.runSync(Ref.update(logs, (xs) => [...xs, `${logLevel.label} ${text}`]))
      })
    )
    const exit = yield* StarRocksConfig.fromProperties({
      "load-url": emulator.fe.join(";"),
      "database-name": "db",
      "table-name": table,
      username: "root",
      password: "",
      "sink.max-retries": "0",
      ...props
    }).pipe(
      Effect.flatMap((config) =>
        StarRocksSink.recover({ position: Schema.Number }).pipe(
          Effect.provide(
            Layer.merge(StarRocksSink.layer(config), Layer.succeed(Checkpointer.Checkpointer, checkpointer))
          )
        )
      ),
      Effect.provide(logger),
      Effect.exit
    )
    return { exit, logs: yield* Ref.get(logs) }
  })

const errorOf = (o: { readonly exit: Exit.Exit<unknown, unknown> }): Record<string, any> => {
  assert.isTrue(Exit.isFailure(o.exit), `expected a failure, got ${JSON.stringify(o.exit)}`)
  if (Exit.isSuccess(o.exit) || o.exit.cause._tag !== "Fail") {
    assert.fail(`no typed error: ${String(o.exit)}`)
  }
  return (o.exit.cause as { error: Record<string, any> }).error
}

const summaryOf = (o: Outcome): StarRocksSink.SinkSummary => {
  if (Exit.isFailure(o.exit)) assert.fail(`expected success, got ${String(o.exit.cause)}`)
  return (o.exit as Exit.Success<StarRocksSink.SinkSummary, never>).value
}

/** Refused at start by the sink it does not apply to, naming the key as written, before any request. */
const refusedAt = (o: Outcome, key: string, reason: string) => {
  const e = errorOf(o)
  assert.strictEqual(e._tag, "StarRocksConfigError")
  assert.strictEqual(e.key, key)
  assert.include(e.reason, reason)
  assert.strictEqual(o.requests.length, 0)
}

/** Waits (live) until this table has had a load: what only a flush by the interval can cause mid-stream. */
const untilLoaded = (table: string) =>
  Effect.gen(function*() {
    const emulator = yield* Emulator
    for (let i = 0; i < 500; i++) {
      const loads = (yield* emulator.requests).filter((r) => r.path.includes(`/${table}/_stream_load`))
      if (loads.length > 0) return
      yield* Effect.sleep("10 millis")
    }
  })

const rawLine = "4,raw,2024-01-02 03:04:05"

// --- TLS: the sink.tls.* rows run against an emulator served over https with a throw-away CA
let pki: Pki | undefined
beforeAll(() => {
  pki = makePki()
}, 60_000)
afterAll(() => pki?.remove())

/** `outcomeOf` against an https emulator (`beTls: false`: its https FE redirects to plain-http BEs). */
const overTls = (props: Record<string, string | undefined>, beTls = true) =>
  Effect.gen(function*() {
    const emu = yield* StarRocksEmulator.make({
      users: { root: "" },
      tls: { cert: pki!.serverCert, key: pki!.serverKey },
      beTls
    })
    return yield* outcomeOf({ "load-url": `https://${emu.fe[0]}`, ...props }).pipe(
      Effect.provideService(Emulator, emu)
    )
  }).pipe(Effect.scoped)

/** The startup check's request did not verify: an `Unreachable` FE with the TLS code, before any load. */
const verificationFailed = (o: Outcome, codes: ReadonlyArray<string>) => {
  const e = errorOf(o)
  assert.strictEqual(e._tag, "StartupCheckError")
  assert.strictEqual(e.reason, "Unreachable")
  assert.include(codes, e.code)
  assert.strictEqual(o.rows.length, 0)
}
const untrusted = ["SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"]

const cases: Record<string, Effect.Effect<void, unknown, Emulator>> = {
  // --- connection
  "connector": Effect.gen(function*() {
    assert.strictEqual(summaryOf(yield* outcomeOf({ connector: "starrocks" })).rows, 3)
    refusedAtConfig(yield* outcomeOf({ connector: "doris" }), "connector")
  }),
  "load-url": Effect.gen(function*() {
    const e = errorOf(yield* outcomeOf({ "load-url": "127.0.0.1:1" }))
    assert.strictEqual(e._tag, "StartupCheckError")
    assert.strictEqual(e.reason, "Unreachable")
    assert.include(e.fe, "127.0.0.1:1")
  }),
  "jdbc-url": Effect.gen(function*() {
    const e = errorOf(yield* outcomeOf({ "jdbc-url": "jdbc:mysql://127.0.0.1:1", "sink.connect.timeout-ms": "1000" }))
    assert.strictEqual(e._tag, "TableSchemaError")
    assert.include(e.reason, "information_schema")
    refusedAt(yield* outcomeOf({ "jdbc-url": "jdbc:mysql://127.0.0.1:1" }, { raw: [rawLine] }), "jdbc-url", "raw")
  }),
  "database-name": Effect.gen(function*() {
    const o = yield* outcomeOf({ "database-name": "elsewhere" })
    assert.strictEqual(errorOf(o).reason, "NoSuchDatabase")
    assert.isTrue(o.requests.some((r) => r.path === `/api/elsewhere/${o.table}/_schema`))
  }),
  "table-name": Effect.gen(function*() {
    const o = yield* outcomeOf({})
    assert.strictEqual(summaryOf(o).rows, 3)
    assert.strictEqual(o.rows.length, 3)
    assert.isTrue(o.loads.every((r) => r.path.startsWith(`/api/db/${o.table}/_stream_load`)))
  }),
  "username": Effect.gen(function*() {
    assert.strictEqual(errorOf(yield* outcomeOf({ username: "nobody" })).reason, "Unauthorized")
  }),
  "password": Effect.gen(function*() {
    assert.strictEqual(errorOf(yield* outcomeOf({ password: "wrong" })).reason, "Unauthorized")
  }),
  "be-host-map": Effect.gen(function*() {
    const emulator = yield* Emulator
    const e = errorOf(yield* outcomeOf({ "be-host-map": `${emulator.bes[0]}=127.0.0.1:1` }))
    assert.strictEqual(e._tag, "TransportError")
    assert.include(e.url, "127.0.0.1:1")
  }),
  "sink.direct-be": Effect.gen(function*() {
    const emulator = yield* Emulator
    const o = yield* outcomeOf({ "sink.direct-be": emulator.bes[0]! })
    assert.strictEqual(summaryOf(o).rows, 3)
    assert.isAbove(o.loads.length, 0)
    assert.isTrue(o.loads.every((r) => r.node.startsWith("be")))
    const via = yield* outcomeOf({})
    assert.isTrue(via.loads.some((r) => r.node.startsWith("fe")))
  }),
  "sink.max-redirects": Effect.gen(function*() {
    const e = errorOf(yield* outcomeOf({ "sink.max-redirects": "0" }))
    assert.strictEqual(e._tag, "RedirectError")
  }),
  "sink.connect.timeout-ms": Effect.gen(function*() {
    // the MySQL reader's connect timeout (a silent port): given, it decides how long the sink waits
    const silent = yield* silentServer
    const o = yield* outcomeOf({ "jdbc-url": `jdbc:mysql://${silent}`, "sink.connect.timeout-ms": "300" })
    assert.strictEqual(errorOf(o)._tag, "TableSchemaError")
    assert.isBelow(o.ms, 5_000)
  }).pipe(Effect.scoped),
  "sink.socket.timeout-ms": Effect.gen(function*() {
    const o = yield* outcomeOf({ "sink.socket.timeout-ms": "300" }, {
      faults: [{ path: "_stream_load", node: "be", action: { _tag: "delay", ms: 4_000 } }]
    })
    const e = errorOf(o)
    assert.strictEqual(e._tag, "TransportError")
    assert.isBelow(o.ms, 3_000)
  }),
  "sink.wait-for-continue.timeout-ms": Effect.gen(function*() {
    const silent = yield* silentServer
    // the startup check would wait for the silent FE first (its own deadline): off here, the load waits
    const o = yield* outcomeOf({
      "load-url": silent,
      "sink.wait-for-continue.timeout-ms": "3000",
      "sink.startup-check": "false"
    })
    const e = errorOf(o)
    assert.strictEqual(e._tag, "TransportError")
    assert.strictEqual(e.phase, "continue")
    assert.include(e.reason, "3000 ms")
  }).pipe(Effect.scoped),
  "sink.sanitize-error-log": Effect.gen(function*() {
    const long = [{ id: 1, name: "seventeen-bytes-x", at }]
    const plain = errorOf(yield* outcomeOf({}, { rows: long }))
    assert.strictEqual(plain._tag, "StreamLoadError")
    assert.include(plain.errorLog, "seventeen-bytes-x")
    const sanitized = errorOf(yield* outcomeOf({ "sink.sanitize-error-log": "true" }, { rows: long }))
    assert.strictEqual(sanitized._tag, "StreamLoadError")
    assert.isString(sanitized.errorLog)
    assert.notInclude(sanitized.errorLog, "seventeen-bytes-x")
  }),
  // --- loading
  "sink.semantic": Effect.gen(function*() {
    refusedAt(yield* outcomeOf({ "sink.semantic": "exactly-once" }), "sink.semantic", "StarRocksSink.exactlyOnce")
    assert.strictEqual(summaryOf(yield* outcomeOf({ "sink.semantic": "at-least-once" })).rows, 3)
  }),
  "sink.version": Effect.gen(function*() {
    refusedAt(yield* outcomeOf({ "sink.version": "V2" }), "sink.version", "exactly-once protocol")
    assert.strictEqual(summaryOf(yield* outcomeOf({ "sink.version": "AUTO" })).rows, 3)
  }),
  "sink.label-prefix": Effect.gen(function*() {
    const o = yield* outcomeOf({ "sink.label-prefix": "my_prefix" })
    assert.isAbove(o.loads.length, 0)
    for (const r of o.loads) assert.match(r.headers["label"] ?? "", /^my_prefix-/)
  }),
  "sink.properties.format": Effect.gen(function*() {
    const o = yield* outcomeOf({ "sink.properties.format": "json" })
    assert.strictEqual(o.rows.length, 3)
    for (const r of o.loads) assert.strictEqual(r.headers["format"], "json")
  }),
  "sink.properties.compression": Effect.gen(function*() {
    const o = yield* outcomeOf({ "sink.properties.compression": "ZSTD" })
    assert.strictEqual(o.rows.length, 3)
    assert.isAbove(o.loads.length, 0)
    for (const r of o.loads) {
      assert.strictEqual(r.headers["compression"], "zstd")
      assert.strictEqual(r.headers["format"], "zstd")
    }
    const s = summaryOf(o)
    assert.isBelow(s.sentBytes, s.bytes)
    refusedAtConfig(yield* outcomeOf({ "sink.properties.compression": "bzip2" }), "sink.properties.compression")
  }),
  "sink.properties.*": Effect.gen(function*() {
    const o = yield* outcomeOf({ "sink.properties.timeout": "77" })
    assert.isAbove(o.loads.length, 0)
    for (const r of o.loads) assert.strictEqual(r.headers["timeout"], "77")
  }),
  "sink.timezone": Effect.gen(function*() {
    const utc = yield* outcomeOf({})
    const shanghai = yield* outcomeOf({ "sink.timezone": "Asia/Shanghai" })
    assert.include(String(utc.rows[0]!.at), "03:04:05")
    assert.include(String(shanghai.rows[0]!.at), "11:04:05")
    refusedAt(yield* outcomeOf({ "sink.timezone": "Asia/Shanghai" }, { raw: [rawLine] }), "sink.timezone", "raw")
  }),
  "sink.server-version": Effect.gen(function*() {
    const current = yield* outcomeOf({})
    const old = yield* outcomeOf({ "sink.server-version": "2.5.0" })
    assert.isTrue(current.loads.every((r) => r.headers["enclose"] === "\""))
    assert.isTrue(old.loads.length > 0 && old.loads.every((r) => r.headers["enclose"] === undefined))
    refusedAt(yield* outcomeOf({ "sink.server-version": "2.5.0" }, { raw: [rawLine] }), "sink.server-version", "raw")
  }),
  "sink.csv.json-fallback": Effect.gen(function*() {
    const nullText = [{ id: 1, name: "\\N", at }]
    const fallback = yield* outcomeOf({}, { rows: nullText })
    assert.strictEqual(fallback.rows[0]!.name, "\\N")
    assert.isTrue(fallback.loads.some((r) => r.headers["format"] === "json"))
    const e = errorOf(yield* outcomeOf({ "sink.csv.json-fallback": "false" }, { rows: nullText }))
    assert.strictEqual(e._tag, "RowEncodeError")
    refusedAt(
      yield* outcomeOf({ "sink.csv.json-fallback": "false" }, { raw: [rawLine] }),
      "sink.csv.json-fallback",
      "raw"
    )
  }),
  "sink.at-least-once.use-transaction-stream-load": Effect.gen(function*() {
    const o = yield* outcomeOf({ "sink.at-least-once.use-transaction-stream-load": "true" })
    assert.strictEqual(o.rows.length, 3)
    assert.isTrue(o.requests.some((r) => r.path.startsWith("/api/transaction/begin")))
    assert.isTrue(o.loads.every((r) => r.path.startsWith("/api/transaction/load")))
  }),
  "sink.label-state.timeout-ms": Effect.gen(function*() {
    // the load's commit is in doubt ("Transaction status unknown"), and get_load_state does not answer in time
    // (each read outlives the socket timeout): this deadline decides when the sink gives up on the label
    const faults: ReadonlyArray<Emu.Fault> = [
      { path: "_stream_load", node: "be", times: 1, action: { _tag: "commit-unknown" } },
      { path: "get_load_state", action: { _tag: "delay", ms: 3_000 } }
    ]
    const o = yield* outcomeOf({ "sink.label-state.timeout-ms": "400", "sink.socket.timeout-ms": "200" }, { faults })
    const e = errorOf(o)
    assert.strictEqual(e._tag, "LabelStateTimeout", JSON.stringify(e))
    assert.isAtLeast(e.waitedMs, 400)
    assert.isBelow(e.waitedMs, 2_500)
  }),
  "sink.startup-check": Effect.gen(function*() {
    // on (the default): a missing table is found by one _schema request, before any load
    const checked = yield* outcomeOf({ "table-name": "missing_table" })
    const e = errorOf(checked)
    assert.strictEqual(e._tag, "StartupCheckError")
    assert.strictEqual(e.reason, "NoSuchTable")
    assert.strictEqual(e.table, "missing_table")
    const emulator = yield* Emulator
    const requests = (yield* emulator.requests).filter((r) => r.path.includes("/missing_table/"))
    assert.isTrue(requests.some((r) => r.path === "/api/db/missing_table/_schema"))
    assert.isFalse(requests.some((r) => r.path.includes("_stream_load")))
    // off: no _schema request; the first load finds the table missing
    const unchecked = yield* outcomeOf({ "table-name": "missing_table2", "sink.startup-check": "false" })
    assert.strictEqual(errorOf(unchecked)._tag, "StreamLoadError")
    const after = (yield* emulator.requests).filter((r) => r.path.includes("/missing_table2/"))
    assert.isFalse(after.some((r) => r.path.includes("_schema")))
    assert.isTrue(after.some((r) => r.path.includes("_stream_load")))
  }),
  "sink.watchdog.timeout-ms": Effect.gen(function*() {
    // every load hangs for 5 s: without a watchdog the sink waits it out; with one it fails at the timeout
    const faults: ReadonlyArray<Emu.Fault> = [{ path: "_stream_load", action: { _tag: "delay", ms: 5_000 } }]
    const o = yield* outcomeOf({ "sink.watchdog.timeout-ms": "300" }, { faults })
    const e = errorOf(o)
    assert.strictEqual(e._tag, "StallError", JSON.stringify(e))
    assert.strictEqual(e.tables[0].table, `db.${o.table}`)
    assert.strictEqual(e.tables[0].rowsWaiting, 3)
    assert.isBelow(o.ms, 4_000)
  }),
  // --- exactly-once recovery (see also Restart.test.ts)
  "sink.exactly-once.skip-lost-checkpoint": Effect.gen(function*() {
    refusedAt(
      yield* outcomeOf({ "sink.exactly-once.skip-lost-checkpoint": "true" }),
      "sink.exactly-once.skip-lost-checkpoint",
      "exactly-once recovery"
    )
    // the last checkpoint prepared a label StarRocks does not know: lost; skipped only with the key
    const lost = yield* recoverOutcome({})
    assert.strictEqual(errorOf(lost).reason, "PreparedLost")
    const skipped = yield* recoverOutcome({ "sink.exactly-once.skip-lost-checkpoint": "true" })
    assert.isTrue(Exit.isSuccess(skipped.exit), String(skipped.exit))
    assert.isTrue(skipped.logs.some((l) => l.startsWith("WARN") && l.includes("skipping the lost transactions")))
  }),
  "sink.label-keep-max-second": Effect.gen(function*() {
    refusedAt(
      yield* outcomeOf({ "sink.label-keep-max-second": "600" }),
      "sink.label-keep-max-second",
      "exactly-once recovery"
    )
    // the last checkpoint is 1000 s old: near a retention of 1200 s, far from StarRocks' default 3 days
    const retention = (o: { readonly logs: ReadonlyArray<string> }) =>
      o.logs.filter((l) => l.startsWith("WARN") && l.includes("label retention"))
    assert.deepStrictEqual(retention(yield* recoverOutcome({}, { prepared: [] })), [])
    const near = retention(yield* recoverOutcome({ "sink.label-keep-max-second": "1200" }, { prepared: [] }))
    assert.strictEqual(near.length, 1)
    assert.include(near[0], "sink.label-keep-max-second (1200 s)")
  }),
  // --- buffering and concurrency
  "sink.buffer-flush.max-bytes": Effect.gen(function*() {
    assert.strictEqual(summaryOf(yield* outcomeOf({})).loads, 1)
    assert.isAbove(summaryOf(yield* outcomeOf({ "sink.buffer-flush.max-bytes": "40" })).loads, 1)
  }),
  "sink.buffer-flush.max-rows": Effect.gen(function*() {
    assert.strictEqual(summaryOf(yield* outcomeOf({ "sink.buffer-flush.max-rows": "1" })).loads, 3)
  }),
  "sink.buffer-flush.interval-ms": Effect.gen(function*() {
    // the stream waits after its first row until a load has been made: only the interval's flush makes one
    const o = yield* outcomeOf({ "sink.buffer-flush.interval-ms": "20" }, { between: untilLoaded })
    assert.strictEqual(summaryOf(o).loads, 2)
  }),
  "sink.buffer-flush.allow-small": Effect.gen(function*() {
    const o = yield* outcomeOf({ "sink.buffer-flush.allow-small": "false" })
    const e = errorOf(o)
    assert.strictEqual(e._tag, "StarRocksConfigError")
    assert.include(e.problems.map((p: { key: string }) => p.key), "sink.buffer-flush.max-rows")
  }),
  "sink.io.thread-count": Effect.gen(function*() {
    const delayed = (n: number): ReadonlyArray<Emu.Fault> => [
      { path: "_stream_load", node: "be", times: n, action: { _tag: "delay", ms: 400 } }
    ]
    const four = [1, 2, 3, 4].map((id) => ({ id, name: "x", at }))
    const serial = yield* outcomeOf({ "sink.io.thread-count": "1", "sink.buffer-flush.max-rows": "1" }, {
      rows: four,
      faults: delayed(4)
    })
    const parallel = yield* outcomeOf({ "sink.io.thread-count": "4", "sink.buffer-flush.max-rows": "1" }, {
      rows: four,
      faults: delayed(4)
    })
    assert.strictEqual(summaryOf(serial).loads, 4)
    assert.strictEqual(summaryOf(parallel).loads, 4)
    assert.isAtLeast(serial.ms, 1_500)
    assert.isBelow(parallel.ms, serial.ms)
  }),
  // --- adaptive concurrency (see also Adaptive.test.ts): the table's limit gauge, set from its first load
  "sink.adaptive-concurrency.enabled": Effect.gen(function*() {
    const on = yield* outcomeOf({ "sink.io.thread-count": "4", "sink.adaptive-concurrency.enabled": "true" })
    assert.strictEqual(summaryOf(on).rows, 3)
    assert.strictEqual(yield* adaptiveLimitOf(on), 1)
    const off = yield* outcomeOf({ "sink.io.thread-count": "4" })
    assert.strictEqual(summaryOf(off).rows, 3)
    assert.strictEqual(yield* adaptiveLimitOf(off), 0)
  }),
  "sink.adaptive-concurrency.initial": Effect.gen(function*() {
    const enabled = { "sink.io.thread-count": "4", "sink.adaptive-concurrency.enabled": "true" }
    const o = yield* outcomeOf({ ...enabled, "sink.adaptive-concurrency.initial": "3" })
    assert.strictEqual(summaryOf(o).rows, 3)
    assert.strictEqual(yield* adaptiveLimitOf(o), 3)
    refusedAtConfig(
      yield* outcomeOf({ "sink.adaptive-concurrency.initial": "3" }),
      "sink.adaptive-concurrency.initial"
    )
  }),
  "sink.adaptive-concurrency.max": Effect.gen(function*() {
    const enabled = { "sink.io.thread-count": "4", "sink.adaptive-concurrency.enabled": "true" }
    const o = yield* outcomeOf({
      ...enabled,
      "sink.adaptive-concurrency.initial": "2",
      "sink.adaptive-concurrency.max": "2"
    })
    assert.strictEqual(yield* adaptiveLimitOf(o), 2)
    refusedAtConfig(
      yield* outcomeOf({ ...enabled, "sink.adaptive-concurrency.initial": "3", "sink.adaptive-concurrency.max": "2" }),
      "sink.adaptive-concurrency.initial"
    )
    refusedAtConfig(
      yield* outcomeOf({ ...enabled, "sink.adaptive-concurrency.max": "5" }),
      "sink.adaptive-concurrency.max"
    )
  }),
  // --- retries
  "sink.max-retries": Effect.gen(function*() {
    const fault: ReadonlyArray<Emu.Fault> = [{
      path: "_stream_load",
      node: "be",
      times: 1,
      action: { _tag: "http-500" }
    }]
    assert.isTrue(Exit.isFailure((yield* outcomeOf({ "sink.max-retries": "0" }, { faults: fault })).exit))
    assert.strictEqual(summaryOf(yield* outcomeOf({ "sink.max-retries": "1" }, { faults: fault })).retries, 1)
  }),
  "sink.retry.interval-ms": Effect.gen(function*() {
    const fault: ReadonlyArray<Emu.Fault> = [{
      path: "_stream_load",
      node: "be",
      times: 1,
      action: { _tag: "http-500" }
    }]
    const slow = yield* outcomeOf({ "sink.max-retries": "1", "sink.retry.interval-ms": "500" }, { faults: fault })
    assert.strictEqual(summaryOf(slow).retries, 1)
    assert.isAtLeast(slow.ms, 400) // 500 ms, jittered by at most 20 %
  }),
  "sink.retry.max-delay-ms": Effect.gen(function*() {
    const faults: ReadonlyArray<Emu.Fault> = [{
      path: "_stream_load",
      node: "be",
      times: 3,
      action: { _tag: "http-500" }
    }]
    const base = { "sink.max-retries": "3", "sink.retry.interval-ms": "150" }
    const uncapped = yield* outcomeOf({ ...base, "sink.retry.max-delay-ms": "30000" }, { faults })
    const capped = yield* outcomeOf({ ...base, "sink.retry.max-delay-ms": "150" }, { faults })
    assert.strictEqual(summaryOf(uncapped).retries, 3)
    assert.strictEqual(summaryOf(capped).retries, 3)
    assert.isAtLeast(uncapped.ms, 840) // 150 + 300 + 600, each at least 80 %
    assert.isBelow(capped.ms, uncapped.ms)
  }),
  // --- TLS (see also Tls.test.ts)
  "sink.tls.ca-file": Effect.gen(function*() {
    assert.strictEqual(summaryOf(yield* overTls({ "sink.tls.ca-file": pki!.files.ca })).rows, 3)
    verificationFailed(yield* overTls({}), untrusted)
  }),
  "sink.tls.verify": Effect.gen(function*() {
    assert.strictEqual(summaryOf(yield* overTls({ "sink.tls.verify": "false" })).rows, 3)
    verificationFailed(yield* overTls({ "sink.tls.verify": "true" }), untrusted)
  }),
  "sink.tls.server-name": Effect.gen(function*() {
    const ca = pki!.files.ca
    assert.strictEqual(
      summaryOf(yield* overTls({ "sink.tls.ca-file": ca, "sink.tls.server-name": "starrocks.test" })).rows,
      3
    )
    const wrong = yield* overTls({ "sink.tls.ca-file": ca, "sink.tls.server-name": "elsewhere.test" })
    verificationFailed(wrong, ["ERR_TLS_CERT_ALTNAME_INVALID"])
  }),
  "sink.tls.cert-file": Effect.gen(function*() {
    // presented to a server that asks for it: Tls.test.ts (mutual TLS); here, the pair is read and used
    const both = { "sink.tls.ca-file": pki!.files.ca, "sink.tls.key-file": pki!.files.clientKey }
    assert.strictEqual(summaryOf(yield* overTls({ ...both, "sink.tls.cert-file": pki!.files.clientCert })).rows, 3)
    refusedAtConfig(yield* overTls({ "sink.tls.cert-file": pki!.files.clientCert }), "sink.tls.key-file")
  }),
  "sink.tls.key-file": Effect.gen(function*() {
    const cert = { "sink.tls.ca-file": pki!.files.ca, "sink.tls.cert-file": pki!.files.clientCert }
    assert.strictEqual(summaryOf(yield* overTls({ ...cert, "sink.tls.key-file": pki!.files.clientKey })).rows, 3)
    // a key file that is not PEM is refused without showing its text
    const o = yield* overTls({ ...cert, "sink.tls.key-file": pki!.files.ca + ".missing" })
    refusedAtConfig(o, "sink.tls.key-file")
  }),
  "sink.tls.allow-http-redirect": Effect.gen(function*() {
    const ca = { "sink.tls.ca-file": pki!.files.ca }
    const refused = errorOf(yield* overTls(ca, false))
    assert.strictEqual(refused._tag, "RedirectError")
    assert.include(refused.reason, "StarRocks BEs often serve plain http")
    assert.include(refused.reason, "sink.tls.allow-http-redirect")
    assert.strictEqual(summaryOf(yield* overTls({ ...ca, "sink.tls.allow-http-redirect": "true" }, false)).rows, 3)
  }),
  // --- the Flink connector's keys without a meaning here: a warning that says so
  ...Object.fromEntries(
    Object.keys(StarRocksConfig.ignoredProperties).map((key) => [
      key,
      Effect.gen(function*() {
        const o = yield* outcomeOf({ [key]: "1" })
        assert.strictEqual(summaryOf(o).rows, 3)
        const warning = o.logs.find((l) => l.startsWith("WARN") && l.includes(key))
        assert.isDefined(warning, `no warning names ${key}: ${o.logs.join("\n")}`)
        assert.include(warning, "no effect here")
      })
    ])
  )
}

/** The table's `adaptiveConcurrencyLimit` gauge after the run (0: never set). */
function adaptiveLimitOf(o: Outcome) {
  return Effect.map(
    Metric.value(
      SinkMetrics.adaptiveConcurrencyLimit.pipe(Metric.tagged("table", SinkMetrics.tableTag("db", o.table)))
    ),
    (state) => state.value
  )
}

/** A config refused by `fromProperties` itself, naming the key. */
function refusedAtConfig(o: Outcome, key: string) {
  const e = errorOf(o)
  assert.strictEqual(e._tag, "StarRocksConfigError")
  assert.strictEqual(e.key, key)
}

describe("every accepted key", () => {
  it("the table has one row per key fromProperties accepts", () => {
    assert.deepStrictEqual(Object.keys(cases).sort(), [...StarRocksConfig.acceptedProperties].sort())
  })

  layer(EmulatorLive, { excludeTestServices: true, timeout: "30 seconds" })((it) => {
    for (const key of StarRocksConfig.acceptedProperties) {
      it.effect(key, () => cases[key] ?? Effect.die(`no row for ${key}`), 30_000)
    }
  })
})
