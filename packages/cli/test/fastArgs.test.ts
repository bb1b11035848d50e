/**
 * `internal/load/fastArgs.ts` reads a plain `load` command line to exactly the options `@effect/cli` gives for it
 * (Commands/Load.ts), and leaves every other command line to `@effect/cli`; a plain `load` of the bundled command
 * never evaluates `@effect/cli`.
 */
import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll } from "vitest"
import { bundle } from "../scripts/bundle.js"
import { loadConfig } from "../src/Commands/Load.js"
import * as FastArgs from "../src/internal/load/fastArgs.js"

/** The options as plain data (Option as `{ some }` or `none`), to compare both parsers' results. */
const plain = (options: object): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries(options).map((
      [k, v]
    ) => [k, Option.isOption(v) ? Option.match(v, { onNone: () => "none", onSome: (some) => ({ some }) }) : v])
  )

/** What `@effect/cli` makes of `load <args>`: the options, or `undefined` when it refuses the command line. */
const viaCli = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    let got: object | undefined
    const command = Command.make("load", loadConfig, (options) => Effect.sync(() => void (got = options)))
    const run = Command.run(Command.make("effect-starrocks").pipe(Command.withSubcommands([command])), {
      name: "effect-starrocks",
      version: "0.0.0"
    })
    // (it prints what it refuses: the test needs only whether it did)
    yield* run(["node", "effect-starrocks", "load", ...args]).pipe(Effect.provide(NodeContext.layer), Effect.ignore)
    return got === undefined ? undefined : plain(got)
  })

