/**
 * Adaptive concurrency (`sink.adaptive-concurrency.*`, `make`'s `adaptiveConcurrency`) against the emulator over
 * real sockets: under injected "too many versions" answers the table's limit of loads in flight (the
 * `adaptiveConcurrencyLimit` gauge) falls and every row lands; a Primary Key table keeps one load in flight and its
 * final state equals a reference model's after upserts and deletes; a table's own merge commit is refused by the
 * exactly-once sink; the options are checked.
 *
 * The gauge is read by the test's LoadClient at the start of each load (it wraps the real client): the values the
 * limit took while the sink ran, without sampling on a timer. The emulator answers on real timers, so these tests
 * run live; they assert outcomes (rows, gauge values, errors), never durations. The controller's own arithmetic is
 * in adaptiveController.test.ts.
 */
import type { StarRocksEmulator as Emu } from "@effect-starrocks/testkit"
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Layer, Logger, LogLevel, Metric, Redacted, Schema, Stream } from "effect"
import {
  Change,
  Checkpoint,
  Checkpointer,
  ColumnType,
  LoadClient,
  SinkMetrics,
  StarRocksConfig,
  StarRocksSink
} from "../src/index.js"

let seq = 0

const Row = Schema.Struct({ id: ColumnType.Int, v: Schema.NullOr(Schema.String) })
type Row = typeof Row.Type

const start = (model: "DUPLICATE" | "PRIMARY") =>
  Effect.gen(function*() {
    const em = yield* StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 2 })
    const table = `adaptive${++seq}`
    yield* em.createTable({
      database: "db",
      table,
      model,
      key: model === "PRIMARY" ? ["id"] : [],
      columns: [{ name: "id", type: "INT" }, { name: "v", type: "VARCHAR(32)" }]
    }).pipe(Effect.orDie)
    return { em, table }
  })

const configOf = (em: Emu.StarRocksEmulator, table: string, options: Partial<StarRocksConfig.Options> = {}) =>
  StarRocksConfig.make({
    loadUrl: em.fe,
    database: "db",
    table,
    username: "root",
    password: Redacted.make(""),
    allowSmallBuffers: true,
    maxRows: 40,
    maxBytes: 1_000_000,
    ioThreadCount: 4,
    maxRetries: 10,
    retryInterval: 1,
    retryMaxDelay: 40,
    ...options
  })

const gaugeOf = (table: string) =>
  Metric.value(SinkMetrics.adaptiveConcurrencyLimit.pipe(Metric.tagged("table", SinkMetrics.tableTag("db", table))))

interface Watch {
  /** The table's gauge at the start of each load. */
  readonly limits: Array<number>
  /** The most loads of the table in flight at once. */
  maxInFlight: number
}

/** The sink's services with a LoadClient that reads the gauge and counts the loads in flight (the real one under). */
const servicesOf = (config: StarRocksConfig.StarRocksConfig, table: string, watch: Watch) =>
  Layer.merge(
    StarRocksSink.layer(config),
    Layer.scoped(
      LoadClient.LoadClient,
      Effect.map(LoadClient.make(config), (client) => {
        let inFlight = 0
        return {
          ...client,
          loadBatch: (request: LoadClient.LoadRequest) =>
            Effect.gen(function*() {
              watch.limits.push((yield* gaugeOf(table)).value)
              inFlight++
              watch.maxInFlight = Math.max(watch.maxInFlight, inFlight)
              return yield* client.loadBatch(request).pipe(Effect.ensuring(Effect.sync(() => inFlight--)))
            })
        }
      })
    )
  )

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

/**
 * A clock whose time stands still (its sleeps are real): under it every load's round-trip time is 0, so latency
 * cannot move the limit and only the back pressure the client reports can lower it.
 */
const stillClock = (): Clock.Clock => {
  const real = Clock.make()
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => 0,
    currentTimeMillis: Effect.succeed(0),
    unsafeCurrentTimeNanos: () => 0n,
    currentTimeNanos: Effect.succeed(0n),
    sleep: (duration) => real.sleep(duration)
  }
}

