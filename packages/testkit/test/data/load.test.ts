import { assert, describe, it } from "@effect/vitest"
import * as Zlib from "node:zlib"
import { EMPTY_LOAD_NEW, EMPTY_LOAD_OLD, parseStrtod, validateHeaders } from "../../src/internal/data/pipeline.js"
import { load, rows, strings, table } from "./helpers.js"

const t = table([{ name: "id", type: "INT" }, { name: "name", type: "VARCHAR(16)" }])
const C = { column_separator: "," }

describe("validateHeaders (header-phase errors, verbatim)", () => {
  const cases: ReadonlyArray<[Record<string, string>, string]> = [
    [{ format: "xml" }, "unknown data format, format=xml"],
    [{ strict_mode: "yes" }, "Invalid strict mode format. Must be bool type"],
    [{ partial_update: "1" }, "Invalid partial update flag format. Must be bool type"],
    [{ trim_space: "nope" }, "Invalid trim space format. Must be bool type"],
    [{ skip_header: "-1" }, "skip_header must be equal or greater than 0"],
    [{ skip_header: "abc" }, "Invalid csv load skip_header format"]
  ]
  for (const [h, msg] of cases) {
    it(`${JSON.stringify(h)} → ${msg}`, () => {
      assert.strictEqual(validateHeaders(t, h), msg)
      const out = load(t, h, "1,a\n")
      assert.strictEqual(out._tag === "Fail" && out.message, msg)
    })
  }
  it("bad hex delimiters → Invalid delimiter …", () => {
    assert.match(validateHeaders(t, { column_separator: "\\x1" })!, /^Invalid delimiter/)
    assert.match(validateHeaders(t, { row_delimiter: "0xZZ" })!, /^Invalid delimiter/)
    assert.match(validateHeaders(t, { column_separator: "\\x" })!, /^Invalid delimiter/)
  })
  it("valid headers → undefined (bools case-insensitive, compressed format aliases)", () => {
    assert.isUndefined(validateHeaders(t, {}))
    assert.isUndefined(validateHeaders(t, { format: "JSON", strict_mode: "TRUE", trim_space: "False" }))
    assert.isUndefined(validateHeaders(t, { format: "gzip", skip_header: "2", max_filter_ratio: "garbage" }))
  })
  it("partial_update on a PRIMARY table is fine", () => {
    const pk = table([{ name: "id", type: "INT" }], "PRIMARY")
    assert.isUndefined(validateHeaders(pk, { partial_update: "true" }))
  })
})

describe("delimiters: hex rule", () => {
  it("\\x.. / 0x.. values are hex", () => {
    assert.deepStrictEqual(rows(load(t, { column_separator: "\\x01" }, "1\x01a\n")), [[1, "a"]])
    assert.deepStrictEqual(rows(load(t, { column_separator: "0x2C" }, "1,a\n")), [[1, "a"]])
    assert.deepStrictEqual(rows(load(t, { ...C, row_delimiter: "\\X0D0A" }, "1,a\r\n2,b")), [[1, "a"], [2, "b"]])
  })
  it("anything else is literal: \\t typed as two characters is not TAB", () => {
    assert.deepStrictEqual(rows(load(t, { column_separator: "\\t" }, "1\\ta\n")), [[1, "a"]])
  })
  it("default separator is TAB and default row delimiter is \\n", () => {
    assert.deepStrictEqual(rows(load(t, {}, "1\ta\n2\tb\n")), [[1, "a"], [2, "b"]])
  })
  it("multi-byte literal separators", () => {
    assert.deepStrictEqual(rows(load(t, { column_separator: "||" }, "1||a\n")), [[1, "a"]])
  })
})

