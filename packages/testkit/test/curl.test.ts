/**
 * The StarRocks documentation's curl recipe, run with the system curl against the emulator.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { StarRocksEmulator } from "../src/index.js"

const TABLE = {
  database: "db",
  table: "t",
  model: "DUPLICATE" as const,
  key: ["id"],
  columns: [{ name: "id", type: "BIGINT" }, { name: "name", type: "VARCHAR(64)", nullable: true }]
}

const curl = (args: ReadonlyArray<string>) =>
  Effect.async<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = execFile(
      "curl",
      [...args],
      { timeout: 15_000 },
      (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }))
    )
    return Effect.sync(() => child.kill())
  })

const withRows = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-curl-"))
    const file = Path.join(dir, "rows.csv")
    Fs.writeFileSync(file, "1,alice\n2,bob\n3,carol\n")
    return { dir, file }
  }),
  ({ dir }) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

describe("curl recipe", () => {
  it.scopedLive("curl --location-trusted loads rows.csv through the FE and prints the documented body", () =>
    Effect.gen(function*() {
      const em = yield* StarRocksEmulator.make({ users: { root: "" }, tables: [TABLE] })
      const { file } = yield* withRows
      const args = (label: string) => [
        "-sS",
        "--location-trusted",
        "-u",
        "root:",
        "-H",
        "Expect:100-continue",
        "-H",
        `label:${label}`,
        "-H",
        "column_separator:,",
        "-T",
        file,
        `http://${em.fe[0]}/api/db/t/_stream_load`
      ]
      const run = yield* curl(args("l1"))
      assert.strictEqual(run.code, 0, run.stderr)
      const body = JSON.parse(run.stdout)
      assert.strictEqual(body.Status, "Success")
      assert.strictEqual(body.Message, "OK")
      assert.strictEqual(body.Label, "l1")
      assert.strictEqual(body.NumberTotalRows, 3)
      assert.strictEqual(body.NumberLoadedRows, 3)
      assert.strictEqual(body.LoadBytes, 22)
      assert.isTrue(run.stdout.startsWith("{\n    \"TxnId\": "))
      const rows = yield* em.rows("db", "t")
      assert.deepStrictEqual(rows.map((r) => [String(r["id"]), r["name"]]), [["1", "alice"], ["2", "bob"], [
        "3",
        "carol"
      ]])
      // the FE redirected without reading the body; the BE got it with the credentials
      const log = yield* em.requests
      assert.deepStrictEqual(log.map((r) => [r.node, r.bodyBytes]), [["fe0", 0], ["be0", 22]])
      assert.isDefined(log[1]!.headers["authorization"])

      const again = yield* curl(args("l1"))
      const dup = JSON.parse(again.stdout)
      assert.strictEqual(dup.Status, "Label Already Exists")
      assert.strictEqual(dup.ExistingJobStatus, "FINISHED")
      assert.strictEqual((yield* em.rows("db", "t")).length, 3)
    }))

  it.scopedLive("plain -L drops the credentials on the cross-origin redirect: the BE refuses", () =>
    Effect.gen(function*() {
      const em = yield* StarRocksEmulator.make({ users: { root: "" }, tables: [TABLE], admin: false })
      const { file } = yield* withRows
      const run = yield* curl([
        "-sS",
        "-L",
        "-u",
        "root:",
        "-H",
        "Expect:100-continue",
        "-H",
        "label:l2",
        "-T",
        file,
        `http://${em.fe[0]}/api/db/t/_stream_load`
      ])
      const body = JSON.parse(run.stdout)
      assert.strictEqual(body.Status, "Fail")
      assert.strictEqual(body.Message, "no valid Basic authorization")
      assert.strictEqual((yield* em.rows("db", "t")).length, 0)
    }))

  it.scopedLive("without Expect curl is refused by the FE", () =>
    Effect.gen(function*() {
      const em = yield* StarRocksEmulator.make({ users: { root: "" }, tables: [TABLE], admin: false })
      const { file } = yield* withRows
      const run = yield* curl([
        "-sS",
        "--location-trusted",
        "-u",
        "root:",
        "-H",
        "Expect:",
        "-H",
        "label:l3",
        "-T",
        file,
        `http://${em.fe[0]}/api/db/t/_stream_load`
      ])
      const body = JSON.parse(run.stdout)
      assert.strictEqual(body.Status, "FAILED")
      assert.strictEqual(body.Message, "class com.starrocks.common.DdlException: There is no 100-continue header")
    }))
})
