/**
 * An entry for callgrind: the bench's sink (sinkRun.ts `runSink`: CSV, 4,096-row chunks, into the null endpoint)
 * over `rows` reference rows, `reps` times, one table or `tables` routed by `row.id % tables`. Run it twice with
 * different `reps`: the difference of the two instruction counts is what the runs more cost, with start-up and the
 * first fill cancelled. The null endpoint is a child process, which callgrind does not follow.
 *
 *   npx esbuild packages/sink/bench/tablesCallgrind.ts --bundle --platform=node --format=esm \
 *     --outfile=/tmp/cg/tc.mjs && cp packages/sink/bench/nullEndpoint.mjs /tmp/cg/
 *   BENCH_MAX_BYTES=28311552 BENCH_MAX_ROWS=150000 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg/x.cg \
 *     node --single-threaded /tmp/cg/tc.mjs 300000 2 20
 *
 * (the bundle finds nullEndpoint.mjs beside itself). `BENCH_MAX_BYTES` and `BENCH_MAX_ROWS` scale the buffers with
 * the rows (sinkRun.ts `config`): 300,000 rows at max-bytes 27 MiB and max-rows 150,000 make the loads that
 * 1,000,000 rows make at the defaults. Prints the loads of each run (the summary's) and the requests the null
 * endpoint answered.
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import { runSink, startEndpoint } from "./sinkRun.js"

const count = Number(process.argv[2] ?? 300_000)
const reps = Number(process.argv[3] ?? 2)
const tables = Number(process.argv[4] ?? 20)
const rows = Array.from(ReferenceRows.rows(count))
const { child, port, stats } = await startEndpoint()
const loads: Array<number> = []
for (let i = 0; i < reps; i++) {
  const summary = await runSink(rows, port, "csv", 4096, tables)
  loads.push(summary.loads)
}
console.log(JSON.stringify({ rows: count, reps, tables, loads, requests: (await stats()).loads }))
child.kill()
