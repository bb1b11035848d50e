/**
 * One conformance suite for the stores, run against every implementation: memory, file system and SQL (MariaDB at
 * 127.0.0.1:3306, database `test`; MARIADB_HOST / MARIADB_PORT / MARIADB_USER / MARIADB_PASSWORD /
 * MARIADB_DATABASE override). Under CI=true an unreachable MariaDB fails the SQL tests instead of skipping them.
 * The Checkpointer also runs on PostgreSQL (127.0.0.1:5432, database `test`, user `root`; PG_HOST / PG_PORT /
 * PG_USER / PG_DATABASE override; skipped like MariaDB when nothing listens, outside CI).
 */
import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { MysqlClient } from "@effect/sql-mysql2"
import { PgClient } from "@effect/sql-pg"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import type { Scope } from "effect"
import { Context, Deferred, Effect, Layer, Option, Random, Redacted } from "effect"
import * as Net from "node:net"
import * as Checkpointer from "../src/Checkpointer.js"
import * as CheckpointerFileSystem from "../src/Checkpointer/FileSystem.js"
import * as CheckpointerSql from "../src/Checkpointer/Sql.js"
import * as Labels from "../src/Labels.js"
import * as LabelStore from "../src/LabelStore.js"
import * as LabelStoreFileSystem from "../src/LabelStore/FileSystem.js"
import * as LabelStoreSql from "../src/LabelStore/Sql.js"

const HOST = process.env.MARIADB_HOST ?? "127.0.0.1"
const PORT = Number(process.env.MARIADB_PORT ?? 3306)
const USER = process.env.MARIADB_USER ?? "root"
const DATABASE = process.env.MARIADB_DATABASE ?? "test"
const ci = process.env.CI === "true" || process.env.CI === "1"

const listening = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = Net.connect({ host, port })
    socket.setTimeout(2000)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
    socket.once("timeout", () => {
      socket.destroy()
      resolve(false)
    })
  })
const reachable = await listening(HOST, PORT)
if (!reachable && !ci) {
  // eslint-disable-next-line no-console
  console.warn(`stores: SQL (MariaDB) tests skipped: nothing listens on ${HOST}:${PORT} (set CI=true to fail instead)`)
}

const MysqlLive = MysqlClient.layer({
  host: HOST,
  port: PORT,
  username: USER,
  password: Redacted.make(process.env.MARIADB_PASSWORD ?? ""),
  database: DATABASE,
  maxConnections: 2
})

const PG_HOST = process.env.PG_HOST ?? "127.0.0.1"
const PG_PORT = Number(process.env.PG_PORT ?? 5432)
const pgReachable = await listening(PG_HOST, PG_PORT)
if (!pgReachable && !ci) {
  // eslint-disable-next-line no-console
  console.warn(
    `stores: PostgreSQL tests skipped: nothing listens on ${PG_HOST}:${PG_PORT} (set CI=true to fail instead)`
  )
}
const PgLive = PgClient.layer({
  host: PG_HOST,
  port: PG_PORT,
  username: process.env.PG_USER ?? "root",
  database: process.env.PG_DATABASE ?? "test",
  maxConnections: 2
})

// ---------------------------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------------------------

interface Backend {
  readonly name: string
  /** Whether a new store over the same location sees what an earlier one wrote. */
  readonly durable: boolean
  /** A fresh, empty location for one test (a directory, a table name prefix), removed when the scope closes. */
  readonly fresh: Effect.Effect<string, unknown, Scope.Scope>
  readonly checkpointer: (location: string) => Layer.Layer<Checkpointer.Checkpointer, unknown>
  /** Absent: the backend has no LabelStore (PostgreSQL). */
  readonly labelStore?: (
    location: string,
    options?: { readonly maxCommitted?: number }
  ) => Layer.Layer<LabelStore.LabelStore, unknown>
}

const memory: Backend = {
  name: "memory",
  durable: false,
  fresh: Effect.succeed(""),
  checkpointer: () => Checkpointer.layerMemoryForTests,
  labelStore: (_, options) => Layer.effect(LabelStore.LabelStore, LabelStore.makeMemory(options))
}

const fileSystem: Backend = {
  name: "file system",
  durable: true,
  fresh: Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "stores-test-" })).pipe(
    Effect.provide(NodeContext.layer)
  ),
  checkpointer: (directory) =>
    CheckpointerFileSystem.layerFileSystem({ directory }).pipe(Layer.provide(NodeContext.layer)),
  labelStore: (directory, options) =>
    LabelStoreFileSystem.layerFileSystem({ directory, ...options }).pipe(Layer.provide(NodeContext.layer))
}

