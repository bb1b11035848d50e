/**
 * The transaction interface (`/api/transaction/{begin,load,prepare,commit,rollback}`): one call, retried as
 * `retryLogic` decides; a prepare, commit or rollback that did not answer OK settled through `get_load_state`; and
 * `loadTransactional`, at-least-once over begin / load / commit under one label.
 *
 * @internal
 */
import { Clock, Effect, Either, LogLevel, Ref } from "effect"
import type { LoadBody } from "../../LoadBody.js"
import type { LoadError } from "../../StarRocksError.js"
import { TransactionError } from "../../StarRocksError.js"
import type { Outcome } from "../../StreamLoadResponse.js"
import { classify, timings } from "../../StreamLoadResponse.js"
import { logged } from "../logged.js"
import * as Backoff from "./backoff.js"
import * as Compression from "./compression.js"
import type { Connection } from "./connection.js"
import * as LoadState from "./loadState.js"
import type {
  LoadRequest,
  LoadResult,
  LoadState as State,
  Target,
  TransactionOperation,
  TransactionRequest,
  TransactionResult
} from "./model.js"
import { checkedHeaders, LABEL_RE, num, outcomeToError, streamLoadError } from "./replies.js"
import * as RetryLogic from "./retryLogic.js"
import type { HttpResponse } from "./transport.js"
import { streamedBodyRefusal } from "./transport.js"

interface Reply {
  readonly outcome: Outcome
  readonly response: HttpResponse
}

/** A reply that is not a success, as a `TransactionError` carrying the facts `retryLogic` decides from. */
const txnError = (
  operation: TransactionOperation,
  label: string,
  outcome: Outcome,
  httpStatus: number,
  labelState?: State
): TransactionError => {
  const status = "status" in outcome ? outcome.status : ""
  const message = "message" in outcome ? outcome.message : ""
  const facts = (kind: TransactionError["kind"], reason: string | undefined, existingJobStatus?: string) => {
    const fields = {
      operation,
      label,
      status,
      message,
      kind,
      httpStatus,
      ...(reason !== undefined ? { reason } : {}),
      ...(existingJobStatus !== undefined ? { existingJobStatus } : {}),
      ...(labelState !== undefined ? { labelState } : {})
    }
    return new TransactionError({
      ...fields,
      retryable: RetryLogic.decide(operation, { _tag: "TransactionError", ...fields }) === "Retry"
    })
  }
  switch (outcome._tag) {
    case "LabelExists":
      return facts("LabelExists", undefined, outcome.existingJobStatus)
    case "Retryable":
      return facts("Retryable", outcome.reason)
    case "Permanent":
      return facts(
        labelState === "ABORTED" || /aborted/.test(outcome.reason)
          ? "Aborted"
          : /transaction not found/.test(outcome.reason)
          ? "TxnNotExists"
          : "Permanent",
        outcome.reason
      )
    case "InDoubt":
      return facts("InDoubt", outcome.reason)
    default:
      return facts("Permanent", outcome._tag)
  }
}

const txnResult = (
  operation: TransactionOperation,
  label: string,
  outcome: Outcome,
  response: HttpResponse,
  retries: number,
  labelState?: State
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

/** One exchange of one call. */
const exchangeOnce = (
  connection: Connection,
  operation: TransactionOperation,
  label: string,
  headers: Readonly<Record<string, string>>,
  body: LoadBody | undefined
): Effect.Effect<Reply, LoadError> =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    const response = yield* connection.send(
      connection.fes,
      (base) => ({
        method: operation === "load" ? "PUT" : "POST",
        url: new URL(`/api/transaction/${operation}`, base),
        headers: { ...headers, Authorization: connection.authorization() },
        body,
        expectContinue: operation === "load"
      }),
      operation === "load"
        ? connection.socketTimeoutFor(headers)
        : Math.max(connection.controlSocketTimeout, connection.loadTimeoutMs(headers))
    )
    const outcome = classify(response.status, response.body)
    const ended = yield* Clock.currentTimeMillis
    // built only when the minimum log level lets it through (as streamLoad.ts's): a fiber-ref read otherwise
    yield* logged(LogLevel.Info, () =>
      Effect.logInfo(`transaction ${operation}`).pipe(
        Effect.annotateLogs({
          label,
          hops: response.hops.join(" -> "),
          httpStatus: response.status,
          status: "status" in outcome ? outcome.status : "",
          outcome: outcome._tag,
          bytes: body?.byteLength ?? 0,
          ms: ended - started
        })
      ))
    return { response, outcome }
  })

