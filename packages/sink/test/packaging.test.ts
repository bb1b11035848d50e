/**
 * What the package loads. Each check runs a child `node` (through tsx, as the package is used from source) with an
 * ESM `resolve` hook that records every package a module of packages/sink/src imports, and refuses the ones a test
 * forbids; the child imports the modules and prints their export names.
 *
 * - The package root (`@effect-starrocks/sink`) loads no optional dependency: `@effect/sql`, `@effect/sql-mysql2`,
 *   `@effect/experimental`, `mysql2` and the compression codecs (`lz4-napi`, `zstd-napi`) are refused
 *   and the root still loads.
 * - The same hook refuses the SQL submodules, so the check above can fail.
 * - With `jdbc-url` the sink loads the MySQL reader when it starts; refused, it fails with a `TableSchemaError`.
 * - Every package a module of src loads is declared in packages/sink/package.json.
 * - In every package of the workspace, every package that a file of src (and bin) imports, type-only imports
 *   included, is declared in that package's package.json (read statically, as TypeScript reads imports).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import ts from "typescript"

const packageDir = fileURLToPath(new URL("..", import.meta.url))
const srcDir = Path.join(packageDir, "src")
const manifest = JSON.parse(Fs.readFileSync(Path.join(packageDir, "package.json"), "utf8")) as {
  readonly dependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
  readonly peerDependenciesMeta?: Record<string, { readonly optional?: boolean }>
  readonly optionalDependencies?: Record<string, string>
}
/** The compression codecs (internal/client/compression.ts): optional dependencies imported when a load asks. */
const codecPackages = ["lz4-napi", "zstd-napi"]
const optional = [
  "@effect/sql",
  "@effect/sql-mysql2",
  "@effect/sql-pg",
  "@effect/experimental",
  "mysql2",
  "pg",
  ...codecPackages
]

const hook = `
import { appendFileSync } from "node:fs"
import { isBuiltin } from "node:module"
const forbid = (process.env.PACKAGING_FORBID ?? "").split(",").filter((s) => s !== "")
const log = process.env.PACKAGING_LOG
const src = process.env.PACKAGING_SRC
export async function resolve(specifier, context, next) {
  if (!isBuiltin(specifier) && !/^(\\.|\\/|#|[a-z]+:)/.test(specifier)) {
    const parts = specifier.split("/")
    const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]
    if (forbid.includes(name)) {
      throw new Error("packaging test: " + name + " must not be loaded (" + specifier + " from " + context.parentURL + ")")
    }
    if (log && context.parentURL?.startsWith(src)) appendFileSync(log, name + "\\n")
  }
  return next(specifier, context)
}
`

const main = `
const modules = JSON.parse(process.env.PACKAGING_MODULES)
const out = {}
for (const m of modules) out[m] = Object.keys(await import(m)).sort()
process.stdout.write(JSON.stringify(out))
`

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** Packages imported by modules of packages/sink/src, each once. */
  readonly loaded: ReadonlyArray<string>
}

/** Imports `modules` (paths relative to src) in a child node, `forbid` refused. */
const run = (modules: ReadonlyArray<string>, forbid: ReadonlyArray<string>): Effect.Effect<Run> =>
  Effect.acquireUseRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "sink-packaging-"))),
    (dir) =>
      Effect.async<Run>((resume) => {
        Fs.writeFileSync(Path.join(dir, "hook.mjs"), hook)
        Fs.writeFileSync(
          Path.join(dir, "register.mjs"),
          `import { register } from "node:module"\nregister("./hook.mjs", import.meta.url)\n`
        )
        Fs.writeFileSync(Path.join(dir, "main.mjs"), main)
        const log = Path.join(dir, "loaded.txt")
        Fs.writeFileSync(log, "")
        const child = ChildProcess.execFile(
          process.execPath,
          [
            "--import",
            "tsx",
            "--import",
            pathToFileURL(Path.join(dir, "register.mjs")).href,
            Path.join(dir, "main.mjs")
          ],
          {
            cwd: packageDir,
            env: {
              ...process.env,
              PACKAGING_FORBID: forbid.join(","),
              PACKAGING_LOG: log,
              PACKAGING_SRC: pathToFileURL(srcDir).href + "/",
              PACKAGING_MODULES: JSON.stringify(modules.map((m) => pathToFileURL(Path.join(srcDir, m)).href))
            },
            timeout: 60_000
          },
          (error, stdout, stderr) =>
            resume(Effect.sync(() => ({
              code: error === null ? 0 : typeof error.code === "number" ? error.code : null,
              stdout,
              stderr,
              loaded: [...new Set(Fs.readFileSync(log, "utf8").split("\n").filter((s) => s !== ""))].sort()
            })))
        )
        return Effect.sync(() => child.kill())
      }),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )

/** Every module of src outside internal/, as a path relative to src. */
const publicModules = (): ReadonlyArray<string> =>
  (Fs.readdirSync(srcDir, { recursive: true }) as Array<string>)
    .filter((f) => f.endsWith(".ts") && !f.startsWith(`internal${Path.sep}`))
    .map((f) => f.split(Path.sep).join("/"))
    .sort()

