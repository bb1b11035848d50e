/**
 * Rejected rows have a place (issue #9): rows the encoder refuses and rows StarRocks filters go to the dead-letter
 * sink, within its budget; beyond it, and when the dead-letter sink fails, the stream fails with a typed error.
 * Against the emulator (packages/testkit) over real sockets, which filters under strict mode and serves the
 * `ErrorURL` log in StarRocks' format.
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, Logger, LogLevel, Metric, Ref, Schema, Sink, Stream } from "effect"
import type { StarRocksConfig } from "../src/index.js"
import { Checkpoint, Checkpointer, DeadLetter, LoadClient, SinkMetrics, StarRocksSink } from "../src/index.js"
import * as ErrorLog from "../src/internal/client/errorLog.js"
import * as Fixture from "./emulatorFixture.js"

class Emulator extends Context.Tag("test/Emulator")<Emulator, StarRocksEmulator.StarRocksEmulator>() {}

const EmulatorLive = Layer.scoped(Emulator, StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 1 }))

const newTable = (emulator: StarRocksEmulator.StarRocksEmulator, prefix = "dl") =>
  Fixture.duplicateTable(emulator, `${prefix}_`, [{ name: "id", type: "INT" }, { name: "name", type: "VARCHAR(8)" }])

const configFor = (
  emulator: StarRocksEmulator.StarRocksEmulator,
  table: string,
  overrides: Partial<StarRocksConfig.Options> = {}
) => Fixture.configOf(emulator.fe, table, { maxRetries: 0, ...overrides })

const Row = Schema.Struct({ id: Schema.Number, name: Schema.String })
type Row = typeof Row.Type

/** 10,000 rows; `bad` indexes get NaN (the encoder refuses it) or a 9-byte name (StarRocks filters it). */
const rowsWith = (kind: "refused" | "filtered", bad: ReadonlyArray<number>, n = 10_000): Array<Row> => {
  const rows: Array<Row> = []
  for (let i = 0; i < n; i++) rows.push({ id: i, name: `n${i % 1000}` })
  for (const i of bad) rows[i] = kind === "refused" ? { id: Number.NaN, name: `bad${i}` } : { id: i, name: "ninebytes" }
  return rows
}

/** A dead-letter sink that keeps what it gets. */
const collecting = Effect.map(
  Ref.make<ReadonlyArray<DeadLetter.Rejected>>([]),
  (ref) => ({
    ref,
    sink: Sink.forEach((r: DeadLetter.Rejected) => Ref.update(ref, (all) => [...all, r]))
  })
)

const run = <A, I>(
  schema: Schema.Schema<A, I>,
  rows: ReadonlyArray<A>,
  config: StarRocksConfig.StarRocksConfig,
  options?: StarRocksSink.MakeOptions
) =>
  Stream.fromIterable(rows).pipe(
    Stream.rechunk(500),
    Stream.run(StarRocksSink.make(schema, options)),
    Effect.provide(StarRocksSink.layer(config)),
    Logger.withMinimumLogLevel(LogLevel.None)
  )

const BAD = [17, 5_000, 9_999]

