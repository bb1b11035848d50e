/**
 * The node:http/https transport of the load client (the bottom stage: transport → failover → operations).
 *
 * One `exchange` = one logical request: the first hop and the redirects (307 FE→BE, follower→leader) followed by
 * hand with the same method, the same headers (Authorization included) and the replayable body. With
 * `Expect: 100-continue` the headers are flushed first and the body is written only on `100 Continue`; a response
 * that arrives first (the FE's 307, a BE header-phase error) is read, the body is never written, and the
 * connection is destroyed (never reused). Every wait has a deadline: connect, wait-for-continue, socket
 * inactivity.
 *
 * @internal
 */
import { Effect, Either } from "effect"
import * as Http from "node:http"
import type * as HttpsModule from "node:https"
import type { LoadBody, Reader, Source } from "../../LoadBody.js"
import { RedirectError, TransportError } from "../../StarRocksError.js"
import { lazyBuiltin } from "../builtin.js"
import { isPermanentCode } from "./retryLogic.js"

/** node:https, loaded on the first https URL only (it loads node:tls and the crypto bindings). */
const Https = lazyBuiltin<typeof HttpsModule>("node:https")

/** @internal */
export interface HttpRequest {
  readonly method: "GET" | "PUT" | "POST"
  readonly url: URL
  /** Complete header set, Authorization included. `Content-Length` and `Expect` are added here. */
  readonly headers: Readonly<Record<string, string>>
  readonly body?: LoadBody | undefined
  /** Send `Expect: 100-continue` and write the body only after `100 Continue`. */
  readonly expectContinue: boolean
}

/** @internal */
export interface HttpOptions {
  readonly connectTimeoutMs: number
  readonly continueTimeoutMs: number
  /** Socket inactivity deadline (waiting for the response included). */
  readonly socketTimeoutMs: number
  readonly maxRedirects: number
  readonly beHostMap: ReadonlyMap<string, string>
  readonly agents?: Agents | undefined
  /** The response body is cut after this many bytes (`truncated` is then set). */
  readonly maxResponseBytes?: number | undefined
  readonly rejectUnauthorized?: boolean | undefined
  /** CA, client certificate and key, server name of the https connections (see `TlsOptions`). */
  readonly tls?: TlsOptions | undefined
  /** Follow a redirect from https to plain http (refused by default). */
  readonly allowHttpRedirect?: boolean | undefined
}

/**
 * What an https connection is made with: passed to every `https.Agent` and to agent-less requests. `key` is a
 * function so that the private key is read only by node:tls, never kept in a plain field that a log could print.
 * @internal
 */
export interface TlsOptions {
  readonly ca?: string | undefined
  readonly cert?: string | undefined
  readonly key?: (() => string) | undefined
  readonly servername?: string | undefined
  readonly rejectUnauthorized: boolean
}

/** The node:tls options of `tls` (nothing when absent). @internal */
export const tlsConnectOptions = (tls: TlsOptions | undefined): {
  ca?: string
  cert?: string
  key?: string
  servername?: string
  rejectUnauthorized?: boolean
} =>
  tls === undefined ? {} : {
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
    ...(tls.key !== undefined ? { key: tls.key() } : {}),
    ...(tls.servername !== undefined ? { servername: tls.servername } : {}),
    rejectUnauthorized: tls.rejectUnauthorized
  }

/** @internal */
export interface HttpResponse {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
  readonly truncated: boolean
  /** The URL that answered (no credentials). */
  readonly url: string
  /** Origins visited, first hop first, e.g. `["http://127.0.0.1:8030", "http://127.0.0.2:8040"]`. */
  readonly hops: ReadonlyArray<string>
  /**
   * Requests sent again on a fresh connection because a pooled keep-alive socket turned out to be closed before
   * any answer (nothing reached the server's handler; the same label makes it safe). The caller counts them as
   * retries, so that no resend goes unreported.
   */
  readonly resends?: number | undefined
}

/**
 * Why a streamed body (`LoadBody.source`) cannot be sent with these request headers, or `undefined`: the client
 * compresses a body in memory (`compression`), and merge commit checks a CSV body's last bytes before sending it.
 * @internal
 */
