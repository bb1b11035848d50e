/**
 * Payload compression of one load (`compression` header: `lz4_frame`, `gzip`, `zstd`), through maintained packages:
 * gzip through node:zlib, LZ4 blocks through `lz4-napi`, zstd through `zstd-napi` (optional dependencies, imported
 * the first time a load asks for them, so that the package root and an uncompressed sink load neither).
 *
 * Each body is compressed once per load into ONE frame (StarRocks' JSON reader stops at the end of the first LZ4 or
 * zstd frame, so frames per chunk would drop rows: docs/protocol.md "Payload compression"), streamed chunk by chunk:
 * the raw body is never copied into one buffer, and each chunk goes back to the encoder's buffer pool (`release`)
 * as soon as the codec has read it. gzip streams the chunks through a zlib stream (on the thread pool). LZ4: the
 * frame's header, its blocks and its end mark are built here around blocks that lz4-napi compresses (on the thread
 * pool), one independent block per chunk (at most 1 MiB: a larger chunk is several), a container, not a codec.
 * zstd: zstd-napi's streaming `ZSTD_compressStream2` on the event loop, 256 KiB at a time with a yield to the other
 * fibers between (zstd-napi has no asynchronous call). The same compressed bytes are sent again by every redirect,
 * retry and reload of that load. The sink compresses before the load (`LoadClient.compress`): the frame, not the raw
 * body, is what the load holds while it is in flight (the dispatcher counts it in the byte budget). CSV loads also
 * carry the compressed-CSV `format` alias (`lz4`, `gzip`, `zstd`), as the Flink connector sends them: StarRocks
 * releases that read the `compression` header for JSON only decompress CSV by its format.
 *
 * @internal
 */
import { Effect } from "effect"
import type * as Zlib from "node:zlib"
import type { LoadBody } from "../../LoadBody.js"
import type { StreamLoadError } from "../../StarRocksError.js"
import { lazyBuiltin } from "../builtin.js"
import { streamLoadError } from "./replies.js"

/**
 * The codecs the client compresses with, by their `compression` header value.
 * @internal
 */
export const codecs = ["lz4_frame", "gzip", "zstd"] as const

/** @internal */
export type Codec = typeof codecs[number]

/** The compressed-CSV `format` alias StarRocks reads for each codec (`stream_load.cpp` `parse_format`). */
const csvFormat: Readonly<Record<Codec, string>> = { lz4_frame: "lz4", gzip: "gzip", zstd: "zstd" }

/**
 * The codec a `compression` header value names (case-insensitive): a codec, `none` for StarRocks' `NO_COMPRESSION`
 * (sent as it is), or undefined for a value the client cannot compress with.
 * @internal
 */
export const codecOf = (value: string): Codec | "none" | undefined => {
  const v = value.trim().toLowerCase()
  if (v === "no_compression") return "none"
  return (codecs as ReadonlyArray<string>).includes(v) ? (v as Codec) : undefined
}

/**
 * Whether a load's headers (in any case) ask the client to compress its body: a `compression` header other than
 * `no_compression`, a codec or not (a value the client has no codec for fails the load when it is compressed).
 * @internal
 */
export const wanted = (headers: Readonly<Record<string, string>>): boolean => {
  for (const k in headers) {
    if (k.length === 11 && k.toLowerCase() === "compression") return codecOf(headers[k]!) !== "none"
  }
  return false
}

/** Why a body could not be compressed (a missing optional package, a codec failure). @internal */
export class CompressionFailure {
  readonly _tag = "CompressionFailure"
  constructor(readonly reason: string) {}
}

/** lz4-napi: `compress` is LZ4 block compression (lz4_flex), the block after its 4-byte little-endian raw size. */
interface Lz4Module {
  readonly compress: (data: Uint8Array) => Promise<Buffer>
}
/** zstd-napi's low-level binding (`zstd-napi/binding`): a `ZSTD_CCtx` and `ZSTD_compressStream2`. */
interface ZstdBinding {
  readonly CCtx: new() => ZstdContext
  readonly CParameter: { readonly compressionLevel: number }
  readonly EndDirective: { readonly continue: number; readonly end: number }
  readonly ResetDirective: { readonly sessionOnly: number }
}
interface ZstdContext {
  readonly setParameter: (param: number, value: number) => void
  readonly setPledgedSrcSize: (size: number) => void
  readonly reset: (directive: number) => void
  /** [bytes left to flush, bytes written to dst, bytes read from src] */
  readonly compressStream2: (dst: Uint8Array, src: Uint8Array, endOp: number) => [number, number, number]
}

const packageOf: Readonly<Record<"lz4_frame" | "zstd", string>> = {
  lz4_frame: "lz4-napi",
  zstd: "zstd-napi"
}

