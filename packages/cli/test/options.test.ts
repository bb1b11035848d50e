/**
 * The loader's small parsers (packages/cli/src/internal/load/options.ts): the SHA-256 of the default label prefix.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Crypto from "node:crypto"
import { sha256Hex } from "../src/internal/load/options.js"

describe("the loader's options", () => {
  it("sha256Hex: node:crypto's SHA-256 of the text's UTF-8 bytes", () => {
    assert.strictEqual(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert.strictEqual(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    const expected = (text: string) => Crypto.createHash("sha256").update(text).digest("hex")
    // every length around the padding's edges (55, 56, 64 bytes, two and three blocks), ASCII and not, NULs (the
    // default prefix joins its parts with them), and longer texts
    let seed = 7
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    const char = () => {
      const r = random()
      return r < 0.1 ? "\0" : r < 0.2 ? String.fromCharCode(0x80 + Math.floor(random() * 0x3000)) : r < 0.22 ?
        "😀" :
        String.fromCharCode(32 + Math.floor(random() * 95))
    }
    for (let length = 0; length < 300; length++) {
      let text = ""
      while (Buffer.byteLength(text) < length) text += char()
      assert.strictEqual(sha256Hex(text), expected(text), JSON.stringify(text))
    }
    const long = "db.t\0/data/rows.csv\0" + "x".repeat(100_000)
    assert.strictEqual(sha256Hex(long), expected(long))
  })
})
