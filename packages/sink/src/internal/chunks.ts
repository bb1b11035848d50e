/**
 * The per-chunk sink of both sinks, and a hand-over that lets go of what it hands over.
 *
 * Measured (docs/benchmark.md, Memory): under `Stream.run`, the effects a sink runs per chunk stay reachable for a
 * while after they have run. When one holds its chunk, V8 promotes the upstream's rows to the old space, which
 * then grows by about 100 MB between full collections. Passed through `once`, rows are held by nothing once they
 * have been taken, and die young.
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

/**
 * `Sink.forEachChunk` over each chunk's rows as an array, the chunk handed over through `once`. `f` may throw a
 * `RowEncodeError` (from `BatchBuilder.add`): it fails the sink with it.
 */
export const forEachChunk = <In, E, R>(
  f: (rows: ReadonlyArray<In>) => Effect.Effect<void, E, R>
): Sink.Sink<void, In, never, E | RowEncodeError, R> =>
  Sink.forEachChunk((chunk: Chunk.Chunk<In>) => {
    const take = once(chunk)
    return Effect.suspend(() => f(Chunk.toReadonlyArray(take() ?? Chunk.empty<In>()))).pipe(
      Effect.catchAllDefect((defect) => defect instanceof RowEncodeError ? Effect.fail(defect) : Effect.die(defect))
    )
  })
