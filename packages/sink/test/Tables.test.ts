/**
 * The sink's stages without a server: what loads a stream of rows and changes becomes (shapes, headers, order),
 * routing, the per-table summary, and the interval timer on the TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Ref, Schema, Stream, TestClock } from "effect"
import { Change, LoadClient, StarRocksSink } from "../src/index.js"
import * as Lane from "../src/internal/sink/lane.js"
import { config, layerWith, recordingClient } from "./recordingClient.js"

const Item = Schema.Struct({ id: Schema.Number, name: Schema.NullOr(Schema.String), qty: Schema.Number })
type Item = typeof Item.Type

describe("StarRocksSink: tables and change rows", () => {
  it.effect("a change stream becomes loads cut where the shape changes, in order, each with its headers", () =>
    Effect.gen(function*() {
      const { calls, client } = yield* recordingClient
      const items: Array<Item | Change.Change<Item>> = [
        { id: 1, name: "a", qty: 1 },
        Change.upsert<Item>({ id: 2, name: "b", qty: 2 }),
        Change.update<Item>({ id: 1, qty: 5 }),
        Change.update<Item>({ id: 2, qty: 6 }),
        Change.update<Item>({ id: 2, name: "B" }),
        Change.delete<Item>({ id: 1 }),
        { id: 3, name: "c", qty: 3 }
      ]
      const summary = yield* Stream.fromIterable(items).pipe(
        Stream.run(StarRocksSink.make(Item, { primaryKey: ["id"], partialUpdateMode: "column" })),
        Effect.provide(layerWith(config({ properties: { strict_mode: "true" } }), client))
      )
      assert.strictEqual(summary.rows, 7)
      assert.strictEqual(summary.loads, 4)
      const made = yield* Ref.get(calls)
      assert.deepStrictEqual(made.map((c) => c.lines), [
        ["\"1\",\"a\",\"1\"", "\"2\",\"b\",\"2\""],
        ["\"1\",\"5\"", "\"2\",\"6\""],
        ["\"2\",\"B\""],
        // the delete carries only the key: the other columns hold placeholders StarRocks does not read
        ["\"1\",\\\\N,\"0\",1", "\"3\",\"c\",\"3\",0"]
      ])
      assert.deepStrictEqual(made.map((c) => c.headers["columns"]), [
        "id,name,qty",
        "id,qty",
        "id,name",
        "id,name,qty,__op"
      ])
      assert.deepStrictEqual(made.map((c) => c.headers["partial_update"]), [undefined, "true", "true", undefined])
      assert.strictEqual(made[1]!.headers["partial_update_mode"], "column")
      // the config's sink.properties.* go with every load
      assert.isTrue(made.every((c) => c.headers["strict_mode"] === "true"))
    }))

  it.effect("a partial update into a table not known as a Primary Key table is refused, naming table and row", () =>
    Effect.gen(function*() {
      const { calls, client } = yield* recordingClient
      const error = yield* Stream.make<Array<Item | Change.Change<Item>>>(
        { id: 1, name: "a", qty: 1 },
        Change.update<Item>({ id: 1, qty: 2 })
      ).pipe(
        Stream.run(StarRocksSink.make(Item)),
        Effect.provide(layerWith(config(), client)),
        Effect.flip
      )
      assert.strictEqual(error._tag, "RowEncodeError")
      if (error._tag === "RowEncodeError") {
        assert.strictEqual(error.table, "db.t")
        assert.strictEqual(error.row, 1)
        assert.include(error.message, "not known as a Primary Key table")
      }
      assert.strictEqual((yield* Ref.get(calls)).length, 0)
    }))

  it.effect("a partial update without its key column is refused", () =>
    Effect.gen(function*() {
      const { client } = yield* recordingClient
      const error = yield* Stream.make(Change.update<Item>({ qty: 2 })).pipe(
        Stream.run(StarRocksSink.make(Item, { primaryKey: ["id"] })),
        Effect.provide(layerWith(config(), client)),
        Effect.flip
      )
      assert.strictEqual(error._tag, "RowEncodeError")
      if (error._tag === "RowEncodeError") assert.strictEqual(error.column, "id")
    }))

  it.effect("a merge condition on a key column is refused at start", () =>
    Effect.gen(function*() {
      const { client } = yield* recordingClient
      const error = yield* Stream.make<Array<Item>>({ id: 1, name: "a", qty: 1 }).pipe(
        Stream.run(StarRocksSink.make(Item, { primaryKey: ["id"], mergeCondition: "id" })),
        Effect.provide(layerWith(config(), client)),
        Effect.flip
      )
      assert.strictEqual(error._tag, "TableSchemaError")
      assert.include(error.message, "is a key column")
    }))

  it.effect("routing by a function: tables appear as rows name them, each with its own labels and summary", () =>
    Effect.gen(function*() {
      const { calls, client } = yield* recordingClient
      const rows = Array.from({ length: 90 }, (_, i) => ({ id: i, name: `n${i}`, qty: i % 3 }))
      const summary = yield* Stream.fromIterable(rows).pipe(
        Stream.run(
          StarRocksSink.make(StarRocksSink.byRoute(Item, (row) => ({ database: "other", table: `q${row.qty}` })))
        ),
        Effect.provide(layerWith(config(), client))
      )
      assert.deepStrictEqual(Object.keys(summary.tables).sort(), ["other.q0", "other.q1", "other.q2"])
      assert.strictEqual(summary.tables["other.q1"]!.rows, 30)
      const made = yield* Ref.get(calls)
      assert.deepStrictEqual(made.map((c) => `${c.database}.${c.table}`).sort(), ["other.q0", "other.q1", "other.q2"])
      for (const c of made) assert.include(c.label, c.table)
    }))

  it.effect("a tagged union: _tag picks the table and is not sent", () =>
    Effect.gen(function*() {
      const { calls, client } = yield* recordingClient
      const A = Schema.TaggedStruct("a", { id: Schema.Number })
      const B = Schema.TaggedStruct("b", { id: Schema.Number, name: Schema.String })
      yield* Stream.make<Array<typeof A.Type | typeof B.Type>>(A.make({ id: 1 }), B.make({ id: 2, name: "x" })).pipe(
        Stream.run(StarRocksSink.make(StarRocksSink.byTag({
          a: StarRocksSink.table(A, { table: "ta" }),
          b: StarRocksSink.table(B, { format: "json" })
        }))),
        Effect.provide(layerWith(config(), client))
      )
      const made = yield* Ref.get(calls)
      const byTable = Object.fromEntries(made.map((c) => [c.table, c]))
      assert.deepStrictEqual(byTable["ta"]!.lines, ["\"1\""])
      assert.strictEqual(byTable["ta"]!.headers["columns"], "id")
      assert.deepStrictEqual(byTable["b"]!.lines, ["{\"id\":2,\"name\":\"x\"}"])
    }))

  it("the lanes of one sink share an encoder per schema and encoder options, and one buffer pool", () => {
    const encoders = Lane.makeEncoders(1_000_000)
    const Other = Schema.Struct({ id: Schema.Number })
    const a = encoders.get(Item, { timeZone: "UTC", columns: ["id", "name", "qty"] })
    assert.strictEqual(encoders.get(Item, { timeZone: "UTC", columns: ["id", "name", "qty"] }), a)
    assert.notStrictEqual(encoders.get(Item, { timeZone: "UTC", columns: ["id", "qty"] }), a)
    assert.notStrictEqual(encoders.get(Item, { timeZone: "+08:00", columns: ["id", "name", "qty"] }), a)
    assert.notStrictEqual(encoders.get(Other, { timeZone: "UTC", columns: ["id"] }), a)
    // another sink run has encoders of its own
    assert.notStrictEqual(
      Lane.makeEncoders(1_000_000).get(Item, { timeZone: "UTC", columns: ["id", "name", "qty"] }),
      a
    )
  })

  it.effect("the shared budget: many busy tables hold about half of max-bytes; a table alone still fills it", () =>
    Effect.gen(function*() {
      // every CSV line is 100 bytes, so rows pulled minus rows loaded, times 100, is what the lanes build
      const line = (id: number) => ({ id, name: "x".repeat(90 - String(id).length), qty: 0 })
      // (the row loop looks at the budget every 1,024 rows: max-bytes is large beside that)
      const maxBytes = 1_000_000
      const run = (rows: ReadonlyArray<Item>, route: (row: Item) => string) =>
        Effect.gen(function*() {
          const { calls, client } = yield* recordingClient
          let pulled = 0
          const building: Array<number> = []
          let loaded = 0
          const counting = LoadClient.fromPartial({
            ...client,
            loadBatch: (request) =>
              Effect.flatMap(client.loadBatch(request), (result) =>
                Effect.sync(() => {
                  // before this seal, the lanes built what was pulled and not yet loaded
                  building.push((pulled - loaded) * 100)
                  loaded += result.loadedRows
                  return result
                }))
          })
          yield* Stream.fromIterable(rows).pipe(
            Stream.rechunk(50),
            Stream.tap(() => Effect.sync(() => pulled++)),
            Stream.run(StarRocksSink.make(StarRocksSink.byRoute(Item, route))),
            Effect.provide(layerWith(config({ maxBytes, maxRows: 1_000_000 }), counting))
          )
          const made = yield* Ref.get(calls)
          assert.strictEqual(made.reduce((n, c) => n + c.lines.length, 0), rows.length)
          for (const c of made) for (const l of c.lines) assert.strictEqual(l.length + 1, 100)
          return { made, building }
        })
      // 10 tables, interleaved: the largest batch is sealed once the other lanes hold half of max-bytes, so the
      // lanes never build much more than half of it (sealing only at max-bytes: up to all of it)
      const rows = Array.from({ length: 60_000 }, (_, i) => line(i))
      const many = yield* run(rows, (row) => `t${row.id % 10}`)
      const peak = Math.max(...many.building.slice(0, -10))
      assert.isAtMost(peak, 0.8 * maxBytes, `the lanes built up to ${peak} bytes`)
      // the stream's end: every lane's batch goes in the last loads, and those hold at most about half of max-bytes
      const tail = many.made.slice(-10).reduce((n, c) => n + c.lines.length, 0) * 100
      assert.isAtMost(tail, 0.8 * maxBytes, `the last loads held ${tail} bytes`)
      // one busy table beside nine that got one row each: its batches still grow to max-bytes
      const alone = yield* run(rows, (row) => (row.id < 9 ? `t${row.id + 1}` : "t0"))
      const t0 = alone.made.filter((c) => c.table === "t0").map((c) => c.lines.length * 100)
      assert.isAtLeast(t0[0]!, maxBytes - 100)
    }))

  it.effect("interval-ms seals a table's batch on the TestClock, whatever the other tables do", () =>
    Effect.gen(function*() {
      const { calls, client } = yield* recordingClient
      const fiber = yield* Stream.make<Array<Item>>({ id: 1, name: "a", qty: 0 }, { id: 2, name: "b", qty: 1 }).pipe(
        Stream.concat(Stream.never),
        Stream.run(StarRocksSink.make(StarRocksSink.byRoute(Item, (row) => `q${row.qty}`))),
        Effect.provide(layerWith(config({ flushInterval: "5 seconds" }), client)),
        Effect.fork
      )
      yield* TestClock.adjust("4 seconds")
      assert.strictEqual((yield* Ref.get(calls)).length, 0)
      yield* TestClock.adjust("1 second")
      // the loads run in fibers of their own: let them run (no time passes)
      for (let i = 0; i < 100 && (yield* Ref.get(calls)).length < 2; i++) yield* Effect.yieldNow()
      const made = yield* Ref.get(calls)
      assert.deepStrictEqual(made.map((c) => c.table).sort(), ["q0", "q1"])
      yield* Fiber.interrupt(fiber)
    }))
})
