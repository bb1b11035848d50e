/**
 * 20 tables interleaved against one table, alone: the same rows through the sink (CSV, into the null endpoint),
 * routed by `row.id % 20` and to one table, alternating, best of `ROUNDS` each. For profiling the many-table path:
 * `node --cpu-prof --import tsx packages/sink/bench/tablesProfile.ts [rows] [rounds] [tables] [oneMaxRows]`
 *
 * `oneMaxRows` (default: the config's max-rows) gives the one-table runs that `maxRows`, so that one table makes as
 * many loads as the tables do (1,000,000 rows and 20 tables: 36 loads; one table at max-rows 28,000: 36 too): the
 * two then differ by the routing, the interleaving of lanes and the startup check's `_schema` GET of each table (20
 * against one; tablesCpu.ts counts them and runs 20 tables without them) (docs/benchmark.md, sessions 11 and 12).
 * `BENCH_ROUTE=blocks` (a table per chunk of 4,096 rows) or `BENCH_ROUTE=first` (every row to the first table, through
 * the same routing function) routes the many-table runs otherwise (sinkRun.ts), to take their cost apart
 * (docs/benchmark.md, session 11).
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import { runSink, startEndpoint } from "./sinkRun.js"

const { child, port } = await startEndpoint()
const rows = Array.from(ReferenceRows.rows(Number(process.argv[2] ?? 1_000_000)))
const rounds = Number(process.argv[3] ?? 3)
const tables = Number(process.argv[4] ?? 20)
const oneMaxRows = process.argv[5]
// the time the last row was taken from the source: what follows it is the tail (the last batches' loads)
let lastRowAt = 0
function* source() {
  yield* rows
  lastRowAt = performance.now()
}
const tails = { many: 0, one: 0 }
const cpu = { many: Infinity, one: Infinity }
const rate = async (which: "many" | "one", f: () => Promise<unknown>) => {
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  await f()
  const t1 = performance.now()
  const c = process.cpuUsage(c0)
  cpu[which] = Math.min(cpu[which], (c.user + c.system) / 1e6)
  tails[which] = Math.max(tails[which], (t1 - lastRowAt) / (t1 - t0))
  return rows.length / ((t1 - t0) / 1000)
}
let many = 0
let one = 0
for (let k = 0; k < rounds; k++) {
  many = Math.max(many, await rate("many", () => runSink(source(), port, "csv", 4096, tables)))
  if (oneMaxRows !== undefined) process.env["BENCH_MAX_ROWS"] = oneMaxRows
  one = Math.max(one, await rate("one", () => runSink(source(), port, "csv", 4096, 1)))
  if (oneMaxRows !== undefined) delete process.env["BENCH_MAX_ROWS"]
}
console.log(
  `least CPU seconds of this process per run: ${tables} tables ${cpu.many.toFixed(2)}, one ${cpu.one.toFixed(2)}`
)
console.log(
  `largest share of a run after its last row: ${tables} tables ${tails.many.toFixed(3)}, one ${tails.one.toFixed(3)}`
)
console.log(
  JSON.stringify({ tables, many: Math.round(many), one: Math.round(one), ratio: Number((many / one).toFixed(3)) })
)
child.kill("SIGTERM")
