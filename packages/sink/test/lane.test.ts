import { afterEach, assert, describe, it, vi } from "@effect/vitest"
import { type Clock, Schema } from "effect"
import * as Change from "../src/Change.js"
import * as Lane from "../src/internal/sink/lane.js"
import * as RawLane from "../src/internal/sink/rawLane.js"

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

/** A table with a Primary Key (so that it takes deletes and partial updates), CSV. */
const Item = Schema.Struct({ id: Schema.Number, name: Schema.NullOr(Schema.String) })
const settings: Lane.TableSettings = {
  database: "db",
  table: "t",
  format: "csv",
  columns: undefined,
  properties: {},
  ordered: undefined,
  primaryKey: ["id"],
  mergeCondition: undefined,
  partialUpdateMode: undefined,
  csvJsonFallback: true,
  timeZone: "UTC"
}
/** `Lane.add` with limits no test reaches and a clock that says `ms`. */
const put = (lane: Lane.Lane, item: unknown, rowIndex: number, ms = 0) =>
  lane.add(item, rowIndex, { unsafeCurrentTimeMillis: () => ms } as unknown as Clock.Clock, 1_000, 1_000_000)

describe("a lane's plain rows (the shortcut of add for a row that is no Change)", () => {
  const lines = (sealed: Lane.Sealed | undefined) =>
    Buffer.concat((sealed?.body.chunks ?? []).map((c) => Buffer.from(c))).toString("utf8").split("\n").filter((l) =>
      l.length > 0
    )

  it("a plain row after a partial update is refused until the batch is sealed, then starts a plain batch", () => {
    const lane = Lane.make(Item, settings, undefined, Lane.makeEncoders(1_000_003))
    assert.strictEqual(put(lane, { id: 1, name: "a" }, 0, 5), Lane.ADDED)
    assert.strictEqual(put(lane, Change.update<typeof Item.Type>({ id: 1 }), 1, 0), Lane.REFUSED)
    const first = lane.seal()
    assert.deepStrictEqual(lines(first), ["\"1\",\"a\""])
    lane.addFresh(Change.update<typeof Item.Type>({ id: 1 }), 1, 6)
    // the building batch is a partial update (columns id): a plain row is not added to it
    assert.strictEqual(put(lane, { id: 2, name: "b" }, 2, 0), Lane.REFUSED)
    assert.strictEqual(lane.rows(), 1)
    const partial = lane.seal()
    assert.strictEqual(partial?.headers["columns"], "id")
    assert.strictEqual(partial?.headers["partial_update"], "true")
    lane.addFresh({ id: 2, name: "b" }, 2, 7)
    assert.strictEqual(put(lane, { id: 3, name: "c" }, 3, 0), Lane.ADDED)
    const plain = lane.seal()
    assert.deepStrictEqual(lines(plain), ["\"2\",\"b\"", "\"3\",\"c\""])
    assert.strictEqual(plain?.headers["columns"], "id,name")
    assert.strictEqual(plain?.firstRow, 2)
  })

  it("after a delete, plain rows go in the batches with __op, as upserts (0)", () => {
    const lane = Lane.make(Item, settings, undefined, Lane.makeEncoders(1_000_003))
    assert.strictEqual(put(lane, { id: 1, name: "a" }, 0, 5), Lane.ADDED)
    assert.strictEqual(put(lane, Change.delete<typeof Item.Type>({ id: 1 }), 1, 0), Lane.REFUSED)
    lane.seal()
    lane.addFresh(Change.delete<typeof Item.Type>({ id: 1 }), 1, 6)
    assert.strictEqual(put(lane, { id: 2, name: "b" }, 2, 0), Lane.ADDED)
    const op = lane.seal()
    assert.strictEqual(op?.headers["columns"], "id,name,__op")
    assert.deepStrictEqual(lines(op), ["\"1\",\\\\N,1", "\"2\",\"b\",0"])
    // and later batches keep __op
    lane.addFresh({ id: 3, name: "c" }, 3, 7)
    assert.deepStrictEqual(lines(lane.seal()), ["\"3\",\"c\",0"])
  })

  it("a plain CSV row that CSV cannot carry is refused, then its batch goes as JSON", () => {
    const lane = Lane.make(Item, settings, undefined, Lane.makeEncoders(1_000_003))
    assert.strictEqual(put(lane, { id: 1, name: "a" }, 0, 5), Lane.ADDED)
    // the exact string \N reads as NULL in CSV
    assert.strictEqual(put(lane, { id: 2, name: "\\N" }, 1, 0), Lane.REFUSED)
    assert.strictEqual(lane.rows(), 1)
    lane.seal()
    lane.addFresh({ id: 2, name: "\\N" }, 1, 6)
    const json = lane.seal()
    assert.strictEqual(json?.headers["format"], "json")
    assert.include(lines(json).join(""), "\"\\\\N\"")
  })
})

