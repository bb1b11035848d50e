/**
 * Plain Stream Load of one batch under its label (`PUT /api/{db}/{table}/_stream_load`): checked, sent through
 * failover, the reply classified, a label in doubt or in use settled through `get_load_state`, retried under the
 * same label as `retryLogic` decides.
 *
 * @internal
 */
import { Context, DefaultServices, Effect, LogLevel, Tracer } from "effect"
import type { LoadBody } from "../../LoadBody.js"
import type { LoadError, StreamLoadError } from "../../StarRocksError.js"
import type { Outcome } from "../../StreamLoadResponse.js"
import { classify } from "../../StreamLoadResponse.js"
import { logged } from "../logged.js"
import * as Backoff from "./backoff.js"
import * as Compression from "./compression.js"
import type { Connection } from "./connection.js"
import * as ErrorLog from "./errorLog.js"
import * as LoadState from "./loadState.js"
import * as MergeCommit from "./mergeCommit.js"
import type { LoadRequest, LoadResult } from "./model.js"
import type { Attempt } from "./replies.js"
import {
  checkedHeaders,
  LABEL_RE,
  mergeHeaders,
  num,
  outcomeToError,
  putStreamLoad,
  streamLoadError,
  toResult
} from "./replies.js"
import * as RetryLogic from "./retryLogic.js"
import type { HttpResponse } from "./transport.js"
import { streamedBodyRefusal } from "./transport.js"

/**
 * One attempt: the exchange, and the settlement of a label in doubt or in use.
 *
 * The reply of a load that landed (nearly every one) is taken in one `flatMap` after the exchange, with the clock
 * read directly (`Clock.unsafeCurrentTimeMillis`, the fiber's clock, a TestClock's in tests); the rest, the
 * settling and the errors, in `unsettled`.
 */
const attempt = (
  connection: Connection,
  request: LoadRequest,
  headers: Readonly<Record<string, string>>,
  n: number,
  resent: { n: number },
  reload = 0
): Effect.Effect<Attempt, LoadError> =>
  Effect.clockWith((clock) => {
    const started = clock.unsafeCurrentTimeMillis()
    return putStreamLoad(connection, request, headers).pipe(
      Effect.tapError((e) =>
        Effect.logWarning("stream load attempt failed").pipe(
          Effect.annotateLogs({
            label: request.label,
            attempt: n,
            url: e.url,
            error: e._tag,
            reason: e.reason,
            bytes: request.body.byteLength
          })
        )
      ),
      Effect.flatMap((response) => {
        resent.n += response.resends ?? 0
        const location = response.headers.location
        const outcome = classify(response.status, response.body, typeof location === "string" ? location : undefined)
        const body = "body" in outcome ? outcome.body : undefined
        const ended = clock.unsafeCurrentTimeMillis()
        const line = logged(LogLevel.Info, () =>
          Effect.logInfo("stream load").pipe(
            Effect.annotateLogs({
              label: request.label,
              attempt: n,
              hops: response.hops.join(" -> "),
              httpStatus: response.status,
              status: "status" in outcome ? outcome.status : "",
              outcome: outcome._tag,
              rows: num(body?.NumberLoadedRows),
              filteredRows: num(body?.NumberFilteredRows),
              bytes: request.body.byteLength,
              ms: ended - started
            })
          ))
        if (outcome._tag === "Success") {
          return Effect.as(line, toResult(request.label, "Success", outcome.body, response))
        }
        if (outcome._tag === "PublishTimeout") {
          return Effect.as(line, toResult(request.label, "Publish Timeout", outcome.body, response))
        }
        if (outcome._tag === "LabelExists" && outcome.existingJobStatus === "FINISHED") {
          return Effect.as(line, toResult(request.label, "Already Loaded", outcome.body, response))
        }
        return Effect.zipRight(line, unsettled(connection, request, headers, n, resent, reload, outcome, response))
      })
    )
  })

