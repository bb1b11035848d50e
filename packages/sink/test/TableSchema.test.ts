import { Reactivity } from "@effect/experimental"
import { MysqlClient } from "@effect/sql-mysql2"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Redacted, Schema } from "effect"
import * as Net from "node:net"
import * as ColumnType from "../src/ColumnType.js"
import * as RowEncoder from "../src/RowEncoder.js"
import * as TableSchema from "../src/TableSchema.js"
import * as TableSchemaMysql from "../src/TableSchema/Mysql.js"

const HOST = process.env.MARIADB_HOST ?? "127.0.0.1"
const PORT = Number(process.env.MARIADB_PORT ?? 3306)
const USER = process.env.MARIADB_USER ?? "root"
const DATABASE = process.env.MARIADB_DATABASE ?? "test"

const reachable = await new Promise<boolean>((resolve) => {
  const socket = Net.connect({ host: HOST, port: PORT })
  socket.setTimeout(2000)
  socket.once("connect", () => {
    socket.destroy()
    resolve(true)
  })
  socket.once("error", () => resolve(false))
  socket.once("timeout", () => {
    socket.destroy()
    resolve(false)
  })
})
const ci = process.env.CI === "true" || process.env.CI === "1"

const connection = {
  host: HOST,
  port: PORT,
  user: USER,
  password: Redacted.make(process.env.MARIADB_PASSWORD ?? ""),
  database: DATABASE
}

const Reference = Schema.Struct({
  id: ColumnType.BigInt,
  user_id: ColumnType.Int,
  name: ColumnType.Varchar(64),
  score: Schema.Number,
  day: ColumnType.Date,
  ts: ColumnType.DateTime,
  active: Schema.Boolean,
  amount: ColumnType.Decimal(10, 2),
  note: Schema.NullOr(Schema.String),
  city: Schema.String
})

/** A table with a unique name in the test database, dropped at the end of the scope. */
const withTable = (ddl: (name: string) => string) =>
  Effect.gen(function*() {
    const name = `ts_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
    const sql = yield* MysqlClient.make({
      host: HOST,
      port: PORT,
      username: USER,
      password: connection.password,
      database: DATABASE,
      maxConnections: 1
    })
    yield* sql.unsafe(ddl(name)).unprepared
    yield* Effect.addFinalizer(() => sql.unsafe(`DROP TABLE IF EXISTS \`${name}\``).unprepared.pipe(Effect.orDie))
    return name
  }).pipe(Effect.provide(Reactivity.layer))

const referenceDdl = (name: string) => `
  CREATE TABLE \`${name}\` (
    id BIGINT NOT NULL PRIMARY KEY,
    user_id INT,
    name VARCHAR(64),
    score DOUBLE,
    day DATE,
    ts DATETIME(6),
    active BOOLEAN,
    amount DECIMAL(10,2),
    note TEXT,
    city VARCHAR(32),
    big BIGINT UNSIGNED,
    tiny TINYINT
  )`