describe("error log parsing", () => {
  it("a strict-mode line: the quoted value is skipped by its byte length, even when it holds '. Row: '", () => {
    const [e] = ErrorLog.parse(
      "Error: The field (name = name, pos = 1) is out of range. Type: VARCHAR(8), Value length: 11, Value: é. Row: " +
        "xx. Row: 1,\"é. Row: xx\"\n\n"
    )
    assert.deepStrictEqual(e, {
      reason: "The field (name = name, pos = 1) is out of range. Type: VARCHAR(8), Value length: 11, Value: é. Row: xx",
      text: "1,\"é. Row: xx\"",
      column: "name"
    })
  })

  it("other reasons end at the first '. Row: '; a summary line and an unknown line keep their whole text", () => {
    const entries = ErrorLog.parse(
      "junk before\n" +
        "Error: Target column count: 2 doesn't match source value column count: 1. Column separator: ',', Row " +
        "delimiter: '\\n'. Row: 2\n" +
        "Error: NULL value in non-nullable column 'id'. Row: {\"id\":null}\n" +
        "Error: Reason: too many errors\n" +
        "Error: JSON parse error: x. Row: 3,\"a\n" +
        "b\"\n"
    )
    assert.deepStrictEqual(entries, [
      { reason: ErrorLog.NOT_UNDERSTOOD, text: "junk before" },
      {
        reason:
          "Target column count: 2 doesn't match source value column count: 1. Column separator: ',', Row delimiter: '\\n'",
        text: "2"
      },
      { reason: "NULL value in non-nullable column 'id'", text: "{\"id\":null}", column: "id" },
      { reason: "Reason: too many errors", text: "Error: Reason: too many errors" },
      // a record that spans lines: the next line continues its text
      { reason: "JSON parse error: x", text: "3,\"a\nb\"" }
    ])
  })

  it("redaction hides the row's text and the value a reason quotes", () => {
    const [e] = ErrorLog.parse(
      "Error: The field (name = name, pos = 1) is out of range. Type: VARCHAR(8), Value length: 9, Value: " +
        "secret123. Row: 1,secret123"
    )
    assert.deepStrictEqual(ErrorLog.redact(e!), {
      reason: "The field (name = name, pos = 1) is out of range. Type: VARCHAR(8), Value length: 9, Value: <redacted>",
      text: "<redacted>",
      column: "name"
    })
  })
})

