/**
 * A program whose sink fails exits by itself: each case runs a small program (test/fixtures/exit) in a child node
 * and waits for its exit with a deadline. Nothing the sink opened (the MySQL pool of `jdbc-url`, its timers and
 * sockets) may keep the event loop alive once the sink has failed.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import { fileURLToPath } from "node:url"

const packageDir = fileURLToPath(new URL("..", import.meta.url))

interface Exited {
  /** The exit code, or "timeout" when the program was still running at the deadline (then killed). */
  readonly code: number | "timeout" | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `node --import tsx <fixture> ...args`, killed at `deadlineMs`. */
export const runFixture = (fixture: string, args: ReadonlyArray<string>, deadlineMs: number): Effect.Effect<Exited> =>
  Effect.async<Exited>((resume) => {
    let stdout = ""
    let stderr = ""
    let timedOut = false
    const child = ChildProcess.spawn(process.execPath, ["--import", "tsx", `test/fixtures/exit/${fixture}`, ...args], {
      cwd: packageDir,
      stdio: ["ignore", "pipe", "pipe"]
    })
    child.stdout.on("data", (d) => (stdout += String(d)))
    child.stderr.on("data", (d) => (stderr += String(d)))
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, deadlineMs)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resume(Effect.succeed({ code: timedOut ? "timeout" : code, stdout, stderr }))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      child.kill("SIGKILL")
    })
  })

describe("a failing program exits", () => {
  // the fixture's own start (tsx, effect) takes about 2 s on a busy machine; the MySQL pool's timer kept the
  // process alive for ever before the fix
  for (const mode of ["unreachable", "password", "silent"] as const) {
    it.live(`jdbc-url ${mode}: the typed error, then the process exits`, () =>
      Effect.gen(function*() {
        const result = yield* runFixture("badJdbc.ts", [mode], 20_000)
        assert.strictEqual(result.code, 3, `exit: ${result.code}\n${result.stdout}\n${result.stderr}`)
        assert.include(result.stdout, "failed: TableSchemaError")
        assert.include(result.stdout, "table db.t")
        assert.notInclude(result.stdout + result.stderr, "wrong-password")
      }), 30_000)
  }

  it.live(
    "jdbc-url still connecting when the sink is interrupted: the process exits at once",
    () =>
      Effect.gen(function*() {
        // the connect timeout is 60 s: only closing what the reader opened lets the process end before it
        const result = yield* runFixture("badJdbc.ts", ["interrupted"], 20_000)
        assert.strictEqual(result.code, 3, `exit: ${result.code}\n${result.stdout}\n${result.stderr}`)
        assert.include(result.stdout, "failed: TimeoutException")
      }),
    30_000
  )

  // issue 9's failures: each ends the program by itself, with its typed error
  for (
    const [mode, expected] of [
      ["startup", "failed: StartupCheckError NoSuchTable"],
      ["dead-letter", "failed: DeadLetterError OverBudget"],
      ["stall", "failed: StallError"],
      ["tls", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"],
      ["redirect", "failed: RedirectError https→http redirect refused"],
      ["prepared-lost", "failed: ExactlyOnceError PreparedLost"]
    ] as const
  ) {
    it.live(`${mode}: the typed error, then the process exits`, () =>
      Effect.gen(function*() {
        const result = yield* runFixture("sinkFailures.ts", [mode], 30_000)
        assert.strictEqual(result.code, 3, `exit: ${result.code}\n${result.stdout}\n${result.stderr}`)
        assert.include(result.stdout, expected)
      }), 40_000)
  }
})
