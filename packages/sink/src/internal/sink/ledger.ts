/**
 * The ledger of both sinks: every label's record in the `LabelStore`, the metrics (tagged with the table), the
 * summary per table and in all, and the structured log line of each landed load. One home, so that both sinks
 * report alike.
 *
 * For the at-least-once sink (batches with a `firstRow`) it also keeps, per table, the batches in seal order with
 * their state, so that a sink that fails for good can say what landed (`landed`): every row of a table before the
 * first batch that did not land. The landed batches at the head are dropped from it beyond `KEEP_LANDED` (counted
 * in `earlierCommitted`), so it stays small however long the stream runs.
 *
 * Liveness: per table, when its last load landed (the `secondsSinceLastLoad` gauge) and the rows of its sealed
 * batches not landed yet (and since when some have waited), read by the watchdog (internal/sink/watchdog.ts).
 */
import type { Clock, MetricLabel } from "effect"
import { Effect, FiberRef, LogLevel, Metric } from "effect"
import * as LabelStore from "../../LabelStore.js"
import * as SinkMetrics from "../../SinkMetrics.js"
import type { Landed as LandedReport, TableLanded } from "../landed.js"
import { withLabel } from "../metricLabels.js"

/** What a load that landed reports (the client's `LoadResult` and `TransactionResult` both fit). */
export interface Landed {
  readonly retries: number
  readonly filteredRows: number
  readonly status?: string | undefined
  readonly hops?: ReadonlyArray<string> | undefined
  readonly timings?: Readonly<Record<string, number>> | undefined
  /** Bytes of the body as sent, when it was compressed (else the batch's `bytes` were sent). */
  readonly compressedBytes?: number | undefined
}

/** A table's share of a summary. */
export interface TableSummary {
  /** Rows sent in loads that landed. */
  readonly rows: number
  /** Body bytes of loads that landed (before compression). */
  readonly bytes: number
  /** Body bytes of loads that landed as sent: after compression, else equal to `bytes`. */
  readonly sentBytes: number
  /** Loads that landed. */
  readonly loads: number
  /** Attempts beyond the first (and replays into new transactions). */
  readonly retries: number
  /** Rows StarRocks filtered (`NumberFilteredRows`, allowed by `max_filter_ratio`). */
  readonly filteredRows: number
  /** Rows sent to the dead letter (refused by the encoder or filtered by StarRocks); only with a dead letter. */
  readonly deadLetteredRows?: number
}

export interface Summary extends TableSummary {
  /** Per table (`db.table`), for every table the sink saw. */
  readonly tables: Readonly<Record<string, TableSummary>>
}

export interface Batch {
  /** `db.table` */
  readonly table: string
  readonly database: string
  readonly tableName: string
  readonly label: string
  readonly rows: number
  readonly bytes: number
  /** The stream index of the batch's first row (at-least-once): the batch is then tracked for `landed`. */
  readonly firstRow?: number | undefined
}

export interface Ledger {
  /** Tracks a sealed batch (with `firstRow`) before its load: until it is attempted it counts as not sent. */
  readonly sealed: (batch: Batch) => void
  readonly pending: (batch: Batch) => Effect.Effect<void, LabelStore.LabelStoreError>
  readonly landed: (batch: Batch, result: Landed, startedAt: number) => Effect.Effect<void, LabelStore.LabelStoreError>
  readonly failed: (batch: Batch, error: unknown) => Effect.Effect<void>
  readonly record: (batch: Batch, state: LabelStore.LabelState) => Effect.Effect<void, LabelStore.LabelStoreError>
  /** Counts rows sent to the dead letter (the summary then shows `deadLetteredRows`). */
  readonly deadLettered: (table: string, rows: number) => Effect.Effect<void>
  /** Counts a replay of a transaction's data into a new transaction. */
  readonly retried: (table: string, database: string, tableName: string) => Effect.Effect<void>
  /** Makes sure the table shows in the summary (with zeros until something lands). */
  readonly touch: (table: string) => void
  readonly summary: () => Summary
  /**
   * What landed, per table: `building` holds the first stream index of each table's batch that was being built
   * (and is dropped), `taken` the stream index the next row would have had.
   */
  readonly whatLanded: (building: ReadonlyMap<string, number>, taken: number) => LandedReport
  /** A table's liveness (at-least-once batches only are counted as waiting). */
  readonly liveness: (table: string) => Liveness
  /** Sets `secondsSinceLastLoad` of every table the sink saw, as of `now`. */
  readonly reportLiveness: (now: number) => Effect.Effect<void>
}

