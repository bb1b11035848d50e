/**
 * The exactly-once crash test (issue 4, "Proof"): `npm run crash-test -- --kills N --seed S [--faults]`.
 *
 * The parent starts the StarRocks emulator in process (it lives across the child's deaths and holds the state:
 * memory storage by default, or `--storage mysql://root@127.0.0.1:3306/test`), creates three tables (issue 8,
 * point 7: DUPLICATE KEY `a<e>` and `b<e>` for reference rows, PRIMARY KEY `pk<e>` for upserts, partial updates and
 * deletes over `--keys` keys; the seeded source is scripts/crash-source.ts), and runs scripts/crash-child.ts, which
 * writes all three through one exactly-once sink, again and again, killing it with SIGKILL at seeded random moments: either the child
 * kills itself at the nth occurrence of a phase (`CRASH_AT`: after a load, after prepare, before/after the
 * checkpoint save, after a commit, inside recovery, after an ack) or the parent kills it 50–800 ms after its
 * recovery finished (or 300–1500 ms after spawn, which lands in start-up or recovery). It restarts the child until
 * the child finishes the source. When the source is finished before N kills were made, another pass ("epoch")
 * starts on fresh tables, so every kill lands inside a pipeline with work to do.
 *
 * Checks: every time a child has recovered (it prints `recovered <from>` and waits), the parent compares the three
 * tables with the source prefix 0 … from-1, the prefix the last checkpoint covers (a "prefix check"): each
 * DUPLICATE table holds each of its rows of the prefix exactly once and nothing else, and the Primary Key table
 * equals the reference model applied to the prefix. At the end of each epoch it compares them with the whole
 * source, and at the end it checks that no PREPARE/PREPARED transaction of the instance remains.
 *
 * Last line: `kills=K rows=R lost=L duplicated=D pk=ok|mismatch` (R = source items over all epochs; L and D summed
 * over both DUPLICATE tables of every epoch at its end; pk: the Primary Key table in every check). Exit 0 only when
 * L = D = 0, pk=ok, no value differs, every prefix check passed, no transaction lingers and every child run ended by
 * a kill or a clean finish.
 *
 * Options: --kills N (30) --seed S (1) --rows R items per epoch (20000) --every B items per barrier (2000)
 *          --max-rows M rows per transaction/load (500) --keys K Primary Key table keys (500) --partial 0|1 (1)
 *          --faults --storage memory|mysql://… --run-timeout SECONDS (90: a child's own time, to "recovered" and
 *          again from "go" on; the parent's prefix check between the two is not counted)
 *          --no-bundle (run the child through tsx instead of a bundle of it built by esbuild at start: a bundle
 *          starts with a tenth of the CPU time, and the test starts hundreds of children)
 *
 * `--cluster` runs the scale-out crash test instead (scripts/crash-cluster.ts: processes under @effect/cluster,
 * partitions moved on SIGKILL and SIGSTOP; its options are listed there).
 */
import { MysqlStorage, ReferenceRows, StarRocksEmulator } from "@effect-starrocks/testkit"
import { Effect, Exit } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Source from "./crash-source.js"

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
const keys = Number(opt("keys", "500"))
const partial = opt("partial", "1")
const faults = flag("faults")
const storageUrl = opt("storage", "memory")
const runTimeoutMs = Number(opt("run-timeout", "90")) * 1000
/** A fresh database per run on a persistent storage (MariaDB keeps the tables of earlier runs). */
const database = storageUrl === "memory" ? "crash" : `crash_${Date.now().toString(36)}`
const instance = "crash"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const childScript = path.join(root, "scripts", "crash-child.ts")

/** How to start the child: a one-file ESM bundle of it (built once), or the TypeScript source through tsx. */
const childCommand = async (work: string): Promise<ReadonlyArray<string>> => {
  if (flag("no-bundle")) return ["--import", "tsx", childScript]
  const esbuild = await import("esbuild")
  const outfile = path.join(work, "crash-child.mjs")
  await esbuild.build({
    entryPoints: [childScript],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    logLevel: "warning",
    // CommonJS dependencies inside an ESM bundle call require
    banner: {
      js:
        "import { createRequire as __createRequire } from \"node:module\"; const require = __createRequire(import.meta.url);"
    }
  })
  return [outfile]
}

const random = Source.prng(seed)
const sourceOf = (epoch: number): Source.SourceOptions => ({
  seed: Source.epochSeed(seed, epoch),
  n: rowsPerEpoch,
  keys,
  partialUpdates: partial === "1"
})
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

