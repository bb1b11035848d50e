/**
 * The body of one load: chunks of encoded rows held in memory, or bytes read from a source (a byte range of a file)
 * as they are sent. Either kind can be sent more than once: redirects and retries replay it.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"

/**
 * A request body that can be sent more than once (redirects and retries replay it).
 *
 * In memory (the sink's batches): `chunks` hold the bytes and `source` is absent. Streamed (`fromFile`, or a
 * `source` of your own): `chunks` is empty and every send reads the `byteLength` bytes from `source` in modest
 * slices, written with backpressure, so no send holds the body in memory. The client sends a streamed body
 * whole or fails; what needs the bytes in memory (the `compression` header, merge commit's check of a CSV body's
 * last delimiter) refuses it with a typed error that says so (`StreamLoadError` or `TransactionError`, outcome
 * `Invalid`, reason `streamed body ...`).
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadBody {
  readonly chunks: ReadonlyArray<Uint8Array>
  readonly byteLength: number
  /** Where a streamed body's bytes are read from on every send (absent: the bytes are `chunks`). @since 0.3.0 */
  readonly source?: Source | undefined
}

/**
 * Reads a streamed body from its first byte, once per send.
 *
 * @since 0.3.0
 * @category models
 */
export interface Source {
  /** A fresh reader positioned at the body's first byte (a send, a redirected send and a retry each open one). */
  readonly open: () => Reader
  /**
   * The buffers a send reads this source into, when the source has its own (say, memory its reader can count the
   * bytes in without a copy); absent, the client's. @since 0.3.0
   */
  readonly slices?: Slices | undefined
}

/**
 * Buffers of a source's own for its sends: a send takes at most a few (`take`, any size of at least one byte; a
 * send reads into the start of one), writes each as it is read, and gives each back (`give`) once the socket took
 * its bytes and the send needs it no more. A send that fails keeps what it took: `take` must make a new buffer when
 * it has none left.
 *
 * @since 0.3.0
 * @category models
 */
export interface Slices {
  readonly take: () => Uint8Array
  readonly give: (slice: Uint8Array) => void
}

/**
 * One reading of a streamed body. The transport calls `read` with a buffer of at most the bytes still due, one
 * call at a time, and `close` once it needs no more (at the end, on failure and on interruption, possibly while a
 * read is on its way: that read's callback is then never called). `read` may call back before it returns (a
 * synchronous read: of a file in the page cache, the cheapest way to feed a socket on a busy machine).
 *
 * @since 0.3.0
 * @category models
 */
export interface Reader {
  /** Fills the start of `buffer` with the next bytes; calls back with how many (0: the source ended). */
  readonly read: (buffer: Uint8Array, callback: (error: Error | null, bytesRead: number) => void) => void
  readonly close: () => void
}

/**
 * Whether `body` is streamed from a source (not held in memory).
 *
 * @since 0.3.0
 * @category guards
 */
export const isStreamed = (body: LoadBody): body is LoadBody & { readonly source: Source } => body.source !== undefined

/**
 * A streamed body of the bytes `[start, end)` of the file at `path` (default: the whole file as it is now). Every
 * send opens the file again and reads the range in slices; a file shorter than the range fails the send (a
 * `TransportError` with code `EBODYSOURCE`), it never sends fewer bytes than announced.
 *
 * @since 0.3.0
 * @category constructors
 */
export const fromFile = (options: {
  readonly path: string
  readonly start?: number | undefined
  readonly end?: number | undefined
}): LoadBody => {
  const start = options.start ?? 0
  const end = options.end ?? Fs.statSync(options.path).size
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && end >= start)) {
    throw new RangeError(`LoadBody.fromFile: [${start}, ${end}) is not a byte range`)
  }
  return { chunks: [], byteLength: end - start, source: fileSource(options.path, start) }
}

/**
 * The reader of a file from `start`: opened on its first read, closed by `close`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const fileSource = (path: string, start: number): Source => ({
  open: () => {
    let fd: number | undefined
    let closed = false
    let reading = false
    let position = start
    const release = () => {
      if (fd !== undefined) Fs.close(fd, () => {})
      fd = undefined
    }
    const readAt = (buffer: Uint8Array, callback: (error: Error | null, bytesRead: number) => void) =>
      Fs.read(fd!, buffer, 0, buffer.byteLength, position, (error, n) => {
        reading = false
        // closed while reading: the descriptor is closed now, not under the read
        if (closed) return release()
        if (error === null) position += n
        callback(error, n)
      })
    return {
      read: (buffer, callback) => {
        if (closed) return callback(new Error("read after close"), 0)
        reading = true
        if (fd !== undefined) return readAt(buffer, callback)
        Fs.open(path, "r", (error, opened) => {
          if (error !== null) {
            reading = false
            return closed ? undefined : callback(error, 0)
          }
          fd = opened
          if (closed) {
            reading = false
            return release()
          }
          readAt(buffer, callback)
        })
      },
      close: () => {
        if (closed) return
        closed = true
        if (!reading) release()
      }
    }
  }
})
