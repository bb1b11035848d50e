/**
 * The crash test's source (scripts/crash-test.ts, scripts/crash-child.ts): a seeded, deterministic stream of items
 * over three tables, and the reference model the parent checks the tables against.
 *
 * Item `i` (i = 0 … n-1) is, by a seeded draw: a reference row `i` (`ReferenceRows.row(i)`) for the DUPLICATE KEY
 * table `a` or `b`, or a change of the PRIMARY KEY table `pk` over a bounded key space: a whole-row upsert (a plain
 * row or `Change.upsert`), a partial update of a live key (`Change.update`, one or two of the optional columns) or
 * a delete (`Change.delete`). Row `i` of `a`/`b` has `id = i`; a `pk` change carries `version = i` (not a delete).
 * The child resumes after a checkpointed position `p` by generating the whole source and skipping items 0 … p.
 */
import { Change, ColumnType } from "@effect-starrocks/sink"
import { ReferenceRows } from "@effect-starrocks/testkit"
import { Schema } from "effect"

/** mulberry32: a small deterministic PRNG. */
export const prng = (s: number) => {
  let a = s >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const RowA = Schema.TaggedStruct("a", ReferenceRows.schema.fields)
export const RowB = Schema.TaggedStruct("b", ReferenceRows.schema.fields)
/** The Primary Key table's row: the key, three nullable columns a partial update may leave out, a version. */
export const RowPk = Schema.TaggedStruct("pk", {
  id: ColumnType.BigInt,
  name: Schema.NullOr(Schema.String),
  qty: Schema.NullOr(ColumnType.Int),
  price: Schema.NullOr(ColumnType.Int),
  version: ColumnType.Int
})
export type RowA = typeof RowA.Type
export type RowB = typeof RowB.Type
export type RowPk = typeof RowPk.Type
export type Item = RowA | RowB | RowPk | Change.Change<RowA | RowB | RowPk>

/** The three tables of epoch `e`: their names in the emulator. */
export const tableNames = (epoch: number) => ({ a: `a${epoch}`, b: `b${epoch}`, pk: `pk${epoch}` })

/** The PRIMARY KEY table's definition for the emulator. */
export const pkTableDef = (database: string, table: string) => ({
  database,
  table,
  model: "PRIMARY" as const,
  key: ["id"],
  columns: [
    { name: "id", type: "BIGINT" },
    { name: "name", type: "VARCHAR(64)", nullable: true },
    { name: "qty", type: "INT", nullable: true },
    { name: "price", type: "INT", nullable: true },
    { name: "version", type: "INT", nullable: false }
  ]
})

/** Which table item `i` goes to. */
export type Kind = "a" | "b" | "pk"

export interface SourceOptions {
  readonly seed: number
  /** Items in the source. */
  readonly n: number
  /** Keys of the Primary Key table (0 … keys-1). */
  readonly keys: number
  /** Draw partial updates (else only upserts and deletes). */
  readonly partialUpdates: boolean
}

/** The seed of an epoch's source: every epoch has its own stream. */
export const epochSeed = (seed: number, epoch: number) => (seed * 1_000_003 + epoch * 7_919) >>> 0

/** The keys that are live (upserted, not deleted since), with a uniform draw among them. */
const liveKeys = () => {
  const list: Array<number> = []
  const at = new Map<number, number>()
  return {
    has: (id: number) => at.has(id),
    size: () => list.length,
    pick: (r: number) => list[Math.floor(r * list.length)]!,
    add: (id: number) => {
      if (at.has(id)) return
      at.set(id, list.length)
      list.push(id)
    },
    delete: (id: number) => {
      const i = at.get(id)
      if (i === undefined) return
      const last = list.pop()!
      if (last !== id) {
        list[i] = last
        at.set(last, i)
      }
      at.delete(id)
    }
  }
}

/**
 * The source, item by item, each with its index. `a` 40 %, `b` 25 %, `pk` 35 %. A `pk` change: an upsert of a
 * key that is not live, else 57 % upsert, 42 % delete, and (when enabled) 0.6 % the start of a run of 4–10 partial
 * updates of live keys, all of one column set (a partial update of other columns than the batch before it starts
 * another load, and so another transaction: runs keep that rare).
 */
export const source = function*(options: SourceOptions): Generator<{ readonly index: number; readonly item: Item }> {
  const random = prng(options.seed)
  const live = liveKeys()
  let run = 0
  let pick = 0
  for (let i = 0; i < options.n; i++) {
    const r = random()
    if (r < 0.4) {
      yield { index: i, item: { _tag: "a", ...ReferenceRows.row(i) } }
      continue
    }
    if (r < 0.65) {
      yield { index: i, item: { _tag: "b", ...ReferenceRows.row(i) } }
      continue
    }
    const c = random()
    if (options.partialUpdates && run === 0 && c < 0.006 && live.size() > 0) {
      run = 4 + Math.floor(random() * 7)
      pick = Math.floor(random() * 3)
    }
    if (run > 0 && live.size() > 0) {
      run--
      const id = live.pick(random())
      const partial: { _tag: "pk"; id: number; version: number; name?: string; qty?: number | null; price?: number } = {
        _tag: "pk",
        id,
        version: i
      }
      if (pick === 0) partial.name = `u${i}`
      else if (pick === 1) partial.qty = i % 5
      else {
        partial.price = i
        partial.qty = null
      }
      yield { index: i, item: Change.update<RowPk>(partial) }
      continue
    }
    run = 0
    const id = Math.floor(random() * options.keys)
    if (c < 0.58 || !live.has(id)) {
      const row: RowPk = { _tag: "pk", id, name: `n${i}`, qty: i % 7, price: i % 13 === 0 ? null : i, version: i }
      live.add(id)
      yield { index: i, item: random() < 0.5 ? row : Change.upsert(row) }
    } else {
      live.delete(id)
      yield { index: i, item: Change.delete<RowPk>({ _tag: "pk", id }) }
    }
  }
}

/** The expected state of the source prefix 0 … end-1: which ids each DUPLICATE table holds, the PK table's rows. */
export interface Expected {
  /** kind[i] for i < end: 0 = a, 1 = b, 2 = pk. */
  readonly kind: Uint8Array
  /** The Primary Key table: id → its columns as text (null for NULL). */
  readonly pk: Map<number, Readonly<Record<string, string | null>>>
  readonly end: number
  /** What the prefix holds: rows of `a` and `b`, and the Primary Key table's upserts, partial updates, deletes. */
  readonly counts: { a: number; b: number; upserts: number; updates: number; deletes: number }
}

const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v))
const pkColumns = ["name", "qty", "price", "version"] as const

