/**
 * NODE_EXTRA_CA_CERTS and the installed command (packages/cli/scripts/launcher.ts): the launcher moves the variable
 * aside for `load` only (node 20 parses its file at every start), and `load` still trusts those certificates for an
 * https load URL (packages/cli/src/internal/load/run.ts, `extraCa`), read only then.
 */
import * as StarRocksConfig from "@effect-starrocks/sink/StarRocksConfig"
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { execFile, execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Tls from "node:tls"
import { bundle } from "../scripts/bundle.js"
import { extraCaVariable, mallocArenaMax, writeLauncher } from "../scripts/launcher.js"
import { extraCa } from "../src/internal/load/run.js"

/** A throw-away CA and a server certificate for 127.0.0.1 (as bundle.test.ts makes them). */
const makeCa = (dir: string) => {
  const ssl = (...args: ReadonlyArray<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
  ssl(..."req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=extra-ca-test-CA".split(" "))
  ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=em")
  Fs.writeFileSync(Path.join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,IP:127.0.0.2\n")
  ssl(
    ..."x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext"
      .split(" ")
  )
  return {
    ca: Path.join(dir, "ca.pem"),
    cert: Fs.readFileSync(Path.join(dir, "server.pem")),
    key: Fs.readFileSync(Path.join(dir, "server.key"))
  }
}

/** The environment without what would change these runs: TLS and connection variables, node's CA file. */
const cleanEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (
      v === undefined || k.startsWith("STARROCKS_") || k === "NODE_EXTRA_CA_CERTS" || k === extraCaVariable ||
      k === "MALLOC_ARENA_MAX"
    ) continue
    env[k] = v
  }
  return env
}

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const spawnRun = (file: string, args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.async<Run>((resume) => {
    execFile(
      file,
      args,
      { encoding: "utf8", env },
      (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error === null ? 0 : (error.code as number | null) ?? 1, stdout, stderr }))
    )
  })

