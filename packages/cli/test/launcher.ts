/**
 * Runs `effect-starrocks <args>` as a child process (packages/cli/bin/effect-starrocks.mjs, or the file named by
 * EFFECT_STARROCKS_BIN: e.g. the bundle `npm run pack` ships, from packages/cli/scripts/bundle.ts) and collects its
 * exit, stdout and stderr; `stopWhen` may signal it early (polled every 100 ms); `onStderr` sees stderr as it comes.
 * Shared by the command tests.
 */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

export const bin = process.env["EFFECT_STARROCKS_BIN"] ??
  fileURLToPath(new URL("../bin/effect-starrocks.mjs", import.meta.url))

export interface Run {
  readonly code: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
}

export const runCli = (
  args: ReadonlyArray<string>,
  options: {
    readonly env?: Record<string, string>
    readonly stopWhen?: () => NodeJS.Signals | undefined
    readonly onStderr?: (text: string) => void
  } = {}
) =>
  Effect.async<Run>((resume) => {
    const child = spawn(process.execPath, [bin, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...options.env }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()))
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString()
      options.onStderr?.(stderr)
    })
    const poll = options.stopWhen === undefined ? undefined : setInterval(() => {
      const signal = options.stopWhen!()
      if (signal !== undefined) {
        clearInterval(poll)
        child.kill(signal)
      }
    }, 100)
    child.once("exit", (code, signal) => {
      clearInterval(poll)
      resume(Effect.succeed({ code, signal, stdout, stderr }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })
