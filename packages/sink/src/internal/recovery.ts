/**
 * Exactly-once recovery: commit what the last checkpoint prepared, abort the lingering transactions of this
 * instance (label ids at and after the recorded next id), and find where new label ids start.
 */
import { Clock, Effect, Option } from "effect"
import * as Crypto from "node:crypto"
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

/**
 * The instance part of the labels of an owner's epoch: `{instance}-e{epoch}` (so two owners of one partition never
 * share a label); epoch 0 (no owner, or records from before fencing) keeps the plain `{instance}`. An instance of
 * more than 64 characters is shortened to its first 47 (sanitized) and 16 hex digits of its SHA-256.
 */
export const epochInstance = (instance: string, epoch: number): string => {
  if (epoch === 0) return instance
  // labels stay within 128 characters: a long instance (a partition id is short) is shortened, still unique
  const base = labelPart(instance).length <= MAX_INSTANCE
    ? instance
    : `${labelPart(instance).slice(0, MAX_INSTANCE - 17)}_${
      Crypto.createHash("sha256").update(instance, "utf8").digest("hex").slice(0, 16)
    }`
  return `${base}-e${epoch}`
}

/** An owner's label instance part longer than this is shortened (its first 47 characters and a hash). */
export const MAX_INSTANCE = 64

/** At most this many epochs before the owner's are walked for lingering transactions (besides the record's own). */
export const EPOCH_WINDOW = 16

/**
 * The older epochs whose labels an owner at `epoch` walks for lingering transactions: the epoch of the last record
 * (its writer may have begun or prepared after saving it) and the epochs claimed after it (up to `EPOCH_WINDOW`),
 * whose owners all started from that record's next label ids. None without an owner (epoch 0).
 */
export const olderEpochs = (recordEpoch: number, epoch: number): ReadonlyArray<number> => {
  if (epoch === 0 || recordEpoch >= epoch) return []
  const out = [recordEpoch]
  for (let e = Math.max(recordEpoch + 1, epoch - EPOCH_WINDOW); e < epoch; e++) out.push(e)
  return out
}

/** A save refused by fencing, as the sink's error: who owns the key now; what was rolled back. */
export const fencedError = (
  error: Checkpointer.CheckpointerError,
  key: string,
  owner: string | undefined,
  epoch: number,
  rolledBack: ReadonlyArray<string>
): ExactlyOnceError =>
  new ExactlyOnceError({
    reason: "Fenced",
    checkpointKey: key,
    ...(owner !== undefined ? { owner } : {}),
    epoch,
    ...(error.currentEpoch !== undefined ? { currentEpoch: error.currentEpoch } : {}),
    ...(error.currentOwner !== undefined ? { currentOwner: error.currentOwner } : {}),
    labels: rolledBack,
    message:
      `checkpoint key ${key}: ${owner !== undefined ? `owner ${JSON.stringify(owner)}` : "this sink (no owner)"} ` +
      `at epoch ${epoch} lost the key to ${
        error.currentOwner !== undefined ? `owner ${JSON.stringify(error.currentOwner)}` : "another owner"
      } at epoch ${error.currentEpoch ?? "?"}: its checkpoint save was refused, so nothing it prepared was ` +
      `committed${rolledBack.length > 0 ? ` (rolled back: ${rolledBack.join(", ")})` : ""}; the new owner resumes ` +
      `from the last saved checkpoint. Stop working on this partition`
  })

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

/** A label of the last checkpoint that StarRocks no longer holds as prepared or committed. */
export interface Lost {
  /** `db.table` */
  readonly table: string
  readonly label: string
  readonly state: string
  /** What StarRocks says (an ABORTED label's reason, or the failed commit's message), or why it is lost. */
  readonly reason: string | undefined
}

/** The key of the option that skips a lost checkpoint, as a typed option and as a property. */
const SKIP_OPTION = "skipLostCheckpoint (sink.exactly-once.skip-lost-checkpoint=true)"