let tableCounter = 0
const sql: Backend = {
  name: "sql (MariaDB)",
  durable: true,
  fresh: Effect.gen(function*() {
    const prefix = `esr_stores_${process.pid}_${Date.now().toString(36)}_${(tableCounter++).toString(36)}`
    const client = Context.get(yield* Layer.build(MysqlLive), SqlClient.SqlClient)
    yield* Effect.addFinalizer(() =>
      Effect.forEach(["cp", "lb"], (suffix) => client.unsafe(`DROP TABLE IF EXISTS \`${prefix}_${suffix}\``).unprepared)
        .pipe(Effect.orDie)
    )
    return prefix
  }),
  checkpointer: (prefix) => CheckpointerSql.layerSql({ table: `${prefix}_cp` }).pipe(Layer.provide(MysqlLive)),
  labelStore: (prefix, options) =>
    LabelStoreSql.layerSql({ table: `${prefix}_lb`, ...options }).pipe(Layer.provide(MysqlLive))
}

const pg: Backend = {
  name: "sql (PostgreSQL)",
  durable: true,
  fresh: Effect.gen(function*() {
    const prefix = `fence_stores_${process.pid}_${Date.now().toString(36)}_${(tableCounter++).toString(36)}`
    const client = Context.get(yield* Layer.build(PgLive), SqlClient.SqlClient)
    yield* Effect.addFinalizer(() => client.unsafe(`DROP TABLE IF EXISTS "${prefix}_cp"`).unprepared.pipe(Effect.orDie))
    return prefix
  }),
  checkpointer: (prefix) => CheckpointerSql.layerSql({ table: `${prefix}_cp` }).pipe(Layer.provide(PgLive))
}

const backends: ReadonlyArray<Backend> = [
  memory,
  fileSystem,
  ...(reachable || ci ? [sql] : []),
  ...(pgReachable || ci ? [pg] : [])
]

const openCheckpointer = (backend: Backend, location: string) =>
  Effect.map(Layer.build(backend.checkpointer(location)), Context.get(Checkpointer.Checkpointer))

const openLabelStore = (backend: Backend, location: string, options?: { readonly maxCommitted?: number }) =>
  Effect.map(Layer.build(backend.labelStore!(location, options)), Context.get(LabelStore.LabelStore))

// ---------------------------------------------------------------------------------------------------------------
// Checkpointer
// ---------------------------------------------------------------------------------------------------------------

const checkpoint = (key: string, id: number, position: unknown = { offset: id }) =>
  new Checkpointer.CheckpointRecord({
    key,
    id,
    position,
    prepared: { "db.orders": [`p-db.orders-${key}-${id}`], "db.items": [] },
    nextLabelId: { "db.orders": id + 1, "db.items": 0 },
    createdAt: 1_700_000_000_000 + id
  })

