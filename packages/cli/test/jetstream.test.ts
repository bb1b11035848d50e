/**
 * The JetStream example (examples/jetstream/pipeline.ts): publish messages to a fresh stream, run the pipeline
 * against the emulator, SIGKILL it a few times at seeded moments, restart it until the stream is drained, then
 * every message must be in the table exactly once and acknowledged in JetStream.
 *
 * Needs the NATS server with JetStream at NATS_URL (default 127.0.0.1:4222). Without it the test is skipped, except
 * under CI=true, where it fails.
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { NatsConnection } from "nats"
import { AckPolicy, connect } from "nats"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const natsUrl = process.env["NATS_URL"] ?? "127.0.0.1:4222"
const root = fileURLToPath(new URL("../../../", import.meta.url))
const pipeline = fileURLToPath(new URL("../../../examples/jetstream/pipeline.ts", import.meta.url))

const reachable = await new Promise<boolean>((resolve) => {
  const [host, port] = natsUrl.replace(/^nats:\/\//, "").split(":")
  const socket = net.connect({ host: host!, port: Number(port ?? 4222) })
  socket.setTimeout(2000)
  socket.once("connect", () => {
    socket.destroy()
    resolve(true)
  })
  socket.once("error", () => resolve(false))
  socket.once("timeout", () => {
    socket.destroy()
    resolve(false)
  })
})
const mustRun = reachable || process.env["CI"] === "true"

/**
 * The example's table (examples/jetstream/orders.ts, repeated here: files outside packages/cli cannot be imported
 * by its TypeScript project).
 */
const ordersTable: StarRocksEmulator.TableDef = {
  database: "shop",
  table: "orders",
  model: "DUPLICATE",
  key: ["seq"],
  columns: [
    { name: "seq", type: "BIGINT" },
    { name: "subject", type: "VARCHAR(128)", nullable: false },
    { name: "order_id", type: "BIGINT", nullable: false },
    { name: "customer", type: "VARCHAR(64)", nullable: false },
    { name: "amount", type: "DOUBLE", nullable: false }
  ]
}

const MESSAGES = 5000
const KILLS = 4

/** mulberry32 */
const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Run {
  readonly outcome: "killed" | "finished" | "failed"
  readonly recovered: number | undefined
  readonly lastAck: number | undefined
  readonly log: string
}

/** When to SIGKILL a run: `ms` after its recovery, or `ms` after its `acks`-th barrier ack; undefined: never. */
interface Kill {
  readonly acks: number
  readonly ms: number
}

