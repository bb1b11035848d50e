/**
 * Baseline (a) of the benchmark: a plain Node loop, no Effect, that encodes the reference rows to the same
 * bytes as the sink (the CSV recipe of starrocks-csv.md §8, or a JSON array) and PUTs them with `node:http`
 * (`Expect: 100-continue`) to the same endpoint, with the same batch size and loads in flight.
 */
import type { ReferenceRows } from "@effect-starrocks/testkit"
import { BigDecimal } from "effect"
import * as Http from "node:http"

const date = (d: Date) => d.toISOString().slice(0, 10)
const datetime = (d: Date) => {
  const iso = d.toISOString()
  return iso.slice(0, 10) + " " + iso.slice(11, 19)
}
/** DECIMAL(p,2) text: exactly two fraction digits, as the column's scale requires. */
const decimal2 = (d: BigDecimal.BigDecimal) => {
  const digits = (d.scale === 2 ? d.value : BigDecimal.scale(d, 2).value).toString()
  const negative = digits.startsWith("-")
  const abs = (negative ? digits.slice(1) : digits).padStart(3, "0")
  return `${negative ? "-" : ""}${abs.slice(0, -2)}.${abs.slice(-2)}`
}
const quote = (s: string) => (s.includes("\\") || s.includes("\"") ? s.replace(/[\\"]/g, "\\$&") : s)

export interface Format {
  readonly separator: string
  readonly rowDelimiter: string
  readonly booleanTrue: string
  readonly booleanFalse: string
}

export const csvRow = (r: ReferenceRows.ReferenceRow, f: Format): string => {
  const s = f.separator
  return `"${r.id}"${s}"${r.user_id}"${s}"${quote(r.name)}"${s}"${r.score}"${s}"${date(r.day)}"${s}"${
    datetime(r.ts)
  }"${s}"${r.active ? f.booleanTrue : f.booleanFalse}"${s}"${decimal2(r.amount)}"${s}${
    r.note === null ? "\\\\N" : `"${quote(r.note)}"`
  }${s}"${quote(r.city)}"${f.rowDelimiter}`
}

export const jsonRow = (r: ReferenceRows.ReferenceRow): string =>
  JSON.stringify({
    id: r.id,
    user_id: r.user_id,
    name: r.name,
    score: r.score,
    day: date(r.day),
    ts: datetime(r.ts),
    active: r.active,
    amount: decimal2(r.amount),
    note: r.note,
    city: r.city
  })

export const put = (
  port: number,
  label: string,
  headers: Record<string, string>,
  body: Buffer
): Promise<string> =>
  new Promise((resolve, reject) => {
    const req = Http.request({
      host: "127.0.0.1",
      port,
      method: "PUT",
      path: "/api/db/t/_stream_load",
      headers: {
        ...headers,
        label,
        expect: "100-continue",
        authorization: "Basic " + Buffer.from("root:").toString("base64"),
        "content-length": String(body.length)
      }
    })
    req.on("continue", () => req.end(body))
    req.on("response", (res) => {
      const parts: Array<Buffer> = []
      res.on("data", (c: Buffer) => parts.push(c))
      res.on("end", () => resolve(Buffer.concat(parts).toString("utf8")))
    })
    req.on("error", reject)
    req.flushHeaders()
  })

/**
 * Encodes `rows` in batches of `batchRows` and PUTs each, at most `inflight` at once. Returns the total bytes.
 */
export const run = async (options: {
  readonly rows: ReadonlyArray<ReferenceRows.ReferenceRow>
  readonly format: "csv" | "json"
  readonly csv: Format
  readonly headers: Record<string, string>
  readonly batchRows: number
  readonly inflight: number
  readonly port: number
}): Promise<number> => {
  const pending = new Set<Promise<string>>()
  let bytes = 0
  let seq = 0
  for (let start = 0; start < options.rows.length; start += options.batchRows) {
    const end = Math.min(options.rows.length, start + options.batchRows)
    let text = options.format === "json" ? "[" : ""
    for (let i = start; i < end; i++) {
      const r = options.rows[i]!
      if (options.format === "json") text += (i > start ? "," : "") + jsonRow(r)
      else text += csvRow(r, options.csv)
    }
    if (options.format === "json") text += "]"
    const body = Buffer.from(text, "utf8")
    bytes += body.length
    while (pending.size >= options.inflight) await Promise.race(pending)
    const p: Promise<string> = put(options.port, `plain-${options.format}-${seq++}`, options.headers, body).finally(
      () => pending.delete(p)
    )
    pending.add(p)
  }
  await Promise.all(pending)
  return bytes
}