/** A prepare/commit/rollback that did not answer OK, settled through get_load_state. */
const verify = (
  connection: Connection,
  operation: TransactionOperation,
  request: TransactionRequest,
  reply: Reply,
  retries: number
): Effect.Effect<TransactionResult, LoadError> =>
  Effect.gen(function*() {
    const { outcome, response } = reply
    const label = request.label
    const state = yield* Effect.either(LoadState.get(connection, request))
    if (Either.isLeft(state)) return yield* txnError(operation, label, outcome, response.status)
    const s = state.right
    const notFound = outcome._tag === "Permanent" && /transaction not found/.test(outcome.reason)
    const done = operation === "prepare"
      ? s === "PREPARED" && notFound
      : operation === "commit"
      ? LoadState.isCommitted(s)
      : s === "ABORTED" || (s === "UNKNOWN" && notFound)
    if (done) {
      yield* Effect.logInfo(`transaction ${operation} verified by label state`).pipe(
        Effect.annotateLogs({ label, state: s, status: "status" in outcome ? outcome.status : "" })
      )
      return txnResult(operation, label, outcome, response, retries, s)
    }
    return yield* txnError(operation, label, outcome, response.status, s)
  })

/**
 * One transaction call (`begin`, `load`, `prepare`, `commit`, `rollback`): sends `db`, `table` and `label` from the
 * request, retries while `retryLogic` says `Retry`, and settles what it says to settle (or a settling call whose
 * retries ran out) through `get_load_state`.
 * @internal
 */
export const call = (
  connection: Connection,
  operation: TransactionOperation,
  request: TransactionRequest & { readonly compressed?: LoadRequest["compressed"] },
  body: LoadBody | undefined
): Effect.Effect<TransactionResult, LoadError> =>
  Effect.gen(function*() {
    const label = request.label
    if (!LABEL_RE.test(label)) {
      const fields = {
        operation,
        label,
        status: "",
        message: `Label format error. regex: ^[-\\w]{1,128}$, label: ${label}`,
        kind: "Permanent" as const,
        reason: "label format error"
      }
      return yield* new TransactionError({
        ...fields,
        retryable: RetryLogic.decide(operation, { _tag: "TransactionError", ...fields }) === "Retry"
      })
    }
    // lower-cased once per headers object, as a stream load's (replies.ts `checkedHeaders`)
    const merged: Record<string, string> = {
      ...(request.headers === undefined ? undefined : checkedHeaders(request.headers).merged),
      db: request.database,
      table: request.table,
      label
    }
    // a streamed body (LoadBody.source) is read as it is sent: refused where it would be needed in memory
    const refusal = operation === "load" && body?.source !== undefined ? streamedBodyRefusal(merged) : undefined
    if (refusal !== undefined) {
      const fields = {
        operation,
        label,
        status: "",
        message: refusal,
        kind: "Permanent" as const,
        reason: refusal.slice(0, refusal.indexOf(":"))
      }
      return yield* new TransactionError({
        ...fields,
        retryable: RetryLogic.decide(operation, { _tag: "TransactionError", ...fields }) === "Retry"
      })
    }
    // transaction/load takes the `compression` header as a plain load does: compressed once, resent by each retry
    const compressed = operation === "load" && body !== undefined &&
        (merged["compression"] !== undefined || request.compressed !== undefined) ?
      yield* Compression.forLoad("load", label, merged, body, request.compressed) :
      undefined
    const headers = compressed?.headers ?? merged
    const sent = compressed?.body ?? body
    const attempts = yield* Ref.make(0)
    const last = yield* Ref.make<Reply | undefined>(undefined)
    const once = Ref.update(attempts, (n) => n + 1).pipe(
      Effect.zipRight(exchangeOnce(connection, operation, label, headers, sent)),
      Effect.tap((r) => Ref.set(last, r)),
      Effect.flatMap((reply): Effect.Effect<Reply, LoadError> => {
        const { outcome, response } = reply
        if (outcome._tag === "Success" || outcome._tag === "PublishTimeout") return Effect.succeed(reply)
        if (outcome._tag === "Unauthorized" || outcome._tag === "Redirect") {
          return Effect.fail(outcomeToError("streamLoad", label, outcome, response))
        }
        const error = txnError(operation, label, outcome, response.status)
        // prepare / commit / rollback: settled below through the label state
        return RetryLogic.decide(operation, error) === "Settle" ? Effect.succeed(reply) : Effect.fail(error)
      })
    )
    const result = yield* Effect.either(Effect.retry(once, Backoff.operationPolicy(connection.retry, operation)))
    const retries = (yield* Ref.get(attempts)) - 1
    if (Either.isRight(result)) {
      const { outcome, response } = result.right
      if (outcome._tag === "Success" || outcome._tag === "PublishTimeout") {
        const result = txnResult(operation, label, outcome, response, retries)
        return compressed === undefined ? result : { ...result, compressedBytes: compressed.body.byteLength }
      }
      return yield* verify(connection, operation, request, result.right, retries)
    }
    // a settling call whose retries ran out: its outcome is settled through the label state too
    const lastReply = yield* Ref.get(last)
    if (
      result.left._tag === "TransactionError" && lastReply !== undefined &&
      (operation === "prepare" || operation === "commit" || operation === "rollback")
    ) {
      return yield* verify(connection, operation, request, lastReply, retries)
    }
    return yield* result.left
  }).pipe(Effect.withSpan(`starrocks.transaction.${operation}`, {
    kind: "client",
    attributes: {
      "starrocks.database": request.database,
      "starrocks.table": request.table,
      "starrocks.label": request.label,
      ...(body !== undefined ? { "starrocks.bytes": body.byteLength } : {})
    }
  }))

