/**
 * The sink's configuration: the resolved `StarRocksConfig` (a service), and the three ways to build it with the
 * same validation — typed options (`make`, `makeEffect`, `layer`), the StarRocks Flink connector's keys verbatim
 * (`fromProperties`) and `STARROCKS_*` variables through Effect's `Config` (`config`, `layerConfig`).
 *
 * See `docs/configuration.md` for every option, its Flink name, environment variable, default and range.
 *
 * @since 0.1.0
 */
import type { ConfigProvider } from "effect"
import {
  Config,
  ConfigError,
  Context,
  Duration,
  Effect,
  Either,
  HashSet,
  Layer,
  Option,
  Redacted,
  Schema
} from "effect"
import * as Fs from "node:fs"
import type { TlsConfig } from "./internal/client/model.js"

export type {
  /**
   * @since 0.2.0
   * @category models
   */
  TlsConfig
} from "./internal/client/model.js"

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
  /**
   * FE HTTP addresses (`load-url`, `;`-separated in properties). The constructors normalize every entry to
   * `http://host:port` or `https://host:port` (no path, no trailing slash; `http://` when no scheme was given).
   */
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
  /**
   * `sink.direct-be`: BE HTTP addresses to load into directly (skipping the FE redirect), when non-empty.
   * Normalized like `loadUrl` (`http(s)://host:port`).
   */
  readonly directBackends: ReadonlyArray<string>
  /** Max redirects followed per request. */
  readonly maxRedirects: number
  /** `sink.sanitize-error-log`: redact row data in fetched error logs. */
  readonly sanitizeErrorLog: boolean
  /** Server version when known without asking (`sink.server-version`), e.g. `3.3.0`. */
  readonly serverVersion: Option.Option<string>
  /** When a CSV batch holds the exact string `\N`: send it as JSON (true) or reject the row (false). */
  readonly csvJsonFallback: boolean
  /**
   * `sink.at-least-once.use-transaction-stream-load`: load each at-least-once batch through the transaction
   * interface (begin, `transaction/load`, commit under the batch's label) instead of one plain Stream Load.
   */
  readonly useTransactionStreamLoad: boolean
  /** Deadline for settling a label in doubt through `get_load_state` (`sink.label-state.timeout-ms`). */
  readonly labelStateTimeout: Duration.Duration
  /** TLS of https load URLs and redirects (`sink.tls.*`): CA, client certificate and key, server name, checks. */
  readonly tls: TlsConfig
  /**
   * `sink.watchdog.timeout-ms`: the at-least-once sink fails with a `StallError` when rows wait and no load of
   * their table has landed for this long (none = no watchdog, the default).
   */
  readonly watchdogTimeout: Option.Option<Duration.Duration>
  /**
   * `sink.exactly-once.skip-lost-checkpoint`: exactly-once recovery skips a last checkpoint whose prepared
   * transactions StarRocks aborted or forgot (logged as a warning naming the labels) instead of failing with
   * `ExactlyOnceError` `PreparedLost`. Absent (a hand-built config) = false.
   */
  readonly skipLostCheckpoint?: boolean | undefined
  /**
   * `sink.label-keep-max-second`: the FE's `label_keep_max_second` as the user knows it (StarRocks' default 259200,
   * 3 days); the exactly-once sink warns at start when checkpoints come near it. Absent = StarRocks' default.
   */
  readonly labelKeepMaxSecond?: number | undefined
  /**
   * `sink.startup-check` (default true): before the first row, one `GET /api/{db}/{table}/_schema` per table
   * checks that an FE answers, the credentials work and the table exists (`StartupCheckError`), and the settings
   * are checked against the server version when it is known (`UnsupportedByServerError`). A config built by hand
   * without the field is checked too.
   */
  readonly startupCheck?: boolean | undefined
  /**
   * `sink.adaptive-concurrency.*`: adaptive concurrency of the at-least-once sink, the limit of each table's loads
   * in flight moved by AIMD between 1 and `max` (at most `ioThreadCount`), starting at `initial`. Absent: off (each
   * table may have up to `ioThreadCount` loads in flight). See docs/configuration.md, "Adaptive concurrency".
   */
  readonly adaptiveConcurrency?: { readonly initial: number; readonly max: number } | undefined
  /**
   * The options the user set, each with its key as the user wrote it (`semantic` → `sink.semantic`, say): what
   * `checkUse` checks against the sink the config is used with. Absent on a config built by hand (then only the
   * values are checked).
   */
  readonly given?: Readonly<Partial<Record<keyof Options, string>>> | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export const StarRocksConfig: Context.Tag<StarRocksConfig, StarRocksConfig> = Context.GenericTag<StarRocksConfig>(
  "@effect-starrocks/sink/StarRocksConfig"
)

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * One problem found in a configuration: the key as the user wrote it (typed option name, Flink key or
 * environment variable), what is wrong, the allowed values or range, and a "did you mean" for unknown keys.
 *
 * @since 0.1.0
 * @category models
 */
