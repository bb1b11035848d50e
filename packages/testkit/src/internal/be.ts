/**
 * The BE (backend) HTTP server: plain stream load, the transaction interface (begin, load, prepare, commit,
 * rollback, list) and the error-log download. Every JSON reply is HTTP 200 with a 4-space pretty body.
 *
 * @internal
 */
import { randomBytes, randomUUID } from "node:crypto"
import type * as Http from "node:http"
import type { BeNode, BeTxnContext, Cluster, Counters } from "./cluster.js"
import { runLoad, validateHeaders } from "./data/pipeline.js"
import type { LoadOutcome } from "./data/types.js"
import type { FaultAction } from "./faults.js"
import type { Handler } from "./http.js"
import { beJson, clientIp, compactJson, INCOMPLETE_BODY, lowerHeaders, parseBasic, send } from "./http.js"
import * as MergeCommit from "./mergeCommit.js"
import type { TableDef } from "./model.js"

const MiB = 1024 * 1024
const JSON_BATCH_LIMIT = 100 * MiB
const KNOWN_FORMATS = new Set(["csv", "json", "gzip", "bzip2", "lz4", "deflate", "zstd"])

/** The load headers that must be identical on every `transaction/load` of one transaction. */
const DATA_HEADERS = [
  "format",
  "column_separator",
  "row_delimiter",
  "columns",
  "where",
  "max_filter_ratio",
  "strict_mode",
  "timezone",
  "partitions",
  "temporary_partitions",
  "negative",
  "jsonpaths",
  "json_root",
  "strip_outer_array",
  "ignore_json_size",
  "partial_update",
  "partial_update_mode",
  "merge_condition",
  "enclose",
  "escape",
  "skip_header",
  "trim_space",
  "compression",
  "content-encoding",
  "load_mem_limit",
  "exec_mem_limit",
  "log_rejected_record_num",
  "load_dop",
  "envelope",
  "insert_mode"
]

const dataHeaders = (h: Record<string, string>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const k of DATA_HEADERS) if (h[k] !== undefined) out[k] = h[k]
  return out
}

const sameHeaders = (a: Record<string, string>, b: Record<string, string>): boolean => {
  const ka = Object.keys(a)
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k])
}

const zero: Counters = { total: 0, loaded: 0, filtered: 0, unselected: 0, bytes: 0 }

const jsonSizeMessage = (n: number) =>
  `The size of this batch exceed the max size [${JSON_BATCH_LIMIT}]  of json type data  data [ ${n} ]. ` +
  "Set ignore_json_size to skip the check, although it may lead huge memory consuming."

const TOO_MANY_VERSIONS =
  "Failed to load data into tablet 10086, because of too many versions, current/limit: 1001/1000. " +
  "You can reduce the loading job concurrency, or increase loading data batch size. " +
  "If you are loading data with Routine Load, you can increase FE configs routine_load_task_consume_second and " +
  "max_routine_load_batch_size,: be:127.0.0.2"

const MEM_LIMIT =
  "Memory of process exceed limit. QUERY Backend: 127.0.0.2, fragment: 00000000-0000-0000-0000-000000000000 " +
  "Used: 6045434016, Limit: 2147483648. Mem usage has exceed the limit of single query, " +
  "You can change the limit by set session variable exec_mem_limit."

const COMMIT_UNKNOWN = "Commit transaction fail cause TTransportException: java.net.SocketTimeoutException: " +
  "Read timed out, Transaction status unknown, you can retry with same label."

export const PUBLISH_TIMEOUT_MESSAGE = "Publish timeout. The data will be visible after a while"

const IN_PROCESSING = "Transaction in processing, please retry later"

/** The BE message of a status-body fault (fail, too-many-versions, mem-limit, txn-in-processing). */
const faultMessage = (a: FaultAction): string | undefined =>
  a._tag === "fail"
    ? a.message
    : a._tag === "too-many-versions"
    ? TOO_MANY_VERSIONS
    : a._tag === "mem-limit"
    ? MEM_LIMIT
    : a._tag === "txn-in-processing"
    ? IN_PROCESSING
    : undefined

type BodyResult =
  | { readonly _tag: "Ok"; readonly body: Buffer }
  | { readonly _tag: "Incomplete"; readonly bytes: number }
  | { readonly _tag: "TooLarge"; readonly bytes: number }
  | { readonly _tag: "Closed" }

interface Exchange {
  readonly req: Http.IncomingMessage
  readonly res: Http.ServerResponse
  readonly expect: boolean
  readonly headers: Record<string, string>
  readonly log: { bodyBytes: number }
  closeBeforeResponse: boolean
  closeMidBody: boolean
  bodyRead: boolean
  forceClose: boolean
}

export const makeHandler = (cluster: Cluster, be: BeNode): Handler => (req, res, expect) => {
  const headers = lowerHeaders(req)
  const log = cluster.logRequest({
    node: be.name,
    method: req.method ?? "GET",
    path: req.url ?? "/",
    headers,
    bodyBytes: 0
  })
  const ex: Exchange = {
    req,
    res,
    expect,
    headers,
    log,
    closeBeforeResponse: false,
    closeMidBody: false,
    bodyRead: false,
    forceClose: false
  }
  route(cluster, be, ex).catch((e) => {
    reply(ex, 500, compactJson({ status: "FAILED", msg: e instanceof Error ? e.message : String(e) }), "json")
  })
}