describe("TableSchema (pure)", () => {
  it("versions", () => {
    assert.isTrue(TableSchema.supportsEnclose(undefined))
    assert.isTrue(TableSchema.supportsEnclose("3.0.0"))
    assert.isTrue(TableSchema.supportsEnclose("3.3.5 6d2bd1e"))
    assert.isFalse(TableSchema.supportsEnclose("2.5.21 abc"))
    assert.isTrue(TableSchema.supportsEnclose("garbage"))
  })

  it("check reports every mismatch in one error", () => {
    const columns = [
      { COLUMN_NAME: "id", ORDINAL_POSITION: 1, COLUMN_KEY: "PRI", DATA_TYPE: "bigint", COLUMN_TYPE: "bigint(20)" },
      { COLUMN_NAME: "k2", ORDINAL_POSITION: 2, COLUMN_KEY: "PRI", DATA_TYPE: "int", COLUMN_TYPE: "int(11)" },
      { COLUMN_NAME: "day", ORDINAL_POSITION: 3, COLUMN_KEY: "", DATA_TYPE: "date", COLUMN_TYPE: "date" },
      { COLUMN_NAME: "name", ORDINAL_POSITION: 4, COLUMN_KEY: "", DATA_TYPE: "varchar", COLUMN_TYPE: "varchar(10)" },
      { COLUMN_NAME: "h", ORDINAL_POSITION: 5, COLUMN_KEY: "", DATA_TYPE: "hll", COLUMN_TYPE: "hll" },
      { COLUMN_NAME: "flag", ORDINAL_POSITION: 6, COLUMN_KEY: "", DATA_TYPE: "tinyint", COLUMN_TYPE: "tinyint(1)" }
    ].map(TableSchema.columnFromRow)
    const S = Schema.Struct({
      id: Schema.Number,
      day: Schema.String,
      Name: Schema.String,
      h: Schema.String,
      flag: Schema.Number,
      missing: Schema.String
    })
    const result = TableSchema.check(S, columns, { database: "db", table: "t" })
    assert.isTrue(Either.isLeft(result))
    const e = (result as Either.Left<TableSchema.TableSchemaError, unknown>).left
    assert.strictEqual(e._tag, "TableSchemaError")
    assert.deepStrictEqual(e.mismatches.map((m) => m.field), ["day", "Name", "h", "flag", "missing", "k2"])
    assert.include(e.message, "db.t")
    assert.include(e.message, "day: a STRING field cannot go into a DATE column")
    assert.include(e.message, "the table has 'name'")
    assert.include(e.message, "HLL")
    assert.include(e.message, "k2: primary key column missing")
  })

  it("check accepts compatible types and returns the table's types", () => {
    const columns = [
      { COLUMN_NAME: "a", ORDINAL_POSITION: 1, DATA_TYPE: "bigint", COLUMN_TYPE: "bigint(20)" },
      { COLUMN_NAME: "b", ORDINAL_POSITION: 2, DATA_TYPE: "varchar", COLUMN_TYPE: "varchar(5)" },
      { COLUMN_NAME: "c", ORDINAL_POSITION: 3, DATA_TYPE: "json", COLUMN_TYPE: "json" },
      { COLUMN_NAME: "d", ORDINAL_POSITION: 4, DATA_TYPE: "array", COLUMN_TYPE: "array<int(11)>" },
      { COLUMN_NAME: "e", ORDINAL_POSITION: 5, DATA_TYPE: "date", COLUMN_TYPE: "date" }
    ].map(TableSchema.columnFromRow)
    const S = Schema.Struct({
      a: Schema.Number,
      b: Schema.Number,
      c: Schema.Struct({ x: Schema.Number }),
      d: Schema.Array(Schema.Number),
      e: ColumnType.annotate(Schema.String, "DATE")
    })
    const checked = Either.getOrThrow(TableSchema.check(S, columns))
    assert.strictEqual(ColumnType.format(checked.columnTypes.a!), "BIGINT")
    assert.isFalse(checked.isPrimaryKeyTable)
    const b = RowEncoder.make(S, { columnTypes: checked.columnTypes }).builder("csv")
    assert.throws(() => b.add({ a: 1.5, b: 1, c: { x: 1 }, d: [1], e: "2024-01-01" }, 0), /column a/)
    assert.throws(() => b.add({ a: 1, b: 1, c: { x: 1 }, d: [1.5], e: "2024-01-01" }, 1), /column d/)
    assert.isTrue(b.add({ a: 1, b: 12345, c: { x: 1 }, d: [1], e: "2024-01-01" }, 2))
    assert.throws(() => b.add({ a: 1, b: 123456, c: { x: 1 }, d: [1], e: "2024-01-01" }, 3), /column b/)
  })
})

const mariadb = reachable || ci ? describe : describe.skip
if (!reachable && !ci) {
  // eslint-disable-next-line no-console
  console.warn(`TableSchema MariaDB tests skipped: nothing listens on ${HOST}:${PORT} (set CI=true to fail instead)`)
}

