/**
 * Where the integration suite loads into: the testkit emulator (memory or MariaDB storage) or a real StarRocks
 * cluster (`STARROCKS_FE=host:port STARROCKS_JDBC=host:port npm run test:real`). The test bodies in `suite.ts`
 * are shared by both.
 */
import type { StarRocksEmulator } from "@effect-starrocks/testkit"
import { MysqlClient } from "@effect/sql-mysql2"
import type { Effect, Redacted } from "effect"
import { Context } from "effect"

export interface TableSpec {
  readonly database: string
  readonly table: string
  readonly model: "DUPLICATE" | "PRIMARY"
  readonly key: ReadonlyArray<string>
  readonly columns: ReadonlyArray<
    { readonly name: string; readonly type: string; readonly nullable?: boolean | undefined }
  >
}

export interface Target {
  readonly name: string
  readonly loadUrl: ReadonlyArray<string>
  readonly jdbc: { readonly host: string; readonly port: number } | undefined
  /** The user for the MySQL-protocol port where it differs from the load user (MariaDB plays StarRocks there). */
  readonly jdbcCredentials: { readonly username: string; readonly password: Redacted.Redacted<string> }
  readonly username: string
  readonly password: string
  readonly database: string
  readonly createTable: (spec: TableSpec) => Effect.Effect<void, unknown>
  /** Visible rows, every value rendered as text (null stays null), in key order. */
  readonly rows: (spec: TableSpec) => Effect.Effect<ReadonlyArray<Record<string, string | null>>, unknown>
  /** Emulator only: the emulator itself (faults, request log, transactions). */
  readonly emulator: StarRocksEmulator.StarRocksEmulator | undefined
}

export const Target = Context.GenericTag<Target>("test/Target")

/** Renders a stored value as text so emulator cells and MySQL-protocol values compare alike. */
export const text = (value: unknown): string | null => {
  if (value === null || value === undefined) return null
  if (typeof value === "boolean") return value ? "1" : "0"
  if (typeof value === "bigint") return value.toString()
  if (value instanceof Date) return value.toISOString()
  if (Array.isArray(value)) return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? Number(v) : v))
  if (typeof value === "object") return JSON.stringify(value)
  return String(value)
}

export const textRow = (row: Record<string, unknown>): Record<string, string | null> => {
  const out: Record<string, string | null> = {}
  for (const [k, v] of Object.entries(row)) if (!k.startsWith("__")) out[k] = text(v)
  return out
}

export { MysqlClient }
