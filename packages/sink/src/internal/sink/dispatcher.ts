/**
 * The at-least-once dispatcher: takes sealed batches from the batcher and loads them, each under its own label,
 * within two shared limits: the bytes of batches sealed but not landed (at most `maxBytes`: beyond that `dispatch`
 * waits, which is the upstream's backpressure) and the loads in flight (`concurrency`). An ordered table (a
 * Primary Key table by default) has one load in flight at a time, in seal order, so that a later change of a key
 * lands after an earlier one; a table's batch that waits for its turn holds no load slot, so other tables go on.
 * Nor does a load that waits out a retry's backoff: it gives its slot back for the wait and takes one again before
 * its next attempt (`LoadClient.currentBackoff`), so a table whose loads are being retried does
 * not stall the loads of the others.
 *
 * A compressed load (a `compression` header, and a client with `LoadClient.compress`) is compressed before its first
 * attempt: its raw buffers go back to the encoder's pool as the codec reads them, and the permits beyond its frame's
 * size go back to the budget as soon as the frame exists, so that the budget counts what the load holds from then on
 * (the frame, resent as it is by every attempt), and the bodies in flight stay within `maxBytes`.
 *
 * A load that fails for good fails the sink with its error, naming the table. The table's later batches are not
 * loaded; the other tables' sealed batches still land (`drain`). When the sink fails for good (a load, a bad row, the
 * upstream), the batches sealed before get `drainDeadline` to land, and what is still in flight then is stopped and
 * its labels settled through `get_load_state` (`settleWithin`); when it is interrupted, at once (`settle`).
 *
 * With a dead letter (deadLetter.ts), a landed load's filtered rows are read from its error log and go to it, and a
 * load StarRocks failed for too many filtered rows fails as the dead letter's `OverBudget`.
 *
 * With adaptive concurrency (`adaptive`), each table that is not ordered has a limit of its own loads in flight
 * besides the shared slots, which its AIMD controller (adaptive.ts) moves between 1 and `max`: each load takes one
 * of the table's permits before a slot and keeps it while it waits out a backoff (a load being retried still
 * weighs on the cluster); every failed attempt the client retries is shown to the controller
 * (`currentAttemptFailed`), and back pressure among them (`retryLogic.isBackPressure`) lowers the limit at once,
 * given the table's loads in flight when the refused attempt began; so does a round-trip time that rises as the
 * throughput falls. The limit is the `adaptiveConcurrencyLimit` gauge of the table (for a probe above the ceiling
 * it reads one more until the probe starts). An ordered table keeps its one load in flight: its gauge says 1.
 */
import type { Clock, MetricLabel, Scope } from "effect"
import { Deferred, Duration, Effect, FiberId, FiberRef, FiberRefs, FiberSet, Metric, Option } from "effect"
import type { DeadLetterError } from "../../DeadLetter.js"
import type * as LabelStore from "../../LabelStore.js"
import * as LoadClient from "../../LoadClient.js"
import * as SinkMetrics from "../../SinkMetrics.js"
import type { LoadError } from "../../StarRocksError.js"
import * as Backoff from "../client/backoff.js"
import * as RetryLogic from "../client/retryLogic.js"
import { withLabel } from "../metricLabels.js"
import * as Adaptive from "./adaptive.js"
import { compressFirst, spare } from "./compressFirst.js"
import type * as DeadLetter from "./deadLetter.js"
import type { Lane, Sealed } from "./lane.js"
import type { Batch, Ledger } from "./ledger.js"
import { updateMetrics } from "./ledger.js"

export interface Options {
  readonly client: LoadClient.LoadClient
  readonly ledger: Ledger
  readonly clock: Clock.Clock
  readonly maxBytes: number
  readonly concurrency: number
  /** Load through the transaction interface (begin, load, commit under the label) instead of plain Stream Load. */
  readonly transactional: boolean
  readonly label: (sealed: Sealed) => string
  /** How long sealed batches may take to land after the sink failed (a table's load, a bad row, the upstream). */
  readonly drainDeadline: Duration.DurationInput
  /** The dead letter: a landed load's filtered rows go to it; a load failed for too many is over its budget. */
  readonly deadLetter?: DeadLetter.Runtime | undefined
  /** Adaptive concurrency per table (absent: off): the limit at start and its ceiling (at most `concurrency`). */
  readonly adaptive?: { readonly initial: number; readonly max: number } | undefined
}

