/**
 * The same storage contract, run against the memory storage and the MySQL storage (PersistedQueue.test.ts
 * pattern): both must give the emulator the same answers.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as MemoryStorage from "../src/internal/memoryStorage.js"
import type { RowOp, TableDef, TxnRecord } from "../src/internal/model.js"
import type { Storage } from "../src/internal/storage.js"
import * as MysqlStorage from "../src/MysqlStorage.js"
import * as Maria from "./utils/mariadb.js"

const mariaUp = Maria.isCI || (await Maria.reachable())

interface Target {
  readonly database: string
  readonly storage: Storage
}

const targets: ReadonlyArray<readonly [string, Effect.Effect<Target, unknown, Scope.Scope>]> = [
  ["memory", Effect.sync(() => ({ database: "db", storage: MemoryStorage.make() }))],
  ...(mariaUp
    ? [
      [
        "mysql",
        Effect.gen(function*() {
          const { database, url } = yield* Maria.freshDatabase("srt_parity")
          return { database, storage: yield* MysqlStorage.make(url) }
        })
      ] as const
    ]
    : [])
]

const upsert = (values: Record<string, unknown>, columns?: ReadonlyArray<string>): RowOp => ({
  op: "upsert",
  values: values as RowOp["values"],
  columns: columns ?? Object.keys(values)
})
const del = (values: Record<string, unknown>): RowOp => ({ op: "delete", values: values as RowOp["values"] })

const pk = (database: string): TableDef => ({
  database,
  table: "pk",
  model: "PRIMARY",
  key: ["id"],
  columns: [
    { name: "id", type: "BIGINT" },
    { name: "name", type: "VARCHAR(16)" },
    { name: "score", type: "DECIMAL(6,2)" },
    { name: "ok", type: "BOOLEAN" },
    { name: "at", type: "DATETIME" },
    { name: "tags", type: "ARRAY<VARCHAR(8)>" }
  ]
})

const dup = (database: string): TableDef => ({
  database,
  table: "dup",
  model: "DUPLICATE",
  key: ["k"],
  columns: [{ name: "k", type: "INT" }, { name: "v", type: "STRING" }]
})

for (const [name, open] of targets) {
  describe(`storage contract: ${name}`, () => {
    it.live("declares tables once and lists them", () =>
      Effect.scoped(Effect.gen(function*() {
        const { database, storage } = yield* open
        yield* storage.createTable(pk(database))
        yield* storage.createTable(dup(database))
        yield* storage.createTable({ ...pk(database), columns: [{ name: "id", type: "INT" }] })
        assert.deepStrictEqual(yield* storage.getTable(database, "pk"), pk(database))
        assert.isUndefined(yield* storage.getTable(database, "nope"))
        const listed = yield* storage.listTables
        assert.deepStrictEqual(listed.map((t) => t.table).sort(), ["dup", "pk"])
      })))

    it.live("PRIMARY: upsert, delete, partial update, key order", () =>
      Effect.scoped(Effect.gen(function*() {
        const { database, storage } = yield* open
        const def = pk(database)
        const all = def.columns.map((c) => c.name)
        yield* storage.createTable(def)
        yield* storage.applyOps(database, "pk", [
          upsert({ id: 3n, name: "c", score: "3.00", ok: true, at: "2024-01-01 00:00:00", tags: ["x"] }, all),
          upsert({ id: 1n, name: "a", score: "-1.50", ok: false, at: "2024-01-01 00:00:00.500000", tags: [] }, all),
          upsert({ id: 2n, name: "b", score: null, ok: null, at: null, tags: null }, all),
          del({ id: 2n }),
          upsert({ id: 1n, name: "a2", score: "1.25", ok: true, at: null, tags: ["p", null] }, all)
        ])
        yield* storage.applyOps(database, "pk", [
          upsert({ id: 3n, score: "9.99" }, ["id", "score"]),
          upsert({ id: 4n, name: "new" }, ["id", "name"]),
          del({ id: 5n })
        ])
        assert.deepStrictEqual(yield* storage.readRows(database, "pk"), [
          { id: 1n, name: "a2", score: "1.25", ok: true, at: null, tags: ["p", null] },
          { id: 3n, name: "c", score: "9.99", ok: true, at: "2024-01-01 00:00:00", tags: ["x"] },
          { id: 4n, name: "new", score: null, ok: null, at: null, tags: null }
        ])
      })))

    it.live("DUPLICATE: appends in order, ignores deletes", () =>
      Effect.scoped(Effect.gen(function*() {
        const { database, storage } = yield* open
        yield* storage.createTable(dup(database))
        yield* storage.applyOps(database, "dup", [upsert({ k: 2, v: "b" }), upsert({ k: 1, v: "a" })])
        yield* storage.applyOps(database, "dup", [upsert({ k: 2, v: "b" }), del({ k: 2 }), upsert({ k: 0 }, ["k"])])
        assert.deepStrictEqual(yield* storage.readRows(database, "dup"), [
          { k: 2, v: "b" },
          { k: 1, v: "a" },
          { k: 2, v: "b" },
          { k: 0, v: null }
        ])
      })))

    it.live("transactions, staged changes and reset", () =>
      Effect.scoped(Effect.gen(function*() {
        const { database, storage } = yield* open
        yield* storage.createTable(dup(database))
        yield* storage.applyOps(database, "dup", [upsert({ k: 1, v: "a" })])
        const txn: TxnRecord = {
          txnId: 7,
          database,
          table: "dup",
          label: "l7",
          status: "PREPARED",
          kind: "txn",
          coordinator: "127.0.0.2:1",
          reason: "",
          createdAt: 1,
          timeoutAt: 2
        }
        yield* storage.saveTxn(txn)
        yield* storage.saveTxn({ ...txn, txnId: 8, label: "l8", status: "ABORTED", reason: "user cancel" })
        yield* storage.saveTxn({ ...txn, status: "COMMITTED" })
        const staged = [upsert({ k: 9n as never, v: "z" })]
        yield* storage.saveStaged(7, staged)
        const txns = [...(yield* storage.loadTxns)].sort((a, b) => a.txnId - b.txnId)
        assert.deepStrictEqual(txns.map((t) => [t.txnId, t.status]), [[7, "COMMITTED"], [8, "ABORTED"]])
        assert.deepStrictEqual(yield* storage.loadStaged(7), staged)
        yield* storage.dropStaged(7)
        assert.deepStrictEqual(yield* storage.loadStaged(7), [])
        yield* storage.deleteTxn(database, 8)
        assert.deepStrictEqual((yield* storage.loadTxns).map((t) => t.txnId), [7])
        yield* storage.saveStaged(7, staged)
        yield* storage.reset
        assert.deepStrictEqual(yield* storage.readRows(database, "dup"), [])
        assert.deepStrictEqual(yield* storage.loadTxns, [])
        assert.deepStrictEqual(yield* storage.loadStaged(7), [])
        assert.deepStrictEqual(yield* storage.getTable(database, "dup"), dup(database))
      })))

    it.live("unknown tables fail with StorageError", () =>
      Effect.scoped(Effect.gen(function*() {
        const { database, storage } = yield* open
        const a = yield* Effect.flip(storage.applyOps(database, "missing", [upsert({ k: 1 })]))
        const r = yield* Effect.flip(storage.readRows(database, "missing"))
        assert.strictEqual(a._tag, "StorageError")
        assert.include(r.message, `unknown table "${database}.missing"`)
      })))
  })
}
