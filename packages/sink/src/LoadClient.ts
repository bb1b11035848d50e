/**
 * The HTTP load client: plain Stream Load, `get_load_state` and the transaction interface over node:http, for any
 * table: every request names its database, table and label.
 *
 * The client is built from small stages, each in its own module under `internal/client/`: `transport` (one HTTP
 * exchange, redirects followed by hand) → `failover` (the load URLs, health-tracked) → the operations
 * (`streamLoad`, `transaction`, `loadState`, `errorLog`), which classify each reply once
 * (`StreamLoadResponse.classify`) and leave every retry decision to `retryLogic`.
 *
 * ```ts
 * import { Effect } from "effect"
 * import { LoadClient, StarRocksConfig } from "@effect-starrocks/sink"
 *
 * declare const config: StarRocksConfig.StarRocksConfig
 * const body = new TextEncoder().encode("1,a\n")
 * const program = Effect.gen(function*() {
 *   const client = yield* LoadClient.LoadClient
 *   return yield* client.loadBatch({
 *     database: "db",
 *     table: "orders",
 *     label: "orders-1",
 *     headers: { format: "csv", column_separator: "," },
 *     body: { chunks: [body], byteLength: body.byteLength }
 *   })
 * }).pipe(Effect.provide(LoadClient.layer(config)))
 * ```
 *
 * @since 0.1.0
 */
import type { FiberRef, Scope } from "effect"
import { Context, Effect, Layer } from "effect"
import * as InternalBackoff from "./internal/client/backoff.js"
import * as Connection from "./internal/client/connection.js"
import * as ErrorLog from "./internal/client/errorLog.js"
import * as LoadStates from "./internal/client/loadState.js"
import type {
  ConnectionConfig,
  EndpointStatus,
  LoadClientOptions,
  LoadRequest,
  LoadResult,
  LoadState,
  LoadStateRequest,
  Target,
  TransactionRequest,
  TransactionResult
} from "./internal/client/model.js"
import * as StreamLoad from "./internal/client/streamLoad.js"
import * as Transaction from "./internal/client/transaction.js"
import * as Startup from "./internal/startup.js"
import type { LoadBody } from "./LoadBody.js"
import type { LoadError, StartupCheckError } from "./StarRocksError.js"

export type {
  /**
   * @since 0.1.0
   * @category models
   */
  LoadBody
} from "./LoadBody.js"

export type {
  /**
   * @since 0.1.0
   * @category models
   */
  ConnectionConfig,
  /**
   * @since 0.1.0
   * @category models
   */
  EndpointStatus,
  /**
   * @since 0.1.0
   * @category models
   */
  LoadClientOptions,
  /**
   * @since 0.1.0
   * @category models
   */
  LoadRequest,
  /**
   * @since 0.1.0
   * @category models
   */
  LoadResult,
  /**
   * @since 0.1.0
   * @category models
   */
  LoadState,
  /**
   * @since 0.1.0
   * @category models
   */
  LoadStateRequest,
  /**
   * @since 0.1.0
   * @category models
   */
  Target,
  /**
   * @since 0.1.0
   * @category models
   */
  TransactionOperation,
  /**
   * @since 0.1.0
   * @category models
   */
  TransactionRequest,
  /**
   * @since 0.1.0
   * @category models
   */
  TransactionResult
} from "./internal/client/model.js"

/**
 * @since 0.1.0
 * @category models
 * @deprecated Use `LoadState` (`LabelStore.LabelState` is the sink's own record state).
 */
export type LabelState = LoadState

/**
 * One operation, one logical HTTP exchange: the FE hop(s) and the 307 redirect(s) are followed by hand (same
 * headers incl. Authorization, `Expect: 100-continue`, replayable body), across the configured load URLs with
 * health-tracked failover. The outcome is classified exhaustively; whether a failure is retried, replayed into a
 * new transaction, settled through `get_load_state` or final is decided in one place (`RetryPolicy.decide`).
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
  /**
   * `getLoadState` with the reason the FE gives for an ABORTED label (`timeout by txn manager`, `User Aborted`, …;
   * newer FEs only, else `undefined`).
   */
  readonly getLoadStateDetail: (
    request: LoadStateRequest
  ) => Effect.Effect<{ readonly state: LoadState; readonly reason: string | undefined }, LoadError>
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
  /**
   * Every entry of a load's `ErrorURL` (the rows StarRocks filtered: reason, row text, column), fetched with Basic
   * auth, row data redacted under `sanitizeErrorLog`; never fails (`unavailable` says why nothing was read). Read
   * by the dead letter (`DeadLetter`); a client without it gives the dead letter the filtered counts only.
   */
  readonly errorLogEntries?: ((errorUrl: string) => Effect.Effect<ErrorLogEntries>) | undefined
  /**
   * The startup check of a table: one `GET /api/{db}/{table}/_schema` on the first FE that answers tells whether an
   * FE answers, the credentials work and the table exists (`StartupCheckError`). Optional: a client without it
   * (a test double) is not checked.
   */
  readonly checkTable?: ((target: Target) => Effect.Effect<void, StartupCheckError>) | undefined
  /**
   * Compresses a load's body once, before its first attempt, when its headers name a codec (`compression`:
   * `lz4_frame`, `gzip`, `zstd`): the request returned carries the frame as its body and `compressed` set, and
   * `loadBatch`, `loadTransactional` and `loadTxn` send it as it is, on every attempt. Any other request comes back
   * as it is. Each chunk of the raw body is handed to `release` (at most once) as soon as the codec no longer needs
   * it, so the caller must not read the raw body again; the sink gives its buffers back to the encoder's pool so,
   * and counts the frame instead of the raw bytes in its byte budget. Optional: without it (a test double, a client
   * of your own) the sink sends raw bodies and the client compresses them as the `compression` header asks.
   */
  readonly compress?:
    | ((request: LoadRequest, release?: (body: LoadBody) => void) => Effect.Effect<LoadRequest, LoadError>)
    | undefined
}

