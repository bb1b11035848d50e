/**
 * Payload compression of one load (`compression` header: `lz4_frame`, `gzip`, `zstd`), through maintained packages:
 * gzip through node:zlib, LZ4 frame through `lz4-napi`, zstd through `@toondepauw/node-zstd` (optional dependencies,
 * imported the first time a load asks for them, so that the package root and an uncompressed sink load neither).
 *
 * Each body is compressed whole, once per load, into ONE frame (StarRocks' JSON reader stops at the end of the first
 * LZ4 or zstd frame, so frames per chunk would drop rows: docs/protocol.md "Payload compression"), off the event loop
 * (the codecs' async calls run on libuv's thread pool), and the same compressed bytes are sent again by every
 * redirect, retry and reload of that load. The sink compresses before the load (`LoadClient.compress`): the raw
 * body's chunks go back to the encoder's buffer pool as the codec is done with them, and the frame, not the raw
 * body, is what the load holds while it is in flight (the dispatcher counts it in the byte budget). gzip streams the
 * chunks through zlib; lz4-napi and node-zstd take one buffer, so a body of several chunks is copied into one, each
 * chunk handed back as it is copied (the copy replaces the chunks; their packages have no streaming input into one
 * frame). CSV loads also
 * carry the compressed-CSV `format` alias (`lz4`, `gzip`, `zstd`), as the Flink connector sends them: StarRocks
 * releases that read the `compression` header for JSON only decompress CSV by its format.
 *
 * @internal
 */
import { Effect } from "effect"
import * as Zlib from "node:zlib"
import type { LoadBody } from "../../LoadBody.js"
import type { StreamLoadError } from "../../StarRocksError.js"
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

/** zstd's default level (the `zstd` command line's), a speed/ratio balance close to gzip's ratio at lz4's speed. */
const ZSTD_LEVEL = 3

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

interface Lz4Module {
  readonly compressFrame: (data: Uint8Array) => Promise<Buffer>
}
interface ZstdModule {
  readonly Encoder: new(level: number) => { readonly encode: (data: Buffer) => Promise<Buffer> }
}

const packageOf: Readonly<Record<"lz4_frame" | "zstd", string>> = {
  lz4_frame: "lz4-napi",
  zstd: "@toondepauw/node-zstd"
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
// an encoder per body: loads in flight compress at once on the thread pool, none shares another's state
const zstd = Effect.map(
  load<ZstdModule>("zstd", () => importPackage(packageOf.zstd)),
  (m) => new m.Encoder(ZSTD_LEVEL)
)

/** Hands chunks of the raw body back to `release` (at most once each), when one was given. */
type Release = ((body: LoadBody) => void) | undefined

const handBack = (release: Release, chunk: Uint8Array) => {
  if (release !== undefined) release({ chunks: [chunk], byteLength: chunk.byteLength })
}

/**
 * The body as one buffer, for the codecs whose packages take one (lz4-napi, node-zstd): a one-chunk body as it is
 * (handed back by the caller once the frame exists); a body of several chunks copied into one buffer, each chunk
 * handed back to `release` as soon as it is copied, so that the copy replaces the chunks instead of doubling them.
 */
const contiguous = (body: LoadBody, release: Release): { readonly buffer: Buffer; readonly owned: boolean } => {
  const chunks = body.chunks.filter((c) => c.byteLength > 0)
  if (chunks.length === 1) {
    const c = chunks[0]!
    return { buffer: Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength), owned: false }
  }
  const buffer = Buffer.allocUnsafeSlow(body.byteLength)
  let at = 0
  for (const c of body.chunks) {
    buffer.set(c, at)
    at += c.byteLength
    handBack(release, c)
  }
  return { buffer, owned: true }
}

/** zlib's output buffers: large enough that a frame is a few chunks, not thousands of 16 KiB ones. */
const GZIP_CHUNK = 256 * 1024

/**
 * gzip through a zlib stream: the chunks go in as they are (no contiguous copy of the body), each handed back to
 * `release` once zlib has read it, and the frame stays in zlib's output chunks (no copy of the frame either).
 */
const gzip = (body: LoadBody, release: Release): Promise<LoadBody> =>
  new Promise((resolve, reject) => {
    const z = Zlib.createGzip({ chunkSize: GZIP_CHUNK })
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

const single = (bytes: Buffer): LoadBody => ({ chunks: [bytes], byteLength: bytes.byteLength })

const run = (codec: Codec, body: LoadBody, release: Release): Effect.Effect<LoadBody, CompressionFailure> => {
  const failed = (e: unknown) =>
    new CompressionFailure(`${codec} compression failed: ${e instanceof Error ? e.message : String(e)}`)
  if (codec === "gzip") return Effect.tryPromise({ try: () => gzip(body, release), catch: failed })
  const encode: Effect.Effect<(data: Buffer) => Promise<Buffer>, CompressionFailure> = codec === "lz4_frame" ?
    Effect.map(lz4, (m) => (data: Buffer) => m.compressFrame(data)) :
    Effect.map(zstd, (e) => (data: Buffer) => e.encode(data))
  return Effect.flatMap(encode, (f) =>
    Effect.suspend(() => {
      const input = contiguous(body, release)
      return Effect.tryPromise({ try: () => f(input.buffer), catch: failed }).pipe(
        Effect.map(single),
        // a one-chunk body was read in place: handed back once the codec is done with it (not when the codec was
        // interrupted: it may still be reading it on the thread pool; the chunk is then left to the GC)
        Effect.tap(() => {
          if (!input.owned) { for (const c of body.chunks) handBack(release, c) }
        })
      )
    }))
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
 * needs it (gzip: as zlib reads it; lz4_frame and zstd: as it is copied into the one buffer their packages take, or
 * once the frame exists for a one-chunk body): the caller must not read `body` again. The frame is a new body.
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
