/**
 * The StarRocks sink: an Effect `Sink` that encodes rows into Stream Load batches and lands them, into one table or
 * many, from typed rows, change rows (`Change`) or pre-serialized records.
 *
 * ```ts
 * const summary = yield* Stream.run(rows, StarRocksSink.make(Row)).pipe(Effect.provide(StarRocksSink.layer(config)))
 * ```
 *
 * A row's way: the batcher (internal/sink/batcher.ts) hands it to its table's lane (internal/sink/lane.ts), which
 * encodes it into the batch it is building; sealed batches go to the dispatcher (internal/sink/dispatcher.ts), which
 * loads them through the `LoadClient` within the byte budget and the in-flight limit; the ledger
 * (internal/sink/ledger.ts) records labels, metrics and the summary. The exactly-once sink uses the same batcher and
 * ledger, with transactions instead of the dispatcher.
 *
 * @since 0.1.0
 */
import type { Option, Schema } from "effect"
import { Cause, Channel, Context, Duration, Effect, Fiber, Layer, MergeDecision, Option as Opt, Sink } from "effect"
import type * as Change from "./Change.js"
import type * as Checkpoint from "./Checkpoint.js"
import type * as Checkpointer from "./Checkpointer.js"
import type * as DeadLetter from "./DeadLetter.js"
import * as Chunks from "./internal/chunks.js"
import * as ExactlyOnce from "./internal/exactlyOnce.js"
import * as InternalLanded from "./internal/landed.js"
import * as Batcher from "./internal/sink/batcher.js"
import * as DeadLetterRuntime from "./internal/sink/deadLetter.js"
import * as Dispatcher from "./internal/sink/dispatcher.js"
import * as Ledger from "./internal/sink/ledger.js"
import * as RawLane from "./internal/sink/rawLane.js"
import * as InternalRouting from "./internal/sink/routing.js"
import * as Watchdog from "./internal/sink/watchdog.js"
import * as Startup from "./internal/startup.js"
import * as LabelStore from "./LabelStore.js"
import * as LoadClient from "./LoadClient.js"
import { RowEncodeError } from "./RowEncodeError.js"
import * as StarRocksConfig from "./StarRocksConfig.js"
import type { Landed, SinkError } from "./StarRocksError.js"
import { ExactlyOnceError } from "./StarRocksError.js"
import * as StartupCheck from "./StartupCheck.js"

/**
 * A table's share of a summary.
 *
 * @since 0.2.0
 * @category models
 */
export interface TableSummary {
  /** Rows sent in loads that landed. */
  readonly rows: number
  /** Body bytes of loads that landed (before compression). */
  readonly bytes: number
  /**
   * Body bytes of loads that landed as sent: after compression (`sink.properties.compression`), else equal to
   * `bytes`.
   */
  readonly sentBytes: number
  /** Loads that landed. */
  readonly loads: number
  /** Attempts beyond the first, over all loads (each retried under its batch's own label). */
  readonly retries: number
  /** Rows StarRocks filtered (`NumberFilteredRows`, allowed by `max_filter_ratio`). */
  readonly filteredRows: number
  /** Rows sent to the dead letter (refused by the encoder or filtered by StarRocks); only with `deadLetter`. */
  readonly deadLetteredRows?: number
}

/**
 * What a finished sink reports: the totals, and each table's share (`tables`, by `db.table`).
 *
 * @since 0.1.0
 * @category models
 */
export interface SinkSummary extends TableSummary {
  readonly tables: Readonly<Record<string, TableSummary>>
}

/**
 * What a sink knows of one table. Every field is optional: the database and table default to the config's
 * (`database-name`, `table-name`), the format and `sink.properties.*` too (the table's own properties are merged
 * over the config's).
 *
 * @since 0.2.0
 * @category models
 */
export interface TableOptions extends InternalRouting.TableOptions {}

/**
 * What a sink takes beside its tables' options.
 *
 * @since 0.2.0
 * @category models
 */
export interface SinkOptions {
  /**
   * Rows the encoder refuses and rows StarRocks filters go to this dead letter, within its budget, instead of
   * failing the stream (`DeadLetter`). Without it every rejected row fails the stream.
   */
  readonly deadLetter?: DeadLetter.Options | undefined
}

