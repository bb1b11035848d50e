import { assert, describe, it } from "@effect/vitest"
import { BigDecimal, Chunk, Context, Effect, Either, ParseResult, Schema, Stream } from "effect"
import { readFileSync } from "node:fs"
import * as Change from "../src/Change.js"
import * as ColumnType from "../src/ColumnType.js"
import * as Debezium from "../src/Debezium.js"
import * as RowEncoder from "../src/RowEncoder.js"

// Events copied from Debezium's documentation ("Data change events" of the MySQL and PostgreSQL connectors, the
// tutorial's snapshot event), with the JsonConverter wrapper; `.payload` is the same event with
// `schemas.enable=false`.
const fixture = (name: string): { readonly schema: unknown; readonly payload: any } =>
  JSON.parse(readFileSync(new URL(`./fixtures/debezium/${name}.json`, import.meta.url), "utf8"))

const Customer = Schema.Struct({
  id: ColumnType.Int,
  first_name: ColumnType.Varchar(255),
  last_name: ColumnType.Varchar(255),
  email: ColumnType.Varchar(255)
})
type Customer = typeof Customer.Type

const decode = <A, I>(Row: Schema.Schema<A, I>, options?: Debezium.Options) =>
  Schema.decodeUnknownEither(Debezium.envelope(Row, options))

const decodeOk = <A, I>(Row: Schema.Schema<A, I>, event: unknown, options?: Debezium.Options): Change.Change<A> => {
  const r = decode(Row, options)(event)
  if (Either.isLeft(r)) assert.fail(r.left.message)
  return r.right
}

const decodeErr = <A, I>(Row: Schema.Schema<A, I>, event: unknown, options?: Debezium.Options) => {
  const r = decode(Row, options)(event)
  if (Either.isRight(r)) assert.fail(`expected a ParseError, got ${JSON.stringify(r.right)}`)
  return r.left
}

const paths = (e: ParseResult.ParseError) =>
  ParseResult.ArrayFormatter.formatErrorSync(e).map((i) => ({ path: i.path.join("."), message: i.message }))

const upsertRow = <A>(c: Change.Change<A>): A => {
  assert.strictEqual(c._tag, "Upsert")
  return (c as Change.Upsert<A>).row
}
const deleteKey = <A>(c: Change.Change<A>): Partial<A> => {
  assert.strictEqual(c._tag, "Delete")
  return (c as Change.Delete<A>).key
}

const both = (name: string) => {
  const f = fixture(name)
  return [["with the schema wrapper", f], ["payload only", f.payload]] as const
}

