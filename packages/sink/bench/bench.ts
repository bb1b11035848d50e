/**
 * `npm run bench`: the sink against a null StarRocks endpoint on loopback (Stream Load and the transaction
 * interface), with two baselines in the same run: (a) a plain Node loop that encodes the same rows to the same bytes
 * and PUTs them with node:http, and (b) curl -T of those bytes (the wire). Also in the same run: 20 tables
 * interleaved (`byRoute`), one-row chunks (against Effect's own stream of one-row chunks into a no-op sink), and
 * exactly-once (barriers every 500,000 rows) against at-least-once; then, its own section, each payload compression
 * (compression.ts: rows/s and bytes on the wire per codec, CSV and JSON); then 50 small writers of one-row loads
 * with and without merge commit against the emulator (mergeCommit.ts); then adaptive concurrency against a slow
 * emulator, a sweep of fixed concurrency beside the adaptive mode (adaptive.ts); last, its own section in a child
 * process, the loader against curl (packages/cli/bench/loader.ts, its JSON line under `loader`). Prints figures, then one
 * JSON line:
 * {"csv_rows_per_s":…,"csv_vs_plain":…,"json_rows_per_s":…,"json_vs_plain":…,"wire_mb_per_s":…,"peak_rss_mb":…,
 *  "tables20_rows_per_s":…,"tables20_vs_one":…,"tables20_vs_one_median":…,"one_row_chunks_rows_per_s":…,
 *  "one_row_vs_effect":…,"one_row_vs_effect_median":…,
 *  "exactly_once_rows_per_s":…,"exactly_once_vs_at_least_once":…,"exactly_once_vs_at_least_once_median":…,
 *  "compression":[{"format":…,"codec":…,"rows_per_s":…,"bytes":…,"wire_bytes":…},…],
 *  "merge_commit":[{"mode":"plain"|"merge_commit","writers":…,"loads":…,"transactions":…,"rows_per_s":…,
 *  "failures":…,"exactly_once":…},…],
 *  "adaptive":[{"mode":"fixed"|"adaptive","concurrency":…,"rows_per_s":…,"loads":…,"retries":…,"no_row_lost":…,
 *  "limit_mean":…},…],
 *  "loader":{"loader_mb_per_s":…,"loader_vs_curl":…,"loader_vs_curl_parallel2":…,"rss_big_vs_small":…,…}}
 * Environment: BENCH_ROWS (default 2,000,000), BENCH_RSS_10X=0 (skip the 10 × N memory runs),
 * BENCH_COMPRESSION_ROWS (rows per compression run, default the smaller of BENCH_ROWS and 500,000),
 * BENCH_MERGE_COMMIT_WRITERS / BENCH_MERGE_COMMIT_LOADS (default 50 writers × 1,000 one-row loads each),
 * BENCH_ADAPTIVE_ROWS (default 100,000) and BENCH_ADAPTIVE_ROUNDS (default 1) with the server's settings in adaptive.ts,
 * and the loader's BENCH_LOADER_GB (default 1), BENCH_LOADER_BIG_GB (default 4), BENCH_LOADER_ROUNDS (default 2).
 * BENCH_SECTIONS=core runs only the figures before the compression section (a hot-path comparison).
 * Each measured run starts after a full garbage collection (`collect` below; node runs with `--expose-gc`).
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import { Effect, Sink, Stream } from "effect"
import * as Esbuild from "esbuild"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import { RowEncoder } from "../src/index.js"
import * as Adaptive from "./adaptive.js"
import * as Compression from "./compression.js"
import * as MergeCommit from "./mergeCommit.js"
import * as Plain from "./plainBaseline.js"
import { ReferenceRow } from "./referenceSchema.js"
import { config, runExactlyOnce, runSink, startEndpoint } from "./sinkRun.js"

const here = Path.dirname(Url.fileURLToPath(import.meta.url))
const N = Number(process.env["BENCH_ROWS"] ?? 2_000_000)
/** Rounds of the one-table, 20-table and exactly-once runs (alternating; each figure the best of its rounds). */
const ROUNDS = 5

/**
 * A full garbage collection before each measured run (`npm run bench` runs node with `--expose-gc`). The bench
 * holds its input, 2,000,000 pre-built rows (about 1 GB of heap), for the whole process; V8's old generation grows
 * with every run, and the run in which it crosses its limit pays a full collection that marks those rows: 0.8 to
 * 2.5 s of CPU, the input's cost, not the sink's (docs/benchmark.md, session 16, eoRatio.ts with `EO_GC=1`). Where
 * it fell decided single runs and the ratios of two (20 tables ÷ one, exactly-once ÷ at-least-once). Each measured
 * run now starts from the same collected heap; the sink's own garbage, young and old, stays in its run.
 */
