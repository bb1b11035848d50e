/**
 * The rows of the JetStream example: an order event published as JSON on `orders.<region>`, stored in StarRocks
 * with the stream sequence and the subject it came from.
 */
import { ColumnType } from "@effect-starrocks/sink"
import type { StarRocksEmulator } from "@effect-starrocks/testkit"
import { Schema } from "effect"

/** The JSON payload of a message. */
export const OrderPayload = Schema.Struct({
  order_id: Schema.Number,
  customer: Schema.String,
  amount: Schema.Number
})

/** A row of the `orders` table: the payload plus the JetStream stream sequence and subject. */
export const OrderRow = Schema.Struct({
  seq: ColumnType.BigInt,
  subject: ColumnType.Varchar(128),
  order_id: ColumnType.BigInt,
  customer: ColumnType.Varchar(64),
  amount: ColumnType.Double
})
export type OrderRow = typeof OrderRow.Type

/**
 * The table (DUPLICATE KEY, so a row loaded twice shows up twice). In StarRocks:
 * `CREATE TABLE orders (seq BIGINT, subject VARCHAR(128), order_id BIGINT, customer VARCHAR(64), amount DOUBLE)
 *  DUPLICATE KEY(seq) DISTRIBUTED BY HASH(seq)`.
 */
export const tableDef = (database: string, table: string): StarRocksEmulator.TableDef => ({
  database,
  table,
  model: "DUPLICATE",
  key: ["seq"],
  columns: [
    { name: "seq", type: "BIGINT" },
    { name: "subject", type: "VARCHAR(128)", nullable: false },
    { name: "order_id", type: "BIGINT", nullable: false },
    { name: "customer", type: "VARCHAR(64)", nullable: false },
    { name: "amount", type: "DOUBLE", nullable: false }
  ]
})