const meaningOf = (state: string): string =>
  state === "ABORTED"
    ? "ABORTED: prepared_timeout passed while the job was down (StarRocks says \"timeout by txn manager\"), or it " +
      "was rolled back by hand: its rows are NOT in StarRocks"
    : state === "UNKNOWN"
    ? "UNKNOWN: StarRocks no longer knows the label (label retention: label_keep_max_second / label_keep_max_num) " +
      "and the LabelStore does not record it as committed: whether its rows landed cannot be told"
    : `${state}: its rows are NOT in StarRocks`

/** The `PreparedLost` error of a checkpoint with lost labels: names them, their state, the reason, what to do. */
export const preparedLost = (
  key: string,
  record: Checkpointer.CheckpointRecord | undefined,
  lost: ReadonlyArray<Lost>
): ExactlyOnceError => {
  const first = lost[0]!
  const where = record === undefined
    ? `key ${key}`
    : `key ${key}, id ${record.id}, position ${JSON.stringify(record.position)}`
  const states = [...new Set(lost.map((l) => l.state))]
  return new ExactlyOnceError({
    reason: "PreparedLost",
    label: first.label,
    labelState: first.state,
    table: first.table,
    ...(first.reason !== undefined ? { serverReason: first.reason } : {}),
    labels: lost.map((l) => l.label),
    message: `exactly-once recovery: the last checkpoint (${where}) prepared ${
      lost.length === 1 ?
        "a transaction" :
        `${lost.length} transactions`
    } that StarRocks no longer holds: ` +
      lost.map((l) => `${l.label} in ${l.table} is ${l.state}${l.reason !== undefined ? ` (${l.reason})` : ""}`)
        .join("; ") +
      `. ${states.map(meaningOf).join(". ")}. Nothing was committed. What to do: to accept the loss, start again ` +
      `with ${SKIP_OPTION}: the checkpoint's other transactions are committed, the loss is logged and the source ` +
      `resumes after the checkpoint's position, without these rows (reload them from your source if you can); for ` +
      `a fresh start, roll back what lingers under the label prefix (Labels.abort, or effect-starrocks labels ` +
      `abort), remove this checkpoint record and restart the source from a position you know landed. See ` +
      `docs/exactly-once.md, "Restart policy"`
  })
}

/**
 * Whether a label of the last checkpoint is lost: ABORTED (with StarRocks' reason: `get_load_state`'s, else the
 * failed commit's message), or UNKNOWN and not recorded as committed by the LabelStore. Undefined when it is not.
 */
const lostLabel = (
  client: LoadClient.LoadClient,
  labels: LabelStore.LabelStore | undefined,
  tableTag: string,
  target: LoadClient.Target,
  label: string
): Effect.Effect<Lost | undefined, LoadError> =>
  Effect.gen(function*() {
    const detail = yield* client.getLoadStateDetail({ database: target.database, label })
    if (detail.state === "ABORTED") {
      // an FE whose get_load_state gives no reason: the failed commit's message is the next best thing
      const reason = detail.reason ?? (yield* client.commit({ ...target, label }).pipe(
        Effect.as(undefined),
        Effect.catchAll((e) => Effect.succeed<string | undefined>(e.message))
      ))
      return { table: tableTag, label, state: detail.state, reason }
    }
    if (detail.state !== "UNKNOWN") return undefined
    const known = labels === undefined
      ? Option.none()
      : yield* labels.get(label).pipe(Effect.orElseSucceed(() => Option.none<LabelStore.LabelRecord>()))
    if (Option.isSome(known) && known.value.state === "committed") return undefined
    return { table: tableTag, label, state: detail.state, reason: undefined }
  })

