/**
 * The sink's integration suite: the same test bodies run against the emulator (memory and MariaDB storage) and
 * against a real cluster (`npm run test:real`). Tests that need fault injection or the emulator's request log
 * are registered only where the target has an emulator.
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import type { StarRocksEmulator } from "@effect-starrocks/testkit"
import type { Vitest } from "@effect/vitest"
import { assert } from "@effect/vitest"
import { BigDecimal, Effect, Logger, LogLevel, Redacted, Schedule, Schema, Stream } from "effect"
import { ColumnType, StarRocksConfig, StarRocksSink } from "../../src/index.js"
import type { TableSpec } from "./Target.js"
import { Target, text } from "./Target.js"

let tableSeq = 0
const uniqueTable = (base: string) => `${base}_${process.pid}_${Date.now() % 100000}_${++tableSeq}`

/** The reference row as a typed Schema with its StarRocks column types. */
export const ReferenceRow = ReferenceRows.schema

const referenceSpec = (database: string, table: string): TableSpec => ReferenceRows.tableDef(database, table)

const expectedText = (i: number): Record<string, string | null> => {
  const cells = ReferenceRows.expectedCells(i)
  const out: Record<string, string | null> = {}
  for (const [k, v] of Object.entries(cells)) out[k] = text(v)
  return out
}

/** A config pointing at the target, with small buffers so that 100,000 rows make several loads. */
export const configFor = (
  target: Target,
  table: string,
  overrides: Partial<StarRocksConfig.Options> = {}
): StarRocksConfig.StarRocksConfig =>
  StarRocksConfig.make({
    loadUrl: target.loadUrl,
    database: target.database,
    table,
    username: target.username,
    password: Redacted.make(target.password),
    format: "csv",
    maxRows: 20_000,
    maxBytes: 2 * 1024 * 1024,
    flushInterval: "60 seconds",
    maxRetries: 3,
    retryInterval: "20 millis",
    retryMaxDelay: "200 millis",
    allowSmallBuffers: true,
    ...overrides
  })

const run = <A, I>(
  schema: Schema.Schema<A, I>,
  rows: Iterable<A>,
  config: StarRocksConfig.StarRocksConfig,
  options?: StarRocksSink.MakeOptions
) =>
  Stream.fromIterable(rows).pipe(
    Stream.rechunk(1000),
    Stream.run(StarRocksSink.make(schema, options)),
    Effect.provide(StarRocksSink.layer(config)),
    Logger.withMinimumLogLevel(LogLevel.Error)
  )

