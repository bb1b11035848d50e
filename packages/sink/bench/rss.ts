/**
 * RSS probe: streams N generated reference rows (never all in memory) through the sink into the null endpoint
 * on `port`, then prints `{"rows":N,"peak_rss_mb":…,"seconds":…}`.
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import { runSink } from "./sinkRun.js"

const [rowsArg, portArg, formatArg] = process.argv.slice(2)
const rows = Number(rowsArg)
const started = Date.now()
const summary = await runSink(ReferenceRows.rows(rows), Number(portArg), (formatArg ?? "csv") as "csv" | "json")
const peak = process.resourceUsage().maxRSS / 1024
console.log(
  JSON.stringify({ rows: summary.rows, peak_rss_mb: Math.round(peak), seconds: (Date.now() - started) / 1000 })
)
