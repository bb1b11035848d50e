/**
 * RSS probe: streams N generated reference rows (never all in memory) through the sink into the null endpoint
 * on `port`, then prints `{"rows":N,"peak_rss_mb":…,"seconds":…}`.
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import * as Fs from "node:fs"
import { runSink } from "./sinkRun.js"

const [rowsArg, portArg, formatArg] = process.argv.slice(2)
const rows = Number(rowsArg)
let sampledPeak = process.memoryUsage().rss
const sampler = setInterval(() => (sampledPeak = Math.max(sampledPeak, process.memoryUsage().rss)), 20)
const started = Date.now()
const summary = await runSink(ReferenceRows.rows(rows), Number(portArg), (formatArg ?? "csv") as "csv" | "json")
// VmHWM is the peak RSS of this address space; getrusage's maxRSS is not usable here because a child created by
// fork+exec inherits its parent's high-water mark (the bench's parent holds millions of pre-built rows).
const vmHwmMb = (): number | undefined => {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Fs.readFileSync("/proc/self/status", "utf8"))
    return m ? Number(m[1]) / 1024 : undefined
  } catch {
    return undefined
  }
}
clearInterval(sampler)
const peak = vmHwmMb() ?? sampledPeak / 1048576
console.log(
  JSON.stringify({ rows: summary.rows, peak_rss_mb: Math.round(peak), seconds: (Date.now() - started) / 1000 })
)
