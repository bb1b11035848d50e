/**
 * The frames the client streams (internal/client/compression.ts, docs/protocol.md "Payload compression"): ONE frame
 * per body, built chunk by chunk, so that the raw body is never copied into one buffer.
 *
 * - LZ4: the frame built around lz4-napi's blocks is a valid LZ4 frame for two independent decoders, the `lz4`
 *   package's (its own frame parser, which checks the header checksum) and lz4-napi's (lz4_flex): blocks of at most
 *   1 MiB (a larger chunk is split), a block that does not shrink stored as it is, an empty chunk skipped.
 * - zstd: one frame (its compressed size is the body's), the raw size in its header, decoded back.
 * - Memory: compressing a body of 40 chunks of 1 MiB adds about its frame to the process' ArrayBuffers, not a copy
 *   of the body (the code before copied a body of several chunks into one buffer for lz4_frame and zstd).
 * - Bodies of several chunks round-trip through the emulator on memory and MariaDB storage, CSV and JSON.
 */
import { MysqlStorage, StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, Schema, Stream } from "effect"
import * as Lz4Napi from "lz4-napi"
import * as Crypto from "node:crypto"
import { createRequire } from "node:module"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import * as Zlib from "node:zlib"
import * as ZstdBinding from "zstd-napi/binding.js"
import { ColumnType, StarRocksConfig, StarRocksSink } from "../src/index.js"
import * as Compression from "../src/internal/client/compression.js"
import type { LoadBody } from "../src/LoadBody.js"
import { requireMariaDb } from "./integration/mariadb.js"

/** The `lz4` package (CommonJS, no types): its frame decoder. */
const Lz4 = createRequire(import.meta.url)("lz4") as { readonly decode: (frame: Buffer) => Buffer }

/** JSON lines, `n` bytes, varied enough that a codec has work to do, repetitive enough that it shrinks about 4 ×. */
const textOf = (n: number, seed: number): Buffer => {
  const parts: Array<string> = []
  let size = 0
  for (let i = 0; size < n; i++) {
    const line = `{"id":${seed * 1_000_000 + i},"name":"name ${(i * 7) % 13}","n":${(i * 2654435761) % 1000}}\n`
    parts.push(line)
    size += line.length
  }
  return Buffer.from(parts.join("")).subarray(0, n)
}

const concat = (body: LoadBody): Buffer => Buffer.concat(body.chunks)

/** Compresses `body` with `codec`, collecting what is handed back. */
const compressed = (codec: Compression.Codec, body: LoadBody) =>
  Effect.gen(function*() {
    const handed: Array<Uint8Array> = []
    const out = yield* Compression.compress(codec, {}, body, (b) => handed.push(...b.chunks))
    assert.strictEqual(out.body.byteLength, out.body.chunks.reduce((a, c) => a + c.byteLength, 0))
    assert.strictEqual(out.rawBytes, body.byteLength)
    // every chunk handed back exactly once
    assert.strictEqual(handed.length, body.chunks.length)
    for (const c of body.chunks) assert.strictEqual(handed.filter((h) => h === c).length, 1)
    return out
  })

