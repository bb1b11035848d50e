/**
 * Payload compression: the reference rows through the at-least-once sink into the null endpoint, uncompressed and
 * with each codec (`lz4_frame`, `gzip`, `zstd`), CSV and JSON, one run each in the same process: rows/s, the bytes
 * of the bodies before compression, and the bytes on the wire (as the endpoint received them).
 * Run from bench.ts (its own section, after the other figures), or alone:
 * `npx tsx packages/sink/bench/compression.ts [N]` (default 200,000 rows).
 *
 * Memory: `npx tsx packages/sink/bench/compression.ts rss N csv|json none|lz4_frame|gzip|zstd` runs ONE sink run in
 * this process over N generated rows (never all in memory, as bench/rss.ts does) and prints one JSON line: the peak
 * RSS (VmHWM), the wall and CPU seconds, rows/s and the bytes on the wire. One run per process, so that each peak is
 * its own; compare codecs, and old and new code, by alternating such runs.
 */
import { ReferenceRows } from "@effect-starrocks/testkit"
import { Effect, Logger, LogLevel, Stream } from "effect"
import * as Fs from "node:fs"
import * as Url from "node:url"
import { StarRocksConfig, StarRocksSink } from "../src/index.js"
import { ReferenceRow } from "./referenceSchema.js"
import { config, startEndpoint } from "./sinkRun.js"

export interface CodecFigure {
  readonly format: "csv" | "json"
  readonly codec: "none" | StarRocksConfig.Options["compression"] & string
  readonly rowsPerSecond: number
  /** Body bytes before compression (the summary's `bytes`). */
  readonly bytes: number
  /** Body bytes the endpoint received. */
  readonly wireBytes: number
  /** CPU seconds of this process during the run (the codecs' thread pool included). */
  readonly cpuSeconds: number
}

const codecs = ["none", ...StarRocksConfig.compressionCodecs] as const

/** The bench's config with `sink.properties.compression` set, as `compression` resolves to. */
const withCodec = (cfg: StarRocksConfig.StarRocksConfig, codec: typeof codecs[number]) =>
  codec === "none" ? cfg : { ...cfg, properties: { ...cfg.properties, compression: codec } }

/** One run per format and codec over the same `n` rows, against a null endpoint of its own. */
export const runCompression = async (n: number): Promise<ReadonlyArray<CodecFigure>> => {
  const rows = Array.from(ReferenceRows.rows(n))
  const endpoint = await startEndpoint()
  const figures: Array<CodecFigure> = []
  try {
    for (const format of ["csv", "json"] as const) {
      for (const codec of codecs) {
        const before = await endpoint.stats()
        const cpu = process.cpuUsage()
        const started = performance.now()
        const summary = await Stream.fromIterable(rows).pipe(
          Stream.rechunk(4096),
          Stream.run(StarRocksSink.make(ReferenceRow)),
          Effect.provide(
            StarRocksSink.layer(withCodec(config(endpoint.port, format, `bench-cmp-${format}-${codec}`), codec))
          ),
          Logger.withMinimumLogLevel(LogLevel.Warning),
          Effect.runPromise
        )
        const seconds = (performance.now() - started) / 1000
        const used = process.cpuUsage(cpu)
        const after = await endpoint.stats()
        figures.push({
          format,
          codec,
          rowsPerSecond: Math.round(n / seconds),
          bytes: summary.bytes,
          wireBytes: after.bytes - before.bytes,
          cpuSeconds: (used.user + used.system) / 1e6
        })
      }
    }
  } finally {
    endpoint.child.kill("SIGTERM")
  }
  return figures
}

/** The section's lines: per format and codec, rows/s and the bytes on the wire (with the ratio). */
export const report = (n: number, figures: ReadonlyArray<CodecFigure>): ReadonlyArray<string> => [
  `compression (${n.toLocaleString()} rows per run, one run each):`,
  ...figures.map((f) =>
    `  ${f.format.toUpperCase().padEnd(4)} ${f.codec.padEnd(9)}: ${
      f.rowsPerSecond.toLocaleString().padStart(9)
    } rows/s` +
    `  wire ${(f.wireBytes / 1048576).toFixed(1).padStart(6)} MiB of ${(f.bytes / 1048576).toFixed(1)} MiB` +
    `  (ratio ${(f.bytes / Math.max(1, f.wireBytes)).toFixed(2)})  cpu ${f.cpuSeconds.toFixed(2)} s`
  )
]

/** One sink run over `n` generated rows with `codec`: peak RSS, wall and CPU time, rows/s, bytes on the wire. */
export const runRss = async (n: number, format: "csv" | "json", codec: typeof codecs[number]) => {
  const endpoint = await startEndpoint()
  try {
    let sampled = process.memoryUsage().rss
    let at: NodeJS.MemoryUsage | undefined
    const sampler = setInterval(() => {
      const m = process.memoryUsage()
      if (m.rss > sampled) {
        sampled = m.rss
        at = m
      }
    }, 10)
    const cpu = process.cpuUsage()
    const started = performance.now()
    const summary = await Stream.fromIterable(ReferenceRows.rows(n)).pipe(
      Stream.rechunk(4096),
      Stream.run(StarRocksSink.make(ReferenceRow)),
      Effect.provide(
        StarRocksSink.layer(withCodec(config(endpoint.port, format, `bench-rss-${format}-${codec}`), codec))
      ),
      Logger.withMinimumLogLevel(LogLevel.Warning),
      Effect.runPromise
    )
    const seconds = (performance.now() - started) / 1000
    const used = process.cpuUsage(cpu)
    clearInterval(sampler)
    const hwm = /VmHWM:\s+(\d+) kB/.exec(Fs.readFileSync("/proc/self/status", "utf8"))
    const stats = await endpoint.stats()
    return {
      format,
      codec,
      rows: summary.rows,
      peak_rss_mb: Math.round(hwm !== null ? Number(hwm[1]) / 1024 : sampled / 1048576),
      seconds: Number(seconds.toFixed(2)),
      cpu_s: Number(((used.user + used.system) / 1e6).toFixed(2)),
      rows_per_s: Math.round(n / seconds),
      bytes: summary.bytes,
      wire_bytes: stats.bytes,
      // process.memoryUsage() in MiB when the sampled RSS peaked (heap, ArrayBuffers, …)
      at_peak: Object.fromEntries(Object.entries(at ?? {}).map(([k, v]) => [k, Math.round(v / 1048576)]))
    }
  } finally {
    endpoint.child.kill("SIGTERM")
  }
}

if (
  process.argv[1] !== undefined && Url.pathToFileURL(process.argv[1]).href === import.meta.url &&
  process.argv[2] === "rss"
) {
  const [n, format, codec] = process.argv.slice(3)
  runRss(Number(n ?? 2_000_000), (format ?? "json") as "csv" | "json", (codec ?? "lz4_frame") as typeof codecs[number])
    .then(
      (figure) => {
        console.log(JSON.stringify(figure))
        process.exit(0)
      },
      (e) => {
        console.error(e)
        process.exit(1)
      }
    )
} else if (process.argv[1] !== undefined && Url.pathToFileURL(process.argv[1]).href === import.meta.url) {
  const n = Number(process.argv[2] ?? 200_000)
  runCompression(n).then(
    (figures) => {
      for (const line of report(n, figures)) console.log(line)
      process.exit(0)
    },
    (e) => {
      console.error(e)
      process.exit(1)
    }
  )
}