export const streamedBodyRefusal = (headers: Readonly<Record<string, string>>): string | undefined => {
  for (const key in headers) {
    const k = key.toLowerCase()
    if (k === "compression") {
      return `streamed body with compression ${headers[key]}: the client compresses a body in memory; give the ` +
        "body as chunks, or send a file compressed beforehand with its Content-Encoding header"
    }
    if (k === "enable_merge_commit" && headers[key]!.trim().toLowerCase() === "true") {
      return "streamed body with merge commit: merge commit checks that a CSV body ends with the row delimiter, " +
        "which needs the body in memory; give the body as chunks"
    }
  }
  return undefined
}

const defaultPort = (url: URL): string => url.port !== "" ? url.port : url.protocol === "https:" ? "443" : "80"

/** `protocol//host:port` without credentials. @internal */
export const originOf = (url: URL): string => `${url.protocol}//${url.hostname}:${defaultPort(url)}`

/** The URL without credentials. @internal */
export const displayUrl = (url: URL): string => `${originOf(url)}${url.pathname}${url.search}`

/** Parses `host:port` or `http(s)://host:port[/path]` into a base URL. @internal */
export const parseBaseUrl = (value: string): URL => {
  const trimmed = value.trim().replace(/\/+$/, "")
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`)
  url.username = ""
  url.password = ""
  return url
}

/**
 * Rewrites the host of a URL through the be-host-map (`internal:port` → `reachable:port`; a value may carry a
 * scheme, `https://proxy:443`, to reach a BE through a TLS proxy). Keys match `host:port` or `host`.
 * @internal
 */
export const applyHostMap = (url: URL, beHostMap: ReadonlyMap<string, string>): URL => {
  if (beHostMap.size === 0) return url
  const hostPort = `${url.hostname}:${defaultPort(url)}`.toLowerCase()
  let mapped: string | undefined
  for (const [key, value] of beHostMap) {
    const k = key.trim().toLowerCase()
    if (k === hostPort || k === url.hostname.toLowerCase()) {
      mapped = value.trim()
      if (k === hostPort) break
    }
  }
  if (mapped === undefined) return url
  const next = new URL(url.href)
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(mapped)) {
    const target = new URL(mapped)
    next.protocol = target.protocol
    next.hostname = target.hostname
    next.port = target.port
  } else if (/:\d+$/.test(mapped) && !mapped.startsWith("[")) {
    const i = mapped.lastIndexOf(":")
    next.hostname = mapped.slice(0, i)
    next.port = mapped.slice(i + 1)
  } else {
    next.host = mapped
  }
  return next
}

/**
 * The redirect rule: resolve `Location` against the current URL, refuse a non-http(s) scheme and an https→http
 * downgrade, then apply the be-host-map. Returns the next URL or the reason for refusing.
 * @internal
 */
export const resolveRedirect = (
  current: URL,
  location: string,
  beHostMap: ReadonlyMap<string, string>,
  allowHttpRedirect = false
): Either.Either<URL, string> => {
  let next: URL
  try {
    next = new URL(location, current)
  } catch {
    return Either.left("malformed Location header")
  }
  if (next.protocol !== "http:" && next.protocol !== "https:") {
    return Either.left(`redirect to unsupported scheme ${next.protocol}`)
  }
  next.username = ""
  next.password = ""
  const mapped = applyHostMap(next, beHostMap)
  if (current.protocol === "https:" && mapped.protocol === "http:" && !allowHttpRedirect) {
    return Either.left(
      "https→http redirect refused (credentials would travel in clear text); StarRocks BEs often serve plain " +
        "http: allow it by name with sink.tls.allow-http-redirect=true (tls.allowHttpRedirect), or map the BE " +
        "to an https proxy with be-host-map"
    )
  }
  return Either.right(mapped)
}

/** One keep-alive Agent per origin; destroyed with the client's scope. @internal */
export interface Agents {
  readonly get: (url: URL) => Http.Agent
  readonly destroy: () => void
}

