/**
 * What the durable stores (LabelStore/FileSystem.ts, LabelStore/Sql.ts, Checkpointer/FileSystem.ts,
 * Checkpointer/Sql.ts) share: the retention rule, the number check and the JSON form of a checkpoint record.
 *
 * @internal
 */
import { Effect, Schema } from "effect"
import { CheckpointerError, CheckpointRecord } from "../Checkpointer.js"
import type { LabelRecord } from "../LabelStore.js"
import { LabelStoreError } from "../LabelStore.js"
import * as FileStore from "./fileStore.js"

/** Puts into a map with the retention rule of every store: re-put moves to the end, oldest committed go first. */
export const putWithRetention = (map: Map<string, LabelRecord>, record: LabelRecord, maxCommitted: number): void => {
  map.delete(record.label)
  map.set(record.label, record)
  let committed = 0
  for (const r of map.values()) if (r.state === "committed") committed++
  for (const [label, r] of map) {
    if (committed <= maxCommitted) break
    if (r.state === "committed") {
      map.delete(label)
      committed--
    }
  }
}

export const checkNumbers = (record: LabelRecord): Effect.Effect<void, LabelStoreError> =>
  Number.isFinite(record.rows) && Number.isFinite(record.bytes) && Number.isFinite(record.updatedAt)
    ? Effect.void
    : Effect.fail(
      new LabelStoreError({
        reason: `label ${JSON.stringify(record.label)}: rows, bytes and updatedAt must be finite numbers`
      })
    )

const decodeRecordJson = Schema.decodeUnknown(Schema.parseJson(CheckpointRecord))
const encodeRecord = Schema.encode(CheckpointRecord)

/** The record as JSON text; fails when the position is not JSON-safe (a bigint, a cycle). */
export const recordJson = (record: CheckpointRecord): Effect.Effect<string, CheckpointerError> =>
  encodeRecord(record).pipe(
    Effect.flatMap((encoded) => Effect.try(() => JSON.stringify(encoded))),
    Effect.mapError((error) =>
      new CheckpointerError({
        reason: `checkpoint ${JSON.stringify(record.key)} id ${record.id} cannot be written as JSON (the position ` +
          `must be Schema-encoded, JSON-safe): ${FileStore.errorMessage(error)}`
      })
    )
  )

/** Decodes stored JSON text, naming where it came from on failure; the stored key must be the one asked for. */
export const decodeStored = (
  text: string,
  key: string,
  where: string
): Effect.Effect<CheckpointRecord, CheckpointerError> =>
  decodeRecordJson(text).pipe(
    Effect.mapError((error) => new CheckpointerError({ reason: `corrupt checkpoint in ${where}: ${error.message}` })),
    Effect.filterOrFail(
      (record) => record.key === key,
      (record) =>
        new CheckpointerError({
          reason: `checkpoint in ${where} belongs to key ${JSON.stringify(record.key)}, not ${JSON.stringify(key)}`
        })
    )
  )
