/**
 * LoadClient against small fake servers written here (not the testkit emulator): an FE on 127.0.0.1 that answers
 * 307 without reading the body and never sends 100 Continue, a BE on 127.0.0.2 (cross-origin) that checks
 * Authorization, sends 100 Continue and answers 4-space JSON.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Scope } from "effect"
import {
  Clock,
  Duration,
  Effect,
  Either,
  Fiber,
  HashMap,
  Layer,
  List,
  Logger,
  Option,
  Redacted,
  TestClock,
  Tracer
} from "effect"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Https from "node:https"
import type { AddressInfo } from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Endpoints from "../src/internal/client/failover.js"
import * as LoadStates from "../src/internal/client/loadState.js"
import { resolveRedirect } from "../src/internal/client/transport.js"
import type { LoadBody } from "../src/LoadBody.js"
import * as LoadClient from "../src/LoadClient.js"
import type { StarRocksConfig } from "../src/StarRocksConfig.js"
import type { LoadError } from "../src/StarRocksError.js"
import { AuthError, isRetryable, TransportError } from "../src/StarRocksError.js"

const USER = "loader"
const PASSWORD = "s3cr3t-Pa55word"
const AUTH = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`
const AUTH_B64 = Buffer.from(`${USER}:${PASSWORD}`).toString("base64")

// ---------------------------------------------------------------------------------------------------------------
// config
// ---------------------------------------------------------------------------------------------------------------

const testConfig = (overrides: Partial<StarRocksConfig>): StarRocksConfig =>
  ({
    loadUrl: [],
    jdbcUrl: Option.none(),
    database: "db",
    table: "t",
    username: USER,
    password: Redacted.make(PASSWORD),
    semantic: "at-least-once",
    version: "V1",
    labelPrefix: "test",
    format: "csv",
    maxBytes: 64 * 1024 * 1024,
    maxRows: 100_000,
    flushInterval: Duration.seconds(1),
    maxRetries: 3,
    retryInterval: Duration.millis(10),
    retryMaxDelay: Duration.millis(40),
    connectTimeout: Duration.millis(500),
    socketTimeout: Option.some(Duration.seconds(5)),
    waitForContinueTimeout: Duration.millis(500),
    ioThreadCount: 2,
    properties: {},
    timeZone: "UTC",
    beHostMap: new Map(),
    directBackends: [],
    maxRedirects: 3,
    sanitizeErrorLog: false,
    serverVersion: Option.none(),
    csvJsonFallback: true,
    labelStateTimeout: Duration.seconds(2),
    ...overrides
  }) as StarRocksConfig

// ---------------------------------------------------------------------------------------------------------------
// fake cluster
// ---------------------------------------------------------------------------------------------------------------

interface BeCall {
  readonly path: string
  readonly method: string
  readonly label: string
  readonly headers: Http.IncomingHttpHeaders
  readonly n: number
}

type BeAction =
  | { readonly _: "json"; readonly body: Record<string, unknown> }
  /** destroy the connection after the first body bytes */
  | { readonly _: "reset" }
  /** never send 100 Continue, never answer */
  | { readonly _: "silent" }
  /** send 100 Continue, read the body, never answer */
  | { readonly _: "hang" }

type FeReply = { readonly status: number; readonly body: string } | undefined

interface ClusterOptions {
  /** BE behaviour for a PUT/POST, by call index (0-based). Default: Success. */
  readonly be?: (call: BeCall, body: Buffer) => BeAction
  /** FE override before redirecting (500, 401, FAILED…). */
  readonly fe?: (req: Http.IncomingMessage, n: number) => FeReply
  /** get_load_state answers by poll index. */
  readonly loadState?: (label: string, n: number) => string
  /** ErrorURL answer. */
  readonly errorLog?: { readonly status: number; readonly text: string }
  /** Location host:port the FE hands out; default the BE's real address. */
  readonly beAddress?: string
  /** Number of follower→leader 307s on the FE before the BE redirect. */
  readonly leaderHops?: number
}

interface Cluster {
  readonly fe: string
  readonly beOrigin: string
  readonly beHostPort: string
  readonly feRequests: Array<{ path: string; method: string; expect: string | undefined; auth: string | undefined }>
  /** body bytes the FE ever received (must stay 0) */
  feBodyBytes: number
  readonly beCalls: Array<BeCall & { readonly bytes: number; readonly body: Buffer }>
  readonly beAuth: Array<string | undefined>
  /** labels of every BE request as it arrived (before any body) */
  readonly beLabels: Array<string>
  readonly stateCalls: Array<string>
  readonly errorLogAuth: Array<string | undefined>
}

const listen = (server: Http.Server, host: string) =>
  new Promise<number>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port))
  })

const close = (server: Http.Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })

const json4 = (res: Http.ServerResponse, body: Record<string, unknown>) => {
  const text = JSON.stringify(body, null, 4)
  res.writeHead(200, { "Content-Type": "text/plain; charset=UTF-8", "Content-Length": Buffer.byteLength(text) })
  res.end(text)
}

const success = (label: string, bytes: number): Record<string, unknown> => ({
  TxnId: 1001,
  Label: label,
  Status: "Success",
  Message: "OK",
  NumberTotalRows: 2,
  NumberLoadedRows: 2,
  NumberFilteredRows: 0,
  NumberUnselectedRows: 0,
  LoadBytes: bytes,
  LoadTimeMs: 12,
  BeginTxnTimeMs: 1,
  StreamLoadPutTimeMs: 2,
  ReadDataTimeMs: 3,
  WriteDataTimeMs: 4,
  CommitAndPublishTimeMs: 5
})

