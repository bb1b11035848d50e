/**
 * The ledger's report of what landed (issue #9, defect 6): per table, every row before the first batch that did not
 * land, and the labels by outcome. The end-to-end runs are in test/integration/tables.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Equal, Metric, MetricLabel, Option, Schema, TestClock } from "effect"
import { LabelStore, SinkMetrics, StarRocksError } from "../src/index.js"
import * as MetricLabels from "../src/internal/metricLabels.js"
import * as Ledger from "../src/internal/sink/ledger.js"

const batchOf = (table: string, n: number, firstRow: number): Ledger.Batch => ({
  table: `db.${table}`,
  database: "db",
  tableName: table,
  label: `${table}-${n}`,
  rows: 1_000,
  bytes: 10,
  firstRow
})

const landed = { retries: 0, filteredRows: 0 }

describe("Ledger: what landed", () => {
  it.effect("a table's prefix ends at its first batch that did not land; labels by outcome", () =>
    Effect.gen(function*() {
      const labels = yield* LabelStore.makeMemory()
      const ledger = Ledger.make(labels, yield* Effect.clock)
      const a = [0, 1, 2, 3].map((n) => batchOf("a", n, n * 2_000))
      const b = [0, 1].map((n) => batchOf("b", n, n * 2_000 + 1_000))
      for (const batch of [...a, ...b]) ledger.sealed(batch)
      yield* ledger.pending(a[0]!)
      yield* ledger.landed(a[0]!, landed, 0)
      // a[1]'s outcome could not be settled; a[2] (an unordered table) landed after it; a[3] was never sent
      yield* ledger.pending(a[1]!)
      yield* ledger.failed(
        a[1]!,
        new StarRocksError.LabelStateTimeout({ label: a[1]!.label, lastState: "PREPARED", waitedMs: 1 })
      )
      yield* ledger.pending(a[2]!)
      yield* ledger.landed(a[2]!, landed, 0)
      for (const batch of b) yield* ledger.landed(batch, landed, 0)
      // b was building a batch from stream row 7,000 when the sink failed
      const report = ledger.whatLanded(new Map([["db.b", 7_000]]), 8_000)
      assert.deepStrictEqual(report["db.a"], {
        upToRow: 2_000,
        labels: { committed: ["a-0", "a-2"], failed: ["a-3"], inDoubt: ["a-1"] },
        earlierCommitted: 0
      })
      assert.deepStrictEqual(report["db.b"], {
        upToRow: 7_000,
        labels: { committed: ["b-0", "b-1"], failed: [], inDoubt: [] },
        earlierCommitted: 0
      })
      // the label store agrees: in doubt is not failed
      const stored = yield* labels.get("a-1")
      assert.deepStrictEqual(Option.map(stored, (r) => r.state), Option.some("in-doubt" as const))
    }))

  it.effect("a long run keeps only the latest landed labels of the prefix, and counts the earlier ones", () =>
    Effect.gen(function*() {
      const ledger = Ledger.make(yield* LabelStore.makeMemory(), yield* Effect.clock)
      const n = Ledger.KEEP_LANDED + 150
      for (let i = 0; i < n; i++) {
        const batch = batchOf("t", i, i * 10)
        ledger.sealed(batch)
        yield* ledger.landed(batch, landed, 0)
      }
      const report = ledger.whatLanded(new Map(), n * 10)
      assert.strictEqual(report["db.t"]!.upToRow, n * 10)
      assert.strictEqual(report["db.t"]!.earlierCommitted, 150)
      assert.strictEqual(report["db.t"]!.labels.committed.length, Ledger.KEEP_LANDED)
      assert.strictEqual(report["db.t"]!.labels.committed[0], "t-150")
    }))
})

describe("Ledger: a load's metrics", () => {
  it.effect("tagged with the table under the fiber's own labels, timings with `timing` first, as before", () =>
    Effect.gen(function*() {
      const labels = yield* LabelStore.makeMemory()
      const ledger = Ledger.make(labels, yield* Effect.clock)
      const table = `metrics${Date.now()}`
      const batch = batchOf(table, 0, 0)
      ledger.sealed(batch)
      const result = { retries: 2, filteredRows: 3, timings: { LoadTimeMs: 12, WriteDataTimeMs: 5 } }
      yield* ledger.landed(batch, result, 0).pipe(Effect.tagMetrics("job", "j1"))
      yield* ledger.landed({ ...batch, label: `${table}-1` }, result, 0).pipe(Effect.tagMetrics("job", "j1"))
      const tags = { job: "j1", table: `db.${table}` }
      const value = <In, Out>(metric: Metric.Metric<any, In, Out>) => Metric.value(metric).pipe(Effect.tagMetrics(tags))
      assert.strictEqual((yield* value(SinkMetrics.totalFlushRows)).count, 2_000)
      assert.strictEqual((yield* value(SinkMetrics.totalFlushSucceededTimes)).count, 2)
      assert.strictEqual((yield* value(SinkMetrics.totalLoadRetries)).count, 4)
      assert.strictEqual((yield* value(SinkMetrics.totalFilteredRows)).count, 6)
      assert.strictEqual((yield* value(SinkMetrics.loadLatency)).count, 2)
      // `Metric.tagged(serverTimeMs, "timing", key)` updated under the fiber's labels: `timing` comes first
      const loadTime = yield* value(Metric.tagged(SinkMetrics.serverTimeMs, "timing", "LoadTimeMs"))
      assert.strictEqual(loadTime.count, 2)
      assert.strictEqual(loadTime.sum, 24)
    }))

  it.effect("the load's latency lands in `loadLatency` (tagged `time_unit`), in milliseconds, never below zero", () =>
    Effect.gen(function*() {
      const ledger = Ledger.make(yield* LabelStore.makeMemory(), yield* Effect.clock)
      const table = `latency${Date.now()}`
      yield* TestClock.adjust("1 second")
      const now = yield* Clock.currentTimeMillis
      yield* ledger.landed(batchOf(table, 0, 0), landed, now - 250)
      // a load "started" after now (a clock set back) counts as zero, as `Duration.millis` of a negative does
      yield* ledger.landed(batchOf(table, 1, 10), landed, now + 40)
      const latency = yield* Metric.value(SinkMetrics.loadLatency).pipe(Effect.tagMetrics("table", `db.${table}`))
      assert.strictEqual(latency.count, 2)
      assert.strictEqual(latency.sum, 250)
      assert.strictEqual(latency.min, 0)
    }))

  it("the labels arrays are kept: the same array for the same labels and tag, in `Arr.union`'s order", () => {
    const outer = [MetricLabel.make("job", "j1")]
    const a = MetricLabels.withLabel(outer, "table", "db.a")
    assert.strictEqual(MetricLabels.withLabel(outer, "table", "db.a"), a)
    assert.deepStrictEqual(a.map((l) => l.key), ["job", "table"])
    const t = MetricLabels.withLabel(a, "timing", "LoadTimeMs", true)
    assert.strictEqual(MetricLabels.withLabel(a, "timing", "LoadTimeMs", true), t)
    assert.deepStrictEqual(t.map((l) => l.key), ["timing", "job", "table"])
    assert.notStrictEqual(MetricLabels.withLabel(outer, "table", "db.b"), a)
  })

  it("the ledger's label records are what the Schema class makes without validation: equal, same keys, encodable", () => {
    const fields = { label: "l-1", table: "db.t", state: "pending" as const, rows: 3, bytes: 10, updatedAt: 5 }
    const made = new LabelStore.LabelRecord(fields, true)
    const fast = Ledger.labelRecord(fields)
    assert.isTrue(fast instanceof LabelStore.LabelRecord)
    assert.isTrue(Equal.equals(fast, made))
    assert.deepStrictEqual(Reflect.ownKeys(fast), Reflect.ownKeys(made))
    assert.strictEqual(String(fast), String(made))
    assert.isTrue(Schema.is(LabelStore.LabelRecord)(fast))
    assert.deepStrictEqual(
      Schema.encodeSync(LabelStore.LabelRecord)(fast),
      Schema.encodeSync(LabelStore.LabelRecord)(made)
    )
  })
})
