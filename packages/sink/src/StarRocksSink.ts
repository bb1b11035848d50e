/**
 * The StarRocks sink: an Effect `Sink` that encodes typed rows into Stream Load batches and lands them.
 *
 * ```ts
 * const summary = yield* Stream.run(rows, StarRocksSink.make(Row)).pipe(Effect.provide(StarRocksSink.layer(config)))
 * ```
 *
 * @since 0.1.0
 */
import type { Schema } from "effect"
import { Context, Deferred, Duration, Effect, Exit, Fiber, Layer, Metric, Option, Sink } from "effect"
import type * as Checkpoint from "./Checkpoint.js"
import * as Checkpointer from "./Checkpointer.js"
import * as Chunks from "./internal/chunks.js"
import { prepareEncoder } from "./internal/encoderSetup.js"
import * as EventLoop from "./internal/eventLoop.js"
import * as ExactlyOnce from "./internal/exactlyOnce.js"
import { ExactlyOnceError } from "./internal/exactlyOnceError.js"
import * as LabelStore from "./LabelStore.js"
import * as LoadClient from "./LoadClient.js"
import type * as RowEncoder from "./RowEncoder.js"
import * as SinkMetrics from "./SinkMetrics.js"
import * as StarRocksConfig from "./StarRocksConfig.js"
import type { LoadError } from "./StarRocksError.js"
import type * as TableSchema from "./TableSchema.js"

/**
 * What a finished sink reports.
 *
 * @since 0.1.0
 * @category models
 */
