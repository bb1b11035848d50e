/**
 * Partition-scoped, fenced exactly-once (issue #13, items 1 and 3) against the emulator: one sink per partition
 * with an `owner`, the checkpoint key claimed at start (a new epoch), every save a compare-and-set. An owner whose key
 * was claimed by another cannot commit: its save is refused, it rolls back what it prepared and fails `Fenced`.
 * The takeover runs on the in-memory store and, each process with its own connection pool, on the SQL store over
 * MariaDB (127.0.0.1:3306/test) and PostgreSQL (127.0.0.1:5432/test, user root); those are skipped when nothing
 * listens there, unless CI=true.
 */
import { MysqlClient } from "@effect/sql-mysql2"
import { PgClient } from "@effect/sql-pg"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import type { Scope } from "effect"
import {
  Cause,
  Context,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Redacted,
  Schedule,
  Schema,
  Stream
} from "effect"
import * as Net from "node:net"
import * as CheckpointerSql from "../src/Checkpointer/Sql.js"
import { Checkpoint, Checkpointer, LabelStore, LoadClient, StarRocksConfig, StarRocksSink } from "../src/index.js"
import * as Fixture from "./integration/exactlyOnceFixture.js"
import { db, Emulator, Row } from "./integration/exactlyOnceFixture.js"

const rowsFrom = (from: number, to: number): ReadonlyArray<Row> => {
  const out: Array<Row> = []
  for (let i = from; i < to; i++) out.push({ id: i, note: `note ${i}` })
  return out
}

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
const ci = process.env.CI === "true" || process.env.CI === "1"
const MysqlLive = MysqlClient.layer({
  host: "127.0.0.1",
  port: 3306,
  username: "root",
  password: Redacted.make(""),
  database: "test",
  maxConnections: 2
})
const PgLive = PgClient.layer({ host: "127.0.0.1", port: 5432, username: "root", database: "test", maxConnections: 2 })

/**
 * Where the checkpoints of a test live: `open` gives each "process" its own store over the same place (the
 * in-memory one is shared by all: it is one process's memory).
 */
interface Store {
  readonly name: string
  readonly open: Effect.Effect<Effect.Effect<Checkpointer.Checkpointer, unknown, Scope.Scope>, unknown, Scope.Scope>
}
let tables = 0
const sqlStore = (name: string, client: Layer.Layer<SqlClient.SqlClient, unknown>, drop: (t: string) => string) => ({
  name,
  open: Effect.gen(function*() {
    const table = `fence_eo_${process.pid}_${Date.now().toString(36)}_${tables++}`
    const sql = Context.get(yield* Layer.build(client), SqlClient.SqlClient)
    yield* Effect.addFinalizer(() => sql.unsafe(drop(table)).unprepared.pipe(Effect.orDie))
    return Effect.map(
      Layer.build(CheckpointerSql.layerSql({ table }).pipe(Layer.provide(client))),
      Context.get(Checkpointer.Checkpointer)
    )
  })
})
const stores: ReadonlyArray<Store> = [
  {
    name: "memory",
    open: Effect.map(Checkpointer.makeMemoryForTests, (store) => Effect.succeed(store))
  },
  ...((await listening("127.0.0.1", 3306)) || ci
    ? [sqlStore("sql (MariaDB)", MysqlLive, (t) => `DROP TABLE IF EXISTS \`${t}\``)]
    : []),
  ...((await listening("127.0.0.1", 5432)) || ci
    ? [sqlStore("sql (PostgreSQL)", PgLive, (t) => `DROP TABLE IF EXISTS "${t}"`)]
    : [])
]

// the exactly-once suites' table, configuration and emulator (test/integration/exactlyOnceFixture.ts); the
// Checkpointer is shared by both "processes" (in production: the SQL store), each has a LabelStore of its own
// (`services` below)
const setup = Fixture.setupTable("fence")
type Ctx = Fixture.Ctx

const configFor = (ctx: Ctx, overrides: Partial<StarRocksConfig.Options> = {}) =>
  Fixture.configFor(ctx, { maxRows: 25, ...overrides })

/**
 * A process's services: its own LoadClient (through `client`, a test's wrapper, when given) and LabelStore, the
 * shared Checkpointer.
 */