describe("Debezium.envelope: the documentation's events", () => {
  for (const [form, event] of both("mysql-create")) {
    it(`MySQL create (${form}) is an upsert of after`, () => {
      const c = decodeOk(Customer, event)
      assert.isTrue(Change.isChange(c))
      assert.deepStrictEqual(upsertRow(c), {
        id: 1004,
        first_name: "Anne",
        last_name: "Kretchmar",
        email: "annek@noanswer.org"
      })
    })
  }

  for (const [form, event] of both("mysql-read")) {
    it(`MySQL snapshot read (${form}) is an upsert`, () => {
      assert.deepStrictEqual(upsertRow(decodeOk(Customer, event)), {
        id: 1004,
        first_name: "Anne",
        last_name: "Kretchmar",
        email: "annek@noanswer.org"
      })
    })
  }

  for (const [form, event] of both("mysql-update")) {
    it(`MySQL update (${form}) is an upsert of after`, () => {
      assert.strictEqual(upsertRow(decodeOk(Customer, event)).first_name, "Anne Marie")
    })
  }

  for (const [form, event] of both("mysql-delete")) {
    it(`MySQL delete (${form}) is a delete of before`, () => {
      assert.deepStrictEqual(deleteKey(decodeOk(Customer, event)), {
        id: 1004,
        first_name: "Anne Marie",
        last_name: "Kretchmar",
        email: "annek@noanswer.org"
      })
      assert.deepStrictEqual(deleteKey(decodeOk(Customer, event, { key: ["id"] })), { id: 1004 })
    })
  }

  for (const [form, event] of both("pg-create")) {
    it(`PostgreSQL create (${form})`, () => {
      assert.deepStrictEqual(upsertRow(decodeOk(Customer, event)), {
        id: 1,
        first_name: "Anne",
        last_name: "Kretchmar",
        email: "annek@noanswer.org"
      })
    })
  }

  for (const [form, event] of both("pg-update")) {
    it(`PostgreSQL update with REPLICA IDENTITY DEFAULT (${form}): after is the whole row`, () => {
      assert.deepStrictEqual(upsertRow(decodeOk(Customer, event)), {
        id: 1,
        first_name: "Anne Marie",
        last_name: "Kretchmar",
        email: "annek@noanswer.org"
      })
    })
  }

  for (const [form, event] of both("pg-delete")) {
    it(`PostgreSQL delete with REPLICA IDENTITY DEFAULT (${form}): before holds only the key`, () => {
      assert.deepStrictEqual(deleteKey(decodeOk(Customer, event)), { id: 1 })
      assert.deepStrictEqual(deleteKey(decodeOk(Customer, event, { key: ["id"] })), { id: 1 })
    })
  }

  it("a delete with nulls in before (the non-key columns of a replica identity) keeps the non-null columns", () => {
    const event = { ...fixture("pg-delete").payload, before: { id: 1, first_name: null, last_name: null, email: null } }
    assert.deepStrictEqual(deleteKey(decodeOk(Customer, event)), { id: 1 })
  })

  it("a delete without the key column the key option names is a ParseError naming it", () => {
    const event = { ...fixture("pg-delete").payload, before: { email: "x@y.z" } }
    const e = decodeErr(Customer, event, { key: ["id"] })
    assert.deepStrictEqual(paths(e).map((p) => p.path), ["before.id"])
  })

  it("a delete without before (no primary key, REPLICA IDENTITY DEFAULT) is a ParseError that says so", () => {
    const event = { ...fixture("pg-delete").payload, before: null }
    assert.include(decodeErr(Customer, event).message, "REPLICA IDENTITY FULL")
  })

  for (const [form, event] of both("mysql-truncate")) {
    it(`a truncate (${form}) is a ParseError naming the table and the position`, () => {
      const message = decodeErr(Customer, event).message
      assert.include(message, "a truncate event of table inventory.customers at binlog mysql-bin.000003:484 row 0")
    })
  }

  it("a PostgreSQL truncate names db.schema.table and the LSN", () => {
    assert.include(
      decodeErr(Customer, fixture("pg-truncate")).message,
      "a truncate event of table postgres.public.customers at lsn 46523128"
    )
  })

  it("a logical decoding message is a ParseError, not a row", () => {
    assert.include(decodeErr(Customer, fixture("pg-message")).message, "logical decoding message")
  })

  it("a tombstone is a ParseError for the schema (the stream helper skips it)", () => {
    assert.include(decodeErr(Customer, null).message, "tombstone")
    assert.include(decodeErr(Customer, { schema: null, payload: null }).message, "tombstone")
  })

  it("an object without op is not an event (and the message points at flattened rows)", () => {
    assert.include(decodeErr(Customer, { id: 1, first_name: "a" }).message, "flattened: true")
  })

  it("a bad field is a ParseError whose path names the field", () => {
    const Wrong = Schema.Struct({ id: ColumnType.Int, first_name: Schema.Number, email: Schema.String })
    for (const [, event] of both("mysql-create")) {
      const e = decodeErr(Wrong, event)
      assert.deepStrictEqual(paths(e).map((p) => p.path), ["after.first_name"])
      assert.include(e.message, "first_name")
    }
  })

  it("every field that does not fit is listed", () => {
    const Wrong = Schema.Struct({ id: Schema.Boolean, first_name: Schema.Number, email: Schema.String })
    assert.deepStrictEqual(paths(decodeErr(Wrong, fixture("mysql-create"))).map((p) => p.path), [
      "after.id",
      "after.first_name"
    ])
  })

  it("a missing field is a ParseError naming it", () => {
    const More = Schema.Struct({ id: ColumnType.Int, phone: Schema.String })
    assert.deepStrictEqual(paths(decodeErr(More, fixture("mysql-create"))), [{
      path: "after.phone",
      message: "is missing"
    }])
  })

  it("composes with Schema.parseJson for the raw record text", () => {
    const text = readFileSync(new URL("./fixtures/debezium/pg-delete.json", import.meta.url), "utf8")
    const c = Schema.decodeUnknownSync(Schema.parseJson(Debezium.envelope(Customer)))(text)
    assert.deepStrictEqual(deleteKey(c), { id: 1 })
  })

  it("a Schema.Class row: upserts are instances, deletes carry the fields", () => {
    class Person extends Schema.Class<Person>("Person")({ id: ColumnType.Int, email: ColumnType.Varchar(255) }) {}
    const row = upsertRow(decodeOk(Person, fixture("mysql-create")))
    assert.instanceOf(row, Person)
    assert.strictEqual(row.email, "annek@noanswer.org")
    assert.deepStrictEqual(deleteKey(decodeOk(Person, fixture("pg-delete"))), { id: 1 })
  })

  it("encoding a Change back into an event is Forbidden", () => {
    const r = Schema.encodeEither(Debezium.envelope(Customer))(
      Change.upsert(upsertRow(decodeOk(Customer, fixture("mysql-create"))))
    )
    assert.isTrue(Either.isLeft(r))
    assert.include(Either.isLeft(r) ? r.left.message : "", "only decodes")
  })

  it("rejects a row schema that is not a struct, and key columns or field schemas of no field", () => {
    assert.throws(() => Debezium.envelope(Schema.String), /struct schema/)
    assert.throws(() => Debezium.envelope(Customer, { key: ["nope"] }), /key column 'nope'/)
    assert.throws(
      () => Debezium.envelope(Customer, { fields: { created: Debezium.types.Timestamp } }),
      /fields names 'created'/
    )
  })
})

// ---------------------------------------------------------------------------------------------------------------
// values
// ---------------------------------------------------------------------------------------------------------------

/** StarRocks row of the MySQL `orders` table of `mysql-types-create.json`. */
const Order = Schema.Struct({
  id: ColumnType.BigInt,
  amount: ColumnType.Decimal(10, 2),
  refund: Schema.NullOr(ColumnType.DecimalString(10, 2)),
  order_date: ColumnType.Date,
  created: ColumnType.DateTime,
  updated: Schema.NullOr(ColumnType.annotate(Schema.String, "DATETIME")),
  shipped: Schema.NullOr(ColumnType.DateTime),
  pickup: Schema.NullOr(ColumnType.Varchar(16)),
  doc: Schema.NullOr(ColumnType.Json),
  payload: Schema.NullOr(Schema.Uint8ArrayFromSelf),
  gift: Schema.NullOr(ColumnType.Boolean),
  status: Schema.NullOr(ColumnType.Varchar(8))
})

