/**
 * The `effect-starrocks` command line.
 *
 * A plain `load` command line (files, then `--flag value` pairs of its own flags) is read by
 * `internal/load/fastArgs.ts` and run without evaluating `@effect/cli` (cli.ts), which took about a fifth of a
 * `load` start; any other command line, and a `load` one that is not plain (help, `--flag=value`, a value to check),
 * goes to `@effect/cli`, which parses it to the same options or reports what is wrong with it.
 *
 * @since 0.1.0
 */
import * as FastArgs from "./internal/load/fastArgs.js"
import { runLoad } from "./internal/load/run.js"
import { exitNow, runMain } from "./internal/main.js"

const argv = FastArgs.commandLine(process.argv)

const plain = argv[2] === "load" ? FastArgs.parse(argv.slice(3)) : undefined
if (plain !== undefined) {
  runMain(runLoad(plain, () => exitNow(0)))
} else {
  // evaluated only here: `load` with a plain command line never evaluates @effect/cli
  void import("./cli.js").then((cli) => runMain(cli.command(argv)))
}