const reply = (
  ex: Exchange,
  status: number,
  body: string,
  type: "json" | "text",
  extra: Record<string, string> = {}
) => {
  if (ex.closeBeforeResponse) {
    ex.req.socket.destroy()
    return
  }
  const headers: Record<string, string> = {
    "Content-Type": type === "json" ? "application/json" : "text/plain; charset=utf-8",
    ...extra
  }
  // A reply sent before the body was read (header-phase error) closes the connection: the client never sent it.
  if (ex.forceClose || (!ex.bodyRead && !ex.req.complete)) headers["Connection"] = "close"
  send(ex.res, status, body, headers)
}

const readBody = (ex: Exchange, limit: number): Promise<BodyResult> =>
  new Promise((resolve) => {
    const { req } = ex
    if (ex.expect) ex.res.writeContinue()
    const chunks: Array<Buffer> = []
    let bytes = 0
    let done = false
    const finish = (r: BodyResult) => {
      if (done) return
      done = true
      ex.bodyRead = true
      resolve(r)
    }
    req.on("data", (chunk: Buffer) => {
      if (done) return
      bytes += chunk.byteLength
      ex.log.bodyBytes = bytes
      if (ex.closeMidBody) {
        req.socket.destroy()
        finish({ _tag: "Closed" })
        return
      }
      if (bytes > limit) {
        req.pause()
        ex.forceClose = true
        finish({ _tag: "TooLarge", bytes })
        return
      }
      chunks.push(chunk)
    })
    req.on("end", () => finish({ _tag: "Ok", body: Buffer.concat(chunks) }))
    req.on("aborted", () => finish({ _tag: "Incomplete", bytes }))
    req.on(INCOMPLETE_BODY, () => {
      ex.forceClose = true
      finish({ _tag: "Incomplete", bytes })
    })
    req.on("error", () => finish({ _tag: "Incomplete", bytes }))
    req.on("close", () =>
      finish(req.complete ? { _tag: "Ok", body: Buffer.concat(chunks) } : { _tag: "Incomplete", bytes }))
  })

/** The loads in flight of each `overload` fault (keyed by the fault's action, one object per added fault). */
const overloaded = new WeakMap<FaultAction, number>()

const route = async (cluster: Cluster, be: BeNode, ex: Exchange) => {
  const url = ex.req.url ?? "/"
  const q = url.indexOf("?")
  const pathname = q >= 0 ? url.slice(0, q) : url
  const params = new URLSearchParams(q >= 0 ? url.slice(q + 1) : "")
  const method = (ex.req.method ?? "GET").toUpperCase()

  const parts = pathname.split("/")
  let kind: "stream" | "txn-load" | "txn-op" | "error-log" | "health" | "none" = "none"
  if (pathname === "/api/_load_error_log" && (method === "GET" || method === "HEAD")) kind = "error-log"
  else if (pathname === "/api/health" && method === "GET") kind = "health"
  else if (pathname === "/api/transaction/load" && method === "PUT") kind = "txn-load"
  else if (
    parts.length === 4 && parts[1] === "api" && parts[2] === "transaction" && (method === "POST" || method === "PUT")
  ) {
    kind = "txn-op"
  } else if (parts.length === 5 && parts[1] === "api" && parts[4] === "_stream_load" && method === "PUT") {
    kind = "stream"
  }

  const op = kind === "txn-op" ? (parts[3] ?? "").toLowerCase() : ""
  const acceptsBody = kind === "stream" || kind === "txn-load" ||
    (kind === "txn-op" && (op === "prepare" || op === "commit"))
  const fault = cluster.faults.take(be.name, url, (a) => {
    if (a._tag === "publish-timeout" || a._tag === "commit-unknown") {
      return kind === "stream" || (kind === "txn-op" && op === "commit")
    }
    if (a._tag === "txn-in-processing") {
      return kind === "stream" || kind === "txn-load" || (kind === "txn-op" && (op === "prepare" || op === "commit"))
    }
    if (a._tag === "overload") return kind === "stream" || kind === "txn-load"
    return acceptsBody || !["fail", "too-many-versions", "mem-limit"].includes(a._tag)
  })
  let bodyFault: FaultAction | undefined
  if (fault?._tag === "overload") {
    // counted from arrival to reply: the wait grows with the loads beside it, and beyond the capacity it fails
    const inFlight = (overloaded.get(fault) ?? 0) + 1
    overloaded.set(fault, inFlight)
    try {
      await cluster.sleep(fault.baseMs + fault.perLoadMs * (inFlight - 1))
      const over: FaultAction | undefined = inFlight > fault.capacity ? { _tag: "too-many-versions" } : undefined
      return await handle(cluster, be, ex, kind, parts, params, op, over)
    } finally {
      overloaded.set(fault, (overloaded.get(fault) ?? 1) - 1)
    }
  }
  if (fault !== undefined) {
    switch (fault._tag) {
      case "delay":
        await cluster.sleep(fault.ms)
        break
      case "http-500":
        reply(ex, 500, compactJson({ status: "FAILED", msg: "injected fault: HTTP 500" }), "json", {
          Connection: "close"
        })
        return
      case "close-before-response":
        ex.closeBeforeResponse = true
        break
      case "close-mid-body":
        ex.closeMidBody = true
        if (kind !== "stream" && kind !== "txn-load") {
          ex.req.socket.destroy()
          return
        }
        break
      default:
        bodyFault = fault
    }
  }
  return handle(cluster, be, ex, kind, parts, params, op, bodyFault)
}

