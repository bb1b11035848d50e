/**
 * Debezium change events as `Change` rows: a decoder from the value of one Debezium change event (the JSON that
 * Kafka Connect's `JsonConverter` writes, with or without its `{ schema, payload }` wrapper, or the flattened row
 * of `ExtractNewRecordState`) to `Change.upsert(row)` / `Change.delete(key)`, and a `Stream` helper that skips
 * tombstones and stops on truncates.
 *
 * Column values arrive as Kafka Connect encodes them (a DECIMAL as base64 bytes, a DATE as days since the epoch, a
 * DATETIME as milliseconds or microseconds since the epoch, ...). The decoder turns each into the value the row
 * schema's field expects (`BigDecimal`, `Date`, decimal text, ...), then the row schema decodes the row, so a value
 * that does not fit is a `ParseError` naming the field. The mapping is in `docs/debezium.md`.
 *
 * ```ts
 * import { ColumnType, Debezium } from "@effect-starrocks/sink"
 * import { Schema, Stream } from "effect"
 *
 * const Customer = Schema.Struct({ id: ColumnType.Int, email: ColumnType.Varchar(255) })
 * const events: Stream.Stream<unknown> = Stream.make({
 *   op: "c", before: null, after: { id: 1, email: "a@b.c" }, source: { db: "inventory", table: "customers" }
 * })
 * const changes = events.pipe(Debezium.changes(Customer)) // Stream<Change<Customer>, ParseError | DebeziumError>
 * ```
 *
 * @since 0.2.0
 */
import {
  Array as Arr,
  BigDecimal,
  Chunk,
  DateTime,
  Effect,
  Either,
  Exit,
  Option,
  ParseResult,
  Predicate,
  Schema,
  SchemaAST as AST,
  Stream
} from "effect"
import * as Change from "./Change.js"
import * as ColumnType from "./ColumnType.js"

// ---------------------------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------------------------

/**
 * The Kafka Connect schema of one field, as `JsonConverter` writes it (`schemas.enable=true`): `type` is the
 * literal type (`int32`, `int64`, `bytes`, `string`, `struct`, ...), `name` the semantic type
 * (`io.debezium.time.MicroTimestamp`, `org.apache.kafka.connect.data.Decimal`, ...), `parameters` its parameters
 * (`scale` of a Decimal).
 *
 * @since 0.2.0
 * @category models
 */
export interface FieldSchema {
  readonly type: string
  readonly name?: string | undefined
  readonly parameters?: { readonly [key: string]: string } | undefined
  readonly field?: string | undefined
  readonly optional?: boolean | undefined
  readonly fields?: ReadonlyArray<FieldSchema> | undefined
}

/**
 * The semantic types the decoder converts, as field schemas for `Options.fields` (events without the Connect
 * schema carry no type names, so the decoder cannot tell milliseconds from microseconds by itself).
 *
 * @since 0.2.0
 * @category constructors
 */
export const types = {
  /** `io.debezium.time.Date`: days since the epoch (int32). */
  Date: { type: "int32", name: "io.debezium.time.Date" },
  /** `io.debezium.time.Timestamp`: milliseconds since the epoch, no time zone (DATETIME(0..3), TIMESTAMP(0..3)). */
  Timestamp: { type: "int64", name: "io.debezium.time.Timestamp" },
  /** `io.debezium.time.MicroTimestamp`: microseconds since the epoch, no time zone (DATETIME(4..6)). */
  MicroTimestamp: { type: "int64", name: "io.debezium.time.MicroTimestamp" },
  /** `io.debezium.time.NanoTimestamp`: nanoseconds since the epoch, no time zone. */
  NanoTimestamp: { type: "int64", name: "io.debezium.time.NanoTimestamp" },
  /** `io.debezium.time.ZonedTimestamp`: ISO-8601 text with an offset (MySQL TIMESTAMP, PostgreSQL TIMESTAMPTZ). */
  ZonedTimestamp: { type: "string", name: "io.debezium.time.ZonedTimestamp" },
  /** `io.debezium.time.Time`: milliseconds since midnight (int32). */
  Time: { type: "int32", name: "io.debezium.time.Time" },
  /** `io.debezium.time.MicroTime`: microseconds since midnight (int64). */
  MicroTime: { type: "int64", name: "io.debezium.time.MicroTime" },
  /** `io.debezium.time.NanoTime`: nanoseconds since midnight (int64). */
  NanoTime: { type: "int64", name: "io.debezium.time.NanoTime" },
  /** `io.debezium.data.Json`: the document as text. */
  Json: { type: "string", name: "io.debezium.data.Json" },
  /** Binary columns with `binary.handling.mode=bytes` (the default): base64 in JSON. */
  Bytes: { type: "bytes" },
  /** `org.apache.kafka.connect.data.Decimal` with its scale (`decimal.handling.mode=precise`, the default). */
  Decimal: (scale: number): FieldSchema => ({
    type: "bytes",
    name: "org.apache.kafka.connect.data.Decimal",
    parameters: { scale: String(scale) }
  }),
  /** `io.debezium.data.VariableScaleDecimal`: `{ scale, value }` (PostgreSQL NUMERIC without a scale). */
  VariableScaleDecimal: { type: "struct", name: "io.debezium.data.VariableScaleDecimal" }
} as const satisfies Record<string, FieldSchema | ((scale: number) => FieldSchema)>

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * Read the output of Debezium's `ExtractNewRecordState` transformation (the row itself) instead of the change
   * event envelope. A row is an upsert unless it carries `__deleted: "true"` (`delete.tombstone.handling.mode=
   * rewrite`, older `delete.handling.mode=rewrite`) or `__op: "d"` (`add.fields=op`). `prefix` is the
   * transformation's `add.fields.prefix` (default `__`).
   */
  readonly flattened?: boolean | { readonly prefix?: string | undefined } | undefined
  /**
   * Connect schemas of fields, for events that carry none (`value.converter.schemas.enable=false`): which
   * temporal unit an integer is in (`Debezium.types.MicroTimestamp`), the scale of a DECIMAL
   * (`Debezium.types.Decimal(2)`). Ignored for events that carry their schema. A name that is not a field of the
   * row schema is a `TypeError` when the decoder is made.
   */
  readonly fields?: { readonly [field: string]: FieldSchema } | undefined
  /**
   * The connector's `decimal.handling.mode`, for DECIMAL fields of events without the Connect schema: `precise`
   * (the default: base64 bytes), `string` (decimal text) or `double` (a JSON number).
   */
  readonly decimalHandlingMode?: "precise" | "string" | "double" | undefined
  /**
   * The key columns. A delete then carries exactly these (they must be present and not null); without it, a
   * delete carries every non-null column of `before` (with PostgreSQL's `REPLICA IDENTITY DEFAULT`, the key).
   */
  readonly key?: ReadonlyArray<string> | undefined
}