describe("packaging", () => {
  it.effect(
    "the package root loads with every optional dependency refused, and imports none of them",
    () =>
      Effect.gen(function*() {
        const result = yield* run(["index.ts"], optional)
        assert.strictEqual(result.code, 0, result.stderr)
        const keys = (JSON.parse(result.stdout) as Record<string, Array<string>>)[
          pathToFileURL(Path.join(srcDir, "index.ts")).href
        ]!
        for (const name of ["Checkpointer", "LabelStore", "StarRocksSink", "TableSchema"]) assert.include(keys, name)
        for (const name of optional) assert.notInclude(result.loaded, name)
        assert.include(result.loaded, "effect")
      }),
    90_000
  )

  it.effect(
    "the same hook refuses the SQL submodules (they load @effect/sql, @effect/sql-mysql2)",
    () =>
      Effect.gen(function*() {
        for (const m of ["LabelStore/Sql.ts", "Checkpointer/Sql.ts", "TableSchema/Mysql.ts"]) {
          const result = yield* run([m], optional)
          assert.notStrictEqual(result.code, 0, m)
          assert.match(result.stderr, /packaging test: @effect\/(sql|sql-mysql2|experimental) must not be loaded/, m)
        }
      }),
    90_000
  )

  it.effect(
    "with jdbc-url, the MySQL reader is loaded when the sink starts; refused, the sink fails naming the table",
    () =>
      Effect.gen(function*() {
        const fixture = "../test/fixtures/packaging/jdbcSink.ts"
        const errorOf = (result: Run) => {
          assert.strictEqual(result.code, 0, result.stderr)
          return JSON.parse(result.stdout.split("\n")[0]!) as Record<string, unknown>
        }
        // Installed: the reader runs and fails to connect (nothing listens on port 1).
        const reached = yield* run([fixture], [])
        const connect = errorOf(reached)
        assert.include(reached.loaded, "@effect/sql-mysql2")
        assert.strictEqual(connect._tag, "TableSchemaError")
        assert.strictEqual(connect.database, "shop")
        assert.strictEqual(connect.table, "orders")
        assert.match(String(connect.reason), /^cannot read information_schema\.COLUMNS/)
        // Refused: a TableSchemaError that says what to install, before any load.
        const refused = yield* run([fixture], optional)
        const missing = errorOf(refused)
        assert.strictEqual(missing._tag, "TableSchemaError")
        assert.strictEqual(missing.database, "shop")
        assert.strictEqual(missing.table, "orders")
        assert.match(
          String(missing.reason),
          /^jdbc-url needs the optional dependencies @effect\/sql, @effect\/sql-mysql2/
        )
        assert.match(String(missing.reason), /must not be loaded/)
        for (const e of [connect, missing]) assert.notInclude(JSON.stringify(e), "secret-pw")
      }),
    90_000
  )

  it.effect("every package a module loads is declared in packages/sink/package.json", () =>
    Effect.gen(function*() {
      const modules = publicModules()
      assert.includeMembers([...modules], [
        "index.ts",
        "LabelStore/FileSystem.ts",
        "LabelStore/Sql.ts",
        "TableSchema/Mysql.ts"
      ])
      const result = yield* run(modules, [])
      assert.strictEqual(result.code, 0, result.stderr)
      assert.includeMembers([...result.loaded], ["effect", "@effect/platform", "@effect/sql", "@effect/sql-mysql2"])
      const declared = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]
      const undeclared = result.loaded.filter((name) => !declared.includes(name))
      assert.deepStrictEqual(undeclared, [])
      // The optional ones are optional peers, so a user of the root needs none of them.
      for (const name of ["@effect/sql", "@effect/sql-mysql2", "@effect/sql-pg", "@effect/experimental"]) {
        assert.isTrue(manifest.peerDependenciesMeta?.[name]?.optional === true, name)
      }
    }), 90_000)

  it("every package each workspace package imports (src, bin; type-only included) is declared in its package.json", () => {
    const packagesDir = Path.join(packageDir, "..")
    const undeclared: Array<string> = []
    const seen: Array<string> = []
    for (const name of Fs.readdirSync(packagesDir)) {
      const dir = Path.join(packagesDir, name)
      if (!Fs.existsSync(Path.join(dir, "package.json"))) continue
      const pkg = JSON.parse(Fs.readFileSync(Path.join(dir, "package.json"), "utf8")) as typeof manifest & {
        readonly name: string
      }
      const declared = new Set([
        pkg.name,
        ...Object.keys(pkg.dependencies ?? {}),
        ...Object.keys(pkg.peerDependencies ?? {}),
        ...Object.keys(pkg.optionalDependencies ?? {})
      ])
      for (const sub of ["src", "bin"]) {
        if (!Fs.existsSync(Path.join(dir, sub))) continue
        for (const file of Fs.readdirSync(Path.join(dir, sub), { recursive: true }) as Array<string>) {
          if (!/\.(ts|mjs)$/.test(file)) continue
          const text = Fs.readFileSync(Path.join(dir, sub, file), "utf8")
          for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
            if (/^(\.|\/|[a-z]+:)/.test(fileName)) continue
            const parts = fileName.split("/")
            const imported = fileName.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!
            seen.push(`${name}: ${imported}`)
            if (!declared.has(imported)) undeclared.push(`packages/${name}/${sub}/${file} imports ${imported}`)
          }
        }
      }
    }
    assert.includeMembers(seen, [
      "sink: effect",
      "testkit: @effect/sql",
      "cli: @effect/cli",
      "cli: tsx"
    ])
    // the codecs are optional dependencies: installed with the package where their platform build exists, and
    // imported only by a load that asks for them
    for (const name of codecPackages) assert.isString(manifest.optionalDependencies?.[name], name)
    assert.deepStrictEqual(undeclared, [])
  })
})
