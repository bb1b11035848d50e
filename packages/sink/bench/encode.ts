/**
 * Encode-only throughput of the reference row (CSV and JSON), 2,000,000 rows pre-built in memory.
 * `npx tsx packages/sink/bench/encode.ts [rows]`
 */
import { BigDecimal, Schema } from "effect"
import * as ColumnType from "../src/ColumnType.js"
import * as RowEncoder from "../src/RowEncoder.js"

export const ReferenceRow = Schema.Struct({
  id: ColumnType.BigInt,
  user_id: ColumnType.Int,
  name: ColumnType.Varchar(64),
  score: Schema.Number,
  day: ColumnType.Date,
  ts: ColumnType.DateTime,
  active: Schema.Boolean,
  amount: ColumnType.Decimal(10, 2),
  note: Schema.NullOr(ColumnType.Varchar(64)),
  city: ColumnType.Varchar(32)
})
export type ReferenceRow = typeof ReferenceRow.Type

const CITIES = ["Beijing", "Shanghai", "Shenzhen", "Hangzhou", "Chengdu", "Wuhan", "Nanjing", "Xi'an"]
const DAY0 = Date.UTC(2024, 0, 1)

export const referenceRow = (i: number): ReferenceRow => ({
  id: i,
  user_id: (i * 7919) % 1_000_000,
  name: `user_${i}`,
  score: i * 0.5,
  day: new Date(DAY0 + (i % 366) * 86_400_000),
  ts: new Date(1_700_000_000_000 + i * 1000),
  active: i % 2 === 0,
  amount: BigDecimal.make(BigInt(i % 100_000), 2),
  note: i % 10 === 0 ? null : `note ${i}`,
  city: CITIES[i % 8]!
})

const main = () => {
  const n = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 2_000_000)
  // --no-pool: finished bodies are dropped instead of handed back with `release` (what a caller that never calls
  // `release` gets: V8 runs a full GC for every new max-bytes of Buffer memory)
  const pooled = !process.argv.includes("--no-pool")
  const rows: Array<ReferenceRow> = new Array(n)
  for (let i = 0; i < n; i++) rows[i] = referenceRow(i)
  const encoder = RowEncoder.make(ReferenceRow, { bufferPoolBytes: pooled ? 2 * 64 * 1024 * 1024 : 0 })
  const result: Record<string, number> = {}
  for (const format of ["csv", "json"] as const) {
    let best = 0
    let bestCpu = 0
    let bytes = 0
    for (let round = 0; round < 3; round++) {
      const cpu0 = process.cpuUsage()
      const start = process.hrtime.bigint()
      let b = encoder.builder(format)
      bytes = 0
      for (let i = 0; i < n; i++) {
        b.add(rows[i]!, i)
        if (b.bytes >= 64 * 1024 * 1024) {
          const { body } = b.finish()
          bytes += body.byteLength
          if (pooled) encoder.release(body)
          b = encoder.builder(format)
        }
      }
      bytes += b.finish().body.byteLength
      const s = Number(process.hrtime.bigint() - start) / 1e9
      best = Math.max(best, n / s)
      // rows per CPU second (user + system): a figure that a loaded machine disturbs less than wall-clock time
      const cpu = process.cpuUsage(cpu0)
      bestCpu = Math.max(bestCpu, n / ((cpu.user + cpu.system) / 1e6))
    }
    console.log(
      `${format}${pooled ? "" : " (no pool)"}: ${Math.round(best).toLocaleString("en-US")} rows/s, ${
        (bytes / n).toFixed(1)
      } bytes/row`
    )
    result[`${format}_rows_per_s`] = Math.round(best)
    result[`${format}_rows_per_cpu_s`] = Math.round(bestCpu)
  }
  console.log(JSON.stringify(result))
}

if (import.meta.url === `file://${process.argv[1]}`) main()
