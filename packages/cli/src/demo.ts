/**
 * `npm start`: the main job against the embedded StarRocks emulator. Starts an emulator in process (one FE, two
 * BEs, memory storage), creates the reference table, streams 1,000,000 reference rows through the sink by
 * Stream Load (FE → 307 → BE, `Expect: 100-continue`), and checks what landed against the source.
 * Exit 0 only when every row arrived exactly once. No external service is needed.
 */
import { StarRocksConfig, StarRocksSink } from "@effect-starrocks/sink"
import { ReferenceRows, StarRocksEmulator } from "@effect-starrocks/testkit"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Logger, LogLevel, Redacted, Stream } from "effect"

const ROWS = Number(process.env["DEMO_ROWS"] ?? 1_000_000)

const Row = ReferenceRows.schema

const program = Effect.gen(function*() {
  const emulator = yield* StarRocksEmulator.make({
    users: { root: "" },
    fes: 1,
    bes: 2,
    tables: [ReferenceRows.tableDef("demo", "events")]
  })
  yield* Console.log(`emulator: FE ${emulator.fe.join(", ")}  BEs ${emulator.bes.join(", ")}`)

  const config = StarRocksConfig.make({
    loadUrl: emulator.fe,
    database: "demo",
    table: "events",
    username: "root",
    password: Redacted.make(""),
    format: "csv",
    maxRows: 200_000,
    flushInterval: "5 seconds"
  })

  const started = Date.now()
  const summary = yield* Stream.fromIterable(ReferenceRows.rows(ROWS)).pipe(
    Stream.rechunk(4096),
    Stream.run(StarRocksSink.make(Row)),
    Effect.provide(StarRocksSink.layer(config))
  )
  const seconds = (Date.now() - started) / 1000
  yield* Console.log(
    `sink: ${summary.rows} rows in ${summary.loads} loads, ${(summary.bytes / 1048576).toFixed(1)} MiB, ` +
      `${summary.retries} retries, ${summary.filteredRows} filtered, ${seconds.toFixed(1)} s ` +
      `(${Math.round(summary.rows / seconds)} rows/s)`
  )

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
    `landed: ${stored.length} rows, ${ids.size} distinct ids, ${mismatches} mismatched values, ` +
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
})

program.pipe(
  Effect.scoped,
  Logger.withMinimumLogLevel(LogLevel.Warning),
  NodeRuntime.runMain
)