const expectedOrder = (o: typeof Order.Type) => {
  assert.strictEqual(o.id, 10001)
  assert.isTrue(BigDecimal.equals(o.amount, BigDecimal.unsafeFromString("1234.50")), "amount")
  assert.strictEqual(o.refund, "-12.50")
  assert.strictEqual(o.order_date.toISOString(), "2018-06-20T00:00:00.000Z")
  assert.strictEqual(o.created.toISOString(), "2018-06-20T06:37:03.000Z") // DATETIME 2018-06-20 06:37:03
  assert.strictEqual(o.updated, "2018-06-20 15:13:16.945104")
  assert.strictEqual(o.shipped?.toISOString(), "2018-06-20T13:37:03.000Z")
  assert.strictEqual(o.pickup, "13:37:03.123456")
  assert.deepStrictEqual(JSON.parse(o.doc as string), { note: "leave at door", floor: 3 })
  assert.deepStrictEqual(Array.from(o.payload!), [0, 1, 2, 255])
  assert.strictEqual(o.gift, true)
  assert.strictEqual(o.status, "paid")
}

describe("Debezium.envelope: values encoded by the Connect schema", () => {
  it("MySQL types with the schema: Decimal, Date, Timestamp, MicroTimestamp, ZonedTimestamp, MicroTime, Json, bytes, TINYINT(1)", () => {
    expectedOrder(upsertRow(decodeOk(Order, fixture("mysql-types-create"))))
  })

  it("the decoded row is what the sink's encoder takes: StarRocks text of each value", () => {
    const Row = Order.omit("payload") // VARBINARY cannot be loaded by the sink
    const row = upsertRow(decodeOk(Row, fixture("mysql-types-create")))
    const b = RowEncoder.make(Row).builder("json")
    assert.isTrue(b.add(row, 0))
    const { body } = b.finish()
    const text = Buffer.concat(body.chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength))).toString()
    assert.deepStrictEqual(JSON.parse(text), [{
      id: 10001,
      amount: "1234.50",
      refund: "-12.50",
      order_date: "2018-06-20",
      created: "2018-06-20 06:37:03",
      updated: "2018-06-20 15:13:16.945104",
      shipped: "2018-06-20 13:37:03",
      pickup: "13:37:03.123456",
      doc: { note: "leave at door", floor: 3 },
      gift: true,
      status: "paid"
    }])
  })

  it("the same event without the schema, given the temporal units in the fields option", () => {
    const event = fixture("mysql-types-create").payload
    const fields = {
      created: Debezium.types.Timestamp,
      updated: Debezium.types.MicroTimestamp,
      pickup: Debezium.types.MicroTime
    }
    // DECIMAL scales come from ColumnType.Decimal(10, 2) / DecimalString(10, 2); DATE days and the zoned text
    // are recognised from the column types
    expectedOrder(upsertRow(decodeOk(Order, event, { fields })))
  })

  it("without the schema, an integer DATETIME without a declared unit is a ParseError naming the field", () => {
    const e = decodeErr(Order, fixture("mysql-types-create").payload)
    const issues = paths(e)
    assert.deepStrictEqual(issues.map((i) => i.path), ["after.created", "after.updated"])
    assert.include(issues[0]!.message, "Debezium.types.Timestamp")
  })

  it("without the schema, a base64 DECIMAL into a field whose scale is not pinned is a ParseError asking for it", () => {
    const Row = Schema.Struct({ id: Schema.Number, amount: Schema.BigDecimalFromSelf })
    const e = decodeErr(Row, { op: "c", after: { id: 1, amount: "AeI6" } })
    assert.deepStrictEqual(paths(e).map((i) => i.path), ["after.amount"])
    assert.include(e.message, "needs its scale")
    const ok = upsertRow(decodeOk(Row, { op: "c", after: { id: 1, amount: "AeI6" } }, {
      fields: { amount: Debezium.types.Decimal(2) }
    }))
    assert.strictEqual(BigDecimal.format(ok.amount), "1234.5")
  })

  it("without the schema, { scale, value } is a VariableScaleDecimal for a DECIMAL field, an object for a struct field", () => {
    const Row = Schema.Struct({
      reading: ColumnType.Decimal(10, 3),
      pair: Schema.Struct({ scale: Schema.Number, value: Schema.String })
    })
    const row = upsertRow(decodeOk(Row, {
      op: "r",
      after: { reading: { scale: 3, value: "MDk=" }, pair: { scale: 3, value: "MDk=" } }
    }))
    assert.strictEqual(BigDecimal.format(row.reading), "12.345")
    assert.deepStrictEqual(row.pair, { scale: 3, value: "MDk=" })
  })

  it("values take the form the field's schema expects", () => {
    const Row = Schema.Struct({
      amount_string: Schema.BigDecimal, // encoded as a string
      amount_number: Schema.Number,
      amount_text: ColumnType.DecimalString(12, 2),
      created_text: ColumnType.annotate(Schema.String, "DATETIME"),
      created_iso: Schema.Date, // DateFromString
      created_number: Schema.Number, // the number as sent
      created_utc: Schema.DateTimeUtcFromSelf,
      day_text: ColumnType.annotate(Schema.String, "DATE"),
      day_number: Schema.Number,
      shipped_text: ColumnType.String, // the zoned text as sent
      shipped_wall: ColumnType.annotate(Schema.String, "DATETIME"),
      doc_object: Schema.Struct({ floor: Schema.Number }),
      payload_base64: Schema.String,
      gift_number: ColumnType.TinyInt,
      big: ColumnType.BigIntBig,
      big_string: Schema.BigInt // encoded as a string
    })
    const f = fixture("mysql-types-create")
    const cols = (f.schema as any).fields[1].fields as Array<any>
    const col = (name: string, as: string) => ({ ...cols.find((c) => c.field === name), field: as })
    const schema = {
      type: "struct",
      fields: [{
        type: "struct",
        field: "after",
        fields: [
          col("amount", "amount_string"),
          col("amount", "amount_number"),
          col("amount", "amount_text"),
          col("created", "created_text"),
          col("created", "created_iso"),
          col("created", "created_number"),
          col("created", "created_utc"),
          col("order_date", "day_text"),
          col("order_date", "day_number"),
          col("shipped", "shipped_text"),
          col("shipped", "shipped_wall"),
          col("doc", "doc_object"),
          col("payload", "payload_base64"),
          col("gift", "gift_number"),
          col("id", "big"),
          col("id", "big_string")
        ]
      }]
    }
    const a = f.payload.after
    const after = {
      amount_string: a.amount,
      amount_number: a.amount,
      amount_text: a.amount,
      created_text: a.created,
      created_iso: a.created,
      created_number: a.created,
      created_utc: a.created,
      day_text: a.order_date,
      day_number: a.order_date,
      shipped_text: a.shipped,
      shipped_wall: a.shipped,
      doc_object: a.doc,
      payload_base64: a.payload,
      gift_number: a.gift,
      big: a.id,
      big_string: a.id
    }
    const row = upsertRow(decodeOk(Row, { schema, payload: { op: "c", before: null, after } }))
    assert.strictEqual(BigDecimal.format(row.amount_string), "1234.5")
    assert.strictEqual(row.amount_number, 1234.5)
    assert.strictEqual(row.amount_text, "1234.50")
    assert.strictEqual(row.created_text, "2018-06-20 06:37:03")
    assert.strictEqual(row.created_iso.toISOString(), "2018-06-20T06:37:03.000Z")
    assert.strictEqual(row.created_number, 1529476623000)
    assert.strictEqual(row.created_utc.epochMillis, 1529476623000)
    assert.strictEqual(row.day_text, "2018-06-20")
    assert.strictEqual(row.day_number, 17702)
    assert.strictEqual(row.shipped_text, "2018-06-20T13:37:03Z")
    assert.strictEqual(row.shipped_wall, "2018-06-20 13:37:03")
    assert.deepStrictEqual(row.doc_object, { floor: 3 })
    assert.strictEqual(row.payload_base64, "AAEC/w==")
    assert.strictEqual(row.gift_number, 1)
    assert.strictEqual(row.big, 10001n)
    assert.strictEqual(row.big_string, 10001n)
  })

  it("PostgreSQL types: VariableScaleDecimal, MicroTimestamp, ZonedTimestamp with microseconds, a date before the epoch, Json", () => {
    const Measurement = Schema.Struct({
      id: ColumnType.Int,
      reading: ColumnType.Decimal(10, 3),
      taken: ColumnType.annotate(Schema.String, "DATETIME"),
      taken_tz: ColumnType.DateTime,
      day: ColumnType.Date,
      tags: ColumnType.Array(Schema.String, "ARRAY<VARCHAR(8)>")
    })
    for (const [, event] of both("pg-types-create")) {
      const row = upsertRow(decodeOk(Measurement, event, { fields: { taken: Debezium.types.MicroTimestamp } }))
      assert.strictEqual(row.id, 7)
      assert.strictEqual(BigDecimal.format(row.reading), "12.345")
      // PostgreSQL's documented example: TIMESTAMP '2018-06-20 15:13:16.945104' is 1529507596945104
      assert.strictEqual(row.taken, "2018-06-20 15:13:16.945104")
      assert.strictEqual(row.taken_tz.toISOString(), "2018-06-20T15:13:16.945Z")
      assert.strictEqual(row.day.toISOString(), "1969-12-31T00:00:00.000Z")
      assert.deepStrictEqual(row.tags, ["a", "b"])
    }
  })

  describe("DECIMAL: base64 big-endian two's complement unscaled bytes", () => {
    const Row = Schema.Struct({ v: Schema.NullOr(ColumnType.DecimalString(38, 0)), w: ColumnType.DecimalString(38, 2) })
    const cases: ReadonlyArray<readonly [string, number, string]> = [
      ["AA==", 0, "0"],
      ["/w==", 0, "-1"],
      ["AIA=", 0, "128"],
      ["+x4=", 2, "-12.50"],
      ["AeI6", 2, "1234.50"],
      ["AQ==", 4, "0.0001"],
      ["SztMqFqGxHoJiiI//////w==", 0, "99999999999999999999999999999999999999"],
      ["tMSzV6V5O4X2dd3AAAAAAQ==", 0, "-99999999999999999999999999999999999999"],
      ["AP//////////", 0, "18446744073709551615"] // MySQL BIGINT UNSIGNED with bigint.unsigned.handling.mode=precise
    ]
    for (const [b64, scale, text] of cases) {
      it(`${b64} with scale ${scale} is ${text}`, () => {
        const schema = {
          type: "struct",
          fields: [{ type: "struct", field: "after", fields: [{ ...Debezium.types.Decimal(scale), field: "v" }] }]
        }
        const row = upsertRow(decodeOk(Row, { schema, payload: { op: "c", after: { v: b64, w: "AA==" } } }, {}))
        assert.strictEqual(row.v, text)
      })
    }

    it("a null DECIMAL stays null", () => {
      assert.strictEqual(upsertRow(decodeOk(Row, { op: "c", after: { v: null, w: "AA==" } })).v, null)
    })

    it("BIGINT UNSIGNED (Decimal scale 0) into a LARGEINT field is an exact bigint", () => {
      const Big = Schema.Struct({ v: ColumnType.LargeInt })
      const schema = {
        type: "struct",
        fields: [{ type: "struct", field: "after", fields: [{ ...Debezium.types.Decimal(0), field: "v" }] }]
      }
      assert.strictEqual(
        upsertRow(decodeOk(Big, { schema, payload: { op: "c", after: { v: "AP//////////" } } })).v,
        18446744073709551615n
      )
    })

    it("decimal.handling.mode string and double, and JsonConverter's decimal.format=NUMERIC", () => {
      const Money = Schema.Struct({ v: ColumnType.Decimal(10, 2) })
      const text = (c: Change.Change<typeof Money.Type>) => BigDecimal.format(upsertRow(c).v)
      assert.strictEqual(
        text(decodeOk(Money, { op: "c", after: { v: "-12.50" } }, { decimalHandlingMode: "string" })),
        "-12.5"
      )
      assert.strictEqual(text(decodeOk(Money, { op: "c", after: { v: 1234.5 } })), "1234.5")
      const schema = {
        type: "struct",
        fields: [{ type: "struct", field: "after", fields: [{ ...Debezium.types.Decimal(2), field: "v" }] }]
      }
      assert.strictEqual(text(decodeOk(Money, { schema, payload: { op: "c", after: { v: 12.5 } } })), "12.5")
    })

    it("bytes that are not base64 are a ParseError naming the field", () => {
      const e = decodeErr(Row, { op: "c", after: { v: "AA==", w: "not base64!" } })
      assert.deepStrictEqual(paths(e).map((i) => i.path), ["after.w"])
      assert.include(e.message, "base64")
    })
  })

  describe("temporal encodings", () => {
    const Row = Schema.Struct({ t: ColumnType.annotate(Schema.String, "DATETIME"), d: ColumnType.DateTime })
    const at = (type: Debezium.FieldSchema, value: unknown) =>
      upsertRow(decodeOk(Row, { op: "c", after: { t: value, d: value } }, { fields: { t: type, d: type } }))

    it("io.debezium.time.Timestamp: milliseconds", () => {
      const r = at(Debezium.types.Timestamp, 1529476623123)
      assert.strictEqual(r.t, "2018-06-20 06:37:03.123000")
      assert.strictEqual(r.d.getTime(), 1529476623123)
    })

    it("io.debezium.time.MicroTimestamp: microseconds, also before the epoch", () => {
      assert.strictEqual(at(Debezium.types.MicroTimestamp, 1529507596945104).t, "2018-06-20 15:13:16.945104")
      const r = at(Debezium.types.MicroTimestamp, -1)
      assert.strictEqual(r.t, "1969-12-31 23:59:59.999999")
      assert.strictEqual(r.d.getTime(), -1)
    })

    it("io.debezium.time.NanoTimestamp: nanoseconds (as a bigint, a digit string or a number), cut to microseconds", () => {
      for (const v of [1529507596945104123n, "1529507596945104123"]) {
        const r = at(Debezium.types.NanoTimestamp, v)
        assert.strictEqual(r.t, "2018-06-20 15:13:16.945104")
        assert.strictEqual(r.d.getTime(), 1529507596945)
      }
      assert.strictEqual(at(Debezium.types.NanoTimestamp, 1529507596000000000).t, "2018-06-20 15:13:16")
    })

    it("io.debezium.time.ZonedTimestamp: ISO-8601 with Z or an offset", () => {
      assert.strictEqual(at(Debezium.types.ZonedTimestamp, "2018-06-20T13:37:03Z").t, "2018-06-20 13:37:03")
      const r = at(Debezium.types.ZonedTimestamp, "2018-06-20T15:37:03.5+02:00")
      assert.strictEqual(r.t, "2018-06-20 13:37:03.500000")
      assert.strictEqual(r.d.toISOString(), "2018-06-20T13:37:03.500Z")
    })

    it("time.precision.mode=connect and isostring names", () => {
      assert.strictEqual(
        at({ type: "int64", name: "org.apache.kafka.connect.data.Timestamp" }, 1529476623000).t,
        "2018-06-20 06:37:03"
      )
      assert.strictEqual(
        at({ type: "string", name: "io.debezium.time.IsoTimestamp" }, "2019-07-09T02:28:57.123456Z").t,
        "2019-07-09 02:28:57.123456"
      )
      const D = Schema.Struct({ d: ColumnType.annotate(Schema.String, "DATE") })
      const date = (type: Debezium.FieldSchema, v: unknown) =>
        upsertRow(decodeOk(D, { op: "c", after: { d: v } }, { fields: { d: type } })).d
      assert.strictEqual(date({ type: "int32", name: "org.apache.kafka.connect.data.Date" }, 17702), "2018-06-20")
      assert.strictEqual(date({ type: "string", name: "io.debezium.time.IsoDate" }, "2017-09-15Z"), "2017-09-15")
      assert.strictEqual(date({ type: "string", name: "io.debezium.time.IsoDate" }, "1960-02-29Z"), "1960-02-29")
      assert.strictEqual(date(Debezium.types.Date, 0), "1970-01-01")
    })

    it("Time, MicroTime, NanoTime: text of the time of day", () => {
      const T = Schema.Struct({ t: Schema.String })
      const time = (type: Debezium.FieldSchema, v: unknown) =>
        upsertRow(decodeOk(T, { op: "c", after: { t: v } }, { fields: { t: type } })).t
      assert.strictEqual(time(Debezium.types.Time, 49023123), "13:37:03.123000")
      assert.strictEqual(time(Debezium.types.MicroTime, 49023123456), "13:37:03.123456")
      assert.strictEqual(time(Debezium.types.NanoTime, 49023123456789), "13:37:03.123456")
      assert.strictEqual(time(Debezium.types.MicroTime, 0), "00:00:00")
    })

    it("a timestamp outside the range of dates (PostgreSQL infinity) is a ParseError naming the field", () => {
      const e = decodeErr(Row, { op: "c", after: { t: 9223372036825200000, d: 0 } }, {
        fields: { t: Debezium.types.MicroTimestamp, d: Debezium.types.Timestamp }
      })
      assert.deepStrictEqual(paths(e).map((i) => i.path), ["after.t"])
    })

    it("a ZonedTimestamp that is not ISO text is a ParseError naming the field", () => {
      const e = decodeErr(Row, { op: "c", after: { t: "2018-06-20T13:37:03Z", d: "yesterday" } }, {
        fields: { d: Debezium.types.ZonedTimestamp }
      })
      assert.deepStrictEqual(paths(e).map((i) => i.path), ["after.d"])
      assert.include(e.message, "ISO-8601")
    })
  })
})

