/**
 * The emulator's storage in a MySQL-protocol database (MariaDB in our tests), through @effect/sql-mysql2.
 *
 * - Every StarRocks database maps to the MySQL database (schema) of the same name, created when missing; a
 *   StarRocks table `db.t` is the real table `db`.`t`, so `SELECT * FROM db.t` and `information_schema.COLUMNS`
 *   work against the server.
 * - The database named in the URL holds the emulator's metadata tables (prefix `__sr_`): the exact StarRocks
 *   definitions of the tables the emulator created, the FE transaction records and the staged row changes of
 *   PREPARED / COMMITTED transactions. A restarted emulator on the same URL keeps all of it.
 * - Tables that exist without a definition in the metadata (created by hand) are served as they are: columns and
 *   primary key from information_schema (a primary key makes a PRIMARY table, no primary key a DUPLICATE table).
 *
 * @internal
 */
import * as MysqlClient from "@effect/sql-mysql2/MysqlClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { conditionAllows } from "./condition.js"
import type { RowChanges } from "./data/rowBatch.js"
import { toOps } from "./data/rowBatch.js"
import type { Cell, ColumnDef, Row, RowOp, TableDef, TxnRecord } from "./model.js"
import type { Storage } from "./storage.js"
import { StorageError } from "./storage.js"

/**
 * A hidden auto-increment column that, when a DUPLICATE table has it, gives the insertion order; it is never part
 * of the served table. The emulator does not add it (see `createTableSql`), but a table made by hand may.
 */
export const ROWID = "__sr_rowid"
export const META_TABLES = "__sr_emulator_tables"
export const META_TXNS = "__sr_emulator_txns"
export const META_STAGED = "__sr_emulator_staged"

const SYSTEM_SCHEMAS = new Set(["mysql", "information_schema", "performance_schema", "sys"])

// ---------------------------------------------------------------------------------------------------------------
// URL
// ---------------------------------------------------------------------------------------------------------------

export interface MysqlUrl {
  readonly host: string
  readonly port: number
  readonly username: string
  readonly password: string | undefined
  readonly database: string
}

export const parseUrl = (url: string): MysqlUrl | string => {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return `invalid MySQL storage URL: ${url}`
  }
  if (u.protocol !== "mysql:" && u.protocol !== "mariadb:") {
    return `invalid MySQL storage URL (expected mysql://user[:password]@host:port/database): ${url}`
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ""))
  if (database === "" || database.includes("/")) {
    return `the MySQL storage URL must name a database (mysql://user@host:port/database): ${url}`
  }
  return {
    host: u.hostname === "" ? "127.0.0.1" : u.hostname.replace(/^\[|\]$/g, ""),
    port: u.port === "" ? 3306 : Number(u.port),
    username: u.username === "" ? "root" : decodeURIComponent(u.username),
    password: u.password === "" ? undefined : decodeURIComponent(u.password),
    database
  }
}

// ---------------------------------------------------------------------------------------------------------------
// StarRocks type text
// ---------------------------------------------------------------------------------------------------------------

export interface SrType {
  /** Upper-case base name, normalised: BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, LARGEINT, FLOAT, DOUBLE, DECIMAL,
   * CHAR, VARCHAR, STRING, DATE, DATETIME, JSON, ARRAY, or the text as written for anything else. */
  readonly base: string
  readonly args: ReadonlyArray<number>
  readonly element?: SrType | undefined
}

const ALIASES: Record<string, string> = {
  BOOL: "BOOLEAN",
  INTEGER: "INT",
  DECIMALV2: "DECIMAL",
  DECIMAL32: "DECIMAL",
  DECIMAL64: "DECIMAL",
  DECIMAL128: "DECIMAL",
  DECIMAL256: "DECIMAL",
  NUMERIC: "DECIMAL",
  TEXT: "STRING"
}

export const parseType = (text: string): SrType => {
  const t = text.trim()
  const arr = /^ARRAY\s*<(.*)>$/is.exec(t)
  if (arr) return { base: "ARRAY", args: [], element: parseType(arr[1]!) }
  const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(\s*([0-9\s,]*)\))?\s*(?:UNSIGNED)?$/i.exec(t)
  if (!m) return { base: t.toUpperCase(), args: [] }
  const name = m[1]!.toUpperCase()
  const args = m[2] === undefined || m[2].trim() === "" ? [] : m[2].split(",").map((s) => Number(s.trim()))
  return { base: ALIASES[name] ?? name, args }
}

const decimalArgs = (t: SrType): readonly [number, number] => {
  const p = t.args[0] ?? 10
  const s = t.args[1] ?? 0
  return [p, s]
}

