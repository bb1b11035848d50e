/**
 * The loader's send loop without a stream: what `Stream.fromQueue(queue).pipe(Stream.flattenTake, Stream.map(prepare),
 * Stream.mapEffect(send, { concurrency }), Stream.runForEach(land))` does, run by two fibers instead of a stream's
 * channels. effect's `Stream.mapEffect` with a concurrency is its `Channel.mapOutEffectPar` under three more channel
 * layers (the queue's takes, the chunks' flattening, the outputs' chunks), and the channel executor interpreting them
 * cost a one-row load 20-28 M instructions of its 717 M, more than the load's own HTTP exchange (callgrind,
 * docs/benchmark.md, session 16). This is `mapOutEffectPar`'s algorithm written out:
 *
 * - a producer fiber takes the next item (the queue's chunks one item at a time), offers the await of its result to
 *   an ordered queue of `concurrency` places, forks its send under one of `concurrency` permits and takes the next
 *   item only once that send has its permit; at the end it waits for every permit (every send has ended) and offers
 *   the end;
 * - each send races the first failure of any send: a failing send interrupts the others, and its cause is the result
 *   of every send it interrupted;
 * - the caller lands the results one by one in the items' order, and fails with the first failure in that order
 *   (a failure of the queue, once the items before it have landed);
 * - the sends and the producer run in a scope of their own, closed (they are interrupted) when the loop ends.
 *
 * One difference, which changes nothing the loader does: the stream called `prepare` on all the items of a chunk when
 * it took the chunk, the loop calls it on each item when it takes it (in order, before its send, as before).
 *
 * @internal
 */
import type { Cause } from "effect"
import { Deferred, Effect, Option, Queue, Scope, Take } from "effect"

export const sendInOrder = <A, B, C, E, E2, R, R2>(options: {
  /** The items, as `Stream.toQueue` gives a stream: chunks, then the end (or a failure). */
  readonly queue: Queue.Dequeue<Take.Take<A, E>>
  /** Called on each item as it is taken, in order (the loader's phases). */
  readonly prepare: (a: A) => B
  readonly send: (b: B) => Effect.Effect<C, E, R>
  readonly land: (c: C) => Effect.Effect<void, E2, R2>
  readonly concurrency: number
}): Effect.Effect<void, E | E2, R | R2> =>
  Effect.scoped(Effect.gen(function*() {
    const { concurrency, land, prepare, queue, send } = options
    const scope = yield* Effect.scope
    const results = yield* Queue.bounded<Effect.Effect<Option.Option<C>, E>>(concurrency)
    yield* Scope.addFinalizer(scope, Queue.shutdown(results))
    const errorSignal = yield* Deferred.make<never, E>()
    const semaphore = yield* Effect.makeSemaphore(concurrency)
    /** The rest of the chunk taken last. */
    let chunk: Array<A> = []
    let at = 0
    const next: Effect.Effect<Option.Option<A>, E> = Effect.suspend(() =>
      at < chunk.length
        ? Effect.succeed(Option.some(chunk[at++]!))
        : Effect.flatMap(Queue.take(queue), (take) =>
          Take.match(take, {
            onEnd: () => Effect.succeed(Option.none()),
            onFailure: (cause: Cause.Cause<E>) => Effect.failCause(cause),
            onSuccess: (items) => {
              chunk = Array.from(items)
              at = 0
              return next
            }
          }))
    )
    const producer: Effect.Effect<boolean, never, R> = Effect.matchCauseEffect(next, {
      onFailure: (cause) => Effect.as(Queue.offer(results, Effect.failCause(cause)), false),
      onSuccess: Option.match({
        onNone: () =>
          Effect.zipRight(
            Effect.interruptible(semaphore.withPermits(concurrency)(Effect.void)),
            Effect.as(Queue.offer(results, Effect.succeed(Option.none())), false)
          ),
        onSome: (a) =>
          Effect.gen(function*() {
            const item = prepare(a)
            const deferred = yield* Deferred.make<C, E>()
            const latch = yield* Deferred.make<void>()
            yield* Queue.offer(results, Effect.map(Deferred.await(deferred), Option.some))
            yield* Deferred.succeed(latch, undefined).pipe(
              Effect.zipRight(
                Effect.uninterruptibleMask((restore) =>
                  Effect.exit(restore(Deferred.await(errorSignal))).pipe(
                    Effect.raceFirst(Effect.exit(restore(send(item)))),
                    Effect.flatMap((exit) => exit)
                  )
                ).pipe(
                  Effect.tapErrorCause((cause) => Deferred.failCause(errorSignal, cause)),
                  Effect.intoDeferred(deferred)
                )
              ),
              semaphore.withPermits(1),
              Effect.forkIn(scope)
            )
            yield* Deferred.await(latch)
            return true
          })
      })
    })
    // the producer ends with the end or the first failure it offered (the stream's pulled again, to no effect)
    const produce: Effect.Effect<void, never, R> = Effect.flatMap(producer, (more) => more ? produce : Effect.void)
    yield* Effect.forkIn(Effect.interruptible(produce), scope)
    const consume: Effect.Effect<void, E | E2, R2> = Effect.flatMap(
      Effect.flatten(Queue.take(results)),
      Option.match({ onNone: () => Effect.void, onSome: (c) => Effect.zipRight(land(c), consume) })
    )
    yield* consume
  }))
