/**
 * Emulator ingest throughput of the reference rows (`ReferenceRows`) into memory storage, CSV and JSON, in the
 * shape the sink sends (CSV: `enclose: "` + `escape: \`, text columns quoted, NULL as `\\N`; JSON: one array with
 * `strip_outer_array`). Run by hand: `npx tsx packages/testkit/bench/ingest.ts [rows] [--http] [--sink]`.
 *
 * - data path: the BE data path (parse, convert, row changes) and the memory storage applying them;
 * - `--http`: the same bodies as plain stream loads through the FE and BE servers (307, Expect, commit);
 * - `--sink`: also runs `packages/sink/bench/encode.ts` in a child process (no import of the sink) and prints the
 *   ratio emulator CSV ingest / sink CSV encode (the issue's target: at least 0.5), of wall-clock rates and of
 *   rates per CPU second (on a machine that other jobs load, the wall-clock ratio mostly says who was interrupted);
 * - `--no-json`: CSV only.
 *
 * Prints one line per measurement and a final JSON line. Figures are the best of 3 rounds.
 */
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as Http from "node:http"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { runLoad } from "../src/internal/data/pipeline.js"
import * as MemoryStorage from "../src/internal/memoryStorage.js"
import * as ReferenceRows from "../src/ReferenceRows.js"
import * as StarRocksEmulator from "../src/StarRocksEmulator.js"

const BATCH_ROWS = 100_000

/** Row `i` as the sink writes it in CSV (enclose/escape recipe) and in JSON. */
const csvRow = (i: number): string => {
  const c = ReferenceRows.expectedCells(i)
  const note = c["note"] === null ? "\\\\N" : `"${String(c["note"])}"`
  return `${i},${c["user_id"]},"${c["name"]}",${c["score"]},${c["day"]},${c["ts"]},${c["active"] ? 1 : 0},${
    c["amount"]
  },${note},"${c["city"]}"\n`
}
const jsonRow = (i: number): string => {
  const c = ReferenceRows.expectedCells(i)
  return `{"id":${i},"user_id":${c["user_id"]},"name":${JSON.stringify(c["name"])},"score":${c["score"]},` +
    `"day":"${c["day"]}","ts":"${c["ts"]}","active":${c["active"]},"amount":${c["amount"]},` +
    `"note":${c["note"] === null ? "null" : JSON.stringify(c["note"])},"city":${JSON.stringify(c["city"])}}`
}

const bodies = (n: number, format: "csv" | "json"): Array<Buffer> => {
  const out: Array<Buffer> = []
  for (let from = 0; from < n; from += BATCH_ROWS) {
    const to = Math.min(n, from + BATCH_ROWS)
    const parts: Array<string> = []
    for (let i = from; i < to; i++) parts.push(format === "csv" ? csvRow(i) : jsonRow(i))
    out.push(Buffer.from(format === "csv" ? parts.join("") : `[${parts.join(",")}]`))
  }
  return out
}

const headers = {
  csv: {
    format: "csv",
    column_separator: ",",
    row_delimiter: "\\x0a",
    enclose: "\"",
    escape: "\\",
    columns: "id,user_id,name,score,day,ts,active,amount,note,city"
  },
  json: { format: "json", strip_outer_array: "true", ignore_json_size: "true" }
} as const

const table = ReferenceRows.tableDef("bench", "ref")

const cpuSeconds = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** The BE data path and the memory storage, without HTTP: best rows per wall second and per CPU second. */
const dataPath = (format: "csv" | "json", batches: ReadonlyArray<Buffer>, n: number): readonly [number, number] => {
  let best = 0
  let bestCpu = 0
  for (let round = 0; round < 3; round++) {
    const storage = MemoryStorage.make()
    Effect.runSync(storage.createTable(table))
    const cpu0 = cpuSeconds()
    const start = process.hrtime.bigint()
    for (const body of batches) {
      const out = runLoad(table, headers[format], [body], { emptyLoadAsError: true, emptyLoadMessage: "new" })
      if (out._tag !== "Ok" || out.counters.filtered > 0) throw new Error(`load failed: ${JSON.stringify(out)}`)
      Effect.runSync(storage.applyOps("bench", "ref", out.changes))
    }
    const s = Number(process.hrtime.bigint() - start) / 1e9
    const cpu = cpuSeconds() - cpu0
    const stored = Effect.runSync(storage.readRows("bench", "ref")).length
    if (stored !== n) throw new Error(`stored ${stored} rows, expected ${n}`)
    best = Math.max(best, n / s)
    bestCpu = Math.max(bestCpu, n / cpu)
  }
  return [best, bestCpu]
}

