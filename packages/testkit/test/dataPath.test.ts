/**
 * The Primary Key data path the sink relies on, through the HTTP servers, on the memory and the MySQL storage alike:
 * condition update (`merge_condition`), partial updates in row and column mode with `__op`, and several tables with
 * a transaction each open at once. Facts: docs/protocol.md §3.6, §6.4–§6.6.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { StarRocksEmulator } from "../src/index.js"
import { streamLoad, txn } from "./utils.js"
import * as Maria from "./utils/mariadb.js"

const targets = await Maria.targets("srt_dp")

const tables = (db: string): ReadonlyArray<StarRocksEmulator.TableDef> => [
  {
    database: db,
    table: "v",
    model: "PRIMARY",
    key: ["id"],
    columns: [
      { name: "id", type: "BIGINT" },
      { name: "name", type: "VARCHAR(32)", nullable: true },
      { name: "version", type: "INT", nullable: true },
      { name: "score", type: "DECIMAL(10,2)", nullable: true }
    ]
  },
  {
    database: db,
    table: "p",
    model: "PRIMARY",
    key: ["id"],
    columns: [
      { name: "id", type: "BIGINT" },
      { name: "a", type: "VARCHAR(32)", nullable: true },
      { name: "b", type: "INT", nullable: true },
      { name: "c", type: "INT", nullable: false, default: "7" }
    ]
  },
  {
    database: db,
    table: "dup",
    model: "DUPLICATE",
    key: ["id"],
    columns: [{ name: "id", type: "BIGINT" }, { name: "version", type: "INT", nullable: true }]
  }
]

const csv = { column_separator: "," }
const rowsOf = (em: StarRocksEmulator.StarRocksEmulator, db: string, table: string) =>
  Effect.map(em.rows(db, table), (rows) => rows.map((r): Record<string, unknown> => ({ ...r, id: String(r["id"]) })))

for (const [name, open] of targets) {
  const start = Effect.gen(function*() {
    const t = yield* open
    const em = yield* StarRocksEmulator.make({
      tables: tables(t.db),
      admin: false,
      cleanerIntervalMs: 60_000,
      ...(t.storage !== undefined ? { storage: t.storage } : {})
    })
    return { em, db: t.db, fe: em.fe[0]! }
  })

  describe(`condition update (merge_condition), ${name} storage`, () => {
    it.scopedLive("an upsert replaces the stored row only when its condition value is >= the stored one", () =>
      Effect.gen(function*() {
        const { db, em, fe } = yield* start
        const load = (body: string, label: string) =>
          streamLoad(fe, db, "v", body, { ...csv, label, merge_condition: "version" })
        assert.strictEqual((yield* load("1,a,5,1.50\n2,b,5,2.00\n3,c,\\N,3.00\n", "m1")).json.Status, "Success")
        // older (4 < 5): kept; equal (5): replaced; stored NULL: replaced by anything; new NULL: never replaces
        const second = yield* load("1,old,4,9.99\n2,same,5,2.50\n3,fromnull,1,3.50\n", "m2")
        assert.strictEqual(second.json.Status, "Success")
        assert.strictEqual(second.json.NumberLoadedRows, 3)
        const third = yield* load("2,nullver,\\N,0.00\n", "m3")
        assert.strictEqual(third.json.Status, "Success")
        assert.deepStrictEqual(yield* rowsOf(em, db, "v"), [
          { id: "1", name: "a", version: 5, score: "1.50" },
          { id: "2", name: "same", version: 5, score: "2.50" },
          { id: "3", name: "fromnull", version: 1, score: "3.50" }
        ])
      }))

    it.scopedLive("rows of one load are compared in load order; a new key is inserted; DECIMAL compares as a number", () =>
      Effect.gen(function*() {
        const { db, em, fe } = yield* start
        const load = (body: string, label: string) =>
          streamLoad(fe, db, "v", body, { ...csv, label, merge_condition: "score" })
        yield* load("1,a,1,9.50\n", "s1")
        // 10.00 > 9.50 numerically (not as text); then 2.00 < 10.00 in the same load: not applied
        const res = yield* load("1,b,2,10.00\n1,c,3,2.00\n4,new,1,0.00\n", "s2")
        assert.strictEqual(res.json.Status, "Success")
        assert.deepStrictEqual(yield* rowsOf(em, db, "v"), [
          { id: "1", name: "b", version: 2, score: "10.00" },
          { id: "4", name: "new", version: 1, score: "0.00" }
        ])
      }))

    it.scopedLive("a key column, an unknown column, a VARCHAR column or a non-PK table fails the load", () =>
      Effect.gen(function*() {
        const { db, em, fe } = yield* start
        const key = yield* streamLoad(fe, db, "v", "1,a,1,1\n", { ...csv, label: "k1", merge_condition: "id" })
        assert.strictEqual(key.json.Status, "Fail")
        assert.strictEqual(key.json.Message, "Merge condition column id should not be primary key!")
        const unknown = yield* streamLoad(fe, db, "v", "1,a,1,1\n", { ...csv, label: "k2", merge_condition: "v6" })
        assert.strictEqual(unknown.json.Status, "Fail")
        assert.strictEqual(
          unknown.json.Message,
          "Merge condition column v6 does not exist. If you are doing partial update with condition update, please " +
            "check condition column is in the given update columns. Otherwise please check condition column is in " +
            "table v"
        )
        const varchar = yield* streamLoad(fe, db, "v", "1,a,1,1\n", { ...csv, label: "k3", merge_condition: "name" })
        assert.strictEqual(
          varchar.json.Message,
          "Merge condition column has invalid type maybe bitmap/hll/percentile/json/varchar!"
        )
        const dup = yield* streamLoad(fe, db, "dup", "1,1\n", { ...csv, label: "k4", merge_condition: "version" })
        assert.strictEqual(dup.json.Message, "Conditional update only support primary key table dup")
        assert.deepStrictEqual(yield* em.rows(db, "v"), [])
        // the failed loads' labels are free again
        assert.strictEqual(yield* em.loadState(db, "k1"), "ABORTED")
      }))

    it.scopedLive("a delete in a condition update fails the load", () =>
      Effect.gen(function*() {
        const { db, em, fe } = yield* start
        yield* streamLoad(fe, db, "v", "1,a,1,1\n", { ...csv, label: "d0" })
        const res = yield* streamLoad(fe, db, "v", "1,a,2,1,1\n", {
          ...csv,
          label: "d1",
          merge_condition: "version",
          columns: "id,name,version,score,__op"
        })
        assert.strictEqual(res.json.Status, "Fail")
        assert.strictEqual(res.json.Message, "memtable of tablet 10086 delete with condition column version")
        assert.strictEqual((yield* em.rows(db, "v")).length, 1)
      }))

    it.scopedLive("transaction/load: the condition applies at commit; a key column fails the load and the txn", () =>
      Effect.gen(function*() {
        const { db, em, fe } = yield* start
        yield* streamLoad(fe, db, "v", "1,a,5,1\n", { ...csv, label: "t0" })
        const h = { db, table: "v", label: "t1" }
        assert.strictEqual((yield* txn(fe, "begin", h)).json.Status, "OK")
        const load = yield* txn(fe, "load", { ...h, ...csv, merge_condition: "version" }, "1,older,4,1\n2,new,1,1\n")
        assert.strictEqual(load.json.Status, "OK")
        assert.strictEqual((yield* txn(fe, "commit", h)).json.Status, "OK")
        assert.deepStrictEqual((yield* rowsOf(em, db, "v")).map((r) => [r.id, r["name"]]), [["1", "a"], ["2", "new"]])

        const bad = { db, table: "v", label: "t2" }
        yield* txn(fe, "begin", bad)
        const refused = yield* txn(fe, "load", { ...bad, ...csv, merge_condition: "id" }, "1,x,9,1\n")
        assert.deepStrictEqual(refused.json, {
          Status: "ANALYSIS_ERROR",
          Message: "Merge condition column id should not be primary key!"
        })
        assert.strictEqual(yield* em.loadState(db, "t2"), "ABORTED")
      }))
  })

  describe(`partial updates and __op, ${name} storage`, () => {
    for (const mode of ["row", "column"] as const) {
      it.scopedLive(`partial_update_mode=${mode}: only the supplied columns change; a new key gets defaults`, () =>
        Effect.gen(function*() {
          const { db, em, fe } = yield* start
          yield* streamLoad(fe, db, "p", "1,x,10,1\n2,y,20,2\n", { ...csv, label: "base" })
          const res = yield* streamLoad(fe, db, "p", "1,X\n3,Z\n", {
            ...csv,
            label: `pu_${mode}`,
            partial_update: "true",
            partial_update_mode: mode,
            columns: "id,a"
          })
          assert.strictEqual(res.json.Status, "Success")
          // row 1: only a changed; row 3 (new): b NULL (nullable), c its default 7
          assert.deepStrictEqual(yield* rowsOf(em, db, "p"), [
            { id: "1", a: "X", b: 10, c: 1 },
            { id: "2", a: "y", b: 20, c: 2 },
            { id: "3", a: "Z", b: null, c: 7 }
          ])
        }))
    }

    it.scopedLive("__op deletes and upserts together with a partial update, in CSV and in JSON", () =>
      Effect.gen(function*() {
        const { db, em, fe } = yield* start
        yield* streamLoad(fe, db, "p", "1,x,10,1\n2,y,20,2\n3,z,30,3\n", { ...csv, label: "base" })
        const csvLoad = yield* streamLoad(fe, db, "p", "1,11,0\n2,0,1\n4,44,0\n", {
          ...csv,
          label: "op_csv",
          partial_update: "true",
          columns: "id,b,__op"
        })
        assert.strictEqual(csvLoad.json.Status, "Success")
        assert.deepStrictEqual(yield* rowsOf(em, db, "p"), [
          { id: "1", a: "x", b: 11, c: 1 },
          { id: "3", a: "z", b: 30, c: 3 },
          { id: "4", a: null, b: 44, c: 7 }
        ])
        // JSON: `__op` is read from each object although `columns` does not name it
        const jsonLoad = yield* streamLoad(
          fe,
          db,
          "p",
          "{\"id\":3,\"a\":\"zz\"}\n{\"id\":1,\"__op\":1}\n{\"id\":4,\"a\":\"w\",\"__op\":0}",
          { format: "json", label: "op_json", partial_update: "true", partial_update_mode: "column", columns: "id,a" }
        )
        assert.strictEqual(jsonLoad.json.Status, "Success")
        assert.deepStrictEqual(yield* rowsOf(em, db, "p"), [
          { id: "3", a: "zz", b: 30, c: 3 },
          { id: "4", a: "w", b: 44, c: 7 }
        ])
      }))

    it.scopedLive("a condition update with a partial update: the condition column must be supplied", () =>
      Effect.gen(function*() {
        const { db, em, fe } = yield* start
        yield* streamLoad(fe, db, "v", "1,a,5,1\n2,b,5,2\n", { ...csv, label: "base" })
        const missing = yield* streamLoad(fe, db, "v", "1,x\n", {
          ...csv,
          label: "pc1",
          partial_update: "true",
          columns: "id,name",
          merge_condition: "version"
        })
        assert.strictEqual(missing.json.Status, "Fail")
        assert.match(missing.json.Message, /^Merge condition column version does not exist\./)
        const ok = yield* streamLoad(fe, db, "v", "1,x,4\n2,y,6\n", {
          ...csv,
          label: "pc2",
          partial_update: "true",
          columns: "id,name,version",
          merge_condition: "version"
        })
        assert.strictEqual(ok.json.Status, "Success")
        assert.deepStrictEqual(yield* rowsOf(em, db, "v"), [
          { id: "1", name: "a", version: 5, score: "1.00" },
          { id: "2", name: "y", version: 6, score: "2.00" }
        ])
      }))
  })

  describe(`several tables, a transaction each, ${name} storage`, () => {
    it.scopedLive("open at once, prepared and committed (or rolled back) independently", () =>
      Effect.gen(function*() {
        const { db, em, fe } = yield* start
        const hv = { db, table: "v", label: "cp-7-v" }
        const hp = { db, table: "p", label: "cp-7-p" }
        const hd = { db, table: "dup", label: "cp-7-dup" }
        for (const h of [hv, hp, hd]) assert.strictEqual((yield* txn(fe, "begin", h)).json.Status, "OK")
        assert.strictEqual((yield* txn(fe, "load", { ...hv, ...csv }, "1,a,1,1\n")).json.Status, "OK")
        assert.strictEqual((yield* txn(fe, "load", { ...hp, ...csv }, "1,x,1,1\n")).json.Status, "OK")
        assert.strictEqual((yield* txn(fe, "load", { ...hd, ...csv }, "1,1\n")).json.Status, "OK")
        // a load with another table's name on a label is refused by the BE
        const wrong = yield* txn(fe, "load", { ...hv, table: "p", ...csv }, "2,b,2,2\n")
        assert.strictEqual(wrong.json.Status, "INVALID_ARGUMENT")
        assert.strictEqual((yield* txn(fe, "prepare", hp)).json.Status, "OK")
        assert.strictEqual((yield* txn(fe, "prepare", hv)).json.Status, "OK")
        assert.strictEqual(yield* em.loadState(db, "cp-7-v"), "PREPARED")
        assert.strictEqual(yield* em.loadState(db, "cp-7-dup"), "PREPARE")
        assert.deepStrictEqual(yield* em.rows(db, "v"), [])
        assert.strictEqual((yield* txn(fe, "commit", hv)).json.Status, "OK")
        assert.strictEqual((yield* rowsOf(em, db, "v")).length, 1)
        assert.deepStrictEqual(yield* em.rows(db, "p"), [], "p is still only prepared")
        assert.strictEqual((yield* txn(fe, "rollback", hd)).json.Status, "OK")
        assert.strictEqual((yield* txn(fe, "commit", hp)).json.Status, "OK")
        assert.strictEqual((yield* rowsOf(em, db, "p")).length, 1)
        assert.deepStrictEqual(yield* em.rows(db, "dup"), [])
        const states = (yield* em.transactions(db)).map((t) => [t.table, t.status])
        assert.deepStrictEqual(states, [["v", "VISIBLE"], ["p", "VISIBLE"], ["dup", "ABORTED"]])
      }))
  })
}
