/**
 * The `effect-starrocks` command as esbuild bundles: what `npm run pack` ships as the installed command
 * (scripts/pack.ts) and what the loader's benchmark runs (packages/cli/bench/loader.ts).
 *
 * Why a bundle: unbundled, a start of the command reads, parses and compiles about 750 modules of 5 MB (all of
 * `effect`, fast-check through `effect/Schema`, `@effect/cli`, ...), about three times the CPU time of the bundle.
 *
 * Why CommonJS files and a code cache: compiling the bundle's functions was about a third of a start's CPU time.
 * Node 20 caches no compiled code for ES modules (`module.enableCompileCache` is node 22's), but `vm.Script` takes
 * V8's code cache (`cachedData`) for a script: each bundle is one CommonJS file, the entry compiles it with the cache
 * that a training run made at bundle time (`train`), and V8 deserializes what that run compiled instead of compiling
 * it again. Modules reached only by `import()` (the testkit for `emulator`, mysql2 for `describe`) are in the file,
 * evaluated only when first imported: `load` never evaluates them.
 *
 * Why two bundles: the whole command (src/bin.ts) is 2.4 MB, most of it `describe`'s and `emulator`'s modules
 * (mysql2, iconv-lite, the testkit) and `@effect/cli`; a start reads all of it and V8 keeps a placeholder for each
 * of its functions, evaluated or not. A `load` command line first goes to the loader alone (src/loadBin.ts, about
 * 0.7 MB), which runs a plain one (src/internal/load/fastArgs.ts) and hands any other to the whole command.
 *
 * Why a plugin: the sources import Effect's modules from the package root (`import { Effect, Stream } from
 * "effect"`), and esbuild keeps every export of a module imported that way (it builds the namespace object), so a
 * bundle would hold all of `Effect`, `Stream`, `Schema`, ... whether used or not. The plugin rewrites each such
 * import of this repository's sources to the modules' own paths (`import * as Effect from "effect/Effect"`), the
 * same bindings, which esbuild tree-shakes export by export.
 *
 * `npx tsx packages/cli/scripts/bundle.ts OUTDIR` writes `OUTDIR/effect-starrocks.cjs` (the entry, which
 * `node OUTDIR/effect-starrocks.cjs ...` runs), the two bundles and their code caches, and prints the entry's path.
 */
import * as Esbuild from "esbuild"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"

const here = Path.dirname(Url.fileURLToPath(import.meta.url))
const repository = Path.resolve(here, "../../..")

/** The entry of the bundled command (in the output directory). */
export const entryName = "effect-starrocks.cjs"

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
 * `effect/Utils` decides at its evaluation whether V8 keeps a function's frame in stack traces by formatting
 * `new Error().stack`: the first stack formatted in a script makes V8 find every line end of the script, about
 * 27 M instructions (10-15 ms) for the bundle at each start. Evaluated by the interpreter, as at every start, the
 * answer is always yes (`true`): the bundle has it as a constant.
 */
export const stackProbe =
  /standard\.effect_internal_function\(\(\) => new Error\(\)\.stack\)\?\.includes\("effect_internal_function"\) === true/

/**
 * `effect/internal/clock` computes at its evaluation the origin of `Clock.currentTimeNanos`, from `performance.now()`
 * on node, and the first read of the global `performance` makes node load `perf_hooks` and its eight internal
 * modules, about 2 ms of every start. On node the clock counts with `process.hrtime`, and `performance.now()` only
 * gave the origin the wall clock's milliseconds (Date.now() × 10^6 at that moment, as here): the bundle evaluates
 * the `performance` clock only where there is no `process.hrtime` (never on node), and takes the origin from
 * `Date.now()`. Both patterns must match, else the module is bundled as it is.
 */
export const clockProbe = {
  performanceClock: /const performanceNowNanos = \/\*#__PURE__\*\/function \(\) \{([\s\S]*?)\n\}\(\);\n/,
  origin: /const origin = \/\*#__PURE__\*\/performanceNowNanos\(\) - /
}

