/**
 * Counts one byte value in a buffer (the rows of a batch: its row delimiters) at memory speed. Node has no native
 * byte count, and a loop of `indexOf` calls, one per row, costs about a second per GB of 60-byte rows, longer than
 * `curl -T` takes to send the file; so the count runs in a WebAssembly function with 128-bit SIMD (16 bytes
 * compared per step, each match adding one to a byte-wide lane, the lanes widened and summed every 4032 bytes),
 * about 3-4 ms per 100 MB (15 when each step's matches went through i8x16.bitmask and popcnt). `countByte` copies
 * the bytes into the module's memory in slices of `SCRATCH` bytes (a memcpy, a few ms per 100 MB); the buffers of an
 * `arena` live in that memory and are counted where they are (the loader reads streamed batches into them,
 * fileBatches.ts). Without WebAssembly SIMD (never on Node 20+), a loop of `indexOf` counts instead.
 *
 * @internal
 */
import * as Module from "node:module"
import type * as V8 from "node:v8"

/** The module, assembled here: `count(ptr, len, byte) -> i32` and its exported memory. */
const moduleBytes = (): Uint8Array => {
  const uleb = (n: number): Array<number> => {
    const out: Array<number> = []
    do {
      let b = n & 0x7f
      n >>>= 7
      if (n !== 0) b |= 0x80
      out.push(b)
    } while (n !== 0)
    return out
  }
  const section = (id: number, body: Array<number>) => [id, ...uleb(body.length), ...body]
  const name = (s: string) => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))]
  const sleb = (n: number): Array<number> => {
    const out: Array<number> = []
    for (;;) {
      const b = n & 0x7f
      n >>= 7
      if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b]
      out.push(b | 0x80)
    }
  }
  const i32 = (n: number) => [0x41, ...sleb(n)]
  // locals: 0 p, 1 n, 2 byte (params); 3 end, 4 acc, 5 blockEnd (i32); 6 splat, 7 block counts, 8 total (v128)
  const get = (i: number) => [0x20, i]
  const set = (i: number) => [0x21, i]
  const simd = (op: number) => [0xfd, ...uleb(op)]
  // a lane of `block counts` gains 1 per match (i8x16.eq is -1 there): 16 bytes, two instructions
  const step16 = (offset: number) => [
    ...get(0),
    ...simd(0x00), // v128.load
    0x00,
    ...uleb(offset),
    ...get(6),
    ...simd(0x23), // i8x16.eq
    ...simd(0x71) // i8x16.sub
  ]
  const lane = (i: number) => [...get(8), ...simd(0x1b), i] // i32x4.extract_lane
  const code = [
    ...[2, 3, 0x7f, 3, 0x7b], // locals: 3 × i32, 3 × v128
    ...get(2),
    ...simd(0x0f), // i8x16.splat
    ...set(6),
    ...i32(0),
    ...simd(0x11), // i32x4.splat
    ...set(8),
    // end = p + (n & ~63): 64 bytes a step
    ...get(0),
    ...get(1),
    ...i32(-64),
    0x71, // i32.and
    0x6a, // i32.add
    ...set(3),
    0x02,
    0x40, // block
    0x03,
    0x40, // loop: a block of at most 63 steps (a lane of the block counts holds 255 at most)
    ...get(0),
    ...get(3),
    0x4f, // i32.ge_u
    0x0d,
    1, // br_if 1
    // blockEnd = min(p + 63 × 64, end)
    ...get(0),
    ...i32(63 * 64),
    0x6a,
    ...set(5),
    ...get(5),
    ...get(3),
    ...get(5),
    ...get(3),
    0x49, // i32.lt_u
    0x1b, // select
    ...set(5),
    ...i32(0),
    ...simd(0x11),
    ...set(7),
    0x02,
    0x40,
    0x03,
    0x40, // loop: 64 bytes a step
    ...get(0),
    ...get(5),
    0x4f,
    0x0d,
    1,
    ...get(7),
    ...step16(0),
    ...step16(16),
    ...step16(32),
    ...step16(48),
    ...set(7),
    ...get(0),
    ...i32(64),
    0x6a,
    ...set(0),
    0x0c,
    0, // br 0
    0x0b,
    0x0b,
    // total += the block counts, widened: i16x8.extadd_pairwise_i8x16_u, i32x4.extadd_pairwise_i16x8_u
    ...get(8),
    ...get(7),
    ...simd(0x7d),
    ...simd(0x7f),
    ...simd(0xae), // i32x4.add
    ...set(8),
    0x0c,
    0,
    0x0b,
    0x0b,
    ...lane(0),
    ...lane(1),
    0x6a,
    ...lane(2),
    0x6a,
    ...lane(3),
    0x6a,
    ...set(4),
    // the rest, a byte at a time: end += n & 63
    ...get(3),
    ...get(1),
    ...i32(63),
    0x71,
    0x6a,
    ...set(3),
    0x02,
    0x40,
    0x03,
    0x40,
    ...get(0),
    ...get(3),
    0x4f,
    0x0d,
    1,
    ...get(4),
    ...get(0),
    0x2d,
    0,
    0, // i32.load8_u
    ...get(2),
    0x46, // i32.eq
    0x6a,
    ...set(4),
    ...get(0),
    ...i32(1),
    0x6a,
    ...set(0),
    0x0c,
    0,
    0x0b,
    0x0b,
    ...get(4),
    0x0b
  ]
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f]), // (i32, i32, i32) -> i32
    ...section(3, [1, 0]),
    ...section(5, [1, 0, 1]), // memory: 1 page, growable
    ...section(7, [2, ...name("memory"), 2, 0, ...name("count"), 0, 0]),
    ...section(10, [1, ...uleb(code.length), ...code])
  ])
}