/**
 * A change event that is not a row change: a truncate (`op: "t"`) or a PostgreSQL logical decoding message
 * (`op: "m"`). Names the source table and the event's position in the source log.
 *
 * @since 0.2.0
 * @category errors
 */
export class DebeziumError extends Schema.TaggedError<DebeziumError>()("DebeziumError", {
  reason: Schema.Literal("truncate", "message"),
  table: Schema.String,
  position: Schema.String
}) {
  override get message(): string {
    return this.reason === "truncate"
      ? `truncate of table ${this.table} at ${this.position}: a truncate is not a row change (the StarRocks table ` +
        `is not truncated); truncate it yourself and resume after this event, or skip truncates at the source ` +
        `(skipped.operations=t)`
      : `logical decoding message at ${this.position} (${this.table}): a message is not a row change; route ` +
        `messages to another topic or pass messages: "skip"`
  }
}

// ---------------------------------------------------------------------------------------------------------------
// events
// ---------------------------------------------------------------------------------------------------------------

/**
 * A tombstone: the null value Debezium sends after a delete (for Kafka log compaction). Not a row, not an error.
 * `{ schema: null, payload: null }` counts as one too.
 *
 * @since 0.2.0
 * @category guards
 */
export const isTombstone = (u: unknown): boolean =>
  u === null || u === undefined || (isWrapped(u) && (u.payload === null || u.payload === undefined))

const isWrapped = (u: unknown): u is { readonly schema: unknown; readonly payload: unknown } =>
  Predicate.isRecord(u) && "payload" in u && "schema" in u &&
  (u.schema === null || Predicate.isRecord(u.schema)) && Object.keys(u).length === 2

const unwrap = (u: unknown): { readonly schema: FieldSchema | undefined; readonly payload: unknown } =>
  isWrapped(u)
    ? { schema: isFieldSchema(u.schema) ? u.schema : undefined, payload: u.payload }
    : { schema: undefined, payload: u }

const isFieldSchema = (u: unknown): u is FieldSchema => Predicate.isRecord(u) && typeof u.type === "string"

const str = (u: unknown): string | undefined =>
  typeof u === "string" ? u : typeof u === "number" || typeof u === "bigint" ? String(u) : undefined

/**
 * The source table of an event, from its `source` block (`db.table`, `db.schema.table` for PostgreSQL and SQL
 * Server), else from a flattened row's `__db`/`__table`, else `unknown table`.
 *
 * @since 0.2.0
 * @category getters
 */
export const tableOf = (event: unknown, options?: Options): string => {
  const { payload } = unwrap(event)
  if (!Predicate.isRecord(payload)) return "unknown table"
  const source = payload.source
  if (Predicate.isRecord(source)) {
    const parts = [str(source.db), str(source.schema), str(source.table)].filter((p) => p !== undefined && p !== "")
    if (parts.length > 0) return parts.join(".")
  }
  const prefix = prefixOf(options)
  const parts = [str(payload[`${prefix}db`]), str(payload[`${prefix}schema`]), str(payload[`${prefix}table`])]
    .filter((p) => p !== undefined && p !== "")
  return parts.length > 0 ? parts.join(".") : "unknown table"
}

/**
 * The position of an event in the source log, from its `source` block: `file:pos row n` (MySQL, MariaDB), `lsn
 * n` (PostgreSQL), `change_lsn`/`commit_lsn` (SQL Server), `scn` (Oracle), else `ts_ms`.
 *
 * @since 0.2.0
 * @category getters
 */
export const positionOf = (event: unknown, options?: Options): string => {
  const { payload } = unwrap(event)
  if (!Predicate.isRecord(payload)) return "unknown position"
  const source = payload.source
  if (Predicate.isRecord(source)) {
    const file = str(source.file)
    const pos = str(source.pos)
    if (file !== undefined && pos !== undefined) {
      const row = str(source.row)
      const gtid = str(source.gtid)
      return `binlog ${file}:${pos}${row === undefined ? "" : ` row ${row}`}${
        gtid === undefined ? "" : ` gtid ${gtid}`
      }`
    }
    for (const k of ["lsn", "change_lsn", "commit_lsn", "scn", "commit_scn"]) {
      const v = str(source[k])
      if (v !== undefined) return `${k} ${v}`
    }
    const ts = str(source.ts_ms)
    if (ts !== undefined) return `ts_ms ${ts}`
  }
  const prefix = prefixOf(options)
  for (const k of ["lsn", "source_lsn", "source_ts_ms", "ts_ms"]) {
    const v = str(payload[`${prefix}${k}`])
    if (v !== undefined) return `${k} ${v}`
  }
  return "unknown position"
}

const prefixOf = (options: Options | undefined): string =>
  typeof options?.flattened === "object" ? options.flattened.prefix ?? "__" : "__"

