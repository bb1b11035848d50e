/**
 * What the exactly-once suites against the emulator share (exactlyOnce.test.ts, exactlyOnceStart.test.ts, and
 * ../Fencing.test.ts its table, configuration and emulator): the row
 * schema, a fresh DUPLICATE table per test with in-memory Checkpointer and LabelStore, the sink's configuration
 * (small batches, quick retries) and its services.
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { Effect, Layer, Logger, LogLevel, Redacted, Schema } from "effect"
import { Checkpointer, ColumnType, LabelStore, LoadClient, StarRocksConfig } from "../../src/index.js"

export const Row = Schema.Struct({ id: ColumnType.BigInt, note: Schema.NullOr(ColumnType.Varchar(64)) })
export type Row = typeof Row.Type

export const db = "db"
let seq = 0
export const uniqueTable = (base: string) => `${base}_${process.pid}_${Date.now() % 100000}_${++seq}`

/** Rows `from` to `to` (exclusive); every 7th note is NULL. */
export const rowsFrom = (from: number, to: number): ReadonlyArray<Row> => {
  const out: Array<Row> = []
  for (let i = from; i < to; i++) out.push({ id: i, note: i % 7 === 0 ? null : `note ${i}` })
  return out
}

export const Emulator = StarRocksEmulator.layer({ users: { root: "" }, bes: 2, cleanerIntervalMs: 200 })

/** A fresh table named after `base`, and a Checkpointer and LabelStore of its own. */
export const setupTable = (base: string) =>
  Effect.gen(function*() {
    const emulator = yield* StarRocksEmulator.StarRocksEmulator
    const table = uniqueTable(base)
    yield* emulator.createTable({
      database: db,
      table,
      model: "DUPLICATE",
      key: ["id"],
      columns: [{ name: "id", type: "BIGINT" }, { name: "note", type: "VARCHAR(64)", nullable: true }]
    })
    const checkpointer = yield* Checkpointer.makeMemoryForTests
    const labelStore = yield* LabelStore.makeMemory()
    return { emulator, table, checkpointer, labelStore }
  })

export type Ctx = Effect.Effect.Success<ReturnType<typeof setupTable>>

export const configFor = (ctx: Ctx, overrides: Partial<StarRocksConfig.Options> = {}) =>
  StarRocksConfig.make({
    loadUrl: ctx.emulator.fe,
    database: db,
    table: ctx.table,
    username: "root",
    password: Redacted.make(""),
    format: "csv",
    maxRows: 100,
    maxBytes: 64 * 1024,
    maxRetries: 3,
    retryInterval: "20 millis",
    retryMaxDelay: "100 millis",
    labelStateTimeout: "2 seconds",
    allowSmallBuffers: true,
    ...overrides
  })

/** The sink's services, sharing the test's Checkpointer and LabelStore (they survive a "restart"). */
export const services = (
  ctx: Ctx,
  config: StarRocksConfig.StarRocksConfig,
  checkpointer?: Checkpointer.Checkpointer
) =>
  Layer.mergeAll(
    LoadClient.layer(config),
    Layer.succeed(LabelStore.LabelStore, ctx.labelStore),
    Layer.succeed(Checkpointer.Checkpointer, checkpointer ?? ctx.checkpointer)
  ).pipe(
    Layer.provideMerge(StarRocksConfig.layerFrom(config)),
    Layer.provideMerge(Logger.minimumLogLevel(LogLevel.Error))
  )