export interface SinkSummary {
  /** Rows sent in loads that landed. */
  readonly rows: number
  /** Body bytes of loads that landed. */
  readonly bytes: number
  /** Loads that landed. */
  readonly loads: number
  /** Attempts beyond the first, over all loads (each retried under its batch's own label). */
  readonly retries: number
  /** Rows StarRocks filtered (`NumberFilteredRows`, allowed by `max_filter_ratio`). */
  readonly filteredRows: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MakeOptions {
  /** Columns in the order sent; default: the struct's field order. */
  readonly columns?: ReadonlyArray<string> | undefined
  /**
   * Keep row order strictly across loads: one load in flight at a time, so that a later upsert of a key lands
   * after an earlier one. Default: true for a Primary Key table detected through `jdbc-url`, else false (up to
   * `sink.io.thread-count` loads in flight).
   */
  readonly ordered?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category errors
 */
export type SinkError =
  | LoadError
  | RowEncoder.RowEncodeError
  | TableSchema.TableSchemaError
  | LabelStore.LabelStoreError
  | Checkpointer.CheckpointerError
  | ExactlyOnceError

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

interface Batch {
  readonly seq: number
  readonly label: string
  readonly rows: number
  readonly body: LoadClient.LoadBody
  readonly headers: Readonly<Record<string, string>>
  /** Byte-budget permits this batch holds until it has landed. */
  readonly held: number
}

const labelPart = (s: string): string => s.replace(/[^-\w]/g, "_")

const randomId = (): string => Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, "0")

/**
 * Bytes a building batch may grow by before it takes byte-budget permits for them (a seal takes them all), at most
 * 1/64 of the budget.
 */
const COVER_STEP = 64 * 1024

/**
 * Builds the label of the `seq`-th batch of a sink run: `{prefix}-{table}-{instance}-{seq}`, always matching
 * StarRocks' `^[-\w]{1,128}$`.
 *
 * @since 0.1.0
 * @category labels
 */
export const batchLabel = (prefix: string, table: string, instance: string, seq: number): string => {
  const tail = `-${instance}-${seq}`
  const head = `${labelPart(prefix)}-${labelPart(table)}`
  return head.slice(0, 128 - tail.length) + tail
}

/**
 * A `Sink` over rows typed by an `effect/Schema` struct. Rows are encoded as they arrive (CSV by the safe recipe,
 * or JSON), cut into batches by `sink.buffer-flush.max-rows`, `max-bytes` and `interval-ms`, and loaded by
 * Stream Load with at most `sink.io.thread-count` loads in flight. Buffered plus in-flight bytes never exceed
 * twice `max-bytes` (plus one upstream chunk): beyond that the upstream waits. When the stream ends the last
 * batch is loaded and the summary returned. Every batch keeps its label across retries, and every label is
 * recorded in the `LabelStore` before its first attempt.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, I, R>(
  schema: Schema.Schema<A, I, R>,
  options?: MakeOptions
): Sink.Sink<SinkSummary, A, never, SinkError, Services> =>
  Sink.unwrapScoped(Effect.gen(function*() {
    const config = yield* StarRocksConfig.StarRocksConfig
    const client = yield* LoadClient.LoadClient
    const labels = yield* LabelStore.LabelStore
    const scope = yield* Effect.scope

    // With `jdbc-url`: the table's columns, checked against the schema (all mismatches in one error), its
    // model and the server version.
    const { encoder, table } = yield* prepareEncoder(schema, config, options?.columns)

    const tableTag = SinkMetrics.tableTag(config.database, config.table)
    const withTag = SinkMetrics.tagged(config.database, config.table)
    const instance = randomId()
    const maxBytes = config.maxBytes
    const maxRows = config.maxRows
    const intervalMs = Duration.toMillis(config.flushInterval)
    const budget = 2 * maxBytes
    const coverStep = Math.min(COVER_STEP, Math.floor(budget / 64))
    const ordered = options?.ordered ?? table?.isPrimaryKeyTable ?? false
    const inflightLimit = ordered ? 1 : Math.max(1, config.ioThreadCount)

    const bytesBudget = yield* Effect.makeSemaphore(budget)
    const slots = yield* Effect.makeSemaphore(inflightLimit)
    const lock = yield* Effect.makeSemaphore(1)
    const failure = yield* Deferred.make<never, SinkError>()
    // the first load failure (`failure` is for waits to race against; this is read where no wait is involved)
    let failedWith: SinkError | undefined

    let builder: RowEncoder.BatchBuilder<A> | undefined
    let builderHeld = 0
    let firstRowAt = 0
    let seq = 0
    let rowIndex = 0
    let outstanding = 0
    const inflight = new Map<number, Batch>()
    // batches whose load has not come to an end of its own (cleared on success or final failure, kept when
    // interrupted): what the finalizer settles through get_load_state
    const unsettled = new Map<number, Batch>()
    const fibers = new Set<Fiber.RuntimeFiber<void>>()
    const summary = { rows: 0, bytes: 0, loads: 0, retries: 0, filteredRows: 0 }

    // Any wait is cut short when a load has failed for good, so a dead loader never blocks the upstream.
    const guard = <X, E2, R2>(effect: Effect.Effect<X, E2, R2>) => Effect.raceFirst(effect, Deferred.await(failure))

    // (suspended: the gauge takes the value at the time of the update, not the 0 of this definition)
    const reportOutstanding = Effect.suspend(() => Metric.set(SinkMetrics.bufferedBytes, outstanding)).pipe(withTag)

    /** Bytes the building batch holds beyond the byte-budget permits it took. */
    const uncovered = () => builder === undefined ? 0 : Math.min(builder.bytes, budget) - builderHeld
    // A chunk of a few rows takes its permits once they add up to `coverStep` (a seal takes them all): the budget
    // is then exceeded by less than that (at most 1/64 of it), and small chunks do not pay for a take each.
    const coverDue = () => {
      const needed = uncovered()
      return needed > 0 && (needed >= coverStep || builder!.bytes >= budget)
    }