/**
 * One child run. `onRecovered(from)` runs when the child has recovered (it waits meanwhile); then the child is let
 * go, and a planned after-recovery kill is armed.
 */
const runChild = (
  command: ReadonlyArray<string>,
  epoch: number,
  dir: string,
  fe: string,
  plan: Plan,
  onRecovered: (from: number) => Promise<void>
): Promise<RunResult> =>
  new Promise((resolve) => {
    const started = Date.now()
    const env = { ...process.env }
    delete env["CRASH_AT"]
    if (plan._tag === "phase") env["CRASH_AT"] = `${plan.phase}:${plan.nth}`
    const child = spawn(
      process.execPath,
      [
        ...command,
        ...["--fe", fe, "--dir", dir, "--db", database, "--epoch", String(epoch), "--instance", instance],
        ...["--seed", String(seed), "--rows", String(rowsPerEpoch), "--keys", String(keys), "--partial", partial],
        ...["--every", String(every), "--max-rows", String(maxRows), "--hold", "1"]
      ],
      { cwd: root, env, stdio: ["pipe", "pipe", "pipe"] }
    )
    // the child may be dead before it is let go
    child.stdin.on("error", () => {})
    let out = ""
    let stderr = ""
    let recoveredFrom: number | undefined
    let lastAck: number | undefined
    let crash: string | undefined
    let hung = false
    const timers: Array<NodeJS.Timeout> = []
    const kill = () => child.kill("SIGKILL")
    if (plan._tag === "after-spawn") timers.push(setTimeout(kill, plan.ms))
    // the child's own deadline: from its start to "recovered", then again from "go" on; the parent's prefix check
    // in between (slow on MariaDB storage beside other work) is not the child's time
    const deadline = () =>
      setTimeout(() => {
        hung = true
        kill()
      }, runTimeoutMs)
    let hangTimer = deadline()
    timers.push(hangTimer)
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
          clearTimeout(hangTimer)
          void onRecovered(recoveredFrom).finally(() => {
            if (child.exitCode !== null || child.signalCode !== null) return
            hangTimer = deadline()
            timers.push(hangTimer)
            child.stdin.write("go\n")
            if (plan._tag === "after-recovery") timers.push(setTimeout(kill, plan.ms))
          })
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
  const command = yield* Effect.promise(() => childCommand(work))
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

  /**
   * The tables of an epoch against the source prefix 0 … end-1: each DUPLICATE table holds each of its rows of the
   * prefix once (`lost`, `duplicated`; ids that are not its rows of the prefix count as duplicated and `outside`),
   * with the right values (`wrong`), and the Primary Key table equals the reference model (`pkBad`: keys missing,
   * extra or with other values).
   */
  const verify = (epoch: number, end: number) =>
    Effect.gen(function*() {
      yield* awaitPublished
      const names = Source.tableNames(epoch)
      const want = Source.expected(sourceOf(epoch), end)
      let stored = 0
      let l = 0
      let d = 0
      let outside = 0
      let wrong = 0
      for (const [kind, table] of [[0, names.a], [1, names.b]] as const) {
        const rows = yield* emulator.rows(database, table)
        stored += rows.length
        const counts = new Uint32Array(end)
        for (const row of rows) {
          const id = Number(row["id"])
          if (!Number.isInteger(id) || id < 0 || id >= end || want.kind[id] !== kind) {
            outside++
            continue
          }
          if (counts[id]++ === 0) {
            const expected = ReferenceRows.expectedCells(id)
            for (const [k, v] of Object.entries(expected)) if (String(row[k]) !== String(v)) wrong++
          }
        }
        for (let i = 0; i < end; i++) {
          if (want.kind[i] !== kind) continue
          if (counts[i] === 0) l++
          else d += counts[i]! - 1
        }
      }
      const pkRows = yield* emulator.rows(database, names.pk)
      const seen = new Set<number>()
      let pkBad = 0
      const samples: Array<string> = []
      const sample = (id: number, got: unknown, expected: unknown) => {
        if (samples.length < 5) {
          samples.push(`key ${id}: stored ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`)
        }
      }
      for (const row of pkRows) {
        const id = Number(row["id"])
        const expected = want.pk.get(id)
        const got = Source.storedPkText(row)
        if (expected === undefined || seen.has(id)) {
          pkBad++
          sample(id, got, seen.has(id) ? "one row" : "no row")
          continue
        }
        seen.add(id)
        if (JSON.stringify(got) !== JSON.stringify(expected)) {
          pkBad++
          sample(id, got, expected)
        }
      }
      for (const [id, expected] of want.pk) {
        if (!seen.has(id)) {
          pkBad++
          sample(id, "no row", expected)
        }
      }
      if (samples.length > 0) {
        console.log(`  Primary Key table ${names.pk}, items 0..${end - 1}:\n    ${samples.join("\n    ")}`)
      }
      return { stored, lost: l, duplicated: d + outside, outside, wrong, pkRows: pkRows.length, pkBad, ...want.counts }
    })

  let prefixChecks = 0
  let prefixFailed = 0
  let pkFailed = 0
  /** After a child's recovery: the tables hold exactly the checkpointed prefix. */
  const checkPrefix = (epoch: number, from: number) =>
    verify(epoch, from).pipe(
      Effect.tap((v) =>
        Effect.sync(() => {
          prefixChecks++
          if (v.pkBad > 0) pkFailed++
          if (v.lost > 0 || v.duplicated > 0 || v.wrong > 0 || v.pkBad > 0) {
            prefixFailed++
            console.log(
              `  prefix check FAILED (epoch ${epoch}, items 0..${from - 1}): lost ${v.lost}, duplicated ` +
                `${v.duplicated}, mismatched values ${v.wrong}, Primary Key rows wrong ${v.pkBad}`
            )
          }
        })
      ),
      Effect.asVoid
    )

  for (;;) {
    const names = Source.tableNames(epoch)
    yield* emulator.createTable(ReferenceRows.tableDef(database, names.a))
    yield* emulator.createTable(ReferenceRows.tableDef(database, names.b))
    yield* emulator.createTable(Source.pkTableDef(database, names.pk))
    const table = `epoch ${epoch}`
    const dir = path.join(work, `e${epoch}`)
    const onRecovered = (from: number) =>
      Effect.runPromiseExit(checkPrefix(epoch, from)).then((exit) => {
        if (Exit.isFailure(exit)) {
          prefixChecks++
          prefixFailed++
          console.log(`  prefix check failed to run: ${String(exit.cause)}`)
        }
      })
    let finished = false
    while (!finished) {
      const plan = killed < kills ? planKill() : { _tag: "none" as const }
      runs++
      const r = yield* Effect.promise(() => runChild(command, epoch, dir, emulator.fe[0]!, plan, onRecovered))
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
    const v = yield* verify(epoch, rowsPerEpoch)
    totalRows += rowsPerEpoch
    lost += v.lost
    duplicated += v.duplicated
    mismatched += v.wrong
    foreign += v.outside
    if (v.pkBad > 0) pkFailed++
    console.log(
      `epoch ${epoch} source: ${v.a} rows of ${names.a}, ${v.b} rows of ${names.b}, into ${names.pk} ${v.upserts} ` +
        `upserts, ${v.updates} partial updates, ${v.deletes} deletes`
    )
    console.log(
      `epoch ${epoch} (${names.a}, ${names.b}, ${names.pk}) verified: ${v.stored} rows stored in the DUPLICATE ` +
        `tables, lost ${v.lost}, duplicated ${v.duplicated}` +
        `${v.outside > 0 ? ` (${v.outside} ids not theirs)` : ""}, mismatched values ${v.wrong}; Primary Key ` +
        `table ${v.pkRows} rows, ${v.pkBad === 0 ? "equal to the reference model" : `${v.pkBad} keys wrong`}`
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
      `; mismatched values ${mismatched}; prefix checks ${prefixChecks}, failed ${prefixFailed}; ${seconds} s`
  )
  console.log(
    `kills=${killed} rows=${totalRows} lost=${lost} duplicated=${duplicated} pk=${pkFailed === 0 ? "ok" : "mismatch"}`
  )
  fs.rmSync(work, { recursive: true, force: true })
  return lost === 0 && duplicated === 0 && mismatched === 0 && foreign === 0 && lingering.length === 0 &&
    bad === 0 && pkFailed === 0 && prefixFailed === 0
})

// `--cluster`: the scale-out crash test of scripts/crash-cluster.ts (its own options) instead of this one
const run = flag("cluster")
  ? import("./crash-cluster.js").then((m) => m.main(argv))
  : Effect.runPromise(Effect.scoped(program))
run.then(
  (ok) => process.exit(ok ? 0 : 1),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