const services = (
  ctx: Ctx,
  config: StarRocksConfig.StarRocksConfig,
  checkpointer = ctx.checkpointer,
  client?: (c: LoadClient.LoadClient) => LoadClient.LoadClient
) =>
  Layer.mergeAll(
    client === undefined
      ? LoadClient.layer(config)
      : Layer.effect(LoadClient.LoadClient, Effect.map(LoadClient.LoadClient, client)).pipe(
        Layer.provide(LoadClient.layer(config))
      ),
    LabelStore.layerMemory,
    Layer.succeed(Checkpointer.Checkpointer, checkpointer)
  ).pipe(
    Layer.provideMerge(StarRocksConfig.layerFrom(config)),
    Layer.provideMerge(Logger.minimumLogLevel(LogLevel.Error))
  )

const KEY = "orders-partition-3"
/** The sink options of one partition owned by `owner`. */
const partition = (owner: string) => ({ position: Schema.Number, checkpointKey: KEY, instance: "p3", owner })

const visibleIds = (ctx: Ctx) =>
  Effect.map(ctx.emulator.rows(db, ctx.table), (rows) => rows.map((r) => Number(r["id"] as bigint)))

const assertExactlyOnce = (ctx: Ctx, n: number) =>
  Effect.gen(function*() {
    const ids = yield* visibleIds(ctx)
    const counts = new Map<number, number>()
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1)
    const duplicated = [...counts.values()].filter((c) => c > 1).length
    let lost = 0
    for (let i = 0; i < n; i++) if (!counts.has(i)) lost++
    assert.deepStrictEqual({ rows: ids.length, lost, duplicated }, { rows: n, lost: 0, duplicated: 0 })
  })

const txnsOf = (ctx: Ctx) =>
  Effect.map(ctx.emulator.transactions(db), (txns) => txns.filter((t) => t.table === ctx.table))

/** A partition's pipeline as each process runs it: recover (claims), resume the source after it, run the sink. */
const pipeline = (
  ctx: Ctx,
  owner: string,
  source: (from: number) => Stream.Stream<Row>,
  checkpointer?: Checkpointer.Checkpointer,
  client?: (c: LoadClient.LoadClient) => LoadClient.LoadClient
) =>
  Effect.gen(function*() {
    const resumeAfter = yield* StarRocksSink.recover(partition(owner))
    return yield* source(Option.getOrElse(resumeAfter, () => -1) + 1).pipe(
      Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 100 }),
      Stream.run(StarRocksSink.exactlyOnce(Row, partition(owner)))
    )
  }).pipe(Effect.provide(services(ctx, configFor(ctx), checkpointer, client)))

/**
 * Owner a's source in the takeover tests: rows from `from` to 249, then it stalls (signals `paused`, waits for
 * `resume`: a GC pause, SIGSTOP, a network partition) before rows 250..299 and the barrier of row 299.
 */
const stallingAt250 = (paused: Deferred.Deferred<void>, resume: Deferred.Deferred<void>) => (from: number) =>
  Stream.concat(
    Stream.fromIterable(rowsFrom(from, 250)),
    Stream.fromEffect(Effect.zipRight(Deferred.succeed(paused, undefined), Deferred.await(resume))).pipe(
      Stream.drain,
      Stream.concat(Stream.fromIterable(rowsFrom(250, 300)))
    )
  )

/**
 * Owner a runs (over `checkpointer` and `client`) until it stalls at row 250; b takes the partition over and finishes;
 * a wakes and goes on until `stopped` (a save or a rollback that never ends), holding one transaction of its epoch
 * PREPARED; then a is interrupted (its partition taken away). Every row is in the table once, and a's transaction is
 * ABORTED: nothing stays PREPARED.
 */
