/**
 * The client side of TLS (issue #9, "What to build" 4) against the emulator served over https with a throw-away
 * CA: the user's CA, no CA (a typed verification error, not retried), `verify: false`, the server name, an https FE
 * redirecting to a plain-http BE (refused unless allowed by name), mutual TLS, and the Flink-style keys and
 * `STARROCKS_TLS_*` variables. The client key never shows in an error or a log.
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Logger, LogLevel, Redacted, Ref, Schema, Stream } from "effect"
import { execFileSync } from "node:child_process"
import * as Https from "node:https"
import type * as Net from "node:net"
import type * as Tls from "node:tls"
import { afterAll, beforeAll } from "vitest"
import { ColumnType, StarRocksConfig, StarRocksError, StarRocksSink } from "../src/index.js"
import { exchange } from "../src/internal/client/transport.js"
import type { Pki } from "./tlsFixture.js"
import { makePki } from "./tlsFixture.js"

let pki: Pki

beforeAll(() => {
  pki = makePki()
}, 60_000)

afterAll(() => pki?.remove())

const Row = Schema.Struct({ id: ColumnType.Int, name: Schema.String })
const rows = [{ id: 1, name: "a" }, { id: 2, name: "b" }]

const emulator = (beTls = true) =>
  Effect.gen(function*() {
    const emu = yield* StarRocksEmulator.make({
      users: { root: "" },
      tls: { cert: pki.serverCert, key: pki.serverKey },
      beTls
    })
    yield* emu.createTable({
      database: "db",
      table: "t",
      model: "DUPLICATE",
      key: [],
      columns: [{ name: "id", type: "INT" }, { name: "name", type: "VARCHAR(16)" }]
    })
    return emu
  })

/** Runs the sink over https with `tls`, collecting the logs. */
const run = (
  emu: StarRocksEmulator.StarRocksEmulator,
  tls: StarRocksConfig.TlsOptions | undefined,
  extra: Partial<StarRocksConfig.Options> = {}
) =>
  Effect.gen(function*() {
    const logs = yield* Ref.make<ReadonlyArray<string>>([])
    const logger = Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ annotations, message }) =>
        Effect.runSync(
          Ref.update(logs, (xs) => [...xs, `${JSON.stringify(message)} ${JSON.stringify([...annotations])}`])
        )
      )
    )
    const config = StarRocksConfig.make({
      loadUrl: `https://${emu.fe[0]}`,
      database: "db",
      table: "t",
      username: "root",
      password: Redacted.make(""),
      allowSmallBuffers: true,
      maxRows: 1000,
      ...(tls !== undefined ? { tls } : {}),
      ...extra
    })
    const started = Date.now()
    const exit = yield* Stream.run(Stream.fromIterable(rows), StarRocksSink.make(Row)).pipe(
      Effect.provide(StarRocksSink.layer(config)),
      Effect.provide(logger),
      Logger.withMinimumLogLevel(LogLevel.Debug),
      Effect.exit
    )
    return { exit, ms: Date.now() - started, logs: yield* Ref.get(logs), stored: yield* emu.rows("db", "t") }
  })

const failure = (exit: Exit.Exit<unknown, unknown>): any => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") assert.fail(`no typed error: ${String(exit)}`)
  return (exit.cause as { error: unknown }).error
}

const landed = (o: { exit: Exit.Exit<unknown, unknown>; stored: ReadonlyArray<unknown> }) => {
  if (Exit.isFailure(o.exit)) assert.fail(String(o.exit.cause))
  assert.deepStrictEqual(o.stored, [{ id: 1, name: "a" }, { id: 2, name: "b" }])
}

/** Nothing the user gave as a key shows (the PEM body of the key). */
const assertNoKey = (text: string) => {
  const body = pki.clientKey.split("\n")[1]!
  assert.notInclude(text, body)
  assert.notInclude(text, "PRIVATE KEY")
}

