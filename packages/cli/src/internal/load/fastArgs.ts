/**
 * A plain `load` command line read without `@effect/cli`: evaluating `@effect/cli` (its prompts, help documents and
 * the Effect modules it needs first) and parsing with it took about a fifth of a `load` start (docs/cli.md,
 * "The start"). `parse` reads the common shape, the files and then `--flag value` pairs of `load`'s own flags
 * (Commands/Load.ts), to exactly the options `@effect/cli` gives for it, and gives up (`undefined`) on anything
 * else: `--flag=value`, a flag before a file, an unknown or repeated flag, `--help` and the other built-in options,
 * a value that starts with `-`, an empty value, a number not written as plain digits, a boolean flag followed by a
 * value, a path flag whose file `@effect/cli` would refuse. Then the command line goes to `@effect/cli`, which
 * parses it, or reports what is wrong with it, as before. `test/fastArgs.test.ts` compares the two on many
 * command lines.
 *
 * @internal
 */
import * as Option from "effect/Option"
import * as fs from "node:fs"
import type { Format, LoadOptions } from "./run.js"

type Kind = "text" | "repeated" | "integer" | "float" | "boolean" | "format" | "existingFile" | "file"

/** `load`'s flags: the option's field and how `@effect/cli` reads its value (Commands/Load.ts, `flags`). */
const flags: Readonly<Record<string, readonly [keyof LoadOptions, Kind]>> = {
  "--table": ["table", "text"],
  "--load-url": ["loadUrl", "repeated"],
  "--user": ["user", "text"],
  "--password-env": ["passwordEnv", "text"],
  "--properties": ["properties", "existingFile"],
  "--format": ["format", "format"],
  "--column-separator": ["columnSeparator", "text"],
  "--row-delimiter": ["rowDelimiter", "text"],
  "--columns": ["columns", "text"],
  "--parallel": ["parallel", "integer"],
  "--label-prefix": ["labelPrefix", "text"],
  "--max-filter-ratio": ["maxFilterRatio", "float"],
  "--strict-mode": ["strictMode", "boolean"],
  "--max-bytes": ["maxBytes", "text"],
  "--checkpoint-file": ["checkpointFile", "file"],
  "--exactly-once": ["exactlyOnce", "boolean"],
  "--metrics-port": ["metricsPort", "integer"],
  "--metrics-host": ["metricsHost", "text"],
  "--verbose": ["verbose", "boolean"]
}

/** The options the flags above set: every flag of `load` (`test/fastArgs.test.ts` holds them to Commands/Load.ts). */
export const fields: ReadonlyArray<keyof LoadOptions> = Object.values(flags).map(([field]) => field)

const formats: ReadonlyArray<string> = ["csv", "ndjson", "json"] satisfies ReadonlyArray<Format>

/** Whether `path` is a regular file (`exists`), or, when `exists` is false, also absent. */
const fileOk = (path: string, exists: boolean): boolean => {
  try {
    return fs.statSync(path).isFile()
  } catch (e) {
    return !exists && (e as NodeJS.ErrnoException).code === "ENOENT"
  }
}

/**
 * The command line `argv` (as `process.argv`) as the command reads it: @effect/cli stops reading options at a lone
 * "-", so `load - --table db.t` names stdin by its path instead.
 */
export const commandLine = (argv: ReadonlyArray<string>): ReadonlyArray<string> =>
  argv[2] === "load" ? argv.map((a, i) => i > 2 && a === "-" ? "/dev/stdin" : a) : argv

/**
 * The options of `load` from its arguments (after `load`), when they are a plain command line (above); else
 * `undefined`, for `@effect/cli` to parse.
 */
export const parse = (args: ReadonlyArray<string>): LoadOptions | undefined => {
  const files: Array<string> = []
  let i = 0
  for (; i < args.length && !args[i]!.startsWith("-") && args[i] !== ""; i++) files.push(args[i]!)
  if (files.length === 0) return undefined
  const values: Record<string, unknown> = {}
  const loadUrl: Array<string> = []
  while (i < args.length) {
    const flag = flags[args[i]!]
    if (flag === undefined) return undefined
    const [field, kind] = flag
    if (kind !== "repeated" && field in values) return undefined
    if (kind === "boolean") {
      // `--verbose true` is @effect/cli's to read: only a flag or the end may follow
      if (i + 1 < args.length && !args[i + 1]!.startsWith("--")) return undefined
      values[field] = true
      i++
      continue
    }
    const value = args[i + 1]
    if (value === undefined || value === "" || value.startsWith("-")) return undefined
    i += 2
    switch (kind) {
      case "repeated":
        loadUrl.push(value)
        break
      case "integer":
        if (!/^\d{1,9}$/.test(value)) return undefined
        values[field] = Option.some(Number(value))
        break
      case "float":
        if (!/^\d{1,9}(\.\d{1,9})?$/.test(value)) return undefined
        values[field] = Option.some(Number(value))
        break
      case "format":
        if (!formats.includes(value)) return undefined
        values[field] = Option.some(value)
        break
      case "existingFile":
      case "file":
        if (!fileOk(value, kind === "existingFile")) return undefined
        values[field] = Option.some(value)
        break
      case "text":
        values[field] = Option.some(value)
        break
    }
  }
  const text = (field: keyof LoadOptions) => (values[field] ?? Option.none()) as Option.Option<string>
  const number = (field: keyof LoadOptions) => (values[field] ?? Option.none()) as Option.Option<number>
  return {
    files,
    table: text("table"),
    loadUrl,
    user: text("user"),
    passwordEnv: text("passwordEnv"),
    properties: text("properties"),
    format: text("format") as Option.Option<Format>,
    columnSeparator: text("columnSeparator"),
    rowDelimiter: text("rowDelimiter"),
    columns: text("columns"),
    parallel: number("parallel"),
    labelPrefix: text("labelPrefix"),
    maxFilterRatio: number("maxFilterRatio"),
    strictMode: values["strictMode"] === true,
    maxBytes: text("maxBytes"),
    checkpointFile: text("checkpointFile"),
    exactlyOnce: values["exactlyOnce"] === true,
    metricsPort: number("metricsPort"),
    metricsHost: text("metricsHost"),
    verbose: values["verbose"] === true
  }
}
