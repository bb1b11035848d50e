/**
 * The exactly-once sink over the transaction interface (two-phase commit driven by checkpoint barriers), on the
 * same batcher, lanes and ledger as the at-least-once sink (internal/sink/*). Every table has its own open
 * transaction; sealed batches are loaded into it as they come. At a barrier every open transaction of every table
 * is prepared, one checkpoint record lists them all (with each table's next label id), then all are committed and
 * the barrier acknowledged.
 */
import type { Chunk } from "effect"
import { Cause, Channel, Deferred, Duration, Effect, Exit, FiberSet, Option, Schema, Sink } from "effect"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Checkpoint from "../Checkpoint.js"
import * as Checkpointer from "../Checkpointer.js"
import type * as DeadLetter from "../DeadLetter.js"
import * as LabelStore from "../LabelStore.js"
import * as LoadClient from "../LoadClient.js"
import * as RetryPolicy from "../RetryPolicy.js"
import * as StarRocksConfig from "../StarRocksConfig.js"
import type { SinkError } from "../StarRocksError.js"
import { ExactlyOnceError } from "../StarRocksError.js"
import * as Chunks from "./chunks.js"
import * as RetryLogic from "./client/retryLogic.js"
import { Handover } from "./handover.js"
import * as LabelSpool from "./labelSpool.js"
import * as Recovery from "./recovery.js"
import * as Batcher from "./sink/batcher.js"
import { compressFirst, spare } from "./sink/compressFirst.js"
import * as DeadLetterRuntime from "./sink/deadLetter.js"
import type { Lane, Sealed } from "./sink/lane.js"
import * as Ledger from "./sink/ledger.js"
import type { Routing } from "./sink/routing.js"
import * as Spool from "./spool.js"
import * as Startup from "./startup.js"

export interface Options<P, PI, E = never, R = never> {
  readonly position: Schema.Schema<P, PI>
  /**
   * Run by the sink once per committed checkpoint, in checkpoint order, one at a time, after the barrier's ack is
   * completed; first, at start, for the checkpoint recovery found (`Ack.recovered`). See `handOver`.
   */
  readonly onCheckpoint?: ((ack: Checkpoint.Ack<P>) => Effect.Effect<void, E, R>) | undefined
  readonly instance?: string | undefined
  readonly checkpointKey?: string | undefined
  readonly spoolDirectory?: string | undefined
  readonly coordinator?: Checkpoint.Coordinator | undefined
  readonly deadLetter?: DeadLetter.Options | undefined
  readonly skipLostCheckpoint?: boolean | undefined
  readonly checkpointInterval?: Duration.DurationInput | undefined
  readonly owner?: string | undefined
}

/**
 * The epochs `recover` claimed with an owner, per store, key and owner: the sink that follows it (same store
 * instance, key and owner) works under that epoch instead of claiming again, so the position `recover` returned
 * (where the application resumes its source) and the checkpoint the sink starts from belong to one epoch. Another
 * owner claiming in between fences the sink at its first save.
 */
const claimedByRecover = new WeakMap<Checkpointer.Checkpointer, Map<string, number>>()

const claimFor = (checkpointer: Checkpointer.Checkpointer, key: string, owner: string, by: "recover" | "sink") =>
  Effect.suspend(() => {
    const claims = claimedByRecover.get(checkpointer) ?? new Map<string, number>()
    claimedByRecover.set(checkpointer, claims)
    const id = JSON.stringify([key, owner])
    const handed = claims.get(id)
    if (by === "sink" && handed !== undefined) {
      claims.delete(id)
      return Effect.succeed(handed)
    }
    return Effect.tap(checkpointer.claim(key, owner), (epoch) =>
      Effect.sync(() => {
        if (by === "recover") claims.set(id, epoch)
      }))
  })

/** A checkpoint save refused by fencing. */
const isFenced = (e: unknown): e is Checkpointer.CheckpointerError =>
  e instanceof Checkpointer.CheckpointerError && Checkpointer.isFenced(e)

/** Owners need the transaction interface: the label path's spool is local to a process. */
const ownerOnLabelPath = (owner: string) =>
  new ExactlyOnceError({
    reason: "Unsupported",
    message: `owner ${JSON.stringify(owner)}: fencing needs the transaction interface (sink.version V2); on the ` +
      `label path (V1) the batches wait in a spool local to one process, which another owner cannot take over`
  })

/** The restart policy of the options over the config's (`sink.exactly-once.skip-lost-checkpoint`). */
const policyOf = <P, PI>(config: StarRocksConfig.StarRocksConfig, options: Options<P, PI, unknown, unknown>) => ({
  skipLost: options.skipLostCheckpoint ?? config.skipLostCheckpoint ?? false,
  intervalMs: options.checkpointInterval === undefined
    ? undefined
    : Duration.toMillis(Duration.decode(options.checkpointInterval))
})

export interface Summary extends Ledger.Summary {
  readonly checkpoints: number
  /** The owner's epoch (0 without `owner`). */
  readonly epoch: number
  readonly lastPosition: Option.Option<unknown>
}

/** The sink's error union (`StarRocksSink.SinkError`, defined in StarRocksError.ts). */
export type Error = SinkError

/** What a failure of `onCheckpoint` (with error `E`) adds to the sink's errors: nothing when it cannot fail. */
export type CallbackError<E> = [E] extends [never] ? never : Checkpoint.OnCheckpointError<E>

/** `StarRocksSink.Services` and the `Checkpointer`. */
export type Requirements =
  | StarRocksConfig.StarRocksConfig
  | LoadClient.LoadClient
  | LabelStore.LabelStore
  | Checkpointer.Checkpointer

interface Txn {
  /** The label of the live transaction (changes when the data is replayed into a new transaction). */
  label: string
  /** Whether `label` may hold a begun transaction on the server (rolled back before a replay). */
  live: boolean
  readonly headers: Readonly<Record<string, string>>
  beganAt: number
  rows: number
  bytes: number
  /** The bytes of its loads as sent (after compression, else `bytes`). */
  sentBytes: number
  readonly spool: Spool.Spool
}

interface Prepared {
  readonly label: string
  readonly rows: number
  readonly bytes: number
  /** As sent, when the transaction's loads were compressed. */
  readonly sentBytes?: number | undefined
}

