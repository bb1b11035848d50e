/**
 * In-memory storage: the default for the emulator, the demo and unit tests.
 *
 * @internal
 */
import { Effect } from "effect"
import { conditionAllows } from "./condition.js"
import type { RowChanges } from "./data/rowBatch.js"
import { RowBatch, toOps } from "./data/rowBatch.js"
import type { Row, TableDef, TxnRecord } from "./model.js"
import type { Storage } from "./storage.js"
import { StorageError } from "./storage.js"

interface MemTable {
  readonly def: TableDef
  /**
   * DUPLICATE: the rows in insertion order, as chunks: a load's `RowBatch` kept as it is (rows built only when read),
   * or rows given as plain row changes.
   */
  chunks: Array<RowBatch | Array<Row>>
  /** PRIMARY: the rows keyed by the encoded key. */
  readonly byKey: Map<string, Row>
}

const keyOf = (def: TableDef, row: Row): string =>
  JSON.stringify(def.key.map((k) => {
    const v = row[k]
    return typeof v === "bigint" ? `${v}n` : v ?? null
  }))

const compareCells = (a: unknown, b: unknown): number => {
  if (a === b) return 0
  if (a === null || a === undefined) return -1
  if (b === null || b === undefined) return 1
  if ((typeof a === "number" || typeof a === "bigint") && (typeof b === "number" || typeof b === "bigint")) {
    return a < b ? -1 : a > b ? 1 : 0
  }
  const sa = String(a)
  const sb = String(b)
  return sa < sb ? -1 : sa > sb ? 1 : 0
}

const tableKey = (database: string, table: string) => `${database}\u0000${table}`

/** Whether the row holds every column (a plain loop: no closure per row). */
const hasEvery = (values: Row, names: ReadonlyArray<string>): boolean => {
  for (let i = 0; i < names.length; i++) if (values[names[i]!] === undefined) return false
  return true
}

const sameNames = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean =>
  a.length === b.length && a.every((n, i) => n === b[i])

/** @internal */
export const make = (): Storage => {
  const tables = new Map<string, MemTable>()
  const txns = new Map<string, TxnRecord>()
  const staged = new Map<number, RowChanges>()

  const get = (database: string, table: string) =>
    Effect.suspend(() => {
      const t = tables.get(tableKey(database, table))
      return t === undefined
        ? Effect.fail(new StorageError(`unknown table "${database}.${table}"`))
        : Effect.succeed(t)
    })

  const applyTo = (t: MemTable, changes: RowChanges) => {
    if (t.def.model === "PRIMARY") {
      for (const op of toOps(changes)) {
        const k = keyOf(t.def, op.values)
        if (op.op === "delete") {
          t.byKey.delete(k)
        } else {
          const prev = t.byKey.get(k)
          if (prev !== undefined && op.mergeCondition !== undefined) {
            const c = op.mergeCondition
            const type = t.def.columns.find((d) => d.name === c)?.type ?? ""
            if (!conditionAllows(prev[c], op.values[c], type)) continue
          }
          if (prev !== undefined && op.columns.length < t.def.columns.length) {
            const merged: Record<string, Row[string]> = { ...prev }
            for (const c of op.columns) merged[c] = op.values[c] ?? null
            t.byKey.set(k, merged)
          } else {
            const full: Record<string, Row[string]> = {}
            for (const c of t.def.columns) full[c.name] = op.values[c.name] ?? null
            t.byKey.set(k, full)
          }
        }
      }
    } else {
      const names = t.def.columns.map((c) => c.name)
      if (changes instanceof RowBatch && sameNames(changes.names, names)) {
        // never changed after the load: kept as it is
        if (changes.length > 0) t.chunks.push(changes)
        return
      }
      const last = t.chunks[t.chunks.length - 1]
      const rows = Array.isArray(last) ? last : []
      if (rows !== last) t.chunks.push(rows)
      for (const op of toOps(changes)) {
        if (op.op === "upsert") {
          // rows are never changed in place, so an object with every column can be kept
          if (hasEvery(op.values, names)) {
            rows.push(op.values)
            continue
          }
          const full: Record<string, Row[string]> = {}
          for (const c of names) full[c] = op.values[c] ?? null
          rows.push(full)
        }
      }
    }
  }

  return {
    kind: "memory",
    listTables: Effect.sync(() => Array.from(tables.values(), (t) => t.def)),
    getTable: (database, table) => Effect.sync(() => tables.get(tableKey(database, table))?.def),
    createTable: (def) =>
      Effect.sync(() => {
        const k = tableKey(def.database, def.table)
        if (!tables.has(k)) tables.set(k, { def, chunks: [], byKey: new Map() })
      }),
    applyOps: (database, table, ops) => Effect.map(get(database, table), (t) => applyTo(t, ops)),
    readRows: (database, table) =>
      Effect.map(get(database, table), (t) => {
        if (t.def.model !== "PRIMARY") {
          const out: Array<Record<string, unknown>> = []
          for (const chunk of t.chunks) {
            if (chunk instanceof RowBatch) { for (let i = 0; i < chunk.length; i++) out.push(chunk.row(i)) }
            else for (const r of chunk) out.push({ ...r })
          }
          return out
        }
        const rows = Array.from(t.byKey.values(), (r) => ({ ...r }))
        return rows.sort((a, b) => {
          for (const k of t.def.key) {
            const c = compareCells(a[k], b[k])
            if (c !== 0) return c
          }
          return 0
        })
      }),
    saveTxn: (txn) => Effect.sync(() => void txns.set(`${txn.database}\u0000${txn.txnId}`, txn)),
    deleteTxn: (database, txnId) => Effect.sync(() => void txns.delete(`${database}\u0000${txnId}`)),
    loadTxns: Effect.sync(() => Array.from(txns.values())),
    saveStaged: (txnId, ops) => Effect.sync(() => void staged.set(txnId, ops)),
    loadStaged: (txnId) => Effect.sync(() => staged.get(txnId) ?? []),
    dropStaged: (txnId) => Effect.sync(() => void staged.delete(txnId)),
    reset: Effect.sync(() => {
      for (const t of tables.values()) {
        t.chunks = []
        t.byKey.clear()
      }
      txns.clear()
      staged.clear()
    })
  }
}
