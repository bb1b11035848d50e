import { assert, describe, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, Option, Stream } from "effect"
import { Checkpoint } from "../src/index.js"

const shape = <A, P>(envelopes: ReadonlyArray<Checkpoint.Envelope<A, P>>) =>
  envelopes.map((e) => e._tag === "Row" ? `r${String(e.row)}` : `B${String(e.position)}`)

const collect = <A, P>(stream: Stream.Stream<Checkpoint.Envelope<A, P>>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

describe("Checkpoint", () => {
  it.effect("row and barrier constructors", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(Checkpoint.row(1), { _tag: "Row", row: 1 })
      const b = yield* Checkpoint.barrier(7)
      assert.strictEqual(b._tag, "Barrier")
      assert.strictEqual(b.position, 7)
      assert.isTrue(Checkpoint.isBarrier(b))
      assert.isTrue(Option.isNone(yield* Deferred.poll(b.ack)))
      yield* Deferred.succeed(b.ack, { id: 1, position: 7, labels: ["l"] })
      assert.deepStrictEqual(yield* Checkpoint.awaitAck(b), { id: 1, position: 7, labels: ["l"] })
    }))

  it.effect("withBarriers: a barrier after every N rows, positions of the last row, a final barrier", () =>
    Effect.gen(function*() {
      const out = yield* collect(
        Stream.range(1, 7).pipe(Stream.rechunk(3), Checkpoint.withBarriers({ position: (n) => n * 10, everyRows: 3 }))
      )
      assert.deepStrictEqual(shape(out), ["r1", "r2", "r3", "B30", "r4", "r5", "r6", "B60", "r7", "B70"])
    }))

  it.effect("withBarriers: no final barrier when the last row was covered, none with final: false", () =>
    Effect.gen(function*() {
      const covered = yield* collect(
        Stream.range(1, 4).pipe(Checkpoint.withBarriers({ position: (n) => n, everyRows: 2 }))
      )
      assert.deepStrictEqual(shape(covered), ["r1", "r2", "B2", "r3", "r4", "B4"])
      const noFinal = yield* collect(
        Stream.range(1, 3).pipe(Checkpoint.withBarriers({ position: (n) => n, everyRows: 2, final: false }))
      )
      assert.deepStrictEqual(shape(noFinal), ["r1", "r2", "B2", "r3"])
      const empty = yield* collect(Stream.empty.pipe(Checkpoint.withBarriers({ position: (n: number) => n })))
      assert.deepStrictEqual(empty, [])
      const onlyFinal = yield* collect(Stream.range(1, 3).pipe(Checkpoint.withBarriers({ position: (n) => n })))
      assert.deepStrictEqual(shape(onlyFinal), ["r1", "r2", "r3", "B3"])
    }))

  it.live("withBarriers: timer barriers carry the position of the row just before them", () =>
    Effect.gen(function*() {
      const source = Stream.range(1, 6).pipe(
        Stream.rechunk(1),
        Stream.tap(() => Effect.sleep("30 millis"))
      )
      const out = yield* collect(source.pipe(Checkpoint.withBarriers({ position: (n) => n, every: "50 millis" })))
      const s = shape(out)
      assert.isAtLeast(s.filter((x) => x.startsWith("B")).length, 2)
      assert.strictEqual(s[s.length - 1], "B6")
      // every barrier's position is the row just before it, and no two barriers are adjacent
      for (let i = 0; i < s.length; i++) {
        if (s[i]!.startsWith("B")) {
          assert.strictEqual(s[i]!.slice(1), s[i - 1]!.slice(1))
        }
      }
      assert.deepStrictEqual(s.filter((x) => x.startsWith("r")), ["r1", "r2", "r3", "r4", "r5", "r6"])
    }))

  it.effect("a failed ack carries the error", () =>
    Effect.gen(function*() {
      const b = yield* Checkpoint.barrier("p")
      yield* Deferred.fail(
        b.ack,
        new (yield* Effect.promise(() => import("../src/StarRocksSink.js"))).ExactlyOnceError({
          reason: "CommitFailed",
          message: "x"
        })
      )
      const exit = yield* Effect.exit(Checkpoint.awaitAck(b))
      assert.isTrue(Exit.isFailure(exit))
    }))
})
