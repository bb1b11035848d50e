/**
 * A table's lane: its settings, its encoders (one per batch shape), its label sequence, and the batch it is
 * building. Both sinks keep one lane per table; the batcher (batcher.ts) feeds them rows and seals them.
 *
 * A batch has one shape, because every load of it carries one set of headers:
 * - `plain`: the table's columns (rows and `Change.upsert`);
 * - `op`: the same columns plus `__op` (upserts 0, deletes 1) once a table has seen a delete;
 * - `p:<columns>`: a partial update carrying exactly these columns (`partial_update: true`).
 * An item whose shape differs from the building batch's, or a CSV row that must travel as JSON, is not added:
 * the batcher seals the batch first (`add` says REFUSED), then `addFresh` starts the next batch with it. Rows
 * of a table therefore land in the order they came, and no partial update writes a column it does not carry.
 */
import type { Clock, Schema } from "effect"
import * as Change from "../../Change.js"
import * as ColumnType from "../../ColumnType.js"
import type { LoadBody } from "../../LoadBody.js"
import * as RowEncoder from "../../RowEncoder.js"

/** The settings of one table (what the sink's table options and the config resolve to). */
export interface TableSettings {
  readonly database: string
  readonly table: string
  readonly format: "csv" | "json"
  /** Columns in the order sent; default: the schema's fields (without a tagged union's `_tag`). */
  readonly columns: ReadonlyArray<string> | undefined
  /** `sink.properties.*` of this table, keys lower-cased (the config's, overridden by the table's own). */
  readonly properties: Readonly<Record<string, string>>
  /** One load in flight at a time (default: true for a Primary Key table). */
  readonly ordered: boolean | undefined
  /** Declares a Primary Key table and its key columns (without `jdbc-url`). */
  readonly primaryKey: ReadonlyArray<string> | undefined
  /** `merge_condition`: a row replaces the stored one only when this column is not lower. */
  readonly mergeCondition: string | undefined
  /** `partial_update_mode` of partial updates (StarRocks' default: row). */
  readonly partialUpdateMode: "row" | "column" | undefined
  /**
   * CSV column separator and row delimiter the encoder uses (decoded from the table's `column_separator` and
   * `row_delimiter` by routing.ts `encoderSettings`; default `,` and `\n`).
   */
  readonly columnSeparator?: string | undefined
  readonly rowDelimiter?: string | undefined
  readonly csvJsonFallback: boolean
  readonly timeZone: string
}

/** What the server told about the table through `jdbc-url` (undefined without it). */
export interface TableFacts {
  readonly columnTypes: RowEncoder.RowEncoderOptions["columnTypes"]
  readonly primaryKey: ReadonlyArray<string>
  readonly isPrimaryKeyTable: boolean
  readonly supportsEnclose: boolean
  /** `current_version()` as read with the columns (undefined when the server has no such function). */
  readonly serverVersion?: string | undefined
}

/** A sealed batch of one lane. */
export interface Sealed {
  readonly lane: Lane
  readonly seq: number
  readonly rows: number
  /** The stream index (the batcher's) of the batch's first row: its rows are the lane's rows from there on. */
  readonly firstRow: number
  readonly body: LoadBody
  readonly headers: Readonly<Record<string, string>>
  /**
   * Hands a body's buffers back to the encoder that made this batch (call once the body is never read again;
   * batches of one lane with the same headers share that encoder).
   */
  readonly release: (body: LoadBody) => void
}

export interface Lane {
  /** `db.table` */
  readonly key: string
  readonly settings: TableSettings
  readonly isPrimaryKey: boolean
  readonly keyColumns: ReadonlyArray<string>
  readonly ordered: boolean
  /** The server version read through `jdbc-url` with the table's columns (internal/startup.ts checks it). */
  readonly serverVersion?: string | undefined
  /** Rows in the building batch (0 when none). */
  readonly rows: () => number
  /** Bytes of the building batch (0 when none). */
  readonly bytes: () => number
  /** When the building batch got its first row (ms, the sink's clock); 0 when none. */
  readonly firstRowAt: () => number
  /** The stream index of the building batch's first row; -1 when none. */
  readonly firstRowIndex: () => number
  /**
   * Adds the item (a row or a `Change`) to the building batch, opening one when there is none (its first-row time
   * read from `clock` then, and only then). REFUSED when the building batch must be sealed first (another shape, or
   * a CSV row that must travel as JSON): nothing is added then. ADDED, or FULL: added, and the batch now holds
   * `maxRows` rows or `maxBytes` bytes, so that the row loop (batcher.ts) needs nothing more of the lane per row.
   * Throws `RowEncodeError` for a value the table cannot take.
   */
  readonly add: (item: unknown, rowIndex: number, clock: Clock.Clock, maxRows: number, maxBytes: number) => AddResult
  /** After a seal: starts the next batch with the item (JSON when CSV cannot carry it). */
  readonly addFresh: (item: unknown, rowIndex: number, now: number) => void
  /** The building batch as a sealed batch (undefined when empty); the lane then builds none. */
  readonly seal: () => Sealed | undefined
  /** Drops the building batch (the sink is stopping). */
  readonly discard: () => void
}

