/**
 * The loader's send loop (internal/load/inOrder.ts) against the stream it replaces
 * (`Stream.fromQueue(queue).pipe(Stream.flattenTake, Stream.map(prepare), Stream.mapEffect(send, { concurrency }),
 * Stream.runForEach(land))`): on the TestClock, the same events at the same times (each send's start, end or
 * interruption, each landing) and the same end, each item taken (`prepare`, the loader's phases) in order before its
 * send, for sends that end out of order, slow landings, a failing send, a failing landing and a queue that fails
 * after some items. (The stream maps a chunk's items when it takes the chunk, the loop each item when it takes it.)
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Option, Stream, TestClock } from "effect"
import * as InOrder from "../src/internal/load/inOrder.js"

interface Scenario {
  readonly name: string
  /** The items' send times (ms), in chunks as the queue gives them; a negative time: the send fails then. */
  readonly chunks: ReadonlyArray<ReadonlyArray<number>>
  /** The queue fails after its chunks. */
  readonly failsAfter?: boolean
  readonly concurrency: number
  /** The landing time of each item (ms), by item; absent: 0. A negative time: the landing fails then. */
  readonly land?: Readonly<Record<number, number>>
}

type Impl = "stream" | "inOrder"

const run = (scenario: Scenario, impl: Impl) =>
  Effect.gen(function*() {
    const events: Array<string> = []
    // times from the run's start (the scenarios of a test share the TestClock)
    const started = yield* TestClock.currentTimeMillis
    const at = (what: string) =>
      Effect.flatMap(TestClock.currentTimeMillis, (t) => Effect.sync(() => events.push(`${t - started} ${what}`)))
    let n = 0
    const items = scenario.chunks.map((c) => c.map((ms) => ({ id: n++, ms })))
    const source = Stream.fromChunks(...items.map((c) => Chunk.fromIterable(c))).pipe(
      Stream.concat(scenario.failsAfter === true ? Stream.fail("queue failed") : Stream.empty)
    )
    type Item = { readonly id: number; readonly ms: number }
    const prepare = (item: Item) => {
      events.push(`take ${item.id}`)
      return item
    }
    const send = (item: Item): Effect.Effect<number, string> =>
      at(`start ${item.id}`).pipe(
        Effect.zipRight(Effect.sleep(Math.abs(item.ms))),
        Effect.zipRight(item.ms < 0 ? Effect.fail(`send ${item.id} failed`) : Effect.succeed(item.id)),
        Effect.tap(() => at(`end ${item.id}`)),
        Effect.onInterrupt(() => at(`interrupted ${item.id}`))
      )
    const land = (id: number): Effect.Effect<void, string> => {
      const ms = scenario.land?.[id] ?? 0
      return Effect.sleep(Math.abs(ms)).pipe(
        Effect.zipRight(ms < 0 ? Effect.fail(`land ${id} failed`) : Effect.void),
        Effect.zipRight(at(`land ${id}`))
      )
    }
    const exit = yield* Effect.scoped(Effect.gen(function*() {
      const queue = yield* Stream.toQueue(source, { capacity: 1 })
      const loop = impl === "stream"
        ? Stream.fromQueue(queue).pipe(
          Stream.flattenTake,
          Stream.map(prepare),
          Stream.mapEffect(send, { concurrency: scenario.concurrency }),
          Stream.runForEach(land)
        )
        : InOrder.sendInOrder({ queue, prepare, send, land, concurrency: scenario.concurrency })
      const fiber = yield* Effect.fork(loop)
      for (let i = 0; i < 500; i++) {
        const done = yield* Fiber.poll(fiber)
        if (Option.isSome(done)) return done.value
        yield* TestClock.adjust("1 millis")
      }
      return yield* Fiber.await(fiber)
    }))
    return { events, exit: Exit.isSuccess(exit) ? "done" : String(Exit.causeOption(exit).pipe(Option.getOrThrow)) }
  })

const scenarios: ReadonlyArray<Scenario> = [
  { name: "one item", chunks: [[5]], concurrency: 2 },
  { name: "sends that end out of order, two in flight", chunks: [[30, 5, 10, 1, 20]], concurrency: 2 },
  { name: "one at a time", chunks: [[3, 1], [2]], concurrency: 1 },
  { name: "several chunks, three in flight", chunks: [[10], [1, 40, 2], [5, 5], [7]], concurrency: 3 },
  { name: "slow landings", chunks: [[2, 2, 2, 2, 2]], concurrency: 2, land: { 0: 15, 2: 8 } },
  { name: "a send fails while another is in flight", chunks: [[30, 5, -10, 4]], concurrency: 2 },
  { name: "the first send fails last", chunks: [[-30, 5, 3]], concurrency: 3 },
  { name: "a landing fails", chunks: [[4, 4, 4]], concurrency: 2, land: { 1: -3 } },
  { name: "the queue fails after its items", chunks: [[5, 1], [2]], failsAfter: true, concurrency: 2 },
  { name: "the queue fails at once", chunks: [], failsAfter: true, concurrency: 2 },
  { name: "no items", chunks: [], concurrency: 2 }
]

describe("sendInOrder", () => {
  for (const scenario of scenarios) {
    it.effect(`does what the stream did: ${scenario.name}`, () =>
      Effect.gen(function*() {
        const stream = yield* run(scenario, "stream")
        const inOrder = yield* run(scenario, "inOrder")
        // the sends, their ends and the landings at the same times, the same end
        const timed = (r: typeof stream) => ({ ...r, events: r.events.filter((e) => !e.startsWith("take")) })
        assert.deepStrictEqual(timed(inOrder), timed(stream))
        // each item taken (its phase made) before its send starts, in the items' order
        for (const r of [stream, inOrder]) {
          const order = r.events.flatMap((e) => {
            const [a, b, c] = e.split(" ")
            return a === "take" ? [`take ${b}`] : b === "start" ? [`start ${c}`] : []
          })
          const takes = order.filter((e) => e.startsWith("take"))
          assert.deepStrictEqual(takes, takes.map((_, i) => `take ${i}`).slice(0, takes.length))
          for (const e of order.filter((x) => x.startsWith("start"))) {
            assert.isTrue(order.indexOf(`take ${e.split(" ")[1]}`) < order.indexOf(e))
          }
        }
        // the scenario ran: every item was taken or the loop failed first
        assert.isTrue(stream.events.length > 0 || scenario.chunks.length === 0)
      }))
  }

  it.effect("lands in the items' order with at most `concurrency` sends at once", () =>
    Effect.gen(function*() {
      const { events, exit } = yield* run({ name: "", chunks: [[30, 5, 10, 1, 20, 2]], concurrency: 2 }, "inOrder")
      assert.strictEqual(exit, "done")
      assert.deepStrictEqual(
        events.filter((e) => e.includes("land")).map((e) => e.split(" ").pop()),
        ["0", "1", "2", "3", "4", "5"]
      )
      let running = 0
      let most = 0
      for (const e of events) {
        if (e.includes("start")) most = Math.max(most, ++running)
        if (e.includes(" end ")) running--
      }
      assert.strictEqual(most, 2)
    }))
})