export type DispatchError = LoadError | LabelStore.LabelStoreError | DeadLetterError

export interface Dispatcher {
  /** Takes a sealed batch: waits for byte budget, then loads it in the background. */
  readonly dispatch: (sealed: Sealed) => Effect.Effect<void, DispatchError>
  /** The first failure, if a load failed for good. */
  readonly failure: () => DispatchError | undefined
  /** Fails with the first failure once the other tables' loads in flight have landed (within the deadline). */
  readonly fail: Effect.Effect<never, DispatchError>
  /** Waits until every load in flight has ended; fails with the first failure. */
  readonly drain: Effect.Effect<void, DispatchError>
  /** Stops the loads in flight and settles their labels through `get_load_state`. */
  readonly settle: Effect.Effect<void>
  /** Lets the sealed batches land within `drainDeadline`, then `settle`s what is left. */
  readonly settleWithin: Effect.Effect<void>
}

/** Whether a batch is loaded with merge commit (server-generated labels: none of ours to settle by). */
const mergeCommit = (headers: Readonly<Record<string, string>>): boolean =>
  (headers["enable_merge_commit"] ?? "").trim().toLowerCase() === "true"

interface InFlight {
  readonly sealed: Sealed
  readonly batch: Batch
  /** Permits of the byte budget this load holds: its raw bytes, then its frame's once compressed. */
  held: number
  /** The raw body went to `LoadClient.compress`, which hands its chunks back to the pool itself. */
  handedOver: boolean
  /** The load holds one of the shared in-flight slots (given back by its fiber's end, or for a backoff wait). */
  slot: boolean
  /** The load's backoff hook (`LoadClient.currentBackoff`): its slot given back for each wait. */
  backoff: (wait: Effect.Effect<void>) => Effect.Effect<void>
}

/** A table's adaptive limit: its controller and the permits that enforce the controller's limit. */
interface TableLimit {
  readonly controller: Adaptive.Controller
  readonly permits: Effect.Semaphore
}

/** The error with the table it was loading into (`table`), so that a failed sink names it. */
const naming = <X>(error: X, table: string): X => {
  if (typeof error === "object" && error !== null && (error as { table?: unknown }).table === undefined) {
    try {
      Object.defineProperty(error, "table", { value: table, enumerable: true })
    } catch {
      // a frozen error keeps its own words
    }
  }
  return error
}