/**
 * Adaptive concurrency of the at-least-once sink (`make`): `true`, or the limit at start and its max. Each
 * table that is not ordered gets a limit of loads in flight that grows by one per round-trip time while its
 * throughput (loads in flight over round-trip time) rises, shrinks (× 0.9) when latency rises as throughput
 * falls, and falls at once, to below the loads in flight that met it, on the answers "too many versions",
 * TXN_IN_PROCESSING, a memory limit and timeouts; above the level that back pressure left, it probes with one
 * load at a time. An ordered (Primary Key) table keeps one load in flight. See docs/configuration.md, "Adaptive
 * concurrency".
 *
 * @since 0.3.0
 * @category models
 */
export interface AdaptiveConcurrencyOptions {
  /** The limit at start (default 1). */
  readonly initial?: number | undefined
  /** The highest limit (default and at most `sink.io.thread-count`). */
  readonly max?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MakeOptions extends TableOptions, SinkOptions {
  /**
   * Adaptive concurrency (`false` turns off what the config's `sink.adaptive-concurrency.enabled` turns on);
   * absent: as the config says.
   */
  readonly adaptiveConcurrency?: boolean | AdaptiveConcurrencyOptions | undefined
}

/** The adaptive settings of a sink: its own option over the config's; a bad value is a `StarRocksConfigError`. */
const adaptiveOf = (
  config: StarRocksConfig.StarRocksConfig,
  option: MakeOptions["adaptiveConcurrency"]
): Effect.Effect<
  { readonly initial: number; readonly max: number } | undefined,
  StarRocksConfig.StarRocksConfigError
> =>
  Effect.suspend(() => {
    if (option === undefined) return Effect.succeed(config.adaptiveConcurrency)
    if (option === false) return Effect.succeed(undefined)
    const given = option === true ? {} : option
    const ceiling = config.ioThreadCount
    const max = given.max ?? config.adaptiveConcurrency?.max ?? ceiling
    const initial = given.initial ?? Math.min(config.adaptiveConcurrency?.initial ?? 1, max)
    const bad = (key: string, reason: string, allowed: string) =>
      Effect.fail(StarRocksConfig.StarRocksConfigError.fromProblems([{ key, reason, allowed }]))
    if (!Number.isSafeInteger(max) || max < 1 || max > ceiling) {
      return bad(
        "adaptiveConcurrency.max",
        `${max} is not within 1 and ioThreadCount (${ceiling}), the ceiling of loads in flight`,
        `[1, ${ceiling}]`
      )
    }
    if (!Number.isSafeInteger(initial) || initial < 1 || initial > max) {
      return bad("adaptiveConcurrency.initial", `${initial} is not within 1 and the max (${max})`, `[1, ${max}]`)
    }
    return Effect.succeed({ initial, max })
  })

/**
 * @since 0.1.0
 * @category errors
 */
export type { SinkError }

export {
  /**
   * A failure of the exactly-once protocol that is not a plain load error (`reason`: `PreparedLost`,
   * `LabelCollision`, `CommitFailed`, `Spool`, `Unsupported`, `Position`, `Coordinator`).
   *
   * @since 0.1.0
   * @category errors
   */
  ExactlyOnceError
}

/**
 * The services a sink runs on.
 *
 * @since 0.1.0
 * @category models
 */
export type Services =
  | StarRocksConfig.StarRocksConfig
  | LoadClient.LoadClient
  | LabelStore.LabelStore

const labelPart = (s: string): string => s.replace(/[^-\w]/g, "_")

const randomId = (): string => Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, "0")

/**
 * Builds the label of the `seq`-th batch of a table in a sink run: `{prefix}-{table}-{instance}-{seq}`, always
 * matching StarRocks' `^[-\w]{1,128}$`. Every table has its own label space.
 *
 * @since 0.1.0
 * @category labels
 */
export const batchLabel = (prefix: string, table: string, instance: string, seq: number): string => {
  const tail = `-${instance}-${seq}`
  const head = `${labelPart(prefix)}-${labelPart(table)}`
  return head.slice(0, 128 - tail.length) + tail
}

// -----------------------------------------------------------------------------
// routing
// -----------------------------------------------------------------------------

const RoutingTypeId: unique symbol = Symbol.for("@effect-starrocks/sink/StarRocksSink/Routing")

/**
 * Where a sink's items go: one table (a schema), a tagged union of tables (`byTag`), tables chosen by a function of
 * the row (`byRoute`), or pre-serialized records (`raw`). `In` is what the sink takes.
 *
 * @since 0.2.0
 * @category models
 */
export interface Routing<In> {
  readonly [RoutingTypeId]: InternalRouting.Routing<In>
}

const routing = <In>(r: InternalRouting.Routing<In>): Routing<In> => ({ [RoutingTypeId]: r })