export const ConfigProblem = Schema.Struct({
  key: Schema.String,
  reason: Schema.String,
  allowed: Schema.optional(Schema.String),
  suggestion: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ConfigProblem = typeof ConfigProblem.Type

const renderProblem = (p: ConfigProblem): string =>
  `${p.key}: ${p.reason}` +
  (p.allowed !== undefined ? ` (allowed: ${p.allowed})` : "") +
  (p.suggestion !== undefined ? ` (did you mean "${p.suggestion}"?)` : "")

/**
 * An invalid configuration. `key`, `reason`, `allowed` and `suggestion` describe the first problem; `problems`
 * holds all of them (the first included), and the message lists them all. Never carries the password.
 *
 * @since 0.1.0
 * @category errors
 */
export class StarRocksConfigError extends Schema.TaggedError<StarRocksConfigError>()("StarRocksConfigError", {
  key: Schema.String,
  reason: Schema.String,
  allowed: Schema.optional(Schema.String),
  suggestion: Schema.optional(Schema.String),
  problems: Schema.optionalWith(Schema.Array(ConfigProblem), { default: () => [] })
}) {
  /**
   * @since 0.1.0
   */
  static fromProblems(problems: ReadonlyArray<ConfigProblem>): StarRocksConfigError {
    const first = problems[0] ?? { key: "(config)", reason: "invalid" }
    return new StarRocksConfigError({ ...first, problems })
  }

  /**
   * @since 0.1.0
   */
  override get message(): string {
    const all: ReadonlyArray<ConfigProblem> = this.problems.length > 0 ? this.problems : [this]
    if (all.length === 1) return `Invalid StarRocks config: ${renderProblem(all[0]!)}`
    return `Invalid StarRocks config, ${all.length} problems: ` +
      all.map((p, i) => `(${i + 1}) ${renderProblem(p)}`).join("; ")
  }
}

// -----------------------------------------------------------------------------
// options, defaults, ranges
// -----------------------------------------------------------------------------

/**
 * Typed options for `make`, `makeEffect` and `layer`. Only the six connection fields are required; every other
 * field has the default documented in `defaults` and `docs/configuration.md`. Durations accept any
 * `Duration.DurationInput` (a number is milliseconds).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `host:port`, `http(s)://host:port`, or several (`;`- or `,`-separated string, or an array). */
  readonly loadUrl: string | ReadonlyArray<string>
  /** `jdbc:mysql://host:port[,host:port][/db]` (the first host is used) or `host:port`. */
  readonly jdbcUrl?: string | undefined
  readonly database: string
  readonly table: string
  readonly username: string
  /** Always `Redacted` (`Redacted.make("...")`); a plain string is refused. */
  readonly password: Redacted.Redacted<string>
  readonly format?: "csv" | "json" | undefined
  /**
   * Payload compression of every load (`sink.properties.compression`, sent as the `compression` header; StarRocks
   * 3.2.7+): the client compresses each body once, CSV and JSON. Absent: uncompressed. See docs/configuration.md.
   */
  readonly compression?: "lz4_frame" | "gzip" | "zstd" | undefined
  readonly semantic?: "at-least-once" | "exactly-once" | undefined
  readonly version?: "AUTO" | "V1" | "V2" | undefined
  /** `[-_A-Za-z0-9]`, 1 to 64 characters. */
  readonly labelPrefix?: string | undefined
  readonly maxBytes?: number | undefined
  readonly maxRows?: number | undefined
  readonly flushInterval?: Duration.DurationInput | undefined
  readonly maxRetries?: number | undefined
  readonly retryInterval?: Duration.DurationInput | undefined
  readonly retryMaxDelay?: Duration.DurationInput | undefined
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Absent: no client-side read timeout. */
  readonly socketTimeout?: Duration.DurationInput | undefined
  readonly waitForContinueTimeout?: Duration.DurationInput | undefined
  readonly ioThreadCount?: number | undefined
  /** Stream Load headers; names are lower-cased; `format` may be given here instead of `format`. */
  readonly properties?: Readonly<Record<string, string>> | undefined
  /** An IANA time zone such as `UTC` or `Asia/Shanghai`. */
  readonly timeZone?: string | undefined
  /** `{ "internal:port": "reachable:port" }` or `"internal:port=reachable:port,…"`. */
  readonly beHostMap?: Readonly<Record<string, string>> | string | undefined
  /** Like `loadUrl`. */
  readonly directBackends?: string | ReadonlyArray<string> | undefined
  readonly maxRedirects?: number | undefined
  readonly sanitizeErrorLog?: boolean | undefined
  /** e.g. `3.3.0`. */
  readonly serverVersion?: string | undefined
  readonly csvJsonFallback?: boolean | undefined
  readonly useTransactionStreamLoad?: boolean | undefined
  readonly labelStateTimeout?: Duration.DurationInput | undefined
  /** Absent: no watchdog. The at-least-once sink only (`StarRocksSink.make`). */
  readonly watchdogTimeout?: Duration.DurationInput | undefined
  /** Default false. The exactly-once sink only: see docs/exactly-once.md, "Restart policy". */
  readonly skipLostCheckpoint?: boolean | undefined
  /** Seconds (the FE's `label_keep_max_second`). The exactly-once sink only (start-up warnings). */
  readonly labelKeepMaxSecond?: number | undefined
  /** Check the FE, the credentials and each table before the first row (default true; `sink.startup-check`). */
  readonly startupCheck?: boolean | undefined
  /**
   * Adaptive concurrency (default false; `sink.adaptive-concurrency.enabled`): each table's limit of loads in
   * flight grows while its throughput rises and shrinks on overload answers and on latency that rises as
   * throughput falls. At-least-once only.
   */
  readonly adaptiveConcurrency?: boolean | undefined
  /** The adaptive limit at start (default 1; at most the max). Needs `adaptiveConcurrency`. */
  readonly adaptiveConcurrencyInitial?: number | undefined
  /** The adaptive limit's highest value (default and at most `ioThreadCount`). Needs `adaptiveConcurrency`. */
  readonly adaptiveConcurrencyMax?: number | undefined
  /** TLS of https load URLs (`sink.tls.*`); see `TlsOptions`. */
  readonly tls?: TlsOptions | undefined
  /**
   * Accept `maxBytes`, `maxRows` and `flushInterval` below their documented floors (still > 0). A warning is
   * logged when a layer is built from such a config. For tests and low-latency pipelines.
   */
  readonly allowSmallBuffers?: boolean | undefined
}

/**
 * TLS of the https connections (FEs, BEs, ErrorURL fetches). `ca`, `cert` and `key` are PEM text (the Flink-style
 * keys `sink.tls.ca-file`, `sink.tls.cert-file`, `sink.tls.key-file` and their `STARROCKS_TLS_*` variables name
 * files instead). The key may be given as a `Redacted`; it is kept redacted either way.
 *
 * @since 0.2.0
 * @category models
 */
export interface TlsOptions {
  /** Trusted CA certificates (PEM) instead of Node's default CAs (`sink.tls.ca-file`). */
  readonly ca?: string | undefined
  /** Client certificate (PEM) for mutual TLS; needs `key` (`sink.tls.cert-file`). */
  readonly cert?: string | undefined
  /** Client private key (PEM) for mutual TLS; needs `cert` (`sink.tls.key-file`). */
  readonly key?: string | Redacted.Redacted<string> | undefined
  /** SNI and the name the server certificate is checked against, instead of the URL's host (`sink.tls.server-name`). */
  readonly serverName?: string | undefined
  /** Verify the server certificate (default true; `sink.tls.verify`). */
  readonly verify?: boolean | undefined
  /** Follow a redirect from https to plain http (default false; `sink.tls.allow-http-redirect`). */
  readonly allowHttpRedirect?: boolean | undefined
}

/**
 * The names of the `tls` sub-options: Flink-style key and environment variable (without `STARROCKS_`). `ca`,
 * `cert` and `key` name files there.
 *
 * @since 0.2.0
 * @category constants
 */
export const tlsKeys: { readonly [K in keyof TlsOptions]-?: { readonly property: string; readonly env: string } } = {
  ca: { property: "sink.tls.ca-file", env: "TLS_CA_FILE" },
  cert: { property: "sink.tls.cert-file", env: "TLS_CERT_FILE" },
  key: { property: "sink.tls.key-file", env: "TLS_KEY_FILE" },
  serverName: { property: "sink.tls.server-name", env: "TLS_SERVER_NAME" },
  verify: { property: "sink.tls.verify", env: "TLS_VERIFY" },
  allowHttpRedirect: { property: "sink.tls.allow-http-redirect", env: "TLS_ALLOW_HTTP_REDIRECT" }
}

type TlsField = keyof TlsOptions

const tlsFields = Object.keys(tlsKeys) as ReadonlyArray<TlsField>

/**
 * The defaults (as the Flink connector's, except `retryInterval`: see `docs/configuration.md`).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  format: "csv",
  semantic: "at-least-once",
  version: "AUTO",
  labelPrefix: "effect-sr",
  maxBytes: 94_371_840,
  maxRows: 500_000,
  flushInterval: Duration.millis(300_000),
  maxRetries: 3,
  retryInterval: Duration.millis(1_000),
  retryMaxDelay: Duration.millis(30_000),
  connectTimeout: Duration.millis(30_000),
  waitForContinueTimeout: Duration.millis(30_000),
  ioThreadCount: 2,
  timeZone: "UTC",
  maxRedirects: 5,
  sanitizeErrorLog: false,
  csvJsonFallback: true,
  useTransactionStreamLoad: false,
  labelStateTimeout: Duration.millis(60_000),
  startupCheck: true,
  allowSmallBuffers: false,
  adaptiveConcurrency: false,
  adaptiveConcurrencyInitial: 1
} as const

/**
 * Inclusive ranges (`[min, max]`). Durations in milliseconds. With `allowSmallBuffers` the `min` of `maxBytes`,
 * `maxRows` and `flushInterval` becomes 1.
 *
 * @since 0.1.0
 * @category constants
 */
export const ranges = {
  maxBytes: { min: 64 * 1024 * 1024, max: 10 * 1024 * 1024 * 1024 },
  maxRows: { min: 64_000, max: 5_000_000 },
  flushInterval: { min: 1_000, max: 3_600_000 },
  maxRetries: { min: 0, max: 10 },
  retryInterval: { min: 1, max: 3_600_000 },
  retryMaxDelay: { min: 1, max: 3_600_000 },
  connectTimeout: { min: 100, max: 60_000 },
  socketTimeout: { min: 1, max: 86_400_000 },
  waitForContinueTimeout: { min: 3_000, max: 600_000 },
  ioThreadCount: { min: 1, max: 64 },
  maxRedirects: { min: 0, max: 20 },
  labelStateTimeout: { min: 100, max: 3_600_000 },
  watchdogTimeout: { min: 100, max: 86_400_000 },
  labelKeepMaxSecond: { min: 1, max: 315_360_000 },
  adaptiveConcurrencyInitial: { min: 1, max: 64 },
  adaptiveConcurrencyMax: { min: 1, max: 64 }
} as const

/**
 * The longest `sink.label-prefix`. StarRocks labels must match `^[-\w]{1,128}$`; the sink appends `-` and at most
 * 63 more characters.
 *
 * @since 0.1.0
 * @category constants
 */
export const labelPrefixMaxLength = 64

/**
 * The payload compressions the client has (`compression`, `sink.properties.compression`): LZ4 frame, gzip, zstd.
 *
 * @since 0.2.0
 * @category constants
 */
export const compressionCodecs: ReadonlyArray<"lz4_frame" | "gzip" | "zstd"> = ["lz4_frame", "gzip", "zstd"]

/**
 * Stream Load headers that the sink sets itself and that `sink.properties.*` may not override.
 *
 * @since 0.1.0
 * @category constants
 */
export const reservedProperties: ReadonlyArray<string> = [
  "label",
  "expect",
  "authorization",
  "content-length",
  "transfer-encoding",
  "host",
  "connection"
]

/**
 * Merge commit (StarRocks 3.4+): the Stream Load headers that ask the server to merge concurrent loads of a table
 * into one transaction per window, for `properties` (`{ ...mergeCommit({ interval: 200, parallel: 2 }) }`), as
 * `sink.properties.enable_merge_commit`, `merge_commit_interval_ms`, `merge_commit_parallel` and
 * `merge_commit_async`. At-least-once only. See docs/configuration.md, "Merge commit".
 *
 * @since 0.2.0
 * @category constructors
 */
export const mergeCommit = (options: {
  /** The merge window in milliseconds: requests arriving within it share one transaction. */
  readonly interval: number
  /** How many BEs one merge task spans (StarRocks caps it at the BEs alive). */
  readonly parallel: number
  /** Async mode: the server answers once the body is appended; the sink then polls the label state. */
  readonly async?: boolean | undefined
}): Readonly<Record<string, string>> => ({
  enable_merge_commit: "true",
  merge_commit_interval_ms: String(options.interval),
  merge_commit_parallel: String(options.parallel),
  merge_commit_async: options.async === true ? "true" : "false"
})

const mergeCommitKeys = ["merge_commit_interval_ms", "merge_commit_parallel", "merge_commit_async"] as const

/** The problems of the merge commit headers among `sink.properties.*` (values as StarRocks checks them). */
const mergeCommitProblems = (
  properties: Readonly<Record<string, string>>,
  format: "csv" | "json",
  naming: Naming
): ReadonlyArray<ConfigProblem> => {
  const problems: Array<ConfigProblem> = []
  const enable = properties["enable_merge_commit"]
  const isBool = (v: string) => ["true", "false"].includes(v.trim().toLowerCase())
  if (enable !== undefined && !isBool(enable)) {
    problems.push({
      key: naming.property("enable_merge_commit"),
      reason: `"${enable}" is not a boolean`,
      allowed: "true | false"
    })
  }
  const on = enable !== undefined && enable.trim().toLowerCase() === "true"
  if (!on) {
    for (const k of mergeCommitKeys) {
      if (properties[k] !== undefined) {
        problems.push({ key: naming.property(k), reason: "has no effect without enable_merge_commit=true" })
      }
    }
    return problems
  }
  for (const k of ["merge_commit_interval_ms", "merge_commit_parallel"] as const) {
    const v = properties[k]
    if (v === undefined) problems.push({ key: naming.property(k), reason: "is required with enable_merge_commit=true" })
    else if (!/^\d+$/.test(v.trim()) || Number(v) < 1 || Number(v) > 2147483647) {
      problems.push({ key: naming.property(k), reason: `"${v}" is not a positive integer`, allowed: "[1, 2147483647]" })
    }
  }
  const async = properties["merge_commit_async"]
  if (async !== undefined && !isBool(async)) {
    problems.push({
      key: naming.property("merge_commit_async"),
      reason: `"${async}" is not a boolean`,
      allowed: "true | false"
    })
  }
  const skip = properties["skip_header"]
  if (format === "csv" && skip !== undefined && skip.trim() !== "0") {
    problems.push({ key: naming.property("skip_header"), reason: "is not supported with merge commit" })
  }
  return problems
}

// -----------------------------------------------------------------------------
// key names: typed option ↔ Flink key ↔ environment variable
// -----------------------------------------------------------------------------

type Field = keyof Options

interface KeyInfo {
  readonly property: string
  readonly env: string
}

/**
 * Every option's names outside TypeScript: its Flink connector key (`property`, as `fromProperties` reads it) and
 * its environment variable without the `STARROCKS_` prefix (`env`, as `config` reads it). Tools that merge
 * several sources (the CLI's flags, a properties file, the environment) translate between them with it.
 *
 * @since 0.1.0
 * @category constants
 */
export const optionKeys: { readonly [K in keyof Options]-?: { readonly property: string; readonly env: string } } = {
  loadUrl: { property: "load-url", env: "LOAD_URL" },
  jdbcUrl: { property: "jdbc-url", env: "JDBC_URL" },
  database: { property: "database-name", env: "DATABASE" },
  table: { property: "table-name", env: "TABLE" },
  username: { property: "username", env: "USERNAME" },
  password: { property: "password", env: "PASSWORD" },
  format: { property: "sink.properties.format", env: "FORMAT" },
  compression: { property: "sink.properties.compression", env: "COMPRESSION" },
  semantic: { property: "sink.semantic", env: "SEMANTIC" },
  version: { property: "sink.version", env: "VERSION" },
  labelPrefix: { property: "sink.label-prefix", env: "LABEL_PREFIX" },
  maxBytes: { property: "sink.buffer-flush.max-bytes", env: "BUFFER_FLUSH_MAX_BYTES" },
  maxRows: { property: "sink.buffer-flush.max-rows", env: "BUFFER_FLUSH_MAX_ROWS" },
  flushInterval: { property: "sink.buffer-flush.interval-ms", env: "BUFFER_FLUSH_INTERVAL_MS" },
  allowSmallBuffers: { property: "sink.buffer-flush.allow-small", env: "BUFFER_FLUSH_ALLOW_SMALL" },
  maxRetries: { property: "sink.max-retries", env: "MAX_RETRIES" },
  retryInterval: { property: "sink.retry.interval-ms", env: "RETRY_INTERVAL_MS" },
  retryMaxDelay: { property: "sink.retry.max-delay-ms", env: "RETRY_MAX_DELAY_MS" },
  connectTimeout: { property: "sink.connect.timeout-ms", env: "CONNECT_TIMEOUT_MS" },
  socketTimeout: { property: "sink.socket.timeout-ms", env: "SOCKET_TIMEOUT_MS" },
  waitForContinueTimeout: { property: "sink.wait-for-continue.timeout-ms", env: "WAIT_FOR_CONTINUE_TIMEOUT_MS" },
  ioThreadCount: { property: "sink.io.thread-count", env: "IO_THREAD_COUNT" },
  properties: { property: "sink.properties.*", env: "PROPERTIES" },
  timeZone: { property: "sink.timezone", env: "TIMEZONE" },
  beHostMap: { property: "be-host-map", env: "BE_HOST_MAP" },
  directBackends: { property: "sink.direct-be", env: "DIRECT_BE" },
  maxRedirects: { property: "sink.max-redirects", env: "MAX_REDIRECTS" },
  sanitizeErrorLog: { property: "sink.sanitize-error-log", env: "SANITIZE_ERROR_LOG" },
  serverVersion: { property: "sink.server-version", env: "SERVER_VERSION" },
  csvJsonFallback: { property: "sink.csv.json-fallback", env: "CSV_JSON_FALLBACK" },
  useTransactionStreamLoad: {
    property: "sink.at-least-once.use-transaction-stream-load",
    env: "AT_LEAST_ONCE_USE_TRANSACTION_STREAM_LOAD"
  },
  labelStateTimeout: { property: "sink.label-state.timeout-ms", env: "LABEL_STATE_TIMEOUT_MS" },
  watchdogTimeout: { property: "sink.watchdog.timeout-ms", env: "WATCHDOG_TIMEOUT_MS" },
  skipLostCheckpoint: {
    property: "sink.exactly-once.skip-lost-checkpoint",
    env: "EXACTLY_ONCE_SKIP_LOST_CHECKPOINT"
  },
  labelKeepMaxSecond: { property: "sink.label-keep-max-second", env: "LABEL_KEEP_MAX_SECOND" },
  startupCheck: { property: "sink.startup-check", env: "STARTUP_CHECK" },
  adaptiveConcurrency: { property: "sink.adaptive-concurrency.enabled", env: "ADAPTIVE_CONCURRENCY_ENABLED" },
  adaptiveConcurrencyInitial: {
    property: "sink.adaptive-concurrency.initial",
    env: "ADAPTIVE_CONCURRENCY_INITIAL"
  },
  adaptiveConcurrencyMax: { property: "sink.adaptive-concurrency.max", env: "ADAPTIVE_CONCURRENCY_MAX" },
  // one key per sub-option: see `tlsKeys`
  tls: { property: "sink.tls.*", env: "TLS_*" }
}

const keyTable: { readonly [K in Field]: KeyInfo } = optionKeys

const fields = Object.keys(keyTable) as ReadonlyArray<Field>

/** How a problem names a field (and a `properties` entry) in the user's own vocabulary. */
interface Naming {
  readonly field: (field: Field) => string
  readonly property: (name: string) => string
}

const typedNaming: Naming = {
  field: (field) => field,
  property: (name) => `properties.${name}`
}

/** How a problem names a `tls` sub-option. */
const tlsName = (naming: Naming, sub: TlsField): string =>
  naming === typedNaming ?
    `tls.${sub}` :
    naming === propertyNaming ?
    tlsKeys[sub].property :
    envPrefix + tlsKeys[sub].env

const propertyNaming: Naming = {
  field: (field) => keyTable[field].property,
  property: (name) => `sink.properties.${name}`
}

const envPrefix = "STARROCKS_"

const envNaming: Naming = {
  field: (field) => envPrefix + keyTable[field].env,
  property: (name) => `${envPrefix}PROPERTIES (${name})`
}

/**
 * Flink connector keys that have no effect here: accepted (their value is not checked beyond being present) and
 * reported once with a warning log.
 */
const ignoredKeys: Readonly<Record<string, string>> = {
  "sink.parallelism": "Flink planner parallelism; an Effect stream has one writer (use sink.io.thread-count)",
  "sink.use.new-sink-api": "Flink sink API choice; there is one sink here",
  "sink.scan-frequency.ms": "Flink manager-thread tick; flushes here are driven by the clock and the buffer",
  "sink.metric.histogram-window-size": "Flink metric setting; latencies are an Effect Metric histogram",
  "sink.buffer-flush.enqueue-timeout-ms": "Flink V1 queue wait; backpressure here is by bytes, with deadlines",
  "sink.chunk-limit": "the HTTP body of a load is one buffer, at most sink.buffer-flush.max-bytes",
  "sink.exactly-once.enable-label-gen": "labels are always deterministic and prefix-scoped",
  "sink.exactly-once.enable-abort-lingering-txn": "reserved for the exactly-once mode",
  "sink.exactly-once.check-num-lingering-txn": "reserved for the exactly-once mode"
}

/** Flink connector keys for features this sink does not have: refused with the reason. */
const rejectedKeys: Readonly<Record<string, string>> = {
  "sink.wrap-json-as-array": "rows are typed and encoded by the sink; there are no pre-serialized JSON rows",
  "sink.ignore.update-before": "changelog (upsert/delete) rows are not supported yet",
  "sink.blackhole": "not supported; to benchmark, point load-url at a null Stream Load endpoint",
  "sink.publish-timeout.ms": "not supported: a Publish Timeout always counts as success; the load timeout is " +
    "sink.properties.timeout",
  "sink.transaction.multi-table.enabled": "multi-table transactions are not supported",
  "sink.transaction.multi-table.buffer-size": "multi-table transactions are not supported"
}

const rejectedPrefixes: ReadonlyArray<readonly [string, string]> = [
  [
    "sink.merge-commit.",
    "the Flink connector's merge commit client options (chunking, request limits, BE brpc) are not supported; " +
    "merge commit itself is sink.properties.enable_merge_commit with merge_commit_interval_ms and " +
    "merge_commit_parallel"
  ],
  ["sink.transaction.multi-table.", "multi-table transactions are not supported"]
]

const propertyKeys: ReadonlyArray<string> = [
  "connector",
  ...fields.filter((f) => f !== "properties" && f !== "format" && f !== "tls").map((f) => keyTable[f].property),
  ...tlsFields.map((f) => tlsKeys[f].property),
  "sink.properties.format",
  ...Object.keys(ignoredKeys),
  ...Object.keys(rejectedKeys)
]

/**
 * Every key `fromProperties` accepts: `connector`, the Flink key of every option (`sink.properties.*` standing for
 * any Stream Load header), and the Flink-only keys accepted with a warning (`ignoredProperties`). Keys for features
 * this sink lacks are refused and not listed.
 *
 * @since 0.2.0
 * @category constants
 */
export const acceptedProperties: ReadonlyArray<string> = [
  "connector",
  ...fields.filter((f) => f !== "tls").map((f) => keyTable[f].property),
  ...tlsFields.map((f) => tlsKeys[f].property),
  ...Object.keys(ignoredKeys)
]

/**
 * The Flink connector's keys that have no meaning here, each with why: `fromProperties` and `layerConfig()`
 * accept them and log one warning naming them and saying so.
 *
 * @since 0.2.0
 * @category constants
 */
export const ignoredProperties: Readonly<Record<string, string>> = ignoredKeys

// -----------------------------------------------------------------------------
// helpers
// -----------------------------------------------------------------------------

/** @internal */
export const levenshtein = (a: string, b: string): number => {
  if (a === b) return 0
  if (a.length === 0) return b.length
  if (b.length === 0) return a.length
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const curr = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      curr[j] = Math.min(prev[j]! + 1, curr[j - 1]! + 1, prev[j - 1]! + cost)
    }
    prev = curr
  }
  return prev[b.length]!
}

