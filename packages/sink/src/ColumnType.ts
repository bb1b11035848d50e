/**
 * StarRocks column types: a model, a parser for type text (`VARCHAR(64)`, `DECIMAL(10,2)`, `ARRAY<INT>`,
 * `MAP<VARCHAR(8),INT>`, `STRUCT<a INT, b VARCHAR(10)>`, information_schema `COLUMN_TYPE`s such as `int(11)` or
 * `bigint(20) unsigned`), Schema annotations that pin a field's StarRocks type, and the default mapping from a
 * Schema AST.
 *
 * @since 0.1.0
 */
import { Either, Option, Schema, SchemaAST as AST } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export type ColumnType =
  | { readonly _tag: "Boolean" }
  | { readonly _tag: "TinyInt" }
  | { readonly _tag: "SmallInt" }
  | { readonly _tag: "Int" }
  | { readonly _tag: "BigInt" }
  | { readonly _tag: "LargeInt" }
  | { readonly _tag: "Float" }
  | { readonly _tag: "Double" }
  | { readonly _tag: "Decimal"; readonly precision: number; readonly scale: number }
  | { readonly _tag: "Char"; readonly length: number }
  | { readonly _tag: "Varchar"; readonly length: number }
  | { readonly _tag: "String" }
  | { readonly _tag: "Date" }
  | { readonly _tag: "DateTime" }
  | { readonly _tag: "Json" }
  | { readonly _tag: "Array"; readonly element: ColumnType }
  | { readonly _tag: "Map"; readonly key: ColumnType; readonly value: ColumnType }
  | { readonly _tag: "Struct"; readonly fields: ReadonlyArray<{ readonly name: string; readonly type: ColumnType }> }
  /** Types that cannot be loaded from a plain value (HLL, BITMAP, PERCENTILE, VARBINARY, ...). */
  | { readonly _tag: "Other"; readonly name: string }

/**
 * @since 0.1.0
 * @category models
 */
export type IntegerTag = "TinyInt" | "SmallInt" | "Int" | "BigInt" | "LargeInt"

/** Byte limit of STRING (= VARCHAR(65533)). @since 0.1.0 */
export const STRING_MAX_BYTES = 65533
/** Byte limit of VARCHAR. @since 0.1.0 */
export const VARCHAR_MAX_BYTES = 1048576

/**
 * Inclusive integer ranges per integer type.
 *
 * @since 0.1.0
 * @category constants
 */
export const integerRange: Readonly<Record<IntegerTag, readonly [bigint, bigint]>> = {
  TinyInt: [-128n, 127n],
  SmallInt: [-32768n, 32767n],
  Int: [-2147483648n, 2147483647n],
  BigInt: [-(2n ** 63n), 2n ** 63n - 1n],
  LargeInt: [-(2n ** 127n), 2n ** 127n - 1n]
}

// ---------------------------------------------------------------------------------------------------------------
// constructors
// ---------------------------------------------------------------------------------------------------------------

const simple = <T extends ColumnType["_tag"]>(tag: T) => ({ _tag: tag }) as Extract<ColumnType, { _tag: T }>

