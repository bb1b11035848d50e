/**
 * The loader's loads as the sink's metrics (`SinkMetrics`, tagged `table` = `db.table`), so that `--metrics-port`
 * serves the same series a program with the sink does: the loader sends its batches through the `LoadClient`, not
 * through the sink, whose ledger would count them.
 *
 * @internal
 */
import type * as LoadClient from "@effect-starrocks/sink/LoadClient"
import * as SinkMetrics from "@effect-starrocks/sink/SinkMetrics"
import { Duration, Effect, Metric } from "effect"

/** Loads in flight over the whole run (the gauge `numInflightLoads`). */
export const inflight = (n: number): Effect.Effect<void> => Metric.set(SinkMetrics.inflightLoads, n)

/** A batch of `rows` rows and `bytes` bytes landed after `ms`. */
export const landed = (
  database: string,
  table: string,
  batch: { readonly rows: number; readonly bytes: number },
  result: LoadClient.LoadResult,
  ms: number
): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* Effect.all([
      Metric.incrementBy(SinkMetrics.totalFlushRows, batch.rows),
      Metric.incrementBy(SinkMetrics.totalFlushBytes, batch.bytes),
      Metric.incrementBy(SinkMetrics.totalFlushSentBytes, result.compressedBytes ?? batch.bytes),
      Metric.increment(SinkMetrics.totalFlushSucceededTimes),
      Metric.incrementBy(SinkMetrics.totalFilteredRows, result.filteredRows),
      Metric.incrementBy(SinkMetrics.totalLoadRetries, result.retries),
      Metric.update(SinkMetrics.loadLatency, Duration.millis(ms))
    ], { discard: true })
    for (const [key, value] of Object.entries(result.timings)) {
      yield* Metric.update(Metric.tagged(SinkMetrics.serverTimeMs, "timing", key), value)
    }
  }).pipe(SinkMetrics.tagged(database, table))

/** A batch failed for good. */
export const failed = (database: string, table: string): Effect.Effect<void> =>
  Metric.increment(SinkMetrics.totalFlushFailedTimes).pipe(SinkMetrics.tagged(database, table))