export interface Liveness {
  /** When the table's last load landed (ms, the sink's clock); the ledger's start before the first. */
  readonly lastLoadAt: number
  /** Rows of sealed batches not landed (nor failed, nor settled in doubt). */
  readonly sealedRows: number
  /** Since when sealed rows have waited without a break (undefined when none waits). */
  readonly sealedSince: number | undefined
}

/**
 * Updates metrics of the sink's table in one step: `update` gets the labels a metric of the table is updated under
 * (the fiber's, with `table`, kept: `withLabel`) and calls the metrics' own `unsafeUpdate` with them, which is what
 * `Metric.update`, `Metric.set` and, for counters, `Metric.incrementBy` do, one effect for all instead of one each.
 */
export const updateMetrics = (
  database: string,
  table: string,
  update: (labels: ReadonlyArray<MetricLabel.MetricLabel>) => void
): Effect.Effect<void> =>
  // one step: the fiber's labels read where the update runs (FiberRef.getWith and Effect.sync are two)
  Effect.withFiberRuntime((fiber) => {
    update(withLabel(fiber.getFiberRef(FiberRef.currentMetricLabels), "table", SinkMetrics.tableTag(database, table)))
    return Effect.void
  })

/**
 * A `LabelRecord` of fields that are the batch's own, typed: what `new LabelRecord(fields, true)` (no validation)
 * makes, the fields as its own properties on its prototype, without the Schema class's constructor (a copy of the
 * fields, a merge of defaults the record has none of, then the copy onto the instance: about 1 µs, twice a load).
 * `test/ledger.test.ts` checks that both make equal records of the same keys.
 */
export const labelRecord = (fields: {
  readonly label: string
  readonly table: string
  readonly state: LabelStore.LabelState
  readonly rows: number
  readonly bytes: number
  readonly updatedAt: number
}): LabelStore.LabelRecord => Object.assign(Object.create(LabelStore.LabelRecord.prototype), fields)

/** Landed batches kept at the head of a table's track (the latest of the landed prefix, listed in the report). */
export const KEEP_LANDED = 100

type TrackState = "sealed" | LabelStore.LabelState

interface Tracked {
  readonly label: string
  readonly firstRow: number
  state: TrackState
}

/** An error after which the label may still have landed (the client could not settle it). */
const inDoubt = (error: unknown): boolean => {
  if (typeof error !== "object" || error === null) return false
  const e = error as { _tag?: unknown; outcome?: unknown; bodySent?: unknown }
  return e._tag === "LabelStateTimeout" || e.outcome === "InDoubt" ||
    (e._tag === "TransportError" && e.bodySent === true)
}