// ---------------------------------------------------------------------------------------------------------------
// flattened rows (ExtractNewRecordState)
// ---------------------------------------------------------------------------------------------------------------

describe("Debezium.envelope: ExtractNewRecordState rows", () => {
  const anne = { id: 1004, first_name: "Anne", last_name: "Kretchmar", email: "annek@noanswer.org" }

  it("a row is an upsert; __deleted: \"true\" (delete.tombstone.handling.mode=rewrite) is a delete", () => {
    assert.deepStrictEqual(upsertRow(decodeOk(Customer, { ...anne, __deleted: "false" }, { flattened: true })), anne)
    assert.deepStrictEqual(deleteKey(decodeOk(Customer, { ...anne, __deleted: "true" }, { flattened: true })), anne)
    assert.deepStrictEqual(
      deleteKey(decodeOk(Customer, { id: 2, first_name: null, __deleted: "true" }, { flattened: true, key: ["id"] })),
      { id: 2 }
    )
  })

  it("__op from add.fields=op, and a custom add.fields.prefix", () => {
    assert.deepStrictEqual(
      deleteKey(decodeOk(Customer, { ...anne, __op: "d", __table: "customers" }, { flattened: true })),
      anne
    )
    assert.strictEqual(upsertRow(decodeOk(Customer, { ...anne, __op: "r" }, { flattened: true })).id, 1004)
    assert.strictEqual(
      decodeOk(Customer, { ...anne, meta_op: "d" }, { flattened: { prefix: "meta_" } })._tag,
      "Delete"
    )
  })

  it("with the schema wrapper: the schema is the row's", () => {
    const f = fixture("mysql-types-create")
    const rowSchema = (f.schema as any).fields[1]
    const event = {
      schema: { ...rowSchema, fields: [...rowSchema.fields, { type: "string", optional: true, field: "__deleted" }] },
      payload: { ...f.payload.after, __deleted: "false" }
    }
    expectedOrder(upsertRow(decodeOk(Order, event, { flattened: true })))
  })

  it("an unknown __op is a ParseError, never an upsert", () => {
    assert.include(decodeErr(Customer, { ...anne, __op: "x" }, { flattened: true }).message, "__op is not one of")
  })

  it("__op: \"t\" is a truncate, never a row", () => {
    assert.include(decodeErr(Customer, { __op: "t", __table: "customers" }, { flattened: true }).message, "truncate")
  })
})

