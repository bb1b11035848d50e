/**
 * A small JSON reader for the BE data path: positions are kept (document streams, syntax errors), number tokens
 * stay raw (BIGINT/LARGEINT/DECIMAL/VARCHAR keep the token text), objects keep the first value of a duplicated key.
 *
 * @internal
 */

/** A JSON number, kept as its raw token. */
export class JsonNumber {
  constructor(readonly raw: string) {}
}

/**
 * A string with an invalid escape (`"\s"`), kept as its raw text. The BE's on-demand parser (simdjson) only
 * unescapes a string when a column reads it, so such a string fails only the column that reads it (NULL, or the row
 * filtered under strict_mode) and the document still loads (StarRocks' test_invalid_json; docs/protocol.md §6.3).
 */
export class JsonInvalidString {
  constructor(readonly raw: string) {}
}

export type JsonValue =
  | null
  | boolean
  | string
  | JsonNumber
  | JsonInvalidString
  | ReadonlyArray<JsonValue>
  | JsonObject

export class JsonObject {
  readonly map = new Map<string, JsonValue>()
}

export class JsonSyntaxError extends Error {
  constructor(readonly position: number, message: string) {
    super(message)
  }
}

const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

export const skipWs = (s: string, pos: number): number => {
  while (pos < s.length && isWs(s.charCodeAt(pos))) pos++
  return pos
}

const numberRe = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y

/**
 * Parses one JSON value starting at `pos` (leading whitespace allowed); returns it and the position after it. With
 * `lenientStrings`, a string with an invalid escape becomes a `JsonInvalidString` instead of a syntax error.
 */
export const parseValueAt = (
  s: string,
  start: number,
  lenientStrings = false
): { value: JsonValue; end: number } => {
  let pos = start
  const fail = (msg: string): never => {
    throw new JsonSyntaxError(pos, msg)
  }
  /** After a bad escape in lenient mode: the raw string up to its closing quote. */
  const invalidString = (open: number): JsonInvalidString => {
    let p = open + 1
    for (;;) {
      if (p >= s.length) {
        pos = p
        fail("unterminated string")
      }
      const c = s.charCodeAt(p)
      if (c === 0x5c) {
        p += 2
        continue
      }
      if (c === 0x22) {
        pos = p + 1
        return new JsonInvalidString(s.slice(open + 1, p))
      }
      p++
    }
  }
  const parseString = (): string | JsonInvalidString => {
    // s[pos] === '"'
    const open = pos
    pos++
    let out = ""
    let chunk = pos
    for (;;) {
      if (pos >= s.length) fail("unterminated string")
      const c = s.charCodeAt(pos)
      if (c === 0x22) {
        out += s.slice(chunk, pos)
        pos++
        return out
      }
      if (c === 0x5c) {
        out += s.slice(chunk, pos)
        const e = s[pos + 1]
        switch (e) {
          case "\"":
            out += "\""
            break
          case "\\":
            out += "\\"
            break
          case "/":
            out += "/"
            break
          case "b":
            out += "\b"
            break
          case "f":
            out += "\f"
            break
          case "n":
            out += "\n"
            break
          case "r":
            out += "\r"
            break
          case "t":
            out += "\t"
            break
          case "u": {
            const hex = s.slice(pos + 2, pos + 6)
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) {
              if (lenientStrings) return invalidString(open)
              fail("invalid unicode escape")
            }
            out += String.fromCharCode(parseInt(hex, 16))
            pos += 4
            break
          }
          default:
            if (lenientStrings) return invalidString(open)
            fail("invalid escape")
        }
        pos += 2
        chunk = pos
        continue
      }
      // raw control characters are kept: simdjson's on-demand parser (the BE's) does not reject them, and
      // StarRocks' test_stream_load_non_utf8_json loads one (docs/protocol.md §6.3)
      pos++
    }
  }
  const parse = (depth: number): JsonValue => {
    if (depth > 1000) fail("too deep")
    pos = skipWs(s, pos)
    if (pos >= s.length) fail("unexpected end of input")
    const c = s.charCodeAt(pos)
    if (c === 0x7b) {
      pos++
      const obj = new JsonObject()
      pos = skipWs(s, pos)
      if (s.charCodeAt(pos) === 0x7d) {
        pos++
        return obj
      }
      for (;;) {
        pos = skipWs(s, pos)
        if (s.charCodeAt(pos) !== 0x22) fail("expected a key")
        const k = parseString()
        const key = typeof k === "string" ? k : k.raw
        pos = skipWs(s, pos)
        if (s.charCodeAt(pos) !== 0x3a) fail("expected ':'")
        pos++
        const v = parse(depth + 1)
        if (!obj.map.has(key)) obj.map.set(key, v)
        pos = skipWs(s, pos)
        const d = s.charCodeAt(pos)
        if (d === 0x2c) {
          pos++
          continue
        }
        if (d === 0x7d) {
          pos++
          return obj
        }
        fail("expected ',' or '}'")
      }
    }
    if (c === 0x5b) {
      pos++
      const arr: Array<JsonValue> = []
      pos = skipWs(s, pos)
      if (s.charCodeAt(pos) === 0x5d) {
        pos++
        return arr
      }
      for (;;) {
        arr.push(parse(depth + 1))
        pos = skipWs(s, pos)
        const d = s.charCodeAt(pos)
        if (d === 0x2c) {
          pos++
          continue
        }
        if (d === 0x5d) {
          pos++
          return arr
        }
        fail("expected ',' or ']'")
      }
    }
    if (c === 0x22) return parseString()
    if (s.startsWith("true", pos)) {
      pos += 4
      return true
    }
    if (s.startsWith("false", pos)) {
      pos += 5
      return false
    }
    if (s.startsWith("null", pos)) {
      pos += 4
      return null
    }
    numberRe.lastIndex = pos
    const m = numberRe.exec(s)
    if (m === null) fail("invalid value")
    pos += m![0].length
    return new JsonNumber(m![0])
  }
  const value = parse(0)
  return { value, end: pos }
}

