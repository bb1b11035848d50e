/**
 * The reference rows of the benchmark and the demo (issue "StarRocksSink", section Benchmark): row `i` is
 * fully determined by `i`, so a loaded table can be checked against the source without keeping it.
 *
 * @since 0.1.0
 */
import { BigDecimal, Schema } from "effect"
import type { TableDef } from "./internal/model.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface ReferenceRow {
  readonly id: number
  readonly user_id: number
  readonly name: string
  readonly score: number
  readonly day: Date
  readonly ts: Date
  readonly active: boolean
  readonly amount: BigDecimal.BigDecimal
  readonly note: string | null
  readonly city: string
}

/**
 * @since 0.1.0
 * @category constants
 */
export const cities: ReadonlyArray<string> = [
  "Amsterdam",
  "Berlin",
  "Chengdu",
  "Dublin",
  "Espoo",
  "Florence",
  "Guangzhou",
  "Helsinki"
]

/** The sink's column-type annotation key (a global symbol: no dependency on the sink package). */
const ColumnTypeId = Symbol.for("@effect-starrocks/sink/ColumnType")
const typed = <S extends Schema.Annotable.All>(schema: S, type: string): S =>
  schema.annotations({ [ColumnTypeId]: type }) as S

/**
 * The reference row as an `effect/Schema` struct whose fields carry their StarRocks column types (read by
 * `@effect-starrocks/sink`'s encoders).
 *
 * @since 0.1.0
 * @category schemas
 */
export const schema = Schema.Struct({
  id: typed(Schema.Number, "BIGINT"),
  user_id: typed(Schema.Number, "INT"),
  name: typed(Schema.String, "VARCHAR(64)"),
  score: typed(Schema.Number, "DOUBLE"),
  day: typed(Schema.DateFromSelf, "DATE"),
  ts: typed(Schema.DateFromSelf, "DATETIME"),
  active: typed(Schema.Boolean, "BOOLEAN"),
  amount: typed(Schema.BigDecimalFromSelf, "DECIMAL(10,2)"),
  note: Schema.NullOr(typed(Schema.String, "VARCHAR(64)")),
  city: typed(Schema.String, "VARCHAR(32)")
})

const DAY_MS = 86_400_000
const DAY0 = Date.UTC(2024, 0, 1)

/**
 * Row `i` (i = 0, 1, …).
 *
 * @since 0.1.0
 * @category constructors
 */
export const row = (i: number): ReferenceRow => ({
  id: i,
  user_id: (i * 7919) % 1_000_000,
  name: `user_${i}`,
  score: i * 0.5,
  day: new Date(DAY0 + (i % 366) * DAY_MS),
  ts: new Date(1_700_000_000_000 + i * 1000),
  active: i % 2 === 0,
  amount: BigDecimal.make(BigInt(i % 100_000), 2),
  note: i % 10 === 0 ? null : `note ${i}`,
  city: cities[i % 8]!
})

/**
 * Rows `from` … `from + count - 1`, generated lazily.
 *
 * @since 0.1.0
 * @category constructors
 */
export const rows = function*(count: number, from = 0): Generator<ReferenceRow> {
  for (let i = from; i < from + count; i++) yield row(i)
}

/**
 * The StarRocks table for the reference rows (DUPLICATE KEY(id)).
 *
 * @since 0.1.0
 * @category constructors
 */
export const tableDef = (database: string, table: string, model: "DUPLICATE" | "PRIMARY" = "DUPLICATE"): TableDef => ({
  database,
  table,
  model,
  key: ["id"],
  columns: [
    { name: "id", type: "BIGINT" },
    { name: "user_id", type: "INT", nullable: false },
    { name: "name", type: "VARCHAR(64)", nullable: false },
    { name: "score", type: "DOUBLE", nullable: false },
    { name: "day", type: "DATE", nullable: false },
    { name: "ts", type: "DATETIME", nullable: false },
    { name: "active", type: "BOOLEAN", nullable: false },
    { name: "amount", type: "DECIMAL(10,2)", nullable: false },
    { name: "note", type: "VARCHAR(64)", nullable: true },
    { name: "city", type: "VARCHAR(32)", nullable: false }
  ]
})

const pad = (n: number, w = 2) => String(n).padStart(w, "0")

/**
 * Row `i` as the emulator stores it (the `Cell` representation: BIGINT as bigint, DATE/DATETIME as text in UTC,
 * DECIMAL as text with its scale).
 *
 * @since 0.1.0
 * @category constructors
 */
export const expectedCells = (i: number): Record<string, unknown> => {
  const r = row(i)
  const d = r.day
  const t = r.ts
  return {
    id: BigInt(i),
    user_id: r.user_id,
    name: r.name,
    score: r.score,
    day: `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`,
    ts: `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())} ${pad(t.getUTCHours())}:${
      pad(t.getUTCMinutes())
    }:${pad(t.getUTCSeconds())}`,
    active: r.active,
    amount: `${Math.floor((i % 100_000) / 100)}.${pad((i % 100_000) % 100)}`,
    note: r.note,
    city: r.city
  }
}
