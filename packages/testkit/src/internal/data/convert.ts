/**
 * Column types and value conversion (docs/protocol.md §8): CSV text and JSON values into typed cells.
 * A conversion returns `INVALID` when the BE converter would fail (NULL with strict_mode off, filtered with it on).
 *
 * @internal
 */
import type { Cell } from "../model.js"
import { JsonInvalidString, JsonNumber, JsonObject, parseJsonText, stringifyJson } from "./json.js"
import type { JsonValue } from "./json.js"
import type { RowBatch } from "./rowBatch.js"

export type ColumnType =
  | { readonly kind: "BOOLEAN" }
  | { readonly kind: "TINYINT" | "SMALLINT" | "INT" | "BIGINT" | "LARGEINT" }
  | { readonly kind: "FLOAT" | "DOUBLE" }
  | { readonly kind: "DECIMAL"; readonly precision: number; readonly scale: number }
  | { readonly kind: "CHAR" | "VARCHAR"; readonly length: number }
  | { readonly kind: "DATE" | "DATETIME" | "JSON" }
  | { readonly kind: "ARRAY"; readonly element: ColumnType }

/** Sentinel of a failed conversion. */
export const INVALID: unique symbol = Symbol.for("effect-starrocks/testkit/INVALID")
export type Invalid = typeof INVALID

/** `VARCHAR`/`STRING` without a length: 65533 bytes (StarRocks' STRING). */
export const DEFAULT_VARCHAR_LENGTH = 65533

const splitTop = (s: string): Array<string> => {
  const out: Array<string> = []
  let depth = 0
  let start = 0
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (c === "<" || c === "(") depth++
    else if (c === ">" || c === ")") depth--
    else if (c === "," && depth === 0) {
      out.push(s.slice(start, i))
      start = i + 1
    }
  }
  out.push(s.slice(start))
  return out.map((x) => x.trim())
}

/** Parses a StarRocks type text (`VARCHAR(64)`, `DECIMAL(10,2)`, `ARRAY<INT>`, ...). Unknown types read as STRING. */
export const parseColumnType = (text: string): ColumnType => {
  const t = text.trim()
  const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\)|<(.*)>)?\s*(?:UNSIGNED)?$/i.exec(t)
  if (m === null) return { kind: "VARCHAR", length: DEFAULT_VARCHAR_LENGTH }
  const name = m[1]!.toUpperCase()
  const args = m[2] !== undefined ? splitTop(m[2]) : []
  const num = (i: number, dflt: number) => {
    const v = args[i] !== undefined ? Number.parseInt(args[i]!, 10) : NaN
    return Number.isFinite(v) ? v : dflt
  }
  switch (name) {
    case "BOOLEAN":
    case "BOOL":
      return { kind: "BOOLEAN" }
    case "TINYINT":
      return { kind: "TINYINT" }
    case "SMALLINT":
      return { kind: "SMALLINT" }
    case "INT":
    case "INTEGER":
      return { kind: "INT" }
    case "BIGINT":
      return { kind: "BIGINT" }
    case "LARGEINT":
      return { kind: "LARGEINT" }
    case "FLOAT":
      return { kind: "FLOAT" }
    case "DOUBLE":
      return { kind: "DOUBLE" }
    case "DECIMAL":
    case "DECIMALV2":
    case "DECIMALV3":
    case "DECIMAL32":
    case "DECIMAL64":
    case "DECIMAL128":
    case "NUMERIC": {
      const precision = num(0, 10)
      return { kind: "DECIMAL", precision, scale: num(1, 0) }
    }
    case "CHAR":
      return { kind: "CHAR", length: num(0, 1) }
    case "VARCHAR":
      return { kind: "VARCHAR", length: num(0, DEFAULT_VARCHAR_LENGTH) }
    case "STRING":
    case "TEXT":
      return { kind: "VARCHAR", length: DEFAULT_VARCHAR_LENGTH }
    case "DATE":
      return { kind: "DATE" }
    case "DATETIME":
    case "TIMESTAMP":
      return { kind: "DATETIME" }
    case "JSON":
      return { kind: "JSON" }
    case "ARRAY":
      return { kind: "ARRAY", element: parseColumnType(m[3] ?? "STRING") }
    default:
      return { kind: "VARCHAR", length: DEFAULT_VARCHAR_LENGTH }
  }
}

