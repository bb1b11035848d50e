/**
 * Every `ts` code block of the docs is a whole program that type-checks against the packages as they are: a
 * sample that drifts from the code fails here. (Blocks in other languages, `sh` or `text`, are not checked.)
 */
import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import ts from "typescript"

const root = Path.resolve(import.meta.dirname, "../../..")

/** The docs whose samples are checked. */
const docs = [
  "README.md",
  "docs/sink.md",
  "docs/exactly-once.md",
  "docs/configuration.md",
  "docs/debezium.md",
  "docs/migrating-from-flink.md",
  "docs/observability.md",
  "docs/operations.md",
  "docs/getting-started.md",
  "docs/troubleshooting.md",
  "docs/scale-out.md"
]

const blocksOf = (file: string): ReadonlyArray<{ readonly line: number; readonly code: string }> => {
  const text = Fs.readFileSync(Path.join(root, file), "utf8")
  const out: Array<{ line: number; code: string }> = []
  const re = /^```ts\n([\s\S]*?)^```/gm
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out.push({ line: text.slice(0, m.index).split("\n").length, code: m[1]! })
  }
  return out
}

describe("docs", () => {
  it("every ts sample of the docs type-checks", () => {
    const files = new Map<string, { readonly doc: string; readonly line: number; readonly code: string }>()
    for (const doc of docs) {
      blocksOf(doc).forEach((block, i) => {
        // virtual files inside the repo, so that package imports resolve as in a user's project
        const name = Path.join(root, "packages/sink/test/__docs__", `${doc.replace(/[/.]/g, "_")}_${i}.ts`)
        files.set(name, { doc, ...block })
      })
    }
    assert.isAtLeast(files.size, 5)
    const options: ts.CompilerOptions = {
      strict: true,
      exactOptionalPropertyTypes: true,
      target: ts.ScriptTarget.ES2022,
      lib: ["lib.es2022.d.ts"],
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      moduleDetection: ts.ModuleDetectionKind.Force,
      types: ["node"],
      skipLibCheck: true,
      noEmit: true
    }
    const host = ts.createCompilerHost(options)
    const getSourceFile = host.getSourceFile.bind(host)
    host.getSourceFile = (fileName, language, onError, create) => {
      const virtual = files.get(fileName)
      return virtual !== undefined
        ? ts.createSourceFile(fileName, virtual.code, language)
        : getSourceFile(fileName, language, onError, create)
    }
    const fileExists = host.fileExists.bind(host)
    host.fileExists = (fileName) => files.has(fileName) || fileExists(fileName)
    const readFile = host.readFile.bind(host)
    host.readFile = (fileName) => files.get(fileName)?.code ?? readFile(fileName)
    const program = ts.createProgram([...files.keys()], options, host)
    const problems: Array<string> = []
    for (const [name, block] of files) {
      for (const d of ts.getPreEmitDiagnostics(program, program.getSourceFile(name))) {
        const where = d.file !== undefined && d.start !== undefined
          ? d.file.getLineAndCharacterOfPosition(d.start).line + 1
          : 0
        problems.push(
          `${block.doc}:${block.line + where}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`
        )
      }
    }
    assert.deepStrictEqual(problems, [])
  }, 120_000)
})
