import { assert, describe, it } from "@effect/vitest"
import { validateHeaders } from "../../src/internal/data/pipeline.js"
import { load, rows, table } from "./helpers.js"

const t = table([
  { name: "id", type: "INT" },
  { name: "name", type: "VARCHAR(8)" },
  { name: "score", type: "DOUBLE" }
])
const C = { column_separator: "," }

describe("columns header", () => {
  it("reorders source fields to table columns by name", () => {
    assert.deepStrictEqual(rows(load(t, { ...C, columns: "name, score, id" }, "a,1.5,7\n")), [[7, "a", 1.5]])
  })
  it("table columns not named are NULL", () => {
    assert.deepStrictEqual(rows(load(t, { ...C, columns: "id, name" }, "1,a\n")), [[1, "a", null]])
  })
  it("tmp names consume a field and are otherwise ignored", () => {
    assert.deepStrictEqual(rows(load(t, { ...C, columns: "id, tmp, name" }, "1,zzz,a\n")), [[1, "a", null]])
  })
  it("the field count is checked against the columns header", () => {
    const out = load(t, { ...C, columns: "id, tmp, name" }, "1,a\n")
    assert.strictEqual(out.counters.filtered, 1)
    assert.include(out.errorLog[0]!, "Target column count: 3 doesn't match source value column count: 2")
  })
  it("col = source reference", () => {
    assert.deepStrictEqual(rows(load(t, { ...C, columns: "id, x, name = x" }, "1,abc\n")), [[1, "abc", null]])
  })
  it("col = literal", () => {
    assert.deepStrictEqual(rows(load(t, { ...C, columns: "id, name, score = 2.5" }, "1,a\n")), [[1, "a", 2.5]])
    assert.deepStrictEqual(rows(load(t, { ...C, columns: "id, score, name = 'lit'" }, "1,3\n")), [[1, "lit", 3]])
  })
  it("simple expressions: arithmetic and concat", () => {
    const out = load(t, { ...C, columns: "a, b, id = a + 1, name = concat(b, '!'), score = a * 2" }, "4,x\n")
    assert.deepStrictEqual(rows(out), [[5, "x!", 8]])
  })
  it("an expression result too long for VARCHAR(n) is filtered by the sink whatever strict_mode", () => {
    const out = load(t, { ...C, columns: "id, x, name = x", max_filter_ratio: "1" }, "1,123456789\n")
    assert.strictEqual(out.counters.filtered, 1)
    assert.include(out.errorLog[0]!, "too long")
  })
  it("a direct VARCHAR(n) source too long is NULL without strict_mode", () => {
    assert.deepStrictEqual(rows(load(t, { ...C, columns: "id, name" }, "1,123456789\n")), [[1, null, null]])
  })
  it("an unknown target column in col = expr fails the header phase", () => {
    assert.isDefined(validateHeaders(t, { columns: "id, nope = id" }))
  })
  it("an expression referring to an unknown source column fails the header phase", () => {
    assert.isDefined(validateHeaders(t, { columns: "id, name = zz" }))
  })
  it("a syntax error fails the header phase", () => {
    assert.isDefined(validateHeaders(t, { columns: "id, name = (" }))
  })
  it("backquoted names", () => {
    assert.deepStrictEqual(rows(load(t, { ...C, columns: "`id`, `name`" }, "1,a\n")), [[1, "a", null]])
  })
})

describe("where header (case 22)", () => {
  it("where id > 1 keeps 1 row, the other is unselected", () => {
    const out = load(t, { ...C, columns: "id, name", where: "id > 1" }, "1,a\n2,b\n")
    assert.deepStrictEqual(rows(out), [[2, "b", null]])
    assert.deepStrictEqual(out.counters, { total: 2, loaded: 1, filtered: 0, unselected: 1, bytes: 8 })
  })
  const cases: ReadonlyArray<[string, ReadonlyArray<number>]> = [
    ["id = 2", [2]],
    ["id != 2", [1, 3]],
    ["id <> 2", [1, 3]],
    ["id < 2", [1]],
    ["id <= 2", [1, 2]],
    ["id >= 2", [2, 3]],
    ["id > 1 and name = 'c'", [3]],
    ["id = 1 or name = 'c'", [1, 3]],
    ["(id = 1 or id = 2) and not name = 'a'", [2]],
    ["score is null", [1]],
    ["score is not null", [2, 3]],
    ["id in (1, 3)", [1, 3]],
    ["name >= 'b'", [2, 3]]
  ]
  for (const [w, ids] of cases) {
    it(`where ${w}`, () => {
      const out = load(t, { ...C, where: w }, "1,a,\\N\n2,b,2\n3,c,3\n")
      assert.deepStrictEqual(rows(out).map((r) => r[0]), [...ids])
      assert.strictEqual(out.counters.unselected, 3 - ids.length)
    })
  }
  it("a comparison with NULL drops the row", () => {
    const out = load(t, { ...C, where: "score > 0", max_filter_ratio: "0" }, "1,a,\\N\n2,b,1\n")
    assert.deepStrictEqual(rows(out).map((r) => r[0]), [2])
  })
  it("where may use a tmp source column", () => {
    const out = load(t, { ...C, columns: "id, flag, name", where: "flag = 'y'" }, "1,y,a\n2,n,b\n")
    assert.deepStrictEqual(rows(out).map((r) => r[0]), [1])
  })
  it("all rows unselected → empty load", () => {
    const out = load(t, { ...C, where: "id > 10" }, "1,a,1\n")
    assert.strictEqual(out._tag, "Fail")
    assert.strictEqual(out.counters.unselected, 1)
  })
  it("unknown columns in where fail the header phase", () => {
    assert.isDefined(validateHeaders(t, { where: "nope = 1" }))
  })
})

