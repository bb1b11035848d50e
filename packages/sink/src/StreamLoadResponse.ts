/**
 * Response bodies of the StarRocks HTTP load endpoints and their exhaustive classification.
 *
 * Keys are matched case-insensitively (`Status`/`status`, `Message`/`msg`/`message`): BE stream-load bodies are
 * PascalCase, FE `RestBaseResult` bodies (401, get_load_state) are lower-case. An unknown status or an unknown
 * body is never a success (Flink connector issue #511).
 *
 * @since 0.1.0
 */
import { Data, Either, ParseResult, Schema } from "effect"

// ---------------------------------------------------------------------------------------------------------------
// case-insensitive decoding
// ---------------------------------------------------------------------------------------------------------------

const Num = Schema.Union(Schema.Number, Schema.NumberFromString)
const Str = Schema.Union(
  Schema.String,
  Schema.transform(Schema.Number, Schema.String, {
    strict: true,
    decode: (n) => String(n),
    encode: (s) => Number(s)
  })
)

// the optional fields the bodies below share: one schema value each, not one a field (a schema value is a few kB
// made at every start of a program that imports this module; docs/benchmark.md, session 15)
const OptionalStr = Schema.optional(Str)
const OptionalNum = Schema.optional(Num)

const caseInsensitive = <Fields extends Schema.Struct.Fields>(fields: Fields) => {
  const struct = Schema.Struct(fields)
  const canonical = new Map(Object.keys(fields).map((k) => [k.toLowerCase(), k]))
  return Schema.transformOrFail(
    Schema.Record({ key: Schema.String, value: Schema.Unknown }),
    Schema.typeSchema(struct),
    {
      strict: false,
      decode: (input, options, ast) => {
        const out: Record<string, unknown> = {}
        for (const [key, value] of Object.entries(input)) {
          const name = canonical.get(key.toLowerCase())
          // null is how Gson/rapidjson would spell "absent"; keep the first spelling of a key
          if (name !== undefined && value !== null && !(name in out)) out[name] = value
        }
        return ParseResult.decodeUnknown(struct)(out, options).pipe(
          ParseResult.mapError((issue) => new ParseResult.Transformation(ast, input, "Transformation", issue))
        )
      },
      encode: (value) => ParseResult.succeed(value as Record<string, unknown>)
    }
  )
}

/** The keys shared by stream-load and transaction replies (both parsed case-insensitively). */
const loadFields = {
  Status: OptionalStr,
  Message: OptionalStr,
  Msg: OptionalStr,
  TxnId: OptionalNum,
  Label: OptionalStr,
  ExistingJobStatus: OptionalStr,
  NumberTotalRows: OptionalNum,
  NumberLoadedRows: OptionalNum,
  NumberFilteredRows: OptionalNum,
  NumberUnselectedRows: OptionalNum,
  LoadBytes: OptionalNum,
  ErrorURL: OptionalStr
}

const streamLoadFields = { ...loadFields, RejectedRecordPath: OptionalStr }

/**
 * BE `_stream_load` reply (and the FE's `FAILED` replies, which share `Status`/`Message`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const StreamLoadBody = caseInsensitive(streamLoadFields)

/**
 * @since 0.1.0
 * @category models
 */
export type StreamLoadBody = typeof StreamLoadBody.Type

/**
 * Transaction interface reply: FE (`OK|FAILED|LABEL_ALREADY_EXISTS`, 2-space JSON) or BE (thrift status-code
 * name, 4-space JSON).
 *
 * @since 0.1.0
 * @category schemas
 */
export const TransactionBody = caseInsensitive(loadFields)

/**
 * @since 0.1.0
 * @category models
 */
export type TransactionBody = typeof TransactionBody.Type

/**
 * `GET /api/{db}/get_load_state?label=` reply, old (`state,status,msg`) and new
 * (`state,reason,status,code,msg,message`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const GetLoadStateBody = caseInsensitive({
  State: OptionalStr,
  Status: OptionalStr,
  Msg: OptionalStr,
  Message: OptionalStr,
  Code: OptionalStr,
  Reason: OptionalStr
})

/**
 * @since 0.1.0
 * @category models
 */
export type GetLoadStateBody = typeof GetLoadStateBody.Type

/**
 * FE `RestBaseResult` (401 and 500 replies), old `{status,msg}` and new `{status,code,msg,message}`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RestResultBody = caseInsensitive({
  Status: OptionalStr,
  Code: OptionalStr,
  Msg: OptionalStr,
  Message: OptionalStr
})

/**
 * @since 0.1.0
 * @category models
 */
export type RestResultBody = typeof RestResultBody.Type