export const sinkSuite = (
  it: Vitest.MethodsNonLive<Target, true>,
  features: { readonly emulator: boolean; readonly jdbc: boolean }
) => {
  for (const format of ["csv", "json"] as const) {
    it.effect(`${format}: 100,000 reference rows arrive exactly once`, () =>
      Effect.gen(function*() {
        const target = yield* Target
        const table = uniqueTable(`ref_${format}`)
        const spec = referenceSpec(target.database, table)
        yield* target.createTable(spec)
        const summary = yield* run(ReferenceRow, ReferenceRows.rows(100_000), configFor(target, table, { format }))
        assert.strictEqual(summary.rows, 100_000)
        assert.isAtLeast(summary.loads, 5)
        const rows = yield* target.rows(spec)
        assert.strictEqual(rows.length, 100_000)
        const seen = new Set<string>()
        for (const row of rows) {
          const id = Number(row["id"])
          seen.add(String(id))
          assert.deepStrictEqual(row, expectedText(id))
        }
        assert.strictEqual(seen.size, 100_000)
      }), 120_000)
  }

  it.effect(
    "transaction stream load: 100,000 reference rows arrive exactly once, every label VISIBLE",
    () =>
      Effect.gen(function*() {
        const target = yield* Target
        const table = uniqueTable("ref_txn")
        const spec = referenceSpec(target.database, table)
        yield* target.createTable(spec)
        const summary = yield* run(
          ReferenceRow,
          ReferenceRows.rows(100_000),
          configFor(target, table, { useTransactionStreamLoad: true })
        )
        assert.strictEqual(summary.rows, 100_000)
        const rows = yield* target.rows(spec)
        assert.strictEqual(rows.length, 100_000)
        assert.strictEqual(new Set(rows.map((r) => r["id"])).size, 100_000)
        if (target.emulator) {
          const txns = (yield* target.emulator.transactions(target.database)).filter((t) => t.table === table)
          assert.strictEqual(txns.length, summary.loads)
          assert.isTrue(txns.every((t) => t.status === "VISIBLE" && t.kind === "txn"))
        }
      }),
    120_000
  )

  const AllTypes = Schema.Struct({
    id: ColumnType.Int,
    b: Schema.NullOr(ColumnType.Boolean),
    ti: Schema.NullOr(ColumnType.TinyInt),
    si: Schema.NullOr(ColumnType.SmallInt),
    i: Schema.NullOr(ColumnType.Int),
    bi: Schema.NullOr(ColumnType.BigInt),
    li: Schema.NullOr(ColumnType.LargeInt),
    f: Schema.NullOr(ColumnType.Float),
    d: Schema.NullOr(ColumnType.Double),
    dec: Schema.NullOr(ColumnType.Decimal(20, 6)),
    c: Schema.NullOr(ColumnType.Char(8)),
    v: Schema.NullOr(ColumnType.Varchar(64)),
    s: Schema.NullOr(ColumnType.String),
    dt: Schema.NullOr(ColumnType.Date),
    ts: Schema.NullOr(ColumnType.DateTime),
    j: Schema.NullOr(ColumnType.Json),
    arr: Schema.NullOr(ColumnType.Array(ColumnType.Int))
  })
  const allTypesSpec = (database: string, table: string): TableSpec => ({
    database,
    table,
    model: "DUPLICATE",
    key: ["id"],
    columns: [
      { name: "id", type: "INT" },
      { name: "b", type: "BOOLEAN" },
      { name: "ti", type: "TINYINT" },
      { name: "si", type: "SMALLINT" },
      { name: "i", type: "INT" },
      { name: "bi", type: "BIGINT" },
      { name: "li", type: "LARGEINT" },
      { name: "f", type: "FLOAT" },
      { name: "d", type: "DOUBLE" },
      { name: "dec", type: "DECIMAL(20,6)" },
      { name: "c", type: "CHAR(8)" },
      { name: "v", type: "VARCHAR(64)" },
      { name: "s", type: "STRING" },
      { name: "dt", type: "DATE" },
      { name: "ts", type: "DATETIME" },
      { name: "j", type: "JSON" },
      { name: "arr", type: "ARRAY<INT>" }
    ]
  })
  const typeRows: ReadonlyArray<typeof AllTypes.Type> = [
    {
      id: 1,
      b: true,
      ti: -128,
      si: 32767,
      i: -2147483648,
      bi: 9007199254740991n,
      li: 170141183460469231731687303715884105727n,
      f: 1.5,
      d: 0.1,
      dec: BigDecimal.unsafeFromString("12345678901234.123456"),
      c: "abc",
      v: "héllo wörld",
      s: "a longer string",
      dt: new Date(Date.UTC(2024, 1, 29)),
      ts: new Date(Date.UTC(2024, 1, 29, 23, 59, 58, 123)),
      j: { a: 1, b: [true, null] },
      arr: [1, 2, 3]
    },
    {
      id: 2,
      b: false,
      ti: 127,
      si: -32768,
      i: 2147483647,
      bi: -9223372036854775808n,
      li: -170141183460469231731687303715884105728n,
      f: -0.25,
      d: -1.7976931348623157e308,
      dec: BigDecimal.unsafeFromString("-0.000001"),
      c: "",
      v: "",
      s: "",
      dt: new Date(Date.UTC(1970, 0, 1)),
      ts: new Date(Date.UTC(1999, 11, 31, 0, 0, 0)),
      j: [],
      arr: []
    },
    {
      id: 3,
      b: null,
      ti: null,
      si: null,
      i: null,
      bi: null,
      li: null,
      f: null,
      d: null,
      dec: null,
      c: null,
      v: null,
      s: null,
      dt: null,
      ts: null,
      j: null,
      arr: null
    }
  ]
  const expectedTypes: ReadonlyArray<Record<string, string | null>> = [
    {
      id: "1",
      b: "1",
      ti: "-128",
      si: "32767",
      i: "-2147483648",
      bi: "9007199254740991",
      li: "170141183460469231731687303715884105727",
      f: "1.5",
      d: "0.1",
      dec: "12345678901234.123456",
      c: "abc",
      v: "héllo wörld",
      s: "a longer string",
      dt: "2024-02-29",
      ts: "2024-02-29 23:59:58.123000",
      j: "{\"a\":1,\"b\":[true,null]}",
      arr: "[1,2,3]"
    },
    {
      id: "2",
      b: "0",
      ti: "127",
      si: "-32768",
      i: "2147483647",
      bi: "-9223372036854775808",
      li: "-170141183460469231731687303715884105728",
      f: "-0.25",
      d: "-1.7976931348623157e+308",
      dec: "-0.000001",
      c: "",
      v: "",
      s: "",
      dt: "1970-01-01",
      ts: "1999-12-31 00:00:00",
      j: "[]",
      arr: "[]"
    },
    Object.fromEntries(["id", ...Object.keys(typeRows[0]!).slice(1)].map((k) => [k, k === "id" ? "3" : null]))
  ]
  for (const format of ["csv", "json"] as const) {
    it.effect(`${format}: every type of the mapping round-trips`, () =>
      Effect.gen(function*() {
        const target = yield* Target
        const table = uniqueTable(`types_${format}`)
        const spec = allTypesSpec(target.database, table)
        yield* target.createTable(spec)
        yield* run(AllTypes, typeRows, configFor(target, table, { format }))
        const rows = yield* target.rows(spec)
        assert.deepStrictEqual(rows, expectedTypes)
      }))
  }

  const Note = Schema.Struct({ id: ColumnType.Int, note: Schema.NullOr(ColumnType.Varchar(200)) })
  const hostile = [
    "a,b",
    "tab\there",
    "line1\nline2",
    "crlf\r\n",
    "\"",
    "\"\"",
    "\"lead",
    "trail\"",
    "x\"y",
    "\\",
    "end\\",
    "a\\Nb",
    "\\\\N",
    "N",
    "nul\u0000byte",
    "é€😀",
    "  spaces  ",
    "||",
    "\\\"",
    "\"\\",
    "",
    "\\N",
    null
  ]
  it.effect("csv: separators, newlines, quotes, backslashes and \\N arrive intact", () =>
    Effect.gen(function*() {
      const target = yield* Target
      const table = uniqueTable("hostile")
      const spec: TableSpec = {
        database: target.database,
        table,
        model: "DUPLICATE",
        key: ["id"],
        columns: [{ name: "id", type: "INT" }, { name: "note", type: "VARCHAR(200)", nullable: true }]
      }
      yield* target.createTable(spec)
      const rows = hostile.map((note, id) => ({ id, note }))
      yield* run(Note, rows, configFor(target, table, { format: "csv" }))
      const stored = yield* target.rows(spec)
      assert.deepStrictEqual(stored, rows.map((r) => ({ id: String(r.id), note: r.note })))
    }))

  it.effect("csv: with the JSON fallback off, the exact string \\N is a typed error naming row and column", () =>
    Effect.gen(function*() {
      const target = yield* Target
      const table = uniqueTable("nofallback")
      // the table exists (the startup check looks it up), and the bad row never reaches it
      yield* target.createTable({
        database: target.database,
        table,
        model: "DUPLICATE",
        key: ["id"],
        columns: [{ name: "id", type: "INT" }, { name: "note", type: "VARCHAR(200)", nullable: true }]
      })
      const error = yield* run(
        Note,
        [{ id: 1, note: "ok" }, { id: 2, note: "\\N" }],
        configFor(target, table, { format: "csv", csvJsonFallback: false })
      ).pipe(Effect.flip)
      assert.strictEqual(error._tag, "RowEncodeError")
      if (error._tag === "RowEncodeError") {
        assert.strictEqual(error.row, 1)
        assert.strictEqual(error.column, "note")
      }
    }))

  if (features.jdbc) {
    it.effect("jdbc-url: schema mismatches are reported together in one TableSchemaError", () =>
      Effect.gen(function*() {
        const target = yield* Target
        const table = uniqueTable("mismatch")
        yield* target.createTable(referenceSpec(target.database, table))
        const Wrong = Schema.Struct({
          id: ColumnType.BigInt,
          username: ColumnType.Varchar(64),
          day: Schema.String,
          score: ColumnType.Double
        })
        const error = yield* run(
          Wrong,
          [{ id: 1, username: "x", day: "2024-01-01", score: 1 }],
          configFor(target, table, {
            jdbcUrl: `${target.jdbc!.host}:${target.jdbc!.port}`,
            ...target.jdbcCredentials
          })
        ).pipe(Effect.flip)
        assert.strictEqual(error._tag, "TableSchemaError")
        const message = String(error.message)
        assert.include(message, "username")
        assert.include(message, "day")
      }))

    it.effect("jdbc-url: a matching schema is checked and loads", () =>
      Effect.gen(function*() {
        const target = yield* Target
        const table = uniqueTable("jdbc_ok")
        const spec = referenceSpec(target.database, table)
        yield* target.createTable(spec)
        const summary = yield* run(
          ReferenceRow,
          ReferenceRows.rows(1_000),
          configFor(target, table, {
            jdbcUrl: `${target.jdbc!.host}:${target.jdbc!.port}`,
            ...target.jdbcCredentials
          })
        )
        assert.strictEqual(summary.rows, 1_000)
        assert.strictEqual((yield* target.rows(spec)).length, 1_000)
      }))
  }

  if (features.emulator) emulatorOnly(it)
}