// ---------------------------------------------------------------------------------------------------------------
// the stream helper
// ---------------------------------------------------------------------------------------------------------------

describe("Debezium.changes", () => {
  it.effect("skips tombstones and decodes the rest in order", () =>
    Effect.gen(function*() {
      const events = [
        fixture("mysql-create"),
        fixture("mysql-update").payload,
        fixture("mysql-delete"),
        null,
        { schema: null, payload: null }
      ]
      const out = yield* Stream.fromIterable(events).pipe(Debezium.changes(Customer), Stream.runCollect)
      assert.deepStrictEqual(Chunk.toArray(out).map((c) => c._tag), ["Upsert", "Upsert", "Delete"])
    }))

  it.effect("a truncate fails the stream with a DebeziumError naming the table and the position", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const e = yield* Stream.make(fixture("mysql-create"), fixture("mysql-truncate"), fixture("mysql-update")).pipe(
        Debezium.changes(Customer),
        Stream.tap((c) => Effect.sync(() => seen.push(c._tag))),
        Stream.runDrain,
        Effect.flip
      )
      assert.deepStrictEqual(seen, ["Upsert"])
      assert.instanceOf(e, Debezium.DebeziumError)
      if (!(e instanceof Debezium.DebeziumError)) return
      assert.strictEqual(e._tag, "DebeziumError")
      assert.strictEqual(e.reason, "truncate")
      assert.strictEqual(e.table, "inventory.customers")
      assert.strictEqual(e.position, "binlog mysql-bin.000003:484 row 0")
      assert.include(e.message, "truncate of table inventory.customers")
      const pg = yield* Stream.make(fixture("pg-truncate").payload).pipe(
        Debezium.changes(Customer),
        Stream.runDrain,
        Effect.flip
      )
      assert.deepStrictEqual(
        pg instanceof Debezium.DebeziumError ? [pg.reason, pg.table, pg.position] : [],
        ["truncate", "postgres.public.customers", "lsn 46523128"]
      )
    }))

  it.effect("a logical decoding message fails the stream, or is skipped with messages: \"skip\"", () =>
    Effect.gen(function*() {
      const e = yield* Stream.make(fixture("pg-message")).pipe(Debezium.changes(Customer), Stream.runDrain, Effect.flip)
      assert.strictEqual(e instanceof Debezium.DebeziumError ? e.reason : undefined, "message")
      const out = yield* Stream.make(fixture("pg-message"), fixture("pg-create")).pipe(
        Debezium.changes(Customer, { messages: "skip" }),
        Stream.runCollect
      )
      assert.deepStrictEqual(Chunk.toArray(out).map((c) => c._tag), ["Upsert"])
    }))

  it.effect("a bad value fails the stream with the ParseError naming the field", () =>
    Effect.gen(function*() {
      const bad = { ...fixture("mysql-create").payload, after: { ...fixture("mysql-create").payload.after, id: "x" } }
      const e = yield* Stream.make(bad).pipe(Debezium.changes(Customer), Stream.runDrain, Effect.flip)
      assert.isTrue(ParseResult.isParseError(e))
      if (ParseResult.isParseError(e)) assert.deepStrictEqual(paths(e).map((i) => i.path), ["after.id"])
    }))

  it.effect("a row schema that needs a service (an effectful decode) goes the same way, in order", () =>
    Effect.gen(function*() {
      class Names extends Context.Tag("Names")<Names, { readonly canonical: (s: string) => Effect.Effect<string> }>() {}
      const Canonical = Schema.transformOrFail(Schema.String, Schema.String, {
        strict: true,
        decode: (s) => Effect.flatMap(Names, (n) => n.canonical(s)),
        encode: ParseResult.succeed
      })
      const Row = Schema.Struct({ id: ColumnType.Int, first_name: Canonical })
      const seen: Array<string> = []
      const e = yield* Stream.make(
        fixture("mysql-create"),
        null,
        fixture("mysql-update"),
        fixture("mysql-truncate"),
        fixture("mysql-create")
      ).pipe(
        Debezium.changes(Row),
        Stream.tap((c) => Effect.sync(() => seen.push(`${c._tag} ${upsertRow(c).first_name}`))),
        Stream.runDrain,
        Effect.flip,
        Effect.provideService(Names, {
          canonical: (s) => Effect.yieldNow().pipe(Effect.as(s.toUpperCase()))
        })
      )
      assert.deepStrictEqual(seen, ["Upsert ANNE", "Upsert ANNE MARIE"])
      assert.strictEqual(e instanceof Debezium.DebeziumError ? e.reason : undefined, "truncate")
    }))

  it.effect("passes the upstream error through", () =>
    Effect.gen(function*() {
      const e = yield* Stream.fail("kafka down" as const).pipe(Debezium.changes(Customer), Stream.runDrain, Effect.flip)
      assert.strictEqual(e, "kafka down")
    }))
})

