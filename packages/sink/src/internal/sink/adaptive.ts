/**
 * Adaptive concurrency: the limit of one table's loads in flight, raised and lowered by AIMD after Vector's adaptive
 * request concurrency (vectordotdev/vector, `src/sinks/util/adaptive_concurrency/controller.rs`), as a pure state
 * machine: the caller tells it when a load starts (it answers with the load's ticket), when an attempt met back
 * pressure (with the load's ticket and the loads in flight when that attempt began) and when a load ended (with its
 * round-trip time when it landed), and passes the time; it answers with the limit.
 *
 * - Each load that lands gives one round-trip time (the time of its last attempt: the backoff waits and the
 *   attempts that failed before are not in it). The times of one window are averaged (`current`); the windows'
 *   averages form an exponentially weighted mean and variance (`past`, weight `ewmaAlpha`). A window's throughput
 *   is the most loads it had in flight over its mean round-trip time (Little's law).
 * - Back pressure (an attempt answered "too many versions", TXN_IN_PROCESSING, a memory limit, a timeout:
 *   `retryLogic.isBackPressure`) lowers the limit at once, not at the window's close: the first time in a window
 *   to `decreaseRatio` of it (floored, at least one less) and to just below the loads in flight when the failed
 *   attempt began, whichever is lower; later in the same window only to just below those loads in flight. An
 *   attempt begun with more loads in flight than the limit now allows says nothing new and changes nothing. The
 *   limit it falls to is remembered as the ceiling, and the hold before a probe above it (below) doubles.
 * - A window lasts one past mean round-trip time; it is closed by the first load that ends after it. Then, when
 *   no attempt met back pressure in it:
 *   - a window mean at or above the past mean plus `rttDeviationScale` standard deviations while the throughput
 *     fell below the previous window's (the server slowed down, not the limit's own step): the limit is
 *     multiplied by `decreaseRatio` (floored, at least 1, at least one less);
 *   - otherwise, when the loads in flight reached the limit during the window (there was demand for more) and
 *     the throughput is not below the one measured at the limit before the last increase (the last step did not
 *     cost throughput, though it may have cost latency): the limit grows by one, up to `max` and up to the
 *     ceiling;
 *   - at the ceiling, after `probeHold` such windows, one load probes above it: the limit goes to the ceiling + 1
 *     for one load start only, then back to the ceiling while that load is in flight, so that no other load arrives
 *     beside it (each would meet the same answer). `probeConfirmations` probes in a row landing without back
 *     pressure raise the ceiling and the limit by one and halve the hold (not below `probeHold`); a probe meeting
 *     back pressure leaves them and doubles the hold (up to `probeHoldMax`), as back pressure on the limit does.
 *   Loads that never reach the limit (the memory budget holds them back, or the upstream is slow) never raise it.
 *
 * @internal
 */

export interface Settings {
  /** The limit at start (1 to `max`). */
  readonly initial: number
  /** The highest limit (`sink.adaptive-concurrency.max`, by default `sink.io.thread-count`). */
  readonly max: number
  /** The factor of a decrease (Vector: 0.9). */
  readonly decreaseRatio: number
  /** The weight of the newest window in the past mean and variance (Vector: 0.4). */
  readonly ewmaAlpha: number
  /** How many standard deviations above the past mean count as rising latency (Vector: 2.5). */
  readonly rttDeviationScale: number
  /** Windows at the ceiling before a load probes above it, at first and at least. */
  readonly probeHold: number
  /** The longest hold, which each probe that meets back pressure doubles up to. */
  readonly probeHoldMax: number
  /** Probes in a row that must land without back pressure before the ceiling rises. */
  readonly probeConfirmations: number
}

export const defaults = {
  initial: 1,
  decreaseRatio: 0.9,
  ewmaAlpha: 0.4,
  rttDeviationScale: 2.5,
  probeHold: 4,
  probeHoldMax: 64,
  probeConfirmations: 3
} as const

/** What changed the limit (for logs and tests); `probe`: the limit is one above the ceiling for one load. */
export type Adjustment = "increase" | "decrease" | "hold" | "probe"

/** The attempt that met back pressure: its load's ticket, and the loads in flight when it began (itself included). */
export interface Attempt {
  readonly ticket?: number | undefined
  readonly inFlight?: number | undefined
}

export interface Controller {
  /** The current limit of loads in flight. */
  readonly limit: () => number
  /** Loads started and not ended. */
  readonly inFlight: () => number
  /** The limit last lowered to by back pressure (raised by probes), if any. */
  readonly ceiling: () => number | undefined
  /** A load starts (it holds one of the `limit` permits); its ticket. It may lower the limit (the probe's start). */
  readonly start: () => number
  /**
   * An attempt of a load in flight met back pressure (it is retried: the load has not ended). Returns `decrease`
   * when it lowered the limit.
   */
  readonly backPressure: (attempt?: Attempt) => Adjustment | undefined
  /**
   * A load ended at `now` (ms): `rttMs` is the round-trip time of its last attempt when it landed, undefined when
   * it failed; `ticket` is what its `start` answered. Returns the adjustment made when this ending closed a window
   * or ended a probe, else undefined.
   */
  readonly end: (now: number, rttMs: number | undefined, ticket?: number) => Adjustment | undefined
}

/** Exponentially weighted mean and variance (Vector's `EwmaVar`). */
interface Ewma {
  mean: number
  variance: number
}

