/**
 * The BE data path of a Stream Load: headers and body bytes in, typed row changes, counters and error-log lines out.
 * Written from docs/protocol.md §6, §7.2, §8, §9 and §11.
 *
 * Header validation covered here (`validateHeaders`): `format`, `column_separator`/`row_delimiter` (hex rule),
 * `strict_mode`, `partial_update` (bool; PRIMARY tables only), `trim_space`, `skip_header`, `columns` and `where`
 * syntax and column names, `jsonpaths`, `json_root`, `compression`/`Content-Encoding` names. The payload is
 * decompressed here (format aliases `gzip`/`deflate`/`lz4`/`zstd`…, or the `compression`/`Content-Encoding` header,
 * which wins; decompress.ts has the codecs and the BE's messages). Not covered (HTTP layer): `label`, `timeout`, auth,
 * "Only one of http header content-encoding and compression can be set", `ignore_json_size` and the JSON size
 * limit, `log_rejected_record_num`, etc.
 *
 * @internal
 */
import { isUtf8 } from "node:buffer"
import type { Cell, RowOp, TableDef } from "../model.js"
import type { ByteWriter, ColumnType } from "./convert.js"
import { byteWriter, convertJson, convertText, fitsLength, INVALID, jsonAsText, parseColumnType } from "./convert.js"
import type { CsvByteRecord, CsvOptions, CsvRecord } from "./csvReader.js"
import { readCsvV1, readCsvV2 } from "./csvReader.js"
import { decompress } from "./decompress.js"
import type { ColumnItem, Expr, Scalar } from "./expr.js"
import { bindNow, evalExpr, evalPredicate, exprRefs, parseColumnsHeader, parseExpr, scalarToString } from "./expr.js"
import type { JsonPath, JsonValue } from "./json.js"
import {
  extractJsonPath,
  JsonObject,
  JsonSyntaxError,
  parseJsonPath,
  parseJsonText,
  parseValueAt,
  skipWs,
  stringifyJson
} from "./json.js"
import { RowBatch, toOps } from "./rowBatch.js"
import { formatInZone, parseLoadTimezone } from "./timezone.js"
import type { LoadCounters, LoadHeaders, LoadOptions, LoadOutcome } from "./types.js"

// ---------------------------------------------------------------------------------------------------------------
// header parsing

const COMPRESSED_FORMATS = new Set(["gzip", "bzip2", "lz4", "deflate", "zstd"])
/** `compression` / `Content-Encoding` names the FE knows (case-insensitive). */
const KNOWN_COMPRESSIONS = new Set([
  "gzip",
  "bzip2",
  "lz4_frame",
  "zstd",
  "deflate",
  "zlib",
  "lz4",
  "snappy",
  "no_compression"
])

/** FE `Delimiter.convertDelimiter`: `\x..`/`\X..`/`0x..` is hex, anything else literal (empty → the default). */
export const parseDelimiter = (value: string | undefined, dflt: string): Uint8Array | string => {
  if (value === undefined || value.length === 0) return Buffer.from(dflt, "utf8")
  const prefix = value.slice(0, 2)
  if (prefix === "\\x" || prefix === "\\X" || prefix === "0x" || prefix === "0X") {
    const hex = value.slice(2)
    if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
      return `Invalid delimiter '${value}': invalid hex format`
    }
    return Buffer.from(hex, "hex")
  }
  return Buffer.from(value, "utf8")
}

/** `strtod`: the longest numeric prefix, garbage → 0. */
export const parseStrtod = (value: string | undefined): number => {
  if (value === undefined) return 0
  const m = /^[\t\n\v\f\r ]*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)/.exec(value)
  if (m === null) {
    const inf = /^[\t\n\v\f\r ]*([+-]?)inf/i.exec(value)
    return inf === null ? 0 : inf[1] === "-" ? -Infinity : Infinity
  }
  return Number(m[1])
}

const parseBool = (v: string | undefined): boolean | undefined | "invalid" => {
  if (v === undefined) return undefined
  const l = v.toLowerCase()
  if (l === "true") return true
  if (l === "false") return false
  return "invalid"
}

interface TableColumn {
  readonly name: string
  readonly type: ColumnType
  readonly nullable: boolean
  readonly isKey: boolean
  /** The declared default, converted; undefined when the column has none. */
  readonly dflt: Cell | undefined
}

/**
 * What a new row stores in a column that a partial update did not supply: the default, else NULL, else (NOT NULL
 * without a default) the type's zero value.
 */
const fillValue = (c: TableColumn): Cell => {
  if (c.dflt !== undefined) return c.dflt
  if (c.nullable) return null
  switch (c.type.kind) {
    case "BOOLEAN":
      return false
    case "TINYINT":
    case "SMALLINT":
    case "INT":
    case "FLOAT":
    case "DOUBLE":
      return 0
    case "BIGINT":
    case "LARGEINT":
      return 0n
    case "DECIMAL":
      return c.type.scale > 0 ? "0." + "0".repeat(c.type.scale) : "0"
    case "DATE":
      return "1970-01-01"
    case "DATETIME":
      return "1970-01-01 00:00:00"
    case "JSON":
      return "null"
    case "ARRAY":
      return []
    default:
      return ""
  }
}

