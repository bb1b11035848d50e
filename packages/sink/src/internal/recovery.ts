/**
 * Exactly-once recovery: commit what the last checkpoint prepared, abort the lingering transactions of this
 * instance (label ids at and after the recorded next id), and find where new label ids start.
 */
import { Effect, Option } from "effect"
import * as Checkpointer from "../Checkpointer.js"
import * as LabelStore from "../LabelStore.js"
import * as LoadClient from "../LoadClient.js"
import * as StarRocksConfig from "../StarRocksConfig.js"
import type { LoadError } from "../StarRocksError.js"
import { ExactlyOnceError } from "../StarRocksError.js"
import type { LabelSpool } from "./labelSpool.js"

/** Consecutive UNKNOWN label ids that end the lingering-transaction walk. */
export const UNKNOWN_STREAK = 8
/** At most this many label ids are walked. */
export const MAX_WALK = 10_000

const labelPart = (s: string): string => s.replace(/[^-\w]/g, "_")

/** `{prefix}-{table}-{instance}-{id}`, sanitized, at most 128 characters (same as `StarRocksSink.batchLabel`). */
export const txnLabel = (prefix: string, table: string, instance: string, id: number): string => {
  const tail = `-${labelPart(instance)}-${id}`
  const head = `${labelPart(prefix)}-${labelPart(table)}`
  return head.slice(0, 128 - tail.length) + tail
}

/** The checkpoint key of an instance: `{prefix}-{db}.{table}-{instance}` of the config's default table. */
export const checkpointKey = (
  config: StarRocksConfig.StarRocksConfig,
  options: { readonly instance?: string | undefined; readonly checkpointKey?: string | undefined }
): string =>
  options.checkpointKey ?? `${config.labelPrefix}-${config.database}.${config.table}-${options.instance ?? "0"}`

const markLabel = (
  labels: LabelStore.LabelStore | undefined,
  tableTag: string,
  label: string,
  state: LabelStore.LabelState
) =>
  labels === undefined ? Effect.void : labels.get(label).pipe(
    Effect.flatMap((existing) =>
      labels.put(
        new LabelStore.LabelRecord({
          label,
          table: tableTag,
          state,
          rows: Option.match(existing, { onNone: () => 0, onSome: (r) => r.rows }),
          bytes: Option.match(existing, { onNone: () => 0, onSome: (r) => r.bytes }),
          updatedAt: Date.now()
        })
      )
    ),
    Effect.ignore
  )

/** The table of a checkpoint record's `db.table` key (the identity's own table when it does not parse). */
export const targetOf = (tableTag: string, fallback: LoadClient.Target): LoadClient.Target => {
  const dot = tableTag.indexOf(".")
  return dot > 0 && dot < tableTag.length - 1
    ? { database: tableTag.slice(0, dot), table: tableTag.slice(dot + 1) }
    : fallback
}

/** Commits one label of the last checkpoint; COMMITTED/VISIBLE count as done. */
const commitRecorded = (
  client: LoadClient.LoadClient,
  labels: LabelStore.LabelStore | undefined,
  tableTag: string,
  target: LoadClient.Target,
  label: string
): Effect.Effect<void, LoadError | ExactlyOnceError> =>
  client.commit({ ...target, label }).pipe(
    Effect.asVoid,
    Effect.catchAll((error) =>
      Effect.gen(function*() {
        const state = yield* client.getLoadState({ database: target.database, label }).pipe(
          Effect.orElseSucceed(() => undefined)
        )
        if (state === "COMMITTED" || state === "VISIBLE") return
        if (state === "ABORTED") {
          return yield* new ExactlyOnceError({
            reason: "PreparedLost",
            label,
            labelState: state,
            message: `the last checkpoint prepared ${label}, but it is ABORTED (prepared_timeout passed, or it was ` +
              `rolled back by hand): the rows of that checkpoint are NOT in StarRocks; resume the source from the ` +
              `checkpoint before it or reload them`
          })
        }
        if (state === "UNKNOWN") {
          // evicted by label retention: committed before (then the LabelStore knows) or lost
          const known = labels === undefined
            ? Option.none()
            : yield* labels.get(label).pipe(Effect.orElseSucceed(() => Option.none<LabelStore.LabelRecord>()))
          if (Option.isSome(known) && known.value.state === "committed") return
          return yield* new ExactlyOnceError({
            reason: "PreparedLost",
            label,
            labelState: state,
            message: `the last checkpoint prepared ${label}, but StarRocks no longer knows the label (label ` +
              `retention, label_keep_max_second / label_keep_max_num) and the LabelStore does not record it as ` +
              `committed: whether that checkpoint's rows landed cannot be told`
          })
        }
        return yield* error
      })
    ),
    Effect.tap(() => markLabel(labels, tableTag, label, "committed"))
  )