const load = <M>(codec: "lz4_frame" | "zstd", importer: () => Promise<unknown>): Effect.Effect<M, CompressionFailure> =>
  Effect.tryPromise({
    try: async () => {
      const m = (await importer()) as { readonly default?: unknown }
      // a CommonJS addon imported from ESM: its exports are the default export
      return (m.default ?? m) as M
    },
    catch: (e) =>
      new CompressionFailure(
        `compression ${codec} needs the optional dependency ${packageOf[codec]}, which could not be loaded: ${
          e instanceof Error ? e.message : String(e)
        }`
      )
  })

/**
 * `import()` of a package named by a variable: a bundler (esbuild, as the crash test and the benchmark bundle the
 * sink) leaves it to Node at run time instead of trying to bundle a native addon's `.node` file.
 */
const importPackage = (name: string): Promise<unknown> => import(name)

// Node caches a module once imported: later loads pay one resolved promise
const lz4 = load<Lz4Module>("lz4_frame", () => importPackage(packageOf.lz4_frame))
// the low-level binding alone (the package's documented `zstd-napi/binding`), not its stream classes
const zstd = load<ZstdBinding>("zstd", () => importPackage(`${packageOf.zstd}/binding.js`))

/** Hands chunks of the raw body back to `release` (at most once each), when one was given. */
type Release = ((body: LoadBody) => void) | undefined

const handBack = (release: Release, chunk: Uint8Array) => {
  if (release !== undefined) release({ chunks: [chunk], byteLength: chunk.byteLength })
}

/** `chunk` in pieces of at most `size` bytes (views, no copy); none for an empty chunk. */
const piecesOf = (chunk: Uint8Array, size: number): ReadonlyArray<Uint8Array> => {
  if (chunk.byteLength === 0) return []
  if (chunk.byteLength <= size) return [chunk]
  const out: Array<Uint8Array> = []
  for (let at = 0; at < chunk.byteLength; at += size) {
    out.push(chunk.subarray(at, Math.min(at + size, chunk.byteLength)))
  }
  return out
}

/** node:zlib, loaded by the first gzip load rather than by every process that imports the client. */
const zlib = lazyBuiltin<typeof Zlib>("node:zlib")

/** zlib's output buffers: large enough that a frame is a few chunks, not thousands of 16 KiB ones. */
const GZIP_CHUNK = 256 * 1024

/**
 * gzip through a zlib stream: the chunks go in as they are (no contiguous copy of the body), each handed back to
 * `release` once zlib has read it, and the frame stays in zlib's output chunks (no copy of the frame either).
 */
const gzip = (body: LoadBody, release: Release): Promise<LoadBody> =>
  new Promise((resolve, reject) => {
    const z = zlib().createGzip({ chunkSize: GZIP_CHUNK })
    const out: Array<Buffer> = []
    let size = 0
    z.on("data", (d: Buffer) => {
      out.push(d)
      size += d.byteLength
    })
    z.on("error", reject)
    z.on("end", () => resolve({ chunks: out, byteLength: size }))
    for (const chunk of body.chunks) {
      // the callback runs once zlib has consumed the chunk: it is not read again
      if (chunk.byteLength > 0) z.write(chunk, () => handBack(release, chunk))
      else handBack(release, chunk)
    }
    z.end()
  })

/**
 * The LZ4 frame format (lz4's `doc/lz4_Frame_format.md`): magic 0x184D2204; FLG 0x60 (version 01, independent
 * blocks, no block or content checksum, no content size, no dictionary); BD 0x60 (blocks of at most 1 MiB, the
 * encoder's largest buffer); HC 0x51, the second byte of XXH32(FLG BD, seed 0). A fixed descriptor, so a fixed
 * header (checked against lz4's own decoders in Compression.test.ts).
 */
const LZ4_HEADER = Uint8Array.of(0x04, 0x22, 0x4d, 0x18, 0x60, 0x60, 0x51)
/** The largest block BD 0x60 allows. */
const LZ4_BLOCK = 1024 * 1024
/** The end mark: a block size of 0. */
const LZ4_END = Uint8Array.of(0, 0, 0, 0)
/** A block size's flag for a block stored as it is (it did not shrink). */
const LZ4_UNCOMPRESSED = 0x80000000

/**
 * One LZ4 frame, built chunk by chunk: each chunk of the body (in pieces of at most 1 MiB) is one independent block,
 * compressed by lz4-napi on the thread pool, one at a time; a chunk is handed back to `release` once its blocks
 * exist. lz4-napi prefixes a block with its raw size in 4 bytes: those 4 bytes become the block's frame header (its
 * compressed size), so that the block is not copied. A block that does not shrink is stored as it is (copied, flagged
 * uncompressed), as the format asks. What is held at once: the frame so far, and one piece and its block.
 */
