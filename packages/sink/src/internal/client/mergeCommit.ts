/**
 * Stream Load with merge commit (`enable_merge_commit: true`, StarRocks 3.4+): the server appends the body to an
 * open merge task of the table and commits the task's transaction when its window (`merge_commit_interval_ms`)
 * ends; the label is the server's (`merge_commit_…`, in the reply's `Label`), so no client label is sent.
 *
 * - Sync mode: the reply comes at the end of the merged transaction: `Success` means committed.
 * - Async mode (`merge_commit_async: true`): the reply comes once the body is appended; the outcome is known only
 *   through the label state: `get_load_state` is polled (first after the reply's `LeftMergeTimeMs`) until the label
 *   is COMMITTED/VISIBLE (landed) or ABORTED, within `labelStateTimeout` (then `LabelStateTimeout`).
 * - A CSV body must end with the row delimiter: StarRocks appends the merged bodies to one stream, so a last row
 *   without it would run into the next request's first row. Refused before sending (`Invalid`).
 *
 * Retries (per the connection's budget): a request the server did not take (a connection refused, a retryable
 * `Fail`, an ABORTED merged transaction) is sent again; it joins a new merge task, under a new server label. A
 * request whose reply was lost after the body left (`TransportError` with `bodySent`) has an unknown outcome and no
 * label to settle by: it is sent again too, so its rows may land twice. That is at-least-once, logged as a warning
 * and documented (docs/protocol.md, "Merge commit"); a sink that must not duplicate does not use merge commit.
 *
 * @internal
 */
import { Clock, Duration, Effect } from "effect"
import type { LoadError } from "../../StarRocksError.js"
import { classify } from "../../StreamLoadResponse.js"
import * as Backoff from "./backoff.js"
import * as Compression from "./compression.js"
import type { Connection } from "./connection.js"
import * as LoadState from "./loadState.js"
import type { LoadRequest, LoadResult } from "./model.js"
import type { Attempt } from "./replies.js"
import { invalidHeader, mergeHeaders, outcomeToError, putStreamLoad, streamLoadError, toResult } from "./replies.js"
import * as RetryLogic from "./retryLogic.js"

/** Whether a load's headers ask for merge commit. @internal */
export const enabled = (headers: Readonly<Record<string, string>>): boolean =>
  (headers["enable_merge_commit"] ?? "").trim().toLowerCase() === "true"

/** The CSV row delimiter of a load (`row_delimiter`, default `\n`), as bytes. */
const rowDelimiter = (headers: Readonly<Record<string, string>>): Uint8Array => {
  const d = headers["row_delimiter"]
  if (d === undefined || d === "" || d === "\\n") return Uint8Array.of(10)
  if (/^\\x[0-9a-fA-F]{2}$/.test(d)) return Uint8Array.of(parseInt(d.slice(2), 16))
  return new TextEncoder().encode(d)
}

/** Whether the body's last bytes are the delimiter. */
const endsWith = (request: LoadRequest, delimiter: Uint8Array): boolean => {
  const chunks = request.body.chunks
  const tail: Array<number> = []
  for (let i = chunks.length - 1; i >= 0 && tail.length < delimiter.length; i--) {
    const c = chunks[i]!
    for (let j = c.byteLength - 1; j >= 0 && tail.length < delimiter.length; j--) tail.unshift(c[j]!)
  }
  return tail.length === delimiter.length && tail.every((b, i) => b === delimiter[i])
}

const isCsv = (headers: Readonly<Record<string, string>>): boolean =>
  (headers["format"] ?? "csv").trim().toLowerCase() === "csv"

const invalid = (request: LoadRequest, message: string, reason: string) =>
  streamLoadError("streamLoad", { label: request.label, status: "", message, outcome: "Invalid", reason })

/**
 * The `Invalid` error of a merge commit CSV body that does not end with the row delimiter (StarRocks appends the
 * merged bodies to one stream), or undefined. `merged`: the load's lower-cased headers.
 * @internal
 */
export const unendedCsv = (request: LoadRequest, merged: Readonly<Record<string, string>>) =>
  isCsv(merged) && request.body.byteLength > 0 && !endsWith(request, rowDelimiter(merged)) ?
    invalid(
      request,
      "merge commit: a CSV body must end with the row delimiter (StarRocks appends the merged bodies to one " +
        "stream; the last row would run into the next request's first row)",
      "csv body without a final row delimiter"
    ) :
    undefined

/** `LeftMergeTimeMs` of a reply (absent on older servers): how long the merge window had left. */
const leftMergeMs = (raw: string): number => {
  try {
    const o = JSON.parse(raw) as Record<string, unknown>
    const v = o["LeftMergeTimeMs"] ?? o["LeftTimeMs"]
    return typeof v === "number" && v >= 0 ? v : 0
  } catch {
    return 0
  }
}

