/**
 * A table's lane: its settings, its encoders (one per batch shape), its label sequence, and the batch it is
 * building. Both sinks keep one lane per table; the batcher (batcher.ts) feeds them rows and seals them.
 *
 * A batch has one shape, because every load of it carries one set of headers:
 * - `plain`: the table's columns (rows and `Change.upsert`);
 * - `op`: the same columns plus `__op` (upserts 0, deletes 1) once a table has seen a delete;
 * - `p:<columns>`: a partial update carrying exactly these columns (`partial_update: true`).
 * An item whose shape differs from the building batch's, or a CSV row that must travel as JSON, is not added:
 * the batcher seals the batch first (`tryAdd` returns false), then `addFresh` starts the next batch with it. Rows
 * of a table therefore land in the order they came, and no partial update writes a column it does not carry.
 */
import type { Schema } from "effect"
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
   * Adds the item (a row or a `Change`) to the building batch, opening one when there is none. False when the
   * building batch must be sealed first (another shape, or a CSV row that must travel as JSON); nothing is added
   * then. Throws `RowEncodeError` for a value the table cannot take. `now` is the opened batch's first-row time;
   * it is read only when the lane builds no batch (`rows() === 0`), so callers may pass anything otherwise.
   */
  readonly tryAdd: (item: unknown, rowIndex: number, now: number) => boolean
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

