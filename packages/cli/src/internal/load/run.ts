/**
 * `effect-starrocks load`: what the command does with its options (Commands/Load.ts declares its flags for
 * `@effect/cli`; bin.ts runs a plain command line through `fastArgs.ts` instead, without evaluating `@effect/cli`).
 *
 * Streams CSV, NDJSON or JSON files (plain or `.gz`) into a StarRocks table by Stream Load, through the sink's
 * `LoadClient` (FE → BE redirects, retries, failover, label settlement). CSV and NDJSON pass through without
 * parsing rows: each file is read as a byte stream and cut into batches of about `--max-bytes` at row-delimiter
 * boundaries, so memory stays flat whatever the file size; a regular uncompressed file with a one-byte delimiter is
 * read straight into a few reused buffers (fileBatches.ts). Every batch has a deterministic label,
 * `<prefix>-<fileIndex>-<byteOffset>`: sending it again (a rerun after a crash) finds the label taken and counts it
 * as loaded, so nothing lands twice. `--checkpoint-file` records after each landed batch how far every file has
 * landed; a rerun skips to there. docs/cli.md describes every flag.
 *
 * Prints one JSON summary line on stdout when done (or interrupted): files, rows, bytes, loads, retries, seconds.
 *
 * @internal
 */
import type * as LoadBody from "@effect-starrocks/sink/LoadBody"
import * as LoadClient from "@effect-starrocks/sink/LoadClient"
import * as StarRocksConfig from "@effect-starrocks/sink/StarRocksConfig"
import type { LoadError } from "@effect-starrocks/sink/StarRocksError"
import * as StartupCheck from "@effect-starrocks/sink/StartupCheck"
import {
  Clock,
  Console,
  Deferred,
  Duration,
  Effect,
  Exit,
  FiberId,
  FiberRef,
  HashSet,
  Logger,
  LogLevel,
  Option,
  Schema,
  Stream
} from "effect"
import * as fs from "node:fs"
import * as Module from "node:module"
import * as path from "node:path"
import type * as stream from "node:stream"
import type * as Tls from "node:tls"
import type * as Zlib from "node:zlib"
import * as Checkpoint from "./checkpoint.js"
import * as Cutter from "./cutter.js"
import * as FileBatches from "./fileBatches.js"
import * as InOrder from "./inOrder.js"
import type * as MetricsModule from "./metrics.js"
import { decodeDelimiter, delimiterHeader, grouped, label, parseProperties, parseSize, sha256Hex } from "./options.js"
import * as YoungGeneration from "./youngGeneration.js"

/**
 * What only some loads use is loaded when first used, not at every start (docs/benchmark.md, session 14): node:zlib
 * for compressed input, the metrics (`--metrics-port`) and their Prometheus server.
 */
const lazyRequire = Module.createRequire(import.meta.url)
const zlib = (): typeof Zlib => lazyRequire("node:zlib")

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * A flag (or a properties/environment value) that cannot be used.
 *
 * @since 0.1.0
 * @category errors
 */
export class LoadOptionError extends Schema.TaggedError<LoadOptionError>()("LoadOptionError", {
  option: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.option}: ${this.reason}`
  }
}

/**
 * An input file that cannot be read as asked (missing, unsupported compression, a JSON array too large, ...).
 *
 * @since 0.1.0
 * @category errors
 */
export class LoadInputError extends Schema.TaggedError<LoadInputError>()("LoadInputError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.file}: ${this.reason}`
  }
}

/**
 * A checkpoint file that cannot be read, written or resumed with this command's parameters.
 *
 * @since 0.1.0
 * @category errors
 */
export class LoadCheckpointError extends Schema.TaggedError<LoadCheckpointError>()("LoadCheckpointError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `checkpoint ${this.file}: ${this.reason}`
  }
}

// -----------------------------------------------------------------------------
// options
// -----------------------------------------------------------------------------

/**
 * Where and as whom to connect: what the connection flags of `load` and `labels` give (Commands/Load.ts,
 * `connectionFlags`), read by `connectionRecord` over the `STARROCKS_*` variables and a `--properties` file.
 */
export interface ConnectionOptions {
  readonly table: Option.Option<string>
  readonly loadUrl: ReadonlyArray<string>
  readonly user: Option.Option<string>
  readonly passwordEnv: Option.Option<string>
  readonly properties: Option.Option<string>
}

/**
 * The options of `load`, as its flags give them: parsed by `@effect/cli` (Commands/Load.ts) or, for a plain command
 * line, by `fastArgs.ts` to the same values.
 */
export interface LoadOptions extends ConnectionOptions {
  readonly files: ReadonlyArray<string>
  readonly format: Option.Option<Format>
  readonly columnSeparator: Option.Option<string>
  readonly rowDelimiter: Option.Option<string>
  readonly columns: Option.Option<string>
  readonly parallel: Option.Option<number>
  readonly labelPrefix: Option.Option<string>
  readonly maxFilterRatio: Option.Option<number>
  readonly strictMode: boolean
  readonly maxBytes: Option.Option<string>
  readonly checkpointFile: Option.Option<string>
  readonly exactlyOnce: boolean
  readonly metricsPort: Option.Option<number>
  readonly metricsHost: Option.Option<string>
  readonly verbose: boolean
}

export type Format = "csv" | "ndjson" | "json"

/**
 * @since 0.3.0
 * @category errors
 */
export const optionError = (option: string, reason: string): LoadOptionError => new LoadOptionError({ option, reason })