const checkpointerSuite = (backend: Backend) =>
  describe(`Checkpointer (${backend.name})`, () => {
    it.scopedLive("save then latest returns the record: nested position, prepared labels, next label ids", () =>
      Effect.gen(function*() {
        const store = yield* openCheckpointer(backend, yield* backend.fresh)
        const record = new Checkpointer.CheckpointRecord({
          key: "instance-0",
          id: 42,
          position: {
            stream: "orders",
            partitions: [{ partition: 0, offset: "123456789012345678901" }, { partition: 1, offset: null }],
            meta: { nested: { list: [1, 2.5, { deep: true }], text: "ünïcode \"quoted\"\n" } }
          },
          prepared: {
            "db.orders": ["p-db.orders-0-41", "p-db.orders-0-42"],
            "db.items": ["p-db.items-0-7"],
            "db.empty": []
          },
          nextLabelId: { "db.orders": 43, "db.items": 8, "db.empty": 0 },
          createdAt: 1_700_000_000_123
        })
        yield* store.save(record)
        const latest = yield* store.latest("instance-0")
        assert.isTrue(Option.isSome(latest))
        assert.deepStrictEqual(latest, Option.some(record))
      }))

    it.scopedLive("a key never saved is None", () =>
      Effect.gen(function*() {
        const store = yield* openCheckpointer(backend, yield* backend.fresh)
        assert.deepStrictEqual(yield* store.latest("nobody"), Option.none())
        yield* store.save(checkpoint("somebody", 1))
        assert.deepStrictEqual(yield* store.latest("nobody"), Option.none())
      }))

    it.scopedLive("never goes back to a lower id; an equal id replaces", () =>
      Effect.gen(function*() {
        const store = yield* openCheckpointer(backend, yield* backend.fresh)
        yield* store.save(checkpoint("k", 5))
        yield* store.save(checkpoint("k", 3))
        assert.deepStrictEqual(yield* store.latest("k"), Option.some(checkpoint("k", 5)))
        yield* store.save(checkpoint("k", 5, { offset: "replaced" }))
        assert.deepStrictEqual(yield* store.latest("k"), Option.some(checkpoint("k", 5, { offset: "replaced" })))
        yield* store.save(checkpoint("k", 6))
        assert.deepStrictEqual(yield* store.latest("k"), Option.some(checkpoint("k", 6)))
      }))

    it.scopedLive("concurrent saves in any order end at the highest id", () =>
      Effect.gen(function*() {
        const store = yield* openCheckpointer(backend, yield* backend.fresh)
        const ids = yield* Random.shuffle(Array.from({ length: 20 }, (_, i) => i + 1))
        yield* Effect.forEach(ids, (id) => store.save(checkpoint("k", id)), { concurrency: 5, discard: true })
        assert.deepStrictEqual(yield* store.latest("k"), Option.some(checkpoint("k", 20)))
      }))

    it.scopedLive("keys are independent and many instances share one store", () =>
      Effect.gen(function*() {
        const store = yield* openCheckpointer(backend, yield* backend.fresh)
        const keys = [
          ...Array.from({ length: 8 }, (_, i) => `instance-${i}`),
          "A",
          "a",
          "a ",
          "with/slash and spaces",
          "../../escape",
          "ünï-cødé",
          "x".repeat(200)
        ]
        yield* Effect.forEach(keys, (key, i) => store.save(checkpoint(key, 100 + i)), { concurrency: 4 })
        yield* store.save(checkpoint("instance-3", 1))
        for (const [i, key] of keys.entries()) {
          assert.deepStrictEqual(yield* store.latest(key), Option.some(checkpoint(key, 100 + i)), key)
        }
      }))

    if (backend.durable) {
      it.scopedLive("durable: a store opened again over the same location sees the record", () =>
        Effect.gen(function*() {
          const location = yield* backend.fresh
          yield* Effect.scoped(Effect.gen(function*() {
            const first = yield* openCheckpointer(backend, location)
            yield* first.save(checkpoint("instance-1", 7, { offsets: [1, 2, 3] }))
            yield* first.save(checkpoint("instance-2", 9))
          }))
          const second = yield* openCheckpointer(backend, location)
          assert.deepStrictEqual(
            yield* second.latest("instance-1"),
            Option.some(checkpoint("instance-1", 7, { offsets: [1, 2, 3] }))
          )
          yield* second.save(checkpoint("instance-2", 8))
          assert.deepStrictEqual(yield* second.latest("instance-2"), Option.some(checkpoint("instance-2", 9)))
        }))
    }
  })

// ---------------------------------------------------------------------------------------------------------------
// Checkpointer: fencing (claim, compare-and-set save)
// ---------------------------------------------------------------------------------------------------------------

const at = (epoch: number, key: string, id: number) =>
  new Checkpointer.CheckpointRecord({ ...checkpoint(key, id), epoch })