const makeCluster = (options: ClusterOptions = {}): Effect.Effect<Cluster, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const be = Http.createServer()
      const fe = Http.createServer()
      const bePort = await listen(be, "127.0.0.2")
      const fePort = await listen(fe, "127.0.0.1")
      const cluster: Cluster = {
        fe: `127.0.0.1:${fePort}`,
        beOrigin: `http://127.0.0.2:${bePort}`,
        beHostPort: `127.0.0.2:${bePort}`,
        feRequests: [],
        feBodyBytes: 0,
        beCalls: [],
        beAuth: [],
        beLabels: [],
        stateCalls: [],
        errorLogAuth: []
      }
      // ---- FE
      let feN = 0
      const onFe = (req: Http.IncomingMessage, res: Http.ServerResponse) => {
        const n = feN++
        const url = new URL(req.url ?? "/", "http://fe")
        cluster.feRequests.push({
          path: url.pathname,
          method: req.method ?? "",
          expect: req.headers.expect,
          auth: req.headers.authorization
        })
        req.on("data", (d: Buffer) => {
          cluster.feBodyBytes += d.byteLength
        })
        if (req.headers.authorization !== AUTH) {
          res.writeHead(401, { "WWW-Authenticate": "Basic realm=\"\"", "Content-Type": "application/json" })
          res.end(JSON.stringify({ status: "FAILED", msg: "Access denied for loader@127.0.0.1" }))
          return
        }
        if (url.pathname.endsWith("/get_load_state")) {
          const label = url.searchParams.get("label") ?? ""
          cluster.stateCalls.push(label)
          const state = options.loadState?.(label, cluster.stateCalls.length - 1) ?? "UNKNOWN"
          res.writeHead(200, { "Content-Type": "application/json" })
          res.end(JSON.stringify({ state, status: "OK", msg: "Success" }))
          return
        }
        const override = options.fe?.(req, n)
        if (override !== undefined) {
          res.writeHead(override.status, { "Content-Type": "application/json", Connection: "close" })
          res.end(override.body)
          return
        }
        const leaderHops = options.leaderHops ?? 0
        const hop = Number(url.searchParams.get("leaderhop") ?? "0")
        if (hop < leaderHops) {
          url.searchParams.set("leaderhop", String(hop + 1))
          res.writeHead(307, {
            Location: `http://127.0.0.1:${fePort}${url.pathname}${url.search}`,
            Connection: "close"
          })
          res.end()
          return
        }
        url.searchParams.delete("leaderhop")
        const target = options.beAddress ?? `127.0.0.2:${bePort}`
        res.writeHead(307, {
          Location: `http://${target}${url.pathname}${url.search}`,
          Connection: "close",
          "Content-Length": 0
        })
        res.end()
      }
      // the FE never sends 100 Continue and never reads the body
      fe.on("checkContinue", onFe)
      fe.on("request", onFe)
      // ---- BE
      let beN = 0
      const onBe = (req: Http.IncomingMessage, res: Http.ServerResponse, expect: boolean) => {
        const url = new URL(req.url ?? "/", "http://be")
        if (url.pathname === "/api/_load_error_log") {
          cluster.errorLogAuth.push(req.headers.authorization)
          const log = options.errorLog ?? { status: 200, text: "" }
          if (log.status === 401 || req.headers.authorization !== AUTH) {
            res.writeHead(401, { "WWW-Authenticate": "Basic realm=\"\"" })
            res.end(JSON.stringify({ status: "FAILED", code: "1", message: "missing Basic authorization" }))
          } else {
            res.writeHead(log.status, { "Content-Type": "text/plain; charset=utf-8" })
            res.end(log.text)
          }
          return
        }
        const call: BeCall = {
          path: url.pathname,
          method: req.method ?? "",
          label: String(req.headers.label ?? ""),
          headers: req.headers,
          n: beN++
        }
        cluster.beAuth.push(req.headers.authorization)
        cluster.beLabels.push(call.label)
        if (req.headers.authorization === undefined) {
          json4(res, { TxnId: -1, Label: call.label, Status: "Fail", Message: "no valid Basic authorization" })
          return
        }
        const action = options.be?.(call, Buffer.alloc(0))
        if (action?._ === "silent") return
        if (expect) res.writeContinue()
        const parts: Array<Buffer> = []
        let bytes = 0
        req.on("data", (d: Buffer) => {
          parts.push(d)
          bytes += d.byteLength
          if (action?._ === "reset") req.socket.destroy()
        })
        req.on("end", () => {
          const body = Buffer.concat(parts)
          cluster.beCalls.push({ ...call, bytes, body })
          if (action?._ === "hang") return
          if (action?._ === "json") return json4(res, action.body)
          json4(res, success(call.label, bytes))
        })
      }
      be.on("checkContinue", (req, res) => onBe(req, res, true))
      be.on("request", (req, res) => onBe(req, res, false))
      return { cluster, servers: [fe, be] }
    }),
    ({ servers }) => Effect.promise(() => Promise.all(servers.map(close)))
  ).pipe(Effect.map(({ cluster }) => cluster))

// ---------------------------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------------------------

const bodyOf = (text: string, chunkSize = 64 * 1024): LoadBody => {
  const buffer = Buffer.from(text, "utf8")
  const chunks: Array<Uint8Array> = []
  for (let i = 0; i < buffer.byteLength; i += chunkSize) chunks.push(buffer.subarray(i, i + chunkSize))
  return { chunks, byteLength: buffer.byteLength }
}

const bigBody = (mib: number): { body: LoadBody; text: string } => {
  const line = "12345,some text with, commas and \"quotes\",2024-01-01\n"
  const text = line.repeat(Math.ceil((mib * 1024 * 1024) / line.length))
  return { body: bodyOf(text), text }
}

const logs: Array<string> = []
const captureLogger = Logger.make(({ annotations, message }) => {
  const ann: Record<string, unknown> = {}
  for (const [k, v] of HashMap.toEntries(annotations)) ann[k] = v
  logs.push(JSON.stringify({ message, ann }))
})
const quiet = Logger.replace(Logger.defaultLogger, captureLogger)

/** The table every request of these tests loads into. */
const T = { database: "db", table: "t" } as const

const withClient = <A, E>(
  config: StarRocksConfig,
  f: (client: LoadClient.LoadClient) => Effect.Effect<A, E>,
  options?: LoadClient.LoadClientOptions
): Effect.Effect<A, E> =>
  Effect.scoped(Effect.flatMap(LoadClient.make(config, options), f)).pipe(
    Effect.provide(quiet)
  )

const load = (config: StarRocksConfig, label: string, body: LoadBody, headers: Record<string, string> = {}) =>
  withClient(config, (client) => client.loadBatch({ ...T, label, headers, body }))

const assertNoSecret = (error: unknown) => {
  const texts = [
    JSON.stringify(error),
    String(error),
    (error as Error).message ?? "",
    JSON.stringify(List.fromIterable(logs))
  ]
  for (const text of texts) {
    assert.notInclude(text, PASSWORD)
    assert.notInclude(text, AUTH_B64)
  }
}

const small = bodyOf("1,a\n2,b\n")

// ---------------------------------------------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------------------------------------------

