/**
 * The BE CSV reader (docs/protocol.md §9), on bytes:
 * - v1 (`readCsvV1`): neither `enclose` nor `escape` set: split by the row delimiter, then by the column separator.
 * - v2 (`readCsvV2`): the released (post-#37381) state machine, quirks included (docs/protocol.md §9.2, §9.3, §9.5, §9.7 a–h, k).
 *
 * @internal
 */
import { isUtf8 } from "node:buffer"

export interface CsvOptions {
  readonly columnSeparator: Uint8Array
  readonly rowDelimiter: Uint8Array
  /** The enclose byte, 0 when unset (v2 compares against 0: quirk 7h). */
  readonly enclose: number
  /** The escape byte, 0 when unset. */
  readonly escape: number
  /** Whether v2 is used (enclose or escape header set). */
  readonly v2: boolean
  readonly trimSpace: boolean
  readonly skipHeader: number
  /**
   * Emulate the pre-#37381 START look-ahead (3.0.x, 3.1.x, 3.2.0–3.2.2): `""` followed by a delimiter is an empty
   * field, `""` followed by anything else starts an unenclosed field whose first byte is a literal quote.
   */
  readonly legacyStartLookahead?: boolean | undefined
  /**
   * Hand every record in one reused object (a `CsvByteRecord`, overwritten by the next record) whose field texts
   * are decoded only when `fields` is read: for a caller that reads each record before `onRecord` returns and keeps
   * nothing of it.
   */
  readonly reuseRecord?: boolean | undefined
  /**
   * v2: walk every byte through the states, without the one-step paths for plain fields (the reference the tests
   * compare those paths with).
   */
  readonly stepwise?: boolean | undefined
}

export interface CsvRecord {
  /** Field texts, after enclose/escape removal (NULL is decided by the caller on `\N`). */
  readonly fields: ReadonlyArray<string>
  /** The raw row for the error log (v2: includes the row delimiter, quirk 7k); decoded on demand. */
  readonly raw: string
  /** Whether the raw row is valid UTF-8 (the CSV scanner's `validate_utf8` of the record). */
  readonly isUtf8: () => boolean
}

/**
 * A record with its fields as byte ranges (what `reuseRecord` hands): field `k` is `fieldBuf[fieldStart[k] ..
 * fieldEnd[k])`, valid until `onRecord` returns. `fields` decodes them on demand.
 */
export interface CsvByteRecord extends CsvRecord {
  readonly count: number
  readonly fieldBuf: Buffer
  readonly fieldStart: Int32Array
  readonly fieldEnd: Int32Array
}

/** `buf.toString("utf8", a, b)` without the argument checks of `toString` (Buffer's own `utf8Slice`). */
const utf8 = (buf: Buffer, a: number, b: number): string =>
  (buf as unknown as { utf8Slice: (a: number, b: number) => string }).utf8Slice(a, b)

/**
 * A record; the raw row is decoded only when asked for (error log), the field texts only when `fields` is read.
 * Mutable: one object serves every record of a body (`reuseRecord`), else each record is frozen with its texts.
 */
class CsvRow implements CsvByteRecord {
  count = 0
  fieldBuf: Buffer
  fieldStart = new Int32Array(16)
  fieldEnd = new Int32Array(16)
  /** The decoded texts of the current record (undefined until asked for). */
  texts: Array<string> | undefined
  /** The array `fields` reuses from record to record. */
  private readonly reused: Array<string> = []
  constructor(readonly buf: Buffer, public start: number, public end: number) {
    this.fieldBuf = buf
  }
  get fields(): ReadonlyArray<string> {
    if (this.texts !== undefined) return this.texts
    const out = this.reused
    const fb = this.fieldBuf
    for (let k = 0; k < this.count; k++) out[k] = utf8(fb, this.fieldStart[k]!, this.fieldEnd[k]!)
    if (out.length !== this.count) out.length = this.count
    return (this.texts = out)
  }
  /** Records field `k` as `[a, b)` of `fieldBuf`. */
  add(k: number, a: number, b: number) {
    if (k === this.fieldStart.length) {
      const s = new Int32Array(k * 2)
      s.set(this.fieldStart)
      const e = new Int32Array(k * 2)
      e.set(this.fieldEnd)
      this.fieldStart = s
      this.fieldEnd = e
    }
    this.fieldStart[k] = a
    this.fieldEnd[k] = b
  }
  get raw(): string {
    return this.buf.toString("utf8", this.start, this.end)
  }
  isUtf8(): boolean {
    return isUtf8(this.buf.subarray(this.start, this.end))
  }
}

