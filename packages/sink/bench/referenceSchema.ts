import { Schema } from "effect"
import { ColumnType } from "../src/index.js"

/** The benchmark's reference row as a typed Schema (issue 3, section Benchmark). */
export const ReferenceRow = Schema.Struct({
  id: ColumnType.BigInt,
  user_id: ColumnType.Int,
  name: ColumnType.Varchar(64),
  score: ColumnType.Double,
  day: ColumnType.Date,
  ts: ColumnType.DateTime,
  active: ColumnType.Boolean,
  amount: ColumnType.Decimal(10, 2),
  note: Schema.NullOr(ColumnType.Varchar(64)),
  city: ColumnType.Varchar(32)
})
