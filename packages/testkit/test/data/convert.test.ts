import { assert, describe, it } from "@effect/vitest"
import { convertJson, convertText, INVALID, parseColumnType } from "../../src/internal/data/convert.js"
import { parseJsonText } from "../../src/internal/data/json.js"
import { load, rows, table } from "./helpers.js"

const conv = (type: string, text: string) => convertText(parseColumnType(type), text)
const convJ = (type: string, json: string) => convertJson(parseColumnType(type), parseJsonText(json)!.value)

describe("column type parser", () => {
  it("parses lengths, precision/scale and element types", () => {
    assert.deepStrictEqual(parseColumnType("VARCHAR(64)"), { kind: "VARCHAR", length: 64 })
    assert.deepStrictEqual(parseColumnType("decimal(10, 2)"), { kind: "DECIMAL", precision: 10, scale: 2 })
    assert.deepStrictEqual(parseColumnType("ARRAY<INT>"), { kind: "ARRAY", element: { kind: "INT" } })
    assert.deepStrictEqual(parseColumnType("ARRAY<DECIMAL(5,1)>"), {
      kind: "ARRAY",
      element: { kind: "DECIMAL", precision: 5, scale: 1 }
    })
    assert.deepStrictEqual(parseColumnType("STRING"), { kind: "VARCHAR", length: 65533 })
    assert.deepStrictEqual(parseColumnType("CHAR(3)"), { kind: "CHAR", length: 3 })
    assert.deepStrictEqual(parseColumnType("DATETIME"), { kind: "DATETIME" })
  })
})

describe("CSV text → TINYINT/SMALLINT/INT (string_to_int, then float + trunc)", () => {
  const ok: ReadonlyArray<[string, string, number]> = [
    ["INT", "42", 42],
    ["INT", "-7", -7],
    ["INT", "12  ", 12],
    ["INT", "  12", 12],
    ["INT", "1.5", 1],
    ["INT", "1.999", 1],
    ["INT", "-1.9999", -1],
    ["INT", "1e2", 100],
    ["INT", "2147483647.99999", 2147483647],
    ["INT", "-2147483648.999999", -2147483648],
    ["INT", ".5", 0],
    ["INT", "-", 0],
    ["INT", "+", 0],
    ["TINYINT", "127", 127],
    ["SMALLINT", "-32768", -32768]
  ]
  for (const [t, s, v] of ok) it(`${t} '${s}' → ${v}`, () => assert.strictEqual(conv(t, s), v))
  const bad: ReadonlyArray<[string, string]> = [
    ["SMALLINT", "32768"],
    ["INT", "2147483648.5"],
    ["SMALLINT", "32768.0"],
    ["SMALLINT", "-32769.0"],
    ["TINYINT", "128"],
    ["INT", "inf"],
    ["INT", "nan"],
    ["INT", ""],
    ["INT", "abc"],
    ["INT", "100a"],
    ["INT", "\"100\""]
  ]
  for (const [t, s] of bad) it(`${t} '${s}' is invalid`, () => assert.strictEqual(conv(t, s), INVALID))
})

describe("CSV text → BIGINT/LARGEINT (string_to_int, then DecimalV2 + truncation)", () => {
  const ok: ReadonlyArray<[string, string, bigint]> = [
    ["BIGINT", "9223372036854775807", 9223372036854775807n],
    ["BIGINT", "1.5", 1n],
    ["BIGINT", "-1.9", -1n],
    ["BIGINT", "1e3", 1000n],
    ["BIGINT", ".", 0n],
    ["BIGINT", "9223372036854775807.99999", 9223372036854775807n],
    ["BIGINT", "-9223372036854775808.999999", -9223372036854775808n],
    ["BIGINT", "1e19", -8446744073709551616n],
    ["LARGEINT", "170141183460469231731687303715884105727", 170141183460469231731687303715884105727n]
  ]
  for (const [t, s, v] of ok) it(`${t} '${s}' → ${v}`, () => assert.strictEqual(conv(t, s), v))
  for (const s of ["9223372036854775808", "1_000", "1.2.3", "inf", ""]) {
    it(`BIGINT '${s}' is invalid`, () => assert.strictEqual(conv("BIGINT", s), INVALID))
  }
})

