/**
 * Exactly-once encoding throughput: N pre-built reference rows (default 1,000,000) in 4,096-row chunks through
 * `Checkpoint.withBarriers` (a barrier every 500,000 rows) and `StarRocksSink.exactlyOnce`, against a transaction
 * client that answers OK at once (no HTTP): the sink's own cost per row, barriers and 2PC steps included (the
 * measured run's wall-clock rate and its process CPU time, which moves less on a busy machine).
 * `npx tsx packages/sink/bench/exactlyOnce.ts [N]`
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import { Effect, Layer, Logger, LogLevel, Schema, Stream } from "effect"
import { Checkpoint, Checkpointer, LabelStore, LoadClient, StarRocksConfig, StarRocksSink } from "../src/index.js"
import { ReferenceRow } from "./referenceSchema.js"
import { config } from "./sinkRun.js"

const N = Number(process.argv[2] ?? 1_000_000)
const rows = Array.from(ReferenceRows.rows(N))
const ok = (operation: LoadClient.TransactionOperation, label: string) =>
  Effect.succeed<LoadClient.TransactionResult>({
    operation,
    label,
    status: "OK",
    message: "",
    txnId: 1,
    totalRows: 0,
    loadedRows: 0,
    filteredRows: 0,
    unselectedRows: 0,
    loadBytes: 0,
    retries: 0,
    hops: [],
    timings: {}
  })
const client = LoadClient.fromPartial({
  loadBatch: () => Effect.dieMessage("not used"),
  getLoadState: () => Effect.succeed("UNKNOWN" as const),
  begin: ({ label }) => ok("begin", label),
  loadTxn: ({ label }) => ok("load", label),
  prepare: ({ label }) => ok("prepare", label),
  commit: ({ label }) => ok("commit", label),
  rollback: ({ label }) => ok("rollback", label),
  supportsTransactions: () => Effect.succeed(true)
})
const services = Layer.mergeAll(
  StarRocksConfig.layerFrom({ ...config(1, "csv"), semantic: "exactly-once" }),
  Layer.succeed(LoadClient.LoadClient, client),
  LabelStore.layerMemory,
  Checkpointer.layerMemoryForTests
)
const run = () =>
  Stream.fromIterable(rows).pipe(
    Stream.rechunk(4096),
    Checkpoint.withBarriers({ position: (r: typeof ReferenceRow.Type) => r.id, everyRows: 500_000 }),
    Stream.run(StarRocksSink.exactlyOnce(ReferenceRow, { position: Schema.Number })),
    Effect.provide(services),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    Effect.runPromise
  )

await run() // warm-up
const c0 = process.cpuUsage()
const t0 = performance.now()
const summary = await run()
const seconds = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(c0)
console.log(
  `exactly-once CSV: ${Math.round(N / seconds).toLocaleString()} rows/s (${summary.rows.toLocaleString()} rows, ` +
    `${summary.checkpoints} checkpoints; ${((cpu.user + cpu.system) / 1e6).toFixed(3)} s of CPU)`
)