describe("LoadClient: redirects", () => {
  it.scopedLive("FE 307 → BE: auth and the whole multi-MiB body reach the BE, nothing reaches the FE", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster()
      const { body, text } = bigBody(6)
      const config = testConfig({ loadUrl: [cluster.fe] })
      // the sink merges the table's sink.properties.* under its own headers; the client sends them as given
      const result = yield* load(config, "l-big", body, {
        max_filter_ratio: "0.1",
        column_separator: "|",
        format: "csv"
      })
      assert.strictEqual(result.status, "Success")
      assert.strictEqual(result.retries, 0)
      assert.deepStrictEqual(result.hops, [`http://${cluster.fe}`, cluster.beOrigin])
      assert.strictEqual(result.loadBytes, body.byteLength)
      assert.strictEqual(result.timings["StreamLoadPutTimeMs"], 2)
      assert.strictEqual(result.timings["LoadTimeMs"], 12)
      assert.strictEqual(cluster.feBodyBytes, 0)
      assert.strictEqual(cluster.feRequests[0]!.expect, "100-continue")
      const call = cluster.beCalls[0]!
      assert.strictEqual(call.headers.authorization, AUTH)
      assert.strictEqual(call.headers.expect, "100-continue")
      assert.strictEqual(call.headers.label, "l-big")
      assert.strictEqual(call.headers.column_separator, "|")
      assert.strictEqual(call.headers.max_filter_ratio, "0.1")
      assert.strictEqual(call.bytes, body.byteLength)
      assert.isTrue(call.body.equals(Buffer.from(text)))
    }))

  it.scopedLive("two chained 307s (follower → leader → BE), and the hop limit", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({ leaderHops: 1 })
      const ok = yield* load(testConfig({ loadUrl: [cluster.fe], maxRedirects: 2 }), "l-chain", small)
      assert.strictEqual(ok.hops.length, 3)
      assert.strictEqual(cluster.beCalls[0]!.headers.authorization, AUTH)
      assert.strictEqual(cluster.feBodyBytes, 0)
      const error = yield* Effect.flip(load(testConfig({ loadUrl: [cluster.fe], maxRedirects: 1 }), "l-chain2", small))
      assert.strictEqual(error._tag, "RedirectError")
      assert.include(error.message, "more than 1 redirects")
    }))

  it.scopedLive("be-host-map rewrites the BE address handed out by the FE", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({ beAddress: "be-internal.cluster.local:8040" })
      const config = testConfig({
        loadUrl: [cluster.fe],
        beHostMap: new Map([["be-internal.cluster.local:8040", cluster.beHostPort]])
      })
      const result = yield* load(config, "l-map", small)
      assert.strictEqual(result.status, "Success")
      assert.deepStrictEqual(result.hops, [`http://${cluster.fe}`, cluster.beOrigin])
    }))

  it("redirect rule: https→http refused, host map applied, relative Location resolved", () => {
    const map = new Map([["10.0.0.5:8040", "be.example.com:18040"]])
    const https = new URL("https://fe.example.com:8443/api/db/t/_stream_load")
    assert.isTrue(Either.isLeft(resolveRedirect(https, "http://10.0.0.9:8040/api/db/t/_stream_load", map)))
    const upgraded = resolveRedirect(
      https,
      "http://10.0.0.5:8040/api/db/t/_stream_load",
      new Map([["10.0.0.5:8040", "https://be-proxy:443"]])
    )
    assert.isTrue(Either.isRight(upgraded) && upgraded.right.href === "https://be-proxy/api/db/t/_stream_load")
    const plain = new URL("http://fe:8030/api/db/t/_stream_load?x=1")
    const mapped = resolveRedirect(plain, "http://10.0.0.5:8040/api/db/t/_stream_load?x=1", map)
    assert.isTrue(
      Either.isRight(mapped) && mapped.right.href === "http://be.example.com:18040/api/db/t/_stream_load?x=1"
    )
    const relative = resolveRedirect(plain, "/api/db/t/_stream_load", map)
    assert.isTrue(Either.isRight(relative) && relative.right.host === "fe:8030")
    assert.isTrue(Either.isLeft(resolveRedirect(plain, "ftp://x/y", map)))
    const creds = resolveRedirect(plain, "http://u:p@10.0.0.7:8040/x", map)
    assert.isTrue(Either.isRight(creds) && creds.right.username === "" && creds.right.password === "")
  })

  it.scopedLive("direct-to-BE mode skips the FE", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster()
      const result = yield* load(
        testConfig({ loadUrl: [cluster.fe], directBackends: [cluster.beHostPort] }),
        "l-direct",
        small
      )
      assert.deepStrictEqual(result.hops, [cluster.beOrigin])
      assert.strictEqual(cluster.feRequests.length, 0)
      assert.strictEqual(cluster.beCalls[0]!.headers.authorization, AUTH)
    }))
})

/** A self-signed certificate for 127.0.0.1 and 127.0.0.2, made with the openssl CLI when it is there. */
const selfSigned = (() => {
  try {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "lc-tls-"))
    const key = Path.join(dir, "key.pem")
    const cert = Path.join(dir, "cert.pem")
    execFileSync("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1,IP:127.0.0.2"
    ], { stdio: "ignore" })
    return { key: Fs.readFileSync(key), cert: Fs.readFileSync(cert) }
  } catch {
    return undefined
  }
})()

/** An https FE that redirects to `location(port)` and an https BE that answers Success. */
const makeTlsPair = (location: (bePorts: { http: number; https: number }) => string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const tls = selfSigned!
      const beHits: Array<{ auth: string | undefined; bytes: number }> = []
      const beHandler = (req: Http.IncomingMessage, res: Http.ServerResponse) => {
        res.writeContinue()
        let bytes = 0
        req.on("data", (d: Buffer) => {
          bytes += d.byteLength
        })
        req.on("end", () => {
          beHits.push({ auth: req.headers.authorization, bytes })
          json4(res, success(String(req.headers.label), bytes))
        })
      }
      const be = Https.createServer({ key: tls.key, cert: tls.cert })
      be.on("checkContinue", beHandler)
      const plainBe = Http.createServer()
      plainBe.on("checkContinue", beHandler)
      const fe = Https.createServer({ key: tls.key, cert: tls.cert })
      const bePort = await listen(be as unknown as Http.Server, "127.0.0.2")
      const plainPort = await listen(plainBe, "127.0.0.2")
      const feHandler = (req: Http.IncomingMessage, res: Http.ServerResponse) => {
        res.writeHead(307, {
          Location: `${location({ http: plainPort, https: bePort })}${req.url}`,
          Connection: "close"
        })
        res.end()
      }
      fe.on("checkContinue", feHandler)
      fe.on("request", feHandler)
      const fePort = await listen(fe as unknown as Http.Server, "127.0.0.1")
      return {
        fe: `https://127.0.0.1:${fePort}`,
        bePort,
        plainPort,
        beHits,
        servers: [fe, be, plainBe] as Array<Http.Server>
      }
    }),
    ({ servers }) => Effect.promise(() => Promise.all(servers.map(close)))
  )

describe.skipIf(selfSigned === undefined)("LoadClient: https", () => {
  it.scopedLive("an https FE redirecting to a plain-http BE is refused", () =>
    Effect.gen(function*() {
      const pair = yield* makeTlsPair((p) => `http://127.0.0.2:${p.http}`)
      const error = yield* Effect.flip(
        withClient(
          testConfig({ loadUrl: [pair.fe] }),
          (client) => client.loadBatch({ ...T, label: "l-tls1", headers: {}, body: small }),
          { rejectUnauthorized: false }
        )
      )
      assert.strictEqual(error._tag, "RedirectError")
      assert.include(error.message, "https→http")
      assert.strictEqual(pair.beHits.length, 0)
    }))

  it.scopedLive("https end to end; be-host-map may point the BE at an https address", () =>
    Effect.gen(function*() {
      const pair = yield* makeTlsPair((p) => `http://be-internal:${p.http}`)
      const result = yield* withClient(
        testConfig({
          loadUrl: [pair.fe],
          beHostMap: new Map([[`be-internal:${pair.plainPort}`, `https://127.0.0.2:${pair.bePort}`]])
        }),
        (client) => client.loadBatch({ ...T, label: "l-tls2", headers: {}, body: bigBody(1).body }),
        { rejectUnauthorized: false }
      )
      assert.strictEqual(result.status, "Success")
      assert.deepStrictEqual(result.hops, [
        `https://127.0.0.1:${new URL(pair.fe).port}`,
        `https://127.0.0.2:${pair.bePort}`
      ])
      assert.strictEqual(pair.beHits[0]!.auth, AUTH)
    }))

  it.scopedLive("a self-signed certificate is rejected by default, without retries", () =>
    Effect.gen(function*() {
      const pair = yield* makeTlsPair((p) => `https://127.0.0.2:${p.https}`)
      const error = yield* Effect.flip(
        withClient(
          testConfig({ loadUrl: [pair.fe], maxRetries: 3 }),
          (client) => client.loadBatch({ ...T, label: "l-tls3", headers: {}, body: small })
        )
      )
      assert.strictEqual(error._tag, "TransportError")
      if (error._tag === "TransportError") {
        assert.strictEqual(error.code, "DEPTH_ZERO_SELF_SIGNED_CERT")
        assert.isFalse(isRetryable(error))
      }
    }))
})

