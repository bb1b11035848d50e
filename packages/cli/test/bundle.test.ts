/**
 * The bundle of the `effect-starrocks` command (packages/cli/scripts/bundle.ts), as `npm run pack` ships it: the
 * rewrite of Effect's root imports, what the bundle holds, its V8 code cache, and that the bundle runs.
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Esbuild from "esbuild"
import * as ChildProcess from "node:child_process"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Vm from "node:vm"
import {
  bundle,
  bundleName,
  cacheName,
  classSidesProbe,
  clockProbe,
  deepImports,
  effectUtilsPlugin,
  entryName,
  lazyClassSides,
  lazyClock,
  lazyTaggedSchema,
  lazyUnionAst,
  loadBundleName,
  loadCacheName,
  stackProbe,
  taggedSchemaProbe,
  unionAstProbe,
  wrapperHead,
  wrapperTail
} from "../scripts/bundle.js"

const require = createRequire(import.meta.url)

describe("the command's bundle", () => {
  it("deepImports: each Effect module from its own path, types dropped, other imports as they are", () => {
    const source = [
      `import { Effect, Option as Opt, type Schema, pipe } from "effect"`,
      `import {`,
      `  Console,`,
      `  Stream`,
      `} from "effect"`,
      `import type { Layer } from "effect"`,
      `import { type Context } from "effect"`,
      `import * as Sink from "effect/Sink"`,
      ` * import { Effect } from "effect" (a comment)`
    ].join("\n")
    assert.strictEqual(
      deepImports(source),
      [
        `import * as Effect from "effect/Effect"; import * as Opt from "effect/Option"; ` +
        `import { pipe } from "effect/Function"`,
        `import * as Console from "effect/Console"; import * as Stream from "effect/Stream"`,
        `import type { Layer } from "effect"`,
        ``,
        `import * as Sink from "effect/Sink"`,
        ` * import { Effect } from "effect" (a comment)`
      ].join("\n")
    )
  })

  it(
    "two CommonJS files (the whole command, the loader): no fast-check, no whole Effect module, the testkit evaluated only when imported",
    async () => {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-bundle-"))
      try {
        const entry = await bundle(dir)
        assert.deepStrictEqual(
          Fs.readdirSync(dir).sort(),
          [entryName, bundleName, cacheName, loadBundleName, loadCacheName].sort()
        )
        for (const name of [bundleName, loadBundleName]) {
          const source = Fs.readFileSync(Path.join(dir, name), "utf8")
          // esbuild names a module it keeps whole, every export, `<Name>_exports`
          for (const whole of ["Effect_exports", "Stream_exports", "Schema_exports", "Option_exports"]) {
            assert.notInclude(source, whole, name)
          }
          assert.notInclude(source, "node_modules/fast-check/", name)
          // the module's function, as the entry compiles it (no concatenation at start)
          assert.isTrue(source.startsWith(wrapperHead) && source.endsWith(wrapperTail), name)
          // ASCII only: the entry reads it as latin1
          assert.notMatch(source, /[^\x00-\x7f]/, name)
          // no `import()` left: a script compiled by vm.Script cannot import on node 20
          assert.notMatch(source, /[^\w.$]import\(/, name)
        }
        // a module reached by `import()` only is wrapped in an initializer that runs when it is first imported
        const whole = Fs.readFileSync(Path.join(dir, bundleName), "utf8")
        assert.match(whole, /init_StarRocksEmulator\s*=\s*__esm\(/)
        // the loader's bundle holds neither the testkit nor @effect/cli
        const loader = Fs.readFileSync(Path.join(dir, loadBundleName), "utf8")
        assert.notInclude(loader, "StarRocksEmulator")
        assert.notInclude(loader, "@effect/cli")
        // the metrics and their Prometheus server are evaluated only when imported (--metrics-port), not at a start
        // (initializers are called as `init_X()`: at the top of the initializer of a module that imports X)
        for (const init of ["init_Prometheus", "init_SinkMetrics", "init_metrics"]) {
          const calls = [...loader.matchAll(new RegExp(`.{0,40}\\b${init}\\(\\)`, "g"))].map((m) => m[0])
          assert.isNotEmpty(calls, init)
          for (const call of calls) {
            // in an import(), or in the initializer of a module that only an import() reaches
            assert.match(
              call.slice(0, -`${init}()`.length),
              /Promise\.resolve\(\)\.then\(\(\)=>\($|(load\/metrics|Prometheus)\.ts"\(\)\{"use strict";$/,
              `${init}: ${call}`
            )
          }
        }
        const version = execFileSync(process.execPath, [entry, "--version"], { encoding: "utf8" })
        assert.match(version, /0\.1\.0/)
      } finally {
        Fs.rmSync(dir, { recursive: true, force: true })
      }
    },
    60_000
  )

  it("effect/Utils's stack probe is the constant its evaluation gives, and no start formats a stack", async () => {
    const utils = Fs.readFileSync(
      Path.join(Path.dirname(require.resolve("effect/package.json")), "dist/esm/Utils.js"),
      "utf8"
    )
    // the probe is still there to replace (a new version of effect without it: this test says so)
    assert.match(utils, stackProbe)
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-bundle-"))
    try {
      const entry = await bundle(dir)
      const source = Fs.readFileSync(Path.join(dir, bundleName), "utf8")
      assert.notMatch(source, /effect_internal_function\(\(\)\s*=>\s*new Error\(\)\.stack\)/)
      // a start formats no stack: a preload counts the formats (Error.prepareStackTrace is called for each)
      const probe = Path.join(dir, "probe.cjs")
      Fs.writeFileSync(
        probe,
        "let n = 0; const f = Error.prepareStackTrace; Error.prepareStackTrace = (e, s) => (n++, f ? f(e, s) : String(e));" +
          " process.on('exit', () => require('fs').writeSync(2, `stack-formats ${n}\\n`))\n"
      )
      const run = ChildProcess.spawnSync(process.execPath, ["--require", probe, entry, "--version"], {
        encoding: "utf8"
      })
      assert.match(run.stdout, /0\.1\.0/)
      assert.include(run.stderr, "stack-formats 0")
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  it("effect's clock: its performance clock is evaluated only without process.hrtime, its origin from Date.now()", () => {
    const clock = Fs.readFileSync(
      Path.join(Path.dirname(require.resolve("effect/package.json")), "dist/esm/internal/clock.js"),
      "utf8"
    )
    // both patterns are still there to replace (a new version of effect without them: this test says so)
    assert.match(clock, clockProbe.performanceClock)
    assert.match(clock, clockProbe.origin)
    const patched = lazyClock(clock)
    assert.notMatch(patched, clockProbe.performanceClock)
    assert.notMatch(patched, clockProbe.origin)
    assert.include(patched, "const origin = BigInt(Date.now()) * BigInt(1_000_000) - ")
  })

  it("effect/Schema's class sides: derived on first use, once, by the same code", () => {
    const schema = Fs.readFileSync(
      Path.join(Path.dirname(require.resolve("effect/package.json")), "dist/esm/Schema.js"),
      "utf8"
    )
    // the block is still there to defer (a new version of effect without it: this test says so)
    const makeClass = classSidesProbe.makeClass.exec(schema)?.[0]
    assert.isDefined(makeClass)
    assert.match(makeClass!, classSidesProbe.sides)
    const patched = lazyClassSides(schema)
    const lazy = classSidesProbe.makeClass.exec(patched)?.[0]
    assert.isDefined(lazy)
    // the block, as it was, inside the thunk
    assert.include(lazy!, "const sides = () => sides_ ??= (() => {" + classSidesProbe.sides.exec(makeClass!)?.[0])
    // after it, every use reads the memoized sides, and nothing outside makeClass changed
    const after = lazy!.split("\n  })();\n")[1]!
    for (const name of classSidesProbe.names) {
      const uses = after.match(new RegExp(`\\b${name}\\b`, "g"))?.length ?? 0
      assert.isAbove(uses, 0, name)
      assert.strictEqual(after.split(`sides().${name}`).length - 1, uses, name)
    }
    assert.strictEqual(patched.replace(lazy!, ""), schema.replace(makeClass!, ""))
  })

  it(
    "effect/Schema's classes and unions in the bundle: their schemas made on first use, the same behaviour",
    async () => {
      const schema = Fs.readFileSync(
        Path.join(Path.dirname(require.resolve("effect/package.json")), "dist/esm/Schema.js"),
        "utf8"
      )
      // each patch still finds what it changes (a new version of effect without it: this test says so)
      const sides = lazyClassSides(schema)
      const tagged = lazyTaggedSchema(sides)
      assert.notStrictEqual(tagged, sides)
      assert.match(schema, taggedSchemaProbe.taggedError)
      assert.match(schema, unionAstProbe)
      assert.notStrictEqual(lazyUnionAst(schema), schema)
      // without lazyClassSides the TaggedError patch leaves the module as it is
      assert.strictEqual(lazyTaggedSchema(schema), schema)
      // a program that defines, constructs, decodes and encodes classes and unions prints the same, bundled or not
      const fixture = Path.join(import.meta.dirname, "fixtures/schemaClasses.mjs")
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-bundle-"))
      try {
        const outfile = Path.join(dir, "schemaClasses.cjs")
        await Esbuild.build({
          entryPoints: [fixture],
          bundle: true,
          platform: "node",
          format: "cjs",
          outfile,
          logLevel: "warning",
          plugins: [effectUtilsPlugin]
        })
        const bundled = Fs.readFileSync(outfile, "utf8")
        assert.include(bundled, "const sides = () => sides_ ??= (() => {")
        assert.include(bundled, "const schemaOf = () => schemaValue ??= lazySchema();")
        assert.include(bundled, "let lazyAst = ast;")
        const plain = execFileSync(process.execPath, [fixture], { encoding: "utf8" })
        assert.include(plain, `"construct":[true,true,"E","x",1,"E x"`)
        assert.strictEqual(execFileSync(process.execPath, [outfile], { encoding: "utf8" }), plain)
      } finally {
        Fs.rmSync(dir, { recursive: true, force: true })
      }
    },
    60_000
  )

  it.live(
    "node:https is loaded only for an https load URL, a plain load loads no module it does not use, both land",
    () =>
      Effect.gen(function*() {
        const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-bundle-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
        const entry = yield* Effect.promise(() => bundle(dir))
        const ssl = (...args: ReadonlyArray<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
        ssl(
          ..."req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bundle-test-CA".split(" ")
        )
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=em")
        Fs.writeFileSync(Path.join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,IP:127.0.0.2\n")
        ssl(
          ..."x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext"
            .split(" ")
        )
        const columns = [{ name: "id", type: "BIGINT" }, { name: "note", type: "VARCHAR(64)", nullable: true }]
        const tls = {
          cert: Fs.readFileSync(Path.join(dir, "server.pem")),
          key: Fs.readFileSync(Path.join(dir, "server.key"))
        }
        const secure = yield* StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 1, tls })
        const plain = yield* StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 1 })
        for (const em of [secure, plain]) {
          yield* em.createTable({ database: "db", table: "t", model: "DUPLICATE", key: ["id"], columns }).pipe(
            Effect.orDie
          )
        }
        const csv = Path.join(dir, "rows.csv")
        Fs.writeFileSync(csv, "1,a\n2,b\n")
        // a preload prints which of node's modules a load loaded by the end
        const probe = Path.join(dir, "https.cjs")
        Fs.writeFileSync(
          probe,
          "process.on('exit', () => require('fs').writeSync(2, `loaded ${JSON.stringify(process.moduleLoadList)}\\n`))\n"
        )
        const loaded = (stderr: string): ReadonlyArray<string> =>
          JSON.parse(/^loaded (.*)$/m.exec(stderr)![1]!) as ReadonlyArray<string>
        const load = (fe: string, label: string) =>
          Effect.async<{ stdout: string; stderr: string }, Error>((resume) => {
            ChildProcess.execFile(
              process.execPath,
              ["--require", probe, entry, "load", csv, "--table", "db.t", "--load-url", fe, "--label-prefix", label],
              { encoding: "utf8", env: { ...process.env, STARROCKS_TLS_CA_FILE: Path.join(dir, "ca.pem") } },
              (error, stdout, stderr) =>
                resume(
                  error === null ? Effect.succeed({ stdout, stderr }) : Effect.fail(new Error(`${error}\n${stderr}`))
                )
            )
          })
        const overHttps = yield* load(`https://${secure.fe[0]!.replace(/^https?:\/\//, "")}`, "tls")
        assert.include(loaded(overHttps.stderr), "NativeModule https")
        assert.strictEqual((JSON.parse(overHttps.stdout.trim()) as { rows: number }).rows, 2)
        const overHttp = yield* load(plain.fe[0]!, "plain")
        // a plain load of an uncompressed file loads none of the modules that only other loads use: https, zlib
        // (compressed input or payload), v8 (the row counter's compile), perf_hooks (effect's clock, session 14),
        // crypto (the default label prefix's hash is options.ts's own)
        for (const module of ["https", "zlib", "v8", "perf_hooks", "crypto"]) {
          assert.notInclude(loaded(overHttp.stderr), `NativeModule ${module}`)
        }
        assert.strictEqual((JSON.parse(overHttp.stdout.trim()) as { rows: number }).rows, 2)
        for (const em of [secure, plain]) {
          const rows = yield* em.rows("db", "t").pipe(Effect.orDie)
          assert.deepStrictEqual(rows.map((r) => [String(r["id"]), r["note"]]), [["1", "a"], ["2", "b"]])
        }
      }).pipe(Effect.scoped),
    { timeout: 90_000 }
  )

  it(
    "the code cache: made at bundle time, accepted by this node; without it or damaged, the command still runs",
    async () => {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-bundle-"))
      try {
        const entry = await bundle(dir)
        const file = Path.join(dir, bundleName)
        const cache = Fs.readFileSync(Path.join(dir, cacheName))
        const compile = (cachedData: Buffer, name = bundleName) =>
          new Vm.Script(Fs.readFileSync(Path.join(dir, name), "utf8"), {
            filename: Path.join(dir, name),
            cachedData
          })
        assert.isFalse(compile(cache).cachedDataRejected)
        // more than the module's top level: what the training load compiled (the client's streamed send among it)
        assert.isAbove(cache.length, 800_000)
        // the loader's bundle has a cache of its own, made by a plain load
        const loadCache = Fs.readFileSync(Path.join(dir, loadCacheName))
        assert.isFalse(compile(loadCache, loadBundleName).cachedDataRejected)
        assert.isAbove(loadCache.length, 800_000)
        // and is the smaller file: the whole command's other modules are not in it
        assert.isBelow(Fs.statSync(Path.join(dir, loadBundleName)).size, Fs.statSync(file).size / 2)
        const damaged = Buffer.from(cache)
        damaged.fill(7, 0, 64)
        assert.isTrue(compile(damaged).cachedDataRejected)
        const version = (env: Record<string, string>) =>
          execFileSync(process.execPath, [entry, "--version"], { encoding: "utf8", env: { ...process.env, ...env } })
        assert.match(version({ EFFECT_STARROCKS_CODE_CACHE: "off" }), /0\.1\.0/)
        Fs.writeFileSync(Path.join(dir, cacheName), damaged)
        assert.match(version({}), /0\.1\.0/)
        Fs.rmSync(Path.join(dir, cacheName))
        assert.match(version({}), /0\.1\.0/)
      } finally {
        Fs.rmSync(dir, { recursive: true, force: true })
      }
    },
    60_000
  )
})
