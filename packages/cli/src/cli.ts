/**
 * The `effect-starrocks` command line as `@effect/cli` parses it: every command, its help, `--version`, the
 * wizard. bin.ts imports it for every command line that `internal/load/fastArgs.ts` does not read.
 *
 * @internal
 */
import * as Command from "@effect/cli/Command"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Effect from "effect/Effect"
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

// the services @effect/cli needs (its CliApp.Environment), not all of NodeContext.layer: that one also builds a
// command executor and a worker manager that no command uses, whose modules (WorkerError's schema class among them)
// every start would load and evaluate
const environment = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer)

/** The command line `argv` (as `process.argv`) run by `@effect/cli`. */
export const command = (argv: ReadonlyArray<string>) => cli(argv).pipe(Effect.provide(environment))
