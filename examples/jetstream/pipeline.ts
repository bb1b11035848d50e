/**
 * Exactly-once from a NATS JetStream stream into StarRocks (see README.md next to this file).
 *
 *   npx tsx examples/jetstream/pipeline.ts --fe 127.0.0.1:8030 --stream ORDERS --durable orders-sink \
 *     --db shop --table orders --dir ./checkpoints [--nats 127.0.0.1:4222] [--every-rows 500] [--idle-exit-ms 3000]
 *
 * The position of a row is its JetStream stream sequence. On start the sink recovers (commits what the last
 * checkpoint prepared, aborts what a dead run left open) and returns the last checkpointed sequence; the durable
 * pull consumer is then (re)created to deliver from the next sequence, so the stream is read in order from
 * exactly where StarRocks stands. Barriers go in every N rows and every second; once a checkpoint is durable and its
 * transactions committed, the sink runs `onCheckpoint`, which acks the JetStream messages up to its sequence.
 *
 * stdout: `recovered <seq>`, `ack <checkpoint> <seq>`, `done <summary>`.
 */
import { Checkpoint, StarRocksConfig, StarRocksSink } from "@effect-starrocks/sink"
import * as CheckpointerFileSystem from "@effect-starrocks/sink/Checkpointer/FileSystem"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Chunk, Data, Duration, Effect, Layer, Logger, LogLevel, Option, Redacted, Schema, Stream } from "effect"
import type { JsMsg, NatsConnection } from "nats"
import { AckPolicy, connect, DeliverPolicy } from "nats"
import * as fs from "node:fs"
import { OrderPayload, OrderRow } from "./orders.js"

const argv = process.argv.slice(2)
const opt = (name: string, fallback?: string): string => {
  const i = argv.indexOf(`--${name}`)
  const v = i >= 0 ? argv[i + 1] : fallback
  if (v === undefined) throw new Error(`missing --${name}`)
  return v
}

const fe = opt("fe")
const natsServer = opt("nats", "127.0.0.1:4222")
const streamName = opt("stream", "ORDERS")
const durable = opt("durable", "orders-sink")
const database = opt("db", "shop")
const table = opt("table", "orders")
const directory = opt("dir", "./checkpoints")
const everyRows = Number(opt("every-rows", "500"))
const idleExitMs = Number(opt("idle-exit-ms", "0"))
const ackWaitMs = Number(opt("ack-wait-ms", "30000"))

/** One line on stdout, written synchronously. */
const say = (line: string) => fs.writeSync(1, line + "\n")

class NatsError extends Data.TaggedError("NatsError")<{ readonly message: string; readonly cause?: unknown }> {}

const nats = <A>(message: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => new NatsError({ message: `${message}: ${String(cause)}`, cause }) })

/** The NATS connection, flushed (pending acks go out) and closed with the scope. */
const connection = Effect.acquireRelease(
  nats("connect", () => connect({ servers: natsServer, name: `starrocks-sink-${durable}` })),
  (nc) => Effect.promise(() => nc.flush().then(() => nc.close(), () => nc.close()))
)

/**
 * Points the durable consumer at `from` (the sequence after the last checkpoint): JetStream's own ack state is not
 * the source of truth (acks can be lost in a crash, and messages delivered to a dead run come back only after
 * `ack_wait`, out of order), so the consumer is recreated to deliver in stream order from there.
 */
const positionConsumer = (nc: NatsConnection, from: number) =>
  Effect.gen(function*() {
    const jsm = yield* nats("jetstreamManager", () => nc.jetstreamManager())
    yield* nats("delete consumer", () => jsm.consumers.delete(streamName, durable)).pipe(Effect.ignore)
    yield* nats("add consumer", () =>
      jsm.consumers.add(streamName, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        ack_wait: ackWaitMs * 1_000_000, // nanoseconds
        max_ack_pending: 20_000,
        ...(from <= 1
          ? { deliver_policy: DeliverPolicy.All }
          : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from })
      }))
  })

/**
 * The consumer's messages as a stream (the pull subscription stops with the scope). Memory is bounded by the
 * consumer's `max_ack_pending`: messages are acked only when their checkpoint is committed, so the server stops
 * delivering when that many are outstanding.
 */
const messages = (nc: NatsConnection): Stream.Stream<JsMsg, NatsError> =>
  Stream.asyncScoped<JsMsg, NatsError>((emit) =>
    Effect.gen(function*() {
      const consumer = yield* nats("get consumer", () => nc.jetstream().consumers.get(streamName, durable))
      yield* Effect.acquireRelease(
        nats("consume", () =>
          consumer.consume({
            max_messages: 1000,
            callback: (m) => void emit.single(m)
          })),
        (subscription) =>
          Effect.promise(() => subscription.close().then(() => undefined, () => undefined)).pipe(
            Effect.timeout("2 seconds"),
            Effect.ignore
          )
      )
    }), "unbounded")

const options: StarRocksSink.ExactlyOnceOptions<number, number> = {
  position: Schema.Number,
  instance: durable.replace(/[^-\w]/g, "_")
}

const decodePayload = Schema.decodeUnknownEither(Schema.parseJson(OrderPayload))

const program = Effect.gen(function*() {
  const nc = yield* connection
  const recovered = yield* StarRocksSink.recover(options)
  const committed = Option.getOrElse(recovered, () => 0)
  say(`recovered ${committed}`)
  yield* positionConsumer(nc, committed + 1)

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

  let source = messages(nc)
  if (idleExitMs > 0) source = Stream.timeout(source, Duration.millis(idleExitMs))

  const summary = yield* source.pipe(
    Stream.mapChunksEffect((chunk) =>
      Effect.gen(function*() {
        const out: Array<OrderRow & { readonly seq: number }> = []
        for (const m of chunk) {
          if (m.seq <= committed) {
            // committed by an earlier run whose ack was lost
            m.ack()
            continue
          }
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
    Checkpoint.withBarriers({ everyRows, every: "1 second", position: (r) => r.seq }),
    Stream.run(StarRocksSink.exactlyOnce(OrderRow, {
      ...options,
      // run by the sink once each checkpoint is committed, in order (first, at its start, on the recovered one:
      // nothing is pending then, and `recovered` was printed above)
      onCheckpoint: (ack) =>
        Effect.zipRight(
          ackUpTo(ack.position),
          Effect.sync(() => ack.recovered === true ? undefined : say(`ack ${ack.id} ${ack.position}`))
        )
    }))
  )
  yield* nats("flush", () => nc.flush())
  say(`done ${JSON.stringify(summary)}`)
})

const config = StarRocksConfig.make({
  loadUrl: fe,
  database,
  table,
  username: process.env["STARROCKS_USER"] ?? "root",
  password: Redacted.make(process.env["STARROCKS_PASSWORD"] ?? ""),
  format: "json"
})

program.pipe(
  Effect.scoped,
  Effect.provide(Layer.merge(
    StarRocksSink.layer(config),
    // checkpoints survive the process: a directory here; `layerSql()` of
    // @effect-starrocks/sink/Checkpointer/Sql for a shared database
    CheckpointerFileSystem.layerFileSystem({ directory }).pipe(Layer.provide(NodeContext.layer))
  )),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  NodeRuntime.runMain
)
