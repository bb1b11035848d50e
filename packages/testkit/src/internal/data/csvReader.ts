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
   * Hand every record in one reused object and `fields` array (overwritten by the next record): for a caller that
   * reads each record before `onRecord` returns and keeps nothing of it, saving two allocations per row.
   */
  readonly reuseRecord?: boolean | undefined
}

export interface CsvRecord {
  /** Field texts, after enclose/escape removal (NULL is decided by the caller on `\N`). */
  readonly fields: ReadonlyArray<string>
  /** The raw row for the error log (v2: includes the row delimiter, quirk 7k); decoded on demand. */
  readonly raw: string
  /** Whether the raw row is valid UTF-8 (the CSV scanner's `validate_utf8` of the record). */
  readonly isUtf8: () => boolean
}

/** `buf.toString("utf8", a, b)` without the argument checks of `toString` (Buffer's own `utf8Slice`). */
const utf8 = (buf: Buffer, a: number, b: number): string =>
  (buf as unknown as { utf8Slice: (a: number, b: number) => string }).utf8Slice(a, b)

/** A record; the raw row is decoded only when asked for (error log). Mutable for `reuseRecord`. */
class CsvRow implements CsvRecord {
  constructor(
    public fields: Array<string>,
    readonly buf: Buffer,
    public start: number,
    public end: number
  ) {}
  get raw(): string {
    return this.buf.toString("utf8", this.start, this.end)
  }
  isUtf8(): boolean {
    return isUtf8(this.buf.subarray(this.start, this.end))
  }
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
  const shared = opts.reuseRecord === true ? new CsvRow([], buf, 0, 0) : undefined
  while (pos < n) {
    let end = indexOf(buf, rd, pos)
    const next = end < 0 ? n : end + rd.length
    if (end < 0) end = n
    if (end > pos) {
      const fields: Array<string> = shared !== undefined ? shared.fields : []
      let k = 0
      let fs = pos
      for (;;) {
        const at = cs.length === 1 ? buf.indexOf(cs[0]!, fs) : buf.indexOf(cs, fs)
        const fe = at < 0 || at >= end ? end : at
        if (opts.trimSpace) {
          const [a, b] = trimSpaces(buf, fs, fe)
          fields[k++] = utf8(buf, a, b)
        } else {
          fields[k++] = utf8(buf, fs, fe)
        }
        if (fe === end) break
        fs = fe + cs.length
        if (fs > end) break
      }
      if (fields.length !== k) fields.length = k
      if (shared !== undefined) {
        shared.start = pos
        shared.end = end
        onRecord(shared)
      } else {
        onRecord(new CsvRow(fields, buf, pos, end))
      }
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
    if (k < 24) {
      for (let i = a; i < b; i++) push(buf[i]!)
      return
    }
    if (len + k > scratch.length) {
      const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, len + k))
      scratch.copy(bigger, 0, 0, len)
      scratch = bigger
    }
    buf.copy(scratch, len, a, b)
    len += k
  }
  const rd0 = rd[0]!
  const cs0 = cs[0]!

  // 7e: a multi-byte row delimiter is recognised only when at least one more byte follows it
  const isRow = rd.length === 1
    ? (p: number) => buf[p] === rd[0]
    : (p: number) => p + rd.length < n && matchAt(buf, p, rd)
  const isCol = cs.length === 1 ? (p: number) => buf[p] === cs[0] : (p: number) => matchAt(buf, p, cs)

  const shared = opts.reuseRecord === true ? new CsvRow([], buf, 0, 0) : undefined
  let fields: Array<string> = shared !== undefined ? shared.fields : []
  /** Fields of the current record (the `fields` array may be a reused, longer one). */
  let nf = 0
  let state = START
  let enclosed = false
  let dropRest = false
  let justClosed = false
  let fieldRawStart = pos
  let lastColStart = pos
  let rowStart = pos

  const endField = () => {
    let l = len
    if (enclosed) l = Math.max(0, l - 1) // cut the (assumed) closing quote; 7g negative length → empty
    fields[nf++] = utf8(scratch, 0, l)
    lastColStart = fieldRawStart
    len = 0
    enclosed = false
    dropRest = false
    justClosed = false
    state = START
  }
  const endRow = (rawEnd: number) => {
    const rs = rowStart
    if (fields.length !== nf) fields.length = nf
    if (shared !== undefined) {
      shared.start = rs
      shared.end = rawEnd
      onRecord(shared)
    } else {
      onRecord(new CsvRow(fields, buf, rs, rawEnd))
      fields = []
    }
    nf = 0
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
    fields[nf++] = buf.toString("utf8", lastColStart, n)
    endRow(n)
    return
  }
  endField()
  endRow(n)
}
