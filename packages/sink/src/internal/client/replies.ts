/**
 * Requests checked before they are sent, and classified replies turned into typed errors that carry the facts
 * `retryLogic` decides from (the classifier's outcome and reason, the HTTP status, the URL that answered).
 *
 * @internal
 */
import * as Http from "node:http"
import { AuthError, RedirectError, StreamLoadError } from "../../StarRocksError.js"
import type { LoadError } from "../../StarRocksError.js"
import type { Outcome } from "../../StreamLoadResponse.js"
import type { StreamLoadBody } from "../../StreamLoadResponse.js"
import { timings } from "../../StreamLoadResponse.js"
import type { Connection } from "./connection.js"
import type { LoadRequest, LoadResult } from "./model.js"
import * as RetryLogic from "./retryLogic.js"
import type { HttpResponse } from "./transport.js"

/** StarRocks' label rule. @internal */
export const LABEL_RE = /^[-\w]{1,128}$/

/** A finite number or `fallback`. @internal */
export const num = (value: number | undefined, fallback = 0): number =>
  value !== undefined && Number.isFinite(value) ? value : fallback

/**
 * Lower-cased merge of header records, later records winning; the headers the client sets itself (Authorization,
 * Expect, Content-Length, Host) are dropped.
 * @internal
 */
export const mergeHeaders = (
  ...records: ReadonlyArray<Readonly<Record<string, string>> | undefined>
): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const record of records) {
    if (record === undefined) continue
    for (const k in record) {
      const key = k.toLowerCase()
      if (key === "authorization" || key === "expect" || key === "content-length" || key === "host") continue
      out[key] = record[k]!
    }
  }
  return out
}

/** The first header node:http would refuse, described; undefined when all are valid. @internal */
export const invalidHeader = (headers: Readonly<Record<string, string>>): string | undefined => {
  for (const k in headers) {
    try {
      Http.validateHeaderName(k)
      Http.validateHeaderValue(k, headers[k])
    } catch {
      return `invalid header ${JSON.stringify(k)}`
    }
  }
  return undefined
}

/**
 * `mergeHeaders` of a request's headers and the first of them node:http would refuse (`invalidHeader`), kept per
 * headers object: the sink sends the same headers object with every load of a table (lane.ts keeps one per batch
 * shape and format), so they are lower-cased and checked once per table, not once per load. Headers are read-only
 * (`LoadRequest.headers`): a record changed after its first load would not be checked again.
 * @internal
 */
export const checkedHeaders = (
  headers: Readonly<Record<string, string>>
): { readonly merged: Readonly<Record<string, string>>; readonly invalid: string | undefined } => {
  let checked = checkedByHeaders.get(headers)
  if (checked === undefined) {
    const merged = mergeHeaders(headers)
    checked = { merged, invalid: invalidHeader(merged) }
    checkedByHeaders.set(headers, checked)
  }
  return checked
}
const checkedByHeaders = new WeakMap<
  Readonly<Record<string, string>>,
  { readonly merged: Readonly<Record<string, string>>; readonly invalid: string | undefined }
>()

/**
 * A `StreamLoadError` whose `retryable` states what `retryLogic` decides for `operation` from its facts.
 * @internal
 */
export const streamLoadError = (
  operation: RetryLogic.Operation,
  fields: Omit<ConstructorParameters<typeof StreamLoadError>[0], "retryable"> & {
    readonly outcome: RetryLogic.StreamLoadOutcome
  }
): StreamLoadError =>
  new StreamLoadError({
    ...fields,
    retryable: RetryLogic.decide(operation, { _tag: "StreamLoadError", outcome: fields.outcome }) === "Retry"
  })

/**
 * A reply that is not a success, as a typed error of `operation` (`streamLoad` or `loadState`). For
 * `get_load_state`, a reply "in doubt" is a transient failure to read the state, and a label conflict is unexpected.
 * @internal
 */
export const outcomeToError = (
  operation: "streamLoad" | "loadState",
  label: string,
  outcome: Outcome,
  response: HttpResponse
): LoadError => {
  switch (outcome._tag) {
    case "Unauthorized":
      return new AuthError({
        url: response.url,
        httpStatus: response.status,
        status: outcome.status,
        message: outcome.message
      })
    case "Redirect":
      return new RedirectError({ url: response.url, reason: "unfollowed redirect", hops: response.hops })
    case "Retryable":
    case "Permanent":
    case "InDoubt":
    case "LabelExists": {
      const body = outcome.body
      const state = operation === "loadState"
      if (state && outcome._tag === "LabelExists") break
      return streamLoadError(operation, {
        label,
        status: outcome.status,
        message: outcome.message,
        outcome: state && outcome._tag === "InDoubt" ? "Retryable" : outcome._tag,
        reason: outcome._tag === "LabelExists" ? `label in use (${outcome.existingJobStatus})` : outcome.reason,
        httpStatus: response.status,
        url: response.url,
        ...(body?.ErrorURL !== undefined ? { errorUrl: body.ErrorURL } : {}),
        ...(body?.NumberFilteredRows !== undefined ? { filteredRows: body.NumberFilteredRows } : {}),
        ...(body?.TxnId !== undefined ? { txnId: body.TxnId } : {})
      })
    }
  }
  return streamLoadError(operation, {
    label,
    status: "status" in outcome ? outcome.status : "",
    message: "message" in outcome ? outcome.message : "",
    outcome: "Permanent",
    reason: `unexpected ${outcome._tag}`,
    httpStatus: response.status,
    url: response.url
  })
}

/** One attempt's result, before retries and elapsed time are known. @internal */
export type Attempt = Omit<LoadResult, "retries" | "elapsedMs">

/** A Stream Load reply as a result (plain and merge commit loads). @internal */
export const toResult = (
  label: string,
  status: LoadResult["status"],
  body: StreamLoadBody | undefined,
  response: HttpResponse,
  labelState?: LoadResult["labelState"]
): Attempt => ({
  label,
  status,
  txnId: num(body?.TxnId, -1),
  loadedRows: num(body?.NumberLoadedRows),
  filteredRows: num(body?.NumberFilteredRows),
  unselectedRows: num(body?.NumberUnselectedRows),
  // absent when the reply has no count (a label already loaded): not 0, which would say the load read no row
  ...(typeof body?.NumberTotalRows === "number" && Number.isFinite(body.NumberTotalRows)
    ? { totalRows: body.NumberTotalRows }
    : {}),
  loadBytes: num(body?.LoadBytes),
  hops: response.hops,
  timings: timings(response.body),
  errorUrl: body?.ErrorURL,
  message: body?.Message ?? body?.Msg ?? "",
  ...(labelState !== undefined ? { labelState } : {})
})

/**
 * The PUT of a Stream Load body to `/api/{db}/{table}/_stream_load` (through the BEs directly when configured),
 * with `Expect: 100-continue` and the socket timeout the headers ask for.
 * @internal
 */
export const putStreamLoad = (
  connection: Connection,
  request: LoadRequest,
  headers: Readonly<Record<string, string>>
): ReturnType<Connection["send"]> => {
  const path = `/api/${encodeURIComponent(request.database)}/${encodeURIComponent(request.table)}/_stream_load`
  return connection.send(connection.directBes ?? connection.fes, (base) => ({
    method: "PUT",
    url: new URL(path, base),
    headers: { ...headers, Authorization: connection.authorization() },
    body: request.body,
    expectContinue: true
  }), connection.socketTimeoutFor(headers))
}
