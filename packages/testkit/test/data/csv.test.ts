import { assert, describe, it } from "@effect/vitest"
import { load, readCsv, readCsvRecords, rows, strings, table } from "./helpers.js"

const Q = { enclose: "\"" }
const QE = { enclose: "\"", escape: "\\" }

describe("CSV v1 split reader (neither enclose nor escape)", () => {
  it("splits by row delimiter then column separator", () => {
    assert.deepStrictEqual(readCsv("1,a\n2,b\n"), [["1", "a"], ["2", "b"]])
  })
  it("a body not ending with the row delimiter keeps its last row", () => {
    assert.deepStrictEqual(readCsv("1,a\n2,b"), [["1", "a"], ["2", "b"]])
  })
  it("blank lines are skipped", () => {
    assert.deepStrictEqual(readCsv("\n1,a\n\n\n2,b\n\n"), [["1", "a"], ["2", "b"]])
  })
  it("quotes and backslashes are plain data", () => {
    assert.deepStrictEqual(readCsv("\"a\",b\\,c\n"), [["\"a\"", "b\\", "c"]])
  })
  it("multi-byte separators and delimiters", () => {
    assert.deepStrictEqual(readCsv("1||a<br>2||b<br>", { sep: "||", rd: "<br>" }), [["1", "a"], ["2", "b"]])
  })
  it("multi-byte row delimiter at the end of the body is recognised in v1 (7e is v2 only)", () => {
    assert.deepStrictEqual(readCsv("1,a\r\n2,b\r\n", { rd: "\r\n" }), [["1", "a"], ["2", "b"]])
  })
  it("a trailing column separator gives an empty last field (7f is v2 only)", () => {
    assert.deepStrictEqual(readCsv("1,x\n2,"), [["1", "x"], ["2", ""]])
  })
  it("trim_space trims ' ' only (not tabs, not \\r) at both ends", () => {
    assert.deepStrictEqual(readCsv("  a  ,\tb\t, c\r\n", { trim: true }), [["a", "\tb\t", "c\r"]])
  })
  it("without trim_space spaces are kept", () => {
    assert.deepStrictEqual(readCsv(" a , b\n"), [[" a ", " b"]])
  })
  it("skip_header skips lines by the raw row delimiter, blank lines count", () => {
    assert.deepStrictEqual(readCsv("h1\n\n1,a\n2,b\n", { skip: 2 }), [["1", "a"], ["2", "b"]])
    assert.deepStrictEqual(readCsv("h1\nh2\n", { skip: 5 }), [])
  })
  it("the raw row of v1 excludes the row delimiter", () => {
    assert.deepStrictEqual(readCsvRecords("1,a\n2\n").map((r) => r.raw), ["1,a", "2"])
  })
})