/**
 * Parses a body text into a JSON object, or `undefined` when it is not one.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseJsonObject = (text: string): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined
  } catch {
    return undefined
  }
}

const toObject = (body: unknown): Record<string, unknown> | undefined =>
  typeof body === "string"
    ? parseJsonObject(body)
    : typeof body === "object" && body !== null && !Array.isArray(body)
    ? body as Record<string, unknown>
    : undefined

/**
 * Every `*TimeMs` key of a body (`LoadTimeMs`, `StreamLoadPlanTimeMs`, the old `StreamLoadPutTimeMs`, …).
 *
 * @since 0.1.0
 * @category parsing
 */
export const timings = (body: unknown): Record<string, number> => {
  const object = toObject(body)
  const out: Record<string, number> = {}
  if (object === undefined) return out
  for (const [key, value] of Object.entries(object)) {
    if (!/timems$/i.test(key)) continue
    const n = typeof value === "number" ? value : typeof value === "string" ? Number(value) : NaN
    if (Number.isFinite(n)) out[key] = n
  }
  return out
}

/**
 * Decodes a get_load_state body (text or object).
 *
 * @since 0.1.0
 * @category parsing
 */
export const decodeLoadState = (body: unknown): Either.Either<GetLoadStateBody, string> => {
  const object = toObject(body)
  if (object === undefined) return Either.left("get_load_state body is not a JSON object")
  return Schema.decodeUnknownEither(GetLoadStateBody)(object).pipe(
    Either.mapLeft((e) => `get_load_state body: ${e.message}`)
  )
}

// ---------------------------------------------------------------------------------------------------------------
// Outcome
// ---------------------------------------------------------------------------------------------------------------

/**
 * What the body of a FINISHED/RUNNING duplicate label said. `unknown`: the new-FE form (`Fail` + `has already been
 * used`), an empty `ExistingJobStatus` (transaction begin on the same BE) or anything else: ask get_load_state.
 *
 * @since 0.1.0
 * @category models
 */
export type ExistingJobStatus = "FINISHED" | "RUNNING" | "unknown"

/**
 * The classification of one HTTP exchange.
 *
 * - `Success`: `Success` / `OK` (data committed, or the transaction step done).
 * - `PublishTimeout`: committed, visible later. A success: do not re-send.
 * - `LabelExists`: the label is held by another transaction.
 * - `Retryable`: nothing committed; retry under the same label after a backoff.
 * - `Permanent`: retrying cannot help (data, auth, configuration, unknown status).
 * - `InDoubt`: the commit RPC failed, the outcome is unknown; ask get_load_state first.
 * - `Unauthorized`: 401/403 or an access-denied body.
 * - `Redirect`: a 3xx with a Location (the transport follows these by hand).
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = Data.TaggedEnum<{
  Success: { readonly status: string; readonly message: string; readonly body: StreamLoadBody }
  PublishTimeout: { readonly status: string; readonly message: string; readonly body: StreamLoadBody }
  LabelExists: {
    readonly status: string
    readonly message: string
    readonly existingJobStatus: ExistingJobStatus
    readonly body: StreamLoadBody
  }
  Retryable: {
    readonly reason: string
    readonly status: string
    readonly message: string
    readonly body: StreamLoadBody | undefined
  }
  Permanent: {
    readonly reason: string
    readonly status: string
    readonly message: string
    readonly body: StreamLoadBody | undefined
  }
  InDoubt: { readonly reason: string; readonly status: string; readonly message: string; readonly body: StreamLoadBody }
  Unauthorized: { readonly status: string; readonly message: string; readonly httpStatus: number }
  Redirect: { readonly location: string; readonly httpStatus: number }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const Outcome = Data.taggedEnum<Outcome>()

type Rule = readonly [RegExp, string]

/** Auth problems inside a 200 body (direct-to-BE bad password, missing header, no INSERT privilege). */
const authRules: ReadonlyArray<Rule> = [
  [/access denied/i, "access denied"],
  [/need auth information/i, "no auth information"],
  [/no valid basic authorization/i, "no valid basic authorization"],
  [/missing basic authorization/i, "missing basic authorization"]
]

/**
 * Messages of failures that the same request cannot get past (StarRocks' own error texts plus the Flink
 * connector's non-retryable keyword list): classified `Permanent`. What follows from a classification (retry,
 * replay, settle, fail) is decided by `RetryPolicy.decide`, not here.
 */