layer(EmulatorLive, { excludeTestServices: true, timeout: "60 seconds" })((it) => {
  describe("at-least-once", () => {
    it.effect("3 rows the encoder refuses in 10,000 go to the dead letter; the other 9,997 land", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator)
        const dead = yield* collecting
        const summary = yield* run(Row, rowsWith("refused", BAD), configFor(emulator, table), {
          deadLetter: { sink: dead.sink, maxRows: 3 }
        })
        const stored = yield* emulator.rows("db", table)
        assert.strictEqual(stored.length, 9_997)
        assert.isFalse(stored.some((r) => BAD.includes(Number(r["id"]))))
        const got = yield* Ref.get(dead.ref)
        assert.deepStrictEqual(
          got.map((r) => r._tag === "Refused" ? [r.table, r.index, r.column, (r.row as Row).name] : r._tag),
          BAD.map((i) => [`db.${table}`, i, "id", `bad${i}`])
        )
        for (const r of got) if (r._tag === "Refused") assert.match(r.reason, /NaN/)
        assert.strictEqual(summary.rows, 9_997)
        assert.strictEqual(summary.deadLetteredRows, 3)
        assert.strictEqual(summary.tables[`db.${table}`]!.deadLetteredRows, 3)
        // the records have a Schema: they travel as JSON and come back
        const json = JSON.stringify(Schema.encodeSync(DeadLetter.Rejected)(got[0]!))
        const back = Schema.decodeUnknownSync(DeadLetter.Rejected)(JSON.parse(json))
        assert.instanceOf(back, DeadLetter.Refused)
        // (NaN is null in JSON)
        assert.deepStrictEqual(
          back,
          new DeadLetter.Refused({ ...(got[0] as DeadLetter.Refused), row: { id: null, name: "bad17" } })
        )
      }))

    it.effect("3 rows StarRocks filters (strict mode) in a batch of 10,000 go to the dead letter with their reasons", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator)
        const dead = yield* collecting
        const config = configFor(emulator, table)
        const summary = yield* run(Row, rowsWith("filtered", BAD), config, { deadLetter: { sink: dead.sink } })
        const stored = yield* emulator.rows("db", table)
        assert.strictEqual(stored.length, 9_997)
        const got = yield* Ref.get(dead.ref)
        assert.strictEqual(got.length, 3)
        for (const [k, r] of got.entries()) {
          assert.strictEqual(r._tag, "Filtered")
          if (r._tag !== "Filtered") continue
          assert.strictEqual(r.table, `db.${table}`)
          assert.strictEqual(r.column, "name")
          assert.match(r.reason, /out of range/)
          assert.strictEqual(r.text, `"${BAD[k]}","ninebytes"`)
        }
        assert.strictEqual(summary.loads, 1)
        assert.strictEqual(summary.rows, 10_000)
        assert.strictEqual(summary.filteredRows, 3)
        assert.strictEqual(summary.deadLetteredRows, 3)
        // the sink sent max_filter_ratio (1: only a count budget) with its loads
        const loads = (yield* emulator.requests).filter((r) => r.path.includes(`/${table}/_stream_load`))
        for (const r of loads) assert.strictEqual(r.headers["max_filter_ratio"], "1")
      }))

    it.effect("filtered rows the error log does not list come as one Unlisted record with their count", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator)
        const dead = yield* collecting
        const bad = Array.from({ length: 60 }, (_, i) => i * 10)
        const summary = yield* run(Row, rowsWith("filtered", bad, 1_000), configFor(emulator, table), {
          deadLetter: { sink: dead.sink }
        })
        assert.strictEqual((yield* emulator.rows("db", table)).length, 940)
        const got = yield* Ref.get(dead.ref)
        const listed = got.filter((r) => r._tag === "Filtered")
        const unlisted = got.filter((r) => r._tag === "Unlisted")
        assert.strictEqual(listed.length + unlisted.reduce((n, r) => n + (r._tag === "Unlisted" ? r.rows : 0), 0), 60)
        assert.strictEqual(unlisted.length, 1)
        assert.isAbove(listed.length, 0)
        assert.strictEqual(summary.deadLetteredRows, 60)
      }))

    it.effect("with sink.sanitize-error-log the filtered rows' text is redacted", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator)
        const dead = yield* collecting
        yield* run(Row, rowsWith("filtered", [3], 10), configFor(emulator, table, { sanitizeErrorLog: true }), {
          deadLetter: { sink: dead.sink }
        })
        const got = yield* Ref.get(dead.ref)
        assert.strictEqual(got.length, 1)
        const r = got[0]!
        assert.strictEqual(r._tag, "Filtered")
        if (r._tag !== "Filtered") return
        assert.strictEqual(r.text, "<redacted>")
        assert.notInclude(r.reason, "ninebytes")
      }))

    it.effect("over maxRows: a DeadLetterError naming the table and the counts", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator)
        const dead = yield* collecting
        const refused = yield* Effect.flip(
          run(Row, rowsWith("refused", BAD), configFor(emulator, table), {
            deadLetter: { sink: dead.sink, maxRows: 2 }
          })
        )
        assert.strictEqual(refused._tag, "DeadLetterError")
        if (refused._tag !== "DeadLetterError") return
        assert.strictEqual(refused.reason, "OverBudget")
        assert.strictEqual(refused.table, `db.${table}`)
        assert.strictEqual(refused.refusedRows, 3)
        assert.strictEqual(refused.filteredRows, 0)
        assert.match(refused.message, /3 rows rejected .* maxRows 2/)
        // the row over the budget has its place too
        assert.deepStrictEqual((yield* Ref.get(dead.ref)).map((r) => r._tag === "Refused" ? r.index : -1), BAD)
        // what landed is told, as for every failure of the at-least-once sink
        assert.isDefined(refused.landed)

        const table2 = yield* newTable(emulator)
        const filtered = yield* Effect.flip(
          run(Row, rowsWith("filtered", BAD), configFor(emulator, table2), {
            deadLetter: { sink: dead.sink, maxRows: 2 }
          })
        )
        assert.strictEqual(filtered._tag, "DeadLetterError")
        if (filtered._tag !== "DeadLetterError") return
        assert.strictEqual(filtered.reason, "OverBudget")
        assert.strictEqual(filtered.table, `db.${table2}`)
        assert.strictEqual(filtered.filteredRows, 3)
      }))

    it.effect("over maxFilterRatio: StarRocks fails the load, the sink a DeadLetterError; refusals count per batch", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator)
        const dead = yield* collecting
        const error = yield* Effect.flip(
          run(Row, rowsWith("filtered", BAD), configFor(emulator, table), {
            deadLetter: { sink: dead.sink, maxFilterRatio: 0.0001 }
          })
        )
        assert.strictEqual(error._tag, "DeadLetterError")
        if (error._tag !== "DeadLetterError") return
        assert.strictEqual(error.reason, "OverBudget")
        assert.strictEqual(error.table, `db.${table}`)
        assert.match(error.message, /too many filtered rows \(3\)/)
        assert.deepStrictEqual(yield* emulator.rows("db", table), [])
        const loads = (yield* emulator.requests).filter((r) => r.path.includes(`/${table}/_stream_load`))
        for (const r of loads) assert.strictEqual(r.headers["max_filter_ratio"], "0.0001")

        // the same share within the ratio lands
        const table2 = yield* newTable(emulator)
        const summary = yield* run(Row, rowsWith("refused", BAD), configFor(emulator, table2), {
          deadLetter: { sink: dead.sink, maxFilterRatio: 0.001 }
        })
        assert.strictEqual(summary.rows, 9_997)
        const table3 = yield* newTable(emulator)
        const refused = yield* Effect.flip(
          run(Row, rowsWith("refused", BAD), configFor(emulator, table3), {
            deadLetter: { sink: dead.sink, maxFilterRatio: 0.0001 }
          })
        )
        assert.strictEqual(refused._tag, "DeadLetterError")
        if (refused._tag !== "DeadLetterError") return
        assert.strictEqual(refused.reason, "OverBudget")
        assert.match(refused.message, /refused 3 of a batch's 10000 rows/)
      }))

    it.effect("a dead-letter sink that fails fails the stream", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator)
        const failing = Sink.forEach((_: DeadLetter.Rejected) => Effect.fail("disk full"))
        const error = yield* Effect.flip(
          run(Row, rowsWith("refused", BAD), configFor(emulator, table), { deadLetter: { sink: failing } })
        )
        assert.strictEqual(error._tag, "DeadLetterError")
        if (error._tag !== "DeadLetterError") return
        assert.strictEqual(error.reason, "SinkFailed")
        assert.strictEqual(error.error, "disk full")
      }))

    it.effect("a dead-letter sink that ends early fails the stream", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator)
        const error = yield* Effect.flip(
          run(Row, rowsWith("refused", BAD), configFor(emulator, table), { deadLetter: { sink: Sink.head() } })
        )
        assert.strictEqual(error._tag, "DeadLetterError")
        if (error._tag !== "DeadLetterError") return
        assert.strictEqual(error.reason, "SinkFailed")
        assert.match(error.message, /ended before the stream/)
      }))

    it.effect("without a dead letter a refused row fails the stream as before; bad options are typed errors", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator)
        const error = yield* Effect.flip(run(Row, rowsWith("refused", BAD), configFor(emulator, table)))
        assert.strictEqual(error._tag, "RowEncodeError")
        const dead = yield* collecting
        const twice = yield* Effect.flip(
          run(Row, [], configFor(emulator, table, { properties: { max_filter_ratio: "0.1" } }), {
            deadLetter: { sink: dead.sink, maxFilterRatio: 0.2 }
          })
        )
        assert.strictEqual(twice._tag, "DeadLetterError")
        if (twice._tag === "DeadLetterError") assert.strictEqual(twice.reason, "Invalid")
        const ratio = yield* Effect.flip(
          run(Row, [], configFor(emulator, table), { deadLetter: { sink: dead.sink, maxFilterRatio: 2 } })
        )
        assert.strictEqual(ratio._tag, "DeadLetterError")
      }))

    it.effect("several tables: each table's rejected rows are counted in the summary and the metric", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const a = yield* newTable(emulator)
        const b = yield* newTable(emulator)
        const A = Schema.TaggedStruct(a, { id: Schema.Number, name: Schema.String })
        const B = Schema.TaggedStruct(b, { id: Schema.Number, name: Schema.String })
        const dead = yield* collecting
        const rows: Array<typeof A.Type | typeof B.Type> = []
        for (let i = 0; i < 100; i++) {
          rows.push({ _tag: a, id: i, name: i === 5 ? "ninebytes" : "a" })
          rows.push({ _tag: b, id: i === 7 || i === 8 ? Number.NaN : i, name: "b" })
        }
        const summary = yield* Stream.fromIterable(rows).pipe(
          Stream.run(StarRocksSink.make(
            StarRocksSink.byTag({ [a]: StarRocksSink.table(A), [b]: StarRocksSink.table(B) }),
            { deadLetter: { sink: dead.sink } }
          )),
          Effect.provide(StarRocksSink.layer(configFor(emulator, a))),
          Logger.withMinimumLogLevel(LogLevel.None)
        )
        assert.strictEqual(summary.tables[`db.${a}`]!.deadLetteredRows, 1)
        assert.strictEqual(summary.tables[`db.${b}`]!.deadLetteredRows, 2)
        assert.strictEqual(summary.deadLetteredRows, 3)
        assert.strictEqual((yield* emulator.rows("db", a)).length, 99)
        assert.strictEqual((yield* emulator.rows("db", b)).length, 98)
        const counter = yield* Metric.value(SinkMetrics.totalDeadLetteredRows.pipe(Metric.tagged("table", `db.${b}`)))
        assert.strictEqual(counter.count, 2)
        const got = yield* Ref.get(dead.ref)
        assert.deepStrictEqual(got.map((r) => [r._tag, r.table]).sort(), [
          ["Filtered", `db.${a}`],
          ["Refused", `db.${b}`],
          ["Refused", `db.${b}`]
        ])
      }))

    it.effect("a row no table takes (byTag's unknown _tag) is refused with table '(no table)'", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const a = yield* newTable(emulator)
        const A = Schema.TaggedStruct(a, { id: Schema.Number, name: Schema.String })
        const dead = yield* collecting
        const rows: Array<unknown> = [{ _tag: a, id: 1, name: "x" }, { _tag: "nowhere", id: 2, name: "y" }, {
          _tag: a,
          id: 3,
          name: "z"
        }]
        const summary = yield* Stream.fromIterable(rows as Array<typeof A.Type>).pipe(
          Stream.run(StarRocksSink.make(StarRocksSink.byTag({ [a]: StarRocksSink.table(A) }), {
            deadLetter: { sink: dead.sink }
          })),
          Effect.provide(StarRocksSink.layer(configFor(emulator, a))),
          Logger.withMinimumLogLevel(LogLevel.None)
        )
        assert.strictEqual((yield* emulator.rows("db", a)).length, 2)
        const got = yield* Ref.get(dead.ref)
        assert.strictEqual(got.length, 1)
        const r = got[0]!
        assert.strictEqual(r._tag, "Refused")
        if (r._tag !== "Refused") return
        assert.strictEqual(r.table, "(no table)")
        assert.strictEqual(r.index, 1)
        assert.strictEqual(r.column, "_tag")
        assert.strictEqual(summary.deadLetteredRows, 1)
      }))

    it.effect("an error log that cannot be read: the filtered rows come as Unlisted, with why", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator)
        const dead = yield* collecting
        const config = configFor(emulator, table)
        const unreadable = Layer.effect(
          LoadClient.LoadClient,
          Effect.map(LoadClient.LoadClient, (client) => ({
            ...client,
            errorLogEntries: () => Effect.succeed({ entries: [], unavailable: "HTTP 401" })
          }))
        ).pipe(Layer.provide(StarRocksSink.layer(config)))
        yield* Stream.fromIterable(rowsWith("filtered", [1, 2], 10)).pipe(
          Stream.run(StarRocksSink.make(Row, { deadLetter: { sink: dead.sink } })),
          Effect.provide(Layer.merge(StarRocksSink.layer(config), unreadable)),
          Logger.withMinimumLogLevel(LogLevel.None)
        )
        const got = yield* Ref.get(dead.ref)
        assert.strictEqual(got.length, 1)
        const r = got[0]!
        assert.strictEqual(r._tag, "Unlisted")
        if (r._tag !== "Unlisted") return
        assert.strictEqual(r.rows, 2)
        assert.match(r.reason, /could not be read: HTTP 401/)
      }))

    it.effect("pre-serialized records: a record that is not one JSON object goes to the dead letter as it came", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator)
        const dead = yield* collecting
        const records = ["{\"id\":1,\"name\":\"a\"}", "[1,2]", "{\"id\":3,\"name\":\"ninebytes\"}", "{\"id\":4}"]
        const summary = yield* Stream.fromIterable(records).pipe(
          Stream.run(StarRocksSink.make(StarRocksSink.raw({ format: "json" }), { deadLetter: { sink: dead.sink } })),
          Effect.provide(StarRocksSink.layer(configFor(emulator, table))),
          Logger.withMinimumLogLevel(LogLevel.None)
        )
        assert.strictEqual((yield* emulator.rows("db", table)).length, 2)
        const got = yield* Ref.get(dead.ref)
        assert.deepStrictEqual(got.map((r) => r._tag), ["Refused", "Filtered"])
        const [refused, filtered] = got
        if (refused?._tag === "Refused") {
          assert.strictEqual(refused.row, "[1,2]")
          assert.strictEqual(refused.index, 1)
          assert.strictEqual(refused.column, "(record)")
        }
        if (filtered?._tag === "Filtered") assert.include(filtered.text, "ninebytes")
        assert.strictEqual(summary.deadLetteredRows, 2)
      }))
  })

  describe("exactly-once", () => {
    it.effect("refused and filtered rows go to the dead letter; the rest land once", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator)
        const dead = yield* collecting
        const rows = rowsWith("refused", [10, 500], 1_000)
        rows[700] = { id: 700, name: "ninebytes" }
        const summary = yield* Stream.fromIterable(rows).pipe(
          Stream.rechunk(50),
          Checkpoint.withBarriers({ position: (r: Row) => r.id, everyRows: 250 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, {
            position: Schema.Number,
            deadLetter: { sink: dead.sink, maxRows: 3 }
          })),
          Effect.provide(
            Layer.merge(StarRocksSink.layer(configFor(emulator, table)), Checkpointer.layerMemoryForTests)
          ),
          Logger.withMinimumLogLevel(LogLevel.None)
        )
        const stored = yield* emulator.rows("db", table)
        assert.strictEqual(stored.length, 997)
        const got = yield* Ref.get(dead.ref)
        assert.deepStrictEqual(got.map((r) => r._tag), ["Refused", "Refused", "Filtered"])
        assert.strictEqual(summary.deadLetteredRows, 3)
      }))

    it.effect("over budget: a DeadLetterError, and nothing after the last checkpoint lands", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator)
        const dead = yield* collecting
        const error = yield* Stream.fromIterable(rowsWith("refused", [10, 500], 1_000)).pipe(
          Checkpoint.withBarriers({ position: (r: Row) => r.id, everyRows: 250 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, {
            position: Schema.Number,
            deadLetter: { sink: dead.sink, maxRows: 1 }
          })),
          Effect.provide(
            Layer.merge(StarRocksSink.layer(configFor(emulator, table)), Checkpointer.layerMemoryForTests)
          ),
          Logger.withMinimumLogLevel(LogLevel.None),
          Effect.flip
        )
        assert.strictEqual(error._tag, "DeadLetterError")
        if (error._tag === "DeadLetterError") assert.strictEqual(error.reason, "OverBudget")
        // the two checkpoints before the second refusal (row 500) landed: 500 rows, one of them refused
        assert.strictEqual((yield* emulator.rows("db", table)).length, 499)
      }))
  })
})
