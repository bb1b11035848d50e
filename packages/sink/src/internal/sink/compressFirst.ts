/**
 * Compression before a load's first attempt, shared by the at-least-once dispatcher and the exactly-once sink: when
 * a batch's headers ask for a codec and the client can compress (`LoadClient.compress`), its body is compressed
 * once, its raw chunks go back to the encoder's pool as the codec reads them, and the frame (marked `compressed`) is
 * what every attempt, redirect and replay sends. The permits of the byte budget beyond the frame's size then go back,
 * so that the budget counts what the load holds from then on.
 *
 * @internal
 */
import { Effect } from "effect"
import type { LoadBody } from "../../LoadBody.js"
import type * as LoadClient from "../../LoadClient.js"
import type { LoadError } from "../../StarRocksError.js"
import * as Compression from "../client/compression.js"

/**
 * The compression of `raw` before its load, or undefined when it is sent as it is (no codec asked, or a client
 * without `compress`). `release` takes the raw chunks back.
 */
export const compressFirst = (
  client: LoadClient.LoadClient,
  raw: LoadClient.LoadRequest,
  release: (body: LoadBody) => void
): Effect.Effect<LoadClient.LoadRequest, LoadError> | undefined =>
  client.compress !== undefined && Compression.wanted(raw.headers) ?
    Effect.suspend(() => client.compress!(raw, release)) :
    undefined

/** The permits of `held` beyond the size of the body a load now holds: what goes back to the byte budget. */
export const spare = (held: number, body: LoadBody): number => held - Math.min(held, Math.max(1, body.byteLength))
