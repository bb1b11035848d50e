/**
 * The CSV loader's byte path (fields converted from their bytes straight into the load's RowBatch) and the CSV
 * reader's one-step field paths give exactly what the text path and the byte-by-byte states give: the same rows,
 * counters and error-log lines, on fields chosen to sit on every edge of the byte converters.
 */
import { assert, describe, it } from "@effect/vitest"
import type { CsvOptions } from "../../src/internal/data/csvReader.js"
import { readCsvV2 } from "../../src/internal/data/csvReader.js"
import { RowBatch } from "../../src/internal/data/rowBatch.js"
import type { LoadOutcome } from "../../src/internal/data/types.js"
import type { ColumnDef } from "../../src/internal/model.js"
import { load, table } from "./helpers.js"

/** A deterministic generator (mulberry32). */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const columns: ReadonlyArray<ColumnDef> = [
  { name: "big", type: "BIGINT", nullable: true },
  { name: "i", type: "INT", nullable: false },
  { name: "ti", type: "TINYINT", nullable: true },
  { name: "li", type: "LARGEINT", nullable: true },
  { name: "d", type: "DOUBLE", nullable: true },
  { name: "f", type: "FLOAT", nullable: true },
  { name: "dec", type: "DECIMAL(5,2)", nullable: true },
  { name: "dec0", type: "DECIMAL(4,0)", nullable: true },
  { name: "day", type: "DATE", nullable: true },
  { name: "ts", type: "DATETIME", nullable: true },
  { name: "b", type: "BOOLEAN", nullable: true },
  { name: "v", type: "VARCHAR(4)", nullable: false, default: "dflt" },
  { name: "c", type: "CHAR(3)", nullable: true },
  { name: "j", type: "JSON", nullable: true }
]

/** Spellings on the edges of the byte converters (and of the text converters behind them). */
const spellings: ReadonlyArray<string> = [
  "",
  "\\N",
  "0",
  "-0",
  "1",
  "-1",
  "007",
  " 1",
  "1 ",
  "+5",
  "127",
  "128",
  "-128",
  "-129",
  "2147483647",
  "2147483648",
  "-2147483649",
  "999999999999999",
  "9999999999999999",
  "-999999999999999",
  "9007199254740993",
  "9223372036854775807",
  "9223372036854775808",
  "1.5",
  "-1.5",
  "0.1",
  "123.45",
  "-123.45",
  "999.99",
  "1000.00",
  "0.00",
  "-0.00",
  "00.10",
  "1.",
  ".5",
  "1e3",
  "1.5e-3",
  "9007199254740992.5",
  "1234567890.123456",
  "0.30000000000000004",
  "2024-02-29",
  "2023-02-29",
  "2024-1-5",
  "2024-13-01",
  "20240105",
  "2024-01-01 23:59:59",
  "2024-01-01 24:00:00",
  "2024-01-01 12:60:00",
  "2024-01-01T12:00:00",
  "2024-01-01 12:00:00.5",
  "true",
  "FALSE",
  "abcd",
  "abcde",
  "héé",
  "日本",
  "ab\u0000",
  "{\"a\":1}",
  "[1,2]",
  "inf",
  "nan"
]

/** A valid value per column, in the column order. */
const valid: ReadonlyArray<string> = [
  "12",
  "5",
  "-3",
  "9",
  "1.5",
  "2.5",
  "1.25",
  "12",
  "2024-01-02",
  "2024-01-02 03:04:05",
  "1",
  "ab",
  "é",
  "{\"a\":1}"
]

const csvField = (s: string, enclose: boolean): string =>
  enclose ? `"${s.replaceAll("\\", "\\\\").replaceAll("\"", "\"\"")}"` : s

const body = (rand: () => number, rows: number, enclose: boolean): string => {
  const lines: Array<string> = []
  for (let r = 0; r < rows; r++) {
    const fields = columns.map((_, k) => {
      // mostly a valid value, so that some rows load under strict_mode
      const s = rand() < 0.9 ? valid[k]! : spellings[Math.floor(rand() * spellings.length)]!
      // `\N` stays unenclosed (NULL); other fields are enclosed half of the time
      return s === "\\N" ? (enclose ? "\\\\N" : s) : csvField(s, enclose && rand() < 0.5)
    })
    if (rand() < 0.03) fields.pop() // a record with a column missing
    lines.push(fields.join(","))
  }
  return lines.join("\n") + "\n"
}

const summary = (out: LoadOutcome) =>
  out._tag === "Ok"
    ? { tag: out._tag, counters: out.counters, rows: out.ops.map((o) => o.values), errorLog: out.errorLog }
    : { tag: out._tag, message: out.message, counters: out.counters, errorLog: out.errorLog }