/** A reply that is not a load that landed: the label settled, or the reply as a typed error. */
const unsettled = (
  connection: Connection,
  request: LoadRequest,
  headers: Readonly<Record<string, string>>,
  n: number,
  resent: { n: number },
  reload: number,
  outcome: Outcome,
  response: HttpResponse
): Effect.Effect<Attempt, LoadError> =>
  Effect.gen(function*() {
    const body = "body" in outcome ? outcome.body : undefined
    const error = outcomeToError("streamLoad", request.label, outcome, response)
    switch (RetryLogic.decide("streamLoad", error)) {
      case "Settle": {
        const inDoubt = outcome._tag === "InDoubt"
        // RUNNING / unknown: wait for a final state; in doubt: UNKNOWN is final too (nothing was kept)
        const state = yield* LoadState.awaitFinal(
          connection,
          request,
          (s) => LoadState.isCommitted(s) || s === "ABORTED" || (inDoubt && s === "UNKNOWN")
        )
        if (LoadState.isCommitted(state)) {
          return toResult(request.label, "Already Loaded", body, response, state)
        }
        // an ABORTED label found while settling is free again: load once more at once under the same label
        if (reload === 0) {
          yield* Effect.logInfo("label free again, loading under the same label").pipe(
            Effect.annotateLogs({ label: request.label, state })
          )
          return yield* attempt(connection, request, headers, n, resent, reload + 1)
        }
        return yield* streamLoadError("streamLoad", {
          label: request.label,
          status: "status" in outcome ? outcome.status : "",
          message: "message" in outcome ? outcome.message : "",
          // the label is free again (ABORTED, or UNKNOWN after a load in doubt): loading it again is safe
          outcome: "Retryable",
          reason: `label ${state} after ${outcome._tag}`,
          httpStatus: response.status,
          url: response.url
        })
      }
      case "Fail": {
        // a permanent failure: the first lines of the ErrorURL say which rows and why
        if (error._tag !== "StreamLoadError" || error.errorUrl === undefined) return yield* error
        const errorLog = yield* ErrorLog.fetch(connection, error.errorUrl)
        return yield* streamLoadError("streamLoad", {
          label: error.label,
          status: error.status,
          message: error.message,
          outcome: error.outcome ?? "Permanent",
          ...(error.reason !== undefined ? { reason: error.reason } : {}),
          ...(error.httpStatus !== undefined ? { httpStatus: error.httpStatus } : {}),
          ...(error.url !== undefined ? { url: error.url } : {}),
          errorUrl: error.errorUrl,
          errorLog,
          ...(error.filteredRows !== undefined ? { filteredRows: error.filteredRows } : {}),
          ...(error.txnId !== undefined ? { txnId: error.txnId } : {})
        })
      }
      default:
        return yield* error
    }
  })

/**
 * Plain stream load of one batch under `request.label`, retried per the connection's budget, label settled.
 * @internal
 */
export const load = (connection: Connection, request: LoadRequest): Effect.Effect<LoadResult, LoadError> =>
  request.body.source !== undefined ?
    streamed(connection, request) :
    // merge commit (mergeCommit.ts): the server's label, no client label, its own retry rules
    request.headers["enable_merge_commit"] !== undefined && MergeCommit.enabled(request.headers) ?
    MergeCommit.load(connection, request) :
    plain(connection, request)

/** A body whose `byteLength` is not the sum of its chunks' lengths: an `Invalid` error, before anything is sent. */
const unevenBody = (request: LoadRequest): StreamLoadError | undefined => {
  let actualBytes = 0
  for (const chunk of request.body.chunks) actualBytes += chunk.byteLength
  return actualBytes === request.body.byteLength ? undefined : streamLoadError("streamLoad", {
    label: request.label,
    status: "",
    message: `body byteLength ${request.body.byteLength} differs from its chunks (${actualBytes} bytes)`,
    outcome: "Invalid",
    reason: "invalid body"
  })
}

/** A streamed body (`LoadBody.source`): refused where its bytes would be needed in memory, else a plain load. */
const streamed = (connection: Connection, request: LoadRequest): Effect.Effect<LoadResult, LoadError> => {
  const refusal = streamedBodyRefusal(request.headers)
  return refusal === undefined ? plain(connection, request) : Effect.fail(streamLoadError("streamLoad", {
    label: request.label,
    status: "",
    message: refusal,
    outcome: "Invalid",
    reason: refusal.slice(0, refusal.indexOf(":"))
  }))
}

/**
 * Effect's own tracer, the one a program has unless it provides another (`Effect.withTracer`, an OpenTelemetry
 * layer). Its spans are kept by nobody: a load under it makes none, which saves a third of a load's Effect
 * operations (the span's making, its scope, its attributes, its end). Under any other tracer each load is a
 * `starrocks.streamLoad` span, as documented (docs/sink.md).
 */
const nativeTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

const plain = (connection: Connection, request: LoadRequest): Effect.Effect<LoadResult, LoadError> =>
  Effect.tracerWith((tracer) =>
    tracer === nativeTracer ? untraced(connection, request, false) : untraced(connection, request, true).pipe(
      Effect.withSpan("starrocks.streamLoad", {
        // the span's call site would be this file, the same for every load: not worth an Error per load
        captureStackTrace: false,
        kind: "client",
        attributes: {
          "starrocks.database": request.database,
          "starrocks.table": request.table,
          "starrocks.label": request.label,
          "starrocks.bytes": request.compressed?.rawBytes ?? request.body.byteLength
        }
      })
    )
  )