/** One table's exactly-once state. */
interface Table {
  readonly lane: Lane
  readonly target: LoadClient.Target
  readonly label: (id: number) => string
  nextId: number
  txn: Txn | undefined
  pending: Array<Prepared>
  /** The table's load in flight (loads into one transaction go one after another): done when it has landed. */
  tail: Deferred.Deferred<void, Error> | undefined
  /** The memory of the table's replay spools (the open transaction's and the closing checkpoint's). */
  readonly spoolBudget: Spool.Budget
}

/** A table's share of a checkpoint whose barrier has passed: what was open at the barrier. */
interface Part {
  readonly t: Table
  /** Its open transaction at the barrier (loading, then prepared in the background). */
  txn: Txn | undefined
  /** Its last load into `txn`. */
  readonly tail: Deferred.Deferred<void, Error> | undefined
  /** Its prepared transactions, listed by the checkpoint's record. */
  prepared: Array<Prepared>
}

/**
 * A checkpoint whose barrier has passed, finishing in the background while the rows after the barrier are loaded
 * into new transactions. `state`: "open" until its record's save begins (nothing durable lists its transactions),
 * "saving" while the save's outcome is unknown (the save is under way, or failed), "saved" once it is durable.
 */
interface Closing<P, E> {
  readonly barrier: Checkpoint.Barrier<P>
  readonly parts: ReadonlyArray<Part>
  /** Each table's next label id at the barrier (the first id of the rows after it). */
  readonly nextLabelId: Readonly<Record<string, number>>
  state: "open" | "saving" | "saved"
  /** Done when the checkpoint is committed and acknowledged and `onCheckpoint` has run on it, or failed. */
  readonly done: Deferred.Deferred<void, Error | Checkpoint.OnCheckpointError<E>>
}

const positionError = (what: string) => (e: unknown) =>
  new ExactlyOnceError({ reason: "Position", message: `${what}: ${e instanceof Error ? e.message : String(e)}` })

export const decoder = <P, PI>(schema: Schema.Schema<P, PI>) => (u: unknown) =>
  Schema.decodeUnknown(schema)(u).pipe(
    Effect.mapError(positionError("the recorded checkpoint position does not decode"))
  )

/** Whether a failed transaction call is worth a replay into a new transaction (under a new label). */
const replayable = (e: Error): boolean => RetryLogic.isReplayable(e, { newLabel: true })

const sameHeaders = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean => {
  if (a === b) return true
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  for (const k of ka) if (a[k] !== b[k]) return false
  return true
}

/** The label path's spool (V1 only). */
const labelSpoolFor = (config: StarRocksConfig.StarRocksConfig, key: string, directory?: string) =>
  config.version === "V1"
    ? LabelSpool.make(directory ?? Path.join(Os.tmpdir(), "effect-starrocks-spool", key.replace(/[^-\w.]/g, "_")))
    : undefined

const defaultTarget = (config: StarRocksConfig.StarRocksConfig): LoadClient.Target => ({
  database: config.database,
  table: config.table
})

/** The labels of a table that the checkpoint record lists as prepared (step 1 of recovery committed them). */
const ownLabels = (record: Option.Option<Checkpointer.CheckpointRecord>, tag: string): ReadonlySet<string> =>
  new Set(Option.match(record, { onNone: () => [], onSome: (r) => r.prepared[tag] ?? [] }))

/**
 * Recovery without a sink: commits the last checkpoint's labels and rolls back the lingering transactions of
 * every table the checkpoint records, and of the config's default table.
 */
export const recover = <P, PI>(options: Options<P, PI, unknown, unknown>) =>
  Effect.gen(function*() {
    const config = yield* StarRocksConfig.StarRocksConfig
    const key = Recovery.checkpointKey(config, options)
    const instance = options.instance ?? "0"
    const spool = labelSpoolFor(config, key, options.spoolDirectory)
    const owner = options.owner
    if (owner !== undefined && spool !== undefined) return yield* ownerOnLabelPath(owner)
    const checkpointer = yield* Checkpointer.Checkpointer
    const epoch = owner === undefined ? 0 : yield* claimFor(checkpointer, key, owner, "recover")
    const last = yield* Recovery.commitLast(
      key,
      decoder(options.position),
      defaultTarget(config),
      config.properties,
      spool,
      { ...policyOf(config, options), epoch }
    ).pipe(Effect.catchIf(isFenced, (e) => Effect.fail(Recovery.fencedError(e, key, owner, epoch, []))))
    const next: Readonly<Record<string, number>> = Option.match(last.record, {
      onNone: () => ({}),
      onSome: (r) => r.nextLabelId
    })
    const tables = new Set([...Object.keys(next), `${config.database}.${config.table}`])
    for (const tag of tables) {
      const target = Recovery.targetOf(tag, defaultTarget(config))
      for (const e of [...Recovery.olderEpochs(last.epochBefore, epoch), epoch]) {
        yield* Recovery.abortLingering(
          target,
          (id) => Recovery.txnLabel(config.labelPrefix, target.table, Recovery.epochInstance(instance, e), id),
          next[tag] ?? 0,
          key,
          ownLabels(last.record, tag)
        )
      }
    }
    return last.position
  })

/**
 * A table whose own options (`properties`, over the config's) turn merge commit on cannot load exactly-once: the
 * config-level `sink.properties.enable_merge_commit` is refused by `StarRocksConfig.checkUse`, a table's own
 * here, with the same typed error, naming the table.
 */
const refuseMergeCommit = (lane: Lane): StarRocksConfig.StarRocksConfigError | undefined =>
  (lane.settings.properties["enable_merge_commit"] ?? "").trim().toLowerCase() === "true" ?
    StarRocksConfig.StarRocksConfigError.fromProblems([{
      key: "properties.enable_merge_commit",
      reason: `of table ${lane.key}: merge commit cannot be exactly-once: the server generates the labels and ` +
        "merges loads into transactions of its own, so a load cannot be prepared and committed at a checkpoint " +
        "(use StarRocksSink.make)"
    }]) :
    undefined