const isRouting = (u: unknown): u is Routing<unknown> => typeof u === "object" && u !== null && RoutingTypeId in u

/**
 * A table of a tagged union (for `byTag`): its row schema (a `Schema.TaggedStruct`) and options.
 *
 * @since 0.2.0
 * @category models
 */
export interface Table<A> {
  readonly schema: Schema.Schema<A, any, never>
  readonly options: TableOptions
}

/**
 * @since 0.2.0
 * @category constructors
 */
export const table = <A, I>(schema: Schema.Schema<A, I, never>, options?: TableOptions): Table<A> => ({
  schema,
  options: options ?? {}
})

/**
 * The row type of a record of tables.
 *
 * @since 0.2.0
 * @category models
 */
export type RowOf<T extends Record<string, Table<any>>> = {
  [K in keyof T]: T[K] extends Table<infer A> ? A : never
}[keyof T]

/**
 * Many tables, one per member of a tagged union: each row's `_tag` names its table's key in `tables` (and, unless
 * its options say another, the table's name). Every table has its own buffer, label space, encoder, ordering and
 * `sink.properties.*`; all share one memory bound and one in-flight limit. With `jdbc-url`, each table is checked
 * at start. `_tag` is not sent.
 *
 * ```ts
 * const Order = Schema.TaggedStruct("orders", { id: ColumnType.BigInt, amount: Schema.Number })
 * const User = Schema.TaggedStruct("users", { id: ColumnType.BigInt, name: Schema.String })
 * const sink = StarRocksSink.make(StarRocksSink.byTag({
 *   orders: StarRocksSink.table(Order, { primaryKey: ["id"] }),
 *   users: StarRocksSink.table(User)
 * }))
 * ```
 *
 * @since 0.2.0
 * @category routing
 */
export const byTag = <T extends Record<string, Table<any>>>(
  tables: T
): Routing<RowOf<T> | Change.Change<RowOf<T>>> => routing(InternalRouting.tagged(tables))

/**
 * Many tables that share one schema, chosen by a function of the row (a table per tenant, say): it returns a table
 * name (in `options.database`, else the config's database) or `{ database, table }`. For a change it gets the row,
 * the key of a delete, or the columns of a partial update. Tables appear while the stream runs; with `jdbc-url`
 * each is checked when it first appears. `options` apply to every table.
 *
 * @since 0.2.0
 * @category routing
 */
export const byRoute = <A, I>(
  schema: Schema.Schema<A, I, never>,
  route: (row: A) => string | { readonly database?: string | undefined; readonly table: string },
  options?: TableOptions
): Routing<A | Change.Change<A>> => routing(InternalRouting.byFunction(schema, route, options ?? {}))

/**
 * @since 0.2.0
 * @category models
 */
export interface RawOptions
  extends Omit<TableOptions, "format" | "primaryKey" | "mergeCondition" | "partialUpdateMode">
{
  /** `json`: each record is one JSON object; `csv`: each record is one CSV line (without its row delimiter). */
  readonly format: "csv" | "json"
}

/**
 * Pre-serialized records (strings or UTF-8 bytes), with no schema: JSON objects or CSV lines, batched, labelled,
 * retried and counted like rows. A record that is not one line of its format (a CSV record holding the row
 * delimiter, JSON that is not one object) is a `RowEncodeError` naming the record, and its batch is never sent.
 * CSV records are sent as they are: give `columns` and the table's separators (`properties.column_separator`) when
 * they are not the defaults.
 *
 * @since 0.2.0
 * @category routing
 */
export const raw = (options: RawOptions): Routing<string | Uint8Array> => routing(RawLane.routing(options))

// -----------------------------------------------------------------------------
// at-least-once
// -----------------------------------------------------------------------------

/** The errors that carry `landed` (StarRocksError.Landed). */
const withLandedField = new Set([
  "TransportError",
  "RedirectError",
  "StreamLoadError",
  "AuthError",
  "LabelStateTimeout",
  "TransactionError",
  "RowEncodeError",
  "StallError",
  "DeadLetterError"
])