/** The label path: loads a batch the last checkpoint spooled, under its label ("Label Already Exists" settled). */
const reloadSpooled = (
  client: LoadClient.LoadClient,
  labels: LabelStore.LabelStore | undefined,
  tableTag: string,
  target: LoadClient.Target,
  properties: Readonly<Record<string, string>>,
  spool: LabelSpool,
  label: string
): Effect.Effect<void, LoadError | ExactlyOnceError> =>
  Effect.gen(function*() {
    const batch = yield* spool.read(label)
    if (batch === undefined) {
      const state = yield* client.getLoadState({ database: target.database, label })
      if (state === "COMMITTED" || state === "VISIBLE") return
      return yield* new ExactlyOnceError({
        reason: "PreparedLost",
        label,
        labelState: state,
        message: `the last checkpoint spooled ${label}, but its spool file is gone and the label is ${state}: ` +
          `that checkpoint's rows are NOT in StarRocks (the spool directory must survive restarts)`
      })
    }
    // spooled headers win over the table's properties (a spool written before they were merged lacks them)
    yield* client.loadBatch({ ...target, label, headers: { ...properties, ...batch.headers }, body: batch.body })
    yield* markLabel(labels, tableTag, label, "committed")
    yield* spool.remove(label)
  })

/** The last checkpoint of a key, its recorded labels committed (or, on the label path, their batches loaded). */
export interface CommittedLast<P> {
  readonly record: Option.Option<Checkpointer.CheckpointRecord>
  readonly position: Option.Option<P>
  readonly committed: ReadonlyArray<string>
}

/**
 * Step 1 of recovery: commits every label the last checkpoint of `key` prepared, in every table it records.
 * `properties`: the `sink.properties.*` merged under spooled batches' headers (label path).
 */
export const commitLast = <P>(
  key: string,
  decode: (u: unknown) => Effect.Effect<P, ExactlyOnceError>,
  fallback: LoadClient.Target,
  properties: Readonly<Record<string, string>>,
  labelSpool?: LabelSpool | undefined
): Effect.Effect<
  CommittedLast<P>,
  LoadError | ExactlyOnceError | Checkpointer.CheckpointerError,
  StarRocksConfig.StarRocksConfig | LoadClient.LoadClient | Checkpointer.Checkpointer
