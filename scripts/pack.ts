/**
 * `npm run pack`: the three packages as tarballs that install outside this repository and run under plain node.
 *
 * In the repository the packages' `exports` point at their TypeScript sources (tsx, vitest and tsc read them as
 * they are, with no build step between an edit and a run). A tarball must not: this script builds each package
 * (`npm run build`: ESM JavaScript, `.d.ts` and source maps in `packages/<name>/dist`), then stages it in
 * `build/pack/<name>` with a `package.json` whose `exports` point at `dist` (`types` and `default` per entry),
 * whose `bin` runs `dist` with plain node (or, for a package with a `scripts/bundle.ts`, the cli, the bundle that
 * script writes into `bundle/`, with its V8 code cache: a start then reads three files instead of ~750 modules and
 * compiles little; the bin is then packages/cli/scripts/launcher.ts's sh/JavaScript launcher), and without the in-repo
 * launcher's dependency on tsx, and packs it
 * there with `npm pack`. Prints one JSON line: `{"tarballs":[...]}` (absolute paths).
 *
 * `npx tsx scripts/pack.ts [--out DIR] [--no-build]`
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Url from "node:url"

const root = Path.resolve(Path.dirname(Url.fileURLToPath(import.meta.url)), "..")
const args = process.argv.slice(2)
const outIndex = args.indexOf("--out")
const out = Path.resolve(outIndex >= 0 ? args[outIndex + 1]! : Path.join(root, "build", "pack"))
const packages = ["testkit", "sink", "cli"] as const

type Exports = string | null | { readonly [k: string]: Exports }

/** `./src/X.ts` → `{ types: ./dist/X.d.ts, default: ./dist/X.js }`; other targets stay as they are. */
export const toDist = (target: Exports): Exports => {
  if (typeof target === "string") {
    const m = /^\.\/src\/(.+)\.ts$/.exec(target)
    return m === null ? target : { types: `./dist/${m[1]}.d.ts`, default: `./dist/${m[1]}.js` }
  }
  if (target === null) return null
  return Object.fromEntries(Object.entries(target).map(([k, v]) => [k, toDist(v)]))
}

const run = (command: string, argv: ReadonlyArray<string>, cwd: string): string =>
  ChildProcess.execFileSync(command, argv, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })

if (!args.includes("--no-build")) run("npm", ["run", "build", "--silent"], root)
Fs.mkdirSync(out, { recursive: true })
const tarballs: Array<string> = []
for (const name of packages) {
  const dir = Path.join(root, "packages", name)
  const manifest = JSON.parse(Fs.readFileSync(Path.join(dir, "package.json"), "utf8")) as Record<string, any>
  if (!Fs.existsSync(Path.join(dir, "dist", "index.js"))) throw new Error(`packages/${name}/dist is not built`)
  const stage = Path.join(root, "build", "pack", name)
  Fs.rmSync(stage, { recursive: true, force: true })
  Fs.mkdirSync(stage, { recursive: true })
  Fs.cpSync(Path.join(dir, "dist"), Path.join(stage, "dist"), { recursive: true })
  // the source maps point at ../src: ship the sources they name
  Fs.cpSync(Path.join(dir, "src"), Path.join(stage, "src"), { recursive: true })
  for (const doc of ["README.md", "LICENSE"]) {
    const from = Fs.existsSync(Path.join(dir, doc)) ? Path.join(dir, doc) : Path.join(root, doc)
    if (Fs.existsSync(from)) Fs.copyFileSync(from, Path.join(stage, doc))
  }
  const staged: Record<string, any> = { ...manifest, exports: toDist(manifest["exports"]) }
  if (manifest["bin"] !== undefined) {
    Fs.mkdirSync(Path.join(stage, "bin"))
    const bundler = Path.join(dir, "scripts", "bundle.ts")
    const main = Fs.existsSync(bundler)
      ? Path.relative(
        Path.join(stage, "bin"),
        run(process.execPath, ["--import", "tsx", bundler, Path.join(stage, "bundle")], root).trim()
      )
      : "../dist/bin.js"
    for (const [command, file] of Object.entries(manifest["bin"] as Record<string, string>)) {
      // the bundle's entry is CommonJS (it compiles the bundle with its V8 code cache): so is its bin, which then
      // starts without node's ES module loader
      const script = Fs.existsSync(bundler) ? Path.basename(file).replace(/\.m?js$/, ".cjs") : Path.basename(file)
      if (Fs.existsSync(bundler)) {
        // the sh/JavaScript launcher that starts `load` without node's parse of NODE_EXTRA_CA_CERTS (the loader's
        // benchmark writes the same file with the same function: packages/cli/scripts/launcher.ts, `writeLauncher`)
        run(process.execPath, [
          "--import",
          "tsx",
          Path.join(dir, "scripts", "launcher.ts"),
          Path.join(stage, "bin", script),
          command,
          main
        ], root)
      } else {
        Fs.writeFileSync(
          Path.join(stage, "bin", script),
          `#!/usr/bin/env node\n// The \`${command}\` command: the built JavaScript, run by plain node.\n` +
            `await import(${JSON.stringify(main)})\n`,
          { mode: 0o755 }
        )
      }
      staged["bin"] = { ...staged["bin"], [command]: `./bin/${script}` }
    }
  }
  if (staged["dependencies"] !== undefined) {
    const { tsx: _tsx, ...rest } = staged["dependencies"] as Record<string, string>
    staged["dependencies"] = rest
  }
  Fs.writeFileSync(Path.join(stage, "package.json"), JSON.stringify(staged, null, 2) + "\n")
  const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", out], stage)) as Array<
    { readonly filename: string }
  >
  tarballs.push(Path.join(out, packed[0]!.filename))
}
console.log(JSON.stringify({ tarballs }))