/** The closest known key, if close enough to be a likely typo. */
const suggest = (key: string, known: ReadonlyArray<string>): string | undefined => {
  const k = key.toLowerCase()
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const d = levenshtein(k, candidate.toLowerCase())
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best !== undefined && bestDistance <= Math.max(3, Math.floor(key.length * 0.4)) ? best : undefined
}

const fmt = (n: number): string => String(n)

const rangeText = (min: number, max: number, unit = ""): string => `[${fmt(min)}, ${fmt(max)}]${unit}`

const hostPortPattern = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?):(\d{1,5})$/

const parseHostPort = (text: string): { readonly host: string; readonly port: number } | undefined => {
  const match = hostPortPattern.exec(text)
  if (match === null) return undefined
  const port = Number(match[2])
  if (port < 1 || port > 65_535) return undefined
  return { host: match[1]!, port }
}

/** `host:port` or `http(s)://host:port[/]` → `http(s)://host:port`, or the reason it is not. */
const parseAddress = (entry: string): Either.Either<string, string> => {
  if (entry.includes("@")) {
    return Either.left("an address must not carry credentials (use username and password)")
  }
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(entry)
  let scheme = "http"
  let rest = entry
  if (schemeMatch !== null) {
    scheme = schemeMatch[1]!.toLowerCase()
    if (scheme !== "http" && scheme !== "https") {
      return Either.left(`"${entry}" has scheme ${scheme}; only http and https are allowed`)
    }
    rest = entry.slice(schemeMatch[0].length)
  }
  if (rest.endsWith("/")) rest = rest.slice(0, -1)
  const hp = parseHostPort(rest)
  if (hp === undefined) return Either.left(`"${entry}" is not host:port or http(s)://host:port`)
  return Either.right(`${scheme}://${hp.host}:${hp.port}`)
}

