import { assert, describe, it } from "@effect/vitest"
import { BigDecimal, DateTime, Schema } from "effect"
import { ReferenceRow, referenceRow } from "../bench/encode.js"
import * as ColumnType from "../src/ColumnType.js"
import { RowEncodeError } from "../src/RowEncodeError.js"
import * as RowEncoder from "../src/RowEncoder.js"

const body = (r: { readonly body: { readonly chunks: ReadonlyArray<Uint8Array>; readonly byteLength: number } }) => {
  const buf = Buffer.concat(r.body.chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)))
  assert.strictEqual(buf.length, r.body.byteLength)
  return buf
}

const encode = <A, I>(
  schema: Schema.Schema<A, I>,
  rows: ReadonlyArray<A>,
  format: "csv" | "json" = "csv",
  options?: RowEncoder.RowEncoderOptions
) => {
  const b = RowEncoder.make(schema, options).builder(format)
  rows.forEach((r, i) => assert.isTrue(b.add(r, i), `row ${i} added`))
  const bytes = b.bytes
  const out = b.finish()
  const buf = body(out)
  assert.strictEqual(bytes, buf.length, "bytes matches the body")
  return { text: buf.toString("utf8"), buf, headers: out.headers }
}

const cell = <A, I>(
  schema: Schema.Schema<A, I>,
  value: A,
  format: "csv" | "json" = "csv",
  options?: RowEncoder.RowEncoderOptions
) => {
  const S = Schema.Struct({ v: schema as Schema.Schema<A, I> })
  const { text } = encode(S as any, [{ v: value }], format, options)
  return format === "csv" ? text.slice(0, -1) : text.slice("[{\"v\":".length, -2)
}

const encodeError = <A, I>(
  schema: Schema.Schema<A, I>,
  value: unknown,
  format: "csv" | "json" = "csv",
  options?: RowEncoder.RowEncoderOptions
): RowEncodeError => {
  const S = Schema.Struct({ v: schema })
  const b = RowEncoder.make(S, options).builder(format)
  try {
    b.add({ v: value } as any, 7)
  } catch (e) {
    assert.instanceOf(e, RowEncodeError)
    assert.strictEqual(b.rows, 0)
    return e as RowEncodeError
  }
  return assert.fail(`expected a RowEncodeError for ${String(value)}`)
}

/**
 * A transcription of the enclose/escape reader for the recipe's subset (starrocks-csv.md §2–4): `"` opens an
 * enclosed field, `\` escapes the next byte, the unescaped field `\N` is NULL.
 */
const readCsv = (text: string, sep: string, delim: string): Array<Array<string | null>> => {
  const rows: Array<Array<string | null>> = []
  let row: Array<string | null> = []
  let field = ""
  let i = 0
  let enclosed = false
  let start = true
  const end = () => {
    row.push(field === "\\N" ? null : field)
    field = ""
    start = true
    enclosed = false
  }
  while (i < text.length) {
    const c = text[i]!
    if (start && c === "\"") {
      enclosed = true
      start = false
      i++
      continue
    }
    start = false
    if (c === "\\") {
      field += text[i + 1]
      i += 2
      continue
    }
    if (enclosed) {
      if (c === "\"") {
        enclosed = false
        i++
        continue
      }
      field += c
      i++
      continue
    }
    if (text.startsWith(sep, i)) {
      end()
      i += sep.length
      continue
    }
    if (c === delim) {
      end()
      rows.push(row)
      row = []
      i++
      continue
    }
    field += c
    i++
  }
  assert.strictEqual(row.length, 0, "the body ends with the row delimiter")
  return rows
}

