/**
 * Routing: which table an item goes to, and the lanes of those tables. A routing is built once per sink run from
 * the config: one table (`single`), a tagged union of row schemas each bound to a table (`tagged`), a function of
 * the row for tables that share one schema (`byFunction`, tables appearing while the stream runs), or
 * pre-serialized records (rawLane.ts). With `jdbc-url`, every table's columns are read and checked when its lane is
 * made: at start for the tables known then, when it first appears for the others.
 */
import type { Schema } from "effect"
import { Effect, Either, Option } from "effect"
import * as Change from "../../Change.js"
import * as ColumnType from "../../ColumnType.js"
import { RowEncodeError } from "../../RowEncodeError.js"
import type * as StarRocksConfig from "../../StarRocksConfig.js"
import * as TableSchema from "../../TableSchema.js"
import type { Router } from "./batcher.js"
import * as Lane from "./lane.js"

/** What a user says of one table: the public `StarRocksSink.TableOptions` is this interface. */
export interface TableOptions {
  readonly database?: string | undefined
  readonly table?: string | undefined
  /** `csv` or `json`; default: the config's `format`. */
  readonly format?: "csv" | "json" | undefined
  /** Columns in the order sent; default: the struct's field order (without a tagged union's `_tag`). */
  readonly columns?: ReadonlyArray<string> | undefined
  /** Stream Load headers of this table's loads (`sink.properties.*`), over the config's. */
  readonly properties?: Readonly<Record<string, string>> | undefined
  /**
   * Keep the table's rows in order across loads: one load in flight at a time for this table, so that a later
   * change of a key lands after an earlier one. Default: true for a Primary Key table (through `jdbc-url`, or
   * declared with `primaryKey`), else false.
   */
  readonly ordered?: boolean | undefined
  /**
   * Declares a Primary Key table and its key columns, where `jdbc-url` is not given: deletes and partial updates
   * need it. With `jdbc-url` the table's own key is used.
   */
  readonly primaryKey?: ReadonlyArray<string> | undefined
  /**
   * Conditional updates (`merge_condition`): a row replaces the stored one only when its value in this column is
   * not lower. Not a key column.
   */
  readonly mergeCondition?: string | undefined
  /** `partial_update_mode` of partial updates (`Change.update`): `row` (StarRocks' default) or `column`. */
  readonly partialUpdateMode?: "row" | "column" | undefined
}

export type RouteError = TableSchema.TableSchemaError | RowEncodeError

const lower = (record: Readonly<Record<string, string>> | undefined): Record<string, string> => {
  const out: Record<string, string> = {}
  if (record !== undefined) { for (const [k, v] of Object.entries(record)) out[k.toLowerCase()] = v }
  return out
}

/**
 * The table's settings. Its headers are the config's `sink.properties.*` under the table's own, and
 * `strict_mode: true` unless either sets `strict_mode` (in any case): without it StarRocks stores NULL for a value
 * it cannot convert (a 9-byte string into VARCHAR(8), an out-of-range number) and reports nothing; with it, it
 * filters the row, and the load fails unless `max_filter_ratio` allows it (docs/types.md).
 */
export const settingsOf = (config: StarRocksConfig.StarRocksConfig, options: TableOptions): Lane.TableSettings => {
  const properties: Record<string, string> = {
    strict_mode: "true",
    ...lower(config.properties),
    ...lower(options.properties)
  }
  const format = options.format ?? (properties["format"] === "json" ? "json" : config.format)
  const mode = options.partialUpdateMode ?? properties["partial_update_mode"]
  return {
    database: options.database ?? config.database,
    table: options.table ?? config.table,
    format,
    columns: options.columns,
    properties,
    ordered: options.ordered,
    primaryKey: options.primaryKey,
    mergeCondition: options.mergeCondition ?? properties["merge_condition"],
    partialUpdateMode: mode === "row" || mode === "column" ? mode : undefined,
    csvJsonFallback: config.csvJsonFallback,
    timeZone: config.timeZone
  }
}

const schemaError = (settings: Lane.TableSettings, reason: string) =>
  new TableSchema.TableSchemaError({ database: settings.database, table: settings.table, reason, mismatches: [] })