describe("CSV byte path", () => {
  const t = table(columns)
  for (const strict of [false, true]) {
    for (const enclose of [false, true]) {
      it(`gives what the text path gives (strict_mode ${strict}, enclose ${enclose})`, () => {
        const rand = prng(strict ? 7 : 3)
        const csv = body(rand, 600, enclose)
        const headers = {
          format: "csv",
          column_separator: ",",
          max_filter_ratio: "1",
          strict_mode: String(strict),
          ...(enclose ? { enclose: "\"", escape: "\\" } : {})
        }
        const fast = load(t, headers, csv)
        // a `where` that selects every row sends the rows through the text path
        const text = load(t, { ...headers, where: "1 = 1" }, csv)
        assert.strictEqual(fast._tag, "Ok")
        if (fast._tag === "Ok") assert.instanceOf(fast.changes, RowBatch)
        const a = summary(fast)
        const b = summary(text)
        assert.deepStrictEqual(a, b)
        // the bodies hit both outcomes
        assert.isAbove(fast.counters.loaded, 0)
        assert.isAbove(fast.counters.filtered, 0)
      })
    }
  }

  it("a row filtered after some of its cells were written leaves nothing in the batch", () => {
    const t2 = table([
      { name: "k", type: "BIGINT" },
      { name: "s", type: "VARCHAR(8)", nullable: true },
      { name: "n", type: "INT", nullable: false }
    ])
    const out = load(t2, { format: "csv", column_separator: ",", max_filter_ratio: "1" }, "1,abc,5\n2,xyz,\\N\n3,é,6\n")
    assert.strictEqual(out._tag, "Ok")
    if (out._tag !== "Ok") return
    assert.deepStrictEqual(out.ops.map((o) => o.values), [{ k: 1n, s: "abc", n: 5 }, { k: 3n, s: "é", n: 6 }])
    assert.deepStrictEqual(out.errorLog, ["Error: NULL value in non-nullable column 'n'. Row: 2,xyz,\\N"])
  })
})

describe("CSV reader one-step field paths", () => {
  const alphabet = ["a", "b", "1", ",", "\n", "\"", "\"", "\\", " ", "é", "|"]
  const read = (buf: Buffer, o: Omit<CsvOptions, "stepwise">, stepwise: boolean) => {
    const out: Array<{ fields: Array<string>; raw: string }> = []
    readCsvV2(buf, { ...o, stepwise, reuseRecord: true }, (r) => out.push({ fields: [...r.fields], raw: r.raw }))
    return out
  }
  it("read every record as the byte-by-byte states read it", () => {
    const rand = prng(11)
    for (let round = 0; round < 400; round++) {
      let s = ""
      const len = Math.floor(rand() * 60)
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)]
      const buf = Buffer.from(s)
      const o: Omit<CsvOptions, "stepwise"> = {
        columnSeparator: Buffer.from(rand() < 0.8 ? "," : "|"),
        rowDelimiter: Buffer.from("\n"),
        enclose: rand() < 0.9 ? 0x22 : 0,
        escape: rand() < 0.7 ? 0x5c : 0,
        v2: true,
        trimSpace: rand() < 0.3,
        skipHeader: 0
      }
      assert.deepStrictEqual(read(buf, o, false), read(buf, o, true), JSON.stringify({ s, o }))
    }
  })
})

describe("JSON integer tokens", () => {
  it("of up to 15 digits convert as the int64 path converts them (range checks, -0 as 0)", () => {
    const t = table([
      { name: "k", type: "INT" },
      { name: "i", type: "INT", nullable: true },
      { name: "ti", type: "TINYINT", nullable: true },
      { name: "b", type: "BIGINT", nullable: true },
      { name: "d", type: "DOUBLE", nullable: true },
      { name: "f", type: "FLOAT", nullable: true }
    ])
    const out = load(
      t,
      { format: "json", strip_outer_array: "true" },
      `[{"k":1,"i":-0,"ti":127,"b":-0,"d":-0,"f":16777217},` +
        `{"k":2,"i":2147483648,"ti":128,"b":999999999999999,"d":123,"f":-0},` +
        `{"k":3,"i":-2147483648,"ti":-129,"b":-999999999999999,"d":999999999999999,"f":1}]`
    )
    assert.strictEqual(out._tag, "Ok")
    if (out._tag !== "Ok") return
    const got = out.ops.map((o) => o.values)
    assert.deepStrictEqual(got, [
      { k: 1, i: 0, ti: 127, b: 0n, d: 0, f: 16777216 },
      { k: 2, i: null, ti: null, b: 999999999999999n, d: 123, f: 0 },
      { k: 3, i: -2147483648, ti: null, b: -999999999999999n, d: 999999999999999, f: 1 }
    ])
    assert.isTrue(Object.is(got[0]!["i"], 0) && Object.is(got[0]!["d"], 0) && Object.is(got[1]!["f"], 0))
  })
})