/** The MariaDB column type for a StarRocks type; `key` columns must fit an index. */
export const toMysqlType = (type: string, key: boolean): string => {
  const t = parseType(type)
  switch (t.base) {
    case "BOOLEAN":
      return "TINYINT(1)"
    case "TINYINT":
    case "SMALLINT":
    case "INT":
    case "BIGINT":
    case "FLOAT":
    case "DOUBLE":
    case "DATE":
      return t.base
    case "LARGEINT":
      return "DECIMAL(39,0)"
    case "DECIMAL": {
      const [p, s] = decimalArgs(t)
      return `DECIMAL(${Math.min(Math.max(p, 1), 65)},${Math.min(s, 30)})`
    }
    case "CHAR":
      return `CHAR(${Math.min(t.args[0] ?? 1, 255)})`
    case "VARCHAR": {
      const n = t.args[0] ?? 65533
      if (key) return `VARCHAR(${Math.min(n, 768)})`
      return n <= 1024 ? `VARCHAR(${n})` : "LONGTEXT"
    }
    case "STRING":
      return key ? "VARCHAR(768)" : "LONGTEXT"
    case "DATETIME":
      return "DATETIME(6)"
    case "JSON":
      return "JSON"
    default:
      return "LONGTEXT"
  }
}

interface InfoColumn {
  readonly COLUMN_NAME: string
  readonly DATA_TYPE: string
  readonly COLUMN_TYPE: string
  readonly IS_NULLABLE: string
  readonly COLUMN_KEY: string
}

/** A MariaDB column type back to StarRocks type text (for tables the emulator did not create). */
export const fromMysqlType = (dataType: string, columnType: string, isJson: boolean): string => {
  const d = dataType.toLowerCase()
  const c = columnType.toLowerCase()
  const unsigned = c.includes("unsigned")
  const args = /\(([0-9,\s]+)\)/.exec(c)?.[1]?.split(",").map((s) => Number(s.trim())) ?? []
  if (isJson || d === "json") return "JSON"
  switch (d) {
    case "tinyint":
      return c.startsWith("tinyint(1)") && !unsigned ? "BOOLEAN" : unsigned ? "SMALLINT" : "TINYINT"
    case "bool":
    case "boolean":
      return "BOOLEAN"
    case "smallint":
      return unsigned ? "INT" : "SMALLINT"
    case "mediumint":
      return "INT"
    case "int":
    case "integer":
      return unsigned ? "BIGINT" : "INT"
    case "bigint":
      return unsigned ? "LARGEINT" : "BIGINT"
    case "float":
      return "FLOAT"
    case "double":
    case "real":
      return "DOUBLE"
    case "decimal":
    case "numeric": {
      const p = args[0] ?? 10
      const s = args[1] ?? 0
      return p === 39 && s === 0 ? "LARGEINT" : `DECIMAL(${p},${s})`
    }
    case "char":
      return `CHAR(${args[0] ?? 1})`
    case "varchar":
      return `VARCHAR(${args[0] ?? 65533})`
    case "date":
      return "DATE"
    case "datetime":
    case "timestamp":
      return "DATETIME"
    default:
      return "STRING"
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Cells <-> SQL values
// ---------------------------------------------------------------------------------------------------------------

const formatDecimal = (text: string, scale: number): string => {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text.trim())
  if (!m) return text
  const sign = m[1] === "-" ? "-" : ""
  const int = (m[2] ?? "").replace(/^0+(?=\d)/, "") || "0"
  const frac = (m[3] ?? "").padEnd(scale, "0").slice(0, scale)
  const out = scale > 0 ? `${int}.${frac}` : int
  return sign !== "" && /[1-9]/.test(out) ? `-${out}` : out
}

const formatDatetime = (text: string): string => {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d+))?/.exec(text)
  if (!m) return text
  const frac = (m[3] ?? "").padEnd(6, "0").slice(0, 6)
  return /[1-9]/.test(frac) ? `${m[1]} ${m[2]}.${frac}` : `${m[1]} ${m[2]}`
}

const toBigInt = (v: unknown): bigint | unknown => {
  if (typeof v === "bigint") return v
  const s = String(v).trim()
  try {
    return BigInt(s)
  } catch {
    const n = Number(s)
    return Number.isFinite(n) ? BigInt(Math.trunc(n)) : v
  }
}

/** A JSON number kept as its source text, so BIGINT / DECIMAL elements of arrays keep their precision. */
class NumText {
  constructor(readonly text: string) {}
}
/** A JSON object kept as its (minified) source text. */
class RawJson {
  constructor(readonly text: string) {}
}
type JsonValue = null | boolean | string | NumText | RawJson | Array<JsonValue>

