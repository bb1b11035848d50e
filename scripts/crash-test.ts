/**
 * The exactly-once crash test (issue 4, "Proof"): `npm run crash-test -- --kills N --seed S [--faults]`.
 *
 * The parent starts the StarRocks emulator in process (it lives across the child's deaths and holds the state:
 * memory storage by default, or `--storage mysql://root@127.0.0.1:3306/test`), creates the reference table, and
 * runs scripts/crash-child.ts again and again, killing it with SIGKILL at seeded random moments: either the child
 * kills itself at the nth occurrence of a phase (`CRASH_AT`: after a load, after prepare, before/after the
 * checkpoint save, after a commit, inside recovery, after an ack) or the parent kills it 50–800 ms after its
 * recovery finished (or 300–1500 ms after spawn, which lands in start-up or recovery). It restarts the child until
 * the child finishes the source. When the source is finished before N kills were made, another pass ("epoch")
 * starts on a fresh table, so every kill lands inside a pipeline with work to do. Then it compares the tables with
 * the source and checks that no PREPARE/PREPARED transaction of the instance remains.
 *
 * Last line: `kills=K rows=R lost=L duplicated=D` (R = source rows over all epochs). Exit 0 only when L = D = 0,
 * no value differs, no transaction lingers and every child run ended by a kill or a clean finish.
 *
 * Options: --kills N (30) --seed S (1) --rows R per epoch (20000) --every B rows per barrier (2000)
 *          --max-rows M rows per transaction/load (500) --faults --storage memory|mysql://… --run-timeout SECONDS (90)
 */
import { MysqlStorage, ReferenceRows, StarRocksEmulator } from "@effect-starrocks/testkit"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(`--${name}`)
const opt = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback
}

const kills = Number(opt("kills", "30"))
const seed = Number(opt("seed", "1"))
const rowsPerEpoch = Number(opt("rows", "20000"))
const every = Number(opt("every", "2000"))
const maxRows = Number(opt("max-rows", "500"))
const faults = flag("faults")
const storageUrl = opt("storage", "memory")
const runTimeoutMs = Number(opt("run-timeout", "90")) * 1000
/** A fresh database per run on a persistent storage (MariaDB keeps the tables of earlier runs). */
const database = storageUrl === "memory" ? "crash" : `crash_${Date.now().toString(36)}`
const instance = "crash"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const childScript = path.join(root, "scripts", "crash-child.ts")

/** mulberry32: a small deterministic PRNG. */
const prng = (s: number) => {
  let a = s >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const random = prng(seed)
const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1))

const phases = ["load", "prepare", "save-before", "save-after", "commit", "latest", "rollback", "ack"] as const
const phaseWeights = [2, 2, 3, 3, 3, 1, 1, 1]

type Plan =
  | { readonly _tag: "phase"; readonly phase: string; readonly nth: number }
  | { readonly _tag: "after-recovery"; readonly ms: number }
  | { readonly _tag: "after-spawn"; readonly ms: number }
  | { readonly _tag: "none" }

const planKill = (): Plan => {
  const r = random()
  if (r < 0.45) {
    let w = random() * phaseWeights.reduce((a, b) => a + b, 0)
    let i = 0
    while (w >= phaseWeights[i]!) w -= phaseWeights[i++]!
    const phase = phases[i]!
    return { _tag: "phase", phase, nth: phase === "latest" ? 1 : between(1, phase === "load" ? 12 : 3) }
  }
  if (r < 0.88) return { _tag: "after-recovery", ms: between(50, 800) }
  return { _tag: "after-spawn", ms: between(300, 1500) }
}

const describe = (p: Plan) =>
  p._tag === "phase"
    ? `CRASH_AT=${p.phase}:${p.nth}`
    : p._tag === "none"
    ? "no kill"
    : `${p._tag} ${p.ms} ms`

interface RunResult {
  readonly outcome: "killed" | "finished" | "failed" | "hung"
  readonly recoveredFrom: number | undefined
  readonly lastAck: number | undefined
  readonly crash: string | undefined
  readonly stderr: string
  readonly code: number | null
  readonly ms: number
}

/** What the children saw of the transaction interface: retries, non-OK statuses, errors (summed over runs). */
const transient = new Map<string, number>()

