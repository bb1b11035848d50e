/**
 * Liveness of the at-least-once sink (issue #9, "What to build" 3), on the TestClock with a LoadClient double: the
 * watchdog (`sink.watchdog.timeout-ms`) fails a sink whose loads never complete with a `StallError` naming the
 * table, how long and the rows waiting; a sink whose loads keep landing is never tripped; the
 * `secondsSinceLastLoad` gauge counts from the last landed load.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  Cause,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  Metric,
  Option,
  Redacted,
  Schema,
  Stream,
  TestClock
} from "effect"
import { LabelStore, LoadClient, SinkMetrics, StarRocksConfig, StarRocksSink } from "../src/index.js"
import { loaded } from "./loadResults.js"

const Row = Schema.Struct({ id: Schema.Number })

const config = (table: string, overrides: Partial<StarRocksConfig.Options> = {}) =>
  StarRocksConfig.make({
    loadUrl: "127.0.0.1:1",
    database: "db",
    table,
    username: "root",
    password: Redacted.make(""),
    maxRows: 2,
    maxBytes: 1_000_000,
    flushInterval: "10 minutes",
    allowSmallBuffers: true,
    ...overrides
  })

/** A client whose loads take `loadMs` on the clock (forever when undefined); labels in flight read as UNKNOWN. */
const client = (loadMs: number | undefined) =>
  LoadClient.fromPartial({
    loadBatch: (request) =>
      (loadMs === undefined ? Effect.never : Effect.sleep(Duration.millis(loadMs))).pipe(
        Effect.as(loaded(request, 2))
      ),
    getLoadState: () => Effect.succeed("UNKNOWN" as const)
  })

const layerWith = (c: StarRocksConfig.StarRocksConfig, loadMs: number | undefined) =>
  Layer.mergeAll(
    Layer.succeed(StarRocksConfig.StarRocksConfig, c),
    Layer.succeed(LoadClient.LoadClient, client(loadMs)),
    LabelStore.layerMemory
  )

/** Moves the TestClock on by `seconds`, one second at a time (so that every sleeper in between runs). */
const advance = (seconds: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < seconds; i++) yield* TestClock.adjust("1 second")
  })

const gauge = (table: string) =>
  Metric.value(SinkMetrics.secondsSinceLastLoad.pipe(Metric.tagged("table", table))).pipe(
    Effect.map((state) => state.value)
  )

const quiet = Logger.remove(Logger.defaultLogger)

