/**
 * Payload compression (`compression` option, `sink.properties.compression`) against the emulator: each codec
 * round-trips for CSV and JSON (rows in the table), the bytes before and after compression reach the summary and
 * the metrics, a retry resends the body compressed once, `transaction/load` compresses too; and what cannot be
 * compressed or decoded is a typed error saying why (docs/configuration.md "Compression", docs/protocol.md "Payload
 * compression").
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Logger, LogLevel, Metric, Redacted, Ref, Schema, Stream } from "effect"
import {
  Checkpoint,
  Checkpointer,
  ColumnType,
  LoadClient,
  SinkMetrics,
  StarRocksConfig,
  StarRocksSink
} from "../src/index.js"
import * as Fixture from "./emulatorFixture.js"

const Row = Schema.Struct({ id: ColumnType.Int, name: Schema.String, note: Schema.NullOr(Schema.String) })
const rows = Array.from({ length: 500 }, (_, i) => ({ id: i, name: `name ${i % 7}`, note: i % 3 === 0 ? null : "x" }))

// labels of the client-level tests
let seq = 0

const start = Effect.gen(function*() {
  const em = yield* StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 1 })
  const table = () =>
    Fixture.duplicateTable(em, "c", [
      { name: "id", type: "INT" },
      { name: "name", type: "VARCHAR(16)" },
      { name: "note", type: "VARCHAR(8)", nullable: true }
    ])
  return { em, table }
})

const configOf = (fe: ReadonlyArray<string>, table: string, options: Partial<StarRocksConfig.Options> = {}) =>
  Fixture.configOf(fe, table, {
    maxRows: 200,
    maxBytes: 1_000_000,
    allowSmallBuffers: true,
    retryInterval: 1,
    ...options
  })

const sentBytesMetric = (table: string) =>
  Metric.value(SinkMetrics.totalFlushSentBytes.pipe(Metric.tagged("table", SinkMetrics.tableTag("db", table))))
const rawBytesMetric = (table: string) =>
  Metric.value(SinkMetrics.totalFlushBytes.pipe(Metric.tagged("table", SinkMetrics.tableTag("db", table))))

describe("compression", () => {
  for (const codec of StarRocksConfig.compressionCodecs) {
    for (const format of ["csv", "json"] as const) {
      it.scopedLive(`${codec}, ${format}: rows land, headers name the codec, bytes before and after are counted`, () =>
        Effect.gen(function*() {
          const { em, table } = yield* start
          const t = yield* table()
          const config = configOf(em.fe, t, { compression: codec, format })
          const summary = yield* Stream.run(Stream.fromIterable(rows), StarRocksSink.make(Row)).pipe(
            Effect.provide(StarRocksSink.layer(config))
          )
          const stored = yield* em.rows("db", t)
          assert.strictEqual(stored.length, rows.length)
          assert.deepStrictEqual(
            stored.map((r) => ({ id: Number(r["id"]), name: r["name"], note: r["note"] })).sort((a, b) => a.id - b.id),
            rows
          )
          const loads = (yield* em.requests).filter((r) => r.node.startsWith("be") && r.path.includes(`/${t}/`))
          assert.strictEqual(loads.length, 3)
          for (const r of loads) {
            assert.strictEqual(r.headers["compression"], codec)
            assert.strictEqual(r.headers["format"], format === "json" ? "json" : codec === "lz4_frame" ? "lz4" : codec)
          }
          // the summary and the metrics: bytes before compression, and as sent (what the BE received)
          const received = loads.reduce((n, r) => n + r.bodyBytes, 0)
          assert.strictEqual(summary.sentBytes, received)
          assert.isBelow(summary.sentBytes, summary.bytes)
          assert.strictEqual(summary.tables[`db.${t}`]!.sentBytes, received)
          assert.strictEqual((yield* sentBytesMetric(t)).count, received)
          assert.strictEqual((yield* rawBytesMetric(t)).count, summary.bytes)
        }))
    }
  }

  it.scopedLive("without compression nothing changes: no compression header, sentBytes equal bytes", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start
      const t = yield* table()
      const summary = yield* Stream.run(Stream.fromIterable(rows), StarRocksSink.make(Row)).pipe(
        Effect.provide(StarRocksSink.layer(configOf(em.fe, t)))
      )
      const loads = (yield* em.requests).filter((r) => r.node.startsWith("be") && r.path.includes(`/${t}/`))
      for (const r of loads) {
        assert.isUndefined(r.headers["compression"])
        assert.strictEqual(r.headers["format"], "csv")
      }
      assert.strictEqual(summary.sentBytes, summary.bytes)
      assert.strictEqual(summary.sentBytes, loads.reduce((n, r) => n + r.bodyBytes, 0))
    }))

  it.scopedLive("a retry resends the body compressed once (same bytes, one compression per load)", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start
      const t = yield* table()
      yield* em.addFault({ node: "be", path: `/${t}/_stream_load`, nth: 1, action: { _tag: "too-many-versions" } })
      const logs = yield* Ref.make<ReadonlyArray<string>>([])
      const logger = Logger.make(({ message }) => {
        const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
        Effect.runSync(Ref.update(logs, (xs) => [...xs, text]))
      })
      const summary = yield* Stream.run(Stream.fromIterable(rows.slice(0, 100)), StarRocksSink.make(Row)).pipe(
        Effect.provide(StarRocksSink.layer(configOf(em.fe, t, { compression: "zstd" }))),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.Debug)
      )
      assert.strictEqual(summary.rows, 100)
      assert.strictEqual(summary.retries, 1)
      const loads = (yield* em.requests).filter((r) => r.node.startsWith("be") && r.path.includes(`/${t}/`))
      assert.strictEqual(loads.length, 2)
      assert.strictEqual(loads[0]!.bodyBytes, loads[1]!.bodyBytes)
      assert.strictEqual(loads[0]!.headers["label"], loads[1]!.headers["label"])
      assert.strictEqual((yield* Ref.get(logs)).filter((l) => l === "load body compressed").length, 1)
      assert.strictEqual((yield* em.rows("db", t)).length, 100)
    }))

  it.scopedLive("transaction/load is compressed too (sink.at-least-once.use-transaction-stream-load)", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start
      const t = yield* table()
      const config = configOf(em.fe, t, { compression: "lz4_frame", format: "json", useTransactionStreamLoad: true })
      const summary = yield* Stream.run(Stream.fromIterable(rows), StarRocksSink.make(Row)).pipe(
        Effect.provide(StarRocksSink.layer(config))
      )
      assert.strictEqual((yield* em.rows("db", t)).length, rows.length)
      const loads = (yield* em.requests).filter((r) =>
        r.node.startsWith("be") && r.path.includes("/transaction/load") && r.headers["table"] === t
      )
      assert.isAbove(loads.length, 0)
      for (const r of loads) assert.strictEqual(r.headers["compression"], "lz4_frame")
      assert.strictEqual(summary.sentBytes, loads.reduce((n, r) => n + r.bodyBytes, 0))
      assert.isBelow(summary.sentBytes, summary.bytes)
    }))

  it.scopedLive("exactly-once: each transaction/load compressed, the summary counts the bytes as sent", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start
      const t = yield* table()
      const config = configOf(em.fe, t, { compression: "gzip", semantic: "exactly-once" })
      const summary = yield* Stream.fromIterable(rows).pipe(
        Checkpoint.withBarriers({ position: (r: typeof Row.Type) => r.id, everyRows: 250 }),
        Stream.run(StarRocksSink.exactlyOnce(Row, { position: Schema.Number })),
        Effect.provide(StarRocksSink.layer(config)),
        Effect.provide(Checkpointer.layerMemoryForTests)
      )
      assert.strictEqual((yield* em.rows("db", t)).length, rows.length)
      const loads = (yield* em.requests).filter((r) =>
        r.node.startsWith("be") && r.path.includes("/transaction/load") && r.headers["table"] === t
      )
      assert.isAbove(loads.length, 1)
      for (const r of loads) assert.strictEqual(r.headers["compression"], "gzip")
      assert.strictEqual(summary.sentBytes, loads.reduce((n, r) => n + r.bodyBytes, 0))
      assert.isBelow(summary.sentBytes, summary.bytes)
    }))

  it.scopedLive("LoadClient: a codec it does not have, a corrupt body, a codec the BE cannot decode: typed errors", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start
      const t = yield* table()
      const config = configOf(em.fe, t, { maxRetries: 2 })
      const body = (text: string) => {
        const b = Buffer.from(text)
        return { chunks: [b], byteLength: b.byteLength }
      }
      const failure = (headers: Record<string, string>, text: string) =>
        Effect.flatMap(
          LoadClient.LoadClient,
          (client) => client.loadBatch({ database: "db", table: t, label: `bad_${++seq}`, headers, body: body(text) })
        ).pipe(
          Effect.provide(LoadClient.layer(config)),
          Effect.exit,
          Effect.map((exit) => {
            if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") assert.fail(`no typed error: ${String(exit)}`)
            return (exit.cause as { error: Record<string, any> }).error
          })
        )
      const before = (yield* em.requests).length
      // bzip2 is StarRocks', not the client's: refused before any request
      const unsupported = yield* failure({ column_separator: ",", compression: "bzip2" }, "1,a,b\n")
      assert.strictEqual(unsupported._tag, "StreamLoadError")
      assert.strictEqual(unsupported.outcome, "Invalid")
      assert.strictEqual(unsupported.reason, "unsupported compression")
      assert.include(unsupported.message, "lz4_frame, gzip, zstd")
      assert.strictEqual((yield* em.requests).length, before)
      // a body the caller says is compressed (Content-Encoding is sent as it is) that is not: the BE's message,
      // permanent, tried once
      const corrupt = yield* failure({ column_separator: ",", "content-encoding": "zstd" }, "1,a,b\n")
      assert.strictEqual(corrupt._tag, "StreamLoadError")
      assert.strictEqual(corrupt.reason, "corrupt compressed body")
      assert.strictEqual(corrupt.message, "ZSTD decompress failed. error: Unknown frame descriptor")
      assert.isFalse(corrupt.retryable)
      // LZ4 block: a name the FE knows and the BE has no decompressor for
      const block = yield* failure({ column_separator: ",", "content-encoding": "lz4" }, "1,a,b\n")
      assert.strictEqual(block.reason, "unsupported compression")
      assert.strictEqual(block.message, "Unknown compress type: 4")
      assert.strictEqual((yield* em.requests).filter((r) => r.node.startsWith("be")).length, 2)
      assert.strictEqual((yield* em.rows("db", t)).length, 0)
    }))

  it("the option: lower-case StarRocks names, one source, Content-Encoding refused", () => {
    const base = {
      loadUrl: "127.0.0.1:8030",
      database: "db",
      table: "t",
      username: "root",
      password: Redacted.make("")
    }
    assert.strictEqual(StarRocksConfig.make({ ...base, compression: "gzip" }).properties["compression"], "gzip")
    assert.strictEqual(
      StarRocksConfig.make({ ...base, properties: { Compression: "LZ4_FRAME" } }).properties["compression"],
      "lz4_frame"
    )
    const problems = (options: Partial<StarRocksConfig.Options>) =>
      StarRocksConfig.makeEither({ ...base, ...options }).pipe((e) =>
        e._tag === "Left" ? e.left.problems.map((p) => `${p.key}: ${p.reason}`) : []
      )
    assert.deepStrictEqual(problems({ compression: "brotli" as never }), ["compression: \"brotli\" is not allowed"])
    assert.deepStrictEqual(
      problems({ compression: "gzip", properties: { compression: "zstd" } }),
      ["compression: conflicts with properties.compression=zstd"]
    )
    assert.match(
      problems({ properties: { "content-encoding": "gzip" } })[0]!,
      /^properties\.content-encoding: .*compression/
    )
    // the Flink key and the environment variable name the same option
    const fromEnv = Effect.runSync(
      Effect.withConfigProvider(
        StarRocksConfig.config,
        ConfigProvider.fromMap(
          new Map([
            ["STARROCKS_LOAD_URL", "127.0.0.1:8030"],
            ["STARROCKS_DATABASE", "db"],
            ["STARROCKS_TABLE", "t"],
            ["STARROCKS_USERNAME", "root"],
            ["STARROCKS_PASSWORD", ""],
            ["STARROCKS_COMPRESSION", "ZSTD"]
          ]),
          { pathDelim: "_" }
        )
      )
    )
    assert.strictEqual(fromEnv.properties["compression"], "zstd")
    const fromFlink = Effect.runSync(StarRocksConfig.fromProperties({
      "load-url": "127.0.0.1:8030",
      "database-name": "db",
      "table-name": "t",
      username: "root",
      password: "",
      "sink.properties.compression": "lz4_frame"
    }))
    assert.strictEqual(fromFlink.properties["compression"], "lz4_frame")
  })
})
