/**
 * @since 0.1.0
 */
import type { Duration, Option, Redacted } from "effect"
import { Context } from "effect"

/**
 * The resolved sink configuration. Built by `make` (typed options), `fromProperties` (the Flink connector's keys)
 * or `config` / `layerConfig` (`STARROCKS_*` variables).
 *
 * CONTRACT NOTE: the field names below are used by LoadClient and StarRocksSink; add fields, do not rename.
 *
 * @since 0.1.0
 * @category models
 */
export interface StarRocksConfig {
  /** FE HTTP addresses, `host:port` or `http(s)://host:port` (`load-url`, `;`-separated in properties). */
  readonly loadUrl: ReadonlyArray<string>
  /** FE MySQL-protocol address `host:port` (`jdbc-url`, given as `jdbc:mysql://host:port[/db]`). */
  readonly jdbcUrl: Option.Option<
    { readonly host: string; readonly port: number; readonly database: Option.Option<string> }
  >
  readonly database: string
  readonly table: string
  readonly username: string
  readonly password: Redacted.Redacted<string>
  /** `sink.semantic` */
  readonly semantic: "at-least-once" | "exactly-once"
  /** `sink.version`: AUTO, V1 (label path, plain stream load), V2 (transaction stream load). */
  readonly version: "AUTO" | "V1" | "V2"
  /** `sink.label-prefix` */
  readonly labelPrefix: string
  /** `sink.properties.format` */
  readonly format: "csv" | "json"
  /** `sink.buffer-flush.max-bytes` */
  readonly maxBytes: number
  /** `sink.buffer-flush.max-rows` */
  readonly maxRows: number
  /** `sink.buffer-flush.interval-ms` */
  readonly flushInterval: Duration.Duration
  /** `sink.max-retries` */
  readonly maxRetries: number
  /** `sink.retry.interval-ms`: the base delay of the exponential retry schedule. */
  readonly retryInterval: Duration.Duration
  /** The cap on one retry delay. */
  readonly retryMaxDelay: Duration.Duration
  /** `sink.connect.timeout-ms` */
  readonly connectTimeout: Duration.Duration
  /** `sink.socket.timeout-ms` (none = no client-side read timeout beyond the load timeout). */
  readonly socketTimeout: Option.Option<Duration.Duration>
  /** `sink.wait-for-continue.timeout-ms` */
  readonly waitForContinueTimeout: Duration.Duration
  /** `sink.io.thread-count`: loads in flight at most. */
  readonly ioThreadCount: number
  /** `sink.properties.*`, keys lower-cased, sent as Stream Load headers (format excluded). */
  readonly properties: Readonly<Record<string, string>>
  /** Time zone used to render DATE/DATETIME values (`sink.timezone`, default `UTC`). */
  readonly timeZone: string
  /** `be-host-map`: rewrites of BE addresses handed out by the FE, `internal:port` → `reachable:port`. */
  readonly beHostMap: ReadonlyMap<string, string>
  /** `sink.direct-be`: BE HTTP addresses to load into directly (skipping the FE redirect), when non-empty. */
  readonly directBackends: ReadonlyArray<string>
  /** Max redirects followed per request. */
  readonly maxRedirects: number
  /** `sink.sanitize-error-log`: redact row data in fetched error logs. */
  readonly sanitizeErrorLog: boolean
  /** Server version when known without asking (`sink.server-version`), e.g. `3.3.0`. */
  readonly serverVersion: Option.Option<string>
  /** When a CSV batch holds the exact string `\N`: send it as JSON (true) or reject the row (false). */
  readonly csvJsonFallback: boolean
  /** Deadline for settling a label in doubt through `get_load_state` (`sink.label-state.timeout-ms`). */
  readonly labelStateTimeout: Duration.Duration
}

/**
 * @since 0.1.0
 * @category tags
 */
export const StarRocksConfig: Context.Tag<StarRocksConfig, StarRocksConfig> = Context.GenericTag<StarRocksConfig>(
  "@effect-starrocks/sink/StarRocksConfig"
)