describe("NODE_EXTRA_CA_CERTS and the installed command", () => {
  it.live("the launcher moves NODE_EXTRA_CA_CERTS aside and sets MALLOC_ARENA_MAX for load only, and passes the command line as it is", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-launcher-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      // a package as npm installs it: bin/ with the launcher, .bin/ with a link to it, and a stub for the bundle
      // that prints what it was started with
      Fs.mkdirSync(Path.join(dir, "package", "bin"), { recursive: true })
      Fs.mkdirSync(Path.join(dir, ".bin"))
      Fs.writeFileSync(
        Path.join(dir, "package", "stub.cjs"),
        "console.log(JSON.stringify({ argv: process.argv.slice(2), node: process.env.NODE_EXTRA_CA_CERTS ?? null, " +
          `moved: process.env.${extraCaVariable} ?? null, arenas: process.env.MALLOC_ARENA_MAX ?? null }))\n`
      )
      writeLauncher(Path.join(dir, "package", "bin", "effect-starrocks.cjs"), "effect-starrocks", "../stub.cjs")
      const link = Path.join(dir, ".bin", "effect-starrocks")
      Fs.symlinkSync("../package/bin/effect-starrocks.cjs", link)
      // a real file of certificates: node reads it where the variable stays
      const certs = Path.join(dir, "certs.pem")
      Fs.writeFileSync(certs, Tls.rootCertificates[0]!)
      const started = (file: string, args: ReadonlyArray<string>, env: Record<string, string>) =>
        spawnRun(file, args, env).pipe(Effect.map((run) => {
          assert.strictEqual(run.code, 0, run.stderr)
          return JSON.parse(run.stdout) as {
            argv: ReadonlyArray<string>
            node: string | null
            moved: string | null
            arenas: string | null
          }
        }))
      const marked = { ...cleanEnv(), NODE_EXTRA_CA_CERTS: certs }
      const args = ["load", "a file.csv", "--table", "db.t", "--load-url", "https://fe:8030", "$HOME", "*"]
      // and for load only, MALLOC_ARENA_MAX (mallocArenaMax) unless the environment sets it
      const arenas = String(mallocArenaMax)
      assert.deepStrictEqual(yield* started(link, args, marked), { argv: args, node: null, moved: certs, arenas })
      assert.deepStrictEqual(yield* started(link, args, { ...marked, MALLOC_ARENA_MAX: "4" }), {
        argv: args,
        node: null,
        moved: certs,
        arenas: "4"
      })
      // describe and labels connect with mysql2, which relies on node's handling of the variable
      for (const command of ["describe", "labels", "emulator"]) {
        assert.deepStrictEqual(yield* started(link, [command, "load"], marked), {
          argv: [command, "load"],
          node: certs,
          moved: null,
          arenas: null
        })
      }
      assert.deepStrictEqual(yield* started(link, [], marked), { argv: [], node: certs, moved: null, arenas: null })
      // without the variable, nothing is moved
      assert.deepStrictEqual(yield* started(link, args, cleanEnv()), { argv: args, node: null, moved: null, arenas })
      // run as JavaScript (node <file>), it is the same command with the variable left as it is
      assert.deepStrictEqual(
        yield* started(process.execPath, [Path.join(dir, "package", "bin", "effect-starrocks.cjs"), ...args], marked),
        { argv: args, node: certs, moved: null, arenas: null }
      )
    }).pipe(Effect.scoped))

  it.effect("extraCa: node's roots and the file's certificates for an https load URL without a CA of its own", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-extra-ca-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const file = Path.join(dir, "extra.pem")
      const pem = Tls.rootCertificates[1]!
      Fs.writeFileSync(file, pem)
      const base = {
        "database-name": "db",
        "table-name": "t",
        username: "root",
        password: ""
      }
      const https = yield* StarRocksConfig.fromProperties({ ...base, "load-url": "https://127.0.0.1:8030" })
      const http = yield* StarRocksConfig.fromProperties({ ...base, "load-url": "127.0.0.1:8030" })
      const env = { [extraCaVariable]: file }
      const trusted = yield* extraCa(https, env)
      assert.strictEqual(trusted.tls.ca, [...Tls.rootCertificates, pem].join("\n"))
      assert.isTrue(trusted.tls.verify)
      // plain HTTP, no variable, or a CA of the configuration's own: the configuration as it is, the file unread
      Fs.rmSync(file)
      assert.strictEqual(yield* extraCa(http, env), http)
      // a plain-HTTP FE whose BEs are reached through an https proxy (be-host-map): the certificates too
      const proxied = yield* StarRocksConfig.fromProperties({
        ...base,
        "load-url": "127.0.0.1:8030",
        "be-host-map": "10.0.0.5:8040=https://proxy.example:443"
      })
      Fs.writeFileSync(file, pem)
      assert.strictEqual((yield* extraCa(proxied, env)).tls.ca, [...Tls.rootCertificates, pem].join("\n"))
      Fs.rmSync(file)
      assert.strictEqual(yield* extraCa(https, {}), https)
      const own = { ...https, tls: { ...https.tls, ca: "OWN" } }
      assert.strictEqual(yield* extraCa(own, env), own)
      // a missing file, or one without a certificate: an error naming the variable and the file
      const error = yield* Effect.flip(extraCa(https, env))
      assert.strictEqual(error._tag, "LoadOptionError")
      assert.strictEqual(error.option, extraCaVariable)
      assert.include(error.reason, file)
      assert.include(error.reason, "no such file")
      Fs.writeFileSync(file, "not a certificate\n")
      const empty = yield* Effect.flip(extraCa(https, env))
      assert.include(empty.message, `${extraCaVariable}: ${file}`)
      assert.include(empty.reason, "holds no PEM certificate")
    }).pipe(Effect.scoped))

  it.live(
    "an https load through the launcher trusts a CA given only by NODE_EXTRA_CA_CERTS; a missing file fails it",
    () =>
      Effect.gen(function*() {
        const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-extra-ca-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
        const pki = makeCa(dir)
        // the command as scripts/pack.ts installs it: the bundle in bundle/, the launcher in bin/
        const entry = yield* Effect.promise(() => bundle(Path.join(dir, "package", "bundle")))
        Fs.mkdirSync(Path.join(dir, "package", "bin"))
        const bin = Path.join(dir, "package", "bin", "effect-starrocks.cjs")
        writeLauncher(bin, "effect-starrocks", `../bundle/${Path.basename(entry)}`)
        const columns = [{ name: "id", type: "BIGINT" }, { name: "note", type: "VARCHAR(64)", nullable: true }]
        const secure = yield* StarRocksEmulator.make({
          users: { root: "" },
          fes: 1,
          bes: 1,
          tls: { cert: pki.cert, key: pki.key }
        })
        const plain = yield* StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 1 })
        for (const em of [secure, plain]) {
          yield* em.createTable({ database: "db", table: "t", model: "DUPLICATE", key: ["id"], columns }).pipe(
            Effect.orDie
          )
        }
        const csv = Path.join(dir, "rows.csv")
        Fs.writeFileSync(csv, "1,a\n2,b\n")
        const httpsUrl = `https://${secure.fe[0]!.replace(/^https?:\/\//, "")}`
        const load = (url: string, label: string, env: Record<string, string>) =>
          spawnRun(bin, ["load", csv, "--table", "db.t", "--load-url", url, "--label-prefix", label], {
            ...cleanEnv(),
            ...env
          })
        const rows = (run: Run) => (JSON.parse(run.stdout.trim().split("\n").pop()!) as { rows: number }).rows

        // the CA only in NODE_EXTRA_CA_CERTS, which the launcher moves aside: load trusts it itself
        const trusted = yield* load(httpsUrl, "extra", { NODE_EXTRA_CA_CERTS: pki.ca })
        assert.strictEqual(trusted.code, 0, trusted.stderr)
        assert.strictEqual(rows(trusted), 2)
        const landed = yield* secure.rows("db", "t").pipe(Effect.orDie)
        assert.deepStrictEqual(landed.map((r) => [String(r["id"]), r["note"]]).sort(), [["1", "a"], ["2", "b"]])

        // without it, the server's certificate is not trusted
        const untrusted = yield* load(httpsUrl, "none", {})
        assert.notStrictEqual(untrusted.code, 0)

        // a file that cannot be read: an error naming the variable and the file, for an https load URL
        const missing = Path.join(dir, "no-such.pem")
        const failed = yield* load(httpsUrl, "missing", { NODE_EXTRA_CA_CERTS: missing })
        assert.notStrictEqual(failed.code, 0)
        assert.include(failed.stderr, extraCaVariable)
        assert.include(failed.stderr, missing)
        // and not read at all for a plain-HTTP load, which loads neither node:tls nor node:https (a preload prints
        // which of node's modules the load loaded by the end)
        const probe = Path.join(dir, "modules.cjs")
        Fs.writeFileSync(
          probe,
          "process.on('exit', () => require('fs').writeSync(2, `loaded ${JSON.stringify(process.moduleLoadList)}\\n`))\n"
        )
        const overHttp = yield* load(plain.fe[0]!, "plain", {
          NODE_EXTRA_CA_CERTS: missing,
          NODE_OPTIONS: `--require ${probe}`
        })
        assert.strictEqual(overHttp.code, 0, overHttp.stderr)
        assert.strictEqual(rows(overHttp), 2)
        const loaded = JSON.parse(/^loaded (.*)$/m.exec(overHttp.stderr)![1]!) as ReadonlyArray<string>
        assert.include(loaded, "NativeModule net")
        for (const module of ["tls", "https", "_tls_wrap"]) assert.notInclude(loaded, `NativeModule ${module}`)
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )
})
