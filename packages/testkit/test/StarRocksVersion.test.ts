/**
 * The version knobs: what `starrocksVersion` sets (docs/testkit.md, "Version knobs"), the tables-file fields, and
 * the knobs seen through the servers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import { StarRocksEmulator, StarRocksVersion, TablesFile } from "../src/index.js"
import { requestE, ROOT, streamLoad, TABLES } from "./utils.js"

const v = (text: string) => {
  const parsed = StarRocksVersion.parse(text)
  if (typeof parsed === "string") throw new Error(parsed)
  return StarRocksVersion.options(parsed)
}

describe("StarRocksVersion.options", () => {
  it("parses X.Y and X.Y.Z and refuses anything else", () => {
    assert.deepStrictEqual(StarRocksVersion.parse("3.3"), { major: 3, minor: 3, patch: Infinity })
    assert.deepStrictEqual(StarRocksVersion.parse("3.2.11"), { major: 3, minor: 2, patch: 11 })
    assert.isString(StarRocksVersion.parse("3"))
    assert.isString(StarRocksVersion.parse("latest"))
  })

  it("the Expect rule: 3.1.16+, 3.2.13+, 3.3.6+, 3.4+", () => {
    assert.isFalse(v("3.0").requireExpect)
    assert.isFalse(v("3.1.15").requireExpect)
    assert.isTrue(v("3.1.16").requireExpect)
    assert.isFalse(v("3.2.12").requireExpect)
    assert.isTrue(v("3.2").requireExpect)
    assert.isFalse(v("3.3.5").requireExpect)
    assert.isTrue(v("3.3.6").requireExpect)
    assert.isTrue(v("3.4.0").requireExpect)
  })

  it("duplicate labels fail (wrapped) in 3.3-3.5 only", () => {
    assert.strictEqual(v("3.2.11").duplicateLabelMode, "label-already-exists")
    assert.strictEqual(v("3.3").duplicateLabelMode, "fail")
    assert.strictEqual(v("3.5.2").duplicateLabelMode, "fail")
    assert.strictEqual(v("4.0").duplicateLabelMode, "label-already-exists")
  })

  it("field names, RestBaseResult shape, empty-load message, CSV reader, running-transaction cap", () => {
    assert.strictEqual(v("2.1").planTimeField, "StreamLoadPutTimeMs")
    assert.strictEqual(v("2.2.4").planTimeField, "StreamLoadPutTimeMs")
    assert.strictEqual(v("2.2.5").planTimeField, "StreamLoadPlanTimeMs")
    assert.strictEqual(v("2.3.1").planTimeField, "StreamLoadPutTimeMs")
    assert.strictEqual(v("2.5").planTimeField, "StreamLoadPlanTimeMs")
    assert.strictEqual(v("3.1").loadStateShape, "old")
    assert.strictEqual(v("3.2").loadStateShape, "new")
    assert.strictEqual(v("3.2").emptyLoadMessage, "old")
    assert.strictEqual(v("3.3").emptyLoadMessage, "new")
    assert.isTrue(v("3.1").legacyCsvStartLookahead)
    assert.isTrue(v("3.2.2").legacyCsvStartLookahead)
    assert.isFalse(v("3.2.3").legacyCsvStartLookahead)
    assert.isFalse(v("2.5").legacyCsvStartLookahead)
    assert.strictEqual(v("2.5").maxRunningTxnNumPerDb, 100)
    assert.strictEqual(v("3.3").maxRunningTxnNumPerDb, 1000)
    assert.strictEqual(v("4.0").maxRunningTxnNumPerDb, 10000)
  })

  it("the tables file carries every knob and refuses a bad value", () => {
    const decode = Schema.decodeUnknownEither(TablesFile.TablesFile)
    const ok = decode({ starrocksVersion: "3.3", duplicateLabelMode: "fail", labelKeepMaxNum: 5, beHttpAuth: true })
    assert.isTrue(Either.isRight(ok))
    assert.isTrue(Either.isLeft(decode({ starrocksVersion: "three" })))
    assert.isTrue(Either.isLeft(decode({ loadStateShape: "older" })))
  })
})

describe("starrocksVersion through the servers", () => {
  const emu = (options: Partial<StarRocksEmulator.Options>) =>
    StarRocksEmulator.make({ ...TABLES, admin: false, ...options })

  it.scopedLive("3.0: old get_load_state shape, old empty-load message, the pre-#37381 CSV reader", () =>
    Effect.gen(function*() {
      const em = yield* emu({ starrocksVersion: "3.0" })
      const fe = em.fe[0]!
      const csv = yield* streamLoad(fe, "d", "t", "1,\"\"x\n", { column_separator: ",", enclose: "\"", label: "a" })
      assert.strictEqual(csv.json.Status, "Success")
      assert.deepStrictEqual((yield* em.rows("d", "t")).map((r) => r["name"]), ["\"x"])
      const state = yield* requestE(`${fe}/api/d/get_load_state?label=a`, { method: "GET", auth: ROOT })
      assert.deepStrictEqual(state.json, { state: "VISIBLE", status: "OK", msg: "Success" })
      const empty = yield* streamLoad(fe, "d", "t", "", { label: "e" })
      assert.strictEqual(empty.json.Message, "all partitions have no load data")
    }))

  it.scopedLive("the newest (default): the released CSV reader; an explicit knob overrides the version", () =>
    Effect.gen(function*() {
      const em = yield* emu({ starrocksVersion: "3.0", legacyCsvStartLookahead: false, emptyLoadMessage: "new" })
      const fe = em.fe[0]!
      yield* streamLoad(fe, "d", "t", "1,\"\"x\n", { column_separator: ",", enclose: "\"", label: "a" })
      assert.deepStrictEqual((yield* em.rows("d", "t")).map((r) => r["name"]), ["\""])
      const empty = yield* streamLoad(fe, "d", "t", "", { label: "e" })
      assert.match(empty.json.Message, /^No partitions have data available for loading\./)
    }))
})