describe("counters and max_filter_ratio", () => {
  it("case 10: 1,a\\n2,b\\n → 2 loaded, LoadBytes 8", () => {
    const out = load(t, C, "1,a\n2,b\n")
    assert.strictEqual(out._tag, "Ok")
    assert.deepStrictEqual(out.counters, { total: 2, loaded: 2, filtered: 0, unselected: 0, bytes: 8 })
    assert.deepStrictEqual(out.errorLog, [])
  })
  it("case 20: a wrong field count fails with too many filtered rows and an error line", () => {
    const out = load(t, C, "1,a\n2\n")
    assert.strictEqual(out._tag, "Fail")
    assert.strictEqual(out._tag === "Fail" && out.message, "too many filtered rows")
    assert.strictEqual(out.counters.filtered, 1)
    assert.strictEqual(out.errorLog.length, 1)
    const line = out.errorLog[0]!
    // runtime_state_helper.cpp append_error_msg_to_file: `Error: <msg>. Row: <record>`
    assert.strictEqual(
      line,
      "Error: Target column count: 2 doesn't match source value column count: 1. " +
        "Column separator: ',', Row delimiter: '\\n'. Row: 2"
    )
  })
  it("case 21: max_filter_ratio 0.5 → Ok with loaded 1, filtered 1 and an error log", () => {
    const out = load(t, { ...C, max_filter_ratio: "0.5" }, "1,a\n2\n")
    assert.strictEqual(out._tag, "Ok")
    assert.deepStrictEqual(out.counters, { total: 2, loaded: 1, filtered: 1, unselected: 0, bytes: 6 })
    assert.strictEqual(out.errorLog.length, 1)
  })
  it("the ratio is filtered / (total − unselected), compared with >", () => {
    // 1 filtered out of 3 considered rows (1 unselected): 1/3 > 0.3 fails, 1/3 <= 0.34 passes
    const body = "1,a\n2\n3,c\n9,z\n"
    const h = { ...C, where: "id < 9" }
    assert.strictEqual(load(t, { ...h, max_filter_ratio: "0.3" }, body)._tag, "Fail")
    const ok = load(t, { ...h, max_filter_ratio: "0.34" }, body)
    assert.strictEqual(ok._tag, "Ok")
    assert.deepStrictEqual(ok.counters, { total: 4, loaded: 2, filtered: 1, unselected: 1, bytes: body.length })
  })
  it("max_filter_ratio is parsed like strtod: garbage → 0, numeric prefix kept", () => {
    assert.strictEqual(parseStrtod("garbage"), 0)
    assert.strictEqual(parseStrtod("0.5abc"), 0.5)
    assert.strictEqual(parseStrtod(" 1e-1"), 0.1)
    assert.strictEqual(load(t, { ...C, max_filter_ratio: "abc" }, "1,a\n2\n")._tag, "Fail")
  })
  it("the Fail outcome still carries counters and the error log", () => {
    const out = load(t, C, "1,a\nx,y,z\n")
    assert.strictEqual(out.counters.total, 2)
    assert.strictEqual(out.counters.loaded, 1)
    assert.strictEqual(out.errorLog.length, 1)
  })
  it("the error log holds at most 50 row lines; counting goes on", () => {
    const body = Array.from({ length: 80 }, (_, i) => `${i}\n`).join("")
    const out = load(t, { ...C, max_filter_ratio: "1" }, body)
    assert.strictEqual(out.counters.filtered, 80)
    assert.strictEqual(out.errorLog.length, 50)
  })
  it("bytes is the sum of every body", () => {
    const out = load(t, C, ["1,a\n", "2,bb\n"])
    assert.strictEqual(out.counters.bytes, 9)
  })
})

