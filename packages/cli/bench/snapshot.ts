/**
 * The loader as a V8 startup snapshot, an experiment of session 17 (docs/cli.md, "A start from a snapshot
 * (session 17)"; docs/benchmark.md, session 17), not shipped: `npx tsx packages/cli/bench/snapshot.ts OUTDIR`
 * writes the bundled command (scripts/bundle.ts, `bundle`) and beside it `effect-starrocks.load.snapshot.cjs`
 * (bench/snapshotLoad.ts bundled with the loader's options) and `effect-starrocks.load.blob`, the heap after that
 * file's evaluation, made by the running node (`node --snapshot-blob BLOB --build-snapshot FILE`), and prints the
 * blob's path. A start: `node --snapshot-blob OUTDIR/effect-starrocks.load.blob load FILE... --table ...`.
 *
 * A blob is node's own: node refuses one made by another build of node.
 */
import * as Esbuild from "esbuild"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Module from "node:module"
import * as Path from "node:path"
import * as Url from "node:url"
import { buildOptions, bundle, entryName } from "../scripts/bundle.js"

const here = Path.dirname(Url.fileURLToPath(import.meta.url))
const repository = Path.resolve(here, "../../..")

/** The snapshot's script (bench/snapshotLoad.ts bundled), evaluated when the blob is built. */
export const snapshotScriptName = "effect-starrocks.load.snapshot.cjs"

/** The blob: node's heap after the script's evaluation. */
export const blobName = "effect-starrocks.load.blob"

/**
 * Node's built-in modules that node 20 cannot put in a snapshot: node:http (its evaluation calls `toSorted`, which
 * the builder's context lacks, and with that shimmed its parser's binding leaves global handles: "Check failed:
 * handle_checker.CheckGlobalAndEternalHandles()"), node:https (which requires it), and node:tls ("Unknown external
 * reference"). The loader evaluates none of them before its first request, only takes their namespace: the
 * snapshot's script gets, for each, an object with one getter per export that requires the module at its first
 * read, at run time.
 */
export const lazyBuiltins: ReadonlyArray<string> = ["node:http", "node:https", "node:tls"]

/** A `require` that gives each of `modules` as getters of its exports (their names read here, in this process). */
const lazyBuiltinsShim = (modules: ReadonlyArray<string>): string => {
  const require = Module.createRequire(import.meta.url)
  const names = Object.fromEntries(modules.map((id) => [id, Object.getOwnPropertyNames(require(id))]))
  return `var require = ((builtin, names) => (id) => {
  const own = names[id];
  if (own === undefined) return builtin(id);
  let loaded;
  const lazy = {};
  for (const name of own) Object.defineProperty(lazy, name, { enumerable: true, get: () => (loaded ??= builtin(id))[name] });
  return lazy;
})(require, ${JSON.stringify(names)});`
}

/**
 * Bundles bench/snapshotLoad.ts into `outdir` (the options of the loader's bundle, one entry) and builds the blob with
 * `node` (default: this process's). The bundled command (its entry, for a command line the loader does not read)
 * must be in `outdir` too (`snapshot` makes both). Returns the blob's path.
 */
export const buildBlob = async (outdir: string, node: string = process.execPath): Promise<string> => {
  const options = buildOptions(outdir)
  await Esbuild.build({
    ...options,
    // node's snapshot builder runs the file with `require` (node's built-in modules only), `__filename` and
    // `__dirname`, without `module` or `exports`
    format: "iife",
    // what node 20 cannot put in a snapshot (`lazyBuiltins`) is required on first use, at run time
    banner: { js: `${options.banner?.js ?? ""}\n${lazyBuiltinsShim(lazyBuiltins)}` },
    entryPoints: {
      [snapshotScriptName.replace(/\.cjs$/, "")]: Path.join(repository, "packages/cli/bench/snapshotLoad.ts")
    }
  })
  const blob = Path.join(outdir, blobName)
  const { NODE_OPTIONS: _options, ...env } = process.env
  await new Promise<void>((resolve, reject) =>
    ChildProcess.execFile(
      node,
      ["--snapshot-blob", blob + ".tmp", "--build-snapshot", Path.join(outdir, snapshotScriptName)],
      { env, encoding: "utf8" },
      (error, _stdout, stderr) =>
        error === null
          ? resolve()
          : reject(new Error(`building the snapshot failed: ${error.message}\n${stderr.slice(-4000)}`))
    )
  )
  Fs.renameSync(blob + ".tmp", blob)
  return blob
}

/** The bundled command (scripts/bundle.ts) and the loader's snapshot beside it. Returns the blob's path. */
export const snapshot = async (outdir: string): Promise<string> => {
  await bundle(outdir)
  if (!Fs.existsSync(Path.join(outdir, entryName))) throw new Error(`no ${entryName} in ${outdir}`)
  return buildBlob(outdir)
}

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === Url.fileURLToPath(import.meta.url)) {
  const outdir = process.argv[2]
  if (outdir === undefined) throw new Error("usage: snapshot.ts OUTDIR")
  console.log(await snapshot(Path.resolve(outdir)))
}
