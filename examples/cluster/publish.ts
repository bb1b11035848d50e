/**
 * Creates the example's JetStream stream (subjects `<subjects>.p0` … `<subjects>.p<N-1>`, one per partition) and
 * publishes order events spread over the partitions (message i goes to partition i mod N).
 *
 *   npx tsx examples/cluster/publish.ts --messages 200000 [--stream ORDERS_CLUSTER] [--subjects orders]
 *     [--partitions 8] [--nats 127.0.0.1:4222] [--fresh] [--seconds T]
 *
 * `--fresh` deletes the stream first; `--seconds T` spreads the publications over T seconds. Prints `published <n> <last stream sequence>`.
 */
import type { JetStreamClient, NatsConnection } from "nats"
import { connect, RetentionPolicy, StorageType } from "nats"
import { pathToFileURL } from "node:url"

export interface PublishOptions {
  readonly stream: string
  readonly subjects: string
  readonly partitions: number
  readonly messages: number
  readonly fresh: boolean
  /** The first message to publish (default 0): publishes messages `from` … `messages - 1`. */
  readonly from?: number | undefined
  /** Spread the publications over this many seconds (default: as fast as the server acknowledges them). */
  readonly seconds?: number | undefined
}

/** The JSON payload of message i (an order; the customer and amount are derived from i). */
export const payload = (i: number) =>
  JSON.stringify({ order_id: i, customer: `c${i % 977}`, amount: (i % 10_000) / 100 })

/** Creates the stream when missing (file storage, limits retention). */
export const ensureStream = async (nc: NatsConnection, o: Omit<PublishOptions, "messages">) => {
  const jsm = await nc.jetstreamManager()
  if (o.fresh) await jsm.streams.delete(o.stream).catch(() => false)
  const exists = await jsm.streams.info(o.stream).then(() => true, () => false)
  if (!exists) {
    await jsm.streams.add({
      name: o.stream,
      subjects: [`${o.subjects}.*`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File
    })
  }
}

/**
 * Publishes message i, again when the server's acknowledgement does not come within 10 s (5 tries). The message
 * id (`Nats-Msg-Id` = i) makes JetStream drop a retry of a message it already stored (within the stream's
 * duplicate window, 2 minutes by default), so that each message is in the stream once.
 */
const publishOne = async (js: JetStreamClient, subject: string, i: number): Promise<number> => {
  for (let attempt = 1;; attempt++) {
    try {
      return (await js.publish(subject, payload(i), { msgID: String(i), timeout: 10_000 })).seq
    } catch (e) {
      if (attempt >= 5) throw e
    }
  }
}

/**
 * Publishes `messages` events, message i on partition i mod N, with at most 500 publications awaiting their
 * acknowledgement at a time. Returns the stream's last sequence.
 */
export const publish = async (nc: NatsConnection, o: PublishOptions): Promise<number> => {
  await ensureStream(nc, o)
  const js = nc.jetstream()
  let last = 0
  const window: Array<Promise<unknown>> = []
  const started = Date.now()
  const from = o.from ?? 0
  const perMs = o.seconds !== undefined && o.seconds > 0 ? (o.messages - from) / (o.seconds * 1000) : undefined
  for (let i = from; i < o.messages; i++) {
    window.push(publishOne(js, `${o.subjects}.p${i % o.partitions}`, i).then((seq) => (last = Math.max(last, seq))))
    if (window.length >= 500) await Promise.all(window.splice(0))
    if (perMs !== undefined && i % 100 === 99) {
      const ahead = started + (i + 1 - from) / perMs - Date.now()
      if (ahead > 0) await new Promise((resolve) => setTimeout(resolve, ahead))
    }
  }
  await Promise.all(window)
  return last
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const argv = process.argv.slice(2)
  const opt = (name: string, fallback: string) => {
    const i = argv.indexOf(`--${name}`)
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback
  }
  const nc = await connect({ servers: opt("nats", "127.0.0.1:4222") })
  const options: PublishOptions = {
    stream: opt("stream", "ORDERS_CLUSTER"),
    subjects: opt("subjects", "orders"),
    partitions: Number(opt("partitions", "8")),
    messages: Number(opt("messages", "200000")),
    fresh: argv.includes("--fresh"),
    seconds: Number(opt("seconds", "0"))
  }
  const last = await publish(nc, options)
  process.stdout.write(`published ${options.messages} ${last}\n`)
  await nc.drain()
}
