/**
 * Merge commit (`sink.properties.enable_merge_commit`, StarRocks 3.4+) against the emulator over real sockets: many
 * concurrent one-row loads merged per window land every row exactly once under server labels; async mode settles
 * every label through `get_load_state`; one bad request fails its merged transaction and the error reaches each of
 * its writers; a CSV body without the final row delimiter is refused before sending; and the config refuses what
 * merge commit cannot do (docs/configuration.md "Merge commit", docs/protocol.md "Merge commit").
 *
 * The emulator's merge windows run on real timers (its HTTP exchanges do too), so these tests run live; they assert
 * outcomes (rows, labels, transaction states, errors), never durations.
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Logger, LogLevel, Option, Redacted, Schema, Stream, TestClock } from "effect"
import { ColumnType, LabelStore, LoadClient, StarRocksConfig, StarRocksSink } from "../src/index.js"
import * as Dispatcher from "../src/internal/sink/dispatcher.js"
import type { Lane, Sealed } from "../src/internal/sink/lane.js"
import * as Ledger from "../src/internal/sink/ledger.js"
import type { LoadBody } from "../src/LoadBody.js"
import * as Fixture from "./emulatorFixture.js"

const start = (bes = 1) =>
  Effect.gen(function*() {
    const em = yield* StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes })
    const table = yield* Fixture.duplicateTable(em, "mc", [{ name: "id", type: "INT" }, {
      name: "v",
      type: "VARCHAR(16)"
    }])
    return { em, table }
  })

const configOf = (fe: ReadonlyArray<string>, table: string, options: Partial<StarRocksConfig.Options> = {}) =>
  Fixture.configOf(fe, table, { retryInterval: 1, ...options })

const bodyOf = (text: string): LoadBody => {
  const b = Buffer.from(text, "utf8")
  return { chunks: [b], byteLength: b.byteLength }
}

const mc = (interval: number, async = false) => ({
  format: "csv",
  column_separator: ",",
  ...StarRocksConfig.mergeCommit({ interval, parallel: 2, async })
})

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

/**
 * `writers` concurrent writers, each `loads` one-row loads in turn; the results of every load. Each writer has a
 * client of its own (as separate sink instances do), so that its loads do not queue for another's sockets.
 */
const writeAll = (
  config: StarRocksConfig.StarRocksConfig,
  table: string,
  writers: number,
  loads: number,
  headers: Record<string, string>
) =>
  Effect.forEach(
    Array.from({ length: writers }, (_, w) => w),
    (w) =>
      Effect.flatMap(LoadClient.make(config), (client) =>
        Effect.forEach(
          Array.from({ length: loads }, (_, i) => i),
          (i) =>
            client.loadBatch({
              database: "db",
              table,
              label: `w${w}_${i}`,
              headers,
              body: bodyOf(`${w * loads + i},w${w}\n`)
            })
        )),
    { concurrency: "unbounded" }
  ).pipe(Effect.map((r) => r.flat()))

