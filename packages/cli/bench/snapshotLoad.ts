/**
 * The loader as a V8 startup snapshot, an experiment of session 17 (bench/snapshot.ts builds it; docs/cli.md,
 * "A start from a snapshot (session 17)"): evaluated once when the blob is built, so that a start deserializes the
 * evaluated heap instead of compiling and evaluating the bundle. Run as `node --snapshot-blob BLOB load FILE...`:
 * the function given to `setDeserializeMainFunction` is the program. Not shipped: on node 20 a start from the blob
 * costs more than one of the bundle with its code cache.
 *
 * What a snapshot captures and a start must not reuse: effect's default `Random` (seeded by `Math.random()` when
 * effect is evaluated, so every start would jitter its retries alike) and the origin of effect's default `Clock`
 * (the wall clock minus `process.hrtime` when effect is evaluated: after a reboot `hrtime` starts again, and every
 * time read would be off). The program runs with a `Random` and a `Clock` made at the start.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Module from "node:module"
import * as Path from "node:path"
import * as V8 from "node:v8"
import * as FastArgs from "../src/internal/load/fastArgs.js"
import * as Run from "../src/internal/load/run.js"
import * as Main from "../src/internal/main.js"

/** The entry of the bundled command (scripts/bundle.ts, `entryName`), beside the blob. */
export const entryName = "effect-starrocks.cjs"

/** The blob's path, from node's options (`--snapshot-blob BLOB` or `--snapshot-blob=BLOB`). */
const blobPath = (): string | undefined => {
  const args = process.execArgv
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--snapshot-blob") return args[i + 1]
    if (args[i]!.startsWith("--snapshot-blob=")) return args[i]!.slice("--snapshot-blob=".length)
  }
  return undefined
}

/** A `Clock` whose origin is taken now, at this start (effect's `Clock.make` took it when effect was evaluated). */
const freshClock = (): Clock.Clock => {
  const base = Clock.make()
  const origin = BigInt(Date.now()) * BigInt(1_000_000) - process.hrtime.bigint()
  const nanos = () => origin + process.hrtime.bigint()
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeNanos: nanos,
    unsafeCurrentTimeMillis: () => Date.now(),
    currentTimeNanos: Effect.sync(nanos),
    currentTimeMillis: Effect.sync(() => Date.now()),
    sleep: (duration) => base.sleep(duration)
  }
}

V8.startupSnapshot.setDeserializeMainFunction(() => {
  const blob = blobPath()
  const entry = blob === undefined ? entryName : Path.join(Path.dirname(Path.resolve(blob)), entryName)
  // as the bundle's entry sees it: node, the entry, the command line
  process.argv.splice(1, 0, entry)
  const plain = process.argv[2] === "load"
    ? FastArgs.parse(FastArgs.commandLine(process.argv).slice(3))
    : undefined
  if (plain === undefined) {
    // any other command line: the bundled command, from its entry beside the blob
    Module.createRequire(entry)(entry)
    return
  }
  Main.runMain(
    Run.runLoad(plain, () => Main.exitNow(0)).pipe(
      Effect.withRandom(Random.make(Math.random())),
      Effect.withClock(freshClock())
    )
  )
})
