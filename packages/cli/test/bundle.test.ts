/**
 * The bundle of the `effect-starrocks` command (packages/cli/scripts/bundle.ts), as `npm run pack` ships it: the
 * rewrite of Effect's root imports, what a start of `load` reads, and that the bundle runs.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { bundle, deepImports } from "../scripts/bundle.js"

/** The files a start of `entry` reads: it and the chunks it imports statically (not those of dynamic imports). */
const staticClosure = (entry: string): Array<string> => {
  const seen = new Set<string>()
  const stack = [entry]
  while (stack.length > 0) {
    const file = stack.pop()!
    if (seen.has(file)) continue
    seen.add(file)
    for (const m of Fs.readFileSync(file, "utf8").matchAll(/^import\s[^;]*?from\s*"(\.\/[^"]+)"/gm)) {
      stack.push(Path.join(Path.dirname(file), m[1]!))
    }
  }
  return [...seen]
}

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

  it("a start of load reads no fast-check, no whole Effect module, no testkit; the bundle runs", async () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-bundle-"))
    try {
      const entry = await bundle(dir)
      const read = staticClosure(entry).map((f) => Fs.readFileSync(f, "utf8")).join("\n")
      // esbuild names a module it keeps whole, every export, `<Name>_exports`
      for (const whole of ["Effect_exports", "Stream_exports", "Schema_exports", "Option_exports"]) {
        assert.notInclude(read, whole)
      }
      assert.notInclude(read, "node_modules/fast-check/")
      assert.notInclude(read, "packages/testkit/src/")
      assert.isBelow(read.length, 1.6e6)
      const version = execFileSync(process.execPath, [entry, "--version"], { encoding: "utf8" })
      assert.match(version, /0\.1\.0/)
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