/**
 * The entries of a load's error log (`LoadClient.errorLogEntries`).
 *
 * @since 0.3.0
 * @category models
 */
export interface ErrorLogEntries extends ErrorLog.Entries {}

/**
 * @since 0.1.0
 * @category tags
 */
export const LoadClient: Context.Tag<LoadClient, LoadClient> = Context.GenericTag<LoadClient>(
  "@effect-starrocks/sink/LoadClient"
)

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
  Effect.map(Connection.make(config, options), (connection) => {
    const getLoadState = (request: LoadStateRequest) => LoadStates.get(connection, request)
    const begin = (request: TransactionRequest) => Transaction.call(connection, "begin", request, undefined)
    const loadTxn = (request: LoadRequest) => Transaction.call(connection, "load", request, request.body)
    const commit = (request: TransactionRequest) => Transaction.call(connection, "commit", request, undefined)
    const rollback = (request: TransactionRequest) => Transaction.call(connection, "rollback", request, undefined)
    const calls = { begin, loadTxn, commit, rollback, getLoadState }
    return LoadClient.of({
      loadBatch: (request) => StreamLoad.load(connection, request),
      loadTransactional: (request) => Transaction.loadTransactional(connection, calls, request),
      getLoadState,
      getLoadStateDetail: (request) => LoadStates.getDetail(connection, request),
      begin,
      loadTxn,
      prepare: (request) => Transaction.call(connection, "prepare", request, undefined),
      commit,
      rollback,
      endpointStatus: Effect.map(
        Effect.all([connection.fes.status, connection.directBes?.status ?? Effect.succeed([])]),
        ([a, b]) => [...a, ...b]
      ),
      supportsTransactions: (target) => Transaction.probe(connection, target),
      errorLogEntries: (errorUrl) => ErrorLog.fetchEntries(connection, errorUrl),
      checkTable: (target) => Startup.checkTable(connection, target),
      compress: StreamLoad.compress
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
 * Runs the wait between two attempts of a request (the sleep of a retry's backoff): the identity by default.
 * Every retry of the client made by `make` sleeps through it. The sink sets it around each load to give the load's
 * in-flight slot back while the load waits, so that a table whose loads are being retried does not stall the
 * others; a LoadClient of your own that retries should sleep through it too (as the client does:
 * `FiberRef.get(currentBackoff)`, then the hook applied to the sleep).
 *
 * @since 0.1.0
 * @category models
 */
export type Backoff = InternalBackoff.Backoff

/**
 * @since 0.1.0
 * @category fiber refs
 */
export const currentBackoff: FiberRef.FiberRef<Backoff> = InternalBackoff.currentBackoff

/**
 * Sees the error of each failed attempt of a retried request, before the decision to retry it: nothing by default.
 * The sink sets it around each load when adaptive concurrency is on (`sink.adaptive-concurrency.enabled`), to hear
 * of back pressure ("too many versions", a memory limit, …) while the load is still being retried; every retry of
 * the client made by `make` reports through it. A LoadClient of your own that retries should call it with each
 * failed attempt's error (`FiberRef.get(currentAttemptFailed)`, then the hook applied to the error), else adaptive
 * concurrency sees its round-trip times only.
 *
 * @since 0.3.0
 * @category models
 */
export type AttemptFailed = InternalBackoff.AttemptFailed

/**
 * @since 0.3.0
 * @category fiber refs
 */
export const currentAttemptFailed: FiberRef.FiberRef<AttemptFailed> = InternalBackoff.currentAttemptFailed

/**
 * A LoadClient from the two plain-load operations (test doubles): the other operations die when called
 * (`getLoadStateDetail` reads `getLoadState`, without a reason).
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
    getLoadStateDetail: (request) =>
      Effect.map(client.getLoadState(request), (state) => ({ state, reason: undefined })),
    ...client
  })
}
