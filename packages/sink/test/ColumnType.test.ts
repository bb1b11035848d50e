import { assert, describe, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as ColumnType from "../src/ColumnType.js"

const p = (text: string) => ColumnType.format(ColumnType.unsafeParse(text))

describe("ColumnType.parse", () => {
  it("scalar types, case-insensitive, with lengths and precision", () => {
    assert.strictEqual(p("VARCHAR(64)"), "VARCHAR(64)")
    assert.strictEqual(p("varchar"), "VARCHAR(65533)")
    assert.strictEqual(p("char(3)"), "CHAR(3)")
    assert.strictEqual(p("DECIMAL(10,2)"), "DECIMAL(10,2)")
    assert.strictEqual(p("decimal( 27 , 9 )"), "DECIMAL(27,9)")
    assert.strictEqual(p("decimal64(18,4)"), "DECIMAL(18,4)")
    assert.strictEqual(p("decimal"), "DECIMAL(10,0)")
    assert.strictEqual(p("string"), "STRING")
    assert.strictEqual(p("boolean"), "BOOLEAN")
    assert.strictEqual(p("LARGEINT"), "LARGEINT")
    assert.strictEqual(p("datetime"), "DATETIME")
    assert.strictEqual(p("DATE"), "DATE")
    assert.strictEqual(p("json"), "JSON")
    assert.strictEqual(p("double"), "DOUBLE")
    assert.strictEqual(p("float"), "FLOAT")
  })

  it("information_schema COLUMN_TYPE spellings", () => {
    assert.strictEqual(p("int(11)"), "INT")
    assert.strictEqual(p("tinyint(4)"), "TINYINT")
    assert.strictEqual(p("bigint(20)"), "BIGINT")
    assert.strictEqual(p("bigint(20) unsigned"), "LARGEINT")
    assert.strictEqual(p("int(10) unsigned"), "BIGINT")
    assert.strictEqual(p("largeint(40)"), "LARGEINT")
    assert.strictEqual(p("datetime(6)"), "DATETIME")
    assert.strictEqual(p("text"), "STRING")
    assert.strictEqual(p("array<int(11)>"), "ARRAY<INT>")
  })

  it("nested types", () => {
    assert.strictEqual(p("ARRAY<INT>"), "ARRAY<INT>")
    assert.strictEqual(p("ARRAY<ARRAY<VARCHAR(8)>>"), "ARRAY<ARRAY<VARCHAR(8)>>")
    assert.strictEqual(p("MAP<VARCHAR(8), DECIMAL(5,1)>"), "MAP<VARCHAR(8),DECIMAL(5,1)>")
    assert.strictEqual(
      p("STRUCT<a INT, `b c` VARCHAR(10), d ARRAY<DATE>>"),
      "STRUCT<a INT, b c VARCHAR(10), d ARRAY<DATE>>"
    )
    assert.deepStrictEqual(
      ColumnType.unsafeParse("struct<x:int>"),
      ColumnType.struct([{ name: "x", type: ColumnType.int }])
    )
  })

  it("errors", () => {
    assert.isTrue(Either.isLeft(ColumnType.parse("VARCHAR(")))
    assert.isTrue(Either.isLeft(ColumnType.parse("ARRAY<INT")))
    assert.isTrue(Either.isLeft(ColumnType.parse("NOPE")))
    assert.isTrue(Either.isLeft(ColumnType.parse("INT INT")))
    assert.throws(() => ColumnType.decimal(39, 2), /precision/)
    assert.throws(() => ColumnType.decimal(5, 6), /scale/)
    assert.strictEqual(p("hll"), "HLL")
  })
})

describe("ColumnType.fromInformationSchema", () => {
  const f = (row: ColumnType.InformationSchemaColumn) => ColumnType.format(ColumnType.fromInformationSchema(row))
  it("StarRocks rows", () => {
    assert.strictEqual(f({ dataType: "tinyint", columnType: "tinyint(1)" }), "BOOLEAN")
    assert.strictEqual(f({ dataType: "tinyint", columnType: "tinyint(4)" }), "TINYINT")
    assert.strictEqual(f({ dataType: "tinyint", columnSize: null }), "BOOLEAN")
    assert.strictEqual(f({ dataType: "bigint unsigned", columnType: "bigint(20) unsigned" }), "LARGEINT")
    assert.strictEqual(f({ dataType: "decimal", columnType: "decimal(10,2)" }), "DECIMAL(10,2)")
    assert.strictEqual(f({ dataType: "decimal", numericPrecision: 12, numericScale: 3 }), "DECIMAL(12,3)")
    assert.strictEqual(f({ dataType: "varchar", columnType: "varchar(65533)" }), "VARCHAR(65533)")
    assert.strictEqual(f({ dataType: "varchar", characterMaximumLength: 20 }), "VARCHAR(20)")
    assert.strictEqual(f({ dataType: "json", columnType: "json" }), "JSON")
    assert.strictEqual(f({ dataType: "array", columnType: "array<varchar(10)>" }), "ARRAY<VARCHAR(10)>")
    assert.strictEqual(f({ dataType: "bitmap", columnType: "bitmap" }), "BITMAP")
    assert.strictEqual(f({ dataType: "weird", columnType: "" }), "WEIRD")
  })
  it("MariaDB rows", () => {
    assert.strictEqual(f({ dataType: "tinyint", columnType: "tinyint(1)" }), "BOOLEAN")
    assert.strictEqual(f({ dataType: "int", columnType: "int(11)" }), "INT")
    assert.strictEqual(f({ dataType: "longtext", columnType: "longtext" }), "STRING")
    assert.strictEqual(f({ dataType: "timestamp", columnType: "timestamp" }), "DATETIME")
  })
})

describe("ColumnType annotations and the default mapping", () => {
  const types = (schema: Schema.Schema.Any) =>
    Object.fromEntries(
      ColumnType.fieldsOf(schema).map((f) => [f.name, `${ColumnType.format(f.type)}${f.nullable ? "?" : ""}`])
    )

  it("defaults from the Schema AST", () => {
    const S = Schema.Struct({
      n: Schema.Number,
      i: Schema.Int,
      s: Schema.String,
      b: Schema.Boolean,
      big: Schema.BigIntFromSelf,
      bigStr: Schema.BigInt,
      d: Schema.DateFromSelf,
      ds: Schema.Date,
      dt: Schema.DateTimeUtcFromSelf,
      dec: Schema.BigDecimal,
      arr: Schema.Array(Schema.String),
      arrN: Schema.Array(Schema.NullOr(Schema.Number)),
      rec: Schema.Record({ key: Schema.String, value: Schema.Number }),
      obj: Schema.Struct({ a: Schema.Number }),
      u: Schema.Unknown,
      lit: Schema.Literal("a", "b"),
      nul: Schema.NullOr(Schema.String),
      opt: Schema.optional(Schema.Number),
      und: Schema.UndefinedOr(Schema.Boolean),
      nfs: Schema.NumberFromString,
      mixed: Schema.Union(Schema.String, Schema.Number),
      tuple: Schema.Tuple(Schema.String, Schema.Number)
    })
    assert.deepStrictEqual(types(S), {
      n: "DOUBLE",
      i: "BIGINT",
      s: "STRING",
      b: "BOOLEAN",
      big: "LARGEINT",
      bigStr: "LARGEINT",
      d: "DATETIME",
      ds: "DATETIME",
      dt: "DATETIME",
      dec: "DECIMAL(38,9)",
      arr: "ARRAY<STRING>",
      arrN: "ARRAY<DOUBLE>",
      rec: "JSON",
      obj: "JSON",
      u: "JSON?",
      lit: "STRING",
      nul: "STRING?",
      opt: "DOUBLE?",
      und: "BOOLEAN?",
      nfs: "DOUBLE",
      mixed: "JSON",
      tuple: "JSON"
    })
  })

  it("annotations win, also under NullOr, optional and transformations", () => {
    const S = Schema.Struct({
      id: ColumnType.BigInt,
      big: ColumnType.BigIntBig,
      int: ColumnType.Int,
      small: ColumnType.SmallInt,
      tiny: ColumnType.TinyInt,
      f: ColumnType.Float,
      amount: ColumnType.Decimal(10, 2),
      amountS: ColumnType.DecimalString(12, 4),
      day: ColumnType.Date,
      ts: ColumnType.DateTime,
      name: ColumnType.Varchar(64),
      code: ColumnType.Char(2),
      doc: ColumnType.Json,
      note: Schema.NullOr(ColumnType.Varchar(10)),
      maybe: Schema.optional(ColumnType.Int),
      dayStr: ColumnType.annotate(Schema.Date, "DATE"),
      raw: ColumnType.annotate(Schema.String, ColumnType.dateTime),
      ints: ColumnType.Array(Schema.Number, "ARRAY<INT>")
    })
    assert.deepStrictEqual(types(S), {
      id: "BIGINT",
      big: "BIGINT",
      int: "INT",
      small: "SMALLINT",
      tiny: "TINYINT",
      f: "FLOAT",
      amount: "DECIMAL(10,2)",
      amountS: "DECIMAL(12,4)",
      day: "DATE",
      ts: "DATETIME",
      name: "VARCHAR(64)",
      code: "CHAR(2)",
      doc: "JSON?",
      note: "VARCHAR(10)?",
      maybe: "INT?",
      dayStr: "DATE",
      raw: "DATETIME",
      ints: "ARRAY<INT>"
    })
    assert.isTrue(ColumnType.fieldsOf(S).find((f) => f.name === "note")!.annotated)
  })

  it("classes and non-structs", () => {
    class Row extends Schema.Class<Row>("Row")({ a: Schema.Number, b: ColumnType.Date }) {}
    assert.deepStrictEqual(types(Row), { a: "DOUBLE", b: "DATE" })
    assert.throws(() => ColumnType.fieldsOf(Schema.String), /struct schema/)
  })

  it("a type string under the global symbol pins the type without importing this package", () => {
    const key = Symbol.for("@effect-starrocks/sink/ColumnType")
    const Row = Schema.Struct({
      id: Schema.Number.annotations({ [key]: "BIGINT" }),
      amount: Schema.String.annotations({ [key]: "DECIMAL(10,2)" })
    })
    assert.deepStrictEqual(types(Row), { id: "BIGINT", amount: "DECIMAL(10,2)" })
  })
})
