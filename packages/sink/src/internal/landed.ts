/**
 * What an at-least-once sink that failed for good had landed, per table (the `landed` field of its error, and a
 * sentence of its message). Built by the ledger (internal/sink/ledger.ts) once the loads sealed before the failure
 * have settled.
 */
import { Schema } from "effect"

/** One table's share. */
export const TableLanded = Schema.Struct({
  /**
   * Every row of this table whose stream index (0-based, counted over every row the sink took, of any table) is
   * below `upToRow` has landed: resume the table's rows from there. Rows from it on may have landed in part (see
   * `labels.committed`) or not at all.
   */
  upToRow: Schema.Number,
  labels: Schema.Struct({
    /** Labels that landed (the latest of the landed prefix, and any beyond it), in seal order. */
    committed: Schema.Array(Schema.String),
    /** Labels that did not land (failed for good, or never sent because the sink stopped). */
    failed: Schema.Array(Schema.String),
    /** Labels whose outcome is unknown (still in flight when the deadline passed, or not settled by the server). */
    inDoubt: Schema.Array(Schema.String)
  }),
  /** Labels of this table that landed earlier than those in `labels.committed` (not listed, to bound memory). */
  earlierCommitted: Schema.Number
})
export type TableLanded = typeof TableLanded.Type

/** Per table (`db.table`). */
export const Landed = Schema.Record({ key: Schema.String, value: TableLanded })
export type Landed = typeof Landed.Type

const list = (labels: ReadonlyArray<string>, max = 5): string =>
  labels.length === 0
    ? "none"
    : labels.length <= max
    ? labels.join(", ")
    : `${labels.slice(0, max).join(", ")} and ${labels.length - max} more`

/** The sentence an error's message ends with (empty without a report). */
export const suffix = (landed: Landed | undefined): string => {
  if (landed === undefined) return ""
  const tables = Object.entries(landed)
  if (tables.length === 0) return ""
  return "; what landed: " +
    tables.map(([table, t]) =>
      `${table}: every row before stream row ${t.upToRow} landed (committed: ${list(t.labels.committed)}${
        t.earlierCommitted > 0 ? ` and ${t.earlierCommitted} earlier` : ""
      }; failed: ${list(t.labels.failed)}; ` +
      `in doubt: ${list(t.labels.inDoubt)})`
    ).join("; ")
}
