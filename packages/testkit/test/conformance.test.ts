/**
 * docs/protocol.md §11: every conformance case over real sockets.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, TestClock, TestContext } from "effect"
import { StarRocksEmulator } from "../src/index.js"
import {
  basic,
  bodyRead,
  followE,
  head,
  openRaw,
  parseRaw,
  raw,
  request,
  requestE,
  ROOT,
  streamLoad,
  TABLES,
  txn,
  until
} from "./utils.js"

const Emulator = StarRocksEmulator.StarRocksEmulator

const STREAM_KEYS = [
  "TxnId",
  "Label",
  "Status",
  "Message",
  "NumberTotalRows",
  "NumberLoadedRows",
  "NumberFilteredRows",
  "NumberUnselectedRows",
  "LoadBytes",
  "LoadTimeMs",
  "BeginTxnTimeMs",
  "StreamLoadPlanTimeMs",
  "ReadDataTimeMs",
  "WriteDataTimeMs",
  "CommitAndPublishTimeMs"
]

const beLoad = (be: string, headers: Record<string, string>, body: string, db = "d", table = "t") =>
  requestE(`${be}/api/${db}/${table}/_stream_load`, { auth: ROOT, headers, body })

const single = <A>(
  options: StarRocksEmulator.Options,
  f: (em: StarRocksEmulator.StarRocksEmulator) => Effect.Effect<A>
) => Effect.flatMap(StarRocksEmulator.make(options), f)

layer(StarRocksEmulator.layer({ ...TABLES, fes: 2, bes: 1, cleanerIntervalMs: 50 }), { excludeTestServices: true })(
  "conformance (docs/protocol.md §11)",
  (it) => {
    // ------------------------------------------------------------------------------------------------ FE
    it.effect("case 1: FE stream load answers 307 to a BE without reading the body", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* requestE(`${em.fe[0]}/api/d/t/_stream_load`, {
          auth: ROOT,
          headers: { label: "L1-fe" },
          body: "1,a\n"
        })
        assert.strictEqual(res.status, 307)
        assert.strictEqual(res.headers.location, `http://${em.bes[0]}/api/d/t/_stream_load`)
        assert.strictEqual(res.headers.connection, "close")
        assert.strictEqual(res.headers["content-length"], "0")
        assert.strictEqual(res.text, "")
        assert.isFalse(res.continued, "the FE never sends 100 Continue")
        assert.isFalse(res.bodySent)
        assert.isTrue(em.bes[0]!.startsWith("127.0.0.2:"))
      }))

    it.effect("case 2: the Location keeps the query string", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* requestE(`${em.fe[0]}/api/d/t/_stream_load?foo=1`, { auth: ROOT, body: "1,a\n" })
        assert.strictEqual(res.status, 307)
        assert.strictEqual(res.headers.location, `http://${em.bes[0]}/api/d/t/_stream_load?foo=1`)
      }))

    it.effect("case 3: no Authorization gives 401 Need auth information.", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* requestE(`${em.fe[0]}/api/d/t/_stream_load`, { body: "1,a\n" })
        assert.strictEqual(res.status, 401)
        assert.strictEqual(res.headers["www-authenticate"], "Basic realm=\"\"")
        assert.deepStrictEqual(res.json, {
          status: "FAILED",
          code: "1",
          msg: "Need auth information.",
          message: "Need auth information."
        })
        assert.isFalse(res.text.includes("\n"), "compact RestBaseResult")
      }))

    it.effect("case 4: a wrong password gives 401 Access denied for user@ip", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* requestE(`${em.fe[0]}/api/d/t/_stream_load`, {
          auth: basic("alice", "wrong"),
          body: "1,a\n"
        })
        assert.strictEqual(res.status, 401)
        assert.strictEqual(res.headers["www-authenticate"], "Basic realm=\"\"")
        assert.strictEqual(res.json.status, "FAILED")
        assert.strictEqual(res.json.msg, "Access denied for alice@127.0.0.1")
      }))

    it.effect("case 5: HTTP/1.1 without Expect is refused with 200 FAILED", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* requestE(`${em.fe[0]}/api/d/t/_stream_load`, { auth: ROOT, body: "1,a\n", expect: false })
        assert.strictEqual(res.status, 200)
        assert.strictEqual(res.headers.connection, "close")
        assert.strictEqual(
          res.text,
          "{\n  \"Status\": \"FAILED\",\n  \"Message\": \"class com.starrocks.common.DdlException: There is no 100-continue header\"\n}"
        )
      }))

    it.effect("case 6: HTTP/1.0 without Expect is redirected", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const text = yield* Effect.promise(() =>
          raw(
            em.fe[0]!,
            head("PUT", "/api/d/t/_stream_load", { Host: "x", Authorization: ROOT, "Content-Length": "4" }, "1.0") +
              "1,a\n"
          )
        )
        const res = parseRaw(text)
        assert.strictEqual(res.status, 307)
        assert.strictEqual(res.headers["location"], `http://${em.bes[0]}/api/d/t/_stream_load`)
      }))

    it.effect("case 8: a missing table is still redirected; the BE reports it", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* requestE(`${em.fe[0]}/api/d/nope/_stream_load`, { auth: ROOT, body: "1,a\n" })
        assert.strictEqual(res.status, 307)
        const be = yield* streamLoad(em.fe[0]!, "d", "nope", "1,a\n")
        assert.strictEqual(be.json.Status, "Fail")
        assert.strictEqual(be.json.Message, "unknown table \"d.nope\"")
      }))

    // ------------------------------------------------------------------------------------------------ BE
    it.effect("case 10: a BE stream load succeeds with the documented body", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* beLoad(em.bes[0]!, { label: "L1", column_separator: "," }, "1,a\n2,b\n")
        assert.strictEqual(res.status, 200)
        assert.isTrue(res.continued)
        assert.deepStrictEqual(Object.keys(res.json), STREAM_KEYS)
        assert.strictEqual(res.json.Status, "Success")
        assert.strictEqual(res.json.Message, "OK")
        assert.isTrue(res.json.TxnId > 0)
        assert.strictEqual(res.json.Label, "L1")
        assert.strictEqual(res.json.NumberTotalRows, 2)
        assert.strictEqual(res.json.NumberLoadedRows, 2)
        assert.strictEqual(res.json.NumberFilteredRows, 0)
        assert.strictEqual(res.json.NumberUnselectedRows, 0)
        assert.strictEqual(res.json.LoadBytes, 8)
        assert.isTrue(res.text.startsWith("{\n    \"TxnId\": "), "4-space pretty JSON")
        const rows = yield* em.rows("d", "t")
        assert.deepStrictEqual(rows.map((r) => [String(r["id"]), r["name"]]), [["1", "a"], ["2", "b"]])
      }))

    it.effect("case 11: the same label after success is Label Already Exists / FINISHED", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        yield* beLoad(em.bes[0]!, { label: "L11", column_separator: "," }, "1,a\n")
        const res = yield* beLoad(em.bes[0]!, { label: "L11", column_separator: "," }, "1,a\n")
        assert.strictEqual(res.json.Status, "Label Already Exists")
        assert.strictEqual(res.json.ExistingJobStatus, "FINISHED")
        assert.strictEqual(res.json.Message, "Label [L11] has already been used.")
        assert.strictEqual(res.json.TxnId, -1)
        assert.strictEqual(res.json.NumberTotalRows, 0)
        assert.strictEqual(res.json.LoadBytes, 0)
        assert.deepStrictEqual(Object.keys(res.json).slice(0, 5), [
          "TxnId",
          "Label",
          "Status",
          "ExistingJobStatus",
          "Message"
        ])
        assert.isFalse(res.bodySent, "a header-phase answer: the body is never sent")
        // the 3.3–3.5 form, as a knob
        const failMode = yield* single({ ...TABLES, admin: false, duplicateLabelMode: "fail" }, (em2) =>
          Effect.gen(function*() {
            yield* beLoad(em2.bes[0]!, { label: "L11", column_separator: "," }, "1,a\n")
            return yield* beLoad(em2.bes[0]!, { label: "L11", column_separator: "," }, "1,a\n")
          }))
        assert.strictEqual(failMode.json.Status, "Fail")
        assert.include(failMode.json.Message, "Label [L11] has already been used.")
        assert.notProperty(failMode.json, "ExistingJobStatus")
      }).pipe(Effect.scoped))

    it.effect("case 12: the same label while the first load runs is Label Already Exists / RUNNING", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const first = yield* Effect.promise(() => openRaw(em.bes[0]!))
        first.write(
          head("PUT", "/api/d/t/_stream_load", {
            Host: "x",
            Authorization: ROOT,
            label: "L12",
            column_separator: ",",
            "Content-Length": "8"
          }) + "1,a\n"
        )
        yield* until("first 4 body bytes read by the BE", bodyRead(em, "L12", 4))
        const second = yield* beLoad(em.bes[0]!, { label: "L12", column_separator: "," }, "9,z\n")
        assert.strictEqual(second.json.Status, "Label Already Exists")
        assert.strictEqual(second.json.ExistingJobStatus, "RUNNING")
        first.write("2,b\n")
        const done = parseRaw(yield* Effect.promise(() => first.waitFor("CommitAndPublishTimeMs")))
        first.destroy()
        assert.strictEqual(done.status, 200)
        assert.include(done.body, "\"Status\": \"Success\"")
      }))

    it.effect("case 13: a failed load's label is reusable at once", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        yield* em.addFault({ node: "be", path: "_stream_load", nth: 1, action: { _tag: "fail", message: "boom" } })
        const first = yield* beLoad(em.bes[0]!, { label: "L13", column_separator: "," }, "1,a\n")
        yield* em.clearFaults
        assert.strictEqual(first.json.Status, "Fail")
        assert.strictEqual(first.json.Message, "boom")
        assert.strictEqual(yield* em.loadState("d", "L13"), "ABORTED")
        const retry = yield* beLoad(em.bes[0]!, { label: "L13", column_separator: "," }, "1,a\n")
        assert.strictEqual(retry.json.Status, "Success")
      }))

    it.effect("case 14: no Authorization on the BE fails before the body", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* requestE(`${em.bes[0]}/api/d/t/_stream_load`, { headers: { label: "L14" }, body: "1,a\n" })
        assert.strictEqual(res.status, 200)
        assert.strictEqual(res.json.Status, "Fail")
        assert.strictEqual(res.json.Message, "no valid Basic authorization")
        assert.strictEqual(res.json.TxnId, -1)
        assert.isFalse(res.continued)
        assert.isFalse(res.bodySent)
      }))

    it.effect("case 15: missing database or table", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const db = yield* beLoad(em.bes[0]!, { label: "L15a" }, "1\n", "nodb", "t")
        assert.strictEqual(db.json.Status, "Fail")
        assert.strictEqual(db.json.Message, "unknown database, database=nodb")
        const table = yield* beLoad(em.bes[0]!, { label: "L15b" }, "1\n", "d", "nope")
        assert.strictEqual(table.json.Message, "unknown table \"d.nope\"")
      }))

    it.effect("case 16: no label header gives a generated UUID label", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* beLoad(em.bes[0]!, { column_separator: "," }, "5,e\n")
        assert.strictEqual(res.json.Status, "Success")
        assert.match(res.json.Label, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
      }))

    it.effect("case 17: label format errors", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const bad = yield* beLoad(em.bes[0]!, { label: "bad.label" }, "1\n")
        assert.strictEqual(bad.json.Status, "Fail")
        assert.isTrue(bad.json.Message.startsWith("Label format error."))
        const long = yield* beLoad(em.bes[0]!, { label: "x".repeat(129) }, "1\n")
        assert.isTrue(long.json.Message.startsWith("Label format error."))
        const ok = yield* beLoad(em.bes[0]!, { label: `A-_${"x".repeat(125)}`, column_separator: "," }, "1,a\n")
        assert.strictEqual(ok.json.Status, "Success")
      }))

    it.effect("case 18: unknown format", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* beLoad(em.bes[0]!, { label: "L18", format: "xml" }, "<a/>")
        assert.strictEqual(res.json.Status, "Fail")
        assert.strictEqual(res.json.Message, "unknown data format, format=xml")
      }))

    it.effect("case 19: timeout format and range", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const abc = yield* beLoad(em.bes[0]!, { label: "L19a", timeout: "abc" }, "1\n")
        assert.strictEqual(abc.json.Message, "Invalid timeout format")
        const big = yield* beLoad(em.bes[0]!, { label: "L19b", timeout: "300000" }, "1\n")
        assert.strictEqual(big.json.Status, "Fail")
        assert.match(big.json.Message, /^Invalid timeout.*between 1 and 259200 seconds/)
      }))

    it.effect("case 20: too many filtered rows, with an ErrorURL serving the error log", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* beLoad(em.bes[0]!, { label: "L20", column_separator: "," }, "1,a\n2\n")
        assert.strictEqual(res.json.Status, "Fail")
        assert.strictEqual(res.json.Message, "too many filtered rows")
        assert.strictEqual(res.json.NumberFilteredRows, 1)
        assert.isString(res.json.ErrorURL)
        assert.match(
          res.json.ErrorURL,
          /^http:\/\/127\.0\.0\.2:\d+\/api\/_load_error_log\?file=error_log_[0-9a-f]+_[0-9a-f]+$/
        )
        const log = yield* requestE(res.json.ErrorURL.replace("http://", ""), { method: "GET" })
        assert.strictEqual(log.status, 200)
        assert.match(String(log.headers["content-type"]), /^text\/plain/)
        const lines = log.text.split("\n").filter((l) => l.length > 0)
        assert.strictEqual(lines.length, 1)
        assert.isTrue(lines[0]!.startsWith("Error: Target column count: 2 doesn't match source value column count: 1."))
        assert.isTrue(lines[0]!.endsWith(". Row: 2"))
      }))

    it.effect("case 21: max_filter_ratio lets the load succeed, ErrorURL still present", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* beLoad(
          em.bes[0]!,
          { label: "L21", column_separator: ",", max_filter_ratio: "0.5" },
          "1,a\n2\n"
        )
        assert.strictEqual(res.json.Status, "Success")
        assert.strictEqual(res.json.NumberLoadedRows, 1)
        assert.strictEqual(res.json.NumberFilteredRows, 1)
        assert.isString(res.json.ErrorURL)
      }))

    it.effect("case 22: where counts unselected rows", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* beLoad(em.bes[0]!, { label: "L22", column_separator: ",", where: "id > 1" }, "1,a\n2,b\n")
        assert.strictEqual(res.json.Status, "Success")
        assert.strictEqual(res.json.NumberTotalRows, 2)
        assert.strictEqual(res.json.NumberLoadedRows, 1)
        assert.strictEqual(res.json.NumberUnselectedRows, 1)
      }))

    it.effect("case 23: an empty body is an error unless empty_load_as_error=false", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* beLoad(em.bes[0]!, { label: "L23" }, "")
        assert.strictEqual(res.json.Status, "Fail")
        assert.match(
          res.json.Message,
          /^(No partitions have data available for loading|all partitions have no load data)/
        )
        const lenient = yield* single({ ...TABLES, admin: false, emptyLoadAsError: false }, (em2) =>
          beLoad(em2.bes[0]!, { label: "L23" }, ""))
        assert.strictEqual(lenient.json.Status, "Success")
        assert.strictEqual(lenient.json.NumberLoadedRows, 0)
      }).pipe(Effect.scoped))

    it.effect("case 24: JSON over 100 MiB is refused from Content-Length unless ignore_json_size", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const n = 100 * 1024 * 1024 + 1
        const headers = (extra: Record<string, string>) =>
          head("PUT", "/api/d/t/_stream_load", {
            Host: "x",
            Authorization: ROOT,
            format: "json",
            "Content-Length": String(n),
            Expect: "100-continue",
            ...extra
          })
        const c1 = yield* Effect.promise(() => openRaw(em.bes[0]!))
        c1.write(headers({ label: "L24a" }))
        const refused = parseRaw(yield* Effect.promise(() => c1.waitFor("CommitAndPublishTimeMs")))
        c1.destroy()
        assert.notInclude(refused.body, "100 Continue")
        assert.strictEqual(refused.json.Status, "Fail")
        assert.strictEqual(
          refused.json.Message,
          `The size of this batch exceed the max size [104857600]  of json type data  data [ ${n} ]. ` +
            "Set ignore_json_size to skip the check, although it may lead huge memory consuming."
        )
        const c2 = yield* Effect.promise(() => openRaw(em.bes[0]!))
        c2.write(headers({ label: "L24b", ignore_json_size: "true" }))
        const cont = yield* Effect.promise(() => c2.waitFor("100 Continue"))
        c2.destroy()
        assert.isTrue(cont.startsWith("HTTP/1.1 100 Continue"))
      }))

    it.effect("case 25: JSON streams, strip_outer_array and a bad first byte", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const stream = yield* beLoad(em.bes[0]!, { label: "L25a", format: "json" }, "{\"id\":1}{\"id\":2}")
        assert.strictEqual(stream.json.Status, "Success")
        assert.strictEqual(stream.json.NumberLoadedRows, 2)
        const array = yield* beLoad(
          em.bes[0]!,
          { label: "L25b", format: "json", strip_outer_array: "true" },
          "[{\"id\":1},{\"id\":2}]"
        )
        assert.strictEqual(array.json.NumberLoadedRows, 2)
        const bad = yield* beLoad(em.bes[0]!, { label: "L25c", format: "json" }, "x")
        assert.strictEqual(bad.json.Status, "Fail")
        assert.include(bad.json.Message, "illegal json started with x")
      }))

    it.effect("case 26: a missing JSON key loads NULL; unknown keys are ignored", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* beLoad(em.bes[0]!, { label: "L26", format: "json" }, "{\"id\":2601,\"other\":5}", "d", "pk")
        assert.strictEqual(res.json.Status, "Success")
        const rows = yield* em.rows("d", "pk")
        const row = rows.find((r) => String(r["id"]) === "2601")
        assert.isDefined(row)
        assert.strictEqual(row!["name"], null)
        assert.notProperty(row!, "other")
      }))

    it.effect("case 27: a body shorter than Content-Length fails", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const text = yield* Effect.promise(() =>
          raw(
            em.bes[0]!,
            head("PUT", "/api/d/t/_stream_load", {
              Host: "x",
              Authorization: ROOT,
              label: "L27",
              "Content-Length": "100"
            }) + "x".repeat(50)
          )
        )
        const res = parseRaw(text)
        assert.strictEqual(res.json.Status, "Fail")
        assert.strictEqual(res.json.Message, "receive body don't equal with body bytes")
        assert.strictEqual(res.json.LoadBytes, 50)
        assert.notStrictEqual(yield* em.loadState("d", "L27"), "VISIBLE")
      }))

    it.effect("case 28: Content-Encoding and compression together", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* beLoad(em.bes[0]!, { label: "L28", "Content-Encoding": "gzip", compression: "gzip" }, "1\n")
        assert.strictEqual(res.json.Status, "Fail")
        assert.strictEqual(res.json.Message, "Only one of http header content-encoding and compression can be set")
      }))

    it.effect("case 29: an injected publish timeout commits, then becomes visible", () =>
      Effect.gen(function*() {
        // its own emulator on the TestClock: the timer is the emulator's clock, not a real sleep
        const em = yield* StarRocksEmulator.make({ ...TABLES, clock: yield* Effect.clock })
        yield* em.addFault({
          node: "be",
          path: "_stream_load",
          nth: 1,
          action: { _tag: "publish-timeout", visibleAfterMs: 300 }
        })
        const res = yield* beLoad(em.bes[0]!, { label: "L29", column_separator: "," }, "2901,p\n", "d", "pk")
        yield* em.clearFaults
        assert.strictEqual(res.json.Status, "Publish Timeout")
        assert.strictEqual(res.json.Message, "Publish timeout. The data will be visible after a while")
        const state = yield* requestE(`${em.fe[0]}/api/d/get_load_state?label=L29`, { method: "GET", auth: ROOT })
        assert.strictEqual(state.json.state, "COMMITTED")
        const before = yield* em.rows("d", "pk")
        assert.isUndefined(before.find((r) => String(r["id"]) === "2901"))
        const again = yield* beLoad(em.bes[0]!, { label: "L29", column_separator: "," }, "2901,p\n", "d", "pk")
        assert.strictEqual(again.json.Status, "Label Already Exists")
        assert.strictEqual(again.json.ExistingJobStatus, "FINISHED")
        yield* TestClock.adjust("450 millis")
        yield* em.tick
        const after = yield* requestE(`${em.fe[0]}/api/d/get_load_state?label=L29`, { method: "GET", auth: ROOT })
        assert.strictEqual(after.json.state, "VISIBLE")
        const rows = yield* em.rows("d", "pk")
        assert.isDefined(rows.find((r) => String(r["id"]) === "2901"))
      }).pipe(Effect.scoped, Effect.provide(TestContext.TestContext)))

    it.effect("case 30: an unknown BE path is 404 Not Found", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* requestE(`${em.bes[0]}/api/d/t/_unknown`, { auth: ROOT, body: "x", expect: false })
        assert.strictEqual(res.status, 404)
        assert.strictEqual(res.text, "Not Found")
      }))

    // ------------------------------------------------------------------------------------------------ label state
    it.effect("case 31: get_load_state", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        yield* beLoad(em.bes[0]!, { label: "L31", column_separator: "," }, "1,a\n")
        const get = (fe: string, q: string) => requestE(`${fe}/api/d/get_load_state${q}`, { method: "GET", auth: ROOT })
        const visible = yield* get(em.fe[0]!, "?label=L31")
        assert.strictEqual(visible.status, 200)
        assert.strictEqual(
          visible.text,
          "{\"state\":\"VISIBLE\",\"reason\":\"\",\"status\":\"OK\",\"code\":\"0\",\"msg\":\"Success\",\"message\":\"OK\"}"
        )
        const unknown = yield* get(em.fe[0]!, "?label=never-used")
        assert.strictEqual(unknown.json.state, "UNKNOWN")
        assert.notProperty(unknown.json, "reason")
        const none = yield* get(em.fe[0]!, "")
        assert.strictEqual(none.json.status, "FAILED")
        assert.strictEqual(none.json.msg, "No label selected.")
        const follower = yield* get(em.fe[1]!, "?label=L31")
        assert.strictEqual(follower.status, 307)
        assert.strictEqual(follower.headers.location, `http://${em.fe[0]}/api/d/get_load_state?label=L31`)
        const noAuth = yield* requestE(`${em.fe[0]}/api/d/get_load_state?label=L31`, { method: "GET" })
        assert.strictEqual(noAuth.status, 401)
      }))

    // ------------------------------------------------------------------------------------------------ transactions
    it.effect("case 32: begin via the FE redirects; the BE begins", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const h = { db: "d", table: "t", label: "T1", timeout: "600" }
        const redirect = yield* requestE(`${em.fe[0]}/api/transaction/begin`, {
          method: "POST",
          auth: ROOT,
          headers: h
        })
        assert.strictEqual(redirect.status, 307)
        assert.strictEqual(redirect.headers.location, `http://${em.bes[0]}/api/transaction/begin`)
        const res = yield* requestE(`${em.bes[0]}/api/transaction/begin`, { method: "POST", auth: ROOT, headers: h })
        assert.deepStrictEqual(Object.keys(res.json), ["Status", "Message", "Label", "TxnId", "BeginTxnTimeMs"])
        assert.strictEqual(res.json.Status, "OK")
        assert.strictEqual(res.json.Message, "")
        assert.strictEqual(res.json.Label, "T1")
        assert.isTrue(res.json.TxnId > 0)
        assert.isTrue(res.text.includes("\n    \"Status\""))
      }))

    it.effect("case 33: FE parameter errors", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const noDb = yield* txn(em.fe[0]!, "begin", { label: "T33", table: "t" })
        assert.strictEqual(noDb.json.Status, "FAILED")
        assert.match(noDb.json.Message, /^class .*: No database selected\.$/)
        assert.isTrue(noDb.text.includes("\n  \"Status\""), "2-space TransactionResult")
        const noLabel = yield* txn(em.fe[0]!, "begin", { db: "d", table: "t" })
        assert.match(noLabel.json.Message, /: Empty label\.$/)
        const foo = yield* txn(em.fe[0]!, "foo", { db: "d", table: "t", label: "T33" })
        assert.strictEqual(foo.json.Status, "FAILED")
        assert.include(foo.json.Message, "Unknown transaction operation: foo")
      }))

    it.effect("case 34: load goes to the begin BE; headers must stay identical", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const h = { db: "d", table: "t", label: "T34" }
        yield* txn(em.fe[0]!, "begin", h)
        const redirect = yield* requestE(`${em.fe[0]}/api/transaction/load`, {
          auth: ROOT,
          headers: { ...h, column_separator: "," },
          body: "1,a\n"
        })
        assert.strictEqual(redirect.status, 307)
        assert.strictEqual(redirect.headers.location, `http://${em.bes[0]}/api/transaction/load`)
        const first = yield* txn(em.fe[0]!, "load", { ...h, column_separator: "," }, "1,a\n")
        assert.deepStrictEqual(Object.keys(first.json), [
          "Status",
          "Message",
          "Label",
          "TxnId",
          "LoadBytes",
          "StreamLoadPlanTimeMs",
          "ReceivedDataTimeMs"
        ])
        assert.strictEqual(first.json.Status, "OK")
        assert.strictEqual(first.json.LoadBytes, 4)
        const second = yield* txn(em.fe[0]!, "load", { ...h, column_separator: "|" }, "2|b\n")
        assert.strictEqual(second.json.Status, "INTERNAL_ERROR")
        assert.strictEqual(second.json.Message, "load request not equal last.")
      }))

    it.effect("case 35: POST /api/transaction/load on a BE is not the load action", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const res = yield* requestE(`${em.bes[0]}/api/transaction/load`, {
          method: "POST",
          auth: ROOT,
          headers: { db: "d", table: "t", label: "T35" },
          body: "1,a\n",
          expect: false
        })
        assert.strictEqual(res.json.Status, "INVALID_ARGUMENT")
        assert.strictEqual(res.json.Message, "unsupport transaction operation load")
      }))

    it.effect("case 36: load of a label never begun", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const h = { db: "d", table: "t", label: "X36" }
        const be = yield* requestE(`${em.bes[0]}/api/transaction/load`, { auth: ROOT, headers: h, body: "1,a\n" })
        assert.deepStrictEqual(be.json, { Status: "TXN_NOT_EXISTS", Message: "Transaction with label X36 not exists" })
        const fe = yield* requestE(`${em.fe[0]}/api/transaction/load`, { auth: ROOT, headers: h, body: "1,a\n" })
        assert.strictEqual(fe.status, 200)
        assert.strictEqual(fe.json.Status, "FAILED")
        assert.include(fe.json.Message, "Can't find the transaction with db [d] and label[X36]")
      }))

    it.effect("case 37: concurrent loads on one transaction get TXN_IN_PROCESSING", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const h = { db: "d", table: "t", label: "T37" }
        yield* txn(em.fe[0]!, "begin", h)
        const first = yield* Effect.promise(() => openRaw(em.bes[0]!))
        first.write(
          head("PUT", "/api/transaction/load", {
            Host: "x",
            Authorization: ROOT,
            ...h,
            column_separator: ",",
            "Content-Length": "8"
          }) + "1,a\n"
        )
        yield* until("first 4 body bytes read by the BE", bodyRead(em, "T37", 4))
        const second = yield* txn(em.fe[0]!, "load", { ...h, column_separator: "," }, "3,c\n")
        assert.deepStrictEqual(second.json, {
          Status: "TXN_IN_PROCESSING",
          Label: "T37",
          Message: "Transaction in processing, please retry later"
        })
        first.write("2,b\n")
        const done = parseRaw(yield* Effect.promise(() => first.waitFor("ReceivedDataTimeMs")))
        first.destroy()
        assert.strictEqual(done.json.Status, "OK")
      }))

    it.effect("case 38: commit with no data fails and rolls back", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const h = { db: "d", table: "t", label: "T38" }
        yield* txn(em.fe[0]!, "begin", h)
        const commit = yield* txn(em.fe[0]!, "commit", h)
        assert.strictEqual(commit.json.Status, "INTERNAL_ERROR")
        assert.match(commit.json.Message, /^transaction .* hasn't send any data yet$/)
        const again = yield* txn(em.fe[0]!, "commit", h)
        assert.strictEqual(again.json.Status, "FAILED")
        const direct = yield* requestE(`${em.bes[0]}/api/transaction/commit`, {
          method: "POST",
          auth: ROOT,
          headers: h
        })
        assert.strictEqual(direct.json.Status, "TXN_NOT_EXISTS")
      }))

    it.effect("case 39: prepare, then the FE commits itself", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const h = { db: "d", table: "pk", label: "T39" }
        yield* txn(em.fe[0]!, "begin", h)
        yield* txn(em.fe[0]!, "load", { ...h, column_separator: "," }, "3901,a\n3902,b\n")
        const prepared = yield* txn(em.fe[0]!, "prepare", { ...h, prepared_timeout: "300" })
        assert.strictEqual(prepared.json.Status, "OK")
        assert.strictEqual(prepared.json.NumberLoadedRows, 2)
        assert.deepStrictEqual(Object.keys(prepared.json), [
          "Status",
          "Message",
          "Label",
          "TxnId",
          "NumberTotalRows",
          "NumberLoadedRows",
          "NumberFilteredRows",
          "NumberUnselectedRows",
          "LoadBytes",
          "LoadTimeMs",
          "StreamLoadPlanTimeMs",
          "ReceivedDataTimeMs",
          "WriteDataTimeMs",
          "CommitAndPublishTimeMs"
        ])
        const state = yield* requestE(`${em.fe[0]}/api/d/get_load_state?label=T39`, { method: "GET", auth: ROOT })
        assert.strictEqual(state.json.state, "PREPARED")
        assert.isUndefined((yield* em.rows("d", "pk")).find((r) => String(r["id"]) === "3901"))
        const commit = yield* requestE(`${em.fe[0]}/api/transaction/commit`, { method: "POST", auth: ROOT, headers: h })
        assert.strictEqual(commit.status, 200, "answered by the FE itself")
        assert.deepStrictEqual(commit.json, { Status: "OK", Message: "", TxnId: prepared.json.TxnId, Label: "T39" })
        assert.isDefined((yield* em.rows("d", "pk")).find((r) => String(r["id"]) === "3901"))
        const again = yield* txn(em.fe[0]!, "commit", h)
        assert.strictEqual(again.json.Status, "OK")
        assert.strictEqual(
          again.json.Message,
          `Transaction ${prepared.json.TxnId} has already committed, label is T39`
        )
        const rollback = yield* txn(em.fe[0]!, "rollback", h)
        assert.strictEqual(rollback.json.Status, "FAILED")
        assert.match(rollback.json.Message, /Can not abort (COMMITTED|VISIBLE) transaction \d+, label is T39$/)
      }))

    it.effect("case 40: rollback from PREPARE goes to the BE; then the FE answers", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const h = { db: "d", table: "t", label: "T4" }
        yield* txn(em.fe[0]!, "begin", h)
        yield* txn(em.fe[0]!, "load", { ...h, column_separator: "," }, "1,a\n")
        const redirect = yield* requestE(`${em.fe[0]}/api/transaction/rollback`, {
          method: "POST",
          auth: ROOT,
          headers: h
        })
        assert.strictEqual(redirect.status, 307)
        const rb = yield* txn(em.fe[0]!, "rollback", h)
        assert.deepStrictEqual(rb.json, { Status: "OK", Message: "", Label: "T4" })
        const again = yield* txn(em.fe[0]!, "rollback", h)
        assert.strictEqual(again.json.Status, "OK")
        assert.match(again.json.Message, /^Transaction \d+ has already aborted, label is T4$/)
        const commit = yield* txn(em.fe[0]!, "commit", h)
        assert.strictEqual(commit.json.Status, "FAILED")
        assert.match(commit.json.Message, /Can not commit ABORTED transaction \d+, label is T4$/)
        const state = yield* requestE(`${em.fe[0]}/api/d/get_load_state?label=T4`, { method: "GET", auth: ROOT })
        assert.strictEqual(state.json.state, "ABORTED")
        assert.isString(state.json.reason)
        assert.isTrue(state.json.reason.length > 0)
      }))

    it.effect("case 41: idle_transaction_timeout aborts the transaction", () =>
      Effect.gen(function*() {
        // its own emulator on the TestClock: the timer is the emulator's clock, not a real sleep
        const em = yield* StarRocksEmulator.make({ ...TABLES, clock: yield* Effect.clock })
        const h = { db: "d", table: "t", label: "T41" }
        const begin = yield* txn(em.fe[0]!, "begin", { ...h, idle_transaction_timeout: "1" })
        assert.strictEqual(begin.json.Status, "OK")
        yield* TestClock.adjust("1300 millis")
        yield* em.tick
        const load = yield* txn(em.fe[0]!, "load", { ...h, column_separator: "," }, "1,a\n")
        assert.strictEqual(load.json.Status, "TXN_NOT_EXISTS")
        const state = yield* requestE(`${em.fe[0]}/api/d/get_load_state?label=T41`, { method: "GET", auth: ROOT })
        assert.strictEqual(state.json.state, "ABORTED")
        assert.strictEqual(state.json.reason, "transaction is aborted by idle timeout 1 seconds.")
      }).pipe(Effect.scoped, Effect.provide(TestContext.TestContext)))

    it.effect("case 42: a second begin on the same BE is LABEL_ALREADY_EXISTS with empty fields", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        const h = { db: "d", table: "t", label: "T5" }
        const first = yield* txn(em.fe[0]!, "begin", h)
        assert.strictEqual(first.json.Status, "OK")
        const second = yield* txn(em.fe[0]!, "begin", h)
        assert.deepStrictEqual(second.json, { Status: "LABEL_ALREADY_EXISTS", ExistingJobStatus: "", Message: "" })
      }))

    it.effect("case 43: list shows the open contexts", () =>
      Effect.gen(function*() {
        const em = yield* Emulator
        yield* txn(em.fe[0]!, "begin", { db: "d", table: "t", label: "T43" })
        const res = yield* requestE(`${em.bes[0]}/api/transaction/list`, { method: "POST", auth: ROOT })
        assert.strictEqual(res.status, 200)
        const objects = res.text.split(/\n(?=\{)/).map((s) => JSON.parse(s))
        const ctx = objects.find((o) => o.Label === "T43")
        assert.isDefined(ctx)
        assert.isTrue(ctx.TxnId > 0)
        assert.strictEqual(ctx.InProcessing, false)
        assert.isNumber(ctx.BeginTimestamp)
        assert.isNumber(ctx.LastActiveTimestamp)
      }))
  }
)

describe("conformance (docs/protocol.md §11, own topology)", () => {
  it.scopedLive("case 7: no alive BE", () =>
    Effect.gen(function*() {
      const em = yield* StarRocksEmulator.make({ ...TABLES, admin: false })
      yield* em.setNode("be0", "down")
      const res = yield* requestE(`${em.fe[0]}/api/d/t/_stream_load`, { auth: ROOT, body: "1,a\n" })
      assert.strictEqual(res.status, 200)
      assert.deepStrictEqual(res.json, {
        Status: "FAILED",
        Message: "class com.starrocks.common.DdlException: No backend alive."
      })
      const refused = yield* Effect.promise(() =>
        request(`${em.bes[0]}/api/d/t/_stream_load`, { auth: ROOT, body: "1\n" }).then(() => "answered", (e) => e.code)
      )
      assert.strictEqual(refused, "ECONNREFUSED")
      yield* em.setNode("be0", "up")
      const back = yield* requestE(`${em.fe[0]}/api/d/t/_stream_load`, { auth: ROOT, body: "1,a\n" })
      assert.strictEqual(back.status, 307)
    }))

  it.scopedLive("case 9: five loads rotate round-robin over three BEs", () =>
    Effect.gen(function*() {
      const em = yield* StarRocksEmulator.make({ ...TABLES, admin: false, bes: 3 })
      assert.deepStrictEqual(em.bes.map((b) => b.split(":")[0]), ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
      const locations: Array<string> = []
      for (let i = 0; i < 5; i++) {
        const res = yield* requestE(`${em.fe[0]}/api/d/t/_stream_load`, { auth: ROOT, body: "1,a\n" })
        locations.push(String(res.headers.location))
      }
      const order = locations.map((l) => em.bes.findIndex((b) => l.startsWith(`http://${b}/`)))
      assert.deepStrictEqual(order, [0, 1, 2, 0, 1])
      // a down BE is skipped
      yield* em.setNode("be2", "down")
      const next: Array<number> = []
      for (let i = 0; i < 3; i++) {
        const res = yield* requestE(`${em.fe[0]}/api/d/t/_stream_load`, { auth: ROOT, body: "1,a\n" })
        next.push(em.bes.findIndex((b) => String(res.headers.location).startsWith(`http://${b}/`)))
      }
      assert.notInclude(next, 2)
    }))

  it.scopedLive("case 30a: with enable_http_auth the ErrorURL needs Basic auth", () =>
    Effect.gen(function*() {
      const em = yield* StarRocksEmulator.make({ ...TABLES, admin: false, beHttpAuth: true })
      // case 14 is unchanged: the load endpoint is exempt from the gate
      const noAuth = yield* requestE(`${em.bes[0]}/api/d/t/_stream_load`, { headers: { label: "A1" }, body: "1,a\n" })
      assert.strictEqual(noAuth.status, 200)
      assert.strictEqual(noAuth.json.Message, "no valid Basic authorization")
      const health = yield* requestE(`${em.bes[0]}/api/health`, { method: "GET" })
      assert.strictEqual(health.status, 401)
      assert.strictEqual((yield* requestE(`${em.bes[0]}/api/health`, { method: "GET", auth: ROOT })).status, 200)
      const gated = yield* requestE(`${em.bes[0]}/api/_load_error_log?file=error_log_0_0`, { method: "GET" })
      assert.strictEqual(gated.status, 401)
      assert.strictEqual(gated.headers["www-authenticate"], "Basic realm=\"\"")
      assert.strictEqual(
        gated.text,
        "{\"status\":\"FAILED\",\"code\":\"1\",\"message\":\"missing Basic authorization\"}"
      )
      const filtered = yield* follow2(em, { label: "A2", column_separator: ",", max_filter_ratio: "1" }, "1,a\n2\n")
      assert.isString(filtered.json.ErrorURL)
      const url = String(filtered.json.ErrorURL).replace("http://", "")
      const denied = yield* requestE(url, { method: "GET" })
      assert.strictEqual(denied.status, 401)
      const log = yield* requestE(url, { method: "GET", auth: ROOT })
      assert.strictEqual(log.status, 200)
      assert.include(log.text, "Error: Target column count: 2 doesn't match source value column count: 1.")
    }))
})

const follow2 = (em: StarRocksEmulator.StarRocksEmulator, headers: Record<string, string>, body: string) =>
  followE(`${em.fe[0]}/api/d/t/_stream_load`, { auth: ROOT, headers, body })
