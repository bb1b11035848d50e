/**
 * @since 0.1.0
 */
import type { Effect } from "effect"
import { Context } from "effect"
import type { LoadError } from "./StarRocksError.js"

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

/**
 * CONTRACT (implemented in this module): one operation, one logical HTTP exchange: the FE hop(s) and the 307
 * redirect(s) are followed by hand (same headers incl. Authorization, `Expect: 100-continue`, replayable body),
 * across the configured load URLs with health-tracked failover. The outcome is classified exhaustively; retries
 * with backoff and label settlement live in `loadBatch`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadClient {
  /** Plain stream load of one batch under `label`, retried per the config's schedule, label settled. */
  readonly loadBatch: (request: {
    readonly label: string
    readonly headers: Readonly<Record<string, string>>
    readonly body: LoadBody
  }) => Effect.Effect<LoadResult, LoadError>
  /** `GET /api/{db}/get_load_state?label=` */
  readonly getLoadState: (label: string) => Effect.Effect<LabelState, LoadError>
}

/**
 * @since 0.1.0
 * @category models
 */
export type LabelState = "UNKNOWN" | "PREPARE" | "PREPARED" | "COMMITTED" | "VISIBLE" | "ABORTED"

/**
 * @since 0.1.0
 * @category models
 */
export interface LoadResult {
  readonly label: string
  /** `Success`, `Publish Timeout`, or `Label Already Exists` settled as committed. */
  readonly status: "Success" | "Publish Timeout" | "Already Loaded"
  readonly txnId: number
  readonly loadedRows: number
  readonly filteredRows: number
  readonly unselectedRows: number
  readonly loadBytes: number
  /** Attempts beyond the first. */
  readonly retries: number
  /** FE→BE hops of the last attempt, e.g. `["http://127.0.0.1:8030", "http://127.0.0.2:8040"]`. */
  readonly hops: ReadonlyArray<string>
  /** Server timings from the response body (`LoadTimeMs`, `WriteDataTimeMs`, ...). */
  readonly timings: Readonly<Record<string, number>>
  readonly errorUrl?: string | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export const LoadClient: Context.Tag<LoadClient, LoadClient> = Context.GenericTag<LoadClient>(
  "@effect-starrocks/sink/LoadClient"
)
