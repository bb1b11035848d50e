/**
 * The crash test's child (see scripts/crash-test.ts): one run of an exactly-once pipeline from the deterministic
 * source of scripts/crash-source.ts into the emulator's three tables of an epoch (DUPLICATE KEY `a<e>` and `b<e>`,
 * PRIMARY KEY `pk<e>`), all through one `StarRocksSink.exactlyOnce(StarRocksSink.byTag(…))`. It recovers (commits
 * what the last checkpoint prepared, in every table, aborts the rest), resumes the source after the recovered
 * position and runs to the end of the source, unless it is killed. With `--hold 1` it waits, after recovery, for
 * one line on stdin (the parent checks the tables against the recovered prefix meanwhile).
 *
 * `CRASH_AT=<phase>:<n>` makes it SIGKILL itself at the nth occurrence of a phase:
 *   latest       after the checkpointer returned the last checkpoint (inside recovery)
 *   load         after a `transaction/load` returned
 *   prepare      after a `transaction/prepare` returned (before the checkpoint is saved)
 *   save-before  after prepare, just before the checkpoint record is written
 *   save-after   right after the checkpoint record is durable, before any commit
 *   commit       after a `transaction/commit` returned (also the commits of recovery)
 *   rollback     after a `transaction/rollback` returned (recovery's aborts)
 *   begin        after a `transaction/begin` returned
 *   ack          in the sink's onCheckpoint, after a checkpoint was committed and its barrier acknowledged
 *
 * stdout lines for the parent: `recovered <from>`, `ack <id> <position>`, `crash <phase>:<n>`, `done <summary>`, and
 * `retried <op> <n>`, `status <op> <status>`, `error <op> <tag>` for what the transaction interface answered.
 *
 * Usage: node --import tsx scripts/crash-child.ts --fe HOST:PORT --dir DIR --db DB --epoch E --seed S --rows R
 *          [--keys K] [--partial 0|1] [--every B] [--max-rows M] [--instance I] [--hold 0|1]
 */
import { Checkpoint, Checkpointer, LoadClient, StarRocksConfig, StarRocksSink } from "@effect-starrocks/sink"
import * as CheckpointerFileSystem from "@effect-starrocks/sink/Checkpointer/FileSystem"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Logger, LogLevel, Option, Redacted, Schema, Stream } from "effect"
import * as fs from "node:fs"
import * as Source from "./crash-source.js"

const args = new Map<string, string>()
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ""), process.argv[i + 1]!)
const arg = (name: string, fallback?: string): string => {
  const v = args.get(name) ?? fallback
  if (v === undefined) throw new Error(`missing --${name}`)
  return v
}

const fe = arg("fe")
const dir = arg("dir")
const database = arg("db", "crash")
const epoch = Number(arg("epoch", "0"))
const names = Source.tableNames(epoch)
const sourceOptions: Source.SourceOptions = {
  seed: Source.epochSeed(Number(arg("seed", "1")), epoch),
  n: Number(arg("rows")),
  keys: Number(arg("keys", "500")),
  partialUpdates: arg("partial", "1") === "1"
}
const hold = arg("hold", "0") === "1"
const every = Number(arg("every", "2000"))
const maxRows = Number(arg("max-rows", "500"))
const instance = arg("instance", "crash")

/** One line to the parent, written synchronously so that it is out before a SIGKILL. */
const say = (line: string) => fs.writeSync(1, line + "\n")

const [crashPhase, crashNthText] = (process.env["CRASH_AT"] ?? "").split(":")
const crashNth = Number(crashNthText ?? "0")
const seen = new Map<string, number>()
const hook = (phase: string) =>
  Effect.sync(() => {
    const n = (seen.get(phase) ?? 0) + 1
    seen.set(phase, n)
    if (phase === crashPhase && n === crashNth) {
      say(`crash ${phase}:${n}`)
      process.kill(process.pid, "SIGKILL")
    }
  })

/** One sink over the three tables: the DUPLICATE KEY tables take rows, the Primary Key table changes. */
const target = StarRocksSink.byTag({
  a: StarRocksSink.table(Source.RowA, { table: names.a }),
  b: StarRocksSink.table(Source.RowB, { table: names.b }),
  pk: StarRocksSink.table(Source.RowPk, { table: names.pk, primaryKey: ["id"] })
})