describe("adaptive concurrency against the emulator", () => {
  it.scopedLive(
    "under injected 'too many versions' the limit falls (the gauge says so) and every row lands",
    () =>
      Effect.gen(function*() {
        const { em, table } = yield* start("DUPLICATE")
        // a third of the loads' attempts are answered "too many versions" (each retried under its label)
        yield* em.addFault({
          node: "be",
          path: "_stream_load",
          probability: 0.35,
          action: { _tag: "too-many-versions" }
        })
        const config = configOf(em, table, { adaptiveConcurrency: true, adaptiveConcurrencyInitial: 4 })
        const watch: Watch = { limits: [], maxInFlight: 0 }
        const rows = Array.from({ length: 2_000 }, (_, id): Row => ({ id, v: `r${id}` }))
        const summary = yield* Stream.fromIterable(rows).pipe(
          Stream.rechunk(100),
          Stream.run(StarRocksSink.make(Row)),
          Effect.provide(servicesOf(config, table, watch)),
          Effect.withClock(stillClock())
        )
        // every row once
        assert.strictEqual(summary.rows, 2_000)
        const stored = (yield* em.rows("db", table)).map((r) => Number(r["id"])).sort((a, b) => a - b)
        assert.deepStrictEqual(stored, rows.map((r) => r.id))
        assert.isAbove(summary.retries, 0)
        // the limit started at 4 and backed off (on the answers alone: round-trip times are 0 under the still clock)
        assert.strictEqual(watch.limits[0], 4)
        assert.isBelow(Math.min(...watch.limits), 4, `limits seen: ${watch.limits.join(",")}`)
        assert.isAtMost(Math.max(...watch.limits), 4)
        assert.isAtMost(watch.maxInFlight, 4)
      }).pipe(quiet),
    60_000
  )

  it.scopedLive(
    "a Primary Key table keeps one load in flight (gauge 1); its final state equals the model's",
    () =>
      Effect.gen(function*() {
        const { em, table } = yield* start("PRIMARY")
        yield* em.addFault({
          node: "be",
          path: "_stream_load",
          probability: 0.3,
          action: { _tag: "too-many-versions" }
        })
        const config = configOf(em, table, { adaptiveConcurrency: true, adaptiveConcurrencyInitial: 4, maxRows: 23 })
        // upserts and deletes over 40 keys, and the reference model of what StarRocks keeps
        const model = new Map<number, string | null>()
        const changes: Array<Change.Change<Row>> = []
        let x = 7
        for (let i = 0; i < 1_500; i++) {
          x = (x * 1_103_515_245 + 12_345) % 2_147_483_648
          const id = x % 40
          if (x % 5 === 0) {
            changes.push(Change.delete<Row>({ id }))
            model.delete(id)
          } else {
            const v = i % 11 === 0 ? null : `v${i}`
            changes.push(Change.upsert<Row>({ id, v }))
            model.set(id, v)
          }
        }
        const watch: Watch = { limits: [], maxInFlight: 0 }
        const summary = yield* Stream.fromIterable(changes).pipe(
          Stream.rechunk(50),
          Stream.run(StarRocksSink.make(Row, { primaryKey: ["id"] })),
          Effect.provide(servicesOf(config, table, watch))
        )
        assert.isAbove(summary.retries, 0)
        const stored = (yield* em.rows("db", table))
          .map((r) => [Number(r["id"]), r["v"] as string | null] as const)
          .sort((a, b) => a[0] - b[0])
        const expected = Array.from(model.entries()).sort((a, b) => a[0] - b[0])
        assert.deepStrictEqual(stored, expected)
        // ordered: one load in flight, and the gauge says 1 throughout
        assert.strictEqual(watch.maxInFlight, 1)
        assert.isAbove(watch.limits.length, 1)
        for (const limit of watch.limits) assert.strictEqual(limit, 1)
      }).pipe(quiet),
    60_000
  )

  it.scopedLive(
    "off by default: no gauge, the table loads up to sink.io.thread-count at once",
    () =>
      Effect.gen(function*() {
        const { em, table } = yield* start("DUPLICATE")
        yield* em.addFault({ node: "be", path: "_stream_load", times: 8, action: { _tag: "delay", ms: 150 } })
        const watch: Watch = { limits: [], maxInFlight: 0 }
        const rows = Array.from({ length: 320 }, (_, id): Row => ({ id, v: null }))
        const summary = yield* Stream.fromIterable(rows).pipe(
          Stream.run(StarRocksSink.make(Row)),
          Effect.provide(servicesOf(configOf(em, table), table, watch))
        )
        assert.strictEqual(summary.rows, 320)
        for (const limit of watch.limits) assert.strictEqual(limit, 0)
        assert.isAbove(watch.maxInFlight, 1)
        // and `make`'s own option turns it on over the config's default
        const { table: other } = yield* Effect.gen(function*() {
          const name = `adaptive${++seq}`
          yield* em.createTable({
            database: "db",
            table: name,
            model: "DUPLICATE",
            key: [],
            columns: [{ name: "id", type: "INT" }, { name: "v", type: "VARCHAR(32)" }]
          }).pipe(Effect.orDie)
          return { table: name }
        })
        const on: Watch = { limits: [], maxInFlight: 0 }
        yield* Stream.fromIterable(rows).pipe(
          Stream.run(StarRocksSink.make(Row, { adaptiveConcurrency: { initial: 2, max: 3 } })),
          Effect.provide(servicesOf(configOf(em, other), other, on))
        )
        assert.strictEqual(on.limits[0], 2)
        assert.isAtMost(on.maxInFlight, 3)
        for (const limit of on.limits) assert.isAtMost(limit, 3)
      }).pipe(quiet),
    60_000
  )
})

