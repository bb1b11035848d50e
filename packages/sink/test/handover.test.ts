/**
 * The exactly-once sink's reading while a step runs in the background (internal/handover.ts, used by
 * internal/exactlyOnce.ts under `Channel.embedInput`): chunks come in order and none is lost when the stream's fiber reads on directly, the
 * upstream is pulled only when the reading asks, a failure set meanwhile ends a wait on a quiet upstream with that
 * failure (typed, not an interruption), and the upstream's own failure and end pass through.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Channel, Chunk, Data, Deferred, Effect, Exit, Fiber, Sink, Stream } from "effect"
import { Handover } from "../src/internal/handover.js"

class Boom extends Data.TaggedError("Boom")<{ readonly why: string }> {}

type Taken = ReadonlyArray<ReadonlyArray<number> | "end">
type Failure = { cause: Cause.Cause<Boom> | undefined }

/**
 * A sink that takes up to `n` chunks through a hand-over, then reads the rest directly in the stream's fiber (as the
 * sink does once its checkpoint is done); it returns the chunks it took, in the order it took them.
 */
const sinkOf = (n: number, failure: Failure, onTake: () => void = () => {}) => {
  const taken: Array<ReadonlyArray<number> | "end"> = []
  const direct: Channel.Channel<never, Chunk.Chunk<number>, unknown, unknown, Taken, unknown> = Channel.readWith({
    onInput: (chunk: Chunk.Chunk<number>) => {
      taken.push(Chunk.toReadonlyArray(chunk))
      return direct
    },
    onFailure: Channel.fail,
    onDone: () => Channel.succeed(taken as Taken)
  })
  const h = new Handover<Chunk.Chunk<number>, Boom>(failure)
  const through = (k: number): Channel.Channel<never, unknown, Boom, unknown, "more" | "end", unknown> =>
    k === 0 ? Channel.succeed("more" as const) : Channel.flatMap(Channel.fromEffect(h.take), (chunk) => {
      onTake()
      if (chunk === undefined) return Channel.succeed("end" as const)
      taken.push(Chunk.toReadonlyArray(chunk))
      return through(k - 1)
    })
  const merged = Channel.embedInput(through(n), h) as Channel.Channel<
    never,
    Chunk.Chunk<number>,
    Boom,
    unknown,
    "more" | "end",
    unknown
  >
  return {
    handover: h,
    sink: Sink.fromChannel(Channel.flatMap(merged, (next) =>
      next === "more" ? direct : Channel.sync(() => {
        taken.push("end")
        return taken as Taken
      })))
  }
}

describe("exactly-once reading's hand-over", () => {
  it.effect("chunks in order, none lost when the stream's fiber reads on; the upstream pulled only when asked", () =>
    Effect.gen(function*() {
      // a chunk the drainer read ahead would be lost when the hand-over ends (its fiber is interrupted) and the
      // stream's fiber reads on: every chunk arrives, in order, once
      for (const n of [1, 2, 4]) {
        const taken = yield* Stream.run(
          Stream.range(1, 10).pipe(Stream.rechunk(2)),
          sinkOf(n, { cause: undefined }).sink
        )
        assert.deepStrictEqual(taken, [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]])
      }
      let pulled = 0
      const seen: Array<number> = []
      const upstream = Stream.range(1, 6).pipe(
        Stream.rechunk(2),
        Stream.mapChunks((c) => {
          pulled++
          return c
        })
      )
      yield* Stream.run(upstream, sinkOf(3, { cause: undefined }, () => seen.push(pulled)).sink)
      // each chunk was pulled when the reading asked for it, not before
      assert.deepStrictEqual(seen, [1, 2, 3])
    }))

  it.effect("the upstream's end passes through", () =>
    Effect.gen(function*() {
      const taken = yield* Stream.run(Stream.make(1, 2, 3), sinkOf(5, { cause: undefined }).sink)
      assert.deepStrictEqual(taken, [[1, 2, 3], "end"])
    }))

  it.effect("a failure while the upstream is quiet ends the wait with it (a failure, not an interruption)", () =>
    Effect.gen(function*() {
      const failure: Failure = { cause: undefined }
      let took = 0
      const { handover, sink } = sinkOf(5, failure, () => took++)
      const first = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(
        Stream.run(
          Stream.concat(
            Stream.make(1),
            Stream.fromEffect(Deferred.succeed(first, void 0)).pipe(
              Stream.drain,
              Stream.concat(Stream.never)
            )
          ),
          sink
        )
      )
      // the reading took the first chunk, asked for the next, and the upstream is quiet
      yield* Deferred.await(first)
      assert.strictEqual(took, 1)
      const boom = new Boom({ why: "the closing checkpoint failed" })
      failure.cause = Cause.fail(boom)
      handover.fail(failure.cause)
      const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("5 seconds"))
      assert.deepStrictEqual(exit, Exit.fail(boom))
    }))

  it.effect("a failure set before a take fails it without reading the upstream", () =>
    Effect.gen(function*() {
      let pulled = 0
      const boom = new Boom({ why: "the start's walk failed" })
      const upstream = Stream.make(1, 2).pipe(Stream.tap(() => Effect.sync(() => pulled++)))
      const exit = yield* Effect.exit(Stream.run(upstream, sinkOf(5, { cause: Cause.fail(boom) }).sink))
      assert.deepStrictEqual(exit, Exit.fail(boom))
      assert.strictEqual(pulled, 0)
    }))

  it.effect("the upstream's failure passes through", () =>
    Effect.gen(function*() {
      const boom = new Boom({ why: "upstream" })
      const upstream = Stream.concat(Stream.make(1), Stream.fail(boom))
      const exit = yield* Effect.exit(
        Stream.run(upstream as unknown as Stream.Stream<number>, sinkOf(5, { cause: undefined }).sink)
      )
      assert.deepStrictEqual(exit, Exit.fail(boom))
    }))
})