/** The reachable side of a `be-host-map` entry: `host:port`, or `http(s)://host:port` as `parseAddress` gives it. */
const reachable = (text: string): string | undefined => {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) return Either.getOrUndefined(parseAddress(text))
  const hp = parseHostPort(text)
  return hp === undefined ? undefined : `${hp.host}:${hp.port}`
}

const splitList = (text: string): Array<string> => text.split(/[;,]/).map((s) => s.trim()).filter((s) => s.length > 0)

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const headerNamePattern = /^[a-z0-9_.-]+$/

// -----------------------------------------------------------------------------
// resolve: typed options → StarRocksConfig, collecting every problem
// -----------------------------------------------------------------------------

const resolve = (
  options: Options,
  naming: Naming,
  extraProblems: ReadonlyArray<ConfigProblem> = []
): Either.Either<StarRocksConfig, StarRocksConfigError> => {
  const problems: Array<ConfigProblem> = [...extraProblems]
  const problem = (field: Field, reason: string, allowed?: string): void => {
    problems.push(
      allowed === undefined ? { key: naming.field(field), reason } : {
        key: naming.field(field),
        reason,
        allowed
      }
    )
  }
  const o = options as unknown as Readonly<Record<string, unknown>>
  const allowSmall = o.allowSmallBuffers === true

  // required strings
  const requiredName = (field: "database" | "table" | "username"): string => {
    const value = o[field]
    if (value === undefined) {
      problem(field, "is required")
      return ""
    }
    if (typeof value !== "string" || value.length === 0) {
      problem(field, "must be a non-empty string")
      return ""
    }
    if (field !== "username" && /[/\s\p{Cc}]/u.test(value)) {
      problem(field, `"${value}" must not contain "/", white space or control characters`)
    }
    if (field === "username" && /[:\p{Cc}]/u.test(value)) {
      problem(field, "must not contain \":\" or control characters (HTTP Basic authentication)")
    }
    return value
  }

  // addresses
  const addresses = (field: "loadUrl" | "directBackends", required: boolean): ReadonlyArray<string> => {
    const value = o[field]
    if (value === undefined) {
      if (required) problem(field, "is required", "host:port;host:port (scheme http:// or https:// optional)")
      return []
    }
    let entries: ReadonlyArray<string>
    if (typeof value === "string") entries = splitList(value)
    else if (Array.isArray(value) && value.every((v) => typeof v === "string")) {
      entries = value.map((v: string) => v.trim()).filter((v) => v.length > 0)
    } else {
      problem(field, "must be a string or an array of strings")
      return []
    }
    if (entries.length === 0) {
      if (required) problem(field, "lists no address", "host:port;host:port (scheme http:// or https:// optional)")
      return []
    }
    const out: Array<string> = []
    for (const entry of entries) {
      const parsed = parseAddress(entry)
      if (Either.isLeft(parsed)) problem(field, parsed.left, "host:port or http(s)://host:port")
      else if (!out.includes(parsed.right)) out.push(parsed.right)
    }
    return out
  }

  const loadUrl = addresses("loadUrl", true)
  const directBackends = addresses("directBackends", false)
  const database = requiredName("database")
  const table = requiredName("table")
  const username = requiredName("username")

  // password
  let password: Redacted.Redacted<string> = Redacted.make("")
  if (o.password === undefined) problem("password", "is required")
  else if (!Redacted.isRedacted(o.password)) {
    problem("password", "must be a Redacted<string> (Redacted.make(...)); a plain value is refused")
  } else password = o.password as Redacted.Redacted<string>

  // jdbc-url
  let jdbcUrl: StarRocksConfig["jdbcUrl"] = Option.none()
  if (o.jdbcUrl !== undefined) {
    const text = o.jdbcUrl
    const allowed = "jdbc:mysql://host:port[,host:port][/database]"
    if (typeof text !== "string") problem("jdbcUrl", "must be a string", allowed)
    else {
      const shown = text.split("?")[0]!
      const match = /^jdbc:mysql:\/\/([^/?]*)(?:\/([^?]*))?(?:\?.*)?$/i.exec(text.trim())
      const hosts = match !== null ? match[1]! : text.trim()
      const db = match !== null ? match[2] : undefined
      const first = hosts.split(",")[0]!.trim()
      const hp = (match !== null || !text.includes("/")) ? parseHostPort(first) : undefined
      if (hp === undefined) problem("jdbcUrl", `"${shown}" is not a MySQL JDBC URL with host:port`, allowed)
      else {
        jdbcUrl = Option.some({
          host: hp.host,
          port: hp.port,
          database: db !== undefined && db.length > 0 ? Option.some(db) : Option.none()
        })
      }
    }
  }

  // enums
  const oneOf = <A extends string>(field: Field, values: ReadonlyArray<A>, fallback: A): A => {
    const value = o[field]
    if (value === undefined) return fallback
    if (typeof value === "string" && (values as ReadonlyArray<string>).includes(value)) return value as A
    problem(field, `${JSON.stringify(value)} is not allowed`, values.join(" | "))
    return fallback
  }
  const semantic = oneOf("semantic", ["at-least-once", "exactly-once"], defaults.semantic)
  const version = oneOf("version", ["AUTO", "V1", "V2"], defaults.version)

  // properties (+ format)
  const properties: Record<string, string> = {}
  let formatFromProperties: "csv" | "json" | undefined
  if (o.properties !== undefined) {
    if (!isRecord(o.properties)) problem("properties", "must be a record of strings")
    else {
      for (const [rawName, value] of Object.entries(o.properties)) {
        const name = rawName.toLowerCase()
        const key = naming.property(name)
        if (!headerNamePattern.test(name)) {
          problems.push({ key, reason: "is not a valid Stream Load header name", allowed: "[a-z0-9_.-]+" })
        } else if (reservedProperties.includes(name)) {
          problems.push({
            key,
            reason: name === "label" ?
              "is set by the sink for every load (use the label prefix)" :
              "is set by the sink's HTTP client and cannot be overridden"
          })
        } else if (typeof value !== "string") problems.push({ key, reason: "must be a string" })
        else if (/[\r\n\0]/.test(value)) problems.push({ key, reason: "must not contain CR, LF or NUL" })
        else if (name in properties || (name === "format" && formatFromProperties !== undefined)) {
          problems.push({ key, reason: "is given twice (names are case-insensitive)" })
        } else if (name === "format") {
          const f = value.toLowerCase()
          if (f === "csv" || f === "json") formatFromProperties = f
          else problems.push({ key, reason: `"${value}" is not allowed`, allowed: "csv | json" })
        } else if (name === "compression") {
          const c = value.trim().toLowerCase()
          if ((compressionCodecs as ReadonlyArray<string>).includes(c)) properties[name] = c
          else problems.push({ key, reason: `"${value}" is not allowed`, allowed: compressionCodecs.join(" | ") })
        } else if (name === "content-encoding") {
          problems.push({
            key,
            reason: `is not sent by the sink: the client compresses bodies itself, set ${
              naming.field("compression")
            } (${compressionCodecs.join(" | ")})`
          })
        } else properties[name] = value
      }
    }
  }
  if (o.compression !== undefined) {
    const fromProperties = properties["compression"]
    const c = oneOf("compression", compressionCodecs, "lz4_frame")
    if (fromProperties !== undefined && fromProperties !== c) {
      problem("compression", `conflicts with ${naming.property("compression")}=${fromProperties}`)
    } else properties["compression"] = c
  }
  let format: "csv" | "json" = oneOf("format", ["csv", "json"], formatFromProperties ?? defaults.format)
  if (o.format !== undefined && formatFromProperties !== undefined && o.format !== formatFromProperties) {
    problem("format", `conflicts with ${naming.property("format")}=${formatFromProperties}`)
  } else if (formatFromProperties !== undefined && o.format === undefined) format = formatFromProperties

  // label prefix
  let labelPrefix: string = defaults.labelPrefix
  if (o.labelPrefix !== undefined) {
    const allowed = `[-_A-Za-z0-9], 1 to ${labelPrefixMaxLength} characters`
    if (typeof o.labelPrefix !== "string" || !/^[-\w]+$/.test(o.labelPrefix)) {
      problem("labelPrefix", `${JSON.stringify(o.labelPrefix)} has characters a StarRocks label cannot hold`, allowed)
    } else if (o.labelPrefix.length > labelPrefixMaxLength) {
      problem("labelPrefix", `is ${o.labelPrefix.length} characters long`, allowed)
    } else labelPrefix = o.labelPrefix
  }

  // integers
  const integer = (
    field:
      | "maxBytes"
      | "maxRows"
      | "maxRetries"
      | "ioThreadCount"
      | "maxRedirects"
      | "labelKeepMaxSecond"
      | "adaptiveConcurrencyInitial"
      | "adaptiveConcurrencyMax",
    fallback: number,
    unit = ""
  ): number => {
    const value = o[field]
    if (value === undefined) return fallback
    const range = ranges[field]
    const small = allowSmall && (field === "maxBytes" || field === "maxRows")
    const min = small ? 1 : range.min
    const allowed = rangeText(min, range.max, unit)
    if (typeof value !== "number" || !Number.isSafeInteger(value)) {
      problem(field, `${JSON.stringify(value)} is not an integer`, allowed)
      return fallback
    }
    if (value < min || value > range.max) {
      const hint = !small && value > 0 && value < range.min && (field === "maxBytes" || field === "maxRows") ?
        ` (below the floor: set ${naming.field("allowSmallBuffers")} to accept it)` :
        ""
      problem(field, `${value} is out of range${hint}`, allowed)
      return fallback
    }
    return value
  }
  const maxBytes = integer("maxBytes", defaults.maxBytes, " bytes")
  const maxRows = integer("maxRows", defaults.maxRows)
  const maxRetries = integer("maxRetries", defaults.maxRetries)
  const ioThreadCount = integer("ioThreadCount", defaults.ioThreadCount)
  const maxRedirects = integer("maxRedirects", defaults.maxRedirects)
  const labelKeepMaxSecond = o.labelKeepMaxSecond === undefined ? undefined : integer("labelKeepMaxSecond", 0, " s")

  // durations
  const duration = (
    field:
      | "flushInterval"
      | "retryInterval"
      | "retryMaxDelay"
      | "connectTimeout"
      | "socketTimeout"
      | "waitForContinueTimeout"
      | "labelStateTimeout"
      | "watchdogTimeout",
    fallback: Duration.Duration
  ): Duration.Duration => {
    const value = o[field]
    if (value === undefined) return fallback
    const range = ranges[field]
    const small = allowSmall && field === "flushInterval"
    const min = small ? 1 : range.min
    const allowed = rangeText(min, range.max, " ms")
    if (typeof value === "number" && (Number.isNaN(value) || value < 0)) {
      problem(field, `${value} ms is out of range`, allowed)
      return fallback
    }
    const decoded = Duration.decodeUnknown(value)
    if (Option.isNone(decoded)) {
      problem(field, `${JSON.stringify(value)} is not a duration`, allowed)
      return fallback
    }
    const ms = Duration.toMillis(decoded.value)
    if (ms < min || ms > range.max) {
      const hint = !small && field === "flushInterval" && ms > 0 && ms < range.min ?
        ` (below the floor: set ${naming.field("allowSmallBuffers")} to accept it)` :
        ""
      problem(field, `${fmt(ms)} ms is out of range${hint}`, allowed)
      return fallback
    }
    return decoded.value
  }
  const flushInterval = duration("flushInterval", defaults.flushInterval)
  const problemsBeforeRetry = problems.length
  const retryInterval = duration("retryInterval", defaults.retryInterval)
  const retryMaxDelay = duration("retryMaxDelay", defaults.retryMaxDelay)
  if (problems.length === problemsBeforeRetry && Duration.lessThan(retryMaxDelay, retryInterval)) {
    problem(
      o.retryMaxDelay !== undefined ? "retryMaxDelay" : "retryInterval",
      `the retry cap (${Duration.toMillis(retryMaxDelay)} ms) is below the retry base delay (${
        Duration.toMillis(retryInterval)
      } ms)`,
      `${naming.field("retryInterval")} <= ${naming.field("retryMaxDelay")}`
    )
  }
  const connectTimeout = duration("connectTimeout", defaults.connectTimeout)
  const socketTimeout = o.socketTimeout === undefined ?
    Option.none() :
    Option.some(duration("socketTimeout", Duration.zero))
  const waitForContinueTimeout = duration("waitForContinueTimeout", defaults.waitForContinueTimeout)
  const labelStateTimeout = duration("labelStateTimeout", defaults.labelStateTimeout)
  const watchdogTimeout = o.watchdogTimeout === undefined ?
    Option.none() :
    Option.some(duration("watchdogTimeout", Duration.zero))

  // booleans
  const bool = (
    field:
      | "sanitizeErrorLog"
      | "csvJsonFallback"
      | "useTransactionStreamLoad"
      | "allowSmallBuffers"
      | "skipLostCheckpoint"
      | "startupCheck"
      | "adaptiveConcurrency",
    fallback: boolean
  ): boolean => {
    const value = o[field]
    if (value === undefined) return fallback
    if (typeof value !== "boolean") {
      problem(field, `${JSON.stringify(value)} is not a boolean`, "true | false")
      return fallback
    }
    return value
  }
  const sanitizeErrorLog = bool("sanitizeErrorLog", defaults.sanitizeErrorLog)
  const csvJsonFallback = bool("csvJsonFallback", defaults.csvJsonFallback)
  const useTransactionStreamLoad = bool("useTransactionStreamLoad", defaults.useTransactionStreamLoad)
  bool("allowSmallBuffers", defaults.allowSmallBuffers)
  const skipLostCheckpoint = bool("skipLostCheckpoint", false)
  const startupCheck = bool("startupCheck", defaults.startupCheck)
  // adaptive concurrency: the ceiling is the loads in flight the sink has slots (and sockets) for
  const adaptiveEnabled = bool("adaptiveConcurrency", defaults.adaptiveConcurrency)
  const adaptiveMax = integer("adaptiveConcurrencyMax", ioThreadCount)
  const adaptiveInitial = integer(
    "adaptiveConcurrencyInitial",
    Math.min(defaults.adaptiveConcurrencyInitial, adaptiveMax)
  )
  if (!adaptiveEnabled) {
    for (const field of ["adaptiveConcurrencyInitial", "adaptiveConcurrencyMax"] as const) {
      if (o[field] !== undefined) {
        problem(field, `has no effect without ${naming.field("adaptiveConcurrency")}=true`)
      }
    }
  } else if (adaptiveMax > ioThreadCount) {
    problem(
      "adaptiveConcurrencyMax",
      `${adaptiveMax} is above ${naming.field("ioThreadCount")} (${ioThreadCount}), the ceiling of loads in flight`,
      rangeText(1, ioThreadCount)
    )
  } else if (adaptiveInitial > adaptiveMax) {
    problem(
      "adaptiveConcurrencyInitial",
      `${adaptiveInitial} is above the adaptive max (${adaptiveMax})`,
      rangeText(1, adaptiveMax)
    )
  }
  for (const p of mergeCommitProblems(properties, format, naming)) problems.push(p)
  if (useTransactionStreamLoad && (properties["enable_merge_commit"] ?? "").toLowerCase() === "true") {
    problem(
      "useTransactionStreamLoad",
      `conflicts with ${naming.property("enable_merge_commit")}=true: merge commit is plain Stream Load with ` +
        "server-generated labels, not a transaction"
    )
  }

  // time zone
  let timeZone: string = defaults.timeZone
  if (o.timeZone !== undefined) {
    let valid = typeof o.timeZone === "string" && o.timeZone.length > 0
    if (valid) {
      try {
        new Intl.DateTimeFormat("en-US", { timeZone: o.timeZone as string })
      } catch {
        valid = false
      }
    }
    if (valid) timeZone = o.timeZone as string
    else problem("timeZone", `${JSON.stringify(o.timeZone)} is not a known time zone`, "an IANA name, e.g. UTC")
  }

  // be-host-map
  const beHostMap = new Map<string, string>()
  if (o.beHostMap !== undefined) {
    const allowed = "internal:port=reachable:port (or =https://reachable:port),…"
    let pairs: Array<readonly [string, unknown]> = []
    if (typeof o.beHostMap === "string") {
      for (const entry of splitList(o.beHostMap)) {
        const eq = entry.indexOf("=")
        if (eq < 0) problem("beHostMap", `"${entry}" has no "="`, allowed)
        else pairs.push([entry.slice(0, eq).trim(), entry.slice(eq + 1).trim()])
      }
    } else if (isRecord(o.beHostMap)) pairs = Object.entries(o.beHostMap)
    else problem("beHostMap", "must be a string or a record", allowed)
    for (const [from, to] of pairs) {
      const a = parseHostPort(from)
      // the reachable side may carry a scheme (`https://proxy:443`: a BE reached through a TLS proxy), which the
      // transport's host map applies (internal/client/transport.ts, applyHostMap)
      const target = typeof to === "string" ? reachable(to) : undefined
      if (a === undefined || target === undefined) {
        problem(
          "beHostMap",
          `"${from}=${String(to)}" is not host:port=host:port (or host:port=http(s)://host:port)`,
          allowed
        )
      } else {
        const key = `${a.host}:${a.port}`
        if (beHostMap.has(key)) problem("beHostMap", `"${key}" is mapped twice`, allowed)
        else beHostMap.set(key, target)
      }
    }
  }

  // tls
  let tls: TlsConfig = { verify: true, allowHttpRedirect: false }
  if (o.tls !== undefined) {
    if (!isRecord(o.tls)) problem("tls", "must be a record", "{ ca, cert, key, serverName, verify, allowHttpRedirect }")
    else {
      const t = o.tls
      const tlsProblem = (sub: TlsField, reason: string, allowed?: string) =>
        problems.push(
          allowed === undefined ? { key: tlsName(naming, sub), reason } : { key: tlsName(naming, sub), reason, allowed }
        )
      const pem = (sub: "ca" | "cert", what: string): string | undefined => {
        const v = t[sub]
        if (v === undefined) return undefined
        if (typeof v !== "string" || !v.includes("-----BEGIN ")) {
          tlsProblem(sub, `is not PEM text (${what})`, "-----BEGIN CERTIFICATE-----…")
          return undefined
        }
        return v
      }
      const ca = pem("ca", "the CA certificates")
      const cert = pem("cert", "the client certificate")
      let key: Redacted.Redacted<string> | undefined
      if (t.key !== undefined) {
        const text = Redacted.isRedacted(t.key) ? Redacted.value(t.key as Redacted.Redacted<unknown>) : t.key
        // the key's text is never shown
        if (typeof text !== "string" || !text.includes("-----BEGIN ")) {
          tlsProblem("key", "is not PEM text (the client private key)", "-----BEGIN PRIVATE KEY-----…")
        } else key = Redacted.isRedacted(t.key) ? t.key as Redacted.Redacted<string> : Redacted.make(text)
      }
      const missing: TlsField | undefined = t.cert === undefined && t.key !== undefined ?
        "cert" :
        t.key === undefined && t.cert !== undefined ?
        "key" :
        undefined
      // not when the missing half was given and refused already (a file that cannot be read)
      if (missing !== undefined && !problems.some((p) => p.key === tlsName(naming, missing))) {
        tlsProblem(missing, "is required with the other half of the client certificate")
      }
      let serverName: string | undefined
      if (t.serverName !== undefined) {
        if (typeof t.serverName !== "string" || !/^[A-Za-z0-9.-]+$/.test(t.serverName)) {
          tlsProblem("serverName", `${JSON.stringify(t.serverName)} is not a host name`, "e.g. starrocks.example.com")
        } else serverName = t.serverName
      }
      const flag = (sub: "verify" | "allowHttpRedirect", fallback: boolean): boolean => {
        const v = t[sub]
        if (v === undefined) return fallback
        if (typeof v !== "boolean") {
          tlsProblem(sub, `${JSON.stringify(v)} is not a boolean`, "true | false")
          return fallback
        }
        return v
      }
      for (const k of Object.keys(t)) {
        if (!(tlsFields as ReadonlyArray<string>).includes(k)) {
          const suggestion = suggest(k, tlsFields)
          const key = naming === typedNaming ? `tls.${k}` : k
          problems.push(
            suggestion === undefined ?
              { key, reason: "is not a TLS option" } :
              { key, reason: "is not a TLS option", suggestion: `tls.${suggestion}` }
          )
        }
      }
      tls = {
        ...(ca !== undefined ? { ca } : {}),
        ...(cert !== undefined ? { cert } : {}),
        ...(key !== undefined ? { key } : {}),
        ...(serverName !== undefined ? { serverName } : {}),
        verify: flag("verify", true),
        allowHttpRedirect: flag("allowHttpRedirect", false)
      }
    }
  }

  // server version
  let serverVersion: Option.Option<string> = Option.none()
  if (o.serverVersion !== undefined) {
    if (typeof o.serverVersion === "string" && /^\d+\.\d+(\.\d+)*([-+][-+.\w]*)?$/.test(o.serverVersion)) {
      serverVersion = Option.some(o.serverVersion)
    } else problem("serverVersion", `${JSON.stringify(o.serverVersion)} is not a version`, "e.g. 3.3.0")
  }

  // unknown typed options (JavaScript callers, spread objects)
  if (naming === typedNaming) {
    for (const key of Object.keys(o)) {
      if (!(fields as ReadonlyArray<string>).includes(key)) {
        const suggestion = suggest(key, fields)
        problems.push(
          suggestion === undefined
            ? { key, reason: "is not an option" }
            : { key, reason: "is not an option", suggestion }
        )
      }
    }
  }

  if (problems.length > 0) return Either.left(StarRocksConfigError.fromProblems(problems))
  const given: Partial<Record<Field, string>> = {}
  for (const f of fields) if (o[f] !== undefined) given[f] = naming.field(f)
  if (o.format === undefined && formatFromProperties !== undefined) given.format = naming.property("format")
  if (o.compression === undefined && properties["compression"] !== undefined) {
    given.compression = naming.property("compression")
  }
  return Either.right({
    loadUrl,
    jdbcUrl,
    database,
    table,
    username,
    password,
    semantic,
    version,
    labelPrefix,
    format,
    maxBytes,
    maxRows,
    flushInterval,
    maxRetries,
    retryInterval,
    retryMaxDelay,
    connectTimeout,
    socketTimeout,
    waitForContinueTimeout,
    ioThreadCount,
    properties,
    timeZone,
    beHostMap,
    directBackends,
    maxRedirects,
    sanitizeErrorLog,
    serverVersion,
    csvJsonFallback,
    useTransactionStreamLoad,
    labelStateTimeout,
    watchdogTimeout,
    skipLostCheckpoint,
    ...(labelKeepMaxSecond !== undefined ? { labelKeepMaxSecond } : {}),
    startupCheck,
    ...(adaptiveEnabled ? { adaptiveConcurrency: { initial: adaptiveInitial, max: adaptiveMax } } : {}),
    tls,
    given
  })
}

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * Validates typed options and returns the resolved config, or a `StarRocksConfigError` listing every problem.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeEither = (options: Options): Either.Either<StarRocksConfig, StarRocksConfigError> =>
  resolve(options, typedNaming)

