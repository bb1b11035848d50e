import { assert, describe, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, Fiber, Option, Stream, TestClock } from "effect"
import { Checkpoint } from "../src/index.js"

const shape = <A, P>(envelopes: ReadonlyArray<Checkpoint.Envelope<A, P>>) =>
  envelopes.map((e) => Checkpoint.isBarrier(e) ? `B${String(e.position)}` : `r${String(e)}`)

const collect = <A, P>(stream: Stream.Stream<Checkpoint.Envelope<A, P>>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

describe("Checkpoint", () => {
  it.effect("the barrier constructor; rows are told from barriers by the brand, not by their fields", () =>
    Effect.gen(function*() {
      const b = yield* Checkpoint.barrier(7)
      assert.strictEqual(b.position, 7)
      assert.isTrue(Checkpoint.isBarrier(b))
      // rows of any shape are rows: a row whose fields look like a barrier's (a table tagged "Barrier") included
      const lookalike = { _tag: "Barrier", position: 7, ack: b.ack }
      for (const row of [lookalike, { _tag: "Row", row: 1 }, 1, "a,b\n", new Uint8Array(2), null, undefined]) {
        assert.isFalse(Checkpoint.isBarrier<unknown, number>(row))
      }
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

  it.effect("withBarriers: rows pass as they are, and a chunk no barrier cuts passes whole", () =>
    Effect.gen(function*() {
      const rows = Array.from({ length: 10 }, (_, i) => ({ id: i }))
      const chunks = yield* Stream.fromIterable(rows).pipe(
        Stream.rechunk(4),
        Checkpoint.withBarriers({ position: (r) => r.id, everyRows: 6 }),
        Stream.chunks,
        Stream.runCollect,
        Effect.map(Chunk.toReadonlyArray)
      )
      const items = chunks.flatMap((c) => Chunk.toReadonlyArray(c))
      assert.strictEqual(
        shape(items.map((e) => Checkpoint.isBarrier(e) ? e : e.id)).join(" "),
        "r0 r1 r2 r3 r4 r5 B5 r6 r7 r8 r9 B9"
      )
      // the rows themselves, not envelopes around them
      assert.deepStrictEqual(items.filter((e) => !Checkpoint.isBarrier(e)), rows)
      for (const e of items) if (!Checkpoint.isBarrier(e)) assert.strictEqual(e, rows[e.id])
      // [0..3] passes whole; [4..7] is cut after 5; [8, 9] passes; the final barrier
      assert.deepStrictEqual(chunks.map((c) => c.length), [4, 5, 2, 1])
    }))

  it.effect("withBarriers: position is asked of the row just before each barrier only", () =>
    Effect.gen(function*() {
      const asked: Array<number> = []
      const out = yield* collect(
        Stream.range(1, 10).pipe(
          Stream.rechunk(3),
          Checkpoint.withBarriers({ position: (n) => (asked.push(n), n), everyRows: 4 })
        )
      )
      assert.strictEqual(shape(out).join(" "), "r1 r2 r3 r4 B4 r5 r6 r7 r8 B8 r9 r10 B10")
      assert.deepStrictEqual(asked, [4, 8, 10])
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

  it.effect("withBarriers: timer barriers carry the position of the row just before them", () =>
    Effect.gen(function*() {
      const source = Stream.range(1, 6).pipe(
        Stream.rechunk(1),
        Stream.tap(() => Effect.sleep("30 millis"))
      )
      const fiber = yield* Effect.fork(
        collect(source.pipe(Checkpoint.withBarriers({ position: (n) => n, every: "50 millis" })))
      )
      for (let t = 0; t < 30; t++) yield* TestClock.adjust("10 millis")
      const out = yield* Fiber.join(fiber)
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