const fencingSuite = (backend: Backend) =>
  describe(`Checkpointer fencing (${backend.name})`, () => {
    it.scopedLive("claim raises the key's epoch by one per claim, per key; the record stays", () =>
      Effect.gen(function*() {
        const store = yield* openCheckpointer(backend, yield* backend.fresh)
        yield* store.save(checkpoint("k", 3))
        assert.strictEqual(yield* store.claim("k", "owner-a"), 1)
        assert.strictEqual(yield* store.claim("k", "owner-b"), 2)
        assert.strictEqual(yield* store.claim("other", "owner-a"), 1)
        assert.deepStrictEqual(yield* store.latest("k"), Option.some(checkpoint("k", 3)))
        assert.deepStrictEqual(yield* store.latest("other"), Option.none())
        assert.deepStrictEqual(yield* store.latest("never"), Option.none())
      }))

    it.scopedLive("a save under an older epoch is refused (fenced, naming the current epoch and owner)", () =>
      Effect.gen(function*() {
        const store = yield* openCheckpointer(backend, yield* backend.fresh)
        const a = yield* store.claim("k", "owner-a")
        yield* store.save(at(a, "k", 1))
        const b = yield* store.claim("k", "owner-b")
        const error = yield* Effect.flip(store.save(at(a, "k", 2)))
        assert.deepInclude(error, { fenced: true, key: "k", epoch: a, currentEpoch: b, currentOwner: "owner-b" })
        assert.isTrue(Checkpointer.isFenced(error))
        assert.deepStrictEqual(yield* store.latest("k"), Option.some(at(a, "k", 1)))
        // an unowned record (epoch 0) is refused too once the key was claimed
        assert.isTrue(Checkpointer.isFenced(yield* Effect.flip(store.save(checkpoint("k", 9)))))
        // the new owner saves; within its epoch a lower id is ignored
        yield* store.save(at(b, "k", 2))
        yield* store.save(at(b, "k", 1))
        assert.deepStrictEqual(yield* store.latest("k"), Option.some(at(b, "k", 2)))
        // a save under a higher epoch than claimed raises the epoch: the lower one is fenced after it
        yield* store.save(at(b + 5, "k", 3))
        assert.deepInclude(yield* Effect.flip(store.save(at(b, "k", 4))), { fenced: true, currentEpoch: b + 5 })
        assert.strictEqual(yield* store.claim("k", "owner-c"), b + 6)
      }))

    it.scopedLive("concurrent claims (two store instances) each get their own epoch; only the last one saves", () =>
      Effect.gen(function*() {
        const location = yield* backend.fresh
        const stores = backend.durable
          ? [yield* openCheckpointer(backend, location), yield* openCheckpointer(backend, location)]
          : [yield* openCheckpointer(backend, location)]
        yield* stores[0]!.save(checkpoint("k", 1))
        const epochs = yield* Effect.forEach(
          Array.from({ length: 12 }, (_, i) => i),
          (i) => stores[i % stores.length]!.claim("k", `owner-${i}`),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual([...epochs].sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i + 1))
        // a key never saved nor claimed: the racing claims create its row
        const fresh = yield* Effect.forEach(
          Array.from({ length: 12 }, (_, i) => i),
          (i) => stores[i % stores.length]!.claim("fresh", `owner-${i}`),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual([...fresh].sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i + 1))
        assert.deepStrictEqual(yield* stores[0]!.latest("fresh"), Option.none())
        const refused = yield* Effect.forEach(
          Array.from({ length: 11 }, (_, i) => i + 1),
          (epoch) => Effect.flip(stores[epoch % stores.length]!.save(at(epoch, "k", 2))),
          { concurrency: "unbounded" }
        )
        assert.isTrue(refused.every(Checkpointer.isFenced))
        yield* stores[0]!.save(at(12, "k", 2))
        assert.deepStrictEqual(yield* stores[stores.length - 1]!.latest("k"), Option.some(at(12, "k", 2)))
      }))

    it.scopedLive("saves racing a claim: no save of the old epoch lands after the claim", () =>
      Effect.gen(function*() {
        const location = yield* backend.fresh
        const owner = yield* openCheckpointer(backend, location)
        const other = backend.durable ? yield* openCheckpointer(backend, location) : owner
        const a = yield* owner.claim("k", "owner-a")
        // owner a saves ids 1..30 one after another; b's claim starts beside a's 10th save
        const claimed = yield* Deferred.make<number, Checkpointer.CheckpointerError>()
        const results = yield* Effect.forEach(
          Array.from({ length: 30 }, (_, i) => i + 1),
          (id) =>
            Effect.zipRight(
              id === 10 ? Effect.fork(Deferred.complete(claimed, other.claim("k", "owner-b"))) : Effect.void,
              Effect.either(owner.save(at(a, "k", id)))
            )
        )
        const b = yield* Deferred.await(claimed)
        const accepted = results.flatMap((r, i) => r._tag === "Right" ? [i + 1] : [])
        const firstRefused = results.findIndex((r) => r._tag === "Left")
        // once refused, every later save of epoch a is refused too; each refusal is a fence
        if (firstRefused >= 0) {
          assert.isTrue(results.slice(firstRefused).every((r) => r._tag === "Left" && Checkpointer.isFenced(r.left)))
        }
        // what the new owner reads after its claim is the last accepted save: nothing of epoch a comes after it
        const seen = yield* other.latest("k")
        assert.deepStrictEqual(
          Option.map(seen, (r) => r.id),
          accepted.length === 0 ? Option.none() : Option.some(accepted[accepted.length - 1]!)
        )
        yield* other.save(at(b, "k", 31))
        assert.deepStrictEqual(Option.map(yield* owner.latest("k"), (r) => [r.epoch, r.id]), Option.some([b, 31]))
      }))
  })

// ---------------------------------------------------------------------------------------------------------------
// LabelStore
// ---------------------------------------------------------------------------------------------------------------

const label = (name: string, state: LabelStore.LabelState, table = "db.orders", n = 1) =>
  new LabelStore.LabelRecord({ label: name, table, state, rows: n * 10, bytes: n * 1000, updatedAt: 1_700_000_000 + n })

const labelsOf = (records: ReadonlyArray<LabelStore.LabelRecord>) => records.map((r) => r.label)