/**
 * Validates typed options and returns the resolved config, as a plain value so that it can be passed straight to
 * `StarRocksSink.layer(config)`. Throws a `StarRocksConfigError` (an `Error`) on an invalid value; use
 * `makeEffect` for the typed-error path.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { StarRocksConfig } from "@effect-starrocks/sink"
 *
 * const config = StarRocksConfig.make({
 *   loadUrl: ["fe1:8030", "fe2:8030"],
 *   database: "db",
 *   table: "t",
 *   username: "root",
 *   password: Redacted.make("")
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): StarRocksConfig => {
  const result = resolve(options, typedNaming)
  if (Either.isLeft(result)) throw result.left
  return result.right
}

/**
 * `make` with the failure in the error channel.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeEffect = (options: Options): Effect.Effect<StarRocksConfig, StarRocksConfigError> =>
  Effect.suspend(() => resolve(options, typedNaming))

const parseInteger = (text: string): number | undefined => {
  const t = text.trim()
  if (!/^[+-]?\d+$/.test(t)) return undefined
  const n = Number(t)
  return Number.isSafeInteger(n) ? n : undefined
}

const parseBoolean = (text: string): boolean | undefined => {
  const t = text.trim().toLowerCase()
  return t === "true" ? true : t === "false" ? false : undefined
}

type Mutable<A> = { -readonly [K in keyof A]?: A[K] }

interface ParsedRecord {
  readonly options: Options
  readonly problems: ReadonlyArray<ConfigProblem>
  readonly ignored: ReadonlyArray<readonly [string, string]>
}

/**
 * The Flink connector's keys → typed options. `nameOf` turns a Flink key into the key to report (itself, or the
 * environment variable).
 */
