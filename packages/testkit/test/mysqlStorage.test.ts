import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { RowOp, TableDef, TxnRecord } from "../src/internal/model.js"
import * as internal from "../src/internal/mysqlStorage.js"
import * as MysqlStorage from "../src/MysqlStorage.js"
import * as Maria from "./utils/mariadb.js"

const up = Maria.isCI || (await Maria.reachable())
const suite = up ? describe : describe.skip
const title = up
  ? "MysqlStorage (MariaDB)"
  : `MysqlStorage (MariaDB) — SKIPPED: nothing answers on ${Maria.host}:${Maria.port}; under CI=true this fails`

const upsert = (values: Record<string, unknown>, columns?: ReadonlyArray<string>): RowOp => ({
  op: "upsert",
  values: values as RowOp["values"],
  columns: columns ?? Object.keys(values)
})
const del = (values: Record<string, unknown>): RowOp => ({ op: "delete", values: values as RowOp["values"] })

const allTypes = (database: string): TableDef => ({
  database,
  table: "all_types",
  model: "PRIMARY",
  key: ["id"],
  columns: [
    { name: "id", type: "BIGINT" },
    { name: "b", type: "BOOLEAN" },
    { name: "ti", type: "TINYINT" },
    { name: "si", type: "SMALLINT" },
    { name: "i", type: "INT" },
    { name: "li", type: "LARGEINT" },
    { name: "f", type: "FLOAT" },
    { name: "d", type: "DOUBLE" },
    { name: "dec", type: "DECIMAL(10,2)" },
    { name: "c", type: "CHAR(4)" },
    { name: "v", type: "VARCHAR(64)" },
    { name: "s", type: "STRING" },
    { name: "dt", type: "DATE" },
    { name: "ts", type: "DATETIME" },
    { name: "j", type: "JSON" },
    { name: "ab", type: "ARRAY<BIGINT>" },
    { name: "av", type: "ARRAY<VARCHAR(10)>" },
    { name: "ad", type: "ARRAY<DECIMAL(5,2)>" },
    { name: "aa", type: "ARRAY<ARRAY<INT>>" }
  ]
})

