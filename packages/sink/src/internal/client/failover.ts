/**
 * Failover over the load URLs: a health-tracked endpoint rotation (FE load URLs, or BE addresses in direct-to-BE
 * mode) and `send`, which runs one exchange on the first reachable endpoint.
 *
 * Each attempt asks for `candidates`: the healthy endpoints starting at a rotating cursor, then the ones marked
 * down (earliest recovery first) as a last resort. An endpoint that refuses, resets or times out is marked down
 * for a backoff that doubles per consecutive failure (capped) and is skipped until then; any HTTP answer marks
 * it up again. No TCP probe before a request.
 *
 * @internal
 */
import { Clock, Effect } from "effect"
import { TransportError } from "../../StarRocksError.js"
import type { RedirectError } from "../../StarRocksError.js"
import type { EndpointStatus } from "./model.js"
import type { HttpOptions, HttpRequest, HttpResponse } from "./transport.js"
import { exchange, originOf, parseBaseUrl } from "./transport.js"

/** @internal */
export interface Endpoint {
  readonly url: URL
  readonly origin: string
}

/** @internal */
export type { EndpointStatus }

/** @internal */
export interface EndpointPool {
  readonly endpoints: ReadonlyArray<Endpoint>
  readonly candidates: Effect.Effect<ReadonlyArray<Endpoint>>
  /** `candidates` at `now` (ms): the cursor moves as it does. */
  readonly candidatesAt: (now: number) => ReadonlyArray<Endpoint>
  readonly markDown: (endpoint: Endpoint, reason: string) => Effect.Effect<void>
  readonly markUp: (endpoint: Endpoint) => Effect.Effect<void>
  readonly status: Effect.Effect<ReadonlyArray<EndpointStatus>>
}

/** @internal */
export interface EndpointPoolOptions {
  readonly baseBackoffMs?: number | undefined
  readonly maxBackoffMs?: number | undefined
}

interface Health {
  failures: number
  downUntil: number
  lastError: string | undefined
}

/** @internal */
export const make = (urls: ReadonlyArray<string>, options?: EndpointPoolOptions): EndpointPool => {
  const base = options?.baseBackoffMs ?? 1_000
  const max = options?.maxBackoffMs ?? 30_000
  const endpoints: ReadonlyArray<Endpoint> = urls.flatMap((raw) => {
    try {
      const url = parseBaseUrl(raw)
      return [{ url, origin: originOf(url) }]
    } catch {
      // a malformed address is left out (config validation reports it); the others still serve
      return []
    }
  })
  const health: Array<Health> = endpoints.map(() => ({ failures: 0, downUntil: 0, lastError: undefined }))
  let cursor = 0

  const candidatesAt = (now: number): ReadonlyArray<Endpoint> => {
    const n = endpoints.length
    if (n === 0) return []
    const start = cursor % n
    cursor = (cursor + 1) % n
    const up: Array<Endpoint> = []
    const down: Array<[Endpoint, number]> = []
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n
      const h = health[i]!
      if (h.downUntil <= now) up.push(endpoints[i]!)
      else down.push([endpoints[i]!, h.downUntil])
    }
    if (down.length === 0) return up
    down.sort((a, b) => a[1] - b[1])
    return [...up, ...down.map(([e]) => e)]
  }
  const candidates = Clock.currentTimeMillis.pipe(Effect.map(candidatesAt))

  const indexOf = (endpoint: Endpoint) => endpoints.findIndex((e) => e.origin === endpoint.origin)

  const markDown = (endpoint: Endpoint, reason: string) =>
    Clock.currentTimeMillis.pipe(Effect.flatMap((now) => {
      const i = indexOf(endpoint)
      if (i < 0) return Effect.void
      const h = health[i]!
      h.failures += 1
      h.lastError = reason
      const backoff = Math.min(max, base * 2 ** Math.min(h.failures - 1, 20))
      h.downUntil = now + backoff
      return Effect.logWarning("load endpoint marked down").pipe(
        Effect.annotateLogs({ endpoint: endpoint.origin, reason, backoffMs: backoff, failures: h.failures })
      )
    }))

  const markUp = (endpoint: Endpoint) =>
    Effect.suspend(() => {
      const i = indexOf(endpoint)
      if (i < 0) return Effect.void
      const h = health[i]!
      const wasDown = h.failures > 0
      h.failures = 0
      h.downUntil = 0
      h.lastError = undefined
      return wasDown
        ? Effect.logInfo("load endpoint up again").pipe(Effect.annotateLogs({ endpoint: endpoint.origin }))
        : Effect.void
    })

  const status = Clock.currentTimeMillis.pipe(Effect.map((now) =>
    endpoints.map((e, i) => ({
      origin: e.origin,
      down: health[i]!.downUntil > now,
      failures: health[i]!.failures,
      downUntil: health[i]!.downUntil,
      lastError: health[i]!.lastError
    }))
  ))

  return { endpoints, candidates, candidatesAt, markDown, markUp, status }
}

/**
 * Sends one exchange to the first reachable endpoint of `pool`. A failure before any byte reached a server
 * (refused, connect timeout) moves on to the next endpoint at once; a transport failure on the first hop
 * marks that endpoint down (not a streamed body's source failing, `EBODYSOURCE`); any HTTP answer marks it up.
 * @internal
 */
export const send = (
  pool: EndpointPool,
  make: (base: URL) => HttpRequest,
  options: HttpOptions
): Effect.Effect<HttpResponse, TransportError | RedirectError> =>
  // `matchEffect`s, not a generator, and the clock read directly: one candidate and one exchange is every load's
  // path
  Effect.clockWith((clock) => {
    const candidates = pool.candidatesAt(clock.unsafeCurrentTimeMillis())
    const from = (
      i: number,
      lastError: TransportError | undefined
    ): Effect.Effect<HttpResponse, TransportError | RedirectError> => {
      const endpoint = candidates[i]
      if (endpoint === undefined) {
        return Effect.fail(lastError ?? new TransportError({ url: "", reason: "no load URL configured" }))
      }
      return Effect.matchEffect(exchange(make(endpoint.url), options), {
        onSuccess: (response) => Effect.as(pool.markUp(endpoint), response),
        onFailure: (error) => {
          if (error._tag === "RedirectError") return Effect.zipRight(pool.markUp(endpoint), Effect.fail(error))
          if ((error.hop ?? 0) > 0 || error.code === "EBODYSOURCE") {
            // the load URL answered (a redirect), or the body's own source failed: the failure is not the endpoint's
            return Effect.zipRight(pool.markUp(endpoint), Effect.fail(error))
          }
          return Effect.zipRight(
            pool.markDown(endpoint, `${error.code ?? error.phase ?? "error"}: ${error.reason}`),
            error.phase !== "connect" ? Effect.fail(error) : Effect.suspend(() => from(i + 1, error))
          )
        }
      })
    }
    return from(0, undefined)
  })
