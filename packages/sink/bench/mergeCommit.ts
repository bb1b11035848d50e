/**
 * Merge commit: `writers` concurrent small writers (each a `LoadClient` of its own, as separate sink instances
 * are), each making `loads` one-row loads in turn into one table of the emulator, once with plain Stream Load (a
 * transaction per load) and once with merge commit (sync, 50 ms windows): loads, transactions, rows/s, failures,
 * and whether every row landed exactly once.
 * Run from bench.ts (its own section, at its end), or alone:
 * `npx tsx packages/sink/bench/mergeCommit.ts [writers] [loads]` (default 50 × 1,000).
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { Effect, Exit, Logger, LogLevel, Redacted } from "effect"
import * as Url from "node:url"
import { LoadClient, StarRocksConfig } from "../src/index.js"

export interface MergeCommitFigure {
  readonly mode: "plain" | "merge_commit"
  readonly writers: number
  readonly loads: number
  readonly failures: number
  /** Transactions the server ran for the loads. */
  readonly transactions: number
  readonly rowsPerSecond: number
  /** Every row of a successful load is in the table once, and no other row. */
  readonly exactlyOnce: boolean
}

const run = (mode: MergeCommitFigure["mode"], writers: number, loads: number) =>
  Effect.gen(function*() {
    const em = yield* StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 2 })
    yield* em.createTable({
      database: "db",
      table: "t",
      model: "DUPLICATE",
      key: [],
      columns: [{ name: "id", type: "INT" }, { name: "w", type: "INT" }]
    })
    const config = StarRocksConfig.make({
      loadUrl: em.fe,
      database: "db",
      table: "t",
      username: "root",
      password: Redacted.make(""),
      retryInterval: 10
    })
    const headers: Record<string, string> = mode === "plain" ?
      { format: "csv", column_separator: "," } :
      { format: "csv", column_separator: ",", ...StarRocksConfig.mergeCommit({ interval: 50, parallel: 2 }) }
    const started = performance.now()
    const exits = yield* Effect.forEach(
      Array.from({ length: writers }, (_, w) => w),
      (w) =>
        Effect.scoped(Effect.flatMap(LoadClient.make(config), (client) =>
          Effect.forEach(
            Array.from({ length: loads }, (_, i) => i),
            (i) => {
              const id = w * loads + i
              const body = Buffer.from(`${id},${w}\n`)
              return Effect.exit(client.loadBatch({
                database: "db",
                table: "t",
                label: `bench_${mode}_${id}`,
                headers,
                body: { chunks: [body], byteLength: body.byteLength }
              })).pipe(Effect.map((exit) => ({ id, ok: Exit.isSuccess(exit) })))
            }
          ))),
      { concurrency: "unbounded" }
    ).pipe(Effect.map((r) => r.flat()))
    const seconds = (performance.now() - started) / 1000
    const landed = exits.filter((e) => e.ok).map((e) => e.id).sort((a, b) => a - b)
    const stored = (yield* em.rows("db", "t")).map((r) => Number(r["id"])).sort((a, b) => a - b)
    const transactions = (yield* em.transactions("db")).filter((t) => t.status === "VISIBLE").length
    return {
      mode,
      writers,
      loads: writers * loads,
      failures: exits.length - landed.length,
      transactions,
      rowsPerSecond: Math.round(stored.length / seconds),
      exactlyOnce: stored.length === landed.length && stored.every((id, i) => id === landed[i])
    } satisfies MergeCommitFigure
  }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None))

/** Both runs, plain first, each against an emulator of its own. */
export const runMergeCommit = (writers: number, loads: number): Promise<ReadonlyArray<MergeCommitFigure>> =>
  Effect.runPromise(Effect.all([run("plain", writers, loads), run("merge_commit", writers, loads)]))

/** The printed lines. */
export const report = (figures: ReadonlyArray<MergeCommitFigure>): ReadonlyArray<string> =>
  figures.map((f) =>
    `merge commit bench, ${f.mode === "plain" ? "plain Stream Load" : "merge commit (sync, 50 ms)"}: ${f.writers} ` +
    `writers, ${f.loads.toLocaleString()} one-row loads, ${f.transactions.toLocaleString()} transactions, ` +
    `${f.rowsPerSecond.toLocaleString()} rows/s, ${f.failures} failures, ` +
    `${f.exactlyOnce ? "every landed row once" : "ROWS MISSING OR DUPLICATED"}`
  )

if (process.argv[1] !== undefined && Url.pathToFileURL(process.argv[1]).href === import.meta.url) {
  const writers = Number(process.argv[2] ?? 50)
  const loads = Number(process.argv[3] ?? 1000)
  runMergeCommit(writers, loads).then((figures) => {
    for (const line of report(figures)) console.log(line)
    console.log(JSON.stringify({ merge_commit: figures }))
  }).catch((e) => {
    console.error(e)
    process.exit(1)
  })
}