/** A small JSON reader that keeps number literals as text. */
const parseJsonKeepNumbers = (text: string): JsonValue => {
  let i = 0
  const ws = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++
  }
  const value = (): JsonValue => {
    ws()
    const ch = text[i]
    if (ch === "[") {
      i++
      const out: Array<JsonValue> = []
      ws()
      if (text[i] === "]") {
        i++
        return out
      }
      for (;;) {
        out.push(value())
        ws()
        if (text[i] === ",") {
          i++
          continue
        }
        if (text[i] === "]") {
          i++
          return out
        }
        throw new Error(`bad JSON array at ${i}`)
      }
    }
    if (ch === "{") {
      const start = i
      let depth = 0
      let inString = false
      for (; i < text.length; i++) {
        const c = text[i]
        if (inString) {
          if (c === "\\") i++
          else if (c === "\"") inString = false
        } else if (c === "\"") inString = true
        else if (c === "{" || c === "[") depth++
        else if (c === "}" || c === "]") {
          depth--
          if (depth === 0) {
            i++
            const raw = text.slice(start, i)
            return new RawJson(minifyJson(raw))
          }
        }
      }
      throw new Error("bad JSON object")
    }
    if (ch === "\"") {
      const start = i
      i++
      while (i < text.length && text[i] !== "\"") {
        if (text[i] === "\\") i++
        i++
      }
      i++
      return JSON.parse(text.slice(start, i)) as string
    }
    if (text.startsWith("true", i)) {
      i += 4
      return true
    }
    if (text.startsWith("false", i)) {
      i += 5
      return false
    }
    if (text.startsWith("null", i)) {
      i += 4
      return null
    }
    const m = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i))
    if (!m) throw new Error(`bad JSON at ${i}`)
    i += m[0].length
    return new NumText(m[0])
  }
  const out = value()
  ws()
  if (i !== text.length) throw new Error("trailing characters after JSON")
  return out
}

const minifyJson = (text: string): string => {
  let out = ""
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (inString) {
      out += c
      if (c === "\\") out += text[++i] ?? ""
      else if (c === "\"") inString = false
    } else if (c === "\"") {
      inString = true
      out += c
    } else if (!/\s/.test(c)) out += c
  }
  return out
}

const isNumericText = (s: string) => /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(s)

/** An ARRAY cell as JSON text: numbers raw (bigint and decimals exact), strings quoted, JSON elements quoted. */
export const encodeArray = (cell: Cell, element: SrType): string => {
  const enc = (c: Cell, t: SrType): string => {
    if (c === null) return "null"
    if (Array.isArray(c)) return `[${c.map((x) => enc(x, t.element ?? t)).join(",")}]`
    if (typeof c === "bigint") return c.toString()
    if (typeof c === "number") return Number.isFinite(c) ? String(c) : "null"
    if (typeof c === "boolean") return c ? "true" : "false"
    const s = c as string
    switch (t.base) {
      case "TINYINT":
      case "SMALLINT":
      case "INT":
      case "BIGINT":
      case "LARGEINT":
      case "FLOAT":
      case "DOUBLE":
      case "DECIMAL":
        return isNumericText(s) ? s : JSON.stringify(s)
      default:
        return JSON.stringify(s)
    }
  }
  return enc(cell, { base: "ARRAY", args: [], element })
}

const decodeJsonElement = (v: JsonValue, t: SrType): Cell => {
  if (v === null) return null
  if (Array.isArray(v)) return v.map((x) => decodeJsonElement(x, t.base === "ARRAY" && t.element ? t.element : t))
  const text = v instanceof NumText || v instanceof RawJson ? v.text : typeof v === "boolean" ? String(v) : v
  switch (t.base) {
    case "BOOLEAN":
      return typeof v === "boolean" ? v : text === "true" || (text !== "false" && Number(text) !== 0)
    case "TINYINT":
    case "SMALLINT":
    case "INT":
    case "FLOAT":
    case "DOUBLE":
      return typeof v === "boolean" ? (v ? 1 : 0) : Number(text)
    case "BIGINT":
    case "LARGEINT":
      return toBigInt(text) as Cell
    case "DECIMAL":
      return formatDecimal(text, decimalArgs(t)[1])
    case "DATETIME":
      return formatDatetime(text)
    default:
      return text
  }
}

export const decodeArray = (text: string, element: SrType): Cell => {
  const parsed = parseJsonKeepNumbers(text)
  return decodeJsonElement(parsed, { base: "ARRAY", args: [], element })
}

const bigintReplacer = (_key: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v)

