/**
 * `npm start`: the main job against the embedded StarRocks emulator. Starts an emulator in process (one FE, two
 * BEs, memory storage), creates the reference table, streams the reference rows (500,000 by default, `DEMO_ROWS`)
 * through the sink by Stream Load (FE → 307 → BE, `Expect: 100-continue`) with a progress line every second, and
 * checks what landed against the source. Exit 0 only when every row arrived exactly once. No external service is
 * needed.
 *
 * The same job against a real cluster: set `STARROCKS_LOAD_URL` (and `STARROCKS_DATABASE`, `STARROCKS_TABLE`,
 * `STARROCKS_USERNAME`, `STARROCKS_PASSWORD`, …: docs/configuration.md); the demo then prints the table's DDL,
 * loads into that table instead of an emulator, and checks the sink's summary.
 */
import { SinkMetrics, StarRocksConfig, StarRocksSink } from "@effect-starrocks/sink"
import { ReferenceRows, StarRocksEmulator } from "@effect-starrocks/testkit"
import { NodeRuntime } from "@effect/platform-node"
import { Config, Console, Effect, Fiber, Logger, LogLevel, Metric, Option, Redacted, Schedule, Stream } from "effect"

const ROWS = Number(process.env["DEMO_ROWS"] ?? 500_000)

const Row = ReferenceRows.schema

/** `CREATE TABLE` for the reference rows (what a real cluster needs before the demo runs against it). */
const ddl = (database: string, table: string): string => {
  const def = ReferenceRows.tableDef(database, table)
  const columns = def.columns.map((c) => `  \`${c.name}\` ${c.type}${c.nullable === true ? " NULL" : " NOT NULL"}`)
  return `CREATE TABLE \`${database}\`.\`${table}\` (\n${columns.join(",\n")}\n) DUPLICATE KEY(\`id\`)\n` +
    "DISTRIBUTED BY HASH(`id`) BUCKETS 4 PROPERTIES (\"replication_num\" = \"1\");"
}

/** Every second: rows read, rows and MiB landed, loads, retries, from the stream and the sink's metrics. */
const progress = (read: () => number, database: string, table: string, started: number) => {
  const tag = SinkMetrics.tableTag(database, table)
  const value = (metric: Metric.Metric.Counter<number>) =>
    Effect.map(Metric.value(Metric.tagged(metric, "table", tag)), (s) => s.count)
  return Effect.gen(function*() {
    const rows = yield* value(SinkMetrics.totalFlushRows)
    const bytes = yield* value(SinkMetrics.totalFlushBytes)
    const loads = yield* value(SinkMetrics.totalFlushSucceededTimes)
    const retries = yield* value(SinkMetrics.totalLoadRetries)
    const seconds = Math.max((Date.now() - started) / 1000, 0.001)
    yield* Console.log(
      `  ${seconds.toFixed(1).padStart(5)} s  read ${read().toLocaleString().padStart(9)} rows ` +
        `(${Math.round(read() / seconds).toLocaleString()} rows/s)  landed ${rows.toLocaleString()} rows, ` +
        `${(bytes / 1048576).toFixed(1)} MiB (${(bytes / 1048576 / seconds).toFixed(1)} MiB/s) in ${loads} loads, ` +
        `${retries} retries`
    )
  })
}

const load = (config: StarRocksConfig.StarRocksConfig) =>
  Effect.gen(function*() {
    let read = 0
    const started = Date.now()
    const ticker = yield* progress(() => read, config.database, config.table, started).pipe(
      Effect.delay("1 second"),
      Effect.repeat(Schedule.spaced("1 second")),
      Effect.fork
    )
    const summary = yield* Stream.fromIterable(ReferenceRows.rows(ROWS)).pipe(
      Stream.rechunk(4096),
      Stream.mapChunks((chunk) => {
        read += chunk.length
        return chunk
      }),
      Stream.run(StarRocksSink.make(Row)),
      Effect.provide(StarRocksSink.layer(config))
    )
    yield* Fiber.interrupt(ticker)
    yield* progress(() => read, config.database, config.table, started)
    const seconds = (Date.now() - started) / 1000
    yield* Console.log(
      `sink: ${summary.rows.toLocaleString()} rows in ${summary.loads} loads, ` +
        `${(summary.bytes / 1048576).toFixed(1)} MiB, ${summary.retries} retries, ${summary.filteredRows} filtered, ` +
        `${seconds.toFixed(1)} s (${Math.round(summary.rows / seconds).toLocaleString()} rows/s)`
    )
    return summary
  })

