/**
 * The dispatcher's byte budget (internal/sink/dispatcher.ts): a dispatch that finds no room waits until a load's
 * end gives its bytes back, and fails with the first failure if a load fails for good meanwhile. Its in-flight
 * slots: at most `concurrency` loads at once, a waiting load takes the slot of the first to end, and a load waiting
 * out a backoff gives its slot back meanwhile.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, FiberId, FiberRef, Option } from "effect"
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

/** A landed load of one row and `loadBytes` bytes. */
const success = (label: string, loadBytes = 10): LoadClient.LoadResult => ({
  label,
  status: "Success",
  txnId: 1,
  loadedRows: 1,
  filteredRows: 0,
  unselectedRows: 0,
  totalRows: 1,
  loadBytes,
  hops: [],
  timings: {},
  errorUrl: undefined,
  message: "OK",
  retries: 0,
  elapsedMs: 1
})

/** Lets the forked fibers run until they wait. */
const settle = Effect.yieldNow().pipe(Effect.repeatN(20))

/** A client whose loads wait for `gate`, then land (or fail with `failWith`). */
const gatedClient = (gate: Deferred.Deferred<void>, failWith?: StarRocksError.TransportError) =>
  LoadClient.fromPartial({
    loadBatch: (request) =>
      Deferred.await(gate).pipe(Effect.zipRight(
        failWith !== undefined ? Effect.fail(failWith) : Effect.succeed(success(request.label, request.body.byteLength))
      )),
    getLoadState: () => Effect.succeed("VISIBLE")
  })

const dispatcherWith = (
  client: LoadClient.LoadClient,
  labels: LabelStore.LabelStore,
  room: { readonly maxBytes: number; readonly concurrency: number } = { maxBytes: 10, concurrency: 2 }
) =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    let n = 0
    return yield* Dispatcher.make({
      client,
      ledger: Ledger.make(labels, clock),
      clock,
      // by default, room for one 10-byte batch
      maxBytes: room.maxBytes,
      concurrency: room.concurrency,
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
      yield* settle
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
      yield* settle
      yield* Deferred.succeed(gate, undefined)
      const exit = yield* Fiber.await(second)
      assert.isTrue(Exit.isFailure(exit))
      const failure = dispatcher.failure() as { _tag?: string; table?: string } | undefined
      assert.strictEqual(failure?._tag, "TransportError")
      assert.strictEqual(failure?.table, "db.t")
    }))
})

describe("Dispatcher: the in-flight slots", () => {
  it.scoped("at most `concurrency` loads at once; a waiting load starts when one ends, in dispatch order", () =>
    Effect.gen(function*() {
      const gates = new Map<string, Deferred.Deferred<void>>()
      const started: Array<string> = []
      const client = LoadClient.fromPartial({
        loadBatch: (request) =>
          Effect.suspend(() => {
            started.push(request.label)
            const gate = Deferred.unsafeMake<void>(FiberId.none)
            gates.set(request.label, gate)
            return Effect.as(Deferred.await(gate), success(request.label))
          }),
        getLoadState: () => Effect.succeed("VISIBLE")
      })
      const labels = yield* LabelStore.makeMemory()
      const dispatcher = yield* dispatcherWith(client, labels, { maxBytes: 100, concurrency: 2 })
      for (let i = 0; i < 4; i++) yield* dispatcher.dispatch(sealedOf(i))
      yield* settle
      assert.deepStrictEqual(started, ["l-0", "l-1"])
      yield* Deferred.succeed(gates.get("l-1")!, undefined)
      yield* settle
      assert.deepStrictEqual(started, ["l-0", "l-1", "l-2"])
      yield* Deferred.succeed(gates.get("l-0")!, undefined)
      yield* settle
      assert.deepStrictEqual(started, ["l-0", "l-1", "l-2", "l-3"])
      for (const label of ["l-2", "l-3"]) yield* Deferred.succeed(gates.get(label)!, undefined)
      yield* dispatcher.drain
      const committed = yield* labels.list({ state: "committed" })
      assert.deepStrictEqual(committed.map((r) => r.label).sort(), ["l-0", "l-1", "l-2", "l-3"])
    }))

  it.scoped("a load waiting out a backoff gives its slot back meanwhile, and takes one again after", () =>
    Effect.gen(function*() {
      const backoffGate = yield* Deferred.make<void>()
      const secondGate = yield* Deferred.make<void>()
      const events: Array<string> = []
      const client = LoadClient.fromPartial({
        loadBatch: (request) =>
          request.label === "l-0"
            // the first load's attempt fails, and its retry waits out a backoff through the hook, as the client's do
            ? Effect.flatMap(FiberRef.get(LoadClient.currentBackoff), (backoff) =>
              backoff(Effect.zipRight(
                Effect.sync(() => events.push("l-0 waits")),
                Deferred.await(backoffGate)
              ))).pipe(
                Effect.zipRight(Effect.sync(() => events.push("l-0 retried"))),
                Effect.as(success(request.label))
              )
            : Effect.zipRight(
              Effect.sync(() => events.push(`${request.label} starts`)),
              Effect.as(Deferred.await(secondGate), success(request.label))
            ),
        getLoadState: () => Effect.succeed("VISIBLE")
      })
      const labels = yield* LabelStore.makeMemory()
      const dispatcher = yield* dispatcherWith(client, labels, { maxBytes: 100, concurrency: 1 })
      yield* dispatcher.dispatch(sealedOf(0))
      yield* dispatcher.dispatch(sealedOf(1))
      yield* settle
      // one slot: the second load runs while the first waits out its backoff
      assert.deepStrictEqual(events, ["l-0 waits", "l-1 starts"])
      yield* Deferred.succeed(backoffGate, undefined)
      yield* settle
      // the first takes a slot again before its next attempt: the second holds the only one
      assert.deepStrictEqual(events, ["l-0 waits", "l-1 starts"])
      yield* Deferred.succeed(secondGate, undefined)
      yield* dispatcher.drain
      assert.deepStrictEqual(events, ["l-0 waits", "l-1 starts", "l-0 retried"])
      const committed = yield* labels.list({ state: "committed" })
      assert.deepStrictEqual(committed.map((r) => r.label).sort(), ["l-0", "l-1"])
    }))
})
