import { Schema } from "effect"

/**
 * A failure of the exactly-once protocol that is not a plain load error:
 * - `PreparedLost`: a label that the last checkpoint prepared is ABORTED (e.g. `prepared_timeout` passed before
 *   recovery) or no longer known (label retention): that checkpoint's data is not in StarRocks.
 * - `LabelCollision`: a COMMITTED/VISIBLE label at or after the recorded next label id: the label prefix and
 *   instance collide with labels this instance does not own.
 * - `CommitFailed`: a prepared transaction could not be committed (retried and verified; still PREPARED).
 * - `Spool`: the replay spool could not be written or read.
 * - `Unsupported`: a configuration the exactly-once sink does not support.
 * - `Position`: the barrier position could not be encoded or the recorded one decoded.
 * - `Coordinator`: another instance of an aligned checkpoint failed or was interrupted.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExactlyOnceError extends Schema.TaggedError<ExactlyOnceError>()("ExactlyOnceError", {
  reason: Schema.Literal(
    "PreparedLost",
    "LabelCollision",
    "CommitFailed",
    "Spool",
    "Unsupported",
    "Position",
    "Coordinator"
  ),
  message: Schema.String,
  label: Schema.optional(Schema.String),
  labelState: Schema.optional(Schema.String)
}) {}
