/**
 * The emulator's tables file (also the shape of `StarRocksEmulator` options `users` / `tables`):
 *
 * ```json
 * {"users":{"root":""}, "starrocksVersion":"3.3", "labelKeepMaxSecond":600,
 *  "tables":[{"database":"db","table":"t","model":"PRIMARY","key":["id"],
 *             "columns":[{"name":"id","type":"BIGINT"},{"name":"note","type":"VARCHAR(64)","nullable":true}]}]}
 * ```
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

const SCALAR_TYPE = new RegExp(
  "^(?:BOOLEAN|BOOL|TINYINT|SMALLINT|INT|INTEGER|BIGINT|LARGEINT)(?:\\s*\\(\\s*\\d+\\s*\\))?$|" +
    "^(?:FLOAT|DOUBLE|STRING|TEXT|DATE|DATETIME|JSON)$|" +
    "^(?:DECIMAL|DECIMALV2|DECIMAL32|DECIMAL64|DECIMAL128|NUMERIC)(?:\\s*\\(\\s*\\d+\\s*(?:,\\s*\\d+\\s*)?\\))?$|" +
    "^(?:CHAR|VARCHAR)(?:\\s*\\(\\s*\\d+\\s*\\))?$",
  "i"
)

/**
 * Whether the emulator knows a StarRocks column type: BOOLEAN, TINYINT…BIGINT, LARGEINT, FLOAT, DOUBLE,
 * DECIMAL(p,s), CHAR(n), VARCHAR(n), STRING, DATE, DATETIME, JSON and ARRAY<T> of those.
 *
 * @since 0.1.0
 * @category validation
 */
export const isSupportedType = (type: string): boolean => {
  const t = type.trim()
  const array = /^ARRAY\s*<(.*)>$/is.exec(t)
  if (array) return isSupportedType(array[1]!)
  if (!SCALAR_TYPE.test(t)) return false
  const decimal = /^DECIMAL\w*\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)/i.exec(t)
  if (decimal) {
    const p = Number(decimal[1])
    const s = Number(decimal[2] ?? 0)
    return p >= 1 && p <= 38 && s <= p
  }
  return true
}

/**
 * @since 0.1.0
 * @category schemas
 */