describe("fastArgs", () => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-fast-args-"))
  const properties = Path.join(dir, "a.properties")
  Fs.writeFileSync(properties, "load-url=127.0.0.1:8030\n")
  const checkpoint = Path.join(dir, "checkpoint.json")
  afterAll(() => Fs.rmSync(dir, { recursive: true, force: true }))

  /** Command lines the fast parser must read (the bench's, the docs' and every flag's). */
  const plainLines: ReadonlyArray<ReadonlyArray<string>> = [
    ["rows.csv", "--table", "db.t", "--load-url", "127.0.0.1:8030", "--label-prefix", "bench_1_2"],
    ["rows.csv", "--table", "db.t", "--load-url", "127.0.0.1:8030", "--label-prefix", "b", "--parallel", "1"],
    ["a.csv", "b.ndjson", "/dev/stdin", "--table", "d.t", "--load-url", "fe1:8030", "--load-url", "fe2:8030,fe3:8030"],
    ["a.csv"],
    [
      "a.csv",
      "--user",
      "u",
      "--password-env",
      "PW",
      "--properties",
      properties,
      "--format",
      "ndjson",
      "--column-separator",
      "\\t",
      "--row-delimiter",
      "\\x01",
      "--columns",
      "a,b,c=a+1",
      "--max-filter-ratio",
      "0.25",
      "--strict-mode",
      "--max-bytes",
      "64MB",
      "--checkpoint-file",
      checkpoint,
      "--exactly-once",
      "--metrics-port",
      "0",
      "--metrics-host",
      "0.0.0.0",
      "--verbose"
    ],
    ["a.csv", "--verbose", "--format", "json", "--max-filter-ratio", "1", "--metrics-port", "9100"],
    ["a.csv", "--table", "db.t", "--strict-mode"]
  ]

  /** Command lines it must leave to @effect/cli (which reads some of them, and refuses the others). */
  const otherLines: ReadonlyArray<ReadonlyArray<string>> = [
    [],
    ["--table", "db.t", "a.csv"],
    ["a.csv", "--table=db.t"],
    ["a.csv", "--help"],
    ["a.csv", "-h"],
    ["a.csv", "--version"],
    ["a.csv", "--wizard"],
    ["a.csv", "--log-level", "debug"],
    ["a.csv", "--table", "db.t", "--table", "db.u"],
    ["a.csv", "--table"],
    ["a.csv", "--table", ""],
    ["a.csv", "--table", "-x"],
    ["a.csv", "--parallel", "two"],
    ["a.csv", "--parallel", "1.5"],
    ["a.csv", "--parallel", "-1"],
    ["a.csv", "--parallel", "1e1"],
    ["a.csv", "--max-filter-ratio", ".5"],
    ["a.csv", "--format", "xml"],
    ["a.csv", "--verbose", "true"],
    ["a.csv", "--strict-mode", "false"],
    ["a.csv", "--properties", Path.join(dir, "missing.properties")],
    ["a.csv", "--properties", dir],
    ["a.csv", "--checkpoint-file", dir],
    ["a.csv", "--tabel", "db.t"],
    ["a.csv", "extra", "--table", "db.t", "b.csv"]
  ]

  it("knows every flag of load: a flag added to Commands/Load.ts alone would send every load through @effect/cli", () => {
    assert.deepStrictEqual(
      [...FastArgs.fields].sort(),
      Object.keys(loadConfig).filter((k) => k !== "files").sort()
    )
  })

  it.effect("a plain command line: the options @effect/cli gives", () =>
    Effect.gen(function*() {
      for (const args of plainLines) {
        const fast = FastArgs.parse(args)
        assert.isDefined(fast, args.join(" "))
        assert.deepStrictEqual(plain(fast!), yield* viaCli(args), args.join(" "))
      }
    }))

  it.effect("any other command line: left to @effect/cli", () =>
    Effect.gen(function*() {
      for (const args of otherLines) assert.isUndefined(FastArgs.parse(args), args.join(" "))
      // random command lines from the flags, their values and odd words: the fast parser reads one to what
      // @effect/cli gives, or leaves it
      const words = [
        "a.csv",
        "b.csv",
        "--table",
        "db.t",
        "--load-url",
        "h:1",
        "--parallel",
        "3",
        "x",
        "--verbose",
        "--strict-mode",
        "--format",
        "csv",
        "--max-filter-ratio",
        "0.5",
        "--max-bytes",
        "1KB",
        "--checkpoint-file",
        checkpoint,
        "-",
        "",
        "--label-prefix",
        "p"
      ]
      let seed = 7
      const random = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2147483648
        return seed % n
      }
      let read = 0
      for (let k = 0; k < 300; k++) {
        const args = Array.from({ length: 1 + random(8) }, () => words[random(words.length)]!)
        const fast = FastArgs.parse(args)
        if (fast === undefined) continue
        read++
        assert.deepStrictEqual(plain(fast), yield* viaCli(args), JSON.stringify(args))
      }
      assert.isAbove(read, 10)
    }), 60_000)

  it(
    "the bundled command: a plain load does not evaluate @effect/cli, another command line does; both land",
    async () => {
      const out = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-fast-args-bundle-"))
      // answers as StarRocks does, with the rows of the body (the loader's summary reports them)
      const server = Http.createServer((req, res) => {
        let rows = 0
        req.on("data", (chunk: Buffer) => {
          for (const byte of chunk) if (byte === 0x0a) rows++
        })
        req.on("end", () => {
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify({
            TxnId: 1,
            Label: String(req.headers["label"]),
            Status: "Success",
            Message: "OK",
            NumberTotalRows: rows,
            NumberLoadedRows: rows
          }))
        })
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      try {
        const entry = await bundle(out)
        const rows = Path.join(out, "rows.csv")
        Fs.writeFileSync(rows, "1,a\n2,b\n")
        // a preload prints at exit whether @effect/cli's Command module was evaluated (it keeps a global value)
        const probe = Path.join(out, "probe.cjs")
        Fs.writeFileSync(
          probe,
          "process.on('exit', () => require('fs').writeSync(2, `cli-evaluated ${" +
            "globalThis['effect/GlobalValue']?.has('@effect/cli/Command/registeredDescriptors') === true}\\n`))\n"
        )
        const port = (server.address() as { readonly port: number }).port
        const load = (table: ReadonlyArray<string>) =>
          new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
            ChildProcess.execFile(
              process.execPath,
              ["--require", probe, entry, "load", rows, ...table, "--load-url", `127.0.0.1:${port}`],
              { encoding: "utf8" },
              (error, stdout, stderr) => resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr })
            )
          )
        const fast = await load(["--table", "db.t"])
        assert.strictEqual(fast.code, 0, fast.stderr)
        assert.include(fast.stderr, "cli-evaluated false")
        assert.strictEqual(JSON.parse(fast.stdout.trim()).rows, 2)
        const full = await load(["--table=db.t"])
        assert.strictEqual(full.code, 0, full.stderr)
        assert.include(full.stderr, "cli-evaluated true")
        assert.strictEqual(JSON.parse(full.stdout.trim()).rows, 2)
      } finally {
        server.close()
        Fs.rmSync(out, { recursive: true, force: true })
      }
    },
    90_000
  )
})