// -----------------------------------------------------------------------------
// configuration: environment < properties file < flags
// -----------------------------------------------------------------------------

/** `STARROCKS_*` variables as Flink keys. */
const fromEnvironment = (env: NodeJS.ProcessEnv): Effect.Effect<Record<string, string>, LoadOptionError> =>
  Effect.suspend(() => {
    const out: Record<string, string> = {}
    // TLS has one key per sub-option (`tlsKeys`); its placeholder in `optionKeys` names no variable
    for (const keys of Object.values(StarRocksConfig.tlsKeys)) {
      const value = env[`STARROCKS_${keys.env}`]
      if (value !== undefined) out[keys.property] = value
    }
    for (const [field, keys] of Object.entries(StarRocksConfig.optionKeys)) {
      if (field === "tls") continue
      const value = env[`STARROCKS_${keys.env}`]
      if (value === undefined) continue
      if (field !== "properties") {
        out[keys.property] = value
        continue
      }
      const t = value.trim()
      let props: Record<string, unknown>
      if (t.startsWith("{")) {
        try {
          props = JSON.parse(t)
        } catch {
          return Effect.fail(optionError("STARROCKS_PROPERTIES", "is not valid JSON"))
        }
      } else {
        props = {}
        for (const entry of t.split(";").map((s) => s.trim()).filter((s) => s.length > 0)) {
          const eq = entry.indexOf("=")
          if (eq <= 0) return Effect.fail(optionError("STARROCKS_PROPERTIES", `"${entry}" is not name=value`))
          props[entry.slice(0, eq).trim()] = entry.slice(eq + 1)
        }
      }
      for (const [k, v] of Object.entries(props)) out[`sink.properties.${k}`] = String(v)
    }
    return Effect.succeed(out)
  })

/**
 * Sets `key`, replacing a `sink.properties.*` key that differs only in case.
 *
 * @since 0.3.0
 * @category options
 */
export const set = (record: Record<string, string>, key: string, value: string): void => {
  if (key.startsWith("sink.properties.")) {
    for (const k of Object.keys(record)) if (k.toLowerCase() === key.toLowerCase()) delete record[k]
  }
  record[key] = value
}

const formatOfName = (file: string): Format | undefined => {
  const name = file.replace(/\.(gz|gzip|zst|zstd)$/i, "").toLowerCase()
  if (name.endsWith(".ndjson") || name.endsWith(".jsonl")) return "ndjson"
  if (name.endsWith(".json")) return "json"
  if (name.endsWith(".csv") || name.endsWith(".tsv") || name.endsWith(".txt")) return "csv"
  return undefined
}

/** An https URL (a load URL, or a `be-host-map` target such as an https proxy in front of the BEs). */
const isHttps = (url: string): boolean => /^https:/i.test(url)

/** Where the launcher moves `NODE_EXTRA_CA_CERTS` (packages/cli/scripts/launcher.ts, `extraCaVariable`). */
const extraCaVariable = "EFFECT_STARROCKS_EXTRA_CA_CERTS"

/**
 * The certificates of `NODE_EXTRA_CA_CERTS` for an https load URL, when the installed command's launcher moved
 * that variable aside (packages/cli/scripts/launcher.ts: node 20 parses its file at every start, 0.05-0.07 s with
 * the system's whole bundle, and a plain-HTTP load never uses it) to `EFFECT_STARROCKS_EXTRA_CA_CERTS`, and a load
 * URL or a `be-host-map` target is https (a BE reached by a redirect from a plain-HTTP FE to an https address that
 * no `be-host-map` names gets node's roots only, and fails its TLS handshake with a typed error): trusted as
 * node would have, beside node's own root certificates, unless the configuration gives a CA of its own
 * (`sink.tls.ca-file`, which replaces node's roots). node:tls is loaded only then. A file that cannot be read, or
 * holds no PEM certificate, is an error (node only warns and goes on without it).
 *
 * @since 0.3.0
 * @category options
 */
