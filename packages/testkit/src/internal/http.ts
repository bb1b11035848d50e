/**
 * HTTP helpers for the emulator: the three JSON formats StarRocks uses, header access and node:http servers that
 * can be taken down and brought back on the same port.
 *
 * @internal
 */
import * as Http from "node:http"
import * as Https from "node:https"
import type * as Net from "node:net"

/** BE replies: rapidjson PrettyWriter, 4-space indent, keys in insertion order. */
export const beJson = (body: object): string => JSON.stringify(body, null, 4)

/** FE `TransactionResult`: Gson pretty printing, 2-space indent. */
export const feJson = (body: object): string => JSON.stringify(body, null, 2)

/** FE `RestBaseResult`: compact Gson, null fields omitted. */
export const compactJson = (body: object): string => JSON.stringify(body)

export const JSON_CONTENT_TYPE = "application/json; charset=UTF-8"

/** Request headers with lower-cased names (node already lower-cases them); repeated headers joined by ", ". */
export const lowerHeaders = (req: Http.IncomingMessage): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v
  }
  return out
}

export interface BasicAuth {
  readonly user: string
  readonly password: string
}

/** Parses `Authorization: Basic base64(user:password)`; a `@` in the user splits `user@cluster`. */
export const parseBasic = (header: string | undefined): BasicAuth | undefined => {
  if (header === undefined || !header.startsWith("Basic ")) return undefined
  const encoded = header.slice(6).trim()
  if (encoded.length === 0) return undefined
  let decoded: string
  try {
    decoded = Buffer.from(encoded, "base64").toString("utf8")
  } catch {
    return undefined
  }
  const i = decoded.indexOf(":")
  if (i < 0) return undefined
  const userPart = decoded.slice(0, i)
  const at = userPart.indexOf("@")
  const user = at >= 0 ? userPart.slice(0, at) : userPart
  if (user.length === 0) return undefined
  return { user, password: decoded.slice(i + 1) }
}

export const clientIp = (req: Http.IncomingMessage): string => {
  const a = req.socket.remoteAddress ?? "127.0.0.1"
  return a.startsWith("::ffff:") ? a.slice(7) : a
}

export const send = (
  res: Http.ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {}
): void => {
  if (res.headersSent || res.destroyed) return
  const buf = Buffer.from(body, "utf8")
  res.writeHead(status, { ...headers, "Content-Length": String(buf.byteLength) })
  res.end(buf)
}

/** Emitted on an IncomingMessage whose client closed its side before the whole body arrived. */
export const INCOMPLETE_BODY = "emulator:incompleteBody"

export type Handler = (req: Http.IncomingMessage, res: Http.ServerResponse, expectContinue: boolean) => void

/** A certificate chain and private key (PEM) for an https server. */
export interface TlsMaterial {
  readonly cert: string | Uint8Array
  readonly key: string | Uint8Array
}

const toPem = (v: string | Uint8Array): string | Buffer => (typeof v === "string" ? v : Buffer.from(v))

/**
 * A node:http (or, given `tls`, node:https) server bound to one address; `down` closes the listener and every
 * connection, `up` reopens it.
 */
export class NodeServer {
  readonly server: Http.Server
  readonly scheme: "http" | "https"
  port = 0
  isUp = false
  private readonly sockets = new Set<Net.Socket>()

  constructor(readonly host: string, handler: Handler, tls?: TlsMaterial | undefined) {
    this.scheme = tls === undefined ? "http" : "https"
    // https.Server is an http.Server over TLS sockets: the same request, checkContinue and clientError events
    this.server = tls === undefined
      ? Http.createServer()
      : (Https.createServer({ cert: toPem(tls.cert), key: toPem(tls.key) }) as unknown as Http.Server)
    this.server.on("request", (req, res) => handler(req, res, false))
    // Handling 'checkContinue' stops node from answering `100 Continue` on its own.
    this.server.on("checkContinue", (req, res) => handler(req, res, true))
    this.server.on("connection", (socket: Net.Socket) => {
      this.sockets.add(socket)
      socket.on("close", () => this.sockets.delete(socket))
    })
    this.server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
      if (socket.destroyed) return
      // A client that half-closes mid-body: let the handler answer (`receive body don't equal with body bytes`).
      if (err.code === "HPE_INVALID_EOF_STATE") {
        const res = (socket as unknown as { _httpMessage?: { req?: Http.IncomingMessage } })._httpMessage
        res?.req?.emit(INCOMPLETE_BODY)
        const t = setTimeout(() => socket.destroy(), 1_000)
        t.unref()
        socket.once("close", () => clearTimeout(t))
        return
      }
      socket.destroy()
    })
    this.server.keepAliveTimeout = 5_000
  }

  get address(): string {
    return `${this.host}:${this.port}`
  }

  /** `http://host:port` or `https://host:port`. */
  get origin(): string {
    return `${this.scheme}://${this.host}:${this.port}`
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e)
      this.server.once("error", onError)
      this.server.listen(this.port, this.host, () => {
        this.server.off("error", onError)
        const addr = this.server.address()
        if (addr !== null && typeof addr === "object") this.port = addr.port
        this.isUp = true
        resolve()
      })
    })
  }

  stop(): Promise<void> {
    if (!this.isUp) return Promise.resolve()
    this.isUp = false
    return new Promise((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
      for (const s of this.sockets) s.destroy()
    })
  }
}
