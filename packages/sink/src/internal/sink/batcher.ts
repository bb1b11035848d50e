/**
 * The batcher: the row loop of both sinks. It takes the upstream's chunks, hands each item to its table's lane
 * (lane.ts), and seals batches when a lane is full, when the lanes together hold `maxBytes`, when an item needs
 * another shape or format, and when the interval timer says so. What happens to a sealed batch (a load, or a load
 * into the table's open transaction) is the caller's `onSeal`.
 *
 * Three measured tricks live here and nowhere else (docs/benchmark.md, Memory and one-row chunks):
 * - chunks are handed over through `Chunks.once`, so the upstream's rows die young;
 * - the event loop gets a `setImmediate` turn at least every 2 ms of encoding (internal/eventLoop.ts), so that
 *   the loads in flight drain while the next batch is built;
 * - rows that need no effect (no seal, no turn, no new table) are encoded without the lock, right in the
 *   per-chunk call. That is safe because it is synchronous: nothing else touches the lanes meanwhile. The interval
 *   timer raises `timerWants` before it asks for the lock; while it is raised, chunks take the locked way, so the
 *   timer is never starved. Invariant: lanes change only in the unlocked synchronous stretch or under `lock`.
 *
 * With a dead letter (`deadLetter`), a row a lane refuses is caught where a `RowEncodeError` is named (outside the
 * row loop, so the rows that encode pay nothing for it), handed to the dead letter with its stream index, and the
 * chunk goes on the locked way, which sends it before the next row is taken.
 */
import type { Clock } from "effect"
import { Effect } from "effect"
import { RowEncodeError } from "../../RowEncodeError.js"
import * as Barrier from "../barrier.js"
import * as Chunks from "../chunks.js"
import * as EventLoop from "../eventLoop.js"
import type { Lane, Sealed } from "./lane.js"
import { FULL, overBudget, REFUSED } from "./lane.js"

/** Finds the lane of an item; `create` makes the lane of a table the sink has not seen yet. */
export interface Router<E, R> {
  readonly lane: (row: unknown) => Lane | undefined
  readonly create: (row: unknown, rowIndex: number) => Effect.Effect<Lane, E, R>
  readonly lanes: () => Iterable<Lane>
}

export interface Options<In, E, R> {
  readonly router: Router<E, R>
  readonly maxRows: number
  readonly maxBytes: number
  readonly clock: Clock.Clock
  /** Takes a sealed batch (waits while the byte budget is spent: backpressure). */
  readonly onSeal: (sealed: Sealed) => Effect.Effect<void, E, R>
  /**
   * The exactly-once sink: its items are rows, as they are, and checkpoint barriers (internal/barrier.ts), each
   * handed to `onBarrier` in stream order, after the rows before it. Without it every item is a row.
   */
  readonly onBarrier?: ((barrier: In) => Effect.Effect<void, E, R>) | undefined
  /**
   * The dead letter: a row a lane refuses (`RowEncodeError`) is handed to `refuse` (with its table) instead of
   * failing the sink, and `flush` runs before the next row is taken. Without it nothing changes in the row loop:
   * refusals are caught where `RowEncodeError` is named, outside the loop.
   */
  readonly deadLetter?: {
    readonly refuse: (error: RowEncodeError, row: unknown, table: string) => void
    readonly flush: Effect.Effect<void, E, R>
  } | undefined
}

/** The table of a refused row that no table takes (`DeadLetter.Refused`'s `table`). */
export const NO_TABLE = "(no table)"

/** Rows taken the lock-free way between two looks at the event loop's clock, for chunks smaller than that. */
const CHECK_EVERY = EventLoop.ROWS_PER_CHECK / 16

export interface Batcher<In, E, R> {
  /** The per-chunk step. */
  readonly onChunk: (items: ReadonlyArray<In>) => Effect.Effect<void, E | RowEncodeError, R>
  /** Seals every lane's batch (the stream's end, a barrier). Call under `locked`. */
  readonly sealAll: Effect.Effect<void, E, R>
  /** Seals the batches whose first row came `intervalMs` or more before `now`. Call under `locked`. */
  readonly sealDue: (now: number, intervalMs: number) => Effect.Effect<void, E, R>
  /** When the oldest building batch got its first row (undefined when none is building). */
  readonly oldest: () => number | undefined
  /** Runs an effect under the batcher's lock, taking chunks the locked way meanwhile. */
  readonly locked: <X, E2, R2>(effect: Effect.Effect<X, E2, R2>) => Effect.Effect<X, E2, R2>
  /** Total bytes the lanes are building. */
  readonly building: () => number
  /** Items taken so far: the stream index the next row gets. */
  readonly taken: () => number
}

