/**
 * The `columns` and `where` headers: a small SQL expression language (column references, literals, comparisons,
 * `and`/`or`/`not`, `IS [NOT] NULL`, `[NOT] IN (...)`, `+ - * /`, and a few functions).
 *
 * @internal
 */

export type Expr =
  | { readonly _tag: "Ref"; readonly name: string }
  | { readonly _tag: "Lit"; readonly value: Scalar }
  | { readonly _tag: "Bin"; readonly op: string; readonly left: Expr; readonly right: Expr }
  | { readonly _tag: "Not"; readonly expr: Expr }
  | { readonly _tag: "Neg"; readonly expr: Expr }
  | { readonly _tag: "IsNull"; readonly expr: Expr; readonly negate: boolean }
  | { readonly _tag: "In"; readonly expr: Expr; readonly list: ReadonlyArray<Expr>; readonly negate: boolean }
  | { readonly _tag: "Call"; readonly fn: string; readonly args: ReadonlyArray<Expr> }

/** Values during evaluation. Strings, numbers, bigints, booleans, NULL; arrays are passed through. */
export type Scalar = null | boolean | number | bigint | string | ReadonlyArray<unknown>

export class ExprSyntaxError extends Error {}

type Tok =
  | { readonly t: "id"; readonly v: string; readonly quoted: boolean }
  | { readonly t: "num"; readonly v: string }
  | { readonly t: "str"; readonly v: string }
  | { readonly t: "op"; readonly v: string }