/** @internal */
export const makeAgents = (
  options?: { readonly maxSockets?: number | undefined; readonly tls?: TlsOptions | undefined }
): Agents => {
  const agents = new Map<string, Http.Agent>()
  return {
    get: (url) => {
      const origin = originOf(url)
      let agent = agents.get(origin)
      if (agent === undefined) {
        const agentOptions = { keepAlive: true, maxSockets: options?.maxSockets ?? 16, scheduling: "lifo" as const }
        agent = url.protocol === "https:"
          ? new (Https().Agent)({ ...agentOptions, ...tlsConnectOptions(options?.tls) })
          : new Http.Agent(agentOptions)
        agents.set(origin, agent)
      }
      return agent
    },
    destroy: () => {
      for (const agent of agents.values()) agent.destroy()
      agents.clear()
    }
  }
}

type Phase = "connect" | "continue" | "send" | "response"

const COALESCE_BYTES = 64 * 1024
/** A chunk of at least this many bytes is written as it is, never copied into a coalesced group. */
const DIRECT_BYTES = 4 * 1024
/** Coalesced copies written ahead of the socket's `drain`, at most (see `writeBody`). */
const COALESCE_AHEAD = 1024 * 1024

/**
 * A streamed body (`LoadBody.source`) is read in slices of this size into at most `STREAM_SLOTS` buffers of the
 * send: a slice is read while the ones before it are written, and a buffer is read into again only once node has
 * handed its bytes to the socket (the write's callback). That bounds what a send holds to 4 MiB, whatever the body.
 * (1 MiB: a read of a file from the page cache costs a thread-pool hop whatever its size, and 512 KiB slices cost
 * about 10% more CPU for 1 GiB; 2 MiB no less.)
 */
const STREAM_SLICE = 1024 * 1024
const STREAM_SLOTS = 4

/**
 * Slices given back by the sends that are done, taken again by the next ones (at most 16 MiB kept): without them
 * every send allocated fresh buffers that the garbage collector freed late, and peak RSS grew with the number of
 * loads (1.15-1.2 × from 1 GiB to 4 GiB). A slice comes back only from a write that completed; one whose write
 * failed is left to the collector.
 */
const spareSlices: Array<Buffer> = []
const MAX_SPARE_SLICES = 16
const spareSlice = (slice: Buffer): void => {
  if (slice.length === STREAM_SLICE && spareSlices.length < MAX_SPARE_SLICES) spareSlices.push(slice)
}

interface RawResponse {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
  readonly truncated: boolean
}

/**
 * Marks a failure on a pooled keep-alive socket the server had already closed. A property, not a set of error
 * objects: an error failed inside a span reaches its handler as a Proxy of itself (Effect's span capture), which a
 * WeakSet would not know, while the property reads through.
 */
const STALE_SOCKET: unique symbol = Symbol.for("effect-starrocks/transport/staleSocket")
const isStaleSocket = (e: unknown): boolean =>
  typeof e === "object" && e !== null && (e as { [STALE_SOCKET]?: unknown })[STALE_SOCKET] === true

const errorCode = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === "string" ? code : undefined
}

const errorText = (error: unknown): string => error instanceof Error ? error.message : String(error)

