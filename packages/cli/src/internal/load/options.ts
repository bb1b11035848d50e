/**
 * The loader's small parsers: Java properties files, delimiters, byte sizes, labels.
 *
 * @internal
 */

/** A Java `.properties` file: `key=value`, `key: value` or `key value`; `#`/`!` comments; `\` continuations. */
export const parseProperties = (text: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const lines = text.split(/\r\n|\r|\n/)
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.replace(/^[ \t\f]+/, "")
    if (line.length === 0 || line.startsWith("#") || line.startsWith("!")) continue
    // a line ending in an odd number of backslashes continues on the next one
    while (/(^|[^\\])(\\\\)*\\$/.test(line) && i + 1 < lines.length) {
      line = line.slice(0, -1) + lines[++i]!.replace(/^[ \t\f]+/, "")
    }
    let k = 0
    let key = ""
    while (k < line.length) {
      const c = line[k]!
      if (c === "\\" && k + 1 < line.length) {
        key += line.slice(k, k + 2)
        k += 2
        continue
      }
      if (c === "=" || c === ":" || c === " " || c === "\t" || c === "\f") break
      key += c
      k++
    }
    let rest = line.slice(k).replace(/^[ \t\f]+/, "")
    if (rest.startsWith("=") || rest.startsWith(":")) rest = rest.slice(1).replace(/^[ \t\f]+/, "")
    out[unescape(key)] = unescape(rest)
  }
  return out
}

const unescape = (s: string): string =>
  s.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, e: string) => {
    if (e.length === 5) return String.fromCharCode(parseInt(e.slice(1), 16))
    switch (e) {
      case "t":
        return "\t"
      case "n":
        return "\n"
      case "r":
        return "\r"
      case "f":
        return "\f"
      default:
        return e
    }
  })

/**
 * A delimiter as the user wrote it → its bytes: `\xHH…` / `0xHH…` is hex (as StarRocks reads the header), `\t`,
 * `\n`, `\r`, `\\` are escapes, anything else is the text itself (UTF-8). Returns a message when invalid.
 */
export const decodeDelimiter = (text: string): Uint8Array | string => {
  if (text.length === 0) return "is empty"
  if (/^(\\x|0x)/i.test(text)) {
    const hex = text.slice(2)
    if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
      return `"${text}" is not hex (\\x followed by pairs of hex digits)`
    }
    return Buffer.from(hex, "hex")
  }
  const s = text.replace(
    /\\([tnr\\])/g,
    (_, e: string) => e === "t" ? "\t" : e === "n" ? "\n" : e === "r" ? "\r" : "\\"
  )
  return Buffer.from(s, "utf8")
}

/** The header value StarRocks reads back as these bytes: printable ASCII as is, anything else `\xHH…`. */
export const delimiterHeader = (bytes: Uint8Array): string => {
  const s = Buffer.from(bytes).toString("latin1")
  return /^[\x21-\x7e]+$/.test(s) && !/^(\\x|0x)/i.test(s)
    ? s
    : "\\x" + Buffer.from(bytes).toString("hex").toUpperCase()
}

const units: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3
}

/** `1048576`, `512KB`, `64MB`, `1GiB` (binary units) → bytes; undefined when not a size. */
export const parseSize = (text: string): number | undefined => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
  if (m === null) return undefined
  const unit = units[m[2]!.toLowerCase()]
  if (unit === undefined) return undefined
  const n = Math.floor(Number(m[1]) * unit)
  return Number.isSafeInteger(n) ? n : undefined
}

/** A StarRocks label (`^[-\w]{1,128}$`): other characters become `_`, the prefix is shortened to fit. */
export const label = (prefix: string, fileIndex: number, offset: number): string => {
  const tail = `-${fileIndex}-${offset}`
  return prefix.replace(/[^-\w]/g, "_").slice(0, 128 - tail.length) + tail
}

/**
 * A count with thousands separators, as `n.toLocaleString("en-US")` writes a whole number (`17,532,270`), without
 * ICU: each `toLocaleString` call builds a number format (the first one the locale data too), about 28 M instructions
 * for the first progress line and 10 M for each one after, where this takes microseconds.
 */
export const grouped = (n: number): string => {
  const digits = String(Math.abs(Math.round(n)))
  let out = ""
  for (let end = digits.length; end > 0; end -= 3) {
    out = digits.slice(Math.max(0, end - 3), end) + (out === "" ? "" : "," + out)
  }
  return (n < 0 && Math.round(n) !== 0 ? "-" : "") + out
}
