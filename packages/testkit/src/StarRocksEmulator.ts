/**
 * A StarRocks-compatible HTTP emulator for tests: FE and BE `node:http` servers on loopback that implement Stream
 * Load, the transaction interface, labels, `get_load_state`, error logs and fault injection, following
 * docs/protocol.md (§2–§7).
 *
 * @since 1.0.0
 */
import type { Clock, Scope } from "effect"
import { Context, Effect, Layer } from "effect"
import * as Admin from "./internal/admin.js"
import * as Be from "./internal/be.js"
import { BeNode, Cluster, FeNode } from "./internal/cluster.js"
import type { Settings } from "./internal/cluster.js"
import type { Fault, FaultAction } from "./internal/faults.js"
import { FaultInjector } from "./internal/faults.js"
import * as Fe from "./internal/fe.js"
import { NodeServer } from "./internal/http.js"
import * as MemoryStorage from "./internal/memoryStorage.js"
import type { ColumnDef, Row, RowOp, TableDef, TablesFile, TxnRecord, TxnStatus } from "./internal/model.js"
import type { Storage } from "./internal/storage.js"
import { StorageError } from "./internal/storage.js"
import * as StarRocksVersion from "./StarRocksVersion.js"

export type {
  /** @since 1.0.0 */
  ColumnDef,
  /** @since 1.0.0 */
  Fault,
  /** @since 1.0.0 */
  FaultAction,
  /** @since 1.0.0 */
  Row,
  /** @since 1.0.0 */
  RowOp,
  /** @since 1.0.0 */
  Storage,
  /** @since 1.0.0 */
  TableDef,
  /** @since 1.0.0 */
  TablesFile,
  /** @since 1.0.0 */
  TxnRecord,
  /** @since 1.0.0 */
  TxnStatus
}

export {
  /**
   * @since 1.0.0
   * @category errors
   */
  StorageError
}

/**
 * @since 1.0.0
 * @category models
 */
export interface Options extends TablesFile, StarRocksVersion.VersionOptions {
  /**
   * The StarRocks version to behave as (`"3.3"`, `"3.2.11"`): sets every knob of `VersionOptions` as that version
   * behaves (see `StarRocksVersion.options`); knobs given here override it. Default: the newest StarRocks.
   */
  readonly starrocksVersion?: string | undefined
  /** Number of FEs (default 1); `fe0` is the leader. */
  readonly fes?: number | undefined
  /** Number of BEs (default 1), bound to 127.0.0.2, 127.0.0.3, ... */
  readonly bes?: number | undefined
  /** Default: in-memory storage. */
  readonly storage?: Storage | undefined
  /** Start the admin HTTP server (default true). */
  readonly admin?: boolean | undefined
  /** Cleaner tick for timeouts, publish and retention (default 30000 ms, as FE `transaction_clean_interval_second`). */
  readonly cleanerIntervalMs?: number | undefined
  /** BE `enable_http_auth`: the ErrorURL download needs Basic auth (default false). */
  readonly beHttpAuth?: boolean | undefined
  /**
   * Serve over https with this certificate chain and private key (PEM text): every FE, and every BE unless `beTls`
   * is false. The 307 redirects and `ErrorURL`s name the scheme the target node serves. The admin API stays plain
   * http. Default: plain http everywhere.
   */
  readonly tls?: { readonly cert: string | Uint8Array; readonly key: string | Uint8Array } | undefined
  /**
   * With `tls`: whether the BEs serve https too (default true). False keeps the BEs on plain http, so an https FE
   * redirects a load to an `http://` BE, as a cluster whose FEs sit behind an https proxy does.
   */
  readonly beTls?: boolean | undefined
  /**
   * The clock of every timer (transaction `timeout`, `idle_transaction_timeout`, `prepared_timeout`, label
   * retention, publish delays, `beDownAbortMs`). Default: the wall clock. Tests pass `yield* Effect.clock` under
   * `TestClock`, move it with `TestClock.adjust` and run the cleaner with `tick`.
   */
  readonly clock?: Clock.Clock | undefined
  /** Seed of the fault-injection PRNG (default 1). */
  readonly seed?: number | undefined
  /**
   * How long a BE taken down with `setNode` stays down before the FE aborts the PREPARE (begun, not prepared)
   * transactions it coordinates with reason `coordinate BE is down` (default 15000 ms; PREPARED ones are kept).
   */
  readonly beDownAbortMs?: number | undefined
}

/**
 * @since 1.0.0
 * @category models
 */
