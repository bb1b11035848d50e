/**
 * Merge commit (`enable_merge_commit: true`, StarRocks 3.4+) on the BE's `_stream_load`: concurrent requests for
 * the same table with the same load parameters are appended to one open merge task, whose transaction the server
 * begins under a label of its own (`merge_commit_<hi>-<lo>`, FE MergeCommitJob: `LABEL_PREFIX +
 * DebugUtil.printId(loadId)`) and commits when its window (`merge_commit_interval_ms`) ends. Every request of a task
 * shares its outcome: one bad request fails the merged transaction for all of them.
 *
 * - Requests are "isomorphic" (merged together) when database, table and every load parameter StarRocks lists in
 *   `LOAD_PARAMETER_NAMES` (be/src/runtime/batch_write/batch_write_util.cpp) are equal. A client `label` is not one
 *   of them: StarRocks keeps it as the request's `RequestId` and answers with the server's `Label`.
 * - A task spans up to `merge_commit_parallel` BEs (capped at the BEs alive); a request joins the open task of its
 *   BE, or opens one (FE MergeCommitJob.requestLoad).
 * - The bodies are appended in arrival order to one stream (the BE's TimeBoundedStreamLoadPipe): a CSV body whose
 *   last row lacks the row delimiter runs into the next request's first row, as on StarRocks.
 * - Sync mode (`merge_commit_async` absent or false): each reply waits for the transaction's end (Success, or Fail
 *   with the reason). Async mode: the reply comes once the body is appended (Success, the server label, and
 *   `LeftMergeTimeMs`); the outcome is known only through `get_load_state` on that label.
 * - Reply fields as StarRocks' StreamLoadContext::to_json writes them in merge commit mode (be/test/http/
 *   stream_load_test.cpp `merge_commit_response`): TxnId, Label, Status, Message, RequestId, LoadBytes, LoadTimeMs,
 *   ReadDataTimeMs, PendingTimeMs, WaitPlanTimeMs, WriteDataTimeMs, WaitFinishTimeMs, LeftMergeTimeMs. No row
 *   counts.
 *
 * Windows run on real timers (`Cluster.sleep`, cleared when the emulator stops).
 *
 * @internal
 */
import { randomBytes, randomUUID } from "node:crypto"
import type { BeNode, Cluster } from "./cluster.js"
import { runLoad, validateHeaders } from "./data/pipeline.js"
import { beJson } from "./http.js"
import type { TableDef } from "./model.js"

/** be/src/runtime/batch_write/batch_write_util.cpp `LOAD_PARAMETER_NAMES`: what makes requests isomorphic. */
const LOAD_PARAMETER_NAMES = [
  "format",
  "columns",
  "where",
  "max_filter_ratio",
  "timeout",
  "partitions",
  "temporary_partitions",
  "negative",
  "strict_mode",
  "timezone",
  "load_mem_limit",
  "exec_mem_limit",
  "partial_update",
  "partial_update_mode",
  "transmission_compression_type",
  "load_dop",
  "merge_condition",
  "log_rejected_record_num",
  "compression",
  "warehouse",
  "enable_merge_commit",
  "merge_commit_async",
  "merge_commit_interval_ms",
  "merge_commit_parallel",
  "column_separator",
  "row_delimiter",
  "trim_space",
  "enclose",
  "escape",
  "jsonpaths",
  "json_root",
  "strip_outer_array",
  "envelope"
]

/** What the BE hands over: the request's headers and body, and how to answer it. */
export interface MergeRequest {
  readonly db: string
  readonly table: string
  readonly def: TableDef
  readonly headers: Record<string, string>
  readonly body: Buffer
  readonly receivedAt: number
  readonly readDataMs: number
  readonly answer: (body: string) => void
}

interface Member {
  readonly request: MergeRequest
  readonly requestId: string
  readonly joinedAt: number
  resolve?: (outcome: Outcome) => void
}

