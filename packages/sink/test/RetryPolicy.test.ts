import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Ref, TestClock } from "effect"
import * as RetryPolicy from "../src/RetryPolicy.js"
import type { LoadError } from "../src/StarRocksError.js"
import * as StarRocksError from "../src/StarRocksError.js"
import {
  AuthError,
  LabelStateTimeout,
  RedirectError,
  StreamLoadError,
  TransactionError,
  TransportError
} from "../src/StarRocksError.js"

const transient = new TransportError({ url: "http://fe:8030", reason: "ECONNRESET" })
const permanent = new StreamLoadError({
  label: "l",
  status: "Fail",
  message: "too many filtered rows",
  retryable: false
})

/** Fails with `errors[n]` on attempt n, succeeds once they run out; records the clock at each attempt. */
const scripted = (errors: ReadonlyArray<LoadError>, times: Ref.Ref<Array<number>>) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const seen = yield* Ref.updateAndGet(times, (ts) => [...ts, now])
    const error = errors[seen.length - 1]
    if (error !== undefined) return yield* Effect.fail(error)
    return seen.length
  })

describe("RetryPolicy", () => {
  it.effect("retries retryable errors with exponential, jittered, capped delays", () =>
    Effect.gen(function*() {
      const times = yield* Ref.make<Array<number>>([])
      const policy = RetryPolicy.make({ base: "100 millis", maxDelay: "300 millis", maxRetries: 5 })
      const fiber = yield* Effect.fork(
        Effect.retry(scripted([transient, transient, transient, transient], times), policy)
      )
      yield* TestClock.adjust("10 seconds")
      const attempts = yield* Fiber.join(fiber)
      assert.strictEqual(attempts, 5)
      const ts = yield* Ref.get(times)
      const delays = ts.slice(1).map((t, i) => t - ts[i]!)
      // 100, 200, 400→capped 300, 800→capped 300 (jitter ×0.8..1.2 before the cap)
      assert.isTrue(delays[0]! >= 80 && delays[0]! <= 120, `first delay ${delays[0]}`)
      assert.isTrue(delays[1]! >= 160 && delays[1]! <= 240, `second delay ${delays[1]}`)
      for (const d of delays) assert.isTrue(d <= 300.001, `delay ${d} above the cap`)
      assert.closeTo(delays[3]!, 300, 0.001)
    }))

  it.effect("stops after maxRetries", () =>
    Effect.gen(function*() {
      const times = yield* Ref.make<Array<number>>([])
      const policy = RetryPolicy.make({ base: "10 millis", maxDelay: "1 second", maxRetries: 2 })
      const fiber = yield* Effect.fork(
        Effect.flip(Effect.retry(scripted([transient, transient, transient, transient], times), policy))
      )
      yield* TestClock.adjust("10 seconds")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "TransportError")
      assert.strictEqual((yield* Ref.get(times)).length, 3)
    }))

  it.effect("never retries a permanent error", () =>
    Effect.gen(function*() {
      const times = yield* Ref.make<Array<number>>([])
      const policy = RetryPolicy.make({ base: "10 millis", maxDelay: "1 second", maxRetries: 5 })
      const error = yield* Effect.flip(Effect.retry(scripted([transient, permanent], times), policy)).pipe(
        Effect.fork,
        Effect.tap(() => TestClock.adjust("1 second")),
        Effect.flatMap(Fiber.join)
      )
      assert.strictEqual(error._tag, "StreamLoadError")
      assert.strictEqual((yield* Ref.get(times)).length, 2)
      const times2 = yield* Ref.make<Array<number>>([])
      const auth = yield* Effect.flip(
        Effect.retry(
          scripted([new AuthError({ url: "u", httpStatus: 401, status: "FAILED", message: "Access denied" })], times2),
          policy
        )
      )
      assert.strictEqual(auth._tag, "AuthError")
      assert.strictEqual((yield* Ref.get(times2)).length, 1)
    }))

  it.effect("maxRetries 0 means one attempt", () =>
    Effect.gen(function*() {
      const times = yield* Ref.make<Array<number>>([])
      const policy = RetryPolicy.make({ base: Duration.millis(10), maxDelay: Duration.seconds(1), maxRetries: 0 })
      const error = yield* Effect.flip(Effect.retry(scripted([transient], times), policy))
      assert.strictEqual(error._tag, "TransportError")
      assert.strictEqual((yield* Ref.get(times)).length, 1)
    }))
})

