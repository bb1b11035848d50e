/**
 * @since 0.1.0
 */
import type { Schema } from "effect"
import type { LoadBody } from "./LoadClient.js"

/**
 * CONTRACT (implementation pending): encoders are compiled once from an `effect/Schema` struct; no per-row
 * reflection.
 *
 * @since 0.1.0
 * @category models
 */
export interface BatchBuilder<A> {
  readonly format: "csv" | "json"
  /** Rows added so far. */
  readonly rows: number
  /** Encoded bytes so far (UTF-8). */
  readonly bytes: number
  /**
   * Encodes and appends one row. Returns false, adding nothing, when the row cannot travel in this batch's
   * format (CSV and the row holds the exact string `\N`, or needs quoting on a server below 3.0): the caller
   * finishes this batch and starts a JSON one. Throws `RowEncodeError` for a value the column cannot take.
   */
  readonly add: (row: A, rowIndex: number) => boolean
  /** The body and the Stream Load headers of this batch (`format`, separators, `enclose`, `escape`, `columns`…). */
  readonly finish: () => { readonly body: LoadBody; readonly headers: Readonly<Record<string, string>> }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RowEncoder<A> {
  /** Column names in the order they are sent. */
  readonly columns: ReadonlyArray<string>
  readonly builder: (format: "csv" | "json") => BatchBuilder<A>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RowEncoderOptions {
  readonly columns?: ReadonlyArray<string> | undefined
  readonly timeZone?: string | undefined
  /** With false, a row holding the exact string `\N` in a CSV batch is a RowEncodeError instead of JSON. */
  readonly csvJsonFallback?: boolean | undefined
  /** Servers below 3.0 ignore `enclose`/`escape`. */
  readonly serverSupportsEnclose?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export declare const make: <A, I, R>(
  schema: Schema.Schema<A, I, R>,
  options?: RowEncoderOptions
) => RowEncoder<A>
