/**
 * `now()` / `current_timestamp` and `DEFAULT CURRENT_TIMESTAMP` read the load's plan time in the load's `timezone`
 * header (default Asia/Shanghai), and a `timezone` the FE refuses fails the load (docs/protocol.md §6.7;
 * packages/testkit/src/internal/data/timezone.ts has the StarRocks sources).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { StarRocksEmulator } from "../src/index.js"
import { parseLoadTimezone } from "../src/internal/data/timezone.js"
import { load, rows, table } from "./data/helpers.js"
import { streamLoad } from "./utils.js"

/** 2024-03-10 06:30:15.250 UTC: 14:30:15 in Shanghai, 01:30:15 in New York (half an hour before its DST starts). */
const AT = Date.UTC(2024, 2, 10, 6, 30, 15, 250)

const tz = table([
  { name: "id", type: "INT" },
  { name: "ts", type: "DATETIME", nullable: true },
  { name: "d", type: "DATE", nullable: true },
  { name: "s", type: "VARCHAR(32)", nullable: true },
  { name: "created", type: "DATETIME", nullable: false, default: "CURRENT_TIMESTAMP" }
])

const columns = "id, ts=now(), d=current_timestamp(), s=concat('at ', now())"

describe("the load's timezone", () => {
  it("now() is the plan time in Asia/Shanghai without the header, the same for every row", () => {
    const out = load(tz, { format: "csv", columns }, "1\n2\n3\n", { now: AT })
    const expected = ["2024-03-10 14:30:15", "2024-03-10", "at 2024-03-10 14:30:15", "2024-03-10 14:30:15"]
    assert.deepStrictEqual(rows(out), [[1, ...expected], [2, ...expected], [3, ...expected]])
  })

  it("now() and DEFAULT CURRENT_TIMESTAMP follow the timezone header: region names, offsets, aliases", () => {
    const at = (timezone: string) => rows(load(tz, { format: "csv", columns, timezone }, "1\n", { now: AT }))[0]
    assert.deepStrictEqual(at("America/New_York"), [
      1,
      "2024-03-10 01:30:15",
      "2024-03-10",
      "at 2024-03-10 01:30:15",
      "2024-03-10 01:30:15"
    ])
    assert.strictEqual(at("-5:30")[1], "2024-03-10 01:00:15")
    assert.strictEqual(at("+14:00")[1], "2024-03-10 20:30:15")
    assert.strictEqual(at("UTC")[1], "2024-03-10 06:30:15")
    assert.strictEqual(at("GMT+0100")[1], "2024-03-10 07:30:15")
    assert.strictEqual(at("CST")[1], "2024-03-10 14:30:15")
    // a column left out of `columns` with DEFAULT CURRENT_TIMESTAMP gets the same instant
    const dflt = load(tz, { format: "csv", columns: "id", timezone: "Asia/Tokyo" }, "7\n", { now: AT })
    assert.deepStrictEqual(rows(dflt), [[7, null, null, null, "2024-03-10 15:30:15"]])
  })

  it("a timezone the FE refuses fails the load with its message", () => {
    for (
      const [value, message] of [
        ["+15:00", "Unknown or incorrect time zone: '+15:00'"],
        ["-12:30", "Unknown or incorrect time zone: '-12:30'"],
        ["8:00x", "Unknown or incorrect time zone: '8:00x'"],
        ["Mars/Olympus_Mons", "Unknown or incorrect time zone: 'Mars/Olympus_Mons'"]
      ] as const
    ) {
      const out = load(tz, { format: "csv", columns, timezone: value }, "1\n", { now: AT })
      assert.strictEqual(out._tag, "Fail", value)
      if (out._tag === "Fail") assert.strictEqual(out.message, message)
    }
    assert.deepStrictEqual(parseLoadTimezone("8:05"), { _tag: "Offset", minutes: 485 })
    assert.deepStrictEqual(parseLoadTimezone("Europe/Berlin"), { _tag: "Named", name: "Europe/Berlin" })
  })

  it.scoped("through the emulator: the plan time is the emulator's clock (TestClock)", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(AT)
      const em = yield* StarRocksEmulator.make({
        users: { root: "" },
        tables: [{ ...tz, database: "d", table: "tz" }],
        admin: false,
        clock: yield* Effect.clock
      })
      const fe = em.fe[0]!
      const ny = yield* streamLoad(fe, "d", "tz", "1\n", { columns, timezone: "America/New_York" })
      assert.strictEqual(ny.json.Status, "Success")
      const bad = yield* streamLoad(fe, "d", "tz", "2\n", { columns, timezone: "+15:00" })
      assert.strictEqual(bad.json.Status, "Fail")
      assert.strictEqual(bad.json.Message, "Unknown or incorrect time zone: '+15:00'")
      assert.deepStrictEqual(yield* em.rows("d", "tz"), [{
        id: 1,
        ts: "2024-03-10 01:30:15",
        d: "2024-03-10",
        s: "at 2024-03-10 01:30:15",
        created: "2024-03-10 01:30:15"
      }])
    }))
})
