/**
 * The target table's columns and the check of a row schema against them (pure). Reading the columns over the MySQL
 * protocol (`jdbc-url`) is `describe` / `validate` in `@effect-starrocks/sink/TableSchema/Mysql`, which needs the
 * optional `@effect/sql-mysql2`; this module loads no SQL client.
 *
 * @since 0.1.0
 */
import type { Duration, Redacted, SchemaAST } from "effect"
import { Either, Option, Schema } from "effect"
import * as ColumnType from "./ColumnType.js"

/**
 * One column of the table, from `information_schema.COLUMNS`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Column {
  readonly name: string
  /** 1-based. */
  readonly position: number
  /** `COLUMN_KEY`: `PRI` (Primary Key table key column), `DUP`, `UNI`, `AGG` or empty. */
  readonly key: string
  readonly dataType: string
  readonly columnType: string
  /** `IS_NULLABLE` as reported (older StarRocks versions always say `NO`). */
  readonly nullable: boolean
  readonly type: ColumnType.ColumnType
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Description {
  readonly database: string
  readonly table: string
  readonly columns: ReadonlyArray<Column>
  /** Key columns of a Primary Key table (empty for other models). */
  readonly primaryKey: ReadonlyArray<string>
  readonly isPrimaryKeyTable: boolean
  /** `current_version()` (e.g. `3.3.5 6d2bd1e`), else the `serverVersion` option; undefined when neither. */
  readonly serverVersion: string | undefined
  /** False only for a known version below 3.0 (no `enclose`/`escape` headers). */
  readonly supportsEnclose: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Mismatch {
  readonly field: string
  readonly reason: string
}

/**
 * The table cannot be read, or the schema does not fit it. Every mismatch is listed.
 *
 * @since 0.1.0
 * @category errors
 */
export class TableSchemaError extends Schema.TaggedError<TableSchemaError>()("TableSchemaError", {
  database: Schema.String,
  table: Schema.String,
  reason: Schema.String,
  mismatches: Schema.Array(Schema.Struct({ field: Schema.String, reason: Schema.String }))
}) {
  override get message(): string {
    const head = `table ${this.database}.${this.table}: ${this.reason}`
    return this.mismatches.length === 0
      ? head
      : `${head}: ${this.mismatches.map((m) => `${m.field}: ${m.reason}`).join("; ")}`
  }
}

// ---------------------------------------------------------------------------------------------------------------
// versions
// ---------------------------------------------------------------------------------------------------------------

/**
 * `major.minor.patch` of a version string such as `3.3.5 6d2bd1e` or `v2.5.4`.
 *
 * @since 0.1.0
 * @category versions
 */
export const parseVersion = (
  version: string
): Option.Option<{ readonly major: number; readonly minor: number; readonly patch: number }> => {
  const m = /^\s*v?(\d+)\.(\d+)(?:\.(\d+))?/i.exec(version)
  return m === null
    ? Option.none()
    : Option.some({ major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? "0") })
}

/**
 * Whether a server reads the `enclose`/`escape` headers (3.0+). Unknown or unparsable versions: assumed 3.0+.
 *
 * @since 0.1.0
 * @category versions
 */
export const supportsEnclose = (version: string | undefined): boolean => {
  if (version === undefined) return true
  return Option.match(parseVersion(version), { onNone: () => true, onSome: (v) => v.major >= 3 })
}

// ---------------------------------------------------------------------------------------------------------------
// columns
// ---------------------------------------------------------------------------------------------------------------

/**
 * Where and how `describe` and `validate` of `@effect-starrocks/sink/TableSchema/Mysql` read the table.
 *
 * @since 0.1.0
 * @category models
 */
