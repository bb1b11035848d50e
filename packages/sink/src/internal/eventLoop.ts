/**
 * Event-loop turns for code that encodes on the event loop's thread.
 *
 * Effect yields between fibers through microtasks, so a sink that encodes chunk after chunk would starve
 * sockets and timers: the body writes of its own loads in flight, its interval timer, and the rest of the
 * application. A `Turns` gives the event loop a macrotask turn (`setImmediate`, after pending I/O) whenever
 * `TURN_MS` have passed since the last one.
 */
import { Effect } from "effect"

/** Longest stretch of encoding (ms) before the event loop gets a turn. */
export const TURN_MS = 2

/** How many rows to encode between two looks at the clock. */
export const ROWS_PER_CHECK = 1024

export interface Turns {
  /** Whether `TURN_MS` have passed since the last turn. */
  readonly due: () => boolean
  /** A macrotask turn when `TURN_MS` have passed since the last one; nothing otherwise. */
  readonly maybe: Effect.Effect<void>
}

export const make = (): Turns => {
  let last = performance.now()
  const turn = Effect.async<void>((resume) => {
    setImmediate(() => {
      last = performance.now()
      resume(Effect.void)
    })
  })
  const due = () => performance.now() - last >= TURN_MS
  return { due, maybe: Effect.suspend(() => due() ? turn : Effect.void) }
}