const put = (
  url: string,
  h: Record<string, string>,
  body: Buffer
): Promise<{ status: number; text: string; location?: string }> =>
  new Promise((resolve, reject) => {
    const req = Http.request(url, {
      method: "PUT",
      agent: false,
      headers: {
        ...h,
        Authorization: `Basic ${Buffer.from("root:").toString("base64")}`,
        Expect: "100-continue",
        "Content-Length": String(body.byteLength)
      }
    })
    req.on("continue", () => req.end(body))
    req.on("response", (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => {
        const location = res.headers.location
        resolve({
          status: res.statusCode ?? 0,
          text: Buffer.concat(chunks).toString(),
          ...(location ? { location } : {})
        })
        req.destroy()
      })
    })
    req.on("error", reject)
  })

/** Plain stream loads through the FE (307) and the BE. */
const http = async (format: "csv" | "json", batches: ReadonlyArray<Buffer>, n: number): Promise<number> => {
  let best = 0
  for (let round = 0; round < 3; round++) {
    const s = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const em = yield* StarRocksEmulator.make({ tables: [table], admin: false })
      return yield* Effect.promise(async () => {
        const start = process.hrtime.bigint()
        let k = 0
        for (const body of batches) {
          const h = { ...headers[format], label: `b${round}_${k++}` }
          const first = await put(`http://${em.fe[0]}/api/bench/ref/_stream_load`, h, body)
          const res = first.status === 307 ? await put(first.location!, h, body) : first
          const json = JSON.parse(res.text) as { Status: string; NumberLoadedRows: number }
          if (json.Status !== "Success") throw new Error(res.text)
        }
        return Number(process.hrtime.bigint() - start) / 1e9
      })
    })))
    best = Math.max(best, n / s)
  }
  return best
}

const fmt = (x: number) => Math.round(x).toLocaleString("en-US")

const main = async () => {
  const n = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 1_000_000)
  const result: Record<string, number> = {}
  const formats: ReadonlyArray<"csv" | "json"> = process.argv.includes("--no-json") ? ["csv"] : ["csv", "json"]
  for (const format of formats) {
    const batches = bodies(n, format)
    const bytes = batches.reduce((a, b) => a + b.byteLength, 0)
    const [rate, perCpu] = dataPath(format, batches, n)
    console.log(
      `${format} data path: ${fmt(rate)} rows/s, ${fmt(perCpu)} rows per CPU second (${
        (bytes / n).toFixed(1)
      } bytes/row, ${n} rows)`
    )
    result[`${format}_ingest_rows_per_s`] = Math.round(rate)
    result[`${format}_ingest_rows_per_cpu_s`] = Math.round(perCpu)
    if (process.argv.includes("--http")) {
      const viaHttp = await http(format, batches, n)
      console.log(`${format} through HTTP: ${fmt(viaHttp)} rows/s`)
      result[`${format}_http_rows_per_s`] = Math.round(viaHttp)
    }
  }
  if (process.argv.includes("--sink")) {
    const here = Path.dirname(fileURLToPath(import.meta.url))
    const encode = Path.join(here, "..", "..", "sink", "bench", "encode.ts")
    const out = execFileSync(process.execPath, ["--import", "tsx", encode, String(Math.max(n, 1_000_000))], {
      encoding: "utf8",
      maxBuffer: 1 << 20
    })
    const line = out.trim().split("\n").pop()!
    const sink = JSON.parse(line) as Record<string, number>
    console.log(
      `sink encode: csv ${fmt(sink["csv_rows_per_s"]!)} rows/s, ${fmt(sink["csv_rows_per_cpu_s"]!)} rows per CPU ` +
        `second; json ${fmt(sink["json_rows_per_s"]!)} rows/s, ${fmt(sink["json_rows_per_cpu_s"]!)} rows per CPU second`
    )
    result["sink_csv_encode_rows_per_s"] = sink["csv_rows_per_s"]!
    result["sink_csv_encode_rows_per_cpu_s"] = sink["csv_rows_per_cpu_s"]!
    result["sink_json_encode_rows_per_s"] = sink["json_rows_per_s"]!
    result["sink_json_encode_rows_per_cpu_s"] = sink["json_rows_per_cpu_s"]!
    const ratio = result["csv_ingest_rows_per_s"]! / sink["csv_rows_per_s"]!
    const cpuRatio = result["csv_ingest_rows_per_cpu_s"]! / sink["csv_rows_per_cpu_s"]!
    console.log(
      `emulator CSV ingest / sink CSV encode: ${ratio.toFixed(2)} wall-clock, ${
        cpuRatio.toFixed(2)
      } per CPU second (target >= 0.5)`
    )
    result["csv_ratio_x100"] = Math.round(ratio * 100)
    result["csv_cpu_ratio_x100"] = Math.round(cpuRatio * 100)
  }
  console.log(JSON.stringify(result))
}

void main()