/**
 * The lanes' shared byte budget: whether the largest building batch must be sealed, given the bytes all lanes
 * build (`total`) and the largest one's (`largest`). It is sealed when the lanes together hold `maxBytes`, or when
 * the lanes besides it hold half of `maxBytes`.
 *
 * A table that has the stream to itself still builds batches of `maxBytes` (the others hold next to nothing). Many
 * busy tables hold about half of `maxBytes` between them instead of all of it (N tables: batches of about
 * maxBytes / (N − 2), where sealing only at `maxBytes` gave about twice that). That is what one table's batch holds
 * on average, and it is what a sink of many tables pays at start (the first fill: fresh buffers, external memory
 * to V8, whose every 64 MiB starts a full GC) and at the end (every lane's bytes go in the last loads). Measured in
 * docs/benchmark.md, session 7.
 */
export const overBudget = (total: number, largest: number, maxBytes: number): boolean =>
  total >= maxBytes || 2 * (total - largest) >= maxBytes

const fail = (rowIndex: number, column: string, reason: string): never => {
  throw new RowEncoder.RowEncodeError({ row: rowIndex, column, reason })
}

/**
 * The encoders of one sink run, shared by its lanes: lanes of the same schema and encoder options (tables routed by
 * a function, which share one schema) share one compiled encoder, and all share one buffer pool of `poolBytes`
 * (which later runs share too: `sharedPool`).
 * Measured (bench/tablesProfile.ts, 20 tables against one, best of 3): an encoder and a pool per lane ran 20 tables
 * at 0.51 × one table's rows/s; one pool for all, 0.69 ×; one encoder per schema as well, 0.70 to 0.76 × (20
 * compiled row functions each warm up and are optimized apart, and 20 pools each keep spare buffers while the
 * others allocate). The batch builder is a class for the same reason (RowEncoder.ts).
 */
export interface Encoders {
  readonly get: (
    schema: Schema.Schema<any, any, any>,
    options: RowEncoder.RowEncoderOptions
  ) => RowEncoder.RowEncoder<any>
}

export const makeEncoders = (poolBytes: number): Encoders => {
  const bufferPool = sharedPool(poolBytes)
  const bySchema = new Map<Schema.Schema<any, any, any>, Map<string, RowEncoder.RowEncoder<any>>>()
  return {
    get: (schema, options) => {
      let cache = bySchema.get(schema)
      if (cache === undefined) {
        cache = new Map()
        bySchema.set(schema, cache)
      }
      const key = JSON.stringify(options, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))
      let encoder = cache.get(key)
      if (encoder === undefined) {
        encoder = RowEncoder.make(schema, { ...options, bufferPool })
        cache.set(key, encoder)
      }
      return encoder
    }
  }
}

/** How long a shared pool outlives the last buffer taken from it or handed back to it (ms). */
export const POOL_IDLE_MS = 10_000

const pools = new Map<number, { readonly pool: RowEncoder.BufferPool; lastUse: number }>()

/**
 * The buffer pool of a sink run: one per `poolBytes` for all the sink runs of the process, not one per run, as
 * long as some run has taken or handed back a buffer in the last POOL_IDLE_MS. A pool left idle that long is
 * dropped from here (a run still holding it keeps using it on its own), and its buffers go with the next GC.
 *
 * Why: a run's batches are written into buffers of its pool, and a fresh buffer is external memory to V8, which
 * starts a full GC for every 64 MiB of it since the last one. With a pool per run, every run paid its first fill
 * afresh: back-to-back runs of 300,000 one-row chunks (30 MB of CSV each) brought a full GC (over the whole heap)
 * into every other run, the slow mode of the bench's one-row figure (docs/benchmark.md, "One-row chunks").
 */