export interface RequestLogEntry {
  readonly node: string
  readonly method: string
  readonly path: string
  readonly headers: Record<string, string>
  readonly bodyBytes: number
}

/**
 * @since 1.0.0
 * @category models
 */
export interface StarRocksEmulator {
  /** FE addresses, `127.0.0.1:PORT`; the first is the leader. */
  readonly fe: ReadonlyArray<string>
  /** BE addresses, `127.0.0.2:PORT`, `127.0.0.3:PORT`, ... */
  readonly bes: ReadonlyArray<string>
  /** Admin API base URL, `http://127.0.0.1:PORT`, when enabled. */
  readonly admin: string | undefined
  /** The scheme the FEs and the BEs serve: `https` with the `tls` option (the BEs: unless `beTls` is false). */
  readonly scheme: { readonly fe: "http" | "https"; readonly be: "http" | "https" }
  readonly createTable: (def: TableDef) => Effect.Effect<void, StorageError>
  /** The visible rows of a table. */
  readonly rows: (
    database: string,
    table: string
  ) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, StorageError>
  /** The FE transactions of a database (what the label manager still retains). */
  readonly transactions: (database: string) => Effect.Effect<ReadonlyArray<TxnRecord>>
  /** The `get_load_state` state of a label. */
  readonly loadState: (database: string, label: string) => Effect.Effect<TxnStatus | "UNKNOWN">
  readonly addFault: (fault: Fault) => Effect.Effect<void>
  readonly clearFaults: Effect.Effect<void>
  /**
   * `"fe0"`, `"be1"`, ...: down closes the listener and every connection (connections refused), up reopens it on
   * the same port. A down BE is skipped by the FE's round-robin and loses its transaction contexts (as a crashed
   * BE does); after `beDownAbortMs` the FE aborts its begun transactions.
   */
  readonly setNode: (node: string, state: "up" | "down") => Effect.Effect<void>
  /** Every request received, in order (node, method, path with query, lower-cased headers, body bytes read). */
  readonly requests: Effect.Effect<ReadonlyArray<RequestLogEntry>>
  /** Drops rows, transactions, BE contexts, error logs, faults and the request log; brings every node up. */
  readonly reset: Effect.Effect<void>
  /** Runs the cleaner once now (timeouts, publish, retention). */
  readonly tick: Effect.Effect<void>
}

/**
 * @since 1.0.0
 * @category tags
 */
export const StarRocksEmulator: Context.Tag<StarRocksEmulator, StarRocksEmulator> = Context.GenericTag<
  StarRocksEmulator
>("@effect-starrocks/testkit/StarRocksEmulator")

const toStorageError = (e: unknown) =>
  e instanceof StorageError ? e : new StorageError(e instanceof Error ? e.message : String(e), e)