export const lazyClock = (source: string): string =>
  clockProbe.performanceClock.test(source) && clockProbe.origin.test(source)
    ? source
      .replace(
        clockProbe.performanceClock,
        (_all, body: string) =>
          `let performanceClock;\nconst performanceNowNanos = () => (performanceClock ??= function () {${body}\n}())();\n`
      )
      .replace(clockProbe.origin, "const origin = BigInt(Date.now()) * BigInt(1_000_000) - ")
    : source

/**
 * `effect/Schema`'s `makeClass` (behind every `Schema.Class`, `Schema.TaggedError`, ...) derives five schemas of the
 * class when the class is defined (its type side, constructor, encoded side and two surrogates, each an
 * `annotations` call that makes two classes of its own), though only a construction (`new`), the class's `ast`,
 * `toString` or an `is` of another realm's instance reads them. The load path defines about twenty such classes at
 * its start (StarRocksError.ts alone eleven) and constructs one only on a failure. The bundle derives them on first
 * use, once, the same values (docs/benchmark.md, session 15). The block and each of its names must be found, else
 * the module is bundled as it is.
 */
export const classSidesProbe = {
  makeClass: /\nconst makeClass = \(\{[\s\S]*?\n  return klass;\n\};\n/,
  sides:
    /\n  const typeSchema_ = typeSchema\(schema\);\n[\s\S]*?\n  const transformationSurrogate = schema\.annotations\(\{[\s\S]*?\n  \}\);\n/,
  names: ["declarationSurrogate", "typeSide", "constructorSchema", "encodedSide", "transformationSurrogate"]
}

export const lazyClassSides = (source: string): string => {
  const makeClass = classSidesProbe.makeClass.exec(source)?.[0]
  const sides = makeClass === undefined ? undefined : classSidesProbe.sides.exec(makeClass)?.[0]
  if (makeClass === undefined || sides === undefined) return source
  const [head, tail] = makeClass.split(sides) as [string, string]
  const uses = new RegExp(`\\b(${classSidesProbe.names.join("|")})\\b`, "g")
  if (classSidesProbe.names.some((name) => !sides.includes(`const ${name} = `) || !tail.includes(name))) return source
  const lazy = `\n  let sides_;\n  const sides = () => sides_ ??= (() => {${sides}  return { ${
    classSidesProbe.names.join(", ")
  } };\n  })();\n`
  return source.replace(makeClass, () => head + lazy + tail.replace(uses, "sides().$1"))
}

/**
 * `Schema.TaggedError` makes the class's schema (a struct of its fields extended with its `_tag`: three more
 * structs) when the class is defined, and `makeClass` reads it only in what `lazyClassSides` defers (the sides, the
 * class's AST) and in `extend`/`transformOrFail`. The bundle's `TaggedError` gives `makeClass` the schema as a
 * function (`lazySchema`), called on first use, once. Applied after `lazyClassSides` (with which no `schema` is read
 * when a class is defined); every pattern must match, else the module is bundled as it is (without `lazyClassSides`
 * too).
 */
export const taggedSchemaProbe = {
  taggedError:
    /\nexport const TaggedError = identifier => \(tag, fieldsOr, annotations\) => \{\n[\s\S]*?\n  return TaggedErrorClass;\n\};\n/,
  eagerSchema: "\n  const schema = getSchemaFromFieldsOr(fieldsOr);\n",
  classSchema: "\n    schema: extend(schema, Struct(newFields)),\n",
  parameters: "\n  kind,\n  schema\n}) => {\n"
}

export const lazyTaggedSchema = (source: string): string => {
  const taggedError = taggedSchemaProbe.taggedError.exec(source)?.[0]
  const makeClass = classSidesProbe.makeClass.exec(source)?.[0]
  if (
    taggedError === undefined || makeClass === undefined || !makeClass.includes("const sides = () => sides_ ??=") ||
    !taggedError.includes(taggedSchemaProbe.eagerSchema) || !taggedError.includes(taggedSchemaProbe.classSchema) ||
    !makeClass.includes(taggedSchemaProbe.parameters)
  ) return source
  const [head, body] = makeClass.split(taggedSchemaProbe.parameters) as [string, string]
  return source
    .replace(taggedError, () =>
      taggedError
        .replace(taggedSchemaProbe.eagerSchema, "\n")
        .replace(
          taggedSchemaProbe.classSchema,
          "\n    lazySchema: () => extend(getSchemaFromFieldsOr(fieldsOr), Struct(newFields)),\n"
        ))
    .replace(makeClass, () =>
      head + "\n  kind,\n  schema,\n  lazySchema\n}) => {\n  let schemaValue = schema;\n" +
      "  const schemaOf = () => schemaValue ??= lazySchema();\n" + body.replace(/\bschema\b(?!:)/g, "schemaOf()"))
}

/**
 * `Schema.Union(A, B, ...)` reads each member's AST when the union is made, and the AST of a `Schema.Class` (a
 * `Schema.TaggedError`) is derived then, with its side schemas (`lazyClassSides`): StarRocksError.ts's `LoadError`,
 * a union of six error classes, derived all six at every start. The bundle's unions derive their AST on first read
 * (`ast`, `toString`), once; one made with an AST (`annotations`) has it at once. The pattern must match, else the
 * module is bundled as it is.
 */
export const unionAstProbe =
  /\nfunction makeUnionClass\(members, ast = getDefaultUnionAST\(members\)\) \{\n  return class UnionClass extends make\(ast\) \{\n/

export const lazyUnionAst = (source: string): string =>
  source.replace(
    unionAstProbe,
    "\nfunction makeUnionClass(members, ast) {\n  let lazyAst = ast;\n  return class UnionClass extends make(ast) {\n" +
      "    static get ast() {\n      return lazyAst ??= getDefaultUnionAST(members);\n    }\n" +
      "    static toString() {\n      return String(this.ast);\n    }\n"
  )

export const effectUtilsPlugin: Esbuild.Plugin = {
  name: "effect-utils-stack-probe",
  setup(build) {
    build.onLoad({ filter: /[\\/]effect[\\/]dist[\\/]esm[\\/]Utils\.js$/ }, (args) => {
      const source = Fs.readFileSync(args.path, "utf8")
      // a version of effect without the probe (or with another one) is bundled as it is
      return { contents: source.replace(stackProbe, "true"), loader: "js" }
    })
    build.onLoad({ filter: /[\\/]effect[\\/]dist[\\/]esm[\\/]Schema\.js$/ }, (args) => ({
      contents: lazyUnionAst(lazyTaggedSchema(lazyClassSides(Fs.readFileSync(args.path, "utf8")))),
      loader: "js"
    }))
    build.onLoad({ filter: /[\\/]effect[\\/]dist[\\/]esm[\\/]internal[\\/]clock\.js$/ }, (args) => ({
      contents: lazyClock(Fs.readFileSync(args.path, "utf8")),
      loader: "js"
    }))
  }
}

/** The bundle: the whole command in one CommonJS file, which the entry compiles with the code cache. */
export const bundleName = "effect-starrocks.bundle.cjs"

/** The V8 code cache of the bundle, written by a start of the bundled command at bundle time (`train`). */
export const cacheName = "effect-starrocks.bundle.cjs.cache"

/** The loader's bundle (src/loadBin.ts): a plain `load` command line, else the whole command. */
export const loadBundleName = "effect-starrocks.load.cjs"

/** The V8 code cache of the loader's bundle. */
export const loadCacheName = "effect-starrocks.load.cjs.cache"

/**
 * What each bundle file's source is wrapped in (a CommonJS module's function), written into the file at bundle time:
 * the entry compiles the file's text as it reads it. Wrapped by the entry, the 0.7 MB source was copied once more
 * (V8 flattens the concatenation before it compiles), about 150 page faults of a start (docs/benchmark.md, session
 * 14). The code cache is made for, and checked against, that text.
 */
export const wrapperHead = "(function (exports, require, module, __filename, __dirname) {"
export const wrapperTail = "\n})"

/**
 * The entry: reads a bundle, compiles it with `vm.Script` and its code cache as `cachedData` (V8 deserializes the
 * functions compiled when the cache was made instead of parsing and compiling them again), and runs it as a
 * CommonJS module: the loader's bundle for a `load` command line, which runs the whole command (the global function
 * `Symbol.for("effect-starrocks/bin/whole")`) for a command line it does not read; the whole command's bundle for
 * any other. V8 rejects a cache made by another V8 version, with other V8 flags or for another source (its length):
 * it then compiles from the source, as without a cache (`cachedDataRejected`). The bundle and its cache are read into
 * one buffer, one after the other: 0.7 MB less memory touched for the first time, about 180 page faults of a start
 * (docs/benchmark.md, session 14). `EFFECT_STARROCKS_CODE_CACHE`: `off`
 * compiles from the source; `write` too, and writes at exit the cache of each bundle that has none yet, with every
 * function compiled by then.
 */
export const entrySource = `"use strict"
// The effect-starrocks command: ${loadBundleName} (the loader alone) for a \`load\` command line, which hands any
// command line it does not read to ${bundleName} (the whole command, packages/cli/scripts/bundle.ts); each compiled
// with its V8 code cache (<bundle>.cache) when V8 accepts it, else from the source.
const Fs = require("node:fs")
const Module = require("node:module")
const Path = require("node:path")
const Vm = require("node:vm")
const mode = process.env.EFFECT_STARROCKS_CODE_CACHE
const run = (name) => {
  const file = Path.join(__dirname, name)
  const cacheFile = file + ".cache"
  // one buffer for both files: the source is read into it and copied into a string, then the cache is read into
  // the same memory (memory touched for the first time costs a page fault a page)
  const sourceFd = Fs.openSync(file, "r")
  let cacheFd
  if (mode !== "off" && mode !== "write") {
    try {
      cacheFd = Fs.openSync(cacheFile, "r")
    } catch {}
  }
  const sourceSize = Fs.fstatSync(sourceFd).size
  const cacheSize = cacheFd === undefined ? 0 : Fs.fstatSync(cacheFd).size
  const buffer = Buffer.allocUnsafeSlow(Math.max(sourceSize, cacheSize))
  const readAll = (fd, size) => {
    let n = 0
    try {
      for (let r = 1; n < size && r > 0; n += r) r = Fs.readSync(fd, buffer, n, size - n, n)
    } finally {
      Fs.closeSync(fd)
    }
    return n
  }
  // the file is the module's function (wrapped at bundle time)
  const source = buffer.toString("latin1", 0, readAll(sourceFd, sourceSize))
  const cachedData = cacheFd === undefined ? undefined : buffer.subarray(0, readAll(cacheFd, cacheSize))
  const script = new Vm.Script(source, { filename: file, cachedData })
  if (mode === "write" && !Fs.existsSync(cacheFile)) {
    process.once("exit", () => {
      Fs.writeFileSync(cacheFile + ".tmp", script.createCachedData())
      Fs.renameSync(cacheFile + ".tmp", cacheFile)
    })
  }
  const bundled = { exports: {}, filename: file }
  script.runInThisContext().call(bundled.exports, bundled.exports, Module.createRequire(file), bundled, file, __dirname)
}
globalThis[Symbol.for("effect-starrocks/bin/whole")] = () => run(${JSON.stringify(bundleName)})
run(process.argv[2] === "load" ? ${JSON.stringify(loadBundleName)} : ${JSON.stringify(bundleName)})
`

/**
 * Bundles packages/cli/src/bin.ts and packages/cli/src/loadBin.ts into `outdir` (the entry, the two bundles) and
 * makes their code caches (`train`). Returns the entry's path.
 */
export const bundle = async (outdir: string): Promise<string> => {
  await Esbuild.build(buildOptions(outdir))
  // wrapped in the module's function (`wrapperHead`), and ASCII only, so that the entry reads it as latin1, a copy
  // (as UTF-8, decoding 3 MB took 15-30 ms of a start):
  // esbuild escapes what is not ASCII in the code, not in the comments it keeps, where the escape is as good
  for (const name of [bundleName, loadBundleName]) {
    const file = Path.join(outdir, name)
    Fs.writeFileSync(
      file,
      wrapperHead + Fs.readFileSync(file, "utf8").replace(
        /[^\x00-\x7f]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
      ) + wrapperTail
    )
  }
  const entry = Path.join(outdir, entryName)
  Fs.writeFileSync(entry, entrySource)
  // the entry writes only a missing cache (a training run may compile both bundles, and each has its own run)
  for (const name of [cacheName, loadCacheName]) Fs.rmSync(Path.join(outdir, name), { force: true })
  await train(entry)
  return entry
}

/**
 * The esbuild options of `bundle` (a caller may add `metafile: true` to see what the bundles hold): two CommonJS
 * files for node 20, each whole (what both use is in both; a start evaluates one, or the loader's parser and then the
 * other). Their `import()`s become `require` calls (a script compiled by `vm.Script` cannot import on node 20 without
 * --experimental-vm-modules); their modules are evaluated when first imported, as before (`describe`'s mysql2,
 * `emulator`'s testkit, `@effect/cli` for a command line that is not a plain `load`). `import.meta.url` is the
 * bundle's URL.
 */
export const buildOptions = (outdir: string): Esbuild.BuildOptions & { readonly outdir: string } => ({
  entryPoints: {
    [bundleName.replace(/\.cjs$/, "")]: Path.join(repository, "packages/cli/src/bin.ts"),
    [loadBundleName.replace(/\.cjs$/, "")]: Path.join(repository, "packages/cli/src/loadBin.ts")
  },
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  supported: { "dynamic-import": false },
  outdir,
  outExtension: { ".js": ".cjs" },
  logLevel: "warning",
  // without comments and white space, names kept (a stack trace names its functions): 3.3 MB -> 2.4 MB to read
  minifyWhitespace: true,
  minifySyntax: true,
  plugins: [deepImportsPlugin, effectUtilsPlugin],
  define: { "import.meta.url": "__effectStarrocksUrl" },
  banner: { js: "const __effectStarrocksUrl = require(\"node:url\").pathToFileURL(__filename).href;" }
})

/**
 * Makes the code caches: the bundled command loads a few rows of CSV in two batches into a Stream Load endpoint of
 * its own (this process answers every request `Success`), with `EFFECT_STARROCKS_CODE_CACHE=write`, twice: with a
 * plain command line, run by the loader's bundle alone, whose cache then holds what a start of `load` compiles (the
 * configuration, the startup check, the client, a streamed body); then with `--table=db.t`, which the loader's
 * parser leaves to the whole command (`@effect/cli`), whose cache then holds that and the same load. Made with no
 * NODE_OPTIONS (V8 flags are part of what a cache is checked against).
 */
export const train = async (entry: string): Promise<void> => {
  const server = Http.createServer((req, res) => {
    req.resume()
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify({
        TxnId: 1,
        Label: String(req.headers["label"] ?? ""),
        Status: "Success",
        Message: "OK",
        NumberTotalRows: 2,
        NumberLoadedRows: 2,
        NumberFilteredRows: 0,
        NumberUnselectedRows: 0,
        LoadBytes: 0,
        LoadTimeMs: 1
      }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-code-cache-"))
  try {
    // small batches: a batch over 64 KiB would compile the WebAssembly counter, which sets a V8 flag for a moment
    // (count.ts), and a cache made after a flag was set is one a fresh start rejects
    const rows = Path.join(dir, "rows.csv")
    Fs.writeFileSync(rows, "1,a,1.5\n2,b,2.5\n3,c,3.5\n4,d,4.5\n")
    const port = (server.address() as { readonly port: number }).port
    const { NODE_OPTIONS: _options, ...env } = process.env
    for (const table of [["--table", "db.t"], ["--table=db.t"]]) {
      await new Promise<void>((resolve, reject) =>
        ChildProcess.execFile(
          process.execPath,
          [entry, "load", rows, ...table, "--load-url", `127.0.0.1:${port}`, "--max-bytes", "20"],
          { env: { ...env, EFFECT_STARROCKS_CODE_CACHE: "write" }, encoding: "utf8" },
          (error, _stdout, stderr) =>
            error === null ? resolve() : reject(new Error(`the bundled command failed: ${error.message}\n${stderr}`))
        )
      )
    }
  } finally {
    server.close()
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === Url.fileURLToPath(import.meta.url)) {
  const outdir = process.argv[2]
  if (outdir === undefined) throw new Error("usage: bundle.ts OUTDIR")
  console.log(await bundle(Path.resolve(outdir)))
}
