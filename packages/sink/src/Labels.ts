/**
 * Recovery tooling for the exactly-once sink's transactions, for a restart by hand: list the labels under a label
 * prefix with their state, roll back (abort) every lingering one (PREPARE or PREPARED) for a fresh start, commit a
 * named one. The CLI's `effect-starrocks labels list|commit|abort` runs these (docs/cli.md).
 *
 * The exactly-once sink's labels are `{prefix}-{table}-{instance}-{id}` with ids 0, 1, 2, … per table. StarRocks
 * cannot list labels by prefix over HTTP, so they are found by probing `get_load_state`:
 * - the labels the last checkpoint record prepared (`checkpoint`: they may be PREPARED, or ABORTED when
 *   `prepared_timeout` passed);
 * - the label ids from the table's next label id on (the checkpoint's `nextLabelId`, else `from`, default 0),
 *   until 8 unknown ids in a row: the transactions begun after the last checkpoint. Without a checkpoint record the
 *   walk starts at `from`: labels StarRocks already evicted (label retention) end it early, so give `from` near the
 *   ids in use when the job ran long.
 *
 * On a real cluster `SHOW PROC '/transactions/<db>/running'` over the MySQL port (`jdbc-url`, an admin user) lists
 * every running transaction of a database whatever its label (up to 2000): what the probing cannot see, e.g.
 * labels of another prefix or instance. See docs/exactly-once.md, "Restart policy".
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Labels, LoadClient, StarRocksConfig } from "@effect-starrocks/sink"
 *
 * declare const config: StarRocksConfig.StarRocksConfig
 * const fresh = Labels.abort({ prefix: "orders", tables: [{ database: "db", table: "orders" }] }).pipe(
 *   Effect.tap((r) => Effect.log(`rolled back ${r.aborted.length} transactions`)),
 *   Effect.provide(LoadClient.layer(config))
 * )
 * ```
 *
 * @since 0.3.0
 */
import { Effect, Schema } from "effect"
import { CheckpointerError, CheckpointRecord } from "./Checkpointer.js"
import * as Recovery from "./internal/recovery.js"
import * as LoadClient from "./LoadClient.js"
import type { LoadError } from "./StarRocksError.js"
import { ExactlyOnceError } from "./StarRocksError.js"

/**
 * Where to look for labels.
 *
 * @since 0.3.0
 * @category models
 */
export interface Scope {
  /** The sink's label prefix (`sink.label-prefix`). */
  readonly prefix: string
  /** The tables whose labels to look at; with a `checkpoint`, its tables are added. */
  readonly tables: ReadonlyArray<LoadClient.Target>
  /** The sink instance (`ExactlyOnceOptions.instance`); default: read from the checkpoint's key, else "0". */
  readonly instance?: string | undefined
  /** The last checkpoint record (e.g. `decodeCheckpoint` of a `Checkpointer/FileSystem` file). */
  readonly checkpoint?: CheckpointRecord | undefined
  /** The first label id probed in a table the checkpoint gives no next id for (default 0). */
  readonly from?: number | undefined
}

/**
 * A label found, with its state.
 *
 * @since 0.3.0
 * @category models
 */
export interface LabelInfo {
  readonly label: string
  readonly database: string
  readonly table: string
  /** The label id (its last part). */
  readonly id: number
  readonly state: LoadClient.LoadState
  /** An ABORTED label's reason, as the FE gives it (newer FEs). */
  readonly reason: string | undefined
  /** `checkpoint`: a label the checkpoint record prepared; `walk`: found probing the ids after its next id. */
  readonly foundBy: "checkpoint" | "walk"
}

/**
 * What `abort` did (or, with `dryRun`, would do).
 *
 * @since 0.3.0
 * @category models
 */
export interface AbortResult {
  /** The lingering transactions rolled back (with `dryRun`: that would be). */
  readonly aborted: ReadonlyArray<LabelInfo>
  /** Begun (PREPARE) transactions that could not be rolled back by label: the FE aborts them at their timeout. */
  readonly notAborted: ReadonlyArray<LabelInfo & { readonly error: string }>
}

/**
 * The label of a table's transaction `id`, as the exactly-once sink names it: `{prefix}-{table}-{instance}-{id}`.
 *
 * @since 0.3.0
 * @category utils
 */
export const labelOf = (prefix: string, table: string, instance: string, id: number): string =>
  Recovery.txnLabel(prefix, table, instance, id)

/**
 * The instance a checkpoint record belongs to, read from its key (`{prefix}-{db}.{table}-{instance}`, the sink's
 * default key), or undefined when the key has another form (a `checkpointKey` of your own).
 *
 * @since 0.3.0
 * @category utils
 */
export const instanceOf = (record: CheckpointRecord, prefix: string): string | undefined => {
  const tags = new Set([...Object.keys(record.nextLabelId), ...Object.keys(record.prepared)])
  for (const tag of tags) {
    const head = `${prefix}-${tag}-`
    if (record.key.startsWith(head) && record.key.length > head.length) return record.key.slice(head.length)
  }
  return undefined
}

const decodeRecord = Schema.decodeUnknown(Schema.parseJson(CheckpointRecord))

/**
 * A checkpoint record from its JSON text (a file of `Checkpointer/FileSystem`, a row of `Checkpointer/Sql`).
 *
 * @since 0.3.0
 * @category utils
 */
export const decodeCheckpoint = (text: string): Effect.Effect<CheckpointRecord, CheckpointerError> =>
  decodeRecord(text).pipe(
    Effect.mapError((e) => new CheckpointerError({ reason: `not a checkpoint record: ${e.message}` }))
  )

