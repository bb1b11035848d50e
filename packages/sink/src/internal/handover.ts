/**
 * A hand-over of one element at a time between a channel's upstream and a reader that a failure from elsewhere can
 * wake: the exactly-once sink's reading while a step runs in the background (internal/exactlyOnce.ts). @internal
 */
import type { Cause, SingleProducerAsyncInput } from "effect"
import { Effect } from "effect"

/**
 * The exactly-once sink's reading while a step runs in the background (internal/exactlyOnce.ts, the channel at the end of `make`): the
 * upstream's drainer (the channel executor's, in a fiber of its own under `Channel.embedInput`) hands its chunks
 * over one at a time to the sink's reading, and pulls the upstream only when the reading asks for a chunk, so that
 * nothing is read ahead (the reading ends between two chunks and the stream's fiber reads on from there). `take`
 * gives the next chunk, or `undefined` at the upstream's end, or fails with the upstream's failure; it fails with
 * `failure.cause` once that is set (a step in the background failed), and `fail` ends a wait for the upstream with
 * it. One chunk at most is in the hand-over, and nothing keeps it once it is taken.
 */
/** A chunk (or the end: `undefined`) or the upstream's failure, as the drainer hands it over. */
type Item<A> = { readonly value: A | undefined } | { readonly cause: Cause.Cause<unknown> }

export class Handover<A, E> implements SingleProducerAsyncInput.AsyncInputProducer<unknown, A, unknown> {
  /** A chunk (or the end) handed over before the reading waited for it. */
  private held: Item<A> | undefined
  /** The reading, waiting for the next chunk. */
  private taker: ((effect: Effect.Effect<A | undefined, E>) => void) | undefined
  /** The drainer, waiting for the reading to ask. */
  private reader: (() => void) | undefined
  /** The reading asked and the drainer has not handed over yet. */
  private asked = false

  constructor(private readonly failure: { readonly cause: Cause.Cause<E> | undefined }) {}

  readonly take: Effect.Effect<A | undefined, E> = Effect.async<A | undefined, E>((resume) => {
    const failed = this.failure.cause
    if (failed !== undefined) return resume(Effect.failCause(failed))
    const held = this.held
    if (held !== undefined) {
      this.held = undefined
      return resume(this.asEffect(held))
    }
    this.taker = resume
    this.asked = true
    const reader = this.reader
    this.reader = undefined
    reader?.()
    return Effect.sync(() => {
      this.taker = undefined
    })
  })

  /** Ends the reading's wait with the sink's failure (a later `take` fails with `failure.cause`). */
  fail(cause: Cause.Cause<E>): void {
    const taker = this.taker
    this.taker = undefined
    taker?.(Effect.failCause(cause))
  }

  private give(item: Item<A>): void {
    this.asked = false
    const taker = this.taker
    this.taker = undefined
    if (taker === undefined) this.held = item
    else taker(this.asEffect(item))
  }

  /** What the reading gets for a handed-over item: the chunk (or the end), or the upstream's failure. */
  private asEffect(item: Item<A>): Effect.Effect<A | undefined, E> {
    return "cause" in item ? Effect.failCause(item.cause as Cause.Cause<E>) : Effect.succeed(item.value)
  }

  awaitRead(): Effect.Effect<unknown> {
    return Effect.async<void>((resume) => {
      if (this.asked) return resume(Effect.void)
      this.reader = () => resume(Effect.void)
      return Effect.sync(() => {
        this.reader = undefined
      })
    })
  }
  emit(element: A): Effect.Effect<unknown> {
    return Effect.sync(() => this.give({ value: element }))
  }
  error(cause: Cause.Cause<unknown>): Effect.Effect<unknown> {
    return Effect.sync(() => this.give({ cause }))
  }
  done(): Effect.Effect<unknown> {
    return Effect.sync(() => this.give({ value: undefined }))
  }
}
