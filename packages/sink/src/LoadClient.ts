/**
 * The HTTP load client: plain Stream Load, `get_load_state` and the transaction interface over node:http.
 *
 * @since 0.1.0
 */
import type { Scope } from "effect"
import { Clock, Context, Duration, Effect, Either, Layer, Option, Redacted, Ref } from "effect"
import * as Http from "node:http"
import * as Endpoints from "./internal/endpoints.js"
import type { HttpRequest, HttpResponse } from "./internal/http.js"
import { applyHostMap, exchange, makeAgents, parseBaseUrl } from "./internal/http.js"
import * as RetryPolicy from "./RetryPolicy.js"
import type { LoadError } from "./StarRocksError.js"
import {
  AuthError,
  isReplayable,
  isRetryable,
  LabelStateTimeout,
  RedirectError,
  StreamLoadError,
  TransactionError,
  TransportError
} from "./StarRocksError.js"
import type { Outcome, StreamLoadBody } from "./StreamLoadResponse.js"
import { classify, decodeLoadState, timings } from "./StreamLoadResponse.js"

/**
 * A request body that can be sent more than once (redirects and retries replay it).
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadBody {
  readonly chunks: ReadonlyArray<Uint8Array>
  readonly byteLength: number
}

/**
 * The table a request loads into.
 *
 * @since 0.1.0
 * @category models
 */
export interface Target {
  readonly database: string
  readonly table: string
}

/**
 * One load of one body into one table under one label.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadRequest extends Target {
  readonly label: string
  /**
   * The complete Stream Load headers of this load (format, columns, the table's `sink.properties.*`, …): the client
   * adds only `label`, Authorization and Expect. It merges no config-level `properties`.
   */
  readonly headers: Readonly<Record<string, string>>
  readonly body: LoadBody
}

/**
 * A bodyless transaction call (`begin`, `prepare`, `commit`, `rollback`) on one table under one label.
 *
 * @since 0.1.0
 * @category models
 */
export interface TransactionRequest extends Target {
  readonly label: string
  /** Extra headers (`timeout` for begin, `prepared_timeout` for prepare). */
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * `GET /api/{database}/get_load_state?label=`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadStateRequest {
  readonly database: string
  readonly label: string
}

/**
 * One operation, one logical HTTP exchange: the FE hop(s) and the 307 redirect(s) are followed by hand (same
 * headers incl. Authorization, `Expect: 100-continue`, replayable body), across the configured load URLs with
 * health-tracked failover. The outcome is classified exhaustively; retries with backoff and label settlement
 * live in `loadBatch`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadClient {
  /** Plain stream load of one batch under `request.label`, retried per the connection's schedule, label settled. */
  readonly loadBatch: (request: LoadRequest) => Effect.Effect<LoadResult, LoadError>
  /**
   * At-least-once over the transaction interface: begin, `transaction/load`, commit under `request.label`. A
   * replayable failure rolls the transaction back and replays the body under the same label (an ABORTED label is
   * free at once); a label found COMMITTED/VISIBLE (an earlier attempt landed) counts as loaded.
   */
  readonly loadTransactional: (request: LoadRequest) => Effect.Effect<LoadResult, LoadError>
  /** `GET /api/{database}/get_load_state?label=` (retried on transient failures). */
  readonly getLoadState: (request: LoadStateRequest) => Effect.Effect<LoadState, LoadError>
  /** `POST /api/transaction/begin`. A label already in use fails with `TransactionError` kind `LabelExists`. */
  readonly begin: (request: TransactionRequest) => Effect.Effect<TransactionResult, LoadError>
  /**
   * `PUT /api/transaction/load` of one body. Retried only when no body byte reached the server
   * (`TXN_IN_PROCESSING`, connection refused); any other failure leaves the transaction unusable: roll it back
   * and replay its data into a new one.
   */
  readonly loadTxn: (request: LoadRequest) => Effect.Effect<TransactionResult, LoadError>
  /** `POST /api/transaction/prepare`; `TXN_NOT_EXISTS` is accepted when get_load_state says PREPARED. */
  readonly prepare: (request: TransactionRequest) => Effect.Effect<TransactionResult, LoadError>
  /** `POST /api/transaction/commit`; a failure is verified with get_load_state (COMMITTED/VISIBLE = done). */
  readonly commit: (request: TransactionRequest) => Effect.Effect<TransactionResult, LoadError>
  /** `POST /api/transaction/rollback`; "already aborted" and an ABORTED/UNKNOWN label count as done. */
  readonly rollback: (request: TransactionRequest) => Effect.Effect<TransactionResult, LoadError>
  /** Health of the load URLs (and of the direct BEs). */
  readonly endpointStatus: Effect.Effect<ReadonlyArray<EndpointStatus>>
  /**
   * Whether the cluster has the transaction interface (StarRocks 2.4+), probed as the Flink connector does:
   * `POST /api/transaction/begin` without a label on `target`. An FE that answers 404 or `Not implemented` has
   * none; any other answer (current FEs say `Empty label.`), and a probe that fails, count as supported.
   */
  readonly supportsTransactions: (target: Target) => Effect.Effect<boolean>
}

