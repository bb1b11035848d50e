/**
 * Row encoding for Stream Load: CSV (the enclose/escape recipe of `starrocks-csv.md` §8) and JSON (an array of
 * objects), compiled once from an `effect/Schema` struct into per-column closures.
 *
 * @since 0.1.0
 */
import { BigDecimal, DateTime } from "effect"
import type { Schema } from "effect"
import * as ColumnType from "./ColumnType.js"
import type { LoadBody } from "./LoadBody.js"
import { RowEncodeError } from "./RowEncodeError.js"

export {
  /** @since 0.1.0 */
  RowEncodeError
}

/**
 * CONTRACT: encoders are compiled once from an `effect/Schema` struct; no per-row reflection.
 *
 * @since 0.1.0
 * @category models
 */
export interface BatchBuilder<A> {
  readonly format: "csv" | "json"
  /** Rows added so far. */
  readonly rows: number
  /** Encoded bytes so far (UTF-8), exactly what `finish` returns (for JSON including the closing `]`). */
  readonly bytes: number
  /**
   * Encodes and appends one row. Returns false, adding nothing, when the row cannot travel in this batch's
   * format (CSV and the row holds the exact string `\N`, or needs quoting on a server below 3.0): the caller
   * finishes this batch and starts a JSON one. Throws `RowEncodeError` for a value the column cannot take
   * (nothing is added then either). `op` is the row's `__op` value (0 upsert, 1 delete) when the encoder was made
   * with `opColumn` (default 0); ignored otherwise.
   */
  readonly add: (row: A, rowIndex: number, op?: number) => boolean
  /** The body and the Stream Load headers of this batch (`format`, separators, `enclose`, `escape`, `columns`…). */
  readonly finish: () => { readonly body: LoadBody; readonly headers: Readonly<Record<string, string>> }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RowEncoder<A> {
  /** Column names in the order they are sent. */
  readonly columns: ReadonlyArray<string>
  /** The StarRocks type each column is encoded for (the table's when `columnTypes` was given). */
  readonly columnTypes: ReadonlyArray<ColumnType.ColumnType>
  readonly builder: (format: "csv" | "json") => BatchBuilder<A>
  /**
   * Hands the buffers of a finished body back for reuse by later batches (up to `bufferPoolBytes`). Call it only
   * when the body will never be read again (its load settled, no retry left). Reusing buffers keeps V8 from running
   * a full GC for every max-bytes of new Buffer memory, which halves throughput with a large heap.
   */
  readonly release: (body: LoadBody) => void
  /**
   * A value every column takes (NULL where nullable, else a zero of the column's type), by column name: what a
   * delete that carries only the key columns sends in the others (StarRocks reads only the key of a delete).
   */
  readonly placeholders: () => Readonly<Record<string, unknown>>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RowEncoderOptions {
  /** The struct fields to send, in this order (default: all fields in struct order). */
  readonly columns?: ReadonlyArray<string> | undefined
  /**
   * Time zone of DATE/DATETIME text: `UTC` (default), a fixed offset (`+08:00`, `UTC-5`) or an IANA name
   * (`Asia/Shanghai`).
   */
  readonly timeZone?: string | undefined
  /** With false, a row holding the exact string `\N` in a CSV batch is a RowEncodeError instead of JSON. */
  readonly csvJsonFallback?: boolean | undefined
  /** Servers below 3.0 ignore `enclose`/`escape`. */
  readonly serverSupportsEnclose?: boolean | undefined
  /**
   * The table's column types (from `TableSchema.describe`), by column name: values are validated against these
   * instead of the types derived from the schema.
   */
  readonly columnTypes?: Readonly<Record<string, ColumnType.ColumnType>> | undefined
  /** CSV column separator (default `,`): ASCII, without `"`, `\`, NUL or the row delimiter. */
  readonly columnSeparator?: string | undefined
  /** CSV row delimiter, one ASCII byte (default `\n`). */
  readonly rowDelimiter?: string | undefined
  /**
   * At most this many bytes of buffers handed back through `RowEncoder.release` are kept for reuse (default
   * 256 MiB; buffers only ever come back through `release`, so a caller that never calls it keeps none).
   */
  readonly bufferPoolBytes?: number | undefined
  /**
   * A pool shared with other encoders (`makeBufferPool`), in place of the encoder's own: buffers one encoder's
   * batches hand back are reused by the others' (the sink shares one over all its tables). `bufferPoolBytes` is
   * then not used.
   */
  readonly bufferPool?: BufferPool | undefined
  /**
   * Append StarRocks' `__op` column (0 upsert, 1 delete) after the columns; each row's value is given to
   * `BatchBuilder.add`. JSON batches then carry a `columns` header too.
   */
  readonly opColumn?: boolean | undefined
  /** Send the `columns` header with JSON batches too (partial updates name the columns they carry). */
  readonly jsonColumnsHeader?: boolean | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// internal signalling (synchronous, single-threaded: module-level state is safe)
// ---------------------------------------------------------------------------------------------------------------

class Failure {
  constructor(readonly reason: string) {}
}
const FALLBACK_N = { fallback: "\\N" }
const FALLBACK_QUOTE = { fallback: "quote" }

const fail = (reason: string): never => {
  throw new Failure(reason)
}

const preview = (v: unknown): string => {
  let s: string
  try {
    s = typeof v === "string"
      ? JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)
      : typeof v === "bigint"
      ? `${v}n`
      : v instanceof Date
      ? `Date(${Number.isNaN(v.getTime()) ? "Invalid" : v.toISOString()})`
      : typeof v === "object" && v !== null
      ? (Array.isArray(v) ? `array(${v.length})` : (v.constructor?.name ?? "object"))
      : String(v)
  } catch {
    s = typeof v
  }
  return s.length > 60 ? s.slice(0, 60) + "…" : s
}

// ---------------------------------------------------------------------------------------------------------------
// time zones and date text
// ---------------------------------------------------------------------------------------------------------------

const DAY_MS = 86_400_000
const P2: Array<string> = Array.from({ length: 100 }, (_, i) => (i < 10 ? "0" : "") + i)
const P3: Array<string> = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"))

/** Local-time offset (ms) of an instant. */
type OffsetOf = (t: number) => number

const fixedOffset = (tz: string): number | undefined => {
  const t = tz.trim()
  if (/^(utc|gmt|z|etc\/utc|etc\/gmt|etc\/zulu|zulu|universal|etc\/universal)$/i.test(t)) return 0
  const m = /^(?:utc|gmt)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$/i.exec(t)
  if (m === null) return undefined
  const h = Number(m[2])
  const min = Number(m[3] ?? "0")
  if (h > 18 || min > 59) return undefined
  return (m[1] === "-" ? -1 : 1) * (h * 60 + min) * 60_000
}

/**
 * The load's `timezone` header for a `timeZone` option, in a form every FE takes (`TimeUtils
 * .checkTimeZoneValidAndStandardize`: an offset `+HH:MM`, or a name with a `/`; FEs before the alias table refuse
 * `UTC` and other names without one): fixed offsets and the names of UTC become `+HH:MM` (`+00:00`, `+05:30`,
 * `-05:00`); other zones their canonical IANA name (`Japan` → `Asia/Tokyo`, `US/Eastern` → `America/New_York`).
 * The header decides the zone of `now()`/`current_timestamp` (a column's `DEFAULT CURRENT_TIMESTAMP` included) and
 * of `from_unixtime`/`unix_timestamp` in the load; DATE/DATETIME text is stored as it is sent, whatever the header
 * (docs/types.md, "Time zones").
 *
 * @since 0.3.0
 * @category time zones
 */
export const timeZoneHeader = (timeZone: string): string => {
  const fixed = fixedOffset(timeZone)
  if (fixed === undefined) {
    try {
      return new Intl.DateTimeFormat("en-US", { timeZone: timeZone.trim() }).resolvedOptions().timeZone
    } catch {
      return timeZone.trim()
    }
  }
  const minutes = Math.abs(fixed) / 60_000
  return `${fixed < 0 ? "-" : "+"}${P2[Math.floor(minutes / 60)]}:${P2[minutes % 60]}`
}

/**
 * An offset function for a time zone. Fixed offsets never touch Intl; IANA zones ask Intl once per 15-minute
 * UTC bucket (cached, direct-mapped), and per value only inside a bucket where the offset changes.
 */
const makeOffsetOf = (timeZone: string): OffsetOf => {
  const fixed = fixedOffset(timeZone)
  if (fixed !== undefined) return () => fixed
  let dtf: Intl.DateTimeFormat
  try {
    dtf = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      era: "short",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric"
    })
  } catch {
    throw new RangeError(`unknown time zone '${timeZone}'`)
  }
  const exact = (t: number): number => {
    const s = Math.floor(t / 1000) * 1000
    const parts = dtf.formatToParts(new Date(s))
    let y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0, bc = false
    for (const p of parts) {
      switch (p.type) {
        case "year":
          y = Number(p.value)
          break
        case "month":
          mo = Number(p.value)
          break
        case "day":
          d = Number(p.value)
          break
        case "hour":
          h = Number(p.value) % 24
          break
        case "minute":
          mi = Number(p.value)
          break
        case "second":
          se = Number(p.value)
          break
        case "era":
          bc = p.value.startsWith("B")
          break
      }
    }
    const local = new Date(0)
    local.setUTCFullYear(bc ? 1 - y : y, mo - 1, d)
    local.setUTCHours(h, mi, se, 0)
    return local.getTime() - s
  }
  const BUCKET = 900_000
  const SIZE = 4096
  const keys = new Float64Array(SIZE).fill(NaN)
  const vals = new Float64Array(SIZE)
  return (t) => {
    const b = Math.floor(t / BUCKET)
    const slot = b & (SIZE - 1)
    let o: number
    if (keys[slot] === b) {
      o = vals[slot]!
    } else {
      const start = exact(b * BUCKET)
      const end = exact(b * BUCKET + BUCKET - 1000)
      o = start === end ? start : NaN
      keys[slot] = b
      vals[slot] = o
    }
    return Number.isNaN(o) ? exact(t) : o
  }
}

