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
 * Fencing (docs/exactly-once.md, "Partitions and fencing"): every key has an **epoch** (0 until claimed). `claim`
 * raises it by one and records the owner; `save` is a compare-and-set that refuses a record whose `epoch` is lower
 * than the key's current epoch (the highest claimed or saved) with a `CheckpointerError` whose `fenced` is true,
 * and within one epoch never goes back to a lower checkpoint id.
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
  createdAt: Schema.Number,
  /**
   * The owner's epoch this record was written under (`claim`); 0 for a sink without `owner` and for records
   * written before fencing (absent in their JSON). `save` refuses a record whose epoch is below the key's.
   *
   * @since 0.4.0
   */
  epoch: Schema.optionalWith(Schema.Number, { default: () => 0 })
}) {}

/**
 * @since 0.1.0
 * @category errors
 */
export class CheckpointerError extends Schema.TaggedError<CheckpointerError>()("CheckpointerError", {
  reason: Schema.String,
  /**
   * A `save` refused by fencing: the record's epoch is below the key's current epoch (another owner claimed the
   * key). Nothing was written. The exactly-once sink turns it into `ExactlyOnceError` `Fenced`.
   *
   * @since 0.4.0
   */
  fenced: Schema.optional(Schema.Boolean),
  /** `fenced`: the checkpoint key. */
  key: Schema.optional(Schema.String),
  /** `fenced`: the epoch of the refused record. */
  epoch: Schema.optional(Schema.Number),
  /** `fenced`: the key's current epoch. */
  currentEpoch: Schema.optional(Schema.Number),
  /** `fenced`: the owner that claimed the current epoch, when known. */
  currentOwner: Schema.optional(Schema.String)
}) {}

/**
 * Whether a `CheckpointerError` is a save refused by fencing (`fenced: true`).
 *
 * @since 0.4.0
 * @category predicates
 */
export const isFenced = (error: CheckpointerError): boolean => error.fenced === true

/**
 * The fencing state of a key: its current epoch (the highest claimed or saved, 0 when never claimed) and the owner
 * that claimed it (when known).
 *
 * @since 0.4.0
 * @category models
 */
export interface Fence {
  readonly epoch: number
  readonly owner: string | undefined
}

/**
 * The refusal of a save whose record's epoch is below the key's current one.
 *
 * @since 0.4.0
 * @category constructors
 */
export const fencedError = (record: CheckpointRecord, current: Fence): CheckpointerError =>
  new CheckpointerError({
    reason: `checkpoint ${JSON.stringify(record.key)} id ${record.id} refused: it was written under epoch ` +
      `${record.epoch}, but the key is at epoch ${current.epoch}` +
      `${current.owner !== undefined ? ` (claimed by ${JSON.stringify(current.owner)})` : ""}: another owner ` +
      `took the key over`,
    fenced: true,
    key: record.key,
    epoch: record.epoch,
    currentEpoch: current.epoch,
    ...(current.owner !== undefined ? { currentOwner: current.owner } : {})
  })

/**
 * What `save` does with a record given the key's fence and stored record (every store applies this rule):
 * `fenced` (refused), `stale` (a lower id within the same epoch: kept as is, not an error), or `write`.
 *
 * @since 0.4.0
 * @category utils
 */
export const saveDecision = (
  record: CheckpointRecord,
  fence: Fence,
  stored: CheckpointRecord | undefined
): "fenced" | "stale" | "write" =>
  record.epoch < fence.epoch
    ? "fenced"
    : stored !== undefined && stored.epoch === record.epoch && stored.id > record.id
    ? "stale"
    : "write"

/**
 * @since 0.1.0
 * @category models
 */
export interface Checkpointer {
  /**
   * A compare-and-set: refused (`CheckpointerError` with `fenced: true`, nothing written) when `record.epoch` is
   * below the key's current epoch; within one epoch a lower id than the stored one is ignored (never goes back).
   */
  readonly save: (record: CheckpointRecord) => Effect.Effect<void, CheckpointerError>
  readonly latest: (key: string) => Effect.Effect<Option.Option<CheckpointRecord>, CheckpointerError>
  /**
   * Atomically raises the key's epoch by one (a key never claimed is at epoch 0) and records `owner`; returns the
   * new epoch. From then on saves of lower epochs are refused.
   *
   * @since 0.4.0
   */
  readonly claim: (key: string, owner: string) => Effect.Effect<number, CheckpointerError>
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
type MemoryState = Map<string, { readonly fence: Fence; readonly record: CheckpointRecord | undefined }>

export const makeMemoryForTests: Effect.Effect<Checkpointer> = Effect.map(
  Ref.make<MemoryState>(new Map()),
  (ref): Checkpointer => {
    const store: Checkpointer = {
      save: (record) =>
        Effect.flatten(Ref.modify(ref, (map): readonly [Effect.Effect<void, CheckpointerError>, MemoryState] => {
          const current = map.get(record.key) ?? { fence: { epoch: 0, owner: undefined }, record: undefined }
          switch (saveDecision(record, current.fence, current.record)) {
            case "fenced":
              return [Effect.fail(fencedError(record, current.fence)), map]
            case "stale":
              return [Effect.void, map]
            case "write": {
              const fence = record.epoch > current.fence.epoch
                ? { epoch: record.epoch, owner: undefined }
                : current.fence
              return [Effect.void, new Map(map).set(record.key, { fence, record })]
            }
          }
        })),
      latest: (key) => Effect.map(Ref.get(ref), (map) => Option.fromNullable(map.get(key)?.record)),
      claim: (key, owner) =>
        Ref.modify(ref, (map) => {
          const current = map.get(key)
          const epoch = (current?.fence.epoch ?? 0) + 1
          return [epoch, new Map(map).set(key, { fence: { epoch, owner }, record: current?.record })] as const
        })
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