/** @since 0.1.0 */
export const boolean: ColumnType = simple("Boolean")
/** @since 0.1.0 */
export const tinyInt: ColumnType = simple("TinyInt")
/** @since 0.1.0 */
export const smallInt: ColumnType = simple("SmallInt")
/** @since 0.1.0 */
export const int: ColumnType = simple("Int")
/** @since 0.1.0 */
export const bigInt: ColumnType = simple("BigInt")
/** @since 0.1.0 */
export const largeInt: ColumnType = simple("LargeInt")
/** @since 0.1.0 */
export const float: ColumnType = simple("Float")
/** @since 0.1.0 */
export const double: ColumnType = simple("Double")
/** @since 0.1.0 */
export const string: ColumnType = simple("String")
/** @since 0.1.0 */
export const date: ColumnType = simple("Date")
/** @since 0.1.0 */
export const dateTime: ColumnType = simple("DateTime")
/** @since 0.1.0 */
export const json: ColumnType = simple("Json")
/** @since 0.1.0 */
export const decimal = (precision: number, scale: number): ColumnType => {
  if (!Number.isInteger(precision) || precision < 1 || precision > 38) {
    throw new RangeError(`DECIMAL precision must be 1..38, got ${precision}`)
  }
  if (!Number.isInteger(scale) || scale < 0 || scale > precision) {
    throw new RangeError(`DECIMAL scale must be 0..${precision}, got ${scale}`)
  }
  return { _tag: "Decimal", precision, scale }
}
/** @since 0.1.0 */
export const varchar = (length: number): ColumnType => ({ _tag: "Varchar", length })
/** @since 0.1.0 */
export const char = (length: number): ColumnType => ({ _tag: "Char", length })
/** @since 0.1.0 */
export const array = (element: ColumnType): ColumnType => ({ _tag: "Array", element })
/** @since 0.1.0 */
export const map = (key: ColumnType, value: ColumnType): ColumnType => ({ _tag: "Map", key, value })
/** @since 0.1.0 */
export const struct = (fields: ReadonlyArray<{ readonly name: string; readonly type: ColumnType }>): ColumnType => ({
  _tag: "Struct",
  fields
})

/**
 * @since 0.1.0
 * @category guards
 */
export const isInteger = (t: ColumnType): t is Extract<ColumnType, { _tag: IntegerTag }> =>
  t._tag === "TinyInt" || t._tag === "SmallInt" || t._tag === "Int" || t._tag === "BigInt" || t._tag === "LargeInt"

/**
 * @since 0.1.0
 * @category guards
 */
export const isStringLike = (t: ColumnType): boolean => t._tag === "String" || t._tag === "Varchar" || t._tag === "Char"

// ---------------------------------------------------------------------------------------------------------------
// printing
// ---------------------------------------------------------------------------------------------------------------

/**
 * StarRocks DDL spelling, e.g. `DECIMAL(10,2)`, `ARRAY<VARCHAR(8)>`.
 *
 * @since 0.1.0
 * @category printing
 */
export const format = (t: ColumnType): string => {
  switch (t._tag) {
    case "Boolean":
      return "BOOLEAN"
    case "TinyInt":
      return "TINYINT"
    case "SmallInt":
      return "SMALLINT"
    case "Int":
      return "INT"
    case "BigInt":
      return "BIGINT"
    case "LargeInt":
      return "LARGEINT"
    case "Float":
      return "FLOAT"
    case "Double":
      return "DOUBLE"
    case "Decimal":
      return `DECIMAL(${t.precision},${t.scale})`
    case "Char":
      return `CHAR(${t.length})`
    case "Varchar":
      return `VARCHAR(${t.length})`
    case "String":
      return "STRING"
    case "Date":
      return "DATE"
    case "DateTime":
      return "DATETIME"
    case "Json":
      return "JSON"
    case "Array":
      return `ARRAY<${format(t.element)}>`
    case "Map":
      return `MAP<${format(t.key)},${format(t.value)}>`
    case "Struct":
      return `STRUCT<${t.fields.map((f) => `${f.name} ${format(f.type)}`).join(", ")}>`
    case "Other":
      return t.name.toUpperCase()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// parsing
// ---------------------------------------------------------------------------------------------------------------

class Parser {
  pos = 0
  constructor(readonly text: string) {}
  ws() {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++
  }
  peek(): string | undefined {
    this.ws()
    return this.text[this.pos]
  }
  eat(c: string): boolean {
    if (this.peek() === c) {
      this.pos++
      return true
    }
    return false
  }
  expect(c: string) {
    if (!this.eat(c)) this.fail(`expected '${c}'`)
  }
  fail(reason: string): never {
    throw new Error(`${reason} at position ${this.pos} in '${this.text}'`)
  }
  word(): string {
    this.ws()
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.pos))
    if (m === null) this.fail("expected a type name")
    this.pos += m[0].length
    return m[0]
  }
  fieldName(): string {
    this.ws()
    if (this.text[this.pos] === "`") {
      const end = this.text.indexOf("`", this.pos + 1)
      if (end < 0) this.fail("unterminated back-quoted name")
      const name = this.text.slice(this.pos + 1, end)
      this.pos = end + 1
      return name
    }
    return this.word()
  }
  num(): number {
    this.ws()
    const m = /^\d+/.exec(this.text.slice(this.pos))
    if (m === null) this.fail("expected a number")
    this.pos += m[0].length
    return Number(m[0])
  }
  args(): Array<number> {
    const out: Array<number> = []
    if (!this.eat("(")) return out
    out.push(this.num())
    while (this.eat(",")) out.push(this.num())
    this.expect(")")
    return out
  }
  type(): ColumnType {
    const name = this.word().toLowerCase()
    switch (name) {
      case "array": {
        this.expect("<")
        const element = this.type()
        this.expect(">")
        return array(element)
      }
      case "map": {
        this.expect("<")
        const key = this.type()
        this.expect(",")
        const value = this.type()
        this.expect(">")
        return map(key, value)
      }
      case "struct":
      case "row": {
        this.expect("<")
        const fields: Array<{ name: string; type: ColumnType }> = []
        do {
          const fname = this.fieldName()
          this.eat(":")
          fields.push({ name: fname, type: this.type() })
        } while (this.eat(","))
        this.expect(">")
        return struct(fields)
      }
    }
    const args = this.args()
    // trailing modifiers (information_schema / MySQL spelling)
    let unsigned = false
    for (;;) {
      const save = this.pos
      this.ws()
      const m = /^(unsigned|signed|zerofill)\b/i.exec(this.text.slice(this.pos))
      if (m === null) {
        this.pos = save
        break
      }
      if (m[1]!.toLowerCase() === "unsigned") unsigned = true
      this.pos += m[0].length
    }
    return fromName(name, args, unsigned) ?? this.fail(`unknown type '${name}'`)
  }
}

