/**
 * `effect-starrocks labels list|abort|commit` as a child process against the emulator started in this process:
 * the labels under a prefix with their states, a dry-run abort that changes nothing, `--confirm` that rolls back,
 * a commit by label, a checkpoint file's labels, connection settings from `STARROCKS_*` variables, and a missing
 * flag as exit code 1.
 */
import * as Checkpointer from "@effect-starrocks/sink/Checkpointer"
import * as Labels from "@effect-starrocks/sink/Labels"
import * as LoadClient from "@effect-starrocks/sink/LoadClient"
import * as StarRocksConfig from "@effect-starrocks/sink/StarRocksConfig"
import * as StarRocksEmulator from "@effect-starrocks/testkit/StarRocksEmulator"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { runCli } from "./launcher.js"

const db = "db"
const table = "events"
const prefix = "job1"

describe("effect-starrocks labels", () => {
  it.scoped(
    "lists, aborts (dry run, then --confirm) and commits the labels under a prefix",
    () =>
      Effect.gen(function*() {
        const emu = yield* StarRocksEmulator.make({ users: { root: "", ops: "ops-pw" } })
        yield* emu.createTable({
          database: db,
          table,
          model: "DUPLICATE",
          key: [],
          columns: [{ name: "id", type: "INT" }]
        })
        const config = StarRocksConfig.make({
          loadUrl: emu.fe,
          database: db,
          table,
          username: "root",
          password: Redacted.make(""),
          maxRetries: 0
        })
        const label = (id: number) => Labels.labelOf(prefix, table, "0", id)
        const txn = (id: number, prepare: boolean) =>
          Effect.gen(function*() {
            const client = yield* LoadClient.LoadClient
            const target = { database: db, table, label: label(id) }
            const body = new TextEncoder().encode(`${id}\n`)
            yield* client.begin(target)
            yield* client.loadTxn({ ...target, headers: { format: "csv" }, body: { chunks: [body], byteLength: 2 } })
            if (prepare) yield* client.prepare(target)
          }).pipe(Effect.provide(LoadClient.layer(config)))
        yield* txn(0, true)
        yield* txn(1, false)
        const base = ["--prefix", prefix, "--table", `${db}.${table}`, "--load-url", emu.fe[0]!]

        const listed = yield* runCli(["labels", "list", ...base])
        assert.strictEqual(listed.code, 0, listed.stderr)
        assert.include(listed.stdout, `${db}.${table}  ${label(0)}  PREPARED  [walk]`)
        assert.include(listed.stdout, `${db}.${table}  ${label(1)}  PREPARE  [walk]`)
        assert.include(listed.stdout, "2 labels, 2 lingering")

        const dry = yield* runCli(["labels", "abort", ...base])
        assert.strictEqual(dry.code, 0, dry.stderr)
        assert.include(dry.stdout, "would roll back 2 lingering transactions (dry run: add --confirm")
        assert.strictEqual(yield* emu.loadState(db, label(0)), "PREPARED")
        assert.strictEqual(yield* emu.loadState(db, label(1)), "PREPARE")

        const committed = yield* runCli(["labels", "commit", ...base, "--label", label(0), "--json"])
        assert.strictEqual(committed.code, 0, committed.stderr)
        assert.deepStrictEqual(JSON.parse(committed.stdout.trim()), {
          database: db,
          table,
          label: label(0),
          state: "VISIBLE"
        })
        assert.deepStrictEqual((yield* emu.rows(db, table)).map((r) => r["id"]), [0])

        // connection from the environment, the password from the variable --password-env names
        const confirmed = yield* runCli(
          [
            "labels",
            "abort",
            "--prefix",
            prefix,
            "--database",
            db,
            "--table",
            table,
            "--password-env",
            "OPS_PW",
            "--confirm"
          ],
          { env: { STARROCKS_LOAD_URL: emu.fe[0]!, STARROCKS_USERNAME: "ops", OPS_PW: "ops-pw" } }
        )
        assert.strictEqual(confirmed.code, 0, confirmed.stderr)
        assert.include(confirmed.stdout, `${label(1)}  PREPARE  [walk]  action: rolled back`)
        assert.include(confirmed.stdout, "rolled back 1 lingering transactions")
        assert.notInclude(confirmed.stdout + confirmed.stderr, "ops-pw")
        assert.strictEqual(yield* emu.loadState(db, label(1)), "ABORTED")
        assert.strictEqual(yield* emu.loadState(db, label(0)), "VISIBLE")

        // a checkpoint file: its prepared label, then the ids from its next label id
        yield* txn(5, true)
        yield* txn(7, true)
        const record = new Checkpointer.CheckpointRecord({
          key: `${prefix}-${db}.${table}-0`,
          id: 3,
          position: 42,
          prepared: { [`${db}.${table}`]: [label(5)] },
          nextLabelId: { [`${db}.${table}`]: 6 },
          createdAt: 0
        })
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "labels-test-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
        const file = path.join(dir, "checkpoint.json")
        fs.writeFileSync(file, JSON.stringify(Schema.encodeSync(Checkpointer.CheckpointRecord)(record)))
        const fromCheckpoint = yield* runCli([
          "labels",
          "list",
          "--prefix",
          prefix,
          "--checkpoint-file",
          file,
          "--load-url",
          emu.fe[0]!,
          "--json"
        ])
        assert.strictEqual(fromCheckpoint.code, 0, fromCheckpoint.stderr)
        const lines = fromCheckpoint.stdout.trim().split("\n").map((l) => JSON.parse(l))
        assert.deepStrictEqual(lines.map((l) => [l.label, l.state, l.foundBy]), [
          [label(5), "PREPARED", "checkpoint"],
          [label(7), "PREPARED", "walk"]
        ])

        const missing = yield* runCli(["labels", "list", "--table", `${db}.${table}`, "--load-url", emu.fe[0]!])
        assert.strictEqual(missing.code, 1)
        assert.include(missing.stderr, "labels list: --prefix: is required")
      }),
    180_000
  )
})
