import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import {
  classify,
  classifyBySchema,
  decodeLoadState,
  decodeStreamLoadBody,
  GetLoadStateBody,
  isSuccess,
  RestResultBody,
  StreamLoadBody,
  timings
} from "../src/StreamLoadResponse.js"

const be = (body: Record<string, unknown>) => JSON.stringify(body, null, 4)
const fe = (body: Record<string, unknown>) => JSON.stringify(body, null, 2)

const tagOf = (httpStatus: number, body: unknown, location?: string) => classify(httpStatus, body, location)._tag

describe("StreamLoadResponse schemas", () => {
  it("decodes stream-load bodies case-insensitively", () => {
    const a = Schema.decodeUnknownSync(StreamLoadBody)({ Status: "Success", Message: "OK", TxnId: 3, LoadBytes: 8 })
    const b = Schema.decodeUnknownSync(StreamLoadBody)({ status: "Success", message: "OK", txnid: 3, loadbytes: "8" })
    assert.strictEqual(a.Status, "Success")
    assert.strictEqual(b.Status, "Success")
    assert.strictEqual(b.TxnId, 3)
    assert.strictEqual(b.LoadBytes, 8)
  })

  it("decodes get_load_state (old and new) and 401 bodies", () => {
    const old = Schema.decodeUnknownSync(GetLoadStateBody)({ state: "VISIBLE", status: "OK", msg: "Success" })
    const neu = Schema.decodeUnknownSync(GetLoadStateBody)({
      state: "ABORTED",
      reason: "artificial failure",
      status: "OK",
      code: "0",
      msg: "Success",
      message: "OK"
    })
    assert.strictEqual(old.State, "VISIBLE")
    assert.strictEqual(neu.Reason, "artificial failure")
    const unauthorized = Schema.decodeUnknownSync(RestResultBody)({
      status: "FAILED",
      code: "1",
      msg: "Access denied for root@127.0.0.1",
      message: "Access denied"
    })
    assert.strictEqual(unauthorized.Msg, "Access denied for root@127.0.0.1")
    assert.isTrue(Either.isLeft(decodeLoadState("<html>")))
  })

  it("collects every *TimeMs key, StreamLoadPutTimeMs included", () => {
    const t = timings(be({ Status: "Success", LoadTimeMs: 5, StreamLoadPutTimeMs: 1, WriteDataTimeMs: 2, TxnId: 1 }))
    assert.deepStrictEqual(t, { LoadTimeMs: 5, StreamLoadPutTimeMs: 1, WriteDataTimeMs: 2 })
  })
})