describe("TLS client", () => {
  it.scoped("the user's CA: rows land over https (FE and BE)", () =>
    Effect.gen(function*() {
      const emu = yield* emulator()
      landed(yield* run(emu, { ca: pki.ca }))
    }), 30_000)

  it.scoped("no CA: a typed TransportError (verification) that is not retried", () =>
    Effect.gen(function*() {
      const emu = yield* emulator()
      // three retries 5 s apart would take 15 s: a verification failure is not retried
      // the load's own request (the startup check, which fails the same way first, is off here)
      const o = yield* run(emu, { cert: pki.clientCert, key: Redacted.make(pki.clientKey) }, {
        maxRetries: 3,
        retryInterval: "5 seconds",
        startupCheck: false
      })
      const e = failure(o.exit)
      assert.strictEqual(e._tag, "TransportError")
      assert.include(["SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"], e.code)
      assert.isFalse(StarRocksError.isRetryable(e))
      assert.isBelow(o.ms, 4_000)
      assert.deepStrictEqual(o.stored, [])
      assertNoKey(`${String(o.exit)} ${JSON.stringify(e)} ${o.logs.join("\n")}`)
    }), 30_000)

  it.scoped("verify: false: rows land without the CA", () =>
    Effect.gen(function*() {
      const emu = yield* emulator()
      landed(yield* run(emu, { verify: false }))
    }), 30_000)

  it.scoped(
    "serverName: the certificate is checked against it (SNI) instead of the URL's host",
    () =>
      Effect.gen(function*() {
        const emu = yield* emulator()
        landed(yield* run(emu, { ca: pki.ca, serverName: "starrocks.test" }))
        const e = failure((yield* run(emu, { ca: pki.ca, serverName: "elsewhere.test" }, { startupCheck: false })).exit)
        assert.strictEqual(e._tag, "TransportError")
        assert.strictEqual(e.code, "ERR_TLS_CERT_ALTNAME_INVALID")
        assert.include(e.reason, "elsewhere.test")
      }),
    30_000
  )

  it.scoped(
    "an https FE redirecting to a plain-http BE is refused by name, and followed when allowed",
    () =>
      Effect.gen(function*() {
        const emu = yield* emulator(false)
        assert.deepStrictEqual(emu.scheme, { fe: "https", be: "http" })
        const refused = yield* run(emu, { ca: pki.ca })
        const e = failure(refused.exit)
        assert.strictEqual(e._tag, "RedirectError")
        assert.include(e.reason, "https→http redirect refused")
        assert.include(e.reason, "StarRocks BEs often serve plain http")
        assert.include(e.reason, "sink.tls.allow-http-redirect")
        assert.include(e.location, "http://")
        assert.deepStrictEqual(refused.stored, [])
        landed(yield* run(emu, { ca: pki.ca, allowHttpRedirect: true }))
      }),
    30_000
  )

  it.scoped(
    "mutual TLS: the client certificate and key are presented; the key never shows",
    () =>
      Effect.gen(function*() {
        // a server that requires a client certificate signed by the CA
        const server = yield* Effect.acquireRelease(
          Effect.async<Https.Server>((resume) => {
            const s = Https.createServer(
              { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requestCert: true, rejectUnauthorized: true },
              (req, res) => {
                const peer = (req.socket as Tls.TLSSocket).getPeerCertificate()
                res.end(`hello ${peer.subject?.CN ?? "?"}`)
              }
            )
            s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
            return Effect.void
          }),
          (s) =>
            Effect.async<void>((resume) => {
              s.close(() => resume(Effect.void))
            })
        )
        const url = new URL(`https://127.0.0.1:${(server.address() as Net.AddressInfo).port}/`)
        const options = {
          connectTimeoutMs: 5_000,
          continueTimeoutMs: 5_000,
          socketTimeoutMs: 5_000,
          maxRedirects: 0,
          beHostMap: new Map<string, string>()
        }
        const request = { method: "GET" as const, url, headers: {}, expectContinue: false }
        const ok = yield* exchange(request, {
          ...options,
          tls: { ca: pki.ca, cert: pki.clientCert, key: () => pki.clientKey, rejectUnauthorized: true }
        })
        assert.strictEqual(ok.status, 200)
        assert.strictEqual(ok.body, "hello client")
        const refused = yield* Effect.flip(
          exchange(request, { ...options, tls: { ca: pki.ca, rejectUnauthorized: true } })
        )
        assert.strictEqual(refused._tag, "TransportError")

        // the resolved config keeps the key redacted: printing or serializing the config shows no key
        const config = StarRocksConfig.make({
          loadUrl: "https://127.0.0.1:1",
          database: "db",
          table: "t",
          username: "root",
          password: Redacted.make(""),
          tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey }
        })
        assert.isTrue(Redacted.isRedacted(config.tls.key))
        assertNoKey(JSON.stringify(config))
        assertNoKey(String(config.tls.key))
      }),
    30_000
  )

  it.effect("the Flink-style keys and STARROCKS_TLS_* variables read the files; a bad key file never shows its text", () =>
    Effect.gen(function*() {
      const props = {
        "load-url": "https://127.0.0.1:8030",
        "database-name": "db",
        "table-name": "t",
        username: "root",
        password: "",
        "sink.tls.ca-file": pki.files.ca,
        "sink.tls.cert-file": pki.files.clientCert,
        "sink.tls.key-file": pki.files.clientKey,
        "sink.tls.server-name": "starrocks.test",
        "sink.tls.verify": "false",
        "sink.tls.allow-http-redirect": "true"
      }
      const fromProps = yield* StarRocksConfig.fromProperties(props)
      assert.strictEqual(fromProps.tls.ca, pki.ca)
      assert.strictEqual(fromProps.tls.cert, pki.clientCert)
      assert.strictEqual(Redacted.value(fromProps.tls.key!), pki.clientKey)
      assert.strictEqual(fromProps.tls.serverName, "starrocks.test")
      assert.isFalse(fromProps.tls.verify)
      assert.isTrue(fromProps.tls.allowHttpRedirect)

      const env = new Map<string, string>([
        ["STARROCKS_LOAD_URL", "https://127.0.0.1:8030"],
        ["STARROCKS_DATABASE", "db"],
        ["STARROCKS_TABLE", "t"],
        ["STARROCKS_USERNAME", "root"],
        ["STARROCKS_PASSWORD", ""],
        ["STARROCKS_TLS_CA_FILE", pki.files.ca],
        ["STARROCKS_TLS_VERIFY", "true"]
      ])
      const fromEnv = yield* Effect.withConfigProvider(
        StarRocksConfig.config,
        ConfigProvider.fromMap(env, { pathDelim: "_" })
      )
      assert.strictEqual(fromEnv.tls.ca, pki.ca)
      assert.isTrue(fromEnv.tls.verify)
      assert.isFalse(fromEnv.tls.allowHttpRedirect)

      // a key file that is a certificate's neighbour by mistake, a missing file, a bad switch: each named
      const bad = yield* Effect.flip(StarRocksConfig.fromProperties({
        ...props,
        "sink.tls.key-file": pki.files.ca + ".missing",
        "sink.tls.verify": "maybe"
      }))
      assert.sameMembers(bad.problems.map((p) => p.key), ["sink.tls.key-file", "sink.tls.verify"])
      // the typed option refuses a key that is not PEM without showing it
      const typed = StarRocksConfig.makeEither({
        loadUrl: "https://127.0.0.1:8030",
        database: "db",
        table: "t",
        username: "root",
        password: Redacted.make(""),
        tls: { key: Redacted.make("secret-key-text"), cert: pki.clientCert }
      })
      assert.isTrue(typed._tag === "Left")
      if (typed._tag === "Left") {
        assert.strictEqual(typed.left.problems[0]!.key, "tls.key")
        assert.notInclude(typed.left.message, "secret-key-text")
      }
    }))

  it("node:https and node:tls are loaded with the first https URL, not with the sink", () => {
    // a fresh process: this one has loaded node:https already
    const script = `
      const loaded = () => process.moduleLoadList.filter((m) => /^NativeModule (https|tls)$/.test(m)).length
      await import("./src/index.ts")
      const { makeAgents } = await import("./src/internal/client/transport.ts")
      const atImport = loaded()
      const agents = makeAgents()
      agents.get(new URL("http://127.0.0.1:8030"))
      const afterHttp = loaded()
      agents.get(new URL("https://127.0.0.1:8443"))
      console.log(JSON.stringify([atImport, afterHttp, loaded()]))
      agents.destroy()
    `
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: new URL("..", import.meta.url),
      encoding: "utf8"
    })
    assert.deepStrictEqual(JSON.parse(out.trim()), [0, 0, 2])
  }, 30_000)
})