describe("merge commit", () => {
  // The acceptance is 50 writers × 1,000 loads: that is 50,000 HTTP exchanges, too slow for the suite on
  // a shared 2-core machine; the suite runs 50 × 20 (1,000 loads), the bench (bench/mergeCommit.ts) the full count.
  it.scopedLive("50 concurrent writers of one-row loads (sync): every row lands exactly once, in merged txns", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start(2)
      const writers = 50
      const loads = 20
      const results = yield* writeAll(configOf(em.fe, table), table, writers, loads, mc(40))
      assert.strictEqual(results.length, writers * loads)
      const stored = yield* em.rows("db", table)
      const ids = stored.map((r) => Number(r["id"])).sort((a, b) => a - b)
      assert.deepStrictEqual(ids, Array.from({ length: writers * loads }, (_, i) => i))
      // server labels, shared by the requests of one window: fewer transactions than loads, every one VISIBLE
      const labels = new Set(results.map((r) => r.label))
      for (const label of labels) assert.match(label, /^merge_commit_[0-9a-f]{16}-[0-9a-f]{16}$/)
      assert.isBelow(labels.size, writers * loads)
      const txns = (yield* em.transactions("db")).filter((t) => t.table === table)
      assert.strictEqual(txns.length, labels.size)
      for (const t of txns) assert.strictEqual(t.status, "VISIBLE")
      // no client label reached the server
      const sent = (yield* em.requests).filter((r) => r.path.endsWith(`/${table}/_stream_load`))
      for (const r of sent) assert.isUndefined(r.headers["label"])
    }).pipe(quiet))

  it.scopedLive("async mode: the reply comes before the commit; every label is settled through get_load_state", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start()
      const results = yield* writeAll(configOf(em.fe, table), table, 20, 10, mc(60, true))
      assert.strictEqual(results.length, 200)
      for (const r of results) assert.isTrue(r.labelState === "VISIBLE" || r.labelState === "COMMITTED")
      for (const label of new Set(results.map((r) => r.label))) {
        assert.strictEqual(yield* em.loadState("db", label), "VISIBLE")
      }
      assert.strictEqual((yield* em.rows("db", table)).length, 200)
      // each label was polled: get_load_state on the FE
      const polls = (yield* em.requests).filter((r) => r.path.includes("/get_load_state"))
      assert.isAtLeast(polls.length, new Set(results.map((r) => r.label)).size)
    }).pipe(quiet))

  it.scopedLive("one bad request fails its merged transaction: each writer of the window gets the error", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start()
      const client = yield* LoadClient.make(configOf(em.fe, table, { maxRetries: 0 }))
      const headers = { ...mc(400), max_filter_ratio: "0" }
      const exits = yield* Effect.forEach(
        // four: the client's connection pool to the BE holds four sockets, a fifth would wait for the next window
        ["1,a\n", "2,b\n", "3,c,extra,columns\n", "4,d\n"],
        (text, i) =>
          Effect.exit(client.loadBatch({ database: "db", table, label: `b${i}`, headers, body: bodyOf(text) })),
        { concurrency: "unbounded" }
      )
      const labels = new Set<string>()
      for (const exit of exits) {
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const e = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          assert.strictEqual(e?._tag, "StreamLoadError")
          if (e?._tag === "StreamLoadError") {
            assert.strictEqual(e.status, "Fail")
            assert.match(e.message, /too many filtered rows|error/i)
            labels.add(e.label)
          }
        }
      }
      // the same merged transaction for all four, aborted, nothing landed (a data-quality failure is not retried)
      assert.strictEqual(labels.size, 1)
      assert.strictEqual(yield* em.loadState("db", [...labels][0]!), "ABORTED")
      assert.strictEqual((yield* em.rows("db", table)).length, 0)
    }).pipe(quiet))

  it.scopedLive("a CSV body without the final row delimiter is refused before it is sent", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start()
      const client = yield* LoadClient.make(configOf(em.fe, table))
      const error = yield* Effect.flip(
        client.loadBatch({ database: "db", table, label: "nd", headers: mc(20), body: bodyOf("1,a\n2,b") })
      )
      assert.strictEqual(error._tag, "StreamLoadError")
      if (error._tag === "StreamLoadError") {
        assert.strictEqual(error.outcome, "Invalid")
        assert.match(error.message, /row delimiter/)
      }
      const sent = (yield* em.requests).filter((r) => r.path.endsWith("/_stream_load"))
      assert.strictEqual(sent.length, 0)
    }).pipe(quiet))

  it.scopedLive("the emulator merges bodies as StarRocks does: a CSV row without its delimiter runs into the next", () =>
    Effect.gen(function*() {
      // sent raw (not through the client, which refuses such a body): two requests in one window
      const { em, table } = yield* start()
      const put = (text: string) =>
        Effect.promise(() =>
          fetch(`http://${em.bes[0]}/api/db/${table}/_stream_load`, {
            method: "PUT",
            headers: { authorization: `Basic ${Buffer.from("root:").toString("base64")}`, ...mc(200) },
            body: text
          }).then((r) => r.json() as Promise<Record<string, unknown>>)
        )
      const [a, b] = yield* Effect.all([put("1,a"), Effect.zipRight(Effect.sleep(20), put("2,b\n"))], {
        concurrency: "unbounded"
      })
      assert.strictEqual(a["Label"], b["Label"])
      assert.isString(a["RequestId"])
      const stored = yield* em.rows("db", table)
      // "1,a" + "2,b\n" is the one row "1,a2,b": too many columns, filtered (or the whole txn failed)
      assert.isFalse(stored.some((r) => Number(r["id"]) === 2))
    }).pipe(quiet))

  it.scopedLive("the at-least-once sink loads through merge commit (rows land, CSV and JSON)", () =>
    Effect.gen(function*() {
      for (const format of ["csv", "json"] as const) {
        const { em, table } = yield* start()
        const Row = Schema.Struct({ id: ColumnType.Int, v: Schema.String })
        const rows = Array.from({ length: 300 }, (_, i) => ({ id: i, v: `v${i}` }))
        const config = configOf(em.fe, table, {
          format,
          maxRows: 50,
          allowSmallBuffers: true,
          properties: StarRocksConfig.mergeCommit({ interval: 30, parallel: 1, async: format === "json" })
        })
        yield* Stream.run(Stream.fromIterable(rows), StarRocksSink.make(Row)).pipe(
          Effect.provide(StarRocksSink.layer(config))
        )
        const stored = (yield* em.rows("db", table)).map((r) => Number(r["id"])).sort((a, b) => a - b)
        assert.deepStrictEqual(stored, rows.map((r) => r.id))
        const txns = (yield* em.transactions("db")).filter((t) => t.table === table)
        for (const t of txns) assert.match(t.label, /^merge_commit_/)
      }
    }).pipe(quiet))
})

