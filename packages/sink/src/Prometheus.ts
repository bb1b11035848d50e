/**
 * The sink's metrics (and every other Effect `Metric` of the process) in Prometheus' text exposition format, and a
 * small scoped HTTP server that serves them at `/metrics` for a Prometheus scrape.
 *
 * The text is rendered from Effect's own metric registry (`Metric.snapshot`), with no exporter dependency:
 * counters as `counter`, gauges as `gauge`, histograms (the sink's `loadLatencyMs`, `serverTimeMs`) as
 * `histogram` with cumulative `_bucket{le=…}`, `_sum` and `_count`, summaries as `summary`, frequencies as a
 * `counter` per value (label `key`). A metric's tags are its labels (the sink's `table` = `db.table`). Names are
 * the metrics' own (`totalFlushRows`, as the Flink connector names them), with any character Prometheus does not
 * allow replaced by `_`.
 *
 * @since 0.2.0
 */
import { Effect, Layer, Metric, MetricState, Option } from "effect"
import type { Scope } from "effect"
import * as Http from "node:http"

const NAME_RE = /[^a-zA-Z0-9_:]/g
const metricName = (name: string): string => {
  const n = name.replace(NAME_RE, "_")
  return /^[a-zA-Z_:]/.test(n) ? n : `_${n}`
}
const labelName = (name: string): string => {
  const n = name.replace(/[^a-zA-Z0-9_]/g, "_")
  return /^[a-zA-Z_]/.test(n) ? n : `_${n}`
}
const labelValue = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const helpText = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const num = (n: number | bigint): string =>
  typeof n === "bigint"
    ? n.toString()
    : Number.isNaN(n)
    ? "NaN"
    : n === Infinity
    ? "+Inf"
    : n === -Infinity
    ? "-Inf"
    : String(n)

const labels = (pairs: ReadonlyArray<readonly [string, string]>): string =>
  pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${labelName(k)}="${labelValue(v)}"`).join(",")}}`

/**
 * Renders metric pairs (`Metric.snapshot`'s) as Prometheus text: one `# HELP` / `# TYPE` per metric name, then its
 * samples, one line each.
 *
 * @since 0.2.0
 * @category rendering
 */
export const render = (
  pairs: ReadonlyArray<{
    readonly metricKey: {
      readonly name: string
      readonly description: Option.Option<string>
      readonly tags: ReadonlyArray<{ readonly key: string; readonly value: string }>
    }
    readonly metricState: unknown
  }>
): string => {
  const byName = new Map<string, { type: string; help: string; lines: Array<string> }>()
  const family = (name: string, type: string, help: Option.Option<string>) => {
    let f = byName.get(name)
    if (f === undefined) {
      f = { type, help: Option.getOrElse(help, () => ""), lines: [] }
      byName.set(name, f)
    }
    return f
  }
  for (const { metricKey, metricState } of pairs) {
    const name = metricName(metricKey.name)
    const tags = metricKey.tags.map((t) => [t.key, t.value] as const)
    if (MetricState.isCounterState(metricState)) {
      family(name, "counter", metricKey.description).lines.push(`${name}${labels(tags)} ${num(metricState.count)}`)
    } else if (MetricState.isGaugeState(metricState)) {
      family(name, "gauge", metricKey.description).lines.push(`${name}${labels(tags)} ${num(metricState.value)}`)
    } else if (MetricState.isHistogramState(metricState)) {
      const f = family(name, "histogram", metricKey.description)
      for (const [boundary, cumulative] of metricState.buckets) {
        if (boundary === Infinity) continue
        f.lines.push(`${name}_bucket${labels([...tags, ["le", num(boundary)]])} ${num(cumulative)}`)
      }
      f.lines.push(`${name}_bucket${labels([...tags, ["le", "+Inf"]])} ${num(metricState.count)}`)
      f.lines.push(`${name}_sum${labels(tags)} ${num(metricState.sum)}`)
      f.lines.push(`${name}_count${labels(tags)} ${num(metricState.count)}`)
    } else if (MetricState.isSummaryState(metricState)) {
      const f = family(name, "summary", metricKey.description)
      for (const [quantile, value] of metricState.quantiles) {
        if (Option.isSome(value)) {
          f.lines.push(`${name}${labels([...tags, ["quantile", num(quantile)]])} ${num(value.value)}`)
        }
      }
      f.lines.push(`${name}_sum${labels(tags)} ${num(metricState.sum)}`)
      f.lines.push(`${name}_count${labels(tags)} ${num(metricState.count)}`)
    } else if (MetricState.isFrequencyState(metricState)) {
      const f = family(name, "counter", metricKey.description)
      for (const [key, count] of metricState.occurrences) {
        f.lines.push(`${name}${labels([...tags, ["key", key]])} ${num(count)}`)
      }
    }
  }
  const out: Array<string> = []
  for (const [name, f] of byName) {
    if (f.help !== "") out.push(`# HELP ${name} ${helpText(f.help)}`)
    out.push(`# TYPE ${name} ${f.type}`)
    out.push(...f.lines)
  }
  return out.length === 0 ? "" : out.join("\n") + "\n"
}

/**
 * Every metric of the process, now, as Prometheus text.
 *
 * @since 0.2.0
 * @category rendering
 */
export const text: Effect.Effect<string> = Effect.map(Metric.snapshot, render)

/**
 * @since 0.2.0
 * @category models
 */
export interface ServerOptions {
  /** Default 9464 (OpenTelemetry's Prometheus exporter's); 0 picks a free port. */
  readonly port?: number | undefined
  /** Default 127.0.0.1; `0.0.0.0` serves every interface. */
  readonly host?: string | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Server {
  /** The address Prometheus scrapes, e.g. `http://127.0.0.1:9464/metrics`. */
  readonly url: string
  readonly port: number
}

/**
 * Serves `GET /metrics` (Prometheus text, `text/plain; version=0.0.4`) until the scope closes; any other path is
 * 404. Fails when the port cannot be bound (`EADDRINUSE`, …), with Node's error.
 *
 * @since 0.2.0
 * @category constructors
 */
export const serve = (options: ServerOptions = {}): Effect.Effect<Server, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: Http.Server; port: number; host: string }, Error>((resume) => {
      const host = options.host ?? "127.0.0.1"
      const server = Http.createServer((req, res) => {
        if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
          res.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics\n")
          return
        }
        Effect.runPromise(text).then(
          (body) => res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(body),
          (e) => res.writeHead(500, { "content-type": "text/plain" }).end(String(e))
        )
      })
      server.once("error", (e) => resume(Effect.fail(e)))
      server.listen(options.port ?? 9464, host, () => {
        const address = server.address()
        resume(Effect.succeed({ server, port: typeof address === "object" && address ? address.port : 0, host }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ host, port }) => ({ port, url: `http://${host}:${port}/metrics` })))

/**
 * `serve` as a layer: the endpoint lives as long as the layer (log line `metrics` with its URL).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerServer = (options: ServerOptions = {}): Layer.Layer<never, Error> =>
  Layer.scopedDiscard(
    Effect.flatMap(serve(options), (s) => Effect.logInfo("metrics").pipe(Effect.annotateLogs({ url: s.url })))
  )
