/**
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * CONTRACT: errors of the load path. (LoadClient owner refines these; keep the tags.)
 *
 * @since 0.1.0
 * @category errors
 */
export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  url: Schema.String,
  reason: Schema.String
}) {}

/**
 * @since 0.1.0
 * @category errors
 */
export class StreamLoadError extends Schema.TaggedError<StreamLoadError>()("StreamLoadError", {
  label: Schema.String,
  status: Schema.String,
  message: Schema.String,
  retryable: Schema.Boolean
}) {}

/**
 * @since 0.1.0
 * @category errors
 */
export type LoadError = TransportError | StreamLoadError
