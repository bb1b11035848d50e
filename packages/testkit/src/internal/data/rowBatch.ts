/**
 * Loaded rows kept compactly: one batch per load, column by column, in typed arrays and one byte arena, so that a
 * loaded row is not an object graph (row object, cell strings, BIGINT and double boxes, row change) that the
 * garbage collector copies out of the young generation. A row object is built only when a read asks for it.
 *
 * Every cell round-trips exactly: numbers as float64 (NaN, -0 kept), BIGINT values in int64 range as int64, ASCII
 * strings as bytes in the arena; anything else (non-ASCII or ill-formed strings, arrays, bigints beyond int64) is
 * kept as the value itself in a side map.
 *
 * Used for full-row upserts only (the rows of a DUPLICATE table load): `toOps` gives the same row changes the
 * loader would have built (`{ op: "upsert", values, columns }` with every column, in column order).
 *
 * @internal
 */
import type { Cell, RowOp } from "../model.js"

const NULL = 0
const NUMBER = 1
const INT64 = 2
const ASCII = 3
const TRUE = 4
const FALSE = 5
const OTHER = 6

const MIN_INT64 = -(2n ** 63n)
const MAX_INT64 = 2n ** 63n - 1n

class Column {
  tags: Uint8Array
  slots: ArrayBuffer
  f64: Float64Array
  i64: BigInt64Array
  i32: Int32Array
  /** Cells that have no compact form, by row index. */
  other: Map<number, Cell> | undefined

  constructor(capacity: number) {
    this.tags = new Uint8Array(capacity)
    this.slots = new ArrayBuffer(capacity * 8)
    this.f64 = new Float64Array(this.slots)
    this.i64 = new BigInt64Array(this.slots)
    this.i32 = new Int32Array(this.slots)
  }

  grow(capacity: number) {
    const tags = new Uint8Array(capacity)
    tags.set(this.tags)
    const slots = new ArrayBuffer(capacity * 8)
    new Uint8Array(slots).set(new Uint8Array(this.slots))
    this.tags = tags
    this.slots = slots
    this.f64 = new Float64Array(slots)
    this.i64 = new BigInt64Array(slots)
    this.i32 = new Int32Array(slots)
  }
}

/** Whether a string is all ASCII (then its bytes are its UTF-16 code units). */
const isAscii = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false
  return true
}

export class RowBatch {
  length = 0
  private capacity: number
  private readonly columns: Array<Column>
  private arena: Buffer
  private used = 0

  constructor(readonly names: ReadonlyArray<string>, capacity = 1024) {
    this.capacity = capacity
    this.columns = names.map(() => new Column(capacity))
    this.arena = Buffer.allocUnsafe(capacity * 16)
  }

  private reserve(bytes: number) {
    if (this.used + bytes <= this.arena.length) return
    let size = this.arena.length * 2
    while (size < this.used + bytes) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.arena.copy(next, 0, 0, this.used)
    this.arena = next
  }

  /** Appends one row: its cells in the order of `names`. */
  push(cells: ReadonlyArray<Cell>) {
    const i = this.length
    if (i === this.capacity) {
      this.capacity *= 2
      for (const c of this.columns) c.grow(this.capacity)
    }
    const names = this.names
    for (let k = 0; k < names.length; k++) {
      const col = this.columns[k]!
      const v = cells[k]
      if (v === null || v === undefined) {
        col.tags[i] = NULL
      } else if (typeof v === "number") {
        col.tags[i] = NUMBER
        col.f64[i] = v
      } else if (typeof v === "string" && isAscii(v)) {
        col.tags[i] = ASCII
        this.reserve(v.length)
        const at = this.used
        for (let j = 0; j < v.length; j++) this.arena[at + j] = v.charCodeAt(j)
        this.used += v.length
        col.i32[2 * i] = at
        col.i32[2 * i + 1] = v.length
      } else if (typeof v === "bigint" && v >= MIN_INT64 && v <= MAX_INT64) {
        col.tags[i] = INT64
        col.i64[i] = v
      } else if (v === true) {
        col.tags[i] = TRUE
      } else if (v === false) {
        col.tags[i] = FALSE
      } else {
        col.tags[i] = OTHER
        ;(col.other ??= new Map()).set(i, v)
      }
    }
    this.length = i + 1
  }

  private cell(col: Column, i: number): Cell {
    switch (col.tags[i]) {
      case NUMBER:
        return col.f64[i]!
      case INT64:
        return col.i64[i]!
      case ASCII: {
        const at = col.i32[2 * i]!
        return this.arena.toString("latin1", at, at + col.i32[2 * i + 1]!)
      }
      case TRUE:
        return true
      case FALSE:
        return false
      case OTHER:
        return col.other!.get(i)!
      default:
        return null
    }
  }

  /** Row `i` as a fresh object, columns in order. */
  row(i: number): Record<string, Cell> {
    const out: Record<string, Cell> = {}
    const names = this.names
    for (let k = 0; k < names.length; k++) out[names[k]!] = this.cell(this.columns[k]!, i)
    return out
  }

  /** The row changes the batch stands for: one full-row upsert per row. */
  toOps(): Array<RowOp> {
    const out: Array<RowOp> = new Array(this.length)
    for (let i = 0; i < this.length; i++) out[i] = { op: "upsert", values: this.row(i), columns: this.names }
    return out
  }
}

/**
 * The row changes of one load or transaction: plain row changes, or a batch of full-row upserts kept compactly
 * (`RowBatch`), which a storage may keep as they are.
 */
export type RowChanges = ReadonlyArray<RowOp> | RowBatch

export const toOps = (changes: RowChanges): ReadonlyArray<RowOp> =>
  changes instanceof RowBatch ? changes.toOps() : changes
