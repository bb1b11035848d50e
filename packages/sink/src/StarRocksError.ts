/**
 * Errors of the load path. Every error is a `Schema.TaggedError`, so it can be logged as JSON or stored in a
 * checkpoint. None of them ever carries the password or the `Authorization` header: the header is built at the
 * HTTP call site only and never copied into an error, a log line or a URL.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import type { CheckpointerError } from "./Checkpointer.js"
import type { DeadLetterError } from "./DeadLetter.js"
import * as RetryLogic from "./internal/client/retryLogic.js"
import * as InternalLanded from "./internal/landed.js"
import type { LabelStoreError } from "./LabelStore.js"
import type { RowEncodeError } from "./RowEncodeError.js"
import type { StarRocksConfigError } from "./StarRocksConfig.js"
import type { TableSchemaError } from "./TableSchema.js"

// The optional fields the classes below share: one schema value each, not one a field (a schema value is a few kB
// made at every start of a program that imports this module; docs/benchmark.md, session 15)
const OptionalString = Schema.optional(Schema.String)
const OptionalNumber = Schema.optional(Schema.Number)
const OptionalBoolean = Schema.optional(Schema.Boolean)
const OptionalLanded = Schema.optional(InternalLanded.Landed)

/**
 * A network-level failure: connection refused/reset, a timeout (connect, wait-for-continue, socket), an
 * HTTP exchange that could not be completed. Retried, unless `code` says a retry cannot help (TLS verification);
 * a transaction load that sent body bytes is replayed into a new transaction instead.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  /** The table (`db.table`) the sink was loading into; set by the sink, absent on the client's own errors. */
  table: OptionalString,
  /** What had landed when the at-least-once sink failed with this error (set by the sink: `Landed`). */
  landed: OptionalLanded,
  url: Schema.String,
  reason: Schema.String,
  /** Node's error code when there is one (`ECONNREFUSED`, `ECONNRESET`, `ETIMEDOUT`, …). */
  code: OptionalString,
  /** Where it failed: `connect`, `continue` (waiting for 100 Continue), `send` (body), `response`. */
  phase: Schema.optional(Schema.Literal("connect", "continue", "send", "response")),
  /** 0 for the first hop (the load URL), 1 for the host the first redirect pointed to, … */
  hop: OptionalNumber,
  /** Whether any body byte left the client (a transaction load that sent bytes cannot be replayed as is). */
  bodySent: OptionalBoolean,
  /**
   * false for failures that a retry cannot fix (a TLS certificate that does not verify, an invalid request): a
   * summary of `code` for the reader; `isRetryable` decides from the facts.
   */
  retryable: OptionalBoolean
}) {
  override get message(): string {
    return `${this.phase ?? "transport"} error on ${this.url}: ${this.reason}${InternalLanded.suffix(this.landed)}`
  }
}

/**
 * A redirect that must not be followed: more hops than `maxRedirects`, an https→http downgrade, a missing or
 * malformed `Location`. Not retryable (a configuration or cluster problem).
 *
 * @since 0.1.0
 * @category errors
 */
export class RedirectError extends Schema.TaggedError<RedirectError>()("RedirectError", {
  /** The table (`db.table`) the sink was loading into; set by the sink, absent on the client's own errors. */
  table: OptionalString,
  /** What had landed when the at-least-once sink failed with this error (set by the sink: `Landed`). */
  landed: OptionalLanded,
  url: Schema.String,
  location: OptionalString,
  reason: Schema.String,
  hops: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `redirect refused at ${this.url}: ${this.reason}${InternalLanded.suffix(this.landed)}`
  }
}

/**
 * A Stream Load (or `get_load_state`) that the server answered with a failure, or a request refused before it was
 * sent. `status` and `message` are the server's `Status` and `Message`; `outcome` is the classifier's verdict
 * (`Retryable`, `Permanent`, `InDoubt`, `LabelExists`, or `Invalid` for a request refused before sending), from which
 * the retry decision is taken; `retryable` states that decision for the reader. `errorLog` holds the first lines of
 * the fetched `ErrorURL` for a permanent failure (row data redacted when `sanitizeErrorLog` is set).
 *
 * @since 0.1.0
 * @category errors
 */
