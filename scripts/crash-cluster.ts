/**
 * The scale-out crash test (issue 13): `npm run crash-test -- --cluster [--messages N] [--seed S] ...`.
 *
 * The parent starts the StarRocks emulator in process (it outlives every child and holds the state: memory storage
 * by default, or `--storage mysql://root@127.0.0.1:3306/test`), creates a fresh JetStream stream with one subject
 * per partition, publishes N order events over them at a steady pace (examples/cluster/publish.ts) and meanwhile runs
 * M processes of
 * examples/cluster/runner.ts: @effect/cluster runners sharing shard locks, runner list and checkpoints in MariaDB,
 * each partition a cluster singleton running one exactly-once pipeline. At seeded moments (fractions of the
 * committed progress) it SIGKILLs a process and restarts it (same runner address) after a seeded delay, and it
 * SIGSTOPs one process for longer than the shard lock expiry, so that its partitions move to the others, then
 * SIGCONTs it. At most one process is down or paused at a time.
 *
 * When every partition has acknowledged its last message, the processes are stopped (SIGTERM) and the parent checks:
 * - every message is in the table exactly once, with its values (seq, subject, order_id, customer, amount);
 * - no PREPARE/PREPARED transaction of a partition's instance remains (emulator state);
 * - no paused process committed after losing a partition: with fencing, labels carry the owner's epoch; of the
 *   paused process's labels of a partition another process recovered while it was paused, only those committed
 *   before the SIGSTOP and those of the checkpoint the new owner recovered may be committed (emulator state).
 *   Without epochs in the labels (no fencing) this check cannot tell owners apart: `checked by epoch 0`.
 *
 * Last line: `cluster processes=M partitions=P messages=N kills=K pauses=S moves=V lost=L duplicated=D
 * lingering=T stale-commits=C unexpected-exits=X fenced-leftovers=F` (F: PREPARED transactions of a paused owner's
 * epoch, prepared after its partition moved; not counted in T) and exit 0 only when L = D = T = C = F = 0, every
 * planned fault happened and a pause moved partitions (V > 0: the paused process lost its shards). A pause lasts
 * --pause-ms and then, up to three times that, until another process recovered one of the paused process's
 * partitions. A process that exits without being killed (X) is restarted after a second, as a supervisor would.
 *
 * Options: --processes M (3) --partitions P (8) --messages N (200000) --seed S (1) --kills K (4) --pauses (1)
 *          --every-rows B (2000) --lock-expiration-ms E (12000) --pause-ms (E + 8 s) --storage memory|mysql://…
 *          --mysql URL (cluster and checkpoint tables; default mysql://root@127.0.0.1:3306/test)
 *          --nats HOST:PORT (127.0.0.1:4222) --publish-seconds T (messages / 2000, at least 20: the source is
 *          published while the processes run) --timeout SECONDS (900) --no-bundle --verbose
 */
import { MysqlStorage, StarRocksEmulator } from "@effect-starrocks/testkit"
import { Effect } from "effect"
import { connect } from "nats"
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { ensureStream, payload, publish } from "../examples/cluster/publish.js"
import { freePort, runnerCommand } from "../examples/cluster/spawn.js"
import { tableDef } from "../examples/jetstream/orders.js"
import { prng } from "./crash-source.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** One stdout line of a process, as the parent saw it. */
interface Line {
  readonly at: number
  readonly slot: number
  readonly words: ReadonlyArray<string>
}

/** A process of the test: a runner address (slot), its current child, and what happened to it. */
interface Slot {
  readonly index: number
  readonly port: number
  readonly owner: string
  child: ChildProcess | undefined
  state: "running" | "down" | "paused"
  exits: number
  /** The index in `lines` of the first line of the current child. */
  since: number
}