describe("classify", () => {
  it("success statuses", () => {
    assert.strictEqual(tagOf(200, be({ Status: "Success", Message: "OK" })), "Success")
    assert.strictEqual(tagOf(200, fe({ Status: "OK", Message: "" })), "Success")
    assert.strictEqual(tagOf(200, { status: "success" }), "Success")
    const pt = classify(200, be({ Status: "Publish Timeout", Message: "Publish timeout. The data will be visible" }))
    assert.strictEqual(pt._tag, "PublishTimeout")
    assert.isTrue(isSuccess(pt))
    assert.strictEqual(tagOf(200, be({ Status: "PUBLISH_TIMEOUT" })), "PublishTimeout")
  })

  it("label already exists, old and new FE forms", () => {
    const finished = classify(200, be({ Status: "Label Already Exists", ExistingJobStatus: "FINISHED", Message: "x" }))
    assert.isTrue(finished._tag === "LabelExists" && finished.existingJobStatus === "FINISHED")
    assert.isTrue(isSuccess(finished))
    const running = classify(200, be({ Status: "Label Already Exists", ExistingJobStatus: "RUNNING" }))
    assert.isTrue(running._tag === "LabelExists" && running.existingJobStatus === "RUNNING")
    assert.isFalse(isSuccess(running))
    const newFe = classify(
      200,
      be({ Status: "Fail", Message: "class StarRocksException: Label [L1] has already been used." })
    )
    assert.isTrue(newFe._tag === "LabelExists" && newFe.existingJobStatus === "unknown")
    const txn = classify(200, be({ Status: "LABEL_ALREADY_EXISTS", ExistingJobStatus: "", Message: "" }))
    assert.isTrue(txn._tag === "LabelExists" && txn.existingJobStatus === "unknown")
  })

  it("FAILED: No backend alive. is a retryable failure, never success (#511)", () => {
    const o = classify(
      200,
      fe({ Status: "FAILED", Message: "class com.starrocks.common.DdlException: No backend alive." })
    )
    assert.strictEqual(o._tag, "Retryable")
    assert.isFalse(isSuccess(o))
  })

  it("retryable messages and statuses", () => {
    const retryable = [
      be({ Status: "Fail", Message: "Too many versions. tablet_id: 221090, version_count: 1230, limit: 1000" }),
      be({
        Status: "Fail",
        Message: "Failed to load data into tablet 1, because of too many versions, current/limit: 1"
      }),
      be({
        Status: "Fail",
        Message: "Memory of Fragment f4 exceed limit. Mem usage has exceed the limit of single query"
      }),
      be({ Status: "Fail", Message: "Memory of process exceed limit. QUERY Backend: x" }),
      be({ Status: "Fail", Message: "timeout by txn manager" }),
      be({ Status: "Fail", Message: "Service is shutting down, please retry later!" }),
      be({ Status: "Fail", Message: "Stream Load exceed http cuncurrent limit 10, please try again later" }),
      be({ Status: "Fail", Message: "current fe is not master" }),
      be({ Status: "Fail", Message: "current running txns on db 10 is 1000, larger than limit 1000" }),
      be({ Status: "Fail", Message: "something nobody documented" }),
      be({ Status: "TXN_IN_PROCESSING", Label: "T1", Message: "Transaction in processing, please retry later" }),
      be({ Status: "MEM_LIMIT_EXCEEDED", Message: "payload size beyond" }),
      be({ Status: "INTERNAL_ERROR", Message: "current fe is not master" }),
      fe({ Status: "FAILED", Message: "transaction with op load label T has no node" })
    ]
    for (const body of retryable) assert.strictEqual(tagOf(200, body), "Retryable", body)
  })

  it("permanent messages and statuses", () => {
    const permanent = [
      be({ Status: "Fail", Message: "too many filtered rows", ErrorURL: "http://be/api/_load_error_log?file=x" }),
      be({ Status: "Fail", Message: "unknown database, database=nope" }),
      be({ Status: "Fail", Message: "unknown table \"d.nope\"" }),
      be({ Status: "Fail", Message: "Label format error. regex: ^[-\\w]{1,128}$, label: a.b" }),
      be({ Status: "Fail", Message: "primary key size exceed the limit" }),
      be({ Status: "Fail", Message: "all partitions have no load data" }),
      be({ Status: "Fail", Message: "unknown data format, format=xml" }),
      be({ Status: "Fail", Message: "Invalid timeout format" }),
      fe({ Status: "FAILED", Message: "class com.starrocks.common.DdlException: There is no 100-continue header" }),
      be({ Status: "TXN_NOT_EXISTS", Message: "Transaction with label X not exists" }),
      be({ Status: "ABORTED", Message: "current transaction is aborted" }),
      be({ Status: "INVALID_ARGUMENT", Message: "empty label" }),
      be({ Status: "INTERNAL_ERROR", Message: "load request not equal last." }),
      fe({ Status: "FAILED", Message: "Can not commit ABORTED transaction 3, label is T" }),
      be({ Status: "Weird" }),
      be({ Message: "no status at all" }),
      "not json",
      JSON.stringify(["array"])
    ]
    for (const body of permanent) assert.strictEqual(tagOf(200, body), "Permanent", String(body))
  })

  it("commit outcome unknown is InDoubt", () => {
    assert.strictEqual(
      tagOf(
        200,
        be({
          Status: "Fail",
          Message: "Commit transaction fail cause x, Transaction status unknown, you can retry with same label."
        })
      ),
      "InDoubt"
    )
  })

  it("HTTP-level outcomes", () => {
    assert.strictEqual(tagOf(307, "", "http://127.0.0.2:8040/api/d/t/_stream_load"), "Redirect")
    assert.strictEqual(tagOf(307, ""), "Permanent")
    const u = classify(401, JSON.stringify({ status: "FAILED", msg: "Need auth information." }))
    assert.isTrue(u._tag === "Unauthorized" && u.message === "Need auth information.")
    assert.strictEqual(tagOf(403, ""), "Unauthorized")
    assert.strictEqual(tagOf(500, JSON.stringify({ status: "FAILED", msg: "NullPointerException" })), "Retryable")
    assert.strictEqual(tagOf(503, "busy"), "Retryable")
    assert.strictEqual(tagOf(404, "Not Found"), "Permanent")
    // auth failures inside a 200 body (direct-to-BE bad password, missing header)
    assert.strictEqual(tagOf(200, be({ Status: "Fail", Message: "Access denied for root@127.0.0.1" })), "Unauthorized")
    assert.strictEqual(tagOf(200, be({ Status: "Fail", Message: "no valid Basic authorization" })), "Unauthorized")
  })
})