/** Bytes copied into the module's memory at a time. */
const SCRATCH = 1024 * 1024

/** The part of the WebAssembly API used here (this package's `lib` has no DOM types). */
interface WebAssemblyApi {
  readonly validate: (bytes: Uint8Array) => boolean
  readonly Module: new(bytes: Uint8Array) => object
  readonly Instance: new(module: object) => { readonly exports: Record<string, unknown> }
}

type CountFn = (ptr: number, len: number, byte: number) => number

let compiled: { readonly api: WebAssemblyApi; readonly module: object } | undefined | null = null

const compile = () => {
  if (compiled !== null) return compiled
  compiled = undefined
  try {
    const api = (globalThis as { readonly WebAssembly?: WebAssemblyApi }).WebAssembly
    const bytes = moduleBytes()
    if (api === undefined || !api.validate(bytes)) return compiled
    // V8 runs new code in its baseline compiler (Liftoff, several times slower here) until a background
    // optimizing compile, which a busy machine delays: this small module is compiled optimized at once
    // node:v8 is loaded here, by the first count of a large batch, not at every start (docs/benchmark.md, session 14)
    const v8: typeof V8 = Module.createRequire(import.meta.url)("node:v8")
    v8.setFlagsFromString("--no-liftoff")
    try {
      compiled = { api, module: new api.Module(bytes) }
    } finally {
      v8.setFlagsFromString("--liftoff")
    }
  } catch {
    compiled = undefined
  }
  return compiled
}

/** An instance of the module with `bytes` of memory of its own (grown once: growing detaches the views). */
const instantiate = (bytes: number): { readonly count: CountFn; readonly buffer: ArrayBuffer } | undefined => {
  const c = compile()
  if (c === undefined) return undefined
  try {
    const instance = new c.api.Instance(c.module)
    const memory = instance.exports["memory"] as { readonly buffer: ArrayBuffer; grow(pages: number): number }
    const pages = Math.ceil(bytes / 65536)
    if (pages > 1) memory.grow(pages - 1)
    return { count: instance.exports["count"] as CountFn, buffer: memory.buffer }
  } catch {
    return undefined
  }
}

let scratch: { readonly count: CountFn; readonly memory: Uint8Array } | undefined | null = null

/** Without WebAssembly: one `indexOf` a match. */
const countByIndexOf = (buf: Buffer, byte: number): number => {
  let n = 0
  for (let i = buf.indexOf(byte); i >= 0; i = buf.indexOf(byte, i + 1)) n++
  return n
}

/**
 * Up to this many bytes, `countByte` counts with `indexOf` (a few microseconds) and does not compile and instantiate
 * the module (a few milliseconds, most of a small file's count: a one-row load pays it at start).
 */
const SMALL = 64 * 1024

/** Whether the module was compiled (for tests). */
export const started = (): boolean => compiled !== null

/** How many bytes of `bytes` equal `byte` (any buffer: copied into the module's memory a slice at a time). */
export const countByte = (bytes: Uint8Array, byte: number): number => {
  if (bytes.byteLength <= SMALL && scratch === null) {
    return countByIndexOf(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), byte)
  }
  if (scratch === null) {
    const i = instantiate(SCRATCH)
    scratch = i === undefined ? undefined : { count: i.count, memory: new Uint8Array(i.buffer, 0, SCRATCH) }
  }
  if (scratch === undefined) {
    return countByIndexOf(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), byte)
  }
  const { count, memory } = scratch
  let n = 0
  for (let at = 0; at < bytes.byteLength; at += SCRATCH) {
    const slice = bytes.subarray(at, Math.min(bytes.byteLength, at + SCRATCH))
    memory.set(slice)
    n += count(0, slice.byteLength, byte)
  }
  return n
}

/** Whether the WebAssembly counter is in use (for tests). */
export const simd = (): boolean => compile() !== undefined

/** Buffers whose bytes are counted where they are, without a copy. */
export interface Arena {
  readonly buffers: ReadonlyArray<Buffer>
  /** How many of the first `length` bytes of `buffer` equal `byte` (in place when it is one of `buffers`). */
  readonly count: (buffer: Uint8Array, length: number, byte: number) => number
  /** Whether the buffers live in WebAssembly memory (counted in place); else each count copies. */
  readonly inPlace: boolean
}

/** Arenas larger than this are plain buffers (WebAssembly memory ends at 4 GB). */
const MAX_IN_PLACE = 2 * 1024 ** 3

/**
 * `n` buffers of `size` bytes in the memory of a module instance of their own, so that counting reads them where
 * they are; plain buffers when that is not possible. The memory is reserved, and touched only as it is written.
 */
export const arena = (n: number, size: number): Arena => {
  const instance = n * size <= MAX_IN_PLACE ? instantiate(n * size) : undefined
  if (instance === undefined) {
    const buffers = Array.from({ length: n }, () => Buffer.allocUnsafeSlow(size))
    return { buffers, count: (buffer, length, byte) => countByte(buffer.subarray(0, length), byte), inPlace: false }
  }
  const buffers = Array.from({ length: n }, (_, i) => Buffer.from(instance.buffer, i * size, size))
  return {
    buffers,
    // a buffer of another memory (one a caller made when these ran out) is counted by a copy
    count: (buffer, length, byte) =>
      buffer.buffer === instance.buffer ?
        instance.count(buffer.byteOffset, length, byte) :
        countByte(buffer.subarray(0, length), byte),
    inPlace: true
  }
}
