/**
 * The body of one load: chunks of encoded rows that can be sent more than once.
 *
 * @since 0.1.0
 */

/**
 * A request body that can be sent more than once (redirects and retries replay it).
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadBody {
  readonly chunks: ReadonlyArray<Uint8Array>
  readonly byteLength: number
}