    // Takes byte-budget permits for what the building batch holds beyond what it already took: all of it, or
    // only when `coverDue`.
    const cover = (all: boolean) =>
      Effect.suspend(() => {
        const needed = uncovered()
        if (needed <= 0 || !(all || coverDue())) return Effect.void
        // `outstanding` is what the budget has given out: when the permits are there, they are taken without the
        // race against `failure`, which forks two fibers; per chunk, that alone made V8 promote small chunks' rows
        // to the old space (1.4 GB promoted for 4M rows in chunks of 512, 0.08 GB without it)
        const take = budget - outstanding >= needed ? bytesBudget.take(needed) : guard(bytesBudget.take(needed))
        return take.pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              builderHeld += needed
              outstanding += needed
            })
          ),
          Effect.zipRight(reportOutstanding)
        )
      })

    const coverBuilder = cover(true)
    const coverSome = cover(false)

    const loadOne = (batch: Batch): Effect.Effect<void, SinkError> =>
      Effect.gen(function*() {
        const started = Date.now()
        yield* labels.put(
          new LabelStore.LabelRecord({
            label: batch.label,
            table: tableTag,
            state: "pending",
            rows: batch.rows,
            bytes: batch.body.byteLength,
            updatedAt: started
          })
        )
        const request = {
          database: config.database,
          table: config.table,
          label: batch.label,
          headers: batch.headers,
          body: batch.body
        }
        // the transaction path of at-least-once: `sink.at-least-once.use-transaction-stream-load`
        const result = yield* (config.useTransactionStreamLoad
          ? client.loadTransactional(request)
          : client.loadBatch(request)).pipe(
            Effect.tapError((error) =>
              Effect.zipRight(
                Metric.increment(SinkMetrics.totalFlushFailedTimes),
                labels.put(
                  new LabelStore.LabelRecord({
                    label: batch.label,
                    table: tableTag,
                    state: "failed",
                    rows: batch.rows,
                    bytes: batch.body.byteLength,
                    updatedAt: Date.now()
                  })
                ).pipe(Effect.ignore, Effect.zipRight(Effect.logError("stream load failed", error)))
              )
            )
          )
        const ms = Date.now() - started
        yield* labels.put(
          new LabelStore.LabelRecord({
            label: batch.label,
            table: tableTag,
            state: "committed",
            rows: batch.rows,
            bytes: batch.body.byteLength,
            updatedAt: Date.now()
          })
        )
        summary.rows += batch.rows
        summary.bytes += batch.body.byteLength
        summary.loads += 1
        summary.retries += result.retries
        summary.filteredRows += result.filteredRows
        yield* Metric.incrementBy(SinkMetrics.totalFlushBytes, batch.body.byteLength)
        yield* Metric.incrementBy(SinkMetrics.totalFlushRows, batch.rows)
        yield* Metric.increment(SinkMetrics.totalFlushSucceededTimes)
        yield* Metric.incrementBy(SinkMetrics.totalFilteredRows, result.filteredRows)
        yield* Metric.incrementBy(SinkMetrics.totalLoadRetries, result.retries)
        yield* Metric.update(SinkMetrics.loadLatency, Duration.millis(ms))
        for (const [key, value] of Object.entries(result.timings)) {
          yield* Metric.update(Metric.tagged(SinkMetrics.serverTimeMs, "timing", key), value)
        }
        yield* Effect.logInfo("stream load").pipe(
          Effect.annotateLogs({
            table: tableTag,
            label: batch.label,
            status: result.status,
            rows: batch.rows,
            bytes: batch.body.byteLength,
            ms,
            retries: result.retries,
            hops: result.hops.join(" -> ")
          })
        )
      }).pipe(withTag)

    const dispatch = (batch: Batch) =>
      Effect.gen(function*() {
        yield* guard(slots.take(1))
        inflight.set(batch.seq, batch)
        unsettled.set(batch.seq, batch)
        yield* Metric.set(SinkMetrics.inflightLoads, inflight.size).pipe(withTag)
        const fiber = yield* loadOne(batch).pipe(
          Effect.catchAll((error) =>
            Effect.suspend(() => {
              failedWith ??= error
              return Deferred.fail(failure, error)
            })
          ),
          Effect.tap(() => Effect.sync(() => unsettled.delete(batch.seq))),
          Effect.ensuring(Effect.withFiberRuntime<void>((self) => {
            inflight.delete(batch.seq)
            fibers.delete(self as unknown as Fiber.RuntimeFiber<void>)
            // the body will not be read again: its buffers go back to the encoder for the next batches
            encoder.release(batch.body)
            outstanding -= batch.held
            return Effect.all([
              slots.release(1),
              bytesBudget.release(batch.held),
              reportOutstanding,
              Metric.set(SinkMetrics.inflightLoads, inflight.size).pipe(withTag)
            ], { discard: true })
          })),
          Effect.asVoid,
          Effect.forkIn(scope)
        )
        if (inflight.has(batch.seq)) fibers.add(fiber)
      })

    // Seals the building batch (if any) and hands it to a loader. Runs under `lock`.
    const seal = Effect.suspend(() => {
      const b = builder
      if (b === undefined || b.rows === 0) return Effect.void
      return coverBuilder.pipe(Effect.zipRight(Effect.suspend(() => {
        builder = undefined
        const held = builderHeld
        builderHeld = 0
        const { body, headers } = b.finish()
        seq += 1
        const batch: Batch = {
          seq,
          label: batchLabel(config.labelPrefix, config.table, instance, seq),
          rows: b.rows,
          body,
          // the table's sink.properties.* under the encoder's own headers (keys are lower-case in both)
          headers: { ...config.properties, ...headers },
          held
        }
        return dispatch(batch)
      })))
    })

    const newBuilder = (format: "csv" | "json"): RowEncoder.BatchBuilder<A> => {
      firstRowAt = Date.now()
      return encoder.builder(format)
    }

    // a macrotask turn at least every 2 ms of encoding, so that the loads in flight drain while the next batch
    // is built (internal/eventLoop.ts)
    const turns = EventLoop.make()

    const full = (b: RowEncoder.BatchBuilder<A>) => b.rows >= maxRows || b.bytes >= maxBytes

    // The interval timer sets this before it asks for `lock`, and clears it when it has let go: while it is set,
    // chunks go the locked way.
    let timerWants = false

    /**
     * Adds rows from `from` on to the building batch while none needs an effect. Stops at a row that cannot
     * travel in the batch's format (`cut`, at that row), or after a row that filled the batch or brought a turn
     * due (`pause`).
     */
    const addRows = (
      rows: ReadonlyArray<A>,
      from: number
    ): { readonly next: number; readonly stop: "done" | "cut" | "pause" } => {
      for (let i = from; i < rows.length; i++) {
        if (builder === undefined) builder = newBuilder(config.format)
        const index = rowIndex
        if (!builder.add(rows[i]!, index)) return { next: i, stop: "cut" }
        rowIndex++
        if (full(builder) || (index % EventLoop.ROWS_PER_CHECK === EventLoop.ROWS_PER_CHECK - 1 && turns.due())) {
          return { next: i + 1, stop: "pause" }
        }
      }
      return { next: rows.length, stop: "done" }
    }

    // The locked way: rows from `from` on, with seals, turns and permits as they come (the rows are handed over
    // through `once`: internal/chunks.ts).
    const locked = (take: () => ReadonlyArray<A> | undefined, from: number) =>
      lock.withPermits(1)(Effect.gen(function*() {
        let rows = take() ?? []
        let next = from
        while (true) {
          if (builder !== undefined && full(builder)) yield* seal
          yield* turns.maybe
          const added = addRows(rows, next)
          next = added.next
          if (added.stop === "done") break
          if (added.stop === "cut") {
            // the row cannot travel in this batch's format (CSV and the exact string `\N`): cut, go JSON
            yield* seal
            builder = newBuilder("json")
            const index = rowIndex++
            if (!builder.add(rows[next]!, index)) {
              return yield* Effect.die(new Error(`row ${index} cannot be encoded as JSON`))
            }
            next++
          }
        }
        rows = []
        yield* coverSome
      }))

    const onChunk = (rows: ReadonlyArray<A>) => {
      if (failedWith !== undefined) return Effect.fail(failedWith)
      let from = 0
      if (!timerWants) {
        // The unlocked way: rows that need no effect (no seal, no turn, no permits) are encoded here and now,
        // which is atomic (nothing else runs meanwhile), so the lock is not needed; a stream of one-row chunks
        // then costs little more per row than Effect's own stream.
        const added = addRows(rows, 0)
        if (added.stop === "done" && !coverDue() && !turns.due()) return Effect.void
        from = added.next
      }
      return locked(Chunks.once(rows), from)
    }

    // Flushes a batch that has waited `interval-ms` since its first row, whether or not rows keep coming.
    if (intervalMs > 0) {
      yield* Effect.gen(function*() {
        while (true) {
          const wait = builder === undefined ? intervalMs : Math.max(1, firstRowAt + intervalMs - Date.now())
          yield* Effect.sleep(Duration.millis(wait))
          timerWants = true
          yield* lock.withPermits(1)(
            Effect.suspend(() => builder !== undefined && Date.now() - firstRowAt >= intervalMs ? seal : Effect.void)
          ).pipe(Effect.ensuring(Effect.sync(() => (timerWants = false))))
        }
      }).pipe(Effect.catchAllCause(() => Effect.void), Effect.forkIn(scope))
    }

    // On failure or interruption: loads still in flight are stopped and their labels settled through
    // get_load_state, so none is left under an unknown label.
    yield* Effect.addFinalizer((exit) =>
      Exit.isSuccess(exit) ? Effect.void : Effect.gen(function*() {
        yield* Fiber.interruptAll(Array.from(fibers))
        const open = Array.from(unsettled.values())
        unsettled.clear()
        yield* Effect.forEach(open, (batch) =>
          client.getLoadState({ database: config.database, label: batch.label }).pipe(
            Effect.timeout(Duration.seconds(10)),
            Effect.option,
            Effect.flatMap((state) => {
              const s = Option.getOrUndefined(state)
              const settled = s === "VISIBLE" || s === "COMMITTED"
                ? "committed" as const
                : s === "ABORTED" || s === "UNKNOWN"
                ? "failed" as const
                : "in-doubt" as const
              return labels.put(
                new LabelStore.LabelRecord({
                  label: batch.label,
                  table: tableTag,
                  state: settled,
                  rows: batch.rows,
                  bytes: batch.body.byteLength,
                  updatedAt: Date.now()
                })
              ).pipe(
                Effect.zipRight(
                  Effect.logWarning("sink stopped with a load in flight").pipe(
                    Effect.annotateLogs({ label: batch.label, state: s ?? "unknown", recorded: settled })
                  )
                )
              )
            }),
            Effect.ignore
          ), { concurrency: "unbounded", discard: true })
      })
    )

    const finish = Effect.gen(function*() {
      yield* lock.withPermits(1)(seal)
      yield* guard(slots.take(inflightLimit))
      yield* slots.release(inflightLimit)
      if (failedWith !== undefined) return yield* Effect.fail(failedWith)
      return { ...summary } as SinkSummary
    })

    return Chunks.forEachChunk(onChunk).pipe(Sink.mapEffect(() => finish))
  }))

