/**
 * The cluster state: the FE leader's transaction and label manager (dedup, retention, timers), the BE nodes with
 * their transaction contexts and error logs, round-robin BE choice and the transaction coordinator map.
 *
 * @internal
 */
import { Effect } from "effect"
import type { RowChanges } from "./data/rowBatch.js"
import type { FaultInjector } from "./faults.js"
import type { NodeServer } from "./http.js"
import type { TableDef, TxnRecord, TxnStatus } from "./model.js"
import type { Storage } from "./storage.js"

export interface Settings {
  readonly users: Readonly<Record<string, string>>
  readonly requireExpect: boolean
  readonly duplicateLabelMode: "label-already-exists" | "fail"
  readonly planTimeField: "StreamLoadPlanTimeMs" | "StreamLoadPutTimeMs"
  readonly loadStateShape: "new" | "old"
  readonly emptyLoadAsError: boolean
  readonly emptyLoadMessage: "old" | "new"
  readonly labelKeepMaxSecond: number
  readonly labelKeepMaxNum: number
  readonly cleanerIntervalMs: number
  readonly beHttpAuth: boolean
  readonly streamingLoadMaxMb: number
  readonly maxRunningTxnNumPerDb: number
  readonly legacyCsvStartLookahead: boolean
  readonly defaultTimeoutSec: number
  readonly preparedTimeoutDefaultSec: number
  /** How long a BE must be down before the FE aborts its PREPARE transactions (`coordinate BE is down`). */
  readonly beDownAbortMs: number
}

export type Counters = NonNullable<TxnRecord["counters"]>

/** A transaction-interface context on a BE (`transaction_mgr.cpp`). */
export interface BeTxnContext {
  readonly db: string
  readonly table: string
  readonly label: string
  readonly txnId: number
  readonly tableDef: TableDef
  /** Data headers of the first load; every later load must send the same. */
  headers: Record<string, string> | undefined
  /** All headers of the first load (what the data path reads). */
  loadHeaders: Record<string, string> | undefined
  readonly bodies: Array<Uint8Array>
  bytes: number
  inProcessing: boolean
  readonly beginAt: number
  lastActive: number
  readonly timeoutSec: number
  readonly idleTimeoutSec: number
  failed: string | undefined
  planTimeMs: number
  receivedMs: number
}

export interface RequestLog {
  readonly node: string
  readonly method: string
  readonly path: string
  readonly headers: Record<string, string>
  bodyBytes: number
}

export class BeNode {
  /** When the node was taken down (setNode), for the FE's `coordinate BE is down` abort. */
  downSince: number | undefined = undefined
  readonly contexts = new Map<string, BeTxnContext>()
  readonly errorLogs = new Map<string, ReadonlyArray<string>>()
  constructor(readonly name: string, readonly index: number, readonly server: NodeServer) {}
  get alive(): boolean {
    return this.server.isUp
  }
  get address(): string {
    return this.server.address
  }
  get origin(): string {
    return this.server.origin
  }
}

export class FeNode {
  rr = 0
  constructor(readonly name: string, readonly index: number, readonly server: NodeServer) {}
  get address(): string {
    return this.server.address
  }
  get isLeader(): boolean {
    return this.index === 0
  }
}

export type BeginResult =
  | { readonly _tag: "Ok"; readonly txn: TxnRecord }
  | { readonly _tag: "Error"; readonly message: string }
  | { readonly _tag: "LabelExists"; readonly jobStatus: "RUNNING" | "FINISHED"; readonly message: string }

const LABEL_RE = /^[-\w]{1,128}$/

export const labelAlreadyUsed = (label: string) => `Label [${label}] has already been used.`

/**
 * The 3.3–3.5 form of a duplicate label (`StreamLoadTask.updateTransactionResultWithException`, rethrown by
 * `loadTxnBeginImpl` as a plain error): docs/protocol.md §5.5.
 */
export const wrappedLabelAlreadyUsed = (taskId: number, label: string) =>
  `stream_load_task:${taskId}, label=${label}, error_msg=cancel stream task for exception: ${labelAlreadyUsed(label)}`