describe("adaptive concurrency: options", () => {
  const base = {
    loadUrl: "127.0.0.1:8030",
    database: "db",
    table: "t",
    username: "root",
    password: Redacted.make("")
  }

  it.effect("the Flink-style keys resolve to the config's adaptiveConcurrency", () =>
    Effect.gen(function*() {
      const config = yield* StarRocksConfig.fromProperties({
        "load-url": "127.0.0.1:8030",
        "database-name": "db",
        "table-name": "t",
        username: "root",
        password: "",
        "sink.io.thread-count": "8",
        "sink.adaptive-concurrency.enabled": "true",
        "sink.adaptive-concurrency.initial": "2",
        "sink.adaptive-concurrency.max": "6"
      })
      assert.deepStrictEqual(config.adaptiveConcurrency, { initial: 2, max: 6 })
      // the max defaults to sink.io.thread-count, the initial limit to 1
      const defaults = StarRocksConfig.make({ ...base, ioThreadCount: 5, adaptiveConcurrency: true })
      assert.deepStrictEqual(defaults.adaptiveConcurrency, { initial: 1, max: 5 })
      assert.isUndefined(StarRocksConfig.make(base).adaptiveConcurrency)
    }))

  it.effect("refuses a max above sink.io.thread-count, an initial above the max, and either without enabled", () =>
    Effect.gen(function*() {
      const keysOf = (options: Partial<StarRocksConfig.Options>) =>
        StarRocksConfig.makeEither({ ...base, ...options }).pipe((e) =>
          e._tag === "Left" ? e.left.problems.map((p) => p.key) : []
        )
      assert.deepStrictEqual(keysOf({ ioThreadCount: 4, adaptiveConcurrency: true, adaptiveConcurrencyMax: 8 }), [
        "adaptiveConcurrencyMax"
      ])
      assert.deepStrictEqual(
        keysOf({
          ioThreadCount: 4,
          adaptiveConcurrency: true,
          adaptiveConcurrencyInitial: 3,
          adaptiveConcurrencyMax: 2
        }),
        ["adaptiveConcurrencyInitial"]
      )
      assert.deepStrictEqual(keysOf({ adaptiveConcurrencyMax: 2 }), ["adaptiveConcurrencyMax"])
      const error = yield* Effect.flip(StarRocksConfig.fromProperties({
        "load-url": "127.0.0.1:8030",
        "database-name": "db",
        "table-name": "t",
        username: "root",
        password: "",
        "sink.adaptive-concurrency.initial": "2"
      }))
      assert.strictEqual(error.key, "sink.adaptive-concurrency.initial")
      assert.include(error.reason, "sink.adaptive-concurrency.enabled")
    }))

  it.effect("the exactly-once sink refuses it (each table loads one load at a time into its transaction)", () =>
    Effect.gen(function*() {
      const config = StarRocksConfig.make({ ...base, adaptiveConcurrency: true })
      const problems = StarRocksConfig.useProblems(config, { semantic: "exactly-once" })
      assert.deepStrictEqual(problems.map((p) => p.key), ["adaptiveConcurrency"])
      assert.include(problems[0]!.reason, "StarRocksSink.exactlyOnce")
      assert.lengthOf(StarRocksConfig.useProblems(config, { semantic: "at-least-once" }), 0)
    }))

  it.scopedLive("make's option: a max above sink.io.thread-count is a StarRocksConfigError before any load", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start("DUPLICATE")
      const exit = yield* Stream.make({ id: 1, v: "a" }).pipe(
        Stream.run(StarRocksSink.make(Row, { adaptiveConcurrency: { max: 9 } })),
        Effect.provide(StarRocksSink.layer(configOf(em, table))),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
      assert.strictEqual(error?._tag, "StarRocksConfigError")
      assert.strictEqual((error as StarRocksConfig.StarRocksConfigError).key, "adaptiveConcurrency.max")
      const loads = (yield* em.requests).filter((r) => r.path.includes("_stream_load"))
      assert.lengthOf(loads, 0)
    }).pipe(quiet))
})

