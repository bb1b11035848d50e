/**
 * The installed `effect-starrocks` command's file (`bin/effect-starrocks.cjs` of the packed cli): written by
 * scripts/pack.ts into the package and by the loader's benchmark (packages/cli/bench/loader.ts) next to its bundle,
 * so that the benchmark runs the command exactly as a user's `effect-starrocks` starts.
 *
 * Why a shell script that is also JavaScript: node 20 reads and parses the file `NODE_EXTRA_CA_CERTS` names at every
 * start, before any of the command's code, whether the process ever opens a TLS connection or not. Where it names
 * the system's whole bundle (as on the machine of docs/benchmark.md, session 17: 144 certificates, and as in many
 * corporate networks), `node -e 0` took 0.108 s instead of 0.04-0.06 s, and the whole start of `load` of a one-row
 * file 0.19 s. So the file starts as a POSIX sh script (`#!/bin/sh`): for `load`, it moves the variable aside (to
 * `EFFECT_STARROCKS_EXTRA_CA_CERTS`) and runs node on the same file, which is then JavaScript: line 2 is a string
 * statement and a comment to it, line 3 on are never read by sh (`exec` replaced it). `load` reads those certificates
 * itself, only for an https load URL (packages/cli/src/internal/load/run.ts, `extraCa`). Only `load` moves it:
 * `describe` and `labels` connect with mysql2, whose TLS relies on node's own handling of the variable. Run with
 * `node <file>` instead (as on Windows, where npm's shim may not find sh), it is the same command with the variable
 * left as it is. For `load` it also sets `MALLOC_ARENA_MAX` (`mallocArenaMax`) when the environment does not.
 *
 * `npx tsx packages/cli/scripts/launcher.ts FILE COMMAND MAIN` writes it (`writeLauncher`), as scripts/pack.ts does.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Url from "node:url"

/** The environment variable that the launcher moves `NODE_EXTRA_CA_CERTS` to, for `load`. */
export const extraCaVariable = "EFFECT_STARROCKS_EXTRA_CA_CERTS"

/**
 * `MALLOC_ARENA_MAX` for `load`, unless the environment sets it: glibc's malloc gives each thread that allocates an
 * arena of its own (up to 8 a core), and node's background threads (V8's helpers) touched more of them the longer a
 * load ran: about 1 MB of such arenas at 1 GiB, 5 MB at 4 GiB, resident until the process ends. Two arenas hold what
 * they allocate (docs/cli.md, "Memory flat in the file's size"). Other C libraries ignore the variable.
 */
export const mallocArenaMax = 2

/**
 * The launcher's text: `command`'s name (for the comment) and `main`, what it requires (relative to the file, e.g.
 * `../bundle/effect-starrocks.cjs`). node runs `"$0"`: npm's `.bin` entry is a symbolic link, and node resolves the
 * main module's real path, so `require` is relative to the real file.
 */
export const launcherSource = (command: string, main: string): string =>
  `#!/bin/sh
':' //; if [ "$1" = load ]; then if [ -n "$NODE_EXTRA_CA_CERTS" ]; then ${extraCaVariable}=$NODE_EXTRA_CA_CERTS; export ${extraCaVariable}; unset NODE_EXTRA_CA_CERTS; fi; MALLOC_ARENA_MAX=\${MALLOC_ARENA_MAX:-${mallocArenaMax}}; export MALLOC_ARENA_MAX; fi; exec node "$0" "$@"
// The \`${command}\` command: the bundle, run by plain node (packages/cli/scripts/bundle.ts). Line 2 is sh to sh and
// a string and a comment to node: for \`load\`, it moves NODE_EXTRA_CA_CERTS aside to ${extraCaVariable} (node 20
// parses that file at every start: with the system's 144 certificates, 0.108 s of a 0.19 s start, against
// 0.04-0.06 s without it), and \`load\` trusts those certificates itself for an https load URL; and it sets
// MALLOC_ARENA_MAX=${mallocArenaMax} unless set, so that malloc's arenas do not grow with a long load
// (packages/cli/scripts/launcher.ts).
require(${JSON.stringify(main)})
`

/** Writes the launcher (`launcherSource`) to `file`, executable. */
export const writeLauncher = (file: string, command: string, main: string): void => {
  Fs.writeFileSync(file, launcherSource(command, main))
  Fs.chmodSync(file, 0o755)
}

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === Url.fileURLToPath(import.meta.url)) {
  const [file, command, main] = process.argv.slice(2)
  if (file === undefined || command === undefined || main === undefined) {
    throw new Error("usage: launcher.ts FILE COMMAND MAIN")
  }
  writeLauncher(Path.resolve(file), command, main)
}