type Outcome = { readonly ok: true } | { readonly ok: false; readonly message: string }

interface Task {
  readonly key: string
  readonly label: string
  readonly txnId: number
  readonly bes: ReadonlySet<string>
  readonly openedAt: number
  readonly closesAt: number
  readonly members: Array<Member>
  open: boolean
}

const tasksOf = new WeakMap<Cluster, Map<string, Array<Task>>>()

const tasks = (cluster: Cluster): Map<string, Array<Task>> => {
  let m = tasksOf.get(cluster)
  if (m === undefined) {
    m = new Map()
    tasksOf.set(cluster, m)
  }
  return m
}

/** The server label of a merge task: `merge_commit_` and the load id as `DebugUtil.printId` prints it. */
const serverLabel = (): string => `merge_commit_${randomBytes(8).toString("hex")}-${randomBytes(8).toString("hex")}`

const isomorphicKey = (db: string, table: string, h: Record<string, string>): string =>
  JSON.stringify([db, table, ...LOAD_PARAMETER_NAMES.map((k) => h[k] ?? null)])

const positiveInt = (v: string | undefined): number | undefined =>
  v !== undefined && /^\s*\d+\s*$/.test(v) && Number(v) > 0 ? Number(v) : undefined

/**
 * The header checks of a merge commit request; a message to fail it with, or undefined. Called for every request
 * that carries `enable_merge_commit`; `true` goes on to `join`, `false` is a plain stream load.
 */
export const checkHeaders = (h: Record<string, string>): string | undefined => {
  const enable = (h["enable_merge_commit"] ?? "").trim().toLowerCase()
  if (enable !== "true" && enable !== "false") {
    return `Invalid parameter enable_merge_commit. The value must be bool type, but is ${h["enable_merge_commit"]}`
  }
  if (enable === "false") return undefined
  const async = h["merge_commit_async"]
  if (async !== undefined && !["true", "false"].includes(async.trim().toLowerCase())) {
    return `Invalid parameter merge_commit_async. The value must be bool type, but is ${async}`
  }
  if (positiveInt(h["merge_commit_interval_ms"]) === undefined) {
    return `merge_commit_interval_ms must be set to a positive integer, but is ${h["merge_commit_interval_ms"] ?? ""}`
  }
  if (positiveInt(h["merge_commit_parallel"]) === undefined) {
    return `merge_commit_parallel must be set to a positive integer, but is ${h["merge_commit_parallel"] ?? ""}`
  }
  if (h["skip_header"] !== undefined && h["skip_header"].trim() !== "0") {
    return "skip_header is not supported by merge commit"
  }
  return undefined
}

/** Whether the request asks for merge commit (`enable_merge_commit: true`). */
export const enabled = (h: Record<string, string>): boolean =>
  (h["enable_merge_commit"] ?? "").trim().toLowerCase() === "true"

/** The open task this BE's request joins, or a new one (its transaction begun under the server label). */
const taskFor = (cluster: Cluster, be: BeNode, r: MergeRequest): Task | string => {
  const key = isomorphicKey(r.db, r.table, r.headers)
  const all = tasks(cluster)
  const list = all.get(key) ?? []
  all.set(key, list)
  const open = list.find((t) => t.open && t.bes.has(be.name))
  if (open !== undefined) return open
  const parallel = positiveInt(r.headers["merge_commit_parallel"])!
  const interval = positiveInt(r.headers["merge_commit_interval_ms"])!
  const alive = cluster.bes.filter((b) => b.alive && b.name !== be.name).map((b) => b.name)
  const bes = new Set([be.name, ...alive.slice(0, Math.max(0, parallel - 1))])
  const timeoutSec = positiveInt(r.headers["timeout"]) ?? cluster.settings.defaultTimeoutSec
  const label = serverLabel()
  const begun = cluster.begin({ db: r.db, table: r.table, label, timeoutSec, kind: "stream", coordinator: be.address })
  if (begun._tag !== "Ok") return begun.message
  const now = Date.now()
  const task: Task = {
    key,
    label,
    txnId: begun.txn.txnId,
    bes,
    openedAt: now,
    closesAt: now + interval,
    members: [],
    open: true
  }
  list.push(task)
  void cluster.sleep(interval).then(() => finish(cluster, task))
  return task
}

