/**
 * StarRocks' condition update (`merge_condition`): an upsert replaces the stored row only when the stored value
 * of the condition column is not greater than the new one. NULL sorts below every value (`NullableColumn::
 * compare_at` with `nan_direction_hint = -1`), so a stored NULL is always replaced and a new NULL never replaces
 * a stored value. See docs/protocol.md §6.6.
 *
 * @internal
 */
import type { Cell } from "./model.js"

const decimalKey = (s: string): { readonly neg: boolean; readonly int: string; readonly frac: string } => {
  const t = s.trim()
  const neg = t.startsWith("-")
  const body = t.replace(/^[+-]/, "")
  const dot = body.indexOf(".")
  const int = (dot < 0 ? body : body.slice(0, dot)).replace(/^0+/, "")
  const frac = (dot < 0 ? "" : body.slice(dot + 1)).replace(/0+$/, "")
  const zero = int === "" && frac === ""
  return { neg: neg && !zero, int, frac }
}

/** Numeric comparison of two plain decimal texts (`"12.30"`, `"-5"`). */
export const compareDecimalText = (a: string, b: string): number => {
  const x = decimalKey(a)
  const y = decimalKey(b)
  if (x.neg !== y.neg) return x.neg ? -1 : 1
  const sign = x.neg ? -1 : 1
  if (x.int.length !== y.int.length) return (x.int.length < y.int.length ? -1 : 1) * sign
  if (x.int !== y.int) return (x.int < y.int ? -1 : 1) * sign
  const n = Math.max(x.frac.length, y.frac.length)
  const fx = x.frac.padEnd(n, "0")
  const fy = y.frac.padEnd(n, "0")
  return fx === fy ? 0 : (fx < fy ? -1 : 1) * sign
}

/** Compares two non-NULL cells of one column (`type` is its StarRocks type text). */
export const compareCells = (a: Cell, b: Cell, type: string): number => {
  if ((typeof a === "number" || typeof a === "bigint") && (typeof b === "number" || typeof b === "bigint")) {
    return a < b ? -1 : a > b ? 1 : 0
  }
  if (typeof a === "boolean" && typeof b === "boolean") return a === b ? 0 : a ? 1 : -1
  if (typeof a === "string" && typeof b === "string") {
    if (/^\s*(DECIMAL|NUMERIC|LARGEINT)/i.test(type)) return compareDecimalText(a, b)
    return a < b ? -1 : a > b ? 1 : 0
  }
  const sa = JSON.stringify(a, (_k, v) => (typeof v === "bigint" ? v.toString() : v))
  const sb = JSON.stringify(b, (_k, v) => (typeof v === "bigint" ? v.toString() : v))
  return sa < sb ? -1 : sa > sb ? 1 : 0
}

/** Whether an upsert whose condition value is `next` replaces a stored row whose condition value is `stored`. */
export const conditionAllows = (stored: Cell | undefined, next: Cell | undefined, type: string): boolean => {
  if (stored === null || stored === undefined) return true
  if (next === null || next === undefined) return false
  return compareCells(stored, next, type) <= 0
}