/**
 * The client's own settings: connection, credentials, timeouts, TLS, retries. A resolved `StarRocksConfig`
 * satisfies it structurally (same field names), so `LoadClient.layer(config)` takes either.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionConfig {
  readonly loadUrl: ReadonlyArray<string>
  readonly username: string
  readonly password: Redacted.Redacted<string>
  readonly connectTimeout: Duration.Duration
  readonly socketTimeout: Option.Option<Duration.Duration>
  readonly waitForContinueTimeout: Duration.Duration
  readonly maxRetries: number
  readonly retryInterval: Duration.Duration
  readonly retryMaxDelay: Duration.Duration
  readonly maxRedirects: number
  readonly beHostMap: ReadonlyMap<string, string>
  readonly directBackends: ReadonlyArray<string>
  readonly sanitizeErrorLog: boolean
  readonly labelStateTimeout: Duration.Duration
  /** Loads in flight the sockets are sized for (StarRocksConfig's `ioThreadCount`). */
  readonly ioThreadCount: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface EndpointStatus {
  /** `protocol//host:port` */
  readonly origin: string
  /** Marked down and skipped until `downUntil` (epoch ms). */
  readonly down: boolean
  /** Consecutive failures (0 when healthy). */
  readonly failures: number
  readonly downUntil: number
  readonly lastError: string | undefined
}

/**
 * The state of a label on the server, as `get_load_state` reports it.
 *
 * @since 0.1.0
 * @category models
 */
export type LoadState = "UNKNOWN" | "PREPARE" | "PREPARED" | "COMMITTED" | "VISIBLE" | "ABORTED"

/**
 * @since 0.1.0
 * @category models
 * @deprecated Use `LoadState` (`LabelStore.LabelState` is the sink's own record state).
 */
export type LabelState = LoadState

const labelStates: ReadonlySet<string> = new Set(["UNKNOWN", "PREPARE", "PREPARED", "COMMITTED", "VISIBLE", "ABORTED"])

/**
 * @since 0.1.0
 * @category models
 */