> =>
  Effect.gen(function*() {
    const client = yield* LoadClient.LoadClient
    const checkpointer = yield* Checkpointer.Checkpointer
    const labels = Option.getOrUndefined(yield* Effect.serviceOption(LabelStore.LabelStore))
    const record = yield* checkpointer.latest(key)

    // the last checkpoint's age against the server's timers (defaults: the config cannot see the server's)
    if (Option.isSome(record)) {
      const config = yield* StarRocksConfig.StarRocksConfig
      const ageSec = (Date.now() - record.value.createdAt) / 1000
      const preparedTimeout = Number(config.properties["prepared_timeout"] ?? 86_400)
      if (labelSpool === undefined && ageSec > 0.8 * preparedTimeout) {
        yield* Effect.logWarning(
          "exactly-once recovery: the last checkpoint is older than 80% of prepared_timeout; its prepared " +
            "transactions may have been aborted by the FE (prepared_transaction_default_timeout_second)"
        ).pipe(Effect.annotateLogs({ key, ageSec: Math.round(ageSec), preparedTimeout }))
      }
      if (ageSec > 0.8 * 259_200) {
        yield* Effect.logWarning(
          "exactly-once recovery: the last checkpoint is older than 80% of the default label retention " +
            "(label_keep_max_second = 3 days); its labels may be evicted"
        ).pipe(Effect.annotateLogs({ key, ageSec: Math.round(ageSec) }))
      }
    }

    const committed: Array<string> = []
    const recorded = new Set<string>()
    if (Option.isSome(record)) {
      for (const table of Object.keys(record.value.prepared)) {
        const target = targetOf(table, fallback)
        for (const label of record.value.prepared[table] ?? []) {
          recorded.add(label)
          if (labelSpool === undefined) yield* commitRecorded(client, labels, table, target, label)
          else yield* reloadSpooled(client, labels, table, target, properties, labelSpool, label)
          committed.push(label)
        }
      }
    }
    if (labelSpool !== undefined) {
      // batches spooled after the last checkpoint are not covered by it: the source replays them
      for (const label of yield* labelSpool.labels) if (!recorded.has(label)) yield* labelSpool.remove(label)
    }
    const position = Option.isSome(record)
      ? Option.some(yield* decode(record.value.position))
      : Option.none<P>()
    return { record, position, committed }
  })

/**
 * Step 2 of recovery, per table: rolls back the lingering PREPARE/PREPARED transactions of this instance (label
 * ids from `start` on, until `UNKNOWN_STREAK` unknown ids in a row) and returns the first id new labels may use.
 * A COMMITTED/VISIBLE label there is a `LabelCollision`.
 */
export const abortLingering = (
  target: LoadClient.Target,
  label: (id: number) => string,
  start: number,
  key: string
): Effect.Effect<
  { readonly nextId: number; readonly aborted: ReadonlyArray<string> },
  LoadError | ExactlyOnceError,
  LoadClient.LoadClient
> =>
  Effect.gen(function*() {
    const client = yield* LoadClient.LoadClient
    const labels = Option.getOrUndefined(yield* Effect.serviceOption(LabelStore.LabelStore))
    const tableTag = `${target.database}.${target.table}`
    const aborted: Array<string> = []
    let unknown = 0
    let lastSeen = start - 1
    for (let n = start; n < start + MAX_WALK && unknown < UNKNOWN_STREAK; n++) {
      const name = label(n)
      const state = yield* client.getLoadState({ database: target.database, label: name })
      switch (state) {
        case "UNKNOWN":
          unknown++
          continue
        case "ABORTED":
          break
        case "PREPARE":
        case "PREPARED": {
          const rolledBack = yield* client.rollback({ ...target, label: name }).pipe(
            Effect.as(true),
            // a begun (PREPARE) transaction whose BE lost its context cannot be rolled back by label; nobody will
            // ever commit it (new ids start after it) and the FE aborts it at its timeout
            Effect.catchAll((e) => state === "PREPARE" ? Effect.succeed(false) : Effect.fail(e))
          )
          if (!rolledBack) {
            yield* Effect.logWarning(
              "exactly-once recovery: a lingering begun transaction could not be rolled " +
                "back; the FE aborts it at its timeout"
            ).pipe(Effect.annotateLogs({ label: name }))
            break
          }
          yield* markLabel(labels, tableTag, name, "failed")
          aborted.push(name)
          yield* Effect.logWarning("exactly-once recovery: rolled back a lingering transaction").pipe(
            Effect.annotateLogs({ label: name, state })
          )
          break
        }
        case "COMMITTED":
        case "VISIBLE":
          return yield* new ExactlyOnceError({
            reason: "LabelCollision",
            label: name,
            labelState: state,
            message: `label ${name} is ${state} but lies at or after the next label id ${start} recorded by ` +
              `checkpoint key ${key}: the label prefix collides with committed labels this instance does not ` +
              `own (use another sink.label-prefix or instance, or restore the matching checkpoint store)`
          })
      }
      unknown = 0
      lastSeen = n
    }
    return { nextId: lastSeen + 1, aborted }
  })