/**
 * Starts the FE, BE and admin servers; they stop when the scope closes.
 *
 * @since 1.0.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<StarRocksEmulator, StorageError, Scope.Scope> =>
  Effect.gen(function*() {
    const storage = options.storage ?? MemoryStorage.make()
    let base = StarRocksVersion.latest
    if (options.starrocksVersion !== undefined) {
      const v = StarRocksVersion.parse(options.starrocksVersion)
      if (typeof v === "string") return yield* Effect.dieMessage(`StarRocksEmulator: ${v}`)
      base = StarRocksVersion.options(v)
    }
    const settings: Settings = {
      users: options.users ?? { root: "" },
      requireExpect: options.requireExpect ?? base.requireExpect,
      duplicateLabelMode: options.duplicateLabelMode ?? base.duplicateLabelMode,
      planTimeField: options.planTimeField ?? base.planTimeField,
      loadStateShape: options.loadStateShape ?? base.loadStateShape,
      emptyLoadAsError: options.emptyLoadAsError ?? base.emptyLoadAsError,
      emptyLoadMessage: options.emptyLoadMessage ?? base.emptyLoadMessage,
      labelKeepMaxSecond: options.labelKeepMaxSecond ?? base.labelKeepMaxSecond,
      labelKeepMaxNum: options.labelKeepMaxNum ?? base.labelKeepMaxNum,
      cleanerIntervalMs: options.cleanerIntervalMs ?? 30_000,
      beHttpAuth: options.beHttpAuth ?? false,
      streamingLoadMaxMb: options.streamingLoadMaxMb ?? base.streamingLoadMaxMb,
      maxRunningTxnNumPerDb: options.maxRunningTxnNumPerDb ?? base.maxRunningTxnNumPerDb,
      legacyCsvStartLookahead: options.legacyCsvStartLookahead ?? base.legacyCsvStartLookahead,
      defaultTimeoutSec: options.streamLoadDefaultTimeoutSecond ?? base.streamLoadDefaultTimeoutSecond,
      preparedTimeoutDefaultSec: options.preparedTransactionDefaultTimeoutSecond ??
        base.preparedTransactionDefaultTimeoutSecond,
      beDownAbortMs: options.beDownAbortMs ?? 15_000
    }
    const beTls = options.beTls === false ? undefined : options.tls
    const faults = new FaultInjector(options.seed ?? 1)
    const clock = options.clock
    const cluster = new Cluster(
      settings,
      storage,
      faults,
      clock === undefined ? undefined : () => clock.unsafeCurrentTimeMillis()
    )
    for (const def of options.tables ?? []) yield* storage.createTable(def)

    const createTable = (def: TableDef) => storage.createTable(def)
    const rows = (database: string, table: string) => storage.readRows(database, table)
    const resetAll = async () => {
      await Effect.runPromise(storage.reset)
      cluster.reset()
      faults.clear()
      for (const n of [...cluster.fes, ...cluster.bes]) if (!n.server.isUp) await n.server.start()
      for (const be of cluster.bes) be.downSince = undefined
      cluster.start()
    }

    let adminServer: NodeServer | undefined
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          await cluster.restore()
          for (let i = 0; i < (options.fes ?? 1); i++) {
            const fe: FeNode = new FeNode(
              `fe${i}`,
              i,
              new NodeServer("127.0.0.1", (q, r, e) => feHandler(q, r, e), options.tls)
            )
            const feHandler = Fe.makeHandler(cluster, fe)
            cluster.fes.push(fe)
            await fe.server.start()
          }
          for (let i = 0; i < (options.bes ?? 1); i++) {
            const be: BeNode = new BeNode(
              `be${i}`,
              i,
              new NodeServer(`127.0.0.${2 + i}`, (q, r, e) => beHandler(q, r, e), beTls)
            )
            const beHandler = Be.makeHandler(cluster, be)
            cluster.bes.push(be)
            await be.server.start()
          }
          if (options.admin ?? true) {
            adminServer = new NodeServer(
              "127.0.0.1",
              Admin.makeHandler({
                createTable: (def) => Effect.runPromise(createTable(def)),
                rows: (db, t) => Effect.runPromise(rows(db, t)),
                tableExists: async (db, t) => (await Effect.runPromise(storage.getTable(db, t))) !== undefined,
                transactions: (db) => cluster.txnsOf(db),
                addFault: (f) => faults.add(f),
                clearFaults: () => faults.clear(),
                reset: resetAll
              })
            )
            await adminServer.start()
          }
          cluster.start()
        },
        catch: toStorageError
      }),
      () =>
        Effect.promise(async () => {
          cluster.stop()
          await Promise.all([...cluster.fes, ...cluster.bes].map((n) => n.server.stop()))
          if (adminServer !== undefined) await adminServer.stop()
        })
    )

    const findNode = (name: string) => [...cluster.fes, ...cluster.bes].find((n) => n.name === name)

    return StarRocksEmulator.of({
      fe: cluster.fes.map((f) => f.address),
      bes: cluster.bes.map((b) => b.address),
      admin: adminServer === undefined ? undefined : `http://${adminServer.address}`,
      scheme: { fe: options.tls === undefined ? "http" : "https", be: beTls === undefined ? "http" : "https" },
      createTable,
      rows,
      transactions: (database) => Effect.sync(() => cluster.txnsOf(database)),
      loadState: (database, label) => Effect.sync(() => cluster.loadState(database, label)),
      addFault: (fault) => Effect.sync(() => faults.add(fault)),
      clearFaults: Effect.sync(() => faults.clear()),
      setNode: (node, state) =>
        Effect.promise(async () => {
          const n = findNode(node)
          if (n === undefined) return
          if (state === "down") {
            if (!n.server.isUp) return
            await n.server.stop()
            if (n instanceof BeNode) {
              n.contexts.clear()
              n.downSince = cluster.now()
            }
          } else if (!n.server.isUp) {
            await n.server.start()
            if (n instanceof BeNode) n.downSince = undefined
          }
        }),
      requests: Effect.sync(() => cluster.requests.map((r) => ({ ...r }))),
      reset: Effect.promise(() => resetAll()),
      tick: Effect.promise(() => cluster.tick())
    })
  })

/**
 * @since 1.0.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<StarRocksEmulator, StorageError> =>
  Layer.scoped(StarRocksEmulator, make(options))