export const typeToString = (t: ColumnType): string => {
  switch (t.kind) {
    case "DECIMAL":
      return `DECIMAL(${t.precision},${t.scale})`
    case "CHAR":
    case "VARCHAR":
      return `${t.kind}(${t.length})`
    case "ARRAY":
      return `ARRAY<${typeToString(t.element)}>`
    default:
      return t.kind
  }
}

// ---------------------------------------------------------------------------------------------------------------
// integers

const INT_BITS = { TINYINT: 8, SMALLINT: 16, INT: 32, BIGINT: 64, LARGEINT: 128 } as const

const isSpaceCode = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d)

const trimWs = (s: string): string => {
  let a = 0
  let b = s.length
  while (a < b && isSpaceCode(s.charCodeAt(a))) a++
  while (b > a && isSpaceCode(s.charCodeAt(b - 1))) b--
  return a === 0 && b === s.length ? s : s.slice(a, b)
}

type IntParse = { readonly ok: true; readonly value: bigint } | { readonly ok: false; readonly overflow: boolean }

/** `string_to_int`: optional sign, digits, trailing whitespace (retried after leading whitespace); bare sign = 0. */
const stringToInt = (s: string, bits: number): IntParse => {
  const attempt = (str: string): IntParse => {
    let i = 0
    let neg = false
    if (str[0] === "-" || str[0] === "+") {
      neg = str[0] === "-"
      i = 1
    }
    const digitsStart = i
    while (i < str.length) {
      const c = str.charCodeAt(i)
      if (c < 0x30 || c > 0x39) break
      i++
    }
    const digits = str.slice(digitsStart, i)
    for (let j = i; j < str.length; j++) {
      if (!isSpaceCode(str.charCodeAt(j))) return { ok: false, overflow: false }
    }
    if (str.length === 0) return { ok: false, overflow: false }
    if (digits.length === 0 && digitsStart === 0) return { ok: false, overflow: false }
    const v = digits.length === 0 ? 0n : BigInt(digits)
    const max = (1n << BigInt(bits - 1)) - 1n
    const value = neg ? -v : v
    if (value > max || value < -max - 1n) return { ok: false, overflow: true }
    return { ok: true, value }
  }
  const first = attempt(s)
  if (first.ok || first.overflow) return first
  let k = 0
  while (k < s.length && isSpaceCode(s.charCodeAt(k))) k++
  if (k === 0) return first
  return attempt(s.slice(k))
}