/** The window ended: load the appended bodies as one transaction and tell every member the outcome. */
const finish = async (cluster: Cluster, task: Task): Promise<void> => {
  task.open = false
  const list = tasks(cluster).get(task.key)
  if (list !== undefined) {
    const i = list.indexOf(task)
    if (i >= 0) list.splice(i, 1)
  }
  const first = task.members[0]
  let outcome: Outcome
  if (first === undefined) {
    cluster.abort(task.txnId, "no data in merge commit window")
    return
  }
  const r = first.request
  const loaded = (() => {
    try {
      return runLoad(r.def, r.headers, task.members.map((m) => m.request.body), {
        emptyLoadAsError: cluster.settings.emptyLoadAsError,
        emptyLoadMessage: cluster.settings.emptyLoadMessage,
        legacyCsvStartLookahead: cluster.settings.legacyCsvStartLookahead,
        now: cluster.now()
      })
    } catch (e) {
      return { _tag: "Fail" as const, message: e instanceof Error ? e.message : String(e) }
    }
  })()
  if (loaded._tag === "Fail") {
    cluster.abort(task.txnId, loaded.message)
    outcome = { ok: false, message: loaded.message }
  } else {
    const committed = await cluster.commit(task.txnId, loaded.ops, loaded.counters, undefined)
    if ("error" in committed) {
      cluster.abort(task.txnId, committed.error)
      outcome = { ok: false, message: committed.error }
    } else outcome = { ok: true }
  }
  for (const m of task.members) m.resolve?.(outcome)
}

const replyBody = (task: Task, m: Member, outcome: Outcome | undefined, now: number): string =>
  beJson({
    TxnId: task.txnId,
    Label: task.label,
    Status: outcome === undefined || outcome.ok ? "Success" : "Fail",
    Message: outcome === undefined || outcome.ok ? "OK" : outcome.message,
    RequestId: m.requestId,
    LoadBytes: m.request.body.byteLength,
    LoadTimeMs: now - m.request.receivedAt,
    ReadDataTimeMs: m.request.readDataMs,
    PendingTimeMs: 0,
    WaitPlanTimeMs: 0,
    WriteDataTimeMs: 0,
    WaitFinishTimeMs: outcome === undefined ? 0 : now - m.joinedAt,
    LeftMergeTimeMs: Math.max(0, task.closesAt - m.joinedAt)
  })

const failBody = (r: MergeRequest, requestId: string, message: string): string =>
  beJson({
    TxnId: -1,
    Label: "",
    Status: "Fail",
    Message: message,
    RequestId: requestId,
    LoadBytes: r.body.byteLength,
    LoadTimeMs: Date.now() - r.receivedAt
  })

/** Appends one request to its merge task and answers it (sync: at the task's end; async: at once). */
export const join = (cluster: Cluster, be: BeNode, r: MergeRequest): void => {
  const requestId = r.headers["label"] !== undefined && r.headers["label"] !== "" ? r.headers["label"] : randomUUID()
  const invalid = validateHeaders(r.def, r.headers)
  if (invalid !== undefined) return r.answer(failBody(r, requestId, invalid))
  const task = taskFor(cluster, be, r)
  if (typeof task === "string") return r.answer(failBody(r, requestId, task))
  const member: Member = { request: r, requestId, joinedAt: Date.now() }
  task.members.push(member)
  const async = (r.headers["merge_commit_async"] ?? "").trim().toLowerCase() === "true"
  if (async) return r.answer(replyBody(task, member, undefined, Date.now()))
  member.resolve = (outcome) => r.answer(replyBody(task, member, outcome, Date.now()))
}
