/**
 * The `effect-starrocks` command line.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import { describe } from "./Commands/Describe.js"
import { emulator } from "./Commands/Emulator.js"

const root = Command.make("effect-starrocks").pipe(
  Command.withDescription("Effect-TS StarRocks tools: a StarRocks HTTP emulator for tests, a table's description"),
  Command.withSubcommands([emulator, describe])
)

const cli = Command.run(root, { name: "effect-starrocks", version: "0.1.0" })

cli(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
