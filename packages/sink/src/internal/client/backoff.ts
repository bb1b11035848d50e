/**
 * The wait between two attempts of a request, made visible to the caller. Every retry of the client sleeps its
 * backoff through `currentBackoff`, a fiber-local hook that runs the sleep: the identity by default. The sink's
 * dispatcher sets it, around one load, to give the load's in-flight slot back while the load waits out a backoff
 * and take it again before the next attempt, so that a table whose loads are being retried does not hold the
 * slots the other tables' loads need (internal/sink/dispatcher.ts).
 *
 * @internal
 */
import { Duration, Effect, FiberRef, Schedule } from "effect"
import { globalValue } from "effect/GlobalValue"
import * as RetryPolicy from "../../RetryPolicy.js"
import type { LoadError } from "../../StarRocksError.js"
import type { RetryBudget } from "./connection.js"
import * as RetryLogic from "./retryLogic.js"

/** Runs the wait between two attempts (the sleep of a backoff). */
export interface Backoff {
  (wait: Effect.Effect<void>): Effect.Effect<void>
}

export const currentBackoff: FiberRef.FiberRef<Backoff> = globalValue(
  Symbol.for("effect-starrocks/LoadClient/currentBackoff"),
  () => FiberRef.unsafeMake<Backoff>((wait) => wait)
)

/** Sees the error of each failed attempt of a retried request (before the decision to retry it or not). */
export interface AttemptFailed {
  (error: unknown): Effect.Effect<void>
}

/**
 * A fiber-local hook told of each failed attempt that goes through a retry schedule of the client: nothing by
 * default. The sink's dispatcher sets it around one load to hear of back pressure ("too many versions", a memory
 * limit, …) while the load is still being retried (adaptive concurrency, internal/sink/adaptive.ts).
 */
export const currentAttemptFailed: FiberRef.FiberRef<AttemptFailed> = globalValue(
  Symbol.for("effect-starrocks/LoadClient/currentAttemptFailed"),
  () => FiberRef.unsafeMake<AttemptFailed>(() => Effect.void)
)

/**
 * The schedule with each delay slept inside the schedule, through `currentBackoff`, and none left to the retry
 * loop: the delays, their number and the outputs stay as they were. Each failed attempt's error is shown to
 * `currentAttemptFailed` first.
 */
export const throughHook = <Out, In, R>(schedule: Schedule.Schedule<Out, In, R>): Schedule.Schedule<Out, In, R> =>
  Schedule.modifyDelayEffect(
    Schedule.tapInput(schedule, (error: In) => Effect.flatMap(FiberRef.get(currentAttemptFailed), (f) => f(error))),
    (_out, delay) =>
      Duration.toMillis(delay) <= 0
        ? Effect.succeed(Duration.zero)
        : Effect.flatMap(FiberRef.get(currentBackoff), (backoff) => backoff(Effect.sleep(delay))).pipe(
          Effect.as(Duration.zero)
        )
  )

/**
 * The client's retry schedule for one request: the connection's retry budget while `retryable` says so, each delay
 * slept through the hooks (`throughHook`). Every operation (stream load, merge commit, transaction calls, their
 * replay, `get_load_state`) retries through it.
 */
export const policy = (
  budget: RetryBudget,
  retryable: (error: LoadError) => boolean
): Schedule.Schedule<Duration.Duration, LoadError> =>
  throughHook(RetryPolicy.make<LoadError>({ ...budget, while: retryable }))

const operationPolicies = new WeakMap<
  RetryBudget,
  Map<RetryLogic.Operation, Schedule.Schedule<Duration.Duration, LoadError>>
>()

/**
 * `policy` over the errors that `operation` retries (retryLogic.ts `decide`), made once per retry budget (one per
 * connection) and operation, not once per request: a schedule is a description, each retry runs its own, and the
 * stream loads and transaction calls ask for theirs on every request.
 */
export const operationPolicy = (
  budget: RetryBudget,
  operation: RetryLogic.Operation
): Schedule.Schedule<Duration.Duration, LoadError> => {
  let byOperation = operationPolicies.get(budget)
  if (byOperation === undefined) {
    byOperation = new Map()
    operationPolicies.set(budget, byOperation)
  }
  let made = byOperation.get(operation)
  if (made === undefined) {
    made = policy(budget, (error) => RetryLogic.decide(operation, error) === "Retry")
    byOperation.set(operation, made)
  }
  return made
}

/**
 * Runs `attempt(n)` (n counts from 0) under `schedule` and succeeds with its result and the number of attempts made;
 * the final failure is logged as `message` with those attempts, its tag and message, and `annotations` (a label).
 *
 * The first attempt runs outside the retry: a retry makes its schedule's driver (a `Ref` and its reads) before it
 * runs anything, which every load paid though most succeed at once. When the first attempt fails, the retry starts
 * with a run that fails again with that error at once, so that the schedule sees the same errors in the same order,
 * and sleeps the same delays, as when it ran the first attempt itself.
 */
export const counted = <A>(
  attempt: (n: number) => Effect.Effect<A, LoadError>,
  schedule: Schedule.Schedule<Duration.Duration, LoadError>,
  message: string,
  annotations: Readonly<Record<string, unknown>>
): Effect.Effect<readonly [A, number], LoadError> =>
  Effect.suspend(() => {
    let attempts = 1
    return attempt(0).pipe(
      Effect.catchAll((first) => {
        let replayed = false
        return Effect.suspend(() => {
          if (replayed) return attempt(attempts++)
          replayed = true
          return Effect.fail(first)
        }).pipe(
          Effect.retry(schedule),
          Effect.tapError((e) =>
            Effect.logError(message).pipe(
              Effect.annotateLogs({ ...annotations, attempts, error: e._tag, message: e.message })
            )
          )
        )
      }),
      Effect.map((a) => [a, attempts] as const)
    )
  })
