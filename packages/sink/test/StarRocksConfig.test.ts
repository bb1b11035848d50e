import { assert, describe, it } from "@effect/vitest"
import {
  Config,
  ConfigProvider,
  Duration,
  Effect,
  Either,
  Exit,
  Inspectable,
  Layer,
  Logger,
  Option,
  Redacted,
  Ref
} from "effect"
import { inspect } from "node:util"
import * as StarRocksConfig from "../src/StarRocksConfig.js"

const SECRET = "s3cr3t-pa55w0rd"

const base: StarRocksConfig.Options = {
  loadUrl: "fe1:8030",
  database: "db",
  table: "t",
  username: "root",
  password: Redacted.make(SECRET)
}

const baseProps: Record<string, string> = {
  connector: "starrocks",
  "load-url": "fe1:8030",
  "database-name": "db",
  "table-name": "t",
  username: "root",
  password: SECRET
}

const typedError = (options: StarRocksConfig.Options): StarRocksConfig.StarRocksConfigError => {
  const result = StarRocksConfig.makeEither(options)
  assert.isTrue(Either.isLeft(result), "expected a StarRocksConfigError")
  return (result as Either.Left<StarRocksConfig.StarRocksConfigError, unknown>).left
}

const propsResult = (record: Record<string, string>) =>
  Effect.runSync(
    Effect.either(StarRocksConfig.fromProperties(record)).pipe(Effect.provide(Logger.remove(Logger.defaultLogger)))
  )

const propsOk = (
  extra: Record<string, string>,
  without: ReadonlyArray<string> = []
): StarRocksConfig.StarRocksConfig => {
  const record = { ...baseProps, ...extra }
  for (const k of without) delete record[k]
  const result = propsResult(record)
  if (Either.isLeft(result)) assert.fail(result.left.message)
  return result.right
}

const propsError = (
  extra: Record<string, string>,
  without: ReadonlyArray<string> = []
): StarRocksConfig.StarRocksConfigError => {
  const record = { ...baseProps, ...extra }
  for (const k of without) delete record[k]
  const result = propsResult(record)
  assert.isTrue(Either.isLeft(result), "expected a StarRocksConfigError")
  return (result as Either.Left<StarRocksConfig.StarRocksConfigError, unknown>).left
}

/** A logger that records (level, message) pairs. */
const capturingLogger = (ref: Ref.Ref<ReadonlyArray<readonly [string, string]>>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
      Effect.runSync(Ref.update(ref, (xs) => [...xs, [logLevel.label, text] as const]))
    })
  )

const env = (entries: Record<string, string>) =>
  ConfigProvider.fromMap(new Map(Object.entries(entries)), { pathDelim: "_" })

const assertNoSecret = (text: string) => assert.notInclude(text, SECRET)