export class StreamLoadError extends Schema.TaggedError<StreamLoadError>()("StreamLoadError", {
  /** The table (`db.table`) the sink was loading into; set by the sink, absent on the client's own errors. */
  table: OptionalString,
  /** What had landed when the at-least-once sink failed with this error (set by the sink: `Landed`). */
  landed: OptionalLanded,
  label: Schema.String,
  status: Schema.String,
  message: Schema.String,
  retryable: Schema.Boolean,
  /** The classifier's verdict (absent on errors built by hand: `retryable` stands in). */
  outcome: Schema.optional(Schema.Literal("Retryable", "Permanent", "InDoubt", "LabelExists", "Invalid")),
  /** The classifier's reason, e.g. `too many filtered rows`, `no backend alive`, `unknown status`. */
  reason: OptionalString,
  httpStatus: OptionalNumber,
  url: OptionalString,
  errorUrl: OptionalString,
  errorLog: OptionalString,
  filteredRows: OptionalNumber,
  txnId: OptionalNumber
}) {}

/**
 * HTTP 401/403, or a body saying `Access denied` / `Need auth information` / `no valid Basic authorization`.
 * Not retryable. Carries the server's message only, never the credentials.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthError extends Schema.TaggedError<AuthError>()("AuthError", {
  /** The table (`db.table`) the sink was loading into; set by the sink, absent on the client's own errors. */
  table: OptionalString,
  /** What had landed when the at-least-once sink failed with this error (set by the sink: `Landed`). */
  landed: OptionalLanded,
  url: Schema.String,
  httpStatus: Schema.Number,
  status: Schema.String,
  message: Schema.String
}) {}

/**
 * A label whose state could not be settled through `get_load_state` within `labelStateTimeout`
 * (still PREPARE/PREPARED/UNKNOWN). The outcome of the load is unknown: not retryable under a new label.
 *
 * @since 0.1.0
 * @category errors
 */
export class LabelStateTimeout extends Schema.TaggedError<LabelStateTimeout>()("LabelStateTimeout", {
  /** The table (`db.table`) the sink was loading into; set by the sink, absent on the client's own errors. */
  table: OptionalString,
  /** What had landed when the at-least-once sink failed with this error (set by the sink: `Landed`). */
  landed: OptionalLanded,
  label: Schema.String,
  lastState: Schema.String,
  waitedMs: Schema.Number
}) {
  override get message(): string {
    return `label ${this.label} still ${this.lastState} after ${this.waitedMs} ms${InternalLanded.suffix(this.landed)}`
  }
}

/**
 * A transaction-interface call (`begin`, `load`, `prepare`, `commit`, `rollback`) that failed.
 * `kind` is the classification: `LabelExists` (with `existingJobStatus`), `Retryable`, `Permanent`, `InDoubt`,
 * `TxnNotExists` (the BE lost or removed the context: start over under a new label), `Aborted`.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransactionError extends Schema.TaggedError<TransactionError>()("TransactionError", {
  /** The table (`db.table`) the sink was loading into; set by the sink, absent on the client's own errors. */
  table: OptionalString,
  /** What had landed when the at-least-once sink failed with this error (set by the sink: `Landed`). */
  landed: OptionalLanded,
  operation: Schema.Literal("begin", "load", "prepare", "commit", "rollback"),
  label: Schema.String,
  status: Schema.String,
  message: Schema.String,
  kind: Schema.Literal("LabelExists", "Retryable", "Permanent", "InDoubt", "TxnNotExists", "Aborted"),
  /** Whether the same call may be sent again, as decided from `operation`, `kind` and `reason` (for the reader). */
  retryable: Schema.Boolean,
  reason: OptionalString,
  existingJobStatus: OptionalString,
  /** The label state read through `get_load_state` when the client tried to verify the outcome. */
  labelState: OptionalString,
  httpStatus: OptionalNumber
}) {}

/**
 * What an at-least-once sink had landed when it failed for good, per table (`db.table`): `upToRow` (every row of
 * the table with a lower stream index landed) and the labels that landed, failed or are in doubt. The sink sets it
 * as the `landed` field of the error it fails with (a load error or a `RowEncodeError`) and ends the error's
 * message with it, after letting the loads sealed before the failure settle.
 *
 * @since 0.3.0
 * @category schemas
 */
export const Landed: Schema.Record$<typeof Schema.String, typeof InternalLanded.TableLanded> = InternalLanded.Landed

/**
 * @since 0.3.0
 * @category models
 */