/** A cell as the value bound for a column of the given StarRocks type. */
export const toSqlValue = (cell: unknown, type: SrType): unknown => {
  if (cell === null || cell === undefined) return null
  switch (type.base) {
    case "BOOLEAN":
      if (typeof cell === "boolean") return cell ? 1 : 0
      if (typeof cell === "string") return cell === "true" ? 1 : cell === "false" ? 0 : cell
      return typeof cell === "bigint" ? cell.toString() : cell
    case "ARRAY":
      if (Array.isArray(cell)) return encodeArray(cell as Cell, type.element ?? { base: "STRING", args: [] })
      return typeof cell === "string" ? cell : JSON.stringify(cell, bigintReplacer)
    case "JSON":
      return typeof cell === "string" ? cell : JSON.stringify(cell, bigintReplacer)
    default:
      if (typeof cell === "bigint") return cell.toString()
      if (typeof cell === "boolean") return cell ? 1 : 0
      if (typeof cell === "number") return Number.isFinite(cell) ? cell : null
      if (Array.isArray(cell)) return JSON.stringify(cell, bigintReplacer)
      return cell
  }
}

/** A value read from MariaDB (text protocol, `dateStrings`, `bigNumberStrings`) back to a model Cell. */
export const fromSqlValue = (value: unknown, type: SrType): Cell => {
  if (value === null || value === undefined) return null
  const v = Buffer.isBuffer(value) ? value.toString("utf8") : value
  switch (type.base) {
    case "BOOLEAN":
      return typeof v === "boolean" ? v : Number(v) !== 0
    case "TINYINT":
    case "SMALLINT":
    case "INT":
    case "FLOAT":
    case "DOUBLE":
      return Number(v)
    case "BIGINT":
    case "LARGEINT":
      return toBigInt(v) as Cell
    case "DECIMAL":
      return formatDecimal(String(v), decimalArgs(type)[1])
    case "DATE":
      return String(v).slice(0, 10)
    case "DATETIME":
      return formatDatetime(String(v))
    case "ARRAY":
      try {
        return decodeArray(String(v), type.element ?? { base: "STRING", args: [] })
      } catch {
        return String(v)
      }
    default:
      if (typeof v === "string" || typeof v === "number" || typeof v === "bigint") return v
      return typeof v === "object" ? JSON.stringify(v, bigintReplacer) : String(v)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Staged ops (bigint-safe JSON)
// ---------------------------------------------------------------------------------------------------------------

const BIG = "$bigint"

export const serializeOps = (ops: ReadonlyArray<RowOp>): string =>
  JSON.stringify(ops, (_k, v) => (typeof v === "bigint" ? { [BIG]: v.toString() } : v))

export const deserializeOps = (text: string): Array<RowOp> =>
  JSON.parse(text, (_k, v) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const keys = Object.keys(v)
      if (keys.length === 1 && keys[0] === BIG && typeof v[BIG] === "string") return BigInt(v[BIG])
    }
    return v
  }) as Array<RowOp>

// ---------------------------------------------------------------------------------------------------------------
// The storage
// ---------------------------------------------------------------------------------------------------------------