describe("LoadClient: failover and transient failures", () => {
  it.scopedLive("first FE refuses connections → the second is used and the first marked down", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster()
      const dead = Http.createServer()
      const port = yield* Effect.promise(() => listen(dead, "127.0.0.1"))
      yield* Effect.promise(() => close(dead))
      const config = testConfig({ loadUrl: [`127.0.0.1:${port}`, cluster.fe], maxRetries: 0 })
      const { result, status } = yield* withClient(config, (client) =>
        Effect.gen(function*() {
          const result = yield* client.loadBatch({ ...T, label: "l-failover", headers: {}, body: small })
          // two more loads: the rotation comes back to the dead FE, which is skipped while marked down
          for (const label of ["l-failover2", "l-failover3"]) {
            const next = yield* client.loadBatch({ ...T, label, headers: {}, body: small })
            assert.strictEqual(next.hops[0], `http://${cluster.fe}`)
          }
          return { result, status: yield* client.endpointStatus }
        }))
      assert.strictEqual(result.status, "Success")
      assert.strictEqual(result.hops[0], `http://${cluster.fe}`)
      assert.isTrue(status[0]!.down)
      assert.include(status[0]!.lastError ?? "", "ECONNREFUSED")
      assert.isFalse(status[1]!.down)
      // skipped, not retried: a single refused connection in total
      assert.strictEqual(status[0]!.failures, 1)
      assert.strictEqual(cluster.beCalls.length, 3)
    }))

  it.scopedLive("reset mid-body, then success: same label, one retry", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({
        be: (call) => call.n === 0 ? { _: "reset" } : { _: "json", body: success(call.label, 4 * 1024 * 1024) }
      })
      const { body } = bigBody(4)
      const result = yield* load(testConfig({ loadUrl: [cluster.fe] }), "l-reset2", body)
      assert.strictEqual(result.status, "Success")
      assert.strictEqual(result.retries, 1)
      // the first attempt never completed its body; the retry carried the same label and the whole body
      assert.deepStrictEqual(cluster.beLabels, ["l-reset2", "l-reset2"])
      assert.deepStrictEqual(cluster.beCalls.map((c) => [c.label, c.bytes]), [["l-reset2", body.byteLength]])
    }))

  it.scopedLive("HTTP 500 from the FE is retried", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({
        fe: (_req, n) => n === 0 ? { status: 500, body: JSON.stringify({ status: "FAILED", msg: "NPE" }) } : undefined
      })
      const result = yield* load(testConfig({ loadUrl: [cluster.fe] }), "l-500", small)
      assert.strictEqual(result.status, "Success")
      assert.strictEqual(result.retries, 1)
    }))

  it.scopedLive("Fail + TXN_IN_PROCESSING / too many versions / memory limit are retried with the same label", () =>
    Effect.gen(function*() {
      const messages = [
        { Status: "TXN_IN_PROCESSING", Message: "Transaction in processing, please retry later" },
        { Status: "Fail", Message: "Too many versions. tablet_id: 221090, version_count: 1230, limit: 1000" },
        { Status: "Fail", Message: "Memory of process exceed limit. Used: 6045434016, Limit: 2147483648." }
      ]
      const cluster = yield* makeCluster({
        be: (call) =>
          call.n < messages.length
            ? { _: "json", body: { TxnId: -1, Label: call.label, ...messages[call.n] } }
            : { _: "json", body: success(call.label, 8) }
      })
      logs.length = 0
      const result = yield* load(testConfig({ loadUrl: [cluster.fe], maxRetries: 3 }), "l-transient", small)
      assert.strictEqual(result.status, "Success")
      assert.strictEqual(result.retries, 3)
      assert.deepStrictEqual(cluster.beCalls.map((c) => c.label), [
        "l-transient",
        "l-transient",
        "l-transient",
        "l-transient"
      ])
      // one structured log line per attempt
      const lines = logs.map((l) => JSON.parse(l) as { message: Array<string>; ann: Record<string, unknown> })
        .filter((l) => l.message.includes("stream load"))
      assert.strictEqual(lines.length, 4)
      assert.strictEqual(lines[0]!.ann["label"], "l-transient")
      assert.strictEqual(lines[0]!.ann["hops"], `http://${cluster.fe} -> ${cluster.beOrigin}`)
      assert.strictEqual(lines[3]!.ann["status"], "Success")
      assert.strictEqual(lines[3]!.ann["bytes"], small.byteLength)
    }))

  it.scopedLive("every failed attempt reaches currentAttemptFailed and every wait currentBackoff, in order", () =>
    Effect.gen(function*() {
      // the first attempt runs outside the retry (backoff.ts `counted`): its failure must still reach the hooks
      const cluster = yield* makeCluster({
        be: (call) =>
          call.n < 2
            ? {
              _: "json",
              body: { TxnId: -1, Label: call.label, Status: "TXN_IN_PROCESSING", Message: `busy ${call.n}` }
            }
            : { _: "json", body: success(call.label, 8) }
      })
      const seen: Array<string> = []
      const hooked = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        effect.pipe(
          Effect.locally(LoadClient.currentAttemptFailed, (error) =>
            Effect.sync(() => {
              seen.push(`failed: ${(error as { message: string }).message}`)
            })),
          Effect.locally(LoadClient.currentBackoff, (wait) =>
            Effect.zipRight(
              Effect.sync(() => {
                seen.push("wait")
              }),
              wait
            ))
        )
      const result = yield* hooked(load(testConfig({ loadUrl: [cluster.fe], maxRetries: 3 }), "l-hooks", small))
      assert.strictEqual(result.retries, 2)
      assert.deepStrictEqual(seen, ["failed: busy 0", "wait", "failed: busy 1", "wait"])

      // a failure not retried: seen once, no wait, one attempt in the final log line
      seen.length = 0
      logs.length = 0
      const permanent = yield* makeCluster({
        be: (call) => ({
          _: "json",
          body: { TxnId: -1, Label: call.label, Status: "Fail", Message: "too many filtered rows" }
        })
      })
      const error = yield* Effect.flip(hooked(load(testConfig({ loadUrl: [permanent.fe] }), "l-hooks2", small)))
      assert.strictEqual(error._tag, "StreamLoadError")
      assert.deepStrictEqual(seen, ["failed: too many filtered rows"])
      assert.strictEqual(permanent.beCalls.length, 1)
      const final = logs.map((l) => JSON.parse(l) as { message: Array<string>; ann: Record<string, unknown> })
        .filter((l) => l.message.includes("stream load failed"))
      assert.strictEqual(final.length, 1)
      assert.strictEqual(final[0]!.ann["attempts"], 1)
    }))

  it.scopedLive("a load is a span under a tracer of your own; under Effect's own, which keeps none, it makes none", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({
        be: (call) =>
          call.n % 2 === 0
            ? { _: "json", body: { TxnId: -1, Label: call.label, Status: "TXN_IN_PROCESSING", Message: "busy" } }
            : { _: "json", body: success(call.label, 8) }
      })
      // the backoff hook runs inside the load, under the load's span when there is one
      const seen: Array<string> = []
      const spanned = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        effect.pipe(
          Effect.locally(LoadClient.currentBackoff, (wait) =>
            Effect.zipRight(
              Effect.flatMap(Effect.option(Effect.currentSpan), (span) =>
                Effect.sync(() => {
                  seen.push(Option.match(span, { onNone: () => "none", onSome: (s) => s.name }))
                })),
              wait
            )),
          Effect.withSpan("caller")
        )
      yield* spanned(load(testConfig({ loadUrl: [cluster.fe] }), "l-span1", small))
      const own = yield* Effect.tracerWith((native) =>
        Effect.succeed(Tracer.make({
          span: (...args) => native.span(...args),
          context: (f, fiber) => native.context(f, fiber)
        }))
      )
      yield* spanned(load(testConfig({ loadUrl: [cluster.fe] }), "l-span2", small)).pipe(Effect.withTracer(own))
      assert.deepStrictEqual(seen, ["caller", "starrocks.streamLoad"])
    }))

  it.scopedLive("FAILED: No backend alive. is retried, then a failure (never success)", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({
        fe: () => ({
          status: 200,
          body: JSON.stringify(
            { Status: "FAILED", Message: "class com.starrocks.common.DdlException: No backend alive." },
            null,
            2
          )
        })
      })
      const error = yield* Effect.flip(load(testConfig({ loadUrl: [cluster.fe], maxRetries: 2 }), "l-nobe", small))
      assert.strictEqual(error._tag, "StreamLoadError")
      if (error._tag === "StreamLoadError") {
        assert.isTrue(error.retryable)
        assert.strictEqual(error.status, "FAILED")
        assert.include(error.message, "No backend alive.")
      }
      assert.strictEqual(cluster.feRequests.length, 3)
    }))
})

