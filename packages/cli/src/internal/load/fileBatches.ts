/**
 * The batches of a regular, uncompressed file with a one-byte row delimiter, read straight into a few reused
 * buffers: a batch is one read of `maxBytes` (and a little more, to see the next delimiter) at its offset, cut at
 * the last delimiter, its rows counted where they lie (count.ts) while it is sent; the bytes after the cut are read
 * again as the start of the next batch. Nothing is copied, nothing is allocated per batch, and the memory is the
 * pool's buffers whatever the file size (on a virtual machine, touching fresh memory costs more than reading the
 * file).
 * The cuts are the cutter's (cutter.ts), which also cuts what this path leaves to it: a row longer than the
 * look-ahead at the batch's end, or a file that grew while read.
 *
 * @internal
 */
import { Effect, Option, Queue, Stream } from "effect"
import * as fs from "node:fs"
import * as Count from "./count.js"
import * as Cutter from "./cutter.js"

/** Bytes read past `maxBytes` to find the first delimiter after the limit (re-read by the next batch). */
export const LOOK_AHEAD = 256 * 1024

/** Reused buffers of `size` bytes (`maxBytes + LOOK_AHEAD`, or less for small files). */
export interface Pool {
  readonly take: Effect.Effect<Buffer>
  readonly give: (buffer: Buffer) => void
  readonly count: (buffer: Buffer, length: number, byte: number) => number
  readonly size: number
}

export const makePool = (n: number, size: number): Effect.Effect<Pool> =>
  Effect.gen(function*() {
    const arena = Count.arena(n, size)
    const free = yield* Queue.unbounded<Buffer>()
    yield* Queue.offerAll(free, arena.buffers)
    return {
      take: Queue.take(free),
      give: (buffer) => void Queue.unsafeOffer(free, buffer),
      count: arena.count,
      size
    }
  })

/**
 * One batch; `release` gives its buffer back once it is sent (a batch cut by the cutter has none). Its rows are
 * counted by `rows`, which the loader runs while the batch is being sent (the first count of a buffer touches its
 * memory for the first time); `piece.rows` is 0 until then.
 */
export interface Batch {
  readonly piece: Cutter.Piece
  readonly release: () => void
  readonly rows: Effect.Effect<number>
}

const noop = () => {}

/** Bytes counted between two yields to the event loop (which keeps the sockets of the loads in flight busy). */
const COUNT_SLICE = 8 * 1024 * 1024

/** The delimiters in `buffer[0, length)`, a slice at a time. */
const countSliced = (pool: Pool, buffer: Buffer, length: number, byte: number): Effect.Effect<number> =>
  Effect.gen(function*() {
    let n = 0
    for (let at = 0; at < length; at += COUNT_SLICE) {
      if (at > 0) yield* Effect.yieldNow()
      n += pool.count(buffer.subarray(at), Math.min(COUNT_SLICE, length - at), byte)
    }
    return n
  })

/** Reads into `buffer[0, length)` from `position` until it is full or the file ends: the bytes read. */
const readFull = (fd: number, buffer: Buffer, length: number, position: number): Effect.Effect<number, unknown> =>
  Effect.async<number, unknown>((resume) => {
    let n = 0
    const step = () =>
      fs.read(fd, buffer, n, length - n, position + n, (error, got) => {
        if (error !== null) return resume(Effect.fail(error))
        n += got
        if (got === 0 || n === length) return resume(Effect.succeed(n))
        step()
      })
    step()
  })

/** The cutter's first batch from `position` on (fresh chunks), or none at the end of the file. */
const cutOne = (
  fd: number,
  position: number,
  maxBytes: number,
  byte: number
): Effect.Effect<Cutter.Piece | undefined, unknown> =>
  Effect.gen(function*() {
    const cutter = Cutter.make({ maxBytes, delimiter: Uint8Array.of(byte), start: position })
    let at = position
    for (;;) {
      const chunk = Buffer.allocUnsafe(1024 * 1024)
      const n = yield* readFull(fd, chunk, chunk.length, at)
      if (n === 0) return cutter.finish()[0]
      at += n
      const pieces = cutter.push(chunk.subarray(0, n))
      if (pieces.length > 0) return pieces[0]
    }
  })

/**
 * The batches of the open file `fd` from `start` (a row boundary) on. Reads fail with what `onError` makes of the
 * error.
 */
export const batches = <E>(options: {
  readonly fd: number
  readonly start: number
  readonly maxBytes: number
  readonly delimiter: number
  readonly pool: Pool
  readonly onError: (error: unknown) => E
}): Stream.Stream<Batch, E> => {
  const { delimiter, fd, maxBytes, pool } = options
  const want = maxBytes + LOOK_AHEAD
  const next = (position: number): Effect.Effect<Option.Option<readonly [Batch, number]>, unknown> =>
    Effect.gen(function*() {
      const buffer = yield* pool.take
      const length = Math.min(want, pool.size)
      const n = yield* readFull(fd, buffer, length, position).pipe(
        Effect.tapError(() => Effect.sync(() => pool.give(buffer)))
      )
      /** A batch of the first `byteLength` bytes: its delimiters counted (or not, for a long row), plus `extra`. */
      const batch = (byteLength: number, counted: boolean, extra: number) => {
        const piece: Cutter.Piece = {
          offset: position,
          end: position + byteLength,
          chunks: [buffer.subarray(0, byteLength)],
          byteLength,
          rows: 0
        }
        const rows = counted
          ? Effect.map(countSliced(pool, buffer, byteLength, delimiter), (n) => n + extra)
          : Effect.succeed(extra)
        return Option.some([{ piece, release: () => pool.give(buffer), rows }, piece.end] as const)
      }
      const ended = n < length
      if (n === 0) {
        pool.give(buffer)
        return Option.none()
      }
      if (ended && n <= maxBytes) {
        // the rest of the file is the last batch
        return batch(n, true, buffer[n - 1] !== delimiter ? 1 : 0)
      }
      if (n > maxBytes) {
        const first = buffer.indexOf(delimiter, maxBytes)
        if (first >= 0 && first < n) {
          const lastEnd = buffer.lastIndexOf(delimiter, maxBytes - 1) + 1
          // the rows that fit, else the long row alone
          return lastEnd > 0 ? batch(lastEnd, true, 0) : batch(first + 1, false, 1)
        }
        if (ended) {
          // no delimiter after the limit before the end: the rest is one last batch (as the cutter sends it)
          return batch(n, true, buffer[n - 1] !== delimiter ? 1 : 0)
        }
      }
      // a row running past the look-ahead, or a file longer than it was: the cutter decides
      pool.give(buffer)
      const piece = yield* cutOne(fd, position, maxBytes, delimiter)
      return piece === undefined
        ? Option.none()
        : Option.some([{ piece, release: noop, rows: Effect.succeed(piece.rows) }, piece.end] as const)
    })
  return Stream.unfoldEffect(options.start, (position) => Effect.mapError(next(position), options.onError))
}