type Mapping =
  | { readonly _tag: "Source"; readonly index: number }
  | { readonly _tag: "Expr"; readonly expr: Expr }
  | { readonly _tag: "Absent" }

interface LoadSpec {
  readonly format: "csv" | "json"
  readonly compression: string | undefined
  readonly csv: Omit<CsvOptions, "legacyStartLookahead">
  readonly strictMode: boolean
  readonly partialUpdate: boolean
  /** `partial_update_mode` (`row`, `column`, `auto`; other values are ignored as the BE ignores them). */
  readonly partialUpdateMode: "row" | "column" | "auto" | undefined
  /** `merge_condition`: the table column name (validated). */
  readonly mergeCondition: string | undefined
  /**
   * Whether upserts carry the condition: not in a column-mode partial update, which StarRocks applies
   * unconditionally (test_partial_update_column_mode/test_partial_update, case
   * test_column_partial_update_with_condition_update; docs/protocol.md §6.6).
   */
  readonly conditionOnUpserts: boolean
  readonly maxFilterRatio: number
  readonly columns: ReadonlyArray<TableColumn>
  /** Source slot names: CSV field order, JSON keys. */
  readonly sources: ReadonlyArray<string>
  /** Per source: the table column type when the source maps to a column by name and no expression uses it. */
  readonly sourceTypes: ReadonlyArray<ColumnType | undefined>
  /** Per source: the table column name it maps to directly (for error messages). */
  readonly mappings: ReadonlyArray<Mapping>
  readonly op: Mapping
  /** Table column names the load supplies (partial update). */
  readonly supplied: ReadonlyArray<string>
  readonly where: Expr | undefined
  readonly jsonPaths: ReadonlyArray<JsonPath> | undefined
  readonly jsonRoot: JsonPath | undefined
  readonly stripOuterArray: boolean
}

const OP = "__op"

/** A column default that is the load's time (`DEFAULT CURRENT_TIMESTAMP` of a DATETIME column). */
const isCurrentTimestamp = (text: string) => /^\s*(?:current_timestamp|now)\s*(?:\(\s*\))?\s*$/i.test(text)

/**
 * @param nowMs the load's plan time (epoch ms), what `now()` / `current_timestamp` read in the load's `timezone`
 */