const handle = (
  cluster: Cluster,
  be: BeNode,
  ex: Exchange,
  kind: "stream" | "txn-load" | "txn-op" | "error-log" | "health" | "none",
  parts: ReadonlyArray<string>,
  params: URLSearchParams,
  op: string,
  bodyFault: FaultAction | undefined
) => {
  switch (kind) {
    case "error-log":
      return errorLog(cluster, be, ex, params.get("file") ?? "")
    case "health":
      return health(cluster, ex)
    case "stream":
      return streamLoad(cluster, be, ex, decodeURIComponent(parts[2]!), decodeURIComponent(parts[3]!), bodyFault)
    case "txn-load":
      return txnLoad(cluster, be, ex, bodyFault)
    case "txn-op":
      return txnOp(cluster, be, ex, op, bodyFault)
    default:
      reply(ex, 404, "Not Found", "text")
  }
}

// ---------------------------------------------------------------------------------------------------------------
// error log

/** BE `enable_http_auth` gate (newest BEs): non-load endpoints need valid Basic auth. False when it answered 401. */
const authGate = (cluster: Cluster, ex: Exchange): boolean => {
  if (!cluster.settings.beHttpAuth) return true
  const auth = parseBasic(ex.headers["authorization"])
  const denied = auth === undefined
    ? "missing Basic authorization"
    : cluster.checkPassword(auth.user, auth.password, clientIp(ex.req))
  if (denied === undefined) return true
  reply(ex, 401, compactJson({ status: "FAILED", code: "1", message: denied }), "json", {
    "WWW-Authenticate": "Basic realm=\"\""
  })
  return false
}

const health = (cluster: Cluster, ex: Exchange) => {
  if (!authGate(cluster, ex)) return
  reply(ex, 200, "{\"status\": \"OK\",\"msg\": \"To Be Added\"}", "json")
}

const errorLog = (cluster: Cluster, be: BeNode, ex: Exchange, file: string) => {
  if (!authGate(cluster, ex)) return
  // download_action.cpp: a missing `file` parameter is an HTTP 200 text reply
  if (file === "") return reply(ex, 200, "parameter file not specified in url.", "text")
  const lines = be.errorLogs.get(file)
  if (lines === undefined) {
    reply(ex, 404, "Not Found", "text")
    return
  }
  const text = lines.map((l) => `${l}\n`).join("")
  if ((ex.req.method ?? "").toUpperCase() === "HEAD") {
    if (ex.closeBeforeResponse) return void ex.req.socket.destroy()
    ex.res.writeHead(200, {
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": String(Buffer.byteLength(text))
    })
    ex.res.end()
    return
  }
  reply(ex, 200, text, "text")
}

const writeErrorLog = (be: BeNode, lines: ReadonlyArray<string>): string | undefined => {
  if (lines.length === 0) return undefined
  const file = `error_log_${randomBytes(8).toString("hex")}_${randomBytes(8).toString("hex")}`
  be.errorLogs.set(file, lines)
  return `${be.origin}/api/_load_error_log?file=${file}`
}

// ---------------------------------------------------------------------------------------------------------------
// plain stream load

interface StreamResult {
  txnId: number
  label: string
  status: "Success" | "Publish Timeout" | "Label Already Exists" | "Fail"
  existing?: "RUNNING" | "FINISHED" | undefined
  message: string
  counters: Counters
  loadTimeMs: number
  beginTxnTimeMs: number
  planTimeMs: number
  readDataTimeMs: number
  writeDataTimeMs: number
  commitAndPublishTimeMs: number
  errorUrl?: string | undefined
  rejectedRecordPath?: string | undefined
}

const streamBody = (cluster: Cluster, r: StreamResult): string => {
  const out: Record<string, unknown> = { TxnId: r.txnId, Label: r.label, Status: r.status }
  if (r.status === "Label Already Exists") out["ExistingJobStatus"] = r.existing ?? "RUNNING"
  out["Message"] = r.message
  out["NumberTotalRows"] = r.counters.total
  out["NumberLoadedRows"] = r.counters.loaded
  out["NumberFilteredRows"] = r.counters.filtered
  out["NumberUnselectedRows"] = r.counters.unselected
  out["LoadBytes"] = r.counters.bytes
  out["LoadTimeMs"] = r.loadTimeMs
  out["BeginTxnTimeMs"] = r.beginTxnTimeMs
  out[cluster.settings.planTimeField] = r.planTimeMs
  out["ReadDataTimeMs"] = r.readDataTimeMs
  out["WriteDataTimeMs"] = r.writeDataTimeMs
  out["CommitAndPublishTimeMs"] = r.commitAndPublishTimeMs
  if (r.errorUrl !== undefined) out["ErrorURL"] = r.errorUrl
  if (r.rejectedRecordPath !== undefined) out["RejectedRecordPath"] = r.rejectedRecordPath
  return beJson(out)
}

