/**
 * The byte counter of the loader (internal/load/count.ts): small buffers are counted without the WebAssembly
 * module (a one-row load does not pay its compile), larger ones with it, the same counts either way.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Count from "../src/internal/load/count.js"

describe("countByte", () => {
  it("counts a small buffer without compiling the module, a large one with it", () => {
    const small = Buffer.from("1,a\n2,b\n3,c\n")
    assert.strictEqual(Count.countByte(small, 0x0a), 3)
    assert.strictEqual(Count.countByte(small.subarray(4), 0x0a), 2)
    assert.isFalse(Count.started())
    const row = "12345,name,1.5\n"
    const large = Buffer.from(row.repeat(Math.ceil(3 * 1024 * 1024 / row.length)))
    assert.strictEqual(Count.countByte(large, 0x0a), large.byteLength / row.length)
    assert.isTrue(Count.started())
    // once the module is up, small buffers count the same
    assert.strictEqual(Count.countByte(small, 0x0a), 3)
    assert.strictEqual(Count.countByte(Buffer.alloc(0), 0x0a), 0)
  })

  it("counts every byte of a buffer of delimiters only, and at any alignment and length", () => {
    // the module counts 64 bytes a step in byte-wide lanes, widened every 63 steps: a lane that wrapped at 256
    // would show here
    const all = Buffer.alloc(5 * 1024 * 1024 + 77, 0x0a)
    assert.strictEqual(Count.countByte(all, 0x0a), all.byteLength)
    const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 13 < 6 ? 0x0a : 0x41))
    for (const [start, end] of [[0, 300_000], [1, 299_999], [13, 200_013], [64, 64 + 63 * 64 + 1], [5, 70_000]]) {
      const slice = data.subarray(start, end)
      let expected = 0
      for (const b of slice) if (b === 0x0a) expected++
      assert.strictEqual(Count.countByte(slice, 0x0a), expected, `[${start}, ${end})`)
    }
    const arena = Count.arena(2, 1024 * 1024)
    arena.buffers[1]!.fill(0x0a)
    assert.strictEqual(arena.count(arena.buffers[1]!, 1024 * 1024, 0x0a), 1024 * 1024)
  })
})