const labelStoreSuite = (backend: Backend) =>
  describe(`LabelStore (${backend.name})`, () => {
    it.scopedLive("put then get; a missing label is None", () =>
      Effect.gen(function*() {
        const store = yield* openLabelStore(backend, yield* backend.fresh)
        const record = label("p-db.orders-0-1", "pending", "db.orders", 3)
        yield* store.put(record)
        assert.deepStrictEqual(yield* store.get("p-db.orders-0-1"), Option.some(record))
        assert.deepStrictEqual(yield* store.get("P-DB.ORDERS-0-1"), Option.none())
        assert.deepStrictEqual(yield* store.get("missing"), Option.none())
      }))

    it.scopedLive("a put replaces the record and moves it to the end of the list", () =>
      Effect.gen(function*() {
        const store = yield* openLabelStore(backend, yield* backend.fresh)
        yield* store.put(label("l1", "pending"))
        yield* store.put(label("l2", "pending"))
        yield* store.put(label("l1", "committed", "db.orders", 2))
        assert.deepStrictEqual(yield* store.get("l1"), Option.some(label("l1", "committed", "db.orders", 2)))
        assert.deepStrictEqual(labelsOf(yield* store.list()), ["l2", "l1"])
      }))

    it.scopedLive("list filters by table, by state, by both, in put order", () =>
      Effect.gen(function*() {
        const store = yield* openLabelStore(backend, yield* backend.fresh)
        const records = [
          label("o1", "committed", "db.orders"),
          label("i1", "pending", "db.items"),
          label("o2", "pending", "db.orders"),
          label("i2", "in-doubt", "db.items"),
          label("o3", "failed", "db.orders"),
          label("o4", "pending", "db.orders")
        ]
        yield* Effect.forEach(records, store.put, { discard: true })
        assert.deepStrictEqual(yield* store.list(), records)
        assert.deepStrictEqual(yield* store.list({}), records)
        assert.deepStrictEqual(labelsOf(yield* store.list({ table: "db.orders" })), ["o1", "o2", "o3", "o4"])
        assert.deepStrictEqual(labelsOf(yield* store.list({ state: "pending" })), ["i1", "o2", "o4"])
        assert.deepStrictEqual(labelsOf(yield* store.list({ table: "db.orders", state: "pending" })), ["o2", "o4"])
        assert.deepStrictEqual(labelsOf(yield* store.list({ table: "db.items", state: "in-doubt" })), ["i2"])
        assert.deepStrictEqual(yield* store.list({ table: "db.none" }), [])
        assert.deepStrictEqual(yield* store.list({ state: undefined, table: undefined }), records)
      }))

    it.scopedLive("remove deletes a label; removing a missing one is a no-op", () =>
      Effect.gen(function*() {
        const store = yield* openLabelStore(backend, yield* backend.fresh)
        yield* store.put(label("l1", "pending"))
        yield* store.put(label("l2", "committed"))
        yield* store.remove("l1")
        yield* store.remove("never-there")
        assert.deepStrictEqual(yield* store.get("l1"), Option.none())
        assert.deepStrictEqual(labelsOf(yield* store.list()), ["l2"])
      }))

    it.scopedLive("retention: committed labels are capped at maxCommitted, oldest first; others are kept", () =>
      Effect.gen(function*() {
        const store = yield* openLabelStore(backend, yield* backend.fresh, { maxCommitted: 3 })
        yield* store.put(label("p1", "pending"))
        for (let i = 1; i <= 5; i++) yield* store.put(label(`c${i}`, "committed", "db.orders", i))
        yield* store.put(label("f1", "failed"))
        yield* store.put(label("d1", "in-doubt"))
        assert.deepStrictEqual(labelsOf(yield* store.list({ state: "committed" })), ["c3", "c4", "c5"])
        assert.deepStrictEqual(labelsOf(yield* store.list()), ["p1", "c3", "c4", "c5", "f1", "d1"])
        // A re-put makes c3 the newest; the next committed label drops c4.
        yield* store.put(label("c3", "committed", "db.orders", 30))
        yield* store.put(label("c6", "committed", "db.orders", 6))
        assert.deepStrictEqual(labelsOf(yield* store.list({ state: "committed" })), ["c5", "c3", "c6"])
        // A pending label that commits counts too.
        yield* store.put(label("p1", "committed"))
        assert.deepStrictEqual(labelsOf(yield* store.list({ state: "committed" })), ["c3", "c6", "p1"])
        assert.deepStrictEqual(yield* store.get("c5"), Option.none())
      }))

    it.scopedLive("many tables and concurrent puts", () =>
      Effect.gen(function*() {
        const store = yield* openLabelStore(backend, yield* backend.fresh)
        const records = Array.from({ length: 40 }, (_, i) => label(`l-${i}`, "pending", `db.t${i % 4}`, i))
        yield* Effect.forEach(records, store.put, { concurrency: 8, discard: true })
        assert.strictEqual((yield* store.list()).length, 40)
        assert.deepStrictEqual(
          labelsOf(yield* store.list({ table: "db.t1" })).sort(),
          records.filter((r) => r.table === "db.t1").map((r) => r.label).sort()
        )
      }))

    if (backend.durable) {
      it.scopedLive("durable: a store opened again over the same location sees the records, in order", () =>
        Effect.gen(function*() {
          const location = yield* backend.fresh
          const expected = yield* Effect.scoped(Effect.gen(function*() {
            const first = yield* openLabelStore(backend, location, { maxCommitted: 2 })
            yield* first.put(label("a", "pending"))
            yield* first.put(label("b", "committed"))
            yield* first.put(label("c", "committed"))
            yield* first.put(label("d", "committed"))
            yield* first.put(label("e", "in-doubt", "db.items"))
            yield* first.remove("c")
            yield* first.put(label("a", "failed", "db.orders", 9))
            return yield* first.list()
          }))
          assert.deepStrictEqual(labelsOf(expected), ["d", "e", "a"])
          const second = yield* openLabelStore(backend, location, { maxCommitted: 2 })
          assert.deepStrictEqual(yield* second.list(), expected)
          assert.deepStrictEqual(yield* second.get("a"), Option.some(label("a", "failed", "db.orders", 9)))
          yield* second.put(label("f", "committed"))
          yield* second.put(label("g", "committed"))
          assert.deepStrictEqual(labelsOf(yield* second.list()), ["e", "a", "f", "g"])
        }))
    }
  })