describe("CSV text → FLOAT/DOUBLE (fast_float)", () => {
  const ok: ReadonlyArray<[string, number]> = [
    ["1.25", 1.25],
    [" 2.5 ", 2.5],
    ["1.2.3", 1.2],
    ["1e", 1],
    ["+.5e1", 5],
    ["-3", -3],
    ["inf", Infinity],
    ["-Infinity", -Infinity]
  ]
  for (const [s, v] of ok) it(`DOUBLE '${s}' → ${v}`, () => assert.strictEqual(conv("DOUBLE", s), v))
  it("nan → NaN", () => assert.isTrue(Number.isNaN(conv("DOUBLE", "NaN") as number)))
  for (const s of ["1e309", "1,5", "0x1p3", "--1", "1e5e", ".", ""]) {
    it(`DOUBLE '${s}' is invalid`, () => assert.strictEqual(conv("DOUBLE", s), INVALID))
  }
  it("FLOAT rounds to single precision and rejects float overflow", () => {
    assert.strictEqual(conv("FLOAT", "0.1"), Math.fround(0.1))
    assert.strictEqual(conv("FLOAT", "1e39"), INVALID)
  })
})

describe("CSV text → BOOLEAN (string_to_bool, then string_to_float != 0)", () => {
  const ok: ReadonlyArray<[string, boolean]> = [
    ["1", true],
    ["0", false],
    ["true", true],
    ["FALSE", false],
    ["True  ", true],
    ["  false", false],
    ["2", true],
    ["-1", true],
    ["1.0", true],
    ["0.0", false],
    ["inf", true],
    ["nan", true]
  ]
  for (const [s, v] of ok) it(`'${s}' → ${v}`, () => assert.strictEqual(conv("BOOLEAN", s), v))
  for (const s of ["yes", "t", "on", "", "abc"]) {
    it(`'${s}' is invalid`, () => assert.strictEqual(conv("BOOLEAN", s), INVALID))
  }
})

describe("CSV text → CHAR/VARCHAR(n) (byte length)", () => {
  it("kept as is within n bytes", () => assert.strictEqual(conv("VARCHAR(3)", "abc"), "abc"))
  it("over n bytes is invalid", () => assert.strictEqual(conv("VARCHAR(3)", "abcd"), INVALID))
  it("the length is counted in UTF-8 bytes", () => {
    assert.strictEqual(conv("VARCHAR(4)", "éé"), "éé")
    assert.strictEqual(conv("VARCHAR(3)", "éé"), INVALID)
  })
  it("the empty string is a value", () => assert.strictEqual(conv("VARCHAR(3)", ""), ""))
})

describe("CSV text → DATE/DATETIME", () => {
  it("DATE accepts YYYY-MM-DD and YYYYMMDD", () => {
    assert.strictEqual(conv("DATE", "1990-01-01"), "1990-01-01")
    assert.strictEqual(conv("DATE", "19910203"), "1991-02-03")
  })
  for (const s of ["", "1", "\"1990-11-25\"", "DorisDB", "2023-02-30"]) {
    it(`DATE '${s}' is invalid`, () => assert.strictEqual(conv("DATE", s), INVALID))
  }
  it("DATETIME accepts YYYY-MM-DD HH:MM:SS, YYYYMMDDHHMMSS, the T separator and a fraction", () => {
    assert.strictEqual(conv("DATETIME", "1990-01-01 01:02:03"), "1990-01-01 01:02:03")
    assert.strictEqual(conv("DATETIME", "19900101010203"), "1990-01-01 01:02:03")
    assert.strictEqual(conv("DATETIME", "1990-01-01T01:02:03"), "1990-01-01 01:02:03")
    assert.strictEqual(conv("DATETIME", "1990-01-01 01:02:03.5"), "1990-01-01 01:02:03.500000")
    assert.strictEqual(conv("DATETIME", "1990-01-01 01:02:03.000000"), "1990-01-01 01:02:03")
    assert.strictEqual(conv("DATETIME", "1990-01-01"), "1990-01-01 00:00:00")
  })
  for (const s of ["", "1", "\"1990-01-01 01:02:03\"", "DorisDB", "1990-01-01 25:00:00"]) {
    it(`DATETIME '${s}' is invalid`, () => assert.strictEqual(conv("DATETIME", s), INVALID))
  }
})