describe("LoadClient: keep-alive", () => {
  it.scopedLive("BE connections are reused; a pooled socket the server dropped is replaced at once", () =>
    Effect.gen(function*() {
      const served = new WeakMap<object, number>()
      const sockets = new Set<object>()
      const server = Http.createServer()
      let dropped = 0
      server.on("checkContinue", (req, res) => {
        const n = served.get(req.socket) ?? 0
        sockets.add(req.socket)
        if (n === 1 && dropped === 0) {
          // the second request on a kept-alive connection: drop it as a server that closed it would
          dropped++
          req.socket.destroy()
          return
        }
        served.set(req.socket, n + 1)
        res.writeContinue()
        let bytes = 0
        req.on("data", (d: Buffer) => {
          bytes += d.byteLength
        })
        req.on("end", () => json4(res, success(String(req.headers.label), bytes)))
      })
      const port = yield* Effect.acquireRelease(
        Effect.promise(() => listen(server, "127.0.0.2")),
        () => Effect.promise(() => close(server))
      )
      const config = testConfig({ loadUrl: ["127.0.0.1:1"], directBackends: [`127.0.0.2:${port}`], maxRetries: 0 })
      const results = yield* withClient(
        config,
        (client) =>
          Effect.forEach(
            ["k1", "k2", "k3", "k4"],
            (label) => client.loadBatch({ ...T, label, headers: {}, body: small })
          )
      )
      // k2's resend on a fresh connection is counted as a retry (maxRetries 0 does not forbid it: nothing reached
      // the server's handler, and the label is the same)
      assert.deepStrictEqual(results.map((r) => [r.status, r.retries]), [
        ["Success", 0],
        ["Success", 1],
        ["Success", 0],
        ["Success", 0]
      ])
      assert.strictEqual(dropped, 1)
      // 4 loads over 3 connections: the pooled one (k1, then dropped on k2), an unpooled fresh one for the k2
      // replay, then a new pooled one reused by k3 and k4
      assert.strictEqual(sockets.size, 3)
    }))
})

