/**
 * The FE (frontend) HTTP server: authentication, the `Expect: 100-continue` rule, 307 redirects to BEs (never
 * reading the body, never answering `100 Continue`), the transaction endpoints, `get_load_state`, cancel and a
 * table's `_schema` (`rest/TableSchemaAction.java`).
 *
 * @internal
 */
import type * as Http from "node:http"
import type { Cluster, FeNode } from "./cluster.js"
import type { Handler } from "./http.js"
import { clientIp, compactJson, feJson, JSON_CONTENT_TYPE, lowerHeaders, parseBasic, send } from "./http.js"

const EXC = "class com.starrocks.common.StarRocksException: "
const DDL = "class com.starrocks.common.DdlException: "

interface Exchange {
  readonly req: Http.IncomingMessage
  readonly res: Http.ServerResponse
  readonly headers: Record<string, string>
  readonly url: string
  closeBeforeResponse: boolean
}

const NOT_FOUND_HTML = "<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1>" +
  "<p>The requested URL was not found on this server.</p></body></html>"

export const makeHandler = (cluster: Cluster, fe: FeNode): Handler => (req, res, _expect) => {
  const headers = lowerHeaders(req)
  const url = req.url ?? "/"
  cluster.logRequest({ node: fe.name, method: req.method ?? "GET", path: url, headers, bodyBytes: 0 })
  const ex: Exchange = { req, res, headers, url, closeBeforeResponse: false }
  // The FE never answers `100 Continue` (no writeContinue here) and never reads a load body.
  route(cluster, fe, ex).catch((e) => {
    const m = e instanceof Error ? e.message : String(e)
    out(ex, 500, compactJson(restResult(cluster, {}, "FAILED", m)), JSON_CONTENT_TYPE)
  })
}

const out = (ex: Exchange, status: number, body: string, type: string, extra: Record<string, string> = {}) => {
  if (ex.closeBeforeResponse) {
    ex.req.socket.destroy()
    return
  }
  send(ex.res, status, body, { "Content-Type": type, ...extra })
}

/** `RestBaseResult`: subclass fields first, then status, code, msg, message (old shape: status, msg). */
const restResult = (
  cluster: Cluster,
  fields: Record<string, unknown>,
  status: "OK" | "FAILED",
  msg: string
): Record<string, unknown> =>
  cluster.settings.loadStateShape === "old"
    ? { ...fields, status, msg: status === "OK" ? "Success" : msg }
    : status === "OK"
    ? { ...fields, status, code: "0", msg: "Success", message: "OK" }
    : { ...fields, status, code: "1", msg, message: msg }

/** `TransactionResult` (2-space pretty, Connection: close). */
const txnResult = (ex: Exchange, body: Record<string, unknown>) =>
  out(ex, 200, feJson(body), JSON_CONTENT_TYPE, { Connection: "close" })

const failed = (ex: Exchange, message: string) => txnResult(ex, { Status: "FAILED", Message: message })

/** 307 to `origin` (`http://host:port` or `https://host:port`: the scheme the target node serves). */
const redirect = (ex: Exchange, origin: string) => {
  if (ex.closeBeforeResponse) {
    ex.req.socket.destroy()
    return
  }
  send(ex.res, 307, "", { Location: `${origin}${ex.url}`, Connection: "close" })
}

/** Basic auth, checked before anything else: 401 with `WWW-Authenticate` and a compact body. */
const authenticate = (cluster: Cluster, ex: Exchange): boolean => {
  const auth = parseBasic(ex.headers["authorization"])
  const denied = auth === undefined
    ? "Need auth information."
    : cluster.checkPassword(auth.user, auth.password, clientIp(ex.req))
  if (denied === undefined) return true
  out(ex, 401, compactJson(restResult(cluster, {}, "FAILED", denied)), JSON_CONTENT_TYPE, {
    "WWW-Authenticate": "Basic realm=\"\"",
    Connection: "close"
  })
  return false
}