describe("CSV text → DECIMAL(p,s)", () => {
  const ok: ReadonlyArray<[string, string, string]> = [
    ["DECIMAL(10,2)", "12.3", "12.30"],
    ["DECIMAL(10,2)", "12.345", "12.35"],
    ["DECIMAL(10,2)", "12.344", "12.34"],
    ["DECIMAL(10,2)", "-12.345", "-12.35"],
    ["DECIMAL(10,2)", " 1e2 ", "100.00"],
    ["DECIMAL(10,2)", "-0.001", "0.00"],
    ["DECIMAL(10,0)", "7.5", "8"],
    ["DECIMAL(5,2)", "999.994", "999.99"]
  ]
  for (const [t, s, v] of ok) it(`${t} '${s}' → ${v} (round half up)`, () => assert.strictEqual(conv(t, s), v))
  for (
    const [t, s] of [["DECIMAL(5,2)", "1000"], ["DECIMAL(5,2)", "999.995"], ["DECIMAL(10,2)", "abc"], [
      "DECIMAL(10,2)",
      ""
    ]]
  ) {
    it(`${t} '${s}' is invalid (overflow/garbage)`, () => assert.strictEqual(conv(t!, s!), INVALID))
  }
})

describe("CSV text → JSON / ARRAY", () => {
  it("JSON text is parsed and stored minified", () => {
    assert.strictEqual(conv("JSON", "{ \"a\" : [1, 2.50] }"), "{\"a\":[1,2.50]}")
    assert.strictEqual(conv("JSON", "abc"), INVALID)
  })
  it("ARRAY<INT> text is a JSON array; invalid elements become NULL elements", () => {
    assert.deepStrictEqual(conv("ARRAY<INT>", "[1, 2]"), [1, 2])
    assert.deepStrictEqual(conv("ARRAY<INT>", "[1, \"x\", null]"), [1, null, null])
    assert.deepStrictEqual(conv("ARRAY<VARCHAR(10)>", "[\"a\",\"b\"]"), ["a", "b"])
    assert.strictEqual(conv("ARRAY<INT>", "1,2"), INVALID)
  })
})

