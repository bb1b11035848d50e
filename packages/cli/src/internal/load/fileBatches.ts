/**
 * The batches of a regular, uncompressed file with a one-byte row delimiter, read straight into a few reused
 * buffers: a batch is one read of `maxBytes` (and a little more, to see the next delimiter) at its offset, cut at
 * the last delimiter, its rows counted where they lie (count.ts) when the loader asks (a batch found already
 * loaded: a landed one's rows are StarRocks' count, run.ts); the bytes after the cut are read again as the start of
 * the next batch. Nothing is copied, nothing is allocated per batch, and the memory is the
 * pool's buffers whatever the file size (on a virtual machine, touching fresh memory costs more than reading the
 * file).
 * The cuts are the cutter's (cutter.ts), which also cuts what this path leaves to it: a row longer than the
 * look-ahead at the batch's end, or a file that grew while read.
 *
 * @internal
 */
import type * as LoadBody from "@effect-starrocks/sink/LoadBody"
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
 * counted by `rows`, which the loader runs for a batch found already loaded, before it gives the buffer back;
 * `piece.rows` is 0 until then.
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

/** Reads into `buffer[0, length)` from `position` with `readSync` until it is full or the file ends: the bytes read. */
const readFullSync = (fd: number, buffer: Buffer, length: number, position: number): number => {
  let n = 0
  for (;;) {
    const got = fs.readSync(fd, buffer, n, length - n, position + n)
    n += got
    if (got === 0 || n === length) return n
  }
}

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

// -----------------------------------------------------------------------------
// streamed batches
// -----------------------------------------------------------------------------

/** Bytes read before the limit to find the last delimiter within it (a row longer than this: the cutter decides). */
export const LOOK_BEHIND = 64 * 1024

/** One streamed batch: a byte range of the file, read from it as it is sent (`LoadBody.fromFile`'s kind). */
export interface RangeBatch {
  readonly piece: Cutter.Piece
  readonly body: LoadBody.LoadBody
  /**
   * The rows of the batch, counted by reading the range once more: what the loader asks of a batch whose label was
   * found already loaded (its reply carries no row counts; a load that landed has StarRocks' own, run.ts).
   */
  readonly rows: Effect.Effect<number, unknown>
  /**
   * Calls `f` once a send has read `bytes` of the body (at once when it has already), at most once: what the loader
   * waits for before it starts the next load (Load.ts, "the loads' phases").
   */
  readonly onRead: (bytes: number, f: () => void) => void
}

/** `rows` of a range `[start, end)`: its delimiters, plus one for a final row without one. */
const rowsOf = (delimiters: number, lastByte: number, byte: number) => delimiters + (lastByte !== byte ? 1 : 0)

/** The rows of `[start, end)` of the file at `path`, read in 1 MiB slices, the event loop served between them. */
const countRange = (path: string, start: number, end: number, byte: number): Effect.Effect<number, unknown> =>
  Effect.acquireUseRelease(
    Effect.async<number, unknown>((resume) =>
      fs.open(path, "r", (e, fd) => resume(e === null ? Effect.succeed(fd) : Effect.fail(e)))
    ),
    (fd) =>
      Effect.gen(function*() {
        const buffer = Buffer.allocUnsafe(Math.min(1024 * 1024, end - start))
        let n = 0
        let last = -1
        for (let at = start; at < end;) {
          const got = yield* readFull(fd, buffer, Math.min(buffer.length, end - at), at)
          if (got === 0) return yield* Effect.fail(new Error(`the file ended at ${at}, before ${end}: it changed`))
          n += Count.countByte(buffer.subarray(0, got), byte)
          last = buffer[got - 1]!
          at += got
          yield* Effect.yieldNow()
        }
        return rowsOf(n, last, byte)
      }),
    (fd) => Effect.sync(() => fs.closeSync(fd))
  )

/** Up to this many bytes, a streamed body is read into the client's buffers, not `Slices`. */
const SMALL_BODY = 64 * 1024

/** Bytes of one of the buffers a send of a streamed batch reads the file into (`Slices`). */
export const SLICE = 1024 * 1024

/**
 * The buffers the sends of streamed batches read the file into (`LoadBody.Slices`): up to `n` of `SLICE` bytes
 * kept for the next sends (made as they are first taken; a send that failed keeps its own, and its fresh ones are
 * left to the collector once `n` are kept).
 */
export type Slices = LoadBody.Slices

export const makeSlices = (n: number): Slices => {
  const free: Array<Uint8Array> = []
  return {
    take: () => free.pop() ?? Buffer.allocUnsafeSlow(SLICE),
    give: (slice) => {
      if (slice.byteLength === SLICE && free.length < n) free.push(slice)
    }
  }
}