describe("exactly-once: a table's own merge commit", () => {
  it.scopedLive("is refused with the sink-level check's typed error, naming the table, before any transaction", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start("DUPLICATE")
      const mergeCommit = StarRocksConfig.mergeCommit({ interval: 100, parallel: 1 })
      const exit = yield* Stream.make<Array<Row>>({ id: 1, v: "a" }).pipe(
        Checkpoint.withBarriers({ position: (r: Row) => r.id, everyRows: 1 }),
        Stream.run(StarRocksSink.exactlyOnce(Row, { position: Schema.Number, properties: mergeCommit })),
        Effect.provide(Layer.merge(StarRocksSink.layer(configOf(em, table)), Checkpointer.layerMemoryForTests)),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
      assert.strictEqual(error?._tag, "StarRocksConfigError")
      const problem = error as StarRocksConfig.StarRocksConfigError
      assert.strictEqual(problem.key, "properties.enable_merge_commit")
      assert.include(problem.reason, `table db.${table}`)
      assert.include(problem.reason, "cannot be exactly-once")
      // (the version probe, a begin without a label, is all that reached the server)
      const txns = (yield* em.requests).filter((r) =>
        r.path.includes("/api/transaction/") && r.headers["label"] !== undefined
      )
      assert.lengthOf(txns, 0)
      // the same table without merge commit loads exactly-once
      const ok = yield* Stream.make<Array<Row>>({ id: 1, v: "a" }).pipe(
        Checkpoint.withBarriers({ position: (r: Row) => r.id, everyRows: 1 }),
        Stream.run(StarRocksSink.exactlyOnce(Row, { position: Schema.Number })),
        Effect.provide(Layer.merge(StarRocksSink.layer(configOf(em, table)), Checkpointer.layerMemoryForTests)),
        Effect.exit
      )
      assert.isTrue(Exit.isSuccess(ok), String(ok))
      assert.lengthOf(yield* em.rows("db", table), 1)
    }).pipe(quiet))
})