const parseRecord = (
  record: Readonly<Record<string, string>>,
  nameOf: (flinkKey: string) => string,
  password: Option.Option<Redacted.Redacted<string>>
): ParsedRecord => {
  const problems: Array<ConfigProblem> = []
  const ignored: Array<readonly [string, string]> = []
  const out: Mutable<Options> = {}
  const byProperty = new Map<string, Field>(fields.map((f) => [keyTable[f].property, f]))
  const props: Record<string, string> = {}
  let hasProps = false
  if (Option.isSome(password)) out.password = password.value

  for (const [key, rawValue] of Object.entries(record)) {
    if (typeof rawValue !== "string") {
      problems.push({ key: nameOf(key), reason: "must be a string" })
      continue
    }
    const value = rawValue
    const trimmed = value.trim()
    if (key === "connector") {
      if (trimmed !== "starrocks") {
        problems.push({ key: nameOf(key), reason: `"${value}" is not this connector`, allowed: "starrocks" })
      }
      continue
    }
    if (key === "password") {
      out.password = Redacted.make(value)
      continue
    }
    if (key.startsWith("sink.properties.")) {
      const name = key.slice("sink.properties.".length)
      if (name.toLowerCase() === "format") {
        if (out.format !== undefined) {
          problems.push({ key: nameOf(key), reason: "is given twice (names are case-insensitive)" })
        } else out.format = trimmed.toLowerCase() as Options["format"]
      } else if (name.length === 0) problems.push({ key: nameOf(key), reason: "names no Stream Load property" })
      else if (name.toLowerCase() in props) {
        problems.push({ key: nameOf(key), reason: "is given twice (names are case-insensitive)" })
      } else {
        props[name.toLowerCase()] = value
        hasProps = true
      }
      continue
    }
    if (key in ignoredKeys) {
      ignored.push([nameOf(key), ignoredKeys[key]!])
      continue
    }
    const tlsField = tlsFields.find((f) => tlsKeys[f].property === key)
    if (tlsField !== undefined) {
      const tls = (out.tls ?? {}) as Mutable<TlsOptions>
      out.tls = tls
      if (tlsField === "ca" || tlsField === "cert" || tlsField === "key") {
        // a file name; its text is read here (a key file's text is kept redacted and never shown)
        let text: string | undefined
        try {
          text = Fs.readFileSync(trimmed, "utf8")
        } catch (error) {
          const code = (error as { code?: unknown }).code
          problems.push({
            key: nameOf(key),
            reason: `cannot read the file "${trimmed}"${typeof code === "string" ? ` (${code})` : ""}`,
            allowed: "the path of a PEM file"
          })
        }
        if (text !== undefined) {
          if (!text.includes("-----BEGIN ")) {
            problems.push({ key: nameOf(key), reason: `the file "${trimmed}" holds no PEM text` })
          } else if (tlsField === "key") tls.key = Redacted.make(text)
          else tls[tlsField] = text
        }
      } else if (tlsField === "serverName") tls.serverName = trimmed
      else {
        const b = parseBoolean(value)
        if (b === undefined) {
          problems.push({ key: nameOf(key), reason: `"${value}" is not a boolean`, allowed: "true | false" })
        } else tls[tlsField] = b
      }
      continue
    }
    const rejected = rejectedKeys[key] ?? rejectedPrefixes.find(([prefix]) => key.startsWith(prefix))?.[1]
    if (rejected !== undefined) {
      problems.push({ key: nameOf(key), reason: rejected })
      continue
    }
    const field = byProperty.get(key)
    if (field === undefined || field === "properties") {
      const suggestion = suggest(key, propertyKeys)
      problems.push(
        suggestion === undefined ?
          { key: nameOf(key), reason: "is not a known option" } :
          { key: nameOf(key), reason: "is not a known option", suggestion }
      )
      continue
    }
    const bad = (what: string, allowed?: string): void => {
      const p: ConfigProblem = { key: nameOf(key), reason: `"${value}" is not ${what}` }
      problems.push(allowed === undefined ? p : { ...p, allowed })
    }
    switch (field) {
      case "maxBytes":
      case "maxRows":
      case "maxRetries":
      case "ioThreadCount":
      case "maxRedirects":
      case "labelKeepMaxSecond":
      case "adaptiveConcurrencyInitial":
      case "adaptiveConcurrencyMax": {
        const n = parseInteger(value)
        if (n === undefined) bad("an integer", rangeText(ranges[field].min, ranges[field].max))
        else out[field] = n
        break
      }
      case "flushInterval":
      case "retryInterval":
      case "retryMaxDelay":
      case "connectTimeout":
      case "waitForContinueTimeout":
      case "labelStateTimeout": {
        const n = parseInteger(value)
        if (n === undefined) bad("an integer number of milliseconds", rangeText(ranges[field].min, ranges[field].max))
        else out[field] = n
        break
      }
      case "socketTimeout": {
        const n = parseInteger(value)
        if (n === undefined) bad("an integer number of milliseconds", "-1 (none) or [1, 86400000]")
        else if (n !== -1) out.socketTimeout = n
        break
      }
      case "watchdogTimeout": {
        const n = parseInteger(value)
        if (n === undefined) bad("an integer number of milliseconds", "-1 (none) or [100, 86400000]")
        else if (n !== -1) out.watchdogTimeout = n
        break
      }
      case "sanitizeErrorLog":
      case "csvJsonFallback":
      case "useTransactionStreamLoad":
      case "allowSmallBuffers":
      case "skipLostCheckpoint":
      case "startupCheck":
      case "adaptiveConcurrency": {
        const b = parseBoolean(value)
        if (b === undefined) bad("a boolean", "true | false")
        else out[field] = b
        break
      }
      case "semantic":
        out.semantic = trimmed.toLowerCase() as Options["semantic"]
        break
      case "version":
        out.version = trimmed.toUpperCase() as Options["version"]
        break
      case "format":
        out.format = trimmed.toLowerCase() as Options["format"]
        break
      case "compression":
        out.compression = trimmed.toLowerCase() as Options["compression"]
        break
      case "loadUrl":
      case "jdbcUrl":
      case "database":
      case "table":
      case "username":
      case "labelPrefix":
      case "timeZone":
      case "beHostMap":
      case "directBackends":
      case "serverVersion":
        out[field] = trimmed
        break
      case "password":
      case "tls":
        break
    }
  }
  if (hasProps) out.properties = props
  return { options: out as Options, problems, ignored }
}