type Op = "c" | "u" | "d" | "r" | "t" | "m"

const opOf = (payload: Record<PropertyKey, unknown>, options: Options | undefined): Op | undefined => {
  if (options?.flattened !== undefined && options.flattened !== false) {
    const prefix = prefixOf(options)
    const deleted = payload[`${prefix}deleted`]
    if (deleted === "true" || deleted === true) return "d"
    const op = payload[`${prefix}op`]
    if (op === undefined || op === null) return "c" // no add.fields=op: a row is an upsert
    return typeof op === "string" && isOp(op) ? op : undefined
  }
  const op = payload.op
  return typeof op === "string" && isOp(op) ? op : undefined
}

const isOp = (s: string): s is Op => s.length === 1 && "cudrtm".includes(s)

// ---------------------------------------------------------------------------------------------------------------
// targets: what each field of the row schema expects
// ---------------------------------------------------------------------------------------------------------------

type Repr = "string" | "number" | "bigint" | "boolean" | "BigDecimal" | "Date" | "DateTimeUtc" | "Uint8Array" | "object"

interface Target {
  readonly name: string
  readonly ast: AST.AST
  readonly column: ColumnType.ColumnType
  /** The column type was pinned (an annotation), not the default mapping. */
  readonly pinned: boolean
  /** What the field's encoded side accepts. */
  readonly accepts: ReadonlySet<Repr>
  /** The field's type side is a string (a string annotated DATE/DATETIME gets StarRocks date text). */
  readonly typeIsString: boolean
}

const reprs = (ast: AST.AST, out: Set<Repr>): Set<Repr> => {
  switch (ast._tag) {
    case "StringKeyword":
    case "TemplateLiteral":
      out.add("string")
      break
    case "NumberKeyword":
      out.add("number")
      break
    case "BigIntKeyword":
      out.add("bigint")
      break
    case "BooleanKeyword":
      out.add("boolean")
      break
    case "Literal":
      if (ast.literal !== null) out.add(typeof ast.literal as Repr)
      break
    case "Enums":
      for (const [, v] of ast.enums) out.add(typeof v as Repr)
      break
    case "Union":
      for (const t of ast.types) reprs(t, out)
      break
    case "Refinement":
      reprs(ast.from, out)
      break
    case "Transformation":
      reprs(ast.from, out)
      break
    case "Suspend":
      reprs(ast.f(), out)
      break
    case "Declaration": {
      const tc = AST.getTypeConstructorAnnotation(ast).pipe(Option.getOrUndefined) as { _tag?: string } | undefined
      switch (tc?._tag) {
        case "effect/BigDecimal":
          out.add("BigDecimal")
          break
        case "Date":
          out.add("Date")
          break
        case "effect/DateTime.Utc":
          out.add("DateTimeUtc")
          break
        case "Uint8Array":
          out.add("Uint8Array")
          break
        default:
          out.add("object")
      }
      break
    }
    case "UnknownKeyword":
    case "AnyKeyword":
      out.add("string").add("number").add("bigint").add("boolean").add("BigDecimal").add("Date").add("object")
      break
    case "TypeLiteral":
    case "TupleType":
    case "ObjectKeyword":
      out.add("object")
      break
  }
  return out
}

const findTypeLiteral = (ast: AST.AST): AST.TypeLiteral | undefined => {
  switch (ast._tag) {
    case "TypeLiteral":
      return ast
    case "Refinement":
      return findTypeLiteral(ast.from)
    case "Suspend":
      return findTypeLiteral(ast.f())
    case "Transformation":
      // the encoded side: its property signatures carry the fields' own schemas (a Schema.Class, a struct with
      // renamed or defaulted keys), named as in the source table
      return findTypeLiteral(ast.from) ?? findTypeLiteral(ast.to)
    default:
      return undefined
  }
}

const targetsOf = (lit: AST.TypeLiteral): ReadonlyArray<Target> =>
  lit.propertySignatures.flatMap((ps) => {
    if (typeof ps.name !== "string") return []
    const resolved = ColumnType.resolve(ps.type)
    return [{
      name: ps.name,
      ast: ps.type,
      column: resolved.type,
      pinned: resolved.annotated,
      accepts: reprs(AST.encodedAST(ps.type), new Set()),
      typeIsString: reprs(AST.typeAST(ps.type), new Set()).has("string")
    }]
  })

// ---------------------------------------------------------------------------------------------------------------
// values
// ---------------------------------------------------------------------------------------------------------------

/** A value as Debezium meant it, before it is shaped for the field. */
type Canon =
  | { readonly _tag: "Decimal"; readonly unscaled: bigint; readonly scale: number }
  | { readonly _tag: "Days"; readonly days: number; readonly raw: unknown }
  | { readonly _tag: "Instant"; readonly ns: bigint; readonly raw: unknown; readonly text: string | undefined }
  | { readonly _tag: "TimeOfDay"; readonly ns: bigint; readonly raw: unknown }
  | { readonly _tag: "Json"; readonly text: string }
  | { readonly _tag: "Bytes"; readonly base64: string }
  | { readonly _tag: "Integer"; readonly value: number | bigint }
  | { readonly _tag: "Plain"; readonly value: unknown }

class Reject {
  constructor(readonly reason: string) {}
}

const excerpt = (u: unknown): string => {
  const s = typeof u === "string" ? JSON.stringify(u) : typeof u === "bigint" ? `${u}n` : safeJson(u)
  return s.length > 40 ? `${s.slice(0, 37)}...` : s
}

