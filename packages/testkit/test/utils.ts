import { Effect } from "effect"
import * as Http from "node:http"
import * as Https from "node:https"
import * as Net from "node:net"

export interface Response {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly text: string
  readonly json: any
  /** Whether a `100 Continue` interim response arrived. */
  readonly continued: boolean
  /** Whether the body was written (only after 100 Continue when `expect` is set). */
  readonly bodySent: boolean
}

export interface RequestOptions {
  readonly method?: string
  readonly headers?: Record<string, string>
  readonly body?: string | Buffer | undefined
  /** Send `Expect: 100-continue` and write the body only after `100 Continue` (default true when a body is given). */
  readonly expect?: boolean
  /** Send the body with chunked transfer encoding (no Content-Length). */
  readonly chunked?: boolean
  readonly auth?: string | undefined
  /** For `https://` URLs: the CA to trust (PEM); without it the system's CAs. */
  readonly ca?: string | undefined
}

export const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`

export const ROOT = basic("root", "")

const parse = (text: string) => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** One HTTP/1.1 request on its own connection. `url` is `host:port/path`, `http://host:port/path` or `https://…`. */
export const request = (fullUrl: string, options: RequestOptions = {}): Promise<Response> =>
  new Promise((resolve, reject) => {
    const secure = fullUrl.startsWith("https://")
    const url = fullUrl.replace(/^https?:\/\//, "")
    const slash = url.indexOf("/")
    const [host, port] = url.slice(0, slash).split(":")
    const body = options.body === undefined ? undefined : Buffer.from(options.body)
    const expect = options.expect ?? body !== undefined
    const headers: Record<string, string> = { ...options.headers }
    if (options.auth !== undefined) headers["Authorization"] = options.auth
    if (expect) headers["Expect"] = "100-continue"
    if (body !== undefined && !options.chunked) headers["Content-Length"] = String(body.byteLength)
    let continued = false
    let bodySent = false
    const target = {
      host,
      port: Number(port),
      path: url.slice(slash),
      method: options.method ?? "PUT",
      headers,
      agent: false as const
    }
    const req = secure
      ? Https.request({ ...target, ...(options.ca !== undefined ? { ca: options.ca } : {}) })
      : Http.request(target)
    req.on("continue", () => {
      continued = true
      if (body !== undefined) {
        bodySent = true
        req.end(body)
      }
    })
    req.on("response", (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: parse(text), continued, bodySent })
        req.destroy()
      })
      res.on("error", reject)
    })
    req.on("error", reject)
    if (body === undefined) req.end()
    else if (!expect) {
      bodySent = true
      req.end(body)
    } else req.flushHeaders()
  })

export const requestE = (url: string, options: RequestOptions = {}) => Effect.promise(() => request(url, options))

/** Writes raw bytes on a TCP connection, half-closes when `end`, returns everything read until the server closes. */
export const raw = (address: string, data: string | Buffer, end = true): Promise<string> =>
  new Promise((resolve, reject) => {
    const [host, port] = address.split(":")
    const socket = Net.connect({ host: host!, port: Number(port) }, () => {
      socket.write(data)
      if (end) socket.end()
    })
    const chunks: Array<Buffer> = []
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")))
    socket.on("error", (e) => chunks.length > 0 ? resolve(Buffer.concat(chunks).toString("utf8")) : reject(e))
  })

/** Splits a raw HTTP response into status, headers and body. */
export const parseRaw = (text: string) => {
  const i = text.indexOf("\r\n\r\n")
  const head = i >= 0 ? text.slice(0, i) : text
  const body = i >= 0 ? text.slice(i + 4) : ""
  const [statusLine, ...lines] = head.split("\r\n")
  const headers: Record<string, string> = {}
  for (const l of lines) {
    const c = l.indexOf(":")
    if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim()
  }
  return { status: Number(statusLine?.split(" ")[1] ?? 0), headers, body, json: parse(body) }
}

/** Follows 307 redirects by hand (re-sending auth and Expect), as `curl --location-trusted` does. */
export const follow = async (url: string, options: RequestOptions = {}, max = 3): Promise<Response> => {
  let current = url
  for (let i = 0; i <= max; i++) {
    const res = await request(current, options)
    if (res.status !== 307) return res
    current = String(res.headers.location)
  }
  throw new Error("too many redirects")
}