const sharedPool = (poolBytes: number): RowEncoder.BufferPool => {
  const found = pools.get(poolBytes)
  const entry = found ?? { pool: RowEncoder.makeBufferPool(poolBytes), lastUse: performance.now() }
  if (found === undefined) {
    pools.set(poolBytes, entry)
    const check = () => {
      const idle = performance.now() - entry.lastUse
      if (idle >= POOL_IDLE_MS) {
        if (pools.get(poolBytes) === entry) pools.delete(poolBytes)
      } else {
        setTimeout(check, POOL_IDLE_MS - idle).unref()
      }
    }
    setTimeout(check, POOL_IDLE_MS).unref()
  }
  return {
    take: (size) => {
      entry.lastUse = performance.now()
      return entry.pool.take(size)
    },
    release: (body) => {
      entry.lastUse = performance.now()
      entry.pool.release(body)
    }
  }
}

/** What `Lane.add` did with an item (a number, not an object: the row loop gets one per row). */
export type AddResult = 0 | 1 | 2
/** Not added: the building batch must be sealed first (another shape, or a CSV row that must travel as JSON). */
export const REFUSED = 0
/** Added. */
export const ADDED = 1
/** Added, and the building batch now holds `maxRows` rows or `maxBytes` bytes: seal it. */
export const FULL = 2

/** A batch shape of a lane (the module comment): its encoder and headers. */
interface Shape {
  readonly name: string
  readonly encoder: RowEncoder.RowEncoder<any>
  readonly extra: Readonly<Record<string, string>>
  /** Deletes of a table with a merge condition travel without it (StarRocks fails such a load otherwise). */
  readonly noMergeCondition: boolean
  readonly headers: { csv?: Readonly<Record<string, string>>; json?: Readonly<Record<string, string>> }
}

/**
 * A lane of a schema's table. A class, not an object of closures: one hidden class and one set of methods (on the
 * prototype) for all lanes, so that the row loop's calls stay monomorphic when it feeds many tables in turn, as for
 * the batch builder (RowEncoder.ts). Measured in docs/benchmark.md, session 13.
 */
class SchemaLane implements Lane {
  readonly key: string
  readonly isPrimaryKey: boolean
  readonly keyColumns: ReadonlyArray<string>
  readonly ordered: boolean
  readonly serverVersion: string | undefined
  private readonly format: "csv" | "json"
  private readonly allFields: ReadonlyArray<string>
  private readonly columns: ReadonlyArray<string>
  private readonly baseOptions: RowEncoder.RowEncoderOptions
  private readonly tableHeaders: Readonly<Record<string, string>>
  private readonly shapes = new Map<string, Shape>()
  private readonly plain: Shape
  private placeholders: Readonly<Record<string, unknown>> | undefined = undefined
  // once a table has had a delete, its batches keep the `__op` column (no cut at every delete)
  private preferOp = false
  private builder: RowEncoder.BatchBuilder<any> | undefined = undefined
  private shape: Shape
  private firstAt = 0
  private firstRow = -1
  private seq = 0
  // What the item needs (`resolve`): the shape, the row to encode and its __op.
  private needShape: Shape
  private needRow: unknown = undefined
  private needOp = 0

