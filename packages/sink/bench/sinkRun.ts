import { Effect, Logger, LogLevel, Redacted, Stream } from "effect"
import { StarRocksConfig, StarRocksSink } from "../src/index.js"
import { ReferenceRow } from "./referenceSchema.js"

export const config = (port: number, format: "csv" | "json") =>
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
    allowSmallBuffers: true
  })

/** Runs rows through the sink into the null endpoint; resolves to the summary. */
export const runSink = (
  rows: Iterable<typeof ReferenceRow.Type>,
  port: number,
  format: "csv" | "json",
  chunkSize = 4096
) =>
  Stream.fromIterable(rows).pipe(
    Stream.rechunk(chunkSize),
    Stream.run(StarRocksSink.make(ReferenceRow)),
    Effect.provide(StarRocksSink.layer(config(port, format))),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    Effect.runPromise
  )
