/**
 * The emulator's version knobs and what each StarRocks version sets them to: `StarRocksEmulator.make({
 * starrocksVersion: "3.3" })`, the tables file's `"starrocksVersion"` and `effect-starrocks emulator
 * --starrocks-version 3.3`. Explicit knobs override the version's values. The table of versions is in
 * docs/testkit.md ("Version knobs"); the facts behind it in docs/protocol.md §10.
 *
 * @since 0.1.0
 */

/**
 * Every knob whose StarRocks behaviour changed between versions (or is an FE/BE config a test may want to set).
 *
 * @since 0.1.0
 * @category models
 */
export interface VersionOptions {
  /** FE refuses HTTP/1.1 stream loads without `Expect: 100-continue` (3.1.16+, 3.2.13+, 3.3.6+, 3.4+). */
  readonly requireExpect?: boolean | undefined
  /** Duplicate-label reporting: `label-already-exists` (main branch, ≤3.2) or `fail` (the wrapped 3.3–3.5 form). */
  readonly duplicateLabelMode?: "label-already-exists" | "fail" | undefined
  /** Name of the plan-time key in stream-load replies: `StreamLoadPutTimeMs` before 2.2.5 / 2.3.2. */
  readonly planTimeField?: "StreamLoadPlanTimeMs" | "StreamLoadPutTimeMs" | undefined
  /** `RestBaseResult` shape (get_load_state, 401 bodies): `old` before 3.2, `new` adds `code`, `message`, `reason`. */
  readonly loadStateShape?: "new" | "old" | undefined
  /** FE `empty_load_as_error` (default true in every version). */
  readonly emptyLoadAsError?: boolean | undefined
  /** Empty-load message: `old` (`all partitions have no load data`, ≤3.2) or `new` (3.3+). */
  readonly emptyLoadMessage?: "old" | "new" | undefined
  /** FE `label_keep_max_second` (default 259200). */
  readonly labelKeepMaxSecond?: number | undefined
  /** FE `label_keep_max_num` per database (default 1000). */
  readonly labelKeepMaxNum?: number | undefined
  /** BE `streaming_load_max_mb` (default 102400). */
  readonly streamingLoadMaxMb?: number | undefined
  /** FE `max_running_txn_num_per_db`: 100 before 3.0, 1000 in 3.x, 10000 from 4.0. */
  readonly maxRunningTxnNumPerDb?: number | undefined
  /**
   * The CSV reader before StarRocks PR #37381 (3.0.x, 3.1.x, 3.2.0–3.2.2): a field starting with `""` followed by
   * anything but a delimiter is an unenclosed field starting with a literal quote.
   */
  readonly legacyCsvStartLookahead?: boolean | undefined
  /** FE `stream_load_default_timeout_second`: the `timeout` of a load that sends none (default 600). */
  readonly streamLoadDefaultTimeoutSecond?: number | undefined
  /** FE `prepared_transaction_default_timeout_second`: `prepared_timeout` when a prepare sends none (86400). */
  readonly preparedTransactionDefaultTimeoutSecond?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Version {
  readonly major: number
  readonly minor: number
  /** Infinity when the version names no patch release (`3.3` means the latest 3.3 patch). */
  readonly patch: number
}

/**
 * Parses `X.Y` or `X.Y.Z`; a string describing the problem when it is neither.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (text: string): Version | string => {
  const m = /^\s*v?(\d+)\.(\d+)(?:\.(\d+))?\s*$/.exec(text)
  if (m === null) return `expected a StarRocks version X.Y or X.Y.Z (e.g. 3.3 or 3.2.11), got ${JSON.stringify(text)}`
  return { major: Number(m[1]), minor: Number(m[2]), patch: m[3] === undefined ? Infinity : Number(m[3]) }
}

const atLeast = (v: Version, major: number, minor: number, patch = 0) =>
  v.major !== major ? v.major > major : v.minor !== minor ? v.minor > minor : v.patch >= patch

/**
 * The knobs as the given StarRocks version behaves (every field set).
 *
 * @since 0.1.0
 * @category constructors
 */
export const options = (
  version: Version
): Required<{ [K in keyof VersionOptions]: NonNullable<VersionOptions[K]> }> => {
  const v = version
  const line = (major: number, minor: number) => v.major === major && v.minor === minor
  const requireExpect = atLeast(v, 3, 4) || (line(3, 3) && v.patch >= 6) || (line(3, 2) && v.patch >= 13) ||
    (line(3, 1) && v.patch >= 16)
  return {
    requireExpect,
    duplicateLabelMode: atLeast(v, 3, 3) && !atLeast(v, 3, 6) ? "fail" : "label-already-exists",
    planTimeField: !atLeast(v, 2, 2, 5) || (line(2, 3) && v.patch < 2) ? "StreamLoadPutTimeMs" : "StreamLoadPlanTimeMs",
    loadStateShape: atLeast(v, 3, 2) ? "new" : "old",
    emptyLoadAsError: true,
    emptyLoadMessage: atLeast(v, 3, 3) ? "new" : "old",
    labelKeepMaxSecond: 259200,
    labelKeepMaxNum: 1000,
    streamingLoadMaxMb: 102400,
    maxRunningTxnNumPerDb: atLeast(v, 4, 0) ? 10000 : atLeast(v, 3, 0) ? 1000 : 100,
    legacyCsvStartLookahead: line(3, 0) || line(3, 1) || (line(3, 2) && v.patch <= 2),
    streamLoadDefaultTimeoutSecond: 600,
    preparedTransactionDefaultTimeoutSecond: 86400
  }
}

/**
 * The knobs of the newest StarRocks (the emulator's defaults).
 *
 * @since 0.1.0
 * @category constructors
 */
export const latest: ReturnType<typeof options> = {
  ...options({ major: 4, minor: 0, patch: Infinity }),
  maxRunningTxnNumPerDb: 1000
}