const runChild = (table: string, dir: string, fe: string, plan: Plan): Promise<RunResult> =>
  new Promise((resolve) => {
    const started = Date.now()
    const env = { ...process.env }
    delete env["CRASH_AT"]
    if (plan._tag === "phase") env["CRASH_AT"] = `${plan.phase}:${plan.nth}`
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        childScript,
        ...["--fe", fe, "--dir", dir, "--db", database, "--table", table, "--instance", instance],
        ...["--rows", String(rowsPerEpoch), "--every", String(every), "--max-rows", String(maxRows)]
      ],
      { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] }
    )
    let out = ""
    let stderr = ""
    let recoveredFrom: number | undefined
    let lastAck: number | undefined
    let crash: string | undefined
    let hung = false
    const timers: Array<NodeJS.Timeout> = []
    const kill = () => child.kill("SIGKILL")
    if (plan._tag === "after-spawn") timers.push(setTimeout(kill, plan.ms))
    timers.push(setTimeout(() => {
      hung = true
      kill()
    }, runTimeoutMs))
    child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString()).slice(-20_000)))
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString()
      let nl: number
      while ((nl = out.indexOf("\n")) >= 0) {
        const line = out.slice(0, nl)
        out = out.slice(nl + 1)
        const [word, a, b2] = line.split(" ")
        if (word === "recovered") {
          recoveredFrom = Number(a)
          if (plan._tag === "after-recovery") timers.push(setTimeout(kill, plan.ms))
        } else if (word === "ack") lastAck = Number(b2)
        else if (word === "crash") crash = a
        else if (word === "retried" || word === "status" || word === "error") {
          const key = `${word} ${a}${word === "retried" ? "" : ` ${b2}`}`
          transient.set(key, (transient.get(key) ?? 0) + (word === "retried" ? Number(b2) : 1))
        } else if (word !== "done") stderr = (stderr + line + "\n").slice(-20_000)
      }
    })
    child.once("exit", (code, signal) => {
      for (const t of timers) clearTimeout(t)
      const outcome = hung ? "hung" : signal === "SIGKILL" ? "killed" : code === 0 ? "finished" : "failed"
      resolve({ outcome, recoveredFrom, lastAck, crash, stderr, code, ms: Date.now() - started })
    })
  })

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
  if (faults) {
    const p = 0.03
    yield* emulator.addFault({ path: "/api/transaction/load", probability: p, action: { _tag: "close-mid-body" } })
    yield* emulator.addFault({ path: "/api/transaction/load", probability: p, action: { _tag: "http-500" } })
    yield* emulator.addFault({
      path: "/api/transaction/(begin|load|prepare|commit)",
      probability: p,
      action: { _tag: "txn-in-processing" }
    })
    yield* emulator.addFault({
      path: "/api/transaction/commit",
      probability: 0.2,
      action: { _tag: "publish-timeout", visibleAfterMs: 300 }
    })
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "crash-test-"))
  console.log(
    `crash test: seed=${seed} kills=${kills} rows/epoch=${rowsPerEpoch} barrier every ${every} rows, ` +
      `max-rows ${maxRows}, faults ${faults ? "on" : "off"}, storage ${storageUrl}, FE ${emulator.fe[0]}`
  )

  const started = Date.now()
  let killed = 0
  let runs = 0
  let bad = 0
  let epoch = 0
  let totalRows = 0
  let lost = 0
  let duplicated = 0
  let mismatched = 0
  let foreign = 0
  const byPhase = new Map<string, number>()

  /** A commit answered "Publish Timeout" is COMMITTED and becomes VISIBLE later: wait for the publish first. */
  const awaitPublished = Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const txns = yield* emulator.transactions(database)
      if (!txns.some((t) => t.status === "COMMITTED")) return
      yield* Effect.sleep("100 millis")
      yield* emulator.tick
    }
    console.log("warning: COMMITTED transactions still not VISIBLE after 10 s")
  })

  const verify = (table: string) =>
    Effect.gen(function*() {
      yield* awaitPublished
      const stored = yield* emulator.rows(database, table)
      const counts = new Uint32Array(rowsPerEpoch)
      let outside = 0
      let wrong = 0
      for (const row of stored) {
        const id = Number(row["id"])
        if (!Number.isInteger(id) || id < 0 || id >= rowsPerEpoch) {
          outside++
          continue
        }
        if (counts[id]++ === 0) {
          const expected = ReferenceRows.expectedCells(id)
          for (const [k, v] of Object.entries(expected)) if (String(row[k]) !== String(v)) wrong++
        }
      }
      let l = 0
      let d = 0
      for (let i = 0; i < rowsPerEpoch; i++) {
        if (counts[i] === 0) l++
        else d += counts[i]! - 1
      }
      return { stored: stored.length, lost: l, duplicated: d + outside, outside, wrong }
    })

  for (;;) {
    const table = `t${epoch}`
    yield* emulator.createTable(ReferenceRows.tableDef(database, table))
    const dir = path.join(work, table)
    let finished = false
    while (!finished) {
      const plan = killed < kills ? planKill() : { _tag: "none" as const }
      runs++
      const r = yield* Effect.promise(() => runChild(table, dir, emulator.fe[0]!, plan))
      if (r.outcome === "killed") {
        killed++
        const key = plan._tag === "phase" ? plan.phase : plan._tag
        byPhase.set(key, (byPhase.get(key) ?? 0) + 1)
      } else if (r.outcome === "finished") finished = true
      else bad++
      console.log(
        `run ${runs} ${table}: ${describe(plan)} -> ${r.outcome}${r.crash ? ` at ${r.crash}` : ""} ` +
          `(recovered from ${r.recoveredFrom ?? "-"}, last ack ${r.lastAck ?? "-"}, ${r.ms} ms)` +
          `  kills ${killed}/${kills}`
      )
      if (r.outcome === "failed" || r.outcome === "hung") {
        console.log(`  child exit ${r.code}; stderr:\n${r.stderr.split("\n").slice(-30).join("\n")}`)
        if (bad > 5) return yield* Effect.dieMessage("more than 5 child runs failed; giving up")
      }
    }
    const v = yield* verify(table)
    totalRows += rowsPerEpoch
    lost += v.lost
    duplicated += v.duplicated
    mismatched += v.wrong
    foreign += v.outside
    console.log(
      `epoch ${epoch} (${table}) verified: ${v.stored} rows stored, lost ${v.lost}, duplicated ${v.duplicated}` +
        `${v.outside > 0 ? ` (${v.outside} ids outside the source)` : ""}, mismatched values ${v.wrong}`
    )
    epoch++
    if (killed >= kills) break
  }

  console.log(
    `transaction interface, as the children saw it: ` +
      ([...transient].sort().map(([k, n]) => `${k.replace(" ", ":").replace(" ", "=")}:${n}`).join(" ") || "all OK")
  )
  const requests = yield* emulator.requests
  const perOp = new Map<string, number>()
  for (const r of requests) {
    const m = /\/api\/transaction\/(\w+)/.exec(r.path)
    const key = m === null ? undefined : `${r.node.slice(0, 2)}:${m[1]}`
    if (key !== undefined) perOp.set(key, (perOp.get(key) ?? 0) + 1)
  }
  console.log(`transaction requests (node:operation): ${[...perOp].map(([k, n]) => `${k}=${n}`).join(" ")}`)
  const txns = yield* emulator.transactions(database)
  const lingering = txns.filter((t) =>
    (t.status === "PREPARE" || t.status === "PREPARED") && t.label.includes(`-${instance}-`)
  )
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  console.log(
    `runs=${runs} epochs=${epoch} failed-runs=${bad} kills by kind: ` +
      [...byPhase].map(([k, n]) => `${k}=${n}`).join(" ")
  )
  console.log(
    `transactions: ${txns.length} (${txns.filter((t) => t.status === "VISIBLE").length} VISIBLE, ` +
      `${txns.filter((t) => t.status === "ABORTED").length} ABORTED, ` +
      `${
        txns.filter((t) => t.visibleAt !== undefined).length
      } published late), lingering PREPARE/PREPARED: ${lingering.length}` +
      `; mismatched values ${mismatched}; ${seconds} s`
  )
  console.log(`kills=${killed} rows=${totalRows} lost=${lost} duplicated=${duplicated}`)
  fs.rmSync(work, { recursive: true, force: true })
  return lost === 0 && duplicated === 0 && mismatched === 0 && foreign === 0 && lingering.length === 0 && bad === 0
})

Effect.runPromise(Effect.scoped(program)).then(
  (ok) => process.exit(ok ? 0 : 1),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
