/**
 * Where the sink records the labels it loads under, so that no load is ever under an unknown label: a batch's
 * label is recorded `pending` before its first attempt and `committed` (or `failed`, `in-doubt`) after.
 * Exactly-once recovery reads it back.
 *
 * Three stores: in memory (`layerMemory` here, the default: nothing survives the process), on the file system
 * (`layerFileSystem` in `@effect-starrocks/sink/LabelStore/FileSystem`: an fsynced append-only log, compacted
 * atomically) and in SQL (`layerSql` in `@effect-starrocks/sink/LabelStore/Sql`: one row per label, MySQL /
 * MariaDB; needs the optional `@effect/sql`). All keep committed labels up to `maxCommitted` (oldest dropped first)
 * and list in put order. This module loads neither the file system nor `@effect/sql`.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Option, Ref, Schema } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export const LabelState = Schema.Literal("pending", "committed", "failed", "in-doubt")

/**
 * @since 0.1.0
 * @category models
 */
export type LabelState = typeof LabelState.Type

/**
 * @since 0.1.0
 * @category models
 */
export class LabelRecord extends Schema.Class<LabelRecord>("LabelRecord")({
  label: Schema.String,
  /** `db.table` */
  table: Schema.String,
  state: LabelState,
  rows: Schema.Number,
  bytes: Schema.Number,
  updatedAt: Schema.Number
}) {}

/**
 * @since 0.1.0
 * @category errors
 */
export class LabelStoreError extends Schema.TaggedError<LabelStoreError>()("LabelStoreError", {
  reason: Schema.String
}) {}

/**
 * @since 0.1.0
 * @category models
 */
export interface LabelStore {
  readonly put: (record: LabelRecord) => Effect.Effect<void, LabelStoreError>
  readonly get: (label: string) => Effect.Effect<Option.Option<LabelRecord>, LabelStoreError>
  readonly list: (filter?: {
    readonly table?: string | undefined
    readonly state?: LabelState | undefined
  }) => Effect.Effect<ReadonlyArray<LabelRecord>, LabelStoreError>
  readonly remove: (label: string) => Effect.Effect<void, LabelStoreError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const LabelStore: Context.Tag<LabelStore, LabelStore> = Context.GenericTag<LabelStore>(
  "@effect-starrocks/sink/LabelStore"
)

/**
 * An in-memory store (the default). Committed labels are kept up to `maxCommitted` (oldest dropped first).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options?: { readonly maxCommitted?: number | undefined }): Effect.Effect<LabelStore> =>
  Effect.map(Ref.make(new Map<string, LabelRecord>()), (ref): LabelStore => {
    const maxCommitted = options?.maxCommitted ?? 10_000
    return {
      put: (record) =>
        Ref.update(ref, (map) => {
          const next = new Map(map)
          next.delete(record.label)
          next.set(record.label, record)
          let committed = 0
          for (const r of next.values()) if (r.state === "committed") committed++
          for (const [label, r] of next) {
            if (committed <= maxCommitted) break
            if (r.state === "committed") {
              next.delete(label)
              committed--
            }
          }
          return next
        }),
      get: (label) => Effect.map(Ref.get(ref), (map) => Option.fromNullable(map.get(label))),
      list: (filter) =>
        Effect.map(
          Ref.get(ref),
          (map) =>
            Array.from(map.values()).filter((r) =>
              (filter?.table === undefined || r.table === filter.table) &&
              (filter?.state === undefined || r.state === filter.state)
            )
        ),
      remove: (label) =>
        Ref.update(ref, (map) => {
          const next = new Map(map)
          next.delete(label)
          return next
        })
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<LabelStore> = Layer.effect(LabelStore, makeMemory())
