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
})