/** Text of dates and datetimes in one time zone, with day prefixes and times of day cached. */
class DateText {
  readonly offsetOf: OffsetOf
  private readonly dayKeys = new Float64Array(4096).fill(NaN)
  private readonly dayVals: Array<string> = new Array(4096).fill("")
  private readonly prefixKeys = new Float64Array(4096).fill(NaN)
  private readonly prefixVals: Array<string> = new Array(4096).fill("")
  private readonly times: Array<string | undefined> = new Array(86400)
  /** `YYYYMMDD` as a number, by day number (the direct writers' cache beside `dayVals`). */
  private readonly ymdKeys = new Float64Array(4096).fill(NaN)
  private readonly ymdVals = new Int32Array(4096)
  constructor(timeZone: string) {
    this.offsetOf = makeOffsetOf(timeZone)
  }
  /** `YYYY-MM-DD` of a day number (days since 1970-01-01). */
  day(day: number): string {
    const slot = day & 4095
    if (this.dayKeys[slot] === day) return this.dayVals[slot]!
    const d = new Date(day * DAY_MS)
    const y = d.getUTCFullYear()
    if (!(y >= 0 && y <= 9999)) fail(`date out of range 0000-01-01..9999-12-31 (year ${y})`)
    const s = String(y).padStart(4, "0") + "-" + P2[d.getUTCMonth() + 1] + "-" + P2[d.getUTCDate()]
    this.dayKeys[slot] = day
    this.dayVals[slot] = s
    return s
  }
  /** `YYYY-MM-DD ` (with the space) of a day number. */
  prefix(day: number): string {
    const slot = day & 4095
    if (this.prefixKeys[slot] === day) return this.prefixVals[slot]!
    const s = this.day(day) + " "
    this.prefixKeys[slot] = day
    this.prefixVals[slot] = s
    return s
  }
  time(sec: number): string {
    const c = this.times[sec]
    if (c !== undefined) return c
    const s = P2[(sec / 3600) | 0] + ":" + P2[((sec % 3600) / 60) | 0] + ":" + P2[sec % 60]
    this.times[sec] = s
    return s
  }
  date(t: number): string {
    const local = t + this.offsetOf(t)
    return this.day(Math.floor(local / DAY_MS))
  }
  /** `day(day)` as the number YYYYMMDD (throws as `day` does). */
  private ymd(day: number): number {
    const slot = day & 4095
    if (this.ymdKeys[slot] === day) return this.ymdVals[slot]!
    this.day(day)
    const d = new Date(day * DAY_MS)
    const v = d.getUTCFullYear() * 10000 + (d.getUTCMonth() + 1) * 100 + d.getUTCDate()
    this.ymdKeys[slot] = day
    this.ymdVals[slot] = v
    return v
  }
  /** `day(day)`'s 10 bytes at `p`. */
  private writeDay(day: number, buf: Buffer, p: number): number {
    const v = this.ymd(day)
    const y = (v / 10000) | 0
    const md = v - y * 10000
    writePadded(y, 4, buf, p)
    buf[p + 4] = 45
    writePadded((md / 100) | 0, 2, buf, p + 5)
    buf[p + 7] = 45
    return writePadded(md % 100, 2, buf, p + 8)
  }
  /** `date(t)`'s bytes at `p` (see `Emit`); the position after them. */
  writeDate(t: number, buf: Buffer, p: number): number {
    const local = t + this.offsetOf(t)
    return this.writeDay(Math.floor(local / DAY_MS), buf, p)
  }
  /** `dateTime(t)`'s bytes at `p` (see `Emit`); the position after them. */
  writeDateTime(t: number, buf: Buffer, p: number): number {
    const local = t + this.offsetOf(t)
    const day = Math.floor(local / DAY_MS)
    const rem = local - day * DAY_MS
    const sec = (rem / 1000) | 0
    const ms = rem - sec * 1000
    let q = this.writeDay(day, buf, p)
    const h = (sec / 3600) | 0
    const m = ((sec - h * 3600) / 60) | 0
    buf[q] = 32
    writePadded(h, 2, buf, q + 1)
    buf[q + 3] = 58
    writePadded(m, 2, buf, q + 4)
    buf[q + 6] = 58
    q = writePadded(sec - h * 3600 - m * 60, 2, buf, q + 7)
    if (ms === 0) return q
    buf[q] = 46
    buf[q + 1] = 48 + ((ms / 100) | 0)
    buf[q + 2] = 48 + (((ms / 10) | 0) % 10)
    buf[q + 3] = 48 + (ms % 10)
    buf[q + 4] = 48
    buf[q + 5] = 48
    buf[q + 6] = 48
    q += 7
    return q
  }
  dateTime(t: number): string {
    const local = t + this.offsetOf(t)
    const day = Math.floor(local / DAY_MS)
    const rem = local - day * DAY_MS
    const sec = (rem / 1000) | 0
    const ms = rem - sec * 1000
    const s = this.prefix(day) + this.time(sec)
    return ms === 0 ? s : s + "." + P3[ms] + "000"
  }
}

const epochOf = (v: unknown): number => {
  let t: number
  if (v instanceof Date) t = v.getTime()
  else if (DateTime.isDateTime(v)) t = v.epochMillis
  else return fail(`expected a Date, got ${preview(v)}`)
  if (Number.isNaN(t)) fail("invalid Date")
  return t
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/
const DATETIME_RE = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)$/

const checkYmd = (s: string): void => {
  const m = DATE_RE.exec(s.slice(0, 10))
  if (m === null) return fail(`not a date: ${preview(s)}`)
  const mo = Number(m[2])
  const d = Number(m[3])
  if (mo < 1 || mo > 12 || d < 1 || d > 31) fail(`not a date: ${preview(s)}`)
}

// ---------------------------------------------------------------------------------------------------------------
// numbers and decimals
// ---------------------------------------------------------------------------------------------------------------

const INT_RE = /^[+-]?\d+$/
const MAX_SAFE = Number.MAX_SAFE_INTEGER

const intText = (tag: ColumnType.IntegerTag): (v: unknown) => string => {
  const [min, max] = ColumnType.integerRange[tag]
  const lo = Number(min)
  const hiExcl = Number(max + 1n)
  const name = tag.toUpperCase()
  return (v) => {
    if (typeof v === "number") {
      if (Number.isInteger(v)) {
        if (v < lo || v >= hiExcl) fail(`${v} is out of ${name} range [${min}, ${max}]`)
        return v <= MAX_SAFE && v >= -MAX_SAFE ? "" + v : globalThis.BigInt(v).toString()
      }
      return fail(
        Number.isNaN(v) || !Number.isFinite(v)
          ? `${v} cannot be stored in ${name}`
          : `${v} is not an integer (${name} column; values are never truncated)`
      )
    }
    if (typeof v === "bigint") {
      if (v < min || v > max) fail(`${v} is out of ${name} range [${min}, ${max}]`)
      return v.toString()
    }
    if (typeof v === "boolean") return v ? "1" : "0"
    if (typeof v === "string" && INT_RE.test(v)) {
      const b = globalThis.BigInt(v)
      if (b < min || b > max) fail(`${v} is out of ${name} range [${min}, ${max}]`)
      return b.toString()
    }
    return fail(`expected an integer for ${name}, got ${preview(v)}`)
  }
}

