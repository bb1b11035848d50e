/**
 * The load's `timezone` header: what `now()` / `current_timestamp` read (docs/protocol.md §6.7).
 *
 * StarRocks: the FE checks and standardizes the header (`TimeUtils.checkTimeZoneValidAndStandardize`: an offset
 * `[+-]h:mm` / `[+-]hh:mm` becomes `±hh:mm` and must lie within -12:00 … +14:00; anything else must be a zone id
 * `java.time.ZoneId.of` knows, with `CST` and `PRC` standing for `Asia/Shanghai`; else the load fails with
 * `Unknown or incorrect time zone: '<value>'`). A load without the header uses `Asia/Shanghai`
 * (`StreamLoadInfo.timezone = TimeUtils.DEFAULT_TIME_ZONE`), not the cluster's `time_zone` variable. The plan
 * carries the plan time and the zone (`StreamLoadPlanner`: `TQueryGlobals.timestamp_ms`, `time_zone`), and the BE's
 * `now()` is that instant in that zone, to the second, the same for every row of the load.
 *
 * Zone ids are checked against the IANA names the JS runtime knows (`Intl`), case-insensitively (Java's are
 * case-sensitive).
 *
 * @internal
 */

/** A load's zone: a fixed offset in minutes, or an IANA name. */
export type LoadZone =
  | { readonly _tag: "Offset"; readonly minutes: number }
  | { readonly _tag: "Named"; readonly name: string }

export const DEFAULT_LOAD_ZONE: LoadZone = { _tag: "Named", name: "Asia/Shanghai" }

const ALIASES: Readonly<Record<string, string>> = { CST: "Asia/Shanghai", PRC: "Asia/Shanghai" }

const unknown = (value: string) => `Unknown or incorrect time zone: '${value}'`

/** `java.time.ZoneOffset.of` of `+h`, `+hh`, `+hh:mm`, `+hhmm`, `+hh:mm:ss`, `+hhmmss` (±18:00 at most), in minutes. */
const zoneOffset = (s: string): number | undefined => {
  const m = /^([+-])(\d{1,2})$/.exec(s) ?? /^([+-])(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(s) ??
    /^([+-])(\d{2})(\d{2})(\d{2})?$/.exec(s)
  if (m === null) return undefined
  const h = Number(m[2])
  const mi = m[3] === undefined ? 0 : Number(m[3])
  const sec = m[4] === undefined ? 0 : Number(m[4])
  if (h > 18 || mi > 59 || sec > 59 || (h === 18 && (mi > 0 || sec > 0))) return undefined
  const total = h * 60 + mi + sec / 60
  return m[1] === "-" ? -total : total
}

const knownZone = (name: string): boolean => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name })
    return true
  } catch {
    return false
  }
}

/** The header checked as the FE checks it: the zone, or the load's failure message. */
export const parseLoadTimezone = (value: string | undefined): LoadZone | string => {
  if (value === undefined) return DEFAULT_LOAD_ZONE
  const off = /^([+-]?)(\d{1,2}):(\d{2})$/.exec(value)
  if (off !== null) {
    const sign = off[1] === "-" ? "-" : "+"
    const standard = `${sign}${off[2]!.padStart(2, "0")}:${off[3]}`
    const h = Number(off[2])
    const mi = Number(off[3])
    const tz = h * 100 + mi
    if ((sign === "-" && tz > 1200) || (sign === "+" && tz > 1400) || mi > 59) return unknown(standard)
    return { _tag: "Offset", minutes: (sign === "-" ? -1 : 1) * (h * 60 + mi) }
  }
  const alias = ALIASES[value]
  if (alias !== undefined) return { _tag: "Named", name: alias }
  if (value === "Z") return { _tag: "Offset", minutes: 0 }
  if (value.startsWith("+") || value.startsWith("-")) {
    const minutes = zoneOffset(value)
    return minutes === undefined ? unknown(value) : { _tag: "Offset", minutes }
  }
  const prefixed = /^(UTC|GMT|UT)([+-].*)?$/.exec(value)
  if (prefixed !== null) {
    if (prefixed[2] === undefined) return { _tag: "Offset", minutes: 0 }
    const minutes = zoneOffset(prefixed[2])
    return minutes === undefined ? unknown(value) : { _tag: "Offset", minutes }
  }
  // ZoneRegion: `[A-Za-z][A-Za-z0-9~/._+-]+`, a name of the time-zone database
  if (!/^[A-Za-z][A-Za-z0-9~/._+-]+$/.test(value) || !knownZone(value)) return unknown(value)
  return { _tag: "Named", name: value }
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0")

/** An instant (epoch ms) as a DATETIME in a zone, to the second: `YYYY-MM-DD HH:MM:SS`. */
export const formatInZone = (ms: number, zone: LoadZone): string => {
  const seconds = Math.floor(ms / 1000) * 1000
  if (zone._tag === "Offset") {
    const d = new Date(seconds + zone.minutes * 60_000)
    return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${
      pad(d.getUTCMinutes())
    }:${pad(d.getUTCSeconds())}`
  }
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone.name,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit"
  }).formatToParts(new Date(seconds))
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? "00"
  return `${get("year").padStart(4, "0")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}:${
    get("second")
  }`
}