const fromName = (name: string, args: ReadonlyArray<number>, unsigned: boolean): ColumnType | undefined => {
  switch (name) {
    case "boolean":
    case "bool":
      return boolean
    case "tinyint":
      return unsigned ? smallInt : tinyInt
    case "smallint":
      return unsigned ? int : smallInt
    case "mediumint":
    case "int":
    case "integer":
      return unsigned ? bigInt : int
    case "bigint":
      return unsigned ? largeInt : bigInt
    case "largeint":
      return largeInt
    case "float":
      return float
    case "double":
    case "real":
      return double
    case "decimal":
    case "decimalv2":
    case "decimalv3":
    case "decimal32":
    case "decimal64":
    case "decimal128":
    case "numeric":
      return decimal(args[0] ?? 10, args[1] ?? 0)
    case "char":
      return char(args[0] ?? 1)
    case "varchar":
      return varchar(args[0] ?? STRING_MAX_BYTES)
    case "string":
    case "text":
    case "tinytext":
    case "mediumtext":
    case "longtext":
      return string
    case "date":
      return date
    case "datetime":
    case "timestamp":
      return dateTime
    case "json":
    case "jsonb":
      return json
    case "hll":
    case "bitmap":
    case "percentile":
    case "varbinary":
    case "binary":
    case "blob":
    case "time":
    case "year":
      return { _tag: "Other", name }
  }
  return undefined
}

/**
 * Parses StarRocks type text (case-insensitive), including information_schema `COLUMN_TYPE` spellings.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (text: string): Either.Either<ColumnType, string> => {
  try {
    const p = new Parser(text)
    const t = p.type()
    p.ws()
    if (p.pos !== text.length) p.fail("unexpected text")
    return Either.right(t)
  } catch (e) {
    return Either.left(`cannot parse column type: ${(e as Error).message}`)
  }
}

/**
 * @since 0.1.0
 * @category parsing
 */
export const unsafeParse = (text: string): ColumnType =>
  Either.getOrThrowWith(parse(text), (message) => new TypeError(message))

/**
 * One row of `information_schema.COLUMNS` (the columns StarRocks and MySQL/MariaDB both have).
 *
 * @since 0.1.0
 * @category models
 */
