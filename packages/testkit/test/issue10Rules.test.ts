/**
 * The rules of issue 10 ("Why") where the emulator differed from StarRocks; each test failed on the emulator before
 * the fix. Facts and their sources: docs/protocol.md §3.4, §3.5, §5.5, §6.3, §6.7, §8.2, §8.4.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { StarRocksEmulator } from "../src/index.js"
import { followE, ROOT, streamLoad, TABLES, txn } from "./utils.js"

const extra: ReadonlyArray<StarRocksEmulator.TableDef> = [
  {
    database: "d",
    table: "nn",
    model: "PRIMARY",
    key: ["id"],
    columns: [
      { name: "id", type: "BIGINT" },
      { name: "name", type: "VARCHAR(16)", nullable: false },
      { name: "note", type: "VARCHAR(16)", nullable: true }
    ]
  },
  {
    database: "d",
    table: "nums",
    model: "DUPLICATE",
    key: ["k"],
    columns: [
      { name: "k", type: "INT" },
      { name: "b", type: "BIGINT", nullable: true },
      { name: "i", type: "INT", nullable: true },
      { name: "t", type: "TINYINT", nullable: true }
    ]
  },
  {
    database: "d",
    table: "s",
    model: "DUPLICATE",
    key: ["c1"],
    columns: [{ name: "c1", type: "INT" }, { name: "c2", type: "STRING", nullable: true }]
  }
]

const emu = (options: Partial<StarRocksEmulator.Options> = {}) =>
  StarRocksEmulator.make({
    users: TABLES.users,
    tables: [...TABLES.tables, ...extra],
    admin: false,
    cleanerIntervalMs: 3_600_000,
    ...options
  })

const csv = { column_separator: "," }

describe("issue 10 rules", () => {
  it.scopedLive("a NOT NULL column without a default left out of a transaction load's columns: ANALYSIS_ERROR, txn aborted", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      const fe = em.fe[0]!
      const h = { db: "d", table: "nn", label: "nn1" }
      assert.strictEqual((yield* txn(fe, "begin", h)).json.Status, "OK")
      const load = yield* txn(fe, "load", { ...h, ...csv, columns: "id,note" }, "1,x\n")
      assert.deepStrictEqual(load.json, {
        Status: "ANALYSIS_ERROR",
        Message: "Column has no default value. column: name"
      })
      assert.strictEqual(yield* em.loadState("d", "nn1"), "ABORTED")
      const next = yield* txn(fe, "load", { ...h, ...csv, columns: "id,name" }, "1,x\n")
      assert.strictEqual(next.json.Status, "TXN_NOT_EXISTS")
      const commit = yield* txn(fe, "commit", h)
      assert.strictEqual(commit.json.Status, "FAILED")
      assert.match(commit.json.Message, /Can not commit ABORTED transaction \d+, label is nn1$/)
      // a plain stream load fails the same way, before any row is read
      const plain = yield* streamLoad(fe, "d", "nn", "2,y\n", { ...csv, label: "nn2", columns: "id,note" })
      assert.strictEqual(plain.json.Status, "Fail")
      assert.strictEqual(plain.json.Message, "Column has no default value. column: name")
      assert.strictEqual(plain.json.NumberTotalRows, 0)
      assert.deepStrictEqual(yield* em.rows("d", "nn"), [])
    }))

  it.scoped("a PREPARED transaction expires after prepared_timeout on the emulator's clock (TestClock)", () =>
    Effect.gen(function*() {
      const em = yield* emu({ clock: yield* Effect.clock })
      const fe = em.fe[0]!
      const h = { db: "d", table: "t", label: "pt" }
      yield* txn(fe, "begin", h)
      yield* txn(fe, "load", { ...h, ...csv }, "1,a\n")
      assert.strictEqual((yield* txn(fe, "prepare", { ...h, prepared_timeout: "5" })).json.Status, "OK")
      yield* TestClock.adjust("4 seconds")
      yield* em.tick
      assert.strictEqual(yield* em.loadState("d", "pt"), "PREPARED")
      yield* TestClock.adjust("2 seconds")
      yield* em.tick
      const [t] = yield* em.transactions("d")
      assert.strictEqual(t?.status, "ABORTED")
      assert.strictEqual(t?.reason, "timeout by txn manager")
      const commit = yield* txn(fe, "commit", h)
      assert.strictEqual(commit.json.Status, "FAILED")
      assert.deepStrictEqual(yield* em.rows("d", "t"), [])
    }))

  it.scoped("an open transaction times out, and a finished label expires, on the emulator's clock (TestClock)", () =>
    Effect.gen(function*() {
      const em = yield* emu({ clock: yield* Effect.clock, labelKeepMaxSecond: 60 })
      const fe = em.fe[0]!
      yield* txn(fe, "begin", { db: "d", table: "t", label: "open", timeout: "30" })
      yield* streamLoad(fe, "d", "t", "1,a\n", { ...csv, label: "done" })
      yield* TestClock.adjust("31 seconds")
      yield* em.tick
      assert.strictEqual(yield* em.loadState("d", "open"), "ABORTED")
      assert.strictEqual(yield* em.loadState("d", "done"), "VISIBLE")
      yield* TestClock.adjust("30 seconds")
      yield* em.tick
      assert.strictEqual(yield* em.loadState("d", "done"), "UNKNOWN")
    }))

  it.scopedLive("JSON numbers into integer columns: out of range is NULL (filtered under strict_mode), fractions and exponents go through a double, booleans are invalid", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      const fe = em.fe[0]!
      const body = [
        "{\"k\":1,\"b\":1e19,\"i\":3.9,\"t\":-1.5e1}",
        "{\"k\":2,\"b\":12345678901234567.9,\"i\":true,\"t\":128}",
        "{\"k\":3,\"b\":9223372036854775807,\"i\":\"2.5\",\"t\":\"1e2\"}",
        "{\"k\":4,\"b\":9223372036854775808,\"i\":-2147483648,\"t\":-128}"
      ].join("\n")
      const res = yield* streamLoad(fe, "d", "nums", body, { format: "json", label: "j1" })
      assert.strictEqual(res.json.Status, "Success")
      const rows = (yield* em.rows("d", "nums")).map((r) => [r["k"], r["b"], r["i"], r["t"]])
      assert.deepStrictEqual(rows, [
        [1, null, 3, -15],
        [2, 12345678901234568n, null, null],
        [3, 9223372036854775807n, 2, 100],
        [4, null, -2147483648, -128]
      ])
      const strict = yield* streamLoad(fe, "d", "nums", "{\"k\":5,\"b\":1e19}\n{\"k\":6,\"b\":7}", {
        format: "json",
        label: "j2",
        strict_mode: "true",
        max_filter_ratio: "1"
      })
      assert.strictEqual(strict.json.NumberFilteredRows, 1)
      assert.strictEqual(strict.json.NumberLoadedRows, 1)
    }))

  it.scopedLive("a CSV row that is not valid UTF-8 is filtered", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      const fe = em.fe[0]!
      const body = Buffer.concat([Buffer.from("1,ok\n2,bad"), Buffer.from([0xff, 0xfe]), Buffer.from("\n3,é\n")])
      const res = yield* followE(`${fe}/api/d/s/_stream_load`, {
        auth: ROOT,
        headers: { ...csv, label: "u1", max_filter_ratio: "0.5" },
        body
      })
      assert.strictEqual(res.json.Status, "Success")
      assert.strictEqual(res.json.NumberFilteredRows, 1)
      assert.deepStrictEqual((yield* em.rows("d", "s")).map((r) => r["c2"]), ["ok", "é"])
    }))

  it.scopedLive("a JSON string holding a raw control character loads (test_stream_load_non_utf8_json)", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      const res = yield* streamLoad(em.fe[0]!, "d", "s", "{\"c1\": 1, \"c2\": \"\u000b\"}", {
        format: "json",
        label: "cc"
      })
      assert.strictEqual(res.json.Status, "Success")
      assert.deepStrictEqual(yield* em.rows("d", "s"), [{ c1: 1, c2: "\u000b" }])
    }))

  it.scopedLive("commit or rollback of a label whose begin failed: No transaction found by label <l>", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      const fe = em.fe[0]!
      const h = { db: "d", table: "missing", label: "nb" }
      assert.strictEqual((yield* txn(fe, "begin", h)).json.Status, "ANALYSIS_ERROR")
      for (const op of ["commit", "rollback"]) {
        const res = yield* txn(fe, op, h)
        assert.strictEqual(res.json.Status, "FAILED")
        assert.strictEqual(
          res.json.Message,
          "class com.starrocks.common.StarRocksException: No transaction found by label nb"
        )
      }
    }))

  it.scopedLive("3.3+ duplicate label: the wrapped stream_load_task message, for a plain load and a begin", () =>
    Effect.gen(function*() {
      const em = yield* emu({ duplicateLabelMode: "fail" })
      const fe = em.fe[0]!
      yield* streamLoad(fe, "d", "t", "1,a\n", { ...csv, label: "dup" })
      const wrapped =
        /^stream_load_task:\d+, label=dup, error_msg=cancel stream task for exception: Label \[dup\] has already been used\.$/
      const plain = yield* streamLoad(fe, "d", "t", "1,a\n", { ...csv, label: "dup" })
      assert.strictEqual(plain.json.Status, "Fail")
      assert.isUndefined(plain.json.ExistingJobStatus)
      assert.match(plain.json.Message, wrapped)
      const begin = yield* txn(fe, "begin", { db: "d", table: "t", label: "dup" })
      assert.strictEqual(begin.json.Status, "ANALYSIS_ERROR")
      assert.match(begin.json.Message, wrapped)
    }))
})
