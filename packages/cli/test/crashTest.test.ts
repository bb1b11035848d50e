/**
 * The exactly-once crash test (scripts/crash-test.ts) as part of `npm test`: 30 SIGKILLs of the child pipeline at
 * seeded moments (among them between prepare and checkpoint save and between save and commit), over three tables
 * written by one sink (two DUPLICATE KEY tables, one Primary Key table with upserts, partial updates and deletes).
 * After every recovery the tables must hold exactly the checkpointed prefix of the source; at the end each
 * DUPLICATE table holds each of its source rows exactly once, the Primary Key table equals the reference model of
 * the whole source, and no PREPARE/PREPARED transaction of the instance remains. Once more with the emulator's
 * faults on (connection resets mid-body, HTTP 500, TXN_IN_PROCESSING, Publish Timeout). Fewer items per epoch than
 * the script's default (6,000, a barrier every 600) keep each run within its timeout on a busy 2-core machine.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../../", import.meta.url))
const script = fileURLToPath(new URL("../../../scripts/crash-test.ts", import.meta.url))

interface Result {
  readonly code: number | null
  readonly output: string
}

const crashTest = (args: ReadonlyArray<string>) =>
  Effect.async<Result>((resume) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (b: Buffer) => (output += b.toString()))
    child.stderr.on("data", (b: Buffer) => (output += b.toString()))
    child.once("exit", (code) => resume(Effect.succeed({ code, output })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const lastLine = (output: string) => output.trim().split("\n").at(-1) ?? ""

/** Items per epoch and per barrier for CI. */
const rows = 6_000
const small = ["--rows", String(rows), "--every", "600"]

const check = (result: Result, kills: number) => {
  const last = lastLine(result.output)
  const m = /^kills=(\d+) rows=(\d+) lost=(\d+) duplicated=(\d+) pk=(ok|mismatch)$/.exec(last)
  assert.isNotNull(m, `last line: ${last}\n${result.output.slice(-4000)}`)
  assert.isAtLeast(Number(m![1]), kills)
  assert.isAtLeast(Number(m![2]), rows)
  assert.strictEqual(m![3], "0", result.output.slice(-4000))
  assert.strictEqual(m![4], "0", result.output.slice(-4000))
  assert.strictEqual(m![5], "ok", result.output.slice(-4000))
  assert.match(result.output, /lingering PREPARE\/PREPARED: 0;/)
  const prefix = /prefix checks (\d+), failed (\d+);/.exec(result.output)
  assert.isNotNull(prefix, result.output.slice(-4000))
  assert.isAtLeast(Number(prefix![1]), kills / 2)
  assert.strictEqual(prefix![2], "0", result.output.slice(-4000))
  // both DUPLICATE tables received rows, the Primary Key table upserts, partial updates and deletes
  const source =
    /epoch 0 source: (\d+) rows of a0, (\d+) rows of b0, into pk0 (\d+) upserts, (\d+) partial updates, (\d+) deletes/
      .exec(result.output)
  assert.isNotNull(source, result.output.slice(-4000))
  for (const n of source!.slice(1)) assert.isAbove(Number(n), 0, source![0])
  assert.match(result.output, /Primary Key table \d+ rows, equal to the reference model/)
  assert.strictEqual(result.code, 0, result.output.slice(-4000))
}

describe("crash test", () => {
  it.live(
    "30 kills over three tables: every row exactly once, the Primary Key table as the reference model",
    () =>
      Effect.gen(function*() {
        const result = yield* crashTest(["--kills", "30", "--seed", "20261124", ...small])
        check(result, 30)
      }),
    200_000
  )

  it.live(
    "30 kills over three tables with emulator faults: exactly once, the Primary Key table right",
    () =>
      Effect.gen(function*() {
        const result = yield* crashTest(["--kills", "30", "--seed", "4242", "--faults", ...small])
        check(result, 30)
      }),
    200_000
  )
})