export const followE = (url: string, options: RequestOptions = {}) => Effect.promise(() => follow(url, options))

/** A plain stream load through the FE. */
export const streamLoad = (
  fe: string,
  db: string,
  table: string,
  body: string,
  headers: Record<string, string> = {}
) => followE(`${fe}/api/${db}/${table}/_stream_load`, { auth: ROOT, headers, body })

/** A transaction-interface call through the FE. */
export const txn = (
  fe: string,
  op: string,
  headers: Record<string, string>,
  body?: string
) =>
  followE(`${fe}/api/transaction/${op}`, {
    method: op === "load" ? "PUT" : "POST",
    auth: ROOT,
    headers,
    body,
    expect: body !== undefined
  })

export const sleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)))

/**
 * Polls `check` every 5 ms (real time) until it holds; dies naming `what` after `ms` (default 5 s). The wait for a
 * server to reach a state (a request's first bytes read, say) with a deadline, instead of a sleep that guesses.
 */
export const until = (what: string, check: Effect.Effect<boolean>, ms = 5000): Effect.Effect<void> =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`no ${what} within ${ms} ms`)
      yield* sleep(5)
    }
  })

/** Whether a BE of `em` has read at least `bytes` of the body of the request with label `label`. */
export const bodyRead = (
  em: {
    readonly requests: Effect.Effect<
      ReadonlyArray<{ node: string; headers: Record<string, string>; bodyBytes: number }>
    >
  },
  label: string,
  bytes: number
): Effect.Effect<boolean> =>
  Effect.map(
    em.requests,
    (log) => log.some((r) => r.node.startsWith("be") && r.headers["label"] === label && r.bodyBytes >= bytes)
  )

export const TABLES = {
  users: { root: "", alice: "secret" },
  tables: [
    {
      database: "d",
      table: "t",
      model: "DUPLICATE" as const,
      key: ["id"],
      columns: [{ name: "id", type: "BIGINT" }, { name: "name", type: "VARCHAR(64)", nullable: true }]
    },
    {
      database: "d2",
      table: "t",
      model: "DUPLICATE" as const,
      key: ["id"],
      columns: [{ name: "id", type: "BIGINT" }, { name: "name", type: "VARCHAR(64)", nullable: true }]
    },
    {
      database: "d",
      table: "pk",
      model: "PRIMARY" as const,
      key: ["id"],
      columns: [{ name: "id", type: "BIGINT" }, { name: "name", type: "VARCHAR(64)", nullable: true }]
    }
  ]
}

/** A raw connection under manual control: write pieces, then collect the reply. */
export const openRaw = (address: string) =>
  new Promise<{
    readonly write: (data: string | Buffer) => void
    readonly end: () => void
    readonly destroy: () => void
    readonly received: () => string
    readonly closed: Promise<string>
    readonly waitFor: (marker: string, ms?: number) => Promise<string>
  }>((resolve, reject) => {
    const [host, port] = address.split(":")
    const chunks: Array<Buffer> = []
    let onClose: (s: string) => void = () => undefined
    const closed = new Promise<string>((r) => (onClose = r))
    const socket = Net.connect({ host: host!, port: Number(port) }, () =>
      resolve({
        write: (d) => void socket.write(d),
        end: () => void socket.end(),
        destroy: () => void socket.destroy(),
        received: () => Buffer.concat(chunks).toString("utf8"),
        closed,
        waitFor: (marker, ms = 5000) =>
          new Promise((res, rej) => {
            const started = Date.now()
            const check = () => {
              const text = Buffer.concat(chunks).toString("utf8")
              if (text.includes(marker)) return res(text)
              if (Date.now() - started > ms) return rej(new Error(`timed out waiting for ${marker}: ${text}`))
              setTimeout(check, 10)
            }
            check()
          })
      }))
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.on("close", () => onClose(Buffer.concat(chunks).toString("utf8")))
    socket.on("error", (e) => (chunks.length === 0 ? reject(e) : undefined))
  })

export const head = (method: string, path: string, headers: Record<string, string>, version = "1.1") =>
  `${method} ${path} HTTP/${version}\r\n` +
  Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n"