/**
 * The sink's services for a configuration: the `node:http` LoadClient, and the LabelStore and Checkpointer in
 * memory. Swap any of them by providing your own layer after this one.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  config: StarRocksConfig.StarRocksConfig
): Layer.Layer<Services | Checkpointer.Checkpointer> =>
  Layer.mergeAll(LoadClient.layer(config), LabelStore.layerMemory, Checkpointer.layerMemory).pipe(
    Layer.provideMerge(StarRocksConfig.layerFrom(config))
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface ExactlyOnceOptions<P, PI> {
  /** Encodes barrier positions into the checkpoint record (and decodes the recorded one at recovery). */
  readonly position: Schema.Schema<P, PI>
  /** Default "0"; part of the labels and of the checkpoint key. Give every parallel sink its own. */
  readonly instance?: string
  /** Default `${labelPrefix}-${db}.${table}-${instance}`. */
  readonly checkpointKey?: string
  /** Columns in the order sent; default: the struct's field order. */
  readonly columns?: ReadonlyArray<string>
  /**
   * The label path (`sink.version` V1) only: the directory of the durable batch spool; it must survive restarts.
   * Default `{os.tmpdir()}/effect-starrocks-spool/{checkpointKey}`.
   */
  readonly spoolDirectory?: string
  /** Aligned checkpoints across instances in one process (`Checkpoint.coordinator(n)`). */
  readonly coordinator?: Checkpoint.Coordinator
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ExactlyOnceSummary extends SinkSummary {
  /** Checkpoint records saved by this run. */
  readonly checkpoints: number
  /** The position of the last acknowledged barrier (or the recovered one), decoded. */
  readonly lastPosition: Option.Option<unknown>
}