const parseTimeout = (v: string | undefined, dflt: number): number | undefined =>
  v === undefined || v === "" ? dflt : /^\d+$/.test(v.trim()) ? Number(v.trim()) : undefined

const streamLoad = async (
  cluster: Cluster,
  be: BeNode,
  ex: Exchange,
  db: string,
  table: string,
  bodyFault: FaultAction | undefined
) => {
  const t0 = Date.now()
  const h = ex.headers
  const label = h["label"] !== undefined && h["label"] !== "" ? h["label"] : randomUUID()
  const r: StreamResult = {
    txnId: -1,
    label,
    status: "Fail",
    message: "",
    counters: zero,
    loadTimeMs: 0,
    beginTxnTimeMs: 0,
    planTimeMs: 0,
    readDataTimeMs: 0,
    writeDataTimeMs: 0,
    commitAndPublishTimeMs: 0
  }
  const brief = () => `id=${label}, job_id=-1, txn_id=${r.txnId}, label=${label}, db=${db}`
  const fail = (message: string, rollback: boolean) => {
    if (rollback && r.txnId > 0) cluster.abort(r.txnId, message)
    r.status = "Fail"
    r.message = message
    r.loadTimeMs = Date.now() - t0
    reply(ex, 200, streamBody(cluster, r), "json")
  }

  // Header phase (before any body byte is read).
  const auth = parseBasic(h["authorization"])
  if (auth === undefined) return fail("no valid Basic authorization", false)
  const maxBody = cluster.settings.streamingLoadMaxMb * MiB
  const cl = h["content-length"] !== undefined ? Number(h["content-length"]) : undefined
  if (cl !== undefined && cl > maxBody) {
    return fail(
      `body size ${cl} exceed limit: ${maxBody}, ${brief()}. ` +
        "You can increase the limit by setting streaming_load_max_mb in be.conf.",
      false
    )
  }
  const format = (h["format"] ?? "csv").toLowerCase()
  if (!KNOWN_FORMATS.has(format)) return fail(`unknown data format, format=${h["format"]}`, false)
  if (format === "json" && cl !== undefined && cl > JSON_BATCH_LIMIT && h["ignore_json_size"] !== "true") {
    return fail(jsonSizeMessage(cl), false)
  }
  const timeoutSec = parseTimeout(h["timeout"], cluster.settings.defaultTimeoutSec)
  if (timeoutSec === undefined) return fail("Invalid timeout format", false)
  if (h["enable_merge_commit"] !== undefined) {
    const bad = MergeCommit.checkHeaders(h)
    if (bad !== undefined) return fail(bad, false)
    if (MergeCommit.enabled(h)) return mergeCommit(cluster, be, ex, db, table, auth, maxBody, t0, fail)
  }

  // begin (FE loadTxnBegin: password, database, table, label, timeout, dedup)
  const tb = Date.now()
  const denied = cluster.checkPassword(auth.user, auth.password, clientIp(ex.req))
  if (denied !== undefined) return fail(denied, false)
  const def = await cluster.resolveTable(db, table)
  if (typeof def === "string") return fail(def, false)
  const begun = cluster.begin({ db, table, label, timeoutSec, kind: "stream", coordinator: be.address })
  r.beginTxnTimeMs = Date.now() - tb
  if (begun._tag === "Error") return fail(begun.message, false)
  if (begun._tag === "LabelExists") {
    if (cluster.settings.duplicateLabelMode === "fail") return fail(cluster.duplicateLabelFailMessage(label), false)
    r.status = "Label Already Exists"
    r.existing = begun.jobStatus
    r.message = begun.message
    r.loadTimeMs = Date.now() - t0
    reply(ex, 200, streamBody(cluster, r), "json")
    return
  }
  r.txnId = begun.txn.txnId

  // _process_put: the load headers (FE streamLoadPut plans them).
  const tp = Date.now()
  if (h["content-encoding"] !== undefined && h["compression"] !== undefined) {
    return fail("Only one of http header content-encoding and compression can be set", true)
  }
  const invalid = validateHeaders(def, h)
  if (invalid !== undefined) return fail(invalid, true)
  r.planTimeMs = Date.now() - tp

  // Body phase.
  const tr = Date.now()
  const body = await readBody(ex, maxBody)
  r.readDataTimeMs = Date.now() - tr
  if (body._tag === "Closed") {
    cluster.abort(r.txnId, "connection closed by the client")
    return
  }
  if (body._tag === "TooLarge") {
    return fail(
      `body size ${body.bytes} exceed limit: ${maxBody}, ${brief()}. ` +
        "You can increase the limit by setting streaming_load_max_mb in be.conf.",
      true
    )
  }
  if (body._tag === "Incomplete" || (cl !== undefined && body.body.byteLength !== cl)) {
    r.counters = { ...zero, bytes: body._tag === "Ok" ? body.body.byteLength : body.bytes }
    return fail("receive body don't equal with body bytes", true)
  }
  // Chunked JSON bodies (no Content-Length) skip the 100 MiB check, as on the BE.

  const tw = Date.now()
  const outcome = load(cluster, def, h, [body.body])
  r.writeDataTimeMs = Date.now() - tw
  r.counters = { ...outcome.counters, bytes: body.body.byteLength }
  r.errorUrl = writeErrorLog(be, outcome.errorLog)
  const rejected = h["log_rejected_record_num"]
  if (rejected !== undefined && rejected.trim() !== "0" && outcome.counters.filtered > 0) {
    r.rejectedRecordPath = `${be.server.host}:/opt/starrocks/be/storage/rejected_record/${db}/${label}/${r.txnId}`
  }
  if (outcome._tag === "Fail") return fail(outcome.message, true)
  const injected = bodyFault === undefined ? undefined : faultMessage(bodyFault)
  if (injected !== undefined) {
    r.counters = { ...zero, bytes: body.body.byteLength }
    return fail(injected, true)
  }

  const tc = Date.now()
  const publishDelay = bodyFault?._tag === "publish-timeout" ? bodyFault.visibleAfterMs : undefined
  const committed = await cluster.commit(r.txnId, outcome.changes, r.counters, publishDelay)
  r.commitAndPublishTimeMs = Date.now() - tc
  if ("error" in committed) return fail(committed.error, true)
  if (bodyFault?._tag === "commit-unknown") return fail(COMMIT_UNKNOWN, false)
  r.status = committed.status === "VISIBLE" ? "Success" : "Publish Timeout"
  r.message = committed.status === "VISIBLE" ? "OK" : PUBLISH_TIMEOUT_MESSAGE
  r.loadTimeMs = Date.now() - t0
  reply(ex, 200, streamBody(cluster, r), "json")
}

