/**
 * `effect-starrocks describe db.table` against MariaDB on 127.0.0.1:3306 (it plays StarRocks' MySQL-protocol port
 * in tests): the columns and key as the sink learns them through `jdbc-url`, as JSON and as text; a missing table
 * is a TableSchemaError naming it, with exit code 1.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

const bin = fileURLToPath(new URL("../bin/effect-starrocks.mjs", import.meta.url))

const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { ...process.env, ...env }, encoding: "utf8" },
      (e, stdout, stderr) => resolve({ code: e === null ? 0 : typeof e.code === "number" ? e.code : 1, stdout, stderr })
    )
  )

const mysql = (sql: string) =>
  new Promise<void>((resolve, reject) =>
    execFile(
      "mariadb",
      ["-h", "127.0.0.1", "-P", "3306", "-u", "root", "test", "-e", sql],
      (e, _o, stderr) => e === null ? resolve() : reject(new Error(stderr))
    )
  )

describe("effect-starrocks describe", () => {
  it("prints a table's columns and key (JSON and text); a missing table is a typed error and exit 1", async () => {
    const table = `describe_${process.pid}_${Date.now() % 100000}`
    await mysql(
      `CREATE TABLE ${table} (id BIGINT NOT NULL, name VARCHAR(32) NULL, amount DECIMAL(10,2) NOT NULL, PRIMARY KEY (id))`
    )
    try {
      const asJson = await cli(["describe", `test.${table}`, "--jdbc-url", "jdbc:mysql://127.0.0.1:3306", "--json"])
      assert.strictEqual(asJson.code, 0, asJson.stderr)
      const d = JSON.parse(asJson.stdout.trim().split("\n").pop()!) as {
        database: string
        table: string
        columns: Array<{ name: string; type: string; nullable: boolean; key: string }>
      }
      assert.strictEqual(d.database, "test")
      assert.strictEqual(d.table, table)
      assert.deepStrictEqual(d.columns.map((c) => [c.name, c.type, c.nullable]), [
        ["id", "bigint(20)", false],
        ["name", "varchar(32)", true],
        ["amount", "decimal(10,2)", false]
      ])
      assert.strictEqual(d.columns[0]!.key, "PRI")

      const asText = await cli(["describe", `test.${table}`], { STARROCKS_JDBC_URL: "127.0.0.1:3306" })
      assert.strictEqual(asText.code, 0, asText.stderr)
      assert.match(asText.stdout, new RegExp(`test\\.${table}:`))
      assert.match(asText.stdout, /name\s+varchar\(32\) NULL/)

      const missing = await cli(["describe", `test.${table}_missing`, "--jdbc-url", "127.0.0.1:3306"])
      assert.strictEqual(missing.code, 1)
      assert.include(missing.stderr, `${table}_missing`)
      assert.include(missing.stderr, "describe:")
    } finally {
      await mysql(`DROP TABLE IF EXISTS ${table}`)
    }
  }, 60_000)
})