export interface LoadResult {
  readonly label: string
  /** `Success`, `Publish Timeout`, or `Label Already Exists` settled as committed. */
  readonly status: "Success" | "Publish Timeout" | "Already Loaded"
  readonly txnId: number
  readonly loadedRows: number
  readonly filteredRows: number
  readonly unselectedRows: number
  readonly loadBytes: number
  /** Attempts beyond the first. */
  readonly retries: number
  /** FE→BE hops of the last attempt, e.g. `["http://127.0.0.1:8030", "http://127.0.0.2:8040"]`. */
  readonly hops: ReadonlyArray<string>
  /** Server timings from the response body (`LoadTimeMs`, `WriteDataTimeMs`, ...). */
  readonly timings: Readonly<Record<string, number>>
  readonly errorUrl?: string | undefined
  /** The server's `Message`. */
  readonly message?: string | undefined
  readonly totalRows?: number | undefined
  /** Wall-clock time of the whole operation, retries and label settlement included. */
  readonly elapsedMs?: number | undefined
  /** The label state that settled a duplicate label or a commit in doubt, when one was read. */
  readonly labelState?: LoadState | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export type TransactionOperation = "begin" | "load" | "prepare" | "commit" | "rollback"

/**
 * @since 0.1.0
 * @category models
 */
export interface TransactionResult {
  readonly operation: TransactionOperation
  readonly label: string
  /** The server's `Status` (`OK`, `PUBLISH_TIMEOUT`, …), or `VERIFIED` when get_load_state settled it. */
  readonly status: string
  readonly message: string
  readonly txnId: number | undefined
  readonly totalRows: number
  readonly loadedRows: number
  readonly filteredRows: number
  readonly unselectedRows: number
  readonly loadBytes: number
  readonly retries: number
  readonly hops: ReadonlyArray<string>
  readonly timings: Readonly<Record<string, number>>
  readonly errorUrl?: string | undefined
  readonly labelState?: LoadState | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export const LoadClient: Context.Tag<LoadClient, LoadClient> = Context.GenericTag<LoadClient>(
  "@effect-starrocks/sink/LoadClient"
)

const LABEL_RE = /^[-\w]{1,128}$/

interface TxnReply {
  readonly outcome: Outcome
  readonly response: HttpResponse
}

/**
 * Options that are not part of the connection settings (tests and tuning).
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadClientOptions {
  /** Down-time of an endpoint after its first failure (doubles per failure). Default 1 s. */
  readonly endpointBackoff?: Duration.DurationInput | undefined
  /** Cap of the endpoint down-time. Default 30 s. */
  readonly endpointMaxBackoff?: Duration.DurationInput | undefined
  /** Characters of the fetched ErrorURL kept in an error. Default 3000. */
  readonly errorLogMaxChars?: number | undefined
  /** Lines of the fetched ErrorURL kept in an error. Default 20. */
  readonly errorLogMaxLines?: number | undefined
  /** Verify TLS certificates (default true). */
  readonly rejectUnauthorized?: boolean | undefined
}

const num = (value: number | undefined, fallback = 0): number =>
  value !== undefined && Number.isFinite(value) ? value : fallback

/**
 * Builds the client from its connection settings (a resolved `StarRocksConfig` will do). Keep-alive agents live as
 * long as the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  config: ConnectionConfig,
  options?: LoadClientOptions
): Effect.Effect<LoadClient, never, Scope.Scope> =>
  Effect.gen(function*() {
    const agents = yield* Effect.acquireRelease(
      Effect.sync(() => makeAgents({ maxSockets: Math.max(4, config.ioThreadCount * 2) })),
      (a) => Effect.sync(() => a.destroy())
    )
    const poolOptions = {
      baseBackoffMs: Duration.toMillis(options?.endpointBackoff ?? "1 second"),
      maxBackoffMs: Duration.toMillis(options?.endpointMaxBackoff ?? "30 seconds")
    }
    const fes = Endpoints.make(config.loadUrl, poolOptions)
    const directBes = config.directBackends.length > 0 ? Endpoints.make(config.directBackends, poolOptions) : undefined
    const errorLogMaxChars = options?.errorLogMaxChars ?? 3000
    const errorLogMaxLines = options?.errorLogMaxLines ?? 20
    const basePolicy = {
      base: config.retryInterval,
      maxDelay: config.retryMaxDelay,
      maxRetries: config.maxRetries
    }

    // the only place the password is read: the header goes into node:http and nowhere else
    const authorization = (): string =>
      `Basic ${Buffer.from(`${config.username}:${Redacted.value(config.password)}`, "utf8").toString("base64")}`

    const loadTimeoutMs = (headers: Readonly<Record<string, string>>): number => {
      const t = Number(headers["timeout"] ?? 600)
      return (Number.isFinite(t) && t > 0 ? t : 600) * 1000
    }
    const httpOptions = (socketTimeoutMs: number, maxResponseBytes?: number) => ({
      connectTimeoutMs: Duration.toMillis(config.connectTimeout),
      continueTimeoutMs: Duration.toMillis(config.waitForContinueTimeout),
      socketTimeoutMs,
      maxRedirects: config.maxRedirects,
      beHostMap: config.beHostMap,
      agents,
      maxResponseBytes,
      rejectUnauthorized: options?.rejectUnauthorized
    })
    const socketTimeoutFor = (headers: Readonly<Record<string, string>>): number =>
      Option.match(config.socketTimeout, {
        // no client-side read timeout configured: the server's load timeout plus a margin is the deadline
        onNone: () => loadTimeoutMs(headers) + 60_000,
        onSome: Duration.toMillis
      })
    const controlSocketTimeout = Option.match(config.socketTimeout, {
      onNone: () => 60_000,
      onSome: Duration.toMillis
    })

    /** Lower-cased merge: later records win. */
    const mergeHeaders = (...records: ReadonlyArray<Readonly<Record<string, string>> | undefined>) => {
      const out: Record<string, string> = {}
      for (const record of records) {
        if (record === undefined) continue
        for (const [k, v] of Object.entries(record)) {
          const key = k.toLowerCase()
          if (key === "authorization" || key === "expect" || key === "content-length" || key === "host") continue
          out[key] = v
        }
      }
      return out
    }
    const invalidHeader = (headers: Readonly<Record<string, string>>): string | undefined => {
      for (const [k, v] of Object.entries(headers)) {
        try {
          Http.validateHeaderName(k)
          Http.validateHeaderValue(k, v)
        } catch {
          return `invalid header ${JSON.stringify(k)}`
        }
      }
      return undefined
    }

    /**
     * Sends one exchange to the first reachable endpoint of `pool`. A failure before any byte reached a server
     * (refused, connect timeout) moves on to the next endpoint at once; a transport failure on the first hop
     * marks that endpoint down; any HTTP answer marks it up.
     */
    const send = (
      pool: Endpoints.EndpointPool,
      make: (base: URL) => HttpRequest,
      socketTimeoutMs: number,
      maxResponseBytes?: number
    ): Effect.Effect<HttpResponse, TransportError | RedirectError> =>
      Effect.gen(function*() {
        const candidates = yield* pool.candidates
        let lastError: TransportError | undefined
        for (const endpoint of candidates) {
          const result = yield* Effect.either(
            exchange(make(endpoint.url), httpOptions(socketTimeoutMs, maxResponseBytes))
          )
          if (Either.isRight(result)) {
            yield* pool.markUp(endpoint)
            return result.right
          }
          const error = result.left
          if (error._tag === "RedirectError") {
            yield* pool.markUp(endpoint)
            return yield* error
          }
          if ((error.hop ?? 0) > 0) {
            // the load URL answered (a redirect); the failure is further on
            yield* pool.markUp(endpoint)
            return yield* error
          }
          yield* pool.markDown(endpoint, `${error.code ?? error.phase ?? "error"}: ${error.reason}`)
          lastError = error
          if (error.phase !== "connect") return yield* error
        }
        return yield* (lastError ?? new TransportError({ url: "", reason: "no load URL configured" }))
      })