const safeJson = (u: unknown): string => {
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

const fromBase64 = (s: unknown, what: string): Uint8Array => {
  if (typeof s !== "string" || !BASE64.test(s)) throw new Reject(`${what}: expected base64 bytes, got ${excerpt(s)}`)
  return Buffer.from(s, "base64")
}

/** Big-endian two's complement (Java's `BigInteger.toByteArray`). */
const twosComplement = (bytes: Uint8Array, what: string): bigint => {
  if (bytes.length === 0) throw new Reject(`${what}: no bytes`)
  let n = 0n
  for (const b of bytes) n = (n << 8n) | BigInt(b)
  return (bytes[0]! & 0x80) !== 0 ? n - (1n << BigInt(bytes.length * 8)) : n
}

const scaleOf = (u: unknown, what: string): number => {
  const n = typeof u === "string" && /^-?\d+$/.test(u) ? Number(u) : u
  if (typeof n !== "number" || !Number.isInteger(n)) throw new Reject(`${what}: no integer scale (${excerpt(u)})`)
  return n
}

const DECIMAL_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/

const decimalFromText = (text: string, what: string): Canon => {
  const m = DECIMAL_TEXT.exec(text.trim())
  if (m === null || (m[2] === "" && (m[3] ?? "") === "")) throw new Reject(`${what}: not a decimal: ${excerpt(text)}`)
  const frac = m[3] ?? ""
  const unscaled = BigInt(`${m[1] === "-" ? "-" : ""}${m[2] === "" ? "0" : m[2]}${frac}`)
  return { _tag: "Decimal", unscaled, scale: frac.length - Number(m[4] ?? "0") }
}

const decimalText = (unscaled: bigint, scale: number): string => {
  if (scale <= 0) return (unscaled * 10n ** BigInt(-scale)).toString()
  const neg = unscaled < 0n
  const digits = (neg ? -unscaled : unscaled).toString().padStart(scale + 1, "0")
  return `${neg ? "-" : ""}${digits.slice(0, -scale)}.${digits.slice(-scale)}`
}

const integer = (u: unknown, what: string): bigint => {
  if (typeof u === "bigint") return u
  if (typeof u === "number" && Number.isInteger(u)) return BigInt(u)
  if (typeof u === "string" && /^-?\d+$/.test(u)) return BigInt(u)
  throw new Reject(`${what}: expected an integer, got ${excerpt(u)}`)
}

const NS_PER_MS = 1_000_000n
const NS_PER_DAY = 86_400_000_000_000n

const ISO =
  /^([+-]?\d{4,6})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?)?(Z|[+-]\d\d(?::?\d\d(?::?\d\d)?)?)?$/

/** Epoch nanoseconds of ISO-8601 text; a missing zone is UTC (Debezium writes wall clocks as UTC). */
const parseIso = (text: string, what: string): bigint => {
  const m = ISO.exec(text.trim())
  if (m === null) throw new Reject(`${what}: not an ISO-8601 timestamp: ${excerpt(text)}`)
  const ms = Date.UTC(
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4] ?? 0),
    Number(m[5] ?? 0),
    Number(m[6] ?? 0)
  )
  const y = new Date(ms)
  if (Number.isNaN(ms) || y.getUTCMonth() !== Number(m[2]) - 1 || y.getUTCDate() !== Number(m[3])) {
    throw new Reject(`${what}: not a valid date: ${excerpt(text)}`)
  }
  let ns = BigInt(ms) * NS_PER_MS + BigInt((m[7] ?? "").padEnd(9, "0"))
  const zone = m[8]
  if (zone !== undefined && zone !== "Z") {
    const z = /^([+-])(\d\d):?(\d\d)?:?(\d\d)?$/.exec(zone)!
    const seconds = Number(z[2]) * 3600 + Number(z[3] ?? 0) * 60 + Number(z[4] ?? 0)
    ns -= BigInt((z[1] === "-" ? -1 : 1) * seconds) * 1_000_000_000n
  }
  return ns
}

const days = (u: unknown, what: string): Canon => {
  const n = integer(u, what)
  return { _tag: "Days", days: Number(n), raw: u }
}

const instant = (u: unknown, nsPerUnit: bigint, what: string): Canon => ({
  _tag: "Instant",
  ns: integer(u, what) * nsPerUnit,
  raw: u,
  text: undefined
})

const isoInstant = (u: unknown, what: string): Canon => {
  if (typeof u !== "string") throw new Reject(`${what}: expected ISO-8601 text, got ${excerpt(u)}`)
  return { _tag: "Instant", ns: parseIso(u, what), raw: u, text: u }
}

const timeOfDay = (u: unknown, nsPerUnit: bigint, what: string): Canon => ({
  _tag: "TimeOfDay",
  ns: integer(u, what) * nsPerUnit,
  raw: u
})