/**
 * A streamed body of `[start, end)` of the file at `path`. A reading reads the file synchronously, as `curl -T`
 * does: a read from the page cache is a copy, which a thread-pool round trip (`fs.read`) costs more CPU time than,
 * and the loader's event loop has nothing else to serve meanwhile than the sockets these reads feed. The rows are
 * not counted as it is read (a load that landed has StarRocks' count, run.ts): `rows` reads the range once more.
 */
const rangeBody = (path: string, start: number, end: number, byte: number, slices: Slices) => {
  const byteLength = end - start
  /** The most bytes a reading has read so far, and who waits for a number of them (`onRead`). */
  let most = 0
  let waiter: { readonly bytes: number; readonly f: () => void } | undefined
  const onRead = (bytes: number, f: () => void) => {
    if (most >= bytes) return f()
    waiter = { bytes, f }
  }
  const body: LoadBody.LoadBody = {
    chunks: [],
    byteLength,
    source: {
      // a small body in a buffer of its size (the client's)
      ...(byteLength > SMALL_BODY ? { slices } : {}),
      open: () => {
        let fd: number | undefined
        let position = start
        let seen = 0
        return {
          read: (buffer, callback) => {
            let got: number
            try {
              if (fd === undefined) fd = fs.openSync(path, "r")
              got = fs.readSync(fd, buffer, 0, buffer.byteLength, position)
            } catch (error) {
              return callback(error as Error, 0)
            }
            if (got > 0) {
              position += got
              seen += got
              if (seen > most) {
                most = seen
                if (waiter !== undefined && most >= waiter.bytes) {
                  const f = waiter.f
                  waiter = undefined
                  f()
                }
              }
            }
            callback(null, got)
          },
          close: () => {
            if (fd !== undefined) fs.closeSync(fd)
            fd = undefined
          }
        }
      }
    }
  }
  return { body, rows: countRange(path, start, end, byte), onRead }
}

/**
 * The batches of the regular file at `path` (open as `fd`) from `start` (a row boundary) on, as byte ranges of the
 * file: the cut points are the cutter's (the last delimiter within `maxBytes`, found by reading a little before and
 * after the limit; the rest of the file as the last batch), so labels and checkpoints are those of the other paths.
 * A row too long to see both sides of the limit in the window read there is cut by the cutter (a batch in memory).
 */
export const ranges = <E>(options: {
  readonly fd: number
  readonly path: string
  readonly start: number
  readonly maxBytes: number
  readonly delimiter: number
  readonly slices: Slices
  readonly onError: (error: unknown) => E
}): Stream.Stream<RangeBatch, E> => {
  const { delimiter, fd, maxBytes, path, slices } = options
  const behind = Math.min(LOOK_BEHIND, maxBytes)
  const window = Buffer.allocUnsafe(behind + LOOK_AHEAD)
  const range = (start: number, end: number): Option.Option<readonly [RangeBatch, number]> => {
    const { body, onRead, rows } = rangeBody(path, start, end, delimiter, slices)
    return Option.some([
      { piece: { offset: start, end, chunks: [], byteLength: end - start, rows: 0 }, body, rows, onRead },
      end
    ])
  }
  const next = (position: number): Effect.Effect<Option.Option<readonly [RangeBatch, number]>, unknown> =>
    Effect.gen(function*() {
      // synchronous, as the sends read the ranges: a regular file's size and a window of it from the page cache
      // cost microseconds, a thread-pool round trip (`fs.fstat`, `fs.read`) more (and the pool's start, four
      // threads, at the first one)
      const size = yield* Effect.try(() => fs.fstatSync(fd).size)
      if (size <= position) return Option.none()
      // the rest of the file is the last batch
      if (size - position <= maxBytes) return range(position, size)
      // the window [limit - behind, limit + LOOK_AHEAD) around the limit
      const from = position + maxBytes - behind
      const n = yield* Effect.try(() => readFullSync(fd, window, Math.min(window.length, size - from), from))
      const first = window.subarray(0, n).indexOf(delimiter, behind)
      if (first >= 0) {
        const lastEnd = window.lastIndexOf(delimiter, behind - 1) + 1
        if (lastEnd > 0) return range(position, from + lastEnd)
        if (behind === maxBytes) {
          // no delimiter before the limit at all: the long row alone (the cutter's rule)
          return range(position, from + first + 1)
        }
      } else if (from + n >= size) {
        // no delimiter after the limit before the end: the rest is one last batch (as the cutter sends it)
        return range(position, size)
      }
      // a row running past the window on either side: the cutter decides (a batch in memory)
      const piece = yield* cutOne(fd, position, maxBytes, delimiter)
      if (piece === undefined) return Option.none()
      const rows = piece.rows
      return Option.some(
        [
          {
            piece,
            body: { chunks: piece.chunks, byteLength: piece.byteLength },
            rows: Effect.succeed(rows),
            onRead: (_bytes, f) => f()
          },
          piece.end
        ] as const
      )
    })
  return Stream.unfoldEffect(options.start, (position) => Effect.mapError(next(position), options.onError))
}