/**
 * The exactly-once sink (two-phase commit over the transaction interface, driven by `Checkpoint` barriers).
 * Rows are encoded and batched as in `make` (max-rows / max-bytes) and each sealed batch is loaded into the
 * table's one open transaction, so memory stays bounded by max-bytes whatever the checkpoint interval. At a
 * barrier the open transaction is prepared, the checkpoint record (position, prepared labels, next label id) is
 * saved through the `Checkpointer`, the prepared labels are committed, and only then is the barrier's ack
 * completed. Labels are `{prefix}-{table}-{instance}-{id}`. At start it runs `recover`. A failed
 * `transaction/load` rolls the transaction back and replays its data (kept in a bounded spool: memory up to
 * max-bytes, then a temporary file) into a new transaction. Rows after the last barrier are rolled back when the
 * stream ends. With `sink.version` V1 (servers without the transaction interface) sealed batches are spooled to
 * durable files instead and loaded under their labels after the checkpoint is saved. See docs/exactly-once.md.
 *
 * @since 0.1.0
 * @category constructors
 */
export const exactlyOnce = <A, I, P, PI>(
  schema: Schema.Schema<A, I>,
  options: ExactlyOnceOptions<P, PI>
): Sink.Sink<
  ExactlyOnceSummary,
  Checkpoint.Envelope<A, P>,
  never,
  SinkError | Checkpointer.CheckpointerError,
  Services | Checkpointer.Checkpointer