/** What Debezium meant, from the field's Connect schema. */
const fromSchema = (schema: FieldSchema, u: unknown, what: string): Canon => {
  switch (schema.name) {
    case "org.apache.kafka.connect.data.Decimal": {
      if (typeof u === "number") return decimalFromText(String(u), what) // JsonConverter decimal.format=NUMERIC
      const scale = scaleOf(schema.parameters?.scale, what)
      return { _tag: "Decimal", unscaled: twosComplement(fromBase64(u, what), what), scale }
    }
    case "io.debezium.data.VariableScaleDecimal": {
      if (!Predicate.isRecord(u)) throw new Reject(`${what}: expected { scale, value }, got ${excerpt(u)}`)
      const scale = scaleOf(u.scale, what)
      return { _tag: "Decimal", unscaled: twosComplement(fromBase64(u.value, what), what), scale }
    }
    case "io.debezium.time.Date":
    case "org.apache.kafka.connect.data.Date":
      return days(u, what)
    case "io.debezium.time.Timestamp":
    case "org.apache.kafka.connect.data.Timestamp":
      return instant(u, NS_PER_MS, what)
    case "io.debezium.time.MicroTimestamp":
      return instant(u, 1000n, what)
    case "io.debezium.time.NanoTimestamp":
      return instant(u, 1n, what)
    case "io.debezium.time.ZonedTimestamp":
    case "io.debezium.time.IsoTimestamp":
      return isoInstant(u, what)
    case "io.debezium.time.IsoDate": {
      // "2017-09-15Z": the calendar day (the zone marker says the day is UTC's)
      const m = typeof u === "string" ? /^(\d{4})-(\d\d)-(\d\d)(?:Z|[+-]\d\d:?\d\d)?$/.exec(u) : null
      if (m === null) throw new Reject(`${what}: expected ISO-8601 date text, got ${excerpt(u)}`)
      parseIso(`${m[1]}-${m[2]}-${m[3]}`, what) // validates the day
      return { _tag: "Days", days: Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / 86_400_000, raw: u }
    }
    case "io.debezium.time.Time":
    case "org.apache.kafka.connect.data.Time":
      return timeOfDay(u, NS_PER_MS, what)
    case "io.debezium.time.MicroTime":
      return timeOfDay(u, 1000n, what)
    case "io.debezium.time.NanoTime":
      return timeOfDay(u, 1n, what)
    case "io.debezium.data.Json":
      if (typeof u !== "string") throw new Reject(`${what}: expected JSON text, got ${excerpt(u)}`)
      return { _tag: "Json", text: u }
  }
  switch (schema.type) {
    case "bytes":
      if (typeof u !== "string") throw new Reject(`${what}: expected base64 bytes, got ${excerpt(u)}`)
      return { _tag: "Bytes", base64: u }
    case "int8":
    case "int16":
    case "int32":
    case "int64":
      if (typeof u === "number" || typeof u === "bigint") return { _tag: "Integer", value: u }
      return { _tag: "Plain", value: u }
  }
  return { _tag: "Plain", value: u }
}

/** What Debezium meant, for events without the Connect schema: from the field's column type and the value. */
const inferred = (target: Target, u: unknown, options: Options | undefined, what: string): Canon => {
  const column = target.column
  if (
    (column._tag === "Decimal" || !target.accepts.has("object")) &&
    Predicate.isRecord(u) && "scale" in u && "value" in u && Object.keys(u).length === 2
  ) {
    return fromSchema(types.VariableScaleDecimal, u, what)
  }
  if (column._tag === "Decimal") {
    if (typeof u === "number") return decimalFromText(String(u), what)
    if (typeof u === "string") {
      if ((options?.decimalHandlingMode ?? "precise") !== "precise") return decimalFromText(u, what)
      if (!target.pinned) {
        throw new Reject(
          `${what}: a DECIMAL in precise mode (base64 bytes) without the Connect schema needs its scale: pin the ` +
            `field with ColumnType.Decimal(p, s) or give it in the fields option (Debezium.types.Decimal(s))`
        )
      }
      return fromSchema(types.Decimal(column.scale), u, what)
    }
  }
  if (column._tag === "Date" && (typeof u === "number" || typeof u === "bigint")) return days(u, what)
  if (
    (column._tag === "Date" || column._tag === "DateTime") && typeof u === "string" && /[zZ]$|[+-]\d\d:?\d\d$/.test(u)
  ) {
    return isoInstant(u, what)
  }
  if (column._tag === "DateTime" && (typeof u === "number" || typeof u === "bigint") && !target.accepts.has("number")) {
    throw new Reject(
      `${what}: an integer DATETIME without the Connect schema has no unit: give the field's type in the fields ` +
        `option (Debezium.types.Timestamp for milliseconds, MicroTimestamp, NanoTimestamp)`
    )
  }
  if (target.accepts.has("Uint8Array") && !target.accepts.has("string") && typeof u === "string") {
    return { _tag: "Bytes", base64: u }
  }
  if (
    typeof u === "string" && (column._tag === "Json" || (!target.accepts.has("string") && target.accepts.has("object")))
  ) {
    return { _tag: "Json", text: u } // io.debezium.data.Json: the document as text
  }
  if (typeof u === "number" && Number.isInteger(u)) return { _tag: "Integer", value: u }
  if (typeof u === "bigint") return { _tag: "Integer", value: u }
  return { _tag: "Plain", value: u }
}

const pad = (n: number, width: number) => String(n).padStart(width, "0")

const splitNs = (ns: bigint): { readonly date: Date; readonly subMsNs: number } => {
  let ms = ns / NS_PER_MS
  let rest = ns % NS_PER_MS
  if (rest < 0n) {
    rest += NS_PER_MS
    ms -= 1n
  }
  const date = new Date(Number(ms))
  return { date, subMsNs: Number(rest) }
}

const validDate = (ns: bigint, what: string): { readonly date: Date; readonly subMsNs: number } => {
  const parts = splitNs(ns)
  if (Number.isNaN(parts.date.getTime())) {
    throw new Reject(`${what}: outside the range of dates (${ns / NS_PER_MS} ms since the epoch)`)
  }
  return parts
}

const ymd = (d: Date, what: string): string => {
  const y = d.getUTCFullYear()
  if (y < 0 || y > 9999) throw new Reject(`${what}: year ${y} is outside 0000-9999`)
  return `${pad(y, 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`
}

const hms = (d: Date) => `${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`

/** `YYYY-MM-DD HH:MM:SS[.ffffff]`: StarRocks DATETIME text (microseconds; nanoseconds are cut). */
const wallText = (ns: bigint, what: string): string => {
  const { date, subMsNs } = validDate(ns, what)
  const micros = date.getUTCMilliseconds() * 1000 + Math.floor(subMsNs / 1000)
  return `${ymd(date, what)} ${hms(date)}${micros === 0 ? "" : `.${pad(micros, 6)}`}`
}