/** The error with what landed: its `landed` field, and its message ends with it (set once). */
const withLanded = (error: SinkError, landed: Landed): SinkError => {
  if (!withLandedField.has(error._tag) || (error as { landed?: unknown }).landed !== undefined) return error
  try {
    // a message that is a field (the server's words) gets the sentence appended; a computed one adds it itself
    const ownMessage = Object.prototype.hasOwnProperty.call(error, "message")
      ? error.message + InternalLanded.suffix(landed)
      : undefined
    Object.defineProperty(error, "landed", { value: landed, enumerable: true, writable: true, configurable: true })
    if (ownMessage !== undefined) {
      Object.defineProperty(error, "message", {
        value: ownMessage,
        enumerable: true,
        writable: true,
        configurable: true
      })
    }
  } catch {
    // a frozen error keeps its own words (the report is logged all the same)
  }
  return error
}

const routingOf = <A>(
  target: Schema.Schema<A, any, any> | Routing<any>,
  options: (TableOptions & SinkOptions) | undefined
): InternalRouting.Routing<any> => {
  if (isRouting(target)) return target[RoutingTypeId]
  const { adaptiveConcurrency: _a, deadLetter: _, ...table } = (options ?? {}) as MakeOptions
  return InternalRouting.single(target as Schema.Schema<A, any, any>, table)
}