export type Landed = InternalLanded.Landed

/**
 * @since 0.1.0
 * @category errors
 */
export type LoadError =
  | TransportError
  | RedirectError
  | StreamLoadError
  | AuthError
  | LabelStateTimeout
  | TransactionError

/**
 * @since 0.1.0
 * @category schemas
 */
export const LoadError: Schema.Union<
  [
    typeof TransportError,
    typeof RedirectError,
    typeof StreamLoadError,
    typeof AuthError,
    typeof LabelStateTimeout,
    typeof TransactionError
  ]
> = Schema.Union(TransportError, RedirectError, StreamLoadError, AuthError, LabelStateTimeout, TransactionError)

/**
 * A failure of the exactly-once protocol that is not a plain load error:
 * - `PreparedLost`: a label that the last checkpoint prepared is ABORTED (e.g. `prepared_timeout` passed before
 *   recovery) or no longer known (label retention): that checkpoint's data is not in StarRocks. The message names
 *   the labels, their state, StarRocks' reason and what to do (docs/exactly-once.md, "Restart policy").
 * - `LabelCollision`: a COMMITTED/VISIBLE label at or after the recorded next label id: the label prefix and
 *   instance collide with labels this instance does not own.
 * - `CommitFailed`: a prepared transaction could not be committed (retried and verified; still PREPARED).
 * - `Spool`: the replay spool could not be written or read.
 * - `Unsupported`: a configuration the exactly-once sink does not support.
 * - `Position`: the barrier position could not be encoded or the recorded one decoded.
 * - `Coordinator`: another instance of an aligned checkpoint failed or was interrupted.
 * - `Fenced`: another owner claimed the checkpoint key (`owner` option; docs/exactly-once.md, "Partitions and
 *   fencing"): the checkpoint save was refused, the transactions this owner prepared were rolled back and nothing of
 *   them was committed. `checkpointKey`, `epoch` (this owner's), `currentEpoch` and `currentOwner` say who won.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExactlyOnceError extends Schema.TaggedError<ExactlyOnceError>()("ExactlyOnceError", {
  reason: Schema.Literal(
    "PreparedLost",
    "LabelCollision",
    "CommitFailed",
    "Spool",
    "Unsupported",
    "Position",
    "Coordinator",
    "Fenced"
  ),
  message: Schema.String,
  label: OptionalString,
  labelState: OptionalString,
  /** `PreparedLost`: the table (`db.table`) of `label`. */
  table: OptionalString,
  /** `PreparedLost`: why StarRocks aborted `label`, as it says (`timeout by txn manager`, `User Aborted`, …). */
  serverReason: OptionalString,
  /** `PreparedLost`: every lost label of the checkpoint (`label` is the first); `Fenced`: the labels rolled back. */
  labels: Schema.optional(Schema.Array(Schema.String)),
  /** `Fenced`: the checkpoint key. */
  checkpointKey: OptionalString,
  /** `Fenced`: the owner and epoch of this sink. */
  owner: OptionalString,
  epoch: OptionalNumber,
  /** `Fenced`: the key's current epoch and the owner that claimed it (when known). */
  currentEpoch: OptionalNumber,
  currentOwner: OptionalString
}) {}

/**
 * The at-least-once sink's watchdog (`watchdogTimeout`, `sink.watchdog.timeout-ms`) found rows waiting (sealed
 * batches not landed, or a batch being built past its `sink.buffer-flush.interval-ms`) and no load of their table
 * landed for `timeoutMs`: the sink fails rather than hang. `tables` names each stalled table, how long it has
 * waited (`stalledMs`, since its last landed load or since its rows began to wait, whichever is later) and its rows
 * waiting; `landed` says what landed before (loads still in flight are stopped and their labels settled).
 *
 * @since 0.2.0
 * @category errors
 */
export class StallError extends Schema.TaggedError<StallError>()("StallError", {
  tables: Schema.Array(Schema.Struct({
    /** `db.table` */
    table: Schema.String,
    /** How long no load of this table has landed while its rows waited. */
    stalledMs: Schema.Number,
    /** Rows waiting: in sealed batches not landed, plus a building batch past its flush interval. */
    rowsWaiting: Schema.Number
  })),
  timeoutMs: Schema.Number,
  /** What had landed when the sink failed (set by the sink: `Landed`). */
  landed: OptionalLanded
}) {
  override get message(): string {
    return `no load landed for ${this.timeoutMs} ms while rows waited (sink.watchdog.timeout-ms): ` +
      this.tables.map((t) => `${t.table}: ${t.rowsWaiting} rows waiting for ${t.stalledMs} ms`).join("; ") +
      InternalLanded.suffix(this.landed)
  }
}

