/**
 * The exactly-once crash test (scripts/crash-test.ts) as part of `npm test`: 30 SIGKILLs of the child pipeline at
 * seeded moments (among them between prepare and checkpoint save and between save and commit), then the table
 * must hold every source row exactly once and no PREPARE/PREPARED transaction of the instance may remain. Once
 * more with the emulator's faults on (connection resets mid-body, HTTP 500, TXN_IN_PROCESSING, Publish Timeout).
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

const check = (result: Result, kills: number) => {
  const last = lastLine(result.output)
  const m = /^kills=(\d+) rows=(\d+) lost=(\d+) duplicated=(\d+)$/.exec(last)
  assert.isNotNull(m, `last line: ${last}\n${result.output.slice(-4000)}`)
  assert.isAtLeast(Number(m![1]), kills)
  assert.isAtLeast(Number(m![2]), 20_000)
  assert.strictEqual(m![3], "0", result.output.slice(-4000))
  assert.strictEqual(m![4], "0", result.output.slice(-4000))
  assert.match(result.output, /lingering PREPARE\/PREPARED: 0;/)
  assert.strictEqual(result.code, 0, result.output.slice(-4000))
}

describe("crash test", () => {
  it.live("30 kills: every row exactly once", () =>
    Effect.gen(function*() {
      const result = yield* crashTest(["--kills", "30", "--seed", "20261124"])
      check(result, 30)
    }), 200_000)

  it.live("30 kills with emulator faults: every row exactly once", () =>
    Effect.gen(function*() {
      const result = yield* crashTest(["--kills", "30", "--seed", "4242", "--faults"])
      check(result, 30)
    }), 200_000)
})