/** fast_float-like `string_to_float`: undefined when invalid. Infinity/NaN are returned as such. */
export const stringToFloat = (input: string): number | undefined => {
  const s = trimWs(input)
  if (s.length === 0) return undefined
  let i = 0
  let neg = false
  if (s[0] === "-" || s[0] === "+") {
    neg = s[0] === "-"
    i = 1
  }
  const rest = s.slice(i).toLowerCase()
  if (rest.startsWith("inf")) return neg ? -Infinity : Infinity
  if (rest.startsWith("nan")) return NaN
  let seenE = false
  for (let j = 0; j < rest.length; j++) {
    const c = rest[j]!
    if (c >= "0" && c <= "9") continue
    if (c === ".") continue
    if (c === "e") {
      if (seenE) return undefined
      seenE = true
      continue
    }
    if ((c === "+" || c === "-") && j > 0 && rest[j - 1] === "e") continue
    return undefined
  }
  const m = /^(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?/.exec(rest)
  if (m === null) return undefined
  const v = Number(m[0])
  if (!Number.isFinite(v)) return undefined
  return neg ? -v : v
}

/** DecimalV2-style parse then truncation toward zero (BIGINT/LARGEINT fallback); undefined when rejected. */
const decimalToTruncatedInt = (input: string): bigint | undefined => {
  const s = trimWs(input)
  const m = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$/.exec(s)
  if (m === null) return undefined
  const intPart = m[2] ?? ""
  const frac = m[3] ?? ""
  if (intPart.length === 0 && frac.length === 0 && m[3] === undefined) return undefined
  const exp = m[4] !== undefined ? Number.parseInt(m[4], 10) : 0
  if (exp > 127 || exp < -128) return undefined
  const digits = (intPart + frac).replace(/^0+/, "")
  const pointShift = frac.length - exp
  let v: bigint
  if (digits.length === 0) v = 0n
  else if (pointShift <= 0) v = BigInt(digits) * 10n ** BigInt(-pointShift)
  else v = digits.length > pointShift ? BigInt(digits.slice(0, digits.length - pointShift)) : 0n
  return m[1] === "-" ? -v : v
}

const convertInt = (kind: keyof typeof INT_BITS, s: string): Cell | Invalid => {
  const bits = INT_BITS[kind]
  const r = stringToInt(s, bits)
  if (r.ok) return bits <= 32 ? Number(r.value) : r.value
  if (r.overflow) return INVALID
  if (bits <= 32) {
    const f = stringToFloat(s)
    if (f === undefined || !Number.isFinite(f)) return INVALID
    const t = Math.trunc(f)
    const max = 2 ** (bits - 1) - 1
    if (t > max || t < -max - 1) return INVALID
    return t === 0 ? 0 : t
  }
  const d = decimalToTruncatedInt(s)
  if (d === undefined) return INVALID
  return BigInt.asIntN(64, d)
}

// ---------------------------------------------------------------------------------------------------------------
// others

const convertBoolean = (s: string): Cell | Invalid => {
  if (s === "1") return true
  if (s === "0") return false
  const attempt = (str: string): boolean | undefined => {
    const m = /^(true|false)[\t\n\v\f\r ]*$/i.exec(str)
    return m === null ? undefined : m[1]!.toLowerCase() === "true"
  }
  const b = attempt(s) ?? attempt(s.replace(/^[\t\n\v\f\r ]+/, ""))
  if (b !== undefined) return b
  const f = stringToFloat(s)
  if (f !== undefined) return Number.isNaN(f) || f !== 0
  // float overflow goes through DecimalV2: !is_zero
  const d = /^[\t\n\v\f\r ]*[+-]?([0-9]*\.?[0-9]*)(?:[eE][+-]?[0-9]+)?[\t\n\v\f\r ]*$/.exec(s)
  if (d !== null && /[0-9]/.test(d[1]!)) return /[1-9]/.test(d[1]!)
  return INVALID
}

const convertDecimal = (precision: number, scale: number, input: string): Cell | Invalid => {
  const s = trimWs(input)
  const m = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$/.exec(s)
  if (m === null) return INVALID
  const intPart = m[2] ?? ""
  const frac = m[3] ?? ""
  if (intPart.length === 0 && frac.length === 0) return INVALID
  const exp = m[4] !== undefined ? Number.parseInt(m[4], 10) : 0
  if (exp > 127 || exp < -128) return INVALID
  // value = digits * 10^(exp - frac.length); want unscaled = value * 10^scale
  const digits = BigInt((intPart + frac) || "0")
  const shift = exp - frac.length + scale
  let unscaled: bigint
  if (shift >= 0) unscaled = digits * 10n ** BigInt(shift)
  else {
    const div = 10n ** BigInt(-shift)
    unscaled = digits / div
    const rem = digits % div
    if (rem * 2n >= div) unscaled += 1n // round half up (away from zero on the magnitude)
  }
  if (unscaled >= 10n ** BigInt(precision)) return INVALID
  if (unscaled === 0n) return scale > 0 ? "0." + "0".repeat(scale) : "0"
  const neg = m[1] === "-"
  let text = unscaled.toString()
  if (scale > 0) {
    text = text.padStart(scale + 1, "0")
    text = text.slice(0, text.length - scale) + "." + text.slice(text.length - scale)
  }
  return neg ? "-" + text : text
}

const pad = (n: number, w: number) => String(n).padStart(w, "0")

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

const validDate = (y: number, mo: number, d: number) => {
  if (y < 0 || y > 9999 || mo < 1 || mo > 12 || d < 1) return false
  if (mo === 2 && d === 29) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0
  return d <= DAYS_IN_MONTH[mo - 1]!
}

interface DateTimeParts {
  readonly y: number
  readonly mo: number
  readonly d: number
  readonly h: number
  readonly mi: number
  readonly s: number
  readonly frac: string
  readonly hasTime: boolean
}

const dateTimeRe = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d+))?)?)?$/
const compactRe = /^(\d{4})(\d{2})(\d{2})(?:[T ]?(\d{2})(\d{2})(\d{2})(?:\.(\d+))?)?$/

