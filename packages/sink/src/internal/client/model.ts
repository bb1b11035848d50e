/**
 * The requests and results of the load client (re-exported by `LoadClient`).
 *
 * @internal
 */
import type { Duration, Option, Redacted } from "effect"
import type { LoadBody } from "../../LoadBody.js"

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
   * adds only `label`, Authorization and Expect. It merges no config-level `properties`. With a `compression` header
   * (`lz4_frame`, `gzip`, `zstd`) the client compresses the body itself (give it uncompressed, or the request
   * `LoadClient.compress` returned, marked `compressed`) and, for CSV, sends the compressed-CSV `format` alias too; `Content-Encoding` is sent as it is, for a body compressed by the caller.
   */
  readonly headers: Readonly<Record<string, string>>
  readonly body: LoadBody
  /**
   * Set on the request `LoadClient.compress` returns: `body` is already the one frame of the codec the
   * `compression` header names, sent as it is by every attempt (never compressed again); `rawBytes` is its size
   * before compression. A request marked so without a codec in its `compression` header is an `Invalid`
   * `StreamLoadError`.
   *
   * @since 0.3.0
   */
  readonly compressed?: { readonly rawBytes: number } | undefined
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
  /** TLS of the https load URLs and redirects (StarRocksConfig's `tls`); absent: the system CAs, verified. */
  readonly tls?: TlsConfig | undefined
}

/**
 * TLS settings of the https connections (FEs, BEs, ErrorURL fetches). The private key is `Redacted` and read only
 * when a connection is made.
 *
 * @since 0.2.0
 * @category models
 */
export interface TlsConfig {
  /** Trusted CA certificates (PEM); absent: Node's default CAs. */
  readonly ca?: string | undefined
  /** Client certificate (PEM) for mutual TLS. */
  readonly cert?: string | undefined
  /** Client private key (PEM) for mutual TLS. */
  readonly key?: Redacted.Redacted<string> | undefined
  /** The name sent as SNI and checked against the server certificate (instead of the URL's host). */
  readonly serverName?: string | undefined
  /** Verify the server certificate (default true). */
  readonly verify: boolean
  /** Follow a redirect from https to plain http (default false: refused with a `RedirectError`). */
  readonly allowHttpRedirect: boolean
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
  /**
   * Bytes of the body as sent, when the load was compressed (its `compression` header): the body's own
   * `byteLength` is the size before compression. Absent for an uncompressed load.
   */
  readonly compressedBytes?: number | undefined
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
  /** Bytes of a `load` body as sent, when it was compressed (its `compression` header). */
  readonly compressedBytes?: number | undefined
  readonly retries: number
  readonly hops: ReadonlyArray<string>
  readonly timings: Readonly<Record<string, number>>
  readonly errorUrl?: string | undefined
  readonly labelState?: LoadState | undefined
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