const againstEmulator = Effect.gen(function*() {
  const emulator = yield* StarRocksEmulator.make({
    users: { root: "" },
    fes: 1,
    bes: 2,
    tables: [ReferenceRows.tableDef("demo", "events")]
  })
  yield* Console.log(`emulator: FE ${emulator.fe.join(", ")}  BEs ${emulator.bes.join(", ")}`)
  yield* load(StarRocksConfig.make({
    loadUrl: emulator.fe,
    database: "demo",
    table: "events",
    username: "root",
    password: Redacted.make(""),
    format: "csv",
    maxRows: 100_000,
    flushInterval: "5 seconds"
  }))

  const stored = yield* emulator.rows("demo", "events")
  const ids = new Set<number>()
  let mismatches = 0
  for (const row of stored) {
    const id = Number(row["id"])
    ids.add(id)
    const expected = ReferenceRows.expectedCells(id)
    for (const [k, v] of Object.entries(expected)) {
      if (String(row[k]) !== String(v)) {
        if (mismatches < 5) yield* Console.log(`mismatch id=${id} ${k}: ${String(row[k])} != ${String(v)}`)
        mismatches++
      }
    }
  }
  const txns = yield* emulator.transactions("demo")
  yield* Console.log(
    `landed (read back from the emulator): ${stored.length.toLocaleString()} rows, ` +
      `${ids.size.toLocaleString()} distinct ids, ${mismatches} mismatched values, ` +
      `${txns.filter((t) => t.status === "VISIBLE").length} VISIBLE labels`
  )
  yield* Console.log("first rows:")
  for (const row of stored.slice(0, 3)) {
    yield* Console.log("  " + JSON.stringify(row, (_k, v) => (typeof v === "bigint" ? Number(v) : v)))
  }
  if (stored.length !== ROWS || ids.size !== ROWS || mismatches > 0) {
    return yield* Effect.fail(new Error(`expected ${ROWS} rows exactly once`))
  }
  yield* Console.log("OK: every row arrived exactly once")
  yield* Console.log(
    "The same job against a real cluster: STARROCKS_LOAD_URL=fe:8030 STARROCKS_DATABASE=demo " +
      "STARROCKS_TABLE=events STARROCKS_USERNAME=root STARROCKS_PASSWORD=... npm start"
  )
})

const againstCluster = Effect.gen(function*() {
  const config = yield* StarRocksConfig.config
  yield* Console.log(
    `StarRocks at ${config.loadUrl.join(", ")}; the table the demo needs:\n${ddl(config.database, config.table)}`
  )
  const summary = yield* load(config)
  if (summary.rows !== ROWS) {
    return yield* Effect.fail(new Error(`expected ${ROWS} rows, the sink reports ${summary.rows}`))
  }
  yield* Console.log(
    `OK: the sink reports ${ROWS.toLocaleString()} rows landed; check with ` +
      `SELECT COUNT(*), COUNT(DISTINCT id) FROM ${config.database}.${config.table}`
  )
})

const program = Effect.gen(function*() {
  yield* Console.log(
    `effect-starrocks demo: ${ROWS.toLocaleString()} reference rows through StarRocksSink by Stream Load`
  )
  const cluster = yield* Config.option(Config.string("STARROCKS_LOAD_URL"))
  if (Option.isSome(cluster)) yield* againstCluster
  else yield* againstEmulator
})

program.pipe(
  Effect.scoped,
  Logger.withMinimumLogLevel(LogLevel.Warning),
  NodeRuntime.runMain
)