describe("LoadClient: outcomes", () => {
  it.scopedLive("Publish Timeout is a success, not re-sent", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({
        be: (call) => ({
          _: "json",
          body: {
            ...success(call.label, 8),
            Status: "Publish Timeout",
            Message: "Publish timeout. The data will be visible after a while"
          }
        })
      })
      const result = yield* load(testConfig({ loadUrl: [cluster.fe] }), "l-pt", small)
      assert.strictEqual(result.status, "Publish Timeout")
      assert.strictEqual(cluster.beCalls.length, 1)
    }))

  it.scopedLive("Label Already Exists + FINISHED → Already Loaded", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({
        be: (call) => ({
          _: "json",
          body: {
            TxnId: -1,
            Label: call.label,
            Status: "Label Already Exists",
            ExistingJobStatus: "FINISHED",
            Message: `Label [${call.label}] has already been used.`
          }
        })
      })
      const result = yield* load(testConfig({ loadUrl: [cluster.fe] }), "l-dup", small)
      assert.strictEqual(result.status, "Already Loaded")
      assert.strictEqual(cluster.stateCalls.length, 0)
    }))

  const running = (call: BeCall): BeAction => ({
    _: "json",
    body: {
      TxnId: -1,
      Label: call.label,
      Status: "Label Already Exists",
      ExistingJobStatus: "RUNNING",
      Message: `Label [${call.label}] has already been used.`
    }
  })

  it.scopedLive("RUNNING → get_load_state until VISIBLE", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({
        be: running,
        loadState: (_l, n) => (n < 2 ? "PREPARE" : n < 3 ? "COMMITTED" : "VISIBLE")
      })
      const result = yield* load(testConfig({ loadUrl: [cluster.fe] }), "l-running", small)
      assert.strictEqual(result.status, "Already Loaded")
      assert.strictEqual(result.labelState, "COMMITTED")
      assert.deepStrictEqual(cluster.stateCalls, ["l-running", "l-running", "l-running"])
    }))

  it.scopedLive("RUNNING → ABORTED → loaded again under the same label", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({
        be: (call) => call.n === 0 ? running(call) : { _: "json", body: success(call.label, 8) },
        loadState: (_l, n) => (n < 1 ? "PREPARED" : "ABORTED")
      })
      const result = yield* load(testConfig({ loadUrl: [cluster.fe], maxRetries: 0 }), "l-aborted", small)
      assert.strictEqual(result.status, "Success")
      assert.deepStrictEqual(cluster.beCalls.map((c) => c.label), ["l-aborted", "l-aborted"])
    }))

  it.scopedLive("RUNNING that never settles → LabelStateTimeout within labelStateTimeout", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({ be: running, loadState: () => "PREPARE" })
      const started = Date.now()
      const error = yield* Effect.flip(
        load(testConfig({ loadUrl: [cluster.fe], labelStateTimeout: Duration.millis(300) }), "l-stuck", small)
      )
      assert.strictEqual(error._tag, "LabelStateTimeout")
      assert.isBelow(Date.now() - started, 2000)
    }))

  it.scopedLive("new-FE form Fail + 'has already been used' → get_load_state", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({
        be: (call) => ({
          _: "json",
          body: {
            TxnId: -1,
            Label: call.label,
            Status: "Fail",
            Message: `class com.starrocks.common.StarRocksException: Label [${call.label}] has already been used.`
          }
        }),
        loadState: () => "VISIBLE"
      })
      const result = yield* load(testConfig({ loadUrl: [cluster.fe] }), "l-newfe", small)
      assert.strictEqual(result.status, "Already Loaded")
      assert.strictEqual(result.labelState, "VISIBLE")
      assert.deepStrictEqual(cluster.stateCalls, ["l-newfe"])
    }))

  it.scopedLive("commit outcome unknown → get_load_state decides", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({
        be: (call) => ({
          _: "json",
          body: {
            TxnId: 7,
            Label: call.label,
            Status: "Fail",
            Message: "Commit transaction fail cause rpc, Transaction status unknown, you can retry with same label."
          }
        }),
        loadState: () => "VISIBLE"
      })
      const result = yield* load(testConfig({ loadUrl: [cluster.fe] }), "l-doubt", small)
      assert.strictEqual(result.status, "Already Loaded")
    }))

  it.scopedLive("an unknown status is a failure", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({
        be: (call) => ({ _: "json", body: { ...success(call.label, 8), Status: "Sucess" } })
      })
      const error = yield* Effect.flip(load(testConfig({ loadUrl: [cluster.fe] }), "l-weird", small))
      assert.strictEqual(error._tag, "StreamLoadError")
      if (error._tag === "StreamLoadError") assert.isFalse(error.retryable)
      assert.strictEqual(cluster.beCalls.length, 1)
    }))

  const filtered = (errorUrl: string) => (call: BeCall): BeAction => ({
    _: "json",
    body: {
      TxnId: 12,
      Label: call.label,
      Status: "Fail",
      Message: "too many filtered rows",
      NumberTotalRows: 2,
      NumberLoadedRows: 1,
      NumberFilteredRows: 1,
      NumberUnselectedRows: 0,
      ErrorURL: errorUrl
    }
  })

  it.scopedLive("too many filtered rows → permanent, with the ErrorURL's first lines fetched with Basic auth", () =>
    Effect.gen(function*() {
      let beOrigin = ""
      const cluster = yield* makeCluster({
        be: (call) => filtered(`${beOrigin}/api/_load_error_log?file=error_log_1`)(call),
        errorLog: {
          status: 200,
          text: "Error: Value count does not match column count. Expect 2, but got 1. Row: 2 secret-data\n" +
            "Error: second. Row: 3\n"
        }
      })
      beOrigin = cluster.beOrigin
      const error = yield* Effect.flip(
        load(testConfig({ loadUrl: [cluster.fe], sanitizeErrorLog: true }), "l-filtered", small)
      )
      assert.strictEqual(error._tag, "StreamLoadError")
      if (error._tag === "StreamLoadError") {
        assert.isFalse(error.retryable)
        assert.strictEqual(error.message, "too many filtered rows")
        assert.strictEqual(error.filteredRows, 1)
        assert.include(error.errorLog ?? "", "Value count does not match column count")
        assert.notInclude(error.errorLog ?? "", "secret-data")
        assert.include(error.errorLog ?? "", "Row: <redacted>")
      }
      assert.deepStrictEqual(cluster.errorLogAuth, [AUTH])
      assert.strictEqual(cluster.beCalls.length, 1)
      assertNoSecret(error)
    }))

  it.scopedLive("a 401 on the ErrorURL is 'log unavailable', not a different failure", () =>
    Effect.gen(function*() {
      let beOrigin = ""
      const cluster = yield* makeCluster({
        be: (call) => filtered(`${beOrigin}/api/_load_error_log?file=error_log_2`)(call),
        errorLog: { status: 401, text: "" }
      })
      beOrigin = cluster.beOrigin
      const error = yield* Effect.flip(load(testConfig({ loadUrl: [cluster.fe] }), "l-filtered2", small))
      assert.strictEqual(error._tag, "StreamLoadError")
      if (error._tag === "StreamLoadError") {
        assert.strictEqual(error.message, "too many filtered rows")
        assert.include(error.errorLog ?? "", "unavailable (HTTP 401)")
      }
    }))

  it.scopedLive("401 → permanent AuthError without the password anywhere", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster()
      logs.length = 0
      const config = testConfig({ loadUrl: [cluster.fe], password: Redacted.make("wrong-" + PASSWORD) })
      const error = yield* Effect.flip(load(config, "l-auth", small))
      assert.strictEqual(error._tag, "AuthError")
      if (error._tag === "AuthError") {
        assert.strictEqual(error.httpStatus, 401)
        assert.include(error.message, "Access denied")
      }
      assert.strictEqual(cluster.feRequests.length, 1)
      assertNoSecret(error)
      assert.notInclude(JSON.stringify(error), Buffer.from(`${USER}:wrong-${PASSWORD}`).toString("base64"))
    }))
})