const buildSpec = (table: TableDef, headers: LoadHeaders, nowMs?: number): LoadSpec | string => {
  const rawFormat = headers["format"]
  const lf = (rawFormat ?? "csv").toLowerCase()
  if (lf !== "csv" && lf !== "json" && !COMPRESSED_FORMATS.has(lf)) return `unknown data format, format=${rawFormat}`
  const format = lf === "json" ? "json" : "csv"
  // the format alias `lz4` is LZ4 frame; the header's `lz4` is LZ4 block (which the BE cannot stream-decode)
  let compression: string | undefined = COMPRESSED_FORMATS.has(lf) ? (lf === "lz4" ? "lz4_frame" : lf) : undefined
  const compressionH = headers["compression"] ?? headers["content-encoding"]
  if (compressionH !== undefined && compressionH.length > 0) {
    const c = compressionH.toLowerCase()
    if (!KNOWN_COMPRESSIONS.has(c)) return `Unsupported compression type: ${compressionH}`
    // the header, when given, names the codec (newest BEs prefer it to the format alias)
    compression = c === "no_compression" ? undefined : c
  }

  const strict = parseBool(headers["strict_mode"])
  if (strict === "invalid") return "Invalid strict mode format. Must be bool type"
  // FE StreamLoadInfo: `timezone` (an empty header is not sent by the BE)
  const tzH = headers["timezone"]
  const zone = parseLoadTimezone(tzH === undefined || tzH.length === 0 ? undefined : tzH)
  if (typeof zone === "string") return zone
  let nowCache: string | undefined
  const nowText = () => (nowCache ??= formatInZone(nowMs ?? Date.now(), zone))
  const partial = parseBool(headers["partial_update"])
  if (partial === "invalid") return "Invalid partial update flag format. Must be bool type"
  if (partial === true && table.model !== "PRIMARY") return "Only primary key table support partial update"
  const trim = parseBool(headers["trim_space"])
  if (trim === "invalid") return "Invalid trim space format. Must be bool type"
  let skipHeader = 0
  const sh = headers["skip_header"]
  if (sh !== undefined) {
    if (!/^\s*[+-]?[0-9]+\s*$/.test(sh)) return "Invalid csv load skip_header format"
    skipHeader = Number.parseInt(sh, 10)
    if (skipHeader < 0) return "skip_header must be equal or greater than 0"
  }
  const columnSeparator = parseDelimiter(headers["column_separator"], "\t")
  if (typeof columnSeparator === "string") return columnSeparator
  const rowDelimiter = parseDelimiter(headers["row_delimiter"], "\n")
  if (typeof rowDelimiter === "string") return rowDelimiter
  const encloseH = headers["enclose"]
  const escapeH = headers["escape"]
  // the BE takes the first byte of the value; an empty header is ignored
  const enclose = encloseH !== undefined && encloseH.length > 0 ? Buffer.from(encloseH, "utf8")[0]! : 0
  const escape = escapeH !== undefined && escapeH.length > 0 ? Buffer.from(escapeH, "utf8")[0]! : 0
  const hasEnclose = encloseH !== undefined && encloseH.length > 0
  const hasEscape = escapeH !== undefined && escapeH.length > 0

  const columns: Array<TableColumn> = table.columns.map((c) => {
    const isKey = table.key.includes(c.name)
    const type = parseColumnType(c.type)
    const d = c.default === undefined
      ? undefined
      : type.kind === "DATETIME" && isCurrentTimestamp(c.default)
      ? nowText()
      : convertText(type, c.default)
    return {
      name: c.name,
      type,
      nullable: c.nullable ?? !isKey,
      isKey,
      dflt: d === undefined || d === INVALID ? undefined : d
    }
  })
  const byLower = new Map(columns.map((c, i) => [c.name.toLowerCase(), i]))

  let sources: Array<string>
  let mappings: Array<Mapping>
  let op: Mapping = { _tag: "Absent" }
  let sourceTypes: Array<ColumnType | undefined>
  let supplied: Array<string>
  const columnsHeader = headers["columns"]
  if (columnsHeader === undefined || columnsHeader.trim().length === 0) {
    sources = columns.map((c) => c.name)
    mappings = columns.map((_, i) => ({ _tag: "Source", index: i }))
    sourceTypes = columns.map((c) => c.type)
    supplied = columns.map((c) => c.name)
    if (format === "json") {
      // the JSON reader projects `__op` automatically
      sources.push(OP)
      sourceTypes.push(undefined)
      op = { _tag: "Source", index: sources.length - 1 }
    }
  } else {
    let items: Array<ColumnItem>
    try {
      items = parseColumnsHeader(columnsHeader)
    } catch (e) {
      return `Syntax error in columns header: ${(e as Error).message}`
    }
    sources = []
    const sourceLower = new Map<string, number>()
    for (const it of items) {
      if (it._tag !== "Source") continue
      const l = it.name.toLowerCase()
      if (sourceLower.has(l)) return `Duplicate column: ${it.name}`
      sourceLower.set(l, sources.length)
      sources.push(it.name)
    }
    const derived = new Map<string, Expr>()
    const usedInExpr = new Set<number>()
    for (const it of items) {
      if (it._tag !== "Derived") continue
      const l = it.name.toLowerCase()
      if (l !== OP && !byLower.has(l)) return `Unknown column '${it.name}' in '${table.table}'`
      if (derived.has(l)) return `Duplicate column: ${it.name}`
      derived.set(l, bindNow(it.expr, nowText))
      for (const ref of exprRefs(it.expr)) {
        const si = sourceLower.get(ref.toLowerCase())
        if (si === undefined) return `Unknown column '${ref}' in 'columns'`
        usedInExpr.add(si)
      }
    }
    mappings = columns.map((c) => {
      const l = c.name.toLowerCase()
      const e = derived.get(l)
      if (e !== undefined) return { _tag: "Expr", expr: e }
      const si = sourceLower.get(l)
      return si !== undefined ? { _tag: "Source", index: si } : { _tag: "Absent" }
    })
    sourceTypes = sources.map((s, i) => {
      const ci = byLower.get(s.toLowerCase())
      return ci !== undefined && !usedInExpr.has(i) && !derived.has(s.toLowerCase()) ? columns[ci]!.type : undefined
    })
    const opExpr = derived.get(OP)
    const opSource = sourceLower.get(OP)
    if (opExpr !== undefined) op = { _tag: "Expr", expr: opExpr }
    else if (opSource !== undefined) op = { _tag: "Source", index: opSource }
    else if (format === "json" && table.model === "PRIMARY") {
      // FE Load.initColumns: a JSON stream load into a Primary Key table reads `__op` from each object even when
      // `columns` does not name it
      sources.push(OP)
      sourceTypes.push(undefined)
      op = { _tag: "Source", index: sources.length - 1 }
    }
    supplied = columns.filter((_, i) => mappings[i]!._tag !== "Absent").map((c) => c.name)
    if (partial !== true) {
      // FE Load.initColumns: every column the load leaves out needs a default value (or NULL)
      for (let i = 0; i < columns.length; i++) {
        const c = columns[i]!
        if (mappings[i]!._tag === "Absent" && !c.nullable && c.dflt === undefined) {
          return `Column has no default value. column: ${c.name}`
        }
      }
    }
  }

  // FE Load.checkMergeCondition
  let mergeCondition: string | undefined
  const mcH = headers["merge_condition"]
  if (mcH !== undefined && mcH.length > 0) {
    if (table.model !== "PRIMARY") return `Conditional update only support primary key table ${table.table}`
    const pool = partial === true ? columns.filter((c) => supplied.includes(c.name)) : columns
    const col = pool.find((c) => c.name.toLowerCase() === mcH.toLowerCase())
    if (col === undefined) {
      return `Merge condition column ${mcH} does not exist. If you are doing partial update with condition ` +
        "update, please check condition column is in the given update columns. Otherwise please check " +
        `condition column is in table ${table.table}`
    }
    if (col.isKey) return `Merge condition column ${mcH} should not be primary key!`
    if (col.type.kind === "CHAR" || col.type.kind === "VARCHAR" || col.type.kind === "JSON") {
      return "Merge condition column has invalid type maybe bitmap/hll/percentile/json/varchar!"
    }
    mergeCondition = col.name
  }
  const pum = headers["partial_update_mode"]
  const partialUpdateMode = pum === "row" || pum === "column" || pum === "auto" ? pum : undefined

  let where: Expr | undefined
  const whereH = headers["where"]
  if (whereH !== undefined && whereH.trim().length > 0) {
    try {
      where = bindNow(parseExpr(whereH), nowText)
    } catch (e) {
      return `Syntax error in where header: ${(e as Error).message}`
    }
    const known = new Set([...columns.map((c) => c.name.toLowerCase()), ...sources.map((s) => s.toLowerCase())])
    for (const ref of exprRefs(where)) {
      if (!known.has(ref.toLowerCase())) return `Unknown column '${ref}' in 'where'`
    }
  }

  let jsonPaths: Array<JsonPath> | undefined
  const jp = headers["jsonpaths"]
  if (format === "json" && jp !== undefined && jp.trim().length > 0) {
    const parsed = parseJsonText(jp)
    if (parsed === undefined || !Array.isArray(parsed.value)) return `Invalid json path: ${jp}`
    jsonPaths = []
    for (const p of parsed.value as ReadonlyArray<JsonValue>) {
      const path = typeof p === "string" ? parseJsonPath(p) : undefined
      if (path === undefined) return `Invalid json path: ${jp}`
      jsonPaths.push(path)
    }
  }
  let jsonRoot: JsonPath | undefined
  const jr = headers["json_root"]
  if (format === "json" && jr !== undefined && jr.trim().length > 0) {
    jsonRoot = parseJsonPath(jr)
    if (jsonRoot === undefined) return `Invalid json root: ${jr}`
  }

  return {
    format,
    compression,
    csv: {
      columnSeparator,
      rowDelimiter,
      enclose,
      escape,
      v2: hasEnclose || hasEscape,
      trimSpace: trim === true,
      skipHeader
    },
    strictMode: strict === true,
    partialUpdate: partial === true,
    partialUpdateMode,
    mergeCondition,
    conditionOnUpserts: mergeCondition !== undefined && !(partial === true && partialUpdateMode === "column"),
    maxFilterRatio: parseStrtod(headers["max_filter_ratio"]),
    columns,
    sources,
    sourceTypes,
    mappings,
    op,
    supplied,
    where,
    jsonPaths,
    jsonRoot,
    stripOuterArray: (headers["strip_outer_array"] ?? "").toLowerCase() === "true"
  }
}

