/**
 * The exactly-once sink over the transaction interface (two-phase commit driven by checkpoint barriers).
 */
import { Cause, Deferred, Effect, Exit, Metric, Option, Schema, Sink } from "effect"
import * as Os from "node:os"
import * as Path from "node:path"
import type * as Checkpoint from "../Checkpoint.js"
import * as Checkpointer from "../Checkpointer.js"
import * as LabelStore from "../LabelStore.js"
import * as LoadClient from "../LoadClient.js"
import * as RetryPolicy from "../RetryPolicy.js"
import type * as RowEncoder from "../RowEncoder.js"
import * as SinkMetrics from "../SinkMetrics.js"
import * as StarRocksConfig from "../StarRocksConfig.js"
import type * as StarRocksSink from "../StarRocksSink.js"
import * as Chunks from "./chunks.js"
import * as RetryLogic from "./client/retryLogic.js"
import { prepareEncoder } from "./encoderSetup.js"
import * as EventLoop from "./eventLoop.js"
import { ExactlyOnceError } from "./exactlyOnceError.js"
import * as LabelSpool from "./labelSpool.js"
import * as Recovery from "./recovery.js"
import * as Spool from "./spool.js"

export interface Options<P, PI> {
  readonly position: Schema.Schema<P, PI>
  readonly instance?: string | undefined
  readonly checkpointKey?: string | undefined
  readonly columns?: ReadonlyArray<string> | undefined
  readonly spoolDirectory?: string | undefined
  readonly coordinator?: Checkpoint.Coordinator | undefined
}

export interface Summary {
  readonly rows: number
  readonly bytes: number
  readonly loads: number
  readonly retries: number
  readonly filteredRows: number
  readonly checkpoints: number
  readonly lastPosition: Option.Option<unknown>
}

/** The sink's error union (a type-only import: no runtime cycle with StarRocksSink). */
export type Error = StarRocksSink.SinkError

export type Requirements = StarRocksSink.Services | Checkpointer.Checkpointer

interface Txn {
  /** The label of the live transaction (changes when the data is replayed into a new transaction). */
  label: string
  /** Whether `label` may hold a begun transaction on the server (rolled back before a replay). */
  live: boolean
  readonly headers: Readonly<Record<string, string>>
  readonly headersKey: string
  beganAt: number
  rows: number
  bytes: number
  loads: number
  readonly spool: Spool.Spool
}

interface Prepared {
  readonly label: string
  readonly rows: number
  readonly bytes: number
}

const headersKey = (headers: Readonly<Record<string, string>>): string =>
  JSON.stringify(Object.keys(headers).sort().map((k) => [k, headers[k]]))

const positionError = (what: string) => (e: unknown) =>
  new ExactlyOnceError({ reason: "Position", message: `${what}: ${e instanceof Error ? e.message : String(e)}` })

export const decoder = <P, PI>(schema: Schema.Schema<P, PI>) => (u: unknown) =>
  Schema.decodeUnknown(schema)(u).pipe(
    Effect.mapError(positionError("the recorded checkpoint position does not decode"))
  )

/** Whether a failed transaction call is worth a replay into a new transaction (under a new label). */
const replayable = (e: Error): boolean => RetryLogic.isReplayable(e, { newLabel: true })

/** The label path's spool (V1 only). */
const labelSpoolFor = (config: StarRocksConfig.StarRocksConfig, id: Recovery.Identity, directory?: string) =>
  config.version === "V1"
    ? LabelSpool.make(
      directory ?? Path.join(Os.tmpdir(), "effect-starrocks-spool", id.key.replace(/[^-\w.]/g, "_"))
    )
    : undefined

export const recover = <P, PI>(options: Options<P, PI>) =>
  Effect.gen(function*() {
    const config = yield* StarRocksConfig.StarRocksConfig
    const id = Recovery.identity(config, options)
    const spool = labelSpoolFor(config, id, options.spoolDirectory)
    const recovered = yield* Recovery.run(options.position, id, decoder(options.position), spool)
    return recovered.position
  })

