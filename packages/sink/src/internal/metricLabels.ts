/**
 * Metric labels kept as the same arrays, for the sink's per-table metrics (SinkMetrics.ts `tagged`, and the ledger's
 * one-step updates in internal/sink/ledger.ts).
 *
 * @internal
 */
import { Array as Arr, MetricLabel } from "effect"

/**
 * Metric labels kept as the same arrays: Effect finds a metric's entry for a set of labels through a cache keyed by
 * the labels array itself (its identity), so an update under an array it has seen costs a lookup, where a fresh
 * array (what `Effect.tagMetrics` makes each time it is applied) builds the metric's tagged key again, hashes it
 * and looks it up in the registry. A load updates about a dozen metrics of its table.
 */
const labelArrays = new WeakMap<
  ReadonlyArray<MetricLabel.MetricLabel>,
  Map<string, ReadonlyArray<MetricLabel.MetricLabel>>
>()

/**
 * `labels` with `key=value` added, as `Arr.union` does: after them (`Effect.tagMetrics`), or before them (`first`:
 * `Metric.tagged` on a metric updated under `labels`). The same array for the same arguments.
 */
export const withLabel = (
  labels: ReadonlyArray<MetricLabel.MetricLabel>,
  key: string,
  value: string,
  first = false
): ReadonlyArray<MetricLabel.MetricLabel> => {
  let added = labelArrays.get(labels)
  if (added === undefined) {
    added = new Map()
    labelArrays.set(labels, added)
  }
  const name = `${first ? "<" : ">"}${key}\u0000${value}`
  let out = added.get(name)
  if (out === undefined) {
    const label = [MetricLabel.make(key, value)]
    out = first ? Arr.union(label, labels) : Arr.union(labels, label)
    added.set(name, out)
  }
  return out
}