const runPipeline = (args: ReadonlyArray<string>, kill: Kill | undefined) =>
  Effect.async<Run>((resume) => {
    const child = spawn(process.execPath, ["--import", "tsx", pipeline, ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let log = ""
    let buffer = ""
    let recovered: number | undefined
    let lastAck: number | undefined
    let acks = 0
    const timers: Array<NodeJS.Timeout> = [setTimeout(() => child.kill("SIGKILL"), 90_000)]
    child.stderr.on("data", (b: Buffer) => (log += b.toString()))
    child.stdout.on("data", (b: Buffer) => {
      const text = b.toString()
      log += text
      buffer += text
      let nl: number
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const [word, a, b2] = buffer.slice(0, nl).split(" ")
        buffer = buffer.slice(nl + 1)
        if (word === "recovered") {
          recovered = Number(a)
          if (kill?.acks === 0) timers.push(setTimeout(() => child.kill("SIGKILL"), kill.ms))
        } else if (word === "ack") {
          lastAck = Number(b2)
          if (kill !== undefined && ++acks === kill.acks) timers.push(setTimeout(() => child.kill("SIGKILL"), kill.ms))
        }
      }
    })
    child.once("exit", (code, signal) => {
      for (const t of timers) clearTimeout(t)
      const outcome = signal === "SIGKILL" ? "killed" : code === 0 ? "finished" : "failed"
      resume(Effect.succeed({ outcome, recovered, lastAck, log }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("JetStream example", () => {
  it.scopedLive.skipIf(!mustRun)(
    "kill and restart: every message exactly once, acked in JetStream",
    () =>
      Effect.gen(function*() {
        const id = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`
        const stream = `SRTEST_${id}`
        const subjects = `srtest_${id}.orders.*`
        const durable = `sink_${id}`

        const nc: NatsConnection = yield* Effect.acquireRelease(
          Effect.tryPromise(() => connect({ servers: natsUrl })),
          (c) => Effect.promise(() => c.close())
        )
        const jsm = yield* Effect.promise(() => nc.jetstreamManager())
        yield* Effect.acquireRelease(
          Effect.promise(() => jsm.streams.add({ name: stream, subjects: [subjects] })),
          () => Effect.promise(() => jsm.streams.delete(stream).catch(() => false))
        )
        yield* Effect.promise(() =>
          jsm.consumers.add(stream, { durable_name: durable, ack_policy: AckPolicy.Explicit })
        )
        const js = nc.jetstream()
        const regions = ["eu", "us", "ap"]
        for (let from = 1; from <= MESSAGES; from += 500) {
          const batch: Array<Promise<unknown>> = []
          for (let i = from; i < Math.min(from + 500, MESSAGES + 1); i++) {
            const payload = { order_id: i, customer: `customer_${i % 97}`, amount: (i % 1000) / 4 }
            batch.push(js.publish(`srtest_${id}.orders.${regions[i % 3]}`, JSON.stringify(payload)))
          }
          yield* Effect.promise(() => Promise.all(batch))
        }

        const emulator = yield* StarRocksEmulator.make({ users: { root: "" }, bes: 2, cleanerIntervalMs: 200 })
        yield* emulator.createTable(ordersTable)
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "jetstream-example-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
        const args = [
          ...["--fe", emulator.fe[0]!, "--nats", natsUrl, "--stream", stream, "--durable", durable],
          ...["--db", "shop", "--table", "orders", "--dir", dir],
          ...["--every-rows", "200", "--idle-exit-ms", "2500", "--ack-wait-ms", "5000"]
        ]

        const random = prng(424242)
        let kills = 0
        let runs = 0
        const history: Array<string> = []
        for (;;) {
          runs++
          assert.isBelow(runs, 20, history.join("\n"))
          // the first kill lands in start-up or the first rows, the others 0-150 ms after the 1st-4th checkpoint
          const kill: Kill | undefined = kills >= KILLS
            ? undefined
            : kills === 0
            ? { acks: 0, ms: 100 + Math.floor(random() * 400) }
            : { acks: 1 + Math.floor(random() * 4), ms: Math.floor(random() * 150) }
          const run = yield* runPipeline(args, kill)
          history.push(
            `run ${runs}: kill ${kill === undefined ? "-" : `${kill.ms} ms after ack #${kill.acks}`} -> ` +
              `${run.outcome}, recovered ${run.recovered}, last ack ${run.lastAck}`
          )
          if (run.outcome === "killed") kills++
          else if (run.outcome === "finished") {
            if (kills >= KILLS || run.lastAck === MESSAGES || run.recovered === MESSAGES) break
          } else assert.fail(`pipeline failed:\n${run.log.slice(-3000)}`)
        }
        if (process.env["JETSTREAM_TEST_VERBOSE"] !== undefined) process.stdout.write(history.join("\n") + "\n")
        assert.isAtLeast(kills, KILLS, history.join("\n"))

        const rows = yield* emulator.rows("shop", "orders")
        const counts = new Map<number, number>()
        for (const row of rows) {
          const seq = Number(row["seq"])
          counts.set(seq, (counts.get(seq) ?? 0) + 1)
          assert.strictEqual(Number(row["order_id"]), seq)
          assert.strictEqual(row["subject"], `srtest_${id}.orders.${regions[seq % 3]}`)
        }
        const missing = Array.from({ length: MESSAGES }, (_, i) => i + 1).filter((s) => !counts.has(s))
        const doubled = [...counts].filter(([, n]) => n > 1).map(([s]) => s)
        assert.deepStrictEqual(
          { missing: missing.slice(0, 20), doubled: doubled.slice(0, 20), rows: rows.length },
          { missing: [], doubled: [], rows: MESSAGES },
          history.join("\n")
        )
        const txns = yield* emulator.transactions("shop")
        assert.deepStrictEqual(txns.filter((t) => t.status === "PREPARE" || t.status === "PREPARED"), [])
        const info = yield* Effect.promise(() => jsm.consumers.info(stream, durable))
        assert.strictEqual(info.ack_floor.stream_seq, MESSAGES)
        assert.strictEqual(info.num_ack_pending, 0)
      }),
    180_000
  )
})