describe("CSV v2 enclose, released reader (docs/protocol.md §9.2)", () => {
  it("enclosed fields keep column and row delimiters (csv_file17)", () => {
    assert.deepStrictEqual(readCsv("3|\"bb|BB\"\n", { sep: "|", ...Q }), [["3", "bb|BB"]])
    assert.deepStrictEqual(readCsv("5|\"cc\nadf,1,3455\"\n", { sep: "|", ...Q }), [["5", "cc\nadf,1,3455"]])
    assert.deepStrictEqual(readCsv("\"7\"|dd|\"abc|ef\ngh\"\n", { sep: "|", ...Q }), [["7", "dd", "abc|ef\ngh"]])
  })
  it("a doubled enclose inside an enclosure is one literal quote", () => {
    assert.deepStrictEqual(readCsv("\"\"\"ee\"\"\"\n", Q), [["\"ee\""]])
    assert.deepStrictEqual(readCsv("\"ab\"\"c\"\n", Q), [["ab\"c"]])
    assert.deepStrictEqual(readCsv("\"\"\"Rowdy\"\" Roddy Piper\"\n", Q), [["\"Rowdy\" Roddy Piper"]])
  })
  it("a quote that is not the first byte of the field does not enclose", () => {
    // 7b applies: the quote is dropped and the next byte is data
    assert.deepStrictEqual(readCsv("a\"bc,d\n", Q), [["abc", "d"]])
  })
  it("7c closing quote not validated: the byte before the delimiter is cut (\"ab\"cd, → ab\"c)", () => {
    assert.deepStrictEqual(readCsv("\"ab\"cd,x\n", Q), [["ab\"c", "x"]])
  })
  it("7c CRLF data with \\n delimiter: \"a\"\\r\\n → a\" (#51725)", () => {
    assert.deepStrictEqual(readCsv("\"a\"\r\n\"b\"\r\n", Q), [["a\""], ["b\""]])
  })
  it("7b enclose in an unenclosed field drops itself and swallows the next byte, even a delimiter", () => {
    assert.deepStrictEqual(readCsv("ab\",x\n", Q), [["ab,x"]])
    assert.deepStrictEqual(readCsv("1,ab\"\n2,c\n", Q), [["1", "ab\n2", "c"]])
  })
  it("empty enclosed field \"\" is the empty string", () => {
    assert.deepStrictEqual(readCsv("11|\"\"|ab\n", { sep: "|", ...Q }), [["11", "", "ab"]])
  })
  it("7g an enclosed field cut off by the end of input loses its last byte", () => {
    assert.deepStrictEqual(readCsv("1,\"abc", Q), [["1", "ab"]])
    assert.deepStrictEqual(readCsv("1,\"abc\n", Q), [["1", "abc"]])
  })
  it("7g malformed endings that give a negative length in the BE read as an empty field here", () => {
    assert.deepStrictEqual(readCsv("1,\"\\", QE), [["1", ""]])
  })
  it("7d released: a value starting with the enclose char written RFC-style loads", () => {
    assert.deepStrictEqual(readCsv("\"\"\"hello\"\" world\",x\n", Q), [["\"hello\" world", "x"]])
  })
  it("7d pre-#37381 (legacy option): \"\"\"hello\"\" world\" breaks the row", () => {
    const r = readCsv("\"\"\"hello\"\" world\",x\n", { ...Q, legacy: true })
    assert.strictEqual(r.length, 1)
    assert.notDeepEqual(r[0], ["\"hello\" world", "x"])
    assert.strictEqual(r[0]!.length, 1)
  })
  it("7d pre-#37381: \"\" followed by a delimiter is still an empty field", () => {
    assert.deepStrictEqual(readCsv("\"\",a\n", { ...Q, legacy: true }), [["", "a"]])
  })
  it("7d escaping the leading quote (\"\\\"hello\") works on both readers", () => {
    assert.deepStrictEqual(readCsv("\"\\\"hello\",x\n", QE), [["\"hello", "x"]])
    assert.deepStrictEqual(readCsv("\"\\\"hello\",x\n", { ...QE, legacy: true }), [["\"hello", "x"]])
  })
})

describe("CSV v2 escape (docs/protocol.md §9.3)", () => {
  it("escape works outside enclosures (test_ESCAPE)", () => {
    const o = { sep: "|", escape: "\\" }
    assert.deepStrictEqual(readCsv("1|\\\"aa\\\"|abc\\\"\n", o), [["1", "\"aa\"", "abc\""]])
    assert.deepStrictEqual(readCsv("3|bb\\|BB\n", o), [["3", "bb|BB"]])
    assert.deepStrictEqual(readCsv("5|cc\\\nadf,1,3455\n", o), [["5", "cc\nadf,1,3455"]])
    assert.deepStrictEqual(readCsv("9|\\\\ee\n", o), [["9", "\\ee"]])
  })
  it("escape + enclose inside an enclosure stays enclosed", () => {
    assert.deepStrictEqual(readCsv("\"a\\\"b\",c\n", QE), [["a\"b", "c"]])
  })
  it("a multi-byte delimiter is consumed whole after the escape", () => {
    assert.deepStrictEqual(readCsv("a\\||b||c\n", { sep: "||", escape: "\\" }), [["a||b", "c"]])
  })
  it("7a escape + ordinary byte inside an enclosure ends the enclosure (#43613)", () => {
    assert.deepStrictEqual(readCsv("1,\"a\\.b,c\"\n2,ok\n", QE), [["1", "a.", "c\n2", "ok"]])
  })
  it("an escape byte as the last byte of the input is dropped", () => {
    assert.deepStrictEqual(readCsv("1,a\\", { escape: "\\" }), [["1", "a"]])
  })
})