describe("merge commit config", () => {
  const base = {
    loadUrl: "http://127.0.0.1:8030",
    database: "db",
    table: "t",
    username: "root",
    password: Redacted.make("")
  }
  const problemsOf = (options: Partial<StarRocksConfig.Options>) =>
    Either.match(StarRocksConfig.makeEither({ ...base, ...options }), {
      onLeft: (e) => e.problems.map((p) => `${p.key}: ${p.reason}`),
      onRight: () => []
    })

  it("requires the interval and the parallelism, and checks their values", () => {
    assert.deepStrictEqual(problemsOf({ properties: { enable_merge_commit: "true" } }), [
      "properties.merge_commit_interval_ms: is required with enable_merge_commit=true",
      "properties.merge_commit_parallel: is required with enable_merge_commit=true"
    ])
    assert.lengthOf(problemsOf({ properties: { ...StarRocksConfig.mergeCommit({ interval: 0, parallel: 2 }) } }), 1)
    assert.lengthOf(problemsOf({ properties: { enable_merge_commit: "yes" } }), 1)
    assert.deepStrictEqual(problemsOf({ properties: { merge_commit_async: "true" } }), [
      "properties.merge_commit_async: has no effect without enable_merge_commit=true"
    ])
    assert.deepStrictEqual(problemsOf({ properties: StarRocksConfig.mergeCommit({ interval: 100, parallel: 2 }) }), [])
  })

  it("refuses skip_header and the transaction path", () => {
    const mcProps = StarRocksConfig.mergeCommit({ interval: 100, parallel: 2 })
    assert.lengthOf(problemsOf({ properties: { ...mcProps, skip_header: "1" } }), 1)
    assert.match(problemsOf({ properties: mcProps, useTransactionStreamLoad: true })[0] ?? "", /not a transaction/)
  })

  it.effect("refuses exactly-once with a typed error", () =>
    Effect.gen(function*() {
      const config = StarRocksConfig.make({
        ...base,
        properties: StarRocksConfig.mergeCommit({ interval: 100, parallel: 2 })
      })
      const problems = StarRocksConfig.useProblems(config, { semantic: "exactly-once" })
      assert.lengthOf(problems, 1)
      assert.match(problems[0]!.reason, /cannot be exactly-once/)
      const error = yield* Effect.flip(StarRocksConfig.checkUse(config, { semantic: "exactly-once" }))
      assert.strictEqual(error._tag, "StarRocksConfigError")
      assert.lengthOf(StarRocksConfig.useProblems(config, { semantic: "at-least-once" }), 0)
    }))
})

describe("merge commit: a sink stopped with a load in flight", () => {
  it.scoped("records it in doubt without reading the state of a label that was never sent", () =>
    Effect.gen(function*() {
      const reads: Array<string> = []
      const client = LoadClient.fromPartial({
        loadBatch: () => Effect.never,
        getLoadState: (r) => Effect.sync(() => reads.push(r.label)).pipe(Effect.as("UNKNOWN" as const))
      })
      const labels = yield* LabelStore.makeMemory()
      const ledger = Ledger.make(labels, yield* Effect.clock)
      const dispatcher = yield* Dispatcher.make({
        client,
        ledger,
        clock: yield* Effect.clock,
        maxBytes: 1_000_000,
        concurrency: 1,
        transactional: false,
        label: () => "ours_1",
        drainDeadline: "1 second"
      })
      const lane = { key: "db.t", settings: { database: "db", table: "t" }, ordered: false } as unknown as Lane
      const sealed: Sealed = {
        lane,
        seq: 0,
        rows: 1,
        firstRow: 0,
        body: bodyOf("1,a\n"),
        headers: mc(100),
        release: () => undefined
      }
      yield* dispatcher.dispatch(sealed)
      yield* Effect.yieldNow()
      yield* dispatcher.settle
      assert.deepStrictEqual(reads, [])
      const stored = yield* labels.get("ours_1")
      assert.deepStrictEqual(Option.map(stored, (r) => r.state), Option.some("in-doubt" as const))
    }).pipe(quiet))
})

describe("merge commit, async: the label-state wait has a deadline (TestClock)", () => {
  it.scoped("a merged transaction still open at the deadline fails the load with LabelStateTimeout", () =>
    Effect.gen(function*() {
      // the emulator's window (10 minutes, real time) does not end within the test; the client's polls and its
      // deadline run on the TestClock, advanced here while the real HTTP exchanges happen in between
      const { em, table } = yield* start()
      const client = yield* LoadClient.make(configOf(em.fe, table, { labelStateTimeout: "3 seconds" }))
      const fiber = yield* Effect.fork(
        client.loadBatch({ database: "db", table, label: "late", headers: mc(600_000, true), body: bodyOf("1,a\n") })
      )
      let exit = yield* Fiber.poll(fiber)
      for (let i = 0; i < 400 && Option.isNone(exit); i++) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
        yield* TestClock.adjust("100 millis")
        exit = yield* Fiber.poll(fiber)
      }
      assert.isTrue(Option.isSome(exit) && Exit.isFailure(exit.value))
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "LabelStateTimeout")
      if (error._tag === "LabelStateTimeout") {
        assert.match(error.label, /^merge_commit_/)
        assert.strictEqual(error.lastState, "PREPARE")
        assert.strictEqual(yield* em.loadState("db", error.label), "PREPARE")
      }
      assert.lengthOf(yield* em.rows("db", table), 0)
    }).pipe(quiet))
})
