/**
 * One source partition's exactly-once pipeline (see README.md next to this file): the messages of one JetStream
 * subject (`<subjects>.p<k>`) into StarRocks through `StarRocksSink.exactlyOnce`, with its own checkpoint key and
 * its own label space (`instance` = the partition). It runs where @effect/cluster placed the partition's singleton
 * (runner.ts) and is interrupted when the partition moves; any process can pick it up, since everything it needs
 * (the position, the prepared labels, the next label id) is in the shared SQL checkpoint store.
 */
import { Checkpoint, Checkpointer, StarRocksSink } from "@effect-starrocks/sink"
import { Chunk, Data, Effect, Option, Schema, Stream } from "effect"
import type { JsMsg, NatsConnection } from "nats"
import { AckPolicy, DeliverPolicy } from "nats"
import * as fs from "node:fs"
import { OrderPayload, OrderRow } from "../jetstream/orders.js"

/** One line on stdout, written synchronously (it is out before a SIGKILL). */
export const say = (line: string) => fs.writeSync(1, line + "\n")

/** A NATS call that failed. */
export class NatsError extends Data.TaggedError("NatsError")<{ readonly message: string; readonly cause?: unknown }> {}

export const nats = <A>(message: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => new NatsError({ message: `${message}: ${String(cause)}`, cause }) })

export interface PartitionOptions {
  /** The NATS connection of the process. */
  readonly nc: NatsConnection
  /** The JetStream stream. */
  readonly stream: string
  /** The subject prefix: partition k reads `<subjects>.p<k>`. */
  readonly subjects: string
  /** The partition number. */
  readonly partition: number
  /** Prefix of the checkpoint keys: partition k checkpoints under `<keyPrefix>-p<k>`. */
  readonly keyPrefix: string
  /** Who runs it (this runner's address): the sink's `owner`, and printed with each commit. */
  readonly owner: string
  /** A barrier every N rows (there is also one every second). */
  readonly everyRows: number
  /** Whether the sink fences with `owner` (default in runner.ts; off only to measure what it costs). */
  readonly fence: boolean
}

export const partitionName = (k: number) => `p${k}`

const decodePayload = Schema.decodeUnknownEither(Schema.parseJson(OrderPayload))

/**
 * Creates this owner's own consumer of the partition's subject, delivering from `from` (the sequence after the
 * partition's last checkpoint) in stream order, and deletes it with the scope: the checkpoint, not JetStream's ack
 * state, is the source of truth (acks can be lost in a crash; a previous owner's unacked messages would come back
 * out of order). Each owner has its own (ephemeral) consumer: with one durable name per partition, a previous
 * owner that was paused and resumes keeps pulling from the consumer by that name, now the new owner's, and takes
 * messages the new owner then never sees (it skips them as redeliveries once they come back). JetStream removes a
 * consumer left behind by a dead owner after `inactive_threshold`: 5 minutes, since on a heavily loaded machine
 * the server removed consumers still in use after 30 s (with limits retention a leftover consumer holds no message
 * back).
 */
const ownConsumer = (o: PartitionOptions, from: number) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const jsm = yield* nats("jetstreamManager", () => o.nc.jetstreamManager())
      const info = yield* nats("add consumer", () =>
        jsm.consumers.add(o.stream, {
          filter_subject: `${o.subjects}.${partitionName(o.partition)}`,
          ack_policy: AckPolicy.Explicit,
          ack_wait: 60_000_000_000, // 60 s in nanoseconds
          max_ack_pending: 20_000,
          inactive_threshold: 300_000_000_000, // 5 min
          ...(from <= 1
            ? { deliver_policy: DeliverPolicy.All }
            : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from })
        }))
      return { jsm, name: info.name }
    }),
    ({ jsm, name }) =>
      nats("delete consumer", () => jsm.consumers.delete(o.stream, name)).pipe(
        Effect.timeout("2 seconds"),
        Effect.ignore
      )
  ).pipe(Effect.map(({ name }) => name))

/**
 * The partition's messages from `from` on, as a stream: the consumer is created when the stream starts (not
 * before the sink's own start-up, which on a loaded machine can outlast the consumer's `inactive_threshold`) and
 * deleted with it. Memory is bounded by the consumer's `max_ack_pending`: messages are acked only once their
 * checkpoint is committed, so the server stops delivering when that many are outstanding.
 *
 * Never stuck: by default a NATS pull subscription whose consumer disappears (the server removed it as inactive,
 * say after this process was paused past `inactive_threshold`) waits for it to come back, silently and forever.
 * With `abort_on_missing_resource` it stops instead, and a subscription that stops by itself fails the stream
 * (`NatsError`): the pipeline fails, and runner.ts starts it again from the last checkpoint with a new consumer.
 */
