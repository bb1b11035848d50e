import { assert, describe, it } from "@effect/vitest"
import { load, rows, table } from "./helpers.js"

const t = table([{ name: "id", type: "BIGINT" }, { name: "name", type: "VARCHAR(32)" }])
const J = { format: "json" }

describe("JSON body start (case 25)", () => {
  it("a body whose first non-space byte is not { or [ fails: illegal json started with <c>", () => {
    const out = load(t, J, "x")
    assert.strictEqual(out._tag, "Fail")
    assert.include(out._tag === "Fail" ? out.message : "", "illegal json started with x")
  })
  it("leading whitespace is allowed", () => {
    assert.deepStrictEqual(rows(load(t, J, "  \n {\"id\":1}")), [[1n, null]])
  })
})

describe("JSON document streams", () => {
  it("concatenated documents {..}{..} are rows (case 25)", () => {
    assert.deepStrictEqual(rows(load(t, J, "{\"id\":1}{\"id\":2}")), [[1n, null], [2n, null]])
  })
  it("NDJSON is rows", () => {
    assert.deepStrictEqual(rows(load(t, J, "{\"id\":1,\"name\":\"a\"}\n{\"id\":2,\"name\":\"b\"}\n")), [[1n, "a"], [
      2n,
      "b"
    ]])
  })
  it("strip_outer_array: the body is one array, each element a row (case 25)", () => {
    const out = load(t, { ...J, strip_outer_array: "true" }, "[{\"id\":1},{\"id\":2}]")
    assert.deepStrictEqual(rows(out), [[1n, null], [2n, null]])
  })
  it("a top-level array without strip_outer_array is a rejected document", () => {
    const out = load(t, J, "[{\"id\":1},{\"id\":2}]", {})
    assert.strictEqual(out._tag, "Fail")
    assert.strictEqual(out.counters.filtered, 1)
  })
  it("a syntax error mid-body: one filtered row and the rest of that body is not read", () => {
    const out = load(t, { ...J, max_filter_ratio: "1" }, "{\"id\":1}\n{\"id\":2,,}\n{\"id\":3}\n")
    assert.deepStrictEqual(rows(out), [[1n, null]])
    assert.strictEqual(out.counters.total, 2)
    assert.strictEqual(out.counters.filtered, 1)
    assert.include(out.errorLog[0]!, "parser current location")
  })
  it("a syntax error fails the load with max_filter_ratio 0", () => {
    const out = load(t, J, "{\"id\":1}{bad")
    assert.strictEqual(out._tag, "Fail")
    assert.strictEqual(out._tag === "Fail" && out.message, "too many filtered rows")
  })
  it("a non-object element of the outer array is a filtered row, reading goes on", () => {
    const out = load(t, { ...J, strip_outer_array: "true", max_filter_ratio: "1" }, "[{\"id\":1}, 5, {\"id\":3}]")
    assert.deepStrictEqual(rows(out), [[1n, null], [3n, null]])
    assert.strictEqual(out.counters.filtered, 1)
  })
  it("transaction loads: each JSON body is its own document stream", () => {
    const out = load(t, J, ["{\"id\":1}", "{\"id\":2}"])
    assert.deepStrictEqual(rows(out), [[1n, null], [2n, null]])
    assert.strictEqual(out.counters.bytes, 16)
  })
})

describe("JSON keys", () => {
  it("missing keys → NULL (case 26)", () => {
    assert.deepStrictEqual(rows(load(t, J, "{\"id\":1}")), [[1n, null]])
  })
  it("unknown keys are ignored", () => {
    assert.deepStrictEqual(rows(load(t, J, "{\"id\":1,\"zzz\":[1],\"name\":\"n\"}")), [[1n, "n"]])
  })
  it("the key match is exact and case-sensitive", () => {
    assert.deepStrictEqual(rows(load(t, J, "{\"id\":1,\"NAME\":\"n\"}")), [[1n, null]])
  })
  it("nested objects into VARCHAR are stored as minified JSON text", () => {
    assert.deepStrictEqual(rows(load(t, J, "{\"id\":1,\"name\":{\"a\": 1}}")), [[1n, "{\"a\":1}"]])
  })
  it("JSON null is NULL; NULL in the key column is filtered", () => {
    const out = load(t, { ...J, max_filter_ratio: "1" }, "{\"id\":null}{\"id\":2,\"name\":null}")
    assert.deepStrictEqual(rows(out), [[2n, null]])
    assert.strictEqual(out.counters.filtered, 1)
  })
})

describe("JSON json_root and jsonpaths", () => {
  it("json_root extracts the root of each document", () => {
    const out = load(t, { ...J, json_root: "$.data" }, "{\"data\":{\"id\":7,\"name\":\"x\"}}")
    assert.deepStrictEqual(rows(out), [[7n, "x"]])
  })
  it("json_root + strip_outer_array expands an array under the root", () => {
    const out = load(t, { ...J, json_root: "$.data", strip_outer_array: "true" }, "{\"data\":[{\"id\":1},{\"id\":2}]}")
    assert.deepStrictEqual(rows(out), [[1n, null], [2n, null]])
  })
  it("jsonpaths map positionally to the columns header", () => {
    const out = load(
      t,
      { ...J, jsonpaths: "[\"$.a.b\", \"$.c\"]", columns: "id, name" },
      "{\"a\":{\"b\":5},\"c\":\"z\"}"
    )
    assert.deepStrictEqual(rows(out), [[5n, "z"]])
  })
  it("jsonpaths without columns map to the table columns; a path not found → NULL", () => {
    const out = load(t, { ...J, jsonpaths: "[\"$.k\", \"$.missing\"]" }, "{\"k\":3}")
    assert.deepStrictEqual(rows(out), [[3n, null]])
  })
  it("jsonpaths with array indexes", () => {
    const out = load(t, { ...J, jsonpaths: "[\"$.a[1]\", \"$['n']\"]" }, "{\"a\":[1,2],\"n\":\"q\"}")
    assert.deepStrictEqual(rows(out), [[2n, "q"]])
  })
  it("invalid jsonpaths fail at the header phase", () => {
    const out = load(t, { ...J, jsonpaths: "not json" }, "{}")
    assert.strictEqual(out._tag, "Fail")
  })
})

describe("JSON __op on PRIMARY tables", () => {
  const pk = table([{ name: "id", type: "BIGINT" }, { name: "name", type: "VARCHAR(32)" }], "PRIMARY")
  it("an __op key is projected automatically: 1 = delete, 0/missing = upsert", () => {
    const out = load(pk, J, "{\"id\":1,\"name\":\"a\"}{\"id\":2,\"__op\":1}{\"id\":3,\"__op\":0}")
    assert.strictEqual(out._tag, "Ok")
    assert.deepStrictEqual(out._tag === "Ok" ? out.ops.map((o) => o.op) : [], ["upsert", "delete", "upsert"])
  })
  it("__op as the string 'delete' deletes", () => {
    const out = load(pk, J, "{\"id\":2,\"__op\":\"delete\"}")
    assert.deepStrictEqual(out._tag === "Ok" ? out.ops.map((o) => o.op) : [], ["delete"])
  })
})
