/**
 * The dead letter of both sinks (the `deadLetter` option, DeadLetter.ts): the user's sink runs in a fiber of the
 * sink's scope and takes the rejected rows through a bounded queue; per table, the rows refused and filtered are
 * counted against the budget.
 *
 * - Refused rows are recorded synchronously by the batcher (`refuse`, from its row loop's catch: no work on the
 *   rows that encode) and sent by `flush`, which the batcher runs before it takes the next row.
 * - Filtered rows are read from a landed load's error log (`filtered`); a load that StarRocks failed for too many
 *   filtered rows is over budget (`overRatio`).
 * - `sealed` checks the share of a sealed batch's rows the encoder refused against `maxFilterRatio`.
 * - `end` ends the dead-letter stream and waits for the sink; its failure is the stream's.
 */
import type { Scope } from "effect"
import { Cause, Chunk, Deferred, Effect, Exit, Fiber, Option, Queue, Stream, Take } from "effect"
import * as DeadLetter from "../../DeadLetter.js"
import type * as LoadClient from "../../LoadClient.js"
import type { RowEncodeError } from "../../RowEncodeError.js"
import type { StarRocksConfig } from "../../StarRocksConfig.js"
import type { Ledger } from "./ledger.js"

type Rejected = DeadLetter.Rejected

/** A load (its batch's table, `db.table`, and label), as the dead letter needs it. */
export interface Load {
  readonly table: string
  readonly label: string
}

export interface Runtime {
  /** Records a refused row (synchronous: the batcher's row loop). */
  readonly refuse: (error: RowEncodeError, row: unknown, table: string) => void
  /** Sends the recorded refusals; fails beyond `maxRows`. */
  readonly flush: Effect.Effect<void, DeadLetter.DeadLetterError>
  /** A batch of `rows` rows of `table` was sealed: the rows refused since the table's last seal are its share. */
  readonly sealed: (table: string, rows: number) => Effect.Effect<void, DeadLetter.DeadLetterError>
  /** A load landed with `filteredRows` filtered: its error log's rows go to the dead letter. */
  readonly filtered: (
    load: Load,
    result: { readonly filteredRows: number; readonly errorUrl?: string | undefined }
  ) => Effect.Effect<void, DeadLetter.DeadLetterError>
  /** A load's failure for too many filtered rows, as the dead letter's `OverBudget` (else the error as it is). */
  readonly overRatio: <E>(load: Load, error: E) => E | DeadLetter.DeadLetterError
  /** Ends the dead-letter stream (after a last check of every table's refusals) and waits for the sink. */
  readonly end: Effect.Effect<void, DeadLetter.DeadLetterError>
}

const invalid = (detail: string) => new DeadLetter.DeadLetterError({ reason: "Invalid", detail })

/**
 * The config with the `max_filter_ratio` the dead letter sends (`maxFilterRatio`, else the config's, else 1), or
 * an `Invalid` error for a budget out of range or a ratio given twice.
 */
export const configure = (
  config: StarRocksConfig,
  options: DeadLetter.Options
): Effect.Effect<StarRocksConfig, DeadLetter.DeadLetterError> =>
  Effect.suspend(() => {
    const { maxFilterRatio, maxRows } = options
    if (maxRows !== undefined && !(Number.isInteger(maxRows) && maxRows >= 0)) {
      return Effect.fail(invalid(`maxRows must be a whole number of rows, 0 or more (got ${maxRows})`))
    }
    if (maxFilterRatio !== undefined && !(maxFilterRatio >= 0 && maxFilterRatio <= 1)) {
      return Effect.fail(invalid(`maxFilterRatio must be between 0 and 1 (got ${maxFilterRatio})`))
    }
    const given = Object.keys(config.properties).find((k) => k.toLowerCase() === "max_filter_ratio")
    if (given !== undefined && maxFilterRatio !== undefined) {
      return Effect.fail(invalid(
        `max_filter_ratio is given twice: sink.properties.${given}=${config.properties[given]} and the dead ` +
          `letter's maxFilterRatio ${maxFilterRatio}; give one`
      ))
    }
    if (given !== undefined) return Effect.succeed(config)
    return Effect.succeed({
      ...config,
      properties: { ...config.properties, max_filter_ratio: String(maxFilterRatio ?? 1) }
    })
  })

