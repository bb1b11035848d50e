/**
 * Adaptive concurrency against a slow server: the at-least-once sink loads the same rows into the emulator, whose
 * BEs answer each Stream Load after `baseMs + perLoadMs × (other loads in flight)` and answer "too many versions"
 * to a load that arrives when more than `capacity` loads are in flight (the `overload` fault of the testkit). A
 * sweep of fixed concurrency (`sink.io.thread-count` 1, 2, 4, 8, 16) and the adaptive mode (initial 1, max 16) run
 * in the same process, each against an emulator of its own: rows/s, loads, retries (each a "too many versions"
 * answer), whether every row landed once, and for the adaptive run the limits the table's gauge took.
 * Run from bench.ts (its own section, after merge commit), or alone:
 * `npx tsx packages/sink/bench/adaptive.ts [rows] [rounds]` (default 100,000 rows, 1 round; each mode's best run of
 * the rounds is reported).
 * Environment: BENCH_ADAPTIVE_ROWS_PER_LOAD (500), BENCH_ADAPTIVE_CAPACITY (6), BENCH_ADAPTIVE_BASE_MS (100),
 * BENCH_ADAPTIVE_PER_LOAD_MS (15). The loads are small and the server slow so that its latency, not the CPU that
 * the emulator and the sink share in this one process, bounds the throughput.
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { Effect, Exit, Layer, Logger, LogLevel, Metric, Redacted, Schema, Stream } from "effect"
import * as Url from "node:url"
import { ColumnType, LoadClient, SinkMetrics, StarRocksConfig, StarRocksSink } from "../src/index.js"

export interface AdaptiveFigure {
  /** `fixed` (adaptive off, `sink.io.thread-count` = `concurrency`) or `adaptive` (max = `concurrency`). */
  readonly mode: "fixed" | "adaptive"
  readonly concurrency: number
  readonly rows: number
  readonly rowsPerSecond: number
  readonly loads: number
  /** Attempts beyond the first: each one followed a "too many versions" answer. */
  readonly retries: number
  /** The sink ended with every row stored once (and no other row). */
  readonly noRowLost: boolean
  readonly error?: string | undefined
  /** Adaptive: the gauge's value at the start of each load (mean, max, last). */
  readonly limitMean?: number | undefined
  readonly limitMax?: number | undefined
  readonly limitLast?: number | undefined
}

export interface Server {
  readonly capacity: number
  readonly baseMs: number
  readonly perLoadMs: number
}

const Row = Schema.Struct({ id: ColumnType.Int, v: Schema.String })
type Row = typeof Row.Type

const ROWS_PER_LOAD = Number(process.env["BENCH_ADAPTIVE_ROWS_PER_LOAD"] ?? 500)

let seq = 0

const run = (mode: AdaptiveFigure["mode"], concurrency: number, rows: ReadonlyArray<Row>, server: Server) =>
  Effect.gen(function*() {
    const em = yield* StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 2 })
    const table = `adaptive_${mode}_${concurrency}_${++seq}`
    yield* em.createTable({
      database: "db",
      table,
      model: "DUPLICATE",
      key: [],
      columns: [{ name: "id", type: "INT" }, { name: "v", type: "VARCHAR(32)" }]
    })
    yield* em.addFault({ node: "be", path: "_stream_load", action: { _tag: "overload", ...server } })
    const config = StarRocksConfig.make({
      loadUrl: em.fe,
      database: "db",
      table,
      username: "root",
      password: Redacted.make(""),
      allowSmallBuffers: true,
      maxRows: ROWS_PER_LOAD,
      maxBytes: 64 * 1048576,
      ioThreadCount: concurrency,
      maxRetries: 10,
      retryInterval: 20,
      retryMaxDelay: 500,
      ...(mode === "adaptive" ? { adaptiveConcurrency: true, adaptiveConcurrencyInitial: 1 } : {})
    })
    // the table's gauge at the start of each load (the test's way: no timer)
    const limits: Array<number> = []
    const gauge = Metric.value(
      SinkMetrics.adaptiveConcurrencyLimit.pipe(Metric.tagged("table", SinkMetrics.tableTag("db", table)))
    )
    const client = Layer.scoped(
      LoadClient.LoadClient,
      Effect.map(LoadClient.make(config), (c) => ({
        ...c,
        loadBatch: (request: LoadClient.LoadRequest) =>
          Effect.zipRight(
            Effect.flatMap(gauge, (g) => Effect.sync(() => limits.push(g.value))),
            c.loadBatch(request)
          )
      }))
    )
    const started = performance.now()
    const exit = yield* Stream.fromIterable(rows).pipe(
      Stream.rechunk(ROWS_PER_LOAD),
      Stream.run(StarRocksSink.make(Row)),
      Effect.provide(Layer.merge(StarRocksSink.layer(config), client)),
      Effect.exit
    )
    const seconds = (performance.now() - started) / 1000
    const stored = (yield* em.rows("db", table)).map((r) => Number(r["id"])).sort((a, b) => a - b)
    const noRowLost = stored.length === rows.length && stored.every((id, i) => id === i)
    const summary = Exit.isSuccess(exit) ? exit.value : undefined
    return {
      mode,
      concurrency,
      rows: rows.length,
      rowsPerSecond: Math.round(stored.length / seconds),
      loads: summary?.loads ?? 0,
      retries: summary?.retries ?? 0,
      noRowLost: noRowLost && summary !== undefined,
      ...(Exit.isFailure(exit) ? { error: String(exit.cause).slice(0, 200) } : {}),
      ...(mode === "adaptive" && limits.length > 0 ?
        {
          limitMean: Number((limits.reduce((a, b) => a + b, 0) / limits.length).toFixed(2)),
          limitMax: Math.max(...limits),
          limitLast: limits.at(-1)
        } :
        {})
    } satisfies AdaptiveFigure
  }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None))