  constructor(
    private readonly schema: Schema.Schema<any, any, any>,
    readonly settings: TableSettings,
    facts: TableFacts | undefined,
    private readonly encoders: Encoders
  ) {
    const key = `${settings.database}.${settings.table}`
    this.key = key
    const declared = settings.primaryKey
    const keyColumns = facts?.isPrimaryKeyTable ? facts.primaryKey : declared ?? []
    this.keyColumns = keyColumns
    this.isPrimaryKey = keyColumns.length > 0
    this.ordered = settings.ordered ?? this.isPrimaryKey
    this.serverVersion = facts?.serverVersion
    this.format = settings.format
    this.allFields = ColumnType.fieldsOf(schema).map((f) => f.name)
    const columns = settings.columns ?? this.allFields.filter((f) => f !== "_tag")
    this.columns = columns
    for (const k of keyColumns) {
      if (!columns.includes(k)) {
        throw new TypeError(`table ${key}: key column '${k}' is not among the columns sent (${columns.join(", ")})`)
      }
    }
    if (settings.mergeCondition !== undefined) {
      if (!columns.includes(settings.mergeCondition)) {
        throw new TypeError(
          `table ${key}: merge condition column '${settings.mergeCondition}' is not among the columns sent`
        )
      }
      if (keyColumns.includes(settings.mergeCondition)) {
        throw new TypeError(
          `table ${key}: merge condition column '${settings.mergeCondition}' is a key column (StarRocks refuses it)`
        )
      }
    }

    this.baseOptions = {
      timeZone: settings.timeZone,
      csvJsonFallback: settings.csvJsonFallback,
      serverSupportsEnclose: facts?.supportsEnclose ?? true,
      columnTypes: facts?.columnTypes,
      columnSeparator: settings.columnSeparator,
      rowDelimiter: settings.rowDelimiter
    }
    // the table's own headers under the encoder's (routing.ts refuses the ones the encoder sets; it sends the
    // separators it was given, in StarRocks' form)
    const tableHeaders: Record<string, string> = { ...settings.properties }
    delete tableHeaders["format"]
    if (settings.mergeCondition !== undefined) tableHeaders["merge_condition"] = settings.mergeCondition
    // the load's time zone is the encoder's (sink.timezone), unless the table's headers name one themselves: now(),
    // a DEFAULT CURRENT_TIMESTAMP column and from_unixtime then read the same wall clock as the Dates sent
    if (tableHeaders["timezone"] === undefined) {
      tableHeaders["timezone"] = RowEncoder.timeZoneHeader(settings.timeZone)
    }
    this.tableHeaders = tableHeaders
    this.plain = this.shapeOf("plain", columns, false, false)
    this.shape = this.plain
    this.needShape = this.plain
  }

  private shapeOf(
    name: string,
    cols: ReadonlyArray<string>,
    op: boolean,
    partial: boolean,
    noMergeCondition = false
  ): Shape {
    let shape = this.shapes.get(name)
    if (shape === undefined) {
      const mode = this.settings.partialUpdateMode
      shape = {
        name,
        encoder: this.encoders.get(this.schema, {
          ...this.baseOptions,
          columns: cols,
          opColumn: op,
          jsonColumnsHeader: partial
        }),
        extra: partial
          ? { partial_update: "true", ...(mode !== undefined ? { partial_update_mode: mode } : {}) }
          : {},
        noMergeCondition,
        headers: {}
      }
      this.shapes.set(name, shape)
    }
    return shape
  }

  private requirePrimaryKey(rowIndex: number, what: string): void {
    if (!this.isPrimaryKey) {
      fail(
        rowIndex,
        "__op",
        `${what} into table ${this.key}, which is not known as a Primary Key table (give jdbc-url, or declare the ` +
          "table's primaryKey); it is refused rather than loaded as an insert"
      )
    }
  }

  private requireKey(row: Record<string, unknown>, rowIndex: number, what: string): void {
    for (const k of this.keyColumns) {
      if (row[k] === undefined || row[k] === null) fail(rowIndex, k, `${what} without its key column`)
    }
  }

  /** Sets what the item needs: `needShape`, `needRow`, `needOp`. */
  private resolve(item: unknown, rowIndex: number): void {
    if (!Change.isChange(item)) {
      this.needShape = this.preferOp ? this.shapeOf("op", this.columns, true, false) : this.plain
      this.needRow = item
      this.needOp = 0
      return
    }
    const columns = this.columns
    switch (item._tag) {
      case "Upsert":
        this.needShape = this.preferOp ? this.shapeOf("op", columns, true, false) : this.plain
        this.needRow = item.row
        this.needOp = 0
        return
      case "Delete": {
        this.requirePrimaryKey(rowIndex, "a delete")
        const k = item.key as Record<string, unknown>
        this.requireKey(k, rowIndex, "a delete")
        // with a merge condition, deletes go in loads of their own, without it: StarRocks refuses a delete in a
        // conditional update ("delete with condition column")
        const merge = this.settings.mergeCondition !== undefined
        const op = merge ? this.shapeOf("delete", columns, true, false, true) : this.shapeOf("op", columns, true, false)
        this.placeholders ??= op.encoder.placeholders()
        const row: Record<string, unknown> = { ...this.placeholders }
        for (const c of columns) if (k[c] !== undefined) row[c] = k[c]
        for (const c of columns) {
          if (!(c in row)) {
            fail(rowIndex, c, "a delete that carries only the key needs a value for this NOT NULL column")
          }
        }
        if (!merge) this.preferOp = true
        this.needShape = op
        this.needRow = row
        this.needOp = 1
        return
      }
      case "Update": {
        this.requirePrimaryKey(rowIndex, "a partial update")
        const r = item.row as Record<string, unknown>
        this.requireKey(r, rowIndex, "a partial update")
        const allFields = this.allFields
        const carried: Array<string> = []
        for (const f of allFields) if (f !== "_tag" && r[f] !== undefined) carried.push(f)
        for (const name of Object.keys(r)) {
          if (name !== "_tag" && !allFields.includes(name)) fail(rowIndex, name, "not a field of the table's schema")
        }
        const name = "p:" + carried.join(",")
        this.needShape = this.shapes.get(name) ?? this.shapeOf(name, carried, false, true)
        this.needRow = r
        this.needOp = 0
        return
      }
    }
  }