    // -----------------------------------------------------------------------------------------------------------
    // ErrorURL
    // -----------------------------------------------------------------------------------------------------------

    const sanitize = (text: string): string =>
      config.sanitizeErrorLog ? text.replace(/(Row:\s*).*$/gm, "$1<redacted>") : text

    const fetchErrorLog = (errorUrl: string): Effect.Effect<string> =>
      Effect.gen(function*() {
        let url: URL
        try {
          url = applyHostMap(parseBaseUrl(errorUrl), config.beHostMap)
        } catch {
          return "error log unavailable: malformed ErrorURL"
        }
        const response = yield* exchange({
          method: "GET",
          url,
          headers: { Authorization: authorization() },
          expectContinue: false
        }, httpOptions(controlSocketTimeout, 64 * 1024))
        if (response.status === 401 || response.status === 403) {
          return `error log unavailable (HTTP ${response.status})`
        }
        if (response.status < 200 || response.status >= 300) return `error log unavailable (HTTP ${response.status})`
        const lines = response.body.slice(0, errorLogMaxChars).split(/\r?\n/).filter((l) => l.length > 0)
        return sanitize(lines.slice(0, errorLogMaxLines).join("\n"))
      }).pipe(
        Effect.catchAll((e) => Effect.succeed(`error log unavailable: ${e.reason}`)),
        Effect.timeoutTo({
          duration: Duration.millis(controlSocketTimeout + Duration.toMillis(config.connectTimeout)),
          onSuccess: (s) => s,
          onTimeout: () => "error log unavailable: timeout"
        })
      )

    // -----------------------------------------------------------------------------------------------------------
    // get_load_state
    // -----------------------------------------------------------------------------------------------------------