describe("CSV v2 7h NUL acts as the unset escape/enclose", () => {
  it("only enclose set: NUL escapes the next byte (ending the enclosure)", () => {
    assert.deepStrictEqual(readCsv("1,\"a\0b\",c", Q), [["1", "ab,"]])
  })
  it("only escape set: NUL encloses", () => {
    assert.deepStrictEqual(readCsv("1,\0a,b\0,c", { escape: "\\" }), [["1", "a,b", "c"]])
  })
})

describe("CSV v2 trim_space (docs/protocol.md §9.5)", () => {
  const o = { ...Q, trim: true }
  it("leading spaces are skipped before deciding enclosure; spaces inside quotes kept (csv_file16)", () => {
    assert.deepStrictEqual(readCsv("  \"aa  \"       ,\" bb\"   \n", o), [["aa  ", " bb"]])
  })
  it("after a closing quote a space drops everything to the delimiter", () => {
    assert.deepStrictEqual(readCsv("\"ab\" x,c\n", o), [["ab", "c"]])
  })
  it("trailing spaces of unenclosed fields are kept", () => {
    assert.deepStrictEqual(readCsv(" c   ,d\n", o), [["c   ", "d"]])
  })
  it("a line of only spaces is a blank line", () => {
    assert.deepStrictEqual(readCsv("a\n    \nb\n", o), [["a"], ["b"]])
  })
})

describe("CSV v2 multi-line values, skip_header, transactions (docs/protocol.md §9.6)", () => {
  it("skip_header counts an enclosed newline in the header as a line end", () => {
    // the header `"h` ends at the raw newline; `1",x` then has a stray quote that swallows the `,` (7b)
    assert.deepStrictEqual(readCsv("\"h\n1\",x\n2,y\n", { ...Q, skip: 1 }), [["1,x"], ["2", "y"]])
  })
  it("skip_header with fewer lines → no rows", () => {
    assert.deepStrictEqual(readCsv("h\n", { ...Q, skip: 3 }), [])
  })
  it("transaction bodies are one pipe: a body not ending in the row delimiter merges with the next", () => {
    const t = strings(2)
    assert.deepStrictEqual(rows(load(t, { column_separator: "," }, ["1,a\n2,b", "c\n3,d\n"])), [
      ["1", "a"],
      ["2", "bc"],
      ["3", "d"]
    ])
    assert.deepStrictEqual(rows(load(t, { column_separator: ",", ...QE }, ["1,\"a\"\n", "2,\"b\"\n"])), [
      ["1", "a"],
      ["2", "b"]
    ])
  })
})

describe("CSV v2 remaining quirks (docs/protocol.md §9.7)", () => {
  it("7e multi-byte row delimiter ending exactly the body is not recognised", () => {
    assert.deepStrictEqual(readCsv("1,\"a\"\r\n2,\"b\"\r\n", { ...Q, rd: "\r\n" }), [["1", "a"], ["2", "b\"\r"]])
    assert.deepStrictEqual(readCsv("1,a\r\n2,b\r\n", { ...Q, rd: "\r\n" }), [["1", "a"], ["2", "b\r\n"]])
  })
  it("7e a body not ending with the multi-byte delimiter is fine", () => {
    assert.deepStrictEqual(readCsv("1,\"a\"\r\n2,\"b\"", { ...Q, rd: "\r\n" }), [["1", "a"], ["2", "b"]])
  })
  it("7f body ending right after a column delimiter: the last column reuses the previous column's start", () => {
    assert.deepStrictEqual(readCsv("1,x\n2,", Q), [["1", "x"], ["2", "2,"]])
  })
  it("7i only the first byte of enclose/escape is used", () => {
    const t = strings(2)
    assert.deepStrictEqual(rows(load(t, { column_separator: ",", enclose: "Q|" }, "QaQ,b\n")), [["a", "b"]])
  })
  it("7k the v2 raw row includes the row delimiter", () => {
    assert.deepStrictEqual(readCsvRecords("1,\"a\"\n2\n", Q).map((r) => r.raw), ["1,\"a\"\n", "2\n"])
    const out = load(strings(2), { column_separator: ",", ...Q }, "1,a\n2\n", {})
    assert.strictEqual(out._tag, "Fail")
    assert.isTrue(out.errorLog[0]!.endsWith(". Row: 2\n"))
  })
  it("escape equal to enclose: escape wins everywhere (#50152)", () => {
    const r = readCsv("\"\"\"billy\",x\n", { enclose: "\"", escape: "\"" })
    assert.notDeepEqual(r, [["\"billy", "x"]])
  })
})