/** A plain load; its status and retries annotate the current span when `traced` (the load's own). */
const untraced = (
  connection: Connection,
  request: LoadRequest,
  traced: boolean
): Effect.Effect<LoadResult, LoadError> =>
  Effect.clockWith((clock): Effect.Effect<LoadResult, LoadError> => {
    const start = clock.unsafeCurrentTimeMillis()
    if (!LABEL_RE.test(request.label)) {
      return Effect.fail(streamLoadError("streamLoad", {
        label: request.label,
        status: "",
        message: `Label format error. regex: ^[-\\w]{1,128}$, label: ${request.label}`,
        outcome: "Invalid",
        reason: "label format error"
      }))
    }
    // a streamed body has no chunks: its source is read as it is sent (transport.ts)
    const uneven = request.body.source === undefined ? unevenBody(request) : undefined
    if (uneven !== undefined) return Effect.fail(uneven)
    // the label passed LABEL_RE above: a valid header value; the others are checked once per headers object
    const checked = checkedHeaders(request.headers)
    const merged: Record<string, string> = { ...checked.merged, label: request.label }
    const bad = checked.invalid
    if (bad !== undefined) {
      return Effect.fail(streamLoadError("streamLoad", {
        label: request.label,
        status: "",
        message: bad,
        outcome: "Invalid",
        reason: "invalid header"
      }))
    }
    // sends on a fresh connection after a pooled one closed (transport.ts): retries too
    const resent = { n: 0 }
    const run = (
      sent: LoadRequest,
      headers: Readonly<Record<string, string>>,
      compressedBytes: number | undefined
    ): Effect.Effect<LoadResult, LoadError> =>
      Backoff.counted(
        (n) => attempt(connection, sent, headers, n, resent),
        Backoff.operationPolicy(connection.retry, "streamLoad"),
        "stream load failed",
        { label: request.label }
      ).pipe(Effect.flatMap(([result, attempts]) => {
        const retries = attempts - 1 + resent.n
        const end = clock.unsafeCurrentTimeMillis()
        const loaded: LoadResult = compressedBytes === undefined ?
          { ...result, retries, elapsedMs: end - start } :
          { ...result, retries, elapsedMs: end - start, compressedBytes }
        return traced ?
          Effect.as(
            Effect.annotateCurrentSpan({ "starrocks.status": result.status, "starrocks.retries": retries }),
            loaded
          ) :
          Effect.succeed(loaded)
      }))
    // compression off: this one check is all the hot path gains; on: compressed once (here, or before by
    // `compress`), resent by every attempt
    if (merged["compression"] === undefined && request.compressed === undefined) return run(request, merged, undefined)
    return Effect.flatMap(
      Compression.forLoad("streamLoad", request.label, merged, request.body, request.compressed),
      (compressed) => run({ ...request, body: compressed.body }, compressed.headers, compressed.body.byteLength)
    )
  })

/**
 * The request of a load whose headers name a codec, with its body compressed into one frame (`compressed` set), so
 * that every later attempt, plain or transactional, sends the frame as it is; any other request as it is. The raw
 * body's chunks are handed to `release` as the codec is done with them (compression.ts `compress`): the caller reads
 * the raw body no more. What needs the raw bytes is checked first: the body's length, and a merge commit CSV body's
 * final row delimiter. Failures are `Invalid` StreamLoadErrors, before anything is sent.
 * @internal
 */
export const compress = (
  request: LoadRequest,
  release?: (body: LoadBody) => void
): Effect.Effect<LoadRequest, StreamLoadError> =>
  Effect.suspend(() => {
    // already compressed; or streamed from its source (LoadBody.source): the load refuses it with compression
    if (request.compressed !== undefined || request.body.source !== undefined) return Effect.succeed(request)
    const merged = mergeHeaders(request.headers)
    const value = merged["compression"]
    if (value === undefined || Compression.codecOf(value) === "none") return Effect.succeed(request)
    const uneven = unevenBody(request)
    if (uneven !== undefined) return uneven
    const unended = MergeCommit.enabled(merged) ? MergeCommit.unendedCsv(request, merged) : undefined
    if (unended !== undefined) return unended
    return Compression.forLoad("streamLoad", request.label, merged, request.body, undefined, release).pipe(
      Effect.map((c): LoadRequest => ({ ...request, body: c.body, compressed: { rawBytes: c.rawBytes } }))
    )
  })
