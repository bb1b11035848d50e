/**
 * The resolved connection of one load client: keep-alive agents, the endpoint pools, credentials, deadlines and the
 * retry budget, shared by the operations (stream load, transaction calls, get_load_state, ErrorURL fetch).
 *
 * @internal
 */
import type { Scope } from "effect"
import { Duration, Effect, Option, Redacted } from "effect"
import type { RedirectError, TransportError } from "../../StarRocksError.js"
import * as Failover from "./failover.js"
import type { ConnectionConfig, LoadClientOptions } from "./model.js"
import type { HttpOptions, HttpRequest, HttpResponse, TlsOptions } from "./transport.js"
import { makeAgents } from "./transport.js"

/** @internal */
export interface RetryBudget {
  readonly base: Duration.Duration
  readonly maxDelay: Duration.Duration
  readonly maxRetries: number
}

/** @internal */
export interface Connection {
  readonly config: ConnectionConfig
  /** The load URLs (FEs). */
  readonly fes: Failover.EndpointPool
  /** The BEs of direct-to-BE mode, when configured. */
  readonly directBes: Failover.EndpointPool | undefined
  /** The `Authorization` header value: the only place the password is read. */
  readonly authorization: () => string
  readonly httpOptions: (socketTimeoutMs: number, maxResponseBytes?: number) => HttpOptions
  /** The server-side load timeout of a request (its `timeout` header, default 600 s), in ms. */
  readonly loadTimeoutMs: (headers: Readonly<Record<string, string>>) => number
  /** The socket deadline of a request that carries a body. */
  readonly socketTimeoutFor: (headers: Readonly<Record<string, string>>) => number
  /** The socket deadline of a bodyless control request. */
  readonly controlSocketTimeout: number
  readonly retry: RetryBudget
  readonly errorLogMaxChars: number
  readonly errorLogMaxLines: number
  /** One exchange on the first reachable endpoint of `pool` (see `Failover.send`). */
  readonly send: (
    pool: Failover.EndpointPool,
    make: (base: URL) => HttpRequest,
    socketTimeoutMs: number,
    maxResponseBytes?: number
  ) => Effect.Effect<HttpResponse, TransportError | RedirectError>
}

/**
 * Resolves the connection; the keep-alive agents live as long as the scope.
 * @internal
 */
export const make = (
  config: ConnectionConfig,
  options?: LoadClientOptions
): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.gen(function*() {
    const tlsConfig = config.tls
    // the key is read by node:tls when an https agent is made, nowhere else
    const tls: TlsOptions = {
      ca: tlsConfig?.ca,
      cert: tlsConfig?.cert,
      key: tlsConfig?.key !== undefined ? ((key) => () => Redacted.value(key))(tlsConfig.key) : undefined,
      servername: tlsConfig?.serverName,
      rejectUnauthorized: tlsConfig !== undefined ? tlsConfig.verify : options?.rejectUnauthorized ?? true
    }
    const agents = yield* Effect.acquireRelease(
      Effect.sync(() => makeAgents({ maxSockets: Math.max(4, config.ioThreadCount * 2), tls })),
      (a) => Effect.sync(() => a.destroy())
    )
    const poolOptions = {
      baseBackoffMs: Duration.toMillis(options?.endpointBackoff ?? "1 second"),
      maxBackoffMs: Duration.toMillis(options?.endpointMaxBackoff ?? "30 seconds")
    }
    const fes = Failover.make(config.loadUrl, poolOptions)
    const directBes = config.directBackends.length > 0 ? Failover.make(config.directBackends, poolOptions) : undefined

    // the only place the password is read: the header goes into node:http and nowhere else
    const authorization = (): string =>
      `Basic ${Buffer.from(`${config.username}:${Redacted.value(config.password)}`, "utf8").toString("base64")}`

    const loadTimeoutMs = (headers: Readonly<Record<string, string>>): number => {
      const t = Number(headers["timeout"] ?? 600)
      return (Number.isFinite(t) && t > 0 ? t : 600) * 1000
    }
    const connectTimeoutMs = Duration.toMillis(config.connectTimeout)
    const continueTimeoutMs = Duration.toMillis(config.waitForContinueTimeout)
    const httpOptions = (socketTimeoutMs: number, maxResponseBytes?: number): HttpOptions => ({
      connectTimeoutMs,
      continueTimeoutMs,
      socketTimeoutMs,
      maxRedirects: config.maxRedirects,
      beHostMap: config.beHostMap,
      agents,
      maxResponseBytes,
      rejectUnauthorized: tls.rejectUnauthorized,
      tls,
      allowHttpRedirect: tlsConfig?.allowHttpRedirect ?? false
    })
    const socketTimeoutFor = (headers: Readonly<Record<string, string>>): number =>
      Option.match(config.socketTimeout, {
        // no client-side read timeout configured: the server's load timeout plus a margin is the deadline
        onNone: () => loadTimeoutMs(headers) + 60_000,
        onSome: Duration.toMillis
      })
    const controlSocketTimeout = Option.match(config.socketTimeout, {
      onNone: () => 60_000,
      onSome: Duration.toMillis
    })

    return {
      config,
      fes,
      directBes,
      authorization,
      httpOptions,
      loadTimeoutMs,
      socketTimeoutFor,
      controlSocketTimeout,
      retry: { base: config.retryInterval, maxDelay: config.retryMaxDelay, maxRetries: config.maxRetries },
      errorLogMaxChars: options?.errorLogMaxChars ?? 3000,
      errorLogMaxLines: options?.errorLogMaxLines ?? 20,
      send: (pool, make, socketTimeoutMs, maxResponseBytes) =>
        Failover.send(pool, make, httpOptions(socketTimeoutMs, maxResponseBytes))
    }
  })