// -------------------------------------------------------------------------------------------------------------
// the one retry decision: operation × error → Retry | Replay | Settle | Fail
// -------------------------------------------------------------------------------------------------------------

const operations = [
  "streamLoad",
  "loadState",
  "begin",
  "load",
  "prepare",
  "commit",
  "rollback",
  "transactional",
  "replay"
] as const satisfies ReadonlyArray<RetryPolicy.Operation>

const reset = new TransportError({
  url: "u",
  reason: "socket hang up",
  code: "ECONNRESET",
  phase: "send",
  bodySent: false
})
const resetMidBody = new TransportError({
  url: "u",
  reason: "reset",
  code: "ECONNRESET",
  phase: "send",
  bodySent: true
})
const badCertificate = new TransportError({
  url: "u",
  reason: "self-signed certificate",
  code: "DEPTH_ZERO_SELF_SIGNED_CERT",
  phase: "connect",
  bodySent: false,
  retryable: false
})
const sle = (outcome: StarRocksError.StreamLoadError["outcome"], retryable = false) =>
  new StreamLoadError({ label: "l", status: "FAILED", message: "m", retryable, ...(outcome ? { outcome } : {}) })
const txn = (
  kind: StarRocksError.TransactionError["kind"],
  reason?: string,
  labelState?: string,
  operation: StarRocksError.TransactionError["operation"] = "commit"
) =>
  new TransactionError({
    operation,
    label: "l",
    status: "FAILED",
    message: "m",
    kind,
    retryable: false,
    ...(reason !== undefined ? { reason } : {}),
    ...(labelState !== undefined ? { labelState } : {})
  })

type Row = readonly [
  name: string,
  error: LoadError,
  /** Decisions in the order of `operations`: R Retry, P Replay, S Settle, F Fail. */
  decisions: string
]

//                                                                     stream state begin load prep commit roll txnal replay
const table: ReadonlyArray<Row> = [
  ["connection reset before the body", reset, "R R R R R R R P P"],
  ["connection reset mid-body", resetMidBody, "R R R P R R R P P"],
  ["TLS certificate that does not verify", badCertificate, "F F F F F F F F P"],
  ["HTTP 401", new AuthError({ url: "u", httpStatus: 401, status: "", message: "denied" }), "F F F F F F F F F"],
  ["redirect refused", new RedirectError({ url: "u", reason: "https→http", hops: [] }), "F F F F F F F F F"],
  [
    "label never settled",
    new LabelStateTimeout({ label: "l", lastState: "PREPARE", waitedMs: 1 }),
    "F F F F F F F F F"
  ],
  ["Stream Load: transient (no backend alive)", sle("Retryable"), "R R R R R R R P P"],
  ["Stream Load: permanent (too many filtered rows)", sle("Permanent"), "F F F F F F F F F"],
  ["Stream Load: refused before sending (label format)", sle("Invalid"), "F F F F F F F F F"],
  ["Stream Load: commit outcome unknown", sle("InDoubt"), "S R R R R R R P P"],
  ["Stream Load: label in use, RUNNING", sle("LabelExists"), "S R R R R R R P P"],
  ["a hand-built retryable StreamLoadError", sle(undefined, true), "R R R R R R R P P"],
  ["a hand-built permanent StreamLoadError", sle(undefined, false), "F F F F F F F F F"],
  ["transaction: BE busy (TXN_IN_PROCESSING)", txn("Retryable", "transaction in processing"), "R R R R R R R P P"],
  ["transaction: transient (HTTP 500)", txn("Retryable", "HTTP 500"), "R R R P R R R P P"],
  ["transaction: not found, not yet settled", txn("TxnNotExists", "transaction not found"), "P P P P S S S P P"],
  [
    "transaction: not found, label UNKNOWN",
    txn("TxnNotExists", "transaction not found", "UNKNOWN"),
    "P P P P P P P P P"
  ],
  ["transaction: aborted, label ABORTED", txn("Aborted", "transaction aborted", "ABORTED"), "P P P P P P P P P"],
  ["transaction: label in use", txn("LabelExists"), "F F F F S S S F P"],
  ["transaction: in doubt", txn("InDoubt", "commit outcome unknown"), "F F F F S S S F F"],
  ["transaction: permanent", txn("Permanent", "invalid prepared_timeout"), "F F F F S S S F F"],
  ["transaction: permanent, label PREPARE", txn("Permanent", "db/table mismatch", "PREPARE"), "F F F F F F F F F"]
]

