/**
 * Issue 8's exactly-once ratio alone: the same N rows (default 2,000,000), CSV, 4,096-row chunks, into the null
 * endpoint (nullEndpoint.mjs, Stream Load and the transaction interface), through `StarRocksSink.make` and through
 * `Checkpoint.withBarriers` (a barrier every 500,000 rows) and `StarRocksSink.exactlyOnce`, alternating, `rounds`
 * rounds (default 3) after a warm-up, as `npm run bench` runs them (`sinkRun.ts`). Per run: wall clock, this
 * process's CPU seconds (and of them the kernel's, the CPU spent before the first row was taken and after the last,
 * the minor page faults), the tail (from the last row taken to the run's end); the last line is one JSON object
 * (the best-of ratio as the bench takes it, the median of the rounds' ratios, the CPU ratio and medians).
 * With `phases` (the third argument, 1) it prints where each run's wall time went: each transaction call's and
 * load's span (begin, load, prepare, commit; Stream Load) from the run's start, and how long the row loop held each
 * chunk that carries a barrier (from its pull to the next pull, measured upstream of the sink).
 * `nice -n -20 npx tsx packages/sink/bench/eoRatio.ts [N] [rounds] [phases] [alo|eo]`
 *
 * `alo` or `eo` runs one sink only. `EO_EVERY_ROWS` changes the rows between barriers; `EO_BENCH_ORDER=1` runs each
 * round as bench.ts does, with an unmeasured at-least-once run into 20 tables between the two measured runs (and
 * bench.ts's warm-up); `EO_MARKS=1` prints each run's bounds on the clock of V8's CPU profiles (to split a
 * `--cpu-prof` profile by run) and on performance.now()'s (to split `node --trace-gc`'s lines); `CALLGRIND=1` (under
 * `valgrind --tool=callgrind --instr-atstart=no`) counts instructions during the measured runs only, one dump per
 * run, from round `CALLGRIND_FROM` on. `EO_ALLOC=1` samples each measured run's allocations (V8's sampling heap
 * profiler) and prints, by allocating function, what the run still held at its end. For profiles with stable names, bundle it with esbuild (as
 * scripts/crash-test.ts bundles its child) beside a copy of nullEndpoint.mjs and run the bundle with plain node.
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import type { Context, Exit, Option } from "effect"
import { Chunk, Clock, Effect, Logger, LogLevel, Schema, Stream, Tracer } from "effect"
import * as ChildProcess from "node:child_process"
import * as Inspector from "node:inspector/promises"
import * as V8 from "node:v8"
import { Checkpoint, Checkpointer, StarRocksSink } from "../src/index.js"
import { ReferenceRow } from "./referenceSchema.js"
import { config, runSink, startEndpoint } from "./sinkRun.js"

const N = Number(process.argv[2] ?? 2_000_000)
const rounds = Number(process.argv[3] ?? 3)
const phases = process.argv[4] === "1"
// "alo" or "eo": only that sink's runs (for a CPU profile of one of them)
const only = process.argv[5]
// the exactly-once runs' rows between barriers (default 500,000)
const everyRows = Number(process.env["EO_EVERY_ROWS"] ?? 500_000)
// EO_BENCH_ORDER=1: each round as bench.ts runs it, an at-least-once run into 20 tables (unmeasured) between the
// at-least-once run and the exactly-once run, with bench.ts's warm-up (CSV, JSON, 20 tables, one-row chunks)
const benchOrder = process.env["EO_BENCH_ORDER"] === "1"
type Row = typeof ReferenceRow.Type

const { child, port } = await startEndpoint()
const rows = Array.from(ReferenceRows.rows(N))

let t0 = 0
let firstRowAt = 0
let lastRowAt = 0
// this process's CPU time (µs) when the first row was taken and when the last was
let firstRowCpu = 0
let lastRowCpu = 0
const cpuNow = () => {
  const c = process.cpuUsage()
  return c.user + c.system
}
function* source(of: ReadonlyArray<Row>) {
  firstRowAt = performance.now()
  firstRowCpu = cpuNow()
  yield* of
  lastRowAt = performance.now()
  lastRowCpu = cpuNow()
}

// the spans of the client's calls, as [name, start ms, end ms] from the run's start
let spans: Array<[string, number, number]> = []
class RecordedSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId = "s"
  readonly traceId = "t"
  readonly sampled = true
  readonly attributes = new Map<string, unknown>()
  status: Tracer.SpanStatus
  constructor(
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    readonly links: Array<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    this.status = { _tag: "Started", startTime }
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>) {
    const startTime = (this.status as { startTime: bigint }).startTime
    this.status = { _tag: "Ended", startTime, endTime, exit }
    if (phases) {
      const ms = (t: bigint) => Number(t) / 1e6 - clockOffset - t0
      spans.push([this.name.replace("starrocks.", ""), ms(startTime), ms(endTime)])
    }
  }
  attribute(key: string, value: unknown) {
    this.attributes.set(key, value)
  }
  event() {}
  addLinks() {}
}
const tracer = Tracer.make({
  span: (name, parent, context, links, startTime, kind) =>
    new RecordedSpan(name, parent, context, [...links], startTime, kind),
  context: (f) => f()
})
// the spans' clock (Effect's, in nanoseconds) on performance.now()'s scale
const clockOffset = Number(Effect.runSync(Clock.currentTimeNanos)) / 1e6 - performance.now()

// the row loop's hold of each chunk: [ms from the run's start, hold ms, whether it carries a barrier]
let holds: Array<[number, number, boolean]> = []
let pulledAt = 0
let pulledBarrier = false
const measureHolds = <A>(s: Stream.Stream<A>) =>
  phases
    ? Stream.mapChunks(s, (chunk) => {
      const now = performance.now()
      if (pulledAt > 0) holds.push([pulledAt - t0, now - pulledAt, pulledBarrier])
      pulledAt = now
      pulledBarrier = Chunk.some(chunk, Checkpoint.isBarrier)
      return chunk
    })
    : s

let runs = 0
const atLeastOnce = (of: ReadonlyArray<Row>) =>
  Stream.fromIterable(source(of)).pipe(
    Stream.rechunk(4096),
    Stream.run(StarRocksSink.make(ReferenceRow)),
    Effect.provide(StarRocksSink.layer(config(port, "csv"))),
    Effect.withTracer(tracer),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    Effect.runPromise
  )
const exactlyOnce = (of: ReadonlyArray<Row>, everyRows = 500_000) =>
  Stream.fromIterable(source(of)).pipe(
    Stream.rechunk(4096),
    Checkpoint.withBarriers({ position: (r: Row) => r.id, everyRows }),
    measureHolds,
    Stream.run(StarRocksSink.exactlyOnce(ReferenceRow, { position: Schema.Number })),
    Effect.provide(
      StarRocksSink.layer({ ...config(port, "csv", `eo-ratio-${process.pid}-${runs++}`), semantic: "exactly-once" })
    ),
    Effect.provide(Checkpointer.layerMemoryForTests),
    Effect.withTracer(tracer),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    Effect.runPromise
  )

interface Run {
  readonly wall: number
  readonly cpu: number
  /** Of `cpu`, in the kernel. */
  readonly sys: number
  /** Minor page faults. */
  readonly faults: number
  /** The wall time (s) before the first row was taken (the sink's start). */
  readonly start: number
  /** Of `cpu`, before the first row was taken (the sink's start) and after the last (its end). */
  readonly startCpu: number
  readonly endCpu: number
  readonly tail: number
}
// under `valgrind --tool=callgrind --instr-atstart=no` (CALLGRIND=1): instructions counted during each measured run
// only, each run dumped to a file of its own
// (from round CALLGRIND_FROM on, default 1)
let round = 1
const callgrind = (what: string) => {
  if (process.env["CALLGRIND"] === "1" && round >= Number(process.env["CALLGRIND_FROM"] ?? 1)) {
    ChildProcess.execSync(`callgrind_control ${what} ${process.pid}`)
  }
}
// EO_GC=1 (with node's --expose-gc): a full collection before each measured run, so that none of the old generation's
// marking (the pre-built rows, about 1 GB at 2,000,000) lands in a run
const fullGc = process.env["EO_GC"] === "1" ? (globalThis as { gc?: () => void }).gc : undefined
// the old generation's bytes in use (old and large-object spaces): what a run promoted, when no full collection
// fell in it (EO_GC=1 starts each run from a collected heap)
const oldBytes = () => {
  let n = 0
  for (const s of V8.getHeapSpaceStatistics()) {
    if (s.space_name === "old_space" || s.space_name === "large_object_space") n += s.space_used_size
  }
  return n
}
// of them, the large-object space's (objects over about 128 KiB, allocated there directly, not promoted)
const largeBytes = () =>
  V8.getHeapSpaceStatistics().find((s) => s.space_name === "large_object_space")?.space_used_size ?? 0