export interface DescribeOptions {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: Redacted.Redacted<string>
  readonly database: string
  readonly table: string
  /** Used when `current_version()` is not available (MySQL/MariaDB, or no privilege). */
  readonly serverVersion?: string | undefined
  /** Connect timeout (default 10 seconds). */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

const toNumber = (u: unknown): number | null => (u === null || u === undefined ? null : Number(u))
const toStr = (u: unknown): string =>
  u === null || u === undefined ? "" : Buffer.isBuffer(u) ? u.toString("utf8") : String(u)

/**
 * Builds a column from an `information_schema.COLUMNS` row (upper-case keys as the server sends them).
 *
 * @since 0.1.0
 * @category constructors
 */
export const columnFromRow = (row: Readonly<Record<string, unknown>>): Column => {
  const get = (k: string) => row[k] ?? row[k.toLowerCase()]
  const dataType = toStr(get("DATA_TYPE"))
  const columnType = toStr(get("COLUMN_TYPE"))
  return {
    name: toStr(get("COLUMN_NAME")),
    position: Number(get("ORDINAL_POSITION")),
    key: toStr(get("COLUMN_KEY")).toUpperCase(),
    dataType,
    columnType,
    nullable: toStr(get("IS_NULLABLE")).toUpperCase() === "YES",
    type: ColumnType.fromInformationSchema({
      dataType,
      columnType,
      numericPrecision: toNumber(get("NUMERIC_PRECISION")),
      numericScale: toNumber(get("NUMERIC_SCALE")),
      characterMaximumLength: toNumber(get("CHARACTER_MAXIMUM_LENGTH"))
    })
  }
}

/**
 * Builds a description from columns (pure).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeDescription = (options: {
  readonly database: string
  readonly table: string
  readonly columns: ReadonlyArray<Column>
  readonly serverVersion?: string | undefined
}): Description => {
  const columns = [...options.columns].sort((a, b) => a.position - b.position)
  const primaryKey = columns.filter((c) => c.key === "PRI").map((c) => c.name)
  return {
    database: options.database,
    table: options.table,
    columns,
    primaryKey,
    isPrimaryKeyTable: primaryKey.length > 0,
    serverVersion: options.serverVersion,
    supportsEnclose: supportsEnclose(options.serverVersion)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------------------------------------------

type Category = "boolean" | "integer" | "float" | "decimal" | "string" | "date" | "json" | "array" | "other"

const category = (t: ColumnType.ColumnType): Category => {
  switch (t._tag) {
    case "Boolean":
      return "boolean"
    case "TinyInt":
    case "SmallInt":
    case "Int":
    case "BigInt":
    case "LargeInt":
      return "integer"
    case "Float":
    case "Double":
      return "float"
    case "Decimal":
      return "decimal"
    case "Char":
    case "Varchar":
    case "String":
      return "string"
    case "Date":
    case "DateTime":
      return "date"
    case "Json":
    case "Map":
    case "Struct":
      return "json"
    case "Array":
      return "array"
    case "Other":
      return "other"
  }
}

/** Which declared categories each target category takes. */
const accepts: Record<Category, ReadonlyArray<Category>> = {
  boolean: ["boolean"],
  integer: ["integer", "float", "boolean"],
  float: ["integer", "float", "decimal", "boolean"],
  decimal: ["integer", "float", "decimal"],
  string: ["boolean", "integer", "float", "decimal", "string", "date", "json", "array"],
  date: ["date"],
  json: ["boolean", "integer", "float", "decimal", "string", "date", "json", "array"],
  array: ["array", "json"],
  other: []
}

/**
 * Why a field whose StarRocks type is `declared` cannot go into a column of type `target`; undefined when it can
 * (value-level limits such as ranges, integrality and lengths are checked when encoding).
 *
 * @since 0.1.0
 * @category check
 */
export const incompatibility = (
  declared: ColumnType.ColumnType,
  target: ColumnType.ColumnType
): string | undefined => {
  const d = category(declared)
  const t = category(target)
  if (t === "other") {
    return `column type ${ColumnType.format(target)} cannot be loaded from a value (use a columns expression)`
  }
  if (target._tag === "Map" || target._tag === "Struct") {
    if (d !== "json") return `a ${ColumnType.format(declared)} field cannot go into ${ColumnType.format(target)}`
    return undefined
  }
  if (!accepts[t].includes(d)) {
    return `a ${ColumnType.format(declared)} field cannot go into a ${ColumnType.format(target)} column`
  }
  if (declared._tag === "Array" && target._tag === "Array") {
    const inner = incompatibility(declared.element, target.element)
    if (inner !== undefined) return `array element: ${inner}`
  }
  return undefined
}

/**
 * The result of a successful check: what the encoder needs.
 *
 * @since 0.1.0
 * @category models
 */
export interface Checked {
  /** The table's type of every checked field, by field name: pass as `RowEncoderOptions.columnTypes`. */
  readonly columnTypes: Readonly<Record<string, ColumnType.ColumnType>>
  readonly primaryKey: ReadonlyArray<string>
  readonly isPrimaryKeyTable: boolean
}

/**
 * Checks a struct schema against the table's columns (pure): every field (or every one of `fields`) must exist
 * with exactly the same name and a compatible type; on a Primary Key table every key column must be sent. All
 * mismatches are reported in one `TableSchemaError`.
 *
 * @since 0.1.0
 * @category check
 */
export const check = (
  schema: { readonly ast: SchemaAST.AST },
  columns: ReadonlyArray<Column>,
  options?: {
    readonly fields?: ReadonlyArray<string> | undefined
    readonly database?: string | undefined
    readonly table?: string | undefined
  }
): Either.Either<Checked, TableSchemaError> => {
  const all = ColumnType.fieldsOf(schema)
  const wanted = options?.fields
  const fields = wanted === undefined ? all : all.filter((f) => wanted.includes(f.name))
  const mismatches: Array<Mismatch> = []
  if (wanted !== undefined) {
    for (const w of wanted) {
      if (!all.some((f) => f.name === w)) mismatches.push({ field: w, reason: "not a field of the schema" })
    }
  }
  const byName = new Map(columns.map((c) => [c.name, c]))
  const byLower = new Map(columns.map((c) => [c.name.toLowerCase(), c]))
  const columnTypes: Record<string, ColumnType.ColumnType> = {}
  for (const f of fields) {
    const col = byName.get(f.name)
    if (col === undefined) {
      const other = byLower.get(f.name.toLowerCase())
      mismatches.push({
        field: f.name,
        reason: other !== undefined
          ? `no such column; the table has '${other.name}' (names must match exactly: JSON keys are case-sensitive)`
          : "no such column in the table"
      })
      continue
    }
    const why = incompatibility(f.type, col.type)
    if (why !== undefined) {
      mismatches.push({
        field: f.name,
        reason: `${why}${f.annotated ? "" : " (pin another type with ColumnType.annotate)"}`
      })
      continue
    }
    columnTypes[f.name] = col.type
  }
  const primaryKey = [...columns].sort((a, b) => a.position - b.position).filter((c) => c.key === "PRI").map((c) =>
    c.name
  )
  for (const k of primaryKey) {
    if (!fields.some((f) => f.name === k)) {
      mismatches.push({ field: k, reason: "primary key column missing from the schema (a Primary Key table needs it)" })
    }
  }
  if (columns.length === 0) {
    mismatches.length = 0
    return Either.left(
      new TableSchemaError({
        database: options?.database ?? "",
        table: options?.table ?? "",
        reason: "table not found (no columns)",
        mismatches: []
      })
    )
  }
  if (mismatches.length > 0) {
    return Either.left(
      new TableSchemaError({
        database: options?.database ?? "",
        table: options?.table ?? "",
        reason: `${mismatches.length} schema mismatch${mismatches.length === 1 ? "" : "es"}`,
        mismatches
      })
    )
  }
  return Either.right({ columnTypes, primaryKey, isPrimaryKeyTable: primaryKey.length > 0 })
}
