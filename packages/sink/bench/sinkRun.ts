import { Effect, Logger, LogLevel, Redacted, Schema, Stream } from "effect"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import * as Url from "node:url"
import { Checkpoint, Checkpointer, StarRocksConfig, StarRocksSink } from "../src/index.js"
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

/**
 * How the bench's many-table sink routes a row (`BENCH_ROUTE`, for taking its cost apart: docs/benchmark.md, session
 * 11): `modulo` (the default, the bench's own) by `row.id % tables`, consecutive rows to different tables; `blocks`
 * by `row.id / 4096 % tables`, a table per chunk of 4,096 rows; `first` every row to the first table, through the
 * same routing function (the routing's cost without many lanes).
 */
const routes: Record<string, (id: number, tables: number) => number> = {
  blocks: (id, tables) => Math.floor(id / 4096) % tables,
  first: () => 0
}

/**
 * The at-least-once sink of the bench: one table (`t`), or `tables` tables chosen by `row.id % tables` (or as
 * `BENCH_ROUTE` says). The route returns names made once (as a route by a tenant column returns the row's own
 * string), not a new string per row.
 */
const target = (tables: number) => {
  if (tables <= 1) return StarRocksSink.make(ReferenceRow)
  const names = Array.from({ length: tables }, (_, i) => `t${i}`)
  const route = process.env["BENCH_ROUTE"] ?? "modulo"
  // the default keeps the bench's own route function as it was
  if (route === "modulo") {
    return StarRocksSink.make(StarRocksSink.byRoute(ReferenceRow, (row) => names[row.id % tables]!))
  }
  const pick = routes[route]
  if (pick === undefined) throw new Error(`BENCH_ROUTE: ${route} is none of modulo, ${Object.keys(routes).join(", ")}`)
  return StarRocksSink.make(StarRocksSink.byRoute(ReferenceRow, (row) => names[pick(row.id, tables)]!))
}

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
    // each run starts afresh (its own label prefix): nothing needs to survive it
    Effect.provide(Checkpointer.layerMemoryForTests),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    Effect.runPromise
  )

const here = Path.dirname(Url.fileURLToPath(import.meta.url))

/** The null endpoint (nullEndpoint.mjs) in a child process of its own: its port, and its counts of loads and bytes. */
export const startEndpoint = () =>
  new Promise<
    {
      port: number
      child: ChildProcess.ChildProcess
      stats: () => Promise<{ loads: number; bytes: number; cpuMs: number }>
    }
  >(
    (resolve, reject) => {
      const child = ChildProcess.spawn(process.execPath, [Path.join(here, "nullEndpoint.mjs")], {
        stdio: ["ignore", "pipe", "inherit", "ipc"]
      })
      child.stdout!.once("data", (d: Buffer) => {
        const { port } = JSON.parse(d.toString("utf8"))
        resolve({
          port,
          child,
          stats: () =>
            new Promise((res) => {
              child.once("message", (m) => res(m as { loads: number; bytes: number; cpuMs: number }))
              child.send("stats")
            })
        })
      })
      child.once("error", reject)
    }
  )