/**
 * The at-least-once sink. Rows are encoded as they arrive (CSV by the safe recipe, or JSON), cut into batches per
 * table by `sink.buffer-flush.max-rows`, `max-bytes` and `interval-ms`, and loaded by Stream Load with at most
 * `sink.io.thread-count` loads in flight (one per ordered table). Bytes being built plus bytes sealed and not yet
 * landed never exceed twice `max-bytes` (plus one upstream chunk): beyond that the upstream waits. When the stream
 * ends the last batches are loaded and the summary returned. Every batch keeps its label across retries, and every
 * label is recorded in the `LabelStore` before its first attempt.
 *
 * When the sink fails for good (a bad row, a load that failed for good, the upstream's failure), nothing more is
 * sealed, the batches sealed before get the drain deadline (`labelStateTimeout` + 30 s) to land, what is still in
 * flight then is stopped and its label's state read, and the error's `landed` field (and its message) says, per
 * table, up to which stream row every row has landed and which labels landed, failed or are in doubt (an
 * upstream's error is not the sink's to change: there the same report is logged).
 *
 * With `watchdogTimeout` (`sink.watchdog.timeout-ms`) the sink fails with a `StallError` when rows wait and no load
 * of their table has landed for that long (internal/sink/watchdog.ts); the `secondsSinceLastLoad` gauge is kept
 * either way.
 *
 * With adaptive concurrency (`sink.adaptive-concurrency.enabled`, or `options.adaptiveConcurrency` over it) each
 * table that is not ordered has a limit of loads in flight moved by AIMD between 1 and its max (at most
 * `sink.io.thread-count`), lowered by "too many versions", TXN_IN_PROCESSING, memory-limit and timeout answers and
 * by latency that rises as throughput falls (internal/sink/adaptive.ts; the `adaptiveConcurrencyLimit` gauge). A bad value of the option
 * is a `StarRocksConfigError` before any load.
 *
 * Before the first row, the startup check (`sink.startup-check`, see `startupCheck`) looks every table up on an
 * FE (a table routed by function when it first appears, while its rows are added: its first load waits for the
 * answer) and checks the settings against the server version.
 *
 * `target` is a row schema (one table: the config's, or the one `options` names) or a routing (`byTag`, `byRoute`,
 * `raw`). A schema sink takes rows and `Change` values. With `options.deadLetter`, rows the encoder refuses and rows
 * StarRocks filters go to that sink within its budget instead of failing the stream (`DeadLetter`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: {
  <In>(
    target: Routing<In>,
    options?: SinkOptions & Pick<MakeOptions, "adaptiveConcurrency">
  ): Sink.Sink<SinkSummary, In, never, SinkError, Services>
  <A, I, R>(
    schema: Schema.Schema<A, I, R>,
    options?: MakeOptions
  ): Sink.Sink<SinkSummary, A | Change.Change<A>, never, SinkError, Services>
} = (target: Schema.Schema<any, any, any> | Routing<any>, options?: MakeOptions) =>
  Sink.unwrapScoped(Effect.gen(function*() {
    const config = yield* StarRocksConfig.StarRocksConfig
    const client = yield* LoadClient.LoadClient
    const labels = yield* LabelStore.LabelStore
    const clock = yield* Effect.clock

    const routing = routingOf(target, options)
    // an option this sink would ignore (sink.semantic=exactly-once, say) is an error, not a silent no-op
    yield* StarRocksConfig.checkUse(config, { semantic: "at-least-once", raw: routing.describe === "raw" })
    const deadLetterOptions = options?.deadLetter
    // the startup check (internal/startup.ts): every known table now, a table that appears later when it does
    const router = yield* Startup.guard(
      yield* routing.build(
        deadLetterOptions === undefined ? config : yield* DeadLetterRuntime.configure(config, deadLetterOptions)
      ),
      { config, semantic: "at-least-once", checkTable: client.checkTable }
    )
    const ledger = Ledger.make(labels, clock, { deadLetter: deadLetterOptions !== undefined })
    for (const lane of router.lanes()) ledger.touch(lane.key)
    const deadLetter = deadLetterOptions === undefined
      ? undefined
      : yield* DeadLetterRuntime.make(deadLetterOptions, ledger, client)
    const instance = randomId()
    const adaptive = yield* adaptiveOf(config, options?.adaptiveConcurrency)
    const dispatcher = yield* Dispatcher.make({
      client,
      ledger,
      clock,
      maxBytes: config.maxBytes,
      concurrency: config.ioThreadCount,
      transactional: config.useTransactionStreamLoad,
      label: (sealed) => batchLabel(config.labelPrefix, sealed.lane.settings.table, instance, sealed.seq),
      drainDeadline: Duration.sum(config.labelStateTimeout, Duration.seconds(30)),
      deadLetter,
      adaptive
    })
    const batcher = yield* Batcher.make<unknown, SinkError, never>({
      router,
      maxRows: config.maxRows,
      maxBytes: config.maxBytes,
      clock,
      onSeal: (sealed) => {
        ledger.touch(sealed.lane.key)
        const dispatch = Effect.zipRight(router.ready(sealed.lane), dispatcher.dispatch(sealed))
        return deadLetter === undefined
          ? dispatch
          : Effect.zipRight(deadLetter.sealed(sealed.lane.key, sealed.rows), dispatch)
      },
      deadLetter
    })

    // a failure of the interval timer (a seal that died) ends the sink with it
    let timerFailure: Cause.Cause<SinkError> | undefined
    let timer: Fiber.RuntimeFiber<void> | undefined
    const intervalMs = Duration.toMillis(config.flushInterval)
    if (intervalMs > 0) {
      timer = yield* Effect.gen(function*() {
        while (true) {
          const oldest = batcher.oldest()
          const wait = oldest === undefined
            ? intervalMs
            : Math.max(1, oldest + intervalMs - clock.unsafeCurrentTimeMillis())
          yield* Effect.sleep(Duration.millis(wait))
          yield* batcher.locked(Effect.suspend(() => batcher.sealDue(clock.unsafeCurrentTimeMillis(), intervalMs)))
        }
      }).pipe(
        Effect.catchAllCause((cause) =>
          Effect.sync(() => {
            if (!Cause.isInterruptedOnly(cause)) timerFailure = cause
          })
        ),
        Effect.forkScoped
      )
    }

    // liveness: the secondsSinceLastLoad gauge, and the watchdog when sink.watchdog.timeout-ms is set
    // (a config put together by hand, before the option existed, may lack the field: no watchdog then)
    const watchdogMs = Opt.isOption(config.watchdogTimeout)
      ? Opt.getOrUndefined(Opt.map(config.watchdogTimeout, Duration.toMillis))
      : undefined
    const watchdog = yield* Watchdog.make({
      ledger,
      clock,
      lanes: () => router.lanes(),
      intervalMs,
      timeoutMs: watchdogMs
    })

    // A failure for good: the timer stops and the batches being built are dropped (nothing more is sealed), the
    // sealed ones get the drain deadline to land (not after a stall: they are what stalled), what is left in flight
    // is settled through get_load_state, and the ledger says what landed.
    let reported = false
    const stopAndReport = (drain: boolean) =>
      Effect.gen(function*() {
        reported = true
        if (timer !== undefined) yield* Fiber.interrupt(timer)
        const building = new Map<string, number>()
        for (const lane of router.lanes()) {
          const first = lane.firstRowIndex()
          if (first >= 0) building.set(lane.key, first)
          lane.discard()
        }
        yield* drain ? dispatcher.settleWithin : dispatcher.settle
        // the rows already refused or filtered still reach the dead letter (its own failure is the sink's)
        if (deadLetter !== undefined) yield* Effect.ignore(Effect.timeout(deadLetter.end, Duration.seconds(30)))
        const landed = ledger.whatLanded(building, batcher.taken())
        yield* Effect.logError(`at-least-once sink failed${InternalLanded.suffix(landed)}`).pipe(
          Effect.annotateLogs({ landed })
        )
        return landed
      })
    const failed = (error: SinkError): Effect.Effect<never, SinkError> =>
      reported ?
        Effect.fail(error) :
        Effect.flatMap(stopAndReport(error._tag !== "StallError"), (landed) => Effect.fail(withLanded(error, landed)))
    const encodeFailure = (defect: unknown) =>
      defect instanceof RowEncodeError ? Effect.fail(defect) : Effect.die(defect)

    // interrupted: loads still in flight are stopped at once and their labels settled through get_load_state, so
    // none is left under an unknown label; failed upstream: as for the sink's own failures (the report is logged)
    yield* Effect.addFinalizer((exit) =>
      exit._tag === "Success"
        ? Effect.void
        : reported || Cause.isInterruptedOnly(exit.cause)
        ? dispatcher.settle
        : Effect.asVoid(stopAndReport(true))
    )

    // once the watchdog has tripped, the sink's own side waits: the watchdog's side fails with the report (stopping
    // the loads lets a drain end early, which must not read as success)
    let stalled = false
    const onChunk = (rows: ReadonlyArray<unknown>): Effect.Effect<void, SinkError> => {
      if (stalled) return Effect.never
      const failure = dispatcher.failure()
      if (failure !== undefined) return failed(failure)
      if (timerFailure !== undefined) return Effect.catchAll(Effect.failCause(timerFailure), failed)
      let effect: Effect.Effect<void, SinkError>
      try {
        effect = batcher.onChunk(rows)
      } catch (e) {
        if (e instanceof RowEncodeError) return failed(e)
        throw e
      }
      // the lock-free way returns Effect.void: nothing to wrap (one-row chunks stay cheap)
      return effect === Effect.void
        ? effect
        : effect.pipe(Effect.catchAllDefect(encodeFailure), Effect.catchAll(failed))
    }

    const finish = Effect.gen(function*() {
      if (timerFailure !== undefined) return yield* Effect.failCause(timerFailure)
      yield* batcher.locked(batcher.sealAll)
      yield* dispatcher.drain
      if (stalled) return yield* Effect.never
      if (deadLetter !== undefined) yield* deadLetter.end
      return ledger.summary() as SinkSummary
    }).pipe(Effect.catchAll(failed))

    const sink = Chunks.forEachChunk(onChunk).pipe(Sink.mapEffect(() => finish))
    if (watchdogMs === undefined) return sink
    // the watchdog runs beside the sink (it takes no input): its StallError ends the sink even while the upstream
    // or a load keeps it waiting
    const stall = Channel.fromEffect(Effect.catchAll(watchdog.stalled, (error) => {
      stalled = true
      return failed(error)
    }))
    return Sink.fromChannel(Channel.mergeWith(Sink.toChannel(sink), {
      other: stall,
      onSelfDone: (exit) => MergeDecision.Done(exit),
      onOtherDone: (exit) => MergeDecision.Done(exit)
    }))
  })) as any

/**
 * The startup check on its own, as the sinks run it before their first row (they need no call to it): the config's
 * settings against the server version when it is known (`sink.server-version`: `UnsupportedByServerError`), and,
 * unless `sink.startup-check` is false, one `GET /api/{db}/{table}/_schema` per table (default: the config's table)
 * through the `LoadClient`, which tells whether an FE answers, the credentials work and the table exists
 * (`StartupCheckError`). For loaders that call the `LoadClient` themselves (the CLI's `load`), which import it from
 * `StartupCheck` (the same function) so as not to evaluate this module's.
 *
 * @since 0.3.0
 * @category constructors
 */