  private open(s: Shape, format: "csv" | "json", now: number, rowIndex: number): RowEncoder.BatchBuilder<any> {
    this.shape = s
    const b = s.encoder.builder(format)
    this.builder = b
    this.firstAt = now
    this.firstRow = rowIndex
    return b
  }

  rows(): number {
    const b = this.builder
    return b === undefined ? 0 : b.rows
  }

  bytes(): number {
    const b = this.builder
    return b === undefined ? 0 : b.bytes
  }

  firstRowAt(): number {
    return this.firstAt
  }

  firstRowIndex(): number {
    const b = this.builder
    return b !== undefined && b.rows > 0 ? this.firstRow : -1
  }

  add(item: unknown, rowIndex: number, clock: Clock.Clock, maxRows: number, maxBytes: number): AddResult {
    let b = this.builder
    // the common item, a row that is no Change into a table that has had no delete: what `resolve` would give
    // (the plain shape, the row itself, __op 0) without the call and its three writes. Measured in instructions
    // (docs/benchmark.md, session 12): 1.9% fewer for one table's rows, 2.2% for 20 tables' interleaved rows.
    if (!this.preferOp && !Change.isChange(item)) {
      if (b === undefined) b = this.open(this.plain, this.format, clock.unsafeCurrentTimeMillis(), rowIndex)
      else if (this.shape !== this.plain) return REFUSED
      if (!b.add(item, rowIndex, 0)) return REFUSED
    } else {
      this.resolve(item, rowIndex)
      if (b === undefined) b = this.open(this.needShape, this.format, clock.unsafeCurrentTimeMillis(), rowIndex)
      else if (this.needShape !== this.shape) return REFUSED
      if (!b.add(this.needRow, rowIndex, this.needOp)) return REFUSED
    }
    return b.rows >= maxRows || b.bytes >= maxBytes ? FULL : ADDED
  }

  addFresh(item: unknown, rowIndex: number, now: number): void {
    this.resolve(item, rowIndex)
    const s = this.needShape
    const row = this.needRow
    const op = this.needOp
    if (this.open(s, this.format, now, rowIndex).add(row, rowIndex, op)) return
    // CSV cannot carry it (the exact string \N, or quoting on a server below 3.0): this batch goes as JSON
    if (!this.open(s, "json", now, rowIndex).add(row, rowIndex, op)) {
      fail(rowIndex, "(row)", "cannot be encoded as JSON either")
    }
  }

  seal(): Sealed | undefined {
    const b = this.builder
    const first = this.firstRow
    this.builder = undefined
    this.firstAt = 0
    this.firstRow = -1
    if (b === undefined || b.rows === 0) return undefined
    const s = this.shape
    const { body, headers } = b.finish()
    const format = b.format
    let merged = s.headers[format]
    if (merged === undefined) {
      const all: Record<string, string> = { ...this.tableHeaders, ...s.extra, ...headers }
      if (s.noMergeCondition) delete all["merge_condition"]
      merged = all
      s.headers[format] = merged
    }
    this.seq += 1
    return {
      lane: this,
      seq: this.seq,
      rows: b.rows,
      firstRow: first,
      body,
      headers: merged,
      release: s.encoder.release
    }
  }

  discard(): void {
    this.builder = undefined
    this.firstAt = 0
    this.firstRow = -1
  }
}

export const make = <A>(
  schema: Schema.Schema<A, any, any>,
  settings: TableSettings,
  facts: TableFacts | undefined,
  encoders: Encoders
): Lane => new SchemaLane(schema, settings, facts, encoders)
