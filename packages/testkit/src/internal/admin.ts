/**
 * The admin HTTP API (no auth, its own port on 127.0.0.1): tables, visible rows, transactions, faults, reset.
 *
 * @internal
 */
import type * as Http from "node:http"
import type { Fault, FaultAction } from "./faults.js"
import type { Handler } from "./http.js"
import { send } from "./http.js"
import type { TableDef, TxnRecord } from "./model.js"

export interface AdminOps {
  readonly createTable: (def: TableDef) => Promise<void>
  readonly rows: (database: string, table: string) => Promise<ReadonlyArray<Record<string, unknown>>>
  readonly tableExists: (database: string, table: string) => Promise<boolean>
  readonly transactions: (database: string) => ReadonlyArray<TxnRecord>
  readonly addFault: (fault: Fault) => void
  readonly clearFaults: () => void
  readonly reset: () => Promise<void>
}

/** bigint as a number when it is safe, else as a string; nested arrays converted alike. */
export const toJsonValue = (v: unknown): unknown => {
  if (typeof v === "bigint") {
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString()
  }
  if (Array.isArray(v)) return v.map(toJsonValue)
  if (v instanceof Date) return v.toISOString()
  if (v instanceof Uint8Array) return Buffer.from(v).toString("utf8")
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJsonValue(x)]))
  }
  return v
}

const ACTIONS = new Set([
  "delay",
  "close-before-response",
  "close-mid-body",
  "http-500",
  "fail",
  "too-many-versions",
  "mem-limit",
  "txn-in-processing",
  "publish-timeout",
  "commit-unknown",
  "overload"
])

/** Accepts `{"action":{"_tag":"delay","ms":10}}`, `{"action":{"type":"delay","ms":10}}` or `{"action":"http-500"}`. */
export const decodeFault = (input: unknown): Fault | string => {
  if (input === null || typeof input !== "object") return "a fault must be a JSON object"
  const o = input as Record<string, unknown>
  const raw = o["action"]
  const a: Record<string, unknown> = typeof raw === "string"
    ? { _tag: raw }
    : raw !== null && typeof raw === "object"
    ? { ...(raw as Record<string, unknown>) }
    : {}
  const tag = a["_tag"] ?? a["type"]
  if (typeof tag !== "string" || !ACTIONS.has(tag)) return `unknown fault action: ${JSON.stringify(raw)}`
  const num = (k: string, d: number) => (typeof a[k] === "number" ? (a[k] as number) : d)
  const action: FaultAction = tag === "delay"
    ? { _tag: "delay", ms: num("ms", 0) }
    : tag === "fail"
    ? { _tag: "fail", message: typeof a["message"] === "string" ? a["message"] : "injected failure" }
    : tag === "publish-timeout"
    ? { _tag: "publish-timeout", visibleAfterMs: num("visibleAfterMs", 1000) }
    : tag === "overload"
    ? { _tag: "overload", capacity: num("capacity", 4), baseMs: num("baseMs", 0), perLoadMs: num("perLoadMs", 0) }
    : { _tag: tag as "http-500" }
  const str = (k: string) => (typeof o[k] === "string" ? (o[k] as string) : undefined)
  const n = (k: string) => (typeof o[k] === "number" ? (o[k] as number) : undefined)
  return {
    node: str("node"),
    path: str("path"),
    nth: n("nth"),
    times: n("times"),
    probability: n("probability"),
    action
  }
}

const readJson = (req: Http.IncomingMessage): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8") || "null"))
      } catch (e) {
        reject(e)
      }
    })
    req.on("error", reject)
  })

export const makeHandler = (ops: AdminOps): Handler => (req, res, expect) => {
  if (expect) res.writeContinue()
  const json = (status: number, body: unknown) =>
    send(res, status, JSON.stringify(toJsonValue(body)), { "Content-Type": "application/json" })
  const run = async () => {
    const url = new URL(req.url ?? "/", "http://admin")
    const parts = url.pathname.split("/").filter((p) => p.length > 0).map(decodeURIComponent)
    const method = (req.method ?? "GET").toUpperCase()
    if (method === "POST" && parts.length === 1 && parts[0] === "tables") {
      const def = (await readJson(req)) as TableDef
      if (
        def === null || typeof def !== "object" || typeof def.database !== "string" || typeof def.table !== "string" ||
        !Array.isArray(def.columns)
      ) return json(400, { error: "expected a table definition {database, table, model, key, columns}" })
      await ops.createTable({ ...def, model: def.model ?? "DUPLICATE", key: def.key ?? [] })
      return json(200, { ok: true })
    }
    if (method === "GET" && parts.length === 3 && parts[0] === "tables") {
      if (!(await ops.tableExists(parts[1]!, parts[2]!))) {
        return json(404, { error: `unknown table "${parts[1]}.${parts[2]}"` })
      }
      return json(200, await ops.rows(parts[1]!, parts[2]!))
    }
    if (method === "GET" && parts.length === 2 && parts[0] === "transactions") {
      return json(200, ops.transactions(parts[1]!))
    }
    if (method === "POST" && parts.length === 1 && parts[0] === "faults") {
      const f = decodeFault(await readJson(req))
      if (typeof f === "string") return json(400, { error: f })
      ops.addFault(f)
      return json(200, { ok: true })
    }
    if (method === "DELETE" && parts.length === 1 && parts[0] === "faults") {
      ops.clearFaults()
      return json(200, { ok: true })
    }
    if (method === "POST" && parts.length === 1 && parts[0] === "reset") {
      await ops.reset()
      return json(200, { ok: true })
    }
    json(404, { error: "not found" })
  }
  run().catch((e) => json(500, { error: e instanceof Error ? e.message : String(e) }))
}