export const startupCheck: typeof StartupCheck.startupCheck = StartupCheck.startupCheck

/**
 * The sink's services for a configuration: the `node:http` LoadClient and the LabelStore in memory. Swap either by
 * merging your own layer after this one (`Layer.merge(StarRocksSink.layer(config), yours)`: the right one wins).
 *
 * It provides no `Checkpointer`: `exactlyOnce` and `recover` need a durable one (`Checkpointer/FileSystem`,
 * `Checkpointer/Sql`), given by you, in any order; without one the program does not type-check. Tests may give
 * `Checkpointer.layerMemoryForTests` by name.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  config: StarRocksConfig.StarRocksConfig
): Layer.Layer<Services> =>
  Layer.mergeAll(LoadClient.layer(config), LabelStore.layerMemory).pipe(
    Layer.provideMerge(StarRocksConfig.layerFrom(config))
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface ExactlyOnceOptions<P, PI, E = never, R = never> extends TableOptions, SinkOptions {
  /** Encodes barrier positions into the checkpoint record (and decodes the recorded one at recovery). */
  readonly position: Schema.Schema<P, PI>
  /**
   * Run by the sink once per committed checkpoint (commit your source's offsets here): after the checkpoint's
   * transactions are committed and its barrier's ack is completed, in checkpoint order, one at a time, never for a
   * checkpoint that did not commit; a barrier with nothing to save (it repeats the previous checkpoint id) gets no
   * call. First, at start, on the checkpoint recovery found (`ack.recovered`: its commit may have come after the
   * previous run's last call). Its failure fails the sink with `Checkpoint.OnCheckpointError` (its `cause`: your
   * error), and interrupting the sink interrupts it. The next barrier's checkpoint waits for it (backpressure): give
   * it a deadline if it can hang. Its error and requirements are the sink's. `recover` does not call it. See
   * docs/exactly-once.md, "onCheckpoint".
   *
   * @since 0.5.0
   */
  readonly onCheckpoint?: ((ack: Checkpoint.Ack<P>) => Effect.Effect<void, E, R>) | undefined
  /** Default "0"; part of the labels and of the checkpoint key. Give every parallel sink its own. */
  readonly instance?: string
  /** Default `${labelPrefix}-${db}.${table}-${instance}` (the config's default table, however many tables). */
  readonly checkpointKey?: string
  /**
   * The label path (`sink.version` V1) only: the directory of the durable batch spool; it must survive restarts.
   * Default `{os.tmpdir()}/effect-starrocks-spool/{checkpointKey}`.
   */
  readonly spoolDirectory?: string
  /** Aligned checkpoints across instances in one process (`Checkpoint.coordinator(n)`). */
  readonly coordinator?: Checkpoint.Coordinator
  /**
   * Recovery skips a last checkpoint whose prepared transactions StarRocks aborted or forgot (`prepared_timeout`
   * passed, label retention, a rollback by hand): its other transactions are committed and a warning names the
   * lost labels; the rows of those are NOT in StarRocks. Default: the config's
   * `sink.exactly-once.skip-lost-checkpoint`, else false (recovery fails with `ExactlyOnceError` `PreparedLost`).
   * See docs/exactly-once.md, "Restart policy".
   */
  readonly skipLostCheckpoint?: boolean
  /**
   * The longest time between two barriers (e.g. `Checkpoint.withBarriers`' `every`): at start the sink warns when
   * it is at or above 80% of the `timeout` or `prepared_timeout` it sends, or of `sink.label-keep-max-second`.
   */
  readonly checkpointInterval?: Duration.DurationInput
  /**
   * The owner of `checkpointKey` (a process, a runner: any stable, unique name). With it the sink claims the key at
   * start (`Checkpointer.claim`: a new epoch; after a `recover` with the same owner, the epoch that one claimed),
   * labels carry the epoch (`{instance}-e{epoch}`), recovery also rolls back what older owners left, and every
   * checkpoint save is refused once another owner claimed the key: then the sink rolls back what it prepared and
   * fails with `ExactlyOnceError` `Fenced`, never committing. One sink per partition: `checkpointKey` = the
   * partition's key, `instance` = its id. Needs the transaction interface (V2). See docs/exactly-once.md,
   * "Partitions and fencing".
   *
   * @since 0.4.0
   */
  readonly owner?: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ExactlyOnceSummary extends SinkSummary {
  /** Checkpoint records saved by this run. */
  readonly checkpoints: number
  /** The epoch this run worked under (`owner`; 0 without one). */
  readonly epoch: number
  /** The position of the last acknowledged barrier (or the recovered one), decoded. */
  readonly lastPosition: Option.Option<unknown>
}

