import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { RowBatch } from "../../src/internal/data/rowBatch.js"
import * as MemoryStorage from "../../src/internal/memoryStorage.js"
import type { Cell } from "../../src/internal/model.js"
import { load, table } from "./helpers.js"

describe("RowBatch (compact rows of a DUPLICATE load)", () => {
  it("gives back every cell exactly, whatever its kind", () => {
    const rows: ReadonlyArray<ReadonlyArray<Cell>> = [
      [1, -0, NaN, 2n ** 63n - 1n, -(2n ** 63n), "plain", true],
      [null, 1.5e300, -Infinity, 2n ** 64n, -(2n ** 63n) - 1n, "žluťoučký 🐎", false],
      [3, 0, 7, 0n, 1n, "\ud800 lone surrogate", null],
      [4, 1, 2, 5n, 6n, "", true],
      [5, 2, 3, 7n, 8n, ["a", 1, null], false]
    ]
    const names = ["a", "b", "c", "d", "e", "f", "g"]
    // capacity 2: the batch grows twice while the rows go in
    const batch = new RowBatch(names, 2)
    for (const r of rows) batch.push(r)
    assert.strictEqual(batch.length, rows.length)
    for (let i = 0; i < rows.length; i++) {
      const expected = Object.fromEntries(names.map((n, k) => [n, rows[i]![k]!]))
      assert.deepStrictEqual(batch.row(i), expected)
      assert.isTrue(Object.is(batch.row(i)["b"], rows[i]![1]))
    }
    assert.deepStrictEqual(batch.toOps().map((o) => o.op), rows.map(() => "upsert"))
  })

  it.effect("a load's batch is what the memory storage reads back, after rows given as plain changes", () =>
    Effect.gen(function*() {
      const def = table([{ name: "k", type: "BIGINT" }, { name: "v", type: "VARCHAR(16)" }, {
        name: "d",
        type: "DOUBLE"
      }])
      const out = load(def, { format: "csv", column_separator: "," }, "1,héllo,-0\n2,\\N,2.5\n")
      assert.strictEqual(out._tag, "Ok")
      if (out._tag !== "Ok") return
      assert.instanceOf(out.changes, RowBatch)
      const storage = MemoryStorage.make()
      yield* storage.createTable(def)
      yield* storage.applyOps(def.database, def.table, [{ op: "upsert", values: { k: 0n }, columns: ["k"] }])
      yield* storage.applyOps(def.database, def.table, out.changes)
      const rows = yield* storage.readRows(def.database, def.table)
      assert.deepStrictEqual(rows, [{ k: 0n, v: null, d: null }, { k: 1n, v: "héllo", d: -0 }, {
        k: 2n,
        v: null,
        d: 2.5
      }])
      assert.deepStrictEqual(out.ops.map((o) => o.values), rows.slice(1))
    }))
})
