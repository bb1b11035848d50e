/**
 * One-row chunks, alone: the sink (CSV, into the null endpoint) and Effect's own stream of one-row chunks into a
 * no-op sink, alternating, best of `ROUNDS` each. For profiling the per-chunk path:
 * `node --cpu-prof --import tsx packages/sink/bench/oneRowProfile.ts [rows] [rounds]`
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import { Effect, Sink, Stream } from "effect"
import { runSink, startEndpoint } from "./sinkRun.js"

const { child, port } = await startEndpoint()
const rows = Array.from(ReferenceRows.rows(Number(process.argv[2] ?? 300_000)))
const rounds = Number(process.argv[3] ?? 5)
const rate = async (f: () => Promise<unknown>) => {
  const t0 = performance.now()
  await f()
  return rows.length / ((performance.now() - t0) / 1000)
}
let sink = 0
let noop = 0
for (let k = 0; k < rounds; k++) {
  sink = Math.max(sink, await rate(() => runSink(rows, port, "csv", 1)))
  noop = Math.max(
    noop,
    await rate(() =>
      Effect.runPromise(Stream.run(Stream.rechunk(Stream.fromIterable(rows), 1), Sink.forEachChunk(() => Effect.void)))
    )
  )
}
console.log(JSON.stringify({ sink: Math.round(sink), noop: Math.round(noop), ratio: Number((sink / noop).toFixed(3)) }))
child.kill("SIGTERM")
