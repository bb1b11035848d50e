/**
 * The `effect-starrocks` command line.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { describe } from "./Commands/Describe.js"
import { emulator } from "./Commands/Emulator.js"
import { labels } from "./Commands/Labels.js"
import { load } from "./Commands/Load.js"

const root = Command.make("effect-starrocks").pipe(
  Command.withDescription(
    "Effect-TS StarRocks tools: a file loader, a table's description, recovery tooling for labels, and a " +
      "StarRocks HTTP emulator for tests"
  ),
  Command.withSubcommands([load, describe, labels, emulator])
)

const cli = Command.run(root, { name: "effect-starrocks", version: "0.1.0" })

// @effect/cli stops reading options at a lone "-": `load - --table db.t` names stdin by its path instead
const argv = process.argv[2] === "load"
  ? process.argv.map((a, i) => i > 2 && a === "-" ? "/dev/stdin" : a)
  : process.argv

cli(argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    // a command that stopped on SIGINT sets process.exitCode (load: 130); the default teardown would exit 0
    teardown: (exit, onExit) =>
      onExit(
        Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
          ? 1
          : typeof process.exitCode === "number"
          ? process.exitCode
          : 0
      )
  })
)
