/**
 * `GET /api/{db}/get_load_state?label=`: the state of a label, read once, read with retries, or polled until it is
 * final (`awaitLabelState`, on a `Schedule` and the `Clock`, so it runs on `TestClock` in tests).
 *
 * @internal
 */
import { Clock, Duration, Effect, Either, Schedule } from "effect"
import type { LoadError } from "../../StarRocksError.js"
import { AuthError, LabelStateTimeout } from "../../StarRocksError.js"
import { classify, decodeLoadState } from "../../StreamLoadResponse.js"
import * as Backoff from "./backoff.js"
import type { Connection } from "./connection.js"
import type { LoadState, LoadStateRequest } from "./model.js"
import { outcomeToError, streamLoadError } from "./replies.js"
import * as RetryLogic from "./retryLogic.js"

const loadStates: ReadonlySet<string> = new Set(["UNKNOWN", "PREPARE", "PREPARED", "COMMITTED", "VISIBLE", "ABORTED"])

/** Whether a label state means the load's data is committed. @internal */
export const isCommitted = (state: LoadState): boolean => state === "COMMITTED" || state === "VISIBLE"

/** A label's state and, for an ABORTED one, the reason the FE gives (newer FEs only). @internal */
export interface LoadStateDetail {
  readonly state: LoadState
  readonly reason: string | undefined
}

/**
 * One `get_load_state` call.
 * @internal
 */
export const once = (connection: Connection, request: LoadStateRequest): Effect.Effect<LoadState, LoadError> =>
  Effect.map(onceDetail(connection, request), (d) => d.state)

/**
 * One `get_load_state` call, with the reason of an ABORTED label when the FE gives one.
 * @internal
 */
export const onceDetail = (
  connection: Connection,
  request: LoadStateRequest
): Effect.Effect<LoadStateDetail, LoadError> =>
  Effect.gen(function*() {
    const label = request.label
    const path = `/api/${encodeURIComponent(request.database)}/get_load_state?label=${encodeURIComponent(label)}`
    const response = yield* connection.send(connection.fes, (base) => ({
      method: "GET",
      url: new URL(path, base),
      headers: { Authorization: connection.authorization() },
      expectContinue: false
    }), connection.controlSocketTimeout)
    const outcome = classify(response.status, response.body)
    if (outcome._tag === "Unauthorized") {
      return yield* new AuthError({
        url: response.url,
        httpStatus: response.status,
        status: outcome.status,
        message: outcome.message
      })
    }
    if (response.status < 200 || response.status >= 300) {
      return yield* outcomeToError("loadState", label, outcome, response)
    }
    const body = decodeLoadState(response.body)
    if (Either.isLeft(body)) {
      return yield* streamLoadError("loadState", {
        label,
        status: "",
        message: body.left,
        outcome: "Permanent",
        reason: "unrecognised get_load_state body",
        httpStatus: response.status,
        url: response.url
      })
    }
    const state = (body.right.State ?? "").trim().toUpperCase()
    const status = (body.right.Status ?? "").trim().toUpperCase()
    if (status !== "" && status !== "OK" && status !== "SUCCESS") {
      return yield* outcomeToError("loadState", label, outcome, response)
    }
    if (!loadStates.has(state)) {
      return yield* streamLoadError("loadState", {
        label,
        status: body.right.Status ?? "",
        message: `unknown label state ${JSON.stringify(body.right.State ?? null)}`,
        outcome: "Permanent",
        reason: "unknown label state",
        httpStatus: response.status,
        url: response.url
      })
    }
    const reason = (body.right.Reason ?? "").trim()
    return { state: state as LoadState, reason: reason === "" ? undefined : reason }
  })

/** The failures `get_load_state` is read again after. */
const retryable = (error: LoadError): boolean => RetryLogic.decide("loadState", error) === "Retry"

/**
 * `get_load_state`, retried on transient failures per the connection's retry budget.
 * @internal
 */
export const get = (connection: Connection, request: LoadStateRequest): Effect.Effect<LoadState, LoadError> =>
  once(connection, request).pipe(
    Effect.retry(Backoff.policy(connection.retry, retryable))
  )

