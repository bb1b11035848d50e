/**
 * Recovery's walk of label ids (internal/recovery.ts `walk`): it probes exactly the ids a walk one id at a time
 * would (up to `UNKNOWN_STREAK` unknown ids in a row after the last known one), in rounds whose probes run at once,
 * so that a start with nothing lingering costs one round trip instead of `UNKNOWN_STREAK`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { LoadClient } from "../src/index.js"
import * as Recovery from "../src/internal/recovery.js"

/** A client whose labels are `known` (id → state), UNKNOWN otherwise; it records the ids probed and the most probes in flight at once. */
const probing = (known: ReadonlyMap<number, LoadClient.LoadState>) => {
  const probed: Array<number> = []
  let inFlight = 0
  let most = 0
  const client = LoadClient.fromPartial({
    loadBatch: () => Effect.dieMessage("not used"),
    getLoadState: ({ label }) =>
      Effect.gen(function*() {
        const id = Number(label.slice(label.lastIndexOf("-") + 1))
        probed.push(id)
        inFlight++
        most = Math.max(most, inFlight)
        // a round trip: the other probes of the round may start meanwhile
        yield* Effect.yieldNow()
        inFlight--
        return known.get(id) ?? "UNKNOWN"
      })
  })
  return { client, probed, most: () => most }
}

const walk = (known: ReadonlyMap<number, LoadClient.LoadState>, start: number) => {
  const p = probing(known)
  return Recovery.walk("db", (id) => `p-t-0-${id}`, start).pipe(
    Effect.provideService(LoadClient.LoadClient, p.client),
    Effect.map((found) => ({ found, probed: [...p.probed].sort((a, b) => a - b), most: p.most() }))
  )
}

const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe("recovery's walk of label ids", () => {
  it.effect("nothing lingering: the UNKNOWN_STREAK ids after the start, probed at once", () =>
    Effect.gen(function*() {
      const { found, most, probed } = yield* walk(new Map(), 5)
      assert.deepStrictEqual(found, [])
      assert.deepStrictEqual(probed, ids(5, 5 + Recovery.UNKNOWN_STREAK - 1))
      assert.strictEqual(most, Recovery.UNKNOWN_STREAK)
    }))

  it.effect("the ids a walk one at a time probes, no more: a label past the streak's end stays unseen", () =>
    Effect.gen(function*() {
      // known at 3: the walk goes on to 3 + UNKNOWN_STREAK; the label just after that is never probed
      const after = 3 + Recovery.UNKNOWN_STREAK + 1
      const { found, probed } = yield* walk(new Map([[3, "PREPARED"], [after, "PREPARE"]]), 0)
      assert.deepStrictEqual(found.map((p) => [p.id, p.label, p.state]), [[3, "p-t-0-3", "PREPARED"]])
      assert.deepStrictEqual(probed, ids(0, 3 + Recovery.UNKNOWN_STREAK))
    }))

  it.effect("labels found in a row, in id order, each resetting the streak", () =>
    Effect.gen(function*() {
      const known = new Map<number, LoadClient.LoadState>([[0, "VISIBLE"], [1, "ABORTED"], [9, "PREPARE"]])
      const { found, probed } = yield* walk(known, 0)
      assert.deepStrictEqual(found.map((p) => p.id), [0, 1, 9])
      assert.deepStrictEqual(probed, ids(0, 9 + Recovery.UNKNOWN_STREAK))
    }))
})
