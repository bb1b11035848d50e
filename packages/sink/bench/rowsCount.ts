/**
 * The sink's per-row work, for instruction counts (docs/benchmark.md, session 13): the reference rows, in 4,096-row
 * chunks, through one table or `tables` tables routed as the bench routes them (`names[row.id % tables]`), `reps`
 * times. Run it twice with two `reps` under callgrind and take the difference, so that start-up cancels.
 *
 * - `batcher`: the row loop alone, as the at-least-once sink builds it (internal/sink/batcher.ts over the router of
 *   internal/sink/routing.ts, `single` or `byFunction`, and the lanes of internal/sink/lane.ts), default buffers
 *   (max-bytes 90 MiB, max-rows 500,000); a sealed batch's buffers are handed back at once (no loads, no Effect
 *   beyond the batcher's own).
 * - `sink`: the whole sink into the null endpoint (sinkRun.ts `runSink`, CSV).
 * - `cpu`: `batcher` for one table and for `tables` tables in turn in one process, `reps` rounds of `rows` rows,
 *   the first dropped; prints the medians of the CPU seconds (user + system) of each (docs/benchmark.md, session
 *   15: the row loop's CPU, which instruction counts do not show whole). Not for callgrind.
 *
 * Bundle (ESM: the testkit and sinkRun.ts read `import.meta.url`; `sink` needs nullEndpoint.mjs beside the bundle),
 * then count:
 * `npx esbuild packages/sink/bench/rowsCount.ts --bundle --platform=node --format=esm --outfile=/tmp/r/rows.mjs`,
 * `cp packages/sink/bench/nullEndpoint.mjs /tmp/r/`,
 * `valgrind --tool=callgrind --callgrind-out-file=/tmp/x.cg node --single-threaded --expose-gc /tmp/r/rows.mjs batcher 20 2`.
 *
 * `node rows.mjs <batcher|sink|cpu> [tables] [reps] [rows]` (default 20 tables, 2 repetitions of 250,000 rows)
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import { Effect, Logger, LogLevel, Redacted } from "effect"
import * as Batcher from "../src/internal/sink/batcher.js"
import * as Routing from "../src/internal/sink/routing.js"
import * as StarRocksConfig from "../src/StarRocksConfig.js"
import { ReferenceRow } from "./referenceSchema.js"
import { runSink, startEndpoint } from "./sinkRun.js"

const mode = process.argv[2] ?? "batcher"
const tables = Number(process.argv[3] ?? 20)
const reps = Number(process.argv[4] ?? 2)
const n = Number(process.argv[5] ?? 250_000)
// the rows of a repetition come from a pool of distinct rows, taken in turn (ids 0 to POOL - 1, then again): a
// small heap, whose full GCs cost little and the same in every run; `gc()` (node --expose-gc) before each
// repetition starts each one from the same heap
const POOL = 6 * 4096
const pool = Array.from(ReferenceRows.rows(Math.min(POOL, n)))
const rows = Array.from({ length: n }, (_, i) => pool[i % pool.length]!)
const gc = (globalThis as { gc?: () => void }).gc
const names = Array.from({ length: tables }, (_, i) => `t${i}`)

const config = StarRocksConfig.make({
  loadUrl: ["127.0.0.1:1"],
  database: "db",
  table: "t",
  username: "root",
  password: Redacted.make(""),
  format: "csv"
})

const batcherRun = (tables: number) =>
  Effect.gen(function*() {
    const routing = tables <= 1
      ? Routing.single(ReferenceRow, {})
      : Routing.byFunction(ReferenceRow, (row) => names[row.id % tables]!, {})
    const router = yield* routing.build(config)
    let loads = 0
    let bytes = 0
    const batcher = yield* Batcher.make<unknown, Routing.RouteError, never>({
      router,
      maxRows: config.maxRows,
      maxBytes: config.maxBytes,
      clock: yield* Effect.clock,
      onSeal: (sealed) =>
        Effect.sync(() => {
          loads++
          bytes += sealed.body.byteLength
          sealed.release(sealed.body)
        })
    })
    for (let i = 0; i < rows.length; i += 4096) yield* batcher.onChunk(rows.slice(i, i + 4096))
    yield* batcher.locked(batcher.sealAll)
    return { loads, bytes }
  })

if (mode !== "batcher" && mode !== "sink" && mode !== "cpu") throw new Error(`mode ${mode}: batcher, sink or cpu`)
if (mode === "cpu") {
  const cpu: Record<string, Array<number>> = { one: [], many: [] }
  for (let r = 0; r < reps; r++) {
    for (const t of [tables, 1]) {
      const c0 = process.cpuUsage()
      await Effect.runPromise(batcherRun(t).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)))
      const c = process.cpuUsage(c0)
      if (r > 0) cpu[t === 1 ? "one" : "many"]!.push((c.user + c.system) / 1e6)
    }
  }
  const median = (xs: ReadonlyArray<number>) => {
    const s = [...xs].sort((a, b) => a - b)
    return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
  }
  console.log(JSON.stringify({
    tables,
    rows: n,
    cpu: { many: Number(median(cpu.many!).toFixed(3)), one: Number(median(cpu.one!).toFixed(3)) }
  }))
  process.exit(0)
}
const endpoint = mode === "sink" ? await startEndpoint() : undefined
for (let r = 0; r < reps; r++) {
  gc?.()
  if (endpoint === undefined) {
    const out = await Effect.runPromise(batcherRun(tables).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)))
    console.log(`batcher ${tables} tables: ${out.loads} loads, ${out.bytes} bytes`)
  } else {
    await runSink(rows, endpoint.port, "csv", 4096, tables)
    const stats = await endpoint.stats()
    console.log(`sink ${tables} tables: ${stats.loads} requests, ${stats.bytes} bytes so far`)
  }
}
endpoint?.child.kill()