/**
 * What a failing `onCheckpoint` (with error `E`) adds to the exactly-once sink's errors: `Checkpoint.OnCheckpointError`
 * carrying `E`, or nothing when the callback cannot fail.
 *
 * @since 0.5.0
 * @category errors
 */
export type OnCheckpointFailure<E> = [E] extends [never] ? never : Checkpoint.OnCheckpointError<E>

/**
 * The exactly-once sink (two-phase commit over the transaction interface, driven by `Checkpoint` barriers), over
 * one table or many (`target` as in `make`). Rows are encoded and batched as in `make` (max-rows / max-bytes) and
 * each sealed batch is loaded into its table's open transaction, so memory stays bounded by max-bytes whatever the
 * checkpoint interval. At a barrier every open transaction of every table is prepared, one checkpoint record
 * (position, the prepared labels and the next label id of every table) is saved through the `Checkpointer`, the
 * prepared labels are committed, and only then is the barrier's ack completed. Labels are
 * `{prefix}-{table}-{instance}-{id}`, each table with its own ids. At start it runs the startup check (as `make`
 * does), then `recover` (and, for a table
 * that first appears later, its step 2 then). A failed `transaction/load` rolls the transaction back and replays
 * its data (kept in a bounded spool: memory up to max-bytes, then a temporary file) into a new transaction. Rows
 * after the last barrier are rolled back when the stream ends. With `sink.version` V1 (servers without the
 * transaction interface) sealed batches are spooled to durable files instead and loaded under their labels after
 * the checkpoint is saved. With `onCheckpoint`, the sink runs it on each committed checkpoint (and, at start, on the
 * recovered one): its error (in `Checkpoint.OnCheckpointError`) and requirements are the sink's. See
 * docs/exactly-once.md.
 *
 * @since 0.1.0
 * @category constructors
 */