const FLOAT_MAX = 3.4028234663852886e38

const floatText = (isFloat: boolean): (v: unknown) => string => (v) => {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) fail(`${v} cannot be stored (NaN and Infinity are rejected)`)
    if (isFloat && (v > FLOAT_MAX || v < -FLOAT_MAX)) fail(`${v} is out of FLOAT range`)
    return "" + v
  }
  if (typeof v === "bigint") return v.toString()
  if (BigDecimal.isBigDecimal(v)) return BigDecimal.format(v)
  if (typeof v === "boolean") return v ? "1" : "0"
  return fail(`expected a number, got ${preview(v)}`)
}

const DEC_RE = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/
const POW10: Array<bigint> = Array.from({ length: 80 }, (_, i) => 10n ** globalThis.BigInt(i))

/**
 * Exact DECIMAL(p,s) text from an unscaled integer and its scale: always `s` fraction digits; more significant
 * fraction digits than `s`, or more than `p - s` integer digits, is a Failure (never rounded).
 */
const decimalFromUnscaled = (unscaled: bigint, scale: number, p: number, s: number): string => {
  let u = unscaled
  if (scale > s) {
    const div = POW10[scale - s] ?? 10n ** globalThis.BigInt(scale - s)
    if (u % div !== 0n) fail(`more than ${s} fraction digits for DECIMAL(${p},${s}) (values are never rounded)`)
    u = u / div
  } else if (scale < s) {
    u = u * (POW10[s - scale] ?? 10n ** globalThis.BigInt(s - scale))
  }
  const neg = u < 0n
  const digits = (neg ? -u : u).toString()
  if (digits.length > p) {
    fail(`more than ${p - s} integer digits for DECIMAL(${p},${s})`)
  }
  if (s === 0) return neg ? "-" + digits : digits
  const padded = digits.length <= s ? "0".repeat(s - digits.length + 1) + digits : digits
  const cut = padded.length - s
  return (neg ? "-" : "") + padded.slice(0, cut) + "." + padded.slice(cut)
}