/** The calls `loadTransactional` is made of (so that it can run over any implementation of them). */
interface Calls {
  readonly begin: (request: TransactionRequest) => Effect.Effect<TransactionResult, LoadError>
  readonly loadTxn: (request: LoadRequest) => Effect.Effect<TransactionResult, LoadError>
  readonly commit: (request: TransactionRequest) => Effect.Effect<TransactionResult, LoadError>
  readonly rollback: (request: TransactionRequest) => Effect.Effect<TransactionResult, LoadError>
  readonly getLoadState: (request: TransactionRequest) => Effect.Effect<State, LoadError>
}

/**
 * At-least-once over the transaction interface: begin, `transaction/load`, commit under `request.label`. A failure
 * `retryLogic` finds replayable rolls the transaction back and replays the body under the same label (an ABORTED
 * label is free at once); a label found COMMITTED/VISIBLE (an earlier attempt landed) counts as loaded.
 * @internal
 */
export const loadTransactional = (
  connection: Connection,
  calls: Calls,
  request: LoadRequest
): Effect.Effect<LoadResult, LoadError> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const bare: TransactionRequest = { database: request.database, table: request.table, label: request.label }
    let attempts = 0
    const rollback = calls.rollback(bare).pipe(Effect.ignore)
    const attempt = Effect.gen(function*() {
      attempts++
      const begun = yield* calls.begin(bare).pipe(
        Effect.as(true),
        Effect.catchIf(
          (e): e is TransactionError => e._tag === "TransactionError" && e.kind === "LabelExists",
          () => Effect.succeed(false)
        )
      )
      if (!begun) {
        const state = yield* calls.getLoadState(bare)
        if (LoadState.isCommitted(state)) return undefined
        yield* rollback
        return yield* streamLoadError("begin", {
          label: request.label,
          status: "LABEL_ALREADY_EXISTS",
          message: `label ${request.label} is held by an earlier attempt (${state}); rolled back, beginning again`,
          outcome: "Retryable",
          reason: `label ${state} held by an earlier attempt`
        })
      }
      const loaded = yield* calls.loadTxn(request).pipe(Effect.tapError(() => rollback))
      const committed = yield* calls.commit(bare).pipe(Effect.tapError(() => rollback))
      return { loaded, committed }
    })
    const done = yield* Effect.retry(
      attempt,
      Backoff.policy(connection.retry, RetryLogic.isReplayable)
    )
    const retries = attempts - 1 + (done?.loaded.retries ?? 0) + (done?.committed.retries ?? 0)
    const end = yield* Clock.currentTimeMillis
    return {
      label: request.label,
      status: done === undefined ? "Already Loaded" as const : "Success" as const,
      txnId: done?.committed.txnId ?? -1,
      loadedRows: done?.committed.loadedRows ?? 0,
      filteredRows: done?.committed.filteredRows ?? 0,
      unselectedRows: done?.committed.unselectedRows ?? 0,
      loadBytes: request.compressed?.rawBytes ?? request.body.byteLength,
      ...(done?.loaded.compressedBytes !== undefined ? { compressedBytes: done.loaded.compressedBytes } : {}),
      retries,
      hops: done?.loaded.hops ?? [],
      timings: done?.committed.timings ?? {},
      elapsedMs: end - start
    }
  })

/**
 * Whether the cluster has the transaction interface (StarRocks 2.4+), probed as the Flink connector does:
 * `POST /api/transaction/begin` on `target` without a label. An FE that answers 404 or `Not implemented` has none;
 * any other answer (current FEs say `Empty label.`), and a probe that fails, count as supported.
 * @internal
 */
export const probe = (connection: Connection, target: Target): Effect.Effect<boolean> =>
  connection.send(connection.fes, (base) => ({
    method: "POST",
    url: new URL("/api/transaction/begin", base),
    headers: { db: target.database, table: target.table, Authorization: connection.authorization() },
    body: undefined,
    expectContinue: false
  }), connection.controlSocketTimeout).pipe(
    Effect.map((response) => !(response.status === 404 || /not implemented/i.test(response.body))),
    Effect.tap((supported) => Effect.logInfo("transaction interface probe").pipe(Effect.annotateLogs({ supported }))),
    Effect.orElseSucceed(() => true)
  )