describe("CSV recipe (starrocks-csv.md §8)", () => {
  const values: ReadonlyArray<string | null> = [
    "",
    "a,b",
    "l1\nl2",
    "crlf\r\n",
    "\"",
    "\"\"",
    "\"lead",
    "trail\"",
    "x\"y",
    "\\",
    "end\\",
    "a\\Nb",
    "\\\\N",
    "N",
    "\u0000",
    "é€",
    "\t",
    "  spaced  ",
    "||",
    "mixed, \"q\" \\ \n\t€",
    "\\\"",
    "\"\\",
    null,
    "a\\N",
    "\\N "
  ]
  const S = Schema.Struct({ v: Schema.NullOr(Schema.String) })
  const expected = [
    "\"\"",
    "\"a,b\"",
    "\"l1\nl2\"",
    "\"crlf\r\n\"",
    "\"\\\"\"",
    "\"\\\"\\\"\"",
    "\"\\\"lead\"",
    "\"trail\\\"\"",
    "\"x\\\"y\"",
    "\"\\\\\"",
    "\"end\\\\\"",
    "\"a\\\\Nb\"",
    "\"\\\\\\\\N\"",
    "\"N\"",
    "\"\u0000\"",
    "\"é€\"",
    "\"\t\"",
    "\"  spaced  \"",
    "\"||\"",
    "\"mixed, \\\"q\\\" \\\\ \n\t€\"",
    "\"\\\\\\\"\"",
    "\"\\\"\\\\\"",
    "\\\\N",
    "\"a\\\\N\"",
    "\"\\\\N \""
  ]

  it("encodes the 25 values to the exact bytes", () => {
    assert.strictEqual(values.length, 25)
    const { buf, headers } = encode(S, values.map((v) => ({ v })))
    assert.deepStrictEqual(buf, Buffer.from(expected.map((e) => e + "\n").join(""), "utf8"))
    assert.deepStrictEqual(headers, {
      format: "csv",
      column_separator: ",",
      row_delimiter: "\\x0A",
      enclose: "\"",
      escape: "\\",
      columns: "v"
    })
  })

  it("the 25 values read back through the enclose/escape reader", () => {
    for (const sep of [",", "\t", "||"]) {
      const { text } = encode(S, values.map((v) => ({ v })), "csv", { columnSeparator: sep })
      assert.deepStrictEqual(readCsv(text, sep, "\n").map((r) => r[0]), [...values])
    }
  })

  it("several columns: separators inside values do not shift fields", () => {
    const T = Schema.Struct({ a: Schema.NullOr(Schema.String), b: Schema.Number, c: Schema.NullOr(Schema.String) })
    const rows = values.map((v, i) => ({ a: v, b: i, c: values[values.length - 1 - i]! }))
    const { text } = encode(T, rows)
    assert.deepStrictEqual(
      readCsv(text, ",", "\n"),
      rows.map((r) => [r.a, String(r.b), r.c])
    )
  })

  it("the exact string \\N: add returns false and adds nothing; JSON carries it", () => {
    const enc = RowEncoder.make(S)
    const b = enc.builder("csv")
    assert.isTrue(b.add({ v: "x" }, 0))
    const before = b.bytes
    assert.isFalse(b.add({ v: "\\N" }, 1))
    assert.strictEqual(b.rows, 1)
    assert.strictEqual(b.bytes, before)
    assert.strictEqual(body(b.finish()).toString(), "\"x\"\n")
    const j = enc.builder("json")
    assert.isTrue(j.add({ v: "\\N" }, 1))
    assert.deepStrictEqual(JSON.parse(body(j.finish()).toString()), [{ v: "\\N" }])
  })

  it("the exact string \\N with csvJsonFallback false: RowEncodeError naming row and column", () => {
    const T = Schema.Struct({ id: Schema.Number, note: Schema.String })
    const b = RowEncoder.make(T, { csvJsonFallback: false }).builder("csv")
    const e = (() => {
      try {
        b.add({ id: 1, note: "\\N" }, 41)
      } catch (e) {
        return e as RowEncodeError
      }
      return assert.fail("expected an error")
    })()
    assert.instanceOf(e, RowEncodeError)
    assert.strictEqual(e.row, 41)
    assert.strictEqual(e.column, "note")
    assert.include(e.message, "row 41")
    assert.include(e.message, "note")
    assert.include(e.message, "\\N")
    assert.strictEqual(b.rows, 0)
  })

  it("servers below 3.0: no enclosure; a value that needs quoting sends the batch as JSON", () => {
    const T = Schema.Struct({ a: Schema.NullOr(Schema.String), n: Schema.Number })
    const enc = RowEncoder.make(T, { serverSupportsEnclose: false })
    const b = enc.builder("csv")
    assert.isTrue(b.add({ a: "plain text", n: 1.5 }, 0))
    assert.isTrue(b.add({ a: null, n: 2 }, 1))
    for (const bad of ["a,b", "q\"", "back\\slash", "l1\nl2", "\\N", "cr\r"]) {
      assert.isFalse(b.add({ a: bad, n: 3 }, 2), bad)
    }
    const out = b.finish()
    assert.strictEqual(body(out).toString(), "plain text,1.5\n\\N,2\n")
    assert.isUndefined(out.headers.enclose)
    assert.isUndefined(out.headers.escape)
    const strict = RowEncoder.make(T, { serverSupportsEnclose: false, csvJsonFallback: false }).builder("csv")
    assert.throws(() => strict.add({ a: "a,b", n: 1 }, 5), /row 5, column a/)
  })
})

