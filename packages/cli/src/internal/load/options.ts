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

/** SHA-256's round constants (FIPS 180-4 §4.2.2). */
const K256 = Uint32Array.of(
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2
)

/**
 * The SHA-256 of `text`'s UTF-8 bytes, in hex: what `crypto.createHash("sha256").update(text).digest("hex")` gives
 * (packages/cli/test/options.test.ts compares them), without node:crypto, whose 16 modules a start would load for
 * the one hash of the default label prefix (docs/benchmark.md, session 14).
 */
export const sha256Hex = (text: string): string => {
  const data = Buffer.from(text, "utf8")
  // the message, a 1 bit, zeros, and its length in bits (big-endian, 64 bits): a multiple of 64 bytes
  const blocks = Math.ceil((data.length + 9) / 64)
  const message = new Uint8Array(blocks * 64)
  message.set(data)
  message[data.length] = 0x80
  const view = new DataView(message.buffer)
  view.setUint32(message.length - 8, Math.floor(data.length / 0x20000000))
  view.setUint32(message.length - 4, (data.length * 8) >>> 0)
  const h = Uint32Array.of(
    0x6a09e667,
    0xbb67ae85,
    0x3c6ef372,
    0xa54ff53a,
    0x510e527f,
    0x9b05688c,
    0x1f83d9ab,
    0x5be0cd19
  )
  const w = new Uint32Array(64)
  for (let block = 0; block < message.length; block += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(block + 4 * i)
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15]!
      const b = w[i - 2]!
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3)
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10)
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) >>> 0
    }
    let [a, b, c, d, e, f, g, hh] = h as unknown as [number, number, number, number, number, number, number, number]
    for (let i = 0; i < 64; i++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))
      const t1 = (hh + s1 + ((e & f) ^ (~e & g)) + K256[i]! + w[i]!) >>> 0
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) >>> 0
      hh = g
      g = f
      f = e
      e = (d + t1) >>> 0
      d = c
      c = b
      b = a
      a = (t1 + t2) >>> 0
    }
    h[0] = h[0]! + a
    h[1] = h[1]! + b
    h[2] = h[2]! + c
    h[3] = h[3]! + d
    h[4] = h[4]! + e
    h[5] = h[5]! + f
    h[6] = h[6]! + g
    h[7] = h[7]! + hh
  }
  let hex = ""
  for (const word of h) hex += word.toString(16).padStart(8, "0")
  return hex
}