const collect: () => void = (() => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) {
    console.log("note: no --expose-gc (npm run bench sets it): runs start without a full collection before each")
    return () => {}
  }
  return () => gc()
})()

const time = async <A>(f: () => Promise<A>): Promise<[A, number]> => {
  collect()
  const t0 = process.hrtime.bigint()
  const a = await f()
  return [a, Number(process.hrtime.bigint() - t0) / 1e9]
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
/** Each round's ratio, then the median and the spread (lowest to highest). */
const spread = (xs: ReadonlyArray<number>): string =>
  `${xs.map((x) => x.toFixed(3)).join(", ")}: median ${median(xs).toFixed(3)}, ${Math.min(...xs).toFixed(3)} to ${
    Math.max(...xs).toFixed(3)
  }`

const main = async () => {
  const endpoint = await startEndpoint()
  const { port } = endpoint
  console.log(`null endpoint on 127.0.0.1:${port}; building ${N.toLocaleString()} reference rows in memory`)
  const rows = Array.from(ReferenceRows.rows(N))

  // the same headers and separators the sink sends
  const csvHeaders = { ...RowEncoder.make(ReferenceRow).builder("csv").finish().headers }
  const jsonHeaders = { ...RowEncoder.make(ReferenceRow).builder("json").finish().headers }
  const probe = RowEncoder.make(ReferenceRow).builder("csv")
  probe.add(rows[0]!, 0)
  const probeText = Buffer.concat(probe.finish().body.chunks.map((c) => Buffer.from(c))).toString("utf8")
  const format: Plain.Format = {
    separator: csvHeaders["column_separator"] ?? ",",
    rowDelimiter: probeText.endsWith("\n") ? "\n" : "\n",
    booleanTrue: probeText.includes("\"true\"") ? "true" : "1",
    booleanFalse: probeText.includes("\"true\"") ? "false" : "0"
  }
  if (Plain.csvRow(rows[0]!, format) !== probeText) {
    console.log(
      `note: plain CSV row differs from the sink's:\n  sink:  ${JSON.stringify(probeText)}\n  plain: ${
        JSON.stringify(Plain.csvRow(rows[0]!, format))
      }`
    )
  }
  const jsonProbe = RowEncoder.make(ReferenceRow).builder("json")
  jsonProbe.add(rows[0]!, 0)
  const jsonText = Buffer.concat(jsonProbe.finish().body.chunks.map((c) => Buffer.from(c))).toString("utf8")
  if (`[${Plain.jsonRow(rows[0]!)}]` !== jsonText) {
    console.log(
      `note: plain JSON row differs from the sink's:\n  sink:  ${jsonText}\n  plain: [${Plain.jsonRow(rows[0]!)}]`
    )
  }
  const cfg = config(port, "csv")

  // warm-up (JIT) on a small slice
  await runSink(rows.slice(0, 50_000), port, "csv")
  await runSink(rows.slice(0, 50_000), port, "json")
  await runSink(rows.slice(0, 50_000), port, "csv", 4096, 20)
  await runSink(rows.slice(0, 50_000), port, "csv", 1)
  await runExactlyOnce(rows.slice(0, 50_000), port, 20_000)

  const before = await endpoint.stats()
  const [, csvSeconds] = await time(() => runSink(rows, port, "csv"))
  const afterCsv = await endpoint.stats()
  const [, jsonSeconds] = await time(() => runSink(rows, port, "json"))
  const afterJson = await endpoint.stats()
  // The two ratios' runs, on the same rows: one table at-least-once, 20 tables interleaved (row.id % 20: routing
  // per row, 20 lanes sharing the byte budget), and exactly-once (a barrier every 500,000 rows, transactions on
  // the null endpoint). A single run's speed moves by several percent with where a full GC falls, and a ratio of
  // two single runs by twice that: five rounds, alternating, best of each (three until session 16: on a machine
  // whose speed drifts by tens of percent within minutes, the best of three still caught a slow spell).
  let atLeastOnceSeconds = Infinity
  let tables20Seconds = Infinity
  let exactlyOnceSeconds = Infinity
  let exactlyOnceSummary: Awaited<ReturnType<typeof runExactlyOnce>> | undefined
  // each round's own ratio too (20 tables ÷ one table of the same round): their median and spread say how far the
  // best-of figure can be trusted
  const tables20Rounds: Array<number> = []
  const exactlyOnceRounds: Array<number> = []
  for (let k = 0; k < ROUNDS; k++) {
    const one = (await time(() => runSink(rows, port, "csv")))[1]
    const many = (await time(() => runSink(rows, port, "csv", 4096, 20)))[1]
    atLeastOnceSeconds = Math.min(atLeastOnceSeconds, one)
    tables20Seconds = Math.min(tables20Seconds, many)
    tables20Rounds.push(one / many)
    const [summary, seconds] = await time(() => runExactlyOnce(rows, port, 500_000))
    exactlyOnceSummary = summary
    exactlyOnceSeconds = Math.min(exactlyOnceSeconds, seconds)
    exactlyOnceRounds.push(one / seconds)
  }
  // one-row chunks (what Stream.async, fromAsyncIterable or an event source give): the sink's cost per chunk,
  // next to Effect's own cost of the same stream into a sink that does nothing. Both are short runs (under two
  // seconds) whose speed moves with where a full GC falls: each is run five times, alternating, best of each (and
  // each round's ratio, for the median and the spread).
  const small = rows.slice(0, 300_000)
  let oneRowSeconds = Infinity
  let oneRowNoopSeconds = Infinity
  const oneRowRounds: Array<number> = []
  for (let k = 0; k < 5; k++) {
    const sink = (await time(() => runSink(small, port, "csv", 1)))[1]
    const noop = (await time(() =>
      Effect.runPromise(
        Stream.run(Stream.rechunk(Stream.fromIterable(small), 1), Sink.forEachChunk(() => Effect.void))
      )
    ))[1]
    oneRowSeconds = Math.min(oneRowSeconds, sink)
    oneRowNoopSeconds = Math.min(oneRowNoopSeconds, noop)
    oneRowRounds.push(noop / sink)
  }
  const [plainCsvBytes, plainCsvSeconds] = await time(() =>
    Plain.run({
      rows,
      format: "csv",
      csv: format,
      headers: csvHeaders,
      batchRows: cfg.maxRows,
      inflight: cfg.ioThreadCount,
      port
    })
  )
  const [plainJsonBytes, plainJsonSeconds] = await time(() =>
    Plain.run({
      rows,
      format: "json",
      csv: format,
      headers: jsonHeaders,
      batchRows: cfg.maxRows,
      inflight: cfg.ioThreadCount,
      port
    })
  )
  const sinkCsvBytes = afterCsv.bytes - before.bytes
  const sinkJsonBytes = afterJson.bytes - afterCsv.bytes

  // the wire: curl -T of the CSV bytes of one batch, repeated over the same total size
  const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-bench-"))
  const file = Path.join(tmp, "batch.csv")
  const batch = rows.slice(0, Math.min(rows.length, cfg.maxRows)).map((r) => Plain.csvRow(r, format)).join("")
  Fs.writeFileSync(file, batch)
  const batchBytes = Buffer.byteLength(batch)
  const reps = Math.max(1, Math.round(plainCsvBytes / batchBytes))
  const [, wireSeconds] = await time(async () => {
    for (let i = 0; i < reps; i++) {
      ChildProcess.execFileSync("curl", [
        "-sS",
        "-o",
        "/dev/null",
        "-u",
        "root:",
        "-H",
        "Expect:100-continue",
        "-H",
        `label:wire-${i}`,
        "-T",
        file,
        `http://127.0.0.1:${port}/api/db/t/_stream_load`
      ])
    }
  })
  Fs.rmSync(tmp, { recursive: true, force: true })

  // memory: generated rows (not pre-built) through the sink, N/10, N and 10 × N, each in its own process. The
  // probe is bundled by esbuild and run by plain node, as production code runs (tsx's loader alone adds ~80 MB).
  const probeDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-rss-"))
  const probeFile = Path.join(probeDir, "rss.mjs")
  await Esbuild.build({
    entryPoints: [Path.join(here, "rss.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile: probeFile,
    logLevel: "warning",
    // a name of its own: the bundle may import createRequire itself (the jdbc-url reader's dependencies do)
    banner: {
      js:
        "import { createRequire as __benchCreateRequire } from 'module'; const require = __benchCreateRequire(import.meta.url);"
    }
  })
  const rss = (n: number, format: "csv" | "json") => {
    const out = ChildProcess.execFileSync(process.execPath, [probeFile, String(n), String(port), format], {
      encoding: "utf8"
    })
    return JSON.parse(out.trim().split("\n").pop()!) as { rows: number; peak_rss_mb: number; seconds: number }
  }
  const tenfold = process.env["BENCH_RSS_10X"] !== "0"
  const rssRuns = {
    csv: [rss(Math.max(1, Math.round(N / 10)), "csv"), rss(N, "csv"), ...(tenfold ? [rss(N * 10, "csv")] : [])],
    json: [rss(N, "json"), ...(tenfold ? [rss(N * 10, "json")] : [])]
  }
  Fs.rmSync(probeDir, { recursive: true, force: true })
  endpoint.child.kill("SIGTERM")

  const csvRate = N / csvSeconds
  const jsonRate = N / jsonSeconds
  const plainCsvRate = N / plainCsvSeconds
  const plainJsonRate = N / plainJsonSeconds
  const wire = (batchBytes * reps) / 1048576 / wireSeconds
  console.log(
    `rows: ${N.toLocaleString()}  max-bytes: ${cfg.maxBytes}  max-rows: ${cfg.maxRows}  in flight: ${cfg.ioThreadCount}`
  )
  console.log(
    `sink  CSV : ${Math.round(csvRate).toLocaleString()} rows/s  (${(sinkCsvBytes / 1048576).toFixed(1)} MiB)`
  )
  console.log(
    `plain CSV : ${Math.round(plainCsvRate).toLocaleString()} rows/s  (${
      (plainCsvBytes / 1048576).toFixed(1)
    } MiB)  same bytes: ${sinkCsvBytes === plainCsvBytes}`
  )
  console.log(
    `sink  JSON: ${Math.round(jsonRate).toLocaleString()} rows/s  (${(sinkJsonBytes / 1048576).toFixed(1)} MiB)`
  )
  console.log(
    `plain JSON: ${Math.round(plainJsonRate).toLocaleString()} rows/s  (${
      (plainJsonBytes / 1048576).toFixed(1)
    } MiB)  same bytes: ${sinkJsonBytes === plainJsonBytes}`
  )
  console.log(`wire (curl -T): ${wire.toFixed(0)} MiB/s`)
  const tables20Rate = N / tables20Seconds
  const atLeastOnceRate = N / atLeastOnceSeconds
  console.log(
    `sink  CSV, 20 tables interleaved (byRoute): ${Math.round(tables20Rate).toLocaleString()} rows/s  (one table, ` +
      `the same rounds: ${
        Math.round(atLeastOnceRate).toLocaleString()
      } rows/s; best of ${ROUNDS} each; ratio per round ` +
      `${spread(tables20Rounds)})`
  )
  const oneRowRate = small.length / oneRowSeconds
  const oneRowNoopRate = small.length / oneRowNoopSeconds
  console.log(
    `sink  CSV, one-row chunks: ${Math.round(oneRowRate).toLocaleString()} rows/s  (Effect's stream ` +
      `of one-row chunks into a no-op sink: ${Math.round(oneRowNoopRate).toLocaleString()} rows/s; best of 5 each; ` +
      `ratio per round ${spread(oneRowRounds)})`
  )
  const exactlyOnceRate = N / exactlyOnceSeconds
  console.log(
    `sink  CSV, exactly-once (barrier every 500,000 rows): ${Math.round(exactlyOnceRate).toLocaleString()} rows/s ` +
      `(${exactlyOnceSummary!.checkpoints} checkpoints; best of ${ROUNDS})  at-least-once, the same rounds: ${
        Math.round(atLeastOnceRate).toLocaleString()
      } rows/s; ratio per round ${spread(exactlyOnceRounds)}`
  )
  const bound = Math.round((2 * cfg.maxBytes) / 1048576 + 150)
  for (const format of ["csv", "json"] as const) {
    console.log(
      `peak RSS, generated rows through the sink, ${format.toUpperCase()}: ${
        rssRuns[format].map((r) => `${r.rows.toLocaleString()} rows ${r.peak_rss_mb} MB`).join(", ")
      }  (bound: 2 × max-bytes + 150 MB = ${bound} MB)`
    )
  }
  // BENCH_SECTIONS=core stops here: the figures above are the ones a change to the hot path must keep (the
  // sections below have their own endpoints and run for minutes)
  const sections = process.env["BENCH_SECTIONS"] ?? "all"
  if (sections !== "all" && sections !== "core") throw new Error(`BENCH_SECTIONS=${sections}: all or core`)
  const all = sections === "all"
  const extra = all ? await extraSections(N) : undefined
  console.log(JSON.stringify({
    csv_rows_per_s: Math.round(csvRate),
    csv_vs_plain: Number((csvRate / plainCsvRate).toFixed(3)),
    json_rows_per_s: Math.round(jsonRate),
    json_vs_plain: Number((jsonRate / plainJsonRate).toFixed(3)),
    wire_mb_per_s: Math.round(wire),
    peak_rss_mb: Math.max(...[...rssRuns.csv, ...rssRuns.json].map((r) => r.peak_rss_mb)),
    tables20_rows_per_s: Math.round(tables20Rate),
    tables20_vs_one: Number((tables20Rate / atLeastOnceRate).toFixed(3)),
    tables20_vs_one_median: Number(median(tables20Rounds).toFixed(3)),
    one_row_chunks_rows_per_s: Math.round(oneRowRate),
    one_row_vs_effect: Number((oneRowRate / oneRowNoopRate).toFixed(3)),
    one_row_vs_effect_median: Number(median(oneRowRounds).toFixed(3)),
    exactly_once_rows_per_s: Math.round(exactlyOnceRate),
    exactly_once_vs_at_least_once: Number((exactlyOnceRate / atLeastOnceRate).toFixed(3)),
    exactly_once_vs_at_least_once_median: Number(median(exactlyOnceRounds).toFixed(3)),
    ...extra
  }))
}

/** The sections after the core figures: compression, merge commit, adaptive concurrency, the loader. */
const extraSections = async (N: number) => {
  // its own section, after the figures above (own null endpoint, own runs): rows/s and bytes on the wire per codec
  const compressionRows = Number(process.env["BENCH_COMPRESSION_ROWS"] ?? Math.min(N, 500_000))
  const compression = await Compression.runCompression(compressionRows)
  for (const line of Compression.report(compressionRows, compression)) console.log(line)
  // its own section, last (own emulators): 50 small writers with and without merge commit
  const mergeCommit = await MergeCommit.runMergeCommit(
    Number(process.env["BENCH_MERGE_COMMIT_WRITERS"] ?? 50),
    Number(process.env["BENCH_MERGE_COMMIT_LOADS"] ?? 1000)
  )
  for (const line of MergeCommit.report(mergeCommit)) console.log(line)
  // its own section, after merge commit (own emulators): a fixed-concurrency sweep and adaptive concurrency
  const adaptiveServer = Adaptive.serverFromEnv()
  const adaptive = await Adaptive.runAdaptive(
    Number(process.env["BENCH_ADAPTIVE_ROWS"] ?? 100_000),
    Number(process.env["BENCH_ADAPTIVE_ROUNDS"] ?? 1),
    adaptiveServer
  )
  for (const line of Adaptive.report(adaptive, adaptiveServer)) console.log(line)
  // its own section, last: the loader (`effect-starrocks load`) against curl, in a child process of its own
  // (packages/cli/bench/loader.ts; BENCH_LOADER_GB, BENCH_LOADER_BIG_GB, BENCH_LOADER_ROUNDS)
  const loaderRun = ChildProcess.spawnSync(
    process.execPath,
    ["--import", "tsx", Path.join(here, "../../cli/bench/loader.ts")],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 16 * 1048576 }
  )
  const loaderLines = loaderRun.stdout.trim().split("\n")
  for (const line of loaderLines.slice(0, -1)) console.log(line)
  if (loaderRun.status !== 0) throw new Error(`packages/cli/bench/loader.ts exited ${loaderRun.status}`)
  const loader = JSON.parse(loaderLines.at(-1)!) as Record<string, number | null>
  return {
    compression: compression.map((f) => ({
      format: f.format,
      codec: f.codec,
      rows_per_s: f.rowsPerSecond,
      bytes: f.bytes,
      wire_bytes: f.wireBytes
    })),
    merge_commit: mergeCommit.map((f) => ({
      mode: f.mode,
      writers: f.writers,
      loads: f.loads,
      transactions: f.transactions,
      rows_per_s: f.rowsPerSecond,
      failures: f.failures,
      exactly_once: f.exactlyOnce
    })),
    adaptive: adaptive.map((f) => ({
      mode: f.mode,
      concurrency: f.concurrency,
      rows_per_s: f.rowsPerSecond,
      loads: f.loads,
      retries: f.retries,
      no_row_lost: f.noRowLost,
      ...(f.limitMean !== undefined ? { limit_mean: f.limitMean } : {})
    })),
    loader
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