const stoppedWhilePrepared = (
  ctx: Ctx,
  paused: Deferred.Deferred<void>,
  resume: Deferred.Deferred<void>,
  stopped: Deferred.Deferred<void>,
  checkpointer: Checkpointer.Checkpointer,
  client?: (c: LoadClient.LoadClient) => LoadClient.LoadClient
) =>
  Effect.gen(function*() {
    const a = yield* Effect.fork(pipeline(ctx, "runner-a", stallingAt250(paused, resume), checkpointer, client))
    yield* Deferred.await(paused)
    const summaryB = yield* pipeline(ctx, "runner-b", (from) => Stream.fromIterable(rowsFrom(from, 300)))
    assert.strictEqual(summaryB.epoch, 2)
    yield* Deferred.succeed(resume, undefined)
    yield* Deferred.await(stopped)
    const preparedByA = (yield* txnsOf(ctx)).filter((t) => t.status === "PREPARED").map((t) => t.label)
    assert.strictEqual(preparedByA.length, 1)
    assert.include(preparedByA[0], "-p3-e1-")
    yield* Fiber.interrupt(a)
    yield* assertExactlyOnce(ctx, 300)
    const txns = yield* txnsOf(ctx)
    assert.strictEqual(txns.find((t) => t.label === preparedByA[0])?.status, "ABORTED")
    assert.deepStrictEqual(txns.filter((t) => t.status === "PREPARE" || t.status === "PREPARED"), [])
  })

/** The `transaction/load` requests the emulator received for labels containing `part`. */
const loadsOf = (ctx: Ctx, part: string) =>
  Effect.map(
    ctx.emulator.requests,
    (requests) =>
      requests.filter((r) => r.path.startsWith("/api/transaction/load") && (r.headers["label"] ?? "").includes(part))
        .length
  )

const failureOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

