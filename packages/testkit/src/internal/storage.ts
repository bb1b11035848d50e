/**
 * The emulator's storage: tables, their visible rows, the FE transaction table and the staged row changes of
 * transactions that are PREPARED or COMMITTED but not yet VISIBLE. Two implementations: memory
 * (`memoryStorage.ts`) and a MySQL-protocol database (`mysqlStorage.ts`, MariaDB in our tests).
 *
 * @internal
 */
import type { Effect } from "effect"
import type { RowChanges } from "./data/rowBatch.js"
import type { TableDef, TxnRecord } from "./model.js"

export class StorageError extends Error {
  readonly _tag = "StorageError"
  constructor(message: string, override readonly cause?: unknown) {
    super(message)
  }
}

export interface Storage {
  readonly kind: "memory" | "mysql"
  /** Every table served (declared ones and, for mysql, the ones already in the database). */
  readonly listTables: Effect.Effect<ReadonlyArray<TableDef>, StorageError>
  readonly getTable: (database: string, table: string) => Effect.Effect<TableDef | undefined, StorageError>
  /** Creates the table when it does not exist; an existing table is kept as it is. */
  readonly createTable: (def: TableDef) => Effect.Effect<void, StorageError>
  /**
   * Applies the changes of one transaction atomically (all or nothing), in order. A `RowBatch` (full-row upserts)
   * may be kept as it is: it is never changed after the load.
   */
  readonly applyOps: (database: string, table: string, ops: RowChanges) => Effect.Effect<void, StorageError>
  /** The visible rows, in key order for PRIMARY tables and insertion order for DUPLICATE tables. */
  readonly readRows: (
    database: string,
    table: string
  ) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, StorageError>
  /** Inserts or replaces one FE transaction record. */
  readonly saveTxn: (txn: TxnRecord) => Effect.Effect<void, StorageError>
  readonly deleteTxn: (database: string, txnId: number) => Effect.Effect<void, StorageError>
  readonly loadTxns: Effect.Effect<ReadonlyArray<TxnRecord>, StorageError>
  /** Staged changes of a PREPARED (or COMMITTED, not yet visible) transaction, kept across restarts. */
  readonly saveStaged: (txnId: number, ops: RowChanges) => Effect.Effect<void, StorageError>
  readonly loadStaged: (txnId: number) => Effect.Effect<RowChanges, StorageError>
  readonly dropStaged: (txnId: number) => Effect.Effect<void, StorageError>
  /** Drops every row, transaction and staged change (tables stay declared). */
  readonly reset: Effect.Effect<void, StorageError>
}