const idOf = (label: string): number => {
  const m = /-(\d+)$/.exec(label)
  return m === null ? -1 : Number(m[1])
}

/**
 * Every label found in the scope, per table: the checkpoint's prepared labels first, then the walk from the next
 * label id (see the module's notes). Labels StarRocks does not know (UNKNOWN) are not listed.
 *
 * @since 0.3.0
 * @category constructors
 */
export const list = (scope: Scope): Effect.Effect<ReadonlyArray<LabelInfo>, LoadError, LoadClient.LoadClient> =>
  Effect.gen(function*() {
    const client = yield* LoadClient.LoadClient
    const record = scope.checkpoint
    const instance = scope.instance ?? (record !== undefined ? instanceOf(record, scope.prefix) : undefined) ?? "0"
    const tags = new Map<string, LoadClient.Target>()
    for (const t of scope.tables) tags.set(`${t.database}.${t.table}`, t)
    if (record !== undefined) {
      for (const tag of [...Object.keys(record.prepared), ...Object.keys(record.nextLabelId)]) {
        if (!tags.has(tag)) tags.set(tag, Recovery.targetOf(tag, { database: "", table: tag }))
      }
    }
    const out: Array<LabelInfo> = []
    for (const [tag, target] of tags) {
      const seen = new Set<string>()
      for (const label of record?.prepared[tag] ?? []) {
        const d = yield* client.getLoadStateDetail({ database: target.database, label })
        seen.add(label)
        out.push({ label, ...target, id: idOf(label), state: d.state, reason: d.reason, foundBy: "checkpoint" })
      }
      const start = record?.nextLabelId[tag] ?? scope.from ?? 0
      const found = yield* Recovery.walk(
        target.database,
        (id) => labelOf(scope.prefix, target.table, instance, id),
        start
      )
      for (const p of found) {
        if (seen.has(p.label)) continue
        out.push({ label: p.label, ...target, id: p.id, state: p.state, reason: p.reason, foundBy: "walk" })
      }
    }
    return out
  })

/**
 * Whether a label's transaction lingers: begun and not finished (PREPARE), or prepared and not committed
 * (PREPARED).
 *
 * @since 0.3.0
 * @category predicates
 */
export const isLingering = (info: LabelInfo): boolean => info.state === "PREPARE" || info.state === "PREPARED"

/**
 * Rolls back every lingering (PREPARE/PREPARED) transaction `list` finds, for a fresh start, the last checkpoint's
 * prepared ones included: their rows will never land (restart the source from a position you know landed, and
 * remove the checkpoint record, or recovery fails with `PreparedLost`). With `dryRun` nothing is rolled back:
 * the result says what would be. A begun transaction whose BE lost its context cannot be rolled back by label:
 * it is reported in `notAborted` (the FE aborts it at its `timeout`).
 *
 * @since 0.3.0
 * @category constructors
 */
export const abort = (
  scope: Scope,
  options?: { readonly dryRun?: boolean | undefined }
): Effect.Effect<AbortResult, LoadError, LoadClient.LoadClient> =>
  Effect.gen(function*() {
    const client = yield* LoadClient.LoadClient
    const lingering = (yield* list(scope)).filter(isLingering)
    if (options?.dryRun === true) return { aborted: lingering, notAborted: [] }
    const aborted: Array<LabelInfo> = []
    const notAborted: Array<LabelInfo & { readonly error: string }> = []
    for (const info of lingering) {
      const failed = yield* client.rollback({ database: info.database, table: info.table, label: info.label }).pipe(
        Effect.as(undefined),
        Effect.catchAll((e) => info.state === "PREPARE" ? Effect.succeed(e.message) : Effect.fail(e))
      )
      if (failed === undefined) {
        aborted.push(info)
        yield* Effect.logWarning("labels: rolled back a lingering transaction").pipe(
          Effect.annotateLogs({ label: info.label, table: `${info.database}.${info.table}`, state: info.state })
        )
      } else notAborted.push({ ...info, error: failed })
    }
    return { aborted, notAborted }
  })

/**
 * Commits one prepared transaction by its label (e.g. one the last checkpoint recorded, to keep its rows before a
 * fresh start). Succeeds with the label's state after the commit (COMMITTED or VISIBLE; a label committed already
 * counts); a label that cannot be committed (ABORTED, UNKNOWN, still begun) is an `ExactlyOnceError` `CommitFailed`
 * naming its state and StarRocks' reason.
 *
 * @since 0.3.0
 * @category constructors
 */
export const commit = (
  request: LoadClient.TransactionRequest
): Effect.Effect<LoadClient.LoadState, LoadError | ExactlyOnceError, LoadClient.LoadClient> =>
  Effect.gen(function*() {
    const client = yield* LoadClient.LoadClient
    const message = yield* client.commit(request).pipe(
      Effect.as(undefined),
      Effect.catchAll((e) => Effect.succeed(e.message))
    )
    const d = yield* client.getLoadStateDetail({ database: request.database, label: request.label })
    if (d.state === "COMMITTED" || d.state === "VISIBLE") return d.state
    return yield* new ExactlyOnceError({
      reason: "CommitFailed",
      label: request.label,
      labelState: d.state,
      table: `${request.database}.${request.table}`,
      ...(d.reason !== undefined ? { serverReason: d.reason } : {}),
      message: `label ${request.label} (${request.database}.${request.table}) cannot be committed: it is ${d.state}` +
        `${d.reason !== undefined ? ` (${d.reason})` : ""}${message !== undefined ? `; commit said: ${message}` : ""}`
    })
  })
