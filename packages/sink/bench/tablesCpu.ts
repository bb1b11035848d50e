/**
 * 20 tables interleaved against one table, in CPU seconds of this process and in HTTP requests: the bench's two
 * sinks (built as sinkRun.ts builds them: CSV into the null endpoint, the many-table one routed by
 * `row.id % tables`), and the many-table one again with `startupCheck: false` (without the startup check's
 * `GET /api/{db}/{table}/_schema` per table: internal/startup.ts), alternating in one process, `runs` rounds, the
 * first round dropped (compilation, the buffer pool's first fill).
 *
 * Per run: CPU seconds (user + system, and system alone), wall seconds, and the requests the null endpoint answered
 * besides transactions and `get_load_state` (its `loads` count: the loads, and each table's `_schema` GET). At the
 * end the medians of each sink, the ratios of the medians (one table's ÷ the many tables'), and the median of each
 * round's own ratio (a busy machine slows the runs of a round alike). On a quiet machine the bench's rows/s ratio
 * follows the wall ratio; a single run moves by ±20% with the machine, so compare medians, alternating builds.
 *
 * `npx tsx packages/sink/bench/tablesCpu.ts [rows] [runs] [tables]`; `TABLES_CPU_QUIET=1` prints the medians only,
 * `TABLES_CPU_UNCHECKED=0` leaves the sink without the startup check out.
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import { Effect, Logger, LogLevel, Stream } from "effect"
import { StarRocksSink } from "../src/index.js"
import { ReferenceRow } from "./referenceSchema.js"
import { config, startEndpoint } from "./sinkRun.js"

const { child, port, stats } = await startEndpoint()
const rows = Array.from(ReferenceRows.rows(Number(process.argv[2] ?? 1_000_000)))
const runs = Number(process.argv[3] ?? 7)
const tables = Number(process.argv[4] ?? 20)
const quiet = process.env["TABLES_CPU_QUIET"] === "1"
const names = Array.from({ length: tables }, (_, i) => `t${i}`)

/** One run: one table, or `tables` routed as the bench routes them; with or without the startup check. */
const runOnce = (many: boolean, startupCheck: boolean) =>
  Stream.fromIterable(rows).pipe(
    Stream.rechunk(4096),
    Stream.run(
      many
        ? StarRocksSink.make(StarRocksSink.byRoute(ReferenceRow, (row) => names[row.id % tables]!))
        : StarRocksSink.make(ReferenceRow)
    ),
    Effect.provide(StarRocksSink.layer({ ...config(port, "csv"), startupCheck })),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    Effect.runPromise
  )

interface Run {
  readonly cpu: number
  /** of which system (the kernel: the bodies' copies into loopback sockets, mostly) */
  readonly system: number
  readonly wall: number
  readonly requests: number
}
const measure = async (many: boolean, startupCheck: boolean): Promise<Run> => {
  const before = await stats()
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await runOnce(many, startupCheck)
  const wall = (performance.now() - t0) / 1000
  const c = process.cpuUsage(c0)
  const after = await stats()
  return { cpu: (c.user + c.system) / 1e6, system: c.system / 1e6, wall, requests: after.loads - before.loads }
}
const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const sinks = {
  many: () => measure(true, true),
  // left out with TABLES_CPU_UNCHECKED=0 (for alternating builds: more rounds in the same time)
  manyUnchecked: () => process.env["TABLES_CPU_UNCHECKED"] === "0" ? Promise.resolve(undefined) : measure(true, false),
  one: () => measure(false, true)
}
const results: Record<keyof typeof sinks, Array<Run>> = { many: [], manyUnchecked: [], one: [] }
for (let k = 0; k < runs; k++) {
  const line: Array<string> = []
  for (const [name, f] of Object.entries(sinks) as Array<[keyof typeof sinks, () => Promise<Run | undefined>]>) {
    const r = await f()
    if (r === undefined) continue
    line.push(
      `${name} ${r.cpu.toFixed(3)} s CPU (${r.system.toFixed(3)} system) ${
        r.wall.toFixed(3)
      } s wall ${r.requests} requests`
    )
    if (k > 0) results[name].push(r)
  }
  if (!quiet) console.log(`run ${k}: ${line.join("; ")}`)
}
const med = (name: keyof typeof sinks, of: keyof Run) => median(results[name].map((r) => r[of]))
// each round's own ratio (one table ÷ the many tables of the same round): a busy machine slows a round's runs alike
const roundRatio = (of: "cpu" | "wall") => median(results.one.map((r, k) => r[of] / results.many[k]![of]))
const round3 = (x: number) => Number(x.toFixed(3))
console.log(JSON.stringify({
  tables,
  cpu: {
    many: round3(med("many", "cpu")),
    manyUnchecked: round3(med("manyUnchecked", "cpu")),
    one: round3(med("one", "cpu"))
  },
  system: {
    many: round3(med("many", "system")),
    manyUnchecked: round3(med("manyUnchecked", "system")),
    one: round3(med("one", "system"))
  },
  wall: {
    many: round3(med("many", "wall")),
    manyUnchecked: round3(med("manyUnchecked", "wall")),
    one: round3(med("one", "wall"))
  },
  cpuRatio: round3(med("one", "cpu") / med("many", "cpu")),
  cpuRatioOfRounds: round3(roundRatio("cpu")),
  wallRatioOfRounds: round3(roundRatio("wall")),
  cpuRatioUnchecked: round3(med("one", "cpu") / med("manyUnchecked", "cpu")),
  wallRatio: round3(med("one", "wall") / med("many", "wall")),
  wallRatioUnchecked: round3(med("one", "wall") / med("manyUnchecked", "wall")),
  requests: {
    many: med("many", "requests"),
    manyUnchecked: med("manyUnchecked", "requests"),
    one: med("one", "requests")
  }
}))
child.kill("SIGTERM")