mariadb("TableSchema against MariaDB", () => {
  it("MariaDB is reachable (required under CI)", () => {
    assert.isTrue(reachable, `MariaDB at ${HOST}:${PORT} is not reachable`)
  })

  it.scopedLive("describe reads the columns, the primary key and the types", () =>
    Effect.gen(function*() {
      const table = yield* withTable(referenceDdl)
      const d = yield* TableSchemaMysql.describe({ ...connection, table })
      assert.deepStrictEqual(d.columns.map((c) => c.name), [
        "id",
        "user_id",
        "name",
        "score",
        "day",
        "ts",
        "active",
        "amount",
        "note",
        "city",
        "big",
        "tiny"
      ])
      assert.deepStrictEqual(
        d.columns.map((c) => ColumnType.format(c.type)),
        [
          "BIGINT",
          "INT",
          "VARCHAR(64)",
          "DOUBLE",
          "DATE",
          "DATETIME",
          "BOOLEAN",
          "DECIMAL(10,2)",
          "STRING",
          "VARCHAR(32)",
          "LARGEINT",
          "TINYINT"
        ]
      )
      assert.deepStrictEqual(d.primaryKey, ["id"])
      assert.isTrue(d.isPrimaryKeyTable)
      // MariaDB has no current_version(): unknown, assumed 3.0+
      assert.isUndefined(d.serverVersion)
      assert.isTrue(d.supportsEnclose)
      const old = yield* TableSchemaMysql.describe({ ...connection, table, serverVersion: "2.5.4" })
      assert.strictEqual(old.serverVersion, "2.5.4")
      assert.isFalse(old.supportsEnclose)
    }))

  it.scopedLive("validate: the reference schema fits; encoder uses the table's types", () =>
    Effect.gen(function*() {
      const table = yield* withTable(referenceDdl)
      const v = yield* TableSchemaMysql.validate(Reference, { ...connection, table })
      assert.isTrue(v.isPrimaryKeyTable)
      assert.strictEqual(ColumnType.format(v.columnTypes.city!), "VARCHAR(32)")
      const b = RowEncoder.make(Reference, { columnTypes: v.columnTypes }).builder("csv")
      const row = {
        id: 1,
        user_id: 2,
        name: "n",
        score: 0.5,
        day: new Date(0),
        ts: new Date(0),
        active: true,
        amount: "1.50" as any,
        note: null,
        city: "x".repeat(33)
      }
      assert.throws(() => b.add(row, 9), /row 9, column city: 33 bytes exceed/)
    }))

  it.scopedLive("validate: every mismatch in one TableSchemaError", () =>
    Effect.gen(function*() {
      const table = yield* withTable(referenceDdl)
      const Bad = Schema.Struct({
        user_id: Schema.String,
        day: Schema.String,
        Name: Schema.String,
        nope: Schema.Number,
        active: Schema.Boolean
      })
      const e = yield* Effect.flip(TableSchemaMysql.validate(Bad, { ...connection, table }))
      assert.strictEqual(e._tag, "TableSchemaError")
      assert.deepStrictEqual(e.mismatches.map((m) => m.field), ["user_id", "day", "Name", "nope", "id"])
      assert.include(e.message, table)
      assert.include(e.message, "user_id: a STRING field cannot go into a INT column")
    }))

  it.live("a missing table is a TableSchemaError", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(TableSchemaMysql.describe({ ...connection, table: "no_such_table_xyz" }))
      assert.include(e.message, "table not found")
    }))
})

describe("TableSchema connection failures", () => {
  it.live("an unreachable server is a TableSchemaError, without the password", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(TableSchemaMysql.describe({
        ...connection,
        port: 1,
        password: Redacted.make("s3cret-pw"),
        table: "t",
        connectTimeout: "2 seconds"
      }))
      assert.strictEqual(e._tag, "TableSchemaError")
      assert.include(e.message, "cannot read information_schema.COLUMNS")
      assert.notInclude(e.message, "s3cret-pw")
    }))
})