export const make = (settings: Settings): Controller => {
  const max = Math.max(1, Math.floor(settings.max))
  const probeHold = Math.max(1, Math.floor(settings.probeHold))
  const probeHoldMax = Math.max(probeHold, Math.floor(settings.probeHoldMax))
  const probeConfirmations = Math.max(1, Math.floor(settings.probeConfirmations))
  let limit = Math.min(max, Math.max(1, Math.floor(settings.initial)))
  let inFlight = 0
  let tickets = 0
  let past: Ewma | undefined
  let sum = 0
  let count = 0
  let nextUpdate = 0
  // the window's: back pressure met (the probe's not counted), the limit lowered by it, loads at the limit, the
  // most loads in flight
  let hadBackPressure = false
  let cut = false
  let reachedLimit = false
  let peak = 0
  // the previous window's throughput, and the one at the limit before the last increase
  let previousThroughput: number | undefined
  let belowThroughput: number | undefined
  // the limit back pressure last lowered to, the windows held at it, the hold before a probe, the probing load
  let ceiling: number | undefined
  let held = 0
  let hold = probeHold
  let probe: number | undefined
  let probeWins = 0

  const decreased = (from: number) => Math.max(1, Math.min(from - 1, Math.floor(from * settings.decreaseRatio)))

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
    if (hadBackPressure) return cut ? "decrease" : "hold"
    if (current === undefined) return "hold"
    const throughput = peak / current
    const previous = previousThroughput
    previousThroughput = throughput
    const threshold = Math.sqrt(p.variance) * settings.rttDeviationScale
    // when the mean is steady (no deviation), a window exactly at it is no rise
    const rising = current >= p.mean + threshold && !(threshold === 0 && current === p.mean)
    if (limit > 1 && rising && (previous === undefined || throughput < previous)) {
      limit = decreased(limit)
      belowThroughput = undefined
      if (probe === undefined && ceiling !== undefined && limit > ceiling) limit = ceiling
      return "decrease"
    }
    if (limit >= max || !reachedLimit) return "hold"
    if (ceiling !== undefined && limit >= ceiling) {
      // a probe armed (no load has taken it yet) or under way
      if (limit > ceiling || probe !== undefined) return "hold"
      held += 1
      if (held < hold) return "hold"
      held = 0
      limit = ceiling + 1
      return "probe"
    }
    if (belowThroughput !== undefined && throughput < belowThroughput) {
      // the last step cost throughput (or seemed to): stay, and weigh this window against it next time
      belowThroughput = (belowThroughput + throughput) / 2
      return "hold"
    }
    belowThroughput = throughput
    limit += 1
    return "increase"
  }

  const closeWindow = () => {
    sum = 0
    count = 0
    hadBackPressure = false
    cut = false
    reachedLimit = false
    peak = inFlight
  }

  return {
    limit: () => limit,
    inFlight: () => inFlight,
    ceiling: () => ceiling,
    start: () => {
      inFlight += 1
      tickets += 1
      if (ceiling !== undefined && limit > ceiling && probe === undefined && inFlight > ceiling) {
        // the one load above the ceiling: back to the ceiling until it is answered
        probe = tickets
        limit = ceiling
      }
      if (inFlight >= limit) reachedLimit = true
      if (inFlight > peak) peak = inFlight
      return tickets
    },
    backPressure: (attempt) => {
      if (attempt?.ticket !== undefined && attempt.ticket === probe) {
        // the probe met back pressure: the ceiling holds, and the next probe waits twice as long
        probe = undefined
        probeWins = 0
        held = 0
        hold = Math.min(probeHoldMax, hold * 2)
        return undefined
      }
      hadBackPressure = true
      const at = attempt?.inFlight
      if (at !== undefined && at > limit) return undefined
      const before = limit
      const below = at !== undefined ? at - 1 : before
      limit = Math.max(1, Math.min(before, cut ? below : Math.min(decreased(before), below)))
      if (limit === before) return undefined
      cut = true
      // refused at this level: the next probe above it waits twice as long
      ceiling = limit
      held = 0
      hold = Math.min(probeHoldMax, hold * 2)
      probe = undefined
      probeWins = 0
      belowThroughput = undefined
      return "decrease"
    },
    end: (now, rttMs, ticket) => {
      inFlight = Math.max(0, inFlight - 1)
      const landed = rttMs !== undefined && Number.isFinite(rttMs) && rttMs >= 0
      let probed: Adjustment | undefined
      if (ticket !== undefined && ticket === probe) {
        probe = undefined
        if (landed && ceiling !== undefined) {
          probeWins += 1
          if (probeWins < probeConfirmations) {
            // a probe may pass while a load counted in flight is not yet (or no longer) at the server: the next
            // one goes at the next window
            held = hold
          } else {
            // one more load fits beside the others: the ceiling and the limit rise by one
            probeWins = 0
            ceiling = Math.min(max, ceiling + 1)
            if (limit < ceiling) {
              limit = ceiling
              probed = "increase"
            }
            hold = Math.max(probeHold, Math.floor(hold / 2))
            held = 0
          }
        }
      }
      if (landed) {
        sum += rttMs
        count += 1
      }
      const current = count > 0 ? sum / count : undefined
      if (past === undefined) {
        if (current === undefined) {
          // no time to compare against yet; back pressure alone has lowered the limit
          if (!hadBackPressure) return probed
          const adjustment: Adjustment = cut ? "decrease" : "hold"
          closeWindow()
          return adjustment
        }
        updatePast(current)
        previousThroughput = peak / current
        nextUpdate = now + current
        sum = 0
        count = 0
        return probed
      }
      if (now < nextUpdate) return probed
      const adjustment = manage(past, current)
      const p = current !== undefined ? updatePast(current) : past
      nextUpdate = now + p.mean
      closeWindow()
      return adjustment === "hold" && probed !== undefined ? probed : adjustment
    }
  }
}