export const make = <In, E, R>(options: Options<In, E, R>): Effect.Effect<Batcher<In, E, R>> =>
  Effect.map(Effect.makeSemaphore(1), (lock) => {
    const { clock, maxBytes, maxRows, onSeal, router } = options
    const onBarrier = options.onBarrier
    // whether items may be barriers: one brand check per item, nothing else differs from the at-least-once loop
    const barriers = onBarrier !== undefined
    const deadLetter = options.deadLetter
    const turns = EventLoop.make()
    let rowIndex = 0
    let current: Lane | undefined
    // raised while someone (the timer) waits for the lock: chunks then take the locked way
    let wants = 0

    const building = (): number => {
      let n = 0
      for (const lane of router.lanes()) n += lane.bytes()
      return n
    }

    const sealLane = (lane: Lane): Effect.Effect<void, E, R> => {
      const sealed = lane.seal()
      return sealed === undefined ? Effect.void : onSeal(sealed)
    }

    // whether the lanes' shared byte budget wants the largest batch sealed (lane.ts `overBudget`)
    const spent = (): boolean => {
      let total = 0
      let largest = 0
      for (const lane of router.lanes()) {
        const bytes = lane.bytes()
        total += bytes
        if (bytes > largest) largest = bytes
      }
      return overBudget(total, largest, maxBytes)
    }

    // Full lanes are sealed; while the shared budget is spent (lane.ts `overBudget`), the largest one is sealed.
    const relieve: Effect.Effect<void, E, R> = Effect.suspend(() => {
      const due: Array<Lane> = []
      let total = 0
      let largest: Lane | undefined
      for (const lane of router.lanes()) {
        const bytes = lane.bytes()
        if (lane.rows() >= maxRows || bytes >= maxBytes) due.push(lane)
        else {
          total += bytes
          if (bytes > 0 && (largest === undefined || bytes > largest.bytes())) largest = lane
        }
      }
      if (due.length === 0 && (largest === undefined || !overBudget(total, largest.bytes(), maxBytes))) {
        return Effect.void
      }
      return Effect.zipRight(
        Effect.forEach(due.length > 0 ? due : [largest!], sealLane, { discard: true }),
        relieve
      )
    })

    // why the last `addRows` stopped (a variable, not a result object: one-row chunks call it once per row)
    let stop: "done" | "cut" | "pause" | "barrier" | "refused" = "done"
    /**
     * Adds items from `from` on while none needs an effect; returns the index of the next item, sets `stop`. The
     * clock is read only where a row opens a batch (its first-row time): one-row chunks would read it per row.
     */
    const addRows = (items: ReadonlyArray<In>, from: number): number => {
      for (let i = from; i < items.length; i++) {
        const row: unknown = items[i]
        if (barriers && Barrier.is(row)) {
          stop = "barrier"
          return i
        }
        const lane = router.lane(row)
        if (lane === undefined) {
          stop = "cut"
          return i
        }
        current = lane
        const index = rowIndex
        // one call per row: the lane says whether it took the row and whether its batch is now full
        const added = lane.add(row, index, clock, maxRows, maxBytes)
        if (added === REFUSED) {
          stop = "cut"
          return i
        }
        rowIndex++
        if (
          added === FULL ||
          (index % EventLoop.ROWS_PER_CHECK === EventLoop.ROWS_PER_CHECK - 1 &&
            (turns.due() || spent()))
        ) {
          stop = "pause"
          return i + 1
        }
      }
      stop = "done"
      return items.length
    }

    /**
     * `addRows` with a `RowEncodeError` naming the table of the row that failed; with a dead letter, the row is
     * refused instead (it keeps its stream index) and `stop` is `refused`: the next row is the one after it.
     */
    const addNaming = (items: ReadonlyArray<In>, from: number) => {
      const start = rowIndex
      try {
        return addRows(items, from)
      } catch (e) {
        if (deadLetter === undefined || !(e instanceof RowEncodeError) || current === undefined) throw named(e)
        // every item before the refused one in this call was added (anything else returns): this is its place
        const i = from + (rowIndex - start)
        refused(e, items[i])
        return i + 1
      }
    }
    const refused = (e: RowEncodeError, row: unknown, table = current!.key) => {
      deadLetter!.refuse(e, row, table)
      rowIndex++
      stop = "refused"
    }
    /** A new table's lane; with the dead letter, a row no table takes is refused (undefined) instead. */
    const createOrRefuse = (row: unknown): Effect.Effect<Lane | undefined, E, R> =>
      Effect.catchIf(
        router.create(row, rowIndex) as Effect.Effect<Lane | undefined, E, R>,
        (e) => e instanceof RowEncodeError,
        (e) =>
          Effect.zipRight(
            Effect.sync(() => refused(e as unknown as RowEncodeError, row, NO_TABLE)),
            Effect.as(deadLetter!.flush, undefined)
          )
      )
    const named = (e: unknown): unknown =>
      e instanceof RowEncodeError && e.table === undefined && current !== undefined
        ? new RowEncodeError({ row: e.row, column: e.column, reason: e.reason, table: current.key })
        : e

    // the locked way: rows from `from` on, with seals, turns, new tables and barriers as they come
    const lockedRows = (take: () => ReadonlyArray<In> | undefined, from: number) =>
      lock.withPermits(1)(Effect.gen(function*() {
        let items = take() ?? []
        let next = from
        // refusals of the lock-free way (it stopped at them) go first
        if (deadLetter !== undefined) yield* deadLetter.flush
        while (true) {
          yield* relieve
          yield* turns.maybe
          next = addNaming(items, next)
          if (stop === "done") break
          if (stop === "barrier") {
            yield* onBarrier!(items[next]!)
            next++
          } else if (stop === "cut") {
            const row: unknown = items[next]
            let lane = router.lane(row)
            if (lane === undefined) {
              const made = yield* (deadLetter === undefined ? router.create(row, rowIndex) : createOrRefuse(row))
              if (made === undefined) {
                // no table takes the row (byTag's unknown _tag): refused, with the dead letter
                next++
                continue
              }
              lane = made
            }
            current = lane
            yield* sealLane(lane)
            try {
              lane.addFresh(row, rowIndex, clock.unsafeCurrentTimeMillis())
              rowIndex++
            } catch (e) {
              if (deadLetter === undefined || !(e instanceof RowEncodeError)) throw named(e)
              refused(e, row)
              yield* deadLetter.flush
            }
            next++
          } else if (stop === "refused") {
            yield* deadLetter!.flush
          }
        }
        items = []
        yield* relieve
      }))

    // rows taken the lock-free way since the event loop's clock was last read: small chunks read it every
    // ROWS_PER_CHECK / 16 rows, not at every chunk
    let sinceCheck = 0
    const onChunk = (items: ReadonlyArray<In>) => {
      let from = 0
      if (wants === 0) {
        from = addNaming(items, 0)
        if (stop === "done") {
          sinceCheck += items.length
          if (sinceCheck < CHECK_EVERY) return Effect.void
          sinceCheck = 0
          if (!turns.due()) return Effect.void
        }
      }
      return lockedRows(Chunks.once(items), from)
    }

    const sealAll: Effect.Effect<void, E, R> = Effect.suspend(() =>
      Effect.forEach(Array.from(router.lanes()), sealLane, { discard: true })
    )

    const sealDue = (now: number, intervalMs: number): Effect.Effect<void, E, R> =>
      Effect.suspend(() =>
        Effect.forEach(
          Array.from(router.lanes()).filter((l) => l.rows() > 0 && now - l.firstRowAt() >= intervalMs),
          sealLane,
          { discard: true }
        )
      )

    const oldest = (): number | undefined => {
      let min: number | undefined
      for (const lane of router.lanes()) {
        if (lane.rows() > 0 && (min === undefined || lane.firstRowAt() < min)) min = lane.firstRowAt()
      }
      return min
    }

    const locked = <X, E2, R2>(effect: Effect.Effect<X, E2, R2>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => wants++),
        () => lock.withPermits(1)(effect),
        () => Effect.sync(() => wants--)
      )

    return { onChunk, sealAll, sealDue, oldest, locked, building, taken: () => rowIndex }
  })
