/**
 * Peak RSS of the bench's many-table sink: `rows` generated reference rows (never all in memory) through the sink
 * of sinkRun.ts (CSV, 4,096-row chunks, `tables` tables routed by `row.id % tables`, 1 for the one-table sink)
 * into the null endpoint (a child process of its own). Prints `{"rows","tables","loads","peak_rss_mb","seconds"}`,
 * the peak read from `VmHWM`. Bundle it with esbuild and run it by plain node, as rss.ts is run by the bench:
 *
 *   npx esbuild packages/sink/bench/tablesRss.ts --bundle --platform=node --format=esm --outfile=/tmp/rss/tr.mjs
 *   cp packages/sink/bench/nullEndpoint.mjs /tmp/rss/ && node /tmp/rss/tr.mjs 10000000 20
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import * as Fs from "node:fs"
import { runSink, startEndpoint } from "./sinkRun.js"

const rows = Number(process.argv[2] ?? 1_000_000)
const tables = Number(process.argv[3] ?? 20)
const { child, port } = await startEndpoint()
const started = Date.now()
const summary = await runSink(ReferenceRows.rows(rows), port, "csv", 4096, tables)
const m = /VmHWM:\s+(\d+) kB/.exec(Fs.readFileSync("/proc/self/status", "utf8"))
console.log(JSON.stringify({
  rows: summary.rows,
  tables,
  loads: summary.loads,
  peak_rss_mb: m ? Math.round(Number(m[1]) / 1024) : undefined,
  seconds: (Date.now() - started) / 1000
}))
child.kill()