/** Commits one label of the last checkpoint; COMMITTED/VISIBLE count as done; ABORTED/UNKNOWN are lost. */
const commitRecorded = (
  client: LoadClient.LoadClient,
  labels: LabelStore.LabelStore | undefined,
  tableTag: string,
  target: LoadClient.Target,
  label: string,
  onLost: (lost: Lost) => Effect.Effect<void, ExactlyOnceError>
): Effect.Effect<void, LoadError | ExactlyOnceError> =>
  client.commit({ ...target, label }).pipe(
    Effect.asVoid,
    Effect.catchAll((error) =>
      Effect.gen(function*() {
        const state = yield* client.getLoadState({ database: target.database, label }).pipe(
          Effect.orElseSucceed(() => undefined)
        )
        if (state === "COMMITTED" || state === "VISIBLE") return
        const lost = state === "ABORTED" || state === "UNKNOWN"
          ? yield* lostLabel(client, labels, tableTag, target, label).pipe(Effect.orElseSucceed(() => undefined))
          : undefined
        if (lost !== undefined) return yield* onLost({ ...lost, reason: lost.reason ?? error.message })
        if (state === "UNKNOWN") return
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
): Effect.Effect<Lost | undefined, LoadError | ExactlyOnceError> =>
  Effect.gen(function*() {
    const batch = yield* spool.read(label)
    if (batch === undefined) {
      const state = yield* client.getLoadState({ database: target.database, label })
      if (state === "COMMITTED" || state === "VISIBLE") return undefined
      return {
        table: tableTag,
        label,
        state,
        reason: "its spool file is gone (the spool directory must survive restarts)"
      }
    }
    // spooled headers win over the table's properties (a spool written before they were merged lacks them)
    yield* client.loadBatch({ ...target, label, headers: { ...properties, ...batch.headers }, body: batch.body })
    yield* markLabel(labels, tableTag, label, "committed")
    yield* spool.remove(label)
    return undefined
  })

/** The last checkpoint of a key, its recorded labels committed (or, on the label path, their batches loaded). */
export interface CommittedLast<P> {
  readonly record: Option.Option<Checkpointer.CheckpointRecord>
  readonly position: Option.Option<P>
  readonly committed: ReadonlyArray<string>
  /** The labels skipped as lost (only with `skipLost`). */
  readonly lost: ReadonlyArray<Lost>
  /** The epoch of the last record as found (0 without one), before a skipped loss was recorded. */
  readonly epochBefore: number
}

/** Logs the loss of a skipped checkpoint's labels: which, in which table, their state and reason, rows if known. */
const warnSkipped = (
  key: string,
  record: Checkpointer.CheckpointRecord,
  lost: ReadonlyArray<Lost>,
  labels: LabelStore.LabelStore | undefined
) =>
  Effect.gen(function*() {
    let rows = 0
    let rowsKnown = labels !== undefined
    for (const l of lost) {
      yield* markLabel(labels, l.table, l.label, "failed")
      const known = labels === undefined
        ? Option.none()
        : yield* labels.get(l.label).pipe(Effect.orElseSucceed(() => Option.none<LabelStore.LabelRecord>()))
      if (Option.isSome(known) && known.value.rows > 0) rows += known.value.rows
      else rowsKnown = false
    }
    yield* Effect.logWarning(
      `exactly-once recovery: skipping the lost transactions of the last checkpoint (${SKIP_OPTION}): ` +
        lost.map((l) => `${l.label} in ${l.table} is ${l.state}${l.reason !== undefined ? ` (${l.reason})` : ""}`)
          .join("; ") +
        `. Their rows (${rowsKnown ? `${rows} rows, ` : ""}between the checkpoint before it and position ` +
        `${JSON.stringify(record.position)}) are NOT in StarRocks; the source resumes after that position`
    ).pipe(
      Effect.annotateLogs({
        key,
        checkpoint: record.id,
        labels: lost.map((l) => l.label).join(","),
        tables: [...new Set(lost.map((l) => l.table))].join(","),
        ...(rowsKnown ? { rows } : {})
      })
    )
  })

/**
 * Step 1 of recovery: commits every label the last checkpoint of `key` prepared, in every table it records.
 * First every label's state is read: when some are lost (ABORTED, or UNKNOWN and not known as committed) recovery
 * fails with `PreparedLost` naming them and commits nothing, unless `skipLost`: then the others are committed, the
 * loss is logged, and a record with the same position and no prepared labels (id + 1) is saved in its place. `properties`: the `sink.properties.*` merged under spooled batches' headers (label path).
 */
export const commitLast = <P>(
  key: string,
  decode: (u: unknown) => Effect.Effect<P, ExactlyOnceError>,
  fallback: LoadClient.Target,
  properties: Readonly<Record<string, string>>,
  labelSpool?: LabelSpool | undefined,
  policy: {
    /** Skip a checkpoint with lost labels (logged) instead of failing with `PreparedLost`. */
    readonly skipLost?: boolean | undefined
    /** The checkpoint interval the sink is told (ms), for the start-up warnings. */
    readonly intervalMs?: number | undefined
    /** The owner's epoch (0 without an owner): the epoch of the record saved when a lost checkpoint is skipped. */
    readonly epoch?: number | undefined
  } = {}
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
    const skipLost = policy.skipLost ?? false
    const config = yield* StarRocksConfig.StarRocksConfig
    const now = yield* Clock.currentTimeMillis
    const age = Option.isSome(record) ? now - record.value.createdAt : undefined
    for (const w of startWarnings(timersOf(config), policy.intervalMs, age, labelSpool !== undefined)) {
      yield* Effect.logWarning(w.message).pipe(Effect.annotateLogs({ key, ...w.annotations }))
    }
    const committed: Array<string> = []
    const lost: Array<Lost> = []
    let resolved: Checkpointer.CheckpointRecord | undefined
    const recorded = new Set<string>()
    if (Option.isSome(record)) {
      const r = record.value
      const entries = Object.keys(r.prepared).flatMap((table) =>
        (r.prepared[table] ?? []).map((label) => ({ table, target: targetOf(table, fallback), label }))
      )
      for (const e of entries) recorded.add(e.label)
      const lostOrFail = (l: Lost) =>
        skipLost ? Effect.sync(() => void lost.push(l)) : Effect.fail(preparedLost(key, r, [l]))
      if (labelSpool === undefined) {
        // every label first: a checkpoint with lost labels is either skipped whole or nothing is committed
        for (const e of entries) {
          const l = yield* lostLabel(client, labels, e.table, e.target, e.label)
          if (l !== undefined) lost.push(l)
        }
        if (lost.length > 0 && !skipLost) return yield* preparedLost(key, r, lost)
        const gone = new Set(lost.map((l) => l.label))
        for (const e of entries) {
          if (gone.has(e.label)) continue
          yield* commitRecorded(client, labels, e.table, e.target, e.label, lostOrFail)
          committed.push(e.label)
        }
      } else {
        for (const e of entries) {
          const l = yield* reloadSpooled(client, labels, e.table, e.target, properties, labelSpool, e.label)
          if (l === undefined) committed.push(e.label)
          else yield* lostOrFail(l)
        }
      }
      if (lost.length > 0) {
        yield* warnSkipped(key, r, lost, labels)
        // the skip is recorded: the same position without prepared labels, so no later start meets the loss again
        resolved = new Checkpointer.CheckpointRecord({
          ...r,
          id: r.id + 1,
          prepared: {},
          createdAt: now,
          epoch: policy.epoch ?? 0
        })
        yield* checkpointer.save(resolved)
      }
    }
    if (labelSpool !== undefined) {
      // batches spooled after the last checkpoint are not covered by it: the source replays them
      for (const label of yield* labelSpool.labels) if (!recorded.has(label)) yield* labelSpool.remove(label)
    }
    const position = Option.isSome(record)
      ? Option.some(yield* decode(record.value.position))
      : Option.none<P>()
    return {
      record: resolved !== undefined ? Option.some(resolved) : record,
      position,
      committed,
      lost,
      epochBefore: Option.match(record, { onNone: () => 0, onSome: (r) => r.epoch })
    }
  })

/** The timers a checkpoint must stay within, as the exactly-once sink sends them or is told. */
export interface Timers {
  /** The `timeout` sent at begin (s): an open transaction lives at most this long. */
  readonly timeoutSec: number
  /** The `prepared_timeout` sent at prepare (s), else the FE's default (86400). */
  readonly preparedTimeoutSec: number
  /** Whether `prepared_timeout` was sent (else the FE's `prepared_transaction_default_timeout_second`). */
  readonly preparedTimeoutSent: boolean
  /** `sink.label-keep-max-second`, else StarRocks' default `label_keep_max_second` (259200). */
  readonly labelKeepSec: number
  readonly labelKeepTold: boolean
}

/** The timers of a config (what the exactly-once sink sends, or the server defaults). */
export const timersOf = (config: StarRocksConfig.StarRocksConfig): Timers => {
  const t = Number(config.properties["timeout"] ?? 600)
  const p = Number(config.properties["prepared_timeout"])
  const sent = config.properties["prepared_timeout"] !== undefined && Number.isFinite(p) && p > 0
  return {
    timeoutSec: Number.isFinite(t) && t > 0 ? Math.floor(t) : 600,
    preparedTimeoutSec: sent ? p : 86_400,
    preparedTimeoutSent: sent,
    labelKeepSec: config.labelKeepMaxSecond ?? 259_200,
    labelKeepTold: config.labelKeepMaxSecond !== undefined
  }
}

/** How near (a fraction) a checkpoint interval may come to a timer before the sink warns. */
export const NEAR = 0.8

/**
 * The start-up warnings of the exactly-once sink: the checkpoint interval it is told (`checkpointInterval`) at or
 * above 80% of the `timeout` it sends at begin, of the `prepared_timeout` it sends at prepare, or of the label
 * retention it is told; and the age of the last checkpoint (the time the job was down) past 80% of the
 * `prepared_timeout` (its prepared transactions may be aborted) or of the label retention (its labels may be
 * evicted). Each warning names the values and the setting to change.
 */
export const startWarnings = (
  timers: Timers,
  intervalMs: number | undefined,
  lastCheckpointAgeMs: number | undefined,
  labelPath: boolean
): ReadonlyArray<{ readonly message: string; readonly annotations: Readonly<Record<string, unknown>> }> => {
  const out: Array<{ message: string; annotations: Record<string, unknown> }> = []
  const retention = timers.labelKeepTold
    ? "sink.label-keep-max-second"
    : "StarRocks' default label_keep_max_second (set sink.label-keep-max-second to your FE's)"
  const prepared = timers.preparedTimeoutSent
    ? "the prepared_timeout it sends (sink.properties.prepared_timeout)"
    : "the FE's prepared_transaction_default_timeout_second (86400 s; set sink.properties.prepared_timeout)"
  if (intervalMs !== undefined) {
    const sec = intervalMs / 1000
    if (!labelPath && sec >= NEAR * timers.timeoutSec) {
      out.push({
        message: `exactly-once: the checkpoint interval (${sec} s) is at or above 80% of the transaction timeout ` +
          `it sends at begin (${timers.timeoutSec} s, sink.properties.timeout): a transaction open that long is ` +
          `aborted by StarRocks before its checkpoint; checkpoint more often or raise sink.properties.timeout`,
        annotations: { intervalSec: sec, timeoutSec: timers.timeoutSec }
      })
    }
    if (!labelPath && sec >= NEAR * timers.preparedTimeoutSec) {
      out.push({
        message: `exactly-once: the checkpoint interval (${sec} s) is at or above 80% of ${prepared} ` +
          `(${timers.preparedTimeoutSec} s): prepared transactions may expire before they are committed`,
        annotations: { intervalSec: sec, preparedTimeoutSec: timers.preparedTimeoutSec }
      })
    }
    if (sec >= NEAR * timers.labelKeepSec) {
      out.push({
        message: `exactly-once: the checkpoint interval (${sec} s) is at or above 80% of the label retention, ` +
          `${retention} (${timers.labelKeepSec} s): a restart may find the last checkpoint's labels evicted`,
        annotations: { intervalSec: sec, labelKeepMaxSecond: timers.labelKeepSec }
      })
    }
  }
  if (lastCheckpointAgeMs !== undefined) {
    const sec = Math.round(lastCheckpointAgeMs / 1000)
    if (!labelPath && sec >= NEAR * timers.preparedTimeoutSec) {
      out.push({
        message: `exactly-once recovery: the last checkpoint is ${sec} s old, at or above 80% of ${prepared} ` +
          `(${timers.preparedTimeoutSec} s): its prepared transactions may have been aborted by the FE`,
        annotations: { ageSec: sec, preparedTimeoutSec: timers.preparedTimeoutSec }
      })
    }
    if (sec >= NEAR * timers.labelKeepSec) {
      out.push({
        message: `exactly-once recovery: the last checkpoint is ${sec} s old, at or above 80% of the label ` +
          `retention, ${retention} (${timers.labelKeepSec} s): its labels may be evicted`,
        annotations: { ageSec: sec, labelKeepMaxSecond: timers.labelKeepSec }
      })
    }
  }
  return out
}

/** One label id probed by `walk`. */
export interface Probed {
  readonly id: number
  readonly label: string
  readonly state: LoadClient.LoadState
  readonly reason: string | undefined
}

/**
 * Probes `get_load_state` for the label ids from `start` on, until `UNKNOWN_STREAK` unknown ids in a row (or
 * `MAX_WALK` ids): every id whose label StarRocks knows, with its state (and an ABORTED one's reason).
 *
 * The ids are probed in rounds, each round's at once: as many ids as could still end the walk (`UNKNOWN_STREAK`
 * less the unknown ids in a row so far), so that it probes exactly the ids a walk one id at a time would, and
 * reads them in order. A start with nothing lingering (the usual one: every exactly-once sink's start, per table)
 * costs one round trip instead of `UNKNOWN_STREAK` in a row. (Against the bench's null endpoint on loopback the
 * client's own CPU per probe dominates the round trip, and the start is as long as before: docs/benchmark.md,
 * Session 11.)
 */
export const walk = (
  database: string,
  label: (id: number) => string,
  start: number
): Effect.Effect<ReadonlyArray<Probed>, LoadError, LoadClient.LoadClient> =>
  Effect.gen(function*() {
    const client = yield* LoadClient.LoadClient
    const found: Array<Probed> = []
    const end = start + MAX_WALK
    let unknown = 0
    let n = start
    while (n < end && unknown < UNKNOWN_STREAK) {
      const ids = Array.from({ length: Math.min(UNKNOWN_STREAK - unknown, end - n) }, (_, i) => n + i)
      const details = yield* Effect.forEach(
        ids,
        (id) => client.getLoadStateDetail({ database, label: label(id) }),
        { concurrency: "unbounded" }
      )
      ids.forEach((id, i) => {
        const detail = details[i]!
        if (detail.state === "UNKNOWN") {
          unknown++
          return
        }
        unknown = 0
        found.push({ id, label: label(id), state: detail.state, reason: detail.reason })
      })
      n += ids.length
    }
    return found
  })

/**
 * Step 2 of recovery, per table: rolls back the lingering PREPARE/PREPARED transactions of this instance (label
 * ids from `start` on, until `UNKNOWN_STREAK` unknown ids in a row) and returns the first id new labels may use.
 * A COMMITTED/VISIBLE label there is a `LabelCollision`, unless the checkpoint record lists it (`own`, its prepared
 * labels of the table, committed by step 1): the exactly-once sink prepares a checkpoint in the background while
 * the rows after its barrier begin transactions, so a transaction of the checkpoint replayed late takes an id after
 * the record's next label id.
 */
export const abortLingering = (
  target: LoadClient.Target,
  label: (id: number) => string,
  start: number,
  key: string,
  own: ReadonlySet<string> = new Set()
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
    const found = yield* walk(target.database, label, start)
    for (const { label: name, state } of found) {
      switch (state) {
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
          if (own.has(name)) break
          return yield* new ExactlyOnceError({
            reason: "LabelCollision",
            label: name,
            labelState: state,
            message: `label ${name} is ${state} but lies at or after the next label id ${start} recorded by ` +
              `checkpoint key ${key}: the label prefix collides with committed labels this instance does not ` +
              `own (use another sink.label-prefix or instance, or restore the matching checkpoint store)`
          })
        default:
          break
      }
    }
    const lastSeen = found.length === 0 ? start - 1 : found[found.length - 1]!.id
    return { nextId: lastSeen + 1, aborted }
  })
