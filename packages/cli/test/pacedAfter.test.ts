/**
 * The loader's reading fiber (internal/load/run.ts, `pacedAfter`, before `Stream.toQueue(..., { capacity: 1 })`):
 * once the send loop has taken the first batches, the next one is cut (pulled) only from a later turn of the event
 * loop, not at once, so that the first load's request goes out first (docs/benchmark.md, session 18); the items,
 * their order, the end and a failure are the stream's.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Option, Queue, Stream } from "effect"
import { pacedAfter } from "../src/internal/load/run.js"

/** A stream of `n` items, each pull recorded. */
const recorded = (n: number, pulls: Array<number>) =>
  Stream.unfoldEffect(0, (i) =>
    Effect.sync(() => {
      if (i >= n) return Option.none()
      pulls.push(i)
      return Option.some([i, i + 1] as const)
    }))

/** A turn of the event loop. */
const loopTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** What the reading fiber has pulled once the send loop has taken two items (`--parallel 2`) and run on. */
const pullsAfterTwoTakes = (paced: boolean) =>
  Effect.scoped(Effect.gen(function*() {
    const pulls: Array<number> = []
    const source = recorded(10, pulls)
    const queue = yield* (paced ? pacedAfter(2)(source) : source).pipe(Stream.toQueue({ capacity: 1 }))
    yield* Queue.take(queue)
    yield* Queue.take(queue)
    // everything that runs without a turn of the loop
    for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
    const before = [...pulls]
    yield* loopTurn
    return { before, after: [...pulls] }
  }))

const collect = <A, E>(stream: Stream.Stream<A, E>) =>
  stream.pipe(
    Stream.toQueue({ capacity: 1 }),
    Effect.flatMap((queue) =>
      Stream.fromQueue(queue).pipe(Stream.flattenTake, Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
    ),
    Effect.exit,
    Effect.scoped
  )

describe("the reading fiber's pace (pacedAfter)", () => {
  it.live("after the first two items, the next one is pulled only from a later turn of the event loop", () =>
    Effect.gen(function*() {
      const { after, before } = yield* pullsAfterTwoTakes(true)
      assert.deepStrictEqual(before, [0, 1, 2])
      assert.deepStrictEqual(after, [0, 1, 2, 3])
    }))

  it.live("without it, Stream.toQueue pulls the next ones at once (what the test above rules out)", () =>
    Effect.gen(function*() {
      const { before } = yield* pullsAfterTwoTakes(false)
      assert.deepStrictEqual(before, [0, 1, 2, 3])
    }))

  it.live("gives the stream's items, in order, and its end", () =>
    Effect.gen(function*() {
      const stream = Stream.fromChunks(Chunk.make(1, 2), Chunk.make(3), Chunk.empty<number>(), Chunk.make(4, 5))
      assert.deepStrictEqual(yield* collect(pacedAfter(2)(stream)), Exit.succeed([1, 2, 3, 4, 5]))
      assert.deepStrictEqual(yield* collect(pacedAfter(0)(stream)), Exit.succeed([1, 2, 3, 4, 5]))
    }))

  it.live("gives the items before a failure, then the failure", () =>
    Effect.gen(function*() {
      const items: Array<number> = []
      const exit = yield* pacedAfter(1)(Stream.concat(Stream.make(1, 2, 3), Stream.fail("the file went away"))).pipe(
        Stream.runForEach((n) => Effect.sync(() => items.push(n))),
        Effect.exit
      )
      assert.deepStrictEqual(items, [1, 2, 3])
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        assert.deepStrictEqual(Cause.failureOption(exit.cause), Option.some("the file went away"))
      }
    }))

  it.live("counts its items afresh each time the stream runs", () =>
    Effect.gen(function*() {
      const stream = pacedAfter(2)(Stream.make(1, 2, 3))
      assert.deepStrictEqual(yield* collect(stream), Exit.succeed([1, 2, 3]))
      assert.deepStrictEqual(yield* collect(stream), Exit.succeed([1, 2, 3]))
    }))
})
