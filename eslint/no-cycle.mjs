/**
 * `local/no-cycle`: no import cycle between the files of a package, type-only imports included.
 *
 * `import-x/no-cycle` skips `import type` by design, and a type-only cycle is still two modules that cannot be read
 * one before the other. This rule reads every import of a file the way TypeScript does (`ts.preProcessFile`: static
 * imports and re-exports, `import type`, `import()` calls and `import("…")` types; comments and strings are not
 * imports), resolves the relative ones (`./x.js` is `./x.ts`), and reports each import from which the file can be
 * reached again, with the way round.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import ts from "typescript"

/** Per file: its mtime and its relative imports, resolved. */
const cache = new Map()

const resolve = (from, specifier) => {
  if (!specifier.startsWith(".")) return undefined
  const base = Path.resolve(Path.dirname(from), specifier)
  const candidates = [base.replace(/\.js$/, ".ts"), base.replace(/\.mjs$/, ".mts"), base, `${base}.ts`, Path.join(base, "index.ts")]
  return candidates.find((file) => Fs.existsSync(file) && Fs.statSync(file).isFile())
}

const importsOf = (file, text) => {
  const stat = Fs.statSync(file, { throwIfNoEntry: false })
  const cached = cache.get(file)
  if (text === undefined && cached !== undefined && stat !== undefined && cached.mtimeMs === stat.mtimeMs) {
    return cached.imports
  }
  const source = text ?? Fs.readFileSync(file, "utf8")
  const imports = ts.preProcessFile(source, true, true).importedFiles.flatMap((entry) => {
    const target = resolve(file, entry.fileName)
    return target === undefined || target === file ? [] : [{ target, specifier: entry.fileName, pos: entry.pos, end: entry.end }]
  })
  if (text === undefined && stat !== undefined) cache.set(file, { mtimeMs: stat.mtimeMs, imports })
  return imports
}

/** The shortest way from `start` back to `goal` (files), or undefined. */
const wayBack = (start, goal) => {
  const previous = new Map([[start, undefined]])
  const queue = [start]
  while (queue.length > 0) {
    const file = queue.shift()
    for (const { target } of importsOf(file)) {
      if (target === goal) {
        const way = [file]
        for (let at = previous.get(file); at !== undefined; at = previous.get(at)) way.unshift(at)
        return way
      }
      if (!previous.has(target)) {
        previous.set(target, file)
        queue.push(target)
      }
    }
  }
  return undefined
}

export const noCycle = {
  meta: {
    type: "problem",
    docs: { description: "No import cycle, type-only imports included" },
    schema: [],
    messages: { cycle: "Import cycle (type-only imports count): {{way}}" }
  },
  create(context) {
    const file = context.physicalFilename
    if (!Path.isAbsolute(file)) return {}
    return {
      "Program:exit"() {
        const sourceCode = context.sourceCode
        const imports = importsOf(file, sourceCode.text)
        for (const entry of imports) {
          const way = wayBack(entry.target, file)
          if (way === undefined) continue
          const root = Path.dirname(file)
          const names = [file, ...way, file].map((f) => Path.relative(root, f) || Path.basename(f))
          context.report({
            loc: { start: sourceCode.getLocFromIndex(entry.pos), end: sourceCode.getLocFromIndex(entry.end) },
            messageId: "cycle",
            data: { way: names.join(" → ") }
          })
        }
      }
    }
  }
}

export default { rules: { "no-cycle": noCycle } }