for (const backend of backends) {
  checkpointerSuite(backend)
  fencingSuite(backend)
  if (backend.labelStore !== undefined) labelStoreSuite(backend)
}

// ---------------------------------------------------------------------------------------------------------------
// Implementation-specific behaviour
// ---------------------------------------------------------------------------------------------------------------

const withFs = <A, E>(f: (fs: FileSystem.FileSystem, path: Path.Path) => Effect.Effect<A, E>) =>
  Effect.flatMap(Effect.all([FileSystem.FileSystem, Path.Path]), ([fs, path]) => f(fs, path)).pipe(
    Effect.provide(NodeContext.layer)
  )

describe("Checkpointer (file system only)", () => {
  it.scopedLive("a corrupt file is a CheckpointerError naming the file, for latest and for save", () =>
    Effect.gen(function*() {
      const directory = yield* fileSystem.fresh
      const store = yield* openCheckpointer(fileSystem, directory)
      yield* store.save(checkpoint("k", 1))
      const names = yield* withFs((fs) => fs.readDirectory(directory))
      assert.strictEqual(names.length, 1)
      const file = yield* withFs((_, path) => Effect.succeed(path.join(directory, names[0]!)))
      for (const garbage of ["{\"key\":\"k\",\"id\":", "{\"key\":\"k\",\"id\":\"one\"}", ""]) {
        yield* withFs((fs) => fs.writeFileString(file, garbage))
        const error = yield* Effect.flip(store.latest("k"))
        assert.strictEqual(error._tag, "CheckpointerError")
        assert.include(error.reason, file)
        const saveError = yield* Effect.flip(store.save(checkpoint("k", 2)))
        assert.include(saveError.reason, file)
      }
    }))

  it.scopedLive("a position that is not JSON-safe is a CheckpointerError and the stored record stays", () =>
    Effect.gen(function*() {
      const store = yield* openCheckpointer(fileSystem, yield* fileSystem.fresh)
      yield* store.save(checkpoint("k", 1))
      const error = yield* Effect.flip(store.save(checkpoint("k", 2, { offset: 10n })))
      assert.strictEqual(error._tag, "CheckpointerError")
      assert.deepStrictEqual(yield* store.latest("k"), Option.some(checkpoint("k", 1)))
    }))

  it.scopedLive("a checkpoint file written before fencing is read as epoch 0 and replaced by the first version", () =>
    Effect.gen(function*() {
      const directory = yield* fileSystem.fresh
      const legacy = `checkpoint-${Buffer.from("k").toString("hex")}.json`
      const old = JSON.stringify({ ...JSON.parse(JSON.stringify(checkpoint("k", 4))), epoch: undefined })
      yield* withFs((fs, path) => fs.writeFileString(path.join(directory, legacy), old + "\n"))
      const store = yield* openCheckpointer(fileSystem, directory)
      assert.deepStrictEqual(yield* store.latest("k"), Option.some(checkpoint("k", 4)))
      assert.strictEqual(yield* store.claim("k", "owner-a"), 1)
      assert.deepStrictEqual(yield* withFs((fs) => fs.readDirectory(directory)), [
        `checkpoint-${Buffer.from("k").toString("hex")}.1.json`
      ])
      assert.deepStrictEqual(yield* store.latest("k"), Option.some(checkpoint("k", 4)))
      yield* store.save(at(1, "k", 5))
      // the version file is the record's JSON (plus its fence): what Labels.decodeCheckpoint and the CLI read
      const text = yield* withFs((fs, path) =>
        fs.readFileString(path.join(directory, `checkpoint-${Buffer.from("k").toString("hex")}.2.json`))
      )
      assert.deepStrictEqual(yield* Labels.decodeCheckpoint(text), at(1, "k", 5))
      assert.deepInclude(JSON.parse(text), { fence: { epoch: 1, owner: "owner-a" } })
    }))

  it.scopedLive("writes leave no temporary files behind", () =>
    Effect.gen(function*() {
      const directory = yield* fileSystem.fresh
      const store = yield* openCheckpointer(fileSystem, directory)
      for (let id = 1; id <= 5; id++) yield* store.save(checkpoint("k", id))
      const names = yield* withFs((fs) => fs.readDirectory(directory))
      assert.deepStrictEqual(names, [`checkpoint-${Buffer.from("k").toString("hex")}.5.json`])
    }))
})

