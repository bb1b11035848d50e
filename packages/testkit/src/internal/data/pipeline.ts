/**
 * STUB (to be replaced by the full data path): plain CSV split with `column_separator`, values kept as strings.
 *
 * @internal
 */
import type { TableDef } from "../model.js"
import type { LoadHeaders, LoadOptions, LoadOutcome } from "./types.js"

/**
 * Header-phase validation (before any body byte is read): returns the BE `Fail` message, or undefined.
 * Covers `format`, `strict_mode`, `max_filter_ratio`, `columns`/`where` syntax, `partial_update`, etc.
 */
export const validateHeaders = (_table: TableDef, headers: LoadHeaders): string | undefined => {
  const format = (headers["format"] ?? "csv").toLowerCase()
  if (format !== "csv" && format !== "json") return `unknown data format, format=${headers["format"]}`
  return undefined
}

/**
 * Runs one load: the bodies of a plain stream load (one) or of every `transaction/load` of a transaction
 * (concatenated as one pipe), parsed with the headers, converted to the table's column types.
 */
export const runLoad = (
  table: TableDef,
  headers: LoadHeaders,
  bodies: ReadonlyArray<Uint8Array>,
  options: LoadOptions
): LoadOutcome => {
  const text = Buffer.concat(bodies.map((b) => Buffer.from(b))).toString("utf8")
  const sep = headers["column_separator"] ?? "\t"
  const lines = text.split("\n").filter((l) => l.length > 0)
  const bytes = bodies.reduce((n, b) => n + b.byteLength, 0)
  const ops = lines.map((line) => {
    const fields = line.split(sep)
    const values: Record<string, string | null> = {}
    table.columns.forEach((c, i) => (values[c.name] = fields[i] === "\\N" ? null : fields[i] ?? null))
    return { op: "upsert" as const, values, columns: table.columns.map((c) => c.name) }
  })
  const counters = { total: ops.length, loaded: ops.length, filtered: 0, unselected: 0, bytes }
  if (ops.length === 0 && options.emptyLoadAsError) {
    return { _tag: "Fail", message: "all partitions have no load data", counters, errorLog: [] }
  }
  return { _tag: "Ok", ops, counters, errorLog: [] }
}