const parseDateTime = (input: string): DateTimeParts | undefined => {
  const s = trimWs(input)
  const m = dateTimeRe.exec(s) ?? compactRe.exec(s)
  if (m === null) return undefined
  const y = Number(m[1])
  const mo = Number(m[2])
  const d = Number(m[3])
  if (!validDate(y, mo, d)) return undefined
  const hasTime = m[4] !== undefined
  const h = hasTime ? Number(m[4]) : 0
  const mi = hasTime ? Number(m[5]) : 0
  const sec = m[6] !== undefined ? Number(m[6]) : 0
  if (h > 23 || mi > 59 || sec > 59) return undefined
  return { y, mo, d, h, mi, s: sec, frac: (m[7] ?? "").slice(0, 6).padEnd(6, "0"), hasTime }
}

const formatDate = (p: DateTimeParts) => `${pad(p.y, 4)}-${pad(p.mo, 2)}-${pad(p.d, 2)}`

const convertDate = (s: string): Cell | Invalid => {
  const p = parseDateTime(s)
  return p === undefined ? INVALID : formatDate(p)
}

const convertDateTime = (s: string): Cell | Invalid => {
  const p = parseDateTime(s)
  if (p === undefined) return INVALID
  const base = `${formatDate(p)} ${pad(p.h, 2)}:${pad(p.mi, 2)}:${pad(p.s, 2)}`
  return p.frac === "000000" ? base : `${base}.${p.frac}`
}

const utf8Length = (s: string): number => {
  // fast path: ASCII-only strings
  if (s.length <= 64) {
    let ascii = true
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        ascii = false
        break
      }
    }
    if (ascii) return s.length
  }
  return Buffer.byteLength(s, "utf8")
}

/** Whether a string fits a CHAR/VARCHAR(n) (bytes). */
export const fitsLength = (s: string, length: number): boolean =>
  s.length <= length && (s.length * 3 <= length || utf8Length(s) <= length)

const convertArrayValue = (element: ColumnType, v: JsonValue): Cell | Invalid => {
  if (!Array.isArray(v)) return INVALID
  return (v as ReadonlyArray<JsonValue>).map((e) => {
    const c = convertJson(element, e)
    return c === INVALID ? null : c
  })
}

/** CSV text (already unescaped, not `\N`) into a column type. */
// ---------------------------------------------------------------------------------------------------------------
// fast paths: the plain spellings a client writes (and the only ones the sink writes) are recognised with char
// code checks; anything else takes the full converter above

const isDigit = (c: number) => c >= 0x30 && c <= 0x39

/** `-?[0-9]{1,15}` (fits a double exactly), else -1 / the digit start. */
const plainIntStart = (s: string): number => {
  const n = s.length
  const start = n > 0 && s.charCodeAt(0) === 0x2d ? 1 : 0
  if (n === start || n - start > 15) return -1
  for (let i = start; i < n; i++) if (!isDigit(s.charCodeAt(i))) return -1
  return start
}

const INT_MAX = { TINYINT: 127, SMALLINT: 32767, INT: 2147483647 } as const

const fastInt = (kind: keyof typeof INT_BITS, s: string): Cell | Invalid | undefined => {
  if (plainIntStart(s) < 0) return undefined
  const v = Number(s)
  if (kind === "BIGINT" || kind === "LARGEINT") return BigInt(v)
  const max = INT_MAX[kind]
  return v > max || v < -max - 1 ? undefined : v === 0 ? 0 : v
}

/** `-?[0-9]+(\.[0-9]+)?` with at most 15 significant digits: Number() gives the same double as strtod. */
const fastDouble = (s: string): number | undefined => {
  const n = s.length
  let i = n > 0 && s.charCodeAt(0) === 0x2d ? 1 : 0
  const start = i
  while (i < n && isDigit(s.charCodeAt(i))) i++
  if (i === start) return undefined
  if (i < n) {
    if (s.charCodeAt(i) !== 0x2e) return undefined
    const f = ++i
    while (i < n && isDigit(s.charCodeAt(i))) i++
    if (i !== n || i === f) return undefined
  }
  if (n - start > 16) return undefined
  return Number(s)
}

