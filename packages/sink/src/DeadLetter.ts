/**
 * Rejected rows have a place: rows the encoder refuses and rows StarRocks filters go to a dead-letter `Sink` you
 * give, within a budget, instead of failing the stream.
 *
 * ```ts
 * import { Effect, Schema, Sink, Stream } from "effect"
 * import { DeadLetter, StarRocksSink } from "@effect-starrocks/sink"
 *
 * const Row = Schema.Struct({ id: Schema.Number, name: Schema.String })
 * declare const rows: Stream.Stream<typeof Row.Type>
 * const rejected = Sink.forEach((r: DeadLetter.Rejected) => Effect.logWarning(`rejected: ${r.reason}`))
 * const program = Stream.run(
 *   rows,
 *   StarRocksSink.make(Row, { deadLetter: { sink: rejected, maxRows: 100 } })
 * )
 * ```
 *
 * - `Refused`: a row the encoder refused (`RowEncodeError`: NaN, a string for an INT column, too long for a known
 *   `VARCHAR(n)`, a pre-serialized record that is not one line of its format, ...): the row itself (the typed row,
 *   or the raw record), its stream index, the column and the reason. It never travels.
 * - `Filtered`: a row StarRocks filtered (strict mode, a wrong field count, ...), read from the load's `ErrorURL`
 *   log (Basic auth; row data redacted under `sink.sanitize-error-log`): the row's text, the reason, the column
 *   where the reason names one, the label of its load. A log line the sink cannot parse comes whole, as `text`.
 * - `Unlisted`: filtered rows the error log does not list (StarRocks lists at most about 50 per load, and the log
 *   may be unavailable): how many, with the label.
 *
 * The budget is per table, over the whole run: `maxRows` rows rejected in all (refused and filtered; default no
 * limit), and `maxFilterRatio`, StarRocks' `max_filter_ratio`: the sink sends it with every load (1 when only
 * `maxRows` is given, so that StarRocks loads the good rows of a batch and reports the others), StarRocks then
 * fails a load whose filtered share is larger, and the sink fails when the share of a batch's rows the encoder
 * refused is larger. Beyond the budget the stream fails with a `DeadLetterError` (`OverBudget`) naming the table
 * and the counts. A dead-letter sink that fails, or ends before the stream, fails the stream (`SinkFailed`).
 *
 * @since 0.2.0
 */
import type { Sink } from "effect"
import { Schema } from "effect"
import * as InternalLanded from "./internal/landed.js"

/**
 * A row the encoder refused (it was never sent).
 *
 * @since 0.2.0
 * @category models
 */
export class Refused extends Schema.TaggedClass<Refused>()("Refused", {
  /** `db.table`; `(no table)` for a row no table takes (a `byTag` row whose `_tag` no table has). */
  table: Schema.String,
  /** The row's stream index (0-based, over every item the sink took). */
  index: Schema.Number,
  column: Schema.String,
  reason: Schema.String,
  /** The row as the stream gave it (for `StarRocksSink.raw`, the record: a string or bytes). */
  row: Schema.Unknown
}) {}

/**
 * A row StarRocks filtered, as its load's error log tells it.
 *
 * @since 0.2.0
 * @category models
 */
export class Filtered extends Schema.TaggedClass<Filtered>()("Filtered", {
  /** `db.table` */
  table: Schema.String,
  /** The label of the load that filtered it. */
  label: Schema.String,
  reason: Schema.String,
  /** The row's text (`<redacted>` under `sink.sanitize-error-log`); a line not understood comes whole. */
  text: Schema.String,
  /** The column, when the reason names one. */
  column: Schema.optional(Schema.String)
}) {}

/**
 * Rows StarRocks filtered that its error log does not list (it lists at most about 50 per load; the log may be
 * unavailable: `reason` says).
 *
 * @since 0.2.0
 * @category models
 */
export class Unlisted extends Schema.TaggedClass<Unlisted>()("Unlisted", {
  /** `db.table` */
  table: Schema.String,
  label: Schema.String,
  /** How many rows. */
  rows: Schema.Number,
  reason: Schema.String
}) {}

/**
 * What the dead-letter sink gets.
 *
 * @since 0.2.0
 * @category models
 */
export const Rejected = Schema.Union(Refused, Filtered, Unlisted)

/**
 * @since 0.2.0
 * @category models
 */
export type Rejected = Refused | Filtered | Unlisted

/**
 * The `deadLetter` option of `StarRocksSink.make` and `StarRocksSink.exactlyOnce`. Give the dead-letter sink's
 * services first (`Sink.provideContext`): it runs beside the sink, in its scope.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly sink: Sink.Sink<unknown, Rejected, unknown, unknown, never>
  /** Rows rejected per table (refused and filtered) beyond which the stream fails. Default: no limit. */
  readonly maxRows?: number | undefined
  /**
   * StarRocks' `max_filter_ratio`, sent with every load (0 to 1), and the share of a batch's rows the encoder may
   * refuse. Default: 1, or the `max_filter_ratio` of `sink.properties` (giving both is an error).
   */
  readonly maxFilterRatio?: number | undefined
}

/**
 * The dead letter could not take the rejected rows: `OverBudget` (a table's rejected rows passed `maxRows`, or a
 * load's or batch's share passed `maxFilterRatio`), `SinkFailed` (the dead-letter sink failed or ended before the
 * stream), `Invalid` (an option out of range, or given twice).
 *
 * @since 0.2.0
 * @category errors
 */
export class DeadLetterError extends Schema.TaggedError<DeadLetterError>()("DeadLetterError", {
  reason: Schema.Literal("OverBudget", "SinkFailed", "Invalid"),
  /** `db.table`, when one table is concerned. */
  table: Schema.optional(Schema.String),
  /** Rows of the table the encoder refused so far. */
  refusedRows: Schema.optional(Schema.Number),
  /** Rows of the table StarRocks filtered so far. */
  filteredRows: Schema.optional(Schema.Number),
  detail: Schema.String,
  /** What the dead-letter sink failed with (`SinkFailed`). */
  error: Schema.optional(Schema.Unknown),
  /** What had landed when the at-least-once sink failed with this error (`StarRocksError.Landed`). */
  landed: Schema.optional(InternalLanded.Landed)
}) {
  override get message(): string {
    return `dead letter (${this.reason})${this.table !== undefined ? ` for table ${this.table}` : ""}: ${this.detail}${
      InternalLanded.suffix(this.landed)
    }`
  }
}
