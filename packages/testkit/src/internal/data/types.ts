/**
 * The contract of the BE data path: headers and body bytes in, typed row changes and counters out.
 * Implemented in `pipeline.ts` from docs/protocol.md §6, §8 and §9.
 *
 * @internal
 */
import type { RowOp } from "../model.js"
import type { RowChanges } from "./rowBatch.js"

/** Load headers with lower-cased names. */
export type LoadHeaders = Readonly<Record<string, string>>

export interface LoadOptions {
  /** FE `empty_load_as_error` (default true). */
  readonly emptyLoadAsError: boolean
  /** Message style for an empty load: "old" = `all partitions have no load data`, "new" = `No partitions have data …`. */
  readonly emptyLoadMessage: "old" | "new"
  /**
   * Emulate the CSV reader before StarRocks PR #37381 (3.0.x, 3.1.x, 3.2.0–3.2.2): a field starting with `""` followed
   * by anything but a delimiter is an unenclosed field starting with a literal quote (docs/protocol.md §9.2 item 7, §9.7 d).
   * Default false (the released reader).
   */
  readonly legacyCsvStartLookahead?: boolean | undefined
  /**
   * The load's plan time (epoch ms): what `now()` / `current_timestamp` (and `DEFAULT CURRENT_TIMESTAMP`) give, in
   * the load's `timezone`. Default: the wall clock when the load runs.
   */
  readonly now?: number | undefined
  /** Maximum number of row lines in the error log (default 50, as the CSV scanner). */
  readonly maxErrorLogRows?: number | undefined
}

export interface LoadCounters {
  readonly total: number
  readonly loaded: number
  readonly filtered: number
  readonly unselected: number
  readonly bytes: number
}

export type LoadOutcome =
  | {
    readonly _tag: "Ok"
    /** The row changes as the storages take them (a DUPLICATE table's rows compactly, `rowBatch.ts`). */
    readonly changes: RowChanges
    /** The same changes as plain row changes (built on first access). */
    readonly ops: ReadonlyArray<RowOp>
    readonly counters: LoadCounters
    /** Error-log lines (`Error: <reason>. Row: <raw row>`); non-empty means an ErrorURL is reported. */
    readonly errorLog: ReadonlyArray<string>
  }
  | {
    readonly _tag: "Fail"
    /** The BE message, verbatim (`too many filtered rows`, `illegal json started with x`, ...). */
    readonly message: string
    readonly counters: LoadCounters
    readonly errorLog: ReadonlyArray<string>
  }