describe("CSV NULL and empty values (docs/protocol.md §9.4)", () => {
  const t = strings(2)
  it("\\N unenclosed without escape is NULL", () => {
    assert.deepStrictEqual(rows(load(t, { column_separator: "," }, "1,\\N\n")), [["1", null]])
  })
  it("\"\\N\" enclosed (no escape) is NULL too", () => {
    assert.deepStrictEqual(rows(load(t, { column_separator: ",", ...Q }, "1,\"\\N\"\n")), [["1", null]])
  })
  it("with escape \\: bare \\N is the string N; \\\\N and \"\\\\N\" are NULL", () => {
    const h = { column_separator: ",", ...QE }
    assert.deepStrictEqual(rows(load(t, h, "1,\\N\n")), [["1", "N"]])
    assert.deepStrictEqual(rows(load(t, h, "1,\\\\N\n")), [["1", null]])
    assert.deepStrictEqual(rows(load(t, h, "1,\"\\\\N\"\n")), [["1", null]])
    assert.deepStrictEqual(rows(load(strings(3), h, "\\\\N,\\\\N,\\\\N\n")), [[null, null, null]])
  })
  it("with escape \\: \"\\N\" is the #43613 break, not NULL", () => {
    const out = load(t, { column_separator: ",", ...QE }, "1,\"\\N\"\n")
    // `\N` ends the enclosure, the closing quote swallows the `\n`, and one byte is cut at the end
    assert.deepStrictEqual(rows(out), [["1", "N"]])
  })
  it("strings merely containing \\N load", () => {
    assert.deepStrictEqual(rows(load(t, { column_separator: "," }, "a\\N,\\N \n")), [["a\\N", "\\N "]])
  })
  it("an empty unenclosed field is the empty string, not NULL", () => {
    assert.deepStrictEqual(rows(load(strings(3), { column_separator: "," }, "a,,b\n")), [["a", "", "b"]])
  })
  it("an empty field into INT: NULL without strict_mode, filtered with it", () => {
    const ti = table([{ name: "id", type: "INT" }, { name: "v", type: "INT" }])
    assert.deepStrictEqual(rows(load(ti, { column_separator: "," }, "1,\n")), [[1, null]])
    const out = load(ti, { column_separator: ",", strict_mode: "true" }, "1,\n")
    assert.strictEqual(out._tag, "Fail")
    assert.strictEqual(out.counters.filtered, 1)
  })
})

describe("CSV safe client recipe round-trip (docs/protocol.md §9.8)", () => {
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
    "\0",
    "é€",
    "\t",
    "  spaced  ",
    "||",
    "mixed \"q\" \\ , || \n\t end",
    "\\\"",
    "\"\\",
    null,
    "plain",
    "123"
  ]
  const encode = (v: string | null) => (v === null ? "\\\\N" : "\"" + v.replace(/[\\"]/g, (c) => "\\" + c) + "\"")
  for (const sep of [",", "\t", "||"]) {
    it(`the 25 values round-trip with separator ${JSON.stringify(sep)}`, () => {
      assert.strictEqual(values.length, 25)
      const t = strings(2)
      const body = values.map((v, i) => `${encode(String(i))}${sep}${encode(v)}\n`).join("")
      const sepHeader = sep === "\t" ? "\\x09" : sep
      const out = load(t, { column_separator: sepHeader, enclose: "\"", escape: "\\" }, body)
      assert.deepStrictEqual(rows(out), values.map((v, i) => [String(i), v]))
    })
  }
  it("the exact string \\N cannot travel: it loads as NULL", () => {
    const out = load(strings(1), { column_separator: ",", ...QE }, "\"\\\\N\"\n")
    assert.deepStrictEqual(rows(out), [[null]])
  })
  it("with row_delimiter \\r\\n the last row of a body ending in \\r\\n is corrupted (7e)", () => {
    const out = load(
      strings(2),
      { column_separator: ",", row_delimiter: "\\x0D0A", ...QE },
      "\"1\",\"a\"\r\n\"2\",\"b\"\r\n"
    )
    assert.deepStrictEqual(rows(out), [["1", "a"], ["2", "b\"\r"]])
  })
})