/** A record that keeps its field texts (for callers that keep records). */
class FrozenRow implements CsvRecord {
  constructor(
    readonly fields: ReadonlyArray<string>,
    readonly buf: Buffer,
    readonly start: number,
    readonly end: number
  ) {}
  get raw(): string {
    return this.buf.toString("utf8", this.start, this.end)
  }
  isUtf8(): boolean {
    return isUtf8(this.buf.subarray(this.start, this.end))
  }
}

/** Hands the record in `row` to `onRecord`: as it is (reuse), or frozen with its texts. */
const emit = (row: CsvRow, reuse: boolean, onRecord: (r: CsvRecord) => void) => {
  row.texts = undefined
  if (reuse) onRecord(row)
  else onRecord(new FrozenRow([...row.fields], row.buf, row.start, row.end))
}

const matchAt = (buf: Uint8Array, pos: number, pat: Uint8Array): boolean => {
  if (pos + pat.length > buf.length) return false
  for (let i = 0; i < pat.length; i++) if (buf[pos + i] !== pat[i]) return false
  return true
}

const indexOf = (buf: Buffer, pat: Uint8Array, from: number): number =>
  pat.length === 1 ? buf.indexOf(pat[0]!, from) : buf.indexOf(pat, from)

/** Start offset after skipping `n` lines by the raw row delimiter (undefined when there are fewer lines). */
const skipLines = (buf: Buffer, delim: Uint8Array, n: number): number | undefined => {
  let pos = 0
  for (let i = 0; i < n; i++) {
    const at = indexOf(buf, delim, pos)
    if (at < 0) return undefined
    pos = at + delim.length
  }
  return pos
}

const trimSpaces = (buf: Buffer, start: number, end: number): [number, number] => {
  while (start < end && buf[start] === 0x20) start++
  while (end > start && buf[end - 1] === 0x20) end--
  return [start, end]
}

/** v1: split by the row delimiter (blank lines skipped), then by the column separator; trim_space trims `' '`. */
export const readCsvV1 = (buf: Buffer, opts: CsvOptions, onRecord: (r: CsvRecord) => void): void => {
  const rd = opts.rowDelimiter
  const cs = opts.columnSeparator
  let pos = opts.skipHeader > 0 ? skipLines(buf, rd, opts.skipHeader) : 0
  if (pos === undefined) return
  const n = buf.length
  const row = new CsvRow(buf, 0, 0)
  const reuse = opts.reuseRecord === true
  while (pos < n) {
    let end = indexOf(buf, rd, pos)
    const next = end < 0 ? n : end + rd.length
    if (end < 0) end = n
    if (end > pos) {
      let k = 0
      let fs = pos
      for (;;) {
        const at = cs.length === 1 ? buf.indexOf(cs[0]!, fs) : buf.indexOf(cs, fs)
        const fe = at < 0 || at >= end ? end : at
        if (opts.trimSpace) {
          const [a, b] = trimSpaces(buf, fs, fe)
          row.add(k++, a, b)
        } else {
          row.add(k++, fs, fe)
        }
        if (fe === end) break
        fs = fe + cs.length
        if (fs > end) break
      }
      row.count = k
      row.start = pos
      row.end = end
      emit(row, reuse, onRecord)
    }
    pos = next
  }
}

const START = 0
const ORDINARY = 1
const ENCLOSE = 2

/**
 * v2: the released state machine. Bytes of the current field are collected into a scratch buffer (escapes and
 * `""` pairs removed); an enclosed field keeps its closing quote and everything after it up to the delimiter, and
 * one byte is cut at the end (docs/protocol.md §9.2 item 3, §9.7 c).
 */