/** ISO-8601 in UTC, `Z`, with as many fraction digits as the value has (3, 6 or 9). */
const isoText = (ns: bigint, what: string): string => {
  const { date, subMsNs } = validDate(ns, what)
  const frac = subMsNs === 0
    ? pad(date.getUTCMilliseconds(), 3)
    : subMsNs % 1000 === 0
    ? pad(date.getUTCMilliseconds() * 1000 + subMsNs / 1000, 6)
    : pad(date.getUTCMilliseconds() * 1_000_000 + subMsNs, 9)
  return `${ymd(date, what)}T${hms(date)}.${frac}Z`
}

const timeText = (ns: bigint): string => {
  const neg = ns < 0n
  const abs = neg ? -ns : ns
  const micros = Number((abs / 1000n) % 1_000_000n)
  const seconds = Number(abs / 1_000_000_000n)
  const h = Math.floor(seconds / 3600)
  const text = `${pad(h, 2)}:${pad(Math.floor(seconds / 60) % 60, 2)}:${pad(seconds % 60, 2)}`
  return `${neg ? "-" : ""}${text}${micros === 0 ? "" : `.${pad(micros, 6)}`}`
}

const rawNumber = (raw: unknown, accepts: ReadonlySet<Repr>): unknown =>
  accepts.has("number") && typeof raw === "number"
    ? raw
    : accepts.has("bigint") && (typeof raw === "number" || typeof raw === "bigint")
    ? BigInt(raw)
    : raw

/** The value in the form the field's encoded side takes. */
const shape = (canon: Canon, target: Target, what: string): unknown => {
  const a = target.accepts
  const dateColumn = target.column._tag === "Date" || target.column._tag === "DateTime"
  switch (canon._tag) {
    case "Decimal": {
      const { scale, unscaled } = canon
      if (a.has("BigDecimal")) return BigDecimal.make(unscaled, scale)
      if (a.has("bigint") && (scale <= 0 || unscaled % 10n ** BigInt(scale) === 0n)) {
        return scale <= 0 ? unscaled * 10n ** BigInt(-scale) : unscaled / 10n ** BigInt(scale)
      }
      if (a.has("string")) return decimalText(unscaled, scale)
      if (a.has("number")) return Number(decimalText(unscaled, scale))
      return BigDecimal.make(unscaled, scale)
    }
    case "Days": {
      const ns = BigInt(canon.days) * NS_PER_DAY
      if (a.has("Date")) return validDate(ns, what).date
      if (a.has("DateTimeUtc")) return DateTime.unsafeMake(validDate(ns, what).date)
      if (a.has("string")) {
        return typeof canon.raw === "string" && !dateColumn
          ? canon.raw
          : ymd(validDate(ns, what).date, what)
      }
      if (a.has("number") || a.has("bigint")) return rawNumber(canon.raw, a)
      return validDate(ns, what).date
    }
    case "Instant": {
      if (a.has("Date")) return validDate(canon.ns, what).date
      if (a.has("DateTimeUtc")) return DateTime.unsafeMake(validDate(canon.ns, what).date)
      if (a.has("string")) {
        if (target.typeIsString && target.column._tag === "DateTime") return wallText(canon.ns, what)
        if (target.typeIsString && target.column._tag === "Date") {
          const text = wallText(canon.ns, what)
          return text.endsWith(" 00:00:00") ? text.slice(0, 10) : text
        }
        return canon.text ?? isoText(canon.ns, what)
      }
      if (a.has("number") || a.has("bigint")) return rawNumber(canon.raw, a)
      return validDate(canon.ns, what).date
    }
    case "TimeOfDay":
      if (a.has("string")) return timeText(canon.ns)
      if (a.has("number") || a.has("bigint")) return rawNumber(canon.raw, a)
      return timeText(canon.ns)
    case "Json": {
      if (a.has("string")) return canon.text
      try {
        return JSON.parse(canon.text)
      } catch {
        throw new Reject(`${what}: not JSON text: ${excerpt(canon.text)}`)
      }
    }
    case "Bytes":
      if (a.has("Uint8Array") && !a.has("string")) return new Uint8Array(fromBase64(canon.base64, what))
      return canon.base64
    case "Integer": {
      const v = canon.value
      if (typeof v === "number") {
        if (a.has("number")) return v
        if (a.has("bigint")) return BigInt(v)
        if (a.has("boolean") && (v === 0 || v === 1)) return v === 1 // MySQL TINYINT(1) (and BOOLEAN) arrives as an int8
        if (a.has("string")) return String(v)
        if (a.has("BigDecimal")) return BigDecimal.fromBigInt(BigInt(v))
        return v
      }
      if (a.has("bigint")) return v
      if (a.has("number") && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) {
        return Number(v)
      }
      if (a.has("string")) return String(v)
      if (a.has("BigDecimal")) return BigDecimal.fromBigInt(v)
      return v
    }
    case "Plain":
      return canon.value
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the decoder
// ---------------------------------------------------------------------------------------------------------------

/**
 * The Connect schema of each target field (by index) from an event's schema: one pass over the struct's fields,
 * remembered per fields array (events that share one parsed schema share the result).
 */
const makeFieldSchemas = (targets: ReadonlyArray<Target>) => {
  const index = new Map(targets.map((t, i) => [t.name, i]))
  const cache = new WeakMap<ReadonlyArray<FieldSchema>, ReadonlyArray<FieldSchema | undefined>>()
  return (
    schema: FieldSchema | undefined,
    part: "before" | "after" | undefined
  ): ReadonlyArray<FieldSchema | undefined> | undefined => {
    if (schema === undefined) return undefined
    const fields = part === undefined ? schema.fields : schema.fields?.find((f) => f.field === part)?.fields
    if (!Array.isArray(fields)) return undefined
    let out = cache.get(fields)
    if (out === undefined) {
      const byTarget = new Array<FieldSchema | undefined>(targets.length)
      for (const f of fields as ReadonlyArray<FieldSchema>) {
        const i = f.field === undefined ? undefined : index.get(f.field)
        if (i !== undefined) byTarget[i] = f
      }
      cache.set(fields, byTarget)
      out = byTarget
    }
    return out
  }
}

/** The row with each present field converted; every failure listed. */
const convertRow = (
  targets: ReadonlyArray<Target>,
  raw: Record<PropertyKey, unknown>,
  schemas: ReadonlyArray<FieldSchema | undefined> | undefined,
  options: Options | undefined,
  keep: (name: string, value: unknown) => boolean
): { readonly row: Record<string, unknown>; readonly issues: Array<ParseResult.ParseIssue> } => {
  const row: Record<string, unknown> = {}
  const issues: Array<ParseResult.ParseIssue> = []
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i]!
    if (!Object.prototype.hasOwnProperty.call(raw, t.name)) continue
    const value = raw[t.name]
    if (!keep(t.name, value)) continue
    if (value === null || value === undefined) {
      row[t.name] = value
      continue
    }
    try {
      const schema = schemas === undefined ? options?.fields?.[t.name] : schemas[i]
      const canon = schema === undefined ? inferred(t, value, options, t.name) : fromSchema(schema, value, t.name)
      row[t.name] = shape(canon, t, t.name)
    } catch (e) {
      if (!(e instanceof Reject)) throw e
      issues.push(new ParseResult.Pointer(t.name, raw, new ParseResult.Type(t.ast, value, e.reason)))
    }
  }
  return { row, issues }
}