describe("LoadClient: deadlines", () => {
  it.scopedLive("no 100 Continue within wait-for-continue timeout → retryable transport error", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({ be: () => ({ _: "silent" }) })
      const started = Date.now()
      const error = yield* Effect.flip(
        load(
          testConfig({ loadUrl: [cluster.fe], maxRetries: 1, waitForContinueTimeout: Duration.millis(150) }),
          "l-nocontinue",
          small
        )
      )
      assert.strictEqual(error._tag, "TransportError")
      if (error._tag === "TransportError") {
        assert.strictEqual(error.phase, "continue")
        assert.strictEqual(error.bodySent, false)
      }
      assert.isBelow(Date.now() - started, 2000)
      assert.strictEqual(cluster.beAuth.length, 2)
      assertNoSecret(error)
    }))

  it.scopedLive("a server that never answers → socket timeout, no hang", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({ be: () => ({ _: "hang" }) })
      const started = Date.now()
      const error = yield* Effect.flip(
        load(
          testConfig({ loadUrl: [cluster.fe], maxRetries: 0, socketTimeout: Option.some(Duration.millis(300)) }),
          "l-hang",
          small
        )
      )
      assert.strictEqual(error._tag, "TransportError")
      if (error._tag === "TransportError") assert.include(error.reason, "socket timeout")
      assert.isBelow(Date.now() - started, 2000)
    }))

  it.scopedLive("interruption destroys the request", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({ be: () => ({ _: "hang" }) })
      const result = yield* load(testConfig({ loadUrl: [cluster.fe] }), "l-int", small).pipe(
        Effect.timeout("200 millis"),
        Effect.either
      )
      assert.isTrue(Either.isLeft(result))
    }))

  it.scopedLive("errors never carry the password (transport, redirect, load failures)", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({ be: () => ({ _: "reset" }) })
      logs.length = 0
      const errors: Array<LoadError> = []
      errors.push(
        yield* Effect.flip(load(testConfig({ loadUrl: [cluster.fe], maxRetries: 1 }), "l-sec1", bigBody(1).body))
      )
      errors.push(
        yield* Effect.flip(
          load(testConfig({ loadUrl: [`http://${USER}:${PASSWORD}@127.0.0.1:1`], maxRetries: 0 }), "l-sec2", small)
        )
      )
      errors.push(yield* Effect.flip(load(testConfig({ loadUrl: [cluster.fe] }), "bad.label", small)))
      for (const e of errors) assertNoSecret(e)
      assert.isAbove(logs.length, 0)
    }))
})

describe("LoadClient: transaction interface", () => {
  it.scopedLive("begin, load (TXN_IN_PROCESSING retried), prepare verified by label state, commit, rollback", () =>
    Effect.gen(function*() {
      let loads = 0
      const cluster = yield* makeCluster({
        be: (call): BeAction => {
          const op = call.path.split("/").pop()
          switch (op) {
            case "begin":
              return { _: "json", body: { Status: "OK", Message: "", Label: call.label, TxnId: 42, BeginTxnTimeMs: 0 } }
            case "load":
              loads++
              return loads === 1
                ? {
                  _: "json",
                  body: { Status: "TXN_IN_PROCESSING", Label: call.label, Message: "Transaction in processing" }
                }
                : {
                  _: "json",
                  body: {
                    Status: "OK",
                    Message: "",
                    Label: call.label,
                    TxnId: 42,
                    LoadBytes: 8,
                    StreamLoadPlanTimeMs: 1,
                    ReceivedDataTimeMs: 2
                  }
                }
            case "prepare":
              return { _: "json", body: { Status: "TXN_NOT_EXISTS", Message: "transaction with label T not exists" } }
            case "commit":
              return { _: "json", body: { Status: "OK", Message: "", Label: call.label, TxnId: 42 } }
            default:
              return { _: "json", body: { Status: "TXN_NOT_EXISTS", Message: "Transaction with label T not exists" } }
          }
        },
        loadState: (label) => (label === "T1" ? "PREPARED" : "ABORTED")
      })
      const config = testConfig({ loadUrl: [cluster.fe] })
      yield* withClient(config, (client) =>
        Effect.gen(function*() {
          const begun = yield* client.begin({ ...T, label: "T1", headers: { timeout: "600" } })
          assert.strictEqual(begun.txnId, 42)
          assert.strictEqual(begun.hops.length, 2)
          const loaded = yield* client.loadTxn({ ...T, label: "T1", headers: { format: "csv" }, body: small })
          assert.strictEqual(loaded.retries, 1)
          assert.strictEqual(loaded.timings["StreamLoadPlanTimeMs"], 1)
          const prepared = yield* client.prepare({ ...T, label: "T1" })
          assert.strictEqual(prepared.status, "VERIFIED")
          assert.strictEqual(prepared.labelState, "PREPARED")
          const committed = yield* client.commit({ ...T, label: "T1" })
          assert.strictEqual(committed.status, "OK")
          const rolledBack = yield* client.rollback({ ...T, label: "T2" })
          assert.strictEqual(rolledBack.labelState, "ABORTED")
        }))
      const begin = cluster.beCalls.find((c) => c.path === "/api/transaction/begin")!
      assert.strictEqual(begin.method, "POST")
      assert.strictEqual(begin.headers.db, "db")
      assert.strictEqual(begin.headers.table, "t")
      assert.strictEqual(begin.headers.timeout, "600")
      assert.strictEqual(begin.headers.authorization, AUTH)
      const load = cluster.beCalls.filter((c) => c.path === "/api/transaction/load")
      assert.strictEqual(load.length, 2)
      assert.strictEqual(load[1]!.method, "PUT")
      assert.strictEqual(load[1]!.bytes, small.byteLength)
      assert.strictEqual(cluster.feBodyBytes, 0)
    }))

  it.scopedLive("begin on a label in use → TransactionError LabelExists; commit of an aborted txn → error", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({
        be: (call): BeAction =>
          call.path.endsWith("/begin")
            ? {
              _: "json",
              body: {
                Status: "LABEL_ALREADY_EXISTS",
                ExistingJobStatus: "RUNNING",
                Message: "Label [T3] has already been used."
              }
            }
            : { _: "json", body: { Status: "ABORTED", Message: "transaction is aborted" } },
        loadState: () => "ABORTED"
      })
      const config = testConfig({ loadUrl: [cluster.fe] })
      yield* withClient(config, (client) =>
        Effect.gen(function*() {
          const begin = yield* Effect.flip(client.begin({ ...T, label: "T3" }))
          assert.isTrue(begin._tag === "TransactionError" && begin.kind === "LabelExists")
          if (begin._tag === "TransactionError") assert.strictEqual(begin.existingJobStatus, "RUNNING")
          const commit = yield* Effect.flip(client.commit({ ...T, label: "T3" }))
          assert.isTrue(commit._tag === "TransactionError" && commit.kind === "Aborted")
          if (commit._tag === "TransactionError") assert.strictEqual(commit.labelState, "ABORTED")
        }))
    }))
})

describe("endpoint pool", () => {
  it.effect("rotates, skips a down endpoint until its backoff has passed, doubles the backoff", () =>
    Effect.gen(function*() {
      const pool = Endpoints.make(["fe1:8030", "http://fe2:8030/", "https://fe3:8443", "not a url::"], {
        baseBackoffMs: 1000,
        maxBackoffMs: 3000
      })
      assert.deepStrictEqual(pool.endpoints.map((e) => e.origin), [
        "http://fe1:8030",
        "http://fe2:8030",
        "https://fe3:8443"
      ])
      const order = (es: ReadonlyArray<Endpoints.Endpoint>) => es.map((e) => e.origin.slice(-9, -5))
      assert.deepStrictEqual(order(yield* pool.candidates), ["/fe1", "/fe2", "/fe3"])
      assert.deepStrictEqual(order(yield* pool.candidates), ["/fe2", "/fe3", "/fe1"])
      yield* pool.markDown(pool.endpoints[0]!, "ECONNREFUSED")
      // down endpoints go last, as a last resort
      assert.deepStrictEqual(order(yield* pool.candidates), ["/fe3", "/fe2", "/fe1"])
      assert.deepStrictEqual(order(yield* pool.candidates), ["/fe2", "/fe3", "/fe1"])
      yield* TestClock.adjust("1001 millis")
      assert.isFalse((yield* pool.status)[0]!.down)
      assert.deepStrictEqual(order(yield* pool.candidates), ["/fe2", "/fe3", "/fe1"])
      assert.deepStrictEqual(order(yield* pool.candidates), ["/fe3", "/fe1", "/fe2"])
      yield* pool.markDown(pool.endpoints[0]!, "ECONNRESET")
      yield* TestClock.adjust("1500 millis")
      assert.isTrue((yield* pool.status)[0]!.down) // 2 s the second time
      yield* pool.markUp(pool.endpoints[0]!)
      const status = (yield* pool.status)[0]!
      assert.isFalse(status.down)
      assert.strictEqual(status.failures, 0)
    }).pipe(Effect.provide(quiet)))
})