/**
 * Header-phase validation (before any body byte is read): returns the BE `Fail` message, or undefined.
 * Covers `format`, `strict_mode`, `partial_update`, `trim_space`, `skip_header`, delimiters, `columns`/`where`,
 * `jsonpaths`/`json_root`, and the names of `compression`/`Content-Encoding` (`Unsupported compression type: <x>`).
 * `max_filter_ratio` is parsed like `strtod` and never fails.
 */
export const validateHeaders = (table: TableDef, headers: LoadHeaders): string | undefined => {
  const spec = buildSpec(table, headers)
  return typeof spec === "string" ? spec : undefined
}

// ---------------------------------------------------------------------------------------------------------------
// rows

/** A source value: CSV text (`null` = `\N`), or a JSON value (`undefined` = key missing). */
type SourceValue = string | null | JsonValue | undefined

class RowFiltered {
  constructor(readonly reason: string) {}
}

const NULL_TEXT = "\\N"

const noEnv = (_name: string): Scalar => null

/** make_value_type_not_matched_error_message of a CSV field under strict_mode. */
const csvOutOfRange = (col: TableColumn, pos: number, type: ColumnType, v: string): string =>
  `The field (name = ${col.name}, pos = ${pos}) is out of range. Type: ${typeDebugString(type)}, Value length: ${
    Buffer.byteLength(v)
  }, Value: ${v}`

/** The raw row for the error log, computed only when a row is logged. */
interface RawRow {
  readonly raw: string
}

class Loader {
  total = 0
  loaded = 0
  filtered = 0
  unselected = 0
  readonly ops: Array<RowOp> = []
  /**
   * DUPLICATE tables: the loaded rows, kept compactly (every change of such a load is a full-row upsert); `ops`
   * stays empty.
   */
  readonly batch: RowBatch | undefined
  readonly errorLog: Array<string> = []
  readonly maxLogRows: number
  readonly isPrimary: boolean
  /** Set when a CSV body is not valid UTF-8: its records then need a closer look (docs/protocol.md §7.2, §8.2). */
  csvInvalidUtf8 = false
  readonly allNames: ReadonlyArray<string>
  readonly nameIndex: Map<string, number>
  readonly sourceIndex: Map<string, number>
  /** Indexes of the NOT NULL columns. */
  readonly notNull: ReadonlyArray<number>
  /** Whether a `columns` expression, the `__op` expression or `where` reads the source slots. */
  readonly needsEnv: boolean
  /** Per table column: the source slot it is read from, or -1 (expression or absent). */
  readonly srcIndex: ReadonlyArray<number>
  /** Per table column: the type its source slot is converted to. */
  readonly srcType: ReadonlyArray<ColumnType>
  /** Every column name → null, in column order: the shape of a loaded row. */
  readonly template: Readonly<Record<string, Cell>>
  /** The cells of the row being loaded, in column order (reused from row to row). */
  readonly vals: Array<Cell>
  /**
   * Whether CSV records take the byte path (`rowBytes`): rows that go into the batch (DUPLICATE) with no expression
   * and no `where`, so that every column is a source field's conversion, a default or NULL.
   */
  readonly bytePath: boolean
  /** Per table column: the byte path of its source type (undefined: convert the field's text). */
  readonly writers: ReadonlyArray<ByteWriter | undefined>

