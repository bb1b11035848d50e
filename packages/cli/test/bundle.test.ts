/**
 * The bundle of the `effect-starrocks` command (packages/cli/scripts/bundle.ts), as `npm run pack` ships it: the
 * rewrite of Effect's root imports, what the bundle holds, its V8 code cache, and that the bundle runs.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Vm from "node:vm"
import { bundle, bundleName, cacheName, deepImports, entryName, wrapperHead, wrapperTail } from "../scripts/bundle.js"

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

  it("one CommonJS file: no fast-check, no whole Effect module, the testkit evaluated only when imported", async () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-bundle-"))
    try {
      const entry = await bundle(dir)
      assert.deepStrictEqual(Fs.readdirSync(dir).sort(), [entryName, bundleName, cacheName].sort())
      const source = Fs.readFileSync(Path.join(dir, bundleName), "utf8")
      // esbuild names a module it keeps whole, every export, `<Name>_exports`
      for (const whole of ["Effect_exports", "Stream_exports", "Schema_exports", "Option_exports"]) {
        assert.notInclude(source, whole)
      }
      assert.notInclude(source, "node_modules/fast-check/")
      // ASCII only: the entry reads it as latin1
      assert.notMatch(source, /[^\x00-\x7f]/)
      // a module reached by `import()` only is wrapped in an initializer that runs when it is first imported
      assert.match(source, /var init_StarRocksEmulator = __esm\(/)
      // no `import()` left: a script compiled by vm.Script cannot import on node 20
      assert.notMatch(source, /[^\w.$]import\(/)
      const version = execFileSync(process.execPath, [entry, "--version"], { encoding: "utf8" })
      assert.match(version, /0\.1\.0/)
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  it(
    "the code cache: made at bundle time, accepted by this node; without it or damaged, the command still runs",
    async () => {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-bundle-"))
      try {
        const entry = await bundle(dir)
        const file = Path.join(dir, bundleName)
        const cache = Fs.readFileSync(Path.join(dir, cacheName))
        const compile = (cachedData: Buffer) =>
          new Vm.Script(wrapperHead + Fs.readFileSync(file, "utf8") + wrapperTail, { filename: file, cachedData })
        assert.isFalse(compile(cache).cachedDataRejected)
        // more than the module's top level: what the training load compiled (the client's streamed send among it)
        assert.isAbove(cache.length, 800_000)
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