/**
 * Stream Load headers that the row encoder sets for every batch of a schema's table (RowEncoder.ts), with why a
 * user's value cannot be honoured: given, they are refused rather than overridden.
 */
const encoderHeaders: Readonly<Record<string, string>> = {
  columns: "the sink names the columns it sends itself (choose them with the table's `columns` option)",
  enclose: "the CSV encoder encloses text in '\"' (its escaping recipe needs StarRocks to read it so)",
  escape: "the CSV encoder escapes with '\\' (its escaping recipe needs StarRocks to read it so)",
  strip_outer_array: "the JSON encoder sends each batch as one array (the sink sets it)",
  ignore_json_size: "the JSON encoder's batches are bounded by sink.buffer-flush.max-bytes (the sink sets it)",
  jsonpaths: "the JSON encoder names every column by its name; jsonpaths would map them elsewhere",
  json_root: "the JSON encoder sends the rows at the top level"
}

/**
 * A `column_separator` / `row_delimiter` header as StarRocks reads it: `\xHH…` (or `0x`) is hexadecimal bytes,
 * anything else the text itself. The result holds one character per byte (latin1); undefined when not hex.
 */
export const decodeSeparator = (value: string): string | undefined => {
  const prefix = value.slice(0, 2).toLowerCase()
  if (prefix !== "\\x" && prefix !== "0x") return Buffer.from(value, "utf8").toString("latin1")
  const hex = value.slice(2)
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-f]+$/i.test(hex)) return undefined
  return Buffer.from(hex, "hex").toString("latin1")
}

