/**
 * The cost of the fenced checkpoint save (issue #13): `Checkpointer/Sql`'s save (a transaction: `SELECT … FOR
 * UPDATE`, `UPDATE`) against the one-statement upsert it replaced (the pre-fencing store, replicated here), on
 * MariaDB (127.0.0.1:3306/test) and PostgreSQL (127.0.0.1:5432/test, user root), and the file store's save (a
 * version file by exclusive link) against the pre-fencing one (an atomic rename). Sequential saves of one key, as a
 * sink does, in alternating rounds; prints the median latency per save of each.
 *
 *   npx tsx packages/sink/bench/checkpointSave.ts [saves per round, default 200] [rounds, default 3]
 */
import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { MysqlClient } from "@effect/sql-mysql2"
import { PgClient } from "@effect/sql-pg"
import * as SqlClient from "@effect/sql/SqlClient"
import { Context, Effect, Layer, Redacted } from "effect"
import * as Os from "node:os"
import * as Checkpointer from "../src/Checkpointer.js"
import * as CheckpointerFileSystem from "../src/Checkpointer/FileSystem.js"
import * as CheckpointerSql from "../src/Checkpointer/Sql.js"
import * as FileStore from "../src/internal/fileStore.js"
import { recordJson } from "../src/internal/stores.js"

const saves = Number(process.argv[2] ?? 200)
const rounds = Number(process.argv[3] ?? 3)

const record = (id: number, epoch: number) =>
  new Checkpointer.CheckpointRecord({
    key: "bench",
    id,
    position: { offset: id * 2000 },
    prepared: { "db.events": [`effect-sr-events-p3-e${epoch}-${id}`] },
    nextLabelId: { "db.events": id + 1 },
    createdAt: Date.now(),
    epoch
  })

type Save = (id: number) => Effect.Effect<void, unknown>

const timed = (save: Save, from: number) =>
  Effect.gen(function*() {
    const samples: Array<number> = []
    for (let i = 0; i < saves; i++) {
      const start = process.hrtime.bigint()
      yield* save(from + i)
      samples.push(Number(process.hrtime.bigint() - start) / 1e6)
    }
    return samples
  })

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const compare = (name: string, plain: Save, fenced: Save) =>
  Effect.gen(function*() {
    const all = { plain: [] as Array<number>, fenced: [] as Array<number> }
    let id = 1
    for (let r = 0; r < rounds; r++) {
      all.plain.push(...yield* timed(plain, id))
      id += saves
      all.fenced.push(...yield* timed(fenced, id))
      id += saves
    }
    const p = median(all.plain)
    const f = median(all.fenced)
    console.log(
      JSON.stringify({ store: name, saves: saves * rounds, plainMedianMs: p, fencedMedianMs: f, ratio: f / p })
    )
  })

const sqlBench = (name: string, client: Layer.Layer<SqlClient.SqlClient, unknown>, dialect: "mysql" | "pg") =>
  Effect.scoped(Effect.gen(function*() {
    const sql = Context.get(yield* Layer.build(client), SqlClient.SqlClient)
    const fencedTable = `fence_bench_${process.pid}_f`
    const plainTable = `fence_bench_${process.pid}_p`
    const q = (t: string) => dialect === "pg" ? `"${t}"` : `\`${t}\``
    yield* Effect.addFinalizer(() =>
      Effect.forEach([fencedTable, plainTable], (t) => sql.unsafe(`DROP TABLE IF EXISTS ${q(t)}`).unprepared).pipe(
        Effect.orDie
      )
    )
    const store = Context.get(
      yield* Layer.build(CheckpointerSql.layerSql({ table: fencedTable }).pipe(Layer.provide(client))),
      Checkpointer.Checkpointer
    )
    const epoch = yield* store.claim("bench", "bench-owner")
    yield* sql.unsafe(
      `CREATE TABLE ${q(plainTable)} (checkpoint_key ${dialect === "pg" ? "TEXT" : "VARBINARY(255)"} NOT NULL ` +
        `PRIMARY KEY, id BIGINT NOT NULL, record ${dialect === "pg" ? "TEXT" : "LONGTEXT"} NOT NULL, ` +
        `updated_at BIGINT NOT NULL)`
    ).unprepared
    // the pre-fencing save: one upsert that keeps the higher id
    const plain: Save = (id) =>
      Effect.flatMap(recordJson(record(id, 0)), (text) =>
        dialect === "pg"
          ? sql.unsafe(
            `INSERT INTO ${q(plainTable)} AS cur VALUES ($1, $2, $3, $4) ON CONFLICT (checkpoint_key) DO UPDATE ` +
              `SET record = EXCLUDED.record, updated_at = EXCLUDED.updated_at, id = EXCLUDED.id ` +
              `WHERE EXCLUDED.id >= cur.id`,
            ["bench", id, text, Date.now()]
          )
          : sql.unsafe(
            `INSERT INTO ${q(plainTable)} VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE ` +
              `record = IF(VALUES(id) >= id, VALUES(record), record), ` +
              `updated_at = IF(VALUES(id) >= id, VALUES(updated_at), updated_at), ` +
              `id = IF(VALUES(id) >= id, VALUES(id), id)`,
            ["bench", id, text, Date.now()]
          ))
    yield* compare(name, plain, (id) => store.save(record(id, epoch)))
  }))

const fileBench = Effect.scoped(Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const directory = yield* fs.makeTempDirectoryScoped({ directory: Os.tmpdir(), prefix: "fence-bench-" })
  const store = yield* CheckpointerFileSystem.makeFileSystem({ directory: path.join(directory, "fenced") })
  const epoch = yield* store.claim("bench", "bench-owner")
  const plainFile = path.join(directory, "plain.json")
  // the pre-fencing save: read the stored record, write a temporary file, fsync, rename, fsync the directory
  const plain: Save = (id) =>
    FileStore.readFileOption(fs, plainFile).pipe(
      Effect.zipRight(recordJson(record(id, 0))),
      Effect.flatMap((text) => FileStore.writeFileAtomic(fs, path, plainFile, text + "\n"))
    )
  yield* compare("file system", plain, (id) => store.save(record(id, epoch)))
})).pipe(Effect.provide(NodeContext.layer))

const MysqlLive = MysqlClient.layer({
  host: "127.0.0.1",
  port: 3306,
  username: "root",
  password: Redacted.make(""),
  database: "test",
  maxConnections: 2
})
const PgLive = PgClient.layer({ host: "127.0.0.1", port: 5432, username: "root", database: "test", maxConnections: 2 })

console.log(JSON.stringify({ loadavg: Os.loadavg().map((l) => Math.round(l * 10) / 10), cpus: Os.cpus().length }))
await Effect.runPromise(
  Effect.all([sqlBench("sql (MariaDB)", MysqlLive, "mysql"), sqlBench("sql (PostgreSQL)", PgLive, "pg"), fileBench], {
    discard: true
  })
)