/**
 * The startup check (`sink.startup-check`, on by default) found the cluster unfit before the first row: no FE
 * answered (`Unreachable`), the FE refused the credentials (`Unauthorized`), the database or table does not
 * exist (`NoSuchDatabase`, `NoSuchTable`), the table cannot take a Stream Load (`NotLoadable`: a view, an external
 * table), or the address did not answer as a StarRocks FE does (`Unexpected`). `fe` names the FE that answered
 * (or the last one tried); `detail` is the FE's own words. Never carries the password.
 *
 * @since 0.3.0
 * @category errors
 */
export class StartupCheckError extends Schema.TaggedError<StartupCheckError>()("StartupCheckError", {
  reason: Schema.Literal("Unreachable", "Unauthorized", "NoSuchDatabase", "NoSuchTable", "NotLoadable", "Unexpected"),
  /** The FE (`http(s)://host:port`) that answered, or the last one tried. */
  fe: Schema.String,
  database: Schema.String,
  table: Schema.String,
  detail: Schema.String,
  /** Node's error code of an `Unreachable` FE (`ECONNREFUSED`, `SELF_SIGNED_CERT_IN_CHAIN`, …). */
  code: OptionalString
}) {
  override get message(): string {
    const what = {
      Unreachable: "no FE answered",
      Unauthorized: "the FE refused the username or password",
      NoSuchDatabase: `database ${this.database} does not exist`,
      NoSuchTable: `table ${this.database}.${this.table} does not exist`,
      NotLoadable: `table ${this.database}.${this.table} cannot take a Stream Load`,
      Unexpected: "the address did not answer as a StarRocks FE does"
    }[this.reason]
    return `startup check of ${this.database}.${this.table} failed at ${this.fe}: ${what} (${this.detail})`
  }
}

/**
 * A setting that needs a newer StarRocks than the server's (the version from `current_version()` over `jdbc-url`,
 * or `sink.server-version`): refused at start rather than failing mid-stream. `setting` is the option or Stream
 * Load header as the user gave it, `requires` the first version that has it.
 *
 * @since 0.3.0
 * @category errors
 */
export class UnsupportedByServerError extends Schema.TaggedError<UnsupportedByServerError>()(
  "UnsupportedByServerError",
  {
    feature: Schema.String,
    setting: Schema.String,
    requires: Schema.String,
    serverVersion: Schema.String,
    /** `db.table` when the setting is a table's. */
    table: OptionalString
  }
) {
  override get message(): string {
    return `${this.feature} (${this.setting}${this.table !== undefined ? ` of ${this.table}` : ""}) is not ` +
      `supported by StarRocks ${this.serverVersion}: it needs ${this.requires} or later`
  }
}

/**
 * Every error a sink can fail with (re-exported as `StarRocksSink.SinkError`). It lives here, with the errors, so
 * that `Checkpoint`, the exactly-once machinery and `StarRocksSink` all take it from below them.
 *
 * @since 0.2.0
 * @category errors
 */
export type SinkError =
  | LoadError
  | RowEncodeError
  | TableSchemaError
  | LabelStoreError
  | CheckpointerError
  | ExactlyOnceError
  | StallError
  | StarRocksConfigError
  | DeadLetterError
  | StartupCheckError
  | UnsupportedByServerError

/**
 * Whether retrying the same request (same label) after a backoff is safe and may succeed. The decision is taken in
 * one place, `internal/client/retryLogic.ts`, from the facts the error carries.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isRetryable: (error: LoadError) => boolean = RetryLogic.isRetryable

/**
 * Whether the data of a failed load can be sent again into a new transaction once the failed one is rolled back:
 * a retryable error, or a transaction call that poisoned its transaction (`Retryable`, `TxnNotExists`, `Aborted`).
 * With `newLabel` (the replay goes under a new label) a transport failure of any kind and a label in use count too.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isReplayable: (
  error: LoadError,
  options?: { readonly newLabel?: boolean | undefined }
) => boolean = RetryLogic.isReplayable