const logIgnored = (ignored: ReadonlyArray<readonly [string, string]>): Effect.Effect<void> =>
  ignored.length === 0 ?
    Effect.void :
    Effect.logWarning(
      "StarRocks config: Flink connector options that have no effect here (ignored): " +
        ignored.map(([k, why]) => `${k} (${why})`).join("; ")
    )

/**
 * Reads the StarRocks Flink connector's option keys verbatim (`load-url`, `sink.buffer-flush.max-bytes`,
 * `sink.properties.*`, …) plus this library's extensions, and validates them. Every problem (unknown key with a
 * "did you mean", missing required key, bad or out-of-range value) is collected into one `StarRocksConfigError`.
 * Flink-only keys without an effect here are accepted and logged once as ignored.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromProperties = (
  record: Readonly<Record<string, string>>
): Effect.Effect<StarRocksConfig, StarRocksConfigError> =>
  Effect.suspend(() => {
    const parsed = parseRecord(record, (k) => k, Option.none())
    return Effect.zipRight(logIgnored(parsed.ignored), resolve(parsed.options, propertyNaming, parsed.problems))
  })

// -----------------------------------------------------------------------------
// environment (Config)
// -----------------------------------------------------------------------------

const envFields = fields.filter((f) => f !== "password" && f !== "properties" && f !== "tls")

/** The variables as strings (password redacted), as `rawEnv` reads them. */
interface RawEnv {
  readonly values: Readonly<Record<string, Option.Option<string>>>
  readonly properties: Option.Option<string>
  readonly tls: Readonly<Record<string, Option.Option<string>>>
  readonly password: Option.Option<Redacted.Redacted<string>>
}

/**
 * The variables as strings (password redacted), nested under `STARROCKS`: about a hundred `Config` values, built when
 * first read (`config`, `layerConfig`), not at every start of a program that imports this module (docs/benchmark.md,
 * session 15).
 */
const rawEnv: Config.Config<RawEnv> = Config.suspend(() => rawEnvConfig ??= makeRawEnv())
let rawEnvConfig: Config.Config<RawEnv> | undefined
const makeRawEnv = (): Config.Config<RawEnv> =>
  Config.all({
    values: Config.all(
      Object.fromEntries(envFields.map((f) => [f, Config.option(Config.string(keyTable[f].env))]))
    ),
    properties: Config.option(Config.string(keyTable.properties.env)),
    tls: Config.all(
      Object.fromEntries(tlsFields.map((f) => [f, Config.option(Config.string(tlsKeys[f].env))]))
    ),
    password: Config.option(Config.redacted(keyTable.password.env))
  }).pipe(Config.nested("STARROCKS"))

/** `{"k":"v"}` (JSON) or `k=v;k=v`. */
const parseEnvProperties = (
  text: string
): Either.Either<Record<string, string>, string> => {
  const t = text.trim()
  if (t.startsWith("{")) {
    let json: unknown
    try {
      json = JSON.parse(t)
    } catch {
      return Either.left("is not valid JSON")
    }
    if (!isRecord(json) || !Object.values(json).every((v) => typeof v === "string")) {
      return Either.left("must be a JSON object of strings")
    }
    return Either.right(json as Record<string, string>)
  }
  const out: Record<string, string> = {}
  for (const entry of t.split(";").map((s) => s.trim()).filter((s) => s.length > 0)) {
    const eq = entry.indexOf("=")
    if (eq <= 0) return Either.left(`"${entry}" is not name=value`)
    out[entry.slice(0, eq).trim()] = entry.slice(eq + 1)
  }
  return Either.right(out)
}

const fromEnvValues = (raw: RawEnv): {
  readonly result: Either.Either<StarRocksConfig, StarRocksConfigError>
  readonly ignored: ReadonlyArray<readonly [string, string]>
} => {
  const record: Record<string, string> = {}
  const envOf = new Map<string, string>()
  for (const f of envFields) {
    const value = raw.values[f]
    const property = keyTable[f].property
    envOf.set(property, envPrefix + keyTable[f].env)
    if (value !== undefined && Option.isSome(value)) record[property] = value.value
  }
  for (const f of tlsFields) {
    const value = raw.tls[f]
    envOf.set(tlsKeys[f].property, envPrefix + tlsKeys[f].env)
    if (value !== undefined && Option.isSome(value)) record[tlsKeys[f].property] = value.value
  }
  const extra: Array<ConfigProblem> = []
  if (Option.isSome(raw.properties)) {
    const parsed = parseEnvProperties(raw.properties.value)
    if (Either.isLeft(parsed)) {
      extra.push({
        key: envPrefix + keyTable.properties.env,
        reason: parsed.left,
        allowed: "{\"name\":\"value\",…} or name=value;name=value"
      })
    } else {
      for (const [name, value] of Object.entries(parsed.right)) {
        const key = `sink.properties.${name}`
        envOf.set(key, `${envPrefix}PROPERTIES (${name})`)
        if (name.toLowerCase() === "format" && record["sink.properties.format"] !== undefined) {
          extra.push({ key: `${envPrefix}PROPERTIES (${name})`, reason: `conflicts with ${envPrefix}FORMAT` })
        } else record[key] = value
      }
    }
  }
  const parsed = parseRecord(record, (k) => envOf.get(k) ?? k, raw.password)
  return {
    result: resolve(parsed.options, envNaming, [...extra, ...parsed.problems]),
    ignored: parsed.ignored
  }
}

/**
 * The config read from `STARROCKS_*` variables (`STARROCKS_LOAD_URL`, `STARROCKS_DATABASE`, `STARROCKS_PASSWORD`
 * as a `Redacted`, `STARROCKS_BUFFER_FLUSH_MAX_BYTES`, …; the full list is in `docs/configuration.md`), with the
 * same validation as `fromProperties`. An invalid config is a `ConfigError.InvalidData` carrying the
 * `StarRocksConfigError` message; `layerConfig()` keeps the typed `StarRocksConfigError` instead.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<StarRocksConfig> = rawEnv.pipe(
  // the path is relative to the nesting: `[]` is STARROCKS itself
  Config.mapOrFail((raw) => Either.mapLeft(fromEnvValues(raw).result, (e) => ConfigError.InvalidData([], e.message)))
)

/** Every `STARROCKS_*` variable this module reads (without the prefix). */
const knownVariables: ReadonlyArray<string> = [
  ...envFields.map((f) => keyTable[f].env),
  ...tlsFields.map((f) => tlsKeys[f].env),
  keyTable.properties.env,
  keyTable.password.env
]

/**
 * A `STARROCKS_*` variable that this module does not read (a typo, or a variable of another tool), with the
 * closest known variable when one is close enough (Levenshtein distance).
 *
 * @since 0.2.0
 * @category models
 */
export interface UnknownVariable {
  readonly variable: string
  readonly suggestion?: string | undefined
}

/**
 * The `STARROCKS_*` variables of the current `ConfigProvider` that are not options here, each with a "did you
 * mean". Read through the provider's `enumerateChildren` (the environment, `ConfigProvider.fromMap` with either
 * delimiter, `fromJson`); values are never read. `layerConfig()` logs them as one warning.
 *
 * @since 0.2.0
 * @category config
 */
export const unknownVariables: Effect.Effect<ReadonlyArray<UnknownVariable>> = Effect.gen(function*() {
  const provider = yield* Effect.configProviderWith(Effect.succeed<ConfigProvider.ConfigProvider>)
  const flat = provider.flattened
  const children = (path: ReadonlyArray<string>) =>
    flat.enumerateChildren(path).pipe(
      Effect.map((set) => Array.from(HashSet.values(set))),
      Effect.orElseSucceed((): ReadonlyArray<string> => [])
    )
  // a variable is a path without children, or a known name (STARROCKS_TABLE and STARROCKS_TABLE_X may both exist)
  const names: Array<string> = []
  const walk = (path: ReadonlyArray<string>, depth: number): Effect.Effect<void> =>
    Effect.flatMap(children(path), (next) =>
      Effect.gen(function*() {
        const name = path.slice(1).join("_")
        if (path.length > 1 && (next.length === 0 || knownVariables.includes(name))) names.push(name)
        if (depth >= 8) return
        for (const child of next) yield* walk([...path, child], depth + 1)
      }))
  yield* walk(["STARROCKS"], 0)
  const unknown: Array<UnknownVariable> = []
  for (const name of [...new Set(names)].sort()) {
    if (knownVariables.includes(name)) continue
    const suggestion = suggest(name, knownVariables)
    unknown.push({
      variable: envPrefix + name,
      ...(suggestion !== undefined ? { suggestion: envPrefix + suggestion } : {})
    })
  }
  return unknown
})