export const extraCa = (
  config: StarRocksConfig.StarRocksConfig,
  env: NodeJS.ProcessEnv
): Effect.Effect<StarRocksConfig.StarRocksConfig, LoadOptionError> =>
  Effect.suspend(() => {
    const file = env[extraCaVariable]
    if (
      file === undefined || file === "" || config.tls.ca !== undefined ||
      !(config.loadUrl.some(isHttps) || Array.from(config.beHostMap.values()).some(isHttps))
    ) return Effect.succeed(config)
    let text: string
    try {
      text = fs.readFileSync(file, "utf8")
    } catch (e) {
      return Effect.fail(
        optionError(
          extraCaVariable,
          `${file} (NODE_EXTRA_CA_CERTS, moved aside by the effect-starrocks launcher) cannot be read: ` +
            ((e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message)
        )
      )
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----")) {
      return Effect.fail(
        optionError(
          extraCaVariable,
          `${file} (NODE_EXTRA_CA_CERTS, moved aside by the effect-starrocks launcher) holds no PEM certificate`
        )
      )
    }
    const roots = (lazyRequire("node:tls") as typeof Tls).rootCertificates
    return Effect.succeed({ ...config, tls: { ...config.tls, ca: [...roots, text].join("\n") } })
  })

interface Plan {
  readonly config: StarRocksConfig.StarRocksConfig
  /** `--format`, else `auto` (each file's extension, else the config's format: json → ndjson, else csv). */
  readonly format: Format | "auto"
  readonly formatOf: (file: string) => Format
  readonly headersOf: (format: Format) => Readonly<Record<string, string>>
  /** The CSV row delimiter (NDJSON's is always \n). */
  readonly delimiter: Uint8Array
  readonly maxBytes: number
  readonly labelPrefix: Option.Option<string>
  readonly exactlyOnce: boolean
}

/**
 * The Flink-key record of the connection flags over a `--properties` file over the `STARROCKS_*` variables:
 * `load-url`, `database-name`/`table-name` (`--table db.table`), `username` (default root), `password` (from the
 * variable `--password-env` names; default empty), and every other key of the file and the environment.
 *
 * @since 0.3.0
 * @category options
 */
export const connectionRecord = (
  options: ConnectionOptions
): Effect.Effect<Record<string, string>, LoadOptionError> =>
  Effect.gen(function*() {
    const record = yield* fromEnvironment(process.env)
    if (Option.isSome(options.properties)) {
      const file = options.properties.value
      const text = yield* Effect.try({
        try: () => fs.readFileSync(file, "utf8"),
        catch: (e) => optionError("--properties", `${file} cannot be read: ${(e as Error).message}`)
      })
      for (const [k, v] of Object.entries(parseProperties(text))) set(record, k, v)
    }
    if (Option.isSome(options.table)) {
      const m = /^([^.\s]+)\.([^.\s]+)$/.exec(options.table.value)
      if (m === null) return yield* optionError("--table", `"${options.table.value}" is not database.table`)
      set(record, "database-name", m[1]!)
      set(record, "table-name", m[2]!)
    }
    const urls = options.loadUrl.flatMap((u) => u.split(",")).map((u) => u.trim()).filter((u) => u.length > 0)
    if (urls.length > 0) set(record, "load-url", urls.join(";"))
    if (Option.isSome(options.user)) set(record, "username", options.user.value)
    if (record["username"] === undefined) record["username"] = "root"
    if (Option.isSome(options.passwordEnv)) {
      const value = process.env[options.passwordEnv.value]
      if (value === undefined) {
        return yield* optionError("--password-env", `the variable ${options.passwordEnv.value} is not set`)
      }
      set(record, "password", value)
    }
    if (record["password"] === undefined) record["password"] = ""
    return record
  })

const plan = (options: LoadOptions) =>
  Effect.gen(function*() {
    const record = yield* connectionRecord(options)
    if (Option.isSome(options.labelPrefix)) set(record, "sink.label-prefix", options.labelPrefix.value)
    if (Option.isSome(options.parallel)) set(record, "sink.io.thread-count", String(options.parallel.value))
    if (Option.isSome(options.columns)) set(record, "sink.properties.columns", options.columns.value)
    if (Option.isSome(options.maxFilterRatio)) {
      const r = options.maxFilterRatio.value
      if (!(r >= 0 && r <= 1)) return yield* optionError("--max-filter-ratio", `${r} is not between 0 and 1`)
      set(record, "sink.properties.max_filter_ratio", String(r))
    }
    if (options.strictMode) set(record, "sink.properties.strict_mode", "true")
    if (Option.isSome(options.format)) {
      set(record, "sink.properties.format", options.format.value === "csv" ? "csv" : "json")
    }

    const config = yield* extraCa(yield* StarRocksConfig.fromProperties(record), process.env)
    const props = { ...config.properties }
    if (props["skip_header"] !== undefined && props["skip_header"].trim() !== "0") {
      return yield* optionError(
        "sink.properties.skip_header",
        "StarRocks skips the header rows of every load, and a file is loaded in many: remove the header line first"
      )
    }
    const delimiterOf = (option: string, flag: Option.Option<string>, key: string, dflt: string) => {
      const text = Option.getOrUndefined(flag) ?? props[key] ?? dflt
      const bytes = decodeDelimiter(text)
      return typeof bytes === "string"
        ? Effect.fail(optionError(Option.isSome(flag) ? option : `sink.properties.${key}`, bytes))
        : Effect.succeed(bytes)
    }
    const separator = yield* delimiterOf("--column-separator", options.columnSeparator, "column_separator", ",")
    const delimiter = yield* delimiterOf("--row-delimiter", options.rowDelimiter, "row_delimiter", "\\n")
    const headersOf = (format: Format): Record<string, string> => {
      if (format === "csv") {
        return {
          ...props,
          format: "csv",
          column_separator: delimiterHeader(separator),
          row_delimiter: delimiterHeader(delimiter)
        }
      }
      const { column_separator: _c, row_delimiter: _r, ...rest } = props
      // NDJSON: StarRocks reads a body of objects one after the other (docs/protocol.md §6.3)
      return {
        ...rest,
        format: "json",
        ...(format === "json" ? { strip_outer_array: "true", ignore_json_size: "true" } : {})
      }
    }
    const fallback: Format = config.format === "json" ? "ndjson" : "csv"
    const formatOf = (file: string): Format => Option.getOrUndefined(options.format) ?? formatOfName(file) ?? fallback
    let maxBytes = config.maxBytes
    if (Option.isSome(options.maxBytes)) {
      const n = parseSize(options.maxBytes.value)
      if (n === undefined || n < 1 || n > 10 * 1024 ** 3) {
        return yield* optionError("--max-bytes", `"${options.maxBytes.value}" is not a size from 1 byte to 10GB`)
      }
      maxBytes = n
    }
    // an accepted option has an effect: adaptive concurrency is the sink's (StarRocksSink.make), not the loader's
    if (config.adaptiveConcurrency !== undefined) {
      return yield* optionError(
        config.given?.adaptiveConcurrency ?? "sink.adaptive-concurrency.enabled",
        "has no effect on load, which keeps sink.io.thread-count loads in flight (adaptive concurrency is " +
          "StarRocksSink.make's)"
      )
    }
    const exactlyOnce = options.exactlyOnce || config.semantic === "exactly-once"
    if (exactlyOnce && Option.isNone(options.checkpointFile)) {
      return yield* optionError("--exactly-once", "needs --checkpoint-file (where the progress is kept)")
    }
    const labelPrefix = record["sink.label-prefix"] !== undefined ? Option.some(config.labelPrefix) : Option.none()
    const format = Option.getOrElse(options.format, () => "auto" as const)
    return { config, format, formatOf, headersOf, delimiter, maxBytes, labelPrefix, exactlyOnce } satisfies Plan
  })

// -----------------------------------------------------------------------------
// inputs
// -----------------------------------------------------------------------------

interface Input {
  readonly index: number
  readonly path: string
  readonly format: Format
  readonly compression: "none" | "gzip" | "zstd"
  /** Regular uncompressed file: its size (the progress ETA); and size + mtime of any regular file. */
  readonly stat: fs.Stats | undefined
}

const inspect = (file: string, index: number, format: Format): Effect.Effect<Input, LoadInputError> =>
  Effect.try({
    try: (): Input => {
      const compression = /\.(gz|gzip)$/i.test(file) ? "gzip" : /\.(zst|zstd)$/i.test(file) ? "zstd" : "none"
      const stat = fs.statSync(file === "-" ? "/dev/stdin" : file)
      if (stat.isDirectory()) throw new Error("is a directory")
      return { index, path: file, format, compression, stat: stat.isFile() ? stat : undefined }
    },
    catch: (e) =>
      new LoadInputError({
        file,
        reason: (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message
      })
  }).pipe(
    Effect.filterOrFail(
      (input) => input.compression !== "zstd" || typeof (zlib() as any).createZstdDecompress === "function",
      () =>
        new LoadInputError({
          file,
          reason: `zstd needs Node.js 22.15 or later (this is ${process.version}): decompress it first ` +
            "(zstd -dc file.zst | effect-starrocks load - ...)"
        })
    )
  )

const CHUNK = 1024 * 1024

/** The decompressed bytes of `input` from `offset` on. */
const bytesOf = (input: Input, offset: number): Stream.Stream<Uint8Array, LoadInputError> =>
  Stream.suspend(() => {
    const seekable = input.compression === "none" && input.stat !== undefined
    const source: NodeJS.ReadableStream = fs.createReadStream(input.path === "-" ? "/dev/stdin" : input.path, {
      highWaterMark: CHUNK,
      ...(seekable ? { start: offset } : {})
    })
    let readable: NodeJS.ReadableStream = source
    if (input.compression !== "none") {
      const decompress: stream.Transform = input.compression === "gzip"
        ? zlib().createGunzip({ chunkSize: CHUNK })
        : (zlib() as any).createZstdDecompress({ chunkSize: CHUNK })
      readable = (lazyRequire("node:stream") as typeof stream).pipeline(source, decompress, () => {})
    }
    const all = Stream.fromAsyncIterable(
      readable as AsyncIterable<Uint8Array>,
      (e) => new LoadInputError({ file: input.path, reason: (e as Error).message ?? String(e) })
    )
    if (seekable || offset === 0) return all
    // not seekable: read and drop the bytes that already landed
    let skip = offset
    return Stream.map(all, (chunk) => {
      if (skip === 0) return chunk
      const n = Math.min(skip, chunk.byteLength)
      skip -= n
      return chunk.subarray(n)
    })
  })

type Item =
  | {
    readonly _tag: "Batch"
    readonly input: Input
    readonly piece: Cutter.Piece
    /** Gives the batch's buffer back to the pool once it landed (reused by a later batch). */
    readonly release?: () => void
    /** Counts the rows of a pooled batch (its `piece.rows` is 0 until then). */
    readonly rows?: Effect.Effect<number>
    /** A streamed batch: its body (a range of the file) and its rows (counted by reading the range again). */
    readonly streamed?: {
      readonly body: LoadBody.LoadBody
      readonly rows: Effect.Effect<number, LoadInputError>
      /** Calls back once a send has read this many bytes of the body (FileBatches.RangeBatch's `onRead`). */
      readonly onRead: (bytes: number, f: () => void) => void
    }
  }
  | { readonly _tag: "FileEnd"; readonly input: Input; readonly end: number }

/** A load's gate (the loads' phases, in `run`): the share of the load started before it, and its own. */
interface Phase {
  readonly after: Deferred.Deferred<void> | undefined
  readonly share: Deferred.Deferred<void>
}

/**
 * Streamed batches from this size on are phased (in `run`): below it a load's body takes about as long as its waits,
 * and the next load need not wait for a share of it.
 */
const PHASED_BYTES = 8 * 1024 * 1024

/** The largest `--max-bytes` read into pooled buffers (fileBatches.ts); larger batches go through the cutter. */
const POOLED_MAX_BYTES = 1024 ** 3

/** Whether `input` is streamed from the file: a regular uncompressed CSV/NDJSON file, a one-byte delimiter. */
const streamable = (input: Input, delimiter: Uint8Array): boolean =>
  input.compression === "none" && input.stat !== undefined && input.path !== "-" && input.format !== "json" &&
  (input.format === "ndjson" || delimiter.length === 1)

/** Whether `input` is read into pooled buffers (when it cannot be streamed for `compression`): a streamable file. */
const pooled = (input: Input, delimiter: Uint8Array, maxBytes: number): boolean =>
  streamable(input, delimiter) && maxBytes <= POOLED_MAX_BYTES

/** The batches of one file, then its end. */
const itemsOf = (
  input: Input,
  offset: number,
  delimiter: Uint8Array,
  maxBytes: number,
  pool: FileBatches.Pool | undefined,
  fromFile: boolean,
  slices: FileBatches.Slices
): Stream.Stream<Item, LoadInputError> => {
  const onError = (e: unknown) => new LoadInputError({ file: input.path, reason: (e as Error).message ?? String(e) })
  const rowDelimiter = input.format === "ndjson" ? 0x0a : delimiter[0]!
  /** The file opened for the stream's scope: its batches (each ending at `piece.end`), then its end. */
  const fromOpenFile = <B extends { readonly piece: { readonly end: number } }>(
    batches: (fd: number) => Stream.Stream<B, LoadInputError>,
    item: (batch: B) => Item
  ): Stream.Stream<Item, LoadInputError> =>
    Stream.unwrapScoped(Effect.gen(function*() {
      // a regular file (streamable, pooled): opened synchronously, as it is read (no thread-pool round trip)
      const fd = yield* Effect.acquireRelease(
        Effect.try({ try: () => fs.openSync(input.path, "r"), catch: onError }),
        (fd) => Effect.sync(() => fs.closeSync(fd))
      )
      let end = offset
      return batches(fd).pipe(
        Stream.map((batch): Item => {
          end = batch.piece.end
          return item(batch)
        }),
        Stream.concat(Stream.suspend(() => Stream.succeed<Item>({ _tag: "FileEnd", input, end })))
      )
    }))
  if (fromFile && streamable(input, delimiter)) {
    // streamed from the file: each batch a byte range, read as it is sent (no batch held in memory)
    return fromOpenFile(
      (fd) =>
        FileBatches.ranges({
          fd,
          path: input.path,
          start: offset,
          maxBytes,
          delimiter: rowDelimiter,
          slices,
          onError
        }),
      ({ body, onRead, piece, rows }) => ({
        _tag: "Batch",
        input,
        piece,
        streamed: { body, rows: Effect.mapError(rows, onError), onRead }
      })
    )
  }
  if (pool !== undefined && pooled(input, delimiter, maxBytes)) {
    return fromOpenFile(
      (fd) => FileBatches.batches({ fd, start: offset, maxBytes, delimiter: rowDelimiter, pool, onError }),
      ({ piece, release, rows }) => ({ _tag: "Batch", input, piece, release, rows })
    )
  }
  if (input.format === "json") {
    return Stream.fromEffect(
      Stream.runFoldEffect(bytesOf(input, 0), [] as Array<Uint8Array>, (acc, chunk) => {
        acc.push(chunk)
        const size = acc.reduce((n, c) => n + c.byteLength, 0)
        return size > maxBytes
          ? Effect.fail(
            new LoadInputError({
              file: input.path,
              reason: `a JSON array is sent as one load and this one is larger than --max-bytes (${maxBytes}): ` +
                "convert it to NDJSON (one object per line, e.g. jq -c '.[]') and load it with --format ndjson"
            })
          )
          : Effect.succeed(acc)
      })
    ).pipe(
      Stream.flatMap((chunks) => {
        const byteLength = chunks.reduce((n, c) => n + c.byteLength, 0)
        const piece: Cutter.Piece = { offset: 0, end: byteLength, chunks, byteLength, rows: 0 }
        const items: Array<Item> = byteLength > 0 ? [{ _tag: "Batch", input, piece }] : []
        items.push({ _tag: "FileEnd", input, end: byteLength })
        return Stream.fromIterable(items)
      })
    )
  }
  return Stream.suspend(() => {
    const cutter = Cutter.make({
      maxBytes,
      delimiter: input.format === "ndjson" ? Buffer.from("\n") : delimiter,
      start: offset
    })
    let end = offset
    const batch = (piece: Cutter.Piece): Item => {
      end = piece.end
      return { _tag: "Batch", input, piece }
    }
    return bytesOf(input, offset).pipe(
      Stream.mapConcat((chunk) => cutter.push(chunk).map(batch)),
      Stream.concat(
        Stream.suspend(() => Stream.fromIterable(cutter.finish().map(batch))).pipe(
          Stream.concat(Stream.suspend(() => Stream.succeed<Item>({ _tag: "FileEnd", input, end })))
        )
      )
    )
  })
}

// -----------------------------------------------------------------------------
// progress
// -----------------------------------------------------------------------------

interface Stats {
  files: number
  rows: number
  bytes: number
  loads: number
  retries: number
  alreadyLoaded: number
  loadedRows: number
  filteredRows: number
  skippedBytes: number
  inFlight: number
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`

const progressLine = (s: Stats, total: number | undefined, seconds: number): string => {
  const rate = seconds > 0 ? s.bytes / seconds : 0
  const parts = [
    total !== undefined && total > 0
      ? `${mb(s.bytes)} / ${mb(total)} (${Math.floor((100 * s.bytes) / total)}%)`
      : mb(s.bytes),
    `${grouped(s.rows)} rows`,
    `${mb(rate)}/s`,
    `${grouped(seconds > 0 ? s.rows / seconds : 0)} rows/s`
  ]
  if (total !== undefined && rate > 0 && total > s.bytes) parts.push(`ETA ${Math.ceil((total - s.bytes) / rate)}s`)
  parts.push(`loads ${s.loads} (${s.inFlight} in flight)`, `retries ${s.retries}`)
  return parts.join(" · ")
}

// -----------------------------------------------------------------------------
// the command
// -----------------------------------------------------------------------------

const defaultPrefix = (table: string, inputs: ReadonlyArray<Input>): string => {
  if (inputs.some((i) => i.stat === undefined)) return `load_${Date.now()}_${process.pid}`
  let text = table
  for (const i of inputs) text += `\0${path.resolve(i.path)}\0${i.stat!.size}\0${i.stat!.mtimeMs}`
  return `load_${sha256Hex(text).slice(0, 16)}`
}

/** Resumes from the event loop's next turn (`setImmediate`): what is already queued on the loop runs first. */
const nextTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/**
 * `stream` with each item after the first `ahead` given on from the event loop's next turn. The loader's reading
 * fiber cuts a batch when it pulls it (for a streamed batch, a 320 KiB window read around its limit) and offers it
 * to a queue of one (`Stream.toQueue`); once the send loop had taken the first batches it cut the next ones at once,
 * before the first load's request was written, on the one thread that the first load's start also needs: five cuts
 * before the first request of a 1 GiB load. Now an item after the first `ahead` waits for a turn of the loop before
 * it is offered, and the pull after it (the next cut) with it: three cuts come before the first request, the others
 * while it waits for its 100 Continue (docs/benchmark.md, session 18). The same items, in the same order, the same
 * end and failures.
 *
 * @internal
 */
export const pacedAfter = (ahead: number) => <A, E, R>(stream: Stream.Stream<A, E, R>): Stream.Stream<A, E, R> =>
  Stream.suspend(() => {
    let given = 0
    return Stream.tap(stream, () => given++ < ahead ? Effect.void : nextTurn)
  })

const run = (options: LoadOptions, done: (() => void) | undefined) =>
  Effect.gen(function*() {
    if (options.files.filter((f) => f === "-" || f === "/dev/stdin").length > 1) {
      return yield* optionError("files", "stdin (-) can be read once")
    }
    const p = yield* plan(options)
    const { config } = p
    const table = `${config.database}.${config.table}`
    const inputs = yield* Effect.forEach(options.files, (file, i) => inspect(file, i, p.formatOf(file)))

    // the checkpoint: resume from it, or start one
    const checkpointFile = Option.getOrUndefined(options.checkpointFile)
    const cpError = (reason: string) => new LoadCheckpointError({ file: checkpointFile ?? "", reason })
    const saved = checkpointFile === undefined ? undefined : yield* Effect.try({
      try: () => Checkpoint.read(checkpointFile),
      catch: (e) => cpError((e as Error).message)
    })
    const labelPrefix = Option.isSome(p.labelPrefix)
      ? p.labelPrefix.value
      : saved?.labelPrefix ?? defaultPrefix(table, inputs)
    const cut: Checkpoint.CutParameters = {
      table,
      labelPrefix,
      format: p.format,
      maxBytes: p.maxBytes,
      rowDelimiter: Buffer.from(p.delimiter).toString("hex")
    }
    if (saved !== undefined) {
      const differs = Checkpoint.mismatch(saved, cut)
      if (differs !== undefined) {
        return yield* cpError(
          `${differs}: resuming with other parameters would cut or label batches differently (duplicates); ` +
            "rerun with the checkpoint's parameters, or delete the checkpoint to start over"
        )
      }
    }
    const states: Record<string, Checkpoint.FileState> = { ...saved?.files }
    for (const input of inputs) {
      const state = states[input.index]
      if (state === undefined) continue
      if (state.path !== input.path) {
        return yield* cpError(`file ${input.index} is ${state.path} in the checkpoint but ${input.path} now`)
      }
      if (
        state.size !== undefined && input.stat !== undefined &&
        (state.size !== input.stat.size || state.mtimeMs !== input.stat.mtimeMs)
      ) {
        return yield* cpError(
          `${input.path} changed since the checkpoint (size or modification time): ` +
            "delete the checkpoint to load it again from the start"
        )
      }
    }
    const writeCheckpoint = Effect.suspend(() =>
      checkpointFile === undefined ? Effect.void : Effect.try({
        try: () =>
          Checkpoint.write(checkpointFile, { version: 1, ...cut, files: states, updatedAt: new Date().toISOString() }),
        catch: (e) => cpError(`cannot be written: ${(e as Error).message}`)
      })
    )

    const stats: Stats = {
      files: inputs.length,
      rows: 0,
      bytes: 0,
      loads: 0,
      retries: 0,
      alreadyLoaded: 0,
      loadedRows: 0,
      filteredRows: 0,
      skippedBytes: 0,
      inFlight: 0
    }
    const pending = inputs.filter((i) => states[i.index]?.done !== true)
    for (const i of inputs) stats.skippedBytes += states[i.index]?.offset ?? 0
    const total = inputs.every((i) => i.stat !== undefined && i.compression === "none")
      ? inputs.reduce((n, i) => n + i.stat!.size, 0) - stats.skippedBytes
      : undefined

    const started = yield* Clock.currentTimeMillis
    const elapsed = Effect.map(Clock.currentTimeMillis, (now) => (now - started) / 1000)
    const tty = process.stderr.isTTY === true
    const showProgress = Effect.flatMap(elapsed, (s) =>
      Effect.sync(() => {
        const line = progressLine(stats, total, s)
        process.stderr.write(tty ? `\r\x1b[K${line}` : `effect-starrocks load: ${line}\n`)
      }))
    const summary = (interrupted: boolean) =>
      Effect.flatMap(elapsed, (seconds) =>
        Console.log(JSON.stringify({
          table,
          files: stats.files,
          rows: stats.rows,
          bytes: stats.bytes,
          loads: stats.loads,
          retries: stats.retries,
          seconds: Math.round(seconds * 1000) / 1000,
          alreadyLoaded: stats.alreadyLoaded,
          loadedRows: stats.loadedRows,
          filteredRows: stats.filteredRows,
          skippedBytes: stats.skippedBytes,
          labelPrefix,
          ...(interrupted ? { interrupted } : {})
        })))

    // before anything is sent: a port that cannot be bound fails the command at once. Without one, nothing can
    // read the loader's metrics (they live in this process alone), and its loads do not update them (0.7 ms a
    // load, docs/benchmark.md session 12) nor load their modules (the sink's metrics, the Prometheus server)
    let metrics: typeof MetricsModule | undefined
    if (Option.isSome(options.metricsPort)) {
      const port = options.metricsPort.value
      if (!(port >= 0 && port <= 65535)) return yield* optionError("--metrics-port", `${port} is not a port (0-65535)`)
      const host = Option.getOrElse(options.metricsHost, () => "127.0.0.1")
      const [Prometheus, m] = yield* Effect.promise(() =>
        Promise.all([import("@effect-starrocks/sink/Prometheus"), import("./metrics.js")])
      )
      metrics = m
      const server = yield* Prometheus.serve({ port, host }).pipe(
        Effect.mapError((e) => optionError("--metrics-port", `cannot listen on ${host}:${port}: ${e.message}`))
      )
      yield* Effect.sync(() => process.stderr.write(`effect-starrocks load: metrics at ${server.url}\n`))
    } else if (Option.isSome(options.metricsHost)) {
      return yield* optionError("--metrics-host", "needs --metrics-port")
    }
    const Metrics = metrics

    // regular uncompressed files with a one-byte delimiter are streamed from the file, a byte range a batch; with
    // `compression` (the client compresses a body in memory) they are read into pooled buffers instead: one per
    // load in flight and at least two (one is read while one is sent), each of --max-bytes plus the look-ahead, or
    // smaller when every such file is smaller
    const fromFile = !Object.keys(p.headersOf("csv")).some((k) => k.toLowerCase() === "compression")
    const pooledInputs = fromFile ? [] : pending.filter((i) => pooled(i, p.delimiter, p.maxBytes))
    const pool = pooledInputs.length === 0 ? undefined : yield* FileBatches.makePool(
      Math.max(2, config.ioThreadCount),
      Math.min(p.maxBytes, pooledInputs.reduce((n, i) => Math.max(n, i.stat!.size), 0)) + FileBatches.LOOK_AHEAD
    )
    // the buffers streamed batches are read into and counted in: as many as the loads in flight take (the client's
    // transport reads a send's body into 4 at most)
    const slices = FileBatches.makeSlices(4 * config.ioThreadCount)
    // reading starts now: the first batch is read (into memory touched for the first time, slow on a virtual
    // machine) while the client starts and checks the server; from the third on, each batch goes to the send loop
    // from a later turn of the event loop, and the next one is cut then (`pacedAfter`)
    const batches = yield* Stream.fromIterable(pending).pipe(
      Stream.flatMap(
        (input) => itemsOf(input, states[input.index]?.offset ?? 0, p.delimiter, p.maxBytes, pool, fromFile, slices),
        { concurrency: 1 }
      ),
      pacedAfter(2),
      Stream.toQueue({ capacity: 1 })
    )

    const client = yield* LoadClient.make(config)
    // before the first byte: an FE answers, the credentials work, the table exists (sink.startup-check), and the
    // headers suit the server version when it is known
    yield* StartupCheck.startupCheck({ semantic: "at-least-once" }).pipe(
      Effect.provideService(StarRocksConfig.StarRocksConfig, config),
      Effect.provideService(LoadClient.LoadClient, client)
    )
    type Landed = Item & { readonly result?: LoadClient.LoadResult }
    // The loads' phases: with N loads in flight, a large streamed batch starts once the one started before it has
    // sent 1/N of its body (or ended), so that the loads in flight are at different points of their bodies, not in
    // step: one load's waits (its headers to the 100 Continue, its last byte to the answer, the next load's start)
    // then fall while the others send, instead of all of them waiting at once (docs/cli.md, "The loads' phases").
    const parallel = config.ioThreadCount
    let previous: Deferred.Deferred<void> | undefined
    /** The gate of each item: the previous large load's share to wait for, and this load's share, in order. */
    const phased = (item: Item): readonly [Item, Phase | undefined] => {
      if (item._tag !== "Batch" || item.piece.byteLength < PHASED_BYTES) return [item, undefined]
      // a long load: its young generation keeps its size from here on (youngGeneration.ts)
      YoungGeneration.hold()
      if (parallel < 2 || item.streamed === undefined) return [item, undefined]
      const phase: Phase = { after: previous, share: Deferred.unsafeMake<void>(FiberId.none) }
      previous = phase.share
      return [item, phase]
    }
    const send = (
      [item, phase]: readonly [Item, Phase | undefined]
    ): Effect.Effect<Landed, LoadError | LoadInputError> =>
      item._tag === "FileEnd" ? Effect.succeed(item) : Effect.gen(function*() {
        const { input, piece } = item
        if (phase !== undefined) {
          if (phase.after !== undefined) yield* Deferred.await(phase.after)
          const share = phase.share
          item.streamed!.onRead(Math.ceil(piece.byteLength / parallel), () => Deferred.unsafeDone(share, Exit.void))
        }
        stats.inFlight++
        if (Metrics !== undefined) yield* Metrics.inflight(stats.inFlight)
        const startedAt = Metrics !== undefined ? yield* Clock.currentTimeMillis : 0
        const loading = client.loadBatch({
          database: config.database,
          table: config.table,
          label: label(labelPrefix, input.index, piece.offset),
          headers: p.headersOf(input.format),
          body: item.streamed?.body ?? { chunks: piece.chunks, byteLength: piece.byteLength }
        }).pipe(
          Effect.tapError(() => Metrics !== undefined ? Metrics.failed(config.database, config.table) : Effect.void),
          Effect.ensuring(Effect.suspend(() => {
            stats.inFlight--
            return Metrics !== undefined ? Metrics.inflight(stats.inFlight) : Effect.void
          })),
          // a load that ended before its share (a failure, a label already loaded) lets the next one start
          Effect.ensuring(phase === undefined ? Effect.void : Deferred.succeed(phase.share, undefined))
        )
        const result = yield* loading
        // the batch's rows: what StarRocks read of it (its reply's NumberTotalRows), not counted here (a SIMD count of
        // every byte was 284 M of the 505 M instructions a GiB cost above a one-row load, docs/benchmark.md session
        // 13); a reply without a count (a label found already loaded) has the loader count that batch's rows itself
        // (a streamed one by reading its range again, a pooled one in its buffer, the cutter's as it cut)
        const rows = result.status !== "Already Loaded" && result.totalRows !== undefined
          ? result.totalRows
          : yield* (item.streamed?.rows ?? item.rows ?? Effect.succeed(piece.rows))
        // nothing reads the body after it landed: its buffer takes the next batch
        item.release?.()
        if (Metrics !== undefined) {
          const ms = (yield* Clock.currentTimeMillis) - startedAt
          yield* Metrics.landed(config.database, config.table, { rows, bytes: piece.byteLength }, result, ms)
        }
        return { ...item, piece: { ...piece, rows }, result }
      })

    const landed = (item: Landed) =>
      Effect.suspend(() => {
        const key = String(item.input.index)
        const before = states[key] ?? {
          path: item.input.path,
          offset: 0,
          rows: 0,
          done: false,
          ...(item.input.stat !== undefined ? { size: item.input.stat.size, mtimeMs: item.input.stat.mtimeMs } : {})
        }
        if (item._tag === "FileEnd") {
          states[key] = { ...before, offset: item.end, done: true }
        } else {
          const r = item.result!
          stats.loads++
          stats.bytes += item.piece.byteLength
          stats.rows += item.piece.rows
          stats.retries += r.retries
          stats.loadedRows += r.loadedRows
          stats.filteredRows += r.filteredRows
          if (r.status === "Already Loaded") stats.alreadyLoaded++
          states[key] = { ...before, offset: item.piece.end, rows: before.rows + item.piece.rows }
        }
        return writeCheckpoint
      })

    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(Duration.seconds(tty ? 1 : 5)), showProgress)))
    // what `Stream.fromQueue(batches).pipe(Stream.flattenTake, Stream.map(phased), Stream.mapEffect(send, { concurrency
    // }), Stream.runForEach(landed))` does, without the stream's channels (inOrder.ts)
    yield* InOrder.sendInOrder({
      queue: batches,
      prepare: phased,
      send,
      land: landed,
      concurrency: config.ioThreadCount
    }).pipe(
      Effect.onInterrupt(() =>
        Effect.zipRight(
          Effect.sync(() => {
            if (tty) process.stderr.write("\n")
            process.exitCode = 130
          }),
          summary(true)
        )
      )
    )
    if (tty) yield* Effect.zipRight(showProgress, Effect.sync(() => process.stderr.write("\n")))
    yield* summary(false)
    // the checkpoint is written (fsync, rename) after each landed batch, the summary is printed: what is left is
    // closing the scope (sockets, the file, the metrics server), which the process's end does as well
    if (done !== undefined) yield* Effect.sync(done)
  }).pipe(Effect.scoped)

const stderrLogger = Logger.prettyLogger({ stderr: true })

/**
 * Logs on stderr (stdout holds only a command's output), at Info with `verbose`, else from Warning.
 *
 * @since 0.3.0
 * @category utils
 */
export const logsOnStderr = (verbose: boolean) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  self.pipe(
    Logger.withMinimumLogLevel(verbose ? LogLevel.Info : LogLevel.Warning),
    // what two `Logger.replace` layers do, without building a layer (its memo map, scope and fibers: about 5 M
    // instructions of a one-row load, docs/benchmark.md session 13)
    Effect.locallyWith(FiberRef.currentLoggers, (loggers) =>
      HashSet.add(
        HashSet.remove(HashSet.remove(loggers, Logger.prettyLoggerDefault), Logger.defaultLogger),
        stderrLogger
      ))
  )

/**
 * The `load` command with its options: loads, prints the summary, and on a failure its error on stderr (the
 * command's handler, whichever parser read the command line). `done`, when given, is called once a load that ran
 * through has printed its summary, before its scope closes (bin.ts ends the process there).
 */
export const runLoad = (options: LoadOptions, done?: () => void) =>
  run(options, done).pipe(
    Effect.tapError((e) => Console.error(`effect-starrocks load: ${e._tag}: ${e.message}`)),
    // logs go to stderr: stdout holds only the summary line
    logsOnStderr(options.verbose)
  )
