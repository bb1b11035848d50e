/**
 * The lane of pre-serialized records (`StarRocksSink.raw`): strings or UTF-8 bytes that are already JSON objects
 * or CSV lines. Each record is checked to be exactly one of its format (a CSV record holds no row delimiter; a
 * JSON record parses as one object) before it joins a batch, so a bad record fails the sink before its batch is
 * sent; then it is copied into the batch as it is.
 */
import { Effect } from "effect"
import { RowEncodeError } from "../../RowEncodeError.js"
import type * as StarRocksConfig from "../../StarRocksConfig.js"
import type { Lane, Sealed, TableSettings } from "./lane.js"
import { ADDED, FULL } from "./lane.js"
import type { Routing, TableOptions } from "./routing.js"
import { settingsOf } from "./routing.js"

const FIRST_BUFFER = 16 * 1024
const MAX_BUFFER = 1024 * 1024

/** The byte a `row_delimiter` header names (`\n` by default; `\x0A` hex form or one literal character). */
const delimiterByte = (header: string | undefined): number => {
  if (header === undefined || header === "") return 0x0a
  const hex = /^(?:\\x|0x)([0-9a-f]{2})$/i.exec(header)
  if (hex !== null) return parseInt(hex[1]!, 16)
  if (header === "\\n") return 0x0a
  if (header.length === 1) return header.charCodeAt(0)
  throw new TypeError(`raw CSV records need a one-byte row delimiter (got ${JSON.stringify(header)})`)
}

const bad = (rowIndex: number, reason: string): never => {
  throw new RowEncodeError({ row: rowIndex, column: "(record)", reason })
}

const decoder = new TextDecoder("utf-8", { fatal: true })

export const make = (settings: TableSettings, options: { readonly ordered: boolean }): Lane => {
  const key = `${settings.database}.${settings.table}`
  const json = settings.format === "json"
  const delim = json ? 0x0a : delimiterByte(settings.properties["row_delimiter"])
  const delimChar = String.fromCharCode(delim)
  const headers: Record<string, string> = {
    ...settings.properties,
    ...(json ? { format: "json", strip_outer_array: "true", ignore_json_size: "true" } : { format: "csv" }),
    ...(settings.columns !== undefined ? { columns: settings.columns.join(",") } : {})
  }

  let chunks: Array<Uint8Array> = []
  let buf: Buffer | undefined
  let pos = 0
  let flushed = 0
  let rows = 0
  let firstRowAt = 0
  let firstRow = -1
  let seq = 0

  const ensure = (n: number) => {
    if (buf !== undefined && pos + n <= buf.length) return
    if (buf !== undefined && pos > 0) {
      chunks.push(buf.subarray(0, pos))
      flushed += pos
    }
    buf = Buffer.allocUnsafe(Math.max(n, buf === undefined ? FIRST_BUFFER : Math.min(buf.length * 2, MAX_BUFFER)))
    pos = 0
  }
  const writeString = (s: string) => {
    ensure(s.length * 3)
    pos += buf!.write(s, pos, "utf8")
  }
  const writeBytes = (b: Uint8Array) => {
    ensure(b.byteLength)
    buf!.set(b, pos)
    pos += b.byteLength
  }
  const writeByte = (b: number) => {
    ensure(1)
    buf![pos++] = b
  }

  const add = (item: unknown, rowIndex: number, now: number): void => {
    let text: string | undefined
    let bytes: Uint8Array | undefined
    if (typeof item === "string") text = item
    else if (item instanceof Uint8Array) bytes = item
    else bad(rowIndex, `a raw record is a string or bytes, not ${item === null ? "null" : typeof item}`)
    if (json) {
      let s: string
      try {
        s = text ?? decoder.decode(bytes!)
      } catch {
        return bad(rowIndex, "not valid UTF-8")
      }
      let value: unknown
      try {
        value = JSON.parse(s)
      } catch (e) {
        return bad(rowIndex, `not JSON: ${e instanceof Error ? e.message : String(e)}`)
      }
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        bad(
          rowIndex,
          `not one JSON object (${Array.isArray(value) ? "an array" : value === null ? "null" : typeof value})`
        )
      }
      if (rows === 0) {
        firstRowAt = now
        firstRow = rowIndex
        writeByte(0x5b) // [
      } else {
        writeByte(0x2c) // ,
      }
    } else {
      if (text !== undefined ? text.includes(delimChar) : bytes!.includes(delim)) {
        bad(rowIndex, `a CSV record holds the row delimiter (${JSON.stringify(delimChar)}): one record is one line`)
      }
      if (rows === 0) {
        firstRowAt = now
        firstRow = rowIndex
      }
    }
    if (text !== undefined) writeString(text)
    else writeBytes(bytes!)
    if (!json) writeByte(delim)
    rows++
  }

  const seal = (): Sealed | undefined => {
    if (rows === 0) return undefined
    if (json) writeByte(0x5d) // ]
    if (buf !== undefined && pos > 0) {
      chunks.push(buf.subarray(0, pos))
      flushed += pos
    }
    const body = { chunks, byteLength: flushed }
    const sealed: Sealed = { lane, seq: ++seq, rows, firstRow, body, headers, release: () => {} }
    chunks = []
    buf = undefined
    pos = 0
    flushed = 0
    rows = 0
    firstRowAt = 0
    firstRow = -1
    return sealed
  }

  const lane: Lane = {
    key,
    settings,
    isPrimaryKey: false,
    keyColumns: [],
    ordered: options.ordered,
    rows: () => rows,
    bytes: () => flushed + pos + (json && rows > 0 ? 1 : 0),
    firstRowAt: () => firstRowAt,
    firstRowIndex: () => (rows > 0 ? firstRow : -1),
    add: (item, rowIndex, clock, maxRows, maxBytes) => {
      add(item, rowIndex, rows === 0 ? clock.unsafeCurrentTimeMillis() : 0)
      return rows >= maxRows || lane.bytes() >= maxBytes ? FULL : ADDED
    },
    addFresh: add,
    seal,
    discard: () => {
      chunks = []
      buf = undefined
      pos = 0
      flushed = 0
      rows = 0
      firstRow = -1
    }
  }
  return lane
}

/** One table of raw records. */
export const routing = (options: TableOptions & { readonly format: "csv" | "json" }): Routing<string | Uint8Array> => ({
  describe: "raw",
  build: (config: StarRocksConfig.StarRocksConfig) =>
    Effect.sync(() => {
      const lane = make(settingsOf(config, options), { ordered: options.ordered ?? false })
      const lanes = [lane]
      return { lane: () => lane, create: () => Effect.succeed(lane), lanes: () => lanes }
    })
})
