/**
 * The BE's payload decompression (`be/src/util/compression/stream_compression.cpp`, `create_decompressor`), with
 * its messages: gzip (zlib's inflate, gzip or zlib header detected, members concatenated), deflate, LZ4 frame
 * (through `lz4-napi`), zstd (through `@toondepauw/node-zstd`); both optional dependencies of the testkit, required
 * the first time a load needs them. The codecs StarRocks' FE names but its BE cannot decode (LZ4 block, ZLIB) fail
 * with `Unknown compress type: <CompressionTypePB>`; bzip2 and snappy, which StarRocks decodes, are not emulated.
 *
 * Messages (StarRocks' own, a corrupt body): gzip `Failed to inflate. return code: <zlib code>`; zstd
 * `ZSTD decompress failed. error: <ZSTD_getErrorString>`; LZ4 frame `Lz4 header size is between 7 and 15 bytes. but
 * input size is only: <n>` (a body under 15 bytes), `LZ4F_getFrameInfo error: ERROR_frameType_unknown` (no frame
 * magic), `Decompression error: <reason>`. A body that ends inside a frame: `Failed to decompress. input_len:<n>,
 * output_len:<n>` (`io/compressed_input_stream.cpp`, which prints the input length twice).
 *
 * @internal
 */
import { createRequire } from "node:module"
import * as Zlib from "node:zlib"

const require = createRequire(import.meta.url)

/** `CompressionTypePB` numbers of the codecs the BE has no stream decompressor for. */
const UNKNOWN_TO_BE: Readonly<Record<string, number>> = { lz4: 4, zlib: 6 }

const truncated = (n: number) => `Failed to decompress. input_len:${n}, output_len:${n}`

const optional = <M>(name: string): M | string => {
  try {
    return require(name) as M
  } catch (e) {
    return `Unsupported compression format in the emulator: the optional dependency ${name} is not installed (${
      (e as Error).message
    })`
  }
}

interface Lz4 {
  readonly decompressFrameSync: (b: Buffer) => Buffer
}
interface Zstd {
  readonly Decoder: new() => { readonly decodeSync: (b: Buffer) => Buffer }
}

const LZ4_MAGIC = 0x184d2204

/** Whether the LZ4 frame that starts `b` ends (EndMark and checksum) within it: lz4_flex accepts a cut frame. */
const lz4FrameComplete = (b: Buffer): boolean => {
  if (b.length < 7) return false
  const flg = b[4]!
  let pos = 4 + 2 + ((flg & 0x08) !== 0 ? 8 : 0) + ((flg & 0x01) !== 0 ? 4 : 0) + 1
  const blockChecksum = (flg & 0x10) !== 0
  for (;;) {
    if (pos + 4 > b.length) return false
    const size = b.readUInt32LE(pos)
    pos += 4
    if (size === 0) break
    pos += (size & 0x7fffffff) + (blockChecksum ? 4 : 0)
  }
  return pos + ((flg & 0x04) !== 0 ? 4 : 0) <= b.length
}

const decodeLz4 = (body: Buffer): Buffer | string => {
  if (body.length < 15) return `Lz4 header size is between 7 and 15 bytes. but input size is only: ${body.length}`
  if (body.readUInt32LE(0) !== LZ4_MAGIC) return "LZ4F_getFrameInfo error: ERROR_frameType_unknown"
  const m = optional<Lz4>("lz4-napi")
  if (typeof m === "string") return m
  if (!lz4FrameComplete(body)) return truncated(body.length)
  try {
    return m.decompressFrameSync(body)
  } catch (e) {
    return `Decompression error: ${(e as Error).message}`
  }
}

const decodeZstd = (body: Buffer): Buffer | string => {
  const m = optional<Zstd>("@toondepauw/node-zstd")
  if (typeof m === "string") return m
  try {
    return new m.Decoder().decodeSync(body)
  } catch (e) {
    const message = (e as Error).message
    return /incomplete|truncated|not enough/i.test(message) ?
      truncated(body.length) :
      `ZSTD decompress failed. error: ${message}`
  }
}

const inflate = (body: Buffer, run: (b: Buffer) => Buffer): Buffer | string => {
  try {
    return run(body)
  } catch (e) {
    const errno = (e as { errno?: unknown }).errno
    // Z_BUF_ERROR: the body ends inside the stream
    return errno === Zlib.constants.Z_BUF_ERROR || /unexpected end/i.test((e as Error).message) ?
      truncated(body.length) :
      `Failed to inflate. return code: ${typeof errno === "number" ? errno : Zlib.constants.Z_DATA_ERROR}`
  }
}

/**
 * Decodes one body with the codec a load named (lower-case: a compressed-CSV `format` alias, or the
 * `compression` / `Content-Encoding` header with `lz4_frame` as `lz4_frame`): the bytes, or the BE's message.
 * @internal
 */
export const decompress = (codec: string, body: Buffer): Buffer | string => {
  switch (codec) {
    case "gzip":
      // StarRocks inflates with window bits 15 | 32 (gzip or zlib header), and goes on after a member ends
      return inflate(body, (b) => Zlib.unzipSync(b))
    case "deflate":
      return inflate(body, (b) => Zlib.inflateSync(b))
    case "lz4_frame":
      return decodeLz4(body)
    case "zstd":
      return decodeZstd(body)
  }
  const unknown = UNKNOWN_TO_BE[codec]
  if (unknown !== undefined) return `Unknown compress type: ${unknown}`
  return `Unsupported compression format in the emulator: ${codec}`
}
