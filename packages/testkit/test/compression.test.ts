/**
 * Payload compression through the emulator's HTTP servers, on the memory and the MySQL storage alike: each codec the
 * sink sends (LZ4 frame, gzip, zstd) round-trips for CSV and JSON, by the `compression` header and by the
 * compressed-CSV `format` alias, plain and through `transaction/load`; and what StarRocks refuses is refused with its
 * messages (docs/protocol.md "Payload compression"): an unknown name at the header phase, a codec the BE cannot
 * stream-decode (LZ4 block, ZLIB), a corrupt or cut body.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Zstd from "@toondepauw/node-zstd"
import { Effect } from "effect"
import * as Lz4 from "lz4-napi"
import * as Zlib from "node:zlib"
import { StarRocksEmulator } from "../src/index.js"
import { streamLoad, txn } from "./utils.js"
import * as Maria from "./utils/mariadb.js"

const targets = await Maria.targets("srt_cmp")

const codecs = {
  lz4_frame: (b: Buffer) => Lz4.compressFrameSync(b),
  gzip: (b: Buffer) => Zlib.gzipSync(b),
  zstd: (b: Buffer) => new Zstd.Encoder(3).encodeSync(b)
} as const

/** The compressed-CSV `format` alias of each codec. */
const alias = { lz4_frame: "lz4", gzip: "gzip", zstd: "zstd" } as const

const csvRows = "1,a\n2,b\n3,\\N\n"
const jsonRows = "[{\"id\":1,\"name\":\"a\"},{\"id\":2,\"name\":\"b\"},{\"id\":3,\"name\":null}]"
const expected = [{ id: "1", name: "a" }, { id: "2", name: "b" }, { id: "3", name: null }]

