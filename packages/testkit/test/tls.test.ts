/**
 * TLS: FEs and BEs over https with a given certificate (a CA and a server certificate made with `openssl` in a
 * temporary directory for this run), the 307 to the BE's https address, a client that does not trust the CA, and
 * the `beTls: false` cluster whose https FE redirects to a plain-http BE.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, beforeAll } from "vitest"
import * as StarRocksEmulator from "../src/StarRocksEmulator.js"
import { follow, request, ROOT, TABLES } from "./utils.js"

let dir = ""
let pem: { readonly ca: string; readonly cert: string; readonly key: string } = { ca: "", cert: "", key: "" }

beforeAll(() => {
  dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "emulator-tls-"))
  const run = (...args: ReadonlyArray<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
  run(..."req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=emulator-test-CA".split(" "))
  run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=emulator")
  Fs.writeFileSync(
    Path.join(dir, "san.ext"),
    "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3\nbasicConstraints=CA:FALSE\n"
  )
  run(
    ..."x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext"
      .split(" ")
  )
  const read = (f: string) => Fs.readFileSync(Path.join(dir, f), "utf8")
  pem = { ca: read("ca.pem"), cert: read("server.pem"), key: read("server.key") }
}, 60_000)

afterAll(() => {
  if (dir !== "") Fs.rmSync(dir, { recursive: true, force: true })
})

const load = (url: string, label: string, body: string, ca: string | undefined) =>
  Effect.promise(() =>
    follow(url, { auth: ROOT, headers: { label, column_separator: "," }, body, ...(ca !== undefined ? { ca } : {}) })
  )

describe("TLS", () => {
  it.scoped("an https FE redirects to the BE's https address and the load lands its rows", () =>
    Effect.gen(function*() {
      const emu = yield* StarRocksEmulator.make({ ...TABLES, tls: { cert: pem.cert, key: pem.key }, admin: false })
      assert.deepStrictEqual(emu.scheme, { fe: "https", be: "https" })
      const url = `https://${emu.fe[0]}/api/d/t/_stream_load`
      const first = yield* Effect.promise(() =>
        request(url, { auth: ROOT, headers: { label: "tls1" }, body: "1,a\n", ca: pem.ca })
      )
      assert.strictEqual(first.status, 307)
      assert.strictEqual(first.headers.location, `https://${emu.bes[0]}/api/d/t/_stream_load`)
      const res = yield* load(url, "tls1", "1,a\n2,b\n", pem.ca)
      assert.strictEqual(res.json.Status, "Success")
      assert.deepStrictEqual(yield* emu.rows("d", "t"), [{ id: 1n, name: "a" }, { id: 2n, name: "b" }])
      // a filtered row's ErrorURL names the https BE, and the log downloads over https
      const bad = yield* load(url, "tls2", "3\n", pem.ca)
      assert.strictEqual(bad.json.Status, "Fail")
      assert.match(bad.json.ErrorURL, new RegExp(`^https://${emu.bes[0]!.replace(/\./g, "\\.")}/api/_load_error_log`))
      const log = yield* Effect.promise(() => request(bad.json.ErrorURL, { method: "GET", ca: pem.ca }))
      assert.strictEqual(log.status, 200)
      assert.match(log.text, /^Error: Target column count: 2 doesn't match source value column count: 1\./)
    }))

  it.scoped("a client that does not trust the CA fails TLS verification; a plain-http client gets no answer", () =>
    Effect.gen(function*() {
      const emu = yield* StarRocksEmulator.make({ ...TABLES, tls: { cert: pem.cert, key: pem.key }, admin: false })
      const url = `https://${emu.fe[0]}/api/d/t/_stream_load`
      const err = yield* Effect.flip(
        Effect.tryPromise(() => request(url, { auth: ROOT, headers: { label: "x" }, body: "1,a\n" }))
      )
      const code = (err.cause as NodeJS.ErrnoException).code
      assert.include(["SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"], code)
      const plain = yield* Effect.flip(
        Effect.tryPromise(() => request(`http://${emu.fe[0]}/api/d/t/_stream_load`, { auth: ROOT, body: "1,a\n" }))
      )
      assert.instanceOf(plain, Error)
      assert.deepStrictEqual(yield* emu.rows("d", "t"), [])
    }))

  it.scoped("beTls: false — the https FE redirects to a plain-http BE (stream load and transaction begin)", () =>
    Effect.gen(function*() {
      const emu = yield* StarRocksEmulator.make({
        ...TABLES,
        tls: { cert: pem.cert, key: pem.key },
        beTls: false,
        admin: false
      })
      assert.deepStrictEqual(emu.scheme, { fe: "https", be: "http" })
      const url = `https://${emu.fe[0]}/api/d/t/_stream_load`
      const first = yield* Effect.promise(() =>
        request(url, { auth: ROOT, headers: { label: "p1" }, body: "1,a\n", ca: pem.ca })
      )
      assert.strictEqual(first.status, 307)
      assert.strictEqual(first.headers.location, `http://${emu.bes[0]}/api/d/t/_stream_load`)
      const res = yield* load(url, "p1", "1,a\n", pem.ca)
      assert.strictEqual(res.json.Status, "Success")
      assert.deepStrictEqual(yield* emu.rows("d", "t"), [{ id: 1n, name: "a" }])
      const begin = yield* Effect.promise(() =>
        request(`https://${emu.fe[0]}/api/transaction/begin`, {
          method: "POST",
          auth: ROOT,
          headers: { db: "d", table: "t", label: "p2" },
          ca: pem.ca
        })
      )
      assert.strictEqual(begin.status, 307)
      assert.strictEqual(begin.headers.location, `http://${emu.bes[0]}/api/transaction/begin`)
    }))

  it.scoped("a follower FE redirects to the leader's https address", () =>
    Effect.gen(function*() {
      const emu = yield* StarRocksEmulator.make({ ...TABLES, fes: 2, tls: { cert: pem.cert, key: pem.key } })
      const res = yield* Effect.promise(() =>
        request(`https://${emu.fe[1]}/api/d/get_load_state?label=x`, { method: "GET", auth: ROOT, ca: pem.ca })
      )
      assert.strictEqual(res.status, 307)
      assert.strictEqual(res.headers.location, `https://${emu.fe[0]}/api/d/get_load_state?label=x`)
    }))
})