const attempt = (
  connection: Connection,
  request: LoadRequest,
  headers: Readonly<Record<string, string>>,
  async: boolean,
  n: number
): Effect.Effect<Attempt, LoadError> =>
  Effect.gen(function*() {
    const response = yield* putStreamLoad(connection, request, headers).pipe(
      Effect.tapError((e) =>
        e._tag === "TransportError" && e.bodySent === true ?
          Effect.logWarning(
            "merge commit: reply lost after the body was sent; sending it again may load its rows twice"
          )
            .pipe(Effect.annotateLogs({ request: request.label, attempt: n, url: e.url, reason: e.reason })) :
          Effect.void
      )
    )
    const location = response.headers.location
    const outcome = classify(response.status, response.body, typeof location === "string" ? location : undefined)
    const body = "body" in outcome ? outcome.body : undefined
    const serverLabel = body?.Label ?? ""
    yield* Effect.logInfo("merge commit load").pipe(
      Effect.annotateLogs({
        request: request.label,
        label: serverLabel,
        attempt: n,
        async,
        httpStatus: response.status,
        outcome: outcome._tag,
        bytes: request.body.byteLength
      })
    )
    if (outcome._tag !== "Success" && outcome._tag !== "PublishTimeout") {
      return yield* outcomeToError("streamLoad", serverLabel, outcome, response)
    }
    if (serverLabel === "") {
      return yield* streamLoadError("streamLoad", {
        label: request.label,
        status: outcome.status,
        message: "merge commit reply without the server's Label",
        outcome: "Permanent",
        reason: "no server label",
        httpStatus: response.status,
        url: response.url
      })
    }
    // without the ErrorURL: the merged transaction's error log lists the other requests' rows too
    const { errorUrl: _, ...result } = toResult(
      serverLabel,
      outcome._tag === "Success" ? "Success" : "Publish Timeout",
      body,
      response
    )
    if (!async) return result
    // async: the reply says the body was appended; the label state says whether the merged transaction landed
    const state = yield* LoadState.awaitLabelState(
      (r) => LoadState.once(connection, r),
      { database: request.database, label: serverLabel },
      (s) => LoadState.isCommitted(s) || s === "ABORTED",
      {
        timeout: connection.config.labelStateTimeout,
        initialDelay: Duration.millis(Math.max(leftMergeMs(response.body), 20)),
        maxDelay: Duration.millis(Math.max(Duration.toMillis(connection.config.retryInterval), 200))
      }
    )
    if (LoadState.isCommitted(state)) return { ...result, labelState: state }
    const detail = yield* LoadState.getDetail(connection, { database: request.database, label: serverLabel }).pipe(
      Effect.orElseSucceed(() => ({ state, reason: undefined }))
    )
    return yield* streamLoadError("streamLoad", {
      label: serverLabel,
      status: "ABORTED",
      message: `merged transaction ${serverLabel} aborted${detail.reason === undefined ? "" : `: ${detail.reason}`}`,
      // nothing of the merged transaction landed: sending the request again is safe
      outcome: "Retryable",
      reason: "merged transaction aborted",
      httpStatus: response.status,
      url: response.url
    })
  })

/**
 * A merge commit load: checked, sent without a label, retried per the connection's budget (see the module notes on
 * what a retry means), async outcomes settled through the label state.
 * @internal
 */
export const load = (connection: Connection, request: LoadRequest): Effect.Effect<LoadResult, LoadError> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const merged: Record<string, string> = { ...mergeHeaders(request.headers) }
    delete merged["label"]
    const bad = invalidHeader(merged)
    if (bad !== undefined) return yield* invalid(request, bad, "invalid header")
    // a body compressed before (LoadClient.compress) was checked there, on its raw bytes
    if (request.compressed === undefined) {
      const unended = unendedCsv(request, merged)
      if (unended !== undefined) return yield* unended
    }
    const async = (merged["merge_commit_async"] ?? "").trim().toLowerCase() === "true"
    const compressed = merged["compression"] === undefined && request.compressed === undefined ?
      undefined :
      yield* Compression.forLoad("streamLoad", request.label, merged, request.body, request.compressed)
    const headers = compressed?.headers ?? merged
    const sent = compressed === undefined ? request : { ...request, body: compressed.body }
    const [result, attempts] = yield* Backoff.counted(
      (n) => attempt(connection, sent, headers, async, n),
      // a lost reply is sent again too (at-least-once: see the module notes)
      Backoff.policy(
        connection.retry,
        (e) =>
          RetryLogic.decide("streamLoad", e) === "Retry" ||
          (e._tag === "StreamLoadError" && e.outcome === "InDoubt")
      ),
      "merge commit load failed",
      { request: request.label }
    )
    const retries = attempts - 1
    const end = yield* Clock.currentTimeMillis
    return compressed === undefined ?
      { ...result, retries, elapsedMs: end - start } :
      { ...result, retries, elapsedMs: end - start, compressedBytes: compressed.body.byteLength }
  }).pipe(Effect.withSpan("starrocks.mergeCommitLoad", {
    kind: "client",
    attributes: {
      "starrocks.database": request.database,
      "starrocks.table": request.table,
      "starrocks.bytes": request.body.byteLength
    }
  }))