describe("partitions and fencing (emulator)", () => {
  layer(Emulator, { excludeTestServices: true, timeout: "30 seconds" })((it) => {
    for (const store of stores) {
      it.scoped(`a second owner claims the partition: the paused first one is fenced at its next barrier, rolls back, never commits (${store.name})`, () =>
        Effect.gen(function*() {
          const ctx = yield* setup
          const open = yield* store.open
          const storeA = yield* open
          const storeB = yield* open
          const paused = yield* Deferred.make<void>()
          const resume = yield* Deferred.make<void>()
          // owner a: rows 0..249 (two checkpoints, rows 200..249 loaded into an open transaction), then it stalls
          // (a GC pause, SIGSTOP, a network partition) before the barrier of row 299
          const sourceA = stallingAt250(paused, resume)
          const a = yield* Effect.fork(pipeline(ctx, "runner-a", sourceA, storeA))
          yield* Deferred.await(paused)
          // while a waits, its transaction is open: its loads of rows 0..249 (10 batches of 25) were all sent
          yield* loadsOf(ctx, "-p3-e1-").pipe(
            Effect.repeat({ until: (n) => n >= 10, schedule: Schedule.spaced("10 millis") }),
            Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("owner a never loaded its rows") })
          )
          // and its checkpoint of row 199 is saved: checkpoints are saved in the background, so the loads of rows
          // 200..249 can all be sent before it (on a loaded machine b then recovered the checkpoint of row 99)
          yield* storeA.latest(KEY).pipe(
            Effect.repeat({
              until: (record) => Option.isSome(record) && record.value.position === 199,
              schedule: Schedule.spaced("10 millis")
            }),
            Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("owner a never saved row 199") })
          )

          // owner b takes the partition over: claims (epoch 2), recovers a's last checkpoint, resumes after row 199
          const summaryB = yield* pipeline(ctx, "runner-b", (from) => Stream.fromIterable(rowsFrom(from, 300)), storeB)
          assert.strictEqual(summaryB.epoch, 2)
          assert.strictEqual(summaryB.rows, 100)
          yield* assertExactlyOnce(ctx, 300)

          // a wakes up: its barrier prepares, the save is refused, what it prepared is rolled back
          yield* Deferred.succeed(resume, undefined)
          const error = failureOf(yield* Fiber.await(a))
          assert.deepInclude(error, {
            _tag: "ExactlyOnceError",
            reason: "Fenced",
            checkpointKey: KEY,
            owner: "runner-a",
            epoch: 1,
            currentEpoch: 2,
            currentOwner: "runner-b"
          })

          // nothing of a after the claim was committed: the rows are still each once, a's later labels are ABORTED
          yield* assertExactlyOnce(ctx, 300)
          const txns = yield* txnsOf(ctx)
          const ofA = txns.filter((t) => t.label.includes("-p3-e1-"))
          const ofB = txns.filter((t) => t.label.includes("-p3-e2-"))
          assert.deepStrictEqual(ofA.filter((t) => t.status === "VISIBLE").length, 2)
          assert.isAbove(ofA.filter((t) => t.status === "ABORTED").length, 0)
          const rolledBack = (error as { labels?: ReadonlyArray<string> }).labels ?? []
          assert.isAbove(rolledBack.length, 0)
          for (const label of rolledBack) {
            assert.strictEqual(txns.find((t) => t.label === label)?.status, "ABORTED", label)
          }
          assert.isTrue(ofB.length > 0 && ofB.every((t) => t.status === "VISIBLE"))
          assert.deepStrictEqual(txns.filter((t) => t.status === "PREPARE" || t.status === "PREPARED"), [])
          // the labels carry the epoch and fit StarRocks' label rules
          for (const t of txns) assert.match(t.label, /^[-\w]{1,128}$/)

          const record = Option.getOrThrow(yield* storeA.latest(KEY))
          assert.deepInclude({ epoch: record.epoch, position: record.position }, { epoch: 2, position: 299 })
        }))
    }

    it.effect("an owner stalled between prepare and save loses the key: the save is refused, nothing commits", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const stalled = yield* Deferred.make<void>()
        const resume = yield* Deferred.make<void>()
        let saves = 0
        // owner a's view of the store: its second save stalls before it reaches the store
        const stalling: Checkpointer.Checkpointer = {
          ...ctx.checkpointer,
          save: (record) =>
            Effect.suspend(() =>
              ++saves === 2
                ? Effect.zipRight(
                  Effect.zipRight(Deferred.succeed(stalled, undefined), Deferred.await(resume)),
                  ctx.checkpointer.save(record)
                )
                : ctx.checkpointer.save(record)
            )
        }
        const a = yield* Effect.fork(
          pipeline(ctx, "runner-a", (from) => Stream.fromIterable(rowsFrom(from, 300)), stalling)
        )
        yield* Deferred.await(stalled)
        const preparedByA = (yield* txnsOf(ctx)).filter((t) => t.status === "PREPARED").map((t) => t.label)
        assert.strictEqual(preparedByA.length, 1)

        // b claims, recovers checkpoint 1 (row 99), rolls back a's PREPARED transaction, and runs to the end
        const summaryB = yield* pipeline(ctx, "runner-b", (from) => Stream.fromIterable(rowsFrom(from, 300)))
        assert.deepStrictEqual([summaryB.epoch, summaryB.rows], [2, 200])

        yield* Deferred.succeed(resume, undefined)
        assert.deepInclude(failureOf(yield* Fiber.await(a)), { reason: "Fenced", epoch: 1, currentEpoch: 2 })
        yield* assertExactlyOnce(ctx, 300)
        const txns = yield* txnsOf(ctx)
        assert.strictEqual(txns.find((t) => t.label === preparedByA[0])?.status, "ABORTED")
        assert.deepStrictEqual(txns.filter((t) => t.status === "PREPARE" || t.status === "PREPARED"), [])
      }))

    it.effect("a paused owner stopped while its refused save is in flight rolls back what it prepared", () =>
      Effect.gen(function*() {
        // a pauses before the barrier of row 299; b takes over and finishes; a wakes, prepares that barrier's
        // transaction (after b's recovery: b never saw it) and is stopped (its partition taken away) while its save
        // is still on the way. The save's outcome is unknown to a, but the store holds a later owner's record, so
        // it can never land: a rolls its transaction back instead of leaving it PREPARED until prepared_timeout.
        const ctx = yield* setup
        const paused = yield* Deferred.make<void>()
        const resume = yield* Deferred.make<void>()
        const saving = yield* Deferred.make<void>()
        let saves = 0
        const inFlight: Checkpointer.Checkpointer = {
          ...ctx.checkpointer,
          save: (record) =>
            Effect.suspend(() =>
              ++saves === 3
                ? Effect.zipRight(Deferred.succeed(saving, undefined), Effect.never)
                : ctx.checkpointer.save(record)
            )
        }
        yield* stoppedWhilePrepared(ctx, paused, resume, saving, inFlight)
      }))

    it.effect("a fenced owner stopped while it rolls back its refused checkpoint leaves nothing PREPARED", () =>
      Effect.gen(function*() {
        // a pauses before the barrier of row 299; b takes over and finishes; a wakes, prepares that barrier's
        // transaction, its save is refused (Fenced) and a rolls back what it prepared, and is stopped (its partition
        // taken away) during that rollback, before the request went out. The transaction must not stay PREPARED:
        // the sink's finalizer rolls it back.
        const ctx = yield* setup
        const paused = yield* Deferred.make<void>()
        const resume = yield* Deferred.make<void>()
        const rollingBack = yield* Deferred.make<void>()
        let refused = false
        const refusing: Checkpointer.Checkpointer = {
          ...ctx.checkpointer,
          save: (record) => Effect.tapError(ctx.checkpointer.save(record), () => Effect.sync(() => (refused = true)))
        }
        // the first rollback after the refused save waits forever (until a is interrupted); later ones go through
        let stalled = false
        const stallFencedRollback = (c: LoadClient.LoadClient): LoadClient.LoadClient => ({
          ...c,
          rollback: (request) =>
            Effect.suspend(() => {
              if (!refused || stalled) return c.rollback(request)
              stalled = true
              return Effect.zipRight(Deferred.succeed(rollingBack, undefined), Effect.never)
            })
        })
        yield* stoppedWhilePrepared(ctx, paused, resume, rollingBack, refusing, stallFencedRollback)
      }))

    it.effect("recover then the sink work under one claim; each restart of the partition is a new epoch", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const first = yield* pipeline(ctx, "runner-a", (from) => Stream.fromIterable(rowsFrom(from, 150)))
        assert.strictEqual(first.epoch, 1)
        const second = yield* pipeline(ctx, "runner-a", (from) => Stream.fromIterable(rowsFrom(from, 300)))
        assert.deepStrictEqual([second.epoch, second.rows], [2, 150])
        yield* assertExactlyOnce(ctx, 300)
        assert.strictEqual(yield* ctx.checkpointer.claim(KEY, "someone"), 3)
        const labels = (yield* txnsOf(ctx)).map((t) => t.label)
        assert.isTrue(labels.some((l) => l.includes("-p3-e1-")) && labels.some((l) => l.includes("-p3-e2-")))
      }))

    it.effect("labels of an owner with a long instance and table name stay within StarRocks' 128 characters", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const instance = `partition/${"x".repeat(150)}`
        const summary = yield* Stream.fromIterable(rowsFrom(0, 60)).pipe(
          Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 30 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, { ...partition("runner-a"), instance })),
          Effect.provide(services(ctx, configFor(ctx, { labelPrefix: "p".repeat(64) })))
        )
        assert.strictEqual(summary.epoch, 1)
        yield* assertExactlyOnce(ctx, 60)
        const labels = (yield* txnsOf(ctx)).map((t) => t.label)
        assert.isAbove(labels.length, 0)
        for (const label of labels) {
          assert.match(label, /^[-\w]{1,128}$/)
          assert.match(label, /-partition_x{37}_[0-9a-f]{16}-e1-\d+$/)
        }
      }))

    it.effect("a sink without an owner on a claimed key is fenced at its first save", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        yield* ctx.checkpointer.claim(KEY, "runner-a")
        const exit = yield* Stream.fromIterable(rowsFrom(0, 100)).pipe(
          Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 100 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, { position: Schema.Number, checkpointKey: KEY, instance: "p3" })),
          Effect.provide(services(ctx, configFor(ctx))),
          Effect.exit
        )
        assert.deepInclude(failureOf(exit), { reason: "Fenced", epoch: 0, currentEpoch: 1, currentOwner: "runner-a" })
        assert.deepStrictEqual(yield* visibleIds(ctx), [])
        assert.deepStrictEqual((yield* txnsOf(ctx)).filter((t) => t.status !== "ABORTED"), [])
      }))

    it.effect("an owner on the label path (V1) is refused: its spool is local to one process", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const exit = yield* Stream.fromIterable(rowsFrom(0, 10)).pipe(
          Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 100 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, partition("runner-a"))),
          Effect.provide(services(ctx, configFor(ctx, { version: "V1" }))),
          Effect.exit
        )
        assert.deepInclude(failureOf(exit), { _tag: "ExactlyOnceError", reason: "Unsupported" })
        assert.deepStrictEqual(yield* ctx.checkpointer.latest(KEY), Option.none())
      }))
  })
})