suite(title, () => {
  it.live("creates real tables with mapped types and round-trips every cell type", () =>
    Effect.scoped(Effect.gen(function*() {
      const { database, sql, url } = yield* Maria.freshDatabase()
      const storage = yield* MysqlStorage.make(url)
      const def = allTypes(database)
      yield* storage.createTable(def)
      const cols = yield* sql.unsafe<{ COLUMN_NAME: string; COLUMN_TYPE: string; COLUMN_KEY: string }>(
        "SELECT COLUMN_NAME, COLUMN_TYPE, COLUMN_KEY FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? " +
          "AND TABLE_NAME = 'all_types' ORDER BY ORDINAL_POSITION",
        [database]
      ).unprepared
      const types = Object.fromEntries(cols.map((c) => [c.COLUMN_NAME, c.COLUMN_TYPE]))
      assert.strictEqual(types["id"], "bigint(20)")
      assert.strictEqual(cols[0]!.COLUMN_KEY, "PRI")
      assert.strictEqual(types["b"], "tinyint(1)")
      assert.strictEqual(types["li"], "decimal(39,0)")
      assert.strictEqual(types["dec"], "decimal(10,2)")
      assert.strictEqual(types["v"], "varchar(64)")
      assert.strictEqual(types["s"], "longtext")
      assert.strictEqual(types["ts"], "datetime(6)")
      assert.strictEqual(types["ab"], "longtext")

      const full = {
        id: 9007199254740993n,
        b: true,
        ti: -5,
        si: 300,
        i: 70000,
        li: 170141183460469231731687303715884105727n,
        f: 1.5,
        d: 2.25,
        dec: "12.30",
        c: "abcd",
        v: "héllo 'quoted' \\ back",
        s: "x".repeat(5000),
        dt: "2024-02-29",
        ts: "2024-02-29 10:11:12.123456",
        j: "{\"a\":[1,2],\"b\":\"x\"}",
        ab: [9007199254740993n, null, -1n],
        av: ["a", "b,c", "\"q\""],
        ad: ["1.50", "-0.25"],
        aa: [[1, 2], [], [3]]
      }
      const sparse = { id: 2n, b: false, ts: "2024-01-01 00:00:00", dec: "-0.50" }
      yield* storage.applyOps(database, "all_types", [upsert(full), upsert(sparse, def.columns.map((c) => c.name))])
      const rows = yield* storage.readRows(database, "all_types")
      assert.strictEqual(rows.length, 2)
      assert.deepStrictEqual(rows[0], {
        id: 2n,
        b: false,
        ti: null,
        si: null,
        i: null,
        li: null,
        f: null,
        d: null,
        dec: "-0.50",
        c: null,
        v: null,
        s: null,
        dt: null,
        ts: "2024-01-01 00:00:00",
        j: null,
        ab: null,
        av: null,
        ad: null,
        aa: null
      })
      assert.deepStrictEqual(rows[1], full)

      // the rows are visible to plain SQL
      const viaSql = yield* sql.unsafe<{ id: unknown; v: string; ab: string }>(
        `SELECT id, v, ab FROM \`${database}\`.all_types ORDER BY id`
      ).unprepared
      assert.strictEqual(String(viaSql[1]!.id), "9007199254740993")
      assert.strictEqual(viaSql[1]!.v, full.v)
      assert.strictEqual(viaSql[1]!.ab, "[9007199254740993,null,-1]")

      // the exact StarRocks definition is remembered
      assert.deepStrictEqual(yield* storage.getTable(database, "all_types"), def)
      assert.isUndefined(yield* storage.getTable(database, "nope"))
      assert.isUndefined(yield* storage.getTable("mysql", "user"))
    })))

  it.live("serves a table created by hand (columns and primary key from information_schema)", () =>
    Effect.scoped(Effect.gen(function*() {
      const { database, sql, url } = yield* Maria.freshDatabase()
      yield* sql.unsafe(
        `CREATE TABLE \`${database}\`.users (tenant INT NOT NULL, id BIGINT NOT NULL, name VARCHAR(64) NULL, ` +
          "active TINYINT(1) NOT NULL DEFAULT 1, big DECIMAL(39,0), amount DECIMAL(12,3), born DATE, seen DATETIME, " +
          "doc JSON, notes TEXT, PRIMARY KEY (id, tenant))"
      ).unprepared
      yield* sql.unsafe(`CREATE TABLE \`${database}\`.events (ts DATETIME, msg VARCHAR(10))`).unprepared
      const storage = yield* MysqlStorage.make(url)
      const users = yield* storage.getTable(database, "users")
      assert.deepStrictEqual(users, {
        database,
        table: "users",
        model: "PRIMARY",
        key: ["id", "tenant"],
        columns: [
          { name: "tenant", type: "INT", nullable: false },
          { name: "id", type: "BIGINT", nullable: false },
          { name: "name", type: "VARCHAR(64)", nullable: true },
          { name: "active", type: "BOOLEAN", nullable: false },
          { name: "big", type: "LARGEINT", nullable: true },
          { name: "amount", type: "DECIMAL(12,3)", nullable: true },
          { name: "born", type: "DATE", nullable: true },
          { name: "seen", type: "DATETIME", nullable: true },
          { name: "doc", type: "JSON", nullable: true },
          { name: "notes", type: "STRING", nullable: true }
        ]
      })
      const events = yield* storage.getTable(database, "events")
      assert.strictEqual(events?.model, "DUPLICATE")
      assert.deepStrictEqual(events?.columns.map((c) => c.type), ["DATETIME", "VARCHAR(10)"])

      const listed = yield* storage.listTables
      assert.deepStrictEqual(listed.map((t) => t.table).sort(), ["events", "users"])

      // createTable keeps an existing table as it is
      yield* storage.createTable({
        database,
        table: "users",
        model: "DUPLICATE",
        key: ["x"],
        columns: [{ name: "x", type: "INT" }]
      })
      assert.deepStrictEqual(yield* storage.getTable(database, "users"), users)

      yield* storage.applyOps(database, "users", [
        upsert({ tenant: 1, id: 10n, name: "a", active: true, amount: "1.500", seen: "2024-01-02 03:04:05" }),
        upsert({ tenant: 1, id: 10n, name: "b" }, ["tenant", "id", "name"])
      ])
      const rows = yield* storage.readRows(database, "users")
      assert.deepStrictEqual(rows, [{
        tenant: 1,
        id: 10n,
        name: "b",
        active: true,
        big: null,
        amount: "1.500",
        born: null,
        seen: "2024-01-02 03:04:05",
        doc: null,
        notes: null
      }])
    })))

  it.live("a hand-made DUPLICATE table with a hidden __sr_rowid column keeps its order and hides the column", () =>
    Effect.scoped(Effect.gen(function*() {
      const { database, sql, url } = yield* Maria.freshDatabase()
      yield* sql.unsafe(
        `CREATE TABLE \`${database}\`.logs (msg VARCHAR(8), __sr_rowid BIGINT NOT NULL AUTO_INCREMENT, ` +
          "PRIMARY KEY (__sr_rowid))"
      ).unprepared
      const storage = yield* MysqlStorage.make(url)
      const def = yield* storage.getTable(database, "logs")
      assert.strictEqual(def?.model, "DUPLICATE")
      assert.deepStrictEqual(def?.columns, [{ name: "msg", type: "VARCHAR(8)", nullable: true }])
      yield* storage.applyOps(database, "logs", ["b", "a", "c"].map((msg) => upsert({ msg })))
      assert.deepStrictEqual(yield* storage.readRows(database, "logs"), [{ msg: "b" }, { msg: "a" }, { msg: "c" }])
    })))

  it.live("applyOps is atomic: a failing op rolls back the whole transaction", () =>
    Effect.scoped(Effect.gen(function*() {
      const { database, url } = yield* Maria.freshDatabase()
      const storage = yield* MysqlStorage.make(url)
      yield* storage.createTable({
        database,
        table: "t",
        model: "PRIMARY",
        key: ["id"],
        columns: [{ name: "id", type: "INT" }, { name: "v", type: "VARCHAR(4)" }]
      })
      yield* storage.applyOps(database, "t", [upsert({ id: 1, v: "keep" })])
      const exit = yield* Effect.exit(storage.applyOps(database, "t", [
        upsert({ id: 2, v: "new" }),
        del({ id: 1 }),
        upsert({ id: 3, v: "far too long for VARCHAR(4)" })
      ]))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        assert.strictEqual(error?._tag, "StorageError")
      }
      assert.deepStrictEqual(yield* storage.readRows(database, "t"), [{ id: 1, v: "keep" }])
      const unknown = yield* Effect.exit(storage.applyOps(database, "missing", [upsert({ id: 1 })]))
      assert.isTrue(Exit.isFailure(unknown))
    })))

  it.live("PRIMARY tables: upsert, delete and partial update, in order, read in key order", () =>
    Effect.scoped(Effect.gen(function*() {
      const { database, url } = yield* Maria.freshDatabase()
      const storage = yield* MysqlStorage.make(url)
      yield* storage.createTable({
        database,
        table: "pk",
        model: "PRIMARY",
        key: ["k"],
        columns: [
          { name: "k", type: "VARCHAR(8)" },
          { name: "a", type: "INT", nullable: false },
          { name: "b", type: "VARCHAR(8)" }
        ]
      })
      const cols = ["k", "a", "b"]
      yield* storage.applyOps(database, "pk", [
        upsert({ k: "c", a: 3, b: "c1" }, cols),
        upsert({ k: "a", a: 1, b: "a1" }, cols),
        upsert({ k: "B", a: 2, b: "b1" }, cols),
        upsert({ k: "b", a: 22, b: "b1" }, cols),
        upsert({ k: "a", a: 11, b: "a2" }, cols),
        del({ k: "c" }),
        upsert({ k: "c", a: 33, b: null }, cols)
      ])
      // partial update: only `b` of an existing row; a NOT NULL column not supplied stays as it is
      yield* storage.applyOps(database, "pk", [
        upsert({ k: "a", b: "partial" }, ["k", "b"]),
        del({ k: "b" }),
        del({ k: "zz" }),
        upsert({ k: "c", a: 333 }, ["k", "a"])
      ])
      assert.deepStrictEqual(yield* storage.readRows(database, "pk"), [
        { k: "B", a: 2, b: "b1" },
        { k: "a", a: 11, b: "partial" },
        { k: "c", a: 333, b: null }
      ])
    })))

  it.live("DUPLICATE tables append in insertion order and keep duplicates", () =>
    Effect.scoped(Effect.gen(function*() {
      const { database, sql, url } = yield* Maria.freshDatabase()
      const storage = yield* MysqlStorage.make(url)
      yield* storage.createTable({
        database,
        table: "dup",
        model: "DUPLICATE",
        key: ["id"],
        columns: [{ name: "id", type: "INT" }, { name: "note", type: "VARCHAR(16)", nullable: true }]
      })
      const batch = (from: number) =>
        Array.from({ length: 700 }, (_, i) => upsert({ id: (from + i * 7) % 5, note: `n${from + i}` }))
      yield* storage.applyOps(database, "dup", [...batch(0), upsert({ id: 1 }, ["id"])])
      yield* storage.applyOps(database, "dup", [upsert({ id: 1, note: "last" }), del({ id: 1 })])
      const rows = yield* storage.readRows(database, "dup")
      assert.strictEqual(rows.length, 702)
      assert.deepStrictEqual(rows.slice(0, 3), [{ id: 0, note: "n0" }, { id: 2, note: "n1" }, { id: 4, note: "n2" }])
      assert.deepStrictEqual(rows.slice(-2), [{ id: 1, note: null }, { id: 1, note: "last" }])
      const def = yield* storage.getTable(database, "dup")
      assert.deepStrictEqual(def?.columns.map((c) => c.name), ["id", "note"])
      const viaSql = yield* sql.unsafe<{ n: number }>(`SELECT COUNT(*) AS n FROM \`${database}\`.dup`).unprepared
      assert.strictEqual(Number(viaSql[0]!.n), 702)
      // information_schema shows exactly the declared columns and no PRI (clients detect PK tables by any PRI)
      const info = yield* sql.unsafe<{ COLUMN_NAME: string; COLUMN_KEY: string }>(
        "SELECT COLUMN_NAME, COLUMN_KEY FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'dup' " +
          "ORDER BY ORDINAL_POSITION",
        [database]
      ).unprepared
      assert.deepStrictEqual(info.map((c) => [c.COLUMN_NAME, c.COLUMN_KEY]), [["id", ""], ["note", ""]])
      // a re-opened storage (or a restarted emulator) reads the same order
      const again = yield* MysqlStorage.make(url)
      assert.deepStrictEqual(yield* again.readRows(database, "dup"), rows)
    })))

  it.live("splits big loads into statements that fit max_allowed_packet", () =>
    Effect.scoped(Effect.gen(function*() {
      const { database, url } = yield* Maria.freshDatabase()
      const storage = yield* MysqlStorage.make(url)
      yield* storage.createTable({
        database,
        table: "big",
        model: "PRIMARY",
        key: ["id"],
        columns: [{ name: "id", type: "INT" }, { name: "s", type: "STRING" }]
      })
      const payload = "x".repeat(1024 * 1024)
      yield* storage.applyOps(database, "big", Array.from({ length: 24 }, (_, id) => upsert({ id, s: payload })))
      const rows = yield* storage.readRows(database, "big")
      assert.strictEqual(rows.length, 24)
      assert.isTrue(rows.every((r) => r["s"] === payload))
      // staged changes of the same size survive too (chunked metadata rows)
      const ops = Array.from({ length: 24 }, (_, id) => upsert({ id: BigInt(id), s: payload }))
      yield* storage.saveStaged(7, ops)
      assert.deepStrictEqual(yield* storage.loadStaged(7), ops)
    })), { timeout: 60_000 })

  it.live("rows, transactions and staged changes survive a re-open (emulator restart)", () =>
    Effect.scoped(Effect.gen(function*() {
      const { database, url } = yield* Maria.freshDatabase()
      const def: TableDef = {
        database,
        table: "t",
        model: "PRIMARY",
        key: ["id"],
        columns: [{ name: "id", type: "LARGEINT" }, { name: "tags", type: "ARRAY<BIGINT>" }]
      }
      const txn: TxnRecord = {
        txnId: 42,
        database,
        table: "t",
        label: "prepared_label",
        status: "PREPARED",
        kind: "txn",
        coordinator: "127.0.0.2:8040",
        reason: "",
        createdAt: 1_700_000_000_000,
        preparedAt: 1_700_000_001_000,
        timeoutAt: 1_700_000_600_000,
        preparedTimeoutAt: 1_700_086_400_000,
        counters: { total: 2, loaded: 2, filtered: 0, unselected: 0, bytes: 20 }
      }
      const visible: TxnRecord = { ...txn, txnId: 41, label: "done", status: "VISIBLE", kind: "stream" }
      const staged = [
        upsert({ id: 170141183460469231731687303715884105727n, tags: [1n, 9007199254740993n] }),
        del({ id: 5n })
      ]

      const first = yield* Scope.make()
      const s1 = yield* MysqlStorage.make(url).pipe(Scope.extend(first))
      yield* s1.createTable(def)
      yield* s1.applyOps(database, "t", [upsert({ id: 5n, tags: [] }), upsert({ id: 6n, tags: null })])
      yield* s1.saveTxn(visible)
      yield* s1.saveTxn({ ...txn, status: "PREPARE" })
      yield* s1.saveTxn(txn)
      yield* s1.saveStaged(42, staged)
      yield* Scope.close(first, Exit.void)

      const s2 = yield* MysqlStorage.make(url)
      assert.deepStrictEqual(yield* s2.listTables, [def])
      assert.deepStrictEqual(yield* s2.readRows(database, "t"), [{ id: 5n, tags: [] }, { id: 6n, tags: null }])
      assert.deepStrictEqual(yield* s2.loadTxns, [visible, txn])
      assert.deepStrictEqual(yield* s2.loadStaged(42), staged)
      assert.deepStrictEqual(yield* s2.loadStaged(7), [])

      // commit the PREPARED transaction after the restart
      yield* s2.applyOps(database, "t", yield* s2.loadStaged(42))
      yield* s2.saveTxn({ ...txn, status: "VISIBLE" })
      yield* s2.dropStaged(42)
      assert.deepStrictEqual(yield* s2.readRows(database, "t"), [
        { id: 6n, tags: null },
        { id: 170141183460469231731687303715884105727n, tags: [1n, 9007199254740993n] }
      ])
      assert.deepStrictEqual((yield* s2.loadTxns).map((t) => t.status), ["VISIBLE", "VISIBLE"])
      assert.deepStrictEqual(yield* s2.loadStaged(42), [])
      yield* s2.deleteTxn(database, 41)
      assert.deepStrictEqual((yield* s2.loadTxns).map((t) => t.txnId), [42])

      // reset empties emulator tables, transactions and staged changes; the table stays declared
      yield* s2.saveStaged(43, staged)
      yield* s2.reset
      assert.deepStrictEqual(yield* s2.readRows(database, "t"), [])
      assert.deepStrictEqual(yield* s2.loadTxns, [])
      assert.deepStrictEqual(yield* s2.loadStaged(43), [])
      assert.deepStrictEqual(yield* s2.getTable(database, "t"), def)
    })))

  it.live("maps StarRocks databases to MySQL databases of the same name, created on demand", () =>
    Effect.scoped(Effect.gen(function*() {
      const { database: metaDb, sql, url } = yield* Maria.freshDatabase()
      const other = Maria.uniqueName("srt_other")
      yield* Effect.addFinalizer(() => Effect.ignore(sql.unsafe(`DROP DATABASE IF EXISTS \`${other}\``).unprepared))
      const storage = yield* MysqlStorage.make(url)
      yield* storage.createTable({
        database: other,
        table: "t",
        model: "DUPLICATE",
        key: [],
        columns: [{ name: "x", type: "INT" }]
      })
      yield* storage.applyOps(other, "t", [upsert({ x: 1 })])
      const rows = yield* sql.unsafe<{ x: number }>(`SELECT x FROM \`${other}\`.t`).unprepared
      assert.deepStrictEqual(rows.map((r) => r.x), [1])
      const listed = yield* storage.listTables
      assert.deepStrictEqual(listed.map((t) => `${t.database}.${t.table}`), [`${other}.t`])
      const meta = yield* sql.unsafe<{ TABLE_NAME: string }>(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
        [metaDb]
      ).unprepared
      assert.deepStrictEqual(meta.map((r) => r.TABLE_NAME), [
        internal.META_STAGED,
        internal.META_TABLES,
        internal.META_TXNS
      ])
    })))

  it.live("rejects a bad URL and an unreachable server with StorageError", () =>
    Effect.scoped(Effect.gen(function*() {
      const bad = yield* Effect.flip(MysqlStorage.make("postgres://x@y/z"))
      assert.strictEqual(bad._tag, "StorageError")
      const noDb = yield* Effect.flip(MysqlStorage.make(`mysql://root@${Maria.host}:${Maria.port}`))
      assert.match(noDb.message, /must name a database/)
      const refused = yield* Effect.flip(MysqlStorage.make("mysql://root@127.0.0.1:1/x"))
      assert.match(refused.message, /cannot connect/)
    })))
})