/**
 * `get_load_state` with the reason of an ABORTED label, retried as `get`.
 * @internal
 */
export const getDetail = (
  connection: Connection,
  request: LoadStateRequest
): Effect.Effect<LoadStateDetail, LoadError> =>
  onceDetail(connection, request).pipe(
    Effect.retry(Backoff.policy(connection.retry, retryable))
  )

/** @internal */
export interface AwaitOptions {
  /** Give up (`LabelStateTimeout`) once this long has passed since the first read. */
  readonly timeout: Duration.DurationInput
  /** The first pause between reads (doubled after each read, capped at `maxDelay`). */
  readonly initialDelay: Duration.DurationInput
  /** Default 2 s. */
  readonly maxDelay?: Duration.DurationInput | undefined
}

/**
 * The schedule of the reads of `awaitLabelState`: exponential from `initialDelay`, each pause capped at `maxDelay`
 * and at what is left until `deadline` (epoch ms, read from the `Clock`), so that the last read happens at the
 * deadline; it ends there.
 * @internal
 */
export const pollSchedule = (
  deadline: number,
  options: Omit<AwaitOptions, "timeout">
): Schedule.Schedule<Duration.Duration, unknown> => {
  const cap = Duration.decode(options.maxDelay ?? "2 seconds")
  return Schedule.exponential(options.initialDelay, 2).pipe(
    Schedule.checkEffect(() => Effect.map(Clock.currentTimeMillis, (now) => now < deadline)),
    Schedule.modifyDelayEffect((_, delay) =>
      Effect.map(
        Clock.currentTimeMillis,
        (now) => Duration.min(Duration.min(delay, cap), Duration.millis(deadline - now))
      )
    )
  )
}

const NotFinal = Symbol.for("effect-starrocks/LoadClient/NotFinal")

/**
 * Reads the label state with `read` until `final` holds or `timeout` passes (then `LabelStateTimeout` with the last
 * state seen). A read that fails with a retryable error is read again at the next tick; any other failure ends the
 * wait with that error.
 * @internal
 */
export const awaitLabelState = (
  read: (request: LoadStateRequest) => Effect.Effect<LoadState, LoadError>,
  request: LoadStateRequest,
  final: (state: LoadState) => boolean,
  options: AwaitOptions
): Effect.Effect<LoadState, LoadError> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    let last = "UNKNOWN"
    let poll = 0
    const attempt: Effect.Effect<LoadState, LoadError | typeof NotFinal> = Effect.flatMap(
      Effect.either(read(request)),
      (result): Effect.Effect<LoadState, LoadError | typeof NotFinal> => {
        if (Either.isLeft(result)) {
          return retryable(result.left) ? Effect.fail(NotFinal) : Effect.fail(result.left)
        }
        last = result.right
        return Effect.logDebug("label state").pipe(
          Effect.annotateLogs({ label: request.label, state: last, poll: poll++ }),
          Effect.zipRight(final(result.right) ? Effect.succeed(result.right) : Effect.fail(NotFinal))
        )
      }
    )
    const deadline = start + Duration.toMillis(options.timeout)
    return yield* Effect.retry(attempt, { schedule: pollSchedule(deadline, options), while: (e) => e === NotFinal })
      .pipe(
        Effect.catchIf((e): e is typeof NotFinal => e === NotFinal, () =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            new LabelStateTimeout({ label: request.label, lastState: last, waitedMs: now - start })))
      )
  })

/**
 * `awaitLabelState` over the connection: `labelStateTimeout`, first pause `retryInterval` (20 ms to 1 s).
 * @internal
 */
export const awaitFinal = (
  connection: Connection,
  request: LoadStateRequest,
  final: (state: LoadState) => boolean
): Effect.Effect<LoadState, LoadError> =>
  awaitLabelState((r) => once(connection, r), request, final, {
    timeout: connection.config.labelStateTimeout,
    initialDelay: Duration.millis(Math.min(Math.max(Duration.toMillis(connection.config.retryInterval), 20), 1000))
  })
