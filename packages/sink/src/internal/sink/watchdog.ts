/**
 * Liveness of the at-least-once sink: a fiber on the sink's `Clock` that refreshes the `secondsSinceLastLoad` gauge
 * every second and, with a timeout (`watchdogTimeout`, `sink.watchdog.timeout-ms`), checks that no table has rows
 * waiting while none of its loads landed for that long. Rows wait when they are in sealed batches not landed
 * (the ledger counts them), or in a batch being built once its flush interval has passed (before that the batch
 * waits by design). A table stalls from its last landed load or from when its rows began to wait, whichever is
 * later. The first stall completes `stalled` with a `StallError` naming every stalled table; the sink fails with it.
 */
import type { Clock, Scope } from "effect"
import { Deferred, Duration, Effect } from "effect"
import { StallError } from "../../StarRocksError.js"
import type { Lane } from "./lane.js"
import type { Ledger } from "./ledger.js"

export interface Options {
  readonly ledger: Ledger
  readonly clock: Clock.Clock
  readonly lanes: () => Iterable<Lane>
  /** The flush interval (ms; 0 when off): a building batch waits from its first row plus this. */
  readonly intervalMs: number
  /** The watchdog's timeout (ms); undefined: only the gauge is kept. */
  readonly timeoutMs: number | undefined
}

export interface Watchdog {
  /** Fails with the `StallError` once a table stalls (never completes without a timeout). */
  readonly stalled: Effect.Effect<never, StallError>
}

/** The tables stalled at `now` (empty when none). */
export const check = (options: Options, now: number): StallError["tables"] => {
  const timeoutMs = options.timeoutMs
  if (timeoutMs === undefined) return []
  const out: Array<StallError["tables"][number]> = []
  for (const lane of options.lanes()) {
    const live = options.ledger.liveness(lane.key)
    let rowsWaiting = live.sealedRows
    let since = live.sealedSince
    const building = lane.rows()
    if (building > 0 && options.intervalMs > 0) {
      const due = lane.firstRowAt() + options.intervalMs
      if (due <= now) {
        rowsWaiting += building
        since = since === undefined ? due : Math.min(since, due)
      }
    }
    if (rowsWaiting === 0 || since === undefined) continue
    const stalledMs = now - Math.max(live.lastLoadAt, since)
    if (stalledMs >= timeoutMs) out.push({ table: lane.key, stalledMs, rowsWaiting })
  }
  return out
}

export const make = (options: Options): Effect.Effect<Watchdog, never, Scope.Scope> =>
  Effect.gen(function*() {
    const stalled = yield* Deferred.make<never, StallError>()
    const timeoutMs = options.timeoutMs
    // checks at least 4 times per timeout, so that a stall is seen within a quarter of it
    const periodMs = timeoutMs === undefined ? 1_000 : Math.max(1, Math.min(1_000, Math.floor(timeoutMs / 4)))
    yield* Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep(Duration.millis(periodMs))
        const now = options.clock.unsafeCurrentTimeMillis()
        yield* options.ledger.reportLiveness(now)
        const tables = check(options, now)
        if (tables.length > 0) {
          yield* Deferred.fail(stalled, new StallError({ tables, timeoutMs: timeoutMs! }))
          return
        }
      }
    }).pipe(Effect.forkScoped)
    return { stalled: Deferred.await(stalled) }
  })