describe("empty load (case 23)", () => {
  it("an empty body fails with the new message by default options", () => {
    const out = load(t, C, "")
    assert.strictEqual(out._tag === "Fail" && out.message, EMPTY_LOAD_NEW)
    assert.isTrue(EMPTY_LOAD_NEW.startsWith("No partitions have data available for loading."))
    assert.deepStrictEqual(out.counters, { total: 0, loaded: 0, filtered: 0, unselected: 0, bytes: 0 })
  })
  it("old message style", () => {
    const out = load(t, C, "", { emptyLoadMessage: "old" })
    assert.strictEqual(out._tag === "Fail" && out.message, EMPTY_LOAD_OLD)
    assert.strictEqual(EMPTY_LOAD_OLD, "all partitions have no load data")
  })
  it("empty_load_as_error=false → Ok with 0 rows", () => {
    const out = load(t, C, "", { emptyLoadAsError: false })
    assert.strictEqual(out._tag, "Ok")
    assert.strictEqual(out.counters.total, 0)
  })
  it("only blank lines is an empty load", () => {
    assert.strictEqual(load(t, C, "\n\n")._tag, "Fail")
  })
  it("an empty JSON body is an empty load", () => {
    const out = load(t, { format: "json" }, "  ")
    assert.strictEqual(out._tag === "Fail" && out.message, EMPTY_LOAD_NEW)
  })
  it("every row filtered but within the ratio: empty load", () => {
    const out = load(t, { ...C, max_filter_ratio: "1" }, "1\n")
    assert.strictEqual(out._tag === "Fail" && out.message, EMPTY_LOAD_NEW)
    assert.strictEqual(out.counters.filtered, 1)
  })
})

describe("compressed format aliases", () => {
  it("format: gzip reads gzip-compressed CSV", () => {
    const out = load(t, { ...C, format: "gzip" }, Zlib.gzipSync(Buffer.from("1,a\n2,b\n")))
    assert.deepStrictEqual(rows(out), [[1, "a"], [2, "b"]])
  })
})

describe("performance", () => {
  it("100,000 CSV rows (enclose+escape) load in linear time", () => {
    const tt = table([
      { name: "id", type: "BIGINT" },
      { name: "name", type: "VARCHAR(64)" },
      { name: "score", type: "DOUBLE" },
      { name: "day", type: "DATE" },
      { name: "amount", type: "DECIMAL(12,2)" }
    ])
    const lines: Array<string> = []
    for (let i = 0; i < 100_000; i++) lines.push(`"${i}","name \\"${i}\\"","${i / 3}","2024-01-05","${i}.25"\n`)
    const started = Date.now()
    const out = load(tt, { column_separator: ",", enclose: "\"", escape: "\\" }, lines.join(""))
    const elapsed = Date.now() - started
    assert.strictEqual(out._tag, "Ok")
    assert.strictEqual(out.counters.loaded, 100_000)
    assert.isBelow(elapsed, 10_000)
  })
  it("100,000 JSON rows load in linear time", () => {
    const parts: Array<string> = []
    for (let i = 0; i < 100_000; i++) parts.push(`{"id":${i},"name":"n${i}"}`)
    const started = Date.now()
    const out = load(t, { format: "json", strip_outer_array: "true" }, `[${parts.join(",")}]`)
    assert.strictEqual(out._tag, "Ok")
    assert.strictEqual(out.counters.loaded, 100_000)
    assert.isBelow(Date.now() - started, 10_000)
  })
  it("strings(1) helper sanity", () => {
    assert.deepStrictEqual(rows(load(strings(1), {}, "x\n")), [["x"]])
  })
})

describe("compression / Content-Encoding headers", () => {
  it("compression: gzip payloads are decompressed (CSV and JSON)", () => {
    const gz = Zlib.gzipSync(Buffer.from("{\"id\":1,\"name\":\"a\"}"))
    assert.deepStrictEqual(rows(load(t, { format: "json", compression: "GZIP" }, gz)), [[1, "a"]])
    const gz2 = Zlib.gzipSync(Buffer.from("1,a\n"))
    assert.deepStrictEqual(rows(load(t, { ...C, "content-encoding": "gzip" }, gz2)), [[1, "a"]])
  })
  it("LoadBytes counts the bytes received", () => {
    const gz = Zlib.gzipSync(Buffer.from("1,a\n"))
    assert.strictEqual(load(t, { ...C, compression: "gzip" }, gz).counters.bytes, gz.length)
  })
  it("an unknown compression name fails the header phase", () => {
    assert.strictEqual(validateHeaders(t, { compression: "rar" }), "Unsupported compression type: rar")
    assert.isUndefined(validateHeaders(t, { compression: "NO_COMPRESSION" }))
  })
  it("a corrupt payload fails the load", () => {
    assert.strictEqual(load(t, { ...C, compression: "gzip" }, "not gzip")._tag, "Fail")
  })
})