/** Tests that need the emulator's fault injection, node control or request log. */
const emulatorOnly = (it: Vitest.MethodsNonLive<Target, true>) => {
  const setup = (base: string) =>
    Effect.gen(function*() {
      const target = yield* Target
      const emulator = target.emulator!
      yield* emulator.clearFaults
      const table = uniqueTable(base)
      const spec = referenceSpec(target.database, table)
      yield* target.createTable(spec)
      return { target, emulator, table, spec }
    })

  const stagesOf = (log: ReadonlyArray<StarRocksEmulator.RequestLogEntry>, table: string) =>
    log.filter((r) => r.method === "PUT" && r.path.includes(`/${table}/_stream_load`))

  it.effect("the FE→BE redirect is cross-origin, the body goes only to the BE, and the BE gets the credentials", () =>
    Effect.gen(function*() {
      const { emulator, spec, table, target } = yield* setup("redirect")
      yield* run(ReferenceRow, ReferenceRows.rows(5_000), configFor(target, table))
      const log = stagesOf(yield* emulator.requests, table)
      const fe = log.filter((r) => r.node.startsWith("fe"))
      const be = log.filter((r) => r.node.startsWith("be"))
      assert.isAtLeast(fe.length, 1)
      assert.strictEqual(be.length, fe.length)
      for (const r of fe) {
        assert.strictEqual(r.bodyBytes, 0, "no body byte reaches the FE")
        assert.strictEqual(r.headers["expect"], "100-continue")
      }
      const auth = "Basic " + Buffer.from(`${target.username}:${target.password}`).toString("base64")
      for (const r of be) {
        assert.strictEqual(r.headers["authorization"], auth)
        assert.isAbove(r.bodyBytes, 0)
      }
      assert.isTrue(emulator.bes.every((b) => !b.startsWith("127.0.0.1:")), "BEs are on other loopback addresses")
      assert.strictEqual((yield* target.rows(spec)).length, 5_000)
    }))

  it.effect("the first of two FEs is down: the load still lands", () =>
    Effect.gen(function*() {
      const { emulator, spec, table, target } = yield* setup("fe_down")
      assert.isAtLeast(emulator.fe.length, 2)
      yield* emulator.setNode("fe0", "down")
      const summary = yield* run(ReferenceRow, ReferenceRows.rows(10_000), configFor(target, table)).pipe(
        Effect.ensuring(emulator.setNode("fe0", "up"))
      )
      assert.strictEqual(summary.rows, 10_000)
      assert.strictEqual((yield* target.rows(spec)).length, 10_000)
    }))

  const faults: ReadonlyArray<readonly [string, StarRocksEmulator.Fault["action"], "plain" | "transaction"]> = [
    ["a connection reset mid-body", { _tag: "close-mid-body" }, "plain"],
    ["HTTP 500", { _tag: "http-500" }, "plain"],
    ["\"Too many versions\"", { _tag: "too-many-versions" }, "plain"],
    ["a memory limit", { _tag: "mem-limit" }, "plain"],
    ["TXN_IN_PROCESSING", { _tag: "txn-in-processing" }, "transaction"],
    ["a connection reset mid-body", { _tag: "close-mid-body" }, "transaction"],
    ["HTTP 500", { _tag: "http-500" }, "transaction"],
    ["\"Too many versions\"", { _tag: "too-many-versions" }, "transaction"]
  ]
  for (const [name, action, mode] of faults) {
    it.effect(`${mode} stream load: ${name} is retried under the same label, with no duplicate rows`, () =>
      Effect.gen(function*() {
        const { emulator, spec, table, target } = yield* setup("fault")
        const path = mode === "plain" ? `/${table}/_stream_load` : "/api/transaction/load"
        yield* emulator.addFault({ node: "be", path, nth: 2, action })
        const summary = yield* run(
          ReferenceRow,
          ReferenceRows.rows(30_000),
          configFor(target, table, { maxRows: 10_000, useTransactionStreamLoad: mode === "transaction" })
        )
        assert.strictEqual(summary.rows, 30_000)
        assert.strictEqual(summary.loads, 3)
        // a reset on a reused keep-alive socket before any answer is resent by the transport itself (a stale
        // socket, nothing committed: the same label makes it safe), and counted as a retry like any other
        assert.isAtLeast(summary.retries, 1)
        const be = (yield* emulator.requests).filter((r) =>
          r.node.startsWith("be") && r.method === "PUT" &&
          (mode === "plain" ? r.path.includes(path) : r.path.includes(path) && r.headers["table"] === table)
        )
        const labels = be.map((r) => r.headers["label"])
        assert.strictEqual(new Set(labels).size, 3, "three batches, three labels, whatever the attempts")
        assert.isAbove(labels.length, 3, "the faulted batch was sent again")
        const rows = yield* target.rows(spec)
        assert.strictEqual(rows.length, 30_000)
        assert.strictEqual(new Set(rows.map((r) => r["id"])).size, 30_000)
        yield* emulator.clearFaults
      }))
  }

  it.effect("Publish Timeout counts as success and the rows become visible later", () =>
    Effect.gen(function*() {
      const { emulator, spec, table, target } = yield* setup("publish")
      yield* emulator.addFault({
        node: "be",
        path: `/${table}/_stream_load`,
        nth: 1,
        action: { _tag: "publish-timeout", visibleAfterMs: 300 }
      })
      const summary = yield* run(ReferenceRow, ReferenceRows.rows(1_000), configFor(target, table))
      assert.strictEqual(summary.loads, 1)
      assert.strictEqual(summary.retries, 0, "not re-sent")
      // visible once the publish has caught up (300 ms on the emulator's clock): polled with a deadline, not one
      // fixed sleep, which a loaded machine can outrun
      const visible = yield* Effect.gen(function*() {
        yield* emulator.tick
        const n = (yield* target.rows(spec)).length
        if (n < 1_000) return yield* Effect.fail(n)
        return n
      }).pipe(
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("20 seconds"))),
        Effect.catchAll((n) => Effect.succeed(n))
      )
      assert.strictEqual(visible, 1_000)
      yield* emulator.clearFaults
    }))

  it.effect("\"FAILED: No backend alive.\" is never success: the sink fails with a typed error", () =>
    Effect.gen(function*() {
      const { emulator, spec, table, target } = yield* setup("nobackend")
      yield* Effect.forEach(emulator.bes, (_, i) => emulator.setNode(`be${i}`, "down"), { discard: true })
      const error = yield* run(ReferenceRow, ReferenceRows.rows(100), configFor(target, table, { maxRetries: 1 })).pipe(
        Effect.flip,
        Effect.ensuring(Effect.forEach(emulator.bes, (_, i) => emulator.setNode(`be${i}`, "up"), { discard: true }))
      )
      assert.strictEqual(error._tag, "StreamLoadError")
      assert.include(String(error.message), "No backend alive")
      assert.strictEqual((yield* target.rows(spec)).length, 0)
    }))
}