export const exactlyOnce: {
  <In, P, PI, E = never, R = never>(
    target: Routing<In>,
    options: ExactlyOnceOptions<P, PI, E, R>
  ): Sink.Sink<
    ExactlyOnceSummary,
    Checkpoint.Envelope<In, P>,
    never,
    SinkError | OnCheckpointFailure<E>,
    Services | Checkpointer.Checkpointer | R
  >
  <A, I, P, PI, E = never, R = never>(
    schema: Schema.Schema<A, I>,
    options: ExactlyOnceOptions<P, PI, E, R>
  ): Sink.Sink<
    ExactlyOnceSummary,
    Checkpoint.Envelope<A | Change.Change<A>, P>,
    never,
    SinkError | OnCheckpointFailure<E>,
    Services | Checkpointer.Checkpointer | R
  >
} = <P, PI, E, R>(target: Schema.Schema<any, any> | Routing<any>, options: ExactlyOnceOptions<P, PI, E, R>) =>
  Sink.unwrap(Effect.map(
    // with what onCheckpoint needs (R)
    withResolvedVersion<R>(routingOf(target, options).describe === "raw"),
    (context) => ExactlyOnce.make(routingOf(target, options), options).pipe(Sink.provideContext(context))
  )) as any

/**
 * Recovery (also run by `exactlyOnce` at start; idempotent): commits what the last checkpoint prepared, in every
 * table it records (COMMITTED/VISIBLE count as done; an ABORTED one is an `ExactlyOnceError` `PreparedLost`), rolls
 * back the lingering PREPARE/PREPARED transactions of this instance in those tables and the config's default table
 * (label ids from the recorded next id on, until 8 consecutive unknown ids), and returns the last checkpointed
 * position, decoded: resume the source after it. It does not call `onCheckpoint` (the sink does, at its start).
 *
 * @since 0.1.0
 * @category constructors
 */
export const recover = <P, PI>(
  options: ExactlyOnceOptions<P, PI, unknown, unknown>
): Effect.Effect<
  Option.Option<P>,
  SinkError,
  Services | Checkpointer.Checkpointer
> => Effect.flatMap(withResolvedVersion(false), (context) => Effect.provide(ExactlyOnce.recover(options), context))

/**
 * The services with `sink.version` AUTO resolved: V2 when the cluster has the transaction interface
 * (`LoadClient.supportsTransactions`; a `sink.server-version` below 2.4 says it has not, without asking), V1 (the
 * label path) otherwise. First, the config's options are checked to
 * apply to the exactly-once sink (`StarRocksConfig.checkUse`).
 */
const withResolvedVersion = <R = never>(raw: boolean) =>
  Effect.gen(function*() {
    const context = yield* Effect.context<Services | Checkpointer.Checkpointer | R>()
    const config = Context.get(context, StarRocksConfig.StarRocksConfig)
    yield* StarRocksConfig.checkUse(config, { semantic: "exactly-once", raw })
    if (config.version !== "AUTO") return context
    // a server version known to be older than the transaction interface takes the label path without a probe
    const known = Opt.getOrUndefined(config.serverVersion)
    const supported = known !== undefined && Startup.below(known, Startup.since.transactions)
      ? false
      : yield* Context.get(context, LoadClient.LoadClient).supportsTransactions(config)
    return Context.add(context, StarRocksConfig.StarRocksConfig, { ...config, version: supported ? "V2" : "V1" })
  })