describe("types", () => {
  it("integers: range per type, integral, bigint, no exponent", () => {
    assert.strictEqual(cell(ColumnType.TinyInt, 127), "\"127\"")
    assert.strictEqual(cell(ColumnType.TinyInt, -128), "\"-128\"")
    assert.include(encodeError(ColumnType.TinyInt, 128).reason, "out of TINYINT range")
    assert.include(encodeError(ColumnType.SmallInt, -32769).reason, "SMALLINT")
    assert.strictEqual(cell(ColumnType.Int, 2147483647), "\"2147483647\"")
    assert.include(encodeError(ColumnType.Int, 2147483648).reason, "INT range")
    assert.include(encodeError(ColumnType.Int, 1.5).reason, "not an integer")
    assert.include(encodeError(ColumnType.BigInt, NaN).reason, "NaN")
    assert.include(encodeError(ColumnType.BigInt, 2 ** 63).reason, "BIGINT range")
    assert.strictEqual(cell(ColumnType.BigInt, -(2 ** 63)), "\"-9223372036854775808\"")
    assert.strictEqual(cell(ColumnType.BigInt, 2 ** 60), "\"1152921504606846976\"")
    assert.strictEqual(cell(ColumnType.BigIntBig, 2n ** 63n - 1n), "\"9223372036854775807\"")
    assert.include(encodeError(ColumnType.BigIntBig, 2n ** 63n).reason, "BIGINT range")
    assert.strictEqual(cell(ColumnType.LargeInt, 2n ** 127n - 1n), "\"170141183460469231731687303715884105727\"")
    assert.include(encodeError(ColumnType.LargeInt, 2n ** 127n).reason, "LARGEINT range")
    assert.strictEqual(cell(ColumnType.annotate(Schema.Number, "LARGEINT"), 1e25), "\"10000000000000000905969664\"")
    assert.strictEqual(cell(Schema.BigIntFromSelf, 5n, "json"), "\"5\"")
    assert.strictEqual(cell(ColumnType.BigIntBig, 5n, "json"), "5")
    assert.strictEqual(cell(ColumnType.Int, -0), "\"0\"")
    assert.strictEqual(cell(Schema.Int, 12), "\"12\"")
  })

  it("doubles round-trip; NaN and Infinity are errors; FLOAT range", () => {
    for (const x of [0.1, 1 / 3, -2.5e-300, 1.7976931348623157e308, 123456789012345680000, 5e-324]) {
      const t = cell(Schema.Number, x)
      assert.strictEqual(Number(t.slice(1, -1)), x)
      assert.strictEqual(Number(cell(Schema.Number, x, "json")), x)
    }
    assert.include(encodeError(Schema.Number, NaN).reason, "NaN")
    assert.include(encodeError(Schema.Number, Infinity, "json").reason, "Infinity")
    assert.include(encodeError(ColumnType.Float, 1e39).reason, "FLOAT range")
  })

  it("DECIMAL(p,s): exact, padded to s, never rounded", () => {
    const D = ColumnType.Decimal(10, 2)
    assert.strictEqual(cell(D, BigDecimal.make(12345n, 2)), "\"123.45\"")
    assert.strictEqual(cell(D, BigDecimal.make(5n, 2)), "\"0.05\"")
    assert.strictEqual(cell(D, BigDecimal.make(-5n, 2)), "\"-0.05\"")
    assert.strictEqual(cell(D, BigDecimal.make(-12345n, 2)), "\"-123.45\"")
    assert.strictEqual(cell(D, BigDecimal.make(7n, 0)), "\"7.00\"")
    assert.strictEqual(cell(D, BigDecimal.make(1230n, 3)), "\"1.23\"")
    assert.strictEqual(cell(D, BigDecimal.make(1n, -3)), "\"1000.00\"")
    assert.strictEqual(cell(D, BigDecimal.make(99999999_99n, 2)), "\"99999999.99\"")
    assert.include(encodeError(D, BigDecimal.make(100000000_00n, 2)).reason, "integer digits")
    assert.include(encodeError(D, BigDecimal.make(1235n, 3)).reason, "never rounded")
    assert.strictEqual(cell(D, BigDecimal.make(12345n, 2), "json"), "\"123.45\"")
    const S = ColumnType.DecimalString(38, 10)
    assert.strictEqual(cell(S, "-0012.5"), "\"-12.5000000000\"")
    assert.strictEqual(
      cell(S, "1234567890123456789012345678.0123456789"),
      "\"1234567890123456789012345678.0123456789\""
    )
    assert.include(encodeError(S, "12345678901234567890123456789").reason, "more than 28 integer digits")
    assert.include(encodeError(S, "1.2.3").reason, "not a decimal")
    assert.include(encodeError(S, "1e40").reason, "integer digits")
    const N = ColumnType.annotate(Schema.Number, "DECIMAL(5,2)")
    assert.strictEqual(cell(N, 1.5), "\"1.50\"")
    assert.include(encodeError(N, 0.1 + 0.2).reason, "fraction digits")
    assert.include(encodeError(N, NaN).reason, "NaN")
    assert.strictEqual(cell(Schema.BigDecimal, BigDecimal.unsafeFromString("3.14")), "\"3.140000000\"")
  })

  it("BOOLEAN: 1/0 in CSV, true/false in JSON", () => {
    assert.strictEqual(cell(Schema.Boolean, true), "\"1\"")
    assert.strictEqual(cell(Schema.Boolean, false), "\"0\"")
    assert.strictEqual(cell(Schema.Boolean, true, "json"), "true")
    assert.include(encodeError(Schema.Boolean, "yes").reason, "expected a boolean")
  })

  it("DATE and DATETIME in UTC: microseconds kept, fraction dropped when zero", () => {
    const t = new Date(Date.UTC(2024, 1, 29, 23, 59, 58, 7))
    assert.strictEqual(cell(Schema.DateFromSelf, t), "\"2024-02-29 23:59:58.007000\"")
    assert.strictEqual(cell(Schema.DateFromSelf, new Date(Date.UTC(1999, 11, 31, 1, 2, 3))), "\"1999-12-31 01:02:03\"")
    assert.strictEqual(cell(ColumnType.Date, t), "\"2024-02-29\"")
    assert.strictEqual(cell(ColumnType.Date, new Date(Date.UTC(1969, 11, 31, 12))), "\"1969-12-31\"")
    assert.strictEqual(cell(Schema.DateFromSelf, new Date(-1)), "\"1969-12-31 23:59:59.999000\"")
    assert.strictEqual(cell(ColumnType.Date, t, "json"), "\"2024-02-29\"")
    assert.strictEqual(cell(Schema.DateTimeUtcFromSelf, DateTime.unsafeMake(t)), "\"2024-02-29 23:59:58.007000\"")
    assert.include(encodeError(Schema.DateFromSelf, new Date(NaN)).reason, "invalid Date")
    assert.include(encodeError(ColumnType.Date, new Date(Date.UTC(10000, 0, 1))).reason, "out of range")
    assert.strictEqual(cell(ColumnType.annotate(Schema.String, "DATE"), "2024-01-05"), "\"2024-01-05\"")
    assert.include(encodeError(ColumnType.annotate(Schema.String, "DATE"), "2024/01/05").reason, "not a date")
    const DT = ColumnType.annotate(Schema.String, "DATETIME")
    assert.strictEqual(cell(DT, "2024-01-05T10:11:12.123456"), "\"2024-01-05 10:11:12.123456\"")
    assert.strictEqual(cell(DT, "2024-01-05"), "\"2024-01-05 00:00:00\"")
  })

  it("time zones: fixed offsets and IANA zones across DST", () => {
    const t = new Date(Date.UTC(2024, 0, 1, 20, 30, 0))
    assert.strictEqual(cell(Schema.DateFromSelf, t, "csv", { timeZone: "Asia/Shanghai" }), "\"2024-01-02 04:30:00\"")
    assert.strictEqual(cell(ColumnType.Date, t, "csv", { timeZone: "+08:00" }), "\"2024-01-02\"")
    assert.strictEqual(cell(Schema.DateFromSelf, t, "csv", { timeZone: "-05:30" }), "\"2024-01-01 15:00:00\"")
    assert.strictEqual(cell(Schema.DateFromSelf, t, "csv", { timeZone: "UTC+5" }), "\"2024-01-02 01:30:00\"")
    const ny = { timeZone: "America/New_York" }
    assert.strictEqual(
      cell(Schema.DateFromSelf, new Date("2024-03-10T06:59:59.500Z"), "csv", ny),
      "\"2024-03-10 01:59:59.500000\""
    )
    assert.strictEqual(
      cell(Schema.DateFromSelf, new Date("2024-03-10T07:00:00Z"), "csv", ny),
      "\"2024-03-10 03:00:00\""
    )
    assert.strictEqual(
      cell(Schema.DateFromSelf, new Date("2024-11-03T05:59:59Z"), "csv", ny),
      "\"2024-11-03 01:59:59\""
    )
    assert.strictEqual(
      cell(Schema.DateFromSelf, new Date("2024-11-03T06:00:00Z"), "csv", ny),
      "\"2024-11-03 01:00:00\""
    )
    // a transition that is not on a 15-minute boundary (Amsterdam 1937: +00:19:32 → +00:20)
    const ams = { timeZone: "Europe/Amsterdam" }
    const expected = (d: Date) => {
      const p = Object.fromEntries(
        new Intl.DateTimeFormat("en-US", {
          timeZone: "Europe/Amsterdam",
          hourCycle: "h23",
          year: "numeric",
          month: "2-digit",
          day: "2-digit",
          hour: "2-digit",
          minute: "2-digit",
          second: "2-digit"
        }).formatToParts(d).map((x) => [x.type, x.value])
      )
      return `"${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}"`
    }
    for (let s = -600; s <= 600; s += 37) {
      const d = new Date(Date.UTC(1937, 6, 1, 0, 0, 0) + s * 1000 - 19 * 60_000)
      assert.strictEqual(cell(Schema.DateFromSelf, d, "csv", ams), expected(d), d.toISOString())
    }
    assert.throws(
      () => RowEncoder.make(Schema.Struct({ a: Schema.DateFromSelf }), { timeZone: "Mars/Base" }),
      /time zone/
    )
  })

  it("VARCHAR(n)/CHAR(n)/STRING: UTF-8 byte length checked", () => {
    assert.strictEqual(cell(ColumnType.Varchar(4), "abcd"), "\"abcd\"")
    assert.include(encodeError(ColumnType.Varchar(4), "abcde").reason, "5 bytes exceed")
    assert.strictEqual(cell(ColumnType.Varchar(5), "é€"), "\"é€\"")
    assert.include(encodeError(ColumnType.Varchar(4), "é€").reason, "5 bytes exceed")
    assert.include(encodeError(ColumnType.Varchar(4), "€€").reason, "6 bytes exceed")
    assert.include(encodeError(ColumnType.Varchar(4), "€€", "json").reason, "6 bytes exceed")
    assert.include(encodeError(ColumnType.Char(2), "abc").reason, "3 bytes exceed")
    assert.include(encodeError(Schema.String, "x".repeat(65534)).reason, "65533-byte limit")
    assert.strictEqual(cell(ColumnType.annotate(Schema.Number, "VARCHAR(10)"), 1.5), "\"1.5\"")
    assert.strictEqual(cell(ColumnType.annotate(Schema.Number, "VARCHAR(10)"), 1.5, "json"), "\"1.5\"")
  })

  it("ARRAY, MAP, STRUCT and JSON columns: JSON text in CSV, JSON values in JSON", () => {
    const A = Schema.Array(Schema.NullOr(ColumnType.Int))
    assert.strictEqual(cell(A, [1, null, 3]), "\"[1,null,3]\"")
    assert.strictEqual(cell(A, [1, null, 3], "json"), "[1,null,3]")
    assert.include(encodeError(A, [1, 2.5]).reason, "not an integer")
    const AD = Schema.Array(ColumnType.Date)
    assert.strictEqual(cell(AD, [new Date(Date.UTC(2024, 0, 2))]), "\"[\\\"2024-01-02\\\"]\"")
    const AS = Schema.Array(Schema.String)
    assert.strictEqual(cell(AS, ["a\"b", "c,d"], "json"), "[\"a\\\"b\",\"c,d\"]")
    const J = ColumnType.Json
    const value = { a: 1, b: [true, null, "x"], c: { d: 10n }, e: undefined }
    assert.strictEqual(cell(J, value, "json"), "{\"a\":1,\"b\":[true,null,\"x\"],\"c\":{\"d\":10}}")
    assert.strictEqual(cell(J, value), "\"{\\\"a\\\":1,\\\"b\\\":[true,null,\\\"x\\\"],\\\"c\\\":{\\\"d\\\":10}}\"")
    assert.strictEqual(cell(J, "{\"raw\": true}", "json"), "{\"raw\": true}")
    assert.include(encodeError(J, "not json").reason, "JSON text")
    assert.include(encodeError(J, { x: NaN }).reason, "NaN")
    const R = Schema.Record({ key: Schema.String, value: Schema.Number })
    assert.strictEqual(cell(R, { k: 1.5 }, "json"), "{\"k\":1.5}")
    const M = ColumnType.annotate(
      Schema.ReadonlyMapFromSelf({ key: Schema.String, value: Schema.Number }),
      "MAP<VARCHAR(10),INT>"
    )
    assert.strictEqual(cell(M, new Map([["a", 1], ["b", 2]]), "json"), "{\"a\":1,\"b\":2}")
    assert.include(encodeError(M, new Map([["a", 1.5]])).reason, "not an integer")
    const ST = ColumnType.annotate(Schema.Struct({ x: Schema.Number, d: Schema.DateFromSelf }), "STRUCT<x INT, d DATE>")
    assert.strictEqual(cell(ST, { x: 1, d: new Date(Date.UTC(2024, 4, 6)) }, "json"), "{\"x\":1,\"d\":\"2024-05-06\"}")
  })

  it("nullable fields write NULL; null in a non-nullable field is an error", () => {
    const S = Schema.Struct({
      a: Schema.NullOr(Schema.Number),
      b: Schema.optional(Schema.String),
      c: Schema.UndefinedOr(Schema.Boolean)
    })
    const { text } = encode(S, [{ a: null, b: undefined, c: undefined }, { a: 1, c: true }])
    assert.strictEqual(text, "\\\\N,\\\\N,\\\\N\n\"1\",\\\\N,\"1\"\n")
    const j = encode(S, [{ a: null, c: undefined }], "json")
    assert.deepStrictEqual(JSON.parse(j.text), [{ a: null, b: null, c: null }])
    const e = encodeError(Schema.Number, null)
    assert.include(e.reason, "not nullable")
  })
})

