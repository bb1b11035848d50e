/**
 * Prometheus text: the rendering of each kind of Effect metric, and a scrape of `Prometheus.serve` after a sink
 * loaded rows into the emulator, finding `totalFlushRows` for the table with the right value.
 */
import { ReferenceRows, StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger, LogLevel, Metric, MetricBoundaries, Redacted, Stream, Tracer } from "effect"
import * as Fs from "node:fs"
import { Prometheus, SinkMetrics, StarRocksConfig, StarRocksSink } from "../src/index.js"

describe("Prometheus", () => {
  it.effect("renders counters, gauges, histograms and frequencies with their tags as labels", () =>
    Effect.gen(function*() {
      const id = `t${process.pid}_${Date.now()}`
      const counter = Metric.counter(`c_${id}`, { description: "a counter\nof things" })
      const gauge = Metric.gauge(`g.${id}`)
      const histogram = Metric.histogram(`h_${id}`, MetricBoundaries.fromIterable([10, 100]))
      const frequency = Metric.frequency(`f_${id}`)
      yield* Metric.increment(counter).pipe(Effect.tagMetrics("table", "db.\"t\""))
      yield* Metric.incrementBy(counter, 2).pipe(Effect.tagMetrics("table", "db.u"))
      yield* Metric.set(gauge, 7)
      yield* Effect.forEach([5, 50, 500], (v) => Metric.update(histogram, v))
      yield* Metric.update(frequency, "a")
      yield* Metric.update(frequency, "a")
      const pairs = (yield* Metric.snapshot).filter((p) => p.metricKey.name.includes(id))
      const text = Prometheus.render(pairs)
      const lines = text.split("\n")
      assert.include(lines, `# HELP c_${id} a counter\\nof things`)
      assert.include(lines, `# TYPE c_${id} counter`)
      assert.include(lines, `c_${id}{table="db.\\"t\\""} 1`)
      assert.include(lines, `c_${id}{table="db.u"} 2`)
      // one TYPE line per name, however many label sets
      assert.strictEqual(lines.filter((l) => l === `# TYPE c_${id} counter`).length, 1)
      assert.include(lines, `# TYPE g_${id} gauge`)
      assert.include(lines, `g_${id} 7`)
      assert.include(lines, `# TYPE h_${id} histogram`)
      assert.include(lines, `h_${id}_bucket{le="10"} 1`)
      assert.include(lines, `h_${id}_bucket{le="100"} 2`)
      assert.include(lines, `h_${id}_bucket{le="+Inf"} 3`)
      assert.include(lines, `h_${id}_sum 555`)
      assert.include(lines, `h_${id}_count 3`)
      assert.include(lines, `f_${id}{key="a"} 2`)
      assert.isTrue(text.endsWith("\n"))
    }))

  it.scopedLive("a scrape after a sink run finds totalFlushRows for its table", () =>
    Effect.gen(function*() {
      const table = `prom_${process.pid}_${Date.now() % 100000}`
      const emulator = yield* StarRocksEmulator.make({
        users: { root: "" },
        tables: [ReferenceRows.tableDef("metrics", table)]
      })
      const summary = yield* Stream.fromIterable(ReferenceRows.rows(1_000)).pipe(
        Stream.run(StarRocksSink.make(ReferenceRows.schema)),
        Effect.provide(StarRocksSink.layer(StarRocksConfig.make({
          loadUrl: emulator.fe,
          database: "metrics",
          table,
          username: "root",
          password: Redacted.make("")
        }))),
        Logger.withMinimumLogLevel(LogLevel.Warning)
      )
      assert.strictEqual(summary.rows, 1_000)
      const server = yield* Prometheus.serve({ port: 0 })
      const scraped = yield* Effect.promise(() =>
        fetch(server.url).then(async (r) => ({
          status: r.status,
          type: r.headers.get("content-type"),
          body: await r.text()
        }))
      )
      assert.strictEqual(scraped.status, 200)
      assert.match(scraped.type ?? "", /^text\/plain; version=0\.0\.4/)
      const lines = scraped.body.split("\n")
      assert.include(lines, `totalFlushRows{table="metrics.${table}"} 1000`)
      assert.include(lines, `totalFlushSucceededTimes{table="metrics.${table}"} 1`)
      assert.include(lines, "# TYPE loadLatencyMs histogram")
      // a timer carries its unit as a tag too
      assert.isTrue(
        lines.some((l) =>
          l.startsWith("loadLatencyMs_count{") && l.includes(`table="metrics.${table}"`) && / 1$/.test(l)
        ),
        lines.filter((l) => l.startsWith("loadLatencyMs_count")).join("\n")
      )
      const notFound = yield* Effect.promise(() =>
        fetch(server.url.replace("/metrics", "/other")).then((r) => r.status)
      )
      assert.strictEqual(notFound, 404)
    }))

  it.scopedLive("each load is a span: starrocks.streamLoad, and starrocks.transaction.* for each transaction call", () =>
    Effect.gen(function*() {
      const table = `spans_${process.pid}_${Date.now() % 100000}`
      const emulator = yield* StarRocksEmulator.make({
        users: { root: "" },
        tables: [ReferenceRows.tableDef("traces", table)]
      })
      const spans: Array<Tracer.Span> = []
      const recording = yield* Effect.tracerWith((native) =>
        Effect.succeed(Tracer.make({
          span: (...args) => {
            const span = native.span(...args)
            spans.push(span)
            return span
          },
          context: (f, fiber) => native.context(f, fiber)
        }))
      )
      const run = (useTransactionStreamLoad: boolean) =>
        Stream.fromIterable(ReferenceRows.rows(1_000)).pipe(
          Stream.run(StarRocksSink.make(ReferenceRows.schema)),
          Effect.provide(StarRocksSink.layer(StarRocksConfig.make({
            loadUrl: emulator.fe,
            database: "traces",
            table,
            username: "root",
            password: Redacted.make(""),
            maxRows: 500,
            allowSmallBuffers: true,
            useTransactionStreamLoad
          }))),
          Logger.withMinimumLogLevel(LogLevel.Warning),
          Effect.withTracer(recording)
        )
      yield* run(false)
      const loads = spans.filter((s) => s.name === "starrocks.streamLoad")
      assert.strictEqual(loads.length, 2)
      for (const span of loads) {
        assert.strictEqual(span.kind, "client")
        assert.strictEqual(span.status._tag, "Ended")
        assert.strictEqual(span.attributes.get("starrocks.table"), table)
        assert.strictEqual(span.attributes.get("starrocks.status"), "Success")
        assert.match(String(span.attributes.get("starrocks.label")), new RegExp(table))
      }
      spans.length = 0
      yield* run(true)
      const names = spans.map((s) => s.name).filter((n) => n.startsWith("starrocks.transaction."))
      assert.deepStrictEqual(names.filter((n) => n === "starrocks.transaction.begin").length, 2)
      assert.deepStrictEqual(names.filter((n) => n === "starrocks.transaction.load").length, 2)
      assert.deepStrictEqual(names.filter((n) => n === "starrocks.transaction.commit").length, 2)
      assert.strictEqual((yield* emulator.rows("traces", table)).length, 2_000)
    }))

  it.effect("the Grafana dashboard (docs/grafana/effect-starrocks.json) queries only metrics the sink has", () =>
    Effect.gen(function*() {
      const dashboard = JSON.parse(
        Fs.readFileSync(new URL("../../../docs/grafana/effect-starrocks.json", import.meta.url), "utf8")
      ) as { panels: Array<{ targets: Array<{ expr: string }> }> }
      // registering a metric puts its name in the registry without changing any value
      for (
        const m of [
          SinkMetrics.totalFlushBytes,
          SinkMetrics.totalFlushRows,
          SinkMetrics.totalFlushSucceededTimes,
          SinkMetrics.totalFlushFailedTimes,
          SinkMetrics.totalFilteredRows,
          SinkMetrics.totalLoadRetries,
          SinkMetrics.inflightLoads,
          SinkMetrics.bufferedBytes,
          SinkMetrics.loadLatency,
          SinkMetrics.serverTimeMs
        ]
      ) (m as { register: () => unknown }).register()
      const names = new Set((yield* Metric.snapshot).map((p) => p.metricKey.name))
      const queried = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr))
        .flatMap((e) => Array.from(e.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\{/g), (m) => m[1]!))
        .map((n) => n.replace(/_(bucket|sum|count)$/, ""))
      assert.isAbove(queried.length, 8)
      for (const n of queried) assert.isTrue(names.has(n), `${n} is not a metric of the sink`)
    }))
})
