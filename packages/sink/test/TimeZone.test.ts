/**
 * `sink.timezone` (issue #9, time zones): a JS `Date` becomes DATE / DATETIME text in the sink's zone, and the
 * load's `timezone` header names the same zone (StarRocks stores DATE/DATETIME text as sent, whatever the header;
 * the header decides `now()`, `DEFAULT CURRENT_TIMESTAMP` and `from_unixtime` in the load). Dates around midnight
 * and across both DST changes, in two zones, checked in the emulator's table.
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Redacted, Schema, Stream } from "effect"
import { ColumnType, RowEncoder, StarRocksConfig, StarRocksSink } from "../src/index.js"

const Row = Schema.Struct({ id: ColumnType.Int, day: ColumnType.Date, at: ColumnType.DateTime })

const instants: ReadonlyArray<string> = [
  "2024-03-09T15:59:59.000Z", // Shanghai: the last second of 03-09
  "2024-03-09T16:00:00.000Z", // Shanghai: midnight of 03-10
  "2024-03-10T04:59:59.000Z", // New York: the last second of 03-09 (EST)
  "2024-03-10T05:00:00.000Z", // New York: midnight of 03-10
  "2024-03-10T06:59:59.000Z", // New York: 01:59:59 EST, the last second before the spring change
  "2024-03-10T07:00:00.000Z", // New York: 03:00:00 EDT (02:xx does not exist)
  "2024-11-03T05:30:00.000Z", // New York: 01:30 EDT, the first of the two 01:30s
  "2024-11-03T06:30:00.000Z", // New York: 01:30 EST, the second
  "2024-12-31T23:59:59.123Z" // a fraction, and a new year east of UTC
]

/** What each zone stores for `instants`: `id day at`. */
const expected: Record<string, ReadonlyArray<string>> = {
  "UTC": [
    "2024-03-09 2024-03-09 15:59:59",
    "2024-03-09 2024-03-09 16:00:00",
    "2024-03-10 2024-03-10 04:59:59",
    "2024-03-10 2024-03-10 05:00:00",
    "2024-03-10 2024-03-10 06:59:59",
    "2024-03-10 2024-03-10 07:00:00",
    "2024-11-03 2024-11-03 05:30:00",
    "2024-11-03 2024-11-03 06:30:00",
    "2024-12-31 2024-12-31 23:59:59.123000"
  ],
  "America/New_York": [
    "2024-03-09 2024-03-09 10:59:59",
    "2024-03-09 2024-03-09 11:00:00",
    "2024-03-09 2024-03-09 23:59:59",
    "2024-03-10 2024-03-10 00:00:00",
    "2024-03-10 2024-03-10 01:59:59",
    "2024-03-10 2024-03-10 03:00:00",
    "2024-11-03 2024-11-03 01:30:00",
    "2024-11-03 2024-11-03 01:30:00",
    "2024-12-31 2024-12-31 18:59:59.123000"
  ],
  "Asia/Shanghai": [
    "2024-03-09 2024-03-09 23:59:59",
    "2024-03-10 2024-03-10 00:00:00",
    "2024-03-10 2024-03-10 12:59:59",
    "2024-03-10 2024-03-10 13:00:00",
    "2024-03-10 2024-03-10 14:59:59",
    "2024-03-10 2024-03-10 15:00:00",
    "2024-11-03 2024-11-03 13:30:00",
    "2024-11-03 2024-11-03 14:30:00",
    "2025-01-01 2025-01-01 07:59:59.123000"
  ]
}

const text = (v: unknown): string => {
  if (v instanceof Date) return v.toISOString().replace("T", " ").replace(/\.000Z$|Z$/, "")
  return String(v)
}

const load = (timeZone: string | undefined, properties?: Record<string, string>) =>
  Effect.gen(function*() {
    const emu = yield* StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 1 })
    yield* emu.createTable({
      database: "db",
      table: "t",
      model: "DUPLICATE",
      key: [],
      columns: [{ name: "id", type: "INT" }, { name: "day", type: "DATE" }, { name: "at", type: "DATETIME" }]
    })
    const config = StarRocksConfig.make({
      loadUrl: emu.fe,
      database: "db",
      table: "t",
      username: "root",
      password: Redacted.make(""),
      allowSmallBuffers: true,
      maxRows: 1000,
      ...(timeZone !== undefined ? { timeZone } : {}),
      ...(properties !== undefined ? { properties } : {})
    })
    const rows = instants.map((iso, id) => ({ id, day: new Date(iso), at: new Date(iso) }))
    const exit = yield* Stream.run(Stream.fromIterable(rows), StarRocksSink.make(Row)).pipe(
      Effect.provide(StarRocksSink.layer(config)),
      Effect.exit
    )
    assert.isTrue(Exit.isSuccess(exit), String(exit))
    const stored = [...(yield* emu.rows("db", "t"))]
      .sort((a, b) => Number(a["id"]) - Number(b["id"]))
      .map((r) => `${text(r["day"]).slice(0, 10)} ${text(r["at"])}`)
    const headers = (yield* emu.requests).filter((r) => r.path.includes("_stream_load")).map((r) =>
      r.headers["timezone"]
    )
    return { stored, headers }
  })

describe("sink.timezone", () => {
  for (const zone of ["UTC", "America/New_York", "Asia/Shanghai"]) {
    it.scoped(`${zone}: DATE and DATETIME around midnight and the DST changes, and the load's timezone header`, () =>
      Effect.gen(function*() {
        const { headers, stored } = yield* load(zone === "UTC" ? undefined : zone)
        assert.deepStrictEqual(stored, expected[zone])
        assert.isAbove(headers.length, 0)
        for (const h of headers) assert.strictEqual(h, zone === "UTC" ? "+00:00" : zone)
      }))
  }

  it.scoped("a timezone header the user sets is sent as given (the Dates still follow sink.timezone)", () =>
    Effect.gen(function*() {
      const { headers, stored } = yield* load("Asia/Shanghai", { timezone: "Asia/Tokyo" })
      assert.deepStrictEqual(stored, expected["Asia/Shanghai"])
      for (const h of headers) assert.strictEqual(h, "Asia/Tokyo")
    }))

  it("the header is a form every FE takes: +HH:MM for offsets and UTC, canonical names with a '/'", () => {
    assert.strictEqual(RowEncoder.timeZoneHeader("UTC"), "+00:00")
    assert.strictEqual(RowEncoder.timeZoneHeader("Etc/UTC"), "+00:00")
    assert.strictEqual(RowEncoder.timeZoneHeader("UTC+5:30"), "+05:30")
    assert.strictEqual(RowEncoder.timeZoneHeader("-0500"), "-05:00")
    assert.strictEqual(RowEncoder.timeZoneHeader("Japan"), "Asia/Tokyo")
    assert.strictEqual(RowEncoder.timeZoneHeader("US/Eastern"), "America/New_York")
    assert.strictEqual(RowEncoder.timeZoneHeader("Europe/Berlin"), "Europe/Berlin")
  })
})