describe("__op and partial_update (docs/protocol.md §6.4, §6.5)", () => {
  const pk = table([
    { name: "id", type: "INT" },
    { name: "name", type: "VARCHAR(8)" },
    { name: "score", type: "DOUBLE" }
  ], "PRIMARY")
  const ops = (out: ReturnType<typeof load>) => (out._tag === "Ok" ? out.ops : [])
  it("columns: __op='delete' deletes every row", () => {
    const out = load(pk, { ...C, columns: "id, name, score, __op='delete'" }, "1,a,1\n2,b,2\n")
    assert.deepStrictEqual(ops(out).map((o) => o.op), ["delete", "delete"])
    assert.deepStrictEqual(ops(out)[0]!.values, { id: 1, name: "a", score: 1 })
  })
  it("columns: __op='upsert' upserts", () => {
    const out = load(pk, { ...C, columns: "id, name, score, __op='upsert'" }, "1,a,1\n")
    assert.deepStrictEqual(ops(out).map((o) => o.op), ["upsert"])
  })
  it("mixed CSV: columns id,name,score,tmp,__op=tmp", () => {
    const out = load(pk, { ...C, columns: "id,name,score,tmp,__op=tmp" }, "1,a,1,0\n2,b,2,1\n")
    assert.deepStrictEqual(ops(out).map((o) => o.op), ["upsert", "delete"])
  })
  it("__op as a plain source column", () => {
    const out = load(pk, { ...C, columns: "id,__op" }, "1,1\n2,0\n")
    assert.deepStrictEqual(ops(out).map((o) => o.op), ["delete", "upsert"])
  })
  it("__op = 0 / 1 literals", () => {
    assert.deepStrictEqual(ops(load(pk, { ...C, columns: "id, __op = 1" }, "1\n")).map((o) => o.op), ["delete"])
    assert.deepStrictEqual(ops(load(pk, { ...C, columns: "id, __op = 0" }, "1\n")).map((o) => o.op), ["upsert"])
  })
  it("a delete only needs the key", () => {
    const out = load(pk, { ...C, columns: "id, __op='delete'" }, "5\n")
    assert.deepStrictEqual(ops(out), [{ op: "delete", values: { id: 5, name: null, score: null } }])
  })
  it("partial_update: upsert ops list only the supplied columns", () => {
    const out = load(pk, { ...C, columns: "id, score", partial_update: "true" }, "1,9\n")
    assert.deepStrictEqual(ops(out), [{
      op: "upsert",
      values: { id: 1, name: null, score: 9 },
      columns: ["id", "score"]
    }])
  })
  it("without partial_update, upsert ops list every column", () => {
    const out = load(pk, { ...C, columns: "id, score" }, "1,9\n")
    assert.deepStrictEqual(ops(out)[0]!, {
      op: "upsert",
      values: { id: 1, name: null, score: 9 },
      columns: [
        "id",
        "name",
        "score"
      ]
    })
  })
  it("partial_update on a DUPLICATE table fails", () => {
    assert.strictEqual(
      validateHeaders(table([{ name: "id", type: "INT" }]), { partial_update: "true" }),
      "Only primary key table support partial update"
    )
  })
  it("DUPLICATE tables append every row, __op is ignored", () => {
    const dup = table([{ name: "id", type: "INT" }])
    const out = load(dup, { ...C, columns: "id, __op='delete'" }, "1\n")
    assert.deepStrictEqual(ops(out).map((o) => o.op), ["upsert"])
  })
})
