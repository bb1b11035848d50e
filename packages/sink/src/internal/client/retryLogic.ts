/**
 * The one place that decides what a failure of the load path leads to: `Retry` the same request (same label) after
 * a backoff, `Replay` the data into a new transaction (the failed one is rolled back first), `Settle` the outcome
 * through `get_load_state`, or `Fail` for good.
 *
 * The decision is taken from facts the errors carry, never from a verdict stored beside them: the error's tag,
 * Node's error `code` and whether any body byte left the client (`bodySent`) for a transport failure, the
 * classifier's `outcome` for a Stream Load reply, the `kind`, `operation`, `reason` and settled `labelState` of a
 * transaction call. It depends on no other module of the package (it reads the errors structurally), so the error
 * module can re-export its predicates without an import cycle.
 *
 * | error | operation | decision |
 * | --- | --- | --- |
 * | `AuthError`, `RedirectError`, `LabelStateTimeout` | any | Fail |
 * | `TransportError`, TLS verification or invalid request (`code`) | any but `replay` | Fail |
 * | `TransportError` | `load`, body bytes sent | Replay (the transaction is poisoned) |
 * | `TransportError` | `transactional`, `replay` | Replay |
 * | `TransportError` | other | Retry |
 * | `StreamLoadError` `Permanent` / `Invalid` | any | Fail |
 * | `StreamLoadError` `Retryable` | `transactional`, `replay` | Replay; otherwise Retry |
 * | `StreamLoadError` `InDoubt` / `LabelExists` | `streamLoad` | Settle; `transactional`, `replay` Replay; otherwise Retry |
 * | `TransactionError` `Retryable` | `load` | Retry when the BE was busy (`transaction in processing`), else Replay |
 * | `TransactionError` `Retryable` | `transactional`, `replay` | Replay; otherwise Retry |
 * | `TransactionError` `TxnNotExists` / `Aborted` | `prepare`, `commit`, `rollback`, not yet settled | Settle; otherwise Replay |
 * | `TransactionError` `LabelExists` | `replay` (into a new label) | Replay |
 * | `TransactionError` `LabelExists` / `InDoubt` / `Permanent` | `prepare`, `commit`, `rollback`, not yet settled | Settle; otherwise Fail |
 *
 * Operations: `streamLoad` (plain Stream Load under a label), `loadState` (`get_load_state`), the transaction calls
 * `begin`, `load`, `prepare`, `commit`, `rollback`, `transactional` (begin/load/commit of one batch, replayed under
 * the same label after a rollback) and `replay` (exactly-once: replayed into a new transaction under a new label).
 *
 * @internal
 */

/** @internal */
export type Operation =
  | "streamLoad"
  | "loadState"
  | "begin"
  | "load"
  | "prepare"
  | "commit"
  | "rollback"
  | "transactional"
  | "replay"

/** @internal */
export type Decision = "Retry" | "Replay" | "Settle" | "Fail"

/**
 * The verdict of the response classifier carried by a `StreamLoadError`: `Invalid` for a request refused before
 * anything was sent (label format, body length, header).
 * @internal
 */
export type StreamLoadOutcome = "Retryable" | "Permanent" | "InDoubt" | "LabelExists" | "Invalid"

/**
 * What `decide` reads of an error (every `LoadError` has this shape).
 * @internal
 */
export interface ErrorFacts {
  readonly _tag: string
  /** TransportError: Node's error code. */
  readonly code?: string | undefined
  /** TransportError: whether any body byte left the client. */
  readonly bodySent?: boolean | undefined
  /** StreamLoadError: the classifier's verdict. */
  readonly outcome?: StreamLoadOutcome | undefined
  /** StreamLoadError built without an `outcome` (by hand, in a test double): its `retryable` flag stands in. */
  readonly retryable?: boolean | undefined
  /** TransactionError: the classification and the call. */
  readonly kind?: string | undefined
  readonly operation?: string | undefined
  readonly reason?: string | undefined
  /** TransactionError: the label state read while settling (set once settled). */
  readonly labelState?: string | undefined
}

/** TLS verification failures and invalid requests: retrying cannot help. */
const permanentCodes =
  /^(ERR_TLS_CERT_ALTNAME_INVALID|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|CERT_REVOKED|ERR_INVALID_.*|ERR_UNESCAPED_CHARACTERS)$/

/**
 * Whether a transport failure with this Node error code is one a retry cannot fix (TLS verification, an invalid
 * request).
 * @internal
 */