export const main = async (argv: ReadonlyArray<string>): Promise<boolean> => {
  const flag = (name: string) => argv.includes(`--${name}`)
  const opt = (name: string, fallback: string): string => {
    const i = argv.indexOf(`--${name}`)
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback
  }
  const processes = Number(opt("processes", "3"))
  const partitions = Number(opt("partitions", "8"))
  const messages = Number(opt("messages", "200000"))
  const seed = Number(opt("seed", "1"))
  const kills = Number(opt("kills", "4"))
  const pauses = Number(opt("pauses", "1"))
  const everyRows = Number(opt("every-rows", "2000"))
  const lockExpirationMs = Number(opt("lock-expiration-ms", "12000"))
  const pauseMs = Number(opt("pause-ms", String(lockExpirationMs + 8000)))
  const storageUrl = opt("storage", "memory")
  const mysqlUrl = opt("mysql", "mysql://root@127.0.0.1:3306/test")
  const natsServer = opt("nats", "127.0.0.1:4222")
  const publishSeconds = Number(opt("publish-seconds", String(Math.max(20, Math.ceil(messages / 2_000)))))
  const deadline = Date.now() + Number(opt("timeout", "900")) * 1000
  const verbose = flag("verbose")

  const id = `${Date.now().toString(36)}${process.pid.toString(36)}`
  const prefix = `cluster_crash_${id}`
  const stream = `CLUSTER_CRASH_${id}`.toUpperCase()
  const subjects = `cluster_crash_${id}`
  const database = storageUrl === "memory" ? "shop" : `cluster_crash_${id}`
  const table = "orders"
  const random = prng(seed)
  const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1))
  const log = (line: string) => console.log(line)
  const elapsed = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`

  const work = fs.mkdtempSync(path.join(os.tmpdir(), "crash-cluster-"))
  const program = Effect.gen(function*() {
    const storage = storageUrl === "memory" ? undefined : yield* MysqlStorage.make(storageUrl)
    const emulator = yield* StarRocksEmulator.make({
      users: { root: "" },
      bes: 2,
      seed,
      storage,
      cleanerIntervalMs: 200,
      labelKeepMaxNum: 1_000_000
    })
    yield* emulator.createTable(tableDef(database, table))
    const fe = emulator.fe[0]!

    // ---- the source ----
    const nc = yield* Effect.promise(() => connect({ servers: natsServer }))
    yield* Effect.promise(() => ensureStream(nc, { stream, subjects, partitions, fresh: true }))
    log(
      `crash test (cluster): seed=${seed} processes=${processes} partitions=${partitions} messages=${messages} ` +
        `published over ${publishSeconds} s, kills=${kills} pauses=${pauses} (${pauseMs} ms), lock expiry ` +
        `${lockExpirationMs} ms, barrier every ${everyRows} rows, storage ${storageUrl}, FE ${fe}`
    )
    const t0 = Date.now()
    /** A fresh stream: message i gets sequence i+1. */
    const lastSeq = messages
    /** Message i has stream sequence i+1 and is on partition i mod P: the last sequence of each partition. */
    const lastOf = Array.from({ length: partitions }, (_, k) => {
      let s = lastSeq
      while (s > 0 && (s - 1) % partitions !== k) s--
      return s
    })

    // ---- the processes ----
    const command = yield* Effect.promise(() => runnerCommand(work, flag("no-bundle")))
    const ports: Array<number> = []
    for (let i = 0; i < processes; i++) ports.push(yield* Effect.promise(freePort))
    const slots: Array<Slot> = ports.map((port, index) => ({
      index,
      port,
      owner: `127.0.0.1:${port}`,
      child: undefined,
      state: "down",
      exits: 0,
      since: 0
    }))
    let stopping = false
    let unexpectedExits = 0
    const lines: Array<Line> = []
    const timedOut = () => Date.now() > deadline
    /** The highest acknowledged position of each partition. */
    const acked = new Array<number>(partitions).fill(0)
    const stderrTail = new Map<number, string>()
    const failuresSeen = new Set<string>()

    const start = (slot: Slot) => {
      const child = spawn(
        process.execPath,
        [
          ...command,
          ...["--port", String(slot.port), "--fe", fe, "--db", database, "--table", table],
          ...["--stream", stream, "--subjects", subjects, "--partitions", String(partitions), "--prefix", prefix],
          ...["--mysql", mysqlUrl, "--nats", natsServer, "--every-rows", String(everyRows)],
          ...["--lock-expiration-ms", String(lockExpirationMs), "--retry-ms", String(lockExpirationMs / 2)]
        ],
        { cwd: root, stdio: ["ignore", "pipe", "pipe"] }
      )
      slot.child = child
      slot.state = "running"
      slot.since = lines.length
      let out = ""
      child.stdout!.on("data", (b: Buffer) => {
        out += b.toString()
        let nl: number
        while ((nl = out.indexOf("\n")) >= 0) {
          const text = out.slice(0, nl)
          out = out.slice(nl + 1)
          const words = text.split(" ")
          lines.push({ at: Date.now(), slot: slot.index, words })
          if (words[0] === "ack") {
            const k = Number(words[1]!.slice(1))
            acked[k] = Math.max(acked[k]!, Number(words[3]))
          }
          if (verbose) log(`  ${elapsed(t0)} [${slot.index}] ${text}`)
          if (words[0] === "failed" && !verbose) {
            // each distinct failure once (a partition that cannot recover fails again every retry)
            const key = `${slot.index} ${text.slice(0, 160)}`
            if (!failuresSeen.has(key)) log(`  ${elapsed(t0)} [${slot.index}] ${text.slice(0, 400)}`)
            failuresSeen.add(key)
          }
        }
      })
      child.stderr!.on("data", (b: Buffer) => {
        const tail = ((stderrTail.get(slot.index) ?? "") + b.toString()).slice(-4000)
        stderrTail.set(slot.index, tail)
      })
      child.once("exit", (code, signal) => {
        slot.exits++
        if (slot.child === child) {
          slot.child = undefined
          slot.state = "down"
        }
        if (signal !== "SIGKILL" && !stopping) {
          // not one of our kills: report it, and restart the process as a supervisor would
          unexpectedExits++
          log(`  process ${slot.index} exited (code ${code}, signal ${signal}); stderr:\n${stderrTail.get(slot.index)}`)
          setTimeout(() => {
            if (!stopping && slot.child === undefined) start(slot)
          }, 1_000)
        }
      })
    }
    // whatever happens to the parent's program, no process outlives it
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const slot of slots) slot.child?.kill("SIGKILL")
      })
    )
    for (const slot of slots) start(slot)
    // the source is published while the processes run, once every partition has been placed and recovered, so that
    // every fault lands in a pipeline with work to do
    const placed = () => new Set(lines.filter((l) => l.words[0] === "recovered").map((l) => l.words[1])).size
    while (placed() < partitions && !timedOut()) yield* Effect.sleep("100 millis")
    log(`every partition placed and recovered after ${elapsed(t0)}; publishing`)
    const t1 = Date.now()
    // the last tenth is held back until every fault happened: each fault, and the paused process's return, meet
    // partitions with work left
    const head = Math.floor(messages * 0.9)
    const publishing = publish(nc, {
      stream,
      subjects,
      partitions,
      messages: head,
      fresh: false,
      seconds: publishSeconds
    }).then(() => undefined, (e: unknown) => `publishing failed: ${String(e)}`)

    // ---- the faults, at seeded fractions of the progress ----
    type Fault = { readonly kind: "kill" | "pause"; readonly at: number }
    const faults: Array<Fault> = [
      ...Array.from({ length: kills }, () => ({ kind: "kill" as const, at: 0.05 + random() * 0.75 })),
      ...Array.from({ length: pauses }, () => ({ kind: "pause" as const, at: 0.1 + random() * 0.6 }))
    ].sort((a, b) => a.at - b.at)
    const progress = () => {
      let done = 0
      for (let k = 0; k < partitions; k++) done += Math.min(acked[k]!, lastOf[k]!)
      return done / lastOf.reduce((a, b) => a + b, 0)
    }
    let killed = 0
    let paused = 0
    /** While a process is paused: its partitions at the SIGSTOP, and when they were taken over. */
    const pauseRecords: Array<{
      readonly slot: number
      readonly stoppedAt: number
      continuedAt: number
      readonly owned: ReadonlyArray<number>
      /** The index in `lines` of the paused child's first line. */
      readonly since: number
    }> = []
    /** The partitions the current child of a process runs now (from its lines). */
    const owning = (slot: Slot) => {
      const owned = new Set<number>()
      for (const l of lines.slice(slot.since)) {
        if (l.slot !== slot.index) continue
        if (l.words[0] === "start") owned.add(Number(l.words[1]!.slice(1)))
        else if (l.words[0] === "stopped") owned.delete(Number(l.words[1]!.slice(1)))
      }
      return [...owned].sort((a, b) => a - b)
    }
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
    const running = () => slots.filter((s) => s.state === "running")
    const done = () => acked.every((a, k) => a >= lastOf[k]!)

    const driver = async () => {
      for (const fault of faults) {
        while (progress() < fault.at && !done() && !timedOut()) await sleep(50)
        // one process down or paused at a time: wait until every process is back and runs a partition (a process
        // that just started owns none yet: killing or pausing it would move nothing)
        const eligible = () => running().filter((s) => owning(s).length > 0)
        while ((running().length < processes || eligible().length === 0) && !done() && !timedOut()) await sleep(50)
        if (timedOut() || done()) return
        const candidates = eligible()
        const victim = candidates[between(0, candidates.length - 1)]!
        if (fault.kind === "kill") {
          const restartMs = between(500, 3000)
          log(
            `kill process ${victim.index} (${victim.owner}, partitions ${owning(victim).join(",") || "-"}) at ` +
              `${(progress() * 100).toFixed(1)}%, restart after ${restartMs} ms`
          )
          victim.child?.kill("SIGKILL")
          killed++
          await sleep(restartMs)
          while (victim.state !== "down" && !timedOut()) await sleep(20)
          start(victim)
        } else {
          const owned = owning(victim)
          log(
            `pause process ${victim.index} (${victim.owner}, partitions ${owned.join(",") || "-"}) at ` +
              `${(progress() * 100).toFixed(1)}% for ${pauseMs} ms`
          )
          const record = { slot: victim.index, stoppedAt: Date.now(), continuedAt: 0, owned, since: victim.since }
          pauseRecords.push(record)
          victim.child?.kill("SIGSTOP")
          victim.state = "paused"
          paused++
          await sleep(pauseMs)
          // long enough to lose its partitions: on a loaded machine the others may take longer than the lock expiry
          // to claim them, so the pause goes on (up to three times --pause-ms) until one of its partitions is
          // recovered elsewhere; a pause that moved nothing checks nothing and fails the run below
          const takenOver = () =>
            lines.some((l) =>
              l.words[0] === "recovered" && l.slot !== victim.index && l.at > record.stoppedAt &&
              owned.includes(Number(l.words[1]!.slice(1)))
            )
          const pauseDeadline = record.stoppedAt + 3 * pauseMs
          while (!takenOver() && Date.now() < pauseDeadline && !timedOut()) await sleep(100)
          record.continuedAt = Date.now()
          victim.child?.kill("SIGCONT")
          if (victim.child !== undefined) victim.state = "running"
          log(`continue process ${victim.index} after ${record.continuedAt - record.stoppedAt} ms`)
        }
      }
    }
    yield* Effect.promise(driver)
    const publishError = yield* Effect.promise(() => publishing)
    if (publishError !== undefined) return yield* Effect.dieMessage(publishError)
    const published = yield* Effect.promise(() =>
      publish(nc, { stream, subjects, partitions, messages, from: head, fresh: false })
    )
    if (published !== lastSeq) {
      return yield* Effect.dieMessage(`the stream's last sequence is ${published}, not ${lastSeq}`)
    }
    while (!done() && !timedOut()) yield* Effect.sleep("100 millis")
    const finished = done()
    log(
      `${finished ? "all partitions acknowledged their last message" : "TIMED OUT"} ${elapsed(t1)} after the ` +
        `publishing started (${(messages / ((Date.now() - t1) / 1000)).toFixed(0)} rows/s); ` +
        `acked ${acked.join(",")} of ${lastOf.join(",")}`
    )

    // ---- stop the processes ----
    stopping = true
    for (const slot of slots) slot.child?.kill("SIGTERM")
    const stopDeadline = Date.now() + 20_000
    while (slots.some((s) => s.child !== undefined) && Date.now() < stopDeadline) yield* Effect.sleep("50 millis")
    for (const slot of slots) {
      if (slot.child !== undefined) {
        log(`process ${slot.index} did not stop within 20 s of SIGTERM: SIGKILL`)
        slot.child.kill("SIGKILL")
      }
    }
    yield* Effect.promise(() => nc.jetstreamManager().then((jsm) => jsm.streams.delete(stream)).catch(() => false))
    yield* Effect.promise(() => nc.close())

    // ---- checks ----
    for (let i = 0; i < 100; i++) {
      const txns = yield* emulator.transactions(database)
      if (!txns.some((t) => t.status === "COMMITTED")) break
      yield* Effect.sleep("100 millis")
    }
    const rows = yield* emulator.rows(database, table)
    const counts = new Uint32Array(lastSeq + 1)
    let outside = 0
    let wrong = 0
    for (const row of rows) {
      const seq = Number(row["seq"])
      if (!Number.isInteger(seq) || seq < 1 || seq > lastSeq) {
        outside++
        continue
      }
      if (counts[seq]++ > 0) continue
      const i = seq - 1
      const expected = JSON.parse(payload(i)) as { order_id: number; customer: string; amount: number }
      if (
        Number(row["order_id"]) !== expected.order_id || row["customer"] !== expected.customer ||
        Number(row["amount"]) !== expected.amount || row["subject"] !== `${subjects}.p${i % partitions}`
      ) wrong++
    }
    let lost = 0
    let duplicated = outside
    for (let s = 1; s <= lastSeq; s++) {
      if (counts[s] === 0) lost++
      else duplicated += counts[s]! - 1
    }
    const txns = yield* emulator.transactions(database)
    /** A partition's label: `{prefix}-{table}-p<k>-<id>`, or with fencing `{prefix}-{table}-p<k>-e<epoch>-<id>`. */
    const parseLabel = (label: string) => {
      const m = /-(p\d+)(?:-e(\d+))?-\d+$/.exec(label)
      return m === null ? undefined : { partition: m[1]!, epoch: m[2] === undefined ? undefined : Number(m[2]) }
    }
    const instanceOf = (label: string) => parseLabel(label)?.partition
    const open = txns.filter((t) =>
      (t.status === "PREPARE" || t.status === "PREPARED") && instanceOf(t.label) !== undefined
    )
    /** Per partition, the epochs of paused owners that lost it while paused. */
    const staleEpochs = new Map<string, Set<number>>()

    // a paused process must not commit for a partition another process took over while it was paused. With
    // fencing, labels carry the owner's epoch: the paused process's epoch for p<k> is that of the last transaction
    // of p<k> begun before the SIGSTOP (it owned p<k> then). Of its labels, only those committed before the SIGSTOP
    // and those of the checkpoint the new owner recovered (which the new owner commits) may be committed; any other
    // one committed is a stale commit: a save of the paused process accepted after another process claimed p<k>.
    let staleCommits = 0
    let moves = 0
    /** Partitions of a paused process checked (their labels carry an epoch). */
    let epochChecked = 0
    for (const p of pauseRecords) {
      for (const k of p.owned) {
        const takenOver = lines.find((l) =>
          l.words[0] === "recovered" && l.words[1] === `p${k}` && l.slot !== p.slot && l.at > p.stoppedAt
        )
        if (takenOver === undefined) continue
        moves++
        const ofPartition = txns.filter((t) => parseLabel(t.label)?.partition === `p${k}`)
        const before = ofPartition.filter((t) => t.createdAt < p.stoppedAt).sort((a, b) => a.createdAt - b.createdAt)
        const epoch = before.length === 0 ? undefined : parseLabel(before.at(-1)!.label)?.epoch
        if (epoch === undefined) continue
        epochChecked++
        staleEpochs.set(`p${k}`, (staleEpochs.get(`p${k}`) ?? new Set()).add(epoch))
        const inherited = new Set((takenOver.words[4] ?? "").split(","))
        const late = ofPartition.filter((t) =>
          parseLabel(t.label)?.epoch === epoch && (t.status === "VISIBLE" || t.status === "COMMITTED") &&
          (t.finishedAt ?? 0) >= p.stoppedAt && !inherited.has(t.label)
        )
        for (const t of late.slice(0, 3)) {
          log(`  STALE: ${t.label} of the paused process ${p.slot} committed after p${k} moved`)
        }
        staleCommits += late.length
      }
    }
    // What a paused owner prepared after its partition moved and did not get to roll back would stay PREPARED: no
    // later recovery walks an epoch older than the record's. The sink rolls those back itself (exactlyOnce's
    // finalizer: a barrier's prepared transactions whose save never began, or whose save can no longer land because
    // a later owner saved the key): counted apart from other lingering transactions, and a failure like them.
    const isLeftover = (label: string) => {
      const l = parseLabel(label)
      return l?.epoch !== undefined && staleEpochs.get(l.partition)?.has(l.epoch) === true
    }
    const leftovers = open.filter((t) => isLeftover(t.label))
    const lingering = open.filter((t) => !isLeftover(t.label))
    for (const t of lingering.slice(0, 5)) log(`  lingering ${t.label} ${t.status}`)
    for (const t of leftovers.slice(0, 5)) log(`  left by a fenced owner: ${t.label} ${t.status}`)
    const moved = lines.filter((l) => l.words[0] === "start").length - partitions
    const failures = lines.filter((l) => l.words[0] === "failed").length
    log(
      `rows ${rows.length} (values wrong ${wrong}, outside 1..${lastSeq} ${outside}); transactions ${txns.length} ` +
        `(${txns.filter((t) => t.status === "VISIBLE").length} VISIBLE, ${
          txns.filter((t) => t.status === "ABORTED").length
        } ABORTED), lingering PREPARE/PREPARED: ${lingering.length}; partition starts beyond the first ${moved}, ` +
        `pipeline failures (retried) ${failures}; partitions of a paused process checked by epoch ` +
        `${epochChecked}; ${elapsed(t0)}`
    )
    log(
      `cluster processes=${processes} partitions=${partitions} messages=${lastSeq} kills=${killed} ` +
        `pauses=${paused} moves=${moves} lost=${lost} duplicated=${duplicated} lingering=${lingering.length} ` +
        `stale-commits=${staleCommits} unexpected-exits=${unexpectedExits} fenced-leftovers=${leftovers.length}`
    )
    if (paused > 0 && moves === 0) log("the pause moved no partition: the paused process kept its shards")
    return finished && lost === 0 && duplicated === 0 && wrong === 0 && lingering.length === 0 &&
      staleCommits === 0 && leftovers.length === 0 && killed === kills && paused === pauses &&
      (paused === 0 || moves > 0)
  })
  try {
    return await Effect.runPromise(Effect.scoped(program))
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURLHref(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (ok) => process.exit(ok ? 0 : 1),
    (e) => {
      console.error(e)
      process.exit(1)
    }
  )
}

function pathToFileURLHref(file: string | undefined): string {
  return file === undefined ? "" : new URL(`file://${path.resolve(file)}`).href
}