    const getLoadStateOnce = (request: LoadStateRequest): Effect.Effect<LoadState, LoadError> =>
      Effect.gen(function*() {
        const label = request.label
        const path = `/api/${encodeURIComponent(request.database)}/get_load_state?label=${encodeURIComponent(label)}`
        const response = yield* send(fes, (base) => ({
          method: "GET",
          url: new URL(path, base),
          headers: { Authorization: authorization() },
          expectContinue: false
        }), controlSocketTimeout)
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
          return yield* outcomeToError(label, outcome, response)
        }
        const body = decodeLoadState(response.body)
        if (Either.isLeft(body)) {
          return yield* new StreamLoadError({
            label,
            status: "",
            message: body.left,
            retryable: false,
            reason: "unrecognised get_load_state body",
            httpStatus: response.status,
            url: response.url
          })
        }
        const state = (body.right.State ?? "").trim().toUpperCase()
        const status = (body.right.Status ?? "").trim().toUpperCase()
        if (status !== "" && status !== "OK" && status !== "SUCCESS") {
          return yield* outcomeToError(label, outcome, response)
        }
        if (!labelStates.has(state)) {
          return yield* new StreamLoadError({
            label,
            status: body.right.Status ?? "",
            message: `unknown label state ${JSON.stringify(body.right.State ?? null)}`,
            retryable: false,
            reason: "unknown label state",
            httpStatus: response.status,
            url: response.url
          })
        }
        return state as LoadState
      })

    const getLoadState = (request: LoadStateRequest): Effect.Effect<LoadState, LoadError> =>
      getLoadStateOnce(request).pipe(Effect.retry(RetryPolicy.make<LoadError>(basePolicy)))

    /**
     * Polls get_load_state until the label reaches a final state or `labelStateTimeout` passes.
     * `final`: which states end the wait. Transient errors while polling are retried until the deadline.
     */
    const awaitLabelState = (
      request: LoadStateRequest,
      final: (state: LoadState) => boolean
    ): Effect.Effect<LoadState, LoadError> =>
      Effect.gen(function*() {
        const label = request.label
        const timeoutMs = Duration.toMillis(config.labelStateTimeout)
        const start = yield* Clock.currentTimeMillis
        let delay = Math.min(Math.max(Duration.toMillis(config.retryInterval), 20), 1000)
        let last = "UNKNOWN"
        for (let poll = 0;; poll++) {
          const result = yield* Effect.either(getLoadStateOnce(request))
          if (Either.isRight(result)) {
            last = result.right
            yield* Effect.logDebug("label state").pipe(Effect.annotateLogs({ label, state: last, poll }))
            if (final(result.right)) return result.right
          } else if (!isRetryable(result.left)) {
            return yield* result.left
          }
          const now = yield* Clock.currentTimeMillis
          const left = start + timeoutMs - now
          if (left <= 0) return yield* new LabelStateTimeout({ label, lastState: last, waitedMs: now - start })
          yield* Effect.sleep(Duration.millis(Math.min(delay, left)))
          delay = Math.min(delay * 2, 2000)
        }
      })

    // -----------------------------------------------------------------------------------------------------------
    // stream load
    // -----------------------------------------------------------------------------------------------------------

    const outcomeToError = (
      label: string,
      outcome: Outcome,
      response: HttpResponse
    ): Effect.Effect<never, LoadError> => {
      switch (outcome._tag) {
        case "Unauthorized":
          return Effect.fail(
            new AuthError({
              url: response.url,
              httpStatus: response.status,
              status: outcome.status,
              message: outcome.message
            })
          )
        case "Redirect":
          return Effect.fail(
            new RedirectError({ url: response.url, reason: "unfollowed redirect", hops: response.hops })
          )
        case "Retryable":
        case "Permanent":
        case "InDoubt":
          return Effect.fail(
            new StreamLoadError({
              label,
              status: outcome.status,
              message: outcome.message,
              retryable: outcome._tag !== "Permanent",
              reason: outcome.reason,
              httpStatus: response.status,
              url: response.url,
              ...(outcome.body?.ErrorURL !== undefined ? { errorUrl: outcome.body.ErrorURL } : {}),
              ...(outcome.body?.NumberFilteredRows !== undefined
                ? { filteredRows: outcome.body.NumberFilteredRows }
                : {})
            })
          )
        default:
          return Effect.fail(
            new StreamLoadError({
              label,
              status: outcome.status,
              message: outcome.message,
              retryable: false,
              reason: `unexpected ${outcome._tag}`,
              httpStatus: response.status,
              url: response.url
            })
          )
      }
    }

    const toResult = (
      label: string,
      status: LoadResult["status"],
      body: StreamLoadBody | undefined,
      response: HttpResponse,
      labelState?: LoadState
    ): Omit<LoadResult, "retries" | "elapsedMs"> => ({
      label,
      status,
      txnId: num(body?.TxnId, -1),
      loadedRows: num(body?.NumberLoadedRows),
      filteredRows: num(body?.NumberFilteredRows),
      unselectedRows: num(body?.NumberUnselectedRows),
      totalRows: num(body?.NumberTotalRows),
      loadBytes: num(body?.LoadBytes),
      hops: response.hops,
      timings: timings(response.body),
      errorUrl: body?.ErrorURL,
      message: body?.Message ?? body?.Msg ?? "",
      ...(labelState !== undefined ? { labelState } : {})
    })

    const isCommitted = (s: LoadState) => s === "COMMITTED" || s === "VISIBLE"

    const attemptLoad = (
      request: LoadRequest,
      headers: Readonly<Record<string, string>>,
      attempt: number
    ): Effect.Effect<Omit<LoadResult, "retries" | "elapsedMs">, LoadError> =>
      Effect.gen(function*() {
        const path = `/api/${encodeURIComponent(request.database)}/${encodeURIComponent(request.table)}/_stream_load`
        const pool = directBes ?? fes
        const socketTimeoutMs = socketTimeoutFor(headers)
        // an ABORTED label found while settling is free again: load once more at once under the same label
        for (let reload = 0;; reload++) {
          const started = yield* Clock.currentTimeMillis
          const response = yield* send(pool, (base) => ({
            method: "PUT",
            url: new URL(path, base),
            headers: { ...headers, Authorization: authorization() },
            body: request.body,
            expectContinue: true
          }), socketTimeoutMs).pipe(
            Effect.tapError((e) =>
              Effect.logWarning("stream load attempt failed").pipe(
                Effect.annotateLogs({
                  label: request.label,
                  attempt,
                  url: e.url,
                  error: e._tag,
                  reason: e.reason,
                  bytes: request.body.byteLength
                })
              )
            )
          )
          const location = response.headers.location
          const outcome = classify(response.status, response.body, typeof location === "string" ? location : undefined)
          const body = "body" in outcome ? outcome.body : undefined
          const ended = yield* Clock.currentTimeMillis
          yield* Effect.logInfo("stream load").pipe(
            Effect.annotateLogs({
              label: request.label,
              attempt,
              hops: response.hops.join(" -> "),
              httpStatus: response.status,
              status: "status" in outcome ? outcome.status : "",
              outcome: outcome._tag,
              rows: num(body?.NumberLoadedRows),
              filteredRows: num(body?.NumberFilteredRows),
              bytes: request.body.byteLength,
              ms: ended - started
            })
          )
          switch (outcome._tag) {
            case "Success":
              return toResult(request.label, "Success", outcome.body, response)
            case "PublishTimeout":
              return toResult(request.label, "Publish Timeout", outcome.body, response)
            case "LabelExists":
            case "InDoubt": {
              if (outcome._tag === "LabelExists" && outcome.existingJobStatus === "FINISHED") {
                return toResult(request.label, "Already Loaded", outcome.body, response)
              }
              const inDoubt = outcome._tag === "InDoubt"
              // RUNNING / unknown: wait for a final state; in doubt: UNKNOWN is final too (nothing was kept)
              const state = yield* awaitLabelState(
                request,
                (s) => isCommitted(s) || s === "ABORTED" || (inDoubt && s === "UNKNOWN")
              )
              if (isCommitted(state)) {
                return toResult(request.label, "Already Loaded", outcome.body, response, state)
              }
              if (reload === 0) {
                yield* Effect.logInfo("label free again, loading under the same label").pipe(
                  Effect.annotateLogs({ label: request.label, state })
                )
                continue
              }
              return yield* new StreamLoadError({
                label: request.label,
                status: outcome.status,
                message: outcome.message,
                retryable: true,
                reason: `label ${state} after ${outcome._tag}`,
                httpStatus: response.status,
                url: response.url
              })
            }
            case "Permanent": {
              const errorUrl = outcome.body?.ErrorURL
              const errorLog = errorUrl !== undefined ? yield* fetchErrorLog(errorUrl) : undefined
              return yield* new StreamLoadError({
                label: request.label,
                status: outcome.status,
                message: outcome.message,
                retryable: false,
                reason: outcome.reason,
                httpStatus: response.status,
                url: response.url,
                ...(errorUrl !== undefined ? { errorUrl } : {}),
                ...(errorLog !== undefined ? { errorLog } : {}),
                ...(outcome.body?.NumberFilteredRows !== undefined
                  ? { filteredRows: outcome.body.NumberFilteredRows }
                  : {}),
                ...(outcome.body?.TxnId !== undefined ? { txnId: outcome.body.TxnId } : {})
              })
            }
            default:
              return yield* outcomeToError(request.label, outcome, response)
          }
        }
      })

    const loadBatch = (request: LoadRequest): Effect.Effect<LoadResult, LoadError> =>
      Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        if (!LABEL_RE.test(request.label)) {
          return yield* new StreamLoadError({
            label: request.label,
            status: "",
            message: `Label format error. regex: ^[-\\w]{1,128}$, label: ${request.label}`,
            retryable: false,
            reason: "label format error"
          })
        }
        let actualBytes = 0
        for (const chunk of request.body.chunks) actualBytes += chunk.byteLength
        if (actualBytes !== request.body.byteLength) {
          return yield* new StreamLoadError({
            label: request.label,
            status: "",
            message: `body byteLength ${request.body.byteLength} differs from its chunks (${actualBytes} bytes)`,
            retryable: false,
            reason: "invalid body"
          })
        }
        const headers = { ...mergeHeaders(request.headers), label: request.label }
        const bad = invalidHeader(headers)
        if (bad !== undefined) {
          return yield* new StreamLoadError({
            label: request.label,
            status: "",
            message: bad,
            retryable: false,
            reason: "invalid header"
          })
        }
        const attempts = yield* Ref.make(0)
        const result = yield* Ref.getAndUpdate(attempts, (n) => n + 1).pipe(
          Effect.flatMap((attempt) => attemptLoad(request, headers, attempt)),
          Effect.retry(RetryPolicy.make<LoadError>(basePolicy)),
          Effect.tapError((e) =>
            Ref.get(attempts).pipe(Effect.flatMap((n) =>
              Effect.logError("stream load failed").pipe(
                Effect.annotateLogs({ label: request.label, attempts: n, error: e._tag, message: e.message })
              )
            ))
          )
        )
        const retries = (yield* Ref.get(attempts)) - 1
        const end = yield* Clock.currentTimeMillis
        return { ...result, retries, elapsedMs: end - start }
      })

    // -----------------------------------------------------------------------------------------------------------
    // transaction interface
    // -----------------------------------------------------------------------------------------------------------

    const txnError = (
      operation: TransactionOperation,
      label: string,
      outcome: Outcome,
      httpStatus: number,
      labelState?: LoadState
    ): TransactionError => {
      const status = "status" in outcome ? outcome.status : ""
      const message = "message" in outcome ? outcome.message : ""
      const base = {
        operation,
        label,
        status,
        message,
        httpStatus,
        ...(labelState !== undefined ? { labelState } : {})
      }
      switch (outcome._tag) {
        case "LabelExists":
          return new TransactionError({
            ...base,
            kind: "LabelExists",
            retryable: false,
            existingJobStatus: outcome.existingJobStatus
          })
        case "Retryable": {
          const busy = outcome.reason === "transaction in processing"
          return new TransactionError({
            ...base,
            kind: "Retryable",
            // a failed transaction/load poisons the transaction: only a busy context is retried as is
            retryable: operation === "load" ? busy : true,
            reason: outcome.reason
          })
        }
        case "Permanent": {
          const kind = labelState === "ABORTED" || /aborted/.test(outcome.reason)
            ? "Aborted"
            : /transaction not found/.test(outcome.reason)
            ? "TxnNotExists"
            : "Permanent"
          return new TransactionError({ ...base, kind, retryable: false, reason: outcome.reason })
        }
        case "InDoubt":
          return new TransactionError({ ...base, kind: "InDoubt", retryable: false, reason: outcome.reason })
        default:
          return new TransactionError({ ...base, kind: "Permanent", retryable: false, reason: outcome._tag })
      }
    }

    const txnOnce = (
      operation: TransactionOperation,
      label: string,
      headers: Readonly<Record<string, string>>,
      body: LoadBody | undefined
    ) =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        const response = yield* send(fes, (base) => ({
          method: operation === "load" ? "PUT" : "POST",
          url: new URL(`/api/transaction/${operation}`, base),
          headers: { ...headers, Authorization: authorization() },
          body,
          expectContinue: operation === "load"
        }), operation === "load" ? socketTimeoutFor(headers) : Math.max(controlSocketTimeout, loadTimeoutMs(headers)))
        const outcome = classify(response.status, response.body)
        const ended = yield* Clock.currentTimeMillis
        yield* Effect.logInfo(`transaction ${operation}`).pipe(
          Effect.annotateLogs({
            label,
            hops: response.hops.join(" -> "),
            httpStatus: response.status,
            status: "status" in outcome ? outcome.status : "",
            outcome: outcome._tag,
            bytes: body?.byteLength ?? 0,
            ms: ended - started
          })
        )
        return { response, outcome }
      })

    const txnResult = (
      operation: TransactionOperation,
      label: string,
      outcome: Outcome,
      response: HttpResponse,
      retries: number,
      labelState?: LoadState
    ): TransactionResult => {
      const body = "body" in outcome ? outcome.body : undefined
      return {
        operation,
        label,
        status: labelState !== undefined && outcome._tag !== "Success" && outcome._tag !== "PublishTimeout"
          ? "VERIFIED"
          : ("status" in outcome ? outcome.status : ""),
        message: "message" in outcome ? outcome.message : "",
        txnId: body?.TxnId,
        totalRows: num(body?.NumberTotalRows),
        loadedRows: num(body?.NumberLoadedRows),
        filteredRows: num(body?.NumberFilteredRows),
        unselectedRows: num(body?.NumberUnselectedRows),
        loadBytes: num(body?.LoadBytes),
        retries,
        hops: response.hops,
        timings: timings(response.body),
        errorUrl: body?.ErrorURL,
        ...(labelState !== undefined ? { labelState } : {})
      }
    }

    const transaction = (
      operation: TransactionOperation,
      request: TransactionRequest,
      body: LoadBody | undefined
    ): Effect.Effect<TransactionResult, LoadError> =>
      Effect.gen(function*() {
        const label = request.label
        if (!LABEL_RE.test(label)) {
          return yield* new TransactionError({
            operation,
            label,
            status: "",
            message: `Label format error. regex: ^[-\\w]{1,128}$, label: ${label}`,
            kind: "Permanent",
            retryable: false,
            reason: "label format error"
          })
        }
        const headers = {
          ...mergeHeaders(request.headers),
          db: request.database,
          table: request.table,
          label
        }
        const attempts = yield* Ref.make(0)
        const last = yield* Ref.make<TxnReply | undefined>(undefined)
        const settles = operation === "prepare" || operation === "commit" || operation === "rollback"
        const once = Ref.update(attempts, (n) => n + 1).pipe(
          Effect.zipRight(txnOnce(operation, label, headers, body)),
          Effect.tap((r) => Ref.set(last, r)),
          Effect.flatMap(({ outcome, response }): Effect.Effect<TxnReply, LoadError> => {
            switch (outcome._tag) {
              case "Success":
              case "PublishTimeout":
                return Effect.succeed({ outcome, response })
              case "Unauthorized":
              case "Redirect":
                return outcomeToError(label, outcome, response)
              case "Retryable":
                return Effect.fail(txnError(operation, label, outcome, response.status))
              default:
                // prepare / commit / rollback: settled below through the label state
                return settles
                  ? Effect.succeed({ outcome, response })
                  : Effect.fail(txnError(operation, label, outcome, response.status))
            }
          })
        )
        const policy = RetryPolicy.make<LoadError>({
          ...basePolicy,
          while: (e) =>
            operation === "load"
              ? (e._tag === "TransportError" ? e.bodySent !== true : e._tag === "TransactionError" && e.retryable)
              : isRetryable(e)
        })
        const result = yield* Effect.either(Effect.retry(once, policy))
        const retries = (yield* Ref.get(attempts)) - 1
        if (Either.isRight(result)) {
          const { outcome, response } = result.right
          if (outcome._tag === "Success" || outcome._tag === "PublishTimeout") {
            return txnResult(operation, label, outcome, response, retries)
          }
          return yield* verify(operation, request, outcome, response, retries)
        }
        const lastReply = yield* Ref.get(last)
        if (settles && result.left._tag === "TransactionError" && lastReply !== undefined) {
          return yield* verify(operation, request, lastReply.outcome, lastReply.response, retries)
        }
        return yield* result.left
      })

    /** A prepare/commit/rollback that did not answer OK, settled through get_load_state. */
    const verify = (
      operation: TransactionOperation,
      request: TransactionRequest,
      outcome: Outcome,
      response: HttpResponse,
      retries: number
    ): Effect.Effect<TransactionResult, LoadError> =>
      Effect.gen(function*() {
        const label = request.label
        const state = yield* Effect.either(getLoadState(request))
        if (Either.isLeft(state)) return yield* txnError(operation, label, outcome, response.status)
        const s = state.right
        const done = operation === "prepare"
          ? s === "PREPARED" && (outcome._tag === "Permanent" && /transaction not found/.test(outcome.reason))
          : operation === "commit"
          ? isCommitted(s)
          : s === "ABORTED" ||
            (s === "UNKNOWN" && outcome._tag === "Permanent" && /transaction not found/.test(outcome.reason))
        if (done) {
          yield* Effect.logInfo(`transaction ${operation} verified by label state`).pipe(
            Effect.annotateLogs({ label, state: s, status: "status" in outcome ? outcome.status : "" })
          )
          return txnResult(operation, label, outcome, response, retries, s)
        }
        return yield* txnError(operation, label, outcome, response.status, s)
      })

    const begin = (request: TransactionRequest) => transaction("begin", request, undefined)
    const loadTxn = (request: LoadRequest) => transaction("load", request, request.body)
    const commit = (request: TransactionRequest) => transaction("commit", request, undefined)
    const rollback = (request: TransactionRequest) => transaction("rollback", request, undefined)

    // a failed transaction call poisons that transaction, not the batch: rolled back, it is replayed
    const replayPolicy = RetryPolicy.make<LoadError>({ ...basePolicy, while: isReplayable })

    const loadTransactional = (request: LoadRequest): Effect.Effect<LoadResult, LoadError> =>
      Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        const bare: TransactionRequest = { database: request.database, table: request.table, label: request.label }
        let attempts = 0
        const rollbackQuietly = rollback(bare).pipe(Effect.ignore)
        const attempt = Effect.gen(function*() {
          attempts++
          const begun = yield* begin(bare).pipe(
            Effect.as(true),
            Effect.catchIf(
              (e): e is TransactionError => e._tag === "TransactionError" && e.kind === "LabelExists",
              () => Effect.succeed(false)
            )
          )
          if (!begun) {
            const state = yield* getLoadState(bare)
            if (isCommitted(state)) return undefined
            yield* rollbackQuietly
            return yield* new StreamLoadError({
              label: request.label,
              status: "LABEL_ALREADY_EXISTS",
              message: `label ${request.label} is held by an earlier attempt (${state}); rolled back, beginning again`,
              retryable: true
            })
          }
          const loaded = yield* loadTxn(request).pipe(Effect.tapError(() => rollbackQuietly))
          const committed = yield* commit(bare).pipe(Effect.tapError(() => rollbackQuietly))
          return { loaded, committed }
        })
        const done = yield* Effect.retry(attempt, replayPolicy)
        const retries = attempts - 1 + (done?.loaded.retries ?? 0) + (done?.committed.retries ?? 0)
        const end = yield* Clock.currentTimeMillis
        return {
          label: request.label,
          status: done === undefined ? "Already Loaded" as const : "Success" as const,
          txnId: done?.committed.txnId ?? -1,
          loadedRows: done?.committed.loadedRows ?? 0,
          filteredRows: done?.committed.filteredRows ?? 0,
          unselectedRows: done?.committed.unselectedRows ?? 0,
          loadBytes: request.body.byteLength,
          retries,
          hops: done?.loaded.hops ?? [],
          timings: done?.committed.timings ?? {},
          elapsedMs: end - start
        }
      })

    return LoadClient.of({
      loadBatch,
      loadTransactional,
      getLoadState,
      begin,
      loadTxn,
      prepare: (request) => transaction("prepare", request, undefined),
      commit,
      rollback,
      endpointStatus: Effect.map(
        Effect.all([fes.status, directBes?.status ?? Effect.succeed([])]),
        ([a, b]) => [...a, ...b]
      ),
      supportsTransactions: (target) =>
        send(fes, (base) => ({
          method: "POST",
          url: new URL("/api/transaction/begin", base),
          headers: { db: target.database, table: target.table, Authorization: authorization() },
          body: undefined,
          expectContinue: false
        }), controlSocketTimeout).pipe(
          Effect.map((response) => !(response.status === 404 || /not implemented/i.test(response.body))),
          Effect.tap((supported) =>
            Effect.logInfo("transaction interface probe").pipe(Effect.annotateLogs({ supported }))
          ),
          Effect.orElseSucceed(() => true)
        )
    })
  })

/**
 * The client as a layer, from its connection settings (a resolved `StarRocksConfig` will do).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: ConnectionConfig, options?: LoadClientOptions): Layer.Layer<LoadClient> =>
  Layer.scoped(LoadClient, make(config, options))

/**
 * A LoadClient from the two plain-load operations (test doubles): the other operations die when called.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromPartial = (
  client: Pick<LoadClient, "loadBatch" | "getLoadState"> & Partial<LoadClient>
): LoadClient => {
  const unsupported = (operation: string) => () => Effect.dieMessage(`LoadClient.${operation} not provided`)
  return LoadClient.of({
    loadTransactional: unsupported("loadTransactional"),
    begin: unsupported("begin"),
    loadTxn: unsupported("loadTxn"),
    prepare: unsupported("prepare"),
    commit: unsupported("commit"),
    rollback: unsupported("rollback"),
    endpointStatus: Effect.succeed([]),
    supportsTransactions: () => Effect.succeed(true),
    ...client
  })
}
