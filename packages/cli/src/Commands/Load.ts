/**
 * `effect-starrocks load <files...|-> --table db.t [--load-url host:port]... [--format csv|ndjson|json] [...]`
 *
 * Streams CSV, NDJSON or JSON files (plain or `.gz`) into a StarRocks table by Stream Load, through the sink's
 * `LoadClient` (FE → BE redirects, retries, failover, label settlement). CSV and NDJSON pass through without
 * parsing rows: each file is read as a byte stream and cut into batches of about `--max-bytes` at row-delimiter
 * boundaries, so memory stays flat whatever the file size; a regular uncompressed file with a one-byte delimiter is
 * read straight into a few reused buffers (internal/load/fileBatches.ts). Every batch has a deterministic label,
 * `<prefix>-<fileIndex>-<byteOffset>`: sending it again (a rerun after a crash) finds the label taken and counts it
 * as loaded, so nothing lands twice. `--checkpoint-file` records after each landed batch how far every file has
 * landed; a rerun skips to there. docs/cli.md describes every flag.
 *
 * Prints one JSON summary line on stdout when done (or interrupted): files, rows, bytes, loads, retries, seconds.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { runLoad } from "../internal/load/run.js"

export {
  /**
   * @since 0.3.0
   * @category options
   */
  connectionRecord,
  /**
   * A checkpoint file that cannot be read, written or resumed with this command's parameters.
   *
   * @since 0.1.0
   * @category errors
   */
  LoadCheckpointError,
  /**
   * An input file that cannot be read as asked (missing, unsupported compression, a JSON array too large, ...).
   *
   * @since 0.1.0
   * @category errors
   */
  LoadInputError,
  /**
   * A flag (or a properties/environment value) that cannot be used.
   *
   * @since 0.1.0
   * @category errors
   */
  LoadOptionError,
  /**
   * @since 0.3.0
   * @category utils
   */
  logsOnStderr,
  /**
   * @since 0.3.0
   * @category errors
   */
  optionError,
  /**
   * @since 0.3.0
   * @category options
   */
  set
} from "../internal/load/run.js"

// -----------------------------------------------------------------------------
// options
// -----------------------------------------------------------------------------

const files = Args.text({ name: "files" }).pipe(
  Args.withDescription("the files to load (.gz is gunzipped), or - for stdin"),
  Args.atLeast(1)
)
const optional = (text: string) => <A>(o: Options.Options<A>) => o.pipe(Options.withDescription(text), Options.optional)

/**
 * The flags that say where and as whom to connect, shared by the commands that talk to StarRocks (`load`,
 * `labels`): read by `connectionRecord` over the `STARROCKS_*` variables and a `--properties` file.
 *
 * @since 0.3.0
 * @category options
 */
export const connectionFlags = {
  table: Options.text("table").pipe(optional("the table, db.table (default: database-name/table-name of the config)")),
  loadUrl: Options.text("load-url").pipe(
    Options.withDescription("FE HTTP address host:port (repeat the flag or give a comma list for several)"),
    Options.repeated
  ),
  user: Options.text("user").pipe(optional("the StarRocks user (default: username of the config, else root)")),
  passwordEnv: Options.text("password-env").pipe(
    optional("the name of the environment variable holding the password (default: STARROCKS_PASSWORD, else empty)")
  ),
  properties: Options.file("properties", { exists: "yes" }).pipe(
    optional("a Java properties file with the Flink connector's keys (load-url, sink.properties.*, ...)")
  )
}

const flags = {
  ...connectionFlags,
  format: Options.choice("format", ["csv", "ndjson", "json"]).pipe(
    optional("csv, ndjson (one JSON object per line) or json (one array); default from the file extension, else csv")
  ),
  columnSeparator: Options.text("column-separator").pipe(optional("CSV column separator: text, \\t or \\xHH (,)")),
  rowDelimiter: Options.text("row-delimiter").pipe(optional("CSV row delimiter: text, \\n, \\r\\n or \\xHH (\\n)")),
  columns: Options.text("columns").pipe(optional("the Stream Load columns header (names and col = expr)")),
  parallel: Options.integer("parallel").pipe(optional("loads in flight (1-64, default sink.io.thread-count, 2)")),
  labelPrefix: Options.text("label-prefix").pipe(
    optional("label prefix ([-_A-Za-z0-9], 1-64); default from the table and the files' paths, sizes and mtimes")
  ),
  maxFilterRatio: Options.float("max-filter-ratio").pipe(optional("rows a load may filter out, 0-1 (0)")),
  strictMode: Options.boolean("strict-mode").pipe(Options.withDescription("Stream Load strict_mode")),
  maxBytes: Options.text("max-bytes").pipe(optional("batch size: bytes, or 64MB, 512KB (default 90MB)")),
  checkpointFile: Options.file("checkpoint-file").pipe(
    optional("records how far each file landed after every batch; a rerun resumes from it")
  ),
  exactlyOnce: Options.boolean("exactly-once").pipe(
    Options.withDescription("require --checkpoint-file (the labels alone last only as long as StarRocks keeps them)")
  ),
  metricsPort: Options.integer("metrics-port").pipe(
    optional("serve the load's metrics (Prometheus text) at http://HOST:N/metrics while it runs; 0 picks a free port")
  ),
  metricsHost: Options.text("metrics-host").pipe(
    optional("the address --metrics-port listens on (default 127.0.0.1; 0.0.0.0 for every interface)")
  ),
  verbose: Options.boolean("verbose").pipe(Options.withDescription("log every load (info level) on stderr"))
}

/**
 * The `load` command's arguments and flags (what `@effect/cli` parses; `internal/load/fastArgs.ts` reads a plain
 * command line to the same values).
 *
 * @internal
 */
export const loadConfig = { files, ...flags }

/**
 * @since 0.1.0
 * @category commands
 */
export const load = Command.make("load", loadConfig, runLoad).pipe(
  Command.withDescription("load CSV, NDJSON or JSON files into a table by Stream Load")
)
