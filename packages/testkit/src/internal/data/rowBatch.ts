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

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

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
  /** `used` when the row being written began (`rollback`). */
  private mark = 0

  constructor(readonly names: ReadonlyArray<string>, capacity = 1024) {
    this.capacity = capacity
    this.columns = names.map(() => new Column(capacity))
    this.arena = Buffer.allocUnsafe(capacity * 16)
  }

  /**
   * Makes room for `rows` rows in all (a load's estimate of its row count: the columns are not grown and copied
   * row by row through every power of two).
   */
  reserveRows(rows: number) {
    if (rows <= this.capacity) return
    this.capacity = rows
    for (const c of this.columns) c.grow(rows)
  }

  private reserve(bytes: number) {
    if (this.used + bytes <= this.arena.length) return
    let size = this.arena.length * 2
    // once some rows are in, grow to what the rows written so far project for the whole capacity
    if (this.length >= 256) size = Math.max(size, Math.ceil((this.used / this.length) * this.capacity * 1.05))
    while (size < this.used + bytes) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.arena.copy(next, 0, 0, this.used)
    this.arena = next
  }

  /** Appends one row: its cells in the order of `names`. */
  push(cells: ReadonlyArray<Cell>) {
    this.begin()
    const names = this.names
    for (let k = 0; k < names.length; k++) this.setCell(k, cells[k])
    this.commit()
  }

  // -------------------------------------------------------------------------------------------------------------
  // writing one row cell by cell (the CSV loader's byte path): `begin`, a `set…` per column, then `commit` (the row
  // counts) or `rollback` (it does not: the next row overwrites its slots)

  /** Starts row `length`: grows the columns when full and marks the arena for a rollback. */
  begin() {
    if (this.length === this.capacity) {
      this.capacity *= 2
      for (const c of this.columns) c.grow(this.capacity)
    }
    this.mark = this.used
  }

  commit() {
    this.length++
  }

  /** Drops the row being written. */
  rollback() {
    this.used = this.mark
  }

  /** Whether column `k` of the row being written is NULL. */
  isNull(k: number): boolean {
    return this.columns[k]!.tags[this.length] === NULL
  }

  setNull(k: number) {
    this.columns[k]!.tags[this.length] = NULL
  }

  setNumber(k: number, v: number) {
    const col = this.columns[k]!
    col.tags[this.length] = NUMBER
    col.f64[this.length] = v
  }

  /** A BIGINT cell given as a safe integer (|v| <= 2^53): stored as int64 without making a bigint. */
  setInt64(k: number, v: number) {
    const col = this.columns[k]!
    const i = this.length
    col.tags[i] = INT64
    if (LITTLE_ENDIAN) {
      const hi = Math.floor(v / 4294967296)
      col.i32[2 * i] = (v - hi * 4294967296) | 0
      col.i32[2 * i + 1] = hi | 0
    } else {
      col.i64[i] = BigInt(v)
    }
  }

  setBool(k: number, v: boolean) {
    this.columns[k]!.tags[this.length] = v ? TRUE : FALSE
  }

  /** A string cell whose bytes `src[a..b)` are all ASCII. */
  setAsciiBytes(k: number, src: Uint8Array, a: number, b: number) {
    const col = this.columns[k]!
    const i = this.length
    const len = b - a
    col.tags[i] = ASCII
    this.reserve(len)
    const at = this.used
    const arena = this.arena
    if (len < 32) {
      for (let j = 0; j < len; j++) arena[at + j] = src[a + j]!
    } else {
      arena.set(src.subarray(a, b), at)
    }
    this.used = at + len
    col.i32[2 * i] = at
    col.i32[2 * i + 1] = len
  }

  /** Any cell, stored in its compact form when it has one. */
  setCell(k: number, v: Cell | undefined) {
    const col = this.columns[k]!
    const i = this.length
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
