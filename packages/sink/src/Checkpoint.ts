/**
 * Checkpoint barriers for the exactly-once sink: the sink's input is a row or a barrier. A barrier carries the
 * source position of the last row before it and a `Deferred` that the sink completes once everything before the
 * barrier is committed in StarRocks and the checkpoint record is durable: the application may then commit or
 * acknowledge its source up to that position.
 *
 * ```ts
 * const summary = yield* source.pipe(
 *   Checkpoint.withBarriers({ position: (m) => m.seq, everyRows: 10_000, every: "5 seconds" }),
 *   Stream.run(StarRocksSink.exactlyOnce(Row, { position: Schema.Number }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { Chunk, Deferred, Effect, FiberId, Option, Schedule, Stream } from "effect"
import type { SinkError } from "./StarRocksError.js"
import { ExactlyOnceError } from "./StarRocksError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Row<A> {
  readonly _tag: "Row"
  readonly row: A
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Barrier<P> {
  readonly _tag: "Barrier"
  /** The source position of the last row before this barrier (what the checkpoint covers). */
  readonly position: P
  /** Completed when the checkpoint is durable and its transactions are committed; failed with the sink's error. */
  readonly ack: Deferred.Deferred<Ack<P>, SinkError>
}

/**
 * @since 0.1.0
 * @category models
 */
export type Envelope<A, P> = Row<A> | Barrier<P>

/**
 * What a completed checkpoint reports.
 *
 * @since 0.1.0
 * @category models
 */