// EO_ALLOC=1: V8's sampling heap profiler from each measured run's start to its end (one sample every
// EO_ALLOC_INTERVAL bytes, default 16384); what it still holds at the end is what the run allocated and kept (what
// survived its scavenges, promoted or about to be), printed by allocating function, largest first
const allocSession = process.env["EO_ALLOC"] === "1" ? new Inspector.Session() : undefined
allocSession?.connect()
interface AllocNode {
  callFrame: { functionName: string; url: string; lineNumber: number }
  selfSize: number
  children: ReadonlyArray<AllocNode>
}
const allocTop = (root: AllocNode) => {
  const by = new Map<string, number>()
  const walk = (n: AllocNode, path: string) => {
    const f = n.callFrame
    const here = `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.lineNumber + 1}`
    if (n.selfSize > 0) {
      const key = `${here} <- ${path}`
      by.set(key, (by.get(key) ?? 0) + n.selfSize)
    }
    for (const c of n.children) walk(c, here)
  }
  walk(root, "")
  const all = [...by].sort((a, b) => b[1] - a[1])
  const total = all.reduce((n, [, b]) => n + b, 0)
  console.log(`  kept: ${(total / 2 ** 20).toFixed(2)} MiB`)
  for (const [k, b] of all.slice(0, 12)) console.log(`    ${(b / 1024).toFixed(0).padStart(6)} KiB ${k}`)
}
const measure = async (which: string, f: () => Promise<unknown>): Promise<Run> => {
  fullGc?.()
  const old0 = oldBytes()
  const large0 = largeBytes()
  await allocSession?.post("HeapProfiler.startSampling", {
    samplingInterval: Number(process.env["EO_ALLOC_INTERVAL"] ?? 16384)
  })
  callgrind("-i on")
  spans = []
  holds = []
  pulledAt = 0
  const h0 = process.hrtime.bigint()
  t0 = performance.now()
  const c0 = process.cpuUsage()
  const cpu0 = c0.user + c0.system
  const f0 = process.resourceUsage().minorPageFault
  await f()
  const t1 = performance.now()
  // the run's bounds on the clock of V8's CPU profiles (microseconds), to split a profile by run
  // (and on performance.now()'s, as `node --trace-gc` stamps its lines, to count the collections of each run)
  if (process.env["EO_MARKS"] === "1") {
    console.log(
      `mark ${which} ${h0 / 1000n} ${process.hrtime.bigint() / 1000n} ${t0.toFixed(0)} ${t1.toFixed(0)} ` +
        `old+${((oldBytes() - old0) / 2 ** 20).toFixed(1)}MiB (large+${
          ((largeBytes() - large0) / 2 ** 20).toFixed(1)
        }MiB)`
    )
  }
  const c = process.cpuUsage(c0)
  if (allocSession !== undefined) {
    const { profile } = await allocSession.post("HeapProfiler.getSamplingProfile")
    await allocSession.post("HeapProfiler.stopSampling")
    console.log(`alloc ${which}`)
    allocTop((profile as unknown as { head: AllocNode }).head)
  }
  callgrind(`-d ${which}`)
  callgrind("-i off")
  const run = {
    wall: (t1 - t0) / 1000,
    cpu: (c.user + c.system) / 1e6,
    sys: c.system / 1e6,
    faults: process.resourceUsage().minorPageFault - f0,
    start: (firstRowAt - t0) / 1000,
    startCpu: (firstRowCpu - cpu0) / 1e6,
    endCpu: (cpu0 + c.user + c.system - lastRowCpu) / 1e6,
    tail: (t1 - lastRowAt) / 1000
  }
  if (phases) {
    const f1 = (x: number) => x.toFixed(1)
    console.log(
      `  ${which}: wall ${f1(run.wall * 1000)} ms, first row at ${f1(firstRowAt - t0)} ms, last row at ${
        f1(lastRowAt - t0)
      } ms`
    )
    for (const [name, a, b] of spans.sort((x, y) => x[1] - y[1])) {
      console.log(`    ${name.padEnd(22)} ${f1(a).padStart(8)} → ${f1(b).padStart(8)}  (${f1(b - a)} ms)`)
    }
    if (holds.length > 0) {
      const ordinary = holds.filter((h) => !h[2]).map((h) => h[1]).sort((a, b) => a - b)
      console.log(
        `    chunks held: median ${f1(ordinary[ordinary.length >> 1] ?? 0)} ms; barrier chunks: ${
          holds.filter((h) => h[2]).map((h) => `${f1(h[1])} ms at ${f1(h[0])}`).join(", ")
        }`
      )
    }
  }
  return run
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

// warm-up (JIT), as bench.ts
await atLeastOnce(rows.slice(0, 50_000))
if (benchOrder) {
  await runSink(rows.slice(0, 50_000), port, "json")
  await runSink(rows.slice(0, 50_000), port, "csv", 4096, 20)
  await runSink(rows.slice(0, 50_000), port, "csv", 1)
}
await exactlyOnce(rows.slice(0, 50_000), 20_000)

const alo: Array<Run> = []
const eo: Array<Run> = []
for (let k = 0; k < rounds; k++) {
  round = k + 1
  const skip = { wall: NaN, cpu: NaN, sys: NaN, faults: NaN, start: NaN, startCpu: NaN, endCpu: NaN, tail: NaN }
  alo.push(only === "eo" ? skip : await measure("at-least-once", () => atLeastOnce(rows)))
  if (benchOrder) await runSink(rows, port, "csv", 4096, 20)
  eo.push(only === "alo" ? skip : await measure("exactly-once", () => exactlyOnce(rows, everyRows)))
  const a = alo[k]!
  const e = eo[k]!
  console.log(
    `round ${k + 1}: at-least-once ${Math.round(N / a.wall).toLocaleString()} rows/s (${a.cpu.toFixed(2)} s CPU, ` +
      `tail ${(a.tail * 1000).toFixed(0)} ms), exactly-once ${Math.round(N / e.wall).toLocaleString()} rows/s ` +
      `(${e.cpu.toFixed(2)} s CPU, tail ${(e.tail * 1000).toFixed(0)} ms): ratio ${(a.wall / e.wall).toFixed(3)}, ` +
      `system CPU ${a.sys.toFixed(2)} / ${e.sys.toFixed(2)} s, page faults ${a.faults} / ${e.faults}, ` +
      `CPU ms before the first row ${(a.startCpu * 1000).toFixed(1)} / ${(e.startCpu * 1000).toFixed(1)}, ` +
      `after the last ${(a.endCpu * 1000).toFixed(1)} / ${(e.endCpu * 1000).toFixed(1)}, ` +
      `CPU ${(a.cpu / e.cpu).toFixed(3)}`
  )
}
const best = (runs: ReadonlyArray<Run>) => Math.min(...runs.map((r) => r.wall))
console.log(JSON.stringify({
  rows: N,
  rounds,
  ratio_best: Number((best(alo) / best(eo)).toFixed(3)),
  ratio_median: Number(median(alo.map((a, k) => a.wall / eo[k]!.wall)).toFixed(3)),
  cpu_ratio_median: Number(median(alo.map((a, k) => a.cpu / eo[k]!.cpu)).toFixed(3)),
  alo_cpu_median: Number(median(alo.map((a) => a.cpu)).toFixed(3)),
  eo_cpu_median: Number(median(eo.map((e) => e.cpu)).toFixed(3)),
  alo_tail_ms_median: Math.round(median(alo.map((a) => a.tail * 1000))),
  eo_tail_ms_median: Math.round(median(eo.map((e) => e.tail * 1000))),
  alo_first_row_ms_median: Number(median(alo.map((a) => a.start * 1000)).toFixed(1)),
  eo_first_row_ms_median: Number(median(eo.map((e) => e.start * 1000)).toFixed(1)),
  alo_start_cpu_ms_median: Number(median(alo.map((a) => a.startCpu * 1000)).toFixed(1)),
  eo_start_cpu_ms_median: Number(median(eo.map((e) => e.startCpu * 1000)).toFixed(1)),
  alo_end_cpu_ms_median: Number(median(alo.map((a) => a.endCpu * 1000)).toFixed(1)),
  eo_end_cpu_ms_median: Number(median(eo.map((e) => e.endCpu * 1000)).toFixed(1))
}))
child.kill("SIGTERM")