/** One HTTP request/response on one connection, no redirect handling. @internal */
export const sendOnce = (
  request: HttpRequest,
  options: HttpOptions,
  hop = 0
): Effect.Effect<RawResponse, TransportError> =>
  Effect.async<RawResponse, TransportError>((resume) => {
    const url = request.url
    const isHttps = url.protocol === "https:"
    const chunks = request.body?.chunks ?? []
    const length = request.body?.byteLength ?? 0
    const source = request.body?.source
    const maxBytes = options.maxResponseBytes ?? 4 * 1024 * 1024
    const headers: Record<string, string> = { ...request.headers }
    for (const key of Object.keys(headers)) {
      const lower = key.toLowerCase()
      if (lower === "content-length" || lower === "expect" || lower === "transfer-encoding") delete headers[key]
    }
    if (request.method !== "GET" || length > 0) headers["Content-Length"] = String(length)
    if (request.expectContinue) headers["Expect"] = "100-continue"

    let done = false
    let phase: Phase = "connect"
    let bodySent = false
    let connected = false
    let reused = false
    let responded = false
    let connectTimer: ReturnType<typeof setTimeout> | undefined
    let continueTimer: ReturnType<typeof setTimeout> | undefined
    let req: Http.ClientRequest | undefined
    /** The reading of a streamed body in progress (closed once read through, or when the request ends). */
    let reader: Reader | undefined

    const clearTimers = () => {
      if (connectTimer !== undefined) clearTimeout(connectTimer)
      if (continueTimer !== undefined) clearTimeout(continueTimer)
      connectTimer = continueTimer = undefined
      if (reader !== undefined) {
        const r = reader
        reader = undefined
        r.close()
      }
    }
    const fail = (reason: string, code?: string) => {
      if (done) return
      done = true
      clearTimers()
      req?.destroy()
      const error = new TransportError({
        url: displayUrl(url),
        reason,
        phase: connected ? phase : "connect",
        bodySent,
        hop,
        ...(code !== undefined ? { code } : {}),
        // a fact for the reader; whether to retry is decided by retryLogic from `code` and `bodySent`
        ...(isPermanentCode(code) ? { retryable: false } : {})
      })
      // a pooled keep-alive socket the server had already closed: nothing was processed
      // (`reusedSocket` too: under load the error can come before the `socket` event that sets `reused`)
      if ((reused || req?.reusedSocket === true) && !responded && (code === "ECONNRESET" || code === "EPIPE")) {
        Object.defineProperty(error, STALE_SOCKET, { value: true, enumerable: false })
      }
      resume(Effect.fail(error))
    }
    const succeed = (response: RawResponse, destroy: boolean) => {
      if (done) return
      done = true
      clearTimers()
      if (destroy) req?.destroy()
      resume(Effect.succeed(response))
    }

    /**
     * A streamed body: slices read from a fresh reading of the source, each written as soon as it is read; the
     * number of buffers is the backpressure (none is read into while its bytes wait to be written). A source that
     * fails or ends early fails the request (it never sends fewer bytes than its Content-Length says).
     */
    const writeStreamed = (r: Http.ClientRequest, body: Source) => {
      phase = "send"
      // the source's own buffers, else the transport's (kept across sends in `spareSlices`)
      const own = body.slices
      const giveBack = (slot: Uint8Array) => own !== undefined ? own.give(slot) : spareSlice(slot as Buffer)
      let current: Reader
      try {
        current = body.open()
      } catch (error) {
        return fail(`the body's source failed: ${errorText(error)}`, "EBODYSOURCE")
      }
      reader = current
      let due = length
      let reading = false
      /** Whether the source has called back before its `read` returned (a synchronous read, `readSync`). */
      let synchronous = false
      let inRead = false
      /** One resumption of a synchronous source's pump per turn of the loop, however many writes called back. */
      let resumeScheduled = false
      const resume = () => {
        resumeScheduled = false
        pump()
      }
      const free: Array<Uint8Array> = []
      let slots = 0
      const pump = () => {
        if (done || responded || reader !== current || reading) return
        if (due === 0) {
          reader = undefined
          current.close()
          for (const slot of free.splice(0)) giveBack(slot)
          r.end()
          phase = "response"
          return
        }
        let buffer = free.pop()
        if (buffer === undefined) {
          if (slots >= STREAM_SLOTS) return
          slots++
          buffer = own !== undefined ?
            own.take() :
            length >= STREAM_SLICE ?
            spareSlices.pop() ?? Buffer.allocUnsafeSlow(STREAM_SLICE) :
            Buffer.allocUnsafeSlow(length)
        }
        const slot = buffer
        reading = true
        // once per read, whether the source calls back later, at once (a synchronous read), or throws
        let settled = false
        const onRead = (error: Error | null, n: number) => {
          if (settled) return
          settled = true
          reading = false
          if (done || reader !== current) return
          if (error !== null) return fail(`the body's source failed: ${errorText(error)}`, "EBODYSOURCE")
          if (n <= 0) {
            return fail(`the body's source ended after ${length - due} of ${length} bytes`, "EBODYSOURCE")
          }
          due -= n
          bodySent = true
          r.write(n === slot.length ? slot : slot.subarray(0, n), (writeError) => {
            if (writeError !== undefined && writeError !== null) return
            // this send needs it again, or the next one will
            if (reader === current && !done) free.push(slot)
            else giveBack(slot)
            // A synchronous source reads the next slice from the event loop's next turn, not from this callback:
            // when the socket takes a write at once, node calls this back from `process.nextTick`, and a read
            // and a write from here would chain ticks for as long as the socket keeps up (a whole 90 MB load on
            // loopback), during which no socket event of the process is handled: another load's 100 Continue,
            // response or connection waited for this one to end, and two loads in flight took turns instead of
            // overlapping (docs/cli.md, "Two loads in flight").
            if (!synchronous) pump()
            else if (!resumeScheduled) {
              resumeScheduled = true
              setImmediate(resume)
            }
          })
          pump()
        }
        inRead = true
        try {
          current.read(slot.subarray(0, Math.min(slot.length, due)), (error, n) => {
            if (inRead) synchronous = true
            onRead(error, n)
          })
        } catch (error) {
          onRead(error instanceof Error ? error : new Error(String(error)), 0)
        } finally {
          inRead = false
        }
      }
      pump()
    }

    const writeBody = () => {
      if (source !== undefined) return writeStreamed(req!, source)
      phase = "send"
      let i = 0
      /** Bytes of coalesced copies written since the last `drain`. */
      let copied = 0
      // small chunks (one per row, say) are coalesced into writes of about 64 KiB; the rest are written as they are
      const next = (): Uint8Array | undefined => {
        while (i < chunks.length && chunks[i]!.byteLength === 0) i++
        if (i >= chunks.length) return undefined
        const first = chunks[i++]!
        if (first.byteLength >= DIRECT_BYTES) return first
        const group: Array<Uint8Array> = [first]
        let size = first.byteLength
        while (
          i < chunks.length && chunks[i]!.byteLength < DIRECT_BYTES && size + chunks[i]!.byteLength <= COALESCE_BYTES
        ) {
          size += chunks[i]!.byteLength
          group.push(chunks[i++]!)
        }
        if (group.length === 1) return first
        copied += size
        return Buffer.concat(group, size)
      }
      // The body's own chunks are in memory anyway: they are written all at once, whatever the socket's
      // backpressure, so that node sends them in one `writev` (a write in the same tick corks the socket) and not
      // one write per chunk, each after a `drain`. Only the copies coalescing makes wait for `drain`, past
      // COALESCE_AHEAD bytes of them, so that a body of many small chunks is not copied whole at once.
      const pump = () => {
        copied = 0
        for (;;) {
          if (done || responded || req === undefined) return
          const chunk = next()
          if (chunk === undefined) break
          bodySent = true
          if (!req.write(chunk) && copied >= COALESCE_AHEAD) {
            req.once("drain", pump)
            return
          }
        }
        req.end()
        phase = "response"
      }
      pump()
    }

    const onConnected = () => {
      if (connectTimer !== undefined) clearTimeout(connectTimer)
      connectTimer = undefined
      connected = true
      if (done) return
      if (request.expectContinue) {
        phase = "continue"
        continueTimer = setTimeout(
          () => fail(`no 100 Continue within ${options.continueTimeoutMs} ms`, "ECONTINUETIMEOUT"),
          options.continueTimeoutMs
        )
      }
    }

    try {
      req = (isHttps ? Https() : Http).request({
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
        port: defaultPort(url),
        path: `${url.pathname}${url.search}`,
        method: request.method,
        headers,
        agent: options.agents?.get(url) ?? false,
        ...(isHttps ?
          {
            ...tlsConnectOptions(options.tls),
            rejectUnauthorized: options.tls?.rejectUnauthorized ?? options.rejectUnauthorized ?? true
          } :
          {})
      })
    } catch (error) {
      fail(`invalid request: ${errorText(error)}`, errorCode(error))
      return
    }
    const r = req

    r.setTimeout(options.socketTimeoutMs, () => fail(`socket timeout after ${options.socketTimeoutMs} ms`, "ETIMEDOUT"))
    r.on("socket", (socket) => {
      if (socket.connecting) {
        connectTimer = setTimeout(
          () => fail(`connect timeout after ${options.connectTimeoutMs} ms`, "ECONNECTTIMEOUT"),
          options.connectTimeoutMs
        )
        socket.once(isHttps ? "secureConnect" : "connect", onConnected)
      } else {
        reused = true
        onConnected()
      }
    })
    r.on("error", (error) => fail(errorText(error), errorCode(error)))
    r.on("continue", () => {
      if (done || responded) return
      if (continueTimer !== undefined) clearTimeout(continueTimer)
      continueTimer = undefined
      writeBody()
    })
    r.on("response", (res) => {
      responded = true
      if (continueTimer !== undefined) clearTimeout(continueTimer)
      continueTimer = undefined
      // a reply before the whole body went out (the FE's 307, a BE header-phase error): never reuse the socket
      const early = phase !== "response"
      phase = "response"
      const parts: Array<Buffer> = []
      let size = 0
      let truncated = false
      res.on("data", (data: Buffer) => {
        if (truncated) return
        if (size + data.byteLength > maxBytes) {
          parts.push(data.subarray(0, maxBytes - size))
          size = maxBytes
          truncated = true
          succeed({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(parts).toString("utf8"),
            truncated
          }, true)
          return
        }
        parts.push(data)
        size += data.byteLength
      })
      res.on("end", () =>
        succeed({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(parts).toString("utf8"),
          truncated
        }, early))
      res.on("aborted", () => fail("response aborted"))
      res.on("error", (error) => fail(errorText(error), errorCode(error)))
    })

    if (request.expectContinue) {
      r.flushHeaders()
    } else if (source !== undefined) {
      writeStreamed(r, source)
    } else {
      for (const chunk of chunks) {
        if (chunk.byteLength > 0) {
          bodySent = true
          r.write(chunk)
        }
      }
      r.end()
      phase = "response"
    }

    return Effect.sync(() => {
      done = true
      clearTimers()
      r.destroy()
    })
  })