export const make = <In, P, PI, E = never, R = never>(
  routing: Routing<In>,
  options: Options<P, PI, E, R>
): Sink.Sink<Summary, Checkpoint.Envelope<In, P>, never, Error | CallbackError<E>, Requirements | R> =>
  Sink.unwrapScoped(Effect.gen(function*() {
    type Failure = Error | Checkpoint.OnCheckpointError<E>
    const config = yield* StarRocksConfig.StarRocksConfig
    const client = yield* LoadClient.LoadClient
    const labels = yield* LabelStore.LabelStore
    const checkpointer = yield* Checkpointer.Checkpointer
    const clock = yield* Effect.clock
    // what onCheckpoint needs, from where the sink runs
    const callbackContext = yield* Effect.context<R>()

    const instance = options.instance ?? "0"
    const key = Recovery.checkpointKey(config, options)
    const encodePosition = (p: P) =>
      Schema.encode(options.position)(p).pipe(Effect.mapError(positionError("the barrier position does not encode")))

    // the startup check (internal/startup.ts) before recovery's first request: an FE that does not answer, refused
    // credentials or a missing table are named as such; a table that appears later is checked when it does
    const router = yield* Startup.guard(
      yield* routing.build(
        options.deadLetter === undefined ? config : yield* DeadLetterRuntime.configure(config, options.deadLetter)
      ),
      { config, semantic: "exactly-once", checkTable: client.checkTable }
    )
    // recovery first: commit what the last checkpoint prepared (every table), then per table abort what lingers;
    // with an owner, the key is claimed before (a new epoch: from then on older owners' saves are refused)
    const labelSpool = labelSpoolFor(config, key, options.spoolDirectory)
    const owner = options.owner
    if (owner !== undefined && labelSpool !== undefined) return yield* ownerOnLabelPath(owner)
    const epoch = owner === undefined ? 0 : yield* claimFor(checkpointer, key, owner, "sink")
    const labelInstance = Recovery.epochInstance(instance, epoch)
    const last = yield* Recovery.commitLast(
      key,
      decoder(options.position),
      defaultTarget(config),
      config.properties,
      labelSpool,
      { ...policyOf(config, options), epoch }
    ).pipe(Effect.catchIf(isFenced, (e) => Effect.fail(Recovery.fencedError(e, key, owner, epoch, []))))
    // each table's next label id as the last checkpoint recorded it (kept for tables this run does not touch)
    const nextLabelId: Record<string, number> = Option.match(last.record, {
      onNone: () => ({}),
      onSome: (r) => ({ ...r.nextLabelId })
    })

    const ledger = Ledger.make(labels, clock, { deadLetter: options.deadLetter !== undefined })
    const deadLetter = options.deadLetter === undefined
      ? undefined
      : yield* DeadLetterRuntime.make(options.deadLetter, ledger, client)

    const maxBytes = config.maxBytes
    const slots = yield* Effect.makeSemaphore(config.ioThreadCount)
    const bytesInFlight = yield* Effect.makeSemaphore(maxBytes)
    // the loads in flight; interrupted first when the sink stops (the finalizer below rolls back after them)
    const loads = yield* FiberSet.make<void, never>()
    const timeoutSec = (() => {
      const t = Number(config.properties["timeout"] ?? 600)
      return Number.isFinite(t) && t > 0 ? Math.floor(t) : 600
    })()
    const preparedTimeout = config.properties["prepared_timeout"]
    const beginHeaders = { timeout: String(timeoutSec) }
    const prepareHeaders = preparedTimeout !== undefined ? { prepared_timeout: preparedTimeout } : undefined
    const replayPolicy = RetryPolicy.make<Error>({
      base: config.retryInterval,
      maxDelay: config.retryMaxDelay,
      maxRetries: config.maxRetries,
      while: replayable
    })

    let checkpointId = Option.match(last.record, { onNone: () => 0, onSome: (r) => r.id })
    let lastSavedPosition = Option.match(last.record, {
      onNone: () => undefined as string | undefined,
      onSome: (r) => JSON.stringify(r.position)
    })
    let lastPosition: Option.Option<unknown> = last.position
    let round = 0
    let checkpoints = 0
    const tables = new Map<Lane, Table>()

    // a background checkpoint's failure, the start's recovery walk's (below), or an onCheckpoint's, which fails the
    // sink at once (see the channel at the end)
    // (the first such failure; see the channel at the end), and the reading that waits for its upstream meanwhile,
    // which the failure wakes
    const sinkFailure: { cause: Cause.Cause<Failure> | undefined } = { cause: undefined }
    let reading: { readonly fail: (cause: Cause.Cause<Failure>) => void } | undefined
    /**
     * How a step in the background (the start's recovery walk, a closing checkpoint) ends: its `done` completed with
     * its exit; a success clears its slot (`clear`), a failure fails the sink at once (`sinkFailure`, and the
     * reading that waits for its upstream is woken with it).
     */
    const settle = <F extends Failure>(done: Deferred.Deferred<void, F>, clear: () => void) =>
    (
      exit: Exit.Exit<void, F>
    ): Effect.Effect<void> =>
      Effect.zipRight(
        Deferred.done(done, exit),
        Effect.sync(() => {
          if (Exit.isSuccess(exit)) return clear()
          if (sinkFailure.cause === undefined) sinkFailure.cause = exit.cause
          reading?.fail(exit.cause)
        })
      )

    /**
     * A table's state; the first time, its lingering transactions are rolled back (recovery, step 2), once its
     * own options are found to allow exactly-once (`refuseMergeCommit`).
     */
    const tableNow = (lane: Lane): Effect.Effect<Table, Error, LoadClient.LoadClient> => {
      const known = tables.get(lane)
      if (known !== undefined) return Effect.succeed(known)
      const refused = refuseMergeCommit(lane)
      if (refused !== undefined) return Effect.fail(refused)
      const target = { database: lane.settings.database, table: lane.settings.table }
      const label = (id: number) => Recovery.txnLabel(config.labelPrefix, target.table, labelInstance, id)
      const start = nextLabelId[lane.key] ?? 0
      const own = ownLabels(last.record, lane.key)
      // what older owners of the key left begun or prepared (their labels carry their epoch), then this epoch's
      const olderOwners = Effect.forEach(Recovery.olderEpochs(last.epochBefore, epoch), (e) =>
        Recovery.abortLingering(
          target,
          (id) => Recovery.txnLabel(config.labelPrefix, target.table, Recovery.epochInstance(instance, e), id),
          start,
          key,
          own
        ), { discard: true })
      return Effect.zipRight(olderOwners, Recovery.abortLingering(target, label, start, key, own)).pipe(
        Effect.map(({ nextId }) => {
          const table: Table = {
            lane,
            target,
            label,
            nextId,
            txn: undefined,
            pending: [],
            tail: undefined,
            spoolBudget: { used: 0 }
          }
          tables.set(lane, table)
          ledger.touch(lane.key)
          return table
        })
      )
    }
    // every table known at start is checked before any of them is touched
    for (const lane of router.lanes()) {
      const refused = refuseMergeCommit(lane)
      if (refused !== undefined) return yield* refused
    }
    // Step 2 of recovery for the tables known at start runs in a fiber of its own, beside the reading and encoding
    // of the first rows (until it is done the sink reads as while a checkpoint closes: its failure fails the sink at
    // once, even under a quiet upstream). Nothing waits for it but a table's first transaction (`tableOf`), a
    // barrier and the end: no transaction begins before the lingering ones are rolled back, as before. Measured: its
    // label probes (`Recovery.walk`, UNKNOWN_STREAK `get_load_state` calls per table) took 39 to 163 ms of a start
    // on a loaded machine, which the rows waited for (docs/benchmark.md, Session 17).
    const walks = yield* FiberSet.make<void, never>()
    const startLanes = Array.from(router.lanes())
    let starting: Deferred.Deferred<void, Error> | undefined = startLanes.length === 0
      ? undefined
      : yield* Deferred.make<void, Error>()
    const awaitStarting: Effect.Effect<void, Error> = Effect.suspend(() =>
      starting === undefined ? Effect.void : Deferred.await(starting)
    )
    /** A table's state, once the start's recovery walk is done. */
    const tableOf = (lane: Lane): Effect.Effect<Table, Error, LoadClient.LoadClient> => {
      const known = tables.get(lane)
      if (known !== undefined) return Effect.succeed(known)
      return starting === undefined
        ? tableNow(lane)
        : Effect.zipRight(awaitStarting, Effect.suspend(() => tableNow(lane)))
    }
    if (starting !== undefined) {
      const walked = starting
      yield* FiberSet.run(
        walks,
        Effect.forEach(startLanes, tableNow, { discard: true }).pipe(
          Effect.onExit(settle(walked, () => {
            if (starting === walked) starting = undefined
          })),
          // reported through `starting` and `failed`
          Effect.exit,
          Effect.asVoid
        )
      )
    }

    if (Checkpointer.isMemoryForTests(checkpointer)) {
      yield* Effect.logWarning(
        "exactly-once on Checkpointer.layerMemoryForTests: the checkpoints do not survive the process, so a " +
          "restart finds none (and fails with a LabelCollision): give a durable Checkpointer outside tests"
      ).pipe(Effect.annotateLogs({ key }))
    }
    // The highest checkpoint id handed to onCheckpoint: a barrier with nothing to save repeats the previous id, which
    // was handed already.
    let handed = -1
    /**
     * Runs `onCheckpoint` on a committed checkpoint's ack, once per checkpoint id. Called by `complete` after the ack
     * is completed (and before `done`: the next barrier's checkpoint waits for it, so the calls come in checkpoint
     * order, one at a time), and at start on the checkpoint recovery found. Its failure is an `OnCheckpointError`;
     * a defect or an interruption stays what it is.
     */
    const handOver = (ack: Checkpoint.Ack<P>): Effect.Effect<void, Checkpoint.OnCheckpointError<E>> => {
      const callback = options.onCheckpoint
      if (callback === undefined || ack.id <= handed) return Effect.void
      handed = ack.id
      return Effect.suspend(() => callback(ack)).pipe(
        Effect.mapError((cause) =>
          new Checkpoint.OnCheckpointError({
            cause,
            checkpoint: ack.id,
            position: ack.position,
            recovered: ack.recovered === true
          })
        ),
        Effect.provide(callbackContext)
      )
    }
    // the checkpoint recovery found is committed now (by this start or an earlier run): a run that died after its
    // commit and before its callback (the source's offsets) is made good here
    if (Option.isSome(last.record) && Option.isSome(last.position)) {
      yield* handOver({
        id: last.record.value.id,
        position: last.position.value,
        labels: last.committed,
        recovered: true
      })
    }

    yield* Effect.logDebug("exactly-once sink started").pipe(
      Effect.annotateLogs({ key, instance, checkpoint: checkpointId, timeoutSec, epoch, owner: owner ?? "" })
    )

    const batchOf = (t: Table, label: string, rows: number, bytes: number): Ledger.Batch => ({
      table: t.lane.key,
      database: t.target.database,
      tableName: t.target.table,
      label,
      rows,
      bytes
    })

    const rollbackQuietly = (t: Table, label: string) =>
      client.rollback({ ...t.target, label }).pipe(
        Effect.timeout("30 seconds"),
        Effect.zipRight(ledger.record(batchOf(t, label, 0, 0), "failed")),
        Effect.catchAllCause((cause) =>
          Effect.logWarning("exactly-once: rollback failed").pipe(Effect.annotateLogs({ label, cause: String(cause) }))
        )
      )

    /** Rolls the live transaction back (if any) and begins a new one, replaying the spool into it. */
    const restart = (t: Table, x: Txn) =>
      Effect.gen(function*() {
        if (x.live) {
          yield* rollbackQuietly(t, x.label)
          yield* ledger.retried(t.lane.key, t.target.database, t.target.table)
          yield* Effect.logWarning("exactly-once: transaction failed, replaying its data into a new transaction")
            .pipe(Effect.annotateLogs({ table: t.lane.key, label: x.label, loads: x.spool.count(), bytes: x.bytes }))
        }
        x.label = t.label(t.nextId++)
        x.live = true
        x.beganAt = clock.unsafeCurrentTimeMillis()
        yield* ledger.pending(batchOf(t, x.label, x.rows, x.bytes))
        yield* client.begin({ ...t.target, label: x.label, headers: beginHeaders })
        yield* x.spool.replay((body, rawBytes) =>
          Effect.asVoid(client.loadTxn({
            ...t.target,
            label: x.label,
            headers: x.headers,
            body,
            compressed: rawBytes === undefined ? undefined : { rawBytes }
          }))
        )
      })

    /** Runs `step` on the live transaction; a failure replays the transaction into a new one and runs it again. */
    const withReplay = <X>(t: Table, x: Txn, step: (x: Txn) => Effect.Effect<X, Error>) => {
      let first = true
      return Effect.retry(
        Effect.suspend(() => {
          const fresh = first && x.live
          first = false
          return fresh ? step(x) : Effect.zipRight(restart(t, x), Effect.suspend(() => step(x)))
        }),
        replayPolicy
      )
    }

    /** Prepares the table's open transaction once its last load has landed (a change of headers). */
    const prepareOpen = (t: Table) =>
      Effect.zipRight(
        awaitTail(t),
        Effect.suspend(() => {
          const x = t.txn
          if (x === undefined) return Effect.void
          return Effect.zipRight(prepareTxn(t, x, t.pending), Effect.sync(() => (t.txn = undefined)))
        })
      )

    /** Prepares `x` (its loads have landed) and lists it in `into` (the prepared transactions of its checkpoint). */
    const prepareTxn = (t: Table, x: Txn, into: Array<Prepared>) =>
      Effect.gen(function*() {
        const age = clock.unsafeCurrentTimeMillis() - x.beganAt
        if (age > 0.8 * timeoutSec * 1000) {
          yield* Effect.logWarning(
            "exactly-once: a transaction is being prepared after more than 80% of its timeout: checkpoint more " +
              "often or raise sink.properties.timeout"
          ).pipe(Effect.annotateLogs({ label: x.label, ageMs: age, timeoutSec }))
        }
        const result = yield* withReplay(
          t,
          x,
          (x) => client.prepare({ ...t.target, label: x.label, headers: prepareHeaders })
        ).pipe(
          Effect.mapError((e) =>
            deadLetter !== undefined ? deadLetter.overRatio(batchOf(t, x.label, x.rows, x.bytes), e) : e
          )
        )
        // the rows StarRocks filtered out of the prepared transaction (they are not committed)
        if (deadLetter !== undefined && result.filteredRows > 0) {
          yield* deadLetter.filtered(batchOf(t, x.label, x.rows, x.bytes), result)
        }
        x.live = false
        into.push({ label: x.label, rows: x.rows, bytes: x.bytes, sentBytes: x.sentBytes })
        yield* x.spool.clear
      })

    // A sealed batch's load runs beside the encoding of the next rows, as the at-least-once sink's dispatcher runs
    // it: one load per table at a time (the loads of a transaction go in order), at most sink.io.thread-count in
    // all and at most max-bytes of bodies in flight (the building batches hold another max-bytes). Measured: loading
    // in the row loop left the encoder idle for every load, and exactly-once ran at 0.77 to 0.93 x at-least-once
    // (docs/benchmark.md). A failed load fails the next step that touches its table (the next seal, the barrier,
    // the end).
    const awaitTail = (t: Table): Effect.Effect<void, Error> =>
      Effect.suspend(() => {
        const tail = t.tail
        if (tail === undefined) return Effect.void
        return Effect.zipRight(
          Deferred.await(tail),
          Effect.sync(() => {
            if (t.tail === tail) t.tail = undefined
          })
        )
      })

    const pushBatch = (t: Table, sealed: Sealed) =>
      Effect.gen(function*() {
        // all loads of one transaction carry identical headers: another shape goes into another transaction
        if (t.txn !== undefined && !sameHeaders(t.txn.headers, sealed.headers)) yield* prepareOpen(t)
        yield* awaitTail(t)
        if (t.txn === undefined) {
          t.txn = {
            label: "",
            live: false,
            headers: sealed.headers,
            beganAt: clock.unsafeCurrentTimeMillis(),
            rows: 0,
            bytes: 0,
            sentBytes: 0,
            spool: Spool.make({ memoryLimit: maxBytes, shared: t.spoolBudget, release: sealed.release })
          }
        }
        const x = t.txn
        const raw = sealed.body
        const rawBytes = raw.byteLength
        let permits = Math.max(1, Math.min(rawBytes, maxBytes))
        yield* slots.take(1)
        yield* bytesInFlight.take(permits)
        const done = yield* Deferred.make<void, Error>()
        t.tail = done
        const load = Effect.gen(function*() {
          // A compressed load is compressed once, before its first attempt (LoadClient.compress, as the dispatcher
          // does): the raw chunks go back to the pool as the codec reads them, and the frame is what the load, its
          // replays into a new transaction and the spool hold (never compressed again); the permits beyond the
          // frame's size go back to the budget at once.
          const compress = compressFirst(
            client,
            { ...t.target, label: x.label === "" ? t.lane.key : x.label, headers: x.headers, body: raw },
            sealed.release
          )
          const request = compress !== undefined ? yield* compress : undefined
          const body = request?.body ?? raw
          const compressed = request?.compressed
          if (compressed !== undefined) {
            const back = spare(permits, body)
            if (back > 0) {
              permits -= back
              yield* bytesInFlight.release(back)
            }
          }
          const loaded = yield* withReplay(t, x, (x) =>
            client.loadTxn({ ...t.target, label: x.label, headers: x.headers, body, compressed }))
          x.rows += sealed.rows
          x.bytes += rawBytes
          x.sentBytes += loaded.compressedBytes ?? body.byteLength
          yield* x.spool.add(body, compressed?.rawBytes)
        }).pipe(
          Effect.ensuring(Effect.suspend(() =>
            Effect.zipRight(bytesInFlight.release(permits), slots.release(1))
          )),
          Effect.exit,
          Effect.flatMap((exit) => Deferred.done(done, exit))
        )
        yield* FiberSet.run(loads, load)
      })

    // the label path (V1): sealed batches go to durable spool files, loaded under their labels after the save
    const spoolBatch = (spool: LabelSpool.LabelSpool, t: Table, sealed: Sealed) =>
      Effect.gen(function*() {
        const label = t.label(t.nextId++)
        yield* ledger.pending(batchOf(t, label, sealed.rows, sealed.body.byteLength))
        yield* spool.write({ label, headers: sealed.headers, rows: sealed.rows, body: sealed.body })
        sealed.release(sealed.body)
        t.pending.push({ label, rows: sealed.rows, bytes: sealed.body.byteLength })
      })

    const loadSpooled = (spool: LabelSpool.LabelSpool, t: Table, p: Prepared) =>
      Effect.gen(function*() {
        const batch = yield* spool.read(p.label)
        if (batch === undefined) {
          return yield* new ExactlyOnceError({
            reason: "Spool",
            label: p.label,
            message: `the spool file of ${p.label} disappeared before it was loaded`
          })
        }
        const result = yield* client.loadBatch({
          ...t.target,
          label: p.label,
          headers: batch.headers,
          body: batch.body
        })
        yield* spool.remove(p.label)
        if (deadLetter !== undefined && result.filteredRows > 0) {
          yield* deadLetter.filtered(batchOf(t, p.label, p.rows, p.bytes), result)
        }
        return result
      })

    const onSeal = (sealed: Sealed) =>
      Effect.zipRight(
        deadLetter !== undefined ? deadLetter.sealed(sealed.lane.key, sealed.rows) : Effect.void,
        Effect.flatMap(
          tableOf(sealed.lane),
          (t) => labelSpool !== undefined ? spoolBatch(labelSpool, t, sealed) : pushBatch(t, sealed)
        )
      )

    const commitPrepared = (t: Table, p: Prepared) => {
      const startedAt = clock.unsafeCurrentTimeMillis()
      return (labelSpool !== undefined
        ? loadSpooled(labelSpool, t, p)
        : client.commit({ ...t.target, label: p.label }) as Effect.Effect<
          { readonly retries: number; readonly filteredRows: number },
          Error
        >)
        .pipe(
          Effect.mapError((e) =>
            new ExactlyOnceError({
              reason: "CommitFailed",
              label: p.label,
              ...(e._tag === "TransactionError" && e.labelState !== undefined ? { labelState: e.labelState } : {}),
              message: `${labelSpool !== undefined ? "load of the spooled batch" : "commit"} of ${p.label} ` +
                `(table ${t.lane.key}) failed (${e._tag}: ${e.message}); the checkpoint recording it is durable, ` +
                `so recovery ${labelSpool !== undefined ? "loads" : "commits"} it at the next start` +
                `${labelSpool !== undefined ? "" : " unless it times out (prepared_timeout)"}`
            })
          ),
          Effect.tap((result) =>
            ledger.landed(
              batchOf(t, p.label, p.rows, p.bytes),
              p.sentBytes !== undefined ? { ...result, compressedBytes: p.sentBytes } : result,
              startedAt
            )
          )
        )
    }

    // the batcher calls onBarrier, which seals through the batcher: bound once it is made
    const late: { batcher?: Batcher.Batcher<Checkpoint.Envelope<In, P>, Failure, LoadClient.LoadClient> } = {}

    // The checkpoint whose barrier has passed and that finishes in the background (at most one): set at its barrier,
    // cleared once it is acknowledged; a failed or stopped one stays, for the finalizer to read its state.
    let closing: Closing<P, E> | undefined
    const background = yield* FiberSet.make<void, never>()

    /**
     * Waits for the checkpoint finishing in the background: done when it is acknowledged and `onCheckpoint` has run
     * on it, else its error.
     */
    const awaitClosing: Effect.Effect<void, Failure> = Effect.suspend(() =>
      closing === undefined ? Effect.void : Deferred.await(closing.done)
    )

    /**
     * A barrier, in the row loop: the buffered rows are sealed (their loads go into the open transactions), the
     * previous checkpoint is awaited (it finishes in the background: commits stay in checkpoint order, and at most
     * one checkpoint is closing), and what is open is handed to a new closing checkpoint, finished in the background
     * by `complete`. The rows after the barrier go on into new transactions meanwhile. Measured: the row loop stood
     * idle while the barrier's last load landed and its transactions were prepared, saved and committed (26 to 91 ms
     * per barrier on a loaded machine, 10 to 19 ms now; docs/benchmark.md, Exactly-once checkpoints in the
     * background).
     */
    const onBarrier = (item: Checkpoint.Envelope<In, P>) => {
      const barrier = item as Checkpoint.Barrier<P>
      return Effect.gen(function*() {
        yield* awaitStarting
        yield* late.batcher!.sealAll
        yield* awaitClosing
        const parts: Array<Part> = []
        for (const t of tables.values()) {
          nextLabelId[t.lane.key] = t.nextId
          if (t.txn === undefined && t.pending.length === 0) continue
          parts.push({ t, txn: t.txn, tail: t.tail, prepared: t.pending })
          t.txn = undefined
          t.tail = undefined
          t.pending = []
        }
        const c: Closing<P, E> = {
          barrier,
          parts,
          nextLabelId: { ...nextLabelId },
          state: "open",
          done: yield* Deferred.make<void, Failure>()
        }
        closing = c
        yield* FiberSet.run(background, complete(c))
      }).pipe(
        // the previous checkpoint's onCheckpoint failed: the sink stops before this barrier's checkpoint (as when it
        // is interrupted); any other error is this checkpoint's too
        Effect.tapError((e) =>
          Checkpoint.isOnCheckpointError(e) ? Deferred.interrupt(barrier.ack) : Deferred.fail(barrier.ack, e)
        ),
        Effect.onInterrupt(() => Deferred.interrupt(barrier.ack))
      )
    }

    /**
     * A checkpoint, in the background: its last loads land, its transactions are prepared, its record is saved (the
     * commit point), its transactions committed and its barrier acknowledged; then `onCheckpoint` runs on the ack
     * (`handOver`). A failure fails the ack (before it completed), `done` and the sink (`failed`).
     */
    const complete = (c: Closing<P, E>) =>
      Effect.gen(function*() {
        for (const part of c.parts) {
          if (part.tail !== undefined) yield* Deferred.await(part.tail)
          const x = part.txn
          if (x !== undefined) {
            yield* prepareTxn(part.t, x, part.prepared)
            part.txn = undefined
          }
        }
        // aligned checkpoints: nobody saves checkpoint k before every instance has prepared it
        if (options.coordinator !== undefined) yield* options.coordinator.arrive(++round)
        const encoded = yield* encodePosition(c.barrier.position)
        const positionKey = JSON.stringify(encoded)
        const toCommit: Array<[Table, Prepared]> = []
        const prepared: Record<string, Array<string>> = {}
        for (const part of c.parts) {
          if (part.prepared.length === 0) continue
          prepared[part.t.lane.key] = part.prepared.map((p) => p.label)
          for (const p of part.prepared) toCommit.push([part.t, p])
        }
        if (toCommit.length > 0 || positionKey !== lastSavedPosition) {
          const record = new Checkpointer.CheckpointRecord({
            key,
            id: checkpointId + 1,
            position: encoded,
            prepared,
            // each table's next id at the barrier: recovery from this record rolls back what the rows after the
            // barrier began from there on. A transaction of this checkpoint replayed in the background may have
            // taken a later id: the record lists it, and recovery passes over it (Recovery.abortLingering's `own`)
            nextLabelId: c.nextLabelId,
            createdAt: clock.unsafeCurrentTimeMillis(),
            epoch
          })
          // the commit point, a compare-and-set: refused when another owner claimed the key. Then nothing of this
          // checkpoint may be committed: its prepared transactions are rolled back and the sink stops (Fenced).
          // Commits come only after this save succeeded, so a fenced owner never commits.
          c.state = "saving"
          yield* checkpointer.save(record).pipe(
            Effect.catchIf(isFenced, (e) =>
              Effect.gen(function*() {
                // each stays listed as prepared until it is rolled back: an interruption in between (the partition
                // taken away) leaves the rest to the finalizer, which rolls back the prepared ones of an open
                // checkpoint, instead of PREPARED until prepared_timeout
                c.state = "open"
                for (const part of c.parts) {
                  while (part.prepared.length > 0) {
                    const p = part.prepared[0]!
                    yield* (labelSpool !== undefined ? labelSpool.remove(p.label) : rollbackQuietly(part.t, p.label))
                    part.prepared.shift()
                  }
                }
                yield* Effect.logWarning("exactly-once: fenced, another owner claimed the checkpoint key").pipe(
                  Effect.annotateLogs({
                    key,
                    epoch,
                    currentEpoch: e.currentEpoch ?? "",
                    currentOwner: e.currentOwner ?? ""
                  })
                )
                return yield* Recovery.fencedError(e, key, owner, epoch, toCommit.map(([, p]) => p.label))
              }))
          )
          c.state = "saved"
          for (const part of c.parts) part.prepared = []
          checkpointId = record.id
          lastSavedPosition = positionKey
          checkpoints++
          for (const [t, p] of toCommit) yield* commitPrepared(t, p)
        }
        lastPosition = Option.some(c.barrier.position)
        const committed = toCommit.map(([, p]) => p.label)
        yield* Effect.logDebug("exactly-once checkpoint").pipe(
          Effect.annotateLogs({ key, checkpoint: checkpointId, labels: committed.join(",") })
        )
        const ack: Checkpoint.Ack<P> = { id: checkpointId, position: c.barrier.position, labels: committed }
        yield* Deferred.succeed(c.barrier.ack, ack)
        return ack
      }).pipe(
        Effect.tapError((e) => Deferred.fail(c.barrier.ack, e)),
        Effect.onInterrupt(() => Deferred.interrupt(c.barrier.ack)),
        Effect.flatMap(handOver),
        Effect.onExit(settle(c.done, () => {
          if (closing === c) closing = undefined
        })),
        // reported through `done` and `failed`
        Effect.exit,
        Effect.asVoid
      )

    const batcher = yield* Batcher.make<Checkpoint.Envelope<In, P>, Failure, LoadClient.LoadClient>({
      router,
      maxRows: config.maxRows,
      maxBytes,
      clock,
      // a table that appeared while the stream ran: its startup check passes before its first transaction
      onSeal: (sealed) => Effect.zipRight(router.ready(sealed.lane), onSeal(sealed)),
      onBarrier,
      deadLetter
    })
    late.batcher = batcher

    const rollbackPrepared = (t: Table, p: Prepared) =>
      labelSpool !== undefined ? labelSpool.remove(p.label) : rollbackQuietly(t, p.label)

    // interruption or failure: the background checkpoint and the loads in flight stop, then the open (not prepared)
    // transactions are rolled back, the closing checkpoint's as the next one's; so are the prepared ones of a
    // checkpoint whose record was never saved (prepared at a change of headers after the last barrier, or by a
    // closing checkpoint stopped before its save: waiting for the other instances of aligned checkpoints, or a
    // fenced owner's partition taken away): no recovery would ever commit them, and left alone they would stay
    // PREPARED until prepared_timeout. Prepared transactions of a save whose outcome is not known (it failed, or was
    // stopped midway) are left to recovery: the record may be durable; unless a later owner has saved the key since
    // (with `owner`), when the store can never take it. Those of a saved record are recovery's.
    yield* Effect.addFinalizer((exit) =>
      Effect.gen(function*() {
        // the start's recovery walk, if the sink stops before it is done (nothing of this run began yet)
        yield* FiberSet.clear(walks)
        if (options.coordinator !== undefined) {
          yield* exit._tag === "Success"
            ? options.coordinator.leave
            : options.coordinator.abort(`instance ${instance}: ${Cause.pretty(exit.cause).split("\n")[0]}`)
        }
        // A failure of the rows after a barrier does not stop the barrier's checkpoint: it finishes (committed and
        // acknowledged, or failed), as it did when a barrier's checkpoint finished before the next row was taken.
        // An interruption stops it (its ack is interrupted). Then the loads in flight stop, before their
        // transactions are rolled back.
        const c0 = closing
        if (c0 !== undefined && exit._tag === "Failure" && !Cause.isInterruptedOnly(exit.cause)) {
          yield* Effect.exit(Deferred.await(c0.done))
        }
        yield* FiberSet.clear(background)
        yield* FiberSet.clear(loads)
        const c = closing
        closing = undefined
        if (c !== undefined) {
          // a save stopped midway whose key a later owner has saved under since can never land (the store refuses an
          // older epoch): what it would have recorded is rolled back too
          const superseded = c.state === "saving" && owner !== undefined
            ? yield* checkpointer.latest(key).pipe(
              Effect.timeout("10 seconds"),
              Effect.map(Option.exists((r) => (r.epoch ?? 0) > epoch)),
              Effect.orElseSucceed(() => false)
            )
            : false
          for (const part of c.parts) {
            const unsaved = c.state === "open" || superseded ? part.prepared : []
            part.prepared = []
            for (const p of unsaved) yield* rollbackPrepared(part.t, p)
            const x = part.txn
            part.txn = undefined
            if (x !== undefined) {
              if (x.live) yield* rollbackQuietly(part.t, x.label)
              yield* x.spool.clear
            }
          }
        }
        for (const t of tables.values()) {
          const unsaved = t.pending
          t.pending = []
          for (const p of unsaved) yield* rollbackPrepared(t, p)
          const x = t.txn
          t.txn = undefined
          if (x !== undefined) {
            if (x.live) yield* rollbackQuietly(t, x.label)
            yield* x.spool.clear
          }
        }
      })
    )

    const finish = Effect.gen(function*() {
      yield* awaitStarting
      // the last barrier's checkpoint: the stream ends once it is committed and acknowledged
      yield* awaitClosing
      let uncovered = 0
      for (const lane of router.lanes()) {
        uncovered += lane.rows()
        lane.discard()
      }
      for (const t of tables.values()) {
        // a load of rows after the last barrier: its rows are rolled back below whether it landed or not
        yield* Effect.exit(awaitTail(t))
        uncovered += (t.txn?.rows ?? 0) + t.pending.reduce((n, p) => n + p.rows, 0)
      }
      if (uncovered > 0) {
        yield* Effect.logWarning(
          "exactly-once: the stream ended with rows after its last barrier; they are not covered by a checkpoint " +
            "and are rolled back (end the stream with a barrier, e.g. Checkpoint.withBarriers' final barrier)"
        ).pipe(Effect.annotateLogs({ rows: uncovered }))
      }
      for (const t of tables.values()) {
        const open = t.txn
        if (open !== undefined) {
          t.txn = undefined
          if (open.live) yield* rollbackQuietly(t, open.label)
          yield* open.spool.clear
        }
        for (const p of t.pending) {
          yield* (labelSpool !== undefined ? labelSpool.remove(p.label) : rollbackQuietly(t, p.label))
        }
        t.pending = []
      }
      if (deadLetter !== undefined) yield* deadLetter.end
      return { ...ledger.summary(), checkpoints, epoch, lastPosition } satisfies Summary
    })

    // The sink reads its chunks itself. While no checkpoint is closing, it reads them as `Sink.forEachChunk` does
    // (in the stream's fiber: nothing costs more per chunk). While one is closing, its failure must fail the sink
    // at once, even when no element comes (a quiet upstream: the stream's fiber would wait in the upstream, and the
    // failure would wait for the next element). Then the upstream runs in a fiber of its own (`Channel.embedInput`:
    // the executor's drainer, interrupted when the reading ends) and hands each chunk over through a `Handover`,
    // whose wait the failure ends (`settle`). Measured with one-row chunks, that crossing tripled the sink's CPU time
    // when it lasted the whole stream (docs/benchmark.md, Exactly-once checkpoints in the background): it lasts from
    // a barrier to the first chunk after its checkpoint is done. It was `Channel.mergeWith` with a channel failing
    // with the failure until session 18 (docs/benchmark.md, Session 18): the same hand-over with two more
    // executors, a scope, a race of two joins and an input queue of Deferreds around it.
    const step = Chunks.stepOf(batcher.onChunk)
    // whether a failure may come from a fiber of the sink's own: a closing checkpoint, the start's recovery walk
    const busy = () => closing !== undefined || starting !== undefined
    type Rows<Done> = Channel.Channel<
      never,
      Chunk.Chunk<Checkpoint.Envelope<In, P>>,
      Failure,
      never,
      Done,
      unknown,
      LoadClient.LoadClient
    >
    const direct = (): Rows<Summary> =>
      Channel.readWithCause({
        onInput: (chunk: Chunk.Chunk<Checkpoint.Envelope<In, P>>) =>
          Channel.flatMap(Channel.fromEffect(step(chunk)), () => busy() ? merged() : direct()),
        onFailure: Channel.failCause,
        onDone: () => Channel.fromEffect(finish)
      })
    // reads from the hand-over while a checkpoint is closing; "more" after the first chunk once it is done, "end" at
    // the stream's end; the failure of a step in the background ends it (`sinkFailure`, checked before each take)
    const whileClosing = (
      input: Handover<Chunk.Chunk<Checkpoint.Envelope<In, P>>, Failure>
    ): Channel.Channel<never, unknown, Failure, unknown, "more" | "end", unknown, LoadClient.LoadClient> => {
      const loop: Channel.Channel<never, unknown, Failure, unknown, "more" | "end", unknown, LoadClient.LoadClient> =
        Channel.flatMap(
          Channel.fromEffect(input.take),
          (chunk) =>
            chunk === undefined ? Channel.succeed("end" as const) : Channel.flatMap(
              Channel.fromEffect(step(chunk)),
              () => busy() ? loop : Channel.succeed("more" as const)
            )
        )
      return loop
    }
    const merged = (): Rows<Summary> =>
      Channel.suspend(() => {
        const input = new Handover<Chunk.Chunk<Checkpoint.Envelope<In, P>>, Failure>(sinkFailure)
        reading = input
        return Channel.flatMap(
          Channel.embedInput(whileClosing(input), input) as Rows<"more" | "end">,
          (next) => {
            if (reading === input) reading = undefined
            return next === "more" ? direct() : Channel.fromEffect(finish)
          }
        )
      })
    return Sink.fromChannel(Channel.suspend(() => busy() ? merged() : direct()))
  })) as Sink.Sink<Summary, Checkpoint.Envelope<In, P>, never, Error | CallbackError<E>, Requirements | R>
