/**
 * The rules of docs/protocol.md §3–§7, and the emulator's own surface (faults, admin API,
 * restart with the same storage, request log, knobs).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope, TestClock } from "effect"
import { StarRocksEmulator } from "../src/index.js"
import * as MemoryStorage from "../src/internal/memoryStorage.js"
import {
  bodyRead,
  follow,
  followE,
  head,
  openRaw,
  parseRaw,
  request,
  requestE,
  ROOT,
  streamLoad,
  TABLES,
  txn,
  until
} from "./utils.js"

const emu = (options: Partial<StarRocksEmulator.Options> = {}) =>
  StarRocksEmulator.make({ ...TABLES, admin: false, cleanerIntervalMs: 50, ...options })

const csv = { column_separator: "," }
const state = (em: StarRocksEmulator.StarRocksEmulator, label: string, db = "d") =>
  requestE(`${em.fe[0]}/api/${db}/get_load_state?label=${label}`, { method: "GET", auth: ROOT }).pipe(
    Effect.map((r) => r.json)
  )
const ids = (rows: ReadonlyArray<Record<string, unknown>>) => rows.map((r) => String(r["id"]))

describe("labels (docs/protocol.md §5)", () => {
  it.scopedLive("labels are scoped to a database, not a table", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      assert.strictEqual(
        (yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "same", ...csv })).json.Status,
        "Success"
      )
      const otherTable = yield* streamLoad(em.fe[0]!, "d", "pk", "1,a\n", { label: "same", ...csv })
      assert.strictEqual(otherTable.json.Status, "Label Already Exists")
      const otherDb = yield* streamLoad(em.fe[0]!, "d2", "t", "1,a\n", { label: "same", ...csv })
      assert.strictEqual(otherDb.json.Status, "Success")
    }))

  it.scopedLive("non-ASCII, dots, colons and spaces are refused; '-' and '_' are accepted", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      for (const label of ["é", "a:b", "a b", "a.b"]) {
        const res = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: encodeURIComponent(label), ...csv })
        if (label === "a.b") assert.isTrue(res.json.Message.startsWith("Label format error. regex: ^[-\\w]{1,128}$"))
        else assert.strictEqual(res.json.Status, "Fail", label)
      }
      const ok = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "prefix-123_abc", ...csv })
      assert.strictEqual(ok.json.Status, "Success")
    }))

  it.scopedLive("an aborted transaction label is reusable at once", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      const h = { db: "d", table: "t", label: "R1" }
      yield* txn(em.fe[0]!, "begin", h)
      yield* txn(em.fe[0]!, "rollback", h)
      assert.strictEqual((yield* txn(em.fe[0]!, "begin", h)).json.Status, "OK")
      const txns = yield* em.transactions("d")
      assert.deepStrictEqual(txns.map((t) => t.status), ["ABORTED", "PREPARE"])
    }))

  it.scoped("retention by age: the label expires and is reusable (duplicate data)", () =>
    Effect.gen(function*() {
      const em = yield* emu({ clock: yield* Effect.clock, labelKeepMaxSecond: 1 })
      yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "age", ...csv })
      assert.strictEqual((yield* state(em, "age")).state, "VISIBLE")
      yield* TestClock.adjust("1200 millis")
      yield* em.tick
      assert.strictEqual((yield* state(em, "age")).state, "UNKNOWN")
      const again = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "age", ...csv })
      assert.strictEqual(again.json.Status, "Success")
      assert.strictEqual((yield* em.rows("d", "t")).length, 2)
    }))

  it.scopedLive("retention by count: label_keep_max_num evicts the oldest finished labels", () =>
    Effect.gen(function*() {
      const em = yield* emu({ labelKeepMaxNum: 2 })
      for (const label of ["c1", "c2", "c3"]) yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label, ...csv })
      assert.strictEqual(yield* em.loadState("d", "c1"), "UNKNOWN")
      assert.strictEqual(yield* em.loadState("d", "c3"), "VISIBLE")
      assert.strictEqual(
        (yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "c1", ...csv })).json.Status,
        "Success"
      )
    }))

  it.scopedLive("duplicate labels in 'fail' mode: plain load Fail, transaction begin ANALYSIS_ERROR", () =>
    Effect.gen(function*() {
      const em = yield* emu({ duplicateLabelMode: "fail" })
      yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "dup", ...csv })
      const plain = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "dup", ...csv })
      assert.strictEqual(plain.json.Status, "Fail")
      assert.strictEqual(plain.json.TxnId, -1)
      assert.match(plain.json.Message, /Label \[dup\] has already been used/)
      const begin = yield* txn(em.fe[0]!, "begin", { db: "d", table: "t", label: "dup" })
      assert.strictEqual(begin.json.Status, "ANALYSIS_ERROR")
      assert.match(begin.json.Message, /Label \[dup\] has already been used/)
    }))

  it.scopedLive("duplicate labels in the default mode: transaction begin LABEL_ALREADY_EXISTS + FINISHED", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "dup", ...csv })
      const begin = yield* txn(em.fe[0]!, "begin", { db: "d", table: "t", label: "dup" })
      assert.deepStrictEqual(begin.json, {
        Status: "LABEL_ALREADY_EXISTS",
        ExistingJobStatus: "FINISHED",
        Message: "Label [dup] has already been used."
      })
    }))
})

describe("transactions and timers (docs/protocol.md §3, §4)", () => {
  it.scopedLive("staged rows are invisible until commit, then visible at once", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      const h = { db: "d", table: "t", label: "S1" }
      yield* txn(em.fe[0]!, "begin", h)
      yield* txn(em.fe[0]!, "load", { ...h, ...csv }, "1,a\n2,b\n")
      yield* txn(em.fe[0]!, "load", { ...h, ...csv }, "3,c\n")
      assert.strictEqual((yield* em.rows("d", "t")).length, 0)
      const commit = yield* txn(em.fe[0]!, "commit", h)
      assert.strictEqual(commit.json.Status, "OK")
      assert.strictEqual(commit.json.NumberLoadedRows, 3)
      assert.strictEqual(commit.json.LoadBytes, 12)
      assert.deepStrictEqual(ids(yield* em.rows("d", "t")), ["1", "2", "3"])
      assert.strictEqual(yield* em.loadState("d", "S1"), "VISIBLE")
      const after = yield* txn(em.fe[0]!, "load", { ...h, ...csv }, "4,d\n")
      assert.strictEqual(after.json.Status, "TXN_NOT_EXISTS")
    }))

  it.scoped("timeout aborts an open transaction", () =>
    Effect.gen(function*() {
      const em = yield* emu({ clock: yield* Effect.clock })
      const h = { db: "d", table: "t", label: "TO1" }
      yield* txn(em.fe[0]!, "begin", { ...h, timeout: "1" })
      yield* txn(em.fe[0]!, "load", { ...h, ...csv }, "1,a\n")
      yield* TestClock.adjust("1200 millis")
      yield* em.tick
      const res = yield* txn(em.fe[0]!, "load", { ...h, ...csv }, "2,b\n")
      assert.strictEqual(res.json.Status, "TXN_NOT_EXISTS")
      const s = yield* state(em, "TO1")
      assert.strictEqual(s.state, "ABORTED")
      assert.strictEqual(s.reason, "transaction is aborted by timeout 1 seconds.")
    }))

  it.scoped("a plain stream load that outlives its timeout fails with timeout by txn manager", () =>
    Effect.gen(function*() {
      const em = yield* emu({ clock: yield* Effect.clock })
      const c = yield* Effect.promise(() => openRaw(em.bes[0]!))
      c.write(
        head("PUT", "/api/d/t/_stream_load", {
          Host: "x",
          Authorization: ROOT,
          label: "slow",
          timeout: "1",
          column_separator: ",",
          "Content-Length": "8"
        }) + "1,a\n"
      )
      yield* TestClock.adjust("1200 millis")
      yield* em.tick
      c.write("2,b\n")
      const res = parseRaw(yield* Effect.promise(() => c.waitFor("CommitAndPublishTimeMs")))
      c.destroy()
      assert.strictEqual(res.json.Status, "Fail")
      assert.strictEqual(res.json.Message, "timeout by txn manager")
      assert.strictEqual((yield* em.rows("d", "t")).length, 0)
    }))

  it.scoped("prepared_timeout aborts a PREPARED transaction", () =>
    Effect.gen(function*() {
      const em = yield* emu({ clock: yield* Effect.clock })
      const h = { db: "d", table: "t", label: "PT1" }
      yield* txn(em.fe[0]!, "begin", h)
      yield* txn(em.fe[0]!, "load", { ...h, ...csv }, "1,a\n")
      assert.strictEqual((yield* txn(em.fe[0]!, "prepare", { ...h, prepared_timeout: "1" })).json.Status, "OK")
      assert.strictEqual(yield* em.loadState("d", "PT1"), "PREPARED")
      yield* TestClock.adjust("1200 millis")
      yield* em.tick
      assert.strictEqual(yield* em.loadState("d", "PT1"), "ABORTED")
      const commit = yield* txn(em.fe[0]!, "commit", h)
      assert.strictEqual(commit.json.Status, "FAILED")
      assert.strictEqual((yield* em.rows("d", "t")).length, 0)
    }))

  it.scopedLive("prepare: invalid prepared_timeout, and a second prepare is TXN_NOT_EXISTS", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      const h = { db: "d", table: "t", label: "P2" }
      yield* txn(em.fe[0]!, "begin", h)
      yield* txn(em.fe[0]!, "load", { ...h, ...csv }, "1,a\n")
      const bad = yield* txn(em.fe[0]!, "prepare", { ...h, prepared_timeout: "-5" })
      assert.deepStrictEqual(bad.json, { Status: "INVALID_ARGUMENT", Message: "Invalid prepared_timeout: -5" })
      assert.strictEqual((yield* txn(em.fe[0]!, "prepare", h)).json.Status, "OK")
      const again = yield* txn(em.fe[0]!, "prepare", h)
      assert.deepStrictEqual(again.json, { Status: "TXN_NOT_EXISTS", Message: "transaction with label P2 not exists" })
    }))

  it.scoped("transaction commit with an injected publish timeout: PUBLISH_TIMEOUT, COMMITTED, then VISIBLE", () =>
    Effect.gen(function*() {
      const em = yield* emu({ clock: yield* Effect.clock })
      const h = { db: "d", table: "t", label: "PUB" }
      yield* txn(em.fe[0]!, "begin", h)
      yield* txn(em.fe[0]!, "load", { ...h, ...csv }, "1,a\n")
      yield* em.addFault({
        node: "be",
        path: "/api/transaction/commit",
        action: { _tag: "publish-timeout", visibleAfterMs: 200 }
      })
      const commit = yield* txn(em.fe[0]!, "commit", h)
      assert.strictEqual(commit.json.Status, "PUBLISH_TIMEOUT")
      assert.strictEqual(yield* em.loadState("d", "PUB"), "COMMITTED")
      assert.strictEqual((yield* em.rows("d", "t")).length, 0)
      const again = yield* txn(em.fe[0]!, "commit", h)
      assert.match(again.json.Message, /has already committed/)
      yield* TestClock.adjust("350 millis")
      yield* em.tick
      assert.strictEqual(yield* em.loadState("d", "PUB"), "VISIBLE")
      assert.strictEqual((yield* em.rows("d", "t")).length, 1)
    }))

  it.scoped("a later commit of a table never becomes VISIBLE before an earlier one waiting for its publish", () =>
    Effect.gen(function*() {
      const em = yield* emu({ clock: yield* Effect.clock })
      const first = { db: "d", table: "pk", label: "ORD1" }
      const second = { db: "d", table: "pk", label: "ORD2" }
      yield* txn(em.fe[0]!, "begin", first)
      yield* txn(em.fe[0]!, "load", { ...first, ...csv }, "1,old\n")
      yield* txn(em.fe[0]!, "begin", second)
      yield* txn(em.fe[0]!, "load", { ...second, ...csv }, "1,new\n")
      yield* em.addFault({
        node: "be",
        path: "/api/transaction/commit",
        action: { _tag: "publish-timeout", visibleAfterMs: 200 }
      })
      assert.strictEqual((yield* txn(em.fe[0]!, "commit", first)).json.Status, "PUBLISH_TIMEOUT")
      yield* em.clearFaults
      // no fault on this commit, yet it waits for the first one's publish
      assert.strictEqual((yield* txn(em.fe[0]!, "commit", second)).json.Status, "PUBLISH_TIMEOUT")
      assert.strictEqual(yield* em.loadState("d", "ORD2"), "COMMITTED")
      assert.deepStrictEqual(yield* em.rows("d", "pk"), [])
      yield* TestClock.adjust("400 millis")
      yield* em.tick
      assert.strictEqual(yield* em.loadState("d", "ORD1"), "VISIBLE")
      assert.strictEqual(yield* em.loadState("d", "ORD2"), "VISIBLE")
      assert.deepStrictEqual((yield* em.rows("d", "pk")).map((r) => [String(r["id"]), r["name"]]), [["1", "new"]])
    }))

  it.scopedLive("BE-side checks: db mismatch, empty label, transaction_type, unknown op", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      const be = em.bes[0]!
      const h = { db: "d", table: "t", label: "B1" }
      yield* requestE(`${be}/api/transaction/begin`, { method: "POST", auth: ROOT, headers: h })
      const load = yield* requestE(`${be}/api/transaction/load`, {
        auth: ROOT,
        headers: { ...h, db: "d2" },
        body: "1\n"
      })
      assert.deepStrictEqual(load.json, {
        Status: "INVALID_ARGUMENT",
        Message: "Request database d2 not equal transaction database d"
      })
      const commit = yield* requestE(`${be}/api/transaction/commit`, {
        method: "POST",
        auth: ROOT,
        headers: { ...h, db: "d2" }
      })
      assert.strictEqual(commit.json.Message, "request db d2 transaction db d not match")
      const noLabel = yield* requestE(`${be}/api/transaction/prepare`, {
        method: "POST",
        auth: ROOT,
        headers: { db: "d" }
      })
      assert.deepStrictEqual(noLabel.json, { Status: "INVALID_ARGUMENT", Message: "empty label" })
      const multi = yield* requestE(`${be}/api/transaction/begin`, {
        method: "POST",
        auth: ROOT,
        headers: { ...h, transaction_type: "multi" }
      })
      assert.strictEqual(
        multi.json.Message,
        "Multi-statement transaction requests can only be sent to FE nodes, not BE nodes"
      )
      const rollbackUnknown = yield* requestE(`${be}/api/transaction/rollback`, {
        method: "POST",
        auth: ROOT,
        headers: { ...h, label: "nope" }
      })
      assert.strictEqual(rollbackUnknown.json.Status, "TXN_NOT_EXISTS")
    }))

  it.scopedLive("a retried begin through the FE reaches the BE that owns the context", () =>
    Effect.gen(function*() {
      const em = yield* emu({ bes: 3 })
      const h = { db: "d", table: "t", label: "RB" }
      assert.strictEqual((yield* txn(em.fe[0]!, "begin", h)).json.Status, "OK")
      const owner = (yield* em.transactions("d")).find((t) => t.label === "RB")!.coordinator
      for (let i = 0; i < 3; i++) {
        const retried = yield* requestE(`${em.fe[0]}/api/transaction/begin`, { method: "POST", auth: ROOT, headers: h })
        assert.strictEqual(retried.headers.location, `http://${owner}/api/transaction/begin`)
      }
      const again = yield* txn(em.fe[0]!, "begin", h)
      assert.deepStrictEqual(again.json, { Status: "LABEL_ALREADY_EXISTS", ExistingJobStatus: "", Message: "" })
      // another BE, straight: the FE label manager answers RUNNING
      const other = em.bes.find((b) => b !== owner)!
      const direct = yield* requestE(`${other}/api/transaction/begin`, { method: "POST", auth: ROOT, headers: h })
      assert.deepStrictEqual(direct.json, {
        Status: "LABEL_ALREADY_EXISTS",
        ExistingJobStatus: "RUNNING",
        Message: "Label [RB] has already been used."
      })
    }))

  it.scopedLive("a follower FE redirects transaction calls to the leader, then to the BE (two 307s)", () =>
    Effect.gen(function*() {
      const em = yield* emu({ fes: 2 })
      const h = { db: "d", table: "t", label: "F1" }
      const first = yield* requestE(`${em.fe[1]}/api/transaction/begin`, { method: "POST", auth: ROOT, headers: h })
      assert.strictEqual(first.status, 307)
      assert.strictEqual(first.headers.location, `http://${em.fe[0]}/api/transaction/begin`)
      const res = yield* txn(em.fe[1]!, "begin", h)
      assert.strictEqual(res.json.Status, "OK")
      // a plain stream load is not redirected to the leader
      const plain = yield* requestE(`${em.fe[1]}/api/d/t/_stream_load`, { auth: ROOT, body: "1,a\n" })
      assert.strictEqual(plain.headers.location, `http://${em.bes[0]}/api/d/t/_stream_load`)
    }))

  it.scopedLive("cancel by label aborts a running plain load (both endpoints)", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      const c = yield* Effect.promise(() => openRaw(em.bes[0]!))
      c.write(
        head("PUT", "/api/d/t/_stream_load", {
          Host: "x",
          Authorization: ROOT,
          label: "CX",
          column_separator: ",",
          "Content-Length": "8"
        }) + "1,a\n"
      )
      yield* until("first 4 body bytes read by the BE", bodyRead(em, "CX", 4))
      const cancel = yield* requestE(`${em.fe[0]}/api/d/CX/_cancel`, { method: "POST", auth: ROOT })
      assert.strictEqual(cancel.json.status, "OK")
      c.write("2,b\n")
      const res = parseRaw(yield* Effect.promise(() => c.waitFor("CommitAndPublishTimeMs")))
      c.destroy()
      assert.strictEqual(res.json.Status, "Fail")
      assert.strictEqual(res.json.Message, "user cancel")
      const s = yield* state(em, "CX")
      assert.strictEqual(s.state, "ABORTED")
      assert.strictEqual(s.reason, "user cancel")
      yield* txn(em.fe[0]!, "begin", { db: "d", table: "t", label: "CY" })
      const byQuery = yield* requestE(`${em.fe[0]}/api/d/t/_cancel?label=CY`, { method: "POST", auth: ROOT })
      assert.strictEqual(byQuery.json.status, "OK")
      assert.strictEqual(yield* em.loadState("d", "CY"), "ABORTED")
    }))
})

describe("coordinator BE down (docs/protocol.md §3.4)", () => {
  it.scoped("a restarted BE lost its contexts; a BE down long enough aborts PREPARE, keeps PREPARED", () =>
    Effect.gen(function*() {
      const em = yield* emu({ clock: yield* Effect.clock, beDownAbortMs: 150 })
      const open = { db: "d", table: "t", label: "open" }
      const prep = { db: "d", table: "t", label: "prep" }
      yield* txn(em.fe[0]!, "begin", open)
      yield* txn(em.fe[0]!, "begin", prep)
      yield* txn(em.fe[0]!, "load", { ...prep, ...csv }, "1,a\n")
      yield* txn(em.fe[0]!, "prepare", prep)
      // a quick restart: contexts are gone, nothing is aborted
      yield* em.setNode("be0", "down")
      yield* em.setNode("be0", "up")
      const lost = yield* txn(em.fe[0]!, "load", { ...open, ...csv }, "2,b\n")
      assert.deepStrictEqual(lost.json, { Status: "TXN_NOT_EXISTS", Message: "Transaction with label open not exists" })
      assert.strictEqual(yield* em.loadState("d", "open"), "PREPARE")
      // down for longer than the heartbeat window
      yield* em.setNode("be0", "down")
      yield* TestClock.adjust("300 millis")
      yield* em.tick
      const s = yield* state(em, "open")
      assert.strictEqual(s.state, "ABORTED")
      assert.strictEqual(s.reason, "coordinate BE is down")
      assert.strictEqual(yield* em.loadState("d", "prep"), "PREPARED")
      // the FE commits a PREPARED transaction itself, even with its BE down
      const commit = yield* requestE(`${em.fe[0]}/api/transaction/commit`, {
        method: "POST",
        auth: ROOT,
        headers: prep
      })
      assert.strictEqual(commit.json.Status, "OK")
      assert.deepStrictEqual(ids(yield* em.rows("d", "t")), ["1"])
    }))
})

describe("data semantics through the servers", () => {
  it.scopedLive("Primary Key upsert and delete by __op", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      yield* streamLoad(em.fe[0]!, "d", "pk", "1,a\n2,b\n", { label: "pk1", ...csv })
      const res = yield* streamLoad(em.fe[0]!, "d", "pk", "1,z,0\n2,b,1\n", {
        label: "pk2",
        ...csv,
        columns: "id,name,tmp,__op=tmp"
      })
      assert.strictEqual(res.json.Status, "Success")
      const rows = yield* em.rows("d", "pk")
      assert.deepStrictEqual(rows.map((r) => [String(r["id"]), r["name"]]), [["1", "z"]])
      yield* streamLoad(em.fe[0]!, "d", "pk", "{\"id\":1,\"__op\":1}", { label: "pk3", format: "json" })
      assert.strictEqual((yield* em.rows("d", "pk")).length, 0)
    }))

  it.scopedLive("a duplicate-key table appends", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "a1", ...csv })
      yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "a2", ...csv })
      assert.deepStrictEqual(ids(yield* em.rows("d", "t")), ["1", "1"])
    }))

  it.scopedLive("RejectedRecordPath appears with log_rejected_record_num and rejected rows", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      const res = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n2\n", {
        label: "rej",
        ...csv,
        max_filter_ratio: "1",
        log_rejected_record_num: "-1"
      })
      assert.strictEqual(res.json.Status, "Success")
      const keys = Object.keys(res.json)
      assert.deepStrictEqual(keys.slice(-2), ["ErrorURL", "RejectedRecordPath"])
      assert.match(res.json.RejectedRecordPath, /^127\.0\.0\.2:\//)
    }))

  it.scopedLive("a chunked body loads", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      const res = yield* followE(`${em.fe[0]}/api/d/t/_stream_load`, {
        auth: ROOT,
        headers: { label: "chunk", ...csv },
        body: "1,a\n2,b\n",
        chunked: true
      })
      assert.strictEqual(res.json.Status, "Success")
      assert.strictEqual(res.json.LoadBytes, 8)
    }))

  it.scopedLive("streaming_load_max_mb refuses a larger Content-Length before the body", () =>
    Effect.gen(function*() {
      const em = yield* emu({ streamingLoadMaxMb: 1 })
      const c = yield* Effect.promise(() => openRaw(em.bes[0]!))
      c.write(head("PUT", "/api/d/t/_stream_load", {
        Host: "x",
        Authorization: ROOT,
        label: "big",
        Expect: "100-continue",
        "Content-Length": String(2 * 1024 * 1024)
      }))
      const res = parseRaw(yield* Effect.promise(() => c.waitFor("CommitAndPublishTimeMs")))
      c.destroy()
      assert.strictEqual(res.json.Status, "Fail")
      assert.match(res.json.Message, /^body size 2097152 exceed limit: 1048576, .*streaming_load_max_mb in be\.conf\.$/)
    }))
})

describe("faults (deterministic)", () => {
  it.scopedLive("delay, http-500 and node filters", () =>
    Effect.gen(function*() {
      const em = yield* emu({ bes: 2 })
      yield* em.addFault({ node: "fe0", path: "_stream_load", nth: 1, action: { _tag: "delay", ms: 200 } })
      const t0 = Date.now()
      const delayed = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "f1", ...csv })
      assert.isAtLeast(Date.now() - t0, 190)
      assert.strictEqual(delayed.json.Status, "Success")
      yield* em.clearFaults
      yield* em.addFault({ node: "be1", action: { _tag: "http-500" } })
      const r0 = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "f2", ...csv }) // round-robin: be1
      const r1 = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "f3", ...csv }) // be0
      assert.deepStrictEqual([r0.status, r1.status].sort(), [200, 500])
    }))

  it.scopedLive("close-before-response commits but loses the answer; the retry sees FINISHED", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      yield* em.addFault({ node: "be", path: "_stream_load", nth: 1, action: { _tag: "close-before-response" } })
      const lost = yield* Effect.promise(() =>
        follow(`${em.fe[0]}/api/d/t/_stream_load`, { auth: ROOT, headers: { label: "cbr", ...csv }, body: "1,a\n" })
          .then(() => "answered", (e) => e.code)
      )
      assert.strictEqual(lost, "ECONNRESET")
      assert.strictEqual(yield* em.loadState("d", "cbr"), "VISIBLE")
      const retry = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "cbr", ...csv })
      assert.strictEqual(retry.json.ExistingJobStatus, "FINISHED")
    }))

  it.scopedLive("close-mid-body loads nothing; the label is free again", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      yield* em.addFault({ node: "be", path: "_stream_load", nth: 1, action: { _tag: "close-mid-body" } })
      const lost = yield* Effect.promise(() =>
        follow(`${em.fe[0]}/api/d/t/_stream_load`, { auth: ROOT, headers: { label: "cmb", ...csv }, body: "1,a\n" })
          .then(() => "answered", (e) => e.code)
      )
      assert.strictEqual(lost, "ECONNRESET")
      assert.strictEqual(yield* em.loadState("d", "cmb"), "ABORTED")
      assert.strictEqual((yield* em.rows("d", "t")).length, 0)
      assert.strictEqual(
        (yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "cmb", ...csv })).json.Status,
        "Success"
      )
    }))

  it.scopedLive("status bodies: too many versions, memory limit, TXN_IN_PROCESSING", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      yield* em.addFault({ node: "be", path: "_stream_load", nth: 1, action: { _tag: "too-many-versions" } })
      yield* em.addFault({ node: "be", path: "_stream_load", nth: 2, action: { _tag: "mem-limit" } })
      const v = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "v1", ...csv })
      assert.strictEqual(v.json.Status, "Fail")
      assert.include(v.json.Message, "too many versions")
      const m = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "v2", ...csv })
      assert.include(m.json.Message, "exceed limit")
      assert.strictEqual((yield* em.rows("d", "t")).length, 0)
      yield* em.addFault({ node: "be", path: "/api/transaction/load", nth: 1, action: { _tag: "txn-in-processing" } })
      const h = { db: "d", table: "t", label: "busy" }
      yield* txn(em.fe[0]!, "begin", h)
      const busy = yield* txn(em.fe[0]!, "load", { ...h, ...csv }, "1,a\n")
      assert.strictEqual(busy.json.Status, "TXN_IN_PROCESSING")
      const ok = yield* txn(em.fe[0]!, "load", { ...h, ...csv }, "1,a\n")
      assert.strictEqual(ok.json.Status, "OK")
    }))

  it.scopedLive("commit-unknown: committed, but the answer says the status is unknown", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      yield* em.addFault({ node: "be", path: "_stream_load", nth: 1, action: { _tag: "commit-unknown" } })
      const res = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "cu", ...csv })
      assert.strictEqual(res.json.Status, "Fail")
      assert.match(res.json.Message, /Transaction status unknown, you can retry with same label\.$/)
      assert.strictEqual(yield* em.loadState("d", "cu"), "VISIBLE")
      const retry = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "cu", ...csv })
      assert.strictEqual(retry.json.ExistingJobStatus, "FINISHED")
    }))

  it.scopedLive("probability draws are deterministic for a seed", () =>
    Effect.gen(function*() {
      const pattern = (seed: number) =>
        Effect.gen(function*() {
          const em = yield* emu({ seed })
          yield* em.addFault({ node: "fe", probability: 0.5, action: { _tag: "http-500" } })
          const out: Array<number> = []
          for (let i = 0; i < 16; i++) {
            out.push(
              (yield* requestE(`${em.fe[0]}/api/d/get_load_state?label=x`, { method: "GET", auth: ROOT })).status
            )
          }
          return out
        }).pipe(Effect.scoped)
      const a = yield* pattern(42)
      const b = yield* pattern(42)
      assert.deepStrictEqual(a, b)
      assert.isTrue(a.includes(500) && a.includes(200))
    }))

  it.scopedLive("an FE that is down refuses connections and comes back on the same port", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      yield* em.setNode("fe0", "down")
      const refused = yield* Effect.promise(() =>
        request(`${em.fe[0]}/api/d/get_load_state?label=x`, { method: "GET", auth: ROOT }).then(
          () => "answered",
          (e) => e.code
        )
      )
      assert.strictEqual(refused, "ECONNREFUSED")
      yield* em.setNode("fe0", "up")
      const res = yield* requestE(`${em.fe[0]}/api/d/get_load_state?label=x`, { method: "GET", auth: ROOT })
      assert.strictEqual(res.status, 200)
    }))
})

describe("emulator surface", () => {
  it.scopedLive("a restarted emulator on the same storage keeps rows, labels and PREPARED transactions", () =>
    Effect.gen(function*() {
      const storage = MemoryStorage.make()
      const scope1 = yield* Scope.make()
      const em1 = yield* emu({ storage }).pipe(Scope.extend(scope1))
      yield* streamLoad(em1.fe[0]!, "d", "t", "1,a\n", { label: "kept", ...csv })
      const h = { db: "d", table: "t", label: "prep" }
      yield* txn(em1.fe[0]!, "begin", h)
      yield* txn(em1.fe[0]!, "load", { ...h, ...csv }, "2,b\n")
      yield* txn(em1.fe[0]!, "prepare", h)
      yield* txn(em1.fe[0]!, "begin", { ...h, label: "open" })
      yield* Scope.close(scope1, Exit.void)

      const em2 = yield* emu({ storage })
      assert.strictEqual(yield* em2.loadState("d", "prep"), "PREPARED")
      assert.strictEqual(yield* em2.loadState("d", "open"), "UNKNOWN", "begun-only transactions are lost")
      const dup = yield* streamLoad(em2.fe[0]!, "d", "t", "1,a\n", { label: "kept", ...csv })
      assert.strictEqual(dup.json.ExistingJobStatus, "FINISHED")
      const commit = yield* txn(em2.fe[0]!, "commit", h)
      assert.strictEqual(commit.json.Status, "OK")
      assert.deepStrictEqual(ids(yield* em2.rows("d", "t")), ["1", "2"])
      const next = yield* streamLoad(em2.fe[0]!, "d", "t", "3,c\n", { label: "next", ...csv })
      assert.isTrue(next.json.TxnId > commit.json.TxnId, "txn ids keep increasing")
    }))

  it.scopedLive("the request log shows both hops and the credentials the BE saw", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "hops", ...csv })
      const log = yield* em.requests
      assert.deepStrictEqual(log.map((r) => [r.node, r.method, r.path, r.bodyBytes]), [
        ["fe0", "PUT", "/api/d/t/_stream_load", 0],
        ["be0", "PUT", "/api/d/t/_stream_load", 4]
      ])
      assert.strictEqual(log[1]!.headers["authorization"], ROOT)
      assert.strictEqual(log[1]!.headers["label"], "hops")
    }))

  it.scopedLive("FE unknown paths: GET is a 404 HTML page, POST a JSON body", () =>
    Effect.gen(function*() {
      const em = yield* emu()
      const get = yield* requestE(`${em.fe[0]}/api/nope`, { method: "GET", auth: ROOT })
      assert.strictEqual(get.status, 404)
      assert.match(String(get.headers["content-type"]), /text\/html/)
      const post = yield* requestE(`${em.fe[0]}/api/nope`, { method: "POST", auth: ROOT })
      assert.deepStrictEqual(post.json, { status: "FAILED", msg: "Not implemented" })
    }))

  it.scopedLive("knobs: old get_load_state shape, StreamLoadPutTimeMs, Expect not required", () =>
    Effect.gen(function*() {
      const em = yield* emu({ loadStateShape: "old", planTimeField: "StreamLoadPutTimeMs", requireExpect: false })
      const noExpect = yield* requestE(`${em.fe[0]}/api/d/t/_stream_load`, { auth: ROOT, body: "1,a\n", expect: false })
      assert.strictEqual(noExpect.status, 307)
      const res = yield* streamLoad(em.fe[0]!, "d", "t", "1,a\n", { label: "k1", ...csv })
      assert.property(res.json, "StreamLoadPutTimeMs")
      assert.notProperty(res.json, "StreamLoadPlanTimeMs")
      const s = yield* requestE(`${em.fe[0]}/api/d/get_load_state?label=k1`, { method: "GET", auth: ROOT })
      assert.strictEqual(s.text, "{\"state\":\"VISIBLE\",\"status\":\"OK\",\"msg\":\"Success\"}")
      const unauth = yield* requestE(`${em.fe[0]}/api/d/t/_stream_load`, { body: "1,a\n" })
      assert.strictEqual(unauth.text, "{\"status\":\"FAILED\",\"msg\":\"Need auth information.\"}")
    }))

  it.scopedLive("admin API: tables, rows, transactions, faults, reset", () =>
    Effect.gen(function*() {
      const em = yield* StarRocksEmulator.make({ users: { root: "" }, cleanerIntervalMs: 50 })
      assert.isString(em.admin)
      const admin = em.admin!.replace("http://", "")
      const created = yield* requestE(`${admin}/tables`, {
        method: "POST",
        expect: false,
        body: JSON.stringify({
          database: "a",
          table: "t",
          model: "PRIMARY",
          key: ["id"],
          columns: [{ name: "id", type: "BIGINT" }, { name: "big", type: "LARGEINT", nullable: true }]
        })
      })
      assert.strictEqual(created.status, 200)
      yield* streamLoad(em.fe[0]!, "a", "t", "1,170141183460469231731687303715884105727\n", { label: "x1", ...csv })
      const rows = yield* requestE(`${admin}/tables/a/t`, { method: "GET" })
      assert.deepStrictEqual(rows.json, [{ id: 1, big: "170141183460469231731687303715884105727" }])
      const txns = yield* requestE(`${admin}/transactions/a`, { method: "GET" })
      assert.strictEqual(txns.json[0].label, "x1")
      assert.strictEqual(txns.json[0].status, "VISIBLE")
      const fault = yield* requestE(`${admin}/faults`, {
        method: "POST",
        expect: false,
        body: JSON.stringify({ node: "be", path: "_stream_load", action: { _tag: "fail", message: "nope" } })
      })
      assert.strictEqual(fault.status, 200)
      assert.strictEqual(
        (yield* streamLoad(em.fe[0]!, "a", "t", "2,1\n", { label: "x2", ...csv })).json.Message,
        "nope"
      )
      yield* requestE(`${admin}/faults`, { method: "DELETE" })
      assert.strictEqual(
        (yield* streamLoad(em.fe[0]!, "a", "t", "2,1\n", { label: "x2", ...csv })).json.Status,
        "Success"
      )
      const reset = yield* requestE(`${admin}/reset`, { method: "POST" })
      assert.strictEqual(reset.status, 200)
      assert.deepStrictEqual((yield* requestE(`${admin}/tables/a/t`, { method: "GET" })).json, [])
      assert.deepStrictEqual((yield* requestE(`${admin}/transactions/a`, { method: "GET" })).json, [])
      const missing = yield* requestE(`${admin}/tables/a/zzz`, { method: "GET" })
      assert.strictEqual(missing.status, 404)
    }))
})
