/**
 * 20 tables interleaved against one table, by what instructions do not show: per run, the garbage collections (by
 * kind: scavenges, mark-compacts, and their time), the fresh buffers the encoders allocated (the buffer pool had
 * none of that size; counted through `Buffer.allocUnsafeSlow`, which only the pool calls in a run), the loads and
 * their sizes, and the tail (the share of the run after its last row was taken). The same sinks as tablesCpu.ts
 * (CSV into the null endpoint, `row.id % tables`), alternating in one process, `runs` rounds, the first dropped.
 *
 * `npx tsx packages/sink/bench/tablesGc.ts [rows] [runs] [tables]`; `BENCH_MAX_BYTES` and `BENCH_MAX_ROWS` as in
 * sinkRun.ts. docs/benchmark.md, session 15.
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import { PerformanceObserver } from "node:perf_hooks"
import { runSink, startEndpoint } from "./sinkRun.js"

const { child, port, stats } = await startEndpoint()
const rows = Array.from(ReferenceRows.rows(Number(process.argv[2] ?? 1_000_000)))
const runs = Number(process.argv[3] ?? 5)
const tables = Number(process.argv[4] ?? 20)

// GC entries (kind: 1 scavenge (minor), 2 mark-compact (major), 4 incremental marking, 8 weak callbacks)
const gc = { minor: 0, minorMs: 0, major: 0, majorMs: 0, other: 0, otherMs: 0 }
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind
    if (kind === 1) {
      gc.minor++
      gc.minorMs += e.duration
    } else if (kind === 2) {
      gc.major++
      gc.majorMs += e.duration
    } else {
      gc.other++
      gc.otherMs += e.duration
    }
  }
}).observe({ entryTypes: ["gc"] })

const fresh = { count: 0, bytes: 0 }
const allocUnsafeSlow = Buffer.allocUnsafeSlow
Buffer.allocUnsafeSlow = (size: number) => {
  fresh.count++
  fresh.bytes += size
  return allocUnsafeSlow(size)
}

let lastRowAt = 0
function* source() {
  yield* rows
  lastRowAt = performance.now()
}

const measure = async (many: boolean) => {
  const g0 = { ...gc }
  const f0 = { ...fresh }
  const s0 = await stats()
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await runSink(source(), port, "csv", 4096, many ? tables : 1)
  const t1 = performance.now()
  const c = process.cpuUsage(c0)
  // let the observer's entries of the run arrive
  await new Promise((r) => setTimeout(r, 20))
  const s1 = await stats()
  const mem = process.memoryUsage()
  return {
    cpu: (c.user + c.system) / 1e6,
    wall: (t1 - t0) / 1000,
    tail: (t1 - lastRowAt) / (t1 - t0),
    minor: gc.minor - g0.minor,
    minorMs: gc.minorMs - g0.minorMs,
    major: gc.major - g0.major,
    majorMs: gc.majorMs - g0.majorMs,
    otherMs: gc.otherMs - g0.otherMs,
    freshBuffers: fresh.count - f0.count,
    freshMB: (fresh.bytes - f0.bytes) / 2 ** 20,
    requests: s1.loads - s0.loads,
    externalMB: mem.external / 2 ** 20,
    heapMB: mem.heapUsed / 2 ** 20
  }
}
type Run = Awaited<ReturnType<typeof measure>>
const results: { many: Array<Run>; one: Array<Run> } = { many: [], one: [] }
const fmt = (r: Run) =>
  `cpu ${r.cpu.toFixed(3)} wall ${r.wall.toFixed(3)} tail ${r.tail.toFixed(3)} scavenges ${r.minor} (${
    r.minorMs.toFixed(0)
  } ms) mark-compacts ${r.major} (${r.majorMs.toFixed(0)} ms) other ${
    r.otherMs.toFixed(0)
  } ms fresh ${r.freshBuffers} (${r.freshMB.toFixed(1)} MiB) requests ${r.requests} external ${
    r.externalMB.toFixed(0)
  } MiB heap ${r.heapMB.toFixed(0)} MiB`
for (let k = 0; k < runs; k++) {
  for (const many of [true, false]) {
    const r = await measure(many)
    console.log(`run ${k} ${many ? "many" : "one "}: ${fmt(r)}`)
    if (k > 0) results[many ? "many" : "one"].push(r)
  }
}
const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const medians = (rs: ReadonlyArray<Run>) =>
  Object.fromEntries(
    (Object.keys(rs[0]!) as Array<keyof Run>).map((k) => [k, Number(median(rs.map((r) => r[k])).toFixed(3))])
  )
console.log(JSON.stringify({ tables, many: medians(results.many), one: medians(results.one) }))
child.kill("SIGTERM")
