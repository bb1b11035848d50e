/**
 * The AIMD controller of adaptive concurrency (internal/sink/adaptive.ts) on explicit samples: the time of each
 * load's end and its round-trip time are given, so every window and adjustment is deterministic.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Adaptive from "../src/internal/sink/adaptive.js"

const make = (initial: number, max: number) => Adaptive.make({ ...Adaptive.defaults, initial, max })

/**
 * One window at `now`: `loads` loads start together and end at `now` with `rtt` each (undefined: failed); the
 * adjustments made.
 */
const window = (
  c: Adaptive.Controller,
  now: number,
  loads: number,
  rtt: number | undefined,
  backPressure = false
): Array<Adaptive.Adjustment | undefined> => {
  for (let i = 0; i < loads; i++) c.start()
  if (backPressure) c.backPressure()
  const out: Array<Adaptive.Adjustment | undefined> = []
  for (let i = 0; i < loads; i++) out.push(c.end(now, rtt))
  return out
}

/** Loads as many as the limit allows, one window per 100 ms with the same round-trip time; the limits seen. */
const steady = (c: Adaptive.Controller, from: number, windows: number, rtt = 100): Array<number> => {
  const limits: Array<number> = []
  for (let w = 0; w < windows; w++) {
    window(c, from + w * rtt, c.limit(), rtt)
    limits.push(c.limit())
  }
  return limits
}

describe("adaptive concurrency controller (AIMD)", () => {
  it("grows by one per round-trip window while latency holds and the loads reach the limit, up to max", () => {
    const c = make(1, 4)
    assert.strictEqual(c.limit(), 1)
    // the first window only measures; each one after adds one
    assert.deepStrictEqual(steady(c, 0, 6), [1, 2, 3, 4, 4, 4])
    assert.strictEqual(c.inFlight(), 0)
  })

  it("does not grow while the loads in flight stay below the limit (held back by the memory budget, say)", () => {
    const c = make(3, 8)
    for (let w = 0; w < 10; w++) window(c, w * 100, 1, 100)
    assert.strictEqual(c.limit(), 3)
  })

  it("back pressure in a window lowers the limit by ×0.9 (floored, at least one less), never below 1", () => {
    const c = make(8, 8)
    window(c, 0, 8, 100)
    assert.strictEqual(c.limit(), 8)
    const seen: Array<number> = []
    for (let w = 1; w <= 9; w++) {
      const before = c.limit()
      const adjustments = window(c, w * 100, before, 100, true)
      assert.include(adjustments, before > 1 ? "decrease" : "hold")
      seen.push(c.limit())
    }
    assert.deepStrictEqual(seen, [7, 6, 5, 4, 3, 2, 1, 1, 1])
  })

  it("a window whose round-trip time rises beyond the past mean's deviation lowers the limit", () => {
    const c = make(1, 6)
    // latency holds (with a little jitter) while the limit grows
    let now = 0
    for (let w = 0; w < 5; w++) {
      now += 100
      window(c, now, c.limit(), w % 2 === 0 ? 100 : 98)
    }
    const before = c.limit()
    assert.isAbove(before, 2)
    // then the server slows down: the same loads take four times as long
    now += 400
    const adjustments = window(c, now, c.limit(), 400)
    assert.include(adjustments, "decrease")
    assert.isBelow(c.limit(), before)
  })

  it("back pressure before any round-trip time is known still lowers the limit", () => {
    const c = make(4, 4)
    assert.deepStrictEqual(window(c, 10, 1, undefined, true), ["decrease"])
    assert.strictEqual(c.limit(), 3)
  })

  it("a failed load gives no round-trip time; after back pressure it grows again once latency holds", () => {
    const c = make(4, 4)
    steady(c, 0, 2)
    window(c, 300, 4, undefined, true)
    assert.strictEqual(c.limit(), 3)
    assert.deepStrictEqual(steady(c, 400, 3), [4, 4, 4])
  })

  it("initial is clamped to [1, max]", () => {
    assert.strictEqual(make(10, 4).limit(), 4)
    assert.strictEqual(make(0, 4).limit(), 1)
  })
})
