import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Ref, TestClock } from "effect"
import * as RetryPolicy from "../src/RetryPolicy.js"
import type { LoadError } from "../src/StarRocksError.js"
import { AuthError, StreamLoadError, TransportError } from "../src/StarRocksError.js"

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
