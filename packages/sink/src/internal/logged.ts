/**
 * Log lines of the per-load paths (the client's stream loads and transaction calls, the ledger's landed loads).
 *
 * @internal
 */
import { Effect, FiberRef, LogLevel } from "effect"

/**
 * A log line at `level`, built only when the fiber's minimum log level lets it through: a line of every load
 * (its annotations are a dozen fiber-local map updates) costs one FiberRef read when it would be dropped anyway.
 */
export const logged = (level: LogLevel.LogLevel, line: () => Effect.Effect<void>): Effect.Effect<void> =>
  FiberRef.getWith(
    FiberRef.currentMinimumLogLevel,
    (minimum) => LogLevel.greaterThan(minimum, level) ? Effect.void : line()
  )
