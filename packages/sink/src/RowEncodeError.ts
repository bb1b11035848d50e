/**
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A value the target column cannot take (or a row that cannot travel as CSV when the JSON fallback is off). Names
 * the row index (as given to `BatchBuilder.add`), the column and the reason; carries at most a short excerpt of the
 * offending value, never the row.
 *
 * @since 0.1.0
 * @category errors
 */
export class RowEncodeError extends Schema.TaggedError<RowEncodeError>()("RowEncodeError", {
  row: Schema.Number,
  column: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot encode row ${this.row}, column ${this.column}: ${this.reason}`
  }
}
