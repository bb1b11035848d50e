/**
 * Durable checkpoint records (exactly-once), one latest record per checkpoint key (one key per sink instance).
 * Three stores: in memory (`layerMemoryForTests` here, for tests only: nothing survives the process), on the file system
 * (`layerFileSystem` in `@effect-starrocks/sink/Checkpointer/FileSystem`: one JSON file per key, replaced atomically
 * and fsynced) and in SQL (`layerSql` in `@effect-starrocks/sink/Checkpointer/Sql`: one row per key in a shared
 * table, MySQL / MariaDB; needs the optional `@effect/sql`). No store ever goes back to a lower checkpoint id.
 *
 * No layer of the sink provides a `Checkpointer`: `StarRocksSink.exactlyOnce` and `recover` require one, so a
 * program that gives none does not type-check. The in-memory store is there only by its name, for tests.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Option, Ref, Schema } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export class CheckpointRecord extends Schema.Class<CheckpointRecord>("CheckpointRecord")({
  /** The checkpoint key (one per sink instance). */
  key: Schema.String,
  id: Schema.Number,
  /** The source position, Schema-encoded by the application (opaque to the sink). */
  position: Schema.Unknown,
  /** Labels prepared in this checkpoint, per `db.table`. */
  prepared: Schema.Record({ key: Schema.String, value: Schema.Array(Schema.String) }),
  /** Next label id per `db.table`. */
  nextLabelId: Schema.Record({ key: Schema.String, value: Schema.Number }),
  createdAt: Schema.Number
}) {}

/**
 * @since 0.1.0
 * @category errors
 */
export class CheckpointerError extends Schema.TaggedError<CheckpointerError>()("CheckpointerError", {
  reason: Schema.String
}) {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Checkpointer {
  readonly save: (record: CheckpointRecord) => Effect.Effect<void, CheckpointerError>
  readonly latest: (key: string) => Effect.Effect<Option.Option<CheckpointRecord>, CheckpointerError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Checkpointer: Context.Tag<Checkpointer, Checkpointer> = Context.GenericTag<Checkpointer>(
  "@effect-starrocks/sink/Checkpointer"
)

/** The stores made by `makeMemoryForTests`. */
const inMemory = new WeakSet<Checkpointer>()

/**
 * A store in memory, for tests only: nothing survives the process, so exactly-once on it is at-least-once at
 * best (a restart finds no checkpoint, and fails with a `LabelCollision` once labels of the last run exist).
 *
 * @since 0.3.0
 * @category constructors
 */
export const makeMemoryForTests: Effect.Effect<Checkpointer> = Effect.map(
  Ref.make(new Map<string, CheckpointRecord>()),
  (ref): Checkpointer => {
    const store: Checkpointer = {
      save: (record) =>
        Ref.update(ref, (map) => {
          const current = map.get(record.key)
          if (current !== undefined && current.id > record.id) return map
          return new Map(map).set(record.key, record)
        }),
      latest: (key) => Effect.map(Ref.get(ref), (map) => Option.fromNullable(map.get(key)))
    }
    inMemory.add(store)
    return store
  }
)

/**
 * Whether the store is the in-memory one of `makeMemoryForTests` (the exactly-once sink warns when it runs on it).
 *
 * @since 0.3.0
 * @category predicates
 */
export const isMemoryForTests = (store: Checkpointer): boolean => inMemory.has(store)

/**
 * `makeMemoryForTests` as a layer: for tests only (see there).
 *
 * @since 0.3.0
 * @category layers
 */
export const layerMemoryForTests: Layer.Layer<Checkpointer> = Layer.effect(Checkpointer, makeMemoryForTests)