  makeEnv(values: ReadonlyArray<SourceValue>, json: boolean): (name: string) => Scalar {
    const norm = json ? values : values.map((v) => (v === NULL_TEXT ? null : v))
    return (name) => {
      const si = this.sourceIndex.get(name.toLowerCase())
      return si === undefined ? null : this.sourceText(norm[si], json)
    }
  }

  constructor(readonly table: TableDef, readonly spec: LoadSpec, options: LoadOptions) {
    this.srcIndex = spec.mappings.map((m) => (m._tag === "Source" ? m.index : -1))
    this.srcType = spec.mappings.map((m, i) =>
      m._tag === "Source" ? spec.sourceTypes[m.index] ?? spec.columns[i]!.type : spec.columns[i]!.type
    )
    this.needsEnv = spec.where !== undefined || spec.op._tag === "Expr" ||
      spec.mappings.some((m) => m._tag === "Expr")
    this.notNull = spec.columns.flatMap((c, i) => (c.nullable ? [] : [i]))
    this.maxLogRows = options.maxErrorLogRows ?? 50
    this.isPrimary = table.model === "PRIMARY"
    this.allNames = spec.columns.map((c) => c.name)
    this.batch = this.isPrimary ? undefined : new RowBatch(this.allNames)
    this.vals = this.allNames.map(() => null)
    const template: Record<string, Cell> = {}
    for (const c of spec.columns) template[c.name] = null
    this.template = template
    this.nameIndex = new Map(spec.columns.map((c, i) => [c.name.toLowerCase(), i]))
    this.sourceIndex = new Map(spec.sources.map((s, i) => [s.toLowerCase(), i]))
    this.bytePath = this.batch !== undefined && !this.needsEnv && !spec.partialUpdate
    this.writers = this.srcIndex.map((si, i) => (si >= 0 ? byteWriter(this.srcType[i]!) : undefined))
  }

  logRow(reason: string, raw: RawRow) {
    if (this.errorLog.length < this.maxLogRows) this.errorLog.push(`Error: ${reason}. Row: ${raw.raw}`)
  }

  filter(reason: string, raw: RawRow) {
    this.total++
    this.filtered++
    this.logRow(reason, raw)
  }

  /** A source value as the VARCHAR text an expression sees. */
  sourceText(v: SourceValue, json: boolean): Scalar {
    if (v === undefined || v === null) return null
    if (!json) return v as string
    return jsonAsText(v as JsonValue)
  }

  convertSource(type: ColumnType, v: SourceValue, json: boolean): Cell | typeof INVALID {
    if (v === undefined || v === null) return null
    if (json) return convertJson(type, v as JsonValue)
    const s = v as string
    return s === NULL_TEXT ? null : convertText(type, s)
  }

  /** Converts one row and appends its op (or counts it filtered/unselected). */
  row(values: ReadonlyArray<SourceValue>, json: boolean, raw: RawRow) {
    const spec = this.spec
    const cols = spec.columns
    const n = cols.length
    // expressions see the source slots as VARCHAR (CSV `\N` is NULL); built only when the load has expressions
    const env = this.needsEnv ? this.makeEnv(values, json) : noEnv
    // the row's cells in column order, in one reused array: a DUPLICATE load copies them into its batch, a PRIMARY
    // load into a row object
    const vals = this.vals
    try {
      const srcIndex = this.srcIndex
      const srcType = this.srcType
      for (let i = 0; i < n; i++) {
        const si = srcIndex[i]!
        if (si >= 0) {
          const v = values[si]
          const type = srcType[i]!
          const c = v === undefined || v === null
            ? null
            : json
            ? convertJson(type, v as JsonValue)
            : v === NULL_TEXT
            ? null
            : convertText(type, v as string)
          if (c === INVALID) {
            const col = cols[i]!
            const m = spec.mappings[i] as { readonly index: number }
            if (spec.strictMode) {
              // make_value_type_not_matched_error_message; JSON keeps the short form
              throw new RowFiltered(
                json
                  ? `The field (name = ${col.name}, pos = ${m.index}) is out of range`
                  : csvOutOfRange(col, m.index, type, v as string)
              )
            }
            vals[i] = null
          } else {
            vals[i] = c
          }
        } else {
          const col = cols[i]!
          const m = spec.mappings[i]!
          if (m._tag === "Expr") vals[i] = this.castExprResult(col, evalExpr(m.expr, env), spec.strictMode)
          else vals[i] = spec.partialUpdate ? fillValue(col) : col.dflt !== undefined ? col.dflt : null
        }
      }
      let isDelete = false
      if (this.isPrimary && spec.op._tag !== "Absent") {
        let opValue: Scalar
        if (spec.op._tag === "Source") {
          const v = values[spec.op.index]
          opValue = !json && v === NULL_TEXT ? null : this.sourceText(v, json)
        } else {
          opValue = evalExpr(spec.op.expr, env)
        }
        isDelete = isDeleteOp(opValue)
      }
      if (spec.where !== undefined) {
        const selected = evalPredicate(spec.where, (name) => {
          const ci = this.nameIndex.get(name.toLowerCase())
          if (ci !== undefined) {
            // the WHERE sees the loaded value; for a partial update's absent column, NULL
            return spec.partialUpdate && spec.mappings[ci]!._tag === "Absent" ? null : cellToScalar(vals[ci]!)
          }
          return env(name)
        })
        if (!selected) {
          this.total++
          this.unselected++
          return
        }
      }
      if (isDelete) {
        for (let i = 0; i < n; i++) {
          const col = cols[i]!
          if (col.isKey && !col.nullable && vals[i] === null) {
            throw new RowFiltered(`NULL value in non-nullable column '${col.name}'`)
          }
        }
        this.ops.push({ op: "delete", values: this.rowObject() })
      } else {
        for (const i of this.notNull) {
          const col = cols[i]!
          if (vals[i] === null) throw new RowFiltered(`NULL value in non-nullable column '${col.name}'`)
        }
        const columns = spec.partialUpdate ? spec.supplied : this.allNames
        if (this.batch !== undefined) {
          this.batch.push(vals)
        } else {
          const out = this.rowObject()
          this.ops.push(
            !spec.conditionOnUpserts
              ? { op: "upsert", values: out, columns }
              : { op: "upsert", values: out, columns, mergeCondition: spec.mergeCondition }
          )
        }
      }
      this.total++
      this.loaded++
    } catch (e) {
      if (e instanceof RowFiltered) this.filter(e.reason, raw)
      else throw e
    }
  }