describe("reference row (the issue's benchmark)", () => {
  it("CSV bytes", () => {
    const { text } = encode(ReferenceRow, [referenceRow(0), referenceRow(123457)])
    assert.strictEqual(
      text,
      "\"0\",\"0\",\"user_0\",\"0\",\"2024-01-01\",\"2023-11-14 22:13:20\",\"1\",\"0.00\",\\\\N,\"Beijing\"\n" +
        "\"123457\",\"655983\",\"user_123457\",\"61728.5\",\"2024-04-25\",\"2023-11-16 08:30:57\",\"0\",\"234.57\"," +
        "\"note 123457\",\"Shanghai\"\n"
    )
  })

  it("CSV and JSON carry the same values (a JSON fallback batch stores what CSV would)", () => {
    const rows = Array.from({ length: 500 }, (_, i) => referenceRow(i * 7919))
    const csv = readCsv(encode(ReferenceRow, rows).text, ",", "\n")
    const json = JSON.parse(encode(ReferenceRow, rows, "json").text) as Array<Record<string, unknown>>
    const names = Object.keys(ReferenceRow.fields)
    json.forEach((obj, r) =>
      names.forEach((name, c) => {
        const v = obj[name]
        const asText = v === null ? null : typeof v === "boolean" ? (v ? "1" : "0") : String(v)
        assert.strictEqual(csv[r]![c], asText, `row ${r} ${name}`)
      })
    )
  })
})