const permanentRules: ReadonlyArray<Rule> = [
  [/too many filtered rows/i, "too many filtered rows"],
  [/primary key size exceed the limit/i, "primary key size exceed the limit"],
  [/only primary key table support partial update/i, "partial update needs a primary key table"],
  [/unknown database/i, "unknown database"],
  [/unknown table/i, "unknown table"],
  [/label format error/i, "label format error"],
  [/no database selected/i, "no database selected"],
  [/no table selected/i, "no table selected"],
  [/empty label/i, "empty label"],
  [/no label selected/i, "no label selected"],
  [/there is no 100-continue header/i, "missing Expect: 100-continue"],
  [/unknown data format/i, "unknown data format"],
  [/invalid timeout/i, "invalid timeout"],
  [/invalid .*format/i, "invalid header format"],
  [/must be (equal or )?greater than/i, "invalid header value"],
  [/only one of http header content-encoding and compression/i, "conflicting compression headers"],
  [/unsupported compression type|unknown compress type|unsupported compression algorithm/i, "unsupported compression"],
  // the BE's decompressors (stream_compression.cpp, compressed_input_stream.cpp): the same bytes fail again
  [
    /failed to inflate|zstd decompress failed|lz4f_getframeinfo error|lz4 header size is between|^decompression error|failed to decompress\. input_len|failed to bz2 decompress|snappy .*data corruption/i,
    "corrupt compressed body"
  ],
  [/illegal json/i, "illegal json"],
  [/max size \[\d+\]\s+of json type data/i, "json batch too large"],
  [/exceed limit: \d+.*streaming_load_max_mb/is, "body too large"],
  [/all partitions have no load data|no partitions have data available/i, "empty load"],
  [/unknown transaction operation/i, "unknown transaction operation"],
  [/unsupport transaction operation/i, "unsupported transaction operation"],
  [/multi-statement transaction requests/i, "multi-statement transaction on a BE"],
  [/load request not equal last/i, "transaction load headers differ"],
  [/hasn't send any data yet/i, "transaction without data"],
  [/can ?not (commit|abort)|cannot (commit|abort)/i, "transaction in a final state"],
  [/no transaction found|can't find the transaction/i, "transaction not found"],
  [/transaction with label .* not exists/i, "transaction not found"],
  [/not equal transaction database|transaction db .* not match|not equal transaction table/i, "db/table mismatch"],
  [/invalid prepared_timeout/i, "invalid prepared_timeout"],
  [/data size exceeds quota/i, "database quota exceeded"],
  [/not implemented/i, "not implemented"]
]

/** Messages of transient failures (the cluster busy, a node down, a timeout): classified `Retryable`. */
const retryableRules: ReadonlyArray<Rule> = [
  [/no backend alive/i, "no backend alive"],
  [/too many versions|too many tablet versions/i, "too many versions"],
  [/memory of .*exceed|mem usage has exceed|memory limit|exceed.*mem.*limit|mem_limit_exceeded/i, "memory limit"],
  [/transaction in processing/i, "transaction in processing"],
  [/timeout by txn manager/i, "load timeout"],
  [/service is shutting down/i, "service shutting down"],
  [/exceed http c[u]?[o]?ncurrent limit|exceed http cuncurrent limit/i, "http concurrency limit"],
  [/current fe is not master/i, "fe leader moved"],
  [/has no node/i, "fe leader moved"],
  [/current running txns on db/i, "too many running transactions"],
  [/streamload txn num per be exceeds limit/i, "too many transactions on a backend"],
  [/cancelled|canceled/i, "cancelled"],
  [/timed? ?out/i, "timeout"]
]

const labelUsed = /label \[.*\] has already been used|has already been used/i
const inDoubt = /transaction status unknown|you can retry with same label/i

const match = (rules: ReadonlyArray<Rule>, message: string): string | undefined => {
  for (const [re, reason] of rules) if (re.test(message)) return reason
  return undefined
}

const existing = (value: string | undefined): ExistingJobStatus => {
  const v = (value ?? "").trim().toUpperCase()
  return v === "FINISHED" ? "FINISHED" : v === "RUNNING" ? "RUNNING" : "unknown"
}

const httpReason = (httpStatus: number): string => `HTTP ${httpStatus}`

/**
 * Classifies the message of a failure status (`Fail`, `FAILED`, `INTERNAL_ERROR`, …). `fallback` decides an
 * unrecognised message.
 */
const classifyFailure = (
  status: string,
  message: string,
  body: StreamLoadBody,
  fallback: "Retryable" | "Permanent",
  httpStatus: number
): Outcome => {
  if (labelUsed.test(message)) {
    return Outcome.LabelExists({ status, message, existingJobStatus: existing(body.ExistingJobStatus), body })
  }
  if (inDoubt.test(message)) return Outcome.InDoubt({ reason: "commit outcome unknown", status, message, body })
  if (match(authRules, message) !== undefined) return Outcome.Unauthorized({ status, message, httpStatus })
  const permanent = match(permanentRules, message)
  if (permanent !== undefined) return Outcome.Permanent({ reason: permanent, status, message, body })
  const retryable = match(retryableRules, message)
  if (retryable !== undefined) return Outcome.Retryable({ reason: retryable, status, message, body })
  return fallback === "Retryable"
    ? Outcome.Retryable({ reason: `${status}: unrecognised message`, status, message, body })
    : Outcome.Permanent({ reason: `${status}: unrecognised message`, status, message, body })
}

/** The JSON type a field of `StreamLoadBody` takes as it is: a `Num` a number, a `Str` a string; other kinds none. */
const jsonTypeOf = (field: unknown): "number" | "string" | undefined => {
  const from = (field as { readonly from?: unknown }).from
  return from === Num ? "number" : from === Str ? "string" : undefined
}
/** `StreamLoadBody`'s fields in declaration order (the order of its decoded objects' keys). */
const streamLoadKeys = Object.keys(streamLoadFields)
const streamLoadCanonical = new Map(
  streamLoadKeys.map((name, i) =>
    [name.toLowerCase(), { i, type: jsonTypeOf(streamLoadFields[name as keyof typeof streamLoadFields]) }] as const
  )
)

/**
 * What `StreamLoadBody` decodes a parsed JSON object to, without the schema, for the replies every load gets: each
 * key known (case-insensitively, first non-null spelling kept, null dropped) holding a number where the field is a
 * `Num` or a string where it is a `Str`. Undefined for any other shape (a numeric string, a number where a string is
 * expected, a boolean, an object...): the schema decodes those (`decodeStreamLoadBody`). Same object, same key order
 * as the schema's (test/StreamLoadResponse.test.ts compares the two on random bodies).
 */
const fastStreamLoadBody = (object: Record<string, unknown>): StreamLoadBody | undefined => {
  const values: Array<unknown> = new Array(streamLoadKeys.length)
  let found = 0
  for (const key of Object.keys(object)) {
    const known = streamLoadCanonical.get(key.toLowerCase())
    if (known === undefined) continue
    const value = object[key]
    if (value === null || values[known.i] !== undefined) continue
    if (known.type === undefined || typeof value !== known.type) return undefined
    values[known.i] = value
    found++
  }
  const out: Record<string, unknown> = {}
  if (found > 0) {
    for (let i = 0; i < values.length; i++) if (values[i] !== undefined) out[streamLoadKeys[i]!] = values[i]
  }
  return out as StreamLoadBody
}

/**
 * A parsed stream-load reply decoded as `StreamLoadBody` would (undefined where it fails), the common shapes without
 * running the schema (measured: 8 µs a reply through the schema, about 1 µs without).
 * @internal
 */
export const decodeStreamLoadBody = (object: Record<string, unknown>): StreamLoadBody | undefined =>
  fastStreamLoadBody(object) ?? Either.getOrUndefined(Schema.decodeUnknownEither(StreamLoadBody)(object))

/**
 * Classifies one HTTP reply of a load endpoint: `_stream_load` (FE or BE), `/api/transaction/*` (FE or BE).
 * `body` is the body text or an already-parsed object; `location` the `Location` header of a 3xx.
 *
 * | reply | Outcome |
 * | --- | --- |
 * | 3xx + Location | Redirect |
 * | 401 / 403 | Unauthorized |
 * | 408 / 429 / 5xx | Retryable |
 * | other non-2xx | Permanent |
 * | `Success`, `OK` | Success |
 * | `Publish Timeout`, `PUBLISH_TIMEOUT` | PublishTimeout |
 * | `Label Already Exists`, `LABEL_ALREADY_EXISTS` | LabelExists (ExistingJobStatus) |
 * | `Fail`, `FAILED`, `INTERNAL_ERROR`, `ANALYSIS_ERROR`, … | by message: `has already been used` → LabelExists unknown, `Transaction status unknown` → InDoubt, access denied → Unauthorized, this module's keyword lists → Permanent/Retryable, otherwise Retryable |
 * | `TXN_IN_PROCESSING`, `MEM_LIMIT_EXCEEDED`, `SERVICE_UNAVAILABLE`, `TIMEOUT` | Retryable |
 * | `TXN_NOT_EXISTS`, `ABORTED`, `INVALID_ARGUMENT`, `DATA_QUALITY_ERROR`, `NOT_FOUND` | Permanent |
 * | any other status, no status, not JSON | Permanent (never success) |
 *
 * @since 0.1.0
 * @category classification
 */
export const classify = (httpStatus: number, body: unknown, location?: string | undefined): Outcome =>
  classifyWith(httpStatus, body, location, decodeStreamLoadBody)

/**
 * `classify` with every reply decoded by the `StreamLoadBody` schema itself (what `classify` must match).
 * @internal
 */
export const classifyBySchema = (httpStatus: number, body: unknown, location?: string | undefined): Outcome =>
  classifyWith(
    httpStatus,
    body,
    location,
    (object) => Either.getOrUndefined(Schema.decodeUnknownEither(StreamLoadBody)(object))
  )

const classifyWith = (
  httpStatus: number,
  body: unknown,
  location: string | undefined,
  decode: (object: Record<string, unknown>) => StreamLoadBody | undefined
): Outcome => {
  const object = toObject(body)
  const decoded = object === undefined ? undefined : decode(object)
  const status = decoded?.Status ?? ""
  const message = decoded?.Message ?? decoded?.Msg ?? (typeof body === "string" ? body.slice(0, 500) : "")

  if (httpStatus >= 300 && httpStatus < 400) {
    return location !== undefined && location.length > 0
      ? Outcome.Redirect({ location, httpStatus })
      : Outcome.Permanent({ reason: `${httpReason(httpStatus)} without Location`, status, message, body: decoded })
  }
  if (httpStatus === 401 || httpStatus === 403) {
    return Outcome.Unauthorized({ status: status || httpReason(httpStatus), message, httpStatus })
  }
  if (httpStatus === 408 || httpStatus === 429 || (httpStatus >= 500 && httpStatus < 600)) {
    return Outcome.Retryable({ reason: httpReason(httpStatus), status, message, body: decoded })
  }
  if (httpStatus < 200 || httpStatus >= 300) {
    return Outcome.Permanent({ reason: httpReason(httpStatus), status, message, body: decoded })
  }
  if (decoded === undefined) {
    return Outcome.Permanent({
      reason: object === undefined ? "response body is not a JSON object" : "unrecognised response body",
      status,
      message,
      body: undefined
    })
  }
  if (decoded.Status === undefined) {
    return Outcome.Permanent({ reason: "response body without Status", status, message, body: decoded })
  }
  const normalized = status.trim().toUpperCase().replace(/[\s-]+/g, "_")
  switch (normalized) {
    case "SUCCESS":
    case "OK":
      return Outcome.Success({ status, message, body: decoded })
    case "PUBLISH_TIMEOUT":
      return Outcome.PublishTimeout({ status, message, body: decoded })
    case "LABEL_ALREADY_EXISTS":
      return Outcome.LabelExists({
        status,
        message,
        existingJobStatus: existing(decoded.ExistingJobStatus),
        body: decoded
      })
    case "FAIL":
    case "FAILED":
    case "INTERNAL_ERROR":
    case "ANALYSIS_ERROR":
    case "RUNTIME_ERROR":
      return classifyFailure(status, message, decoded, "Retryable", httpStatus)
    case "TXN_IN_PROCESSING":
      return Outcome.Retryable({ reason: "transaction in processing", status, message, body: decoded })
    case "MEM_LIMIT_EXCEEDED":
      return Outcome.Retryable({ reason: "memory limit", status, message, body: decoded })
    case "SERVICE_UNAVAILABLE":
      return Outcome.Retryable({ reason: "service unavailable", status, message, body: decoded })
    case "TIMEOUT":
      return Outcome.Retryable({ reason: "timeout", status, message, body: decoded })
    case "TXN_NOT_EXISTS":
      return Outcome.Permanent({ reason: "transaction not found", status, message, body: decoded })
    case "ABORTED":
      return Outcome.Permanent({ reason: "transaction aborted", status, message, body: decoded })
    case "INVALID_ARGUMENT":
    case "DATA_QUALITY_ERROR":
    case "NOT_FOUND":
    case "NOT_IMPLEMENTED_ERROR":
      return classifyFailure(status, message, decoded, "Permanent", httpStatus)
    default:
      return Outcome.Permanent({ reason: `unknown status ${JSON.stringify(status)}`, status, message, body: decoded })
  }
}

/**
 * Whether an outcome means the data is committed (or the transaction step is done).
 *
 * @since 0.1.0
 * @category predicates
 */
export const isSuccess = (outcome: Outcome): boolean =>
  outcome._tag === "Success" || outcome._tag === "PublishTimeout" ||
  (outcome._tag === "LabelExists" && outcome.existingJobStatus === "FINISHED")