  /**
   * One CSV record on the byte path (`bytePath`): each field converted from its bytes straight into the batch
   * (`ByteWriter`), else from its text as `row` converts it; then the same NOT NULL checks, counters and error-log
   * lines as `row`.
   */
  rowBytes(r: CsvByteRecord) {
    const batch = this.batch!
    const spec = this.spec
    const cols = spec.columns
    const n = cols.length
    const srcIndex = this.srcIndex
    const writers = this.writers
    const fb = r.fieldBuf
    const starts = r.fieldStart
    const ends = r.fieldEnd
    batch.begin()
    try {
      for (let i = 0; i < n; i++) {
        const si = srcIndex[i]!
        if (si < 0) {
          // no expression on this path: the column's default, else NULL
          const d = cols[i]!.dflt
          batch.setCell(i, d !== undefined ? d : null)
          continue
        }
        const a = starts[si]!
        const e = ends[si]!
        if (e - a === 2 && fb[a] === 0x5c && fb[a + 1] === 0x4e) {
          batch.setNull(i) // `\N`
          continue
        }
        const w = writers[i]
        if (w !== undefined && w(batch, i, fb, a, e)) continue
        const v = fb.toString("utf8", a, e)
        const type = this.srcType[i]!
        const c = convertText(type, v)
        if (c === INVALID) {
          if (spec.strictMode) throw new RowFiltered(csvOutOfRange(cols[i]!, si, type, v))
          batch.setNull(i)
        } else {
          batch.setCell(i, c)
        }
      }
      for (const i of this.notNull) {
        if (batch.isNull(i)) throw new RowFiltered(`NULL value in non-nullable column '${cols[i]!.name}'`)
      }
      batch.commit()
      this.total++
      this.loaded++
    } catch (e) {
      batch.rollback()
      if (e instanceof RowFiltered) this.filter(e.reason, r)
      else throw e
    }
  }

  /** The current row (`vals`) as a row object: a clone of a template with every column (the final shape at once). */
  rowObject(): Record<string, Cell> {
    const out: Record<string, Cell> = { ...this.template }
    const names = this.allNames
    const vals = this.vals
    for (let i = 0; i < names.length; i++) out[names[i]!] = vals[i]!
    return out
  }

  /** An expression result (VARCHAR source slots) cast to the column type; the sink checks VARCHAR lengths. */
  castExprResult(col: TableColumn, r: Scalar, strict: boolean): Cell {
    if (r === null) return null
    const t = col.type
    let c: Cell | typeof INVALID
    if (t.kind === "CHAR" || t.kind === "VARCHAR") {
      const s = scalarToString(r)!
      if (!fitsLength(s, t.length)) {
        throw new RowFiltered(
          `String (length=${Buffer.byteLength(s)}) is too long. The max length of '${col.name}' is ${t.length}`
        )
      }
      return s
    }
    if (typeof r === "boolean" && t.kind === "BOOLEAN") c = r
    else c = convertText(t, scalarToString(r)!)
    if (c === INVALID) {
      if (strict) throw new RowFiltered(`The field (name = ${col.name}) is out of range: cast of '${r}' failed`)
      return null
    }
    return c
  }

  counters(bytes: number): LoadCounters {
    return {
      total: this.total,
      loaded: this.loaded,
      filtered: this.filtered,
      unselected: this.unselected,
      bytes
    }
  }
}