/** `Effect.mapBoth` that keeps a synchronous result (an `Either`) synchronous, as the schema parser expects. */
const mapBoth = <X, Y, R>(
  self: Effect.Effect<X, ParseResult.ParseIssue, R>,
  onFailure: (issue: ParseResult.ParseIssue) => ParseResult.ParseIssue,
  onSuccess: (x: X) => Y
): Effect.Effect<Y, ParseResult.ParseIssue, R> =>
  Either.isEither(self)
    ? Either.mapBoth(self as Either.Either<X, ParseResult.ParseIssue>, { onLeft: onFailure, onRight: onSuccess })
    : Effect.mapBoth(self, { onFailure, onSuccess })

/**
 * The schema of a delete's key: the fields of the row schema, each optional (or only the key columns). For a
 * `Schema.Class` or a struct that renames keys, the fields of its encoded side (a plain object, the columns under
 * their names in the source table).
 */
const keyAST = (lit: AST.TypeLiteral, keyColumns: ReadonlyArray<string> | undefined): AST.AST =>
  keyColumns === undefined ? AST.partial(lit, { exact: true }) : AST.pick(lit, keyColumns)

/**
 * The decoder of one change event value into a `Change` of the row schema's type: `c` (create), `r` (snapshot
 * read) and `u` (update) are `Change.upsert(after)`, `d` is `Change.delete(before)`. Reads the change event
 * envelope (`before`, `after`, `op`, `source`), with or without Kafka Connect's `{ schema, payload }` wrapper, and
 * with `flattened` the row of `ExtractNewRecordState`.
 *
 * Not rows, and each a `ParseError` that says so: a tombstone (null value: skip it, as `changes` does), a truncate
 * (`op: "t"`), a logical decoding message (`op: "m"`), a delete without `before`. Values are converted by their
 * Connect schema (or, without one, by the field's column type and the `fields` option), then the row schema
 * decodes the row (a delete: the fields present, all optional), so a value that does not fit is a `ParseError`
 * whose path names the field (`["after"]["price"]`).
 *
 * Only decodes: encoding a `Change` back to an event is `Forbidden`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const envelope = <A, I, R>(
  Row: Schema.Schema<A, I, R>,
  options?: Options
): Schema.Schema<Change.Change<A>, unknown, R> => {
  const lit = findTypeLiteral(Row.ast)
  if (lit === undefined) {
    throw new TypeError("Debezium.envelope: rows must be described by a struct schema (Schema.Struct or Schema.Class)")
  }
  const targets = targetsOf(lit)
  const keyColumns = options?.key
  if (keyColumns !== undefined) {
    for (const k of keyColumns) {
      if (!targets.some((t) => t.name === k)) {
        throw new TypeError(`Debezium.envelope: key column '${k}' is not a field of the row schema`)
      }
    }
  }
  for (const name of Object.keys(options?.fields ?? {})) {
    if (!targets.some((t) => t.name === name)) {
      throw new TypeError(`Debezium.envelope: fields names '${name}', which is not a field of the row schema`)
    }
  }
  const keySchema = Schema.make<Partial<A>, unknown, R>(keyAST(lit, keyColumns))
  const fieldSchemas = makeFieldSchemas(targets)
  const decodeRow = ParseResult.decodeUnknown(Row)
  const decodeKey = ParseResult.decodeUnknown(keySchema)
  const flattened = options?.flattened !== undefined && options.flattened !== false
  const ChangeSchema = Schema.declare((u): u is Change.Change<A> => Change.isChange(u), {
    identifier: "Change"
  })

  const decode = (
    event: unknown,
    ast: AST.AST
  ): Effect.Effect<Change.Change<A>, ParseResult.ParseIssue, R> => {
    const fail = (message: string) => ParseResult.fail(new ParseResult.Type(ast, event, message))
    if (isTombstone(event)) {
      return fail("a tombstone (null value after a delete) is not a row change: skip it (Debezium.changes does)")
    }
    const { payload, schema } = unwrap(event)
    if (!Predicate.isRecord(payload)) return fail("a Debezium change event is an object")
    const op = opOf(payload, options)
    const where = () => `of table ${tableOf(event, options)} at ${positionOf(event, options)}`
    if (op === undefined) {
      return fail(
        flattened
          ? `not a row of ExtractNewRecordState: ${prefixOf(options)}op is not one of c, u, d, r, t`
          : "not a Debezium change event: no op (c, u, d, r, t or m)" +
            ("after" in payload || "before" in payload
              ? ""
              : "; for rows of ExtractNewRecordState pass flattened: true")
      )
    }
    if (op === "t") return fail(`a truncate event ${where()} is not a row change`)
    if (op === "m") return fail(`a logical decoding message ${where()} is not a row change`)
    const part: "before" | "after" | undefined = flattened ? undefined : op === "d" ? "before" : "after"
    const raw = part === undefined ? payload : payload[part]
    if (!Predicate.isRecord(raw)) {
      return fail(
        op === "d"
          ? `a delete ${where()} without before (a PostgreSQL table without a primary key and REPLICA IDENTITY ` +
            `DEFAULT or NOTHING): the deleted row is unknown; set REPLICA IDENTITY FULL`
          : `an event with op ${op} ${where()} without after`
      )
    }
    const schemas = fieldSchemas(schema, part)
    const at = (issue: ParseResult.ParseIssue): ParseResult.ParseIssue =>
      part === undefined ? issue : new ParseResult.Pointer(part, payload, issue)
    if (op === "d") {
      const keep = keyColumns === undefined
        ? (_: string, v: unknown) => v !== null && v !== undefined
        : (name: string) => keyColumns.includes(name)
      const { issues, row } = convertRow(targets, raw, schemas, options, keep)
      if (Arr.isNonEmptyReadonlyArray(issues)) return ParseResult.fail(at(new ParseResult.Composite(lit, raw, issues)))
      return mapBoth(decodeKey(row, { errors: "all" }), at, (key) => Change.delete<A>(key))
    }
    const { issues, row } = convertRow(targets, raw, schemas, options, () => true)
    if (Arr.isNonEmptyReadonlyArray(issues)) return ParseResult.fail(at(new ParseResult.Composite(lit, raw, issues)))
    return mapBoth(decodeRow(row, { onExcessProperty: "ignore", errors: "all" }), at, (a) => Change.upsert(a))
  }

  return Schema.transformOrFail(Schema.Unknown, ChangeSchema, {
    strict: true,
    decode: (event, _, ast) => decode(event, ast),
    encode: (change, _, ast) =>
      ParseResult.fail(new ParseResult.Forbidden(ast, change, "Debezium.envelope only decodes change events"))
  }).annotations({ identifier: "DebeziumEnvelope" })
}

/**
 * @since 0.2.0
 * @category models
 */
