/**
 * One-row chunks, alone: the sink (CSV, into the null endpoint) and Effect's own stream of one-row chunks into a
 * no-op sink, alternating, best of `ROUNDS` each. For profiling the per-chunk path:
 * `node --cpu-prof --import tsx packages/sink/bench/oneRowProfile.ts [rows] [rounds] [heapRows]`
 *
 * Prints each round's figures too (rows/s by wall clock and by CPU time, and the GC pauses of the run by kind), so
 * that a bimodal spread can be traced to its side. `heapRows` (default 0) keeps that many more reference rows
 * alive, as `npm run bench` does (it builds 2,000,000 and slices the first 300,000 for this figure).
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import { Effect, Sink, Stream } from "effect"
import { PerformanceObserver } from "node:perf_hooks"
import { runSink, startEndpoint } from "./sinkRun.js"

const { child, port } = await startEndpoint()
const n = Number(process.argv[2] ?? 300_000)
const rounds = Number(process.argv[3] ?? 5)
const heapRows = Number(process.argv[4] ?? 0)
const all = Array.from(ReferenceRows.rows(Math.max(n, heapRows)))
const rows = all.slice(0, n)

// GC pauses (kind 1 scavenge, 4 mark-compact, 8 incremental marking, 16 weak callbacks), by start time: entries
// arrive late (after the run that caused them), so each run takes those that started inside it
const pauses: Array<{ at: number; ms: number; kind: number }> = []
const observer = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0
    pauses.push({ at: e.startTime, ms: e.duration, kind })
  }
})
observer.observe({ entryTypes: ["gc"] })
const settle = () => new Promise((r) => setTimeout(r, 20))

interface Run {
  readonly rate: number
  readonly cpuRate: number
  readonly scavenges: number
  readonly markCompacts: number
  readonly gcMs: number
  readonly mcMs: number
}
const run = async (f: () => Promise<unknown>): Promise<Run> => {
  await settle()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await f()
  const s = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  await settle()
  const mine = pauses.filter((p) => p.at >= t0 && p.at < t0 + s * 1000)
  return {
    rate: rows.length / s,
    cpuRate: rows.length / ((cpu.user + cpu.system) / 1e6),
    scavenges: mine.filter((p) => p.kind === 1).length,
    markCompacts: mine.filter((p) => p.kind === 4).length,
    gcMs: Math.round(mine.reduce((a, p) => a + p.ms, 0)),
    mcMs: Math.round(mine.filter((p) => p.kind === 4).reduce((a, p) => a + p.ms, 0))
  }
}
const sinkRun = () => runSink(rows, port, "csv", 1)
const noopRun = () =>
  Effect.runPromise(Stream.run(Stream.rechunk(Stream.fromIterable(rows), 1), Sink.forEachChunk(() => Effect.void)))

const perRound: Array<Record<string, number>> = []
let sink = 0
let noop = 0
let sinkCpu = 0
let noopCpu = 0
for (let k = 0; k < rounds; k++) {
  const a = await run(sinkRun)
  const b = await run(noopRun)
  sink = Math.max(sink, a.rate)
  noop = Math.max(noop, b.rate)
  sinkCpu = Math.max(sinkCpu, a.cpuRate)
  noopCpu = Math.max(noopCpu, b.cpuRate)
  perRound.push({
    sink: Math.round(a.rate),
    noop: Math.round(b.rate),
    ratio: Number((a.rate / b.rate).toFixed(3)),
    cpuRatio: Number((a.cpuRate / b.cpuRate).toFixed(3)),
    sinkGc: a.gcMs,
    sinkMc: a.markCompacts,
    noopGc: b.gcMs,
    noopMc: b.markCompacts,
    sinkMs: a.mcMs,
    noopMs: b.mcMs
  })
}
observer.disconnect()
for (const r of perRound) console.log(JSON.stringify(r))
const ratios = perRound.map((r) => r.ratio!).sort((x, y) => x - y)
console.log(JSON.stringify({
  sink: Math.round(sink),
  noop: Math.round(noop),
  ratio: Number((sink / noop).toFixed(3)),
  median: ratios[ratios.length >> 1],
  cpuRatio: Number((sinkCpu / noopCpu).toFixed(3))
}))
child.kill("SIGTERM")