describe("LabelStore (file system only)", () => {
  it.scopedLive("a line torn by a crash at the end of the log is dropped; the rest is kept", () =>
    Effect.gen(function*() {
      const directory = yield* fileSystem.fresh
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* openLabelStore(fileSystem, directory)
        yield* store.put(label("a", "pending"))
        yield* store.put(label("b", "committed"))
      }))
      const file = yield* withFs((_, path) => Effect.succeed(path.join(directory, "labels.jsonl")))
      const content = yield* withFs((fs) => fs.readFileString(file))
      yield* withFs((fs) => fs.writeFileString(file, content + "{\"put\":{\"label\":\"c\",\"tab"))
      const reopened = yield* openLabelStore(fileSystem, directory)
      assert.deepStrictEqual(labelsOf(yield* reopened.list()), ["a", "b"])
      yield* reopened.put(label("c", "pending"))
      const again = yield* openLabelStore(fileSystem, directory)
      assert.deepStrictEqual(labelsOf(yield* again.list()), ["a", "b", "c"])
    }))

  it.scopedLive("a corrupt line inside the log is a LabelStoreError naming the file and the line", () =>
    Effect.gen(function*() {
      const directory = yield* fileSystem.fresh
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* openLabelStore(fileSystem, directory)
        yield* store.put(label("a", "pending"))
        yield* store.put(label("b", "committed"))
      }))
      const file = yield* withFs((_, path) => Effect.succeed(path.join(directory, "labels.jsonl")))
      const lines = (yield* withFs((fs) => fs.readFileString(file))).split("\n")
      lines[0] = "{\"put\":{\"label\":\"a\",\"state\":\"unknown-state\"}}"
      yield* withFs((fs) => fs.writeFileString(file, lines.join("\n")))
      const error = yield* Effect.flip(openLabelStore(fileSystem, directory))
      assert.strictEqual((error as LabelStore.LabelStoreError)._tag, "LabelStoreError")
      assert.include((error as LabelStore.LabelStoreError).reason, `${file}, line 1`)
    }))

  it.scopedLive("the log is compacted and stays correct", () =>
    Effect.gen(function*() {
      const directory = yield* fileSystem.fresh
      const file = yield* withFs((_, path) => Effect.succeed(path.join(directory, "labels.jsonl")))
      const store = yield* openLabelStore(fileSystem, directory, { maxCommitted: 5 })
      for (let i = 0; i < 1_100; i++) yield* store.put(label(`l-${i % 20}`, i % 3 === 0 ? "committed" : "pending"))
      const expected = yield* store.list()
      const lineCount = (yield* withFs((fs) => fs.readFileString(file))).split("\n").length - 1
      assert.isBelow(lineCount, 1_000)
      const reopened = yield* openLabelStore(fileSystem, directory, { maxCommitted: 5 })
      assert.deepStrictEqual(yield* reopened.list(), expected)
    }), 60_000)
})

const sqlOnly = reachable || ci ? describe : describe.skip

