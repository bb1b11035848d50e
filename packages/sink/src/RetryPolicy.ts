/**
 * The retry schedule of the load path: exponential (×2) from `base`, jittered (×0.8..1.2), each delay capped at
 * `maxDelay`, at most `maxRetries` retries, and only while the error is retryable (protocol §7).
 *
 * @since 0.1.0
 */
import { Duration, Schedule } from "effect"
import type { LoadError } from "./StarRocksError.js"
import { isRetryable } from "./StarRocksError.js"

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
  const retryable = options.while ?? (isRetryable as unknown as (error: E) => boolean)
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