const letter: Record<RetryPolicy.Decision, string> = { Retry: "R", Replay: "P", Settle: "S", Fail: "F" }

describe("RetryPolicy.decide: one decision for every (operation, error)", () => {
  for (const [name, error, decisions] of table) {
    it(name, () => {
      const actual = operations.map((operation) => letter[RetryPolicy.decide(operation, error)]).join(" ")
      assert.strictEqual(actual, decisions, `${operations.join(" ")}`)
    })
  }

  it("isRetryable: Retry for the call the error came from; StarRocksError re-exports the same predicates", () => {
    assert.isTrue(RetryPolicy.isRetryable(reset))
    assert.isFalse(RetryPolicy.isRetryable(badCertificate))
    assert.isTrue(RetryPolicy.isRetryable(sle("Retryable")))
    assert.isFalse(RetryPolicy.isRetryable(sle("Permanent")))
    const busyLoad = txn("Retryable", "transaction in processing", undefined, "load")
    const failedLoad = txn("Retryable", "HTTP 500", undefined, "load")
    assert.isTrue(RetryPolicy.isRetryable(busyLoad))
    assert.isFalse(RetryPolicy.isRetryable(failedLoad))
    assert.isTrue(RetryPolicy.isRetryable(txn("Retryable", "HTTP 500")))
    assert.isFalse(RetryPolicy.isRetryable(txn("TxnNotExists", "transaction not found")))
    assert.strictEqual(StarRocksError.isRetryable, RetryPolicy.isRetryable)
    assert.strictEqual(StarRocksError.isReplayable, RetryPolicy.isReplayable)
  })

  it("isReplayable: under the same label (at-least-once) or a new one (exactly-once)", () => {
    const failedLoad = txn("Retryable", "HTTP 500", undefined, "load")
    assert.isTrue(RetryPolicy.isReplayable(failedLoad))
    assert.isTrue(RetryPolicy.isReplayable(resetMidBody))
    assert.isTrue(RetryPolicy.isReplayable(txn("Aborted", "transaction aborted", "ABORTED")))
    assert.isFalse(RetryPolicy.isReplayable(txn("LabelExists")))
    assert.isTrue(RetryPolicy.isReplayable(txn("LabelExists"), { newLabel: true }))
    assert.isFalse(RetryPolicy.isReplayable(badCertificate))
    assert.isTrue(RetryPolicy.isReplayable(badCertificate, { newLabel: true }))
    assert.isFalse(RetryPolicy.isReplayable(sle("Permanent"), { newLabel: true }))
    assert.isFalse(RetryPolicy.isReplayable(txn("InDoubt", "commit outcome unknown"), { newLabel: true }))
  })

  it.effect("the default schedule retries what decide calls Retry and nothing else", () =>
    Effect.gen(function*() {
      const times = yield* Ref.make<Array<number>>([])
      const policy = RetryPolicy.make({ base: "10 millis", maxDelay: "10 millis", maxRetries: 5 })
      const fiber = yield* Effect.fork(
        Effect.flip(Effect.retry(scripted([reset, sle("Retryable"), resetMidBody, sle("InDoubt")], times), policy))
      )
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(fiber)
      // a StreamLoadError in doubt is settled by the stream load, not retried blindly
      assert.strictEqual(error._tag, "StreamLoadError")
      assert.strictEqual((yield* Ref.get(times)).length, 4)
    }))
})
