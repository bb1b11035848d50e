/**
 * The exactly-once sink's start against the emulator (memory storage, real sockets, live clock): step 2 of recovery
 * (the walk over the table's next labels, `get_load_state` per label, rolling back what lingers) runs beside the
 * reading of the first rows, no transaction begins before it is done, and its failure fails the sink at once under a
 * quiet upstream.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, Option, Queue, Schema, Stream } from "effect"
import type { Context } from "effect"
import { Checkpoint, LoadClient, StarRocksSink } from "../../src/index.js"
import { configFor, db, Emulator, Row, rowsFrom, services, setupTable } from "./exactlyOnceFixture.js"

const setup = setupTable("eostart")

type Client = Context.Tag.Service<typeof LoadClient.LoadClient>

/** The LoadClient below with its label probes and begins wrapped (`probe` is given the real probe). */
const hooked = (
  probe: (
    request: Parameters<Client["getLoadStateDetail"]>[0],
    real: Client["getLoadStateDetail"]
  ) => ReturnType<Client["getLoadStateDetail"]>,
  began: (label: string) => void
) =>
  Layer.effect(
    LoadClient.LoadClient,
    Effect.map(LoadClient.LoadClient, (client) => ({
      ...client,
      getLoadStateDetail: (request: Parameters<Client["getLoadStateDetail"]>[0]) =>
        probe(request, client.getLoadStateDetail),
      begin: (request: Parameters<Client["begin"]>[0]) =>
        Effect.zipRight(Effect.sync(() => began(request.label)), client.begin(request))
    }))
  )

const options = { position: Schema.Number } as const

describe("exactly-once start (emulator)", () => {
  layer(Emulator, { excludeTestServices: true, timeout: "30 seconds" })((it) => {
    it.effect("the first rows are read while the start's recovery walk waits; no transaction begins before it rolled back what lingers", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx)
        const label = (id: number) => StarRocksSink.batchLabel("effect-sr", ctx.table, "0", id)
        // a transaction of an earlier run lingers at the first label (begun, never prepared)
        yield* Effect.flatMap(
          LoadClient.LoadClient,
          (c) => c.begin({ database: db, table: ctx.table, label: label(0) })
        )
          .pipe(Effect.provide(services(ctx, config)))
        const events: Array<string> = []
        const gate = yield* Deferred.make<void>()
        const client = hooked(
          (request, real) =>
            Effect.zipRight(Deferred.await(gate), real(request)).pipe(
              Effect.tap(() => Effect.sync(() => events.push(`probe ${request.label}`)))
            ),
          (l) => events.push(`begin ${l}`)
        )
        const pulled = yield* Deferred.make<void>()
        const fiber = yield* Stream.fromIterable(rowsFrom(0, 300)).pipe(
          Stream.rechunk(10),
          Stream.tap((r) => r.id === 50 ? Deferred.succeed(pulled, undefined) : Effect.void),
          Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 100 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(client),
          Effect.provide(services(ctx, config)),
          Effect.fork
        )
        // the first batch (100 rows) is encoded meanwhile; before, the sink read no row until every probe had answered
        yield* Deferred.await(pulled).pipe(Effect.timeoutFail({
          duration: "10 seconds",
          onTimeout: () => new Error("no row was read while the recovery walk's probes waited")
        }))
        assert.deepStrictEqual(events, [], "nothing began while the walk waited")
        yield* Deferred.succeed(gate, undefined)
        const summary = yield* Fiber.join(fiber)
        assert.strictEqual(summary.rows, 300)
        assert.strictEqual(summary.checkpoints, 3)
        const firstBegin = events.findIndex((e) => e.startsWith("begin "))
        const lastProbe = events.map((e) => e.startsWith("probe ")).lastIndexOf(true)
        assert.isTrue(lastProbe >= 0 && firstBegin > lastProbe, `every begin after the walk: ${events.join(", ")}`)
        // the lingering transaction was rolled back and its label passed over
        assert.strictEqual(events[firstBegin], `begin ${label(1)}`)
        const states = new Map((yield* ctx.emulator.transactions(db)).map((t) => [t.label, t.status]))
        assert.strictEqual(states.get(label(0)), "ABORTED")
        const ids = (yield* ctx.emulator.rows(db, ctx.table)).map((r) => Number(r["id"] as bigint)).sort((a, b) =>
          a - b
        )
        assert.deepStrictEqual(ids, rowsFrom(0, 300).map((r) => Number(r.id)))
      }))

    it.effect("a failure of the start's recovery walk fails the sink at once with a quiet upstream; nothing begins", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx)
        const label = (id: number) => StarRocksSink.batchLabel("effect-sr", ctx.table, "0", id)
        const began: Array<string> = []
        // the first label is found committed by someone else: the walk fails with a LabelCollision
        const client = hooked(
          (request, real) =>
            request.label === label(0)
              ? Effect.succeed({ state: "VISIBLE" as const, reason: undefined })
              : real(request),
          (l) => began.push(l)
        )
        // the upstream stays open and quiet from the start
        const queue = yield* Queue.unbounded<Checkpoint.Envelope<Row, number>>()
        const exit = yield* Stream.fromQueue(queue).pipe(
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(client),
          Effect.provide(services(ctx, config)),
          Effect.timeoutFail({
            duration: "10 seconds",
            onTimeout: () => new Error("the sink did not fail while its upstream was quiet")
          }),
          Effect.exit
        )
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        assert.strictEqual(
          (Option.getOrUndefined(error) as { readonly _tag?: string } | undefined)?._tag,
          "ExactlyOnceError"
        )
        assert.strictEqual((Option.getOrThrow(error) as StarRocksSink.ExactlyOnceError).reason, "LabelCollision")
        assert.deepStrictEqual(began, [])
        assert.deepStrictEqual(yield* ctx.emulator.rows(db, ctx.table), [])
      }))
  })
})
