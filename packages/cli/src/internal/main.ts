/**
 * How the `effect-starrocks` command runs a command's effect (bin.ts): as node's main program, ended at once when
 * the effect has ended.
 *
 * @internal
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import type * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

/**
 * Ends the process with `code`: the command's fiber has ended, so its scopes are closed (sockets, files, the metrics
 * server, a checkpoint written with fsync) and what it printed was written (on Linux, writes to a file, pipe or
 * terminal are synchronous; anything still queued, as it can be elsewhere, leaves the exit to node, which waits for
 * it). Exiting at once skips what node does at the natural end of a program (its handles closed one by one, the
 * heap torn down): 5-10 ms of a `load` (docs/cli.md, "The start"). A `load` that ran through calls it as soon as its
 * summary is printed (`runLoad`'s `done`), before its scope closes.
 */
export const exitNow = (code: number): void => {
  process.exitCode = code
  if (process.stdout.writableLength === 0 && process.stderr.writableLength === 0) process.exit(code)
}

/** Runs `effect` as the command: exit code 1 on a failure, else `process.exitCode` (load sets 130 on SIGINT), else 0. */
export const runMain = <E, A>(effect: Effect.Effect<A, E>): void =>
  NodeRuntime.runMain(effect, {
    // the commands print their own errors
    disableErrorReporting: true,
    // a command that stopped on SIGINT sets process.exitCode (load: 130); the default teardown would exit 0
    teardown: (exit) =>
      exitNow(
        Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
          ? 1
          : typeof process.exitCode === "number"
          ? process.exitCode
          : 0
      )
  })