export interface Ack<P> {
  /** The checkpoint id (increasing per checkpoint key). */
  readonly id: number
  readonly position: P
  /** The labels committed by this checkpoint (empty when no row came since the previous one). */
  readonly labels: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const row = <A>(row: A): Row<A> => ({ _tag: "Row", row })

/**
 * A barrier with a fresh, uncompleted ack.
 *
 * @since 0.1.0
 * @category constructors
 */
export const barrier = <P>(position: P): Effect.Effect<Barrier<P>> =>
  Effect.map(Deferred.make<Ack<P>, SinkError>(), (ack) => ({ _tag: "Barrier", position, ack }))

/**
 * @since 0.1.0
 * @category guards
 */
export const isBarrier = <A, P>(envelope: Envelope<A, P>): envelope is Barrier<P> => envelope._tag === "Barrier"

/**
 * @since 0.1.0
 * @category models
 */
export interface WithBarriersOptions<A, P> {
  /** The source position of a row (its offset, sequence number, …). */
  readonly position: (row: A) => P
  /** A barrier after every `everyRows` rows (counted since the previous barrier). */
  readonly everyRows?: number | undefined
  /** A barrier every `every` (only when rows came since the previous barrier). */
  readonly every?: Duration.DurationInput | undefined
  /** A final barrier when the stream ends, if rows came since the previous barrier (default true). */
  readonly final?: boolean | undefined
}

type Merged<A> = { readonly _tag: "row"; readonly row: A } | { readonly _tag: "tick" }

/**
 * Wraps rows in `Row` envelopes and injects barriers: after every `everyRows` rows and/or every `every` duration,
 * each carrying the position of the last row before it, and a final barrier when the stream ends (unless
 * `final: false`). A barrier is only emitted when rows came since the previous one. Timer ticks are merged into the
 * stream *before* positions are assigned, so a barrier's position is always that of the row just before it in the
 * output.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withBarriers =
  <A, P>(options: WithBarriersOptions<A, P>) =>
  <E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<Envelope<A, P>, E, R> =>
    Stream.suspend(() => {
      const everyRows = options.everyRows !== undefined && options.everyRows > 0 ? Math.floor(options.everyRows) : 0
      let last: Option.Option<P> = Option.none()
      let sinceBarrier = 0

      const rows: Stream.Stream<Merged<A>, E, R> = Stream.map(self, (row): Merged<A> => ({ _tag: "row", row }))
      const merged: Stream.Stream<Merged<A>, E, R> = options.every === undefined
        ? rows
        : Stream.merge(
          rows,
          Stream.fromSchedule(Schedule.spaced(options.every)).pipe(Stream.map((): Merged<A> => ({ _tag: "tick" }))),
          { haltStrategy: "left" }
        )

      const cut = (): Effect.Effect<Option.Option<Barrier<P>>> => {
        if (sinceBarrier === 0 || Option.isNone(last)) return Effect.succeed(Option.none())
        sinceBarrier = 0
        return Effect.map(barrier(last.value), Option.some)
      }

      const body = Stream.mapChunksEffect(merged, (chunk) =>
        Effect.gen(function*() {
          const out: Array<Envelope<A, P>> = []
          for (const item of chunk) {
            if (item._tag === "row") {
              out.push(row(item.row))
              last = Option.some(options.position(item.row))
              sinceBarrier++
              if (everyRows > 0 && sinceBarrier >= everyRows) {
                const b = yield* cut()
                if (Option.isSome(b)) out.push(b.value)
              }
            } else {
              const b = yield* cut()
              if (Option.isSome(b)) out.push(b.value)
            }
          }
          return Chunk.unsafeFromArray(out)
        }))

      if (options.final === false) return body
      return Stream.concat(
        body,
        Stream.unwrap(Effect.map(Effect.suspend(cut), (b) => Stream.fromIterable(Option.toArray(b))))
      )
    })

/**
 * Waits for a barrier's acknowledgement (the checkpoint is durable and committed).
 *
 * @since 0.1.0
 * @category combinators
 */
export const awaitAck = <P>(barrier: Barrier<P>): Effect.Effect<Ack<P>, SinkError> => Deferred.await(barrier.ack)

/**
 * Aligns the checkpoints of `n` exactly-once sinks (instances over partitions of one stream, in one process): the
 * k-th barrier of every instance forms checkpoint k, and no instance saves or commits checkpoint k before every
 * instance has prepared its transactions for it. An instance whose stream ended leaves the group (the others no
 * longer wait for it); one that fails or is interrupted aborts the group (the others fail with an
 * `ExactlyOnceError` `Coordinator` instead of waiting forever). Pass it as `coordinator` in the options of each
 * `StarRocksSink.exactlyOnce`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Coordinator {
  readonly size: number
  /** Called by a sink when it has prepared checkpoint `round` (1, 2, …): waits for the other members. */
  readonly arrive: (round: number) => Effect.Effect<void, SinkError>
  /** Called by a sink whose stream ended. */
  readonly leave: Effect.Effect<void>
  /** Called by a sink that failed or was interrupted. */
  readonly abort: (reason: string) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const coordinator = (n: number): Effect.Effect<Coordinator> =>
  Effect.sync(() => {
    let members = Math.max(1, Math.floor(n))
    let failed: ExactlyOnceError | undefined
    const rounds = new Map<number, { arrived: number; done: Deferred.Deferred<void, SinkError> }>()
    const release = Effect.suspend(() =>
      Effect.forEach(Array.from(rounds.entries()), ([k, r]) => {
        if (r.arrived < members) return Effect.void
        rounds.delete(k)
        return Deferred.succeed(r.done, undefined)
      }, { discard: true })
    )
    return {
      size: members,
      arrive: (round) =>
        Effect.suspend(() => {
          if (failed !== undefined) return Effect.fail(failed)
          let r = rounds.get(round)
          if (r === undefined) {
            r = { arrived: 0, done: Deferred.unsafeMake<void, SinkError>(FiberId.none) }
            rounds.set(round, r)
          }
          r.arrived++
          const done = r.done
          return Effect.zipRight(release, Deferred.await(done))
        }),
      leave: Effect.suspend(() => {
        members--
        return release
      }),
      abort: (reason) =>
        Effect.suspend(() => {
          if (failed === undefined) {
            failed = new ExactlyOnceError({
              reason: "Coordinator",
              message: `another instance of the aligned checkpoint stopped: ${reason}`
            })
          }
          const error = failed
          const all = Array.from(rounds.values())
          rounds.clear()
          return Effect.forEach(all, (r) => Deferred.fail(r.done, error), { discard: true })
        })
    }
  })