/** Waits for one line from the parent on stdin, then lets stdin go (so that a finished child exits). */
const awaitGo = Effect.async<void>((resume) => {
  process.stdin.once("data", () => {
    process.stdin.destroy()
    resume(Effect.void)
  })
})

const options: StarRocksSink.ExactlyOnceOptions<number, number> = { position: Schema.Number, instance }

const program = Effect.gen(function*() {
  const client = yield* LoadClient.LoadClient
  const checkpointer = yield* Checkpointer.Checkpointer
  /** Reports what the transaction interface answered beyond a plain success (retries, odd statuses, errors). */
  const observe = <E extends { readonly _tag: string }>(
    operation: string,
    effect: Effect.Effect<LoadClient.TransactionResult, E>
  ) =>
    effect.pipe(
      Effect.tap((r) =>
        Effect.sync(() => {
          if (r.retries > 0) say(`retried ${operation} ${r.retries}`)
          if (r.status !== "OK" && r.status !== "Success") say(`status ${operation} ${r.status.replace(/\s+/g, "_")}`)
        })
      ),
      Effect.tapError((e) => Effect.sync(() => say(`error ${operation} ${e._tag}`))),
      Effect.zipLeft(hook(operation))
    )
  const hooked: LoadClient.LoadClient = {
    ...client,
    begin: (...a) => observe("begin", client.begin(...a)),
    loadTxn: (...a) => observe("load", client.loadTxn(...a)),
    prepare: (...a) => observe("prepare", client.prepare(...a)),
    commit: (...a) => observe("commit", client.commit(...a)),
    rollback: (...a) => observe("rollback", client.rollback(...a))
  }
  const hookedCheckpointer: Checkpointer.Checkpointer = {
    ...checkpointer,
    save: (record) =>
      hook("save-before").pipe(
        Effect.zipRight(checkpointer.save(record)),
        Effect.zipLeft(hook("save-after"))
      ),
    latest: (key) => Effect.tap(checkpointer.latest(key), () => hook("latest"))
  }

  const run = Effect.gen(function*() {
    const position = yield* StarRocksSink.recover(options)
    const from = Option.match(position, { onNone: () => 0, onSome: (p) => p + 1 })
    say(`recovered ${from}`)
    if (hold) yield* awaitGo
    const positions = new WeakMap<object, number>()
    const items = function*() {
      for (const { index, item } of Source.source(sourceOptions)) {
        if (index < from) continue
        positions.set(item, index)
        yield item
      }
    }
    const summary = yield* Stream.fromIterable(items()).pipe(
      Stream.rechunk(250),
      Checkpoint.withBarriers({ everyRows: every, position: (item: Source.Item) => positions.get(item)! }),
      // the sink runs onCheckpoint after each committed checkpoint; the recovered one (handed over at start) was
      // reported by the run that committed it, or is the `recovered` line above
      Stream.run(StarRocksSink.exactlyOnce(target, {
        ...options,
        onCheckpoint: (ack) =>
          ack.recovered === true
            ? Effect.void
            : Effect.sync(() => say(`ack ${ack.id} ${ack.position}`)).pipe(Effect.zipRight(hook("ack")))
      }))
    )
    say(`done ${JSON.stringify(summary)}`)
  })

  yield* run.pipe(
    Effect.provideService(LoadClient.LoadClient, hooked),
    Effect.provideService(Checkpointer.Checkpointer, hookedCheckpointer)
  )
})

const config = StarRocksConfig.make({
  loadUrl: fe,
  database,
  table: names.a,
  username: "root",
  password: Redacted.make(""),
  format: "csv",
  maxRows,
  allowSmallBuffers: true,
  maxRetries: 10,
  retryInterval: "50 millis",
  retryMaxDelay: "1 second"
})

const services = Layer.merge(
  StarRocksSink.layer(config),
  CheckpointerFileSystem.layerFileSystem({ directory: dir }).pipe(Layer.provide(NodeContext.layer))
)

program.pipe(
  Effect.provide(services),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  NodeRuntime.runMain
)
