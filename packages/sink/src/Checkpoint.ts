/**
 * Checkpoint barriers for the exactly-once sink: the sink's input is the application's rows, as they are, with
 * barriers between them. A barrier carries the source position of the last row before it and a `Deferred` that the
 * sink completes once everything before the barrier is committed in StarRocks and the checkpoint record is durable:
 * the application may then commit or acknowledge its source up to that position, best in the sink's `onCheckpoint`
 * option, which the sink runs itself on each committed checkpoint's ack.
 *
 * ```ts
 * const summary = yield* source.pipe(
 *   Checkpoint.withBarriers({ position: (m) => m.seq, everyRows: 10_000, every: "5 seconds" }),
 *   Stream.run(StarRocksSink.exactlyOnce(Row, {
 *     position: Schema.Number,
 *     onCheckpoint: (ack) => commitOffsets(ack.position)
 *   }))
 * )
 * ```
 *
 * Rows are not wrapped: a barrier is told from a row by its brand (`isBarrier`), so a stream of rows costs the
 * exactly-once sink no object per row (docs/benchmark.md, Exactly-once).
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { Chunk, Data, Deferred, Effect, FiberId, Schedule, Stream } from "effect"
import * as InternalBarrier from "./internal/barrier.js"
import type { SinkError } from "./StarRocksError.js"
import { ExactlyOnceError } from "./StarRocksError.js"

/**
 * @since 0.1.0
 * @category symbols
 */
export const BarrierTypeId: typeof InternalBarrier.TypeId = InternalBarrier.TypeId

/**
 * @since 0.1.0
 * @category symbols
 */
export type BarrierTypeId = typeof BarrierTypeId

/**
 * A checkpoint barrier (made by `barrier` or `withBarriers`; recognised by `isBarrier`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Barrier<P> {
  readonly [BarrierTypeId]: BarrierTypeId
  /** The source position of the last row before this barrier (what the checkpoint covers). */
  readonly position: P
  /** Completed when the checkpoint is durable and its transactions are committed; failed with the sink's error. */
  readonly ack: Deferred.Deferred<Ack<P>, SinkError>
}

/**
 * The exactly-once sink's input: a row of the application (`A`, as it is) or a barrier.
 *
 * @since 0.1.0
 * @category models
 */
export type Envelope<A, P> = A | Barrier<P>

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
  /**
   * `true` on the ack the exactly-once sink hands to its `onCheckpoint` at start for the last checkpoint that
   * recovery found (committed by this start or by an earlier run); absent on the acks of barriers.
   *
   * @since 0.5.0
   */
  readonly recovered?: true | undefined
}

/**
 * The exactly-once sink's `onCheckpoint` callback failed (`cause`: its error). The checkpoint it was given is
 * committed and durable (its barrier's ack succeeded) whatever the callback did: the next start's recovery finds it as
 * the last checkpoint and hands it to `onCheckpoint` again (`recovered: true`). See docs/exactly-once.md,
 * "onCheckpoint".
 *
 * @since 0.5.0
 * @category errors
 */
export class OnCheckpointError<E> extends Data.TaggedError("OnCheckpointError")<{
  /** What the callback failed with. */
  readonly cause: E
  /** The id of the checkpoint it was given (committed). */
  readonly checkpoint: number
  /** That checkpoint's position. */
  readonly position: unknown
  /** Whether it was the checkpoint recovery found at start. */
  readonly recovered: boolean
}> {
  override get message(): string {
    return `onCheckpoint failed for ${this.recovered ? "the recovered " : ""}checkpoint ${this.checkpoint} ` +
      `(${describe(this.cause)}); the checkpoint is committed: recovery hands it to onCheckpoint again at the next ` +
      "start"
  }
}

/** A callback's error in a few words: its tag (or name) and message. */
const describe = (cause: unknown): string => {
  if (typeof cause === "string") return cause
  if (typeof cause !== "object" || cause === null) return String(cause)
  const c = cause as { readonly _tag?: unknown; readonly name?: unknown; readonly message?: unknown }
  const tag = typeof c._tag === "string" ? c._tag : typeof c.name === "string" ? c.name : "error"
  return typeof c.message === "string" && c.message !== "" ? `${tag}: ${c.message}` : tag
}

/**
 * Whether a value is an `OnCheckpointError`.
 *
 * @since 0.5.0
 * @category guards
 */
export const isOnCheckpointError = (u: unknown): u is OnCheckpointError<unknown> => u instanceof OnCheckpointError

class BarrierImpl<P> implements Barrier<P> {
  readonly [BarrierTypeId]: BarrierTypeId = BarrierTypeId
  constructor(readonly position: P, readonly ack: Deferred.Deferred<Ack<P>, SinkError>) {}
}

/** A barrier made outside an effect (inside a stream's chunk function): its ack belongs to no fiber. */
const unsafeBarrier = <P>(position: P): Barrier<P> =>
  new BarrierImpl(position, Deferred.unsafeMake<Ack<P>, SinkError>(FiberId.none))

/**
 * A barrier with a fresh, uncompleted ack.
 *
 * @since 0.1.0
 * @category constructors
 */
export const barrier = <P>(position: P): Effect.Effect<Barrier<P>> =>
  Effect.map(Deferred.make<Ack<P>, SinkError>(), (ack) => new BarrierImpl(position, ack))