describe("mysqlStorage type mapping", () => {
  it("maps StarRocks types to MariaDB column types", () => {
    assert.strictEqual(internal.toMysqlType("BOOLEAN", false), "TINYINT(1)")
    assert.strictEqual(internal.toMysqlType("largeint", false), "DECIMAL(39,0)")
    assert.strictEqual(internal.toMysqlType("DECIMAL(38, 9)", false), "DECIMAL(38,9)")
    assert.strictEqual(internal.toMysqlType("DECIMAL64(18,4)", false), "DECIMAL(18,4)")
    assert.strictEqual(internal.toMysqlType("VARCHAR(65533)", false), "LONGTEXT")
    assert.strictEqual(internal.toMysqlType("VARCHAR(65533)", true), "VARCHAR(768)")
    assert.strictEqual(internal.toMysqlType("STRING", false), "LONGTEXT")
    assert.strictEqual(internal.toMysqlType("ARRAY<INT>", false), "LONGTEXT")
    assert.strictEqual(internal.toMysqlType("DATETIME", false), "DATETIME(6)")
  })
  it("maps MariaDB column types back", () => {
    assert.strictEqual(internal.fromMysqlType("tinyint", "tinyint(1)", false), "BOOLEAN")
    assert.strictEqual(internal.fromMysqlType("tinyint", "tinyint(4)", false), "TINYINT")
    assert.strictEqual(internal.fromMysqlType("bigint", "bigint(20) unsigned", false), "LARGEINT")
    assert.strictEqual(internal.fromMysqlType("decimal", "decimal(39,0)", false), "LARGEINT")
    assert.strictEqual(internal.fromMysqlType("varchar", "varchar(64)", false), "VARCHAR(64)")
    assert.strictEqual(internal.fromMysqlType("longtext", "longtext", true), "JSON")
    assert.strictEqual(internal.fromMysqlType("enum", "enum('a')", false), "STRING")
  })
  it("serializes staged ops with bigints", () => {
    const ops: Array<RowOp> = [upsert({ a: 1n, b: [2n, null, "x"], c: { $bigint: 1 } as never })]
    assert.deepStrictEqual(internal.deserializeOps(internal.serializeOps(ops)), ops)
  })
  it("parses URLs", () => {
    assert.deepStrictEqual(internal.parseUrl("mysql://u:p%40ss@db.local:3307/test"), {
      host: "db.local",
      port: 3307,
      username: "u",
      password: "p@ss",
      database: "test"
    })
    assert.deepStrictEqual(internal.parseUrl("mysql://root@127.0.0.1/test"), {
      host: "127.0.0.1",
      port: 3306,
      username: "root",
      password: undefined,
      database: "test"
    })
  })
})
