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
import { Context, Effect, Layer, Option, Schema } from "effect"

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
 * A put costs the same however many labels are kept: the map is changed in place (a load makes two puts, and a copy
 * of a full map of 10,000 committed labels per put cost about 8 ms of CPU per load, docs/benchmark.md "Session 10"),
 * and the committed labels are counted as they come and go.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options?: { readonly maxCommitted?: number | undefined }): Effect.Effect<LabelStore> =>
  Effect.sync((): LabelStore => {
    const maxCommitted = options?.maxCommitted ?? 10_000
    // insertion order is age: a re-put deletes and sets again, so the oldest committed labels come first
    const map = new Map<string, LabelRecord>()
    let committed = 0
    const drop = (label: string) => {
      const old = map.get(label)
      if (old === undefined) return
      if (old.state === "committed") committed--
      map.delete(label)
    }
    return {
      put: (record) =>
        Effect.sync(() => {
          drop(record.label)
          map.set(record.label, record)
          if (record.state === "committed") committed++
          if (committed <= maxCommitted) return
          for (const [label, r] of map) {
            if (r.state !== "committed") continue
            map.delete(label)
            if (--committed <= maxCommitted) break
          }
        }),
      get: (label) => Effect.sync(() => Option.fromNullable(map.get(label))),
      list: (filter) =>
        Effect.sync(() =>
          Array.from(map.values()).filter((r) =>
            (filter?.table === undefined || r.table === filter.table) &&
            (filter?.state === undefined || r.state === filter.state)
          )
        ),
      remove: (label) => Effect.sync(() => drop(label))
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<LabelStore> = Layer.effect(LabelStore, makeMemory())