// ---------------------------------------------------------------------------------------------------------------
// a change stream applied to a reference model equals the source's final state
// ---------------------------------------------------------------------------------------------------------------

/** Applies changes to a Map of key → row, as a Primary Key table does. */
const applyAll = <A extends { readonly id: number }>(changes: Iterable<Change.Change<A>>) => {
  const table = new Map<number, A>()
  for (const c of changes) {
    Change.match<A, void>(c, {
      Upsert: (row) => void table.set(row.id, row),
      Delete: (key) => void table.delete(key.id!),
      Update: (row) => void table.set(row.id!, { ...table.get(row.id!)!, ...row })
    })
  }
  return [...table.values()].sort((a, b) => a.id - b.id)
}

/** A MySQL source of `inventory.customers` that writes Debezium events as its binlog advances. */
const mysqlSource = () => {
  const template = fixture("mysql-create")
  let pos = 154
  const events: Array<unknown> = []
  const emit = (op: "r" | "c" | "u" | "d", before: Customer | null, after: Customer | null) => {
    pos += 310
    events.push({
      schema: template.schema,
      payload: {
        ...template.payload,
        op,
        before,
        after,
        source: { ...template.payload.source, file: "mysql-bin.000003", pos, snapshot: op === "r" }
      }
    })
    if (op === "d") events.push(null) // the tombstone
  }
  const rows = new Map<number, Customer>()
  return {
    events,
    rows,
    snapshot: (row: Customer) => {
      rows.set(row.id, row)
      emit("r", null, row)
    },
    insert: (row: Customer) => {
      rows.set(row.id, row)
      emit("c", null, row)
    },
    update: (id: number, change: Partial<Customer>) => {
      const before = rows.get(id)!
      const after = { ...before, ...change }
      if (after.id !== id) {
        // a primary key change: a delete of the old key (plus tombstone) and a create of the new one
        rows.delete(id)
        emit("d", before, null)
        rows.set(after.id, after)
        emit("c", null, after)
      } else {
        rows.set(id, after)
        emit("u", before, after)
      }
    },
    remove: (id: number) => {
      const before = rows.get(id)!
      rows.delete(id)
      emit("d", before, null)
    }
  }
}