const isDeleteOp = (v: Scalar): boolean => {
  if (v === null) return false
  if (typeof v === "string") {
    const t = v.trim().toLowerCase()
    if (t === "delete") return true
    if (t === "upsert") return false
    const n = Number(t)
    return t.length > 0 && Number.isFinite(n) && Math.trunc(n) === 1
  }
  if (typeof v === "boolean") return v
  if (typeof v === "number") return Math.trunc(v) === 1
  if (typeof v === "bigint") return v === 1n
  return false
}

const cellToScalar = (c: Cell): Scalar => c as Scalar

// ---------------------------------------------------------------------------------------------------------------
// CSV

/**
 * The CSV scanner's `string_2_asc` (be/src/exec/csv_scanner.cpp): a delimiter quoted, `\n` and `\t` escaped,
 * printable ASCII as is, any other byte as `0x<hex>`.
 */
export const delimiterText = (bytes: Uint8Array): string => {
  let out = "'"
  for (const b of bytes) {
    if (b === 0x0a) out += "\\n"
    else if (b === 0x09) out += "\\t"
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b)
    else out += `0x${b.toString(16)}`
  }
  return `${out}'`
}

/**
 * The BE's `TypeDescriptor::debug_string` of a column type, as the CSV scanner's error-log lines name it: DECIMAL(p,s)
 * is stored as DECIMAL32/64/128 by precision, STRING is a VARCHAR (docs/protocol.md §7.2).
 */
export const typeDebugString = (t: ColumnType): string => {
  switch (t.kind) {
    case "DECIMAL":
      return `DECIMAL${t.precision <= 9 ? 32 : t.precision <= 18 ? 64 : 128}(${t.precision}, ${t.scale})`
    case "CHAR":
    case "VARCHAR":
      return `${t.kind}(${t.length})`
    case "ARRAY":
      return `ARRAY<${typeDebugString(t.element)}>`
    default:
      return t.kind
  }
}

/**
 * The number of rows a CSV body holds, estimated from the row delimiters in its first 64 KiB (exact for a smaller
 * body), with 5 % to spare: the size a load's batch starts at.
 */
const estimateRows = (body: Buffer, rd: Uint8Array): number => {
  const sample = Math.min(body.length, 65536)
  let k = 0
  let p = 0
  for (;;) {
    const at = rd.length === 1 ? body.indexOf(rd[0]!, p) : body.indexOf(rd, p)
    if (at < 0 || at >= sample) break
    k++
    p = at + rd.length
  }
  return sample === body.length ? k + 1 : Math.ceil(((k + 1) * body.length / sample) * 1.05)
}

const runCsv = (loader: Loader, spec: LoadSpec, body: Buffer, options: LoadOptions) => {
  // the loader reads each record within onRecord and keeps nothing of it: one reused record object
  const csv: CsvOptions = {
    ...spec.csv,
    legacyStartLookahead: options.legacyCsvStartLookahead === true,
    reuseRecord: true
  }
  const expect = spec.sources.length
  // the reader decodes fields as UTF-8, turning invalid bytes into U+FFFD: such records are refused below
  loader.csvInvalidUtf8 = !isUtf8(body)
  const delimiters = `Column separator: ${delimiterText(csv.columnSeparator)}, ` +
    `Row delimiter: ${delimiterText(csv.rowDelimiter)}`
  const bytePath = loader.bytePath
  const onRecord = (rec: CsvRecord) => {
    // `reuseRecord`: the reader hands byte records
    const r = rec as CsvByteRecord
    if (r.count !== expect) {
      // make_column_count_not_matched_error_message, the wording of StarRocks PR #46095 (May 2024, also in 3.1-3.3)
      loader.filter(
        `Target column count: ${expect} doesn't match source value column count: ${r.count}. ${delimiters}`,
        r
      )
      return
    }
    // csv_scanner.cpp: a record that is not valid UTF-8 is filtered whatever its columns' types
    if (loader.csvInvalidUtf8 && !r.isUtf8()) {
      loader.filter("Invalid UTF-8 row", r)
      return
    }
    if (bytePath) loader.rowBytes(r)
    else loader.row(r.fields, false, r)
  }
  if (loader.batch !== undefined) loader.batch.reserveRows(estimateRows(body, csv.rowDelimiter))
  if (csv.v2) readCsvV2(body, csv, onRecord)
  else readCsvV1(body, csv, onRecord)
}

// ---------------------------------------------------------------------------------------------------------------
// JSON

class JsonStop {
  constructor(readonly reason: string, readonly raw: string) {}
}

/** A JSON row's raw text for the error log, built only when a row is logged. */
class JsonRawRow implements RawRow {
  obj: JsonValue = null
  get raw(): string {
    return stringifyJson(this.obj)
  }
}

const isJsonWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

