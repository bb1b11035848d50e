/**
 * The bundled command's `load` part (packages/cli/scripts/bundle.ts bundles it apart from bin.ts, the whole
 * command): a plain `load` command line (internal/load/fastArgs.ts) runs from this smaller file, which a start reads
 * and compiles faster; any other command line goes to the whole command, which the bundle's entry gives as a global
 * function. Nothing but the command line's parser is evaluated before that choice.
 *
 * @internal
 */
import * as FastArgs from "./internal/load/fastArgs.js"

/** Where the bundle's entry puts the function that runs the whole command (scripts/bundle.ts, `entrySource`). */
export const wholeCommand = Symbol.for("effect-starrocks/bin/whole")

const plain = process.argv[2] === "load" ? FastArgs.parse(FastArgs.commandLine(process.argv).slice(3)) : undefined
if (plain !== undefined) {
  void Promise.all([import("./internal/load/run.js"), import("./internal/main.js")]).then(([run, main]) =>
    main.runMain(run.runLoad(plain, () => main.exitNow(0)))
  )
} else {
  const whole = (globalThis as { [wholeCommand]?: () => void })[wholeCommand]
  if (whole === undefined) {
    throw new Error("loadBin.ts runs from the bundle's entry (scripts/bundle.ts), which gives the whole command")
  }
  whole()
}