> =>
  Sink.unwrap(Effect.map(
    withResolvedVersion,
    (context) => ExactlyOnce.make(schema, options).pipe(Sink.provideContext(context))
  ))

/**
 * Recovery (also run by `exactlyOnce` at start; idempotent): commits what the last checkpoint prepared
 * (COMMITTED/VISIBLE count as done; an ABORTED one is an `ExactlyOnceError` `PreparedLost`), rolls back the
 * lingering PREPARE/PREPARED transactions of this instance (label ids from the recorded next id on, until 8
 * consecutive unknown ids), and returns the last checkpointed position, decoded: resume the source after it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const recover = <P, PI>(
  options: ExactlyOnceOptions<P, PI>
): Effect.Effect<
  Option.Option<P>,
  SinkError | Checkpointer.CheckpointerError,
  Services | Checkpointer.Checkpointer
> => Effect.flatMap(withResolvedVersion, (context) => Effect.provide(ExactlyOnce.recover(options), context))

/**
 * The services with `sink.version` AUTO resolved: V2 when the cluster has the transaction interface
 * (`LoadClient.supportsTransactions`), V1 (the label path) otherwise.
 */
const withResolvedVersion = Effect.gen(function*() {
  const context = yield* Effect.context<Services | Checkpointer.Checkpointer>()
  const config = Context.get(context, StarRocksConfig.StarRocksConfig)
  if (config.version !== "AUTO") return context
  const supported = yield* Context.get(context, LoadClient.LoadClient).supportsTransactions(config)
  return Context.add(context, StarRocksConfig.StarRocksConfig, { ...config, version: supported ? "V2" : "V1" })
})