/** Merge commit (mergeCommit.ts): password and table checked as for a plain load, the body read, then merged. */
const mergeCommit = async (
  cluster: Cluster,
  be: BeNode,
  ex: Exchange,
  db: string,
  table: string,
  auth: { readonly user: string; readonly password: string },
  maxBody: number,
  t0: number,
  fail: (message: string, rollback: boolean) => void
) => {
  const denied = cluster.checkPassword(auth.user, auth.password, clientIp(ex.req))
  if (denied !== undefined) return fail(denied, false)
  const def = await cluster.resolveTable(db, table)
  if (typeof def === "string") return fail(def, false)
  const tr = Date.now()
  const body = await readBody(ex, maxBody)
  if (body._tag === "Closed") return
  if (body._tag !== "Ok") return fail("receive body don't equal with body bytes", false)
  MergeCommit.join(cluster, be, {
    db,
    table,
    def,
    headers: ex.headers,
    body: body.body,
    receivedAt: t0,
    readDataMs: Date.now() - tr,
    answer: (text) => reply(ex, 200, text, "json")
  })
}

const load = (cluster: Cluster, def: TableDef, h: Record<string, string>, bodies: ReadonlyArray<Uint8Array>) => {
  try {
    return runLoad(def, h, bodies, {
      emptyLoadAsError: cluster.settings.emptyLoadAsError,
      emptyLoadMessage: cluster.settings.emptyLoadMessage,
      legacyCsvStartLookahead: cluster.settings.legacyCsvStartLookahead,
      now: cluster.now()
    })
  } catch (e) {
    const out: LoadOutcome = {
      _tag: "Fail",
      message: e instanceof Error ? e.message : String(e),
      counters: zero,
      errorLog: []
    }
    return out
  }
}

// ---------------------------------------------------------------------------------------------------------------
// transaction interface

type TxnStatusName =
  | "OK"
  | "INTERNAL_ERROR"
  | "INVALID_ARGUMENT"
  | "TXN_NOT_EXISTS"
  | "TXN_IN_PROCESSING"
  | "LABEL_ALREADY_EXISTS"
  | "ABORTED"
  | "PUBLISH_TIMEOUT"
  | "ANALYSIS_ERROR"
  | "DATA_QUALITY_ERROR"
  | "MEM_LIMIT_EXCEEDED"

const txnBody = (
  status: TxnStatusName,
  message: string,
  extra: {
    readonly label?: string
    readonly existing?: string
    readonly ok?: Record<string, unknown>
    readonly errorUrl?: string | undefined
  } = {}
): string => {
  const out: Record<string, unknown> = { Status: status }
  if (status === "LABEL_ALREADY_EXISTS") out["ExistingJobStatus"] = extra.existing ?? ""
  if (status === "TXN_IN_PROCESSING") out["Label"] = extra.label ?? ""
  out["Message"] = message
  if (status === "OK") {
    out["Label"] = extra.label ?? ""
    Object.assign(out, extra.ok ?? {})
  }
  if (extra.errorUrl !== undefined) out["ErrorURL"] = extra.errorUrl
  return beJson(out)
}

const replyTxn = (ex: Exchange, body: string) => reply(ex, 200, body, "json")

/**
 * The checks a transaction's body load and its prepare or commit share once the BE has its context: busy with another
 * request (TXN_IN_PROCESSING), failed (ABORTED, with the operation's own message), or its FE transaction no longer
 * open (INTERNAL_ERROR; the context is dropped). The reply's body, or undefined when the context takes the request.
 */