/** A DECIMAL(p,s) text already in its stored form: `-?(0|[1-9][0-9]*)\.[0-9]{s}` within the precision. */
const fastDecimal = (precision: number, scale: number, s: string): string | undefined => {
  const n = s.length
  let i = n > 0 && s.charCodeAt(0) === 0x2d ? 1 : 0
  const start = i
  while (i < n && isDigit(s.charCodeAt(i))) i++
  const intDigits = i - start
  if (intDigits === 0 || (intDigits > 1 && s.charCodeAt(start) === 0x30)) return undefined
  if (scale === 0) return i === n && intDigits <= precision && start === 0 ? s : undefined
  if (i >= n || s.charCodeAt(i) !== 0x2e || n - i - 1 !== scale) return undefined
  for (let j = i + 1; j < n; j++) if (!isDigit(s.charCodeAt(j))) return undefined
  if (intDigits > precision - scale) return undefined
  // "-0.00" is stored as "0.00": the full converter handles the sign of zero
  return start === 1 && intDigits === 1 && s.charCodeAt(1) === 0x30 ? undefined : s
}

const two = (s: string, i: number) => (s.charCodeAt(i) - 0x30) * 10 + s.charCodeAt(i + 1) - 0x30

/** `YYYY-MM-DD` of a valid date. */
const fastDate = (s: string): boolean => {
  if (s.length < 10 || s.charCodeAt(4) !== 0x2d || s.charCodeAt(7) !== 0x2d) return false
  if (
    !isDigit(s.charCodeAt(0)) || !isDigit(s.charCodeAt(1)) || !isDigit(s.charCodeAt(2)) ||
    !isDigit(s.charCodeAt(3)) || !isDigit(s.charCodeAt(5)) || !isDigit(s.charCodeAt(6)) ||
    !isDigit(s.charCodeAt(8)) || !isDigit(s.charCodeAt(9))
  ) return false
  return validDate(two(s, 0) * 100 + two(s, 2), two(s, 5), two(s, 8))
}

/** `YYYY-MM-DD HH:MM:SS` of a valid date and time. */
const fastDateTime = (s: string): boolean => {
  if (s.length !== 19 || !fastDate(s) || s.charCodeAt(10) !== 0x20) return false
  if (s.charCodeAt(13) !== 0x3a || s.charCodeAt(16) !== 0x3a) return false
  if (
    !isDigit(s.charCodeAt(11)) || !isDigit(s.charCodeAt(12)) || !isDigit(s.charCodeAt(14)) ||
    !isDigit(s.charCodeAt(15)) || !isDigit(s.charCodeAt(17)) || !isDigit(s.charCodeAt(18))
  ) return false
  return two(s, 11) <= 23 && two(s, 14) <= 59 && two(s, 17) <= 59
}

export const convertText = (type: ColumnType, s: string): Cell | Invalid => {
  switch (type.kind) {
    case "TINYINT":
    case "SMALLINT":
    case "INT":
    case "BIGINT":
    case "LARGEINT":
      return fastInt(type.kind, s) ?? convertInt(type.kind, s)
    case "FLOAT": {
      const f = stringToFloat(s)
      if (f === undefined) return INVALID
      const r = Math.fround(f)
      return Number.isFinite(f) && !Number.isFinite(r) ? INVALID : r
    }
    case "DOUBLE": {
      const f = fastDouble(s) ?? stringToFloat(s)
      return f === undefined ? INVALID : f
    }
    case "BOOLEAN":
      return convertBoolean(s)
    case "DECIMAL":
      return fastDecimal(type.precision, type.scale, s) ?? convertDecimal(type.precision, type.scale, s)
    case "CHAR":
    case "VARCHAR":
      return fitsLength(s, Math.min(type.length, 1048576)) ? s : INVALID
    case "DATE":
      return s.length === 10 && fastDate(s) ? s : convertDate(s)
    case "DATETIME":
      return fastDateTime(s) ? s : convertDateTime(s)
    case "JSON": {
      const p = parseJsonText(s)
      return p === undefined ? INVALID : stringifyJson(p.value)
    }
    case "ARRAY": {
      const p = parseJsonText(s)
      return p === undefined ? INVALID : convertArrayValue(type.element, p.value)
    }
  }
}

/** The text a JSON value gives when it is read as VARCHAR: string content, raw number, `1`/`0`, minified JSON. */
export const jsonAsText = (v: JsonValue): string => {
  if (typeof v === "string") return v
  if (v instanceof JsonInvalidString) return v.raw
  if (typeof v === "boolean") return v ? "1" : "0"
  if (v instanceof JsonNumber) return v.raw
  return stringifyJson(v)
}

