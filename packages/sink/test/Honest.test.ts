/**
 * Nothing is changed silently (issue #9): what StarRocks would change is refused (`strict_mode` by default), and the
 * CSV separators a user sets are the ones the rows travel with. Against the emulator (packages/testkit), which
 * implements strict mode and StarRocks' separator rules.
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer, Logger, LogLevel, Schema, Stream } from "effect"
import type { StarRocksConfig } from "../src/index.js"
import { StarRocksSink } from "../src/index.js"
import * as Fixture from "./emulatorFixture.js"

class Emulator extends Context.Tag("test/Emulator")<Emulator, StarRocksEmulator.StarRocksEmulator>() {}

const EmulatorLive = Layer.scoped(Emulator, StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 1 }))

const newTable = (
  emulator: StarRocksEmulator.StarRocksEmulator,
  columns: ReadonlyArray<{ name: string; type: string }>
) => Fixture.duplicateTable(emulator, "honest_", columns)

const configFor = (
  emulator: StarRocksEmulator.StarRocksEmulator,
  table: string,
  overrides: Partial<StarRocksConfig.Options> = {}
) => Fixture.configOf(emulator.fe, table, { maxRetries: 0, ...overrides })

const run = <A, I>(
  schema: Schema.Schema<A, I>,
  rows: ReadonlyArray<A>,
  config: StarRocksConfig.StarRocksConfig,
  options?: StarRocksSink.MakeOptions
) =>
  Stream.fromIterable(rows).pipe(
    Stream.run(StarRocksSink.make(schema, options)),
    Effect.provide(StarRocksSink.layer(config)),
    Logger.withMinimumLogLevel(LogLevel.None)
  )

const Named = Schema.Struct({ id: Schema.Number, name: Schema.String })
const namedColumns = [{ name: "id", type: "INT" }, { name: "name", type: "VARCHAR(8)" }]

layer(EmulatorLive, { excludeTestServices: true, timeout: "30 seconds" })((it) => {
  describe("strict_mode by default", () => {
    it.effect("a value StarRocks would store as NULL fails the load, with a typed error naming the table", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator, namedColumns)
        const error = yield* Effect.flip(
          run(Named, [{ id: 1, name: "short" }, { id: 2, name: "ninebytes" }], configFor(emulator, table))
        )
        assert.strictEqual(error._tag, "StreamLoadError")
        if (error._tag !== "StreamLoadError") return
        assert.strictEqual(error.table, `db.${table}`)
        assert.strictEqual(error.filteredRows, 1)
        assert.deepStrictEqual(yield* emulator.rows("db", table), [])
        const loads = (yield* emulator.requests).filter((r) => r.path.includes(`/${table}/_stream_load`))
        assert.isAbove(loads.length, 0)
        for (const r of loads) assert.strictEqual(r.headers["strict_mode"], "true")
      }))

    it.effect("strict_mode set by the user (any case) is sent as given: the value lands as NULL", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator, namedColumns)
        const summary = yield* run(
          Named,
          [{ id: 1, name: "short" }, { id: 2, name: "ninebytes" }],
          configFor(emulator, table, { properties: { Strict_Mode: "false" } })
        )
        // what StarRocks reports for a value it turned into NULL: nothing filtered, both rows loaded
        assert.strictEqual(summary.rows, 2)
        assert.strictEqual(summary.filteredRows, 0)
        const rows = [...(yield* emulator.rows("db", table))].sort((a, b) => Number(a.id) - Number(b.id))
        assert.deepStrictEqual(rows.map((r) => [Number(r.id), r.name]), [[1, "short"], [2, null]])
        const loads = (yield* emulator.requests).filter((r) => r.path.includes(`/${table}/_stream_load`))
        for (const r of loads) assert.strictEqual(r.headers["strict_mode"], "false")
      }))

    it.effect("a table's own strict_mode wins over the default", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator, namedColumns)
        const summary = yield* run(Named, [{ id: 2, name: "ninebytes" }], configFor(emulator, table), {
          properties: { strict_mode: "false" }
        })
        assert.strictEqual(summary.rows, 1)
        assert.deepStrictEqual((yield* emulator.rows("db", table)).map((r) => r.name), [null])
      }))
  })

  describe("CSV separators", () => {
    const Row = Schema.Struct({ id: Schema.Number, name: Schema.String, note: Schema.NullOr(Schema.String) })
    const columns = [
      { name: "id", type: "INT" },
      { name: "name", type: "VARCHAR(64)" },
      { name: "note", type: "VARCHAR(64)" }
    ]
    const rows = [
      { id: 1, name: "a|b", note: "line\nbreak" },
      { id: 2, name: "x,y", note: null },
      { id: 3, name: "q\"uote\\", note: "ctl\u0002" }
    ]

    it.effect("rows land with the user's '|' column separator and \\x02 row delimiter, sent as given", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator, columns)
        const summary = yield* run(
          Row,
          rows,
          configFor(emulator, table, { properties: { column_separator: "|", row_delimiter: "\\x02" } })
        )
        assert.strictEqual(summary.rows, 3)
        const stored = [...(yield* emulator.rows("db", table))].sort((a, b) => Number(a.id) - Number(b.id))
        assert.deepStrictEqual(
          stored.map((r) => [Number(r.id), r.name, r.note]),
          rows.map((r) => [r.id, r.name, r.note])
        )
        const loads = (yield* emulator.requests).filter((r) => r.path.includes(`/${table}/_stream_load`))
        assert.isAbove(loads.length, 0)
        for (const r of loads) {
          assert.strictEqual(r.headers["column_separator"], "|")
          assert.strictEqual(r.headers["row_delimiter"], "\\x02")
        }
      }))

    it.effect("a multi-byte hex column separator is decoded and used", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator, columns)
        const summary = yield* run(
          Row,
          rows,
          configFor(emulator, table, { properties: { column_separator: "\\x0103" } })
        )
        assert.strictEqual(summary.rows, 3)
        const loads = (yield* emulator.requests).filter((r) => r.path.includes(`/${table}/_stream_load`))
        for (const r of loads) assert.strictEqual(r.headers["column_separator"], "\\x0103")
        assert.strictEqual((yield* emulator.rows("db", table)).length, 3)
      }))

    it.effect("a separator the encoder cannot use is refused before any load, saying why", () =>
      Effect.gen(function*() {
        const emulator = yield* Emulator
        const table = yield* newTable(emulator, columns)
        const cases: ReadonlyArray<readonly [Record<string, string>, string]> = [
          [{ column_separator: "." }, "may hold its characters"],
          [{ column_separator: "\\x2" }, "not hexadecimal"],
          [{ row_delimiter: "\\x0d0a" }, "one-byte row delimiter"],
          [{ column_separator: "\\x01\\x03" }, "not hexadecimal"],
          [{ column_separator: "é" }, "ASCII"],
          [{ column_separator: "\\x7c02", row_delimiter: "\\x02" }, "holds the row delimiter"],
          [{ columns: "id,name,note" }, "table's `columns` option"],
          [{ enclose: "'" }, "encloses text"]
        ]
        for (const [properties, reason] of cases) {
          const error = yield* Effect.flip(run(Row, rows, configFor(emulator, table, { properties })))
          assert.strictEqual(error._tag, "TableSchemaError", JSON.stringify(properties))
          if (error._tag !== "TableSchemaError") continue
          assert.strictEqual(error.table, table)
          assert.include(error.reason, reason, JSON.stringify(properties))
        }
        const json = yield* Effect.flip(
          run(Row, rows, configFor(emulator, table, { format: "json", properties: { column_separator: "|" } }))
        )
        assert.strictEqual(json._tag, "TableSchemaError")
        assert.include((json as { reason: string }).reason, "applies to CSV only")
        const loads = (yield* emulator.requests).filter((r) => r.path.includes(`/${table}/_stream_load`))
        assert.strictEqual(loads.length, 0)
      }))
  })
})