export interface InformationSchemaColumn {
  readonly dataType: string
  readonly columnType?: string | null | undefined
  readonly numericPrecision?: number | null | undefined
  readonly numericScale?: number | null | undefined
  readonly characterMaximumLength?: number | null | undefined
  /** StarRocks only: NULL for BOOLEAN, which is reported as `tinyint`. */
  readonly columnSize?: number | null | undefined
}

/**
 * The column type of an information_schema row: `COLUMN_TYPE` when it parses (it carries lengths, precision and
 * element types), else `DATA_TYPE` with the numeric/character columns. `tinyint(1)` (BOOLEAN on StarRocks and
 * MariaDB) is BOOLEAN.
 *
 * @since 0.1.0
 * @category parsing
 */
export const fromInformationSchema = (row: InformationSchemaColumn): ColumnType => {
  const dataType = row.dataType.trim().toLowerCase()
  const columnType = (row.columnType ?? "").trim().toLowerCase()
  if (dataType === "tinyint" || dataType === "boolean") {
    if (dataType === "boolean" || /^tinyint\(1\)/.test(columnType)) return boolean
    if (row.columnSize === null && columnType === "") return boolean
  }
  if (dataType === "bigint unsigned") return largeInt
  if (columnType !== "") {
    const parsed = parse(columnType)
    if (Either.isRight(parsed)) {
      const t = parsed.right
      // lengths: prefer the numeric columns when COLUMN_TYPE carried none
      if (t._tag === "Varchar" && !/\(/.test(columnType) && row.characterMaximumLength != null) {
        return varchar(Number(row.characterMaximumLength))
      }
      return t
    }
  }
  const base = /^[a-z0-9_]+/.exec(dataType)?.[0] ?? dataType
  switch (base) {
    case "decimal":
    case "decimalv2":
    case "decimal32":
    case "decimal64":
    case "decimal128":
    case "numeric":
      return decimal(Number(row.numericPrecision ?? 10), Number(row.numericScale ?? 0))
    case "varchar":
      return varchar(Number(row.characterMaximumLength ?? STRING_MAX_BYTES))
    case "char":
      return char(Number(row.characterMaximumLength ?? 1))
  }
  const parsed = parse(dataType)
  return Either.isRight(parsed) ? parsed.right : { _tag: "Other", name: dataType }
}

// ---------------------------------------------------------------------------------------------------------------
// annotations
// ---------------------------------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category annotations
 */
export const ColumnTypeId: unique symbol = Symbol.for("@effect-starrocks/sink/ColumnType")

/**
 * Pins the StarRocks type of a field: `ColumnType.annotate(Schema.Number, "INT")`.
 *
 * @since 0.1.0
 * @category annotations
 */
export const annotate = <S extends Schema.Annotable.All>(schema: S, type: ColumnType | string): S => {
  const t = typeof type === "string" ? unsafeParse(type) : type
  return schema.annotations({ [ColumnTypeId]: t }) as S
}

/**
 * The pinned StarRocks type of a schema, if any. The annotation key is the global symbol
 * `Symbol.for("@effect-starrocks/sink/ColumnType")`, and its value may be a `ColumnType` or a type string
 * (`"BIGINT"`, `"DECIMAL(10,2)"`), so a library can pin types without depending on this package.
 *
 * @since 0.1.0
 * @category annotations
 */
export const getAnnotation = (ast: AST.AST): Option.Option<ColumnType> =>
  Option.map(
    AST.getAnnotation<ColumnType | string>(ast, ColumnTypeId),
    (t) => (typeof t === "string" ? unsafeParse(t) : t)
  )

/** A JS boolean into BOOLEAN. @since 0.1.0 */
export const Boolean = annotate(Schema.Boolean, boolean)
/** A JS number into TINYINT (integral, range-checked). @since 0.1.0 */
export const TinyInt = annotate(Schema.Number, tinyInt)
/** A JS number into SMALLINT. @since 0.1.0 */
export const SmallInt = annotate(Schema.Number, smallInt)
/** A JS number into INT. @since 0.1.0 */
export const Int = annotate(Schema.Number, int)
/** A JS number (integral) or bigint into BIGINT (a bigint covers the full range exactly). @since 0.1.0 */
export const BigInt = annotate(Schema.Union(Schema.Number, Schema.BigIntFromSelf), bigInt)
/** A JS bigint into BIGINT. @since 0.1.0 */
export const BigIntBig = annotate(Schema.BigIntFromSelf, bigInt)
/** A JS bigint (or integral number) into LARGEINT. @since 0.1.0 */
export const LargeInt = annotate(Schema.Union(Schema.BigIntFromSelf, Schema.Number), largeInt)
/** A JS number into FLOAT. @since 0.1.0 */
export const Float = annotate(Schema.Number, float)
/** A JS number into DOUBLE. @since 0.1.0 */
export const Double = annotate(Schema.Number, double)
/** A `BigDecimal` into DECIMAL(p,s), exact (too many digits is an error, never rounded). @since 0.1.0 */
export const Decimal = (precision: number, scale: number) =>
  annotate(Schema.BigDecimalFromSelf, decimal(precision, scale))
/** A decimal string (`"-12.50"`) into DECIMAL(p,s), exact. @since 0.1.0 */
export const DecimalString = (precision: number, scale: number) => annotate(Schema.String, decimal(precision, scale))
/** A JS `Date` into DATE (the calendar day in the encoder's time zone). @since 0.1.0 */
export const Date = annotate(Schema.DateFromSelf, date)
/** A JS `Date` into DATETIME (wall clock in the encoder's time zone). @since 0.1.0 */
export const DateTime = annotate(Schema.DateFromSelf, dateTime)
/** A string into VARCHAR(n) (UTF-8 byte length checked). @since 0.1.0 */
export const Varchar = (length: number) => annotate(Schema.String, varchar(length))
/** A string into CHAR(n). @since 0.1.0 */
export const Char = (length: number) => annotate(Schema.String, char(length))
/** A string into STRING (65533 bytes). @since 0.1.0 */
export const String = annotate(Schema.String, string)
/** Any JSON-compatible value into a JSON column (a JS string is taken as JSON text). @since 0.1.0 */
export const Json = annotate(Schema.Unknown, json)
/** An array into ARRAY<T>. @since 0.1.0 */
export const Array = <A, I, R>(element: Schema.Schema<A, I, R>, type?: ColumnType | string) => {
  const s = Schema.Array(element)
  return type === undefined ? s : annotate(s, type)
}

// ---------------------------------------------------------------------------------------------------------------
// default mapping
// ---------------------------------------------------------------------------------------------------------------

/**
 * The StarRocks type of a field and whether it may be NULL, from its Schema AST (type side).
 *
 * @since 0.1.0
 * @category models
 */
export interface Resolved {
  readonly type: ColumnType
  readonly nullable: boolean
  /** True when the type came from an annotation rather than the default mapping. */
  readonly annotated: boolean
}

const isNullish = (ast: AST.AST): boolean =>
  ast._tag === "UndefinedKeyword" || ast._tag === "VoidKeyword" ||
  (ast._tag === "Literal" && ast.literal === null)

/**
 * The default mapping: Number → DOUBLE (`Schema.Int` → BIGINT), String → STRING, Boolean → BOOLEAN, bigint →
 * LARGEINT, Date / DateTime.Utc → DATETIME, BigDecimal → DECIMAL(38,9), Array → ARRAY<T>, records, structs,
 * tuples, unions of different kinds and Unknown → JSON; `NullOr` / `UndefinedOr` / optional → nullable. An
 * annotation (`ColumnType.annotate`) anywhere on the way wins.
 *
 * @since 0.1.0
 * @category mapping
 */
export const resolve = (ast: AST.AST): Resolved => {
  const ann = getAnnotation(ast)
  if (Option.isSome(ann)) {
    return { type: ann.value, nullable: nullableOf(ast), annotated: true }
  }
  switch (ast._tag) {
    case "Refinement": {
      if (AST.getIdentifierAnnotation(ast).pipe(Option.getOrUndefined) === "Int") {
        const inner = resolve(ast.from)
        return inner.annotated ? inner : { ...inner, type: bigInt }
      }
      return resolve(ast.from)
    }
    case "Transformation":
      return resolve(ast.to)
    case "Suspend":
      return resolve(ast.f())
    case "Union": {
      const rest = ast.types.filter((t) => !isNullish(t))
      const nullable = rest.length !== ast.types.length
      if (rest.length === 0) return { type: json, nullable: true, annotated: false }
      const resolved = rest.map(resolve)
      const first = resolved[0]!
      const same = resolved.every((r) => format(r.type) === format(first.type))
      return {
        type: same ? first.type : json,
        nullable: nullable || resolved.some((r) => r.nullable),
        annotated: same && first.annotated
      }
    }
    case "Literal":
      return {
        type: typeof ast.literal === "string"
          ? string
          : typeof ast.literal === "number"
          ? double
          : typeof ast.literal === "boolean"
          ? boolean
          : typeof ast.literal === "bigint"
          ? largeInt
          : json,
        nullable: ast.literal === null,
        annotated: false
      }
    case "StringKeyword":
    case "TemplateLiteral":
      return { type: string, nullable: false, annotated: false }
    case "NumberKeyword":
      return { type: double, nullable: false, annotated: false }
    case "BooleanKeyword":
      return { type: boolean, nullable: false, annotated: false }
    case "BigIntKeyword":
      return { type: largeInt, nullable: false, annotated: false }
    case "Enums": {
      const allNumbers = ast.enums.every(([, v]) => typeof v === "number")
      return { type: allNumbers ? double : string, nullable: false, annotated: false }
    }
    case "TupleType": {
      if (ast.elements.length === 0 && ast.rest.length === 1) {
        const el = resolve(ast.rest[0]!.type)
        return { type: array(el.type), nullable: false, annotated: false }
      }
      return { type: json, nullable: false, annotated: false }
    }
    case "Declaration": {
      const tc = AST.getTypeConstructorAnnotation(ast).pipe(Option.getOrUndefined)
      switch (tc?._tag) {
        case "Date":
        case "effect/DateTime.Utc":
        case "effect/DateTime.Zoned":
          return { type: dateTime, nullable: false, annotated: false }
        case "effect/BigDecimal":
          return { type: decimal(38, 9), nullable: false, annotated: false }
      }
      return { type: json, nullable: false, annotated: false }
    }
    case "UndefinedKeyword":
    case "VoidKeyword":
    case "UnknownKeyword":
    case "AnyKeyword":
      return { type: json, nullable: true, annotated: false }
    default:
      return { type: json, nullable: false, annotated: false }
  }
}

const nullableOf = (ast: AST.AST): boolean => {
  switch (ast._tag) {
    case "Union":
      return ast.types.some((t) => isNullish(t) || nullableOf(t))
    case "Refinement":
      return nullableOf(ast.from)
    case "Transformation":
      return nullableOf(ast.to)
    case "Suspend":
      return nullableOf(ast.f())
    default:
      return isNullish(ast) || ast._tag === "UnknownKeyword" || ast._tag === "AnyKeyword"
  }
}

/**
 * A field of a struct schema, resolved.
 *
 * @since 0.1.0
 * @category models
 */
export interface Field extends Resolved {
  readonly name: string
}

/**
 * The fields of a struct schema (a `Schema.Struct`, a `Schema.Class`, or either refined/transformed), in order.
 * Throws a TypeError when the schema is not a struct.
 *
 * @since 0.1.0
 * @category mapping
 */
export const fieldsOf = (schema: { readonly ast: AST.AST }): ReadonlyArray<Field> => {
  const root = schema.ast
  const lit = findTypeLiteral(root)
  if (lit === undefined) {
    throw new TypeError("StarRocks rows must be described by a struct schema (Schema.Struct or Schema.Class)")
  }
  return lit.propertySignatures.flatMap((ps) => {
    if (typeof ps.name !== "string") return []
    const r = resolve(ps.type)
    return [{ name: ps.name, type: r.type, annotated: r.annotated, nullable: r.nullable || ps.isOptional }]
  })
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
      return (ast.to._tag === "TypeLiteral" ? ast.to : undefined) ?? findTypeLiteral(ast.to) ??
        findTypeLiteral(ast.from)
    default:
      return undefined
  }
}
