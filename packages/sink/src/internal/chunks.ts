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
): Sink.Sink<void, In, never, E | RowEncodeError, R> =>
  Sink.forEachChunk((chunk: Chunk.Chunk<In>) => {
    let effect: Effect.Effect<void, E, R>
    try {
      effect = f(Chunk.toReadonlyArray(chunk))
    } catch (defect) {
      return defectToFailure(defect)
    }
    return effect === Effect.void ? effect : Effect.catchAllDefect(effect, defectToFailure)
  })