const lz4Frame = (m: Lz4Module, body: LoadBody, release: Release, failed: (e: unknown) => CompressionFailure) =>
  Effect.suspend(() => {
    const out: Array<Uint8Array> = [LZ4_HEADER]
    let size = LZ4_HEADER.byteLength
    const block = (piece: Uint8Array) =>
      Effect.map(Effect.tryPromise({ try: () => m.compress(piece), catch: failed }), (b) => {
        const n = b.byteLength - 4
        if (n > 0 && n < piece.byteLength) {
          b.writeUInt32LE(n, 0)
          out.push(b)
          size += b.byteLength
        } else {
          const stored = Buffer.allocUnsafe(4 + piece.byteLength)
          stored.writeUInt32LE((piece.byteLength | LZ4_UNCOMPRESSED) >>> 0, 0)
          stored.set(piece, 4)
          out.push(stored)
          size += stored.byteLength
        }
      })
    return Effect.forEach(body.chunks, (chunk) =>
      Effect.as(
        Effect.forEach(piecesOf(chunk, LZ4_BLOCK), block, { discard: true }),
        chunk
      ).pipe(
        // not when interrupted: lz4-napi may still be reading the piece on the thread pool (left to the GC)
        Effect.tap((c) => handBack(release, c))
      ), { discard: true }).pipe(
        Effect.map((): LoadBody => {
          out.push(LZ4_END)
          return { chunks: out, byteLength: size + LZ4_END.byteLength }
        })
      )
  })

/** zstd's default level (the `zstd` command line's), a speed/ratio balance close to gzip's ratio at lz4's speed. */
const ZSTD_LEVEL = 3
/** The pieces zstd reads between two yields to the other fibers (about a millisecond of compression at level 3). */
const ZSTD_STEP = 256 * 1024
/** zstd's output buffers: each filled before the next is taken (the last one copied to its size). */
const ZSTD_OUT = 256 * 1024

/** Idle compression contexts kept for the next frames (a context's tables are allocated once, not per frame). */
const ZSTD_IDLE = 4
const idleContexts: Array<ZstdContext> = []

/**
 * A compression context for one frame: an idle one (its last frame ended), or a new one at ZSTD_LEVEL; back to the
 * idle ones once its frame is complete (a context whose frame failed or was interrupted is dropped, to the GC).
 */
const withContext = <A, E>(b: ZstdBinding, use: (ctx: ZstdContext) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const idle = idleContexts.pop()
      if (idle !== undefined) return idle
      const ctx = new b.CCtx()
      ctx.setParameter(b.CParameter.compressionLevel, ZSTD_LEVEL)
      return ctx
    }),
    use,
    (ctx, exit) =>
      Effect.sync(() => {
        if (exit._tag === "Success" && idleContexts.length < ZSTD_IDLE) idleContexts.push(ctx)
      })
  )

/**
 * One zstd frame, streamed (`ZSTD_compressStream2`) chunk by chunk through a compression context of its own, with
 * the body's size pledged (written in the frame header, and checked by zstd against the bytes it reads). zstd-napi
 * compresses synchronously: a piece of at most 256 KiB at a time, yielding to the other fibers between pieces; a chunk
 * is handed back to `release` once zstd has read it (zstd keeps what it still needs of it, its window, itself).
 * What is held at once: the frame so far, zstd's context (its window and tables, a few MiB at level 3) and one
 * output buffer.
 */
const zstdFrame = (b: ZstdBinding, body: LoadBody, release: Release, failed: (e: unknown) => CompressionFailure) =>
  withContext(b, (ctx) => {
    const out: Array<Uint8Array> = []
    let size = 0
    let buf = Buffer.allocUnsafe(ZSTD_OUT)
    let used = 0
    const step = (input: Uint8Array, end: boolean) =>
      Effect.try({
        try: () => {
          let src = input
          for (;;) {
            const [left, written, read] = ctx.compressStream2(
              buf.subarray(used),
              src,
              end ? b.EndDirective.end : b.EndDirective.continue
            )
            used += written
            src = src.subarray(read)
            if (used === buf.byteLength) {
              out.push(buf)
              size += used
              buf = Buffer.allocUnsafe(ZSTD_OUT)
              used = 0
            }
            if (src.byteLength === 0 && (!end || left === 0)) return
          }
        },
        catch: failed
      })
    const start = Effect.try({
      try: () => {
        ctx.reset(b.ResetDirective.sessionOnly)
        ctx.setPledgedSrcSize(body.byteLength)
      },
      catch: failed
    })
    const chunks = Effect.forEach(
      body.chunks,
      (chunk) =>
        Effect.forEach(piecesOf(chunk, ZSTD_STEP), (piece) => Effect.zipRight(step(piece, false), Effect.yieldNow()), {
          discard: true
        }).pipe(Effect.tap(() => handBack(release, chunk))),
      { discard: true }
    )
    return start.pipe(
      Effect.zipRight(chunks),
      Effect.zipRight(step(new Uint8Array(0), true)),
      Effect.map((): LoadBody => {
        if (used > 0) {
          out.push(Buffer.from(buf.subarray(0, used)))
          size += used
        }
        return { chunks: out, byteLength: size }
      })
    )
  })