describe("Debezium.changes into a reference model", () => {
  it.effect("the tutorial's customers: snapshot, inserts, updates, a key change, deletes", () =>
    Effect.gen(function*() {
      const src = mysqlSource()
      src.snapshot({ id: 1001, first_name: "Sally", last_name: "Thomas", email: "sally.thomas@acme.com" })
      src.snapshot({ id: 1002, first_name: "George", last_name: "Bailey", email: "gbailey@foobar.com" })
      src.snapshot({ id: 1003, first_name: "Edward", last_name: "Walker", email: "ed@walker.com" })
      src.snapshot({ id: 1004, first_name: "Anne", last_name: "Kretchmar", email: "annek@noanswer.org" })
      src.update(1004, { first_name: "Anne Marie" })
      src.insert({ id: 1005, first_name: "Sarah", last_name: "Thompson", email: "kitt@acme.com" })
      src.remove(1002)
      src.update(1003, { id: 1013 })
      src.insert({ id: 1006, first_name: "Kenneth", last_name: "Anderson", email: "kander@acme.com" })
      src.update(1001, { email: "sally@acme.com" })
      src.remove(1006)
      const changes = yield* Stream.fromIterable(src.events).pipe(
        Debezium.changes(Customer),
        Stream.runCollect
      )
      const state = applyAll(changes)
      assert.deepStrictEqual(state, [
        { id: 1001, first_name: "Sally", last_name: "Thomas", email: "sally@acme.com" },
        { id: 1004, first_name: "Anne Marie", last_name: "Kretchmar", email: "annek@noanswer.org" },
        { id: 1005, first_name: "Sarah", last_name: "Thompson", email: "kitt@acme.com" },
        { id: 1013, first_name: "Edward", last_name: "Walker", email: "ed@walker.com" }
      ])
      assert.deepStrictEqual(state, [...src.rows.values()].sort((a, b) => a.id - b.id))
    }))

  it.effect("random workloads, in each form (wrapped, payload only, flattened), end in the source's state", () =>
    Effect.gen(function*() {
      let seed = 42
      const random = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2147483648
        return seed % n
      }
      for (let run = 0; run < 20; run++) {
        const src = mysqlSource()
        for (let id = 1; id <= 5; id++) {
          src.snapshot({ id, first_name: `f${id}`, last_name: `l${id}`, email: `${id}@x` })
        }
        for (let step = 0; step < 60; step++) {
          const ids = [...src.rows.keys()]
          const id = ids[random(Math.max(ids.length, 1))]
          const k = random(10)
          if (id === undefined || k < 3) {
            const fresh = 100 + run * 1000 + step
            src.insert({ id: fresh, first_name: `n${step}`, last_name: "new", email: `${fresh}@x` })
          } else if (k < 6) src.update(id, { email: `${id}.${step}@x` })
          else if (k < 7) src.update(id, { id: 5000 + run * 1000 + step })
          else src.remove(id)
        }
        const expected = [...src.rows.values()].sort((a, b) => a.id - b.id)
        const wrapped = src.events
        const plain = src.events.map((e) => (e === null ? null : (e as any).payload))
        const flattened = plain.flatMap((e) =>
          e === null
            ? [null]
            : e.op === "d"
            ? [{ ...e.before, __deleted: "true", __op: "d" }]
            : [{ ...e.after, __deleted: "false", __op: e.op }]
        )
        for (const [events, options] of [[wrapped, {}], [plain, {}], [flattened, { flattened: true }]] as const) {
          const out = yield* Stream.fromIterable(events).pipe(Debezium.changes(Customer, options), Stream.runCollect)
          assert.deepStrictEqual(applyAll(out), expected, `run ${run}`)
        }
      }
    }))
})