describe("streamed frames", () => {
  it.effect("lz4_frame: one valid LZ4 frame of independent blocks, for two independent decoders", () =>
    Effect.gen(function*() {
      const chunks = [
        textOf(16 * 1024, 1),
        // split into blocks of at most 1 MiB
        textOf(3 * 1024 * 1024 + 5000, 2),
        // does not shrink: stored as it is
        Crypto.randomBytes(64 * 1024),
        new Uint8Array(0),
        textOf(100, 3)
      ]
      const raw = Buffer.concat(chunks)
      const out = yield* compressed("lz4_frame", { chunks, byteLength: raw.byteLength })
      const frame = concat(out.body)
      // magic, FLG (version 01, independent blocks), BD (1 MiB blocks), header checksum
      assert.deepStrictEqual([...frame.subarray(0, 7)], [0x04, 0x22, 0x4d, 0x18, 0x60, 0x60, 0x51])
      // walk the blocks: each at most 1 MiB, the random one stored, then the end mark closing the body
      let at = 7
      const blocks: Array<{ readonly size: number; readonly stored: boolean }> = []
      for (;;) {
        const word = frame.readUInt32LE(at)
        at += 4
        if (word === 0) break
        const size = word & 0x7fffffff
        blocks.push({ size, stored: (word & 0x80000000) !== 0 })
        at += size
      }
      assert.strictEqual(at, frame.byteLength)
      assert.strictEqual(blocks.length, 1 + 4 + 1 + 1)
      assert.isTrue(blocks.every((b) => b.size <= 1024 * 1024))
      assert.deepStrictEqual(blocks.map((b) => b.stored), [false, false, false, false, false, true, false])
      // the `lz4` package's decoder (its own frame parser, header checksum checked) and lz4_flex's
      assert.isTrue(Lz4.decode(frame).equals(raw))
      assert.isTrue((yield* Effect.promise(() => Lz4Napi.decompressFrame(frame))).equals(raw))
      // about the ratio of lz4-napi's own one-buffer frame
      const whole = yield* Effect.promise(() => Lz4Napi.compressFrame(raw))
      assert.isBelow(frame.byteLength, whole.byteLength * 1.02)
    }))

  it.effect("zstd: one frame with the body's size in its header, decoded back", () =>
    Effect.gen(function*() {
      const chunks = [textOf(16 * 1024, 1), textOf(1024 * 1024, 2), new Uint8Array(0), textOf(700 * 1024, 3)]
      const raw = Buffer.concat(chunks)
      const out = yield* compressed("zstd", { chunks, byteLength: raw.byteLength })
      const frame = concat(out.body)
      assert.strictEqual(ZstdBinding.findFrameCompressedSize(frame), frame.byteLength)
      assert.strictEqual(ZstdBinding.getFrameContentSize(frame), raw.byteLength)
      const back = Buffer.alloc(raw.byteLength)
      assert.strictEqual(ZstdBinding.decompress(back, frame), raw.byteLength)
      assert.isTrue(back.equals(raw))
      // a second body through the same (pooled) context: a frame of its own
      const again = concat((yield* compressed("zstd", { chunks: [raw.subarray(0, 1000)], byteLength: 1000 })).body)
      assert.strictEqual(ZstdBinding.getFrameContentSize(again), 1000)
    }))

  it.effect("gzip: one member, decoded back", () =>
    Effect.gen(function*() {
      const chunks = [textOf(16 * 1024, 1), textOf(1024 * 1024, 2)]
      const raw = Buffer.concat(chunks)
      const out = yield* compressed("gzip", { chunks, byteLength: raw.byteLength })
      assert.isTrue(Zlib.gunzipSync(concat(out.body)).equals(raw))
    }))

  describe("the raw body is never copied into one buffer", () => {
    V8.setFlagsFromString("--expose-gc")
    const gc = Vm.runInNewContext("gc") as () => void
    const MiB = 1024 * 1024
    for (const codec of Compression.codecs) {
      it.effect(`${codec}: a body of 40 chunks of 1 MiB adds about its frame, not a copy of the body`, () =>
        Effect.gen(function*() {
          const chunks = Array.from({ length: 40 }, (_, i) => textOf(MiB, i))
          const body: LoadBody = { chunks, byteLength: 40 * MiB }
          // warm the codec up (its module, a zstd context) before the baseline
          yield* Compression.compress(codec, {}, { chunks: [chunks[0]!.subarray(0, 1000)], byteLength: 1000 })
          // what earlier tests left (zlib streams let their buffers go on later turns of the event loop) is freed
          for (let i = 0; i < 3; i++) {
            yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
            gc()
          }
          const base = process.memoryUsage().arrayBuffers
          let peak = 0
          const sample = () => {
            peak = Math.max(peak, process.memoryUsage().arrayBuffers - base)
          }
          const out = yield* Compression.compress(codec, {}, body, sample)
          sample()
          // the frame is part of the peak: a few MiB; a copy of the body would add its 40 MiB on top
          assert.isBelow(out.body.byteLength, 12 * MiB)
          assert.isBelow(peak, out.body.byteLength + 8 * MiB, `${codec}: ${(peak / MiB).toFixed(1)} MiB above the base`)
        }))
    }
  })
})

const Row = Schema.Struct({ id: ColumnType.Int, name: Schema.String, payload: Schema.String })
const rowsOf = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    id: i,
    name: `name ${i % 11}`,
    payload: `p${(i * 2654435761) % 100000} ${"abcdefghij".repeat(1 + (i % 5))}`
  }))
const N = 20_000

const roundTrip = (storage: "memory" | "mariadb") =>
  Effect.gen(function*() {
    const database = storage === "mariadb" ? "test" : "db"
    const em = yield* StarRocksEmulator.make({
      users: { root: "" },
      fes: 1,
      bes: 1,
      storage: storage === "mariadb" ? yield* MysqlStorage.make("mysql://root@127.0.0.1:3306/test") : undefined
    })
    for (const codec of StarRocksConfig.compressionCodecs) {
      for (const format of ["csv", "json"] as const) {
        const table = `frame_${codec}_${format}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`
        yield* em.createTable({
          database,
          table,
          model: "DUPLICATE",
          key: [],
          columns: [
            { name: "id", type: "INT" },
            { name: "name", type: "VARCHAR(16)" },
            { name: "payload", type: "VARCHAR(80)" }
          ]
        })
        const config = StarRocksConfig.make({
          loadUrl: em.fe,
          database,
          table,
          username: "root",
          password: Redacted.make(""),
          format,
          compression: codec,
          // bodies of several of the encoder's buffers (16 KiB, 32 KiB, … 1 MiB)
          maxRows: N,
          maxBytes: 4_000_000,
          allowSmallBuffers: true
        })
        const summary = yield* Stream.run(Stream.fromIterable(rowsOf(N)), StarRocksSink.make(Row)).pipe(
          Effect.provide(StarRocksSink.layer(config))
        )
        assert.strictEqual(summary.rows, N)
        assert.isBelow(summary.sentBytes, summary.bytes)
        const stored = yield* em.rows(database, table)
        assert.strictEqual(stored.length, N)
        const byId = new Map(stored.map((r) => [Number(r["id"]), r]))
        for (const r of rowsOf(N)) assert.strictEqual(byId.get(r.id)?.["payload"], r.payload)
        const loads = (yield* em.requests).filter((r) => r.node.startsWith("be") && r.path.includes(`/${table}/`))
        assert.isAbove(loads.length, 0)
        for (const r of loads) assert.strictEqual(r.headers["compression"], codec)
        // a body of several encoder buffers: more than one MiB raw
        assert.isAbove(summary.bytes / loads.length, 1024 * 1024)
      }
    }
  })

describe("bodies of several chunks round-trip through the emulator", () => {
  it.scopedLive("memory storage: each codec, CSV and JSON", () => roundTrip("memory"), { timeout: 60_000 })
  describe.runIf(requireMariaDb())("MariaDB", () => {
    it.scopedLive("MariaDB storage: each codec, CSV and JSON", () => roundTrip("mariadb"), { timeout: 120_000 })
  })
})