describe("classify without the schema", () => {
  // every key of StreamLoadBody in several spellings, keys of other replies, and unknown ones
  const keys = fc.constantFrom(
    "Status",
    "status",
    "STATUS",
    "Message",
    "message",
    "Msg",
    "msg",
    "TxnId",
    "txnId",
    "txnid",
    "Label",
    "label",
    "ExistingJobStatus",
    "existingjobstatus",
    "NumberTotalRows",
    "NumberLoadedRows",
    "numberloadedrows",
    "NumberFilteredRows",
    "NumberUnselectedRows",
    "LoadBytes",
    "loadbytes",
    "ErrorURL",
    "errorUrl",
    "RejectedRecordPath",
    "LoadTimeMs",
    "StreamLoadPlanTimeMs",
    "State",
    "code",
    "Reason",
    "__proto__",
    "0",
    "12"
  )
  const words = fc.constantFrom(
    "Success",
    "OK",
    "Fail",
    "FAILED",
    "Publish Timeout",
    "PUBLISH_TIMEOUT",
    "Label Already Exists",
    "FINISHED",
    "RUNNING",
    "TXN_IN_PROCESSING",
    "MEM_LIMIT_EXCEEDED",
    "no backend alive",
    "too many filtered rows",
    "Transaction status unknown",
    "label [x] has already been used",
    "access denied",
    "",
    " ",
    "12",
    "-3.5",
    "1e3",
    "NaN",
    "Infinity",
    "0x10",
    " 7 "
  )
  const values = fc.oneof(
    words,
    fc.string(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constant(null),
    fc.boolean(),
    fc.array(fc.integer(), { maxLength: 2 }),
    fc.dictionary(fc.constantFrom("a", "Status"), fc.integer(), { maxKeys: 2 })
  )
  const bodies = fc.array(fc.tuple(keys, values), { maxLength: 10 }).map((entries) => {
    const o: Record<string, unknown> = {}
    for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true })
    return o
  })
  const statuses = fc.constantFrom(200, 200, 200, 201, 204, 100, 307, 401, 403, 404, 408, 429, 500, 503)
  const same = (a: unknown, b: unknown) => {
    assert.deepStrictEqual(a, b)
    assert.strictEqual(JSON.stringify(a), JSON.stringify(b))
  }

  it("decodes random bodies as the StreamLoadBody schema does (value and key order)", () => {
    fc.assert(
      fc.property(bodies, (o) => {
        same(
          decodeStreamLoadBody(o),
          Either.getOrUndefined(Schema.decodeUnknownEither(StreamLoadBody)(o))
        )
      }),
      { numRuns: 3000 }
    )
  })

  it("classifies random replies as classify through the schema does, as text and as objects", () => {
    fc.assert(
      fc.property(statuses, bodies, fc.boolean(), fc.option(fc.constantFrom("http://be:8040/x", "")), (
        httpStatus,
        o,
        asText,
        location
      ) => {
        const body = asText ? JSON.stringify(o, null, 4) : o
        const where = location ?? undefined
        same(classify(httpStatus, body, where), classifyBySchema(httpStatus, body, where))
      }),
      { numRuns: 3000 }
    )
  })

  it("classifies odd replies as classify through the schema does", () => {
    const odd: ReadonlyArray<unknown> = [
      "",
      "not json",
      "[]",
      "null",
      "42",
      "\"Success\"",
      "{}",
      be({ Status: "Success", status: "Fail" }),
      be({ status: null, Status: "Success" }),
      be({ Status: "Success", TxnId: "12" }),
      be({ Status: "Success", TxnId: " " }),
      be({ Status: 7 }),
      be({ Status: "Success", Label: 12 }),
      be({ Status: "Success", Message: true }),
      be({ Status: "Success", NumberLoadedRows: 1.5, LoadBytes: -1 }),
      be({ Status: "Label Already Exists", ExistingJobStatus: "FINISHED", TxnId: 3 }),
      fe({ status: "FAILED", msg: "transaction with label x not exists" }),
      { Status: "Success", TxnId: undefined },
      { Status: "Success", LoadBytes: Number.NaN },
      [{ Status: "Success" }]
    ]
    for (const body of odd) {
      for (const httpStatus of [200, 307, 401, 500]) {
        same(classify(httpStatus, body, "http://be:8040/x"), classifyBySchema(httpStatus, body, "http://be:8040/x"))
      }
    }
  })
})