describe("StarRocksConfig", () => {
  describe("defaults", () => {
    it("make fills the documented defaults", () => {
      const c = StarRocksConfig.make(base)
      assert.deepStrictEqual(c.loadUrl, ["http://fe1:8030"])
      assert.isTrue(Option.isNone(c.jdbcUrl))
      assert.strictEqual(c.database, "db")
      assert.strictEqual(c.table, "t")
      assert.strictEqual(c.username, "root")
      assert.strictEqual(Redacted.value(c.password), SECRET)
      assert.strictEqual(c.format, "csv")
      assert.strictEqual(c.semantic, "at-least-once")
      assert.strictEqual(c.version, "AUTO")
      assert.strictEqual(c.labelPrefix, "effect-sr")
      assert.strictEqual(c.maxBytes, 94_371_840)
      assert.strictEqual(c.maxRows, 500_000)
      assert.strictEqual(Duration.toMillis(c.flushInterval), 300_000)
      assert.strictEqual(c.maxRetries, 3)
      assert.strictEqual(Duration.toMillis(c.retryInterval), 1_000)
      assert.strictEqual(Duration.toMillis(c.retryMaxDelay), 30_000)
      assert.strictEqual(Duration.toMillis(c.connectTimeout), 30_000)
      assert.isTrue(Option.isNone(c.socketTimeout))
      assert.strictEqual(Duration.toMillis(c.waitForContinueTimeout), 30_000)
      assert.strictEqual(c.ioThreadCount, 2)
      assert.deepStrictEqual(c.properties, {})
      assert.strictEqual(c.timeZone, "UTC")
      assert.strictEqual(c.beHostMap.size, 0)
      assert.deepStrictEqual(c.directBackends, [])
      assert.strictEqual(c.maxRedirects, 5)
      assert.strictEqual(c.sanitizeErrorLog, false)
      assert.isTrue(Option.isNone(c.serverVersion))
      assert.strictEqual(c.csvJsonFallback, true)
      assert.strictEqual(Duration.toMillis(c.labelStateTimeout), 60_000)
    })

    it("fromProperties with only the required keys gives the same config as make", () => {
      const a = propsOk({})
      const b = StarRocksConfig.make(base)
      assert.deepStrictEqual({ ...a, password: null, given: null }, { ...b, password: null, given: null })
      // the same options given, each named as written
      assert.deepStrictEqual(Object.keys(a.given ?? {}).sort(), Object.keys(b.given ?? {}).sort())
      assert.strictEqual(a.given?.loadUrl, "load-url")
      assert.strictEqual(b.given?.loadUrl, "loadUrl")
    })

    it("the issue's example builds", () => {
      const c = StarRocksConfig.make({
        loadUrl: ["fe1:8030", "fe2:8030"],
        database: "db",
        table: "t",
        username: "root",
        password: Redacted.make(""),
        format: "csv"
      })
      assert.deepStrictEqual(c.loadUrl, ["http://fe1:8030", "http://fe2:8030"])
    })
  })

  describe("ranges", () => {
    // [typed option, Flink key, min, max, unit]
    const cases: ReadonlyArray<readonly [keyof StarRocksConfig.Options, string, number, number]> = [
      ["maxBytes", "sink.buffer-flush.max-bytes", 67_108_864, 10_737_418_240],
      ["maxRows", "sink.buffer-flush.max-rows", 64_000, 5_000_000],
      ["flushInterval", "sink.buffer-flush.interval-ms", 1_000, 3_600_000],
      ["maxRetries", "sink.max-retries", 0, 10],
      ["retryInterval", "sink.retry.interval-ms", 1, 3_600_000],
      ["retryMaxDelay", "sink.retry.max-delay-ms", 1, 3_600_000],
      ["connectTimeout", "sink.connect.timeout-ms", 100, 60_000],
      ["socketTimeout", "sink.socket.timeout-ms", 1, 86_400_000],
      ["waitForContinueTimeout", "sink.wait-for-continue.timeout-ms", 3_000, 600_000],
      ["ioThreadCount", "sink.io.thread-count", 1, 64],
      ["maxRedirects", "sink.max-redirects", 0, 20],
      ["labelStateTimeout", "sink.label-state.timeout-ms", 100, 3_600_000]
    ]
    // keep retry base <= cap while probing one of them
    const companion = (field: string): Partial<StarRocksConfig.Options> =>
      field === "retryInterval" ?
        { retryMaxDelay: 3_600_000 } :
        field === "retryMaxDelay" ?
        { retryInterval: 1 } :
        {}
    const companionProps = (field: string): Record<string, string> =>
      Object.fromEntries(
        Object.entries(companion(field)).map(([k, v]) =>
          [k === "retryMaxDelay" ? "sink.retry.max-delay-ms" : "sink.retry.interval-ms", String(v)] as const
        )
      )

    for (const [field, key, min, max] of cases) {
      it(`${key}: ${min} and ${max} are accepted, ${min - 1} and ${max + 1} are not`, () => {
        for (const value of [min, max]) {
          const typed = StarRocksConfig.make({ ...base, ...companion(field), [field]: value })
          const fromProps = propsOk({ ...companionProps(field), [key]: String(value) })
          const read = (c: StarRocksConfig.StarRocksConfig): number => {
            const v = (c as any)[field]
            return typeof v === "number" ? v : Option.isOption(v) ?
              Duration.toMillis(Option.getOrThrow(v) as any) :
              Duration.toMillis(v)
          }
          assert.strictEqual(read(typed), value)
          assert.strictEqual(read(fromProps), value)
        }
        for (const value of [min - 1, max + 1]) {
          if (field === "socketTimeout" && value === 0) continue // 0 is rejected too, checked below
          const e1 = typedError({ ...base, ...companion(field), [field]: value })
          assert.strictEqual(e1.key, field)
          assert.include(e1.reason, "out of range")
          assert.include(e1.allowed!, `[${min}, ${max}]`)
          assert.include(e1.message, field)
          const e2 = propsError({ ...companionProps(field), [key]: String(value) })
          assert.strictEqual(e2.key, key)
          assert.include(e2.allowed!, `[${min}, ${max}]`)
          assert.include(e2.message, key)
          assert.include(e2.message, `[${min}, ${max}]`)
        }
      })
    }

    it("sink.socket.timeout-ms: -1 means none, 0 and -2 are refused", () => {
      assert.isTrue(Option.isNone(propsOk({ "sink.socket.timeout-ms": "-1" }).socketTimeout))
      assert.strictEqual(propsError({ "sink.socket.timeout-ms": "0" }).key, "sink.socket.timeout-ms")
      assert.strictEqual(propsError({ "sink.socket.timeout-ms": "-2" }).key, "sink.socket.timeout-ms")
    })

    it("durations accept any DurationInput in typed options", () => {
      const c = StarRocksConfig.make({ ...base, flushInterval: "5 seconds", connectTimeout: Duration.seconds(2) })
      assert.strictEqual(Duration.toMillis(c.flushInterval), 5_000)
      assert.strictEqual(Duration.toMillis(c.connectTimeout), 2_000)
      assert.strictEqual(typedError({ ...base, flushInterval: "soon" as any }).key, "flushInterval")
      assert.strictEqual(typedError({ ...base, flushInterval: Duration.infinity }).key, "flushInterval")
      assert.strictEqual(typedError({ ...base, flushInterval: -5 }).key, "flushInterval")
    })

    it("integers must be integers", () => {
      assert.include(typedError({ ...base, maxRetries: 1.5 }).reason, "not an integer")
      assert.include(propsError({ "sink.max-retries": "two" }).reason, "not an integer")
      assert.include(propsError({ "sink.max-retries": "1.5" }).reason, "not an integer")
    })

    it("the retry cap may not be below the retry base", () => {
      const e = typedError({ ...base, retryInterval: 5_000, retryMaxDelay: 1_000 })
      assert.strictEqual(e.key, "retryMaxDelay")
      const p = propsError({ "sink.retry.interval-ms": "40000" })
      assert.strictEqual(p.key, "sink.retry.interval-ms")
      assert.include(p.message, "below the retry base")
    })
  })

  describe("small buffers", () => {
    const small = { maxBytes: 1024, maxRows: 10, flushInterval: 50 }

    it("below the floors without the escape hatch: an error that names it", () => {
      const e = typedError({ ...base, ...small })
      assert.strictEqual(e.problems.length, 3)
      assert.deepStrictEqual(e.problems.map((p) => p.key), ["maxBytes", "maxRows", "flushInterval"])
      for (const p of e.problems) assert.include(p.reason, "allowSmallBuffers")
      const p = propsError({ "sink.buffer-flush.max-bytes": "1024" })
      assert.include(p.reason, "sink.buffer-flush.allow-small")
    })

    it("allowSmallBuffers accepts values below the floors, still > 0 and <= the ceilings", () => {
      const c = StarRocksConfig.make({ ...base, ...small, allowSmallBuffers: true })
      assert.strictEqual(c.maxBytes, 1024)
      assert.strictEqual(c.maxRows, 10)
      assert.strictEqual(Duration.toMillis(c.flushInterval), 50)
      const one = StarRocksConfig.make({ ...base, maxBytes: 1, maxRows: 1, flushInterval: 1, allowSmallBuffers: true })
      assert.strictEqual(one.maxBytes, 1)
      const e = typedError({ ...base, maxBytes: 0, maxRows: 0, flushInterval: 0, allowSmallBuffers: true })
      assert.strictEqual(e.problems.length, 3)
      assert.include(e.problems[0]!.allowed!, "[1, ")
      assert.strictEqual(
        typedError({ ...base, maxBytes: 10_737_418_241, allowSmallBuffers: true }).key,
        "maxBytes"
      )
      const p = propsOk({
        "sink.buffer-flush.allow-small": "true",
        "sink.buffer-flush.max-bytes": "1024",
        "sink.buffer-flush.max-rows": "10",
        "sink.buffer-flush.interval-ms": "50"
      })
      assert.strictEqual(p.maxRows, 10)
      assert.strictEqual(
        propsError({ "sink.buffer-flush.allow-small": "yes" }).key,
        "sink.buffer-flush.allow-small"
      )
    })

    it("warnings lists the values below the floors; none for a default config", () => {
      assert.deepStrictEqual(StarRocksConfig.warnings(StarRocksConfig.make(base)), [])
      const w = StarRocksConfig.warnings(StarRocksConfig.make({ ...base, ...small, allowSmallBuffers: true }))
      assert.strictEqual(w.length, 3)
      assert.include(w[0]!, "sink.buffer-flush.max-bytes")
    })

    it.effect("the layer logs one warning when built with small buffers, none otherwise", () =>
      Effect.gen(function*() {
        const logs = yield* Ref.make<ReadonlyArray<readonly [string, string]>>([])
        const logger = capturingLogger(logs)
        const cfg = yield* StarRocksConfig.StarRocksConfig.pipe(
          Effect.provide(StarRocksConfig.layer({ ...base, ...small, allowSmallBuffers: true })),
          Effect.provide(logger)
        )
        assert.strictEqual(cfg.maxRows, 10)
        const after = yield* Ref.get(logs)
        assert.strictEqual(after.length, 1)
        assert.strictEqual(after[0]![0], "WARN")
        assert.include(after[0]![1], "below the documented floors")
        assert.include(after[0]![1], "sink.buffer-flush.max-rows")
        assertNoSecret(after[0]![1])

        yield* Ref.set(logs, [])
        yield* StarRocksConfig.StarRocksConfig.pipe(
          Effect.provide(StarRocksConfig.layer(base)),
          Effect.provide(logger)
        )
        yield* StarRocksConfig.StarRocksConfig.pipe(
          Effect.provide(StarRocksConfig.layerFrom(StarRocksConfig.make(base))),
          Effect.provide(logger)
        )
        assert.deepStrictEqual(yield* Ref.get(logs), [])

        yield* StarRocksConfig.StarRocksConfig.pipe(
          Effect.provide(
            StarRocksConfig.layerFrom(StarRocksConfig.make({ ...base, maxRows: 5, allowSmallBuffers: true }))
          ),
          Effect.provide(logger)
        )
        assert.strictEqual((yield* Ref.get(logs)).length, 1)
      }))
  })

  describe("fromProperties", () => {
    it("reads every supported key", () => {
      const c = propsOk({
        "jdbc-url": "jdbc:mysql://fe1:9030,fe2:9030/dbx?useSSL=false",
        "load-url": "fe1:8030;https://fe2:8443",
        "database-name": "db1",
        "table-name": "tbl1",
        username: "loader",
        password: "pw",
        "sink.semantic": "EXACTLY-ONCE",
        "sink.version": "v2",
        "sink.label-prefix": "my_job-1",
        "sink.buffer-flush.max-bytes": "134217728",
        "sink.buffer-flush.max-rows": "100000",
        "sink.buffer-flush.interval-ms": "2000",
        "sink.buffer-flush.allow-small": "false",
        "sink.max-retries": "5",
        "sink.retry.interval-ms": "250",
        "sink.retry.max-delay-ms": "8000",
        "sink.connect.timeout-ms": "1500",
        "sink.socket.timeout-ms": "90000",
        "sink.wait-for-continue.timeout-ms": "4000",
        "sink.io.thread-count": "4",
        "sink.properties.format": "JSON",
        "sink.properties.Strip_Outer_Array": "true",
        "sink.properties.max_filter_ratio": "0.1",
        "sink.properties.column_separator": "\\x01",
        "sink.sanitize-error-log": "TRUE",
        "sink.timezone": "Asia/Shanghai",
        "be-host-map": "10.0.0.1:8040=127.0.0.1:18040, 10.0.0.2:8040=127.0.0.1:28040",
        "sink.direct-be": "be1:8040;http://be2:8040",
        "sink.max-redirects": "3",
        "sink.server-version": "2.5.4",
        "sink.csv.json-fallback": "false",
        "sink.label-state.timeout-ms": "5000"
      })
      assert.deepStrictEqual(c.loadUrl, ["http://fe1:8030", "https://fe2:8443"])
      assert.deepStrictEqual(c.jdbcUrl, Option.some({ host: "fe1", port: 9030, database: Option.some("dbx") }))
      assert.strictEqual(c.database, "db1")
      assert.strictEqual(c.table, "tbl1")
      assert.strictEqual(c.username, "loader")
      assert.strictEqual(Redacted.value(c.password), "pw")
      assert.strictEqual(c.semantic, "exactly-once")
      assert.strictEqual(c.version, "V2")
      assert.strictEqual(c.labelPrefix, "my_job-1")
      assert.strictEqual(c.maxBytes, 134_217_728)
      assert.strictEqual(c.maxRows, 100_000)
      assert.strictEqual(Duration.toMillis(c.flushInterval), 2_000)
      assert.strictEqual(c.maxRetries, 5)
      assert.strictEqual(Duration.toMillis(c.retryInterval), 250)
      assert.strictEqual(Duration.toMillis(c.retryMaxDelay), 8_000)
      assert.strictEqual(Duration.toMillis(c.connectTimeout), 1_500)
      assert.deepStrictEqual(c.socketTimeout.pipe(Option.map(Duration.toMillis)), Option.some(90_000))
      assert.strictEqual(Duration.toMillis(c.waitForContinueTimeout), 4_000)
      assert.strictEqual(c.ioThreadCount, 4)
      assert.strictEqual(c.format, "json")
      assert.deepStrictEqual(c.properties, {
        strip_outer_array: "true",
        max_filter_ratio: "0.1",
        column_separator: "\\x01"
      })
      assert.strictEqual(c.sanitizeErrorLog, true)
      assert.strictEqual(c.timeZone, "Asia/Shanghai")
      assert.deepStrictEqual(
        [...c.beHostMap],
        [["10.0.0.1:8040", "127.0.0.1:18040"], ["10.0.0.2:8040", "127.0.0.1:28040"]]
      )
      assert.deepStrictEqual(c.directBackends, ["http://be1:8040", "http://be2:8040"])
      assert.strictEqual(c.maxRedirects, 3)
      assert.deepStrictEqual(c.serverVersion, Option.some("2.5.4"))
      assert.strictEqual(c.csvJsonFallback, false)
      assert.strictEqual(Duration.toMillis(c.labelStateTimeout), 5_000)
    })

    it("connector is optional but must be starrocks", () => {
      assert.strictEqual(propsOk({}, ["connector"]).table, "t")
      const e = propsError({ connector: "doris" })
      assert.strictEqual(e.key, "connector")
      assert.strictEqual(e.allowed, "starrocks")
    })

    it("enums are checked (case-insensitively)", () => {
      assert.strictEqual(propsOk({ "sink.semantic": "At-Least-Once" }).semantic, "at-least-once")
      assert.strictEqual(propsOk({ "sink.version": "auto" }).version, "AUTO")
      assert.strictEqual(propsOk({ "sink.version": "V1" }).version, "V1")
      const s = propsError({ "sink.semantic": "at-most-once" })
      assert.strictEqual(s.key, "sink.semantic")
      assert.strictEqual(s.allowed, "at-least-once | exactly-once")
      assert.strictEqual(propsError({ "sink.version": "V3" }).allowed, "AUTO | V1 | V2")
      assert.strictEqual(propsError({ "sink.properties.format": "parquet" }).key, "sink.properties.format")
      assert.strictEqual(typedError({ ...base, format: "xml" as any }).key, "format")
    })

    it("an unknown key gets a did-you-mean", () => {
      const e = propsError({ "sink.buffer-flush.max-byte": "1" })
      assert.strictEqual(e.key, "sink.buffer-flush.max-byte")
      assert.strictEqual(e.suggestion, "sink.buffer-flush.max-bytes")
      assert.include(e.message, "did you mean \"sink.buffer-flush.max-bytes\"")
      assert.strictEqual(propsError({ "sink.label_prefix": "x" }).suggestion, "sink.label-prefix")
      assert.strictEqual(propsError({ "Load-URL": "x:1" }).suggestion, "load-url")
      assert.strictEqual(propsError({ "sink.io.threads": "2" }).suggestion, "sink.io.thread-count")
      const far = propsError({ "completely.unrelated": "1" })
      assert.isUndefined(far.suggestion)
      assert.include(far.reason, "not a known option")
    })

    it("an unknown key never shows its value (it could be a mistyped password)", () => {
      const e = propsError({ pasword: SECRET })
      assert.strictEqual(e.suggestion, "password")
      assertNoSecret(e.message)
      assertNoSecret(JSON.stringify(e))
    })

    it("a missing required key is named; all problems are collected into one error", () => {
      for (const key of ["load-url", "database-name", "table-name", "username", "password"]) {
        const e = propsError({}, [key])
        assert.strictEqual(e.key, key)
        assert.include(e.reason, "required")
      }
      const all = propsError({ "sink.max-retries": "99", "sink.typo": "1" }, ["load-url", "password"])
      assert.deepStrictEqual(
        all.problems.map((p) => p.key).sort(),
        ["load-url", "password", "sink.max-retries", "sink.typo"]
      )
      assert.include(all.message, "4 problems")
      assert.include(all.message, "load-url: is required")
    })

    it("empty required values are refused", () => {
      assert.strictEqual(propsError({ "table-name": "" }).key, "table-name")
      assert.strictEqual(propsError({ "load-url": " ; " }).key, "load-url")
      assert.strictEqual(propsError({ "table-name": "a/b" }).key, "table-name")
      assert.strictEqual(propsError({ username: "a:b" }).key, "username")
      assert.strictEqual(Redacted.value(propsOk({ password: "" }).password), "")
    })

    it("Flink-only keys are accepted, ignored and logged; use-transaction-stream-load is honoured", () =>
      Effect.gen(function*() {
        const logs = yield* Ref.make<ReadonlyArray<readonly [string, string]>>([])
        const c = yield* StarRocksConfig.fromProperties({
          ...baseProps,
          "sink.parallelism": "4",
          "sink.use.new-sink-api": "true",
          "sink.scan-frequency.ms": "50",
          "sink.metric.histogram-window-size": "100",
          "sink.buffer-flush.enqueue-timeout-ms": "600000",
          "sink.chunk-limit": "1",
          "sink.at-least-once.use-transaction-stream-load": "true",
          "sink.exactly-once.enable-label-gen": "true",
          "sink.exactly-once.enable-abort-lingering-txn": "true",
          "sink.exactly-once.check-num-lingering-txn": "-1"
        }).pipe(Effect.provide(capturingLogger(logs)))
        assert.strictEqual(c.table, "t")
        assert.isTrue(c.useTransactionStreamLoad)
        const lines = yield* Ref.get(logs)
        assert.strictEqual(lines.length, 1)
        assert.notInclude(lines[0]![1], "use-transaction-stream-load")
        assert.strictEqual(lines[0]![0], "WARN")
        assert.include(lines[0]![1], "sink.parallelism")
        assert.include(lines[0]![1], "sink.exactly-once.check-num-lingering-txn")
      }).pipe(Effect.runPromise))

    it("Flink keys for features we lack are refused with the reason", () => {
      for (
        const key of [
          "sink.wrap-json-as-array",
          "sink.ignore.update-before",
          "sink.blackhole",
          "sink.publish-timeout.ms",
          "sink.transaction.multi-table.enabled",
          "sink.transaction.multi-table.buffer-size",
          "sink.merge-commit.chunk.size",
          "sink.merge-commit.max-concurrent-requests"
        ]
      ) {
        const e = propsError({ [key]: "1" })
        assert.strictEqual(e.key, key)
        assert.isUndefined(e.suggestion)
        assert.isTrue(/not supported|no pre-serialized/.test(e.reason), e.reason)
      }
    })

    it("sink.properties.*: names lower-cased, reserved and malformed ones refused", () => {
      assert.deepStrictEqual(propsOk({ "sink.properties.TIMEOUT": "600" }).properties, { timeout: "600" })
      assert.strictEqual(propsError({ "sink.properties.label": "x" }).key, "sink.properties.label")
      assert.include(propsError({ "sink.properties.label": "x" }).reason, "label prefix")
      assert.strictEqual(propsError({ "sink.properties.Authorization": "x" }).key, "sink.properties.authorization")
      assert.strictEqual(propsError({ "sink.properties.bad name": "x" }).key, "sink.properties.bad name")
      assert.strictEqual(propsError({ "sink.properties.columns": "a\r\nb" }).key, "sink.properties.columns")
      assert.include(propsError({ "sink.properties.timeout": "1", "sink.properties.Timeout": "2" }).reason, "twice")
      assert.include(propsError({ "sink.properties.": "x" }).reason, "no Stream Load property")
    })

    it("typed properties: format may come from properties, conflicts are refused", () => {
      assert.strictEqual(StarRocksConfig.make({ ...base, properties: { FORMAT: "json" } }).format, "json")
      assert.deepStrictEqual(StarRocksConfig.make({ ...base, properties: { FORMAT: "json" } }).properties, {})
      assert.strictEqual(
        StarRocksConfig.make({ ...base, format: "json", properties: { format: "json" } }).format,
        "json"
      )
      assert.strictEqual(typedError({ ...base, format: "csv", properties: { format: "json" } }).key, "format")
      assert.strictEqual(typedError({ ...base, properties: { label: "x" } }).key, "properties.label")
    })

    it("sink.label-prefix: charset and length", () => {
      assert.strictEqual(propsOk({ "sink.label-prefix": "a".repeat(64) }).labelPrefix.length, 64)
      const long = propsError({ "sink.label-prefix": "a".repeat(65) })
      assert.strictEqual(long.key, "sink.label-prefix")
      assert.include(long.allowed!, "1 to 64")
      assert.strictEqual(propsError({ "sink.label-prefix": "bad.prefix" }).key, "sink.label-prefix")
      assert.strictEqual(propsError({ "sink.label-prefix": "" }).key, "sink.label-prefix")
      assert.strictEqual(typedError({ ...base, labelPrefix: "sp ace" }).key, "labelPrefix")
    })

    it("sink.timezone and sink.server-version are checked", () => {
      assert.strictEqual(propsError({ "sink.timezone": "Mars/Olympus" }).key, "sink.timezone")
      assert.strictEqual(propsError({ "sink.server-version": "latest" }).key, "sink.server-version")
      assert.deepStrictEqual(propsOk({ "sink.server-version": "3.3.0-ee" }).serverVersion, Option.some("3.3.0-ee"))
    })

    it("booleans are true or false", () => {
      assert.strictEqual(propsError({ "sink.sanitize-error-log": "1" }).allowed, "true | false")
      assert.strictEqual(propsError({ "sink.csv.json-fallback": "no" }).key, "sink.csv.json-fallback")
      assert.strictEqual(typedError({ ...base, csvJsonFallback: "true" as any }).key, "csvJsonFallback")
    })
  })

  describe("load-url", () => {
    const urls = (loadUrl: string | ReadonlyArray<string>) => StarRocksConfig.make({ ...base, loadUrl }).loadUrl

    it("parses host:port lists with optional schemes", () => {
      assert.deepStrictEqual(urls("a:1;b:2"), ["http://a:1", "http://b:2"])
      assert.deepStrictEqual(urls("a:1,b:2"), ["http://a:1", "http://b:2"])
      assert.deepStrictEqual(urls(" a:1/ ; b:2 ;"), ["http://a:1", "http://b:2"])
      assert.deepStrictEqual(urls("http://a:1;HTTPS://b:2/"), ["http://a:1", "https://b:2"])
      assert.deepStrictEqual(urls(["a:1", "https://b.example.com:8443"]), ["http://a:1", "https://b.example.com:8443"])
      assert.deepStrictEqual(urls("127.0.0.1:8030;[::1]:8030"), ["http://127.0.0.1:8030", "http://[::1]:8030"])
      assert.deepStrictEqual(urls("fe_1:8030;a:1;a:1"), ["http://fe_1:8030", "http://a:1"])
    })

    it("refuses bad entries, naming each", () => {
      for (const bad of ["a", "a:", ":1", "a:0", "a:65536", "ftp://a:1", "a:1/api", "http://a", "a b:1"]) {
        const e = typedError({ ...base, loadUrl: bad })
        assert.strictEqual(e.key, "loadUrl", bad)
        assert.strictEqual(e.allowed, "host:port or http(s)://host:port", bad)
      }
      const e = propsError({ "load-url": "a:1;nope;b:x" })
      assert.strictEqual(e.problems.length, 2)
      assert.include(e.message, "\"nope\"")
      assert.include(e.message, "\"b:x\"")
      assert.include(typedError({ ...base, loadUrl: "ftp://a:1" }).reason, "only http and https")
    })

    it("refuses credentials in an address without echoing them", () => {
      const e = typedError({ ...base, loadUrl: `http://root:${SECRET}@a:1` })
      assert.include(e.reason, "credentials")
      assertNoSecret(e.message)
    })

    it("sink.direct-be uses the same syntax", () => {
      assert.deepStrictEqual(
        StarRocksConfig.make({ ...base, directBackends: ["be:8040", "https://be2:8443"] }).directBackends,
        ["http://be:8040", "https://be2:8443"]
      )
      assert.strictEqual(typedError({ ...base, directBackends: "be" }).key, "directBackends")
    })
  })

  describe("jdbc-url", () => {
    const jdbc = (jdbcUrl: string) => StarRocksConfig.make({ ...base, jdbcUrl }).jdbcUrl

    it("takes the first host, the port and the database", () => {
      assert.deepStrictEqual(
        jdbc("jdbc:mysql://fe:9030"),
        Option.some({ host: "fe", port: 9030, database: Option.none() })
      )
      assert.deepStrictEqual(
        jdbc("jdbc:mysql://fe:9030/"),
        Option.some({ host: "fe", port: 9030, database: Option.none() })
      )
      assert.deepStrictEqual(
        jdbc("jdbc:mysql://fe1:9030,fe2:9031/sales?useSSL=false"),
        Option.some({ host: "fe1", port: 9030, database: Option.some("sales") })
      )
      assert.deepStrictEqual(
        jdbc("JDBC:MySQL://10.0.0.1:9030"),
        Option.some({ host: "10.0.0.1", port: 9030, database: Option.none() })
      )
      assert.deepStrictEqual(jdbc("fe:9030"), Option.some({ host: "fe", port: 9030, database: Option.none() }))
    })

    it("refuses other URLs, without echoing the query string", () => {
      for (const bad of ["jdbc:postgresql://fe:5432", "jdbc:mysql://fe", "jdbc:mysql://:9030", "mysql://fe:9030/db"]) {
        const e = propsError({ "jdbc-url": bad })
        assert.strictEqual(e.key, "jdbc-url", bad)
        assert.strictEqual(e.allowed, "jdbc:mysql://host:port[,host:port][/database]")
      }
      const e = propsError({ "jdbc-url": `jdbc:mysql://fe/db?user=root&password=${SECRET}` })
      assertNoSecret(e.message)
      assert.include(e.message, "jdbc:mysql://fe/db")
    })
  })

  describe("be-host-map", () => {
    it("parses the string and the record forms", () => {
      const s = StarRocksConfig.make({ ...base, beHostMap: "a:8040=b:18040;c:8040=d:18040" }).beHostMap
      assert.deepStrictEqual([...s], [["a:8040", "b:18040"], ["c:8040", "d:18040"]])
      const r = StarRocksConfig.make({ ...base, beHostMap: { "a:8040": "b:18040" } }).beHostMap
      assert.strictEqual(r.get("a:8040"), "b:18040")
      // the reachable side may name its scheme: a BE reached through an https proxy
      const tls = StarRocksConfig.make({ ...base, beHostMap: "a:8040=https://proxy:443/" }).beHostMap
      assert.strictEqual(tls.get("a:8040"), "https://proxy:443")
      assert.include(typedError({ ...base, beHostMap: "a:8040=ftp://proxy:21" }).reason, "http(s)://")
    })

    it("refuses malformed and duplicate entries", () => {
      assert.include(typedError({ ...base, beHostMap: "a:8040" }).reason, "no \"=\"")
      assert.strictEqual(typedError({ ...base, beHostMap: "a:8040=b" }).key, "beHostMap")
      assert.include(typedError({ ...base, beHostMap: "a:1=b:2,a:1=c:3" }).reason, "twice")
      assert.strictEqual(propsError({ "be-host-map": "x=y" }).key, "be-host-map")
    })
  })

  describe("make, makeEffect", () => {
    it("make throws a StarRocksConfigError, which is an Error", () => {
      try {
        StarRocksConfig.make({ ...base, maxRetries: 11 })
        assert.fail("make did not throw")
      } catch (e) {
        assert.instanceOf(e, StarRocksConfig.StarRocksConfigError)
        assert.instanceOf(e, Error)
        const err = e as StarRocksConfig.StarRocksConfigError
        assert.strictEqual(err._tag, "StarRocksConfigError")
        assert.strictEqual(err.key, "maxRetries")
        assert.strictEqual(err.allowed, "[0, 10]")
        assert.strictEqual(err.message, "Invalid StarRocks config: maxRetries: 11 is out of range (allowed: [0, 10])")
      }
    })

    it.effect("makeEffect fails with the typed error", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(StarRocksConfig.makeEffect({ ...base, maxRetries: -1 }))
        assert.isTrue(Exit.isFailure(exit))
        const error = yield* Effect.flip(StarRocksConfig.makeEffect({ ...base, maxRetries: -1 }))
        assert.strictEqual(error.key, "maxRetries")
        const ok = yield* StarRocksConfig.makeEffect(base)
        assert.strictEqual(ok.table, "t")
      }))

    it("unknown typed options (JavaScript callers) get a did-you-mean", () => {
      const e = typedError({ ...base, loadURL: "x" } as any)
      assert.strictEqual(e.key, "loadURL")
      assert.strictEqual(e.suggestion, "loadUrl")
      assert.strictEqual(typedError({ ...base, maxRetry: 1 } as any).suggestion, "maxRetries")
    })

    it("a plain-string password is refused without being echoed", () => {
      const e = typedError({ ...base, password: SECRET as any })
      assert.strictEqual(e.key, "password")
      assert.include(e.reason, "Redacted")
      assertNoSecret(e.message)
      assertNoSecret(JSON.stringify(e))
    })

    it("the error round-trips through its schema fields", () => {
      const e = StarRocksConfig.StarRocksConfigError.fromProblems([
        { key: "a", reason: "x", allowed: "[1, 2]" },
        { key: "b", reason: "y", suggestion: "c" }
      ])
      assert.strictEqual(e.key, "a")
      assert.strictEqual(e.allowed, "[1, 2]")
      assert.strictEqual(
        e.message,
        "Invalid StarRocks config, 2 problems: (1) a: x (allowed: [1, 2]); (2) b: y (did you mean \"c\"?)"
      )
      const single = new StarRocksConfig.StarRocksConfigError({ key: "k", reason: "r" })
      assert.strictEqual(single.message, "Invalid StarRocks config: k: r")
    })
  })

  describe("Config (STARROCKS_* variables)", () => {
    const fullEnv: Record<string, string> = {
      STARROCKS_LOAD_URL: "fe1:8030;fe2:8030",
      STARROCKS_JDBC_URL: "jdbc:mysql://fe1:9030/db",
      STARROCKS_DATABASE: "db",
      STARROCKS_TABLE: "t",
      STARROCKS_USERNAME: "root",
      STARROCKS_PASSWORD: SECRET,
      STARROCKS_FORMAT: "json",
      STARROCKS_SEMANTIC: "at-least-once",
      STARROCKS_VERSION: "V1",
      STARROCKS_LABEL_PREFIX: "envjob",
      STARROCKS_BUFFER_FLUSH_MAX_BYTES: "1000",
      STARROCKS_BUFFER_FLUSH_MAX_ROWS: "100",
      STARROCKS_BUFFER_FLUSH_INTERVAL_MS: "500",
      STARROCKS_BUFFER_FLUSH_ALLOW_SMALL: "true",
      STARROCKS_MAX_RETRIES: "7",
      STARROCKS_RETRY_INTERVAL_MS: "100",
      STARROCKS_RETRY_MAX_DELAY_MS: "2000",
      STARROCKS_CONNECT_TIMEOUT_MS: "5000",
      STARROCKS_SOCKET_TIMEOUT_MS: "60000",
      STARROCKS_WAIT_FOR_CONTINUE_TIMEOUT_MS: "10000",
      STARROCKS_IO_THREAD_COUNT: "3",
      STARROCKS_PROPERTIES: "{\"max_filter_ratio\":\"0.2\",\"Timeout\":\"600\"}",
      STARROCKS_SANITIZE_ERROR_LOG: "true",
      STARROCKS_TIMEZONE: "Europe/Paris",
      STARROCKS_BE_HOST_MAP: "be:8040=localhost:18040",
      STARROCKS_DIRECT_BE: "be:8040",
      STARROCKS_MAX_REDIRECTS: "2",
      STARROCKS_SERVER_VERSION: "3.3.0",
      STARROCKS_CSV_JSON_FALLBACK: "false",
      STARROCKS_LABEL_STATE_TIMEOUT_MS: "9000"
    }

    it.effect("reads every variable", () =>
      Effect.gen(function*() {
        const c = yield* StarRocksConfig.config
        assert.deepStrictEqual(c.loadUrl, ["http://fe1:8030", "http://fe2:8030"])
        assert.deepStrictEqual(c.jdbcUrl, Option.some({ host: "fe1", port: 9030, database: Option.some("db") }))
        assert.strictEqual(Redacted.value(c.password), SECRET)
        assert.strictEqual(c.format, "json")
        assert.strictEqual(c.version, "V1")
        assert.strictEqual(c.labelPrefix, "envjob")
        assert.strictEqual(c.maxBytes, 1000)
        assert.strictEqual(c.maxRows, 100)
        assert.strictEqual(Duration.toMillis(c.flushInterval), 500)
        assert.strictEqual(c.maxRetries, 7)
        assert.strictEqual(Duration.toMillis(c.retryInterval), 100)
        assert.strictEqual(Duration.toMillis(c.retryMaxDelay), 2000)
        assert.strictEqual(Duration.toMillis(c.connectTimeout), 5000)
        assert.deepStrictEqual(c.socketTimeout.pipe(Option.map(Duration.toMillis)), Option.some(60_000))
        assert.strictEqual(Duration.toMillis(c.waitForContinueTimeout), 10_000)
        assert.strictEqual(c.ioThreadCount, 3)
        assert.deepStrictEqual(c.properties, { max_filter_ratio: "0.2", timeout: "600" })
        assert.strictEqual(c.sanitizeErrorLog, true)
        assert.strictEqual(c.timeZone, "Europe/Paris")
        assert.strictEqual(c.beHostMap.get("be:8040"), "localhost:18040")
        assert.deepStrictEqual(c.directBackends, ["http://be:8040"])
        assert.strictEqual(c.maxRedirects, 2)
        assert.deepStrictEqual(c.serverVersion, Option.some("3.3.0"))
        assert.strictEqual(c.csvJsonFallback, false)
        assert.strictEqual(Duration.toMillis(c.labelStateTimeout), 9000)
      }).pipe(Effect.withConfigProvider(env(fullEnv))))

    it.effect("the default '.' delimiter of ConfigProvider.fromMap works too; k=v properties", () =>
      Effect.gen(function*() {
        const c = yield* StarRocksConfig.config
        assert.strictEqual(c.table, "t")
        assert.deepStrictEqual(c.properties, { columns: "a,b,c=a+1", strict_mode: "true" })
      }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(
        new Map([
          ["STARROCKS.LOAD_URL", "fe:8030"],
          ["STARROCKS.DATABASE", "db"],
          ["STARROCKS.TABLE", "t"],
          ["STARROCKS.USERNAME", "root"],
          ["STARROCKS.PASSWORD", ""],
          ["STARROCKS.PROPERTIES", "columns=a,b,c=a+1; strict_mode=true"]
        ])
      ))))

    it.effect("config: problems become a ConfigError naming the variables", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(StarRocksConfig.config)
        const text = String(error)
        assert.include(text, "STARROCKS_MAX_RETRIES")
        assert.include(text, "[0, 10]")
        assert.include(text, "STARROCKS_PASSWORD: is required")
        assert.include(text, "STARROCKS_PROPERTIES")
      }).pipe(Effect.withConfigProvider(env({
        STARROCKS_LOAD_URL: "fe:8030",
        STARROCKS_DATABASE: "db",
        STARROCKS_TABLE: "t",
        STARROCKS_USERNAME: "root",
        STARROCKS_MAX_RETRIES: "11",
        STARROCKS_PROPERTIES: "{not json"
      }))))

    it.effect("layerConfig(): typed StarRocksConfigError, small-buffer warning logged", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          StarRocksConfig.StarRocksConfig.pipe(
            Effect.provide(StarRocksConfig.layerConfig()),
            Effect.withConfigProvider(env({ ...fullEnv, STARROCKS_BUFFER_FLUSH_ALLOW_SMALL: "false" }))
          )
        )
        assert.strictEqual(error._tag, "StarRocksConfigError")
        if (error._tag === "StarRocksConfigError") {
          assert.deepStrictEqual(error.problems.map((p) => p.key), [
            "STARROCKS_BUFFER_FLUSH_MAX_BYTES",
            "STARROCKS_BUFFER_FLUSH_MAX_ROWS",
            "STARROCKS_BUFFER_FLUSH_INTERVAL_MS"
          ])
          assert.include(error.problems[0]!.reason, "STARROCKS_BUFFER_FLUSH_ALLOW_SMALL")
          assertNoSecret(error.message)
        }

        const logs = yield* Ref.make<ReadonlyArray<readonly [string, string]>>([])
        const c = yield* StarRocksConfig.StarRocksConfig.pipe(
          Effect.provide(StarRocksConfig.layerConfig()),
          Effect.withConfigProvider(env(fullEnv)),
          Effect.provide(capturingLogger(logs))
        )
        assert.strictEqual(c.maxRows, 100)
        const lines = yield* Ref.get(logs)
        assert.strictEqual(lines.length, 1)
        assert.include(lines[0]![1], "below the documented floors")
      }))

    it.effect("a mistyped STARROCKS_* variable gets a warning with a did-you-mean; missing fields are named", () =>
      Effect.gen(function*() {
        const typos = {
          STARROCKS_LOAD_URL: "fe:8030",
          STARROCKS_DATABSE: "db",
          STARROCKS_TABLE: "t",
          STARROCKS_USER_NAME: "root",
          STARROCKS_PASSWORD: SECRET,
          STARROCKS_MAX_RETRYS: "2",
          STARROCKS_FE: "fe:8030"
        }
        const dotted = ConfigProvider.fromMap(
          new Map(Object.entries(typos).map(([k, v]) => [k.replace("STARROCKS_", "STARROCKS."), v]))
        )
        for (const provider of [env(typos), dotted]) {
          const logs = yield* Ref.make<ReadonlyArray<readonly [string, string]>>([])
          const error = yield* Effect.flip(
            StarRocksConfig.StarRocksConfig.pipe(
              Effect.provide(StarRocksConfig.layerConfig()),
              Effect.withConfigProvider(provider),
              Effect.provide(capturingLogger(logs))
            )
          )
          // the missing fields, each named
          assert.strictEqual(error._tag, "StarRocksConfigError")
          if (error._tag !== "StarRocksConfigError") continue
          assert.deepStrictEqual(error.problems.map((p) => [p.key, p.reason]), [
            ["STARROCKS_DATABASE", "is required"],
            ["STARROCKS_USERNAME", "is required"]
          ])
          assert.notInclude(error.message, "null")
          // the variables that are not options, with the closest one
          const warnings = (yield* Ref.get(logs)).filter(([level]) => level === "WARN").map(([, text]) => text)
          assert.strictEqual(warnings.length, 1)
          assert.include(warnings[0], "STARROCKS_DATABSE (did you mean STARROCKS_DATABASE?)")
          assert.include(warnings[0], "STARROCKS_USER_NAME (did you mean STARROCKS_USERNAME?)")
          assert.include(warnings[0], "STARROCKS_MAX_RETRYS (did you mean STARROCKS_MAX_RETRIES?)")
          assert.include(warnings[0], "STARROCKS_FE")
          assert.notInclude(warnings[0], "STARROCKS_TABLE")
          assertNoSecret(warnings[0]!)
        }
        const unknown = yield* StarRocksConfig.unknownVariables.pipe(Effect.withConfigProvider(env(typos)))
        assert.deepStrictEqual(unknown.map((u) => u.variable), [
          "STARROCKS_DATABSE",
          "STARROCKS_FE",
          "STARROCKS_MAX_RETRYS",
          "STARROCKS_USER_NAME"
        ])
        // none for a config whose every variable is an option
        const none = yield* StarRocksConfig.unknownVariables.pipe(Effect.withConfigProvider(env(fullEnv)))
        assert.deepStrictEqual(none, [])
      }))

    it.effect("config: the missing fields are named, at the STARROCKS path", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(StarRocksConfig.config)
        const text = String(error)
        assert.include(text, "STARROCKS_DATABASE: is required")
        assert.include(text, "STARROCKS_PASSWORD: is required")
        assert.notInclude(text, "STARROCKS.STARROCKS")
        assert.notInclude(text, "null")
      }).pipe(Effect.withConfigProvider(env({ STARROCKS_LOAD_URL: "fe:8030", STARROCKS_TABLE: "t" }))))

    it.effect("layerConfig(wrap) reads typed options from Configs", () =>
      Effect.gen(function*() {
        const layer = StarRocksConfig.layerConfig({
          loadUrl: Config.string("FE"),
          database: Config.succeed("db"),
          table: Config.succeed("t"),
          username: Config.succeed("root"),
          password: Config.redacted("PW"),
          maxRetries: Config.integer("RETRIES")
        })
        const c = yield* StarRocksConfig.StarRocksConfig.pipe(
          Effect.provide(layer),
          Effect.withConfigProvider(
            ConfigProvider.fromMap(new Map([["FE", "fe:8030"], ["PW", SECRET], ["RETRIES", "4"]]))
          )
        )
        assert.deepStrictEqual(c.loadUrl, ["http://fe:8030"])
        assert.strictEqual(c.maxRetries, 4)
        const error = yield* Effect.flip(
          StarRocksConfig.StarRocksConfig.pipe(
            Effect.provide(layer),
            Effect.withConfigProvider(
              ConfigProvider.fromMap(new Map([["FE", "fe:8030"], ["PW", SECRET], ["RETRIES", "40"]]))
            )
          )
        )
        assert.strictEqual(error._tag, "StarRocksConfigError")
      }))

    it.effect("layer(options) fails with the typed error", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          StarRocksConfig.StarRocksConfig.pipe(Effect.provide(StarRocksConfig.layer({ ...base, maxRows: 1 })))
        )
        assert.strictEqual(error.key, "maxRows")
      }))
  })

  describe("the password is never printed", () => {
    const c = StarRocksConfig.make({ ...base, jdbcUrl: "jdbc:mysql://fe:9030/db" })

    it("String, JSON, util.inspect and Effect's formatting hide it", () => {
      assertNoSecret(String(c))
      assertNoSecret(JSON.stringify(c))
      assertNoSecret(inspect(c, { depth: 10 }))
      assertNoSecret(Inspectable.format(c))
      assertNoSecret(String(c.password))
      assert.include(JSON.stringify(c), "<redacted>")
      assert.include(inspect(c, { depth: 10 }), "<redacted>")
    })

    it.effect("logging the config (logfmt, json, pretty) hides it", () =>
      Effect.gen(function*() {
        const lines: Array<string> = []
        for (const logger of [Logger.logfmtLogger, Logger.jsonLogger, Logger.stringLogger]) {
          yield* Effect.log("config", c).pipe(
            Effect.provide(Logger.replace(Logger.defaultLogger, Logger.map(logger, (line) => lines.push(line))))
          )
        }
        assert.strictEqual(lines.length, 3)
        for (const line of lines) assertNoSecret(line)
        assert.include(lines[1]!, "<redacted>")
      }))

    it("errors from any path never carry it", () => {
      const e1 = propsError({ password: SECRET, "sink.max-retries": "99", "load-url": "nope" })
      assertNoSecret(e1.message)
      assertNoSecret(JSON.stringify(e1))
      assertNoSecret(inspect(e1))
      const e2 = typedError({ ...base, maxRetries: 99 })
      assertNoSecret(e2.message)
      assertNoSecret(inspect(e2))
    })

    it.effect("the Config path keeps it redacted", () =>
      Effect.gen(function*() {
        const cfg = yield* StarRocksConfig.config
        assertNoSecret(inspect(cfg, { depth: 10 }))
        assertNoSecret(JSON.stringify(cfg))
        const error = yield* Effect.flip(
          StarRocksConfig.config.pipe(
            Effect.withConfigProvider(
              env({
                STARROCKS_LOAD_URL: "x",
                STARROCKS_DATABASE: "db",
                STARROCKS_TABLE: "t",
                STARROCKS_USERNAME: "root",
                STARROCKS_PASSWORD: SECRET
              })
            )
          )
        )
        assertNoSecret(String(error))
      }).pipe(Effect.withConfigProvider(env({
        STARROCKS_LOAD_URL: "fe:8030",
        STARROCKS_DATABASE: "db",
        STARROCKS_TABLE: "t",
        STARROCKS_USERNAME: "root",
        STARROCKS_PASSWORD: SECRET
      }))))
  })

  it("levenshtein", () => {
    assert.strictEqual(StarRocksConfig.levenshtein("kitten", "sitting"), 3)
    assert.strictEqual(StarRocksConfig.levenshtein("", "abc"), 3)
    assert.strictEqual(StarRocksConfig.levenshtein("abc", "abc"), 0)
  })

  it("layer provides the tag", () =>
    Effect.runPromise(
      Effect.gen(function*() {
        const c = yield* StarRocksConfig.StarRocksConfig
        assert.strictEqual(c.database, "db")
      }).pipe(Effect.provide(Layer.mergeAll(StarRocksConfig.layer(base))))
    ))
})