export const isPermanentCode = (code: string | undefined): boolean => code !== undefined && permanentCodes.test(code)

/** The BE's "busy" answer to `transaction/load`: no byte of the body was taken, the same call may be sent again. */
const BUSY = "transaction in processing"

const settles = (operation: Operation): boolean =>
  operation === "prepare" || operation === "commit" || operation === "rollback"

const replays = (operation: Operation): boolean => operation === "transactional" || operation === "replay"

/**
 * What the failure `error` of `operation` leads to.
 * @internal
 */
export const decide = (operation: Operation, error: ErrorFacts): Decision => {
  switch (error._tag) {
    case "TransportError": {
      if (isPermanentCode(error.code) || (error.retryable === false && error.code === undefined)) {
        return operation === "replay" ? "Replay" : "Fail"
      }
      if (operation === "load") return error.bodySent === true ? "Replay" : "Retry"
      return replays(operation) ? "Replay" : "Retry"
    }
    case "StreamLoadError": {
      const outcome = error.outcome ?? (error.retryable === true ? "Retryable" : "Permanent")
      switch (outcome) {
        case "Permanent":
        case "Invalid":
          return "Fail"
        case "Retryable":
          return replays(operation) ? "Replay" : "Retry"
        case "InDoubt":
        case "LabelExists":
          return operation === "streamLoad" ? "Settle" : replays(operation) ? "Replay" : "Retry"
      }
      return "Fail"
    }
    case "TransactionError": {
      const unsettled = settles(operation) && error.labelState === undefined
      switch (error.kind) {
        case "Retryable":
          if (operation === "load") return error.reason === BUSY ? "Retry" : "Replay"
          return replays(operation) ? "Replay" : "Retry"
        case "TxnNotExists":
        case "Aborted":
          return unsettled ? "Settle" : "Replay"
        case "LabelExists":
          return unsettled ? "Settle" : operation === "replay" ? "Replay" : "Fail"
        default:
          return unsettled ? "Settle" : "Fail"
      }
    }
    default:
      // AuthError, RedirectError, LabelStateTimeout: a configuration or cluster problem, or an unknown outcome
      return "Fail"
  }
}

/** The operation a failure came from, as far as the error tells. */
const operationOf = (error: ErrorFacts): Operation =>
  error._tag === "TransactionError" && error.operation !== undefined ? error.operation as Operation : "streamLoad"

/**
 * Whether retrying the same request (same label) after a backoff is safe and may succeed.
 * @internal
 */
export const isRetryable = (error: ErrorFacts): boolean => decide(operationOf(error), error) === "Retry"

/**
 * Whether the data of a failed load is worth sending again into a new transaction once the failed one is rolled
 * back: under the same label (`newLabel` false, the at-least-once transaction path), or under a new label
 * (`newLabel` true, exactly-once: then a transport failure of any kind and a label in use count too).
 * @internal
 */
export const isReplayable = (error: ErrorFacts, options?: { readonly newLabel?: boolean | undefined }): boolean =>
  decide(options?.newLabel === true ? "replay" : "transactional", error) === "Replay"

/**
 * The classifier's reasons (`StreamLoadResponse.classify`) that say the cluster is taking more than it can: too
 * many versions of a tablet (loads come faster than compaction merges them), a BE busy with the transaction
 * (TXN_IN_PROCESSING), a memory limit, a load or request timeout, too many transactions running.
 */
const backPressureReasons: ReadonlySet<string> = new Set([
  "too many versions",
  "transaction in processing",
  "memory limit",
  "load timeout",
  "timeout",
  "too many running transactions",
  "too many transactions on a backend",
  "http concurrency limit"
])

/**
 * Whether a failed attempt tells that the cluster is overloaded, so that fewer loads in flight would help (the
 * signal of adaptive concurrency, internal/sink/adaptive.ts): a Stream Load or transaction reply the classifier
 * gave one of the reasons above, or a transport failure by timeout (`ETIMEDOUT`). Read from the error's facts,
 * as `decide` does.
 * @internal
 */
export const isBackPressure = (error: ErrorFacts): boolean => {
  switch (error._tag) {
    case "TransportError":
      return error.code === "ETIMEDOUT"
    case "StreamLoadError":
    case "TransactionError":
      return error.reason !== undefined && backPressureReasons.has(error.reason)
    default:
      return false
  }
}