const messages = (o: PartitionOptions, from: number): Stream.Stream<JsMsg, NatsError> =>
  Stream.asyncScoped<JsMsg, NatsError>((emit) =>
    Effect.gen(function*() {
      const name = yield* ownConsumer(o, from)
      const consumer = yield* nats("get consumer", () => o.nc.jetstream().consumers.get(o.stream, name))
      let closing = false
      const subscription = yield* Effect.acquireRelease(
        nats("consume", () =>
          consumer.consume({
            max_messages: 1_000,
            abort_on_missing_resource: true,
            callback: (m) => void emit.single(m)
          })),
        (subscription) =>
          Effect.suspend(() => {
            closing = true
            return Effect.promise(() => subscription.close().then(() => undefined, () => undefined))
          }).pipe(Effect.timeout("2 seconds"), Effect.ignore)
      )
      yield* Effect.forkScoped(Effect.promise(() =>
        subscription.closed().then(
          (result) => {
            if (closing) return
            const reason = result instanceof Error ? result.message : "the subscription ended"
            void emit.fail(new NatsError({ message: `consume ${name}: ${reason}`, cause: result }))
          },
          (cause) => {
            if (!closing) void emit.fail(new NatsError({ message: `consume ${name}: ${String(cause)}`, cause }))
          }
        )
      ))
    }), "unbounded")

/**
 * The pipeline of one partition: recover (commit what its last checkpoint prepared, abort what a dead owner left
 * open), resume the subject after the recovered stream sequence, and write exactly once. Runs until interrupted
 * (the partition moved away, or the process stops).
 *
 * stdout: `recovered <partition> <seq> <owner> <labels of the recovered checkpoint>`, `ack <partition> <checkpoint id> <seq> <owner> <labels>`.
 */
export const runPartition = (o: PartitionOptions) =>
  Effect.gen(function*() {
    const name = partitionName(o.partition)
    const options: StarRocksSink.ExactlyOnceOptions<number, number> = {
      position: Schema.Number,
      instance: name,
      checkpointKey: `${o.keyPrefix}-${name}`,
      // fencing: recover claims the key (a new epoch), labels carry the epoch, and a save of this process after
      // another one claimed the partition is refused (ExactlyOnceError Fenced), so a process that lost the partition
      // while paused never commits for it
      ...(o.fence ? { owner: o.owner } : {})
    }
    // the labels the last checkpoint prepared, which recovery commits (printed for the crash test's checks)
    const last = yield* Effect.flatMap(Checkpointer.Checkpointer, (store) => store.latest(options.checkpointKey!))
    const inherited = Option.match(last, { onNone: () => [], onSome: (r) => Object.values(r.prepared).flat() })
    const recovered = yield* StarRocksSink.recover(options)
    const committed = Option.getOrElse(recovered, () => 0)
    say(`recovered ${name} ${committed} ${o.owner} ${inherited.join(",") || "-"}`)

    /** Messages received and not acked yet: acked when a checkpoint at or past their sequence is committed. */
    let pending: Array<JsMsg> = []
    let highest = committed
    const ackUpTo = (position: number) =>
      Effect.sync(() => {
        const rest: Array<JsMsg> = []
        for (const m of pending) {
          if (m.seq <= position) m.ack()
          else rest.push(m)
        }
        pending = rest
      })
    const summary = yield* messages(o, committed + 1).pipe(
      Stream.mapChunksEffect((chunk) =>
        Effect.gen(function*() {
          const out: Array<OrderRow> = []
          for (const m of chunk) {
            pending.push(m)
            if (m.seq <= highest) continue // redelivered (ack_wait ran out) while its first delivery is in flight
            highest = m.seq
            const payload = decodePayload(m.string())
            if (payload._tag === "Left") {
              yield* Effect.logWarning(`skipping message ${m.seq} on ${m.subject}: not an order`)
              continue
            }
            out.push({ seq: m.seq, subject: m.subject, ...payload.right })
          }
          return Chunk.unsafeFromArray(out)
        })
      ),
      Checkpoint.withBarriers({ everyRows: o.everyRows, every: "1 second", position: (r) => Number(r.seq) }),
      Stream.run(StarRocksSink.exactlyOnce(OrderRow, {
        ...options,
        // run by the sink once each checkpoint is committed, in order (first, at its start, on the recovered one:
        // nothing is pending then, and it was printed as `recovered`)
        onCheckpoint: (ack) =>
          Effect.zipRight(
            ackUpTo(ack.position),
            Effect.sync(() =>
              ack.recovered === true
                ? undefined
                : say(`ack ${name} ${ack.id} ${ack.position} ${o.owner} ${ack.labels.join(",") || "-"}`)
            )
          )
      }))
    )
    return summary
  }).pipe(Effect.scoped, Effect.annotateLogs({ partition: partitionName(o.partition) }))

/** What a partition pipeline needs besides its options. */
export type PartitionRequirements = Checkpointer.Checkpointer | StarRocksSink.Services