describe("liveness of the at-least-once sink", () => {
  it.effect("a load that never completes trips the watchdog: StallError with the table, how long, the rows", () =>
    Effect.gen(function*() {
      const rows = [1, 2, 3].map((id) => ({ id }))
      const fiber = yield* Stream.fromIterable(rows).pipe(
        Stream.run(StarRocksSink.make(Row)),
        Effect.provide(layerWith(config("stalled", { watchdogTimeout: "10 seconds" }), undefined)),
        Effect.provide(quiet),
        Effect.fork
      )
      yield* advance(9)
      // before the timeout the sink waits for its loads
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      assert.strictEqual(yield* gauge("db.stalled"), 9)
      yield* advance(2)
      const exit = Option.getOrThrow(yield* Fiber.poll(fiber))
      assert.isTrue(Exit.isFailure(exit), String(exit))
      const error = Option.getOrThrow(Cause.failureOption((exit as Exit.Failure<unknown, any>).cause)) as any
      assert.strictEqual(error._tag, "StallError")
      assert.strictEqual(error.timeoutMs, 10_000)
      assert.strictEqual(error.tables.length, 1)
      assert.strictEqual(error.tables[0].table, "db.stalled")
      // both batches (2 rows sealed by max-rows, 1 at the stream's end) were sealed at 0 and never landed
      assert.strictEqual(error.tables[0].rowsWaiting, 3)
      assert.isAtLeast(error.tables[0].stalledMs, 10_000)
      assert.isBelow(error.tables[0].stalledMs, 11_000)
      assert.match(error.message, /db\.stalled: 3 rows waiting/)
      // the loads in flight were stopped and settled (UNKNOWN: not landed): nothing landed
      assert.strictEqual(error.landed["db.stalled"].upToRow, 0)
      assert.strictEqual(error.landed["db.stalled"].labels.failed.length, 2)
    }))

  it.effect("a building batch counts once its flush interval has passed", () =>
    Effect.gen(function*() {
      // the first batch lands; the stream then hangs with one row building, whose interval seal is never loaded
      const stream = Stream.concat(
        Stream.fromIterable([{ id: 1 }, { id: 2 }, { id: 3 }]),
        Stream.never
      )
      let loads = 0
      const c = LoadClient.fromPartial({
        loadBatch: (request) => (loads++ === 0 ? Effect.void : Effect.never).pipe(Effect.as(loaded(request, 2))),
        getLoadState: () => Effect.succeed("UNKNOWN" as const)
      })
      const fiber = yield* stream.pipe(
        Stream.run(StarRocksSink.make(Row)),
        Effect.provide(Layer.mergeAll(
          Layer.succeed(
            StarRocksConfig.StarRocksConfig,
            config("building", { watchdogTimeout: "10 seconds", flushInterval: "30 seconds" })
          ),
          Layer.succeed(LoadClient.LoadClient, c),
          LabelStore.layerMemory
        )),
        Effect.provide(quiet),
        Effect.fork
      )
      // the row building since 0 is due at 30 s (not waiting before): no stall at 35 s
      yield* advance(35)
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      // sealed at 30 s, its load never completes: stalled at 40 s, while the upstream itself waits
      yield* advance(6)
      const exit = Option.getOrThrow(yield* Fiber.poll(fiber))
      const error = Option.getOrThrow(Cause.failureOption((exit as Exit.Failure<unknown, any>).cause)) as any
      assert.strictEqual(error._tag, "StallError")
      assert.deepStrictEqual(error.tables.map((t: any) => [t.table, t.rowsWaiting]), [["db.building", 1]])
      assert.isAtLeast(error.tables[0].stalledMs, 10_000)
      // every row before the stalled one landed
      assert.strictEqual(error.landed["db.building"].upToRow, 2)
    }))

  it.effect("a sink whose loads keep landing is never tripped, and the gauge counts from the last load", () =>
    Effect.gen(function*() {
      // a row a second for 40 s, batches of 2, each load taking 3 s: no load is ever 10 s away from the last
      const rows = Stream.range(1, 40).pipe(
        Stream.tap(() => Effect.sleep("1 second")),
        Stream.map((id) => ({ id }))
      )
      const stream = Stream.concat(rows, Stream.fromEffect(Effect.sleep("5 seconds")).pipe(Stream.drain))
      const fiber = yield* stream.pipe(
        Stream.run(StarRocksSink.make(Row)),
        Effect.provide(layerWith(config("live", { watchdogTimeout: "10 seconds" }), 3_000)),
        Effect.provide(quiet),
        Effect.fork
      )
      yield* advance(40)
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      // the last load (rows 39, 40, sealed at 40 s) lands at 43 s: at 45 s the gauge says 2
      yield* advance(5)
      assert.strictEqual(yield* gauge("db.live"), 2)
      yield* advance(5)
      const summary = yield* Fiber.join(fiber)
      assert.strictEqual(summary.rows, 40)
      assert.strictEqual(summary.loads, 20)
    }))

  it("sink.watchdog.timeout-ms: off by default, -1 is off, and StarRocksSink.exactlyOnce refuses it", () => {
    const base = {
      "load-url": "127.0.0.1:1",
      "database-name": "db",
      "table-name": "t",
      username: "root",
      password: ""
    }
    const run = (record: Record<string, string>) =>
      Effect.runSync(StarRocksConfig.fromProperties(record).pipe(Effect.provide(quiet)))
    assert.isTrue(Option.isNone(run(base).watchdogTimeout))
    assert.isTrue(Option.isNone(run({ ...base, "sink.watchdog.timeout-ms": "-1" }).watchdogTimeout))
    const set = run({ ...base, "sink.watchdog.timeout-ms": "5000" })
    assert.strictEqual(Duration.toMillis(Option.getOrThrow(set.watchdogTimeout)), 5_000)
    assert.deepStrictEqual(StarRocksConfig.useProblems(set, { semantic: "at-least-once" }), [])
    const refused = StarRocksConfig.useProblems(set, { semantic: "exactly-once" })
    assert.deepStrictEqual(refused.map((p) => p.key), ["sink.watchdog.timeout-ms"])
    const exit = Effect.runSyncExit(
      StarRocksConfig.fromProperties({ ...base, "sink.watchdog.timeout-ms": "50" }).pipe(Effect.provide(quiet))
    )
    assert.isTrue(Exit.isFailure(exit))
  })
})