export class Cluster {
  readonly txns = new Map<number, TxnRecord>()
  readonly coordinators = new Map<string, number>()
  readonly fes: Array<FeNode> = []
  readonly bes: Array<BeNode> = []
  readonly requests: Array<RequestLog> = []
  private nextTxnId = 1
  private nextTaskId = 10_001
  private chain: Promise<unknown> = Promise.resolve()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private interval: ReturnType<typeof setInterval> | undefined
  private ticking = false
  /** Ids of transactions that were COMMITTED (waiting for their publish); `committedOf` drops the others. */
  private readonly committedIds = new Set<number>()

  constructor(
    readonly settings: Settings,
    readonly storage: Storage,
    readonly faults: FaultInjector,
    private readonly clock: (() => number) | undefined = undefined
  ) {}

  /** The emulator's clock (epoch ms): the wall clock, or the one given in the options (e.g. a TestClock). */
  now(): number {
    return this.clock === undefined ? Date.now() : this.clock()
  }

  // ---------------------------------------------------------------------------------------------------------------
  // plumbing

  /** Runs storage effects one after another, in call order. */
  serial<A>(effect: Effect.Effect<A, unknown>): Promise<A> {
    const p = this.chain.then(() => Effect.runPromise(effect))
    this.chain = p.catch(() => undefined)
    return p
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t)
        resolve()
      }, ms)
      this.timers.add(t)
    })
  }

  private schedule(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t)
      f()
    }, Math.max(0, ms))
    t.unref()
    this.timers.add(t)
  }

  start(): void {
    if (this.interval !== undefined) clearInterval(this.interval)
    this.interval = setInterval(() => void this.tick(), this.settings.cleanerIntervalMs)
    this.interval.unref()
  }

  stop(): void {
    if (this.interval !== undefined) clearInterval(this.interval)
    this.interval = undefined
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  logRequest(entry: RequestLog): RequestLog {
    this.requests.push(entry)
    if (this.requests.length > 10_000) this.requests.splice(0, this.requests.length - 10_000)
    return entry
  }

  /** Loads persisted transactions (PREPARED ones survive a restart; begun-only ones are lost, as on a new leader). */
  async restore(): Promise<void> {
    const saved = await Effect.runPromise(this.storage.loadTxns)
    for (const t of saved) {
      this.nextTxnId = Math.max(this.nextTxnId, t.txnId + 1)
      if (t.status === "PREPARE") {
        await this.serial(this.storage.deleteTxn(t.database, t.txnId))
        continue
      }
      this.txns.set(t.txnId, t)
      if (t.status === "COMMITTED") this.committedIds.add(t.txnId)
      if (t.status === "COMMITTED") this.schedule((t.visibleAt ?? 0) - this.now(), () => void this.publish(t.txnId))
    }
  }

  reset(): void {
    this.txns.clear()
    this.coordinators.clear()
    this.requests.length = 0
    for (const be of this.bes) {
      be.contexts.clear()
      be.errorLogs.clear()
    }
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  // ---------------------------------------------------------------------------------------------------------------
  // auth, tables, nodes

  /** FE password check: the error message or undefined. */
  checkPassword(user: string, password: string, ip: string): string | undefined {
    const expected = this.settings.users[user]
    return expected === undefined || expected !== password ? `Access denied for ${user}@${ip}` : undefined
  }

  async resolveTable(db: string, table: string): Promise<TableDef | string> {
    const def = await Effect.runPromise(this.storage.getTable(db, table))
    if (def !== undefined) return def
    const all = await Effect.runPromise(this.storage.listTables)
    return all.some((t) => t.database === db) ? `unknown table "${db}.${table}"` : `unknown database, database=${db}`
  }

  async databaseExists(db: string): Promise<boolean> {
    const all = await Effect.runPromise(this.storage.listTables)
    return all.some((t) => t.database === db)
  }

  /** Round-robin over alive BEs (`seqChooseBackendIds`). */
  chooseBe(fe: FeNode): BeNode | undefined {
    const n = this.bes.length
    for (let i = 0; i < n; i++) {
      const be = this.bes[(fe.rr + i) % n]!
      if (be.alive) {
        fe.rr = (fe.rr + i + 1) % n
        return be
      }
    }
    return undefined
  }

  /** The URL origin of a BE address (`host:port`), with the scheme the BEs serve. */
  beOrigin(address: string): string {
    return `${this.beByAddress(address)?.server.scheme ?? this.bes[0]?.server.scheme ?? "http"}://${address}`
  }

  beByAddress(address: string): BeNode | undefined {
    return this.bes.find((b) => b.address === address)
  }

  // ---------------------------------------------------------------------------------------------------------------
  // labels and transactions (FE leader)

  txnsOf(db: string): Array<TxnRecord> {
    return Array.from(this.txns.values()).filter((t) => t.database === db).sort((a, b) => a.txnId - b.txnId)
  }

  withLabel(db: string, label: string): Array<TxnRecord> {
    return this.txnsOf(db).filter((t) => t.label === label)
  }

  /** The most recent transaction with this label. */
  latest(db: string, label: string): TxnRecord | undefined {
    const all = this.withLabel(db, label)
    return all[all.length - 1]
  }

  loadState(db: string, label: string): TxnStatus | "UNKNOWN" {
    return this.latest(db, label)?.status ?? "UNKNOWN"
  }

  /** `DatabaseTransactionMgr.beginTransaction` (the table is already resolved, the password checked). */
  begin(args: {
    readonly db: string
    readonly table: string
    readonly label: string
    readonly timeoutSec: number
    readonly kind: "stream" | "txn"
    readonly coordinator: string
  }): BeginResult {
    if (!LABEL_RE.test(args.label)) {
      return { _tag: "Error", message: `Label format error. regex: ^[-\\w]{1,128}$, label: ${args.label}` }
    }
    if (args.timeoutSec < 1 || args.timeoutSec > 259200) {
      return { _tag: "Error", message: "Invalid timeout. Timeout should between 1 and 259200 seconds" }
    }
    const blocking = this.withLabel(args.db, args.label).find((t) => t.status !== "ABORTED")
    if (blocking !== undefined) {
      const jobStatus = blocking.status === "COMMITTED" || blocking.status === "VISIBLE" ? "FINISHED" : "RUNNING"
      return { _tag: "LabelExists", jobStatus, message: labelAlreadyUsed(args.label) }
    }
    const running = this.txnsOf(args.db).filter((t) => t.status === "PREPARE" || t.status === "PREPARED").length
    if (running >= this.settings.maxRunningTxnNumPerDb) {
      return {
        _tag: "Error",
        message:
          `current running txns on db ${args.db} is ${running}, larger than limit ${this.settings.maxRunningTxnNumPerDb}`
      }
    }
    const now = this.now()
    const txn: TxnRecord = {
      txnId: this.nextTxnId++,
      database: args.db,
      table: args.table,
      label: args.label,
      status: "PREPARE",
      kind: args.kind,
      coordinator: args.coordinator,
      reason: "",
      createdAt: now,
      timeoutAt: now + args.timeoutSec * 1000
    }
    this.put(txn)
    return { _tag: "Ok", txn }
  }

  private put(txn: TxnRecord): void {
    this.txns.set(txn.txnId, txn)
    void this.serial(this.storage.saveTxn(txn)).catch(() => undefined)
  }

  get(txnId: number): TxnRecord | undefined {
    return this.txns.get(txnId)
  }

  /** Aborts a PREPARE or PREPARED transaction; false when it is already final or committed. */
  abort(txnId: number, reason: string): boolean {
    const t = this.txns.get(txnId)
    if (t === undefined || (t.status !== "PREPARE" && t.status !== "PREPARED")) return false
    const wasPrepared = t.status === "PREPARED"
    this.put({ ...t, status: "ABORTED", reason, finishedAt: this.now() })
    if (wasPrepared) void this.serial(this.storage.dropStaged(txnId)).catch(() => undefined)
    this.retain(t.database)
    return true
  }

  /** Moves a PREPARE transaction to PREPARED with its staged changes persisted. */
  async prepare(txnId: number, ops: RowChanges, counters: Counters, preparedTimeoutSec: number) {
    const t = this.txns.get(txnId)
    if (t === undefined || t.status !== "PREPARE") return t?.reason || "transaction is aborted"
    const now = this.now()
    await this.serial(this.storage.saveStaged(txnId, ops))
    const cur = this.txns.get(txnId)!
    if (cur.status !== "PREPARE") return cur.reason || "transaction is aborted"
    this.put({
      ...cur,
      status: "PREPARED",
      preparedAt: now,
      preparedTimeoutAt: now + preparedTimeoutSec * 1000,
      counters
    })
    return undefined
  }

  /**
   * Commits a PREPARE transaction (plain stream load, transaction commit from PREPARE) with its row changes.
   * Returns an error message, or the resulting status (COMMITTED when a publish timeout is injected).
   */
  async commit(
    txnId: number,
    ops: RowChanges,
    counters: Counters,
    publishDelayMs: number | undefined
  ): Promise<{ readonly error: string } | { readonly status: "VISIBLE" | "COMMITTED" }> {
    const t = this.txns.get(txnId)
    if (t === undefined) return { error: "transaction not found" }
    if (t.status !== "PREPARE") return { error: t.reason || `transaction status is ${t.status}` }
    return this.finishCommit({ ...t, counters }, () => Effect.succeed(ops), publishDelayMs)
  }

  /** FE `commitPreparedTransaction`. */
  async commitPrepared(
    txnId: number,
    publishDelayMs: number | undefined
  ): Promise<{ readonly error: string } | { readonly status: "VISIBLE" | "COMMITTED" }> {
    const t = this.txns.get(txnId)
    if (t === undefined || t.status !== "PREPARED") return { error: "transaction is not prepared" }
    return this.finishCommit(t, () => this.storage.loadStaged(txnId), publishDelayMs)
  }

  private async finishCommit(
    t: TxnRecord,
    ops: () => Effect.Effect<RowChanges, unknown>,
    publishDelayMs: number | undefined
  ): Promise<{ readonly error: string } | { readonly status: "VISIBLE" | "COMMITTED" }> {
    const now = this.now()
    // Versions of a table publish in commit order: while an earlier commit of the table waits for its publish, a
    // later one is COMMITTED too and becomes VISIBLE after it (never overtakes it: a Primary Key table's later
    // change must win).
    const waiting = this.committedOf(t.database, t.table)
    const after = waiting.length === 0 ? undefined : Math.max(...waiting.map((w) => w.visibleAt ?? 0)) + 1
    if (after !== undefined) publishDelayMs = Math.max(publishDelayMs ?? 0, after - now)
    // Mark the state first (synchronously) so timers and concurrent requests see it.
    if (publishDelayMs !== undefined) {
      const committed: TxnRecord = { ...t, status: "COMMITTED", visibleAt: now + publishDelayMs }
      this.txns.set(t.txnId, committed)
      this.committedIds.add(t.txnId)
      try {
        await this.serial(Effect.flatMap(ops(), (o) => this.storage.saveStaged(t.txnId, o)))
        await this.serial(this.storage.saveTxn(committed))
      } catch (e) {
        this.put({ ...t, status: "ABORTED", reason: String(e), finishedAt: this.now() })
        return { error: String(e) }
      }
      this.schedule(publishDelayMs, () => void this.publish(t.txnId))
      return { status: "COMMITTED" }
    }
    const visible: TxnRecord = { ...t, status: "VISIBLE", finishedAt: now, visibleAt: undefined }
    this.txns.set(t.txnId, visible)
    try {
      await this.serial(
        Effect.flatMap(ops(), (o) => this.storage.applyOps(t.database, t.table, o)).pipe(
          Effect.zipRight(this.storage.saveTxn(visible)),
          Effect.zipRight(t.status === "PREPARED" ? this.storage.dropStaged(t.txnId) : Effect.void)
        )
      )
    } catch (e) {
      this.put({ ...t, status: "ABORTED", reason: `${e instanceof Error ? e.message : String(e)}`, finishedAt: now })
      return { error: e instanceof Error ? e.message : String(e) }
    }
    this.retain(t.database)
    return { status: "VISIBLE" }
  }

  /** The COMMITTED (not yet VISIBLE) transactions of a table, in commit order (their `visibleAt` rises with it). */
  private committedOf(database: string, table: string): Array<TxnRecord> {
    const out: Array<TxnRecord> = []
    for (const id of this.committedIds) {
      const x = this.txns.get(id)
      if (x === undefined || x.status !== "COMMITTED") this.committedIds.delete(id)
      else if (x.database === database && x.table === table) out.push(x)
    }
    return out.sort((a, b) => (a.visibleAt ?? 0) - (b.visibleAt ?? 0) || a.txnId - b.txnId)
  }

  /** COMMITTED → VISIBLE: applies the staged changes (after those of the table's earlier commits). */
  async publish(txnId: number): Promise<void> {
    const t = this.txns.get(txnId)
    if (t === undefined || t.status !== "COMMITTED") return
    // earlier commits first: each is marked VISIBLE and queued on the serial chain synchronously, so they apply first
    for (const earlier of this.committedOf(t.database, t.table)) {
      if (earlier.txnId === txnId) break
      void this.publish(earlier.txnId)
    }
    const visible: TxnRecord = { ...t, status: "VISIBLE", finishedAt: this.now() }
    this.txns.set(txnId, visible)
    try {
      await this.serial(
        Effect.flatMap(this.storage.loadStaged(txnId), (ops) => this.storage.applyOps(t.database, t.table, ops)).pipe(
          Effect.zipRight(this.storage.saveTxn(visible)),
          Effect.zipRight(this.storage.dropStaged(txnId))
        )
      )
    } catch {
      this.txns.set(txnId, t)
      return
    }
    this.retain(t.database)
  }

  /** `removeExpiredTxns`: final transactions older than label_keep_max_second, then oldest first over the cap. */
  retain(db: string): void {
    const now = this.now()
    const all = this.txnsOf(db)
    const final = all.filter((t) => t.status === "VISIBLE" || t.status === "ABORTED")
      .sort((a, b) => (a.finishedAt ?? 0) - (b.finishedAt ?? 0) || a.txnId - b.txnId)
    let count = all.length
    for (const t of final) {
      const expired = (t.finishedAt ?? now) + this.settings.labelKeepMaxSecond * 1000 <= now
      if (!expired && count - this.settings.labelKeepMaxNum <= 0) continue
      this.txns.delete(t.txnId)
      count--
      void this.serial(this.storage.deleteTxn(db, t.txnId)).catch(() => undefined)
    }
  }

  /** The cleaner: BE context timers, FE transaction timers, publish, retention. */
  async tick(): Promise<void> {
    if (this.ticking) return
    this.ticking = true
    try {
      const now = this.now()
      for (const be of this.bes) {
        for (const [label, ctx] of be.contexts) {
          if (ctx.inProcessing) continue
          let reason: string | undefined
          // due at the same moment as the FE's own timeout (`timeoutAt`, checked below), so the BE's reason wins
          if (now - ctx.beginAt >= ctx.timeoutSec * 1000) {
            reason = `transaction is aborted by timeout ${ctx.timeoutSec} seconds.`
          } else if (now - ctx.lastActive > ctx.idleTimeoutSec * 1000) {
            reason = `transaction is aborted by idle timeout ${ctx.idleTimeoutSec} seconds.`
          }
          if (reason !== undefined) {
            be.contexts.delete(label)
            this.abort(ctx.txnId, reason)
          }
        }
      }
      for (const be of this.bes) {
        if (be.downSince === undefined || now - be.downSince < this.settings.beDownAbortMs) continue
        for (const t of this.txns.values()) {
          if (t.status === "PREPARE" && t.coordinator === be.address) this.abort(t.txnId, "coordinate BE is down")
        }
      }
      for (const t of Array.from(this.txns.values())) {
        if (t.status === "PREPARE" && t.timeoutAt <= now) this.abort(t.txnId, "timeout by txn manager")
        else if (t.status === "PREPARED" && t.preparedTimeoutAt !== undefined && t.preparedTimeoutAt <= now) {
          this.abort(t.txnId, "timeout by txn manager")
        } else if (t.status === "COMMITTED" && (t.visibleAt ?? 0) <= now) await this.publish(t.txnId)
      }
      const dbs = new Set(Array.from(this.txns.values(), (t) => t.database))
      for (const db of dbs) this.retain(db)
    } finally {
      this.ticking = false
    }
  }

  /** The message of a duplicate label in `fail` mode (3.3–3.5), with a fresh stream-load task id. */
  duplicateLabelFailMessage(label: string): string {
    return wrappedLabelAlreadyUsed(this.nextTaskId++, label)
  }

  coordinatorKey(db: string, label: string): string {
    return `${db}\u0000${label}`
  }
}