const INT64_MIN = -(2n ** 63n)
const UINT64_END = 2n ** 64n
const INT_RANGE = {
  TINYINT: [-128, 127],
  SMALLINT: [-32768, 32767],
  INT: [-2147483648, 2147483647],
  BIGINT: [-(2 ** 63), 2 ** 63]
} as const
const FLT_MAX = 3.4028234663852886e38

/**
 * `checked_cast` of a double into a numeric column (formats/json/numeric_column.cpp): integers are truncated toward
 * zero, and a value outside the column's range is invalid (NULL, or the row filtered under strict_mode).
 */
const doubleInto = (
  kind: "TINYINT" | "SMALLINT" | "INT" | "BIGINT" | "FLOAT" | "DOUBLE",
  d: number
): Cell | Invalid => {
  if (!Number.isFinite(d)) return kind === "DOUBLE" || kind === "FLOAT" ? d : INVALID
  if (kind === "DOUBLE") return d
  if (kind === "FLOAT") return Math.abs(d) > FLT_MAX ? INVALID : Math.fround(d)
  const t = Math.trunc(d)
  const [lo, hi] = INT_RANGE[kind]
  if (kind === "BIGINT") return t < lo || t >= hi ? INVALID : BigInt(t)
  return t < lo || t > hi ? INVALID : t === 0 ? 0 : t
}

/**
 * A JSON value into TINYINT…BIGINT, FLOAT or DOUBLE, as the BE's JSON scanner reads these columns natively
 * (formats/json/numeric_column.cpp; docs/protocol.md §8.4):
 * - an integer token that fits int64 is range-checked exactly; one in [2^63, 2^64) overflows every integer column;
 *   a longer one, and any token with a fraction or an exponent, goes through a double (`1.9` → 1, `1e3` → 1000,
 *   `12345678901234567.0` → 12345678901234568);
 * - a string is parsed as an integer of the column's width, else as a double (then the same checks);
 * - true/false, objects and arrays are invalid.
 */
const convertJsonNumeric = (
  kind: "TINYINT" | "SMALLINT" | "INT" | "BIGINT" | "FLOAT" | "DOUBLE",
  v: JsonValue
): Cell | Invalid => {
  if (v instanceof JsonNumber) {
    const raw = v.raw
    if (plainIntStart(raw) >= 0) {
      // `-?[0-9]{1,15}`: exact as a double, within int64; the same checks as below without a bigint
      const x = Number(raw)
      // an integer token is an int64 first: `-0` is 0
      if (kind === "FLOAT" || kind === "DOUBLE") return doubleInto(kind, x === 0 ? 0 : x)
      if (kind === "BIGINT") return BigInt(x)
      const [lo, hi] = INT_RANGE[kind]
      return x < lo || x > hi ? INVALID : x === 0 ? 0 : x
    }
    if (/^-?[0-9]+$/.test(raw)) {
      const n = BigInt(raw)
      if (n >= INT64_MIN && n < UINT64_END) {
        if (kind === "FLOAT" || kind === "DOUBLE") return doubleInto(kind, Number(n))
        if (kind === "BIGINT") return n >= 2n ** 63n ? INVALID : n
        const [lo, hi] = INT_RANGE[kind]
        return n < BigInt(lo) || n > BigInt(hi) ? INVALID : Number(n)
      }
    }
    return doubleInto(kind, Number(raw))
  }
  if (typeof v === "string") {
    if (kind !== "FLOAT" && kind !== "DOUBLE") {
      const r = stringToInt(v, INT_BITS[kind])
      if (r.ok) return kind === "BIGINT" ? r.value : Number(r.value)
    }
    const d = stringToFloat(v)
    return d === undefined || Number.isNaN(d) && kind !== "FLOAT" && kind !== "DOUBLE" ? INVALID : doubleInto(kind, d)
  }
  return INVALID
}