describe("batches", () => {
  const Ref = Schema.Struct({
    id: ColumnType.BigInt,
    name: Schema.String,
    score: Schema.NullOr(Schema.Number),
    ts: Schema.DateFromSelf,
    "odd name": Schema.Boolean
  })
  const row = (i: number) => ({
    id: i,
    name: i % 7 === 0 ? `ünï ${i} "q" \\ €𝄞` : `name ${i}`,
    score: i % 5 === 0 ? null : i / 4,
    ts: new Date(1_700_000_000_000 + i * 1001),
    "odd name": i % 2 === 0
  })

  it("many rows over many buffers: exact UTF-8 bytes, identical to a plain encoding", () => {
    const n = 30_000
    const enc = RowEncoder.make(Ref)
    const b = enc.builder("csv")
    let expected = ""
    for (let i = 0; i < n; i++) {
      const r = row(i)
      assert.isTrue(b.add(r, i))
      const esc = (s: string) => "\"" + s.replace(/["\\]/g, "\\$&") + "\""
      const ts = r.ts.toISOString().replace("T", " ").replace("Z", "")
      expected += [
        esc(String(r.id)),
        esc(r.name),
        r.score === null ? "\\\\N" : esc(String(r.score)),
        esc(ts.endsWith(".000") ? ts.slice(0, -4) : ts + "000"),
        esc(r["odd name"] ? "1" : "0")
      ].join(",") + "\n"
      if (i % 997 === 0) assert.strictEqual(b.bytes, Buffer.byteLength(expected))
    }
    assert.strictEqual(b.rows, n)
    const out = b.finish()
    assert.isAbove(out.body.chunks.length, 1)
    assert.strictEqual(body(out).toString("utf8"), expected)
    assert.strictEqual(out.headers.columns, "id,name,score,ts,`odd name`")
  })

  it("JSON: an array of objects with exact bytes", () => {
    const n = 5_000
    const b = RowEncoder.make(Ref).builder("json")
    assert.strictEqual(b.bytes, 2)
    for (let i = 0; i < n; i++) b.add(row(i), i)
    const bytes = b.bytes
    const out = b.finish()
    const buf = body(out)
    assert.strictEqual(bytes, buf.length)
    const parsed = JSON.parse(buf.toString("utf8"))
    assert.strictEqual(parsed.length, n)
    assert.deepStrictEqual(parsed[7], {
      id: 7,
      name: "ünï 7 \"q\" \\ €𝄞",
      score: 1.75,
      ts: "2023-11-14 22:13:27.007000",
      "odd name": false
    })
    assert.deepStrictEqual(out.headers, { format: "json", strip_outer_array: "true", ignore_json_size: "true" })
    const empty = RowEncoder.make(Ref).builder("json").finish()
    assert.strictEqual(body(empty).toString(), "[]")
  })

  it("columns option: order and subset; unknown columns are rejected", () => {
    const enc = RowEncoder.make(Ref, { columns: ["name", "id"] })
    assert.deepStrictEqual(enc.columns, ["name", "id"])
    const b = enc.builder("csv")
    b.add(row(1), 0)
    const out = b.finish()
    assert.strictEqual(body(out).toString(), "\"name 1\",\"1\"\n")
    assert.strictEqual(out.headers.columns, "name,id")
    assert.throws(() => RowEncoder.make(Ref, { columns: ["nope"] }), /nope/)
  })

  it("columnTypes: the table's types decide the validation", () => {
    const S = Schema.Struct({ n: Schema.Number, s: Schema.String })
    const enc = RowEncoder.make(S, { columnTypes: { n: ColumnType.smallInt, s: ColumnType.varchar(3) } })
    const b = enc.builder("csv")
    assert.isTrue(b.add({ n: 1, s: "abc" }, 0))
    assert.throws(() => b.add({ n: 1.5, s: "abc" }, 1), /row 1, column n: 1.5 is not an integer/)
    assert.throws(() => b.add({ n: 40000, s: "abc" }, 2), /SMALLINT/)
    assert.throws(() => b.add({ n: 1, s: "abcd" }, 3), /row 3, column s/)
    assert.strictEqual(b.rows, 1)
  })

  it("errors are short: the offending value only, never the row", () => {
    const S = Schema.Struct({ secret: Schema.String, n: ColumnType.Int })
    const b = RowEncoder.make(S).builder("csv")
    try {
      b.add({ secret: "top-secret-value", n: 1.25 }, 3)
      assert.fail("expected an error")
    } catch (e) {
      assert.instanceOf(e, RowEncodeError)
      assert.notInclude((e as Error).message, "top-secret")
      assert.strictEqual((e as RowEncodeError).column, "n")
      assert.strictEqual((e as RowEncodeError).row, 3)
      assert.strictEqual((e as RowEncodeError)._tag, "RowEncodeError")
    }
  })

  it("separators: validated, and sent in hex when not printable", () => {
    const S = Schema.Struct({ a: Schema.String, b: Schema.String })
    const b = RowEncoder.make(S, { columnSeparator: "\t", rowDelimiter: "\u0002" }).builder("csv")
    b.add({ a: "x\ty", b: "z" }, 0)
    const out = b.finish()
    assert.strictEqual(body(out).toString(), "\"x\ty\"\t\"z\"\u0002")
    assert.strictEqual(out.headers.column_separator, "\\x09")
    assert.strictEqual(out.headers.row_delimiter, "\\x02")
    assert.throws(() => RowEncoder.make(S, { rowDelimiter: "\r\n" }), /one ASCII byte/)
    assert.throws(() => RowEncoder.make(S, { columnSeparator: "\"" }), /columnSeparator/)
  })

  it("release: pooled buffers are reused by later batches", () => {
    const S = Schema.Struct({ s: Schema.String })
    const enc = RowEncoder.make(S, { bufferPoolBytes: 8 * 1024 * 1024 })
    const fill = () => {
      const b = enc.builder("csv")
      for (let i = 0; i < 60_000; i++) b.add({ s: `row ${i} ${"x".repeat(40)}` }, i)
      return b.finish()
    }
    const first = fill()
    const firstText = body(first).toString()
    const buffers = new Set(first.body.chunks.map((c) => c.buffer))
    enc.release(first.body)
    const second = fill()
    assert.strictEqual(body(second).toString(), firstText)
    assert.isTrue(second.body.chunks.some((c) => buffers.has(c.buffer)))
  })

  it("bufferPool: encoders sharing a pool reuse each other's buffers; bufferPoolBytes bounds what is kept", () => {
    const S = Schema.Struct({ s: Schema.String })
    const T = Schema.Struct({ s: Schema.String, n: Schema.Number })
    const pool = RowEncoder.makeBufferPool(8 * 1024 * 1024)
    const a = RowEncoder.make(S, { bufferPool: pool })
    const b = RowEncoder.make(T, { bufferPool: pool })
    const fillA = () => {
      const builder = a.builder("csv")
      for (let i = 0; i < 60_000; i++) builder.add({ s: `row ${i} ${"x".repeat(40)}` }, i)
      return builder.finish()
    }
    const first = fillA()
    const buffers = new Set(first.body.chunks.map((c) => c.buffer))
    a.release(first.body)
    const builder = b.builder("json")
    for (let i = 0; i < 40_000; i++) builder.add({ s: `row ${i} ${"y".repeat(40)}`, n: i }, i)
    const second = builder.finish()
    assert.isTrue(second.body.chunks.some((c) => buffers.has(c.buffer)), "b's batch took a buffer a's released")
    const rows = JSON.parse(body(second).toString()) as Array<{ s: string; n: number }>
    assert.strictEqual(rows.length, 40_000)
    assert.deepStrictEqual(rows[39_999], { s: `row 39999 ${"y".repeat(40)}`, n: 39_999 })
    // a pool of no bytes keeps nothing
    const none = RowEncoder.makeBufferPool(0)
    const c = RowEncoder.make(S, { bufferPool: none })
    const third = c.builder("csv")
    for (let i = 0; i < 60_000; i++) third.add({ s: `row ${i} ${"x".repeat(40)}` }, i)
    const done = third.finish()
    const kept = new Set(done.body.chunks.map((x) => x.buffer))
    c.release(done.body)
    const fourth = c.builder("csv")
    for (let i = 0; i < 60_000; i++) fourth.add({ s: `row ${i} ${"x".repeat(40)}` }, i)
    assert.isFalse(fourth.finish().body.chunks.some((x) => kept.has(x.buffer)))
  })

  it("bufferPool: the smaller buffers a batch starts with are reused too, within the pool's bytes", () => {
    // a batch of ~265 KB grows through 16, 32, 64, 128 and 256 KiB buffers, never the full 1 MiB: a sink of
    // many tables seals such batches all the time, and fresh buffers are external memory V8 answers with full GCs
    const S = Schema.Struct({ s: Schema.String })
    const fill = (enc: RowEncoder.RowEncoder<{ readonly s: string }>) => {
      const b = enc.builder("csv")
      for (let i = 0; i < 5_000; i++) b.add({ s: `row ${i} ${"x".repeat(40)}` }, i)
      return b.finish()
    }
    const enc = RowEncoder.make(S, { bufferPool: RowEncoder.makeBufferPool(8 * 1024 * 1024) })
    const first = fill(enc)
    const sizes = first.body.chunks.map((c) => c.buffer.byteLength)
    assert.deepStrictEqual(sizes, [16384, 32768, 65536, 131072, 262144])
    const buffers = first.body.chunks.map((c) => c.buffer)
    const text = body(first).toString()
    enc.release(first.body)
    const second = fill(enc)
    assert.strictEqual(body(second).toString(), text)
    // the second batch is written into the first one's buffers, size for size
    assert.deepStrictEqual(second.body.chunks.map((c) => c.buffer), buffers)
    // a pool of 16 KiB keeps the 16 KiB buffer and none of the larger ones
    const small = RowEncoder.make(S, { bufferPool: RowEncoder.makeBufferPool(16384) })
    const a = fill(small)
    const kept = a.body.chunks.map((c) => c.buffer)
    small.release(a.body)
    const b = fill(small).body.chunks.map((c) => c.buffer)
    assert.strictEqual(b[0], kept[0])
    assert.isFalse(b.slice(1).some((x) => kept.includes(x)))
  })

  it("add after finish is refused", () => {
    const b = RowEncoder.make(Schema.Struct({ a: Schema.Number })).builder("csv")
    b.finish()
    assert.throws(() => b.add({ a: 1 }, 0), /after finish/)
  })
})

describe("row writers (bytes straight into the buffer) against the string way", () => {
  // every row goes through both a `make` builder (row writers) and a `makeStringWay` one (the row as a string,
  // then written): the same result of `add` (true, false, or the same RowEncodeError), the same bytes
  const outcome = (b: RowEncoder.BatchBuilder<any>, row: unknown, i: number, op?: number) => {
    try {
      return b.add(row, i, op)
    } catch (e) {
      assert.instanceOf(e, RowEncodeError)
      const { column, reason, row: at } = e as RowEncodeError
      return JSON.stringify({ column, reason, at })
    }
  }
  const same = <A, I>(
    schema: Schema.Schema<A, I>,
    rows: ReadonlyArray<unknown>,
    options?: RowEncoder.RowEncoderOptions,
    op?: (i: number) => number
  ) => {
    for (const format of ["csv", "json"] as const) {
      const direct = RowEncoder.make(schema, options).builder(format)
      const text = RowEncoder.makeStringWay(schema, options).builder(format)
      const got: Array<unknown> = []
      const want: Array<unknown> = []
      rows.forEach((r, i) => {
        const o = op?.(i)
        got.push(outcome(direct, r, i, o), direct.bytes)
        want.push(outcome(text, r, i, o), text.bytes)
      })
      const at = got.findIndex((g, k) => g !== want[k])
      if (at >= 0) {
        const i = at >> 1
        const shown = JSON.stringify(rows[i], (_k, v) => (typeof v === "bigint" ? `${v}n` : v))?.slice(0, 200)
        assert.strictEqual(got[at], want[at], `${format} row ${i} (${at % 2 === 0 ? "add" : "bytes"}): ${shown}`)
      }
      assert.strictEqual(direct.rows, text.rows)
      assert.isTrue(body(direct.finish()).equals(body(text.finish())), `${format} body`)
    }
  }
  const each = <A, I>(schema: Schema.Schema<A, I>, values: ReadonlyArray<unknown>) =>
    same(Schema.Struct({ v: schema as Schema.Schema<A, I> }), values.map((v) => ({ v })))

  // doubles of the forms the fraction writer takes (n / 10^k) and around them, and others it leaves alone
  let seed = 12345
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  }
  const doubles: Array<number> = [
    0,
    -0,
    1,
    -1,
    0.5,
    -0.5,
    0.1,
    0.2,
    0.1 + 0.2,
    1 / 3,
    2 / 3,
    1e-6,
    1.5e-6,
    1e-7,
    9.99999e-7,
    0.000001,
    0.0000015,
    123.456,
    -123.456,
    1e15 + 0.5,
    2 ** 52 - 0.5,
    2 ** 52 / 1e6,
    4503599627.370496,
    4503599627.370497,
    2 ** 53,
    2 ** 53 + 2,
    1e21,
    1e21 - 65536,
    123456789012345680000,
    5e-324,
    1.7976931348623157e308,
    -2.5e-300,
    0.07,
    1.005,
    2.675,
    1234567.891,
    99999.99999,
    0.999999,
    0.9999999,
    1.0000001,
    3.14159265358979
  ]
  for (let i = 0; i < 20_000; i++) {
    const k = 1 + (i % 7)
    const n = Math.floor(random() * 10 ** (1 + (i % 15)))
    doubles.push(n / 10 ** k, -n / 10 ** k, (n + random()) / 10 ** k, random() * 10 ** ((i % 40) - 20))
  }

  it("doubles: the same text as Number::toString", () => {
    each(Schema.Number, doubles)
    each(ColumnType.Float, doubles)
    each(ColumnType.annotate(Schema.Number, "VARCHAR(40)"), doubles)
    each(Schema.Number, [NaN, Infinity, -Infinity, null, "1.5", 2n, true, BigDecimal.make(15n, 1), {}])
  })

  it("integers: every type, in and out of range, and what is not an integer", () => {
    const ints: Array<unknown> = [0, -0, 1, -1, 9, 10, 99, 100, 127, 128, -128, -129, 32767, -32769, 2 ** 31 - 1]
    ints.push(2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32, 999_999_999, 1_000_000_000, 9_999_999_999, 1e15, 1e16)
    ints.push(2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 2 ** 60, -(2 ** 63), 2 ** 63, 1e25, 1.5, NaN, Infinity)
    ints.push(5n, -(2n ** 63n), 2n ** 63n, 2n ** 127n, true, false, "42", "-7", "4x", null, undefined, new Date(0))
    for (let i = 0; i < 2000; i++) {
      const x = Math.floor(random() * 10 ** (i % 17))
      ints.push(x, -x)
    }
    const types: ReadonlyArray<Schema.Schema<any, any>> = [
      ColumnType.TinyInt,
      ColumnType.SmallInt,
      ColumnType.Int,
      ColumnType.BigInt,
      ColumnType.LargeInt
    ]
    for (const t of types) each(t, ints)
  })

  it("DECIMAL: fast and slow values, every scale", () => {
    const values: Array<unknown> = ["1.5", "-0.001", "1e3", "12345678.9", 1.25, 7n, null, "x", 1e300]
    for (let i = 0; i < 1000; i++) {
      const u = globalThis.BigInt(Math.floor(random() * 10 ** (1 + (i % 17)))) * (i % 3 === 0 ? -1n : 1n)
      values.push(BigDecimal.make(u, i % 5), BigDecimal.make(u * 10n ** 10n, 2))
    }
    values.push(BigDecimal.make(2n ** 53n - 1n, 2), BigDecimal.make(-(2n ** 53n) + 1n, 3), BigDecimal.make(0n, 2))
    values.push(BigDecimal.make(99999999n, 2), BigDecimal.make(100000000n, 2), BigDecimal.make(-5n, 2))
    for (const [p, s] of [[10, 2], [10, 0], [38, 3], [18, 6], [27, 9], [5, 1], [38, 20]] as const) {
      each(ColumnType.Decimal(p, s), values)
    }
  })

  it("DATE and DATETIME: every millisecond part, before 1970, time zones, strings and DateTime values", () => {
    const dates: Array<unknown> = [
      new Date(0),
      new Date(-1),
      new Date(Date.UTC(1, 0, 1)),
      new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999)),
      new Date(Date.UTC(10000, 0, 1)),
      new Date(Date.UTC(-1, 0, 1)),
      new Date(NaN),
      "2024-02-29",
      "2024-02-29 12:00:00.5",
      "2024-13-01",
      DateTime.unsafeMake(1_700_000_000_123),
      null,
      42
    ]
    for (let i = 0; i < 3000; i++) dates.push(new Date(Math.floor((random() - 0.3) * 4e12)))
    for (const timeZone of ["UTC", "+08:00", "-05:30", "Asia/Shanghai", "America/New_York", "Europe/London"]) {
      const S = Schema.Struct({ d: ColumnType.Date, t: ColumnType.DateTime, n: Schema.NullOr(ColumnType.DateTime) })
      same(S, dates.map((d, i) => ({ d, t: d, n: i % 4 === 0 ? null : d })), { timeZone })
    }
  })

  it("strings: ASCII, escapes, \\N, control characters, non-ASCII, lone surrogates, lengths around the limits", () => {
    const strings: Array<unknown> = [
      "",
      "a",
      "\\N",
      "\\n",
      "N",
      "a\"b",
      "a\\b",
      "\"\\\"",
      "tab\there",
      "line\nbreak",
      "\r",
      "\u0000",
      "\u001f",
      "\u007f",
      "é",
      "€𝄞",
      "\ud800",
      "a\udc00b",
      ",",
      "x".repeat(63),
      "x".repeat(64),
      "x".repeat(65),
      "\"".repeat(64),
      "é".repeat(32),
      "é".repeat(33),
      "x".repeat(1000),
      12,
      1.5,
      true,
      new Date(0),
      BigDecimal.make(1n, 1),
      { a: 1 },
      [1],
      null
    ]
    for (let i = 0; i < 2000; i++) {
      let s = ""
      const n = Math.floor(random() * 80)
      for (let j = 0; j < n; j++) {
        s += String.fromCharCode(random() < 0.9 ? 32 + Math.floor(random() * 95) : Math.floor(random() * 400))
      }
      strings.push(s)
    }
    for (const t of [Schema.String, ColumnType.Varchar(64), ColumnType.Varchar(3), ColumnType.Char(1)]) each(t, strings)
    same(Schema.Struct({ s: ColumnType.Varchar(64) }), strings.map((s) => ({ s })), { csvJsonFallback: false })
    same(Schema.Struct({ s: Schema.String }), strings.map((s) => ({ s })), { serverSupportsEnclose: false })
  })

  it("booleans, JSON, ARRAY, MAP and STRUCT columns, nulls, the __op column, separators", () => {
    each(Schema.Boolean, [true, false, 1, 0, 2, "true", null])
    each(ColumnType.Json, [{ a: [1, "x\u0001"] }, "[1]", "nope", 5, null, "é"])
    each(Schema.Array(Schema.NullOr(ColumnType.Int)), [[1, null, 3], [], [1.5], "x"])
    const S = Schema.Struct({
      "id": ColumnType.BigInt,
      "é name": Schema.NullOr(Schema.String),
      "x\"y": Schema.optional(Schema.Number),
      "d": ColumnType.Date
    })
    const rows = Array.from({ length: 500 }, (_, i) => ({
      id: i,
      "é name": i % 3 === 0 ? null : `n${i}`,
      ...(i % 4 === 0 ? {} : { "x\"y": i / 8 }),
      d: new Date(i * 86_400_000)
    }))
    rows.push({ id: 1, "é name": "a", d: null as any }, { id: null as any, "é name": "a", d: new Date(0) })
    same(S, rows)
    same(S, rows, { opColumn: true }, (i) => i % 2)
    same(S, rows, { columnSeparator: "\u0001", rowDelimiter: "\u0002" })
    same(S, rows, { columnSeparator: "||", columns: ["d", "id"] })
  })

  it("rows across buffer ends and rows larger than a buffer", () => {
    const S = Schema.Struct({ id: ColumnType.BigInt, s: Schema.String, t: Schema.NullOr(Schema.String) })
    const rows: Array<unknown> = []
    for (let i = 0; i < 20_000; i++) {
      const n = i % 997 === 0 ? 60_000 : Math.floor(random() * 300)
      rows.push({ id: i, s: (i % 5 === 0 ? "é" : "x").repeat(n), t: i % 1999 === 0 ? "y".repeat(2_000_000) : null })
    }
    rows.push({ id: -1, s: "x".repeat(65_534), t: null })
    same(Schema.Struct({ id: ColumnType.BigInt, s: ColumnType.String, t: Schema.NullOr(Schema.String) }), rows)
    same(S, rows.slice(0, 3000), { csvJsonFallback: false })
  })
})
