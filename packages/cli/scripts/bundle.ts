/**
 * The `effect-starrocks` command as an esbuild bundle: what `npm run pack` ships as the installed command
 * (scripts/pack.ts) and what the loader's benchmark runs (packages/cli/bench/loader.ts).
 *
 * Why a bundle: unbundled, a start of the command reads, parses and compiles about 750 modules of 5 MB (all of
 * `effect`, fast-check through `effect/Schema`, `@effect/cli`, ...), about three times the CPU time of the bundle.
 * The bundle is split at the dynamic imports (the testkit for `emulator`, mysql2 for `describe`), so that `load`
 * never reads those.
 *
 * Why a plugin: the sources import Effect's modules from the package root (`import { Effect, Stream } from
 * "effect"`), and esbuild keeps every export of a module imported that way (it builds the namespace object), so a
 * bundle would hold all of `Effect`, `Stream`, `Schema`, ... whether used or not. The plugin rewrites each such
 * import of this repository's sources to the modules' own paths (`import * as Effect from "effect/Effect"`), the
 * same bindings, which esbuild tree-shakes export by export.
 *
 * `npx tsx packages/cli/scripts/bundle.ts OUTDIR` writes `OUTDIR/effect-starrocks.mjs` (the entry) and its chunks.
 */
import * as Esbuild from "esbuild"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Url from "node:url"

const here = Path.dirname(Url.fileURLToPath(import.meta.url))
const repository = Path.resolve(here, "../../..")

/** The entry file of the bundle (`effect-starrocks.mjs` in the output directory). */
export const entryName = "effect-starrocks.mjs"

/**
 * `import { A, B as C, type D } from "effect"` (at the start of a line, one or several lines) as
 * `import * as A from "effect/A"; import * as C from "effect/B"`: the same bindings, one module each. The
 * root's lower-case exports (`pipe`, `flow`, ...) are `effect/Function`'s. `import type` lines stay as they are.
 */
export const deepImports = (source: string): string =>
  source.replace(/^import\s+\{([^}]*)\}\s*from\s*"effect"/gm, (_all, members: string) => {
    const out: Array<string> = []
    for (const member of members.split(",").map((m) => m.trim()).filter((m) => m.length > 0)) {
      if (member.startsWith("type ")) continue
      const [name, alias] = member.split(/\s+as\s+/).map((s) => s.trim()) as [string, string | undefined]
      out.push(
        /^[A-Z]/.test(name)
          ? `import * as ${alias ?? name} from "effect/${name}"`
          : `import { ${name}${alias === undefined ? "" : ` as ${alias}`} } from "effect/Function"`
      )
    }
    // an import of types only: nothing at run time
    return out.length === 0 ? "" : out.join("; ")
  })

const deepImportsPlugin: Esbuild.Plugin = {
  name: "effect-deep-imports",
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      if (args.path.includes(`${Path.sep}node_modules${Path.sep}`)) return undefined
      return { contents: deepImports(Fs.readFileSync(args.path, "utf8")), loader: "ts" }
    })
  }
}

/**
 * Bundles packages/cli/src/bin.ts into `outdir`: ESM for node 20, split at the dynamic imports, `require` defined
 * for the CommonJS packages inside (mysql2). Returns the entry's path.
 */
export const bundle = async (outdir: string): Promise<string> => {
  await Esbuild.build(buildOptions(outdir))
  return Path.join(outdir, entryName)
}

/** The esbuild options of `bundle` (a caller may add `metafile: true` to see what the bundle holds). */
export const buildOptions = (outdir: string): Esbuild.BuildOptions & { readonly outdir: string } => ({
  entryPoints: { "effect-starrocks": Path.join(repository, "packages/cli/src/bin.ts") },
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outdir,
  outExtension: { ".js": ".mjs" },
  logLevel: "warning",
  plugins: [deepImportsPlugin],
  banner: {
    js:
      "import { createRequire as __effectStarrocksCreateRequire } from 'module'; const require = __effectStarrocksCreateRequire(import.meta.url);"
  }
})

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === Url.fileURLToPath(import.meta.url)) {
  const outdir = process.argv[2]
  if (outdir === undefined) throw new Error("usage: bundle.ts OUTDIR")
  console.log(await bundle(Path.resolve(outdir)))
}
