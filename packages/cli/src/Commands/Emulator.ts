/**
 * `effect-starrocks emulator --tables tables.json [--fes N] [--bes N] [--storage memory|mysql://user@host:port/db]
 * [--starrocks-version X.Y] [--duplicate-label-mode fail] [...every version knob]`
 *
 * Starts the StarRocks emulator, prints one JSON line `{"fe":[...],"bes":[...],"admin":"http://127.0.0.1:PORT"}`
 * on stdout when it is ready, and runs until SIGTERM / SIGINT (then closes the servers and exits 0).
 *
 * Knobs: `--starrocks-version` sets every version knob as that StarRocks version behaves; the tables file's fields
 * (`"starrocksVersion"`, `"duplicateLabelMode"`, ...) override it, and each flag overrides both. docs/testkit.md
 * lists them with the versions each value belongs to.
 *
 * @since 0.1.0
 */
import type * as StarRocksEmulator from "@effect-starrocks/testkit/StarRocksEmulator"
import type * as TablesFile from "@effect-starrocks/testkit/TablesFile"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"

const tables = Options.file("tables", { exists: "yes" }).pipe(
  Options.withDescription("the tables file: {\"users\":{...},\"tables\":[{database,table,model,key,columns}]}"),
  Options.optional
)

const fes = Options.integer("fes").pipe(
  Options.withDescription("number of FE nodes (HTTP servers on 127.0.0.1)"),
  Options.withDefault(1)
)

const bes = Options.integer("bes").pipe(
  Options.withDescription("number of BE nodes (HTTP servers on 127.0.0.2, 127.0.0.3, ...)"),
  Options.withDefault(1)
)

const storage = Options.text("storage").pipe(
  Options.withDescription(
    "where tables, rows and transactions live: memory (default) or mysql://user[:password]@host:port/database"
  ),
  Options.withDefault("memory")
)

const describe = (text: string) => <A>(o: Options.Options<A>) => o.pipe(Options.withDescription(text), Options.optional)

const bool = (name: string, text: string) =>
  Options.choice(name, ["true", "false"]).pipe(Options.map((v) => v === "true"), describe(text))

const int = (name: string, text: string) => Options.integer(name).pipe(describe(text))

const starrocksVersion = Options.text("starrocks-version").pipe(
  describe("behave as this StarRocks version (X.Y or X.Y.Z): sets every version knob below; default the newest")
)

/** One flag per knob of `StarRocksVersion.VersionOptions`, plus the emulator's own knobs. */
const knobs = {
  requireExpect: bool("require-expect", "FE refuses HTTP/1.1 stream loads without Expect: 100-continue"),
  duplicateLabelMode: Options.choice("duplicate-label-mode", ["label-already-exists", "fail"]).pipe(
    describe("a reused label: Label Already Exists (main branch, <=3.2) or the wrapped Fail of 3.3-3.5")
  ),
  planTimeField: Options.choice("plan-time-field", ["StreamLoadPlanTimeMs", "StreamLoadPutTimeMs"]).pipe(
    describe("name of the plan-time field in stream-load replies (StreamLoadPutTimeMs before 2.2.5 / 2.3.2)")
  ),
  loadStateShape: Options.choice("load-state-shape", ["new", "old"]).pipe(
    describe("get_load_state / 401 body shape: old before 3.2, new adds code, message, reason")
  ),
  emptyLoadAsError: bool("empty-load-as-error", "FE empty_load_as_error"),
  emptyLoadMessage: Options.choice("empty-load-message", ["new", "old"]).pipe(
    describe("empty-load message: old (all partitions have no load data, <=3.2) or new (3.3+)")
  ),
  labelKeepMaxSecond: int("label-keep-max-second", "FE label_keep_max_second (259200)"),
  labelKeepMaxNum: int("label-keep-max-num", "FE label_keep_max_num per database (1000)"),
  streamingLoadMaxMb: int("streaming-load-max-mb", "BE streaming_load_max_mb (102400)"),
  maxRunningTxnNumPerDb: int("max-running-txn-num-per-db", "FE max_running_txn_num_per_db"),
  legacyCsvStartLookahead: bool(
    "legacy-csv-start-lookahead",
    "the CSV reader before StarRocks PR #37381 (3.0.x, 3.1.x, 3.2.0-3.2.2)"
  ),
  streamLoadDefaultTimeoutSecond: int("stream-load-default-timeout-second", "FE stream_load_default_timeout_second"),
  preparedTransactionDefaultTimeoutSecond: int(
    "prepared-transaction-default-timeout-second",
    "FE prepared_transaction_default_timeout_second"
  ),
  cleanerIntervalMs: int("cleaner-interval-ms", "how often timeouts, publish and label retention run (30000)"),
  beHttpAuth: bool("be-http-auth", "BE enable_http_auth: the ErrorURL download needs Basic auth"),
  seed: int("seed", "seed of the fault-injection PRNG"),
  beDownAbortMs: int("be-down-abort-ms", "how long a BE is down before its open transactions are aborted")
}

const tlsCert = Options.file("tls-cert", { exists: "yes" }).pipe(
  describe("serve https: the certificate chain (PEM file); needs --tls-key")
)
const tlsKey = Options.file("tls-key", { exists: "yes" }).pipe(
  describe("serve https: the private key (PEM file); needs --tls-cert")
)
const beTls = bool("be-tls", "with TLS: the BEs serve https too (default true); false keeps them on plain http")