const route = async (cluster: Cluster, fe: FeNode, ex: Exchange) => {
  const q = ex.url.indexOf("?")
  const pathname = q >= 0 ? ex.url.slice(0, q) : ex.url
  const params = new URLSearchParams(q >= 0 ? ex.url.slice(q + 1) : "")
  const method = (ex.req.method ?? "GET").toUpperCase()
  const parts = pathname.split("/")

  const isTxn = parts.length === 4 && parts[1] === "api" && parts[2] === "transaction" &&
    (method === "POST" || method === "PUT")
  const fault = cluster.faults.take(
    fe.name,
    ex.url,
    (a) =>
      a._tag === "delay" || a._tag === "http-500" || a._tag === "close-before-response" ||
      a._tag === "close-mid-body" || (a._tag === "publish-timeout" && isTxn && parts[3]?.toLowerCase() === "commit")
  )
  let publishDelay: number | undefined
  if (fault !== undefined) {
    switch (fault._tag) {
      case "delay":
        await cluster.sleep(fault.ms)
        break
      case "http-500":
        out(ex, 500, compactJson(restResult(cluster, {}, "FAILED", "injected fault: HTTP 500")), JSON_CONTENT_TYPE, {
          Connection: "close"
        })
        return
      case "close-before-response":
        ex.closeBeforeResponse = true
        break
      case "close-mid-body":
        ex.req.socket.destroy()
        return
      case "publish-timeout":
        publishDelay = fault.visibleAfterMs
        break
    }
  }

  if (parts.length === 5 && parts[1] === "api" && parts[4] === "_stream_load" && method === "PUT") {
    return streamLoad(cluster, fe, ex, decodeURIComponent(parts[2]!), decodeURIComponent(parts[3]!))
  }
  if (isTxn) return transaction(cluster, fe, ex, parts[3]!, publishDelay)
  if (parts.length === 4 && parts[1] === "api" && parts[3] === "get_load_state" && method === "GET") {
    return loadState(cluster, fe, ex, decodeURIComponent(parts[2]!), params.get("label") ?? "")
  }
  if (parts.length === 5 && parts[1] === "api" && parts[4] === "_schema" && method === "GET") {
    return tableSchema(cluster, ex, decodeURIComponent(parts[2]!), decodeURIComponent(parts[3]!))
  }
  if (parts.length === 5 && parts[1] === "api" && parts[4] === "_cancel" && method === "POST") {
    const label = params.get("label") ?? decodeURIComponent(parts[3]!)
    return cancel(cluster, fe, ex, decodeURIComponent(parts[2]!), label)
  }
  if (method === "GET" || method === "HEAD") return out(ex, 404, NOT_FOUND_HTML, "text/html")
  out(ex, 404, compactJson({ status: "FAILED", msg: "Not implemented" }), JSON_CONTENT_TYPE)
}

// ---------------------------------------------------------------------------------------------------------------

const streamLoad = (cluster: Cluster, fe: FeNode, ex: Exchange, db: string, table: string) => {
  if (!authenticate(cluster, ex)) return
  const expect = (ex.headers["expect"] ?? "").toLowerCase() === "100-continue"
  if (cluster.settings.requireExpect && ex.req.httpVersion !== "1.0" && !expect) {
    return failed(ex, `${DDL}There is no 100-continue header`)
  }
  if (db === "") return failed(ex, `${DDL}No database selected.`)
  if (table === "") return failed(ex, `${DDL}No table selected.`)
  const be = cluster.chooseBe(fe)
  if (be === undefined) return failed(ex, `${DDL}No backend alive.`)
  redirect(ex, be.origin)
}

const leaderRedirect = (cluster: Cluster, fe: FeNode, ex: Exchange): boolean => {
  if (fe.isLeader) return false
  redirect(ex, cluster.fes[0]!.server.origin)
  return true
}

const transaction = async (
  cluster: Cluster,
  fe: FeNode,
  ex: Exchange,
  rawOp: string,
  publishDelay: number | undefined
) => {
  if (!authenticate(cluster, ex)) return
  if (leaderRedirect(cluster, fe, ex)) return
  const h = ex.headers
  const db = (h["db"] ?? "").trim()
  const label = (h["label"] ?? "").trim()
  if (db === "") return failed(ex, `${EXC}No database selected.`)
  if (label === "") return failed(ex, `${EXC}Empty label.`)
  const op = rawOp.toLowerCase()
  if (!["begin", "load", "prepare", "commit", "rollback"].includes(op)) {
    return failed(ex, `${EXC}Unknown transaction operation: ${rawOp}`)
  }
  const key = cluster.coordinatorKey(db, label)
  if (op === "begin") {
    // `coordinatorMgr.allocate`: a label whose transaction is still open keeps its BE (a retried begin reaches the
    // BE that owns the context); otherwise the next alive BE, round-robin.
    const cached = cluster.coordinators.get(key)
    const live = cluster.latest(db, label)
    const be = cached !== undefined && live?.status === "PREPARE" && cluster.bes[cached]?.alive
      ? cluster.bes[cached]
      : cluster.chooseBe(fe)
    if (be === undefined) return failed(ex, `${EXC}No backend alive.`)
    cluster.coordinators.set(key, be.index)
    return redirect(ex, be.origin)
  }
  const coordinator = (): string | undefined => {
    const i = cluster.coordinators.get(key)
    if (i !== undefined) return cluster.bes[i]?.address
    return cluster.latest(db, label)?.coordinator
  }
  if (op === "load" || op === "prepare") {
    const be = coordinator()
    if (be === undefined) {
      return failed(
        ex,
        `${EXC}Can't find the transaction with db [${db}] and label[${label}]. The possible reasons: ` +
          "1. FE leader is started or switched; 2. The transaction timeouts and is cleaned."
      )
    }
    return redirect(ex, cluster.beOrigin(be))
  }
  const txn = cluster.latest(db, label)
  // TransactionLoadAction.getTxnState
  if (txn === undefined) return failed(ex, `${EXC}No transaction found by label ${label}`)
  const id = txn.txnId
  if (op === "commit") {
    switch (txn.status) {
      case "PREPARE":
        return redirect(ex, cluster.beOrigin(coordinator() ?? txn.coordinator))
      case "PREPARED": {
        const r = await cluster.commitPrepared(id, publishDelay)
        if ("error" in r) return failed(ex, `${EXC}${r.error}`)
        return txnResult(ex, { Status: "OK", Message: "", TxnId: id, Label: label })
      }
      case "COMMITTED":
      case "VISIBLE":
        return txnResult(ex, {
          Status: "OK",
          Message: `Transaction ${id} has already committed, label is ${label}`,
          TxnId: id,
          Label: label
        })
      case "ABORTED":
        return failed(ex, `${EXC}Can not commit ABORTED transaction ${id}, label is ${label}`)
    }
  }
  switch (txn.status) {
    case "PREPARE":
      return redirect(ex, cluster.beOrigin(coordinator() ?? txn.coordinator))
    case "PREPARED":
      cluster.abort(id, "User Aborted")
      return txnResult(ex, { Status: "OK", Message: "", TxnId: id, Label: label })
    case "ABORTED":
      return txnResult(ex, {
        Status: "OK",
        Message: `Transaction ${id} has already aborted, label is ${label}`,
        TxnId: id,
        Label: label
      })
    default:
      return failed(ex, `${EXC}Can not abort ${txn.status} transaction ${id}, label is ${label}`)
  }
}