export const quoteId = (name: string): string => "`" + name.replace(/`/g, "``") + "`"
const qualified = (db: string, table: string) => `${quoteId(db)}.${quoteId(table)}`

const BATCH_ROWS = 500
/** Rough cap of one multi-row statement, well under MariaDB's default `max_allowed_packet` (16 MiB). */
const BATCH_CHARS = 4 * 1024 * 1024

/** A rough size of a row's values as SQL text. */
const approxSize = (row: Row): number => {
  let n = 16
  for (const k in row) {
    const v = row[k]
    n += k.length +
      (typeof v === "string" ? v.length * 2 : Array.isArray(v) ? JSON.stringify(v, bigintReplacer).length : 24)
  }
  return n
}

/** Staged changes are stored in rows of about this many characters. */
const STAGED_CHUNK_CHARS = 4 * 1024 * 1024

const isNullable = (def: TableDef, c: ColumnDef) => c.nullable ?? !def.key.includes(c.name)

/** `CREATE TABLE` text for a StarRocks table definition. */
export const createTableSql = (def: TableDef): string => {
  const cols = def.columns.map((c) => {
    const key = def.key.includes(c.name)
    return `${quoteId(c.name)} ${toMysqlType(c.type, key)} ${isNullable(def, c) ? "NULL" : "NOT NULL"}`
  })
  // DUPLICATE tables get no key at all: information_schema then shows exactly the declared columns and no `PRI`
  // (a client detects a Primary Key table by any `PRI`), and InnoDB clusters a table without a primary or unique
  // key by its internal row id, so a scan returns rows in insertion order (rows are never updated there).
  if (def.model === "PRIMARY") cols.push(`PRIMARY KEY (${def.key.map(quoteId).join(", ")})`)
  return `CREATE TABLE IF NOT EXISTS ${qualified(def.database, def.table)} (\n  ${
    cols.join(",\n  ")
  }\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin COMMENT='StarRocks ${def.model} table (effect-starrocks emulator)'`
}

const fail = (message: string) => (cause: unknown) => new StorageError(`${message}: ${causeMessage(cause)}`, cause)

const causeMessage = (cause: unknown): string => {
  if (cause && typeof cause === "object") {
    const inner = (cause as { cause?: unknown }).cause
    if (inner instanceof Error) return inner.message
    if (cause instanceof Error) return cause.message
  }
  return String(cause)
}

/**
 * Opens the storage on `mysql://user[:password]@host:port/database`. The connection pool lives in the scope.
 */
export const make = (url: string): Effect.Effect<Storage, StorageError, Scope.Scope> =>
  Effect.gen(function*() {
    const parsed = parseUrl(url)
    if (typeof parsed === "string") return yield* Effect.fail(new StorageError(parsed))
    const metaDb = parsed.database
    const ctx = yield* Layer.build(MysqlClient.layer({
      host: parsed.host,
      port: parsed.port,
      username: parsed.username,
      password: parsed.password === undefined ? undefined : Redacted.make(parsed.password),
      maxConnections: 4,
      poolConfig: {
        // keep connections between queries (the client's default closes idle connections at once)
        maxIdle: 4,
        dateStrings: true,
        supportBigNumbers: true,
        bigNumberStrings: true,
        jsonStrings: true
      }
    })).pipe(Effect.mapError(fail(`cannot connect to MySQL storage at ${parsed.host}:${parsed.port}`)))
    const sql = Context.get(ctx, SqlClient.SqlClient)

    const run = <A extends object = Record<string, unknown>>(text: string, params: ReadonlyArray<unknown> = []) =>
      sql.unsafe<A>(text, params).unprepared

    const meta = (table: string) => qualified(metaDb, table)

    // metadata tables
    yield* Effect.gen(function*() {
      yield* run(`CREATE DATABASE IF NOT EXISTS ${quoteId(metaDb)}`)
      yield* run(
        `CREATE TABLE IF NOT EXISTS ${meta(META_TABLES)} (db VARCHAR(255) NOT NULL, tbl VARCHAR(255) NOT NULL, ` +
          `def LONGTEXT NOT NULL, PRIMARY KEY (db, tbl)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ` +
          `COMMENT='effect-starrocks emulator: StarRocks definitions of the tables it created'`
      )
      yield* run(
        `CREATE TABLE IF NOT EXISTS ${meta(META_TXNS)} (db VARCHAR(255) NOT NULL, txn_id BIGINT NOT NULL, ` +
          `label VARCHAR(255) NOT NULL, status VARCHAR(16) NOT NULL, record LONGTEXT NOT NULL, ` +
          `PRIMARY KEY (db, txn_id), KEY (db, label)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ` +
          `COMMENT='effect-starrocks emulator: FE transaction records'`
      )
      yield* run(
        `CREATE TABLE IF NOT EXISTS ${meta(META_STAGED)} (txn_id BIGINT NOT NULL, seq INT NOT NULL, ` +
          `ops LONGTEXT NOT NULL, PRIMARY KEY (txn_id, seq)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ` +
          `COLLATE=utf8mb4_bin COMMENT='effect-starrocks emulator: staged row changes of unpublished transactions'`
      )
    }).pipe(Effect.mapError(fail(`cannot create the emulator metadata tables in ${metaDb}`)))

    const tableExists = (db: string, table: string) =>
      Effect.map(
        run<{ n: number }>(
          "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
          [db, table]
        ),
        (rows) => Number(rows[0]?.n ?? 0) > 0
      )

    const storedDef = (db: string, table: string) =>
      Effect.map(
        run<{ def: string }>(`SELECT def FROM ${meta(META_TABLES)} WHERE db = ? AND tbl = ?`, [db, table]),
        (rows) => (rows[0] ? (JSON.parse(rows[0].def) as TableDef) : undefined)
      )

    /** The definition of an existing table from information_schema (and the stored definition when it matches). */
    const describeTable = (db: string, table: string) =>
      Effect.gen(function*() {
        const columns = yield* run<InfoColumn>(
          "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM information_schema.COLUMNS " +
            "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
          [db, table]
        )
        if (columns.length === 0) return undefined
        const visible = columns.filter((c) => c.COLUMN_NAME !== ROWID)
        const stored = yield* storedDef(db, table)
        if (
          stored !== undefined && stored.columns.length === visible.length &&
          stored.columns.every((c, i) => c.name === visible[i]!.COLUMN_NAME)
        ) {
          return stored
        }
        const pk = yield* run<{ COLUMN_NAME: string }>(
          "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? " +
            "AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
          [db, table]
        )
        const checks = yield* run<{ CHECK_CLAUSE: string }>(
          "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
          [db, table]
        )
        const jsonColumns = new Set(
          checks.flatMap((c) => {
            const m = /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(String(c.CHECK_CLAUSE).trim())
            return m ? [m[1]!.replace(/``/g, "`")] : []
          })
        )
        const key = pk.map((k) => k.COLUMN_NAME).filter((k) => k !== ROWID)
        const def: TableDef = {
          database: db,
          table,
          model: key.length > 0 ? "PRIMARY" : "DUPLICATE",
          key: key.length > 0 ? key : visible.slice(0, 1).map((c) => c.COLUMN_NAME),
          columns: visible.map((c) => ({
            name: c.COLUMN_NAME,
            type: fromMysqlType(c.DATA_TYPE, c.COLUMN_TYPE, jsonColumns.has(c.COLUMN_NAME)),
            nullable: c.IS_NULLABLE === "YES"
          }))
        }
        return def
      })

    const getTable = (database: string, table: string) =>
      SYSTEM_SCHEMAS.has(database.toLowerCase()) || table.startsWith("__sr_")
        ? Effect.succeed(undefined)
        : describeTable(database, table).pipe(Effect.mapError(fail(`cannot read table ${database}.${table}`)))

    const hasRowId = (db: string, table: string) =>
      Effect.map(
        run<{ n: number }>(
          "SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? " +
            "AND COLUMN_NAME = ?",
          [db, table, ROWID]
        ),
        (rows) => Number(rows[0]?.n ?? 0) > 0
      )

    const listTables = Effect.gen(function*() {
      const stored = yield* run<{ db: string }>(`SELECT DISTINCT db FROM ${meta(META_TABLES)}`)
      const schemas = [...new Set([metaDb, ...stored.map((r) => r.db)])]
      const names = yield* run<{ TABLE_SCHEMA: string; TABLE_NAME: string }>(
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' " +
          `AND TABLE_SCHEMA IN (${schemas.map(() => "?").join(", ")}) ORDER BY TABLE_SCHEMA, TABLE_NAME`,
        schemas
      )
      const defs = yield* Effect.forEach(
        names.filter((n) => !n.TABLE_NAME.startsWith("__sr_")),
        (n) => describeTable(n.TABLE_SCHEMA, n.TABLE_NAME)
      )
      return defs.filter((d): d is TableDef => d !== undefined)
    }).pipe(Effect.mapError(fail("cannot list tables")))

    const createTable = (def: TableDef) =>
      Effect.gen(function*() {
        if (SYSTEM_SCHEMAS.has(def.database.toLowerCase())) {
          return yield* Effect.fail(new StorageError(`cannot create tables in the system database ${def.database}`))
        }
        yield* run(`CREATE DATABASE IF NOT EXISTS ${quoteId(def.database)}`)
        if (yield* tableExists(def.database, def.table)) return
        yield* run(createTableSql(def))
        yield* run(
          `INSERT INTO ${meta(META_TABLES)} (db, tbl, def) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE def = VALUES(def)`,
          [def.database, def.table, JSON.stringify(def)]
        )
      }).pipe(
        Effect.catchTag("SqlError", (e) => Effect.fail(fail(`cannot create table ${def.database}.${def.table}`)(e)))
      )

    const applyOps = (database: string, table: string, changes: RowChanges) =>
      Effect.gen(function*() {
        const ops = toOps(changes)
        const def = yield* getTable(database, table)
        if (def === undefined) {
          return yield* Effect.fail(new StorageError(`unknown table "${database}.${table}"`))
        }
        if (ops.length === 0) return
        const types = new Map(def.columns.map((c) => [c.name, parseType(c.type)] as const))
        const target = qualified(database, table)
        const known = (row: Row) => def.columns.map((c) => c.name).filter((n) => n in row)
        const bind = (row: Row, cols: ReadonlyArray<string>) => cols.map((c) => toSqlValue(row[c], types.get(c)!))
        const keyOf = (row: Row) => def.key.map((k) => toSqlValue(row[k], types.get(k)!))
        const keyMatch = def.key.length === 1
          ? `${quoteId(def.key[0]!)} = ?`
          : `(${def.key.map(quoteId).join(", ")}) = (${def.key.map(() => "?").join(", ")})`
        const keyIn = (n: number) => {
          const one = def.key.length === 1 ? "?" : `(${def.key.map(() => "?").join(", ")})`
          const lhs = def.key.length === 1 ? quoteId(def.key[0]!) : `(${def.key.map(quoteId).join(", ")})`
          return `${lhs} IN (${Array.from({ length: n }, () => one).join(", ")})`
        }
        /** A partial update (PRIMARY only): the load supplied fewer than all the table's columns. */
        const isPartial = (op: RowOp & { op: "upsert" }) =>
          def.model === "PRIMARY" && def.columns.some((c) => !op.columns.includes(c.name))

        const insertRows = (
          cols: ReadonlyArray<string>,
          rows: ReadonlyArray<Row>,
          upsert: boolean,
          mergeCondition?: string | undefined
        ) => {
          const tuple = `(${cols.map(() => "?").join(", ")})`
          // With a merge condition the condition column is assigned last: MariaDB evaluates the assignments left
          // to right, so every IF() before it still sees the stored value.
          const updates = cols.filter((c) => !def.key.includes(c) && c !== mergeCondition)
          if (mergeCondition !== undefined && cols.includes(mergeCondition)) updates.push(mergeCondition)
          const mc = mergeCondition === undefined ? "" : quoteId(mergeCondition)
          const cond = `(${mc} IS NULL OR (VALUES(${mc}) IS NOT NULL AND VALUES(${mc}) >= ${mc}))`
          const assign = (c: string) =>
            mergeCondition === undefined
              ? `${quoteId(c)} = VALUES(${quoteId(c)})`
              : `${quoteId(c)} = IF(${cond}, VALUES(${quoteId(c)}), ${quoteId(c)})`
          const onDup = upsert
            ? ` ON DUPLICATE KEY UPDATE ${
              updates.length > 0
                ? updates.map(assign).join(", ")
                : `${quoteId(def.key[0]!)} = ${quoteId(def.key[0]!)}`
            }`
            : ""
          return run(
            `INSERT INTO ${target} (${cols.map(quoteId).join(", ")}) VALUES ${
              rows.map(() => tuple).join(", ")
            }${onDup}`,
            rows.flatMap((r) => bind(r, cols))
          )
        }

        const partialUpsert = (op: RowOp & { op: "upsert" }) =>
          Effect.gen(function*() {
            const key = keyOf(op.values)
            const mc = op.mergeCondition !== undefined && types.has(op.mergeCondition) ? op.mergeCondition : undefined
            const found = yield* run(
              `SELECT ${mc === undefined ? "1" : quoteId(mc)} AS x FROM ${target} WHERE ${keyMatch} FOR UPDATE`,
              key
            )
            const cols = op.columns.filter((c) => types.has(c) && !def.key.includes(c))
            if (found.length > 0) {
              if (cols.length === 0) return
              if (mc !== undefined) {
                const stored = fromSqlValue((found[0] as Record<string, unknown>)["x"], types.get(mc)!)
                const type = def.columns.find((c) => c.name === mc)!.type
                if (!conditionAllows(stored, op.values[mc], type)) return
              }
              yield* run(
                `UPDATE ${target} SET ${cols.map((c) => `${quoteId(c)} = ?`).join(", ")} WHERE ${keyMatch}`,
                [...bind(op.values, cols), ...key]
              )
            } else {
              yield* insertRows(known(op.values), [op.values], false)
            }
          })

        const program = Effect.gen(function*() {
          let i = 0
          while (i < ops.length) {
            const op = ops[i]!
            if (op.op === "delete") {
              let j = i
              while (j < ops.length && j - i < BATCH_ROWS && ops[j]!.op === "delete") j++
              const batch = ops.slice(i, j)
              // StarRocks only deletes by key on PRIMARY tables; like the memory storage, ignore deletes elsewhere
              if (def.model === "PRIMARY") {
                yield* run(`DELETE FROM ${target} WHERE ${keyIn(batch.length)}`, batch.flatMap((o) => keyOf(o.values)))
              }
              i = j
              continue
            }
            if (isPartial(op)) {
              yield* partialUpsert(op)
              i++
              continue
            }
            const cols = known(op.values)
            const sig = cols.join("\u0000")
            let j = i + 1
            let size = approxSize(op.values)
            while (j < ops.length && j - i < BATCH_ROWS) {
              const next = ops[j]!
              if (
                next.op !== "upsert" || isPartial(next) || next.mergeCondition !== op.mergeCondition ||
                known(next.values).join("\u0000") !== sig
              ) break
              size += approxSize(next.values)
              if (size > BATCH_CHARS) break
              j++
            }
            yield* insertRows(
              cols,
              ops.slice(i, j).map((o) => o.values),
              def.model === "PRIMARY",
              def.model === "PRIMARY" ? op.mergeCondition : undefined
            )
            i = j
          }
        })
        yield* sql.withTransaction(program).pipe(
          Effect.catchTag("SqlError", (e) => Effect.fail(fail(`cannot apply changes to ${database}.${table}`)(e)))
        )
      })

    const readRows = (database: string, table: string) =>
      Effect.gen(function*() {
        const def = yield* getTable(database, table)
        if (def === undefined) {
          return yield* Effect.fail(new StorageError(`unknown table "${database}.${table}"`))
        }
        const order = def.model === "PRIMARY"
          ? ` ORDER BY ${def.key.map(quoteId).join(", ")}`
          : (yield* hasRowId(database, table).pipe(Effect.mapError(fail("cannot read table"))))
          ? ` ORDER BY ${quoteId(ROWID)}`
          : ""
        const rows = yield* run(
          `SELECT ${def.columns.map((c) => quoteId(c.name)).join(", ")} FROM ${qualified(database, table)}${order}`
        ).pipe(Effect.mapError(fail(`cannot read rows of ${database}.${table}`)))
        const types = def.columns.map((c) => [c.name, parseType(c.type)] as const)
        return rows.map((r) => {
          const out: Record<string, unknown> = {}
          for (const [name, type] of types) out[name] = fromSqlValue((r as Record<string, unknown>)[name], type)
          return out
        })
      })

    const saveTxn = (txn: TxnRecord) =>
      run(
        `INSERT INTO ${meta(META_TXNS)} (db, txn_id, label, status, record) VALUES (?, ?, ?, ?, ?) ` +
          "ON DUPLICATE KEY UPDATE label = VALUES(label), status = VALUES(status), record = VALUES(record)",
        [txn.database, txn.txnId, txn.label, txn.status, JSON.stringify(txn)]
      ).pipe(Effect.asVoid, Effect.mapError(fail(`cannot save transaction ${txn.txnId}`)))

    const deleteTxn = (database: string, txnId: number) =>
      run(`DELETE FROM ${meta(META_TXNS)} WHERE db = ? AND txn_id = ?`, [database, txnId]).pipe(
        Effect.asVoid,
        Effect.mapError(fail(`cannot delete transaction ${txnId}`))
      )

    const loadTxns = run<{ record: string }>(`SELECT record FROM ${meta(META_TXNS)} ORDER BY txn_id`).pipe(
      Effect.map((rows) => rows.map((r) => JSON.parse(r.record) as TxnRecord)),
      Effect.mapError(fail("cannot load transactions"))
    )

    const saveStaged = (txnId: number, changes: RowChanges) =>
      Effect.gen(function*() {
        const ops = toOps(changes)
        const chunks: Array<string> = []
        let current: Array<RowOp> = []
        let size = 0
        for (const op of ops) {
          const s = serializeOps([op]).length
          if (current.length > 0 && size + s > STAGED_CHUNK_CHARS) {
            chunks.push(serializeOps(current))
            current = []
            size = 0
          }
          current.push(op)
          size += s
        }
        chunks.push(serializeOps(current))
        yield* run(`DELETE FROM ${meta(META_STAGED)} WHERE txn_id = ?`, [txnId])
        yield* Effect.forEach(
          chunks,
          (chunk, seq) =>
            run(`INSERT INTO ${meta(META_STAGED)} (txn_id, seq, ops) VALUES (?, ?, ?)`, [txnId, seq, chunk]),
          { discard: true }
        )
      }).pipe(sql.withTransaction, Effect.mapError(fail(`cannot save staged changes of transaction ${txnId}`)))

    const loadStaged = (txnId: number) =>
      run<{ ops: string }>(`SELECT ops FROM ${meta(META_STAGED)} WHERE txn_id = ? ORDER BY seq`, [txnId]).pipe(
        Effect.map((rows) => rows.flatMap((r) => deserializeOps(r.ops))),
        Effect.mapError(fail(`cannot load staged changes of transaction ${txnId}`))
      )

    const dropStaged = (txnId: number) =>
      run(`DELETE FROM ${meta(META_STAGED)} WHERE txn_id = ?`, [txnId]).pipe(
        Effect.asVoid,
        Effect.mapError(fail(`cannot drop staged changes of transaction ${txnId}`))
      )

    const reset = Effect.gen(function*() {
      const stored = yield* run<{ db: string; tbl: string }>(`SELECT db, tbl FROM ${meta(META_TABLES)}`)
      for (const t of stored) {
        if (yield* tableExists(t.db, t.tbl)) yield* run(`DELETE FROM ${qualified(t.db, t.tbl)}`)
      }
      yield* run(`DELETE FROM ${meta(META_TXNS)}`)
      yield* run(`DELETE FROM ${meta(META_STAGED)}`)
    }).pipe(Effect.mapError(fail("cannot reset the storage")))

    const storage: Storage = {
      kind: "mysql",
      listTables,
      getTable,
      createTable,
      applyOps,
      readRows,
      saveTxn,
      deleteTxn,
      loadTxns,
      saveStaged,
      loadStaged,
      dropStaged,
      reset
    }
    return storage
  })
