/**
 * The scale-out benchmark: the same input (N order events over P partitions of a JetStream stream) drained by 1, 2
 * and 3 processes of runner.ts into the emulator, exactly once. For each process count: a fresh stream, fresh
 * cluster tables and checkpoint keys, the processes started and left to place the partitions (until no partition
 * moved for 3 s), then the N messages published as fast as JetStream takes them and the time until every partition
 * acknowledged its last message.
 *
 *   npx tsx examples/cluster/bench.ts [--messages 100000] [--partitions 8] [--processes 1,2,3] [--every-rows 2000]
 *     [--storage memory|mysql://…] [--mysql mysql://root@127.0.0.1:3306/test] [--nats 127.0.0.1:4222] [--fence 1|0]
 *
 * Prints per process count: rows/s from the first publication to the last acknowledgement, the publish rate alone,
 * and the CPU seconds spent meanwhile by the runners, this process (the emulator and the publisher), the NATS
 * server and MariaDB (from /proc), against the wall time × cores: where the limit was. And the machine's load.
 */
import { MysqlStorage, StarRocksEmulator } from "@effect-starrocks/testkit"
import { Effect } from "effect"
import { connect } from "nats"
import type { ChildProcess } from "node:child_process"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { tableDef } from "../jetstream/orders.js"
import { ensureStream, publish } from "./publish.js"
import { freePort, runnerCommand } from "./spawn.js"

const argv = process.argv.slice(2)
const opt = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback
}
const messages = Number(opt("messages", "100000"))
const partitions = Number(opt("partitions", "8"))
const counts = opt("processes", "1,2,3").split(",").map(Number)
const everyRows = Number(opt("every-rows", "2000"))
const storageUrl = opt("storage", "memory")
const mysqlUrl = opt("mysql", "mysql://root@127.0.0.1:3306/test")
const natsServer = opt("nats", "127.0.0.1:4222")
const fence = opt("fence", "1")
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const ticks = 100 // USER_HZ

