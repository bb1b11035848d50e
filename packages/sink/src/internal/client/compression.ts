/**
 * Payload compression of one load (`compression` header: `lz4_frame`, `gzip`, `zstd`), through maintained packages:
 * gzip through node:zlib, LZ4 frame through `lz4-napi`, zstd through `@toondepauw/node-zstd` (optional dependencies,
 * imported the first time a load asks for them, so that the package root and an uncompressed sink load neither).
 *
 * Each body is compressed whole, once per load, into ONE frame (StarRocks' JSON reader stops at the end of the first
 * LZ4 or zstd frame, so frames per chunk would drop rows: docs/protocol.md "Payload compression"), off the event loop
 * (the codecs' async calls run on libuv's thread pool), and the same compressed bytes are sent again by every
 * redirect, retry and reload of that load. The compressed copy lives as long as its load is in flight. CSV loads also
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

const contiguous = (body: LoadBody): Buffer => {
  if (body.chunks.length === 1) {
    const c = body.chunks[0]!
    return Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength)
  }
  return Buffer.concat(body.chunks as ReadonlyArray<Uint8Array>, body.byteLength)
}

/** gzip through a zlib stream: the chunks go in as they are (no contiguous copy of the body). */
const gzip = (body: LoadBody): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const z = Zlib.createGzip()
    const out: Array<Buffer> = []
    let size = 0
    z.on("data", (d: Buffer) => {
      out.push(d)
      size += d.byteLength
    })
    z.on("error", reject)
    z.on("end", () => resolve(out.length === 1 ? out[0]! : Buffer.concat(out, size)))
    for (const chunk of body.chunks) if (chunk.byteLength > 0) z.write(chunk)
    z.end()
  })

const run = (codec: Codec, body: LoadBody): Effect.Effect<Buffer, CompressionFailure> => {
  const failed = (e: unknown) =>
    new CompressionFailure(`${codec} compression failed: ${e instanceof Error ? e.message : String(e)}`)
  switch (codec) {
    case "gzip":
      return Effect.tryPromise({ try: () => gzip(body), catch: failed })
    case "lz4_frame":
      return Effect.flatMap(
        lz4,
        (m) => Effect.tryPromise({ try: () => m.compressFrame(contiguous(body)), catch: failed })
      )
    case "zstd":
      return Effect.flatMap(zstd, (e) => Effect.tryPromise({ try: () => e.encode(contiguous(body)), catch: failed }))
  }
}

/** A compressed load: its body, its headers, and the size of the body before compression. @internal */
export interface Compressed {
  readonly body: LoadBody
  readonly headers: Record<string, string>
  readonly rawBytes: number
}

/**
 * Compresses `body` with `codec` into one frame, and sets the headers: `compression` as StarRocks names it, and for
 * a CSV load (no `format`, or `csv`) the compressed-CSV `format` alias. `headers` are lower-cased (mergeHeaders).
 * @internal
 */
export const compress = (
  codec: Codec,
  headers: Readonly<Record<string, string>>,
  body: LoadBody
): Effect.Effect<Compressed, CompressionFailure> =>
  Effect.map(run(codec, body), (bytes) => {
    const out: Record<string, string> = { ...headers, compression: codec }
    const format = headers["format"]?.toLowerCase()
    if (format === undefined || format === "csv") out["format"] = csvFormat[codec]
    return { body: { chunks: [bytes], byteLength: bytes.byteLength }, headers: out, rawBytes: body.byteLength }
  })

/**
 * The body and headers of a load whose headers name a `compression` (lower-cased headers): the body compressed once
 * (compression.ts), or unchanged for `no_compression`; a codec the client does not have, or a codec that fails, is
 * an `Invalid` StreamLoadError (nothing is sent). Shared by plain and transaction loads.
 * @internal
 */
export const forLoad = (
  operation: "streamLoad" | "load",
  label: string,
  headers: Record<string, string>,
  body: LoadBody
): Effect.Effect<Compressed, StreamLoadError> => {
  const value = headers["compression"]!
  const codec = codecOf(value)
  if (codec === "none") return Effect.succeed({ body, headers, rawBytes: body.byteLength })
  const invalid = (message: string, reason: string) =>
    streamLoadError(operation, { label, status: "", message, outcome: "Invalid", reason })
  if (codec === undefined) {
    return Effect.fail(invalid(
      `compression ${JSON.stringify(value)}: the client compresses with ${codecs.join(", ")}`,
      "unsupported compression"
    ))
  }
  return compress(codec, headers, body).pipe(
    Effect.mapError((e) => invalid(e.reason, "compression failed")),
    Effect.tap((c) =>
      Effect.logDebug("load body compressed").pipe(
        Effect.annotateLogs({ label, codec, bytes: c.rawBytes, compressedBytes: c.body.byteLength })
      )
    )
  )
}
