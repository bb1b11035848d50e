/**
 * The batcher (internal/sink/batcher.ts) with rows of many tables in one chunk: what each table gets does not depend
 * on how the rows are chunked. Each table gets the loads it gets when every row comes alone (one-row chunks), with
 * its batches full and its shapes cut at the same rows; an error names the first row that fails in stream order,
 * whatever table comes first in the chunk. What a row loop that adds a chunk's rows lane by lane must keep
 * (docs/benchmark.md, session 16: tried, not kept).
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Ref, Schema, Stream } from "effect"
import { Change, StarRocksSink } from "../src/index.js"
import { config, layerWith, recordingClient } from "./recordingClient.js"

const Item = Schema.Struct({ id: Schema.Number, name: Schema.NullOr(Schema.String), qty: Schema.Number })
type Item = typeof Item.Type
type In = Item | Change.Change<Item>

const tableOf = (item: In): string => {
  const row = (Change.isChange(item) ? Change.row(item) : item) as { readonly id?: number }
  return `t${(row.id ?? 0) % 7}`
}

/** The loads of each table, in order: the columns header and the lines of each. */
const run = (items: ReadonlyArray<In>, chunk: number) =>
  Effect.gen(function*() {
    const { calls, client } = yield* recordingClient
    yield* Stream.fromIterable(items).pipe(
      Stream.rechunk(chunk),
      Stream.run(StarRocksSink.make(StarRocksSink.byRoute(Item, tableOf, { primaryKey: ["id"] }))),
      Effect.provide(layerWith(config({ maxRows: 37 }), client))
    )
    const byTable: Record<string, Array<string>> = {}
    for (const c of yield* Ref.get(calls)) {
      ;(byTable[c.table] ??= []).push(
        `${c.headers["columns"]} ${c.headers["partial_update"] ?? ""}|${c.lines.join(";")}`
      )
    }
    return byTable
  })

describe("batcher: rows of many tables in one chunk", () => {
  it.effect("each table gets the loads one-row chunks give it: full batches and shape cuts at the same rows", () =>
    Effect.gen(function*() {
      // 3,000 rows over 7 tables (a segment holds rows of all of them), batches full every 37 rows of a table,
      // and a table's shape cut by partial updates and deletes in the middle of segments
      const items: Array<In> = Array.from({ length: 3_000 }, (_, i): In =>
        i % 97 === 5
          ? Change.update<Item>({ id: i, qty: i })
          : i % 211 === 9
          ? Change.delete<Item>({ id: i })
          : { id: i, name: i % 13 === 0 ? null : `n${i}`, qty: i % 5 })
      const grouped = yield* run(items, 3_000)
      const alone = yield* run(items, 1)
      assert.deepStrictEqual(Object.keys(grouped).sort(), ["t0", "t1", "t2", "t3", "t4", "t5", "t6"])
      assert.deepStrictEqual(grouped, alone)
      assert.isTrue(Object.values(grouped).every((loads) => loads.length > 10))
    }))

  it.effect("an error names the first row that fails in stream order, not the first of the table added first", () =>
    Effect.gen(function*() {
      const { calls, client } = yield* recordingClient
      const items: Array<In> = Array.from({ length: 100 }, (_, i) => ({ id: i, name: `n${i}`, qty: i }))
      // table t0 comes first in the chunk (row 0); its bad row is row 70, t3's is row 45 (a partial update into a
      // table not known as a Primary Key table)
      items[70] = Change.update<Item>({ id: 70, qty: 1 })
      items[45] = Change.update<Item>({ id: 45, qty: 1 })
      const error = yield* Stream.fromChunk(Chunk.fromIterable(items)).pipe(
        Stream.run(StarRocksSink.make(StarRocksSink.byRoute(Item, tableOf))),
        Effect.provide(layerWith(config({ maxRows: 37 }), client)),
        Effect.flip
      )
      assert.strictEqual(error._tag, "RowEncodeError")
      if (error._tag === "RowEncodeError") {
        assert.strictEqual(error.row, 45)
        assert.strictEqual(error.table, "db.t3")
      }
      // no batch was full (15 rows a table at most): nothing went
      assert.strictEqual((yield* Ref.get(calls)).length, 0)
    }))
})