/** Returns a Fail message for a body whose first byte is not `{`/`[`, else undefined. */
const runJsonBody = (loader: Loader, spec: LoadSpec, body: Buffer): string | undefined => {
  let first = 0
  while (first < body.length && isJsonWs(body[first]!)) first++
  if (first >= body.length) return undefined
  const c = body[first]!
  if (c !== 0x7b && c !== 0x5b) {
    return `illegal json started with ${String.fromCharCode(c)}`
  }
  const text = body.toString("utf8")
  // the loader reads a row's values and raw text before `row` returns and keeps neither: one of each for every row
  const raw = new JsonRawRow()
  const values: Array<SourceValue> = new Array(spec.sources.length)
  const rowOf = (obj: JsonValue) => {
    raw.obj = obj
    if (!(obj instanceof JsonObject)) {
      loader.filter("JSON data is not an object", raw)
      return
    }
    if (spec.jsonPaths !== undefined) {
      for (let i = 0; i < spec.sources.length; i++) {
        const p = spec.jsonPaths[i]
        values[i] = p === undefined ? undefined : extractJsonPath(obj, p)
      }
    } else {
      for (let i = 0; i < spec.sources.length; i++) values[i] = obj.map.get(spec.sources[i]!)
    }
    loader.row(values, true, raw)
  }
  let pos = skipWs(text, 0)
  try {
    while (pos < text.length) {
      let doc: JsonValue
      try {
        const r = parseValueAt(text, pos, true)
        doc = r.value
        pos = skipWs(text, r.end)
      } catch (e) {
        if (e instanceof JsonSyntaxError) {
          throw new JsonStop(
            `JSON parse error: ${e.message}`,
            `parser current location: ${text.slice(e.position, e.position + 64)}`
          )
        }
        throw e
      }
      let root: JsonValue | undefined = doc
      if (spec.jsonRoot !== undefined) {
        root = extractJsonPath(doc, spec.jsonRoot)
        if (root === undefined) throw new JsonStop("JSON Root not found", stringifyJson(doc))
      }
      if (spec.stripOuterArray) {
        if (!Array.isArray(root)) {
          throw new JsonStop("JSON data is not an array-object, strip_outer_array must be FALSE", stringifyJson(root!))
        }
        for (const el of root as ReadonlyArray<JsonValue>) rowOf(el)
      } else {
        if (Array.isArray(root)) {
          throw new JsonStop("JSON data is an array-object, strip_outer_array must be TRUE", stringifyJson(root!))
        }
        if (!(root instanceof JsonObject)) {
          throw new JsonStop("JSON data is not an object", stringifyJson(root!))
        }
        rowOf(root)
      }
    }
  } catch (e) {
    if (!(e instanceof JsonStop)) throw e
    // a rejected document: one filtered row, and the rest of this body is not read
    loader.filter(e.reason, e)
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------------------------

const toBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength))

export const EMPTY_LOAD_OLD = "all partitions have no load data"
export const EMPTY_LOAD_NEW = "No partitions have data available for loading. If you are sure there may be no data " +
  "to be loaded, you can use `ADMIN SET FRONTEND CONFIG ('empty_load_as_error' = 'false')` " +
  "to ensure such load jobs can succeed"

/**
 * Runs one load: the bodies of a plain stream load (one) or of every `transaction/load` of a transaction
 * (CSV: concatenated as one pipe; JSON: each body its own document stream), parsed with the headers, converted to
 * the table's column types.
 */
export const runLoad = (
  table: TableDef,
  headers: LoadHeaders,
  bodies: ReadonlyArray<Uint8Array>,
  options: LoadOptions
): LoadOutcome => {
  const bytes = bodies.reduce((n, b) => n + b.byteLength, 0)
  const spec = buildSpec(table, headers, options.now)
  const zero = { total: 0, loaded: 0, filtered: 0, unselected: 0, bytes }
  if (typeof spec === "string") return { _tag: "Fail", message: spec, counters: zero, errorLog: [] }
  let buffers: Array<Buffer> = bodies.map(toBuffer)
  if (spec.compression !== undefined) {
    const out: Array<Buffer> = []
    for (const b of buffers) {
      if (b.length === 0) continue
      const d = decompress(spec.compression, b)
      if (typeof d === "string") return { _tag: "Fail", message: d, counters: zero, errorLog: [] }
      out.push(d)
    }
    buffers = out
  }
  const loader = new Loader(table, spec, options)
  if (spec.format === "csv") {
    runCsv(loader, spec, buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers), options)
  } else {
    for (const b of buffers) {
      const fail = runJsonBody(loader, spec, b)
      if (fail !== undefined) {
        return { _tag: "Fail", message: fail, counters: loader.counters(bytes), errorLog: loader.errorLog }
      }
    }
  }
  const counters = loader.counters(bytes)
  if (spec.mergeCondition !== undefined && loader.ops.some((o) => o.op === "delete")) {
    // the BE memtable refuses deletes in a condition update (MemTable::_split_upserts_deletes)
    return {
      _tag: "Fail",
      message: `memtable of tablet 10086 delete with condition column ${spec.mergeCondition}`,
      counters,
      errorLog: loader.errorLog
    }
  }
  const considered = counters.total - counters.unselected
  if (counters.filtered > 0 && counters.filtered / considered > spec.maxFilterRatio) {
    return { _tag: "Fail", message: "too many filtered rows", counters, errorLog: loader.errorLog }
  }
  if (counters.loaded === 0 && options.emptyLoadAsError) {
    return {
      _tag: "Fail",
      message: options.emptyLoadMessage === "old" ? EMPTY_LOAD_OLD : EMPTY_LOAD_NEW,
      counters,
      errorLog: loader.errorLog
    }
  }
  const changes = loader.batch ?? loader.ops
  let ops: ReadonlyArray<RowOp> | undefined
  return {
    _tag: "Ok",
    changes,
    get ops() {
      return ops ??= toOps(changes)
    },
    counters,
    errorLog: loader.errorLog
  }
}