const unusable = (
  cluster: Cluster,
  be: BeNode,
  ctx: BeTxnContext,
  label: string,
  bodyFault: FaultAction | undefined,
  abortedMessage: string
): string | undefined => {
  if (ctx.inProcessing || bodyFault?._tag === "txn-in-processing") {
    return txnBody("TXN_IN_PROCESSING", IN_PROCESSING, { label })
  }
  if (ctx.failed !== undefined) return txnBody("ABORTED", abortedMessage)
  const feTxn = cluster.get(ctx.txnId)
  if (feTxn === undefined || feTxn.status !== "PREPARE") {
    be.contexts.delete(label)
    return txnBody("INTERNAL_ERROR", feTxn?.reason || "transaction is aborted")
  }
  return undefined
}

const txnLoad = async (cluster: Cluster, be: BeNode, ex: Exchange, bodyFault: FaultAction | undefined) => {
  const h = ex.headers
  const label = h["label"] ?? ""
  if (h["transaction_type"] !== undefined) {
    return replyTxn(
      ex,
      txnBody("INVALID_ARGUMENT", "Multi-statement transaction requests can only be sent to FE nodes, not BE nodes")
    )
  }
  if (label === "") return replyTxn(ex, txnBody("INVALID_ARGUMENT", "empty label"))
  const ctx = be.contexts.get(label)
  if (ctx === undefined) return replyTxn(ex, txnBody("TXN_NOT_EXISTS", `Transaction with label ${label} not exists`))
  const db = h["db"] ?? ""
  if (db !== ctx.db) {
    return replyTxn(ex, txnBody("INVALID_ARGUMENT", `Request database ${db} not equal transaction database ${ctx.db}`))
  }
  const table = h["table"] ?? ""
  if (table !== ctx.table) {
    return replyTxn(ex, txnBody("INVALID_ARGUMENT", `Request table ${table} not equal transaction table ${ctx.table}`))
  }
  const refused = unusable(cluster, be, ctx, label, bodyFault, "current transaction is aborted")
  if (refused !== undefined) return replyTxn(ex, refused)
  ctx.inProcessing = true
  try {
    // TransactionStreamLoadAction::on_header: a failed header phase rolls the transaction back, which aborts it in
    // the FE and drops the BE context (the next load is TXN_NOT_EXISTS, a commit through the FE FAILED)
    const failCtx = (status: TxnStatusName, message: string) => {
      ctx.failed = message
      be.contexts.delete(label)
      cluster.abort(ctx.txnId, message)
      replyTxn(ex, txnBody(status, message))
    }
    const tp = Date.now()
    const dh = dataHeaders(h)
    if (ctx.headers === undefined) {
      if (h["content-encoding"] !== undefined && h["compression"] !== undefined) {
        return failCtx("INTERNAL_ERROR", "Only one of http header content-encoding and compression can be set")
      }
      const format = (h["format"] ?? "csv").toLowerCase()
      if (!KNOWN_FORMATS.has(format)) return failCtx("INTERNAL_ERROR", `unknown data format, format=${h["format"]}`)
      const invalid = validateHeaders(ctx.tableDef, h)
      if (invalid !== undefined) return failCtx("ANALYSIS_ERROR", invalid)
      ctx.headers = dh
      ctx.loadHeaders = h
      ctx.planTimeMs = Date.now() - tp
    } else if (!sameHeaders(ctx.headers, dh)) {
      return failCtx("INTERNAL_ERROR", "load request not equal last.")
    }
    const maxBody = cluster.settings.streamingLoadMaxMb * MiB
    const cl = h["content-length"] !== undefined ? Number(h["content-length"]) : undefined
    const isJson = (ctx.headers["format"] ?? "csv").toLowerCase() === "json"
    if (cl !== undefined && ctx.bytes + cl > maxBody) {
      return failCtx(
        "INTERNAL_ERROR",
        `body size ${ctx.bytes + cl} exceed limit: ${maxBody}, txn_id=${ctx.txnId}, label=${label}. ` +
          "You can increase the limit by setting streaming_load_max_mb in be.conf."
      )
    }
    if (isJson && cl !== undefined && ctx.bytes + cl > JSON_BATCH_LIMIT && ctx.headers["ignore_json_size"] !== "true") {
      return failCtx("INTERNAL_ERROR", jsonSizeMessage(ctx.bytes + cl))
    }
    const tr = Date.now()
    const body = await readBody(ex, maxBody - ctx.bytes)
    ctx.receivedMs += Date.now() - tr
    if (body._tag === "Closed") {
      ctx.failed = "connection closed by the client"
      cluster.abort(ctx.txnId, ctx.failed)
      return
    }
    if (body._tag === "TooLarge") {
      return failCtx(
        "INTERNAL_ERROR",
        `body size ${ctx.bytes + body.bytes} exceed limit: ${maxBody}, txn_id=${ctx.txnId}, label=${label}. ` +
          "You can increase the limit by setting streaming_load_max_mb in be.conf."
      )
    }
    if (body._tag === "Incomplete" || (cl !== undefined && body.body.byteLength !== cl)) {
      return failCtx("INTERNAL_ERROR", "receive body don't equal with body bytes")
    }
    const injected = bodyFault === undefined ? undefined : faultMessage(bodyFault)
    if (injected !== undefined) {
      return failCtx(bodyFault?._tag === "mem-limit" ? "MEM_LIMIT_EXCEEDED" : "INTERNAL_ERROR", injected)
    }
    ctx.bodies.push(body.body)
    ctx.bytes += body.body.byteLength
    ctx.lastActive = cluster.now()
    replyTxn(
      ex,
      txnBody("OK", "", {
        label,
        ok: {
          TxnId: ctx.txnId,
          LoadBytes: body.body.byteLength,
          [cluster.settings.planTimeField]: ctx.planTimeMs,
          ReceivedDataTimeMs: Date.now() - tr
        }
      })
    )
  } finally {
    ctx.inProcessing = false
    ctx.lastActive = cluster.now()
  }
}

