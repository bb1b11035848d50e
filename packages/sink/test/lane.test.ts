import { afterEach, assert, describe, it, vi } from "@effect/vitest"
import { Schema } from "effect"
import * as Lane from "../src/internal/sink/lane.js"

const Row = Schema.Struct({ id: Schema.Number, name: Schema.String })
const options = { timeZone: "UTC", columns: ["id", "name"] }

/** A finished batch of `encoders` (a few rows), and the ArrayBuffers its body is in. */
const batch = (encoders: Lane.Encoders) => {
  const encoder = encoders.get(Row, options)
  const b = encoder.builder("csv")
  for (let i = 0; i < 100; i++) b.add({ id: i, name: `n${i}` }, i)
  const { body } = b.finish()
  return { encoder, body, buffers: body.chunks.map((c) => c.buffer) }
}

describe("buffer pools of sink runs", () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it("a later sink run reuses the buffers an earlier run handed back (no fresh external memory per run)", () => {
    const first = batch(Lane.makeEncoders(3_000_001))
    first.encoder.release(first.body)
    const second = batch(Lane.makeEncoders(3_000_001))
    assert.strictEqual(second.buffers[0], first.buffers[0])
    // runs with another pool size do not share
    const other = batch(Lane.makeEncoders(3_000_002))
    assert.notStrictEqual(other.buffers[0], first.buffers[0])
  })

  it("a pool left idle for POOL_IDLE_MS is dropped: the next run starts a pool of its own", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] })
    const first = batch(Lane.makeEncoders(3_000_003))
    first.encoder.release(first.body)
    vi.advanceTimersByTime(Lane.POOL_IDLE_MS / 2)
    // used within POOL_IDLE_MS: still shared, and its idle time starts again
    const second = batch(Lane.makeEncoders(3_000_003))
    assert.strictEqual(second.buffers[0], first.buffers[0])
    second.encoder.release(second.body)
    vi.advanceTimersByTime(Lane.POOL_IDLE_MS - 1)
    const third = batch(Lane.makeEncoders(3_000_003))
    assert.strictEqual(third.buffers[0], first.buffers[0])
    third.encoder.release(third.body)
    vi.advanceTimersByTime(Lane.POOL_IDLE_MS + 1)
    const fourth = batch(Lane.makeEncoders(3_000_003))
    assert.notStrictEqual(fourth.buffers[0], first.buffers[0])
  })
})