const run = (codec: Codec, body: LoadBody, release: Release): Effect.Effect<LoadBody, CompressionFailure> => {
  const failed = (e: unknown) =>
    e instanceof CompressionFailure ?
      e :
      new CompressionFailure(`${codec} compression failed: ${e instanceof Error ? e.message : String(e)}`)
  if (codec === "gzip") return Effect.tryPromise({ try: () => gzip(body, release), catch: failed })
  if (codec === "lz4_frame") return Effect.flatMap(lz4, (m) => lz4Frame(m, body, release, failed))
  return Effect.flatMap(zstd, (b) => zstdFrame(b, body, release, failed))
}

/** A compressed load: its body, its headers, and the size of the body before compression. @internal */
export interface Compressed {
  readonly body: LoadBody
  readonly headers: Record<string, string>
  readonly rawBytes: number
}

/**
 * The headers of a load compressed with `codec`: `compression` as StarRocks names it, and for a CSV load (no
 * `format`, or `csv`) the compressed-CSV `format` alias. `headers` are lower-cased (mergeHeaders).
 * @internal
 */
export const headersFor = (codec: Codec, headers: Readonly<Record<string, string>>): Record<string, string> => {
  const out: Record<string, string> = { ...headers, compression: codec }
  const format = headers["format"]?.toLowerCase()
  if (format === undefined || format === "csv") out["format"] = csvFormat[codec]
  return out
}

/**
 * Compresses `body` with `codec` into ONE frame (StarRocks reads one frame per body), and sets the headers
 * (`headersFor`). With `release`, every chunk of `body` is handed to it, at most once, as soon as the codec no longer
 * needs it (gzip: as zlib reads it; lz4_frame: once its blocks exist; zstd: once zstd has read it): the caller must
 * not read `body` again. The frame is a new body.
 * @internal
 */
export const compress = (
  codec: Codec,
  headers: Readonly<Record<string, string>>,
  body: LoadBody,
  release?: (body: LoadBody) => void
): Effect.Effect<Compressed, CompressionFailure> =>
  Effect.map(run(codec, body, release), (frame) => ({
    body: frame,
    headers: headersFor(codec, headers),
    rawBytes: body.byteLength
  }))

/**
 * The body and headers of a load whose headers name a `compression` (lower-cased headers): the body compressed once
 * (compression.ts), or unchanged for `no_compression`; a codec the client does not have, or a codec that fails, is
 * an `Invalid` StreamLoadError (nothing is sent). A body already compressed (`LoadRequest.compressed`, the frame
 * `LoadClient.compress` made) is sent as it is, with the codec's headers: never compressed twice. Shared by plain,
 * merge commit and transaction loads.
 * @internal
 */
export const forLoad = (
  operation: "streamLoad" | "load",
  label: string,
  headers: Record<string, string>,
  body: LoadBody,
  compressed?: { readonly rawBytes: number } | undefined,
  release?: (body: LoadBody) => void
): Effect.Effect<Compressed, StreamLoadError> => {
  const value = headers["compression"] ?? ""
  const codec = codecOf(value)
  const invalid = (message: string, reason: string) =>
    streamLoadError(operation, { label, status: "", message, outcome: "Invalid", reason })
  if (compressed !== undefined) {
    if (codec === undefined || codec === "none") {
      return Effect.fail(invalid(
        `a body marked compressed needs the codec that made it in its compression header (${codecs.join(", ")}), ` +
          `not ${JSON.stringify(value)}`,
        "unsupported compression"
      ))
    }
    return Effect.succeed({ body, headers: headersFor(codec, headers), rawBytes: compressed.rawBytes })
  }
  if (codec === "none") return Effect.succeed({ body, headers, rawBytes: body.byteLength })
  if (codec === undefined) {
    return Effect.fail(invalid(
      `compression ${JSON.stringify(value)}: the client compresses with ${codecs.join(", ")}`,
      "unsupported compression"
    ))
  }
  return compress(codec, headers, body, release).pipe(
    Effect.mapError((e) => invalid(e.reason, "compression failed")),
    Effect.tap((c) =>
      Effect.logDebug("load body compressed").pipe(
        Effect.annotateLogs({ label, codec, bytes: c.rawBytes, compressedBytes: c.body.byteLength })
      )
    )
  )
}