/** The reference model applied to items 0 … end-1 (a Primary Key table as StarRocks applies the changes). */
export const expected = (options: SourceOptions, end: number): Expected => {
  const kind = new Uint8Array(end)
  const pk = new Map<number, Record<string, string | null>>()
  const counts = { a: 0, b: 0, upserts: 0, updates: 0, deletes: 0 }
  for (const { index, item } of source(options)) {
    if (index >= end) break
    if (!Change.isChange(item)) {
      if (item._tag === "a") {
        kind[index] = 0
        counts.a++
      } else if (item._tag === "b") {
        kind[index] = 1
        counts.b++
      } else {
        kind[index] = 2
        counts.upserts++
        pk.set(Number(item.id), pkText(item))
      }
      continue
    }
    kind[index] = 2
    const row = Change.row(item) as Partial<RowPk>
    const id = Number(row.id)
    if (item._tag === "Upsert") {
      counts.upserts++
      pk.set(id, pkText(row))
    } else if (item._tag === "Delete") {
      counts.deletes++
      pk.delete(id)
    } else {
      counts.updates++
      // a partial update of a missing key would insert it with NULL in the columns it lacks (never drawn here)
      const before = pk.get(id) ?? {}
      const after: Record<string, string | null> = { ...before }
      for (const c of pkColumns) if (c in row) after[c] = text(row[c])
      pk.set(id, after)
    }
  }
  return { kind, pk, end, counts }
}

const pkText = (row: Partial<RowPk>): Record<string, string | null> => {
  const out: Record<string, string | null> = {}
  for (const c of pkColumns) out[c] = text(row[c])
  return out
}

/** A stored PK row as text, for comparing with `Expected.pk`. */
export const storedPkText = (row: Readonly<Record<string, unknown>>): Record<string, string | null> => pkText(row)
