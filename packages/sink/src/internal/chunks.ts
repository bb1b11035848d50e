/**
 * The per-chunk sink of both sinks, and a hand-over that lets go of what it hands over.
 *
 * Measured (docs/benchmark.md, Memory): under `Stream.run`, the effects a sink runs per chunk stay reachable for a
 * while after they have run. When one holds its chunk, V8 promotes the upstream's rows to the old space, which
 * then grows by about 100 MB between full collections. Passed through `once`, rows are held by nothing once they
 * have been taken, and die young. `forEachChunk` hands the rows to its function in the per-chunk call itself, so the
 * effect it returns holds them only through `once`.
 */
import { Chunk, Effect, Sink } from "effect"
import { RowEncodeError } from "../RowEncodeError.js"

/** Holds `value` until it is taken: the first call returns it and lets go of it, later calls return undefined. */
export const once = <A>(value: A): () => A | undefined => {
  let held: A | undefined = value
  return () => {
    const taken = held
    held = undefined
    return taken
  }
}

const defectToFailure = (defect: unknown) => defect instanceof RowEncodeError ? Effect.fail(defect) : Effect.die(defect)

/**
 * `Sink.forEachChunk` over each chunk's rows as an array. `f` may throw a `RowEncodeError` (from `BatchBuilder.add`),
 * or its effect die with one: it fails the sink with it.
 *
 * `f` is called right in the per-chunk call (the channel runs the effect it returns at once, and asks for the next
 * chunk only after that), so the effect returned holds no chunk unless `f` puts it there: an effect that needs the
 * rows later must take them through `once`. When `f` returns `Effect.void` (rows encoded synchronously: the
 * batcher's lock-free way) nothing is wrapped, which is what makes one-row chunks cheap (docs/benchmark.md).
 */
export const forEachChunk = <In, E, R>(
  f: (rows: ReadonlyArray<In>) => Effect.Effect<void, E, R>
): Sink.Sink<void, In, never, E | RowEncodeError, R> => Sink.forEachChunk(stepOf(f))

/** `forEachChunk`'s per-chunk function, for a sink that reads its chunks itself (the exactly-once sink's channel). */
export const stepOf = <In, E, R>(
  f: (rows: ReadonlyArray<In>) => Effect.Effect<void, E, R>
): (chunk: Chunk.Chunk<In>) => Effect.Effect<void, E | RowEncodeError, R> => {
  // one-row chunks (Stream.async, fromAsyncIterable, rechunk(1)): the row goes in an array of this sink's own.
  // `Chunk.toReadonlyArray` of a one-element chunk allocates an array and a new backing object and reshapes the
  // chunk, once per row. Reusing the array is safe because the channel runs the effect `f` returns to its end before
  // it hands over the next chunk; the slot is cleared when the row was taken synchronously.
  const one: Array<In> = [undefined as In]
  return (chunk: Chunk.Chunk<In>) => {
    let effect: Effect.Effect<void, E, R>
    const single = chunk.length === 1
    try {
      if (single) one[0] = Chunk.unsafeGet(chunk, 0)
      effect = f(single ? one : Chunk.toReadonlyArray(chunk))
    } catch (defect) {
      if (single) one[0] = undefined as In
      return defectToFailure(defect)
    }
    if (effect === Effect.void) {
      if (single) one[0] = undefined as In
      return effect
    }
    return Effect.catchAllDefect(effect, defectToFailure)
  }
}
