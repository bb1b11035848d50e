/**
 * The sink's metrics, as Effect `Metric`s tagged with `table` = `db.table`.
 *
 * Names follow the Flink connector's documented counters (`totalFlushBytes`, `totalFlushRows`,
 * `totalFlushSucceededTimes`, `totalFlushFailedTimes`) so dashboards carry over, plus what it lacks.
 * Export them with `@effect/opentelemetry` (Prometheus or OTLP); docs/sink.md lists them.
 *
 * @since 0.1.0
 */
import { Effect, FiberRef, Metric, MetricBoundaries } from "effect"
import { withLabel } from "./internal/metricLabels.js"

/**
 * @since 0.1.0
 * @category metrics
 */
export const totalFlushBytes = Metric.counter("totalFlushBytes", {
  description: "bytes of Stream Load bodies that landed (before compression)",
  incremental: true
})

/**
 * Bytes of the load bodies that landed as they were sent: after compression (`sink.properties.compression`), else
 * equal to `totalFlushBytes` (the bodies before compression).
 *
 * @since 0.2.0
 * @category metrics
 */
export const totalFlushSentBytes = Metric.counter("totalFlushSentBytes", {
  description: "bytes of Stream Load bodies that landed, as sent (after compression)",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const totalFlushRows = Metric.counter("totalFlushRows", {
  description: "rows sent in loads that landed",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const totalFlushSucceededTimes = Metric.counter("totalFlushSucceededTimes", {
  description: "loads that landed (Success, Publish Timeout, or an earlier attempt's label found committed)",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const totalFlushFailedTimes = Metric.counter("totalFlushFailedTimes", {
  description: "loads that failed for good after their retries",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const totalFilteredRows = Metric.counter("totalFilteredRows", {
  description: "rows StarRocks filtered (NumberFilteredRows) in loads that landed",
  incremental: true
})

/**
 * Rows sent to the dead letter (`DeadLetter`): refused by the encoder or filtered by StarRocks.
 *
 * @since 0.2.0
 * @category metrics
 */
export const totalDeadLetteredRows = Metric.counter("totalDeadLetteredRows", {
  description: "rows sent to the dead letter (refused by the encoder or filtered by StarRocks)",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const totalLoadRetries = Metric.counter("totalLoadRetries", {
  description: "load attempts beyond the first, all under the batch's own label",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const inflightLoads = Metric.gauge("numInflightLoads", { description: "Stream Loads in flight" })

/**
 * @since 0.1.0
 * @category metrics
 */
export const bufferedBytes = Metric.gauge("currentBufferBytes", {
  description: "bytes encoded and not yet loaded (building batch plus batches in flight)"
})

/**
 * The table's current limit of loads in flight under adaptive concurrency (`sink.adaptive-concurrency.enabled`):
 * set when the table's first load is dispatched and at every change; 1 for an ordered (Primary Key) table. Not set
 * without adaptive concurrency.
 *
 * @since 0.3.0
 * @category metrics
 */
export const adaptiveConcurrencyLimit = Metric.gauge("adaptiveConcurrencyLimit", {
  description: "the table's limit of loads in flight under adaptive concurrency (AIMD)"
})

/**
 * Seconds since the table's last load landed (since the sink started, before its first). Kept by the ledger: set
 * to 0 when a load lands and refreshed every second (and at each watchdog check) while the sink runs.
 *
 * @since 0.2.0
 * @category metrics
 */
export const secondsSinceLastLoad = Metric.gauge("secondsSinceLastLoad", {
  description: "seconds since the table's last load landed (since the sink started, before the first)"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const loadLatency = Metric.timerWithBoundaries(
  "loadLatencyMs",
  [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]
)

/**
 * The histogram behind `loadLatency` (the same metric key: its name and boundaries object, without the `time_unit` tag),
 * for the ledger, which updates it with milliseconds under labels arrays kept for the next use
 * (internal/metricLabels.ts `withLabel(labels, "time_unit", "milliseconds", true)`: the labels `loadLatency` adds
 * before the fiber's). `loadLatency` itself adds its tag to a fresh array at each update, which Effect's metric
 * cache misses: a metric key built, hashed and looked up in the registry at every load.
 *
 * @internal
 */
export const loadLatencyMillis = Metric.histogram(
  "loadLatencyMs",
  // the boundaries object itself: Effect compares metric keys' boundaries by identity (equal arrays are not equal)
  loadLatency.keyType.boundaries
)

/**
 * Server-side timings of each response (`LoadTimeMs`, `WriteDataTimeMs`, `CommitAndPublishTimeMs`, ...), tagged
 * with `timing` = the response key.
 *
 * @since 0.1.0
 * @category metrics
 */
export const serverTimeMs = Metric.histogram(
  "serverTimeMs",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 18 })
)

/**
 * The tag value used for a table: `db.table`.
 *
 * @since 0.1.0
 * @category tags
 */
export const tableTag = (database: string, table: string): string => `${database}.${table}`

/**
 * Tags every metric updated inside an effect with the sink's table (`table` = `db.table`), as
 * `Effect.tagMetrics("table", ...)` does, under labels arrays kept for the next use (internal/metricLabels.ts: an
 * update under a labels array Effect has seen is a cache hit).
 *
 * @since 0.1.0
 * @category combinators
 */
export const tagged = (
  database: string,
  table: string
): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R> => {
  const tag = tableTag(database, table)
  return (self) => Effect.locallyWith(self, FiberRef.currentMetricLabels, (labels) => withLabel(labels, "table", tag))
}