export const make = <A>(
  schema: Schema.Schema<A, any, any>,
  settings: TableSettings,
  facts: TableFacts | undefined,
  encoders: Encoders
): Lane => {
  const key = `${settings.database}.${settings.table}`
  const declared = settings.primaryKey
  const keyColumns = facts?.isPrimaryKeyTable ? facts.primaryKey : declared ?? []
  const isPrimaryKey = keyColumns.length > 0
  const ordered = settings.ordered ?? isPrimaryKey
  const allFields = ColumnType.fieldsOf(schema).map((f) => f.name)
  const columns = settings.columns ?? allFields.filter((f) => f !== "_tag")
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

  const baseOptions: RowEncoder.RowEncoderOptions = {
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
  if (tableHeaders["timezone"] === undefined) tableHeaders["timezone"] = RowEncoder.timeZoneHeader(settings.timeZone)

  interface Shape {
    readonly name: string
    readonly encoder: RowEncoder.RowEncoder<any>
    readonly extra: Readonly<Record<string, string>>
    /** Deletes of a table with a merge condition travel without it (StarRocks fails such a load otherwise). */
    readonly noMergeCondition: boolean
    readonly headers: { csv?: Readonly<Record<string, string>>; json?: Readonly<Record<string, string>> }
  }
  const shapes = new Map<string, Shape>()
  const shapeOf = (
    name: string,
    cols: ReadonlyArray<string>,
    op: boolean,
    partial: boolean,
    noMergeCondition = false
  ): Shape => {
    let shape = shapes.get(name)
    if (shape === undefined) {
      shape = {
        name,
        encoder: encoders.get(schema, { ...baseOptions, columns: cols, opColumn: op, jsonColumnsHeader: partial }),
        extra: partial
          ? {
            partial_update: "true",
            ...(settings.partialUpdateMode !== undefined ? { partial_update_mode: settings.partialUpdateMode } : {})
          }
          : {},
        noMergeCondition,
        headers: {}
      }
      shapes.set(name, shape)
    }
    return shape
  }
  const plain = shapeOf("plain", columns, false, false)
  let placeholders: Readonly<Record<string, unknown>> | undefined
  // once a table has had a delete, its batches keep the `__op` column (no cut at every delete)
  let preferOp = false

  let builder: RowEncoder.BatchBuilder<any> | undefined
  let shape: Shape = plain
  let firstRowAt = 0
  let firstRow = -1
  let seq = 0

  const requirePrimaryKey = (rowIndex: number, what: string) => {
    if (!isPrimaryKey) {
      fail(
        rowIndex,
        "__op",
        `${what} into table ${key}, which is not known as a Primary Key table (give jdbc-url, or declare the ` +
          "table's primaryKey); it is refused rather than loaded as an insert"
      )
    }
  }
  const requireKey = (row: Record<string, unknown>, rowIndex: number, what: string) => {
    for (const k of keyColumns) {
      if (row[k] === undefined || row[k] === null) fail(rowIndex, k, `${what} without its key column`)
    }
  }

  // What the item needs: the shape, the row to encode and its __op.
  let needShape: Shape = plain
  let needRow: unknown = undefined
  let needOp = 0
  const resolve = (item: unknown, rowIndex: number): void => {
    if (!Change.isChange(item)) {
      needShape = preferOp ? shapeOf("op", columns, true, false) : plain
      needRow = item
      needOp = 0
      return
    }
    switch (item._tag) {
      case "Upsert":
        needShape = preferOp ? shapeOf("op", columns, true, false) : plain
        needRow = item.row
        needOp = 0
        return
      case "Delete": {
        requirePrimaryKey(rowIndex, "a delete")
        const k = item.key as Record<string, unknown>
        requireKey(k, rowIndex, "a delete")
        // with a merge condition, deletes go in loads of their own, without it: StarRocks refuses a delete in a
        // conditional update ("delete with condition column")
        const op = settings.mergeCondition !== undefined
          ? shapeOf("delete", columns, true, false, true)
          : shapeOf("op", columns, true, false)
        placeholders ??= op.encoder.placeholders()
        const row: Record<string, unknown> = { ...placeholders }
        for (const c of columns) if (k[c] !== undefined) row[c] = k[c]
        for (const c of columns) {
          if (!(c in row)) {
            fail(rowIndex, c, "a delete that carries only the key needs a value for this NOT NULL column")
          }
        }
        if (settings.mergeCondition === undefined) preferOp = true
        needShape = op
        needRow = row
        needOp = 1
        return
      }
      case "Update": {
        requirePrimaryKey(rowIndex, "a partial update")
        const r = item.row as Record<string, unknown>
        requireKey(r, rowIndex, "a partial update")
        const carried: Array<string> = []
        for (const f of allFields) if (f !== "_tag" && r[f] !== undefined) carried.push(f)
        for (const name of Object.keys(r)) {
          if (name !== "_tag" && !allFields.includes(name)) fail(rowIndex, name, "not a field of the table's schema")
        }
        const name = "p:" + carried.join(",")
        needShape = shapes.get(name) ?? shapeOf(name, carried, false, true)
        needRow = r
        needOp = 0
        return
      }
    }
  }

  const open = (s: Shape, format: "csv" | "json", now: number, rowIndex: number) => {
    shape = s
    builder = s.encoder.builder(format)
    firstRowAt = now
    firstRow = rowIndex
  }

  const tryAdd = (item: unknown, rowIndex: number, now: number): boolean => {
    // the common item, a row that is no Change into a table that has had no delete: what `resolve` would give
    // (the plain shape, the row itself, __op 0) without the call and its three writes. Measured in instructions
    // (docs/benchmark.md, session 12): 1.9% fewer for one table's rows, 2.2% for 20 tables' interleaved rows.
    if (!preferOp && !Change.isChange(item)) {
      if (builder === undefined) open(plain, settings.format, now, rowIndex)
      else if (shape !== plain) return false
      return builder!.add(item, rowIndex, 0)
    }
    resolve(item, rowIndex)
    if (builder === undefined) open(needShape, settings.format, now, rowIndex)
    else if (needShape !== shape) return false
    return builder!.add(needRow, rowIndex, needOp)
  }

  const addFresh = (item: unknown, rowIndex: number, now: number): void => {
    resolve(item, rowIndex)
    open(needShape, settings.format, now, rowIndex)
    if (builder!.add(needRow, rowIndex, needOp)) return
    // CSV cannot carry it (the exact string \N, or quoting on a server below 3.0): this batch goes as JSON
    open(needShape, "json", now, rowIndex)
    if (!builder!.add(needRow, rowIndex, needOp)) fail(rowIndex, "(row)", "cannot be encoded as JSON either")
  }

  const seal = (): Sealed | undefined => {
    const b = builder
    const first = firstRow
    builder = undefined
    firstRowAt = 0
    firstRow = -1
    if (b === undefined || b.rows === 0) return undefined
    const s = shape
    const { body, headers } = b.finish()
    const format = b.format
    let merged = s.headers[format]
    if (merged === undefined) {
      const all: Record<string, string> = { ...tableHeaders, ...s.extra, ...headers }
      if (s.noMergeCondition) delete all["merge_condition"]
      merged = all
      s.headers[format] = merged
    }
    seq += 1
    return {
      lane,
      seq,
      rows: b.rows,
      firstRow: first,
      body,
      headers: merged,
      release: s.encoder.release
    }
  }

  const lane: Lane = {
    key,
    settings,
    isPrimaryKey,
    keyColumns,
    ordered,
    serverVersion: facts?.serverVersion,
    rows: () => builder?.rows ?? 0,
    bytes: () => builder?.bytes ?? 0,
    firstRowAt: () => firstRowAt,
    firstRowIndex: () => (builder !== undefined && builder.rows > 0 ? firstRow : -1),
    tryAdd,
    addFresh,
    seal,
    discard: () => {
      builder = undefined
      firstRowAt = 0
      firstRow = -1
    }
  }
  return lane
}
