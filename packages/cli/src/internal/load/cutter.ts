/**
 * Cuts a byte stream into batches at row-delimiter boundaries without parsing rows: a batch is at most `maxBytes`
 * long unless one row alone is longer (then that row is a batch of its own), a row is never split, and a final row
 * without a delimiter ends the last batch. The cut points depend only on the bytes, `maxBytes`, the delimiter and
 * the start offset, never on how the input was chunked: the same file cut again gives the same batches at the same
 * offsets (which is what makes the loader's labels deterministic).
 *
 * @internal
 */
import { countByte } from "./count.js"

/** One batch: the bytes `[offset, end)` of the (decompressed) input, as slices of the chunks read. */
export interface Piece {
  readonly offset: number
  readonly end: number
  readonly chunks: ReadonlyArray<Uint8Array>
  readonly byteLength: number
  /** Row delimiters in the batch, plus one for a final row without a delimiter. */
  readonly rows: number
}

export interface Cutter {
  /** Adds the next chunk of input; returns the batches it completes. */
  readonly push: (chunk: Uint8Array) => ReadonlyArray<Piece>
  /** The end of input: the rest as the last batch (none when nothing is left). */
  readonly finish: () => ReadonlyArray<Piece>
}

export const make = (options: {
  readonly maxBytes: number
  readonly delimiter: Uint8Array
  /** Offset of the first byte pushed (a resumed file starts at the checkpoint's offset). */
  readonly start?: number | undefined
}): Cutter => {
  const { delimiter, maxBytes } = options
  const d = delimiter.length
  if (d === 0) throw new RangeError("the row delimiter is empty")
  const single = d === 1 ? delimiter[0]! : -1
  const needle = Buffer.from(delimiter)

  let pending: Array<Uint8Array> = []
  let pendingBytes = 0
  /** Absolute offset of the first pending byte (the start of the batch being filled). */
  let batchStart = options.start ?? 0
  /** Absolute end of the last delimiter seen (-1: none yet). */
  let lastEnd = -1
  /** Delimiters in `(batchStart, lastEnd]`. */
  let rowsToLastEnd = 0
  /** Multi-byte delimiters: the last `d - 1` bytes seen, and where the next match may start (no overlaps). */
  let tail: Buffer = Buffer.alloc(0)
  let scanFrom = batchStart

  const take = (n: number): Array<Uint8Array> => {
    const out: Array<Uint8Array> = []
    let left = n
    while (left > 0) {
      const c = pending[0]!
      if (c.byteLength <= left) {
        out.push(c)
        pending.shift()
        left -= c.byteLength
      } else {
        out.push(c.subarray(0, left))
        pending[0] = c.subarray(left)
        left = 0
      }
    }
    pendingBytes -= n
    return out
  }

  const emit = (end: number, rows: number, out: Array<Piece>): void => {
    const byteLength = end - batchStart
    out.push({ offset: batchStart, end, chunks: take(byteLength), byteLength, rows })
    batchStart = end
  }

  const onDelimiter = (e: number, out: Array<Piece>): void => {
    if (e - batchStart > maxBytes) {
      if (lastEnd > batchStart) {
        emit(lastEnd, rowsToLastEnd, out)
        rowsToLastEnd = 0
      }
      if (e - batchStart > maxBytes) {
        // one row longer than maxBytes: a batch of its own
        emit(e, 1, out)
        lastEnd = e
        rowsToLastEnd = 0
        return
      }
    }
    lastEnd = e
    rowsToLastEnd++
  }

  /**
   * A one-byte delimiter, without a call per row: the delimiters of each stretch up to the current batch's limit
   * (`batchStart + maxBytes`) are counted at once (count.ts) and only the last one is looked up. Past the limit,
   * the cut waits for the first delimiter beyond it (as `onDelimiter` does: the input may end before it, and then
   * the rest is one last batch), then cuts at the last delimiter within the limit, or after the long row when there
   * is none.
   */
  const pushSingle = (buf: Buffer, chunkStart: number, out: Array<Piece>): void => {
    const chunkEnd = chunkStart + buf.byteLength
    let pos = chunkStart
    while (pos < chunkEnd) {
      const limit = batchStart + maxBytes
      if (pos < limit) {
        const stop = Math.min(chunkEnd, limit)
        const region = buf.subarray(pos - chunkStart, stop - chunkStart)
        const n = countByte(region, single)
        if (n > 0) {
          rowsToLastEnd += n
          lastEnd = pos + region.lastIndexOf(single) + 1
        }
        pos = stop
        continue
      }
      // past the limit: the first delimiter at or after it
      const i = buf.indexOf(single, pos - chunkStart)
      if (i < 0) return
      const e = chunkStart + i + 1
      if (lastEnd > batchStart) {
        // no delimiter in [lastEnd, e - 1): the next batch starts with the row ending at e
        emit(lastEnd, rowsToLastEnd, out)
        rowsToLastEnd = 0
        pos = e - 1
      } else {
        emit(e, 1, out)
        lastEnd = e
        rowsToLastEnd = 0
        pos = e
      }
    }
  }

  const push = (chunk: Uint8Array): ReadonlyArray<Piece> => {
    if (chunk.byteLength === 0) return []
    const out: Array<Piece> = []
    const chunkStart = batchStart + pendingBytes
    pending.push(chunk)
    pendingBytes += chunk.byteLength
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (single >= 0) {
      pushSingle(buf, chunkStart, out)
      return out
    }
    const window = tail.length === 0 ? buf : Buffer.concat([tail, buf])
    const windowStart = chunkStart - tail.length
    let i = window.indexOf(needle, Math.max(0, scanFrom - windowStart))
    while (i >= 0) {
      onDelimiter(windowStart + i + d, out)
      scanFrom = windowStart + i + d
      i = window.indexOf(needle, i + d)
    }
    tail = Buffer.from(window.subarray(Math.max(0, window.length - (d - 1))))
    return out
  }

  const finish = (): ReadonlyArray<Piece> => {
    if (pendingBytes === 0) return []
    const end = batchStart + pendingBytes
    const rows = rowsToLastEnd + (end > Math.max(lastEnd, batchStart) ? 1 : 0)
    const out: Array<Piece> = []
    emit(end, rows, out)
    pending = []
    return out
  }

  return { push, finish }
}
