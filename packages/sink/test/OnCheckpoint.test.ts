/**
 * `StarRocksSink.exactlyOnce(target, { onCheckpoint })` against the emulator (memory storage, real sockets, live
 * clock): the sink itself runs the callback once per committed checkpoint, in order, after the commit (its labels
 * are VISIBLE when it runs), also while a checkpoint finishes in the background with a quiet upstream; at start on
 * the checkpoint recovery found; a failing callback fails the sink with `Checkpoint.OnCheckpointError`; interrupting
 * the sink interrupts it. Its error and requirements are the sink's (checked by the types below).
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, layer } from "@effect/vitest"
import {
  Cause,
  Context,
  Data,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Queue,
  Ref,
  Schema,
  Stream
} from "effect"
import type { Sink } from "effect"
import type { StarRocksConfig } from "../src/index.js"
import { Checkpoint, Checkpointer, StarRocksSink } from "../src/index.js"
import * as Fixture from "./emulatorFixture.js"

class Emulator extends Context.Tag("test/Emulator")<Emulator, StarRocksEmulator.StarRocksEmulator>() {}

const EmulatorLive = Layer.scoped(Emulator, StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 2 }))

const Row = Schema.Struct({ id: Schema.Number, note: Schema.String })
type Row = typeof Row.Type

const rowsFrom = (from: number, to: number): Array<Row> => {
  const out: Array<Row> = []
  for (let i = from; i < to; i++) out.push({ id: i, note: `note ${i}` })
  return out
}

/** The source's offsets, as an application would commit them: a service the callback needs (the sink's `R`). */
class Offsets extends Context.Tag("test/Offsets")<Offsets, Ref.Ref<ReadonlyArray<Call>>>() {}

/** What the callback saw: the ack, and the states of its labels and the visible row count at that moment. */
interface Call {
  readonly id: number
  readonly position: number
  readonly recovered: boolean
  readonly labels: ReadonlyArray<string>
  readonly states: ReadonlyArray<string>
  readonly visible: number
}

class Boom extends Data.TaggedError("Boom")<{ readonly checkpoint: number }> {}

const setup = Effect.gen(function*() {
  const emulator = yield* Emulator
  const table = yield* Fixture.duplicateTable(emulator, "oncheckpoint_", [
    { name: "id", type: "BIGINT" },
    { name: "note", type: "VARCHAR(64)" }
  ])
  // shared by the runs of a test: a restart finds the checkpoints of the run before
  const checkpointer = yield* Checkpointer.makeMemoryForTests
  const calls = yield* Ref.make<ReadonlyArray<Call>>([])
  const config = Fixture.configOf(emulator.fe, table, {
    format: "csv",
    maxRows: 25,
    maxBytes: 64 * 1024,
    maxRetries: 1,
    retryInterval: "20 millis",
    retryMaxDelay: "100 millis",
    labelStateTimeout: "2 seconds",
    allowSmallBuffers: true
  })
  const label = (id: number) => StarRocksSink.batchLabel("effect-sr", table, "0", id)
  const visibleIds = Effect.map(emulator.rows("db", table), (rows) => rows.map((r) => Number(r["id"]))).pipe(
    Effect.orDie
  )
  /** The callback: records the ack with what StarRocks shows at that moment, in the `Offsets` service. */
  const record = (ack: Checkpoint.Ack<number>) =>
    Effect.gen(function*() {
      const states: Array<string> = []
      for (const l of ack.labels) states.push(yield* emulator.loadState("db", l))
      const visible = (yield* visibleIds).length
      const offsets = yield* Offsets
      yield* Ref.update(offsets, (xs) => [...xs, {
        id: ack.id,
        position: ack.position,
        recovered: ack.recovered === true,
        labels: ack.labels,
        states,
        visible
      }])
    })
  return { emulator, table, checkpointer, calls, config, label, visibleIds, record }
})

type Ctx = Effect.Effect.Success<typeof setup>