/** A JSON value into a column type (JSON `null` is NULL). */
export const convertJson = (type: ColumnType, v: JsonValue): Cell | Invalid => {
  if (v === null) return null
  if (v instanceof JsonInvalidString) return INVALID
  switch (type.kind) {
    case "JSON":
      return stringifyJson(v)
    case "ARRAY":
      // only a JSON array fills an ARRAY column; a string holding array text is invalid (test_invalid_json)
      return convertArrayValue(type.element, v)
    case "TINYINT":
    case "SMALLINT":
    case "INT":
    case "BIGINT":
    case "FLOAT":
    case "DOUBLE":
      return convertJsonNumeric(type.kind, v)
    case "LARGEINT":
    case "DECIMAL":
    case "DATE":
    case "DATETIME":
    case "BOOLEAN":
      if (v instanceof JsonObject || Array.isArray(v)) return INVALID
      return convertText(type, jsonAsText(v))
    case "CHAR":
    case "VARCHAR":
      return convertText(type, jsonAsText(v))
  }
}

// ---------------------------------------------------------------------------------------------------------------
// byte paths: the CSV loader's plain spellings, converted from the field's bytes straight into a `RowBatch` slot
// (no field string, no cell). Each takes what its string fast path above takes, and gives the same cell; anything
// else answers false and the caller converts the field's text with `convertText`.

/** Writes field bytes `buf[a..e)` into column `k` of the row being written, or answers false (not handled). */
export type ByteWriter = (batch: RowBatch, k: number, buf: Uint8Array, a: number, e: number) => boolean

