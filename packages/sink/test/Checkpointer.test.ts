/**
 * The exactly-once sink runs only on a Checkpointer the program gives (issue #9, defect 4): `StarRocksSink.layer`
 * provides none, so a program without one is a type error (the `@ts-expect-error` lines below are checked by
 * `tsc -b`: each fails the build when the line under it compiles), and a durable store given after the sink's
 * layer is the one used (test/integration/exactlyOnce.test.ts shows a restart recovering from it).
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Redacted, Schema, Stream } from "effect"
import { Checkpoint, Checkpointer, StarRocksConfig, StarRocksSink } from "../src/index.js"

const Row = Schema.Struct({ id: Schema.Number })
const options = { position: Schema.Number }
const config = StarRocksConfig.make({
  loadUrl: "127.0.0.1:1",
  database: "db",
  table: "t",
  username: "root",
  password: Redacted.make(""),
  semantic: "exactly-once"
})

const rows = Stream.make({ id: 1 }).pipe(Checkpoint.withBarriers({ position: (r: { id: number }) => r.id }))

/** An exactly-once program given only the sink's layer: Checkpointer is left in its requirements. */
const withoutStore = rows.pipe(
  Stream.run(StarRocksSink.exactlyOnce(Row, options)),
  Effect.provide(StarRocksSink.layer(config))
)
// @ts-expect-error a Checkpointer is required: StarRocksSink.layer gives none
export const runnableWithoutStore: Effect.Effect<unknown, unknown, never> = withoutStore

const recoverWithoutStore = StarRocksSink.recover(options).pipe(Effect.provide(StarRocksSink.layer(config)))
// @ts-expect-error recovery needs the Checkpointer too
export const recoverableWithoutStore: Effect.Effect<unknown, unknown, never> = recoverWithoutStore

// given by name (tests only), in either order, it compiles
export const runnableWithTestStore: Effect.Effect<unknown, unknown, never> = withoutStore.pipe(
  Effect.provide(Checkpointer.layerMemoryForTests)
)
export const runnableWithTestStoreFirst: Effect.Effect<unknown, unknown, never> = rows.pipe(
  Stream.run(StarRocksSink.exactlyOnce(Row, options)),
  Effect.provide(Checkpointer.layerMemoryForTests),
  Effect.provide(StarRocksSink.layer(config))
)

describe("Checkpointer", () => {
  it.effect("StarRocksSink.layer provides no Checkpointer (so no in-memory store can shadow the user's)", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(StarRocksSink.layer(config) as Layer.Layer<unknown>)
      const found = Context.getOption(
        context as Context.Context<Checkpointer.Checkpointer>,
        Checkpointer.Checkpointer
      )
      assert.isTrue(Option.isNone(found))
    }).pipe(Effect.scoped))

  it.effect("the test-only store keeps the highest checkpoint of a key", () =>
    Effect.gen(function*() {
      const store = yield* Checkpointer.makeMemoryForTests
      const record = (id: number) =>
        new Checkpointer.CheckpointRecord({ key: "k", id, position: id, prepared: {}, nextLabelId: {}, createdAt: 0 })
      yield* store.save(record(2))
      yield* store.save(record(1))
      assert.deepStrictEqual(Option.map(yield* store.latest("k"), (r) => r.id), Option.some(2))
      assert.isTrue(Option.isNone(yield* store.latest("other")))
      assert.isTrue(Checkpointer.isMemoryForTests(store))
      assert.isFalse(
        Checkpointer.isMemoryForTests({
          save: () => Effect.void,
          latest: () => Effect.succeedNone,
          claim: () => Effect.succeed(1)
        })
      )
    }))
})