const logUnknownVariables: Effect.Effect<void> = Effect.flatMap(
  unknownVariables,
  (unknown) =>
    unknown.length === 0 ? Effect.void : Effect.logWarning(
      "StarRocks config: STARROCKS_* variables that are not options (ignored): " +
        unknown.map((u) => u.variable + (u.suggestion !== undefined ? ` (did you mean ${u.suggestion}?)` : "")).join(
          "; "
        )
    )
)

// -----------------------------------------------------------------------------
// where the options apply
// -----------------------------------------------------------------------------

/**
 * What a config is used for: the sink (`at-least-once`: `StarRocksSink.make`; `exactly-once`:
 * `StarRocksSink.exactlyOnce` and `recover`) and whether its items are pre-serialized records
 * (`StarRocksSink.raw`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Use {
  readonly semantic: "at-least-once" | "exactly-once"
  readonly raw?: boolean | undefined
}

/**
 * The problems of using a config where some of its options do not apply: an option that is accepted must have an
 * effect, so one that would be ignored by this sink is a problem, named as the user wrote it. Empty when every
 * option applies. A config built by hand (without `given`) is checked by its values only (`semantic`).
 *
 * - `sink.semantic` must name the sink it is used with (`exactly-once` with `StarRocksSink.make`, which loads
 *   at-least-once, is refused; an explicit `at-least-once` with `exactlyOnce` too).
 * - `sink.version` V1/V2 chooses the exactly-once protocol; the at-least-once sink has
 *   `sink.at-least-once.use-transaction-stream-load` instead.
 * - `sink.buffer-flush.interval-ms` and `sink.at-least-once.use-transaction-stream-load` act in the at-least-once
 *   sink only (exactly-once seals at barriers, always through transactions).
 * - With pre-serialized records nothing is encoded or checked: `jdbc-url`, `sink.timezone`,
 *   `sink.csv.json-fallback` and `sink.server-version` have no effect there.
 *
 * @since 0.2.0
 * @category utils
 */
export const useProblems = (self: StarRocksConfig, use: Use): ReadonlyArray<ConfigProblem> => {
  const problems: Array<ConfigProblem> = []
  const given = self.given
  const nameOf = (field: Field): string => given?.[field] ?? keyTable[field].property
  const isGiven = (field: Field): boolean => given !== undefined && given[field] !== undefined
  if (use.semantic === "at-least-once") {
    if (self.semantic === "exactly-once") {
      problems.push({
        key: nameOf("semantic"),
        reason: "is exactly-once, and StarRocksSink.make loads at-least-once: use StarRocksSink.exactlyOnce " +
          "(with Checkpoint barriers), or set at-least-once",
        allowed: "at-least-once (StarRocksSink.make)"
      })
    }
    for (const field of ["skipLostCheckpoint", "labelKeepMaxSecond"] as const) {
      if (isGiven(field)) {
        problems.push({
          key: nameOf(field),
          reason: "acts on exactly-once recovery and has no effect on StarRocksSink.make (use " +
            "StarRocksSink.exactlyOnce)"
        })
      }
    }
    if (self.version !== "AUTO" && (given === undefined || isGiven("version"))) {
      problems.push({
        key: nameOf("version"),
        reason: `${self.version} chooses the exactly-once protocol and has no effect on StarRocksSink.make (its ` +
          `transaction path is ${nameOf("useTransactionStreamLoad")})`,
        allowed: "AUTO"
      })
    }
  } else {
    if (isGiven("semantic") && self.semantic === "at-least-once") {
      problems.push({
        key: nameOf("semantic"),
        reason: "is at-least-once, and StarRocksSink.exactlyOnce loads exactly-once: use StarRocksSink.make, or " +
          "set exactly-once",
        allowed: "exactly-once (StarRocksSink.exactlyOnce)"
      })
    }
    if ((self.properties["enable_merge_commit"] ?? "").trim().toLowerCase() === "true") {
      problems.push({
        key: `${given?.properties === "properties" ? "properties" : "sink.properties"}.enable_merge_commit`,
        reason: "merge commit cannot be exactly-once: the server generates the labels and merges loads into " +
          "transactions of its own, so a load cannot be prepared and committed at a checkpoint (use StarRocksSink.make)"
      })
    }
    if (self.adaptiveConcurrency !== undefined) {
      problems.push({
        key: nameOf("adaptiveConcurrency"),
        reason: "has no effect on StarRocksSink.exactlyOnce, which loads each table into its one open transaction, " +
          "one load at a time (adaptive concurrency is for StarRocksSink.make)"
      })
    }
    if (isGiven("flushInterval")) {
      problems.push({
        key: nameOf("flushInterval"),
        reason: "has no effect on StarRocksSink.exactlyOnce, which seals its batches at Checkpoint barriers (and " +
          "at max-rows / max-bytes)"
      })
    }
    if (isGiven("watchdogTimeout")) {
      problems.push({
        key: nameOf("watchdogTimeout"),
        reason: "has no effect on StarRocksSink.exactlyOnce, whose batches wait for Checkpoint barriers (the " +
          "watchdog watches StarRocksSink.make)"
      })
    }
    if (isGiven("useTransactionStreamLoad")) {
      problems.push({
        key: nameOf("useTransactionStreamLoad"),
        reason: "has no effect on StarRocksSink.exactlyOnce, which always loads through transactions (the " +
          "protocol is sink.version)"
      })
    }
  }
  if (use.raw === true) {
    const notEncoded = ["jdbcUrl", "timeZone", "csvJsonFallback", "serverVersion"] as const
    for (const field of notEncoded) {
      if (isGiven(field)) {
        problems.push({
          key: nameOf(field),
          reason: "has no effect on pre-serialized records (StarRocksSink.raw), which are sent as they are, " +
            "without encoding or a schema check"
        })
      }
    }
  }
  return problems
}

/**
 * `useProblems` as an effect: fails with a `StarRocksConfigError` listing them. Run by the sinks at start.
 *
 * @since 0.2.0
 * @category utils
 */
export const checkUse = (self: StarRocksConfig, use: Use): Effect.Effect<void, StarRocksConfigError> =>
  Effect.suspend(() => {
    const problems = useProblems(self, use)
    return problems.length === 0 ? Effect.void : Effect.fail(StarRocksConfigError.fromProblems(problems))
  })

// -----------------------------------------------------------------------------
// warnings and layers
// -----------------------------------------------------------------------------

/**
 * Warnings about a resolved config: buffer settings below the documented floors (only possible with
 * `allowSmallBuffers`). Empty when there is nothing to say.
 *
 * @since 0.1.0
 * @category utils
 */
export const warnings = (self: StarRocksConfig): ReadonlyArray<string> => {
  const out: Array<string> = []
  if (self.maxBytes < ranges.maxBytes.min) {
    out.push(`maxBytes (sink.buffer-flush.max-bytes) ${self.maxBytes} < ${ranges.maxBytes.min}`)
  }
  if (self.maxRows < ranges.maxRows.min) {
    out.push(`maxRows (sink.buffer-flush.max-rows) ${self.maxRows} < ${ranges.maxRows.min}`)
  }
  const interval = Duration.toMillis(self.flushInterval)
  if (interval < ranges.flushInterval.min) {
    out.push(`flushInterval (sink.buffer-flush.interval-ms) ${interval} ms < ${ranges.flushInterval.min} ms`)
  }
  return out
}

/**
 * Logs `warnings(config)` as one warning line, if any. Called by the layers of this module; a layer that
 * provides a config built elsewhere (e.g. `StarRocksSink.layer(config)`) should call it too.
 *
 * @since 0.1.0
 * @category utils
 */
export const logWarnings = (self: StarRocksConfig): Effect.Effect<void> => {
  const list = warnings(self)
  return list.length === 0 ? Effect.void : Effect.logWarning(
    "StarRocks config: buffer settings below the documented floors (allowed by allowSmallBuffers): " +
      list.join("; ") +
      ". Many small loads cost StarRocks a version each (\"too many versions\"); use in tests and low-latency " +
      "pipelines only."
  )
}

/**
 * Provides `StarRocksConfig` from a config already resolved (`make`, `fromProperties`), logging `warnings`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFrom = (self: StarRocksConfig): Layer.Layer<StarRocksConfig> =>
  Layer.effect(StarRocksConfig, Effect.as(logWarnings(self), self))

/**
 * Provides `StarRocksConfig` from typed options, validated (`makeEffect`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<StarRocksConfig, StarRocksConfigError> =>
  Layer.effect(StarRocksConfig, Effect.tap(makeEffect(options), logWarnings))

/**
 * Provides `StarRocksConfig` from Effect `Config`: with no argument, from the `STARROCKS_*` variables (see
 * `config`; a `STARROCKS_*` variable that is not an option is logged as a warning with a "did you mean", see
 * `unknownVariables`); with a `Config.Config.Wrap<Options>`, from those configs. Either way validated, with the
 * typed `StarRocksConfigError` on an invalid value, naming every missing or invalid variable.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  wrapped?: Config.Config.Wrap<Options>
): Layer.Layer<StarRocksConfig, ConfigError.ConfigError | StarRocksConfigError> =>
  Layer.effect(
    StarRocksConfig,
    Effect.tap(
      wrapped === undefined ?
        Effect.zipRight(
          logUnknownVariables,
          Effect.flatMap(rawEnv, (raw) => {
            const { ignored, result } = fromEnvValues(raw)
            return Effect.zipRight(logIgnored(ignored), result)
          })
        ) :
        Effect.flatMap(Config.unwrap(wrapped), makeEffect),
      logWarnings
    )
  )
