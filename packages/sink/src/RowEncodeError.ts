/**
 * @since 0.1.0
 */
import { Schema } from "effect"
import * as InternalLanded from "./internal/landed.js"

/**
 * A value the target column cannot take (or a row that cannot travel as CSV when the JSON fallback is off). Names
 * the row index (as given to `BatchBuilder.add`), the column and the reason; carries at most a short excerpt of the
 * offending value, never the row. The sink adds the table it was bound for.
 *
 * @since 0.1.0
 * @category errors
 */
export class RowEncodeError extends Schema.TaggedError<RowEncodeError>()("RowEncodeError", {
  row: Schema.Number,
  column: Schema.String,
  reason: Schema.String,
  /** The target table (`db.table`), set by the sink. */
  table: Schema.optional(Schema.String),
  /** What had landed when the at-least-once sink failed with this error (set by the sink: `StarRocksError.Landed`). */
  landed: Schema.optional(InternalLanded.Landed)
}) {
  override get message(): string {
    return `cannot encode row ${this.row}${
      this.table !== undefined ? ` for table ${this.table}` : ""
    }, column ${this.column}: ${this.reason}${InternalLanded.suffix(this.landed)}`
  }
}
