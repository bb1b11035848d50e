/**
 * The retries of the load path: the schedule (exponential (×2) from `base`, jittered (×0.8..1.2), each delay capped
 * at `maxDelay`, at most `maxRetries` retries, only while the error is retryable), and the one decision of what a
 * failure leads to (`decide`: `Retry`, `Replay`, `Settle` or `Fail`), taken from the facts the error carries.
 *
 * @since 0.1.0
 */
import { Duration, Schedule } from "effect"
import * as RetryLogic from "./internal/client/retryLogic.js"
import type { LoadError } from "./StarRocksError.js"

/**
 * The call a failure came from: `streamLoad`, `loadState` (`get_load_state`), the transaction calls `begin`, `load`,
 * `prepare`, `commit`, `rollback`, `transactional` (one batch over begin/load/commit, replayed under its label after
 * a rollback) and `replay` (exactly-once: replayed into a new transaction under a new label).
 *
 * @since 0.1.0
 * @category models
 */
export type Operation = RetryLogic.Operation

/**
 * `Retry` the same request (same label) after a backoff, `Replay` the data into a new transaction once the failed
 * one is rolled back, `Settle` the outcome through `get_load_state`, or `Fail` for good.
 *
 * @since 0.1.0
 * @category models
 */
export type Decision = RetryLogic.Decision

/**
 * What the failure `error` of `operation` leads to. The one place the load path decides it (the table is in
 * `internal/client/retryLogic.ts`).
 *
 * @since 0.1.0
 * @category decisions
 */
export const decide: (operation: Operation, error: LoadError) => Decision = RetryLogic.decide

/**
 * Whether retrying the same request (same label) after a backoff is safe and may succeed.
 *
 * @since 0.1.0
 * @category decisions
 */
export const isRetryable: (error: LoadError) => boolean = RetryLogic.isRetryable

/**
 * Whether the data of a failed load is worth a replay into a new transaction once the failed one is rolled back:
 * under the same label (the at-least-once transaction path) or, with `newLabel`, under a new one (exactly-once:
 * then a transport failure of any kind and a label in use count too).
 *
 * @since 0.1.0
 * @category decisions
 */
export const isReplayable: (error: LoadError, options?: { readonly newLabel?: boolean | undefined }) => boolean =
  RetryLogic.isReplayable

/**
 * @since 0.1.0
 * @category models
 */
export interface RetryPolicyOptions<E = LoadError> {
  readonly base: Duration.DurationInput
  readonly maxDelay: Duration.DurationInput
  readonly maxRetries: number
  /** Which errors are retried; `isRetryable` by default. */
  readonly while?: ((error: E) => boolean) | undefined
}

/**
 * The input of the schedule is the error of the failed attempt; the output is the nominal (un-jittered, capped)
 * delay before the next one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E = LoadError>(options: RetryPolicyOptions<E>): Schedule.Schedule<Duration.Duration, E> => {
  const retryable = options.while ?? (RetryLogic.isRetryable as unknown as (error: E) => boolean)
  const cap = Duration.decode(options.maxDelay)
  return Schedule.exponential(options.base, 2).pipe(
    Schedule.jittered,
    // the cap applies to each (jittered) delay
    Schedule.modifyDelay((_, delay) => Duration.min(delay, cap)),
    Schedule.intersect(Schedule.recurs(Math.max(0, Math.floor(options.maxRetries)))),
    Schedule.map(([delay]) => Duration.min(delay, cap)),
    Schedule.whileInput(retryable)
  )
}
