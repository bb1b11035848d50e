/**
 * What the emulator-backed tests share: a fresh DUPLICATE table of `db` per test (its name a prefix and a counter
 * of this module, so tests of one file never meet each other's rows), and a configuration for it as user `root`
 * with an empty password, to which each test file adds its own defaults.
 */
import type { StarRocksEmulator } from "@effect-starrocks/testkit"
import { Effect, Redacted } from "effect"
import { StarRocksConfig } from "../src/index.js"

let seq = 0

export interface Column {
  readonly name: string
  readonly type: string
  readonly nullable?: boolean
}

/** Creates the DUPLICATE table `db.<prefix><n>` with `columns`; its name. */
export const duplicateTable = (
  emulator: StarRocksEmulator.StarRocksEmulator,
  prefix: string,
  columns: ReadonlyArray<Column>
): Effect.Effect<string> => {
  const table = `${prefix}${++seq}`
  return emulator.createTable({ database: "db", table, model: "DUPLICATE", key: [], columns: [...columns] }).pipe(
    Effect.orDie,
    Effect.as(table)
  )
}

/** The configuration of `db.<table>` at `loadUrl` as `root` (empty password), with `options` over it. */
export const configOf = (
  loadUrl: ReadonlyArray<string>,
  table: string,
  options: Partial<StarRocksConfig.Options> = {}
): StarRocksConfig.StarRocksConfig =>
  StarRocksConfig.make({
    loadUrl,
    database: "db",
    table,
    username: "root",
    password: Redacted.make(""),
    ...options
  })