const tokenize = (src: string): Array<Tok> => {
  const out: Array<Tok> = []
  let i = 0
  while (i < src.length) {
    const c = src[i]!
    if (/\s/.test(c)) {
      i++
      continue
    }
    if (c === "'" || c === "\"") {
      let j = i + 1
      let v = ""
      for (;;) {
        if (j >= src.length) throw new ExprSyntaxError(`unterminated string literal in '${src}'`)
        const d = src[j]!
        if (d === "\\" && j + 1 < src.length) {
          v += src[j + 1]
          j += 2
          continue
        }
        if (d === c) {
          if (src[j + 1] === c) {
            v += c
            j += 2
            continue
          }
          break
        }
        v += d
        j++
      }
      out.push({ t: "str", v })
      i = j + 1
      continue
    }
    if (c === "`") {
      const j = src.indexOf("`", i + 1)
      if (j < 0) throw new ExprSyntaxError(`unterminated identifier in '${src}'`)
      out.push({ t: "id", v: src.slice(i + 1, j), quoted: true })
      i = j + 1
      continue
    }
    const num = /^(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/.exec(src.slice(i))
    if (num !== null) {
      out.push({ t: "num", v: num[0] })
      i += num[0].length
      continue
    }
    const id = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(src.slice(i))
    if (id !== null) {
      out.push({ t: "id", v: id[0], quoted: false })
      i += id[0].length
      continue
    }
    const two = src.slice(i, i + 2)
    if (two === "<=" || two === ">=" || two === "!=" || two === "<>" || two === "==") {
      out.push({ t: "op", v: two === "==" ? "=" : two })
      i += 2
      continue
    }
    if ("=<>(),+-*/%".includes(c)) {
      out.push({ t: "op", v: c })
      i++
      continue
    }
    throw new ExprSyntaxError(`unexpected character '${c}' in '${src}'`)
  }
  return out
}

const kw = (tok: Tok | undefined, word: string) =>
  tok !== undefined && tok.t === "id" && !tok.quoted &&
  tok.v.toLowerCase() === word

class Parser {
  pos = 0
  constructor(readonly toks: ReadonlyArray<Tok>, readonly src: string) {}
  peek(): Tok | undefined {
    return this.toks[this.pos]
  }
  isOp(v: string) {
    const t = this.peek()
    return t !== undefined && t.t === "op" && t.v === v
  }
  expectOp(v: string) {
    if (!this.isOp(v)) throw new ExprSyntaxError(`expected '${v}' in '${this.src}'`)
    this.pos++
  }
  parseExpr(): Expr {
    return this.parseOr()
  }
  parseOr(): Expr {
    let left = this.parseAnd()
    while (kw(this.peek(), "or") || this.isOp("||")) {
      this.pos++
      left = { _tag: "Bin", op: "or", left, right: this.parseAnd() }
    }
    return left
  }
  parseAnd(): Expr {
    let left = this.parseNot()
    while (kw(this.peek(), "and")) {
      this.pos++
      left = { _tag: "Bin", op: "and", left, right: this.parseNot() }
    }
    return left
  }
  parseNot(): Expr {
    if (kw(this.peek(), "not")) {
      this.pos++
      return { _tag: "Not", expr: this.parseNot() }
    }
    return this.parseCmp()
  }
  parseCmp(): Expr {
    const left = this.parseAdd()
    const t = this.peek()
    if (t !== undefined && t.t === "op" && ["=", "!=", "<>", "<", "<=", ">", ">="].includes(t.v)) {
      this.pos++
      return { _tag: "Bin", op: t.v === "<>" ? "!=" : t.v, left, right: this.parseAdd() }
    }
    if (kw(t, "is")) {
      this.pos++
      let negate = false
      if (kw(this.peek(), "not")) {
        negate = true
        this.pos++
      }
      if (!kw(this.peek(), "null")) throw new ExprSyntaxError(`expected NULL after IS in '${this.src}'`)
      this.pos++
      return { _tag: "IsNull", expr: left, negate }
    }
    let negate = false
    if (kw(t, "not") && kw(this.toks[this.pos + 1], "in")) {
      negate = true
      this.pos++
    }
    if (kw(this.peek(), "in")) {
      this.pos++
      this.expectOp("(")
      const list: Array<Expr> = [this.parseExpr()]
      while (this.isOp(",")) {
        this.pos++
        list.push(this.parseExpr())
      }
      this.expectOp(")")
      return { _tag: "In", expr: left, list, negate }
    }
    return left
  }
  parseAdd(): Expr {
    let left = this.parseMul()
    while (this.isOp("+") || this.isOp("-")) {
      const op = (this.peek() as { v: string }).v
      this.pos++
      left = { _tag: "Bin", op, left, right: this.parseMul() }
    }
    return left
  }
  parseMul(): Expr {
    let left = this.parseUnary()
    while (this.isOp("*") || this.isOp("/") || this.isOp("%")) {
      const op = (this.peek() as { v: string }).v
      this.pos++
      left = { _tag: "Bin", op, left, right: this.parseUnary() }
    }
    return left
  }
  parseUnary(): Expr {
    if (this.isOp("-")) {
      this.pos++
      return { _tag: "Neg", expr: this.parseUnary() }
    }
    if (this.isOp("+")) {
      this.pos++
      return this.parseUnary()
    }
    return this.parsePrimary()
  }
  parsePrimary(): Expr {
    const t = this.peek()
    if (t === undefined) throw new ExprSyntaxError(`unexpected end of '${this.src}'`)
    this.pos++
    if (t.t === "num") {
      const v = /^[0-9]+$/.test(t.v) ? (t.v.length > 15 ? BigInt(t.v) : Number(t.v)) : Number(t.v)
      return { _tag: "Lit", value: v }
    }
    if (t.t === "str") return { _tag: "Lit", value: t.v }
    if (t.t === "op") {
      if (t.v === "(") {
        const e = this.parseExpr()
        this.expectOp(")")
        return e
      }
      throw new ExprSyntaxError(`unexpected '${t.v}' in '${this.src}'`)
    }
    if (!t.quoted) {
      const w = t.v.toLowerCase()
      if (w === "null") return { _tag: "Lit", value: null }
      if (w === "true") return { _tag: "Lit", value: true }
      if (w === "false") return { _tag: "Lit", value: false }
      if (this.isOp("(")) {
        this.pos++
        const args: Array<Expr> = []
        if (!this.isOp(")")) {
          args.push(this.parseExpr())
          while (this.isOp(",")) {
            this.pos++
            args.push(this.parseExpr())
          }
        }
        this.expectOp(")")
        if (!FUNCTIONS.has(w)) throw new ExprSyntaxError(`No matching function with signature: ${w}`)
        return { _tag: "Call", fn: w, args }
      }
    }
    return { _tag: "Ref", name: t.v }
  }
}

const FUNCTIONS = new Set([
  "concat",
  "upper",
  "lower",
  "ifnull",
  "coalesce",
  "nullif",
  "if",
  "trim",
  "length",
  "now",
  "current_timestamp"
])

export const parseExpr = (src: string): Expr => {
  const p = new Parser(tokenize(src), src)
  const e = p.parseExpr()
  if (p.pos !== p.toks.length) throw new ExprSyntaxError(`unexpected input after expression in '${src}'`)
  return e
}

/** One item of the `columns` header. */
export type ColumnItem =
  | { readonly _tag: "Source"; readonly name: string }
  | { readonly _tag: "Derived"; readonly name: string; readonly expr: Expr }

const splitTopLevel = (src: string): Array<string> => {
  const out: Array<string> = []
  let depth = 0
  let quote: string | undefined
  let start = 0
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!
    if (quote !== undefined) {
      if (c === "\\") i++
      else if (c === quote) quote = undefined
      continue
    }
    if (c === "'" || c === "\"" || c === "`") quote = c
    else if (c === "(") depth++
    else if (c === ")") depth--
    else if (c === "," && depth === 0) {
      out.push(src.slice(start, i))
      start = i + 1
    }
  }
  out.push(src.slice(start))
  return out
}

