/**
 * The error log behind `ErrorURL`, in the format StarRocks' BE writes it (docs/protocol.md §7.2): one line per
 * filtered row, `Error: <reason>. Row: <record>` (runtime_state_helper.cpp `append_error_msg_to_file`), the CSV
 * scanner's wordings (be/src/exec/csv_scanner.cpp) and at most 50 rows; served anonymously, or with Basic auth when
 * the BE's `enable_http_auth` is on.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as StarRocksEmulator from "../src/StarRocksEmulator.js"
import { load, table } from "./data/helpers.js"
import { basic, followE, requestE, ROOT, TABLES } from "./utils.js"

const t = table([{ name: "id", type: "BIGINT" }, { name: "d", type: "DECIMAL(10,2)", nullable: true }])

describe("error-log lines", () => {
  it("a wrong field count names both counts and the delimiters as the scanner prints them", () => {
    const tab = load(
      t,
      { column_separator: "\\x09", row_delimiter: "\\x01", max_filter_ratio: "1" },
      "1\t2\t3\x014\x01"
    )
    assert.deepStrictEqual(tab.errorLog, [
      "Error: Target column count: 2 doesn't match source value column count: 3. " +
      "Column separator: '\\t', Row delimiter: '0x1'. Row: 1\t2\t3",
      "Error: Target column count: 2 doesn't match source value column count: 1. " +
      "Column separator: '\\t', Row delimiter: '0x1'. Row: 4"
    ])
    const multi = load(t, { column_separator: "||", max_filter_ratio: "1" }, "7\n")
    assert.deepStrictEqual(multi.errorLog, [
      "Error: Target column count: 2 doesn't match source value column count: 1. " +
      "Column separator: '||', Row delimiter: '\\n'. Row: 7"
    ])
  })

  it("strict_mode: a value the column type cannot take names the field, its position, type, length and value", () => {
    const out = load(t, { column_separator: ",", strict_mode: "true", max_filter_ratio: "1" }, "1,abc\nxy,1.5\n")
    assert.deepStrictEqual(out.errorLog, [
      "Error: The field (name = d, pos = 1) is out of range. Type: DECIMAL64(10, 2), Value length: 3, Value: abc. " +
      "Row: 1,abc",
      "Error: The field (name = id, pos = 0) is out of range. Type: BIGINT, Value length: 2, Value: xy. Row: xy,1.5"
    ])
  })

  it("a record that is not valid UTF-8 is filtered whatever its columns' types: Invalid UTF-8 row", () => {
    const body = Buffer.concat([Buffer.from("1,2.5\n2,"), Buffer.from([0xff]), Buffer.from("\n")])
    const out = load(t, { column_separator: ",", max_filter_ratio: "1" }, body)
    assert.deepStrictEqual(out.counters.filtered, 1)
    assert.deepStrictEqual(out.errorLog, ["Error: Invalid UTF-8 row. Row: 2,\uFFFD"])
  })

  it("keeps the first 50 filtered rows", () => {
    const body = Array.from({ length: 60 }, (_, i) => `${i}\n`).join("")
    const out = load(t, { column_separator: ",", max_filter_ratio: "1" }, body)
    assert.strictEqual(out.counters.filtered, 60)
    assert.strictEqual(out.errorLog.length, 50)
    assert.isTrue(out.errorLog[49]!.endsWith(". Row: 49"))
  })
})

describe("ErrorURL download", () => {
  const filteredLoad = (emu: StarRocksEmulator.StarRocksEmulator, label: string) =>
    followE(`${emu.fe[0]}/api/d/t/_stream_load`, {
      auth: ROOT,
      headers: { label, column_separator: ",", max_filter_ratio: "1" },
      body: "1,a\n2\n3,b,c\n"
    })

  it.scopedLive("anonymous by default: the log, one line per filtered row, each ended by a newline", () =>
    Effect.gen(function*() {
      const emu = yield* StarRocksEmulator.make({ ...TABLES, admin: false })
      const res = yield* filteredLoad(emu, "e1")
      assert.strictEqual(res.json.Status, "Success")
      assert.strictEqual(res.json.NumberFilteredRows, 2)
      const log = yield* requestE(res.json.ErrorURL, { method: "GET" })
      assert.strictEqual(log.status, 200)
      assert.strictEqual(
        log.text,
        "Error: Target column count: 2 doesn't match source value column count: 1. " +
          "Column separator: ',', Row delimiter: '\\n'. Row: 2\n" +
          "Error: Target column count: 2 doesn't match source value column count: 3. " +
          "Column separator: ',', Row delimiter: '\\n'. Row: 3,b,c\n"
      )
      const noFile = yield* requestE(`${emu.bes[0]}/api/_load_error_log`, { method: "GET" })
      assert.strictEqual(noFile.status, 200)
      assert.strictEqual(noFile.text, "parameter file not specified in url.")
    }))

  it.scopedLive("enable_http_auth (beHttpAuth): 401 without or with wrong credentials, the log with them", () =>
    Effect.gen(function*() {
      const emu = yield* StarRocksEmulator.make({ ...TABLES, beHttpAuth: true, admin: false })
      const res = yield* filteredLoad(emu, "e2")
      const url = String(res.json.ErrorURL)
      const none = yield* requestE(url, { method: "GET" })
      assert.strictEqual(none.status, 401)
      assert.strictEqual(none.headers["www-authenticate"], "Basic realm=\"\"")
      const wrong = yield* requestE(url, { method: "GET", auth: basic("alice", "nope") })
      assert.strictEqual(wrong.status, 401)
      assert.notInclude(wrong.text, "nope")
      const ok = yield* requestE(url, { method: "GET", auth: basic("alice", "secret") })
      assert.strictEqual(ok.status, 200)
      assert.include(ok.text, "Row: 3,b,c\n")
    }))
})