/** The flags that were given, as emulator options. */
export const givenKnobs = (
  values: Readonly<Record<string, Option.Option<unknown>>>
): Partial<StarRocksEmulator.Options> => {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(values)) {
    if (Option.isSome(v)) out[k] = v.value
  }
  return out as Partial<StarRocksEmulator.Options>
}

/** The `--storage` value: `memory` or a MySQL URL. */
export const parseStorage = (value: string): { readonly _tag: "Memory" } | { readonly _tag: "Mysql"; url: string } =>
  value === "memory" ? { _tag: "Memory" } : { _tag: "Mysql", url: value }

const fail = (message: string) =>
  Effect.zipRight(Console.error(`effect-starrocks emulator: ${message}`), Effect.fail(message))

/** A module of the testkit, loaded when the command runs; a failure to load it is printed, as any other. */
const loadModule = <A>(load: () => Promise<A>) =>
  Effect.tryPromise({ try: load, catch: (e) => `cannot load the emulator: ${String(e)}` }).pipe(
    Effect.catchAll(fail)
  )

/**
 * @since 0.1.0
 * @category commands
 */
export const emulator = Command.make(
  "emulator",
  { tables, fes, bes, storage, starrocksVersion, tlsCert, tlsKey, beTls, ...knobs },
  (options) =>
    Effect.gen(function*() {
      if (options.fes < 1 || options.bes < 0) return yield* fail("--fes must be at least 1 and --bes at least 0")
      if (options.storage !== "memory" && !/^(mysql|mariadb):\/\//.test(options.storage)) {
        return yield* fail(`--storage must be memory or mysql://user@host:port/database, got ${options.storage}`)
      }
      // the testkit is loaded by this command only, not with the command line: its small modules first (a bad
      // flag or tables file fails before the emulator itself is loaded)
      const [StarRocksVersion, TablesFile] = yield* loadModule(() =>
        Promise.all([
          import("@effect-starrocks/testkit/StarRocksVersion"),
          import("@effect-starrocks/testkit/TablesFile")
        ])
      )
      if (Option.isSome(options.starrocksVersion)) {
        const v = StarRocksVersion.parse(options.starrocksVersion.value)
        if (typeof v === "string") return yield* fail(`--starrocks-version: ${v}`)
      }
      const file: TablesFile.TablesFile = Option.isSome(options.tables)
        ? yield* TablesFile.readFile(options.tables.value).pipe(Effect.catchAll((e) => fail(e.message)))
        : {}
      const {
        beTls: fileBeTls,
        tables: fileTables,
        tlsCert: fileCert,
        tlsKey: fileKey,
        users: fileUsers,
        ...fileKnobs
      } = file
      const {
        beTls: flagBeTls,
        bes: _bes,
        fes: _fes,
        starrocksVersion: flagVersion,
        storage: _storage,
        tables: _tables,
        tlsCert: flagCert,
        tlsKey: flagKey,
        ...flags
      } = options
      // TLS: the flags win over the tables file, whose relative paths are resolved against its directory
      const fileDir = Option.isSome(options.tables) ? Path.dirname(options.tables.value) : "."
      const certPath = Option.getOrUndefined(flagCert) ?? (fileCert && Path.resolve(fileDir, fileCert))
      const keyPath = Option.getOrUndefined(flagKey) ?? (fileKey && Path.resolve(fileDir, fileKey))
      if ((certPath === undefined) !== (keyPath === undefined)) {
        return yield* fail("--tls-cert and --tls-key (tlsCert and tlsKey) are given together")
      }
      const readPem = (p: string) =>
        Effect.tryPromise({ try: () => Fs.readFile(p, "utf8"), catch: (e) => `cannot read ${p}: ${String(e)}` })
          .pipe(Effect.catchAll(fail))
      const tls = certPath !== undefined && keyPath !== undefined
        ? { cert: yield* readPem(certPath), key: yield* readPem(keyPath) }
        : undefined
      const beTlsValue = Option.getOrUndefined(flagBeTls) ?? fileBeTls
      const store = parseStorage(options.storage)
      const backend = store._tag === "Mysql"
        ? yield* loadModule(() => import("@effect-starrocks/testkit/MysqlStorage")).pipe(
          Effect.flatMap((MysqlStorage) => MysqlStorage.make(store.url).pipe(Effect.catchAll((e) => fail(e.message))))
        )
        : undefined
      const StarRocksEmulator = yield* loadModule(() => import("@effect-starrocks/testkit/StarRocksEmulator"))
      const emu = yield* StarRocksEmulator.make({
        ...fileKnobs,
        ...(Option.isSome(flagVersion) ? { starrocksVersion: flagVersion.value } : {}),
        ...givenKnobs(flags),
        ...(fileUsers !== undefined ? { users: fileUsers } : {}),
        ...(fileTables !== undefined ? { tables: fileTables } : {}),
        fes: options.fes,
        bes: options.bes,
        ...(tls !== undefined ? { tls } : {}),
        ...(beTlsValue !== undefined ? { beTls: beTlsValue } : {}),
        ...(backend !== undefined ? { storage: backend } : {}),
        admin: true
      }).pipe(Effect.catchAll((e) => fail(e instanceof Error ? e.message : String(e))))
      // the scheme only when TLS is on, so the plain line stays as documented
      yield* Console.log(
        JSON.stringify(
          tls === undefined
            ? { fe: emu.fe, bes: emu.bes, admin: emu.admin }
            : { fe: emu.fe, bes: emu.bes, admin: emu.admin, scheme: emu.scheme }
        )
      )
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(Command.withDescription("run the StarRocks HTTP emulator until SIGTERM"))