const loadState = async (cluster: Cluster, fe: FeNode, ex: Exchange, db: string, label: string) => {
  if (!authenticate(cluster, ex)) return
  if (leaderRedirect(cluster, fe, ex)) return
  const reply = (body: Record<string, unknown>) => out(ex, 200, compactJson(body), JSON_CONTENT_TYPE)
  if (label === "") return reply(restResult(cluster, {}, "FAILED", "No label selected."))
  if (!(await cluster.databaseExists(db))) {
    return reply(restResult(cluster, {}, "FAILED", `unknown database, database=${db}`))
  }
  const txn = cluster.latest(db, label)
  if (txn === undefined) return reply(restResult(cluster, { state: "UNKNOWN" }, "OK", ""))
  const fields = cluster.settings.loadStateShape === "old"
    ? { state: txn.status }
    : { state: txn.status, reason: txn.status === "ABORTED" ? txn.reason : "" }
  reply(restResult(cluster, fields, "OK", ""))
}

/**
 * `GET /api/{db}/{table}/_schema` (`TableSchemaAction`): the password first (401), then the database and the table
 * (404 with `{"status":404,"exception":"Database [d] does not exists"}` / `Table [t] …`), else 200 with the
 * columns' primitive types. Any FE answers (no leader redirect). The emulator's users have every privilege, so
 * the SELECT check never refuses.
 */
const tableSchema = async (cluster: Cluster, ex: Exchange, db: string, table: string) => {
  if (!authenticate(cluster, ex)) return
  const reply = (status: number, body: Record<string, unknown>) =>
    out(ex, status, compactJson({ ...body, status }), JSON_CONTENT_TYPE)
  if (db === "" || table === "") return reply(400, { exception: "No database or table selected." })
  if (!(await cluster.databaseExists(db))) return reply(404, { exception: `Database [${db}] does not exists` })
  const def = await cluster.resolveTable(db, table)
  if (typeof def === "string") return reply(404, { exception: `Table [${table}] does not exists` })
  const properties = def.columns.map((c) => {
    const m = /^\s*([A-Za-z0-9_]+)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?/.exec(c.type)
    const base = (m?.[1] ?? c.type).toUpperCase()
    if (base === "DECIMAL" || base.startsWith("DECIMAL")) {
      const precision = Number(m?.[2] ?? 38)
      const scale = Number(m?.[3] ?? 0)
      const type = precision <= 9 ? "DECIMAL32" : precision <= 18 ? "DECIMAL64" : "DECIMAL128"
      return { precision: String(precision), scale: String(scale), type, comment: "", name: c.name }
    }
    return { type: base, comment: "", name: c.name }
  })
  reply(200, { properties })
}

const cancel = (cluster: Cluster, fe: FeNode, ex: Exchange, db: string, label: string) => {
  if (!authenticate(cluster, ex)) return
  if (leaderRedirect(cluster, fe, ex)) return
  const reply = (body: Record<string, unknown>) => out(ex, 200, compactJson(body), JSON_CONTENT_TYPE)
  if (label === "") return reply(restResult(cluster, {}, "FAILED", "No label selected."))
  const txn = cluster.latest(db, label)
  if (txn === undefined) {
    return reply(restResult(cluster, {}, "FAILED", `No transaction found with db[${db}] and label[${label}]`))
  }
  if (!cluster.abort(txn.txnId, "user cancel")) {
    return reply(
      restResult(cluster, {}, "FAILED", `Can not cancel ${txn.status} transaction ${txn.txnId}, label is ${label}`)
    )
  }
  reply(restResult(cluster, {}, "OK", ""))
}