const txnOp = async (cluster: Cluster, be: BeNode, ex: Exchange, op: string, bodyFault: FaultAction | undefined) => {
  const h = ex.headers
  if (op === "list") return listContexts(be, ex)
  if (h["transaction_type"] !== undefined) {
    return replyTxn(
      ex,
      txnBody("INVALID_ARGUMENT", "Multi-statement transaction requests can only be sent to FE nodes, not BE nodes")
    )
  }
  if (op !== "begin" && op !== "prepare" && op !== "commit" && op !== "rollback") {
    return replyTxn(ex, txnBody("INVALID_ARGUMENT", `unsupport transaction operation ${op}`))
  }
  const label = h["label"] ?? ""
  if (label === "") return replyTxn(ex, txnBody("INVALID_ARGUMENT", "empty label"))
  switch (op) {
    case "begin":
      return txnBegin(cluster, be, ex, label)
    case "rollback":
      return txnRollback(cluster, be, ex, label)
    default:
      return txnFinish(cluster, be, ex, label, op, bodyFault)
  }
}

const txnBegin = async (cluster: Cluster, be: BeNode, ex: Exchange, label: string) => {
  const h = ex.headers
  const t0 = Date.now()
  if (be.contexts.has(label)) return replyTxn(ex, txnBody("LABEL_ALREADY_EXISTS", "", { existing: "" }))
  const db = h["db"] ?? ""
  const table = h["table"] ?? ""
  const timeoutSec = parseTimeout(h["timeout"], cluster.settings.defaultTimeoutSec)
  if (timeoutSec === undefined) return replyTxn(ex, txnBody("INVALID_ARGUMENT", "Invalid timeout format"))
  const idleSec = parseTimeout(h["idle_transaction_timeout"], timeoutSec)
  if (idleSec === undefined) {
    return replyTxn(ex, txnBody("INVALID_ARGUMENT", "Invalid idle transaction timeout format"))
  }
  const auth = parseBasic(h["authorization"])
  if (auth === undefined) return replyTxn(ex, txnBody("INVALID_ARGUMENT", "no valid Basic authorization"))
  const denied = cluster.checkPassword(auth.user, auth.password, clientIp(ex.req))
  if (denied !== undefined) return replyTxn(ex, txnBody("ANALYSIS_ERROR", denied))
  const def = await cluster.resolveTable(db, table)
  if (typeof def === "string") return replyTxn(ex, txnBody("ANALYSIS_ERROR", def))
  if (be.contexts.has(label)) return replyTxn(ex, txnBody("LABEL_ALREADY_EXISTS", "", { existing: "" }))
  const begun = cluster.begin({ db, table, label, timeoutSec, kind: "txn", coordinator: be.address })
  if (begun._tag === "Error") return replyTxn(ex, txnBody("ANALYSIS_ERROR", begun.message))
  if (begun._tag === "LabelExists") {
    return replyTxn(
      ex,
      cluster.settings.duplicateLabelMode === "fail"
        ? txnBody("ANALYSIS_ERROR", cluster.duplicateLabelFailMessage(label))
        : txnBody("LABEL_ALREADY_EXISTS", begun.message, { existing: begun.jobStatus })
    )
  }
  const now = cluster.now()
  const ctx: BeTxnContext = {
    db,
    table,
    label,
    txnId: begun.txn.txnId,
    tableDef: def,
    headers: undefined,
    loadHeaders: undefined,
    bodies: [],
    bytes: 0,
    inProcessing: false,
    // the transaction's own begin time: the BE's timeout is due no later than the FE's, and the cleaner's tick
    // looks at the BE first, so an open transaction that outlives its timeout is always aborted with the BE's reason
    beginAt: begun.txn.createdAt,
    lastActive: now,
    timeoutSec,
    idleTimeoutSec: idleSec,
    failed: undefined,
    planTimeMs: 0,
    receivedMs: 0
  }
  be.contexts.set(label, ctx)
  cluster.coordinators.set(cluster.coordinatorKey(db, label), be.index)
  replyTxn(ex, txnBody("OK", "", { label, ok: { TxnId: ctx.txnId, BeginTxnTimeMs: Date.now() - t0 } }))
}

const txnRollback = (cluster: Cluster, be: BeNode, ex: Exchange, label: string) => {
  const ctx = be.contexts.get(label)
  if (ctx === undefined) return replyTxn(ex, txnBody("TXN_NOT_EXISTS", `transaction with label ${label} not exists`))
  if (ctx.inProcessing) return replyTxn(ex, txnBody("TXN_IN_PROCESSING", IN_PROCESSING, { label }))
  be.contexts.delete(label)
  cluster.abort(ctx.txnId, ctx.failed ?? "user rollback")
  replyTxn(ex, txnBody("OK", "", { label }))
}