for (const [name, open] of targets) {
  const start = Effect.gen(function*() {
    const t = yield* open
    const em = yield* StarRocksEmulator.make({
      tables: [],
      admin: false,
      cleanerIntervalMs: 60_000,
      ...(t.storage !== undefined ? { storage: t.storage } : {})
    })
    let n = 0
    /** A new table `t<n>` and the effect that reads its rows. */
    const fresh = Effect.gen(function*() {
      const table = `t${++n}`
      yield* em.createTable({
        database: t.db,
        table,
        model: "DUPLICATE",
        key: ["id"],
        columns: [{ name: "id", type: "BIGINT" }, { name: "name", type: "VARCHAR(16)", nullable: true }]
      })
      const rows = em.rows(t.db, table).pipe(
        Effect.map((rs) =>
          rs.map((r) => ({ id: String(r["id"]), name: r["name"] })).sort((a, b) => a.id < b.id ? -1 : 1)
        )
      )
      return { table, rows }
    })
    return { db: t.db, fe: em.fe[0]!, fresh }
  })

  describe(`payload compression, ${name} storage`, () => {
    it.scopedLive("each codec round-trips for CSV and JSON, by the compression header and by the CSV format alias", () =>
      Effect.gen(function*() {
        const { db, fe, fresh } = yield* start
        for (const [codec, compress] of Object.entries(codecs) as Array<[keyof typeof codecs, typeof codecs.gzip]>) {
          const cases: ReadonlyArray<readonly [string, string, Record<string, string>]> = [
            ["csv, header", csvRows, { column_separator: ",", compression: codec.toUpperCase() }],
            ["csv, alias", csvRows, { column_separator: ",", format: alias[codec] }],
            ["csv, alias and header (as the sink sends)", csvRows, {
              column_separator: ",",
              format: alias[codec],
              compression: codec
            }],
            ["json, header", jsonRows, { format: "json", strip_outer_array: "true", compression: codec }]
          ]
          for (const [what, text, headers] of cases) {
            const { rows, table } = yield* fresh
            const body = compress(Buffer.from(text))
            const res = yield* streamLoad(fe, db, table, body as unknown as string, { ...headers, label: `l_${table}` })
            assert.strictEqual(res.json.Status, "Success", `${codec} ${what}: ${res.text}`)
            assert.strictEqual(res.json.NumberLoadedRows, 3, `${codec} ${what}`)
            assert.strictEqual(
              res.json.LoadBytes,
              body.byteLength,
              `${codec} ${what}: LoadBytes counts the bytes received`
            )
            assert.deepStrictEqual(yield* rows, expected, `${codec} ${what}`)
          }
        }
      }))

    it.scopedLive("transaction/load takes compressed bodies too (two loads of one transaction)", () =>
      Effect.gen(function*() {
        const { db, fe, fresh } = yield* start
        for (const [codec, compress] of Object.entries(codecs) as Array<[keyof typeof codecs, typeof codecs.gzip]>) {
          const { rows, table } = yield* fresh
          const h = { db, table, label: `txn_${table}` }
          assert.strictEqual((yield* txn(fe, "begin", h)).json.Status, "OK")
          const load = { ...h, column_separator: ",", format: alias[codec], compression: codec }
          for (const part of ["1,a\n2,b\n", "3,\\N\n"]) {
            const res = yield* txn(fe, "load", load, compress(Buffer.from(part)) as unknown as string)
            assert.strictEqual(res.json.Status, "OK", `${codec}: ${res.text}`)
          }
          assert.strictEqual((yield* txn(fe, "commit", h)).json.Status, "OK")
          assert.deepStrictEqual(yield* rows, expected, codec)
        }
      }))

    it.scopedLive("refused as StarRocks refuses: unknown name, LZ4 block and ZLIB, corrupt and cut bodies", () =>
      Effect.gen(function*() {
        const { db, fe, fresh } = yield* start
        const { rows, table } = yield* fresh
        let n = 0
        const fail = (body: Buffer | string, headers: Record<string, string>) =>
          streamLoad(fe, db, table, body as string, { column_separator: ",", ...headers, label: `bad_${++n}` }).pipe(
            Effect.map((res) => {
              assert.strictEqual(res.json.Status, "Fail", res.text)
              return String(res.json.Message)
            })
          )
        const csv = Buffer.from(csvRows)
        // the FE's name check (StreamLoadInfo: CompressionUtils.findTCompressionByName)
        assert.strictEqual(yield* fail(Zlib.gzipSync(csv), { compression: "rar" }), "Unsupported compression type: rar")
        // names the FE knows, the BE cannot stream-decode (StreamCompression::create_decompressor)
        assert.strictEqual(yield* fail(Zlib.deflateSync(csv), { compression: "zlib" }), "Unknown compress type: 6")
        assert.strictEqual(yield* fail(Lz4.compressSync(csv), { compression: "lz4" }), "Unknown compress type: 4")
        // corrupt bodies: each decompressor's message
        const garbage = Buffer.from("this is not a compressed body at all")
        assert.strictEqual(yield* fail(garbage, { compression: "gzip" }), "Failed to inflate. return code: -3")
        assert.strictEqual(
          yield* fail(garbage, { compression: "zstd" }),
          "ZSTD decompress failed. error: Unknown frame descriptor"
        )
        assert.strictEqual(
          yield* fail(garbage, { compression: "lz4_frame" }),
          "LZ4F_getFrameInfo error: ERROR_frameType_unknown"
        )
        assert.strictEqual(
          yield* fail(Buffer.from("tiny"), { format: "lz4" }),
          "Lz4 header size is between 7 and 15 bytes. but input size is only: 4"
        )
        // a body cut inside its frame
        for (const [codec, compress] of Object.entries(codecs) as Array<[string, typeof codecs.gzip]>) {
          const whole = compress(Buffer.from(csvRows.repeat(50)))
          const cut = whole.subarray(0, whole.length - 6)
          assert.strictEqual(
            yield* fail(cut, { compression: codec }),
            `Failed to decompress. input_len:${cut.length}, output_len:${cut.length}`,
            codec
          )
        }
        // JSON the same
        assert.strictEqual(
          yield* fail(garbage, { format: "json", compression: "zstd" }),
          "ZSTD decompress failed. error: Unknown frame descriptor"
        )
        assert.deepStrictEqual(yield* rows, [])
      }))
  })
}