const servicesOf = (ctx: Ctx, config: StarRocksConfig.StarRocksConfig = ctx.config) =>
  Layer.mergeAll(
    StarRocksSink.layer(config),
    Layer.succeed(Checkpointer.Checkpointer, ctx.checkpointer),
    Layer.succeed(Offsets, ctx.calls)
  ).pipe(Layer.provideMerge(Logger.minimumLogLevel(LogLevel.None)))

const options = { position: Schema.Number } as const

/** Every id below `n` visible once. */
const assertExactlyOnce = (ctx: Ctx, n: number) =>
  Effect.gen(function*() {
    const ids = [...(yield* ctx.visibleIds)].sort((a, b) => a - b)
    assert.deepStrictEqual(ids, Array.from({ length: n }, (_, i) => i))
  })

/** Awaits `d`, failing the test after 10 s. */
const within = <A, E>(d: Deferred.Deferred<A, E>, what: string) =>
  Deferred.await(d).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(what) }))

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

describe("exactly-once onCheckpoint", () => {
  layer(EmulatorLive, { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect("called once per checkpoint, in order, with its position and labels, after the commit (VISIBLE)", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        // two barriers every 100 rows, and one more at the same position with no row before it: it repeats the
        // previous checkpoint id and gets no call
        const envelopes: Array<Checkpoint.Envelope<Row, number>> = []
        const barriers: Array<Checkpoint.Barrier<number>> = []
        for (let k = 0; k < 3; k++) {
          envelopes.push(...rowsFrom(k * 100, k * 100 + 100))
          const b = yield* Checkpoint.barrier(k * 100 + 99)
          barriers.push(b)
          envelopes.push(b)
        }
        const repeat = yield* Checkpoint.barrier(299)
        envelopes.push(repeat)
        // when the callback runs, its barrier's ack is completed already
        const ackedFirst: Array<boolean> = []
        const sink = StarRocksSink.exactlyOnce(Row, {
          ...options,
          onCheckpoint: (ack) =>
            Effect.zipRight(
              Effect.flatMap(
                Deferred.poll(barriers[ack.id - 1]!.ack),
                (done) => Effect.sync(() => ackedFirst.push(Option.isSome(done)))
              ),
              ctx.record(ack)
            )
        })
        // the callback cannot fail and needs Offsets: the sink's error is SinkError, Offsets among its requirements
        const typed: Sink.Sink<
          StarRocksSink.ExactlyOnceSummary,
          Checkpoint.Envelope<Row, number>,
          never,
          StarRocksSink.SinkError,
          StarRocksSink.Services | Checkpointer.Checkpointer | Offsets
        > = sink
        const summary = yield* Stream.fromIterable(envelopes).pipe(
          Stream.rechunk(10),
          Stream.run(typed),
          Effect.provide(servicesOf(ctx))
        )
        assert.strictEqual(summary.checkpoints, 3)
        const calls = yield* Ref.get(ctx.calls)
        assert.deepStrictEqual(calls, [
          { id: 1, position: 99, recovered: false, labels: [ctx.label(0)], states: ["VISIBLE"], visible: 100 },
          { id: 2, position: 199, recovered: false, labels: [ctx.label(1)], states: ["VISIBLE"], visible: 200 },
          { id: 3, position: 299, recovered: false, labels: [ctx.label(2)], states: ["VISIBLE"], visible: 300 }
        ])
        assert.deepStrictEqual(ackedFirst, [true, true, true])
        // the repeated barrier's ack still completes, with the previous id
        const again = yield* Checkpoint.awaitAck(repeat)
        assert.deepStrictEqual([again.id, again.position], [3, 299])
        yield* assertExactlyOnce(ctx, 300)
      }))

    it.effect("a failing callback fails the sink with OnCheckpointError; its checkpoint stays committed and the next start hands it again", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const second = yield* Deferred.make<Checkpoint.Barrier<number>>()
        const sink = StarRocksSink.exactlyOnce(Row, {
          ...options,
          onCheckpoint: (ack) =>
            Effect.zipRight(ctx.record(ack), ack.id === 2 ? Effect.fail(new Boom({ checkpoint: 2 })) : Effect.void)
        })
        // the callback's error type is in the sink's
        const typed: Sink.Sink<
          StarRocksSink.ExactlyOnceSummary,
          Checkpoint.Envelope<Row, number>,
          never,
          StarRocksSink.SinkError | Checkpoint.OnCheckpointError<Boom>,
          StarRocksSink.Services | Checkpointer.Checkpointer | Offsets
        > = sink
        const exit = yield* Stream.fromIterable(rowsFrom(0, 400)).pipe(
          Stream.rechunk(10),
          Checkpoint.withBarriers({ position: (r: Row) => r.id, everyRows: 100 }),
          Stream.tap((e) => Checkpoint.isBarrier(e) && e.position === 199 ? Deferred.succeed(second, e) : Effect.void),
          Stream.run(typed),
          Effect.provide(servicesOf(ctx)),
          Effect.exit
        )
        const error = failureOf(exit)
        assert.isTrue(Checkpoint.isOnCheckpointError(error), `the sink failed with ${String(error)}`)
        if (!Checkpoint.isOnCheckpointError(error)) return
        assert.strictEqual(error._tag, "OnCheckpointError")
        assert.deepStrictEqual(
          [error.checkpoint, error.position, error.recovered, error.cause],
          [2, 199, false, new Boom({ checkpoint: 2 })]
        )
        assert.match(error.message, /onCheckpoint failed for checkpoint 2 \(Boom\)/)
        // checkpoint 2 is committed (its ack succeeded); nothing after it is visible
        const ack = yield* Checkpoint.awaitAck(yield* Deferred.await(second))
        assert.deepStrictEqual([ack.id, ack.position], [2, 199])
        yield* assertExactlyOnce(ctx, 200)
        assert.deepStrictEqual((yield* Ref.get(ctx.calls)).map((c) => [c.id, c.position]), [[1, 99], [2, 199]])

        // the next start: recovery finds checkpoint 2 and hands it to the callback again, first
        yield* Ref.set(ctx.calls, [])
        const resumeAfter = yield* StarRocksSink.recover(options).pipe(Effect.provide(servicesOf(ctx)))
        assert.deepStrictEqual(resumeAfter, Option.some(199))
        yield* Stream.fromIterable(rowsFrom(200, 400)).pipe(
          Stream.rechunk(10),
          Checkpoint.withBarriers({ position: (r: Row) => r.id, everyRows: 100 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, { ...options, onCheckpoint: ctx.record })),
          Effect.provide(servicesOf(ctx))
        )
        assert.deepStrictEqual((yield* Ref.get(ctx.calls)).map((c) => [c.id, c.position, c.recovered]), [
          [2, 199, true],
          [3, 299, false],
          [4, 399, false]
        ])
        yield* assertExactlyOnce(ctx, 400)
      }))

    it.effect("with a quiet upstream (the checkpoint finishing in the background) the callback runs", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const called = yield* Deferred.make<Checkpoint.Ack<number>>()
        // the upstream stays open and quiet after the rows after the barrier
        const queue = yield* Queue.unbounded<Checkpoint.Envelope<Row, number>>()
        yield* Queue.offerAll(queue, rowsFrom(0, 100))
        yield* Queue.offer(queue, yield* Checkpoint.barrier(99))
        yield* Queue.offerAll(queue, rowsFrom(100, 150))
        const fiber = yield* Stream.fromQueue(queue).pipe(
          Stream.run(StarRocksSink.exactlyOnce(Row, {
            ...options,
            onCheckpoint: (ack) => Effect.zipRight(ctx.record(ack), Deferred.succeed(called, ack))
          })),
          Effect.provide(servicesOf(ctx)),
          Effect.fork
        )
        const ack = yield* within(called, "onCheckpoint was not called while the upstream was quiet")
        assert.deepStrictEqual([ack.id, ack.position, ack.labels], [1, 99, [ctx.label(0)]])
        assert.deepStrictEqual((yield* Ref.get(ctx.calls)).map((c) => c.states), [["VISIBLE"]])
        yield* Fiber.interrupt(fiber)
        yield* assertExactlyOnce(ctx, 100)
      }))

    it.effect("with a quiet upstream a failing callback fails the sink at once", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const queue = yield* Queue.unbounded<Checkpoint.Envelope<Row, number>>()
        yield* Queue.offerAll(queue, rowsFrom(0, 100))
        yield* Queue.offer(queue, yield* Checkpoint.barrier(99))
        yield* Queue.offerAll(queue, rowsFrom(100, 150))
        const exit = yield* Stream.fromQueue(queue).pipe(
          Stream.run(StarRocksSink.exactlyOnce(Row, {
            ...options,
            onCheckpoint: (ack) => Effect.fail(new Boom({ checkpoint: ack.id }))
          })),
          Effect.provide(servicesOf(ctx)),
          Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the sink did not fail") }),
          Effect.exit
        )
        const error = failureOf(exit)
        assert.isTrue(Checkpoint.isOnCheckpointError(error), `the sink failed with ${String(error)}`)
        assert.deepStrictEqual((error as Checkpoint.OnCheckpointError<Boom>).cause, new Boom({ checkpoint: 1 }))
        // the committed checkpoint stays; the rows after it were rolled back
        yield* assertExactlyOnce(ctx, 100)
        const open = (yield* ctx.emulator.transactions("db")).filter((t) =>
          t.table === ctx.table && (t.status === "PREPARE" || t.status === "PREPARED")
        )
        assert.deepStrictEqual(open, [])
      }))

    it.effect("recovery: a checkpoint committed at start is handed first (recovered), after its commit; none without one", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        // the first run's commit fails: its checkpoint is saved, not committed, and no callback runs for it
        yield* ctx.emulator.addFault({ path: "/api/transaction/commit", node: "fe", action: { _tag: "http-500" } })
        const first = yield* Stream.fromIterable(rowsFrom(0, 100)).pipe(
          Checkpoint.withBarriers({ position: (r: Row) => r.id, everyRows: 100 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, { ...options, onCheckpoint: ctx.record })),
          Effect.provide(servicesOf(ctx, { ...ctx.config, maxRetries: 0 })),
          Effect.exit
        )
        yield* ctx.emulator.clearFaults
        const error = failureOf(first)
        assert.strictEqual(error?._tag, "ExactlyOnceError")
        assert.strictEqual((error as StarRocksSink.ExactlyOnceError).reason, "CommitFailed")
        assert.deepStrictEqual(yield* Ref.get(ctx.calls), [])
        assert.strictEqual(yield* ctx.emulator.loadState("db", ctx.label(0)), "PREPARED")
        // the next start commits it in recovery, then hands it to the callback, before any row
        yield* Stream.fromIterable(rowsFrom(100, 200)).pipe(
          Checkpoint.withBarriers({ position: (r: Row) => r.id, everyRows: 100 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, { ...options, onCheckpoint: ctx.record })),
          Effect.provide(servicesOf(ctx))
        )
        assert.deepStrictEqual(yield* Ref.get(ctx.calls), [
          { id: 1, position: 99, recovered: true, labels: [ctx.label(0)], states: ["VISIBLE"], visible: 100 },
          { id: 2, position: 199, recovered: false, labels: [ctx.label(1)], states: ["VISIBLE"], visible: 200 }
        ])
        yield* assertExactlyOnce(ctx, 200)
      }))

    it.effect("interrupting the sink interrupts a callback under way", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const entered = yield* Deferred.make<void>()
        const interrupted = yield* Deferred.make<void>()
        const fiber = yield* Stream.fromIterable(rowsFrom(0, 100)).pipe(
          Checkpoint.withBarriers({ position: (r: Row) => r.id, everyRows: 50 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, {
            ...options,
            onCheckpoint: () =>
              Effect.zipRight(Deferred.succeed(entered, undefined), Effect.never).pipe(
                Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
              )
          })),
          Effect.provide(servicesOf(ctx)),
          Effect.fork
        )
        yield* within(entered, "onCheckpoint was not called")
        yield* Fiber.interrupt(fiber)
        assert.isTrue(Option.isSome(yield* Deferred.poll(interrupted)), "the callback was interrupted with the sink")
        // the first checkpoint is committed; the second waited for its callback and was rolled back
        yield* assertExactlyOnce(ctx, 50)
      }))
  })
})