/** The best run of each mode (by rows/s) over `rounds` rounds (the sweep then adaptive, in each round). */
export const runAdaptive = async (
  rowCount: number,
  rounds: number,
  server: Server
): Promise<ReadonlyArray<AdaptiveFigure>> => {
  const rows = Array.from({ length: rowCount }, (_, id): Row => ({ id, v: `row-${id}` }))
  const modes: ReadonlyArray<readonly [AdaptiveFigure["mode"], number]> = [
    ["fixed", 1],
    ["fixed", 2],
    ["fixed", 4],
    ["fixed", 8],
    ["fixed", 16],
    ["adaptive", 16]
  ]
  const byMode = new Map<string, Array<AdaptiveFigure>>()
  for (let round = 0; round < rounds; round++) {
    for (const [mode, concurrency] of modes) {
      const figure = await Effect.runPromise(run(mode, concurrency, rows, server))
      const key = `${mode}${concurrency}`
      byMode.set(key, [...(byMode.get(key) ?? []), figure])
    }
  }
  return modes.map(([mode, concurrency]) => {
    const runs = [...byMode.get(`${mode}${concurrency}`)!].sort((a, b) => b.rowsPerSecond - a.rowsPerSecond)
    return runs[0]!
  })
}

/** The printed lines, and the verdict: adaptive at least the best fixed rows/s, no row lost. */
export const report = (figures: ReadonlyArray<AdaptiveFigure>, server: Server): ReadonlyArray<string> => {
  const fixed = figures.filter((f) => f.mode === "fixed")
  const best = fixed.reduce((a, b) => (b.rowsPerSecond > a.rowsPerSecond ? b : a))
  const adaptive = figures.find((f) => f.mode === "adaptive")
  const lines = figures.map((f) =>
    `adaptive bench, ${
      f.mode === "fixed" ? `fixed concurrency ${f.concurrency}` : `adaptive (max ${f.concurrency})`
    }: ` +
    `${f.rowsPerSecond.toLocaleString()} rows/s, ${f.loads} loads, ${f.retries} retries, ` +
    `${f.noRowLost ? "every row once" : `ROWS LOST${f.error !== undefined ? ` (${f.error})` : ""}`}` +
    (f.limitMean !== undefined ? `, limit mean ${f.limitMean} max ${f.limitMax} last ${f.limitLast}` : "")
  )
  lines.unshift(
    `adaptive bench: slow server, ${server.baseMs} ms + ${server.perLoadMs} ms per other load in flight, ` +
      `"too many versions" beyond ${server.capacity} loads in flight`
  )
  if (adaptive !== undefined) {
    lines.push(
      `adaptive bench: adaptive ${adaptive.rowsPerSecond.toLocaleString()} rows/s vs best fixed (${best.concurrency}) ` +
        `${best.rowsPerSecond.toLocaleString()} rows/s = ${
          (adaptive.rowsPerSecond / best.rowsPerSecond).toFixed(3)
        } ×; ` +
        `${adaptive.rowsPerSecond >= best.rowsPerSecond && adaptive.noRowLost ? "PASS" : "FAIL"}`
    )
  }
  return lines
}

export const serverFromEnv = (): Server => ({
  capacity: Number(process.env["BENCH_ADAPTIVE_CAPACITY"] ?? 6),
  baseMs: Number(process.env["BENCH_ADAPTIVE_BASE_MS"] ?? 100),
  perLoadMs: Number(process.env["BENCH_ADAPTIVE_PER_LOAD_MS"] ?? 15)
})

if (process.argv[1] !== undefined && Url.pathToFileURL(process.argv[1]).href === import.meta.url) {
  const rowCount = Number(process.argv[2] ?? 100_000)
  const rounds = Number(process.argv[3] ?? 1)
  const server = serverFromEnv()
  runAdaptive(rowCount, rounds, server).then((figures) => {
    for (const line of report(figures, server)) console.log(line)
    console.log(JSON.stringify({ adaptive: figures }))
  }).catch((e) => {
    console.error(e)
    process.exit(1)
  })
}