export interface StreamOptions extends Options {
  /** PostgreSQL logical decoding messages (`op: "m"`): a `DebeziumError` (the default) or skipped. */
  readonly messages?: "fail" | "skip" | undefined
}

/**
 * Decodes a stream of change event values (parsed JSON, one per Kafka record or JetStream message, in source
 * order) into `Change` values: tombstones are skipped, a truncate fails the stream with a `DebeziumError` naming the
 * table and the position (so is a logical decoding message unless `messages: "skip"`), every other event decodes
 * with `envelope(Row, options)` (a bad value fails the stream with its `ParseError`).
 *
 * @since 0.2.0
 * @category combinators
 */
export const changes = <A, I, R>(Row: Schema.Schema<A, I, R>, options?: StreamOptions) => {
  type Failure = DebeziumError | ParseResult.ParseError
  type Result = Exit.Exit<Change.Change<A>, Option.Option<Failure>>
  const decode = ParseResult.decodeUnknown(envelope(Row, options))
  /** A truncate or a message as the stream's error; `skip` for a message with `messages: "skip"`. */
  const notARow = (event: unknown): DebeziumError | "skip" | undefined => {
    const { payload } = unwrap(event)
    const op = Predicate.isRecord(payload) ? opOf(payload, options) : undefined
    if (op === "m" && options?.messages === "skip") return "skip"
    return op === "t" || op === "m"
      ? new DebeziumError({
        reason: op === "t" ? "truncate" : "message",
        table: tableOf(event, options),
        position: positionOf(event, options)
      })
      : undefined
  }
  // Decodes a chunk up to its first failure (the changes before it are still emitted), synchronously while the
  // row schema decodes synchronously.
  const decodeChunk = (chunk: Chunk.Chunk<unknown>): Effect.Effect<Chunk.Chunk<Result>, never, R> => {
    const events = Chunk.toReadonlyArray(chunk)
    const out: Array<Result> = []
    const done = () => Effect.succeed(Chunk.unsafeFromArray(out))
    const settle = (r: Either.Either<Change.Change<A>, ParseResult.ParseIssue>): boolean => {
      if (Either.isRight(r)) {
        out.push(Exit.succeed(r.right))
        return true
      }
      out.push(Exit.fail(Option.some(ParseResult.parseError(r.left))))
      return false
    }
    const loop = (from: number): Effect.Effect<Chunk.Chunk<Result>, never, R> => {
      for (let i = from; i < events.length; i++) {
        const event = events[i]
        if (isTombstone(event)) continue
        const stop = notARow(event)
        if (stop === "skip") continue
        if (stop !== undefined) {
          out.push(Exit.fail(Option.some(stop)))
          return done()
        }
        const r = decode(event)
        if (Either.isEither(r)) {
          if (!settle(r as Either.Either<Change.Change<A>, ParseResult.ParseIssue>)) return done()
          continue
        }
        return Effect.flatMap(Effect.either(r), (e) => settle(e) ? loop(i + 1) : done())
      }
      return done()
    }
    return loop(0)
  }
  return <E, R2>(
    self: Stream.Stream<unknown, E, R2>
  ): Stream.Stream<Change.Change<A>, E | Failure, R | R2> =>
    self.pipe(Stream.mapChunksEffect(decodeChunk), Stream.flattenExitOption)
}