export const readCsvV2 = (buf: Buffer, opts: CsvOptions, onRecord: (r: CsvRecord) => void): void => {
  const rd = opts.rowDelimiter
  const cs = opts.columnSeparator
  const Q = opts.enclose
  const E = opts.escape
  const trim = opts.trimSpace
  const n = buf.length
  const startPos = opts.skipHeader > 0 ? skipLines(buf, rd, opts.skipHeader) : 0
  if (startPos === undefined) return
  let pos: number = startPos

  let scratch = Buffer.allocUnsafe(256)
  let len = 0
  const push = (b: number) => {
    if (len === scratch.length) {
      const bigger = Buffer.allocUnsafe(scratch.length * 2)
      scratch.copy(bigger, 0, 0, len)
      scratch = bigger
    }
    scratch[len++] = b
  }
  const pushRange = (a: number, b: number) => {
    const k = b - a
    if (len + k > scratch.length) {
      const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, len + k))
      scratch.copy(bigger, 0, 0, len)
      scratch = bigger
    }
    if (k < 24) {
      const sc = scratch
      for (let i = a; i < b; i++) sc[len++] = buf[i]!
      return
    }
    buf.copy(scratch, len, a, b)
    len += k
  }
  const rd0 = rd[0]!
  const cs0 = cs[0]!
  /** Whether the one-step field paths apply: one-byte delimiters that are neither the enclose nor the escape byte. */
  const plain = rd.length === 1 && cs.length === 1 && opts.legacyStartLookahead !== true && opts.stepwise !== true &&
    rd0 !== Q && rd0 !== E && cs0 !== Q && cs0 !== E

  // 7e: a multi-byte row delimiter is recognised only when at least one more byte follows it
  const isRow = rd.length === 1
    ? (p: number) => buf[p] === rd[0]
    : (p: number) => p + rd.length < n && matchAt(buf, p, rd)
  const isCol = cs.length === 1 ? (p: number) => buf[p] === cs[0] : (p: number) => matchAt(buf, p, cs)

  // the fields of a record are collected one after the other in `scratch`; `row` records their ranges
  const row = new CsvRow(buf, 0, 0)
  const reuse = opts.reuseRecord === true
  /** Fields of the current record. */
  let nf = 0
  /** Where the current field's bytes begin in `scratch`. */
  let fieldStart = 0
  let state = START
  let enclosed = false
  let dropRest = false
  let justClosed = false
  let fieldRawStart = pos
  let lastColStart = pos
  let rowStart = pos

  const endField = () => {
    let l = len
    if (enclosed) l = Math.max(fieldStart, l - 1) // cut the (assumed) closing quote; 7g negative length → empty
    row.add(nf++, fieldStart, l)
    fieldStart = len
    lastColStart = fieldRawStart
    enclosed = false
    dropRest = false
    justClosed = false
    state = START
  }
  const endRow = (rawEnd: number) => {
    row.count = nf
    row.fieldBuf = scratch
    row.start = rowStart
    row.end = rawEnd
    emit(row, reuse, onRecord)
    nf = 0
    len = 0
    fieldStart = 0
  }

  /** Handles an escape byte at `p`; returns the next position. */
  const escapeAt = (p: number): number => {
    const q = p + 1
    if (q >= n) return q // an escape as the last byte is dropped
    const c = buf[q]!
    if (c === E || c === Q) {
      push(c)
      if (state === START) state = ORDINARY
      return q + 1
    }
    if (isRow(q)) {
      pushRange(q, q + rd.length)
      if (state === START) state = ORDINARY
      return q + rd.length
    }
    if (isCol(q)) {
      pushRange(q, q + cs.length)
      if (state === START) state = ORDINARY
      return q + cs.length
    }
    // escape + ordinary byte: the byte as data, the state falls through to ORDINARY (#43613 inside an enclosure)
    push(c)
    state = ORDINARY
    return q + 1
  }

  while (pos < n) {
    const c = buf[pos]!
    if (state === START) {
      if (trim && c === 0x20) {
        pos++
        continue
      }
      if (isRow(pos)) {
        if (nf === 0) {
          // blank line (or only spaces with trim_space): skipped
          pos += rd.length
          rowStart = pos
          continue
        }
        fieldRawStart = pos
        endField()
        pos += rd.length
        endRow(pos)
        rowStart = pos
        continue
      }
      if (isCol(pos)) {
        fieldRawStart = pos
        endField()
        pos += cs.length
        continue
      }
      fieldRawStart = pos
      if (c === E) {
        pos = escapeAt(pos)
        continue
      }
      if (plain) {
        // a whole field in one step when it is `"text"` or `text` (no escape, no enclose byte inside) followed by a
        // delimiter: what the states below collect for it, without walking them byte by byte
        let j: number
        let b = -1
        if (c === Q) {
          j = pos + 1
          while (j < n) {
            b = buf[j]!
            if (b === Q || b === E) break
            j++
          }
          if (b === Q && j + 1 < n) {
            const d = buf[j + 1]!
            if (d === cs0 || d === rd0) {
              fieldRawStart = pos + 1
              pushRange(pos + 1, j)
              endField()
              pos = j + 2
              if (d === rd0) {
                endRow(pos)
                rowStart = pos
              }
              continue
            }
          }
        } else {
          j = pos + 1
          while (j < n) {
            b = buf[j]!
            if (b === rd0 || b === cs0 || b === E || b === Q) break
            j++
          }
          if (j < n && (b === cs0 || b === rd0)) {
            pushRange(pos, j)
            endField()
            pos = j + 1
            if (b === rd0) {
              endRow(pos)
              rowStart = pos
            }
            continue
          }
        }
      }
      if (c === Q) {
        if (opts.legacyStartLookahead && pos + 1 < n && buf[pos + 1] === Q) {
          // pre-#37381: `""` + delimiter = empty field; `""` + anything else = unenclosed field starting with `"`
          const after = pos + 2
          if (after >= n || isRow(after) || isCol(after)) {
            pos = after
            state = ORDINARY
            continue
          }
          push(Q)
          pos = after
          state = ORDINARY
          continue
        }
        enclosed = true
        state = ENCLOSE
        fieldRawStart = pos + 1
        pos++
        continue
      }
      push(c)
      state = ORDINARY
      pos++
      continue
    }
    if (state === ORDINARY) {
      if (!justClosed && !dropRest) {
        // bulk: the run of bytes that are data whatever follows them
        let j = pos
        while (j < n) {
          const b = buf[j]!
          if (b === rd0 || b === cs0 || b === E || b === Q) break
          j++
        }
        if (j > pos) {
          pushRange(pos, j)
          pos = j
          continue
        }
      }
      if (isRow(pos)) {
        endField()
        pos += rd.length
        endRow(pos)
        rowStart = pos
        continue
      }
      if (isCol(pos)) {
        endField()
        pos += cs.length
        continue
      }
      if (justClosed) {
        justClosed = false
        if (trim && c === 0x20) dropRest = true
      }
      if (dropRest) {
        pos++
        continue
      }
      if (c === E) {
        pos = escapeAt(pos)
        continue
      }
      if (c === Q) {
        // 7b: the enclose byte is dropped and the next byte is data, whatever it is
        if (pos + 1 < n) push(buf[pos + 1]!)
        pos += 2
        continue
      }
      push(c)
      pos++
      continue
    }
    // ENCLOSE: delimiters are data
    if (c !== E && c !== Q) {
      let j = pos + 1
      while (j < n) {
        const b = buf[j]!
        if (b === E || b === Q) break
        j++
      }
      pushRange(pos, j)
      pos = j
      continue
    }
    if (c === E) {
      pos = escapeAt(pos)
      continue
    }
    if (c === Q) {
      if (pos + 1 < n && buf[pos + 1] === Q) {
        push(Q)
        pos += 2
        continue
      }
      push(Q) // the closing quote is collected and cut at the delimiter (7c)
      state = ORDINARY
      justClosed = true
      pos++
      continue
    }
    push(c)
    pos++
  }
  // end of input: the reader appends a row delimiter
  if (state === START) {
    if (nf === 0) return
    // 7f: a body ending right after a column separator: the last column reuses the previous column's start
    pushRange(lastColStart, n)
    row.add(nf++, fieldStart, len)
    endRow(n)
    return
  }
  endField()
  endRow(n)
}