export const ColumnDef = Schema.Struct({
  name: Schema.NonEmptyTrimmedString,
  type: Schema.String.pipe(
    Schema.filter((t) => isSupportedType(t) || `unsupported column type: ${JSON.stringify(t)}`)
  ),
  nullable: Schema.optional(Schema.Boolean),
  /** The column's DEFAULT as StarRocks text, stored when a load leaves the column out. */
  default: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ColumnDef = typeof ColumnDef.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const TableDef = Schema.Struct({
  database: Schema.NonEmptyTrimmedString,
  table: Schema.NonEmptyTrimmedString,
  model: Schema.Literal("DUPLICATE", "PRIMARY").annotations({
    message: (issue) => ({
      message: `expected "DUPLICATE" or "PRIMARY", got ${JSON.stringify(issue.actual)}`,
      override: true
    })
  }),
  key: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  columns: Schema.NonEmptyArray(ColumnDef)
}).pipe(
  Schema.filter((t) => {
    const issues: Array<Schema.FilterIssue> = []
    const names = new Set<string>()
    t.columns.forEach((c, i) => {
      if (names.has(c.name)) issues.push({ path: ["columns", i, "name"], message: `duplicate column ${c.name}` })
      names.add(c.name)
    })
    t.key.forEach((k, i) => {
      if (!names.has(k)) issues.push({ path: ["key", i], message: `key column ${k} is not among the columns` })
    })
    if (t.model === "PRIMARY" && t.key.length === 0) {
      issues.push({ path: ["key"], message: "a PRIMARY table needs at least one key column" })
    }
    return issues
  })
)

/**
 * @since 0.1.0
 * @category models
 */
export type TableDef = typeof TableDef.Type

/**
 * @since 0.1.0
 * @category schemas
 */
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())
const PositiveInt = Schema.Int.pipe(Schema.positive())

/**
 * The emulator knobs a tables file may set (the fields of `StarRocksVersion.VersionOptions` plus `starrocksVersion`
 * and the emulator's own `cleanerIntervalMs`, `beHttpAuth`, `seed`, `beDownAbortMs`); see docs/testkit.md.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Knobs = Schema.Struct({
  starrocksVersion: Schema.optional(
    Schema.String.pipe(Schema.pattern(/^\s*v?\d+\.\d+(?:\.\d+)?\s*$/, {
      message: () => "expected a StarRocks version X.Y or X.Y.Z (e.g. 3.3 or 3.2.11)"
    }))
  ),
  requireExpect: Schema.optional(Schema.Boolean),
  duplicateLabelMode: Schema.optional(Schema.Literal("label-already-exists", "fail")),
  planTimeField: Schema.optional(Schema.Literal("StreamLoadPlanTimeMs", "StreamLoadPutTimeMs")),
  loadStateShape: Schema.optional(Schema.Literal("new", "old")),
  emptyLoadAsError: Schema.optional(Schema.Boolean),
  emptyLoadMessage: Schema.optional(Schema.Literal("new", "old")),
  labelKeepMaxSecond: Schema.optional(NonNegativeInt),
  labelKeepMaxNum: Schema.optional(NonNegativeInt),
  streamingLoadMaxMb: Schema.optional(PositiveInt),
  maxRunningTxnNumPerDb: Schema.optional(PositiveInt),
  legacyCsvStartLookahead: Schema.optional(Schema.Boolean),
  streamLoadDefaultTimeoutSecond: Schema.optional(PositiveInt),
  preparedTransactionDefaultTimeoutSecond: Schema.optional(PositiveInt),
  cleanerIntervalMs: Schema.optional(PositiveInt),
  beHttpAuth: Schema.optional(Schema.Boolean),
  seed: Schema.optional(Schema.Int),
  beDownAbortMs: Schema.optional(NonNegativeInt)
})

/**
 * The tables file's server fields: TLS. `tlsCert` and `tlsKey` are paths of PEM files (relative paths are resolved
 * against the tables file's directory), given together; `beTls: false` keeps the BEs on plain http.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ServerFields = Schema.Struct({
  tlsCert: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  tlsKey: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  beTls: Schema.optional(Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Knobs = typeof Knobs.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const TablesFile = Schema.Struct({
  users: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  tables: Schema.optional(Schema.Array(TableDef)),
  ...Knobs.fields,
  ...ServerFields.fields
})

/**
 * @since 0.1.0
 * @category models
 */
export type TablesFile = typeof TablesFile.Type

/**
 * A tables file that cannot be read or does not match the schema. `field` names the first bad field
 * (`tables[0].model`), `message` lists every problem.
 *
 * @since 0.1.0
 * @category errors
 */
export class TablesFileError extends Schema.TaggedError<TablesFileError>(
  "@effect-starrocks/testkit/TablesFileError"
)("TablesFileError", {
  field: Schema.String,
  message: Schema.String
}) {}

const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, p) => typeof p === "number" ? `${acc}[${p}]` : acc === "" ? String(p) : `${acc}.${String(p)}`,
    ""
  )

const decodeTablesFile = Schema.decodeUnknown(TablesFile, { errors: "all", onExcessProperty: "error" })

/**
 * Validates an already parsed tables file.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (json: unknown): Effect.Effect<TablesFile, TablesFileError> =>
  decodeTablesFile(json).pipe(
    Effect.mapError((error) => {
      const all = ParseResult.ArrayFormatter.formatErrorSync(error)
      // `optional` fields are unions with undefined: drop their "Expected undefined" noise when a real issue exists
      const real = all.filter((i) => !i.message.startsWith("Expected undefined"))
      const issues = real.length > 0 ? real : all
      const first = issues[0]
      return new TablesFileError({
        field: first ? formatPath(first.path) : "",
        message: issues.map((i) => `${formatPath(i.path) || "(root)"}: ${i.message}`).join("; ")
      })
    })
  )

/**
 * Reads, parses and validates a tables file.
 *
 * @since 0.1.0
 * @category decoding
 */
export const readFile = (
  path: string
): Effect.Effect<TablesFile, TablesFileError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((e) => new TablesFileError({ field: "", message: `cannot read ${path}: ${e.message}` }))
    )
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) =>
        new TablesFileError({ field: "", message: `${path} is not JSON: ${e instanceof Error ? e.message : e}` })
    })
    return yield* decode(json).pipe(
      Effect.mapError((e) => new TablesFileError({ field: e.field, message: `${path}: ${e.message}` }))
    )
  })
