/**
 * Counts one byte value in a buffer (the rows of a batch: its row delimiters) at memory speed. Node has no native
 * byte count, and a loop of `indexOf` calls, one per row, costs about a second per GB of 60-byte rows, longer than
 * `curl -T` takes to send the file; so the count runs in a WebAssembly function with 128-bit SIMD (16 bytes
 * compared per step, the matches counted with popcnt), about 15 ms per 100 MB. The bytes are copied into the
 * module's memory in slices of `SCRATCH` bytes (a memcpy, a few ms per 100 MB). Without WebAssembly SIMD (never on
 * Node 20+), a loop of `indexOf` counts instead.
 *
 * @internal
 */
import * as V8 from "node:v8"

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
  // locals: 0 p, 1 n, 2 byte (params); 3 end, 4 acc (i32); 5 splat (v128)
  const get = (i: number) => [0x20, i]
  const set = (i: number) => [0x21, i]
  const simd = (op: number) => [0xfd, ...uleb(op)]
  const step16 = (offset: number) => [
    ...get(0),
    ...simd(0x00), // v128.load
    0x00,
    ...uleb(offset),
    ...get(5),
    ...simd(0x23), // i8x16.eq
    ...simd(0x64), // i8x16.bitmask
    0x69, // i32.popcnt
    0x6a // i32.add
  ]
  const code = [
    ...[2, 2, 0x7f, 1, 0x7b], // locals: 2 × i32, 1 × v128
    ...get(2),
    ...simd(0x0f), // i8x16.splat
    ...set(5),
    // end = p + (n & ~63): 64 bytes a step
    ...get(0),
    ...get(1),
    0x41,
    0x40, // i32.const -64
    0x71, // i32.and
    0x6a, // i32.add
    ...set(3),
    0x02,
    0x40, // block
    0x03,
    0x40, // loop
    ...get(0),
    ...get(3),
    0x4f, // i32.ge_u
    0x0d,
    1, // br_if 1
    ...get(4),
    ...step16(0),
    ...step16(16),
    ...step16(32),
    ...step16(48),
    ...set(4),
    ...get(0),
    0x41,
    ...[0xc0, 0x00], // i32.const 64
    0x6a,
    ...set(0),
    0x0c,
    0, // br 0
    0x0b,
    0x0b,
    // the rest, a byte at a time: end += n & 63
    ...get(3),
    ...get(1),
    0x41,
    0x3f, // i32.const 63
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
    0x41,
    1,
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

interface Wasm {
  readonly count: (ptr: number, len: number, byte: number) => number
  readonly memory: Uint8Array
}

const instantiate = (): Wasm | undefined => {
  try {
    const bytes = moduleBytes()
    if (typeof WebAssembly !== "object" || !WebAssembly.validate(bytes)) return undefined
    // V8 runs new code in its baseline compiler (Liftoff, about 30 times slower here) until a background
    // optimizing compile, which a busy machine delays by seconds: this module is compiled optimized at once
    V8.setFlagsFromString("--no-liftoff")
    let module: WebAssembly.Module
    try {
      module = new WebAssembly.Module(bytes)
    } finally {
      V8.setFlagsFromString("--liftoff")
    }
    const instance = new WebAssembly.Instance(module)
    const memory = instance.exports["memory"] as WebAssembly.Memory
    memory.grow(Math.ceil(SCRATCH / 65536))
    const count = instance.exports["count"] as (ptr: number, len: number, byte: number) => number
    return { count, memory: new Uint8Array(memory.buffer, 0, SCRATCH) }
  } catch {
    return undefined
  }
}

let wasm: Wasm | undefined | null = null

/** Without WebAssembly: one `indexOf` a match. */
const countByIndexOf = (buf: Buffer, byte: number): number => {
  let n = 0
  for (let i = buf.indexOf(byte); i >= 0; i = buf.indexOf(byte, i + 1)) n++
  return n
}

/** How many bytes of `bytes` equal `byte`. */
export const countByte = (bytes: Uint8Array, byte: number): number => {
  if (wasm === null) wasm = instantiate()
  if (wasm === undefined) return countByIndexOf(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), byte)
  const { count, memory } = wasm
  let n = 0
  for (let at = 0; at < bytes.byteLength; at += SCRATCH) {
    const slice = bytes.subarray(at, Math.min(bytes.byteLength, at + SCRATCH))
    memory.set(slice)
    n += count(0, slice.byteLength, byte)
  }
  return n
}

/** Whether the WebAssembly counter is in use (for tests). */
export const simd = (): boolean => {
  if (wasm === null) wasm = instantiate()
  return wasm !== undefined
}
