/**
 * The `effect-starrocks` command line.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
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

// the services @effect/cli needs (its CliApp.Environment), not all of NodeContext.layer: that one also builds a
// command executor and a worker manager that no command uses, whose modules (WorkerError's schema class among them)
// every start would load and evaluate
const environment = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer)

cli(argv).pipe(
  Effect.provide(environment),
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