/** Characters an unenclosed cell can hold (numbers, dates, booleans, `\N`): no separator may use them. */
const cellCharacters = /[0-9A-Za-z.+\-: "\\\0]/

const shown = (text: string): string =>
  Array.from(Buffer.from(text, "latin1")).map((b) =>
    b >= 0x21 && b <= 0x7e ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0").toUpperCase()}`
  ).join("")

/**
 * Checks a schema table's headers against what its encoder needs, and decodes its CSV separators for the encoder
 * (which then sends them in StarRocks' own form). Every problem in one reason.
 */
export const encoderSettings = (settings: Lane.TableSettings): Either.Either<Lane.TableSettings, string> => {
  const problems: Array<string> = []
  for (const [name, why] of Object.entries(encoderHeaders)) {
    if (settings.properties[name] !== undefined) problems.push(`property ${name} cannot be set: ${why}`)
  }
  const separator = (name: "column_separator" | "row_delimiter"): string | undefined => {
    const value = settings.properties[name]
    if (value === undefined) return undefined
    if (settings.format === "json") {
      problems.push(`property ${name} applies to CSV only, and this table loads JSON`)
      return undefined
    }
    const decoded = decodeSeparator(value)
    const cannot = (why: string) => {
      problems.push(`property ${name} ${JSON.stringify(value)} cannot be used: ${why}`)
      return undefined
    }
    if (decoded === undefined) return cannot("not hexadecimal bytes after \\x")
    if (decoded.length === 0) return cannot("it is empty")
    if (/[^\x01-\x7f]/.test(decoded)) return cannot("the CSV encoder takes ASCII separators only (no NUL)")
    if (cellCharacters.test(decoded)) {
      return cannot(
        "values the encoder does not enclose (numbers, dates, \\N) may hold its characters, or the encoder's '\"' " +
          "and '\\'"
      )
    }
    if (name === "row_delimiter" && decoded.length !== 1) {
      return cannot("the CSV encoder takes a one-byte row delimiter")
    }
    if (name === "column_separator" && decoded.length > 50) return cannot("StarRocks takes at most 50 bytes")
    return decoded
  }
  const columnSeparator = separator("column_separator")
  const rowDelimiter = separator("row_delimiter")
  if (columnSeparator !== undefined && columnSeparator.includes(rowDelimiter ?? "\n")) {
    problems.push(
      `property column_separator ${shown(columnSeparator)} holds the row delimiter ${shown(rowDelimiter ?? "\n")}`
    )
  }
  if (problems.length > 0) return Either.left(problems.join("; "))
  return Either.right({ ...settings, columnSeparator, rowDelimiter })
}

/**
 * The MySQL reader of `jdbc-url` (TableSchema/Mysql.ts), imported on first use: it loads `@effect/sql-mysql2`, an
 * optional dependency, which a sink without `jdbc-url` (and the package root) must not load. Node caches the module,
 * so later tables import it at no cost. When it cannot be loaded, the error names the table and what to install.
 */
const loadMysql = (settings: Lane.TableSettings) =>
  Effect.tryPromise({
    try: () => import("../../TableSchema/Mysql.js"),
    catch: (e) =>
      schemaError(
        settings,
        `jdbc-url needs the optional dependencies @effect/sql, @effect/sql-mysql2 and @effect/experimental: ${
          e instanceof Error ? e.message : String(e)
        }`
      )
  })

/** With `jdbc-url`: the table's columns, checked against the schema (every mismatch in one error). */
export const describe = (
  config: StarRocksConfig.StarRocksConfig,
  schema: Schema.Schema<any, any, any>,
  settings: Lane.TableSettings
): Effect.Effect<Lane.TableFacts | undefined, TableSchema.TableSchemaError> =>
  Option.match(config.jdbcUrl, {
    onNone: () => Effect.succeed(undefined),
    onSome: (jdbc) =>
      Effect.flatMap(loadMysql(settings), (Mysql) =>
        Mysql.validate(schema, {
          host: jdbc.host,
          port: jdbc.port,
          user: config.username,
          password: config.password,
          database: settings.database,
          table: settings.table,
          serverVersion: Option.getOrUndefined(config.serverVersion),
          connectTimeout: config.connectTimeout,
          fields: settings.columns ??
            ColumnType.fieldsOf(schema).map((f) => f.name).filter((f) => f !== "_tag")
        })).pipe(Effect.map((t) => ({
          columnTypes: t.columnTypes,
          primaryKey: t.primaryKey,
          isPrimaryKeyTable: t.isPrimaryKeyTable,
          supportsEnclose: t.supportsEnclose,
          serverVersion: t.serverVersion
        })))
  })

/**
 * Makes a table's lane (after `encoderSettings` and `describe`); a bad table option is a `TableSchemaError` naming
 * the table.
 */
export const makeLane = (
  config: StarRocksConfig.StarRocksConfig,
  schema: Schema.Schema<any, any, any>,
  settings: Lane.TableSettings,
  encoders: Lane.Encoders
): Effect.Effect<Lane.Lane, TableSchema.TableSchemaError> =>
  Either.match(encoderSettings(settings), {
    onLeft: (reason) => Effect.fail(schemaError(settings, reason)),
    onRight: (settings) => makeCheckedLane(config, schema, settings, encoders)
  })

const makeCheckedLane = (
  config: StarRocksConfig.StarRocksConfig,
  schema: Schema.Schema<any, any, any>,
  settings: Lane.TableSettings,
  encoders: Lane.Encoders
): Effect.Effect<Lane.Lane, TableSchema.TableSchemaError> =>
  Effect.flatMap(describe(config, schema, settings), (facts) =>
    Effect.try({
      try: () =>
        Lane.make(
          schema,
          settings,
          facts ?? {
            columnTypes: undefined,
            primaryKey: [],
            isPrimaryKeyTable: false,
            supportsEnclose: TableSchema.supportsEnclose(Option.getOrUndefined(config.serverVersion))
          },
          encoders
        ),
      catch: (e) => schemaError(settings, e instanceof Error ? e.message : String(e))
    }))

/** The routing of a sink, before the run: what builds its router. */
export interface Routing<In> {
  readonly _In?: (_: In) => void
  readonly build: (config: StarRocksConfig.StarRocksConfig) => Effect.Effect<Router<RouteError, never>, RouteError>
  /** The schema a table's lane encodes (exactly-once recovery and tests need none). */
  readonly describe: string
}

const unrouted = (reason: string) => (row: unknown, rowIndex: number): Effect.Effect<never, RowEncodeError> =>
  Effect.fail(new RowEncodeError({ row: rowIndex, column: "_tag", reason: `${reason}: ${preview(row)}` }))

const preview = (row: unknown): string => {
  try {
    const s = JSON.stringify(row, (_k, v) => (typeof v === "bigint" ? String(v) : v))
    return s === undefined ? String(row) : s.length > 80 ? s.slice(0, 80) + "…" : s
  } catch {
    return typeof row
  }
}

/** One table: the config's default table, or the one `options` names. */
export const single = <A>(
  schema: Schema.Schema<A, any, any>,
  options: TableOptions
): Routing<A | Change.Change<A>> => ({
  describe: "one table",
  build: (config) =>
    Effect.map(makeLane(config, schema, settingsOf(config, options), Lane.makeEncoders(config.maxBytes)), (lane) => {
      const lanes = [lane]
      return {
        lane: () => lane,
        create: () => Effect.succeed(lane),
        lanes: () => lanes
      }
    })
})

/** A table definition of a tagged union (`StarRocksSink.table`). */
export interface TableDef<A> {
  readonly schema: Schema.Schema<A, any, any>
  readonly options: TableOptions
}

/** The row of an item: a plain row, or the row / key a change carries. */
export const rowOf = (item: unknown): unknown => Change.isChange(item) ? Change.row(item) : item

/** A tagged union: each row's `_tag` picks its table. Every table is checked at start. */
export const tagged = <A>(defs: Readonly<Record<string, TableDef<any>>>): Routing<A | Change.Change<A>> => ({
  describe: "tagged",
  build: (config) =>
    Effect.gen(function*() {
      const byTag = new Map<string, Lane.Lane>()
      const encoders = Lane.makeEncoders(config.maxBytes)
      for (const [tag, def] of Object.entries(defs)) {
        byTag.set(
          tag,
          yield* makeLane(config, def.schema, settingsOf(config, { table: tag, ...def.options }), encoders)
        )
      }
      const lanes = Array.from(byTag.values())
      return {
        lane: (item: unknown) => {
          const row = rowOf(item) as { readonly _tag?: unknown } | null
          return typeof row === "object" && row !== null ? byTag.get(row._tag as string) : undefined
        },
        create: unrouted(`no table for the row's _tag (tables: ${Array.from(byTag.keys()).join(", ")})`),
        lanes: () => lanes
      }
    })
})

/** What a routing function returns: a table name (in the default database) or a table. */
export type Route = string | { readonly database?: string | undefined; readonly table: string }

/** Tables that share one schema, chosen by a function of the row; tables appear while the stream runs. */
export const byFunction = <A>(
  schema: Schema.Schema<A, any, any>,
  route: (row: A) => Route,
  options: TableOptions
): Routing<A | Change.Change<A>> => ({
  describe: "by function",
  build: (config) =>
    Effect.sync(() => {
      const lanes = new Map<string, Lane.Lane>()
      const encoders = Lane.makeEncoders(config.maxBytes)
      const keyOf = (item: unknown): { key: string; database: string; table: string } => {
        const r = route(rowOf(item) as A)
        const database = typeof r === "string"
          ? (options.database ?? config.database)
          : (r.database ?? options.database ?? config.database)
        const table = typeof r === "string" ? r : r.table
        return { key: `${database}.${table}`, database, table }
      }
      // a table name in the default database finds its lane by the name itself: no `db.table` string per row
      const byName = new Map<string, Lane.Lane>()
      const remember = (item: unknown, key: string, lane: Lane.Lane) => {
        lanes.set(key, lane)
        const r = route(rowOf(item) as A)
        if (typeof r === "string") byName.set(r, lane)
      }
      return {
        lane: (item: unknown) => {
          const r = route(rowOf(item) as A)
          if (typeof r === "string") return byName.get(r)
          return lanes.get(`${r.database ?? options.database ?? config.database}.${r.table}`)
        },
        create: (item: unknown) =>
          Effect.suspend(() => {
            const { database, key, table } = keyOf(item)
            const existing = lanes.get(key)
            if (existing !== undefined) {
              remember(item, key, existing)
              return Effect.succeed(existing)
            }
            return makeLane(config, schema, settingsOf(config, { ...options, database, table }), encoders).pipe(
              Effect.tap((lane) => Effect.sync(() => remember(item, key, lane))),
              Effect.tap(() => Effect.logInfo("new table").pipe(Effect.annotateLogs({ table: key })))
            )
          }),
        lanes: () => lanes.values()
      }
    })
})
