/**
 * Adaptive concurrency: the limit of one table's loads in flight, raised and lowered by AIMD as Vector's adaptive
 * request concurrency does (vectordotdev/vector, `src/sinks/util/adaptive_concurrency/controller.rs`), as a pure
 * state machine: the caller tells it when a load starts, when an attempt met back pressure and when a load ended
 * (with its round-trip time when it landed), and passes the time; it answers with the limit.
 *
 * - Each load that lands gives one round-trip time (the time of its last attempt: the backoff waits and the
 *   attempts that failed before are not in it). The times of one window are averaged (`current`); the windows'
 *   averages form an exponentially weighted mean and variance (`past`, weight `ewmaAlpha`).
 * - A window lasts one past mean round-trip time; it is closed by the first load that ends after it. Then:
 *   - back pressure in the window (an attempt answered "too many versions", TXN_IN_PROCESSING, a memory limit, a
 *     timeout: `retryLogic.isBackPressure`), or a window mean at or above the past mean plus `rttDeviationScale`
 *     standard deviations: the limit is multiplied by `decreaseRatio` (floored, at least 1, at least one less);
 *   - otherwise, when the loads in flight reached the limit during the window (there was demand for more) and the
 *     window mean is not above the past mean: the limit grows by one, up to `max`.
 *   Loads that never reach the limit (the memory budget holds them back, or the upstream is slow) never raise it.
 *
 * @internal
 */

export interface Settings {
  /** The limit at start (1 to `max`). */
  readonly initial: number
  /** The ceiling (`sink.adaptive-concurrency.max`, by default `sink.io.thread-count`). */
  readonly max: number
  /** The factor of a decrease (Vector: 0.9). */
  readonly decreaseRatio: number
  /** The weight of the newest window in the past mean and variance (Vector: 0.4). */
  readonly ewmaAlpha: number
  /** How many standard deviations above the past mean count as rising latency (Vector: 2.5). */
  readonly rttDeviationScale: number
}

export const defaults = { initial: 1, decreaseRatio: 0.9, ewmaAlpha: 0.4, rttDeviationScale: 2.5 } as const

/** What changed the limit at the close of a window (for logs and tests). */
export type Adjustment = "increase" | "decrease" | "hold"

export interface Controller {
  /** The current limit of loads in flight. */
  readonly limit: () => number
  /** Loads started and not ended. */
  readonly inFlight: () => number
  /** A load starts (it holds one of the `limit` permits). */
  readonly start: () => void
  /** An attempt of a load in flight met back pressure (it is retried: the load has not ended). */
  readonly backPressure: () => void
  /**
   * A load ended at `now` (ms): `rttMs` is the round-trip time of its last attempt when it landed, undefined when
   * it failed. Returns the adjustment made when this ending closed a window, else undefined.
   */
  readonly end: (now: number, rttMs: number | undefined) => Adjustment | undefined
}

/** Exponentially weighted mean and variance (Vector's `EwmaVar`). */
interface Ewma {
  mean: number
  variance: number
}

export const make = (settings: Settings): Controller => {
  const max = Math.max(1, Math.floor(settings.max))
  let limit = Math.min(max, Math.max(1, Math.floor(settings.initial)))
  let inFlight = 0
  let past: Ewma | undefined
  let sum = 0
  let count = 0
  let nextUpdate = 0
  let hadBackPressure = false
  let reachedLimit = false

  const updatePast = (rtt: number): Ewma => {
    if (past === undefined) {
      past = { mean: rtt, variance: 0 }
      return past
    }
    const difference = rtt - past.mean
    const increment = settings.ewmaAlpha * difference
    past.mean += increment
    past.variance = (1 - settings.ewmaAlpha) * (past.variance + difference * increment)
    return past
  }

  const manage = (p: Ewma, current: number | undefined): Adjustment => {
    const threshold = Math.sqrt(p.variance) * settings.rttDeviationScale
    if (limit < max && reachedLimit && !hadBackPressure && current !== undefined && current <= p.mean) {
      limit += 1
      return "increase"
    }
    if (limit > 1 && (hadBackPressure || (current ?? 0) >= p.mean + threshold)) {
      // when the mean is steady (no deviation), a window exactly at it is no rise
      if (!hadBackPressure && threshold === 0 && current === p.mean) return "hold"
      limit = Math.max(1, Math.min(limit - 1, Math.floor(limit * settings.decreaseRatio)))
      return "decrease"
    }
    return "hold"
  }

  return {
    limit: () => limit,
    inFlight: () => inFlight,
    start: () => {
      inFlight += 1
      if (inFlight >= limit) reachedLimit = true
    },
    backPressure: () => {
      hadBackPressure = true
    },
    end: (now, rttMs) => {
      inFlight = Math.max(0, inFlight - 1)
      if (rttMs !== undefined && Number.isFinite(rttMs) && rttMs >= 0) {
        sum += rttMs
        count += 1
      }
      const current = count > 0 ? sum / count : undefined
      if (past === undefined) {
        if (current === undefined) {
          // no time to compare against yet; back pressure alone still lowers the limit
          if (!hadBackPressure || limit <= 1) return undefined
          hadBackPressure = false
          reachedLimit = false
          limit = Math.max(1, Math.min(limit - 1, Math.floor(limit * settings.decreaseRatio)))
          return "decrease"
        }
        updatePast(current)
        nextUpdate = now + current
        sum = 0
        count = 0
        return undefined
      }
      if (now < nextUpdate) return undefined
      const adjustment = manage(past, current)
      const p = current !== undefined ? updatePast(current) : past
      nextUpdate = now + p.mean
      sum = 0
      count = 0
      hadBackPressure = false
      reachedLimit = false
      return adjustment
    }
  }
}