const unquoteIdent = (s: string): string => {
  const t = s.trim()
  return t.startsWith("`") && t.endsWith("`") && t.length >= 2 ? t.slice(1, -1) : t
}

/** Parses the `columns` header (`a, b, tmp, c = expr, __op = 'delete'`). */
export const parseColumnsHeader = (src: string): Array<ColumnItem> => {
  const items: Array<ColumnItem> = []
  for (const part of splitTopLevel(src)) {
    const eq = findTopLevelEq(part)
    if (eq < 0) {
      const name = unquoteIdent(part)
      if (!/^[^\s()'",=]+$/.test(name)) throw new ExprSyntaxError(`invalid column name '${part.trim()}'`)
      items.push({ _tag: "Source", name })
    } else {
      const name = unquoteIdent(part.slice(0, eq))
      if (!/^[^\s()'",=]+$/.test(name)) throw new ExprSyntaxError(`invalid column name '${part.slice(0, eq).trim()}'`)
      items.push({ _tag: "Derived", name, expr: parseExpr(part.slice(eq + 1)) })
    }
  }
  return items
}

const findTopLevelEq = (s: string): number => {
  let quote: string | undefined
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!
    if (quote !== undefined) {
      if (c === quote) quote = undefined
      continue
    }
    if (c === "'" || c === "\"" || c === "`") quote = c
    else if (c === "=" && s[i - 1] !== "<" && s[i - 1] !== ">" && s[i - 1] !== "!") return i
  }
  return -1
}

/** Column names an expression refers to. */
export const exprRefs = (e: Expr, out: Set<string> = new Set()): Set<string> => {
  switch (e._tag) {
    case "Ref":
      out.add(e.name)
      break
    case "Lit":
      break
    case "Bin":
      exprRefs(e.left, out)
      exprRefs(e.right, out)
      break
    case "Not":
    case "Neg":
    case "IsNull":
      exprRefs(e.expr, out)
      break
    case "In":
      exprRefs(e.expr, out)
      e.list.forEach((x) => exprRefs(x, out))
      break
    case "Call":
      e.args.forEach((x) => exprRefs(x, out))
      break
  }
  return out
}

/**
 * The expression with every `now()` / `current_timestamp()` replaced by the load's time (`YYYY-MM-DD HH:MM:SS` in
 * the load's `timezone`, the same for every row, as the BE's `now()` reads the plan's timestamp). `text` is called
 * only when the expression has such a call.
 */
export const bindNow = (e: Expr, text: () => string): Expr => {
  switch (e._tag) {
    case "Ref":
    case "Lit":
      return e
    case "Bin":
      return { ...e, left: bindNow(e.left, text), right: bindNow(e.right, text) }
    case "Not":
    case "Neg":
    case "IsNull":
      return { ...e, expr: bindNow(e.expr, text) }
    case "In":
      return { ...e, expr: bindNow(e.expr, text), list: e.list.map((x) => bindNow(x, text)) }
    case "Call":
      if (e.fn === "now" || e.fn === "current_timestamp") return { _tag: "Lit", value: text() }
      return { ...e, args: e.args.map((x) => bindNow(x, text)) }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// evaluation

const toNumber = (v: Scalar): number | bigint | undefined => {
  if (typeof v === "number" || typeof v === "bigint") return v
  if (typeof v === "boolean") return v ? 1 : 0
  if (typeof v === "string") {
    const t = v.trim()
    if (/^[+-]?[0-9]+$/.test(t)) return t.replace(/^[+-]/, "").length > 15 ? BigInt(t) : Number(t)
    if (t.length > 0 && /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/.test(t)) return Number(t)
  }
  return undefined
}

const cmpNum = (a: number | bigint, b: number | bigint): number => {
  if (typeof a === "bigint" && typeof b === "bigint") return a < b ? -1 : a > b ? 1 : 0
  const x = Number(a)
  const y = Number(b)
  return x < y ? -1 : x > y ? 1 : 0
}

/** SQL comparison: numbers numerically (strings compared with a number are cast), else as strings. NULL → null. */
export const compare = (a: Scalar, b: Scalar): number | null => {
  if (a === null || b === null) return null
  const numeric = (v: Scalar) => typeof v === "number" || typeof v === "bigint" || typeof v === "boolean"
  if (numeric(a) || numeric(b)) {
    const x = toNumber(a)
    const y = toNumber(b)
    if (x === undefined || y === undefined) return null
    return cmpNum(x, y)
  }
  const x = Array.isArray(a) ? JSON.stringify(a) : String(a)
  const y = Array.isArray(b) ? JSON.stringify(b) : String(b)
  return x < y ? -1 : x > y ? 1 : 0
}

const truthy = (v: Scalar): boolean | null => {
  if (v === null) return null
  if (typeof v === "boolean") return v
  const n = toNumber(v)
  return n === undefined ? false : Number(n) !== 0
}

const arith = (op: string, a: Scalar, b: Scalar): Scalar => {
  const x = toNumber(a)
  const y = toNumber(b)
  if (x === undefined || y === undefined) return null
  if (typeof x === "bigint" || typeof y === "bigint") {
    const p = BigInt(x)
    const q = BigInt(y)
    if (op === "+") return p + q
    if (op === "-") return p - q
    if (op === "*") return p * q
    if (q === 0n) return null
    if (op === "%") return p % q
    return Number(p) / Number(q)
  }
  if (op === "+") return x + y
  if (op === "-") return x - y
  if (op === "*") return x * y
  if (y === 0) return null
  if (op === "%") return x % y
  return x / y
}

export const scalarToString = (v: Scalar): string | null => {
  if (v === null) return null
  if (typeof v === "boolean") return v ? "1" : "0"
  if (Array.isArray(v)) return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? Number(x) : x))
  return String(v)
}

export const evalExpr = (e: Expr, env: (name: string) => Scalar): Scalar => {
  switch (e._tag) {
    case "Ref":
      return env(e.name)
    case "Lit":
      return e.value
    case "Neg": {
      const v = toNumber(evalExpr(e.expr, env))
      return v === undefined ? null : -v
    }
    case "Not": {
      const v = truthy(evalExpr(e.expr, env))
      return v === null ? null : !v
    }
    case "IsNull": {
      const isNull = evalExpr(e.expr, env) === null
      return e.negate ? !isNull : isNull
    }
    case "In": {
      const v = evalExpr(e.expr, env)
      if (v === null) return null
      let sawNull = false
      for (const x of e.list) {
        const c = compare(v, evalExpr(x, env))
        if (c === 0) return !e.negate
        if (c === null) sawNull = true
      }
      return sawNull ? null : e.negate
    }
    case "Bin": {
      if (e.op === "and") {
        const l = truthy(evalExpr(e.left, env))
        if (l === false) return false
        const r = truthy(evalExpr(e.right, env))
        if (r === false) return false
        return l === null || r === null ? null : true
      }
      if (e.op === "or") {
        const l = truthy(evalExpr(e.left, env))
        if (l === true) return true
        const r = truthy(evalExpr(e.right, env))
        if (r === true) return true
        return l === null || r === null ? null : false
      }
      const l = evalExpr(e.left, env)
      const r = evalExpr(e.right, env)
      if ("+-*/%".includes(e.op)) return arith(e.op, l, r)
      const c = compare(l, r)
      if (c === null) return null
      switch (e.op) {
        case "=":
          return c === 0
        case "!=":
          return c !== 0
        case "<":
          return c < 0
        case "<=":
          return c <= 0
        case ">":
          return c > 0
        default:
          return c >= 0
      }
    }
    case "Call": {
      const args = e.args.map((a) => evalExpr(a, env))
      switch (e.fn) {
        case "concat":
          return args.some((a) => a === null) ? null : args.map((a) => scalarToString(a)).join("")
        case "upper":
          return args[0] === null || args[0] === undefined ? null : scalarToString(args[0])!.toUpperCase()
        case "lower":
          return args[0] === null || args[0] === undefined ? null : scalarToString(args[0])!.toLowerCase()
        case "trim":
          return args[0] === null || args[0] === undefined ? null : scalarToString(args[0])!.trim()
        case "length":
          return args[0] === null || args[0] === undefined ? null : Buffer.byteLength(scalarToString(args[0])!)
        case "ifnull":
        case "coalesce":
          return args.find((a) => a !== null) ?? null
        case "nullif":
          return compare(args[0] ?? null, args[1] ?? null) === 0 ? null : args[0] ?? null
        case "if":
          return truthy(args[0] ?? null) === true ? args[1] ?? null : args[2] ?? null
        case "now":
        case "current_timestamp":
          // a load binds these to its plan time in its `timezone` first (`bindNow`); unbound: UTC now
          return new Date().toISOString().slice(0, 19).replace("T", " ")
        default:
          return null
      }
    }
  }
}

/** WHERE semantics: a row is selected only when the predicate is true (NULL and false drop it). */
export const evalPredicate = (e: Expr, env: (name: string) => Scalar): boolean => truthy(evalExpr(e, env)) === true