/** CPU seconds (user + system) of a process and its threads, from /proc; 0 when it is gone. */
const cpuSeconds = (pid: number | undefined): number => {
  if (pid === undefined) return 0
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return (Number(fields[11]) + Number(fields[12])) / ticks
  } catch {
    return 0
  }
}
const pidOf = (name: string): number | undefined => {
  try {
    return Number(execFileSync("pgrep", ["-o", "-x", name], { encoding: "utf8" }).trim()) || undefined
  } catch {
    return undefined
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const run = (processes: number, command: ReadonlyArray<string>, fe: string, database: string) =>
  Effect.gen(function*() {
    const id = `${Date.now().toString(36)}${processes}`
    const prefix = `cluster_bench_${id}`
    const stream = `CLUSTER_BENCH_${id}`.toUpperCase()
    const subjects = `cluster_bench_${id}`
    const table = `orders_${processes}`
    const emulatorTable = tableDef(database, table)
    return { prefix, stream, subjects, table, emulatorTable }
  }).pipe(Effect.flatMap(({ emulatorTable, prefix, stream, subjects, table }) =>
    Effect.gen(function*() {
      const emulator = yield* StarRocksEmulator.StarRocksEmulator
      yield* emulator.createTable(emulatorTable)
      const nc = yield* Effect.promise(() => connect({ servers: natsServer }))
      yield* Effect.promise(() => ensureStream(nc, { stream, subjects, partitions, fresh: true }))
      const acked = new Array<number>(partitions).fill(0)
      let lastMove = Date.now()
      const placed = new Set<string>()
      const children: Array<ChildProcess> = []
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const c of children) c.kill("SIGKILL")
        })
      )
      for (let i = 0; i < processes; i++) {
        const port = yield* Effect.promise(freePort)
        const child = spawn(process.execPath, [
          ...command,
          ...["--port", String(port), "--fe", fe, "--db", database, "--table", table, "--stream", stream],
          ...["--subjects", subjects, "--partitions", String(partitions), "--prefix", prefix, "--mysql", mysqlUrl],
          ...["--nats", natsServer, "--every-rows", String(everyRows), "--fence", fence]
        ], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
        children.push(child)
        let out = ""
        child.stdout!.on("data", (b: Buffer) => {
          out += b.toString()
          let nl: number
          while ((nl = out.indexOf("\n")) >= 0) {
            const words = out.slice(0, nl).split(" ")
            out = out.slice(nl + 1)
            if (words[0] === "ack") {
              const k = Number(words[1]!.slice(1))
              acked[k] = Math.max(acked[k]!, Number(words[3]))
            } else if (words[0] === "start" || words[0] === "stopped") lastMove = Date.now()
            else if (words[0] === "recovered") placed.add(words[1]!)
          }
        })
      }
      // the partitions placed, and none moved for 3 s (deadline 120 s)
      const placeDeadline = Date.now() + 120_000
      while ((placed.size < partitions || Date.now() - lastMove < 3_000) && Date.now() < placeDeadline) {
        yield* Effect.promise(() => sleep(100))
      }
      const pids = {
        runners: children.map((c) => c.pid),
        nats: pidOf("nats-server"),
        mariadb: pidOf("mariadbd") ?? pidOf("mysqld")
      }
      const cpu = (): Record<"runners" | "parent" | "nats" | "mariadb", number> => ({
        runners: pids.runners.reduce<number>((a, pid) => a + cpuSeconds(pid), 0),
        parent: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
        nats: cpuSeconds(pids.nats),
        mariadb: cpuSeconds(pids.mariadb)
      })
      const before = cpu()
      const load = os.loadavg()[0]!
      const t0 = Date.now()
      const lastSeq = yield* Effect.promise(() => publish(nc, { stream, subjects, partitions, messages, fresh: false }))
      const publishMs = Date.now() - t0
      const lastOf = Array.from({ length: partitions }, (_, k) => {
        let s = lastSeq
        while (s > 0 && (s - 1) % partitions !== k) s--
        return s
      })
      const drainDeadline = Date.now() + 900_000
      while (!acked.every((a, k) => a >= lastOf[k]!) && Date.now() < drainDeadline) {
        yield* Effect.promise(() => sleep(20))
      }
      const ms = Date.now() - t0
      const after = cpu()
      const rows = (yield* emulator.rows(database, table)).length
      for (const c of children) c.kill("SIGTERM")
      yield* Effect.promise(() => nc.jetstreamManager().then((j) => j.streams.delete(stream)).catch(() => false))
      yield* Effect.promise(() => nc.close())
      const used = (k: "runners" | "parent" | "nats" | "mariadb") => (after[k] - before[k]).toFixed(1)
      const wall = ms / 1000
      process.stdout.write(
        `processes=${processes} rows=${rows}/${messages} ${(messages / wall).toFixed(0)} rows/s ` +
          `(${wall.toFixed(1)} s; publish alone ${(messages / (publishMs / 1000)).toFixed(0)} msgs/s) ` +
          `cpu s: runners ${used("runners")} emulator+publisher ${used("parent")} nats ${used("nats")} ` +
          `mariadb ${used("mariadb")} of ${(wall * os.cpus().length).toFixed(1)} (${os.cpus().length} cores); ` +
          `load before ${load.toFixed(1)}\n`
      )
      yield* Effect.promise(() => sleep(3_000))
    })
  ))

const program = Effect.gen(function*() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "cluster-bench-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(work, { recursive: true, force: true })))
  const command = yield* Effect.promise(() => runnerCommand(work, false))
  const storage = storageUrl === "memory" ? undefined : yield* MysqlStorage.make(storageUrl)
  const emulator = yield* StarRocksEmulator.make({
    users: { root: "" },
    storage,
    cleanerIntervalMs: 1000,
    labelKeepMaxNum: 1_000_000
  })
  const database = storageUrl === "memory" ? "shop" : `cluster_bench_${Date.now().toString(36)}`
  process.stdout.write(
    `cluster bench: ${messages} messages over ${partitions} partitions, barrier every ${everyRows} rows, emulator ` +
      `storage ${storageUrl}, fencing ${fence === "0" ? "off" : "on"}\n`
  )
  for (const n of counts) {
    yield* Effect.scoped(run(n, command, emulator.fe[0]!, database)).pipe(
      Effect.provideService(StarRocksEmulator.StarRocksEmulator, emulator)
    )
  }
})

Effect.runPromise(Effect.scoped(program)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${String(e)}\n`)
    process.exit(1)
  }
)
