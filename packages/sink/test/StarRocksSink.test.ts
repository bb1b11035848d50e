import { assert, describe, it } from "@effect/vitest"
import {
  Chunk,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Metric,
  Option,
  Redacted,
  Ref,
  Schema,
  Stream,
  TestClock
} from "effect"
import { LabelStore, LoadClient, SinkMetrics, StarRocksConfig, StarRocksError, StarRocksSink } from "../src/index.js"

const baseConfig = (overrides: Partial<StarRocksConfig.StarRocksConfig> = {}): StarRocksConfig.StarRocksConfig => ({
  loadUrl: ["127.0.0.1:1"],
  jdbcUrl: Option.none(),
  database: "db",
  table: "t",
  username: "root",
  password: Redacted.make("pw"),
  semantic: "at-least-once",
  version: "AUTO",
  labelPrefix: "test",
  format: "csv",
  maxBytes: 10_000,
  maxRows: 1_000_000,
  flushInterval: Duration.minutes(10),
  maxRetries: 0,
  retryInterval: Duration.millis(1),
  retryMaxDelay: Duration.millis(1),
  connectTimeout: Duration.seconds(1),
  socketTimeout: Option.none(),
  waitForContinueTimeout: Duration.seconds(1),
  ioThreadCount: 2,
  properties: {},
  timeZone: "UTC",
  beHostMap: new Map(),
  directBackends: [],
  maxRedirects: 5,
  sanitizeErrorLog: false,
  serverVersion: Option.none(),
  csvJsonFallback: true,
  labelStateTimeout: Duration.seconds(1),
  ...overrides
} as StarRocksConfig.StarRocksConfig)

interface Call {
  readonly label: string
  readonly bytes: number
  readonly format: string
  readonly body: string
}

/** A scripted LoadClient: records calls, optionally gated or failing, tracks concurrency. */
const fakeClient = (options: {
  readonly gate?: Deferred.Deferred<void> | undefined
  readonly fail?: ((call: Call, n: number) => StarRocksError.LoadError | undefined) | undefined
  readonly states?: Ref.Ref<Array<string>> | undefined
}) =>
  Effect.gen(function*() {
    const calls = yield* Ref.make<Array<Call>>([])
    const active = yield* Ref.make(0)
    const maxActive = yield* Ref.make(0)
    const client = LoadClient.fromPartial({
      loadBatch: (request) =>
        Effect.gen(function*() {
          const body = Buffer.concat(request.body.chunks.map((c) => Buffer.from(c))).toString("utf8")
          const call = {
            label: request.label,
            bytes: request.body.byteLength,
            format: request.headers["format"] ?? "",
            body
          }
          const n = (yield* Ref.updateAndGet(calls, (cs) => [...cs, call])).length
          const now = yield* Ref.updateAndGet(active, (a) => a + 1)
          yield* Ref.update(maxActive, (m) => Math.max(m, now))
          if (options.gate) yield* Deferred.await(options.gate)
          yield* Effect.sleep(Duration.millis(2))
          yield* Ref.update(active, (a) => a - 1)
          const error = options.fail?.(call, n)
          if (error) return yield* Effect.fail(error)
          return {
            label: request.label,
            status: "Success" as const,
            txnId: n,
            loadedRows: 0,
            filteredRows: 0,
            unselectedRows: 0,
            loadBytes: request.body.byteLength,
            retries: 0,
            hops: ["fake"],
            timings: { LoadTimeMs: 1 }
          }
        }).pipe(Effect.onInterrupt(() => Ref.update(active, (a) => a - 1))),
      getLoadState: ({ label }) =>
        Effect.gen(function*() {
          if (options.states) yield* Ref.update(options.states, (s) => [...s, label])
          return "VISIBLE" as const
        })
    })
    return { client, calls, maxActive }
  })

const Row = Schema.Struct({ id: Schema.Number, name: Schema.String })
const rows = (n: number) => Array.from({ length: n }, (_, id) => ({ id, name: `name-${id}` }))

const layerWith = (config: StarRocksConfig.StarRocksConfig, client: LoadClient.LoadClient) =>
  Layer.mergeAll(
    Layer.succeed(StarRocksConfig.StarRocksConfig, config),
    Layer.succeed(LoadClient.LoadClient, client),
    LabelStore.layerMemory
  )