const txnFinish = async (
  cluster: Cluster,
  be: BeNode,
  ex: Exchange,
  label: string,
  op: "prepare" | "commit",
  bodyFault: FaultAction | undefined
) => {
  const h = ex.headers
  const t0 = Date.now()
  const ctx = be.contexts.get(label)
  if (ctx === undefined) return replyTxn(ex, txnBody("TXN_NOT_EXISTS", `transaction with label ${label} not exists`))
  const db = h["db"] ?? ""
  if (db !== ctx.db) {
    return replyTxn(ex, txnBody("INVALID_ARGUMENT", `request db ${db} transaction db ${ctx.db} not match`))
  }
  let preparedSec = cluster.settings.preparedTimeoutDefaultSec
  const pt = h["prepared_timeout"]
  if (op === "prepare" && pt !== undefined) {
    if (!/^\d+$/.test(pt.trim()) || Number(pt) <= 0) {
      return replyTxn(ex, txnBody("INVALID_ARGUMENT", `Invalid prepared_timeout: ${pt}`))
    }
    preparedSec = Number(pt)
  }
  const refused = unusable(cluster, be, ctx, label, bodyFault, "transaction is aborted")
  if (refused !== undefined) return replyTxn(ex, refused)
  ctx.inProcessing = true
  try {
    const rollback = (status: TxnStatusName, message: string, errorUrl?: string) => {
      be.contexts.delete(label)
      cluster.abort(ctx.txnId, message)
      replyTxn(ex, txnBody(status, message, { errorUrl }))
    }
    if (ctx.bodies.length === 0) {
      return rollback(
        "INTERNAL_ERROR",
        `transaction id=${label}, txn_id=${ctx.txnId}, label=${label} hasn't send any data yet`
      )
    }
    const tw = Date.now()
    const outcome = load(cluster, ctx.tableDef, ctx.loadHeaders ?? h, ctx.bodies)
    const writeMs = Date.now() - tw
    const counters: Counters = { ...outcome.counters, bytes: ctx.bytes }
    const errorUrl = writeErrorLog(be, outcome.errorLog)
    if (outcome._tag === "Fail") {
      return rollback(
        outcome.message === "too many filtered rows" ? "DATA_QUALITY_ERROR" : "INTERNAL_ERROR",
        outcome.message,
        errorUrl
      )
    }
    const injected = bodyFault === undefined ? undefined : faultMessage(bodyFault)
    if (injected !== undefined) {
      return rollback(bodyFault?._tag === "mem-limit" ? "MEM_LIMIT_EXCEEDED" : "INTERNAL_ERROR", injected)
    }
    const tc = Date.now()
    let status: TxnStatusName = "OK"
    let message = ""
    if (op === "prepare") {
      const err = await cluster.prepare(ctx.txnId, outcome.changes, counters, preparedSec)
      if (err !== undefined) return rollback("INTERNAL_ERROR", err)
    } else {
      const publishDelay = bodyFault?._tag === "publish-timeout" ? bodyFault.visibleAfterMs : undefined
      const res = await cluster.commit(ctx.txnId, outcome.changes, counters, publishDelay)
      if ("error" in res) return rollback("INTERNAL_ERROR", res.error)
      if (res.status === "COMMITTED") {
        status = "PUBLISH_TIMEOUT"
        message = PUBLISH_TIMEOUT_MESSAGE
      }
      if (bodyFault?._tag === "commit-unknown") {
        be.contexts.delete(label)
        return replyTxn(ex, txnBody("INTERNAL_ERROR", COMMIT_UNKNOWN))
      }
    }
    be.contexts.delete(label)
    replyTxn(
      ex,
      txnBody(status, message, {
        label,
        errorUrl,
        ok: {
          TxnId: ctx.txnId,
          NumberTotalRows: counters.total,
          NumberLoadedRows: counters.loaded,
          NumberFilteredRows: counters.filtered,
          NumberUnselectedRows: counters.unselected,
          LoadBytes: counters.bytes,
          LoadTimeMs: Date.now() - t0,
          [cluster.settings.planTimeField]: ctx.planTimeMs,
          ReceivedDataTimeMs: ctx.receivedMs,
          WriteDataTimeMs: writeMs,
          CommitAndPublishTimeMs: Date.now() - tc
        }
      })
    )
  } finally {
    ctx.inProcessing = false
  }
}

const listContexts = (be: BeNode, ex: Exchange) => {
  const bodies = Array.from(be.contexts.values(), (c) => {
    const out: Record<string, unknown> = {}
    if (!c.inProcessing) out["Status"] = "OK"
    out["InProcessing"] = c.inProcessing
    out["Label"] = c.label
    out["TxnId"] = c.txnId
    out["NumberTotalRows"] = 0
    out["NumberLoadedRows"] = 0
    out["NumberFilteredRows"] = 0
    out["NumberUnselectedRows"] = 0
    out["LoadBytes"] = c.bytes
    out["BeginTimestamp"] = c.beginAt
    out["LastActiveTimestamp"] = c.lastActive
    out["TransactionTimeoutSec"] = c.timeoutSec
    out["IdleTransactionTimeoutSec"] = c.idleTimeoutSec
    return beJson(out)
  })
  reply(ex, 200, bodies.join("\n"), "json")
}