describe("a lane's add (the row loop's one call per row)", () => {
  /** A clock that counts its reads and answers 100, 101, ... */
  const counting = () => {
    let reads = 0
    const clock = {
      unsafeCurrentTimeMillis: () => 100 + reads++
    } as unknown as Clock.Clock
    return { clock, reads: () => reads }
  }

  it("says FULL once the batch holds maxRows rows, reads the clock only when a row opens a batch", () => {
    const lane = Lane.make(Item, settings, undefined, Lane.makeEncoders(1_000_003))
    const { clock, reads } = counting()
    assert.strictEqual(lane.add({ id: 1, name: "a" }, 0, clock, 3, 1_000_000), Lane.ADDED)
    assert.strictEqual(lane.add({ id: 2, name: "b" }, 1, clock, 3, 1_000_000), Lane.ADDED)
    assert.strictEqual(lane.add({ id: 3, name: "c" }, 2, clock, 3, 1_000_000), Lane.FULL)
    assert.strictEqual(reads(), 1)
    assert.strictEqual(lane.firstRowAt(), 100)
    assert.strictEqual(lane.firstRowIndex(), 0)
    assert.strictEqual(lane.seal()?.rows, 3)
    // the next batch reads the clock again, for its own first row
    assert.strictEqual(lane.add({ id: 4, name: "d" }, 3, clock, 3, 1_000_000), Lane.ADDED)
    assert.strictEqual(reads(), 2)
    assert.strictEqual(lane.firstRowAt(), 101)
    assert.strictEqual(lane.firstRowIndex(), 3)
  })

  it("says FULL once the batch holds maxBytes bytes, exactly at the limit", () => {
    const lane = Lane.make(Item, settings, undefined, Lane.makeEncoders(1_000_003))
    const { clock } = counting()
    // "1","a"\n is 8 bytes
    assert.strictEqual(lane.add({ id: 1, name: "a" }, 0, clock, 100, 16), Lane.ADDED)
    assert.strictEqual(lane.bytes(), 8)
    assert.strictEqual(lane.add({ id: 2, name: "b" }, 1, clock, 100, 16), Lane.FULL)
    assert.strictEqual(lane.bytes(), 16)
  })

  it("says REFUSED, adding nothing, where the batch must be sealed first: another shape, or a row CSV cannot carry", () => {
    const lane = Lane.make(Item, settings, undefined, Lane.makeEncoders(1_000_003))
    const { clock } = counting()
    assert.strictEqual(lane.add({ id: 1, name: "a" }, 0, clock, 100, 1_000_000), Lane.ADDED)
    assert.strictEqual(lane.add({ id: 2, name: "\\N" }, 1, clock, 100, 1_000_000), Lane.REFUSED)
    assert.strictEqual(lane.add(Change.delete<typeof Item.Type>({ id: 1 }), 1, clock, 100, 1_000_000), Lane.REFUSED)
    assert.strictEqual(lane.rows(), 1)
    lane.seal()
    lane.addFresh(Change.delete<typeof Item.Type>({ id: 1 }), 1, 6)
    // after the delete, a plain row goes into the __op batch (resolve's way), and a change too
    assert.strictEqual(lane.add({ id: 2, name: "b" }, 2, clock, 3, 1_000_000), Lane.ADDED)
    assert.strictEqual(
      lane.add(Change.upsert<typeof Item.Type>({ id: 3, name: "c" }), 3, clock, 3, 1_000_000),
      Lane.FULL
    )
    assert.strictEqual(lane.seal()?.headers["columns"], "id,name,__op")
  })
})

describe("a raw lane's add", () => {
  const settings = (format: "csv" | "json"): Lane.TableSettings => ({
    database: "db",
    table: "t",
    format,
    columns: undefined,
    properties: {},
    ordered: undefined,
    primaryKey: undefined,
    mergeCondition: undefined,
    partialUpdateMode: undefined,
    csvJsonFallback: true,
    timeZone: "UTC"
  })

  it("says FULL at maxRows rows or maxBytes bytes (a JSON batch's closing bracket counted), reads the clock once", () => {
    let reads = 0
    const clock = { unsafeCurrentTimeMillis: () => 100 + reads++ } as unknown as Clock.Clock
    const csv = RawLane.make(settings("csv"), { ordered: false })
    assert.strictEqual(csv.add("1,a", 0, clock, 2, 1_000), Lane.ADDED)
    assert.strictEqual(csv.add("2,b", 1, clock, 2, 1_000), Lane.FULL)
    assert.strictEqual(reads, 1)
    assert.strictEqual(csv.firstRowAt(), 100)
    assert.strictEqual(csv.seal()?.rows, 2)
    const json = RawLane.make(settings("json"), { ordered: false })
    // [{"a":1}] is 9 bytes, [{"a":1},{"a":2}] 17
    assert.strictEqual(json.add("{\"a\":1}", 0, clock, 100, 17), Lane.ADDED)
    assert.strictEqual(json.bytes(), 9)
    assert.strictEqual(json.add("{\"a\":2}", 1, clock, 100, 17), Lane.FULL)
    assert.strictEqual(json.seal()?.body.byteLength, 17)
    assert.strictEqual(reads, 2)
  })
})