interface Counts {
  refused: number
  filtered: number
  /** Refused since the table's last seal. */
  sinceSeal: number
}

export const make = (
  options: DeadLetter.Options,
  ledger: Ledger,
  client: LoadClient.LoadClient
): Effect.Effect<Runtime, never, Scope.Scope> =>
  Effect.gen(function*() {
    const maxRows = options.maxRows ?? Number.POSITIVE_INFINITY
    const ratio = options.maxFilterRatio
    const queue = yield* Queue.bounded<Take.Take<Rejected>>(16)
    // fails when the dead-letter sink fails, or ends before `end`
    const broken = yield* Deferred.make<never, DeadLetter.DeadLetterError>()
    let ending = false
    const fiber = yield* Stream.fromQueue(queue).pipe(
      Stream.flattenTake,
      Stream.run(options.sink),
      Effect.onExit((exit) => ending && Exit.isSuccess(exit) ? Effect.void : Deferred.fail(broken, sinkFailed(exit))),
      Effect.forkScoped
    )
    const sinkFailed = (exit: Exit.Exit<unknown, unknown>) =>
      new DeadLetter.DeadLetterError({
        reason: "SinkFailed",
        detail: Exit.isSuccess(exit)
          ? "the dead-letter sink ended before the stream: it takes no more rejected rows"
          : `the dead-letter sink failed: ${Cause.pretty(exit.cause).split("\n")[0]}`,
        ...(Exit.isFailure(exit) ? { error: Cause.squash(exit.cause) } : {})
      })
    const send = (records: ReadonlyArray<Rejected>) =>
      records.length === 0
        ? Effect.void
        : Effect.raceFirst(Queue.offer(queue, Take.chunk(toChunk(records))), Deferred.await(broken))

    const counts = new Map<string, Counts>()
    const countsOf = (table: string) => {
      let c = counts.get(table)
      if (c === undefined) {
        c = { refused: 0, filtered: 0, sinceSeal: 0 }
        counts.set(table, c)
      }
      return c
    }
    const overBudget = (table: string, c: Counts, detail: string) =>
      new DeadLetter.DeadLetterError({
        reason: "OverBudget",
        table,
        refusedRows: c.refused,
        filteredRows: c.filtered,
        detail
      })
    const checkRows = (table: string, c: Counts) =>
      c.refused + c.filtered > maxRows
        ? Effect.fail(overBudget(
          table,
          c,
          `${c.refused + c.filtered} rows rejected (${c.refused} refused by the encoder, ${c.filtered} filtered by ` +
            `StarRocks), more than the dead letter's maxRows ${maxRows}`
        ))
        : Effect.void

    let refusals: Array<DeadLetter.Refused> = []
    const refuse = (error: RowEncodeError, row: unknown, table: string) => {
      refusals.push(
        new DeadLetter.Refused({ table, index: error.row, column: error.column, reason: error.reason, row })
      )
    }

    const flush: Effect.Effect<void, DeadLetter.DeadLetterError> = Effect.suspend(() => {
      const records = refusals
      if (records.length === 0) return Effect.void
      refusals = []
      const tables = new Map<string, number>()
      for (const r of records) tables.set(r.table, (tables.get(r.table) ?? 0) + 1)
      // sent first, then checked: a row over the budget has its place too (the stream then fails)
      return Effect.gen(function*() {
        yield* send(records)
        for (const [table, n] of tables) {
          const c = countsOf(table)
          c.refused += n
          c.sinceSeal += n
          yield* ledger.deadLettered(table, n)
        }
        for (const [table] of tables) yield* checkRows(table, countsOf(table))
      })
    })

    const checkShare = (table: string, c: Counts, rows: number) => {
      const refused = c.sinceSeal
      c.sinceSeal = 0
      if (ratio === undefined || refused === 0 || refused / (rows + refused) <= ratio) return Effect.void
      return Effect.fail(overBudget(
        table,
        c,
        `the encoder refused ${refused} of a batch's ${rows + refused} rows, more than the dead letter's ` +
          `maxFilterRatio ${ratio}`
      ))
    }

    const sealed = (table: string, rows: number) =>
      Effect.zipRight(flush, Effect.suspend(() => checkShare(table, countsOf(table), rows)))

    const filtered = (
      load: Load,
      result: { readonly filteredRows: number; readonly errorUrl?: string | undefined }
    ) =>
      Effect.gen(function*() {
        const n = result.filteredRows
        if (n <= 0) return
        const log: LoadClient.ErrorLogEntries = result.errorUrl === undefined
          ? { entries: [], unavailable: "the load reported no ErrorURL" }
          : client.errorLogEntries === undefined
          ? { entries: [], unavailable: "the LoadClient reads no error logs" }
          : yield* client.errorLogEntries(result.errorUrl)
        const records: Array<Rejected> = log.entries.map((e) =>
          new DeadLetter.Filtered({
            table: load.table,
            label: load.label,
            reason: e.reason,
            text: e.text,
            ...(e.column !== undefined ? { column: e.column } : {})
          })
        )
        if (records.length < n) {
          records.push(
            new DeadLetter.Unlisted({
              table: load.table,
              label: load.label,
              rows: n - records.length,
              reason: log.unavailable !== undefined
                ? `filtered by StarRocks; the error log could not be read: ${log.unavailable}`
                : "filtered by StarRocks; the error log lists no more rows (StarRocks lists at most about 50 per load)"
            })
          )
        }
        yield* send(records)
        const c = countsOf(load.table)
        c.filtered += n
        yield* ledger.deadLettered(load.table, n)
        yield* checkRows(load.table, c)
      })

    const overRatio = <E>(load: Load, error: E): E | DeadLetter.DeadLetterError => {
      const e = error as { _tag?: unknown; message?: unknown; filteredRows?: unknown; errorLog?: unknown }
      if (e._tag !== "StreamLoadError" && e._tag !== "TransactionError") return error
      if (typeof e.message !== "string" || !/too many filtered rows/i.test(e.message)) return error
      const c = countsOf(load.table)
      const n = typeof e.filteredRows === "number" ? e.filteredRows : undefined
      return overBudget(
        load.table,
        c,
        `StarRocks failed load ${load.label} for too many filtered rows` +
          `${n !== undefined ? ` (${n})` : ""}, more than max_filter_ratio allows; no row of it landed` +
          `${typeof e.errorLog === "string" && e.errorLog !== "" ? `; its error log: ${e.errorLog}` : ""}`
      )
    }

    const end: Effect.Effect<void, DeadLetter.DeadLetterError> = Effect.gen(function*() {
      yield* flush
      for (const [table, c] of counts) yield* checkShare(table, c, 0)
      ending = true
      yield* Effect.raceFirst(Queue.offer(queue, Take.end), Deferred.await(broken))
      const exit = yield* Fiber.await(fiber)
      if (Exit.isFailure(exit)) return yield* Effect.fail(sinkFailed(exit))
      // it ended before it was told to (it took fewer rows than it was given)
      const early = yield* Deferred.poll(broken)
      if (early !== undefined && Option.isSome(early)) return yield* early.value
    })

    return { refuse, flush, sealed, filtered, overRatio, end }
  })

const toChunk = <A>(records: ReadonlyArray<A>) => Chunk.unsafeFromArray(records)
