/**
 * The AIMD controller of adaptive concurrency (internal/sink/adaptive.ts) on explicit samples: the time of each
 * load's end and its round-trip time are given, so every window and adjustment is deterministic. The loads' tickets
 * (what `start` answers) go back with their back pressure and their end, as the dispatcher passes them.
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
  const tickets: Array<number> = []
  for (let i = 0; i < loads; i++) tickets.push(c.start())
  if (backPressure) c.backPressure()
  return tickets.map((ticket) => c.end(now, rtt, ticket))
}

/**
 * One window at the ceiling: as many loads start as the limit allows at its start (one of them the probe, when the
 * limit is one above the ceiling: its start puts the limit back); the probe meets back pressure when `refused`
 * (then lands on its retry); all end at `now` with `rtt`. The probe's ticket, and the limit right after the starts.
 */
const round = (c: Adaptive.Controller, now: number, rtt: number, refused = false) => {
  const loads = c.limit()
  const tickets: Array<number> = []
  let probe: number | undefined
  for (let i = 0; i < loads; i++) {
    const before = c.limit()
    const ticket = c.start()
    tickets.push(ticket)
    if (c.limit() < before) probe = ticket
  }
  const duringProbe = c.limit()
  if (probe !== undefined && refused) c.backPressure({ ticket: probe, inFlight: loads })
  for (const ticket of tickets) c.end(now, rtt, ticket)
  return { probe, duringProbe, after: c.limit() }
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

  it("a failed load gives no round-trip time; after back pressure it grows again, past the ceiling by probes", () => {
    const c = make(4, 4)
    steady(c, 0, 2)
    window(c, 300, 4, undefined, true)
    assert.strictEqual(c.limit(), 3)
    assert.strictEqual(c.ceiling(), 3)
    // held at the ceiling for twice `probeHold` (the refusal doubled it: 8) windows, then a window's close lets one
    // load probe 4 (limit 4), whose start puts the limit back to 3 while it is in flight; each probe that lands lets
    // the next go one window later; after the third (`probeConfirmations`) the ceiling and the limit are 4
    const rounds = Array.from({ length: 14 }, (_, w) => round(c, 400 + w * 100, 100))
    assert.deepStrictEqual(rounds.map((r) => r.after), [3, 3, 3, 3, 3, 3, 3, 4, 3, 4, 3, 4, 4, 4])
    assert.deepStrictEqual(
      rounds.map((r, w) => r.probe !== undefined ? w : -1).filter((w) => w >= 0),
      [8, 10, 12]
    )
    for (const r of rounds) if (r.probe !== undefined) assert.strictEqual(r.duringProbe, 3)
    assert.strictEqual(c.ceiling(), 4)
    assert.strictEqual(c.limit(), 4)
  })

  it("grows while the throughput (loads in flight / round-trip time) rises, though each step adds latency", () => {
    // the bench's server (packages/sink/bench/adaptive.ts): a load takes 100 ms + 15 ms per other load in flight
    const c = make(1, 6)
    let now = 0
    const limits: Array<number> = []
    for (let w = 0; w < 9; w++) {
      const loads = c.limit()
      const rtt = 100 + 15 * (loads - 1)
      now += rtt
      window(c, now, loads, rtt)
      limits.push(c.limit())
    }
    assert.deepStrictEqual(limits, [1, 2, 3, 4, 5, 6, 6, 6, 6])
  })

  it("back pressure lowers the limit at once to just below the loads in flight when the refused attempt began", () => {
    const c = make(8, 16)
    window(c, 0, 8, 100)
    const tickets = Array.from({ length: 8 }, () => c.start())
    // the 7th load's attempt, begun with 7 in flight, is refused: 6 (below ×0.9's 7), before the window closes
    assert.strictEqual(c.backPressure({ ticket: tickets[6], inFlight: 7 }), "decrease")
    assert.strictEqual(c.limit(), 6)
    assert.strictEqual(c.ceiling(), 6)
    // the 8th, begun with 8 in flight (more than the limit now allows), tells nothing new
    assert.strictEqual(c.backPressure({ ticket: tickets[7], inFlight: 8 }), undefined)
    assert.strictEqual(c.limit(), 6)
    // the window's close reports the decrease and makes no second one
    const adjustments = tickets.map((ticket) => c.end(100, 100, ticket))
    assert.include(adjustments, "decrease")
    assert.strictEqual(c.limit(), 6)
  })

  it("a probe above the ceiling that meets back pressure leaves the ceiling and doubles the hold", () => {
    const c = make(8, 16)
    window(c, 0, 8, 100)
    const tickets = Array.from({ length: 8 }, () => c.start())
    c.backPressure({ ticket: tickets[6], inFlight: 7 })
    for (const ticket of tickets) c.end(100, 100, ticket)
    assert.strictEqual(c.limit(), 6)
    // 8 windows at the ceiling (`probeHold`, doubled by the refusal), then one load probes 7 (the limit is 6 again
    // while it is in flight) and is refused
    const first = Array.from({ length: 9 }, (_, w) => round(c, 200 + w * 100, 100, true))
    assert.deepStrictEqual(first.map((r) => r.after), [6, 6, 6, 6, 6, 6, 6, 7, 6])
    assert.isDefined(first[8]!.probe)
    assert.strictEqual(first[8]!.duringProbe, 6)
    assert.strictEqual(c.ceiling(), 6)
    // the next probe waits 16 windows (the one in which the probe was refused is the first)
    const second = Array.from({ length: 16 }, (_, w) => round(c, 1100 + w * 100, 100, true))
    assert.deepStrictEqual(second.map((r) => r.after), [...Array(14).fill(6), 7, 6])
    assert.deepStrictEqual(second.map((r) => r.probe !== undefined), [...Array(15).fill(false), true])
    assert.strictEqual(c.ceiling(), 6)
    assert.strictEqual(c.limit(), 6)
  })

  it("initial is clamped to [1, max]", () => {
    assert.strictEqual(make(10, 4).limit(), 4)
    assert.strictEqual(make(0, 4).limit(), 1)
  })
})