const TWO_53 = 2 ** 53
/** Exact powers of ten (10^0 … 10^22 are doubles without rounding). */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`))

/** `-?[0-9]{1,15}` as a number, else NaN (the spelling `fastInt` takes). */
const plainIntBytes = (buf: Uint8Array, a: number, e: number): number => {
  const neg = e > a && buf[a] === 0x2d
  const start = neg ? a + 1 : a
  if (e === start || e - start > 15) return NaN
  let v = 0
  for (let i = start; i < e; i++) {
    const d = buf[i]! - 0x30
    if (d < 0 || d > 9) return NaN
    v = v * 10 + d
  }
  return neg ? -v : v
}

const smallIntWriter = (max: number): ByteWriter => (batch, k, buf, a, e) => {
  const v = plainIntBytes(buf, a, e)
  if (!(v <= max && v >= -max - 1)) return false // NaN too
  batch.setNumber(k, v === 0 ? 0 : v)
  return true
}

const bigIntWriter: ByteWriter = (batch, k, buf, a, e) => {
  const v = plainIntBytes(buf, a, e)
  if (Number.isNaN(v)) return false
  batch.setInt64(k, v)
  return true
}

/**
 * `-?[0-9]+(\.[0-9]+)?` of at most 16 characters after the sign (what `fastDouble` takes), as the digits' integer
 * divided by a power of ten: both exact doubles when the integer is at most 2^53, so the one rounding of the
 * division gives the correctly rounded value, the double `Number()` gives. Larger integers answer false.
 */
const doubleWriter: ByteWriter = (batch, k, buf, a, e) => {
  const neg = e > a && buf[a] === 0x2d
  let i = neg ? a + 1 : a
  const start = i
  let m = 0
  while (i < e) {
    const d = buf[i]! - 0x30
    if (d < 0 || d > 9) break
    m = m * 10 + d
    i++
  }
  if (i === start) return false
  let fracDigits = 0
  if (i < e) {
    if (buf[i] !== 0x2e) return false
    const f = ++i
    while (i < e) {
      const d = buf[i]! - 0x30
      if (d < 0 || d > 9) return false
      m = m * 10 + d
      i++
    }
    if (i === f) return false
    fracDigits = i - f
  }
  if (e - start > 16 || m > TWO_53) return false
  const v = fracDigits === 0 ? m : m / POW10[fracDigits]!
  batch.setNumber(k, neg ? -v : v)
  return true
}

const isDigitByte = (c: number) => c >= 0x30 && c <= 0x39

/** A DECIMAL(p,s) text already in its stored form (what `fastDecimal` takes), kept as its bytes. */
const decimalWriter = (precision: number, scale: number): ByteWriter => (batch, k, buf, a, e) => {
  const neg = e > a && buf[a] === 0x2d
  let i = neg ? a + 1 : a
  const start = i
  while (i < e && isDigitByte(buf[i]!)) i++
  const intDigits = i - start
  if (intDigits === 0 || (intDigits > 1 && buf[start] === 0x30)) return false
  if (scale === 0) {
    if (i !== e || intDigits > precision || neg) return false
  } else {
    if (i >= e || buf[i] !== 0x2e || e - i - 1 !== scale) return false
    for (let j = i + 1; j < e; j++) if (!isDigitByte(buf[j]!)) return false
    if (intDigits > precision - scale) return false
    // "-0.00" is stored as "0.00": the full converter handles the sign of zero
    if (neg && intDigits === 1 && buf[start] === 0x30) return false
  }
  batch.setAsciiBytes(k, buf, a, e)
  return true
}

const twoBytes = (buf: Uint8Array, i: number) => (buf[i]! - 0x30) * 10 + buf[i + 1]! - 0x30

/** `YYYY-MM-DD` of a valid date at `buf[a..a+10)`. */
const plainDateBytes = (buf: Uint8Array, a: number): boolean => {
  if (buf[a + 4] !== 0x2d || buf[a + 7] !== 0x2d) return false
  if (
    !isDigitByte(buf[a]!) || !isDigitByte(buf[a + 1]!) || !isDigitByte(buf[a + 2]!) || !isDigitByte(buf[a + 3]!) ||
    !isDigitByte(buf[a + 5]!) || !isDigitByte(buf[a + 6]!) || !isDigitByte(buf[a + 8]!) || !isDigitByte(buf[a + 9]!)
  ) return false
  return validDate(twoBytes(buf, a) * 100 + twoBytes(buf, a + 2), twoBytes(buf, a + 5), twoBytes(buf, a + 8))
}

const dateWriter: ByteWriter = (batch, k, buf, a, e) => {
  if (e - a !== 10 || !plainDateBytes(buf, a)) return false
  batch.setAsciiBytes(k, buf, a, e)
  return true
}

/** `YYYY-MM-DD HH:MM:SS` of a valid date and time (what `fastDateTime` takes). */
const dateTimeWriter: ByteWriter = (batch, k, buf, a, e) => {
  if (e - a !== 19 || !plainDateBytes(buf, a) || buf[a + 10] !== 0x20) return false
  if (buf[a + 13] !== 0x3a || buf[a + 16] !== 0x3a) return false
  if (
    !isDigitByte(buf[a + 11]!) || !isDigitByte(buf[a + 12]!) || !isDigitByte(buf[a + 14]!) ||
    !isDigitByte(buf[a + 15]!) || !isDigitByte(buf[a + 17]!) || !isDigitByte(buf[a + 18]!)
  ) return false
  if (twoBytes(buf, a + 11) > 23 || twoBytes(buf, a + 14) > 59 || twoBytes(buf, a + 17) > 59) return false
  batch.setAsciiBytes(k, buf, a, e)
  return true
}

const booleanWriter: ByteWriter = (batch, k, buf, a, e) => {
  if (e - a !== 1) return false
  const c = buf[a]
  if (c !== 0x30 && c !== 0x31) return false
  batch.setBool(k, c === 0x31)
  return true
}

/**
 * CHAR/VARCHAR(n): the field's bytes, when there are at most n of them. The caller has checked that the record is
 * valid UTF-8, so the byte count is the UTF-8 length `fitsLength` checks; ASCII bytes go into the batch as they
 * are, anything else as the decoded string.
 */
const stringWriter = (length: number): ByteWriter => {
  const limit = Math.min(length, 1048576)
  return (batch, k, buf, a, e) => {
    if (e - a > limit) return false
    for (let i = a; i < e; i++) {
      if (buf[i]! > 0x7f) {
        batch.setCell(k, Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString("utf8", a, e))
        return true
      }
    }
    batch.setAsciiBytes(k, buf, a, e)
    return true
  }
}

/** The byte path of a column type, if it has one (FLOAT, JSON, ARRAY take `convertText`). */
export const byteWriter = (type: ColumnType): ByteWriter | undefined => {
  switch (type.kind) {
    case "TINYINT":
    case "SMALLINT":
    case "INT":
      return smallIntWriter(INT_MAX[type.kind])
    case "BIGINT":
    case "LARGEINT":
      return bigIntWriter
    case "DOUBLE":
      return doubleWriter
    case "DECIMAL":
      return decimalWriter(type.precision, type.scale)
    case "DATE":
      return dateWriter
    case "DATETIME":
      return dateTimeWriter
    case "BOOLEAN":
      return booleanWriter
    case "CHAR":
    case "VARCHAR":
      return stringWriter(type.length)
    default:
      return undefined
  }
}
