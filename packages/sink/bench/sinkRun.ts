import { Effect, Logger, LogLevel, Redacted, Schema, Stream } from "effect"
import { Checkpoint, StarRocksConfig, StarRocksSink } from "../src/index.js"
import { ReferenceRow } from "./referenceSchema.js"

export const config = (port: number, format: "csv" | "json", labelPrefix?: string) =>
  StarRocksConfig.make({
    loadUrl: [`127.0.0.1:${port}`],
    database: "db",
    table: "t",
    username: "root",
    password: Redacted.make(""),
    format,
    maxRetries: 0,
    ...(process.env["BENCH_MAX_ROWS"] ? { maxRows: Number(process.env["BENCH_MAX_ROWS"]) } : {}),
    ...(process.env["BENCH_MAX_BYTES"] ? { maxBytes: Number(process.env["BENCH_MAX_BYTES"]) } : {}),
    ...(labelPrefix !== undefined ? { labelPrefix } : {}),
    allowSmallBuffers: true
  })

type Row = typeof ReferenceRow.Type

/** The at-least-once sink of the bench: one table (`t`), or `tables` tables chosen by `row.id % tables`. */
const target = (tables: number) =>
  tables <= 1
    ? StarRocksSink.make(ReferenceRow)
    : StarRocksSink.make(StarRocksSink.byRoute(ReferenceRow, (row) => "t" + (row.id % tables)))

/** Runs rows through the sink into the null endpoint; resolves to the summary. */
export const runSink = (
  rows: Iterable<Row>,
  port: number,
  format: "csv" | "json",
  chunkSize = 4096,
  tables = 1
) =>
  Stream.fromIterable(rows).pipe(
    Stream.rechunk(chunkSize),
    Stream.run(target(tables)),
    Effect.provide(StarRocksSink.layer(config(port, format))),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    Effect.runPromise
  )

let runs = 0

/**
 * Runs rows through `Checkpoint.withBarriers` (a barrier every `everyRows` rows, and one at the end) and
 * `StarRocksSink.exactlyOnce` into the null endpoint's transaction interface, CSV, in `chunkSize`-row chunks. Each
 * run has its own label prefix (the endpoint keeps the labels it has seen).
 */
export const runExactlyOnce = (
  rows: Iterable<Row>,
  port: number,
  everyRows = 500_000,
  chunkSize = 4096
) =>
  Stream.fromIterable(rows).pipe(
    Stream.rechunk(chunkSize),
    Checkpoint.withBarriers({ position: (r: Row) => r.id, everyRows }),
    Stream.run(StarRocksSink.exactlyOnce(ReferenceRow, { position: Schema.Number })),
    Effect.provide(
      StarRocksSink.layer({ ...config(port, "csv", `bench-eo-${process.pid}-${runs++}`), semantic: "exactly-once" })
    ),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    Effect.runPromise
  )