/** Parses a whole text as exactly one JSON value, or returns undefined. */
export const parseJsonText = (s: string): { value: JsonValue } | undefined => {
  try {
    const { end, value } = parseValueAt(s, 0)
    if (skipWs(s, end) !== s.length) return undefined
    return { value }
  } catch {
    return undefined
  }
}

/** Minified JSON text. */
export const stringifyJson = (v: JsonValue): string => {
  if (v === null) return "null"
  if (typeof v === "boolean") return v ? "true" : "false"
  if (typeof v === "string") return JSON.stringify(v)
  if (v instanceof JsonNumber) return v.raw
  if (v instanceof JsonInvalidString) return `"${v.raw}"`
  if (v instanceof JsonObject) {
    const parts: Array<string> = []
    for (const [k, x] of v.map) parts.push(JSON.stringify(k) + ":" + stringifyJson(x))
    return "{" + parts.join(",") + "}"
  }
  return "[" + (v as ReadonlyArray<JsonValue>).map(stringifyJson).join(",") + "]"
}

/** A parsed JsonPath (`$`, `$.a.b`, `$.a[0]`, `$["a"]`, `$['a']`): a list of keys and indexes. */
export type JsonPath = ReadonlyArray<string | number>

export const parseJsonPath = (text: string): JsonPath | undefined => {
  const t = text.trim()
  if (!t.startsWith("$")) return undefined
  const out: Array<string | number> = []
  let i = 1
  while (i < t.length) {
    const c = t[i]
    if (c === ".") {
      let j = i + 1
      while (j < t.length && t[j] !== "." && t[j] !== "[") j++
      const key = t.slice(i + 1, j)
      if (key.length === 0) return undefined
      out.push(key)
      i = j
    } else if (c === "[") {
      const close = t.indexOf("]", i)
      if (close < 0) return undefined
      const inner = t.slice(i + 1, close).trim()
      if (/^[0-9]+$/.test(inner)) out.push(Number(inner))
      else if (/^(["']).*\1$/.test(inner)) out.push(inner.slice(1, -1))
      else if (inner === "*") return undefined
      else return undefined
      i = close + 1
    } else {
      return undefined
    }
  }
  return out
}

/** Extracts a path; undefined when absent. */
export const extractJsonPath = (v: JsonValue, path: JsonPath): JsonValue | undefined => {
  let cur: JsonValue | undefined = v
  for (const seg of path) {
    if (cur === undefined || cur === null) return undefined
    if (typeof seg === "number") {
      if (!Array.isArray(cur)) return undefined
      cur = (cur as ReadonlyArray<JsonValue>)[seg]
    } else {
      if (!(cur instanceof JsonObject)) return undefined
      cur = cur.map.get(seg)
    }
  }
  return cur
}