/** `deadLetter`: the sink has a dead letter (its summary shows `deadLetteredRows`). */
export const make = (
  labels: LabelStore.LabelStore,
  clock: Clock.Clock,
  options?: { readonly deadLetter?: boolean | undefined }
): Ledger => {
  const withDeadLetter = options?.deadLetter === true
  const tables = new Map<
    string,
    {
      rows: number
      bytes: number
      sentBytes: number
      loads: number
      retries: number
      filteredRows: number
      deadLetteredRows?: number
    }
  >()
  const entry = (table: string) => {
    let e = tables.get(table)
    if (e === undefined) {
      e = withDeadLetter
        ? { rows: 0, bytes: 0, sentBytes: 0, loads: 0, retries: 0, filteredRows: 0, deadLetteredRows: 0 }
        : { rows: 0, bytes: 0, sentBytes: 0, loads: 0, retries: 0, filteredRows: 0 }
      tables.set(table, e)
    }
    return e
  }
  const ledgerStart = clock.unsafeCurrentTimeMillis()
  // per table: when its last load landed, and its rows sealed and not landed (since when they have waited)
  const live = new Map<string, { lastLoadAt: number; sealedRows: number; sealedSince: number | undefined }>()
  const liveEntry = (table: string) => {
    let l = live.get(table)
    if (l === undefined) {
      l = { lastLoadAt: ledgerStart, sealedRows: 0, sealedSince: undefined }
      live.set(table, l)
    }
    return l
  }
  const isWaiting = (state: TrackState): boolean => state === "sealed" || state === "pending"
  // per table, in seal order: the batches of the at-least-once sink and their states
  const tracks = new Map<string, { batches: Array<Tracked>; earlier: number }>()
  const byLabel = new Map<string, Tracked>()
  const track = (batch: Batch, state: TrackState) => {
    if (batch.firstRow === undefined) return
    const known = byLabel.get(batch.label)
    if (known !== undefined) {
      if (isWaiting(known.state) && !isWaiting(state)) {
        const l = liveEntry(batch.table)
        l.sealedRows -= batch.rows
        if (l.sealedRows <= 0) {
          l.sealedRows = 0
          l.sealedSince = undefined
        }
      }
      known.state = state
      if (state === "committed") prune(batch.table)
      return
    }
    let t = tracks.get(batch.table)
    if (t === undefined) {
      t = { batches: [], earlier: 0 }
      tracks.set(batch.table, t)
    }
    const tracked: Tracked = { label: batch.label, firstRow: batch.firstRow, state }
    if (isWaiting(state)) {
      const l = liveEntry(batch.table)
      if (l.sealedRows === 0) l.sealedSince = clock.unsafeCurrentTimeMillis()
      l.sealedRows += batch.rows
    }
    t.batches.push(tracked)
    byLabel.set(batch.label, tracked)
  }
  const prune = (table: string) => {
    const t = tracks.get(table)!
    let head = 0
    while (head < t.batches.length && t.batches[head]!.state === "committed") head++
    const drop = head - KEEP_LANDED
    if (drop > 0) {
      for (const b of t.batches.splice(0, drop)) byLabel.delete(b.label)
      t.earlier += drop
    }
  }

  const record = (batch: Batch, state: LabelStore.LabelState) =>
    Effect.suspend(() => {
      track(batch, state)
      return labels.put(labelRecord({
        label: batch.label,
        table: batch.table,
        state,
        rows: batch.rows,
        bytes: batch.bytes,
        updatedAt: clock.unsafeCurrentTimeMillis()
      }))
    })

  const landed = (batch: Batch, result: Landed, startedAt: number) =>
    record(batch, "committed").pipe(
      Effect.zipRight(Effect.suspend(() => {
        const now = clock.unsafeCurrentTimeMillis()
        const ms = now - startedAt
        liveEntry(batch.table).lastLoadAt = now
        const e = entry(batch.table)
        e.rows += batch.rows
        e.bytes += batch.bytes
        const sent = result.compressedBytes ?? batch.bytes
        e.sentBytes += sent
        e.loads += 1
        e.retries += result.retries
        e.filteredRows += result.filteredRows
        const timings = result.timings
        // the metrics and the landed line in one step: the fiber's labels and its minimum log level read where
        // they are used (as `updateMetrics` and `logged` would, one effect for both)
        return Effect.withFiberRuntime((fiber) => {
          const labels = withLabel(
            fiber.getFiberRef(FiberRef.currentMetricLabels),
            "table",
            SinkMetrics.tableTag(batch.database, batch.tableName)
          )
          // what Metric.incrementBy/increment (counters), update and set do, under the labels read once
          SinkMetrics.totalFlushBytes.unsafeUpdate(batch.bytes, labels)
          SinkMetrics.totalFlushSentBytes.unsafeUpdate(sent, labels)
          SinkMetrics.totalFlushRows.unsafeUpdate(batch.rows, labels)
          SinkMetrics.totalFlushSucceededTimes.unsafeUpdate(1, labels)
          SinkMetrics.totalFilteredRows.unsafeUpdate(result.filteredRows, labels)
          SinkMetrics.totalLoadRetries.unsafeUpdate(result.retries, labels)
          // `loadLatency.unsafeUpdate(Duration.millis(ms), labels)`, under the same labels array at every load
          // (`Duration.millis` of a negative or NaN is zero)
          SinkMetrics.loadLatencyMillis.unsafeUpdate(
            ms > 0 ? ms : 0,
            withLabel(labels, "time_unit", "milliseconds", true)
          )
          SinkMetrics.secondsSinceLastLoad.unsafeUpdate(0, labels)
          // `Metric.tagged(serverTimeMs, "timing", key)` updated under `labels`
          if (timings !== undefined) {
            for (const key in timings) {
              SinkMetrics.serverTimeMs.unsafeUpdate(timings[key]!, withLabel(labels, "timing", key, true))
            }
          }
          // `logged(LogLevel.Info, ...)`: the line built only when the fiber's minimum level lets it through
          if (LogLevel.greaterThan(fiber.getFiberRef(FiberRef.currentMinimumLogLevel), LogLevel.Info)) {
            return Effect.void
          }
          return Effect.logInfo("stream load").pipe(
            Effect.annotateLogs({
              table: batch.table,
              label: batch.label,
              status: result.status ?? "",
              rows: batch.rows,
              bytes: batch.bytes,
              sentBytes: sent,
              ms,
              retries: result.retries,
              hops: (result.hops ?? []).join(" -> ")
            })
          )
        })
      }))
    )

  const failed = (batch: Batch, error: unknown) =>
    Metric.increment(SinkMetrics.totalFlushFailedTimes).pipe(
      SinkMetrics.tagged(batch.database, batch.tableName),
      Effect.zipRight(record(batch, inDoubt(error) ? "in-doubt" : "failed").pipe(Effect.ignore)),
      Effect.zipRight(Effect.logError("stream load failed", error).pipe(Effect.annotateLogs({ table: batch.table })))
    )

  const retried = (table: string, database: string, tableName: string) =>
    Effect.suspend(() => {
      entry(table).retries += 1
      return Metric.increment(SinkMetrics.totalLoadRetries).pipe(SinkMetrics.tagged(database, tableName))
    })

  const deadLettered = (table: string, rows: number) =>
    Effect.suspend(() => {
      const e = entry(table)
      e.deadLetteredRows = (e.deadLetteredRows ?? 0) + rows
      // the table's key is its tag (`db.table`, SinkMetrics.tableTag)
      return Metric.incrementBy(SinkMetrics.totalDeadLetteredRows, rows).pipe(Effect.tagMetrics("table", table))
    })

  const summary = (): Summary => {
    const all:
      & { rows: number; bytes: number; sentBytes: number; loads: number; retries: number; filteredRows: number }
      & {
        deadLetteredRows?: number
      } = withDeadLetter
        ? { rows: 0, bytes: 0, sentBytes: 0, loads: 0, retries: 0, filteredRows: 0, deadLetteredRows: 0 }
        : { rows: 0, bytes: 0, sentBytes: 0, loads: 0, retries: 0, filteredRows: 0 }
    const per: Record<string, TableSummary> = {}
    for (const [table, e] of tables) {
      per[table] = { ...e }
      all.rows += e.rows
      all.bytes += e.bytes
      all.sentBytes += e.sentBytes
      all.loads += e.loads
      all.retries += e.retries
      all.filteredRows += e.filteredRows
      if (withDeadLetter) all.deadLetteredRows! += e.deadLetteredRows ?? 0
    }
    return { ...all, tables: per }
  }

  const landedReport = (building: ReadonlyMap<string, number>, taken: number): LandedReport => {
    const out: Record<string, TableLanded> = {}
    const names = new Set([...tables.keys(), ...tracks.keys()])
    for (const table of names) {
      const t = tracks.get(table)
      const committed: Array<string> = []
      const failedLabels: Array<string> = []
      const doubt: Array<string> = []
      let upToRow: number | undefined
      for (const b of t?.batches ?? []) {
        if (b.state === "committed") committed.push(b.label)
        else {
          upToRow ??= b.firstRow
          if (b.state === "sealed" || b.state === "failed") failedLabels.push(b.label)
          else doubt.push(b.label)
        }
      }
      out[table] = {
        upToRow: upToRow ?? building.get(table) ?? taken,
        labels: { committed, failed: failedLabels, inDoubt: doubt },
        earlierCommitted: t?.earlier ?? 0
      }
    }
    return out
  }

  const liveness = (table: string): Liveness => ({ ...liveEntry(table) })

  const reportLiveness = (now: number) =>
    Effect.forEach(new Set([...tables.keys(), ...live.keys()]), (table) => {
      const seconds = Math.max(0, now - liveEntry(table).lastLoadAt) / 1000
      // the table's key is its tag (`db.table`, SinkMetrics.tableTag)
      return Metric.set(SinkMetrics.secondsSinceLastLoad, seconds).pipe(Effect.tagMetrics("table", table))
    }, { discard: true })

  return {
    liveness,
    reportLiveness,
    sealed: (batch) => track(batch, "sealed"),
    whatLanded: landedReport,
    pending: (batch) => record(batch, "pending"),
    landed,
    failed,
    record,
    retried,
    deadLettered,
    touch: (table) => void entry(table),
    summary
  }
}
