import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as TablesFile from "../src/TablesFile.js"

const good = {
  users: { root: "", loader: "pw" },
  tables: [{
    database: "db",
    table: "t",
    model: "PRIMARY",
    key: ["id"],
    columns: [
      { name: "id", type: "BIGINT" },
      { name: "note", type: "VARCHAR(64)", nullable: true },
      { name: "tags", type: "ARRAY<DECIMAL(10,2)>" }
    ]
  }, {
    database: "db",
    table: "d",
    model: "DUPLICATE",
    columns: [{ name: "x", type: "largeint" }]
  }]
}

const fieldOf = (json: unknown) => Effect.map(Effect.flip(TablesFile.decode(json)), (e) => e.field)

describe("TablesFile", () => {
  it.effect("decodes the documented shape (key defaults to [])", () =>
    Effect.gen(function*() {
      const file = yield* TablesFile.decode(good)
      assert.deepStrictEqual(file.users, { root: "", loader: "pw" })
      assert.strictEqual(file.tables?.length, 2)
      assert.deepStrictEqual(file.tables?.[1]?.key, [])
      assert.deepStrictEqual(yield* TablesFile.decode({}), {})
    }))

  it.effect("names the bad field", () =>
    Effect.gen(function*() {
      const table = good.tables[0]!
      assert.strictEqual(yield* fieldOf({ tables: [{ ...table, model: "AGGREGATE" }] }), "tables[0].model")
      assert.strictEqual(yield* fieldOf({ tables: [table, { ...table, database: "" }] }), "tables[1].database")
      assert.strictEqual(
        yield* fieldOf({ tables: [{ ...table, columns: [{ name: "id", type: "BIGINTEGER" }] }] }),
        "tables[0].columns[0].type"
      )
      assert.strictEqual(yield* fieldOf({ tables: [{ ...table, key: ["nope"] }] }), "tables[0].key[0]")
      assert.strictEqual(yield* fieldOf({ tables: [{ ...table, key: [] }] }), "tables[0].key")
      assert.strictEqual(yield* fieldOf({ tables: [{ ...table, columns: [] }] }), "tables[0].columns[0]")
      assert.strictEqual(yield* fieldOf({ users: { root: 1 } }), "users.root")
      assert.strictEqual(yield* fieldOf({ table: [] }), "table")
      const error = yield* Effect.flip(TablesFile.decode({ tables: [{ ...table, model: "AGG" }] }))
      assert.strictEqual(error._tag, "TablesFileError")
      assert.include(error.message, "tables[0].model: expected \"DUPLICATE\" or \"PRIMARY\", got \"AGG\"")
    }))

  it.effect("TLS fields: tlsCert, tlsKey (paths) and beTls", () =>
    Effect.gen(function*() {
      const file = yield* TablesFile.decode({ tlsCert: "certs/server.pem", tlsKey: "certs/server.key", beTls: false })
      assert.deepStrictEqual(file, { tlsCert: "certs/server.pem", tlsKey: "certs/server.key", beTls: false })
      assert.strictEqual(yield* fieldOf({ tlsCert: "" }), "tlsCert")
      assert.strictEqual(yield* fieldOf({ beTls: "no" }), "beTls")
    }))

  it("knows the supported column types", () => {
    for (const t of ["BOOLEAN", "tinyint", "INT(11)", "DECIMAL(38,9)", "DECIMAL64(18, 4)", "CHAR(3)", "STRING"]) {
      assert.isTrue(TablesFile.isSupportedType(t), t)
    }
    for (const t of ["ARRAY<ARRAY<VARCHAR(8)>>", "JSON", "DATETIME", "DATE", "LARGEINT", "FLOAT", "DOUBLE"]) {
      assert.isTrue(TablesFile.isSupportedType(t), t)
    }
    for (const t of ["MAP<INT,INT>", "HLL", "DECIMAL(39,2)", "VARCHAR(x)", "ARRAY<NOPE>", ""]) {
      assert.isFalse(TablesFile.isSupportedType(t), t)
    }
  })

  it.live("reads a file", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "sr-tables-")))
      const ok = path.join(dir, "ok.json")
      const notJson = path.join(dir, "bad.json")
      yield* Effect.promise(() => fs.writeFile(ok, JSON.stringify(good)))
      yield* Effect.promise(() => fs.writeFile(notJson, "{"))
      const file = yield* TablesFile.readFile(ok)
      assert.strictEqual(file.tables?.[0]?.table, "t")
      const bad = yield* Effect.flip(TablesFile.readFile(notJson))
      assert.include(bad.message, "is not JSON")
      const missing = yield* Effect.flip(TablesFile.readFile(path.join(dir, "missing.json")))
      assert.include(missing.message, "cannot read")
      yield* Effect.promise(() => fs.rm(dir, { recursive: true }))
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
