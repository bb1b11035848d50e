/**
 * The lint rule that keeps the import graph free of cycles (eslint/no-cycle.mjs, `local/no-cycle` in
 * eslint.config.mjs), run on small graphs written to a temporary directory: type-only and dynamic imports count.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Linter } from "eslint"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import tseslint from "typescript-eslint"

const rulePath = new URL("../../../eslint/no-cycle.mjs", import.meta.url).href

/** Writes `files` into a fresh directory and lints `entry` with the rule alone; the messages. */
const lint = (files: Record<string, string>, entry: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "no-cycle-"))),
    (dir) =>
      Effect.promise(async () => {
        for (const [name, text] of Object.entries(files)) {
          Fs.mkdirSync(Path.dirname(Path.join(dir, name)), { recursive: true })
          Fs.writeFileSync(Path.join(dir, name), text)
        }
        const plugin = (await import(rulePath)).default
        const linter = new Linter({ configType: "flat", cwd: dir })
        return linter.verify(files[entry]!, [{
          files: ["**/*.ts"],
          languageOptions: { parser: tseslint.parser as Linter.Parser },
          plugins: { local: plugin },
          rules: { "local/no-cycle": "error" }
        }], { filename: Path.join(dir, entry) }).map((m) => `${m.line}: ${m.message}`)
      }),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )

describe("local/no-cycle", () => {
  it.effect("a type-only cycle is reported, with the way round", () =>
    Effect.gen(function*() {
      const messages = yield* lint({
        "A.ts": `import type { B } from "./B.js"\nexport const a = 1\nexport type AB = B\n`,
        "B.ts": `import { a } from "./A.js"\nexport type B = typeof a\n`
      }, "A.ts")
      assert.deepStrictEqual(messages, ["1: Import cycle (type-only imports count): A.ts → B.ts → A.ts"])
    }))

  it.effect("a longer cycle through a subdirectory and a dynamic import is reported", () =>
    Effect.gen(function*() {
      const messages = yield* lint({
        "A.ts": `// import "./C.js" is a comment\nexport const load = () => import("./internal/b.js")\n`,
        "internal/b.ts": `export * from "../C.js"\n`,
        "C.ts": `export type { X } from "./A.js"\n`
      }, "A.ts")
      assert.deepStrictEqual(messages, [
        "2: Import cycle (type-only imports count): A.ts → internal/b.ts → C.ts → A.ts"
      ])
    }))

  it.effect("imports that point one way are not reported", () =>
    Effect.gen(function*() {
      const messages = yield* lint({
        "A.ts": `import type { B } from "./B.js"\nimport { c } from "./C.js"\nexport const a: B = c\n`,
        "B.ts": `import { c } from "./C.js"\nexport type B = typeof c\n`,
        "C.ts": `import { Effect } from "effect"\nexport const c = Effect.void\n`
      }, "A.ts")
      assert.deepStrictEqual(messages, [])
    }))
})