const isRedirectStatus = (status: number): boolean =>
  status === 301 || status === 302 || status === 303 || status === 307 || status === 308

const headerValue = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  typeof value === "string" ? value : value?.[0]

/**
 * One logical exchange: follows redirects by hand up to `maxRedirects`, with the same headers and body.
 *
 * A chain of `flatMap`s, not a generator: a load is one hop on the common path, and each operation of the
 * exchange is run once per load.
 * @internal
 */
export const exchange = (
  request: HttpRequest,
  options: HttpOptions
): Effect.Effect<HttpResponse, TransportError | RedirectError> =>
  Effect.suspend(() => {
    const hops: Array<string> = []
    let resends = 0
    const hopFrom = (current: URL, hop: number): Effect.Effect<HttpResponse, TransportError | RedirectError> => {
      hops.push(originOf(current))
      const sent = current === request.url ? request : { ...request, url: current }
      return sendOnce(sent, options, hop).pipe(
        // once, on a fresh connection, when a pooled socket turned out to be closed
        Effect.catchIf((e) => isStaleSocket(e), (e) =>
          Effect.logInfo("a pooled connection was closed before any answer: sending again on a fresh one").pipe(
            Effect.annotateLogs({ url: displayUrl(current), code: e.code ?? "", reason: e.reason }),
            Effect.zipRight(Effect.sync(() =>
              resends++
            )),
            Effect.zipRight(sendOnce(sent, { ...options, agents: undefined }, hop))
          )),
        Effect.flatMap((response): Effect.Effect<HttpResponse, TransportError | RedirectError> => {
          const location = headerValue(response.headers.location)
          if (!isRedirectStatus(response.status) || location === undefined || location === "") {
            return Effect.succeed({ ...response, url: displayUrl(current), hops, resends })
          }
          if (hop >= options.maxRedirects) {
            return Effect.fail(
              new RedirectError({
                url: displayUrl(current),
                location: redactLocation(location),
                reason: `more than ${options.maxRedirects} redirects`,
                hops
              })
            )
          }
          const next = resolveRedirect(current, location, options.beHostMap, options.allowHttpRedirect === true)
          if (Either.isLeft(next)) {
            return Effect.fail(
              new RedirectError({
                url: displayUrl(current),
                location: redactLocation(location),
                reason: next.left,
                hops
              })
            )
          }
          return Effect.logDebug("redirect").pipe(
            Effect.annotateLogs({ from: displayUrl(current), to: displayUrl(next.right), status: response.status }),
            Effect.zipRight(Effect.suspend(() => hopFrom(next.right, hop + 1)))
          )
        })
      )
    }
    return hopFrom(request.url, 0)
  })

const redactLocation = (location: string): string => {
  try {
    const url = new URL(location)
    url.username = ""
    url.password = ""
    return url.href
  } catch {
    return location.slice(0, 300)
  }
}