// ---------------------------------------------------------------------------------------------------------------
// the example of docs/debezium.md (kept here so that it is type-checked)
// ---------------------------------------------------------------------------------------------------------------

describe("docs/debezium.md example", () => {
  it.effect("compiles and runs", () =>
    Effect.gen(function*() {
      // --- docs/debezium.md: example ---
      const Order = Schema.Struct({
        id: ColumnType.BigInt,
        amount: ColumnType.Decimal(10, 2),
        order_date: ColumnType.Date,
        updated_at: ColumnType.annotate(Schema.String, "DATETIME"),
        note: Schema.NullOr(ColumnType.Varchar(255))
      })

      // one parsed Kafka record value per element, in partition order (null = a tombstone)
      const records: Stream.Stream<unknown, never> = Stream.make(
        {
          op: "c",
          before: null,
          after: { id: 1, amount: "AeI6", order_date: 17702, updated_at: 1529507596945104, note: null }
        },
        { op: "d", before: { id: 1 }, after: null },
        null
      )

      const changes = records.pipe(
        Debezium.changes(Order, {
          // events without the Connect schema (schemas.enable=false) say nothing about units
          fields: { updated_at: Debezium.types.MicroTimestamp },
          key: ["id"]
        })
      ) // Stream<Change<Order>, DebeziumError | ParseError>
      // --- end of example ---

      const out = Chunk.toArray(yield* Stream.runCollect(changes))
      assert.strictEqual(out.length, 2)
      const row = upsertRow(out[0]!)
      assert.strictEqual(BigDecimal.format(row.amount), "1234.5")
      assert.strictEqual(row.updated_at, "2018-06-20 15:13:16.945104")
      assert.deepStrictEqual(deleteKey(out[1]!), { id: 1 })
    }))
})