const decimalText = (p: number, s: number): (v: unknown) => string => {
  const fromString = (str: string): string => {
    const m = DEC_RE.exec(str)
    if (m === null || (m[2] === "" && (m[3] ?? "") === "")) return fail(`not a decimal number: ${preview(str)}`)
    const frac = m[3] ?? ""
    const exp = m[4] === undefined ? 0 : Number(m[4])
    const unscaled = globalThis.BigInt((m[1] === "-" ? "-" : "") + (m[2] || "0") + frac)
    return decimalFromUnscaled(unscaled, frac.length - exp, p, s)
  }
  // fast path: a BigDecimal already at scale s whose unscaled value fits a double exactly
  const pow = 10 ** s
  const limit = Math.min(10 ** p, Number.MAX_SAFE_INTEGER)
  const frac = s === 2 ? P2 : s === 3 ? P3 : undefined
  const SAFE = globalThis.BigInt(Number.MAX_SAFE_INTEGER)
  return (v) => {
    if (BigDecimal.isBigDecimal(v)) {
      const u = v.value
      if (v.scale === s && s > 0 && u <= SAFE && u >= -SAFE) {
        const x = Number(u)
        const a = x < 0 ? -x : x
        if (a < limit) {
          const ip = Math.floor(a / pow)
          const f = a - ip * pow
          return (x < 0 ? "-" + ip : "" + ip) + "." + (frac !== undefined ? frac[f] : String(f).padStart(s, "0"))
        }
      }
      return decimalFromUnscaled(u, v.scale, p, s)
    }
    if (typeof v === "string") return fromString(v)
    if (typeof v === "number") {
      if (!Number.isFinite(v)) fail(`${v} cannot be stored in DECIMAL`)
      return fromString("" + v)
    }
    if (typeof v === "bigint") return decimalFromUnscaled(v, 0, p, s)
    return fail(`expected a BigDecimal, a decimal string or a number, got ${preview(v)}`)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// generic JSON text
// ---------------------------------------------------------------------------------------------------------------

const jsonString = (s: string): string => JSON.stringify(s)

const makeAnyJson = (dates: DateText): (v: unknown) => string => {
  const go = (v: unknown, depth: number): string => {
    if (depth > 100) fail("value nested too deeply")
    switch (typeof v) {
      case "string":
        return JSON.stringify(v)
      case "number":
        if (!Number.isFinite(v)) fail(`${v} cannot be stored (NaN and Infinity are rejected)`)
        return "" + v
      case "boolean":
        return v ? "true" : "false"
      case "bigint":
        return v.toString()
      case "undefined":
        return "null"
      case "object": {
        if (v === null) return "null"
        if (Array.isArray(v)) {
          let out = "["
          for (let i = 0; i < v.length; i++) out += (i === 0 ? "" : ",") + go(v[i], depth + 1)
          return out + "]"
        }
        if (v instanceof Date || DateTime.isDateTime(v)) return "\"" + dates.dateTime(epochOf(v)) + "\""
        if (BigDecimal.isBigDecimal(v)) return BigDecimal.format(v)
        if (v instanceof Map) {
          let out = "{"
          let first = true
          for (const [k, x] of v) {
            out += (first ? "" : ",") + JSON.stringify(typeof k === "string" ? k : go(k, depth + 1)) + ":" +
              go(x, depth + 1)
            first = false
          }
          return out + "}"
        }
        if (typeof (v as any).toJSON === "function") return go((v as any).toJSON(), depth + 1)
        let out = "{"
        let first = true
        for (const k of Object.keys(v)) {
          const x = (v as any)[k]
          if (x === undefined || typeof x === "function" || typeof x === "symbol") continue
          out += (first ? "" : ",") + JSON.stringify(k) + ":" + go(x, depth + 1)
          first = false
        }
        return out + "}"
      }
      default:
        return fail(`cannot encode a ${typeof v} as JSON`)
    }
  }
  return (v) => go(v, 0)
}

// ---------------------------------------------------------------------------------------------------------------
// per-type codecs
// ---------------------------------------------------------------------------------------------------------------

/**
 * `text`: the value's text (CSV field content before enclosing/escaping); `json`: the JSON value text.
 * `textual`: the text may hold `"`, `\`, control characters or non-ASCII (strings, JSON text), so CSV must scan
 * and escape it; otherwise it is plain ASCII without quotes or backslashes.
 */
interface Codec {
  readonly text: (v: unknown) => string
  readonly json: (v: unknown) => string
  readonly textual: boolean
  readonly maxBytes?: number
}

const compileCodec = (t: ColumnType.ColumnType, dates: DateText, anyJson: (v: unknown) => string): Codec => {
  const quoted = (text: (v: unknown) => string) => (v: unknown) => "\"" + text(v) + "\""
  const anyText = (v: unknown): string => {
    switch (typeof v) {
      case "string":
        return v
      case "number":
        if (!Number.isFinite(v)) fail(`${v} cannot be stored (NaN and Infinity are rejected)`)
        return "" + v
      case "bigint":
        return v.toString()
      case "boolean":
        return v ? "true" : "false"
      default:
        if (v instanceof Date || DateTime.isDateTime(v)) return dates.dateTime(epochOf(v))
        if (BigDecimal.isBigDecimal(v)) return BigDecimal.format(v)
        return anyJson(v)
    }
  }
  switch (t._tag) {
    case "Boolean":
      return {
        textual: false,
        text: (v) =>
          v === true ? "1" : v === false ? "0" : v === 1 ? "1" : v === 0 ? "0" : fail(
            `expected a boolean, got ${preview(v)}`
          ),
        json: (v) =>
          v === true ? "true" : v === false ? "false" : v === 1 ? "true" : v === 0 ? "false" : fail(
            `expected a boolean, got ${preview(v)}`
          )
      }
    case "TinyInt":
    case "SmallInt":
    case "Int":
    case "BigInt": {
      const text = intText(t._tag)
      return { textual: false, text, json: text }
    }
    case "LargeInt": {
      const text = intText(t._tag)
      return { textual: false, text, json: quoted(text) }
    }
    case "Float":
    case "Double": {
      const text = floatText(t._tag === "Float")
      return { textual: false, text, json: text }
    }
    case "Decimal": {
      const text = decimalText(t.precision, t.scale)
      return { textual: false, text, json: quoted(text) }
    }
    case "Date": {
      const text = (v: unknown): string => {
        if (typeof v === "string") {
          checkYmd(v)
          if (v.length !== 10) fail(`not a date: ${preview(v)}`)
          return v
        }
        return dates.date(epochOf(v))
      }
      return { textual: false, text, json: quoted(text) }
    }
    case "DateTime": {
      const text = (v: unknown): string => {
        if (typeof v === "string") {
          const m = DATETIME_RE.exec(v)
          if (m === null) {
            if (DATE_RE.test(v)) {
              checkYmd(v)
              return v + " 00:00:00"
            }
            return fail(`not a datetime (YYYY-MM-DD HH:MM:SS[.ffffff]): ${preview(v)}`)
          }
          checkYmd(m[1]!)
          return m[1] + " " + m[2]
        }
        return dates.dateTime(epochOf(v))
      }
      return { textual: false, text, json: quoted(text) }
    }
    case "Char":
    case "Varchar":
    case "String": {
      const maxBytes = t._tag === "String" ? ColumnType.STRING_MAX_BYTES : t.length
      return { textual: true, text: anyText, json: (v) => jsonString(anyText(v)), maxBytes }
    }
    case "Json": {
      const text = (v: unknown): string => {
        if (typeof v === "string") {
          try {
            JSON.parse(v)
          } catch {
            fail(`a string into a JSON column must be JSON text: ${preview(v)}`)
          }
          return v
        }
        return anyJson(v)
      }
      return { textual: true, text, json: text }
    }
    case "Array": {
      const el = compileCodec(t.element, dates, anyJson)
      const json = (v: unknown): string => {
        if (!Array.isArray(v)) return fail(`expected an array, got ${preview(v)}`)
        let out = "["
        for (let i = 0; i < v.length; i++) {
          const x = v[i]
          out += (i === 0 ? "" : ",") + (x === null || x === undefined ? "null" : el.json(x))
        }
        return out + "]"
      }
      return { textual: true, text: json, json }
    }
    case "Map": {
      const key = compileCodec(t.key, dates, anyJson)
      const val = compileCodec(t.value, dates, anyJson)
      const entry = (k: unknown, x: unknown) =>
        jsonString(key.text(k)) + ":" + (x === null || x === undefined ? "null" : val.json(x))
      const json = (v: unknown): string => {
        let out = "{"
        let first = true
        if (v instanceof Map) {
          for (const [k, x] of v) {
            out += (first ? "" : ",") + entry(k, x)
            first = false
          }
        } else if (typeof v === "object" && v !== null && !Array.isArray(v)) {
          for (const k of Object.keys(v)) {
            out += (first ? "" : ",") + entry(k, (v as any)[k])
            first = false
          }
        } else {
          return fail(`expected a Map or a record, got ${preview(v)}`)
        }
        return out + "}"
      }
      return { textual: true, text: json, json }
    }
    case "Struct": {
      const fields = t.fields.map((f) => ({
        key: jsonString(f.name) + ":",
        name: f.name,
        codec: compileCodec(f.type, dates, anyJson)
      }))
      const json = (v: unknown): string => {
        if (typeof v !== "object" || v === null || Array.isArray(v)) {
          return fail(`expected an object, got ${preview(v)}`)
        }
        let out = "{"
        for (let i = 0; i < fields.length; i++) {
          const f = fields[i]!
          const x = (v as any)[f.name]
          out += (i === 0 ? "" : ",") + f.key + (x === null || x === undefined ? "null" : f.codec.json(x))
        }
        return out + "}"
      }
      return { textual: true, text: json, json }
    }
    case "Other":
      return {
        textual: true,
        text: () => fail(`${t.name.toUpperCase()} columns cannot be loaded from a value (use a columns expression)`),
        json: () => fail(`${t.name.toUpperCase()} columns cannot be loaded from a value (use a columns expression)`)
      }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// cells
// ---------------------------------------------------------------------------------------------------------------

const ESC_RE = /["\\]/g
const NON_ASCII_RE = /[^\x00-\x7f]/
const CSV_SPECIAL_RE = /["\\]/
const JSON_SPECIAL_RE = /["\\\x00-\x1f]/

const tooLong = (bytes: number, max: number): never =>
  fail(`${bytes} bytes exceed the column's ${max}-byte limit (StarRocks would store NULL or filter the row)`)

const ESCAPE = 1
const WIDE = 2

/**
 * One pass over a value's text: `ESCAPE` when it holds `"` or `\\` (and, for JSON, a control character), `WIDE`
 * when it holds a non-ASCII character (its UTF-8 length then differs from its length). Short strings are scanned
 * by hand, long ones by regular expression.
 */
const scanText = (s: string, json: boolean): number => {
  const n = s.length
  if (n > 64) {
    return ((json ? JSON_SPECIAL_RE : CSV_SPECIAL_RE).test(s) ? ESCAPE : 0) | (NON_ASCII_RE.test(s) ? WIDE : 0)
  }
  let flags = 0
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c === 34 || c === 92 || (json && c < 32)) flags |= ESCAPE
    else if (c > 127) flags |= WIDE
  }
  return flags
}

/** The column's byte limit, on the UTF-8 length when the text is not all ASCII. */
const checkBytes = (s: string, flags: number, max: number): void => {
  const bytes = flags & WIDE ? Buffer.byteLength(s, "utf8") : s.length
  if (bytes > max) tooLong(bytes, max)
}

/** CSV cell content (escaped, to be enclosed) of a textual codec (byte length checked); throws FALLBACK_N on `\N`. */
const csvTextualCell = (codec: Codec): (v: unknown) => string => {
  const max = codec.maxBytes ?? Infinity
  const text = codec.text
  return (v) => {
    const s = text(v)
    if (s.length === 2 && s === "\\N") throw FALLBACK_N
    const flags = scanText(s, false)
    checkBytes(s, flags, max)
    return flags & ESCAPE ? s.replace(ESC_RE, "\\$&") : s
  }
}

/** CSV field without enclosure (servers below 3.0): anything that would need quoting throws FALLBACK_QUOTE. */
const csvPlainCell = (codec: Codec, sep: string, delim: string): (v: unknown) => string => {
  const max = codec.maxBytes ?? Infinity
  const text = codec.text
  return (v) => {
    const s = text(v)
    if (s === "\\N") throw FALLBACK_N
    if (s.includes(sep) || s.includes(delim) || CSV_SPECIAL_RE.test(s) || s.includes("\r")) throw FALLBACK_QUOTE
    if (codec.textual && s.length > max / 3) checkBytes(s, NON_ASCII_RE.test(s) ? WIDE : 0, max)
    return s
  }
}

/** JSON value of a codec (string columns: byte length checked). */
const jsonCell = (codec: Codec): (v: unknown) => string => {
  const json = codec.json
  if (!codec.textual) return json
  const max = codec.maxBytes
  if (max !== undefined) {
    // string columns: check the text's byte length, then quote it
    const text = codec.text
    return (v) => {
      const s = text(v)
      const flags = scanText(s, true)
      checkBytes(s, flags, max)
      return flags & ESCAPE ? JSON.stringify(s) : "\"" + s + "\""
    }
  }
  return json
}

// ---------------------------------------------------------------------------------------------------------------
// direct writers: a row's bytes written straight into the batch's buffer
// ---------------------------------------------------------------------------------------------------------------

/**
 * Thrown by a row writer when the row does not fit in what is left of the batch's buffer; caught by the builder,
 * which writes the row again into the next buffer. It never leaves this module.
 */
const SPACE = { space: true }

/**
 * Writes a value's bytes into `buf` at `p` and returns the position after them: exactly the UTF-8 bytes of the
 * string the column's cell function gives for it (`csvTextualCell`, `codec.text`, `jsonCell`), which it calls for
 * any value off its fast path. Throws what that cell function throws.
 *
 * Why: building each row as a string and then writing it cost a string per field and per concatenation, and the
 * number-to-string cache keeps the text of the latest numbers alive, so under a stream of one-row chunks those
 * strings lived through scavenges and were promoted: the old space grew by about 280 bytes per row, and a full GC
 * fell in every other run of the bench's one-row figure (docs/benchmark.md, one-row chunks).
 *
 * Room: a typed array drops stores past its end, so byte stores need no check of their own; the row writer checks
 * once at the end that it stayed within the buffer (else SPACE). A native write (`utf8Write`) would truncate
 * instead: it checks its room first (`writeUtf8`).
 */
type Emit = (v: unknown, buf: Buffer, p: number) => number

/** A row writer: the row's bytes at `p`, the position after them; SPACE when it does not fit. */
type RowWriter = (row: unknown, op: number | undefined, buf: Buffer, p: number) => number

const writeUtf8 = (s: string, buf: Buffer, p: number): number => {
  // a UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair 4 for two, a lone surrogate U+FFFD's 3)
  if (p + 3 * s.length > buf.length) throw SPACE
  return p + (buf as any).utf8Write(s, p)
}

/** Short strings byte by byte (cheaper than a native call), others and non-ASCII ones through `utf8Write`. */
const writeText = (s: string, buf: Buffer, p: number): number => {
  const n = s.length
  if (n > 32) return writeUtf8(s, buf, p)
  let q = p
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c > 127) return writeUtf8(s, buf, p)
    buf[q++] = c
  }
  return q
}

/**
 * `"" + n` of an integer 0 ≤ n ≤ 2^53. Below 2^31 in int32 arithmetic (a division by 10 is then a multiplication;
 * on doubles `%` is a call); above, as two halves of at most 8 digits.
 */
const writeUint = (n: number, buf: Buffer, p: number): number => {
  if (n >= 2147483648) {
    const hi = Math.floor(n / 1e8)
    return writePadded(n - hi * 1e8, 8, buf, writeUint(hi, buf, p))
  }
  let x = n | 0
  let len = 1
  while (len < 10 && x >= DIGITS[len]!) len++
  let q = p + len
  while (x >= 10) {
    const y = (x / 10) | 0
    buf[--q] = 48 + x - y * 10
    x = y
  }
  buf[q - 1] = 48 + x
  return p + len
}
const DIGITS: Array<number> = Array.from({ length: 17 }, (_, i) => 10 ** i)

/** `"" + v` of an integer |v| ≤ MAX_SAFE_INTEGER (-0 is "0"). */
const writeInt = (v: number, buf: Buffer, p: number): number => {
  if (v < 0) {
    buf[p] = 45
    return writeUint(-v, buf, p + 1)
  }
  return writeUint(v, buf, p)
}

/** `d` digits of `f` (0 ≤ f < 10^d), zero-padded. */
const writePadded = (f: number, d: number, buf: Buffer, p: number): number => {
  if (f >= 2147483648) {
    const hi = Math.floor(f / 1e8)
    return writePadded(f - hi * 1e8, 8, buf, writePadded(hi, d - 8, buf, p))
  }
  let x = f | 0
  for (let j = p + d - 1; j >= p; j--) {
    const y = (x / 10) | 0
    buf[j] = 48 + x - y * 10
    x = y
  }
  return p + d
}

const TWO_52 = 2 ** 52

/**
 * `"" + v` of a finite non-integer double with at most 6 fraction digits and |v| · 10^digits < 2^52 (the scores,
 * prices and halves of real rows); -1 for any other, which takes the string way. Number::toString gives the fewest
 * digits that read back as v: the first k with round(v · 10^k) / 10^k === v is that, as the integer n < 2^52 is the
 * only multiple of 10^-k that reads back as v (v's rounding interval is narrower than 10^-k), and 10^-6 ≤ |v| < 10^21
 * is written without an exponent.
 */
const writeFraction = (v: number, buf: Buffer, p: number): number => {
  const a = v < 0 ? -v : v
  if (!(a >= 1e-6)) return -1
  for (let k = 1; k <= 6; k++) {
    const scale = DIGITS[k]!
    const x = a * scale
    if (x >= TWO_52) return -1
    const n = Math.round(x)
    if (n / scale === a) {
      const f = n % scale
      if (f % 10 === 0) return -1
      let q = p
      if (v < 0) buf[q++] = 45
      q = writeUint((n - f) / scale, buf, q)
      buf[q] = 46
      return writePadded(f, k, buf, q + 1)
    }
  }
  return -1
}

const MAX_SAFE_N = Number.MAX_SAFE_INTEGER

/** The slow way of every emitter: the cell function's string. */
const textEmit = (cell: (v: unknown) => string): Emit => (v, buf, p) => writeText(cell(v), buf, p)

const intEmit = (tag: ColumnType.IntegerTag, quoted: boolean, cell: (v: unknown) => string): Emit => {
  const [min, max] = ColumnType.integerRange[tag]
  const lo = Math.max(Number(min), -MAX_SAFE_N)
  const hi = Math.min(Number(max), MAX_SAFE_N)
  return (v, buf, p) => {
    if (typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi) {
      if (!quoted) return writeInt(v, buf, p)
      buf[p] = 34
      const q = writeInt(v, buf, p + 1)
      buf[q] = 34
      return q + 1
    }
    return writeText(cell(v), buf, p)
  }
}

const doubleEmit = (cell: (v: unknown) => string): Emit => (v, buf, p) => {
  if (typeof v === "number") {
    if (Number.isInteger(v)) {
      if (v <= MAX_SAFE_N && v >= -MAX_SAFE_N) return writeInt(v, buf, p)
    } else {
      const q = writeFraction(v, buf, p)
      if (q >= 0) return q
    }
  }
  return writeText(cell(v), buf, p)
}

const BIG_DECIMAL = BigDecimal.TypeId

/** `decimalText`'s fast path (a BigDecimal at scale s whose unscaled value is a safe integer), in bytes. */
const decimalEmit = (precision: number, s: number, quoted: boolean, cell: (v: unknown) => string): Emit => {
  const pow = 10 ** s
  const limit = Math.min(10 ** precision, Number.MAX_SAFE_INTEGER)
  const SAFE = globalThis.BigInt(Number.MAX_SAFE_INTEGER)
  return (v, buf, p) => {
    // BigDecimal.isBigDecimal's test, at a site of its own (its `in` is shared by all of Effect's guards)
    if (s > 0 && typeof v === "object" && v !== null && BIG_DECIMAL in v && (v as BigDecimal.BigDecimal).scale === s) {
      const u = (v as BigDecimal.BigDecimal).value
      if (u <= SAFE && u >= -SAFE) {
        const x = Number(u)
        const a = x < 0 ? -x : x
        if (a < limit) {
          const ip = Math.floor(a / pow)
          const f = a - ip * pow
          if (f >= 0 && f < pow) {
            let q = p
            if (quoted) buf[q++] = 34
            if (x < 0) buf[q++] = 45
            q = writeUint(ip, buf, q)
            buf[q] = 46
            q = writePadded(f, s, buf, q + 1)
            if (quoted) buf[q++] = 34
            return q
          }
        }
      }
    }
    return writeText(cell(v), buf, p)
  }
}

const dateEmit =
  (dates: DateText, time: boolean, quoted: boolean, cell: (v: unknown) => string): Emit => (v, buf, p) => {
    if (v instanceof Date) {
      const t = v.getTime()
      if (!Number.isNaN(t)) {
        let q = p
        if (quoted) buf[q++] = 34
        q = time ? dates.writeDateTime(t, buf, q) : dates.writeDate(t, buf, q)
        if (quoted) buf[q++] = 34
        return q
      }
    }
    return writeText(cell(v), buf, p)
  }

const booleanEmit = (json: boolean, cell: (v: unknown) => string): Emit => (v, buf, p) => {
  if (v === true) {
    if (!json) {
      buf[p] = 49
      return p + 1
    }
    buf[p] = 116
    buf[p + 1] = 114
    buf[p + 2] = 117
    buf[p + 3] = 101
    return p + 4
  }
  if (v === false) {
    if (!json) {
      buf[p] = 48
      return p + 1
    }
    buf[p] = 102
    buf[p + 1] = 97
    buf[p + 2] = 108
    buf[p + 3] = 115
    buf[p + 4] = 101
    return p + 5
  }
  return writeText(cell(v), buf, p)
}

/**
 * `csvTextualCell` of a short ASCII string within the column's limit: its bytes, `"` and `\\` escaped with `\\`.
 * The exact string `\\N`, non-ASCII text and anything else take the cell function (which throws FALLBACK_N).
 */
const csvStringEmit = (max: number, cell: (v: unknown) => string): Emit => (v, buf, p) => {
  if (typeof v === "string") {
    const n = v.length
    if (n <= 64 && n <= max && !(n === 2 && v === "\\N")) {
      let q = p
      for (let i = 0; i < n; i++) {
        const c = v.charCodeAt(i)
        if (c > 127) return writeText(cell(v), buf, p)
        if (c === 34 || c === 92) buf[q++] = 92
        buf[q++] = c
      }
      return q
    }
  }
  return writeText(cell(v), buf, p)
}

/** `jsonCell` of a short printable-ASCII string without `"` or `\\` within the column's limit: `"` + it + `"`. */
const jsonStringEmit = (max: number, cell: (v: unknown) => string): Emit => (v, buf, p) => {
  if (typeof v === "string") {
    const n = v.length
    if (n <= 64 && n <= max) {
      let q = p
      buf[q++] = 34
      for (let i = 0; i < n; i++) {
        const c = v.charCodeAt(i)
        if (c < 32 || c > 127 || c === 34 || c === 92) return writeText(cell(v), buf, p)
        buf[q++] = c
      }
      buf[q] = 34
      return q + 1
    }
  }
  return writeText(cell(v), buf, p)
}

/**
 * The emitter of a column: `cell` is the column's string cell function in this format (CSV with enclosure, or
 * JSON), whose output the emitter writes byte for byte.
 */
const emitFor = (t: ColumnType.ColumnType, json: boolean, dates: DateText, cell: (v: unknown) => string): Emit => {
  switch (t._tag) {
    case "Boolean":
      return booleanEmit(json, cell)
    case "TinyInt":
    case "SmallInt":
    case "Int":
    case "BigInt":
      return intEmit(t._tag, false, cell)
    case "LargeInt":
      return intEmit(t._tag, json, cell)
    case "Float":
    case "Double":
      return doubleEmit(cell)
    case "Decimal":
      return decimalEmit(t.precision, t.scale, json, cell)
    case "Date":
    case "DateTime":
      return dateEmit(dates, t._tag === "DateTime", json, cell)
    case "Char":
    case "Varchar":
    case "String": {
      const max = t._tag === "String" ? ColumnType.STRING_MAX_BYTES : t.length
      return json ? jsonStringEmit(max, cell) : csvStringEmit(max, cell)
    }
    default:
      return textEmit(cell)
  }
}

/** Byte stores of a literal's UTF-8 at `p`, then `p += length` (generated code). */
const storeLiteral = (bytes: ReadonlyArray<number>): string =>
  bytes.length === 0
    ? ""
    : bytes.map((b, j) => `buf[p${j === 0 ? "" : " + " + j}] = ${b};`).join(" ") + ` p += ${bytes.length};`

/**
 * Generates the row writer of `generateRow`'s row (same literals, same cells, same order), writing bytes: per
 * column the literal bytes before it, then its emitter, or the null text for a nullable column holding
 * null/undefined. Adjacent literals are folded into one run of byte stores.
 */
const generateWriter = (
  names: ReadonlyArray<string>,
  nullable: ReadonlyArray<boolean>,
  lead: (i: number) => string,
  quote: string,
  nullText: string,
  tail: string,
  opLead?: string
) => {
  const utf8 = (s: string): Array<number> => Array.from(Buffer.from(s, "utf8"))
  const lines: Array<string> = []
  let pending: Array<number> = []
  let literalBytes = 0
  const lit = (s: string) => {
    const b = utf8(s)
    pending = pending.concat(b)
    literalBytes += b.length
  }
  const flush = () => {
    if (pending.length > 0) lines.push(storeLiteral(pending))
    pending = []
  }
  const q = storeLiteral(utf8(quote))
  names.forEach((name, i) => {
    lines.push(`v = row[${JSON.stringify(name)}];`)
    lit(lead(i))
    if (nullable[i]) {
      flush()
      lines.push(
        `if (v === null || v === undefined) { ${
          storeLiteral(utf8(nullText))
        } } else { ${q} p = e${i}(v, buf, p); ${q} }`
      )
      literalBytes += Math.max(utf8(nullText).length, 2 * utf8(quote).length)
    } else {
      lines.push(`if (v === null || v === undefined) nn(${i});`)
      lit(quote)
      flush()
      lines.push(`p = e${i}(v, buf, p);`)
      lit(quote)
    }
  })
  if (opLead !== undefined) {
    lit(opLead)
    flush()
    lines.push("buf[p++] = op === 1 ? 49 : 48;")
    literalBytes += 1
  }
  lit(tail)
  flush()
  // room for the literals and a typical value per column: a row that needs more is found out by the end check
  const reserve = literalBytes + 24 * names.length
  const body = `if (p + ${reserve} > buf.length) throw SPACE;\nlet v;\n${lines.join("\n")}\n` +
    "if (p > buf.length) throw SPACE;\nreturn p;"
  const bindings = names.map((_, i) => `e${i} = e[${i}]`).join(", ")
  const factory = new Function(
    "e",
    "nn",
    "SPACE",
    `"use strict"; const ${bindings}; return function writeRow(row, op, buf, p) {\n${body}\n};`
  ) as (e: ReadonlyArray<Emit>, nn: (i: number) => never, space: unknown) => RowWriter
  return (emits: ReadonlyArray<Emit>, nn: (i: number) => never): RowWriter => factory(emits, nn, SPACE)
}

// ---------------------------------------------------------------------------------------------------------------
// headers
// ---------------------------------------------------------------------------------------------------------------

const SIMPLE_IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/

/** A `columns` header entry: plain when a simple identifier, back-quoted otherwise. */
const columnRef = (name: string): string => SIMPLE_IDENT.test(name) ? name : "`" + name.replace(/`/g, "``") + "`"

/** A separator as a header value: literal when printable ASCII, else `\x..` hex (the FE's hex rule). */
const delimiterHeader = (d: string): string =>
  /^[\x21-\x7e]+$/.test(d) && !/^(\\x|0x)/i.test(d)
    ? d
    : "\\x" + Array.from(Buffer.from(d, "latin1")).map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join("")

type RowFn = (row: unknown, op?: number) => string

/**
 * Generates the function that renders one row as one string expression: `lead(i) + value_i` per column, then
 * `tail`, where a value is `quote + cell(v) + quote`, or `nullText` for a nullable column holding null/undefined.
 * Adjacent literals are folded, so a CSV row of non-nullable columns costs two concatenations per column. Compiled
 * once per encoder (no per-row reflection); property names are embedded as string literals.
 */
const generateRow = (
  names: ReadonlyArray<string>,
  nullable: ReadonlyArray<boolean>,
  lead: (i: number) => string,
  quote: string,
  nullText: string,
  tail: string,
  opLead?: string
) => {
  const segs: Array<{ lit: string } | { expr: string }> = []
  const lit = (t: string) => {
    const last = segs[segs.length - 1]
    if (last !== undefined && "lit" in last) last.lit += t
    else if (t.length > 0) segs.push({ lit: t })
  }
  const reads: Array<string> = []
  names.forEach((name, i) => {
    reads.push(`const v${i} = row[${JSON.stringify(name)}];`)
    lit(lead(i))
    if (nullable[i]) {
      segs.push({
        expr: `(v${i} === null || v${i} === undefined ? ${JSON.stringify(nullText)} : ${
          quote === "" ? "" : JSON.stringify(quote) + " + "
        }c[${i}](v${i})${quote === "" ? "" : " + " + JSON.stringify(quote)})`
      })
    } else {
      lit(quote)
      segs.push({ expr: `(v${i} === null || v${i} === undefined ? nn(${i}) : c[${i}](v${i}))` })
      lit(quote)
    }
  })
  if (opLead !== undefined) {
    lit(opLead)
    segs.push({ expr: "(op === 1 ? \"1\" : \"0\")" })
  }
  lit(tail)
  const body = reads.join("\n") + "\nreturn " +
    segs.map((s) => ("lit" in s ? JSON.stringify(s.lit) : s.expr)).join(" + ") + ";"
  const factory = new Function("c", "nn", `"use strict"; return function encodeRow(row, op) {\n${body}\n};`) as (
    c: ReadonlyArray<(v: unknown) => string>,
    nn: (i: number) => never
  ) => RowFn
  return factory
}

// ---------------------------------------------------------------------------------------------------------------
// make
// ---------------------------------------------------------------------------------------------------------------

/** Size of a batch's first buffer; later ones double up to MAX_BUFFER (rows are written straight into them). */
const FIRST_BUFFER = 16 * 1024
const MAX_BUFFER = 1024 * 1024
const EMPTY = Buffer.alloc(0)

/** What a batch builder needs of its encoder. */
interface Core<A> {
  /** The row writers (bytes straight into the buffer); no CSV one without enclosure (servers below 3.0). */
  readonly csvWrite: RowWriter | undefined
  readonly jsonWrite: RowWriter | undefined
  /** The same rows as strings: for the CSV without enclosure, and for a row larger than a buffer. */
  readonly csvRow: (row: A, op?: number) => string
  readonly jsonRow: (row: A, op?: number) => string
  /** A CSV row that threw: false when it must travel as JSON, else throws the RowEncodeError naming the column. */
  readonly csvFailure: (row: A, rowIndex: number, e: unknown) => boolean
  /** A JSON row that threw: throws the RowEncodeError naming the column. */
  readonly jsonFailure: (row: A, rowIndex: number) => never
  readonly take: (size: number) => Buffer
  readonly csvHeaders: Readonly<Record<string, string>>
  readonly jsonHeaders: Readonly<Record<string, string>>
}

/**
 * One batch's body, written row by row straight into buffers (the first FIRST_BUFFER bytes, each next one twice
 * as large up to MAX_BUFFER). A class, not a closure per batch: its methods are one function each for all batches
 * of all encoders, so the row loop's calls to them stay monomorphic and inlined when a sink builds the batches of
 * many tables at once (docs/benchmark.md, Issue 8).
 *
 * A row's bytes are written by the encoder's row writer at the buffer's position, which moves past them only once
 * the whole row is written: a row that fails, or does not fit (SPACE), leaves nothing behind. A row that does not
 * fit is written again into the next buffer; one larger than that takes the string way (`addText`).
 */
class Builder<A> implements BatchBuilder<A> {
  private readonly chunks: Array<Uint8Array> = []
  private flushed = 0
  private buf: Buffer
  private pos = 0
  private count = 0
  private done = false
  private readonly writer: RowWriter | undefined
  /** JSON: rows after the first start with a comma. */
  private readonly json: boolean
  constructor(readonly format: "csv" | "json", private readonly core: Core<A>) {
    this.buf = core.take(FIRST_BUFFER)
    this.json = format === "json"
    this.writer = format === "csv" ? core.csvWrite : core.jsonWrite
    if (format === "json") this.write("[")
  }
  get rows(): number {
    return this.count
  }
  get bytes(): number {
    return this.flushed + this.pos + (this.format === "json" && !this.done ? 1 : 0)
  }
  /** Appends a row's text to the current buffer (exact UTF-8 byte count from the write). */
  private write(s: string): void {
    const max = s.length * 3
    if (this.pos + max > this.buf.length) {
      if (this.pos > 0) {
        this.chunks.push(this.buf.subarray(0, this.pos))
        this.flushed += this.pos
      }
      this.buf = this.core.take(Math.max(Math.min(this.buf.length * 2, MAX_BUFFER), max))
      this.pos = 0
    }
    this.pos += (this.buf as any).utf8Write(s, this.pos)
  }
  add(row: A, rowIndex: number, op?: number): boolean {
    if (this.done) throw new Error("BatchBuilder.add after finish")
    const writer = this.writer
    if (writer === undefined) return this.addText(row, rowIndex, op)
    let p = this.pos
    try {
      // past the end, the comma store is dropped and the writer's end check throws SPACE
      if (this.json && this.count > 0) this.buf[p++] = 44
      p = writer(row, op, this.buf, p)
    } catch (e) {
      if (e === SPACE) return this.addSpilled(writer, row, rowIndex, op)
      return this.failed(row, rowIndex, e)
    }
    this.pos = p
    this.count++
    return true
  }
  /** The row did not fit in what is left of the buffer: the next buffer, else the string way. */
  private addSpilled(writer: RowWriter, row: A, rowIndex: number, op: number | undefined): boolean {
    if (this.pos > 0) {
      this.chunks.push(this.buf.subarray(0, this.pos))
      this.flushed += this.pos
      this.buf = this.core.take(Math.min(this.buf.length * 2, MAX_BUFFER))
      this.pos = 0
      let p = 0
      try {
        if (this.json && this.count > 0) this.buf[p++] = 44
        p = writer(row, op, this.buf, p)
        this.pos = p
        this.count++
        return true
      } catch (e) {
        if (e !== SPACE) return this.failed(row, rowIndex, e)
      }
    }
    // larger than an empty buffer: `write` takes one the row's size
    return this.addText(row, rowIndex, op)
  }
  private failed(row: A, rowIndex: number, e: unknown): boolean {
    return this.json ? this.core.jsonFailure(row, rowIndex) : this.core.csvFailure(row, rowIndex, e)
  }
  /** The string way: the row as one string, then its UTF-8 into the buffer. */
  private addText(row: A, rowIndex: number, op: number | undefined): boolean {
    let s: string
    if (this.format === "csv") {
      try {
        s = this.core.csvRow(row, op)
      } catch (e) {
        return this.core.csvFailure(row, rowIndex, e)
      }
    } else {
      try {
        s = this.core.jsonRow(row, op)
      } catch {
        return this.core.jsonFailure(row, rowIndex)
      }
      if (this.count > 0) s = "," + s
    }
    this.write(s)
    this.count++
    return true
  }
  finish(): { readonly body: LoadBody; readonly headers: Readonly<Record<string, string>> } {
    if (!this.done) {
      if (this.format === "json") this.write("]")
      this.done = true
      if (this.pos > 0) {
        this.chunks.push(this.buf.subarray(0, this.pos))
        this.flushed += this.pos
      }
      this.buf = EMPTY
      this.pos = 0
    }
    return {
      body: { chunks: this.chunks, byteLength: this.flushed },
      headers: this.format === "csv" ? this.core.csvHeaders : this.core.jsonHeaders
    }
  }
}

/**
 * Buffers for the bodies encoders build, reused: the buffers a finished body hands back (every size a batch grows
 * through, FIRST_BUFFER doubling up to MAX_BUFFER) are kept, up to `maxBytes` in all, and given to the next batches
 * that ask for that size. One pool can serve many encoders (`RowEncoderOptions.bufferPool`).
 *
 * Every size is kept, not only the full one, because a batch's first MAX_BUFFER bytes come in the smaller sizes:
 * a sink of many tables seals batches of a few MiB each, so a tenth or more of what it writes went into fresh
 * buffers per batch. Fresh buffers are external memory to V8, and every 64 MiB of it since the last full GC starts
 * another one (docs/benchmark.md, session 7).
 *
 * @since 0.1.0
 * @category models
 */
export interface BufferPool {
  /** A buffer of `size` bytes: a pooled one, when one of that size is there. */
  readonly take: (size: number) => Buffer
  /** Hands the buffers of a body back (see `RowEncoder.release`). */
  readonly release: (body: LoadBody) => void
}

/** The sizes a batch's buffers grow through: FIRST_BUFFER, twice that, … MAX_BUFFER (the pool's free lists). */
const SIZES = Math.log2(MAX_BUFFER / FIRST_BUFFER) + 1
/** The free list of a buffer size; -1 for a size a batch does not grow through (a row larger than MAX_BUFFER). */
const sizeClass = (size: number): number => {
  if (size < FIRST_BUFFER || size > MAX_BUFFER || (size & (size - 1)) !== 0) return -1
  return 31 - Math.clz32(size / FIRST_BUFFER)
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeBufferPool = (maxBytes: number): BufferPool => {
  const free: Array<Array<ArrayBuffer>> = Array.from({ length: SIZES }, () => [])
  let kept = 0
  const pooled = new WeakSet<ArrayBufferLike>()
  return {
    take: (size) => {
      const k = sizeClass(size)
      if (k >= 0) {
        const ab = free[k]!.pop()
        if (ab !== undefined) {
          kept -= size
          pooled.delete(ab)
          return Buffer.from(ab)
        }
      }
      return Buffer.allocUnsafeSlow(size)
    },
    release: (body) => {
      for (const c of body.chunks) {
        const ab = c.buffer
        const k = sizeClass(ab.byteLength)
        if (k >= 0 && c.byteOffset === 0 && kept + ab.byteLength <= maxBytes && !pooled.has(ab)) {
          pooled.add(ab)
          free[k]!.push(ab as ArrayBuffer)
          kept += ab.byteLength
        }
      }
    }
  }
}

/**
 * Compiles the row encoder of a struct schema. Throws a TypeError/RangeError for a schema that is not a struct,
 * an unknown column in `columns`, a bad time zone or bad separators.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, I, R>(
  schema: Schema.Schema<A, I, R>,
  options?: RowEncoderOptions
): RowEncoder<A> => makeWith(schema, options, true)

/**
 * `make` with every row taking the string way (each row built as a string, then written): what the row writers
 * must match byte for byte (test/RowEncoder.test.ts compares the two).
 *
 * @internal
 */
export const makeStringWay = <A, I, R>(schema: Schema.Schema<A, I, R>, options?: RowEncoderOptions): RowEncoder<A> =>
  makeWith(schema, options, false)

const makeWith = <A, I, R>(
  schema: Schema.Schema<A, I, R>,
  options: RowEncoderOptions | undefined,
  direct: boolean
): RowEncoder<A> => {
  const fields = ColumnType.fieldsOf(schema)
  const byName = new Map(fields.map((f) => [f.name, f]))
  const names = options?.columns ?? fields.map((f) => f.name)
  const selected = names.map((n) => {
    const f = byName.get(n)
    if (f === undefined) {
      throw new TypeError(
        `column '${n}' is not a field of the schema (fields: ${fields.map((x) => x.name).join(", ")})`
      )
    }
    return f
  })
  if (selected.length === 0) throw new TypeError("no columns to encode")
  if (new Set(names).size !== names.length) throw new TypeError(`duplicate column in columns: ${names.join(", ")}`)
  const types = selected.map((f) => options?.columnTypes?.[f.name] ?? f.type)
  const dates = new DateText(options?.timeZone ?? "UTC")
  const anyJson = makeAnyJson(dates)
  const codecs = types.map((t) => compileCodec(t, dates, anyJson))

  const sep = options?.columnSeparator ?? ","
  const delim = options?.rowDelimiter ?? "\n"
  if (delim.length !== 1 || delim.charCodeAt(0) > 127 || delim === "\"" || delim === "\\" || delim === "\0") {
    throw new RangeError("rowDelimiter must be one ASCII byte other than '\"', '\\' and NUL")
  }
  if (
    sep.length === 0 || sep.length > 50 || /[^\x01-\x7f]/.test(sep) || sep.includes("\"") || sep.includes("\\") ||
    sep.includes(delim)
  ) {
    throw new RangeError("columnSeparator must be 1..50 ASCII bytes without '\"', '\\', NUL or the row delimiter")
  }
  const enclose = options?.serverSupportsEnclose !== false
  const jsonFallback = options?.csvJsonFallback !== false

  const nullable = selected.map((f) => f.nullable)
  const csvCells = codecs.map((c) => !enclose ? csvPlainCell(c, sep, delim) : c.textual ? csvTextualCell(c) : c.text)
  const jsonCells = codecs.map(jsonCell)
  const csvNull = enclose ? "\\\\N" : "\\N"
  const notNull = (_i: number): never => fail("null in a field the schema declares not nullable")
  const opColumn = options?.opColumn === true
  const csvRow = enclose
    ? generateRow(names, nullable, (i) => (i === 0 ? "" : sep), "\"", csvNull, delim, opColumn ? sep : undefined)(
      csvCells,
      notNull
    )
    : undefined
  const jsonRow = generateRow(
    names,
    nullable,
    (i) => (i === 0 ? "{" : ",") + JSON.stringify(names[i]) + ":",
    "",
    "null",
    "}",
    opColumn ? ",\"__op\":" : undefined
  )(jsonCells, notNull)
  const csvWrite = enclose && direct
    ? generateWriter(names, nullable, (i) => (i === 0 ? "" : sep), "\"", csvNull, delim, opColumn ? sep : undefined)(
      types.map((t, i) => emitFor(t, false, dates, csvCells[i]!)),
      notNull
    )
    : undefined
  const jsonWrite = direct
    ? generateWriter(
      names,
      nullable,
      (i) => (i === 0 ? "{" : ",") + JSON.stringify(names[i]) + ":",
      "",
      "null",
      "}",
      opColumn ? ",\"__op\":" : undefined
    )(types.map((t, i) => emitFor(t, true, dates, jsonCells[i]!)), notNull)
    : undefined
  const plainRow = (row: A, op?: number): string => {
    let s = ""
    for (let i = 0; i < n; i++) {
      const v = (row as any)[names[i]!]
      s += (v === null || v === undefined ? (nullable[i] ? csvNull : notNull(i)) : csvCells[i]!(v)) +
        (i === n - 1 ? (opColumn ? sep + (op === 1 ? "1" : "0") + delim : delim) : sep)
    }
    return s
  }
  /** Which column of a row fails (for the error), by encoding cell by cell. */
  const locate = (row: A, cells: ReadonlyArray<(v: unknown) => string>): { i: number; e: unknown } => {
    for (let i = 0; i < n; i++) {
      const v = (row as any)[names[i]!]
      try {
        if (v === null || v === undefined) {
          if (!nullable[i]) notNull(i)
        } else {
          cells[i]!(v)
        }
      } catch (e) {
        return { i, e }
      }
    }
    return { i: 0, e: new Failure("unexpected failure") }
  }

  const csvHeaders: Record<string, string> = {
    format: "csv",
    column_separator: delimiterHeader(sep),
    row_delimiter: delimiterHeader(delim),
    ...(enclose ? { enclose: "\"", escape: "\\" } : {}),
    columns: names.map(columnRef).join(",") + (opColumn ? ",__op" : "")
  }
  const jsonHeaders: Record<string, string> = {
    format: "json",
    strip_outer_array: "true",
    ignore_json_size: "true",
    ...(opColumn || options?.jsonColumnsHeader === true ? { columns: csvHeaders.columns! } : {})
  }
  const n = names.length

  const bufferPool = options?.bufferPool ?? makeBufferPool(options?.bufferPoolBytes ?? 256 * MAX_BUFFER)
  const takeBuffer = bufferPool.take
  const release = bufferPool.release

  const wrap = (e: unknown, rowIndex: number, i: number): never => {
    if (e instanceof Failure) throw new RowEncodeError({ row: rowIndex, column: names[i]!, reason: e.reason })
    if (e === FALLBACK_N) {
      throw new RowEncodeError({
        row: rowIndex,
        column: names[i]!,
        reason: "the exact string \\N cannot travel in CSV (StarRocks reads it as NULL) and the JSON fallback is off"
      })
    }
    if (e === FALLBACK_QUOTE) {
      throw new RowEncodeError({
        row: rowIndex,
        column: names[i]!,
        reason: "the value needs quoting, which servers below 3.0 do not read, and the JSON fallback is off"
      })
    }
    throw new RowEncodeError({ row: rowIndex, column: names[i]!, reason: `unexpected: ${String(e)}` })
  }
  const core: Core<A> = {
    csvWrite,
    jsonWrite,
    csvRow: csvRow ?? plainRow,
    jsonRow,
    csvFailure: (row, rowIndex, e) => {
      if ((e === FALLBACK_N || e === FALLBACK_QUOTE) && jsonFallback) return false
      const at = locate(row, csvCells)
      if ((at.e === FALLBACK_N || at.e === FALLBACK_QUOTE) && jsonFallback) return false
      return wrap(at.e, rowIndex, at.i)
    },
    jsonFailure: (row, rowIndex) => {
      const at = locate(row, jsonCells)
      return wrap(at.e, rowIndex, at.i)
    },
    take: takeBuffer,
    csvHeaders,
    jsonHeaders
  }
  const builder = (format: "csv" | "json"): BatchBuilder<A> => new Builder(format, core)

  let placeholderRow: Record<string, unknown> | undefined
  const placeholders = () => {
    if (placeholderRow !== undefined) return placeholderRow
    const candidates: ReadonlyArray<unknown> = [0, 0n, "0", "", false, new Date(0), "1970-01-01", [], {}, "{}"]
    const out: Record<string, unknown> = {}
    names.forEach((name, i) => {
      if (nullable[i]) {
        out[name] = null
        return
      }
      for (const c of candidates) {
        try {
          csvCells[i]!(c)
          jsonCells[i]!(c)
          out[name] = c
          return
        } catch {
          // not this one
        }
      }
    })
    placeholderRow = out
    return out
  }

  return { columns: names, columnTypes: types, builder, release, placeholders }
}