sqlOnly("stores (SQL only)", () => {
  it("MariaDB is reachable (required under CI)", () => {
    assert.isTrue(reachable, `MariaDB at ${HOST}:${PORT} is not reachable`)
  })

  it.scopedLive("a corrupt checkpoint row is a CheckpointerError naming the table and key", () =>
    Effect.gen(function*() {
      const prefix = yield* sql.fresh
      const store = yield* openCheckpointer(sql, prefix)
      yield* store.save(checkpoint("k", 1))
      const client = Context.get(yield* Layer.build(MysqlLive), SqlClient.SqlClient)
      yield* client.unsafe(`UPDATE \`${prefix}_cp\` SET record = '{"key":"k"'`).unprepared
      const error = yield* Effect.flip(store.latest("k"))
      assert.strictEqual(error._tag, "CheckpointerError")
      assert.include(error.reason, `${prefix}_cp`)
    }))

  it.scopedLive("keys and labels longer than 255 bytes are refused, not truncated", () =>
    Effect.gen(function*() {
      const prefix = yield* sql.fresh
      const checkpoints = yield* openCheckpointer(sql, prefix)
      const labels = yield* openLabelStore(sql, prefix)
      const error = yield* Effect.flip(checkpoints.save(checkpoint("k".repeat(256), 1)))
      assert.include(error.reason, "255")
      const labelError = yield* Effect.flip(labels.put(label("l".repeat(256), "pending")))
      assert.include(labelError.reason, "255")
    }))

  it.scopedLive("a checkpoint table made before fencing gets its fence columns; its record reads as epoch 0", () =>
    Effect.gen(function*() {
      const prefix = yield* sql.fresh
      const client = Context.get(yield* Layer.build(MysqlLive), SqlClient.SqlClient)
      // the table and row as the store wrote them before fencing
      yield* client.unsafe(`CREATE TABLE \`${prefix}_cp\` (checkpoint_key VARBINARY(255) NOT NULL PRIMARY KEY,
        id BIGINT NOT NULL, record LONGTEXT NOT NULL, updated_at BIGINT NOT NULL)`).unprepared
      const old = JSON.stringify({ ...JSON.parse(JSON.stringify(checkpoint("k", 4))), epoch: undefined })
      yield* client.unsafe(`INSERT INTO \`${prefix}_cp\` VALUES ('k', 4, ?, 0)`, [old]).unprepared
      // two stores open it at once: both migrate, neither fails
      const [store] = yield* Effect.all([openCheckpointer(sql, prefix), openCheckpointer(sql, prefix)], {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(yield* store.latest("k"), Option.some(checkpoint("k", 4)))
      assert.strictEqual((yield* store.latest("k")).pipe(Option.getOrThrow).epoch, 0)
      assert.strictEqual(yield* store.claim("k", "owner-a"), 1)
      assert.isTrue(Checkpointer.isFenced(yield* Effect.flip(store.save(checkpoint("k", 5)))))
      yield* store.save(at(1, "k", 5))
      assert.deepStrictEqual(yield* store.latest("k"), Option.some(at(1, "k", 5)))
    }))

  it.scopedLive("an invalid table name is refused", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Layer.build(CheckpointerSql.layerSql({ table: "x; DROP TABLE y" }).pipe(Layer.provide(MysqlLive)))
      )
      assert.strictEqual((error as Checkpointer.CheckpointerError)._tag, "CheckpointerError")
    }))
})

const pgOnly = pgReachable || ci ? describe : describe.skip

pgOnly("Checkpointer (PostgreSQL only)", () => {
  it("PostgreSQL is reachable (required under CI)", () => {
    assert.isTrue(pgReachable, `PostgreSQL at ${PG_HOST}:${PG_PORT} is not reachable`)
  })

  it.scopedLive("a table without the fence columns gets them; its rows read as epoch 0", () =>
    Effect.gen(function*() {
      const prefix = yield* pg.fresh
      const client = Context.get(yield* Layer.build(PgLive), SqlClient.SqlClient)
      yield* client.unsafe(`CREATE TABLE "${prefix}_cp" (checkpoint_key TEXT NOT NULL PRIMARY KEY,
        id BIGINT NOT NULL, record TEXT NOT NULL, updated_at BIGINT NOT NULL)`).unprepared
      const old = JSON.stringify({ ...JSON.parse(JSON.stringify(checkpoint("k", 4))), epoch: undefined })
      yield* client.unsafe(`INSERT INTO "${prefix}_cp" VALUES ('k', 4, $1, 0)`, [old]).unprepared
      const store = yield* openCheckpointer(pg, prefix)
      assert.deepStrictEqual(yield* store.latest("k"), Option.some(checkpoint("k", 4)))
      assert.strictEqual(yield* store.claim("k", "owner-a"), 1)
      assert.isTrue(Checkpointer.isFenced(yield* Effect.flip(store.save(checkpoint("k", 5)))))
      yield* store.save(at(1, "k", 5))
      assert.deepStrictEqual(yield* store.latest("k"), Option.some(at(1, "k", 5)))
    }))
})