export const make = (options: Options): Effect.Effect<Dispatcher, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { client, clock, deadLetter, ledger, maxBytes } = options
    const slots = Math.max(1, options.concurrency)
    const fibers = yield* FiberSet.make<void, never>()
    const failed = yield* Deferred.make<never, DispatchError>()
    let failedWith: DispatchError | undefined
    const failedLanes = new Set<string>()
    // the byte budget: what it has given out of `maxBytes`. When the permits are there they are taken at once,
    // without a semaphore's asynchronous take; else the dispatch waits until releases leave room, as a semaphore's
    // waiter does (it takes when it runs again). A waiting dispatch is woken by the first failure too, and fails
    // with it (the load that fails for good wakes the waiters): no race against `failed`, which forked two fibers
    // per wait (measured, a race per batch alone made V8 promote small batches' rows: docs/benchmark.md)
    let outstanding = 0
    const budgetWaiters = new Set<() => void>()
    const takeBudget = (n: number): Effect.Effect<void, DispatchError> =>
      Effect.suspend(() => {
        if (maxBytes - outstanding >= n) {
          outstanding += n
          return Effect.void
        }
        return Effect.async<void, DispatchError>((resume) => {
          const waiter = () => {
            if (failedWith !== undefined) {
              budgetWaiters.delete(waiter)
              resume(Effect.fail(failedWith))
              return
            }
            if (maxBytes - outstanding < n) return
            budgetWaiters.delete(waiter)
            resume(takeBudget(n))
          }
          budgetWaiters.add(waiter)
          return Effect.sync(() => {
            budgetWaiters.delete(waiter)
          })
        })
      })
    const releaseBudget = (n: number): void => {
      outstanding -= n
      for (const waiter of budgetWaiters) waiter()
    }
    // the loads in flight: how many of the `slots` are taken, and the loads waiting for one, in the order they came.
    // A load that finds one free takes it at once (no asynchronous take, no masks, no release effect: a semaphore's
    // `withPermits` was all of these at every load); else it waits, and a slot given back passes straight to the
    // first waiter. Whether a load holds a slot is its `slot` flag, set where the slot is counted, so that its
    // fiber's end gives back exactly what it holds, whenever it is interrupted.
    let slotsTaken = 0
    const slotWaiters = new Set<() => void>()
    const takeSlot = (item: InFlight): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (slotsTaken < slots && slotWaiters.size === 0) {
          slotsTaken++
          item.slot = true
          return Effect.void
        }
        return Effect.async<void>((resume) => {
          // called by `giveSlot` with the slot still counted as taken: it passes to this load
          const waiter = () => {
            item.slot = true
            resume(Effect.void)
          }
          slotWaiters.add(waiter)
          return Effect.sync(() => {
            slotWaiters.delete(waiter)
          })
        })
      })
    const giveSlot = (item: InFlight): void => {
      if (!item.slot) return
      item.slot = false
      const next = slotWaiters.values().next()
      if (next.done === true) {
        slotsTaken--
        return
      }
      slotWaiters.delete(next.value)
      next.value()
    }
    // per ordered lane: the end of its last dispatched load
    const tails = new Map<Lane, Deferred.Deferred<void>>()
    // loads begun and not ended of their own: settled through get_load_state when the sink stops early
    const unsettled = new Set<InFlight>()
    let inflight = 0

    // a load waiting out a backoff gives its slot back meanwhile and takes one again after (interrupted, it holds
    // none, and its fiber's end gives back nothing)
    const slotFreeBackoff = (item: InFlight) => (wait: Effect.Effect<void>) =>
      Effect.suspend(() => {
        giveSlot(item)
        return Effect.zipRight(wait, takeSlot(item))
      })

    const guard = <X, E2>(effect: Effect.Effect<X, E2>) => Effect.raceFirst(effect, Deferred.await(failed))
    // per table: what `SinkMetrics.tagged` does to the metric labels (the same arrays: internal/metricLabels.ts)
    const tags = new Map<
      Lane,
      (labels: ReadonlyArray<MetricLabel.MetricLabel>) => ReadonlyArray<MetricLabel.MetricLabel>
    >()
    const tagOf = (lane: Lane) => {
      let tag = tags.get(lane)
      if (tag === undefined) {
        const value = SinkMetrics.tableTag(lane.settings.database, lane.settings.table)
        tag = (labels) => withLabel(labels, "table", value)
        tags.set(lane, tag)
      }
      return tag
    }
    // per table: bytes sealed and not landed (the gauge is tagged with the table)
    const laneBytes = new Map<Lane, number>()
    const reportBuffered = (lane: Lane, delta: number) =>
      updateMetrics(lane.settings.database, lane.settings.table, (labels) => {
        const bytes = (laneBytes.get(lane) ?? 0) + delta
        laneBytes.set(lane, bytes)
        SinkMetrics.bufferedBytes.unsafeUpdate(bytes, labels)
      })

    // per unordered table, with adaptive concurrency: its limit (an ordered table has one load in flight anyway:
    // its gauge is set to 1 once)
    const limits = new Map<Lane, TableLimit | undefined>()
    const limitOf = (lane: Lane): Effect.Effect<TableLimit | undefined> =>
      Effect.suspend(() => {
        const adaptive = options.adaptive
        if (adaptive === undefined) return Effect.succeed(undefined)
        if (limits.has(lane)) return Effect.succeed(limits.get(lane))
        if (lane.ordered) {
          limits.set(lane, undefined)
          return Effect.as(reportLimit(lane, 1), undefined)
        }
        const controller = Adaptive.make({
          ...Adaptive.defaults,
          initial: adaptive.initial,
          max: Math.min(adaptive.max, Math.max(1, options.concurrency))
        })
        const limit: TableLimit = { controller, permits: Effect.unsafeMakeSemaphore(controller.limit()) }
        limits.set(lane, limit)
        return Effect.as(reportLimit(lane, controller.limit()), limit)
      })
    const reportLimit = (lane: Lane, value: number) =>
      Metric.set(SinkMetrics.adaptiveConcurrencyLimit, value).pipe(
        SinkMetrics.tagged(lane.settings.database, lane.settings.table)
      )

    /**
     * Runs one load (`load`, given what to do after each of its backoff waits) under its table's adaptive limit:
     * the controller hears of its start, of each attempt that met back pressure (with the table's loads in flight
     * when that attempt began), and of its end with the round-trip time of its last attempt (from the end of its
     * last backoff wait); a change of the limit resizes the table's permits and sets its gauge at once.
     */
    const adaptively = <A, E>(
      lane: Lane,
      limit: TableLimit,
      load: (afterWait: () => void) => Effect.Effect<A, E>
    ): Effect.Effect<A, E> =>
      Effect.suspend(() => {
        const { controller } = limit
        const applied = (before: number, adjustment: Adaptive.Adjustment | undefined) =>
          Effect.suspend(() => {
            const after = controller.limit()
            if (adjustment === undefined || after === before) return Effect.void
            return Effect.all([
              limit.permits.resize(after),
              reportLimit(lane, after),
              Effect.logDebug("adaptive concurrency").pipe(
                Effect.annotateLogs({ table: lane.key, adjustment, from: before, to: after })
              )
            ], { discard: true })
          })
        let attemptStart = clock.unsafeCurrentTimeMillis()
        const atStart = controller.limit()
        const ticket = controller.start()
        let attemptInFlight = controller.inFlight()
        const ended = (landed: boolean) =>
          Effect.suspend(() => {
            const now = clock.unsafeCurrentTimeMillis()
            const before = controller.limit()
            return applied(before, controller.end(now, landed ? now - attemptStart : undefined, ticket))
          })
        // the probe's start lowers the limit back to the ceiling while it is in flight
        return applied(atStart, "probe").pipe(
          Effect.zipRight(
            load(() => {
              attemptStart = clock.unsafeCurrentTimeMillis()
              attemptInFlight = controller.inFlight()
            }).pipe(
              Effect.locally(Backoff.currentAttemptFailed, (error: unknown) =>
                Effect.suspend(() => {
                  if (!RetryLogic.isBackPressure(error as RetryLogic.ErrorFacts)) return Effect.void
                  const before = controller.limit()
                  return applied(before, controller.backPressure({ ticket, inFlight: attemptInFlight }))
                })),
              Effect.onExit((exit) => ended(exit._tag === "Success"))
            )
          )
        )
      })

    /**
     * Compresses a load's body before its first attempt (compressFirst.ts): from then on the load holds the frame,
     * and the permits beyond its size go back to the budget at once.
     */
    const compressed = (item: InFlight, compress: Effect.Effect<LoadClient.LoadRequest, LoadError>) =>
      Effect.suspend(() => {
        item.handedOver = true
        return compress
      }).pipe(
        Effect.tap((request) =>
          Effect.suspend(() => {
            const back = spare(item.held, request.body)
            if (back <= 0) return Effect.void
            item.held -= back
            releaseBudget(back)
            return Effect.void
          })
        )
      )

    // a chain of steps, not a generator: each `yield*` of a generator is a step of the run loop and a resumption
    const loadOne = (item: InFlight): Effect.Effect<void, DispatchError> =>
      Effect.suspend(() => {
        const { batch, sealed } = item
        const { database, table } = sealed.lane.settings
        const startedAt = clock.unsafeCurrentTimeMillis()
        const send = (request: LoadClient.LoadRequest) =>
          Effect.flatMap(
            updateMetrics(database, table, (labels) => SinkMetrics.inflightLoads.unsafeUpdate(++inflight, labels)),
            () => {
              const load = options.transactional ? client.loadTransactional(request) : client.loadBatch(request)
              return (deadLetter === undefined
                ? load
                : Effect.mapError(load, (error) => deadLetter.overRatio(batch, error)))
                .pipe(
                  Effect.tapError((error) => ledger.failed(batch, error)),
                  Effect.ensuring(updateMetrics(
                    database,
                    table,
                    (labels) => SinkMetrics.inflightLoads.unsafeUpdate(--inflight, labels)
                  )),
                  Effect.flatMap((result) => {
                    unsettled.delete(item)
                    const landed = ledger.landed(batch, result, startedAt)
                    return deadLetter !== undefined && result.filteredRows > 0
                      ? Effect.zipRight(landed, deadLetter.filtered(batch, result))
                      : landed
                  })
                )
            }
          )
        return Effect.flatMap(ledger.pending(batch), () => {
          const raw: LoadClient.LoadRequest = {
            database,
            table,
            label: batch.label,
            headers: sealed.headers,
            body: sealed.body
          }
          unsettled.add(item)
          const compress = compressFirst(client, raw, sealed.release)
          return compress !== undefined
            ? Effect.flatMap(
              compressed(item, compress).pipe(Effect.tapError((error) => ledger.failed(batch, error))),
              send
            )
            : send(raw)
        })
      }).pipe(
        Effect.tapError(() => Effect.sync(() => unsettled.delete(item)))
      )

    /** A load failed for good: its table's later loads are not attempted, and the sink fails with the first failure. */
    const failLoad = (item: InFlight, error: DispatchError): Effect.Effect<void> =>
      Effect.suspend(() => {
        giveSlot(item)
        const key = item.sealed.lane.key
        failedLanes.add(key)
        const e = naming(error, key)
        failedWith ??= e
        // the dispatches waiting for budget fail with it
        for (const waiter of budgetWaiters) waiter()
        return Deferred.fail(failed, e)
      })

    /** A shared slot, then the load: a load without a limit of its table's own. */
    const unlimited = (item: InFlight): Effect.Effect<void> =>
      Effect.catchAll(Effect.zipRight(takeSlot(item), loadOne(item)), (error) => failLoad(item, error))

    /**
     * A load's fiber, once its turn came (an ordered table's previous load ended): a slot (and its table's permit,
     * with adaptive concurrency), then the load; the slot is given back at the fiber's end (`giveSlot`).
     */
    const attempt = (item: InFlight): Effect.Effect<void> =>
      Effect.suspend(() => {
        const lane = item.sealed.lane
        if (failedLanes.has(lane.key)) {
          // an earlier load of this table failed for good: this one is not attempted
          return Effect.ignore(ledger.record(item.batch, "failed"))
        }
        if (options.adaptive === undefined) return unlimited(item)
        return Effect.flatMap(limitOf(lane), (limit) =>
          limit === undefined
            // an ordered table under adaptive concurrency: no limit of its own, the slot given back as without
            ? Effect.zipRight(FiberRef.set(LoadClient.currentBackoff, item.backoff), unlimited(item))
            // the table's permit first, kept through backoff waits; then a shared slot, given back during them
            : limit.permits.withPermits(1)(
              Effect.zipRight(
                takeSlot(item),
                adaptively(lane, limit, (afterWait) =>
                  Effect.locally(
                    loadOne(item),
                    LoadClient.currentBackoff,
                    (wait) => Effect.zipRight(item.backoff(wait), Effect.sync(afterWait))
                  )).pipe(Effect.ensuring(Effect.sync(() => giveSlot(item))))
              )
            ).pipe(Effect.catchAll((error) => failLoad(item, error))))
      })

    const dispatch = (sealed: Sealed) =>
      Effect.suspend(() => {
        if (failedWith !== undefined) return Effect.fail(failedWith)
        const lane = sealed.lane
        const held = Math.min(sealed.body.byteLength, maxBytes)
        return takeBudget(held).pipe(
          Effect.zipRight(Effect.suspend(() => {
            const batch: Batch = {
              table: lane.key,
              database: lane.settings.database,
              tableName: lane.settings.table,
              label: options.label(sealed),
              rows: sealed.rows,
              bytes: sealed.body.byteLength,
              firstRow: sealed.firstRow
            }
            ledger.sealed(batch)
            const item: InFlight = { sealed, batch, held, handedOver: false, slot: false, backoff: undefined! }
            item.backoff = slotFreeBackoff(item)
            const previous = lane.ordered ? tails.get(lane) : undefined
            const done = lane.ordered ? Deferred.unsafeMake<void>(FiberId.none) : undefined
            if (done !== undefined) tails.set(lane, done)
            // the load's fiber is its own (forked below): its metrics are the table's (as `SinkMetrics.tagged` would
            // tag them, without one scope of the fiber ref per load), and without adaptive concurrency its backoff
            // waits give the slot back; nothing else runs in this fiber (the tag, and the backoff hook when there is
            // no adaptive limit, set in one step and one copy of the fiber's refs). A chain, not a generator.
            const steps = previous !== undefined
              ? Effect.zipRight(Deferred.await(previous), attempt(item))
              : attempt(item)
            const run = Effect.updateFiberRefs((fiberId, refs) => {
              const labels: readonly [FiberRef.FiberRef<any>, readonly [readonly [FiberId.Single, any]]] = [
                FiberRef.currentMetricLabels,
                [[fiberId, tagOf(lane)(FiberRefs.getOrDefault(refs, FiberRef.currentMetricLabels))]]
              ]
              return FiberRefs.updateManyAs(refs, {
                entries: options.adaptive === undefined
                  ? [labels, [LoadClient.currentBackoff, [[fiberId, item.backoff]]]]
                  : [labels]
              })
            }).pipe(
              Effect.zipRight(steps),
              Effect.ensuring(Effect.suspend(() => {
                giveSlot(item)
                if (!item.handedOver) sealed.release(sealed.body)
                releaseBudget(item.held)
                const released = reportBuffered(lane, -held)
                return done !== undefined ? Effect.zipRight(released, Deferred.succeed(done, undefined)) : released
              }))
            )
            return Effect.zipRight(reportBuffered(lane, held), FiberSet.run(fibers, run))
          }))
        )
      })

    const awaitAll = FiberSet.awaitEmpty(fibers)

    const fail: Effect.Effect<never, DispatchError> = Effect.suspend(() =>
      awaitAll.pipe(
        Effect.timeoutOption(options.drainDeadline),
        Effect.zipRight(Effect.fail(failedWith!))
      )
    )

    // a failure cuts the wait short, then the other tables' loads get their deadline to land (`fail`)
    const drain: Effect.Effect<void, DispatchError> = guard(awaitAll).pipe(
      Effect.catchAll(() => fail),
      Effect.zipRight(Effect.suspend(() => failedWith !== undefined ? fail : Effect.void))
    )

    const settle = Effect.gen(function*() {
      yield* FiberSet.clear(fibers)
      const open = Array.from(unsettled)
      unsettled.clear()
      yield* Effect.forEach(open, ({ batch, sealed }) =>
        // merge commit: the server's label is in the reply that did not come, ours was never sent: in doubt
        (mergeCommit(sealed.headers) ?
          Effect.succeedNone :
          client.getLoadState({ database: batch.database, label: batch.label }).pipe(
            Effect.timeout(Duration.seconds(10)),
            Effect.option
          )).pipe(
            Effect.flatMap((state) => {
              const s = Option.getOrUndefined(state)
              const settled = s === "VISIBLE" || s === "COMMITTED"
                ? "committed" as const
                : s === "ABORTED" || s === "UNKNOWN"
                ? "failed" as const
                : "in-doubt" as const
              return ledger.record(batch, settled).pipe(
                Effect.zipRight(
                  Effect.logWarning("sink stopped with a load in flight").pipe(
                    Effect.annotateLogs({
                      table: batch.table,
                      label: batch.label,
                      state: s ?? "unknown",
                      recorded: settled
                    })
                  )
                )
              )
            }),
            Effect.ignore
          ), { concurrency: "unbounded", discard: true })
    })

    const settleWithin = awaitAll.pipe(
      Effect.timeoutOption(options.drainDeadline),
      Effect.zipRight(settle)
    )

    return {
      settleWithin,
      dispatch,
      failure: () => failedWith,
      fail,
      drain,
      settle
    }
  })
