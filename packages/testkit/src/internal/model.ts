/**
 * The emulator's data model, shared by the FE/BE servers, the data path and the storages.
 *
 * @internal
 */

/** A column as declared in a tables file: `{"name":"id","type":"BIGINT","nullable":true}`. */
export interface ColumnDef {
  readonly name: string
  /** StarRocks type text, e.g. `BIGINT`, `VARCHAR(64)`, `DECIMAL(10,2)`, `ARRAY<INT>`, `JSON`. */
  readonly type: string
  /** Defaults to false for key columns and true for value columns. */
  readonly nullable?: boolean | undefined
  /**
   * The column's `DEFAULT` as StarRocks text (`"0"`, `"unknown"`, `"2024-01-01"`): what a load that does not supply
   * the column stores. A NOT NULL column without one cannot be left out of a load's `columns` (except in a partial
   * update).
   */
  readonly default?: string | undefined
}

export type TableModel = "DUPLICATE" | "PRIMARY"

export interface TableDef {
  readonly database: string
  readonly table: string
  readonly model: TableModel
  /** Key columns (the primary key for PRIMARY tables, the sort key for DUPLICATE tables). */
  readonly key: ReadonlyArray<string>
  readonly columns: ReadonlyArray<ColumnDef>
}

/** The tables file (and the emulator layer's options of the same shape). */
export interface TablesFile {
  readonly users?: Readonly<Record<string, string>> | undefined
  readonly tables?: ReadonlyArray<TableDef> | undefined
}

/**
 * One stored value, already coerced to the column type:
 * - BOOLEAN: boolean
 * - TINYINT, SMALLINT, INT: number
 * - BIGINT, LARGEINT: bigint
 * - FLOAT, DOUBLE: number
 * - DECIMAL(p,s): string, plain notation with exactly s fraction digits (`"12.30"`)
 * - CHAR, VARCHAR, STRING: string
 * - DATE: `"YYYY-MM-DD"`; DATETIME: `"YYYY-MM-DD HH:MM:SS"` or with `.ffffff` when the fraction is not zero
 * - JSON: string, the minified JSON text
 * - ARRAY<T>: an array of cells of T
 * - NULL: null
 */
export type Cell = null | boolean | number | bigint | string | ReadonlyArray<Cell>

export type Row = Readonly<Record<string, Cell>>

/**
 * One row change produced by a load. `columns` lists the columns the load supplied (for partial updates on
 * PRIMARY tables only those are written to an existing row; a new row takes `values`, where the columns the load
 * did not supply already hold their fill value). `mergeCondition` (the `merge_condition` header, PRIMARY tables
 * only) names the column whose stored value must not be greater than the new one for the upsert to take effect
 * (docs/protocol.md §6.6).
 */
export type RowOp =
  | {
    readonly op: "upsert"
    readonly values: Row
    readonly columns: ReadonlyArray<string>
    readonly mergeCondition?: string | undefined
  }
  | { readonly op: "delete"; readonly values: Row }

/** FE transaction states (`get_load_state`). */
export type TxnStatus = "PREPARE" | "PREPARED" | "COMMITTED" | "VISIBLE" | "ABORTED"

/** A transaction as the FE leader knows it (persisted by the storage so a restart keeps it). */
export interface TxnRecord {
  readonly txnId: number
  readonly database: string
  readonly table: string
  readonly label: string
  readonly status: TxnStatus
  /** "stream" for a plain `_stream_load`, "txn" for the transaction interface. */
  readonly kind: "stream" | "txn"
  /** Address (`host:port`) of the coordinator BE. */
  readonly coordinator: string
  readonly reason: string
  readonly createdAt: number
  readonly preparedAt?: number | undefined
  readonly finishedAt?: number | undefined
  /** Epoch ms after which an open (PREPARE) transaction is aborted by the FE ("timeout by txn manager"). */
  readonly timeoutAt: number
  /** Epoch ms after which a PREPARED transaction is aborted. */
  readonly preparedTimeoutAt?: number | undefined
  /** Epoch ms at which a COMMITTED transaction becomes VISIBLE (publish timeout emulation). */
  readonly visibleAt?: number | undefined
  readonly counters?: {
    readonly total: number
    readonly loaded: number
    readonly filtered: number
    readonly unselected: number
    readonly bytes: number
  } | undefined
}