describe("StarRocksSink", () => {
  it.live("cuts batches by max-bytes, keeps every row once and labels each batch uniquely", () =>
    Effect.gen(function*() {
      const { calls, client } = yield* fakeClient({})
      const summary = yield* Stream.fromIterable(rows(5_000)).pipe(
        Stream.run(StarRocksSink.make(Row)),
        Effect.provide(layerWith(baseConfig(), client))
      )
      const made = yield* Ref.get(calls)
      assert.strictEqual(summary.rows, 5_000)
      assert.strictEqual(summary.loads, made.length)
      assert.isAbove(made.length, 5)
      const labels = new Set(made.map((c) => c.label))
      assert.strictEqual(labels.size, made.length)
      for (const label of labels) assert.match(label, /^[-\w]{1,128}$/)
      for (const call of made) assert.isAtMost(call.bytes, 10_000 + 100)
      const lines = made.flatMap((c) => c.body.split("\n").filter((l) => l.length > 0))
      assert.strictEqual(lines.length, 5_000)
      assert.strictEqual(new Set(lines).size, 5_000)
    }))

  it.live("cuts batches by max-rows", () =>
    Effect.gen(function*() {
      const { calls, client } = yield* fakeClient({})
      yield* Stream.fromIterable(rows(1_000)).pipe(
        Stream.run(StarRocksSink.make(Row)),
        Effect.provide(layerWith(baseConfig({ maxRows: 300, maxBytes: 10_000_000 }), client))
      )
      assert.deepStrictEqual(
        (yield* Ref.get(calls)).map((c) => c.body.split("\n").filter((l) => l.length > 0).length),
        [300, 300, 300, 100]
      )
    }))

  it.effect("a bad row: the loads in flight get the drain deadline, then what is left is settled and reported (TestClock)", () =>
    Effect.gen(function*() {
      // batch 2 (rows 100..199) never answers; get_load_state says it is still PREPARED
      const settled = yield* Ref.make<Array<string>>([])
      const client = LoadClient.fromPartial({
        loadBatch: (request) =>
          request.label.endsWith("-2")
            ? Effect.never
            : Effect.succeed({
              label: request.label,
              status: "Success" as const,
              txnId: 1,
              loadedRows: 0,
              filteredRows: 0,
              unselectedRows: 0,
              loadBytes: request.body.byteLength,
              retries: 0,
              hops: ["fake"],
              timings: {}
            }),
        getLoadState: ({ label }) => Effect.as(Ref.update(settled, (s) => [...s, label]), "PREPARED" as const)
      })
      const input = rows(450)
      input[350] = { id: Number.NaN, name: "bad" }
      const fiber = yield* Stream.fromIterable(input).pipe(
        Stream.rechunk(50),
        Stream.run(StarRocksSink.make(Row)),
        Effect.provide(layerWith(baseConfig({ maxRows: 100, maxBytes: 1_000_000, ioThreadCount: 2 }), client)),
        Effect.flip,
        Effect.fork
      )
      // the drain deadline is label-state timeout (1 s) + 30 s: the sink waits for batch 2 until then
      for (let i = 0; i < 30; i++) yield* TestClock.adjust(Duration.seconds(1))
      assert.isNull(fiber.unsafePoll(), "the sink waits for the loads in flight until the deadline")
      assert.deepStrictEqual(yield* Ref.get(settled), [])
      for (let i = 0; i < 5; i++) yield* TestClock.adjust(Duration.seconds(1))
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "RowEncodeError")
      if (error._tag !== "RowEncodeError") return
      assert.strictEqual(error.row, 350)
      const landed = error.landed?.["db.t"]
      // batches 1 and 3 landed, 2 is in doubt: every row before 2's first (100) landed; 300..349 were never sealed
      assert.strictEqual(landed?.upToRow, 100)
      assert.deepStrictEqual(landed?.labels.committed.map((l) => l.slice(-2)), ["-1", "-3"])
      assert.deepStrictEqual(landed?.labels.inDoubt.map((l) => l.slice(-2)), ["-2"])
      assert.deepStrictEqual(landed?.labels.failed, [])
      assert.deepStrictEqual((yield* Ref.get(settled)).map((l) => l.slice(-2)), ["-2"])
    }))

  it.effect("flushes on interval-ms while rows keep trickling in (TestClock)", () =>
    Effect.gen(function*() {
      const { calls, client } = yield* fakeClient({})
      // a row every 30 ms, a 100 ms interval: the timer seals a batch while the stream is still running
      const fiber = yield* Stream.fromIterable(rows(10)).pipe(
        Stream.tap(() => Effect.sleep(Duration.millis(30))),
        Stream.run(StarRocksSink.make(Row)),
        Effect.provide(layerWith(baseConfig({ flushInterval: Duration.millis(100), maxBytes: 10_000_000 }), client)),
        Effect.fork
      )
      for (let ms = 0; ms < 140; ms += 10) yield* TestClock.adjust(Duration.millis(10))
      const early = yield* Ref.get(calls)
      assert.strictEqual(early.length, 1, "one batch was sealed by the interval before the stream ended")
      const earlyRows = early[0]!.body.split("\n").filter((l) => l.length > 0).length
      assert.isTrue(earlyRows >= 3 && earlyRows <= 4, `the rows of the first 100 ms (${earlyRows})`)
      for (let ms = 0; ms < 400; ms += 10) yield* TestClock.adjust(Duration.millis(10))
      const summary = yield* Fiber.join(fiber)
      assert.strictEqual(summary.rows, 10)
    }))

  it.live("one-row chunks with the interval timer sealing meanwhile: every row once, in order", () =>
    Effect.gen(function*() {
      // one-row chunks take the unlocked way; a 5 ms interval makes the timer seal between (and during) them
      const { calls, client } = yield* fakeClient({})
      const summary = yield* Stream.fromIterable(rows(20_000)).pipe(
        Stream.rechunk(1),
        Stream.tap((r) => r.id % 2_000 === 500 ? Effect.sleep(Duration.millis(12)) : Effect.void),
        Stream.run(StarRocksSink.make(Row, { ordered: true })),
        Effect.provide(layerWith(
          baseConfig({ flushInterval: Duration.millis(5), maxRows: 1_000, maxBytes: 10_000_000 }),
          client
        ))
      )
      const made = yield* Ref.get(calls)
      assert.strictEqual(summary.rows, 20_000)
      assert.isAbove(made.length, 20, "batches cut by max-rows and by the timer")
      const ids = made.flatMap((c) =>
        c.body.split("\n").filter((l) => l.length > 0).map((l) => Number(l.split(",")[0]!.replace(/"/g, "")))
      )
      assert.deepStrictEqual(ids, Array.from({ length: 20_000 }, (_, i) => i))
      assert.isTrue(made.every((c) => c.bytes > 0))
    }))

  it.live("keeps at most sink.io.thread-count loads in flight, and one when ordered", () =>
    Effect.gen(function*() {
      for (const [threads, ordered, expected] of [[3, false, 3], [3, true, 1]] as const) {
        const { client, maxActive } = yield* fakeClient({})
        yield* Stream.fromIterable(rows(20_000)).pipe(
          Stream.run(StarRocksSink.make(Row, { ordered })),
          Effect.provide(layerWith(baseConfig({ ioThreadCount: threads, maxBytes: 200_000, maxRows: 100 }), client))
        )
        assert.strictEqual(yield* Ref.get(maxActive), expected)
      }
    }))

  it.live("gives the event loop turns while it encodes: loads in flight land before a large chunk is encoded", () =>
    Effect.gen(function*() {
      // one chunk of 200,000 rows, 40 batches, loads never wait for a slot: without turns of the event loop the
      // whole chunk would be encoded before the first load's timer could fire
      let encoded = 0
      const big = Array.from({ length: 200_000 }, (_, i) => ({
        get id() {
          encoded++
          return i
        },
        name: `name-${i}`
      }))
      const encodedAtLanding: Array<number> = []
      const { calls, client } = yield* fakeClient({})
      const recording = LoadClient.fromPartial({
        ...client,
        loadBatch: (request) =>
          Effect.tap(client.loadBatch(request), () => Effect.sync(() => encodedAtLanding.push(encoded)))
      })
      const summary = yield* Stream.fromChunk(Chunk.unsafeFromArray(big)).pipe(
        Stream.run(StarRocksSink.make(Row)),
        Effect.provide(layerWith(baseConfig({ maxRows: 5_000, maxBytes: 10_000_000, ioThreadCount: 64 }), recording))
      )
      assert.strictEqual(summary.rows, 200_000)
      assert.strictEqual((yield* Ref.get(calls)).length, 40)
      assert.isBelow(encodedAtLanding[0]!, 200_000, "the first load landed while later rows were still being encoded")
    }))

  it.live("backpressures the upstream when buffered plus in-flight bytes reach twice max-bytes", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { client } = yield* fakeClient({ gate })
      const pulled = yield* Ref.make(0)
      const fiber = yield* Stream.fromIterable(rows(100_000)).pipe(
        Stream.rechunk(10),
        Stream.tap(() => Ref.update(pulled, (n) => n + 1)),
        Stream.run(StarRocksSink.make(Row)),
        Effect.provide(layerWith(baseConfig({ maxBytes: 10_000, ioThreadCount: 8 }), client)),
        Effect.fork
      )
      yield* Effect.sleep(Duration.millis(300))
      const n = yield* Ref.get(pulled)
      // a row is ~20 bytes: 2 × 10,000 bytes ≈ 1,000 rows, plus a chunk and one batch's overshoot
      assert.isAtMost(n, 1_200)
      assert.isAtLeast(n, 400)
      yield* Deferred.succeed(gate, void 0)
      const summary = yield* Fiber.join(fiber)
      assert.strictEqual(summary.rows, 100_000)
    }))

  it.live("the currentBufferBytes gauge shows the bytes in flight while loads wait, and 0 once they landed", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { client } = yield* fakeClient({ gate })
      const gauge = Metric.tagged(SinkMetrics.bufferedBytes, "table", "db.t_gauge")
      const fiber = yield* Stream.fromIterable(rows(2_000)).pipe(
        Stream.run(StarRocksSink.make(Row)),
        Effect.provide(layerWith(baseConfig({ table: "t_gauge", maxRows: 500, maxBytes: 10_000_000 }), client)),
        Effect.fork
      )
      yield* Effect.sleep(Duration.millis(100))
      const waiting = (yield* Metric.value(gauge)).value
      assert.isAbove(waiting, 10_000, "two batches of 500 rows are in flight")
      yield* Deferred.succeed(gate, void 0)
      const summary = yield* Fiber.join(fiber)
      assert.strictEqual(summary.rows, 2_000)
      assert.strictEqual((yield* Metric.value(gauge)).value, 0)
    }))

  it.live("a load that fails for good ends the stream with its typed error, and its label is recorded failed", () =>
    Effect.gen(function*() {
      const { client } = yield* fakeClient({
        fail: (call, n) =>
          n === 2
            ? new StarRocksError.StreamLoadError({
              label: call.label,
              status: "Fail",
              message: "too many filtered rows",
              retryable: false
            })
            : undefined
      })
      const store = yield* LabelStore.makeMemory()
      const exit = yield* Stream.fromIterable(rows(5_000)).pipe(
        Stream.run(StarRocksSink.make(Row)),
        Effect.provide(
          Layer.mergeAll(
            Layer.succeed(StarRocksConfig.StarRocksConfig, baseConfig()),
            Layer.succeed(LoadClient.LoadClient, client),
            Layer.succeed(LabelStore.LabelStore, store)
          )
        ),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(exit)
      assert.strictEqual(error._tag, "StreamLoadError")
      const failed = yield* store.list({ state: "failed" })
      assert.strictEqual(failed.length, 1)
    }))

  it.live("interrupted with loads in flight: every in-flight label is settled through get_load_state", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const states = yield* Ref.make<Array<string>>([])
      const { calls, client } = yield* fakeClient({ gate, states })
      const store = yield* LabelStore.makeMemory()
      const fiber = yield* Stream.fromIterable(rows(100_000)).pipe(
        Stream.run(StarRocksSink.make(Row)),
        Effect.provide(
          Layer.mergeAll(
            Layer.succeed(StarRocksConfig.StarRocksConfig, baseConfig()),
            Layer.succeed(LoadClient.LoadClient, client),
            Layer.succeed(LabelStore.LabelStore, store)
          )
        ),
        Effect.fork
      )
      yield* Effect.sleep(Duration.millis(200))
      yield* Fiber.interrupt(fiber)
      const started = (yield* Ref.get(calls)).map((c) => c.label)
      assert.isAtLeast(started.length, 1)
      assert.deepStrictEqual([...(yield* Ref.get(states))].sort(), [...started].sort())
      const pending = yield* store.list({ state: "pending" })
      assert.strictEqual(pending.length, 0, "no label is left pending")
      const committed = yield* store.list({ state: "committed" })
      assert.deepStrictEqual(committed.map((r) => r.label).sort(), [...started].sort())
    }))

  it("builds labels within StarRocks' label rule", () => {
    const label = StarRocksSink.batchLabel("my.prefix", "a table with spaces".repeat(10), "0badc0de", 12)
    assert.match(label, /^[-\w]{1,128}$/)
    assert.isTrue(label.endsWith("-0badc0de-12"))
  })
})
