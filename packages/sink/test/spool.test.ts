import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Spool from "../src/internal/spool.js"

const body = (text: string) => ({
  chunks: [Buffer.from(text.slice(0, 2)), Buffer.from(text.slice(2))],
  byteLength: text.length
})

describe("replay spool", () => {
  it.effect("keeps bodies in memory up to the limit, then on disk, replays them in order, clears the file", () =>
    Effect.gen(function*() {
      const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "spool-test-"))
      const released: Array<number> = []
      const spool = Spool.make({ memoryLimit: 10, directory, release: (b) => released.push(b.byteLength) })
      yield* spool.add(body("aaaaaa"))
      yield* spool.add(body("bbbbbbb"))
      yield* spool.add(body("cccc"))
      assert.strictEqual(spool.count(), 3)
      assert.strictEqual(spool.memoryBytes(), 10)
      assert.strictEqual(spool.diskBytes(), 7)
      // the disk body went back to the encoder once written
      assert.deepStrictEqual(released, [7])
      assert.strictEqual(Fs.readdirSync(directory).length, 1)
      const seen: Array<string> = []
      yield* spool.replay((b) =>
        Effect.sync(() => seen.push(Buffer.concat(b.chunks.map((c) => Buffer.from(c))).toString()))
      )
      assert.deepStrictEqual(seen, ["aaaaaa", "bbbbbbb", "cccc"])
      yield* spool.clear
      assert.strictEqual(spool.count(), 0)
      assert.deepStrictEqual(released, [7, 6, 4])
      assert.strictEqual(Fs.readdirSync(directory).length, 0)
      Fs.rmSync(directory, { recursive: true, force: true })
    }))

  it.effect("spools sharing a budget keep in memory up to the limit together; a cleared one gives its share back", () =>
    Effect.gen(function*() {
      // the exactly-once sink's table: the closing checkpoint's transaction and the next one's, at the same time
      const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "spool-test-"))
      const shared: Spool.Budget = { used: 0 }
      const closing = Spool.make({ memoryLimit: 10, directory, shared })
      const next = Spool.make({ memoryLimit: 10, directory, shared })
      yield* closing.add(body("aaaaaaaa"))
      yield* next.add(body("bbbbb"))
      assert.deepStrictEqual([closing.memoryBytes(), next.memoryBytes(), next.diskBytes()], [8, 0, 5])
      assert.strictEqual(shared.used, 8)
      yield* closing.clear
      assert.strictEqual(shared.used, 0)
      yield* next.add(body("ccccc"))
      assert.deepStrictEqual([next.memoryBytes(), next.diskBytes()], [5, 5])
      assert.strictEqual(shared.used, 5)
      const seen: Array<string> = []
      yield* next.replay((b) =>
        Effect.sync(() => seen.push(Buffer.concat(b.chunks.map((c) => Buffer.from(c))).toString()))
      )
      assert.deepStrictEqual(seen, ["bbbbb", "ccccc"])
      yield* next.clear
      assert.strictEqual(shared.used, 0)
      Fs.rmSync(directory, { recursive: true, force: true })
    }))

  it.effect("keeps a compressed frame with its raw size, replays it marked, never hands it to the buffer pool", () =>
    Effect.gen(function*() {
      const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "spool-test-"))
      const released: Array<number> = []
      const spool = Spool.make({ memoryLimit: 10, directory, release: (b) => released.push(b.byteLength) })
      yield* spool.add(body("ffff"), 40)
      yield* spool.add(body("rrrrr"))
      // over the memory limit: on disk, the frame still not released
      yield* spool.add(body("gggggg"), 60)
      assert.strictEqual(spool.memoryBytes(), 9)
      assert.strictEqual(spool.diskBytes(), 6)
      assert.deepStrictEqual(released, [])
      const seen: Array<readonly [string, number | undefined]> = []
      yield* spool.replay((b, rawBytes) =>
        Effect.sync(() => seen.push([Buffer.concat(b.chunks.map((c) => Buffer.from(c))).toString(), rawBytes]))
      )
      assert.deepStrictEqual(seen, [["ffff", 40], ["rrrrr", undefined], ["gggggg", 60]])
      yield* spool.clear
      // only the raw body goes back to the pool
      assert.deepStrictEqual(released, [5])
      Fs.rmSync(directory, { recursive: true, force: true })
    }))
})
