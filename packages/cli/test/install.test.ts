/**
 * The packages as a user gets them: `npm run pack` builds and packs the three packages, a fresh project outside
 * the repository installs the tarballs (with the Effect packages at the versions this repository uses), and plain
 * node, with no tsx anywhere, runs the installed `effect-starrocks emulator`, a program that loads rows into it
 * through the installed sink, and the installed `effect-starrocks load` of a CSV file. The installed command is the
 * bundle of packages/cli/scripts/bundle.ts (a start reads a few files, not the ~750 modules of `dist` and its
 * dependencies).
 */
import { assert, describe, it } from "@effect/vitest"
import { execFile, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Vm from "node:vm"
import { bundleName, cacheName, loadBundleName, loadCacheName, wrapperHead, wrapperTail } from "../scripts/bundle.js"

const root = fileURLToPath(new URL("../../../", import.meta.url))

const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  new Promise<string>((resolve, reject) =>
    execFile(
      command,
      args,
      { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${command} ${args.join(" ")} failed: ${error.message}\n${stderr}`)) : resolve(stdout)
    )
  )

const program = `
import { Effect, Logger, LogLevel, Redacted, Schema, Stream } from "effect"
import { StarRocksConfig, StarRocksSink } from "@effect-starrocks/sink"
const Row = Schema.Struct({ id: Schema.Number, note: Schema.NullOr(Schema.String) })
const rows = Array.from({ length: 1000 }, (_, i) => ({ id: i, note: i % 3 === 0 ? null : "n" + i }))
const config = StarRocksConfig.make({
  loadUrl: [process.argv[2]], database: "demo", table: "t", username: "root", password: Redacted.make("")
})
const summary = await Stream.fromIterable(rows).pipe(
  Stream.run(StarRocksSink.make(Row)),
  Effect.provide(StarRocksSink.layer(config)),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  Effect.runPromise
)
console.log(JSON.stringify({ rows: summary.rows, loads: summary.loads }))
`

const tables = {
  users: { root: "" },
  tables: [{
    database: "demo",
    table: "t",
    model: "DUPLICATE",
    key: ["id"],
    columns: [{ name: "id", type: "BIGINT" }, { name: "note", type: "VARCHAR(64)", nullable: true }]
  }]
}

describe("installable packages", () => {
  it("pack, install into a fresh project, run the installed CLI and sink under plain node", async () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-install-"))
    try {
      const packed = JSON.parse(
        (await run(process.execPath, ["--import", "tsx", "scripts/pack.ts", "--out", Path.join(dir, "tarballs")], root))
          .trim().split("\n").pop()!
      ) as { tarballs: ReadonlyArray<string> }
      assert.strictEqual(packed.tarballs.length, 3)
      const project = Path.join(dir, "project")
      Fs.mkdirSync(project)
      Fs.writeFileSync(
        Path.join(project, "package.json"),
        JSON.stringify({ name: "user-project", private: true, type: "module" })
      )
      // the Effect packages at the versions this repository is tested with (npm ci filled the cache with them)
      const deps = (JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8")) as {
        dependencies: Record<string, string>
      }).dependencies
      const effectPackages = ["effect", "@effect/platform", "@effect/sql", "@effect/sql-mysql2", "@effect/experimental"]
        .map((name) => `${name}@${deps[name]}`)
      await run("npm", [
        "install",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        "--loglevel=error",
        ...packed.tarballs,
        ...effectPackages
      ], project)
      assert.isFalse(Fs.existsSync(Path.join(project, "node_modules", "tsx")), "nothing installs tsx")
      const installed = JSON.parse(
        Fs.readFileSync(Path.join(project, "node_modules", "@effect-starrocks", "sink", "package.json"), "utf8")
      ) as { exports: Record<string, unknown> }
      assert.deepStrictEqual(installed.exports["."], { types: "./dist/index.d.ts", default: "./dist/index.js" })

      Fs.writeFileSync(Path.join(project, "tables.json"), JSON.stringify(tables))
      Fs.writeFileSync(Path.join(project, "load.mjs"), program)
      const emulator = spawn(
        process.execPath,
        [Path.join(project, "node_modules", ".bin", "effect-starrocks"), "emulator", "--tables", "tables.json"],
        { cwd: project, stdio: ["ignore", "pipe", "pipe"] }
      )
      try {
        const ready = await new Promise<{ fe: ReadonlyArray<string>; admin: string }>((resolve, reject) => {
          let out = ""
          let err = ""
          const timer = setTimeout(() => reject(new Error(`emulator not ready within 30 s: ${err}`)), 30_000)
          emulator.stderr!.on("data", (b: Buffer) => (err += b.toString()))
          emulator.stdout!.on("data", (b: Buffer) => {
            out += b.toString()
            const nl = out.indexOf("\n")
            if (nl >= 0) {
              clearTimeout(timer)
              resolve(JSON.parse(out.slice(0, nl)))
            }
          })
          emulator.once("exit", (code) => reject(new Error(`emulator exited with ${code}: ${err}`)))
        })
        const printed = await run(process.execPath, ["load.mjs", ready.fe[0]!], project)
        assert.deepStrictEqual(JSON.parse(printed.trim().split("\n").pop()!), { rows: 1000, loads: 1 })
        const stored = (await fetch(`${ready.admin}/tables/demo/t`).then((r) => r.json())) as Array<
          Record<string, unknown>
        >
        assert.strictEqual(stored.length, 1000)
        assert.strictEqual(stored.find((r) => String(r["id"]) === "4")?.["note"], "n4")
        assert.strictEqual(stored.find((r) => String(r["id"]) === "3")?.["note"], null)

        // the installed command runs the bundle, and its `load` lands a file's rows
        const bin = Path.join(project, "node_modules", "@effect-starrocks", "cli", "bin", "effect-starrocks.cjs")
        assert.include(Fs.readFileSync(bin, "utf8"), `require("../bundle/effect-starrocks.cjs")`)
        // with the code cache made at pack time, which this node accepts
        // (both bundles: the whole command's, and the loader's, which runs the plain `load` below)
        for (const [name, cache] of [[bundleName, cacheName], [loadBundleName, loadCacheName]] as const) {
          const bundled = Path.join(Path.dirname(bin), "..", "bundle", name)
          const text = Fs.readFileSync(bundled, "utf8")
          // the module's function, as the entry compiles it
          assert.isTrue(text.startsWith(wrapperHead) && text.endsWith(wrapperTail), name)
          const script = new Vm.Script(text, {
            filename: bundled,
            cachedData: Fs.readFileSync(Path.join(Path.dirname(bundled), cache))
          })
          assert.isFalse(script.cachedDataRejected, name)
        }
        Fs.writeFileSync(Path.join(project, "rows.csv"), "2001,a\n2002,\\N\n2003,c\n")
        // the bin is the sh/JavaScript launcher (packages/cli/scripts/launcher.ts): the emulator above ran it as
        // JavaScript (node <file>), the load below runs it as a user does, through npm's .bin link and sh
        assert.isTrue(Fs.readFileSync(bin, "utf8").startsWith("#!/bin/sh\n':' //; "))
        const loaded = await run(
          Path.join(project, "node_modules", ".bin", "effect-starrocks"),
          [
            "load",
            "rows.csv",
            "--table",
            "demo.t",
            "--load-url",
            ready.fe[0]!
          ],
          project
        )
        assert.strictEqual((JSON.parse(loaded.trim().split("\n").pop()!) as { rows: number }).rows, 3)
        const after = (await fetch(`${ready.admin}/tables/demo/t`).then((r) => r.json())) as Array<
          Record<string, unknown>
        >
        assert.strictEqual(after.length, 1003)
        assert.strictEqual(after.find((r) => String(r["id"]) === "2003")?.["note"], "c")
        assert.strictEqual(after.find((r) => String(r["id"]) === "2002")?.["note"], null)
      } finally {
        emulator.kill("SIGTERM")
      }
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 600_000)
})