describe("LoadClient: any table", () => {
  it.scopedLive("one client loads into tables of two databases and reads each database's label states", () =>
    Effect.gen(function*() {
      const cluster = yield* makeCluster({ loadState: () => "VISIBLE" })
      const { a, b, state } = yield* withClient(
        testConfig({ loadUrl: [cluster.fe] }),
        (client) =>
          Effect.gen(function*() {
            const a = yield* client.loadBatch({
              database: "sales",
              table: "orders",
              label: "a-1",
              headers: {},
              body: small
            })
            const b = yield* client.loadBatch({
              database: "crm",
              table: "my table",
              label: "b-1",
              headers: {},
              body: small
            })
            const state = yield* client.getLoadState({ database: "crm", label: "b-1" })
            return { a, b, state }
          })
      )
      assert.strictEqual(a.status, "Success")
      assert.strictEqual(b.status, "Success")
      assert.strictEqual(state, "VISIBLE")
      assert.deepStrictEqual(cluster.beCalls.map((c) => c.path), [
        "/api/sales/orders/_stream_load",
        "/api/crm/my%20table/_stream_load"
      ])
      assert.deepStrictEqual(cluster.feRequests.map((r) => r.path).filter((p) => p.endsWith("get_load_state")), [
        "/api/crm/get_load_state"
      ])
    }))
})

describe("awaitLabelState (on the TestClock)", () => {
  const request = { database: "db", label: "l" }
  /** A get_load_state double answering `answers[n]` to the n-th read (the last one from then on); records times. */
  const reader = (answers: ReadonlyArray<LoadClient.LoadState | LoadError>, times: Array<number>) => {
    let n = 0
    return () =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        times.push(now)
        const answer = answers[Math.min(n++, answers.length - 1)]!
        return typeof answer === "string" ? Effect.succeed(answer) : Effect.fail(answer)
      })
  }
  const options = { timeout: "10 seconds", initialDelay: "100 millis", maxDelay: "2 seconds" } as const

  it.effect("reads with exponential pauses capped at 2 s, the last read at the deadline, then LabelStateTimeout", () =>
    Effect.gen(function*() {
      const times: Array<number> = []
      const fiber = yield* Effect.fork(
        Effect.flip(LoadStates.awaitLabelState(reader(["PREPARE"], times), request, (s) => s === "VISIBLE", options))
      )
      yield* TestClock.adjust("1 minute")
      const error = yield* Fiber.join(fiber)
      assert.deepStrictEqual(times, [0, 100, 300, 700, 1500, 3100, 5100, 7100, 9100, 10000])
      assert.strictEqual(error._tag, "LabelStateTimeout")
      if (error._tag === "LabelStateTimeout") {
        assert.strictEqual(error.lastState, "PREPARE")
        assert.strictEqual(error.waitedMs, 10_000)
      }
    }))

  it.effect("a transient read failure is read again; a final state ends the wait at once", () =>
    Effect.gen(function*() {
      const times: Array<number> = []
      const reset = new TransportError({ url: "u", reason: "reset", code: "ECONNRESET", phase: "response" })
      const fiber = yield* Effect.fork(
        LoadStates.awaitLabelState(
          reader(["PREPARE", reset, "COMMITTED", "VISIBLE"], times),
          request,
          (s) => s === "VISIBLE",
          options
        )
      )
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* Fiber.join(fiber), "VISIBLE")
      assert.deepStrictEqual(times, [0, 100, 300, 700])
    }))

  it.effect("a failure retryLogic does not retry ends the wait with that error", () =>
    Effect.gen(function*() {
      const times: Array<number> = []
      const denied = new AuthError({ url: "u", httpStatus: 401, status: "FAILED", message: "Access denied" })
      const fiber = yield* Effect.fork(
        Effect.flip(LoadStates.awaitLabelState(reader(["PREPARE", denied], times), request, () => false, options))
      )
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "AuthError")
      assert.deepStrictEqual(times, [0, 100])
    }))
})

// keep the layer export exercised
it("layer is a Layer", () => {
  assert.isTrue(Layer.isLayer(LoadClient.layer(testConfig({}))))
})

describe("LoadClient: transaction interface probe (sink.version AUTO)", () => {
  const probeWith = (answer: (res: Http.ServerResponse) => void) =>
    Effect.gen(function*() {
      const seen: Array<{ method: string; url: string; label: string | undefined; auth: string | undefined }> = []
      const server = Http.createServer((req, res) => {
        seen.push({
          method: req.method ?? "",
          url: req.url ?? "",
          label: req.headers["label"] as string | undefined,
          auth: req.headers["authorization"]
        })
        req.resume()
        answer(res)
      })
      const port = yield* Effect.acquireRelease(Effect.promise(() => listen(server, "127.0.0.1")), () =>
        Effect.promise(() => close(server)))
      const supported = yield* withClient(
        testConfig({ loadUrl: [`http://127.0.0.1:${port}`] }),
        (client) =>
          client.supportsTransactions(T)
      )
      return { supported, seen }
    })

  it.scopedLive("an FE that answers `Empty label.` has the transaction interface; the probe carries no label", () =>
    Effect.gen(function*() {
      const { seen, supported } = yield* probeWith((res) => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(
          JSON.stringify({ Status: "FAILED", Message: "class com.starrocks.common.StarRocksException: Empty label." })
        )
      })
      assert.isTrue(supported)
      assert.deepStrictEqual(seen.map((s) => [s.method, s.url, s.label, s.auth]), [[
        "POST",
        "/api/transaction/begin",
        undefined,
        AUTH
      ]])
    }))

  it.scopedLive("an FE without it (`Not implemented`, or 404) selects the label path", () =>
    Effect.gen(function*() {
      const notImplemented = yield* probeWith((res) => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({ status: "FAILED", msg: "Not implemented" }))
      })
      assert.isFalse(notImplemented.supported)
      const missing = yield* probeWith((res) => {
        res.writeHead(404, { "content-type": "text/html" })
        res.end("<html>Not Found</html>")
      })
      assert.isFalse(missing.supported)
    }))
})