describe("JSON value → column", () => {
  it("VARCHAR: strings unescaped, numbers as raw token, booleans 1/0, objects minified", () => {
    assert.strictEqual(convJ("VARCHAR(20)", "\"a\\nb\""), "a\nb")
    assert.strictEqual(convJ("VARCHAR(20)", "1.50"), "1.50")
    assert.strictEqual(convJ("VARCHAR(20)", "true"), "1")
    assert.strictEqual(convJ("VARCHAR(20)", "false"), "0")
    assert.strictEqual(convJ("VARCHAR(20)", "{\"a\": [1, 2]}"), "{\"a\":[1,2]}")
  })
  it("VARCHAR(n): over n bytes is invalid", () => assert.strictEqual(convJ("VARCHAR(2)", "\"abc\""), INVALID))
  it("JSON null is NULL", () => assert.strictEqual(convJ("INT", "null"), null))
  it("numbers keep their precision through the raw token", () => {
    assert.strictEqual(convJ("BIGINT", "9007199254740993"), 9007199254740993n)
    assert.strictEqual(convJ("DECIMAL(20,2)", "12345678901234567.125"), "12345678901234567.13")
  })
  it("DATE/DATETIME/DECIMAL/BOOLEAN read the text (string content, raw number, 1/0)", () => {
    assert.strictEqual(convJ("DATE", "\"2024-01-05\""), "2024-01-05")
    assert.strictEqual(convJ("DECIMAL(5,1)", "\"1.25\""), "1.3")
    assert.strictEqual(convJ("BOOLEAN", "true"), true)
    assert.strictEqual(convJ("BOOLEAN", "0"), false)
  })
  it("objects and arrays into scalar types are invalid", () => {
    assert.strictEqual(convJ("INT", "{}"), INVALID)
    assert.strictEqual(convJ("INT", "[1]"), INVALID)
  })
  it("JSON column stores any value minified", () => {
    assert.strictEqual(convJ("JSON", "\"s\""), "\"s\"")
    assert.strictEqual(convJ("JSON", "[1, {\"b\" : null}]"), "[1,{\"b\":null}]")
  })
  it("ARRAY: invalid elements are NULL elements", () => {
    assert.deepStrictEqual(convJ("ARRAY<INT>", "[1, \"2\", \"x\", {}]"), [1, 2, null, null])
    assert.strictEqual(convJ("ARRAY<INT>", "5"), INVALID)
  })
})

describe("strict_mode: invalid → NULL (off) or filtered (on); NULL into NOT NULL → filtered", () => {
  const t = table([{ name: "id", type: "INT" }, { name: "v", type: "SMALLINT" }, {
    name: "n",
    type: "INT",
    nullable: false
  }])
  it("off: an invalid value becomes NULL", () => {
    assert.deepStrictEqual(rows(load(t, { column_separator: "," }, "1,99999,3\n")), [[1, null, 3]])
  })
  it("on: the row is filtered with an error line naming the column", () => {
    const out = load(t, { column_separator: ",", strict_mode: "true", max_filter_ratio: "1" }, "1,99999,3\n2,5,6\n")
    assert.deepStrictEqual(rows(out), [[2, 5, 6]])
    assert.strictEqual(out.counters.filtered, 1)
    assert.include(out.errorLog[0]!, "name = v")
    assert.isTrue(out.errorLog[0]!.endsWith(". Row: 1,99999,3"))
  })
  it("an invalid value into a NOT NULL column is filtered even without strict_mode", () => {
    const out = load(t, { column_separator: ",", max_filter_ratio: "1" }, "1,1,x\n")
    assert.strictEqual(out.counters.filtered, 1)
    assert.strictEqual(out.errorLog[0], "Error: NULL value in non-nullable column 'n'. Row: 1,1,x")
  })
  it("key columns are NOT NULL by default", () => {
    const out = load(t, { column_separator: ",", max_filter_ratio: "1" }, "\\N,1,1\n")
    assert.strictEqual(out.counters.filtered, 1)
    assert.include(out.errorLog[0]!, "'id'")
  })
  it("value columns are nullable by default", () => {
    assert.deepStrictEqual(rows(load(t, { column_separator: "," }, "1,\\N,1\n")), [[1, null, 1]])
  })
  it("JSON: an invalid value is NULL with strict_mode off and filtered with it on", () => {
    assert.deepStrictEqual(rows(load(t, { format: "json" }, "{\"id\":1,\"v\":\"x\",\"n\":1}")), [[1, null, 1]])
    const out = load(t, { format: "json", strict_mode: "true" }, "{\"id\":1,\"v\":\"x\",\"n\":1}")
    assert.strictEqual(out._tag, "Fail")
    assert.strictEqual(out.counters.filtered, 1)
  })
  it("JSON ARRAY elements become NULL whatever strict_mode says", () => {
    const ta = table([{ name: "id", type: "INT" }, { name: "a", type: "ARRAY<INT>" }])
    assert.deepStrictEqual(rows(load(ta, { format: "json", strict_mode: "true" }, "{\"id\":1,\"a\":[1,\"x\"]}")), [[1, [
      1,
      null
    ]]])
  })
})
