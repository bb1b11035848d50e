import { assert, describe, it } from "@effect/vitest"
import { runLoad } from "../src/internal/data/pipeline.js"

describe("data path (stub)", () => {
  it("splits a CSV body", () => {
    const table = {
      database: "d",
      table: "t",
      model: "DUPLICATE" as const,
      key: ["id"],
      columns: [{ name: "id", type: "INT" }]
    }
    const out = runLoad(table, { column_separator: "," }, [Buffer.from("1\n2\n")], {
      emptyLoadAsError: true,
      emptyLoadMessage: "new"
    })
    assert.strictEqual(out._tag, "Ok")
    assert.strictEqual(out.counters.total, 2)
  })
})
