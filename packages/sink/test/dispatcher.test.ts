/**
 * The dispatcher's byte budget (internal/sink/dispatcher.ts): a dispatch that finds no room waits until a load's
 * end gives its bytes back, and fails with the first failure if a load fails for good meanwhile.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Option } from "effect"
import { LabelStore, LoadClient, StarRocksError } from "../src/index.js"
import * as Dispatcher from "../src/internal/sink/dispatcher.js"
import type { Lane, Sealed } from "../src/internal/sink/lane.js"
import * as Ledger from "../src/internal/sink/ledger.js"

const lane = { key: "db.t", settings: { database: "db", table: "t" }, ordered: false } as unknown as Lane
const sealedOf = (seq: number): Sealed => ({
  lane,
  seq,
  rows: 1,
  firstRow: seq,
  body: { chunks: [new Uint8Array(10)], byteLength: 10 },
  headers: { format: "csv" },
  release: () => {}
})

/** A client whose loads wait for `gate`, then land (or fail with `failWith`). */
const gatedClient = (gate: Deferred.Deferred<void>, failWith?: StarRocksError.TransportError) =>
  LoadClient.fromPartial({
    loadBatch: (request) =>
      Deferred.await(gate).pipe(Effect.zipRight(
        failWith !== undefined ? Effect.fail(failWith) : Effect.succeed({
          label: request.label,
          status: "Success",
          txnId: 1,
          loadedRows: 1,
          filteredRows: 0,
          unselectedRows: 0,
          totalRows: 1,
          loadBytes: request.body.byteLength,
          hops: [],
          timings: {},
          errorUrl: undefined,
          message: "OK",
          retries: 0,
          elapsedMs: 1
        })
      )),
    getLoadState: () => Effect.succeed("VISIBLE")
  })

const dispatcherWith = (client: LoadClient.LoadClient, labels: LabelStore.LabelStore) =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    let n = 0
    return yield* Dispatcher.make({
      client,
      ledger: Ledger.make(labels, clock),
      clock,
      // room for one 10-byte batch
      maxBytes: 10,
      concurrency: 2,
      transactional: false,
      label: () => `l-${n++}`,
      drainDeadline: Duration.seconds(1)
    })
  })

describe("Dispatcher: the byte budget", () => {
  it.scoped("a dispatch without room waits for a load's end, then loads", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const labels = yield* LabelStore.makeMemory()
      const dispatcher = yield* dispatcherWith(gatedClient(gate), labels)
      yield* dispatcher.dispatch(sealedOf(0))
      const second = yield* Effect.fork(dispatcher.dispatch(sealedOf(1)))
      yield* Effect.yieldNow().pipe(Effect.repeatN(20))
      assert.isTrue(Option.isNone(yield* Fiber.poll(second)), "the second dispatch waits for the budget")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(second)
      yield* dispatcher.drain
      const committed = yield* labels.list({ state: "committed" })
      assert.deepStrictEqual(committed.map((r) => r.label).sort(), ["l-0", "l-1"])
    }))

  it.scoped("a dispatch waiting for room fails with the load's error when a load fails for good", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const error = new StarRocksError.TransportError({ url: "u", reason: "refused" })
      const dispatcher = yield* dispatcherWith(gatedClient(gate, error), yield* LabelStore.makeMemory())
      yield* dispatcher.dispatch(sealedOf(0))
      const second = yield* Effect.fork(dispatcher.dispatch(sealedOf(1)))
      yield* Effect.yieldNow().pipe(Effect.repeatN(20))
      yield* Deferred.succeed(gate, undefined)
      const exit = yield* Fiber.await(second)
      assert.isTrue(Exit.isFailure(exit))
      const failure = dispatcher.failure() as { _tag?: string; table?: string } | undefined
      assert.strictEqual(failure?._tag, "TransportError")
      assert.strictEqual(failure?.table, "db.t")
    }))
})