export const make = <A, I, P, PI>(
  schema: Schema.Schema<A, I>,
  options: Options<P, PI>
): Sink.Sink<Summary, Checkpoint.Envelope<A, P>, never, Error, Requirements> =>
  Sink.unwrapScoped(Effect.gen(function*() {
    const config = yield* StarRocksConfig.StarRocksConfig
    const client = yield* LoadClient.LoadClient
    const labels = yield* LabelStore.LabelStore
    const checkpointer = yield* Checkpointer.Checkpointer

    const id = Recovery.identity(config, options)
    const decode = decoder(options.position)
    const encodePosition = (p: P) =>
      Schema.encode(options.position)(p).pipe(Effect.mapError(positionError("the barrier position does not encode")))

    // recovery first: commit what the last checkpoint prepared, abort lingering transactions
    const labelSpool = labelSpoolFor(config, id, options.spoolDirectory)
    const recovered = yield* Recovery.run(options.position, id, decode, labelSpool)

    const { encoder } = yield* prepareEncoder(schema, config, options.columns)

    const withTag = SinkMetrics.tagged(config.database, config.table)
    const target = { database: config.database, table: config.table }
    const maxBytes = config.maxBytes
    const maxRows = config.maxRows
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

    let nextId = recovered.nextId
    let checkpointId = Option.match(recovered.record, { onNone: () => 0, onSome: (r) => r.id })
    let lastSavedPosition = Option.match(recovered.record, {
      onNone: () => undefined as string | undefined,
      onSome: (r) => JSON.stringify(r.position)
    })
    let lastPosition: Option.Option<unknown> = recovered.position
    let txn: Txn | undefined
    let pending: Array<Prepared> = []
    let builder: RowEncoder.BatchBuilder<A> | undefined
    let rowIndex = 0
    let round = 0
    const summary = { rows: 0, bytes: 0, loads: 0, retries: 0, filteredRows: 0, checkpoints: 0 }

    yield* Effect.logDebug("exactly-once sink started").pipe(
      Effect.annotateLogs({ key: id.key, instance: id.instance, checkpoint: checkpointId, nextId, timeoutSec })
    )

    const putLabel = (label: string, state: LabelStore.LabelState, rows: number, bytes: number) =>
      labels.put(new LabelStore.LabelRecord({ label, table: id.tableTag, state, rows, bytes, updatedAt: Date.now() }))

    const rollbackQuietly = (label: string) =>
      client.rollback({ ...target, label }).pipe(
        Effect.timeout("30 seconds"),
        Effect.zipRight(putLabel(label, "failed", 0, 0)),
        Effect.catchAllCause((cause) =>
          Effect.logWarning("exactly-once: rollback failed").pipe(Effect.annotateLogs({ label, cause: String(cause) }))
        )
      )

    /** Rolls the live transaction back (if any) and begins a new one, replaying the spool into it. */
    const restart = (t: Txn) =>
      Effect.gen(function*() {
        if (t.live) {
          yield* rollbackQuietly(t.label)
          summary.retries++
          yield* Metric.increment(SinkMetrics.totalLoadRetries).pipe(withTag)
          yield* Effect.logWarning("exactly-once: transaction failed, replaying its data into a new transaction")
            .pipe(Effect.annotateLogs({ label: t.label, loads: t.spool.count(), bytes: t.bytes }))
        }
        t.label = id.label(nextId++)
        t.live = true
        t.beganAt = Date.now()
        yield* putLabel(t.label, "pending", t.rows, t.bytes)
        yield* client.begin({ ...target, label: t.label, headers: beginHeaders })
        yield* t.spool.replay((body) =>
          Effect.asVoid(client.loadTxn({ ...target, label: t.label, headers: t.headers, body }))
        )
      })

    const newTxn = (headers: Readonly<Record<string, string>>): Txn => ({
      label: "",
      live: false,
      headers,
      headersKey: headersKey(headers),
      beganAt: Date.now(),
      rows: 0,
      bytes: 0,
      loads: 0,
      spool: Spool.make({ memoryLimit: maxBytes, release: encoder.release })
    })

    /** Runs `step` on the live transaction; a failure replays the transaction into a new one and runs it again. */
    const withReplay = <X>(t: Txn, step: (t: Txn) => Effect.Effect<X, Error>) => {
      let first = true
      return Effect.retry(
        Effect.suspend(() => {
          const fresh = first && t.live
          first = false
          return fresh ? step(t) : Effect.zipRight(restart(t), Effect.suspend(() => step(t)))
        }),
        replayPolicy
      )
    }

    const prepareOpen = Effect.suspend(() => {
      const t = txn
      if (t === undefined) return Effect.void
      return Effect.gen(function*() {
        const age = Date.now() - t.beganAt
        if (age > 0.8 * timeoutSec * 1000) {
          yield* Effect.logWarning(
            "exactly-once: a transaction is being prepared after more than 80% of its timeout: checkpoint more " +
              "often or raise sink.properties.timeout"
          ).pipe(Effect.annotateLogs({ label: t.label, ageMs: age, timeoutSec }))
        }
        yield* withReplay(t, (t) => client.prepare({ ...target, label: t.label, headers: prepareHeaders }))
        t.live = false
        pending.push({ label: t.label, rows: t.rows, bytes: t.bytes })
        yield* t.spool.clear
        txn = undefined
      })
    })

    const pushBatch = (body: LoadClient.LoadBody, headers: Readonly<Record<string, string>>, rows: number) =>
      Effect.gen(function*() {
        // all loads of one transaction carry identical headers: another format goes into another transaction
        if (txn !== undefined && txn.headersKey !== headersKey(headers)) yield* prepareOpen
        if (txn === undefined) txn = newTxn(headers)
        const t = txn
        yield* withReplay(
          t,
          (t) => Effect.asVoid(client.loadTxn({ ...target, label: t.label, headers: t.headers, body }))
        )
        t.rows += rows
        t.bytes += body.byteLength
        t.loads++
        yield* t.spool.add(body)
      })

    // the label path (V1): sealed batches go to durable spool files, loaded under their labels after the save
    const spoolBatch = (
      spool: LabelSpool.LabelSpool,
      body: LoadClient.LoadBody,
      headers: Readonly<Record<string, string>>,
      rows: number
    ) =>
      Effect.gen(function*() {
        const label = id.label(nextId++)
        yield* putLabel(label, "pending", rows, body.byteLength)
        yield* spool.write({ label, headers, rows, body })
        encoder.release(body)
        pending.push({ label, rows, bytes: body.byteLength })
      })

    const loadSpooled = (spool: LabelSpool.LabelSpool, p: Prepared) =>
      Effect.gen(function*() {
        const batch = yield* spool.read(p.label)
        if (batch === undefined) {
          return yield* new ExactlyOnceError({
            reason: "Spool",
            label: p.label,
            message: `the spool file of ${p.label} disappeared before it was loaded`
          })
        }
        const result = yield* client.loadBatch({ ...target, label: p.label, headers: batch.headers, body: batch.body })
        yield* spool.remove(p.label)
        return result
      })

    const seal = Effect.suspend(() => {
      const b = builder
      builder = undefined
      if (b === undefined || b.rows === 0) return Effect.void
      const { body, headers: own } = b.finish()
      // the table's sink.properties.* under the encoder's own headers (keys are lower-case in both)
      const headers = { ...config.properties, ...own }
      return labelSpool !== undefined ? spoolBatch(labelSpool, body, headers, b.rows) : pushBatch(body, headers, b.rows)
    })

    const full = (b: RowEncoder.BatchBuilder<A>) => b.rows >= maxRows || b.bytes >= maxBytes

    const addRow = (row: A) =>
      Effect.gen(function*() {
        const index = rowIndex++
        if (builder === undefined) builder = encoder.builder(config.format)
        if (!builder.add(row, index)) {
          yield* seal
          builder = encoder.builder("json")
          if (!builder.add(row, index)) return yield* Effect.die(new Error(`row ${index} cannot be encoded as JSON`))
        }
        if (full(builder)) yield* seal
      })

    const commitPrepared = (p: Prepared) =>
      (labelSpool !== undefined
        ? loadSpooled(labelSpool, p)
        : client.commit({ ...target, label: p.label }) as Effect.Effect<
          { readonly retries: number; readonly filteredRows: number },
          Error
        >)
        .pipe(
          Effect.mapError((e) =>
            new ExactlyOnceError({
              reason: "CommitFailed",
              label: p.label,
              ...(e._tag === "TransactionError" && e.labelState !== undefined ? { labelState: e.labelState } : {}),
              message: `${labelSpool !== undefined ? "load of the spooled batch" : "commit"} of ${p.label} failed ` +
                `(${e._tag}: ${e.message}); the checkpoint recording it is durable, so recovery ` +
                `${labelSpool !== undefined ? "loads" : "commits"} it at the next start` +
                `${labelSpool !== undefined ? "" : " unless it times out (prepared_timeout)"}`
            })
          ),
          Effect.tap((result) =>
            Effect.gen(function*() {
              yield* putLabel(p.label, "committed", p.rows, p.bytes)
              summary.rows += p.rows
              summary.bytes += p.bytes
              summary.loads += 1
              summary.retries += result.retries
              summary.filteredRows += result.filteredRows
              yield* Metric.incrementBy(SinkMetrics.totalFlushBytes, p.bytes)
              yield* Metric.incrementBy(SinkMetrics.totalFlushRows, p.rows)
              yield* Metric.increment(SinkMetrics.totalFlushSucceededTimes)
              yield* Metric.incrementBy(SinkMetrics.totalFilteredRows, result.filteredRows)
            }).pipe(withTag)
          )
        )

    const onBarrier = (barrier: Checkpoint.Barrier<P>) =>
      Effect.gen(function*() {
        yield* seal
        yield* prepareOpen
        // aligned checkpoints: nobody saves checkpoint k before every instance has prepared it
        if (options.coordinator !== undefined) yield* options.coordinator.arrive(++round)
        const encoded = yield* encodePosition(barrier.position)
        const positionKey = JSON.stringify(encoded)
        const toCommit = pending
        const committed = toCommit.map((p) => p.label)
        if (toCommit.length > 0 || positionKey !== lastSavedPosition) {
          const record = new Checkpointer.CheckpointRecord({
            key: id.key,
            id: checkpointId + 1,
            position: encoded,
            prepared: committed.length > 0 ? { [id.tableTag]: committed } : {},
            nextLabelId: { [id.tableTag]: nextId },
            createdAt: Date.now()
          })
          yield* checkpointer.save(record)
          checkpointId = record.id
          lastSavedPosition = positionKey
          pending = []
          summary.checkpoints++
          for (const p of toCommit) yield* commitPrepared(p)
        }
        lastPosition = Option.some(barrier.position)
        yield* Effect.logDebug("exactly-once checkpoint").pipe(
          Effect.annotateLogs({ key: id.key, checkpoint: checkpointId, labels: committed.join(",") })
        )
        yield* Deferred.succeed(barrier.ack, { id: checkpointId, position: barrier.position, labels: committed })
      }).pipe(
        Effect.tapError((e) => Deferred.fail(barrier.ack, e)),
        Effect.onInterrupt(() => Deferred.interrupt(barrier.ack))
      )

    // the application's sockets and timers get a turn at least every 2 ms of encoding (internal/eventLoop.ts)
    const turns = EventLoop.make()

    /**
     * Envelopes from `from` on. A row that fits the building batch without sealing it is added right here (the
     * sink runs one chunk at a time and nothing else touches the batch), so a chunk costs one effect per seal,
     * barrier and turn rather than one per row; the rest go through `addRow` and `onBarrier`.
     */
    const envelopes = (items: ReadonlyArray<Checkpoint.Envelope<A, P>>, from: number): Effect.Effect<void, Error> =>
      Effect.suspend(() => {
        for (let i = from; i < items.length; i++) {
          const envelope = items[i]!
          if (envelope._tag === "Barrier") {
            return Effect.zipRight(onBarrier(envelope), envelopes(items, i + 1))
          }
          if (builder === undefined) builder = encoder.builder(config.format)
          const index = rowIndex
          if (!builder.add(envelope.row, index)) {
            // a cut to JSON: addRow seals and adds the row again
            return Effect.zipRight(addRow(envelope.row), envelopes(items, i + 1))
          }
          rowIndex++
          if (full(builder)) {
            return Effect.zipRight(seal, envelopes(items, i + 1))
          }
          if (index % EventLoop.ROWS_PER_CHECK === EventLoop.ROWS_PER_CHECK - 1 && turns.due()) {
            return Effect.zipRight(turns.maybe, envelopes(items, i + 1))
          }
        }
        return turns.maybe
      })

    // chunks are handed over through `once` (internal/chunks.ts)
    const onChunk = (items: ReadonlyArray<Checkpoint.Envelope<A, P>>) => envelopes(items, 0)

    // interruption or failure: the open (not prepared) transaction is rolled back; prepared ones are left to
    // recovery (a checkpoint recording them may already be durable)
    yield* Effect.addFinalizer((exit) =>
      Effect.gen(function*() {
        if (options.coordinator !== undefined) {
          yield* Exit.isSuccess(exit)
            ? options.coordinator.leave
            : options.coordinator.abort(`instance ${id.instance}: ${Cause.pretty(exit.cause).split("\n")[0]}`)
        }
        const t = txn
        txn = undefined
        if (t !== undefined) {
          if (t.live) yield* rollbackQuietly(t.label)
          yield* t.spool.clear
        }
      })
    )

    const finish = Effect.gen(function*() {
      const buffered = builder?.rows ?? 0
      builder = undefined
      const open = txn
      const uncovered = buffered + (open?.rows ?? 0) + pending.reduce((n, p) => n + p.rows, 0)
      if (uncovered > 0) {
        yield* Effect.logWarning(
          "exactly-once: the stream ended with rows after its last barrier; they are not covered by a checkpoint " +
            "and are rolled back (end the stream with a barrier, e.g. Checkpoint.withBarriers' final barrier)"
        ).pipe(Effect.annotateLogs({ rows: uncovered }))
      }
      if (open !== undefined) {
        txn = undefined
        if (open.live) yield* rollbackQuietly(open.label)
        yield* open.spool.clear
      }
      for (const p of pending) {
        yield* (labelSpool !== undefined ? labelSpool.remove(p.label) : rollbackQuietly(p.label))
      }
      pending = []
      return { ...summary, lastPosition } satisfies Summary
    })

    return Chunks.forEachChunk(onChunk).pipe(Sink.mapEffect(() => finish))
  }))