/**
 * Whether an item of the sink's input is a barrier (else it is a row). Rows are never mistaken for barriers: the
 * check is the barrier's brand (`BarrierTypeId`), not a field a row could carry (a row's `_tag` included).
 *
 * @since 0.1.0
 * @category guards
 */
export const isBarrier = <A, P>(item: Envelope<A, P>): item is Barrier<P> => InternalBarrier.is(item)

/**
 * @since 0.1.0
 * @category models
 */
export interface WithBarriersOptions<A, P> {
  /** The source position of a row (its offset, sequence number, …): called for the row just before each barrier. */
  readonly position: (row: A) => P
  /** A barrier after every `everyRows` rows (counted since the previous barrier). */
  readonly everyRows?: number | undefined
  /** A barrier every `every` (only when rows came since the previous barrier). */
  readonly every?: Duration.DurationInput | undefined
  /** A final barrier when the stream ends, if rows came since the previous barrier (default true). */
  readonly final?: boolean | undefined
}

/** A timer tick of `withBarriers`, between the upstream's chunks (never a row: it is this module's own symbol). */
const Tick: unique symbol = Symbol("@effect-starrocks/sink/Checkpoint/tick")

/**
 * Injects barriers into a stream of rows: after every `everyRows` rows and/or every `every` duration, each carrying
 * the position of the last row before it, and a final barrier when the stream ends (unless `final: false`). A
 * barrier is only emitted when rows came since the previous one. Timer ticks are merged into the stream *before*
 * positions are assigned, so a barrier's position is always that of the row just before it in the output.
 *
 * Rows pass as they are, and a chunk in which no barrier falls passes whole (the same chunk, nothing allocated per
 * row): only a chunk that a barrier cuts is copied. Ticks travel between the upstream's chunks, never inside one.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withBarriers =
  <A, P>(options: WithBarriersOptions<A, P>) =>
  <E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<Envelope<A, P>, E, R> =>
    Stream.suspend(() => {
      const everyRows = options.everyRows !== undefined && options.everyRows > 0 ? Math.floor(options.everyRows) : 0
      // the last row since the previous barrier (its position is taken when a barrier follows it)
      let last: A | undefined
      let sinceBarrier = 0

      const cut = (): Barrier<P> => {
        sinceBarrier = 0
        const position = options.position(last as A)
        last = undefined
        return unsafeBarrier(position)
      }
      // whether `n` more rows stay short of the next row-count barrier
      const fits = (n: number) => everyRows === 0 || sinceBarrier + n < everyRows
      const pass = (chunk: Chunk.Chunk<A>) => {
        sinceBarrier += chunk.length
        last = Chunk.unsafeLast(chunk)
      }
      // a chunk that a row-count barrier cuts: its rows with the barriers among them
      const cutInto = (out: Array<Envelope<A, P>>, chunk: Chunk.Chunk<A>) => {
        for (const row of chunk) {
          out.push(row)
          last = row
          if (++sinceBarrier >= everyRows) out.push(cut())
        }
      }

      const body: Stream.Stream<Envelope<A, P>, E, R> = options.every === undefined
        ? Stream.mapChunks(self, (chunk): Chunk.Chunk<Envelope<A, P>> => {
          if (chunk.length === 0) return chunk
          if (fits(chunk.length)) {
            pass(chunk)
            return chunk
          }
          const out: Array<Envelope<A, P>> = []
          cutInto(out, chunk)
          return Chunk.unsafeFromArray(out)
        })
        : Stream.mapChunks(
          // each upstream chunk as one element, so that a tick falls between chunks
          Stream.merge(
            Stream.mapChunks(self, (chunk) => Chunk.of(chunk)),
            Stream.fromSchedule(Schedule.spaced(options.every)).pipe(Stream.as(Tick)),
            { haltStrategy: "left" }
          ),
          (pieces): Chunk.Chunk<Envelope<A, P>> => {
            if (pieces.length === 1) {
              const piece = Chunk.unsafeHead(pieces)
              if (piece !== Tick && (piece.length === 0 || fits(piece.length))) {
                if (piece.length > 0) pass(piece)
                return piece
              }
            }
            const out: Array<Envelope<A, P>> = []
            for (const piece of pieces) {
              if (piece === Tick) {
                if (sinceBarrier > 0) out.push(cut())
              } else if (piece.length > 0 && fits(piece.length)) {
                pass(piece)
                for (const row of piece) out.push(row)
              } else {
                cutInto(out, piece)
              }
            }
            return Chunk.unsafeFromArray(out)
          }
        )

      if (options.final === false) return body
      return Stream.concat(body, Stream.suspend(() => sinceBarrier > 0 ? Stream.make(cut()) : Stream.empty))
    })

/**
 * Waits for a barrier's acknowledgement (the checkpoint is durable and committed). To commit the source's offsets,
 * prefer the sink's `onCheckpoint` option. A fiber that waits here, forked in the upstream (`Stream.tap`) with
 * `Effect.fork`, can end before the ack: while a checkpoint finishes in the background the sink reads in a fiber of
 * its own, where the upstream then runs. Fork such waits with `Effect.forkDaemon` and join them, or into a scope of
 * yours (docs/exactly-once.md, The API).
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
