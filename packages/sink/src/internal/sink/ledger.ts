/**
 * The ledger of both sinks: every label's record in the `LabelStore`, the metrics (tagged with the table), the
 * summary per table and in all, and the structured log line of each landed load. One home, so that both sinks
 * report alike.
 */
import type { Clock } from "effect"
import { Duration, Effect, Metric } from "effect"
import * as LabelStore from "../../LabelStore.js"
import * as SinkMetrics from "../../SinkMetrics.js"

/** What a load that landed reports (the client's `LoadResult` and `TransactionResult` both fit). */
export interface Landed {
  readonly retries: number
  readonly filteredRows: number
  readonly status?: string | undefined
  readonly hops?: ReadonlyArray<string> | undefined
  readonly timings?: Readonly<Record<string, number>> | undefined
}

/** A table's share of a summary. */
export interface TableSummary {
  /** Rows sent in loads that landed. */
  readonly rows: number
  /** Body bytes of loads that landed. */
  readonly bytes: number
  /** Loads that landed. */
  readonly loads: number
  /** Attempts beyond the first (and replays into new transactions). */
  readonly retries: number
  /** Rows StarRocks filtered (`NumberFilteredRows`, allowed by `max_filter_ratio`). */
  readonly filteredRows: number
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
}

export interface Ledger {
  readonly pending: (batch: Batch) => Effect.Effect<void, LabelStore.LabelStoreError>
  readonly landed: (batch: Batch, result: Landed, startedAt: number) => Effect.Effect<void, LabelStore.LabelStoreError>
  readonly failed: (batch: Batch, error: unknown) => Effect.Effect<void>
  readonly record: (batch: Batch, state: LabelStore.LabelState) => Effect.Effect<void, LabelStore.LabelStoreError>
  /** Counts a replay of a transaction's data into a new transaction. */
  readonly retried: (table: string, database: string, tableName: string) => Effect.Effect<void>
  /** Makes sure the table shows in the summary (with zeros until something lands). */
  readonly touch: (table: string) => void
  readonly summary: () => Summary
}

export const make = (labels: LabelStore.LabelStore, clock: Clock.Clock): Ledger => {
  const tables = new Map<
    string,
    { rows: number; bytes: number; loads: number; retries: number; filteredRows: number }
  >()
  const entry = (table: string) => {
    let e = tables.get(table)
    if (e === undefined) {
      e = { rows: 0, bytes: 0, loads: 0, retries: 0, filteredRows: 0 }
      tables.set(table, e)
    }
    return e
  }
  const record = (batch: Batch, state: LabelStore.LabelState) =>
    Effect.suspend(() =>
      labels.put(
        new LabelStore.LabelRecord({
          label: batch.label,
          table: batch.table,
          state,
          rows: batch.rows,
          bytes: batch.bytes,
          updatedAt: clock.unsafeCurrentTimeMillis()
        })
      )
    )

  const landed = (batch: Batch, result: Landed, startedAt: number) =>
    Effect.gen(function*() {
      const ms = clock.unsafeCurrentTimeMillis() - startedAt
      yield* record(batch, "committed")
      const e = entry(batch.table)
      e.rows += batch.rows
      e.bytes += batch.bytes
      e.loads += 1
      e.retries += result.retries
      e.filteredRows += result.filteredRows
      yield* Effect.all([
        Metric.incrementBy(SinkMetrics.totalFlushBytes, batch.bytes),
        Metric.incrementBy(SinkMetrics.totalFlushRows, batch.rows),
        Metric.increment(SinkMetrics.totalFlushSucceededTimes),
        Metric.incrementBy(SinkMetrics.totalFilteredRows, result.filteredRows),
        Metric.incrementBy(SinkMetrics.totalLoadRetries, result.retries),
        Metric.update(SinkMetrics.loadLatency, Duration.millis(ms))
      ], { discard: true })
      for (const [key, value] of Object.entries(result.timings ?? {})) {
        yield* Metric.update(Metric.tagged(SinkMetrics.serverTimeMs, "timing", key), value)
      }
      yield* Effect.logInfo("stream load").pipe(
        Effect.annotateLogs({
          table: batch.table,
          label: batch.label,
          status: result.status ?? "",
          rows: batch.rows,
          bytes: batch.bytes,
          ms,
          retries: result.retries,
          hops: (result.hops ?? []).join(" -> ")
        })
      )
    }).pipe(SinkMetrics.tagged(batch.database, batch.tableName))

  const failed = (batch: Batch, error: unknown) =>
    Metric.increment(SinkMetrics.totalFlushFailedTimes).pipe(
      SinkMetrics.tagged(batch.database, batch.tableName),
      Effect.zipRight(record(batch, "failed").pipe(Effect.ignore)),
      Effect.zipRight(Effect.logError("stream load failed", error).pipe(Effect.annotateLogs({ table: batch.table })))
    )

  const retried = (table: string, database: string, tableName: string) =>
    Effect.suspend(() => {
      entry(table).retries += 1
      return Metric.increment(SinkMetrics.totalLoadRetries).pipe(SinkMetrics.tagged(database, tableName))
    })

  const summary = (): Summary => {
    const all = { rows: 0, bytes: 0, loads: 0, retries: 0, filteredRows: 0 }
    const per: Record<string, TableSummary> = {}
    for (const [table, e] of tables) {
      per[table] = { ...e }
      all.rows += e.rows
      all.bytes += e.bytes
      all.loads += e.loads
      all.retries += e.retries
      all.filteredRows += e.filteredRows
    }
    return { ...all, tables: per }
  }

  return {
    pending: (batch) => record(batch, "pending"),
    landed,
    failed,
    record,
    retried,
    touch: (table) => void entry(table),
    summary
  }
}
