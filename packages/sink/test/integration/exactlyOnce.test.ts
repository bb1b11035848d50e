/**
 * Exactly-once against the emulator (memory storage, real sockets, live clock).
 */
import { NodeContext } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Queue,
  Ref,
  Schema,
  Stream
} from "effect"
import type { Context } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as CheckpointerFileSystem from "../../src/Checkpointer/FileSystem.js"
import type { StarRocksConfig } from "../../src/index.js"
import { Checkpoint, Checkpointer, LoadClient, StarRocksError, StarRocksSink } from "../../src/index.js"

import { configFor, type Ctx, db, Emulator, Row, rowsFrom, services, setupTable } from "./exactlyOnceFixture.js"

const setup = setupTable("eo")

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

const openTxns = (ctx: Ctx) =>
  Effect.map(
    ctx.emulator.transactions(db),
    (txns) => txns.filter((t) => t.table === ctx.table && (t.status === "PREPARE" || t.status === "PREPARED"))
  )

const options = { position: Schema.Number } as const

/**
 * Runs `rows` with a barrier every `every` rows; collects the acks in the order they complete. The collectors are
 * daemons (as examples/jetstream/pipeline.ts forks its ack handlers): the upstream runs in a fiber of its own, which
 * ends before the last barrier's checkpoint is acknowledged, and a fiber it forks ends with it.
 */
const runSink = (
  ctx: Ctx,
  config: StarRocksConfig.StarRocksConfig,
  rows: ReadonlyArray<Row>,
  every: number,
  acks?: Ref.Ref<ReadonlyArray<Checkpoint.Ack<number>>>,
  checkpointer?: Checkpointer.Checkpointer
) =>
  Stream.fromIterable(rows).pipe(
    Stream.rechunk(25),
    Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: every }),
    Stream.tap((e) =>
      Checkpoint.isBarrier(e) && acks !== undefined
        ? Effect.forkDaemon(Effect.flatMap(Deferred.await(e.ack), (ack) => Ref.update(acks, (a) => [...a, ack])))
        : Effect.void
    ),
    Stream.run(StarRocksSink.exactlyOnce(Row, options)),
    Effect.provide(services(ctx, config, checkpointer))
  )

type Client = Context.Tag.Service<typeof LoadClient.LoadClient>

/**
 * The LoadClient of the layer below with two hooks, for the tests of checkpoints finishing in the background:
 * `loaded` completes once the transaction load of `label` has landed, and every commit goes through `commit`, which
 * is given the real one.
 */
const hookedClient = (
  label: string,
  loaded: Deferred.Deferred<void>,
  commit: (request: Parameters<Client["commit"]>[0], real: Client["commit"]) => ReturnType<Client["commit"]>
) =>
  Layer.effect(
    LoadClient.LoadClient,
    Effect.map(LoadClient.LoadClient, (client) => ({
      ...client,
      loadTxn: (request: Parameters<Client["loadTxn"]>[0]) =>
        Effect.tap(
          client.loadTxn(request),
          () => request.label === label ? Deferred.succeed(loaded, undefined) : Effect.void
        ),
      commit: (request: Parameters<Client["commit"]>[0]) => commit(request, client.commit)
    }))
  )

describe("exactly-once against the emulator", () => {
  layer(Emulator, { excludeTestServices: true, timeout: "30 seconds" })((it) => {
    it.effect("rows land exactly once with barriers every N rows; acks complete in order with positions", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const acks = yield* Ref.make<ReadonlyArray<Checkpoint.Ack<number>>>([])
        const summary = yield* runSink(ctx, configFor(ctx), rowsFrom(0, 1000), 250, acks)
        assert.strictEqual(summary.rows, 1000)
        assert.strictEqual(summary.checkpoints, 4)
        assert.deepStrictEqual(summary.lastPosition, Option.some(999))
        yield* assertExactlyOnce(ctx, 1000)
        yield* Effect.sleep("50 millis")
        const got = yield* Ref.get(acks)
        assert.deepStrictEqual(got.map((a) => [a.id, a.position]), [[1, 249], [2, 499], [3, 749], [4, 999]])
        for (const [i, a] of got.entries()) assert.deepStrictEqual(a.labels, [`effect-sr-${ctx.table}-0-${i}`])
        assert.deepStrictEqual(yield* openTxns(ctx), [])
        const record = yield* ctx.checkpointer.latest(`effect-sr-${db}.${ctx.table}-0`)
        assert.isTrue(Option.isSome(record))
        assert.deepStrictEqual(Option.getOrThrow(record).nextLabelId, { [`${db}.${ctx.table}`]: 4 })
        // the transactions' loads carried a begin timeout
        const begins = (yield* ctx.emulator.requests).filter((r) =>
          r.path.startsWith("/api/transaction/begin") && r.headers["label"]?.includes(ctx.table)
        )
        assert.isTrue(begins.length >= 4 && begins.every((r) => r.headers["timeout"] === "600"))
      }))

    it.effect("a transaction's load runs beside the encoding of the next batch, one load per table at a time", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx, { maxRows: 100, maxBytes: 1024 * 1024 })
        // the first transaction load waits for a gate; the rows of the second batch are pulled meanwhile
        const gate = yield* Deferred.make<void>()
        const entered = yield* Deferred.make<void>()
        const pulledSecondBatch = yield* Deferred.make<void>()
        let active = 0
        let maxActive = 0
        let loads = 0
        const gated = Layer.effect(
          LoadClient.LoadClient,
          Effect.map(LoadClient.LoadClient, (client) => ({
            ...client,
            loadTxn: (request: Parameters<typeof client.loadTxn>[0]) =>
              Effect.gen(function*() {
                active++
                maxActive = Math.max(maxActive, active)
                if (loads++ === 0) {
                  yield* Deferred.succeed(entered, undefined)
                  yield* Deferred.await(gate)
                }
                return yield* client.loadTxn(request)
              }).pipe(Effect.ensuring(Effect.sync(() => active--)))
          }))
        )
        const fiber = yield* Stream.fromIterable(rowsFrom(0, 1000)).pipe(
          Stream.rechunk(10),
          Stream.tap((r) => r.id === 190 ? Deferred.succeed(pulledSecondBatch, undefined) : Effect.void),
          Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 500 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(gated),
          Effect.provide(services(ctx, config)),
          Effect.fork
        )
        yield* Deferred.await(entered)
        // before, the seal waited for the load: the stream stopped at the first batch's last row
        const pulled = yield* Deferred.await(pulledSecondBatch).pipe(Effect.timeout("10 seconds"), Effect.option)
        yield* Deferred.succeed(gate, undefined)
        assert.isTrue(Option.isSome(pulled), "the second batch's rows were pulled while the first load was in flight")
        const summary = yield* Fiber.join(fiber)
        assert.strictEqual(summary.rows, 1000)
        assert.strictEqual(maxActive, 1, "the loads of one transaction go one after another")
        yield* assertExactlyOnce(ctx, 1000)
        assert.deepStrictEqual(yield* openTxns(ctx), [])
      }))

    it.effect("encoding a large chunk gives the event loop turns (its timers and sockets are not starved)", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        // a setImmediate ticker; rows record its count when the encoder reads them. One chunk, one batch: no load
        // (no I/O wait) happens while the chunk is encoded, so only the sink's own turns let the ticker run
        let ticks = 0
        let running = true
        const tick = () => {
          ticks++
          if (running) setImmediate(tick)
        }
        setImmediate(tick)
        const seenAt: Array<number> = []
        const n = 100_000
        const big = Array.from({ length: n }, (_, i) => ({
          get id() {
            if (i === 0 || i === n - 1) seenAt.push(ticks)
            return i
          },
          note: null
        }))
        const summary = yield* Stream.fromChunk(Chunk.unsafeFromArray(big)).pipe(
          Checkpoint.withBarriers({ position: () => n - 1, everyRows: n }),
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(services(ctx, configFor(ctx, { maxRows: 1_000_000, maxBytes: 64 * 1024 * 1024 })))
        ).pipe(Effect.ensuring(Effect.sync(() => (running = false))))
        assert.strictEqual(summary.rows, n)
        yield* assertExactlyOnce(ctx, n)
        assert.isAbove(seenAt[seenAt.length - 1]!, seenAt[0]!, "the event loop turned while the chunk was encoded")
      }))

    it.effect("staged rows are invisible until the barrier's commit", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const queue = yield* Queue.unbounded<Checkpoint.Envelope<Row, number>>()
        const fiber = yield* Stream.fromQueue(queue).pipe(
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(services(ctx, configFor(ctx))),
          Effect.fork
        )
        yield* Queue.offerAll(queue, rowsFrom(0, 250))
        // two full batches (max-rows 100) are loaded into the open transaction
        const loads = Effect.map(
          ctx.emulator.requests,
          (rs) =>
            rs.filter((r) => r.path.startsWith("/api/transaction/load") && r.headers["label"]?.includes(ctx.table))
        )
        for (let i = 0; i < 200 && (yield* loads).filter((r) => r.node.startsWith("be")).length < 2; i++) {
          yield* Effect.sleep("20 millis")
        }
        const staged = (yield* ctx.emulator.transactions(db)).filter((t) => t.table === ctx.table)
        assert.strictEqual(staged.length, 1)
        assert.strictEqual(staged[0]!.status, "PREPARE")
        assert.deepStrictEqual(yield* visibleIds(ctx), [])
        const b = yield* Checkpoint.barrier(249)
        yield* Queue.offer(queue, b)
        const ack = yield* Checkpoint.awaitAck(b)
        assert.strictEqual(ack.position, 249)
        yield* assertExactlyOnce(ctx, 250)
        yield* Queue.shutdown(queue)
        yield* Fiber.interrupt(fiber)
      }))

    it.effect("restart: interrupt mid-way, recover, resume after the returned position: every row once", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx)
        const all = rowsFrom(0, 1000)
        const slow = Stream.fromIterable(all).pipe(
          Stream.rechunk(10),
          Stream.tap(() => Effect.sleep("1 millis")),
          Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 150 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(services(ctx, config))
        )
        const fiber = yield* Effect.fork(slow)
        const key = `effect-sr-${db}.${ctx.table}-0`
        for (let i = 0; i < 500; i++) {
          const latest = yield* ctx.checkpointer.latest(key)
          if (Option.isSome(latest) && latest.value.id >= 2) break
          yield* Effect.sleep("10 millis")
        }
        yield* Effect.sleep("30 millis")
        yield* Fiber.interrupt(fiber)
        const resumed = yield* StarRocksSink.recover(options).pipe(Effect.provide(services(ctx, config)))
        assert.isTrue(Option.isSome(resumed))
        const from = Option.getOrThrow(resumed) + 1
        assert.isTrue(from >= 300 && from < 1000)
        assert.deepStrictEqual(yield* openTxns(ctx), [])
        // the rows up to the position are there, none after it
        const ids = yield* visibleIds(ctx)
        assert.strictEqual(ids.length, from)
        yield* runSink(ctx, config, all.slice(from), 150)
        yield* assertExactlyOnce(ctx, 1000)
      }))

    it.effect("a durable Checkpointer provided after StarRocksSink.layer (as the docs show) is used: a restart recovers", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "eo-natural-"))
        const config = configFor(ctx)
        // docs/exactly-once.md's way: the sink's layer first, then the durable store, each with Effect.provide
        const run = (from: number, to: number) =>
          Effect.gen(function*() {
            const resumeAfter = yield* StarRocksSink.recover(options)
            const summary = yield* Stream.fromIterable(rowsFrom(from, to)).pipe(
              Stream.rechunk(25),
              Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 100 }),
              Stream.run(StarRocksSink.exactlyOnce(Row, options))
            )
            return { resumeAfter, summary }
          }).pipe(
            Effect.provide(StarRocksSink.layer(config)),
            Effect.provide(CheckpointerFileSystem.layerFileSystem({ directory })),
            Effect.provide(NodeContext.layer),
            Logger.withMinimumLogLevel(LogLevel.Error)
          )
        const first = yield* run(0, 500)
        assert.isTrue(Option.isNone(first.resumeAfter))
        assert.strictEqual(first.summary.rows, 500)
        // the second process finds the first one's checkpoint in the directory and goes on after it
        const second = yield* run(500, 1000)
        assert.deepStrictEqual(second.resumeAfter, Option.some(499))
        assert.strictEqual(second.summary.rows, 500)
        yield* assertExactlyOnce(ctx, 1000)
        assert.isNotEmpty(Fs.readdirSync(directory))
        Fs.rmSync(directory, { recursive: true, force: true })
      }))

    it.effect("exactly-once on the test-only in-memory store says so in a warning; on a durable store it does not", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx)
        const warnings: Array<string> = []
        const capture = Logger.make(({ logLevel, message }) => {
          if (logLevel._tag === "Warning") warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
        })
        const run = (from: number, to: number, store: Layer.Layer<Checkpointer.Checkpointer>) =>
          Stream.fromIterable(rowsFrom(from, to)).pipe(
            Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 100 }),
            Stream.run(StarRocksSink.exactlyOnce(Row, options)),
            Effect.provide(StarRocksSink.layer(config)),
            Effect.provide(store),
            Effect.provide(Logger.replace(Logger.defaultLogger, capture))
          )
        yield* run(0, 100, Checkpointer.layerMemoryForTests)
        assert.deepStrictEqual(warnings.filter((w) => w.includes("layerMemoryForTests")).length, 1)
        warnings.length = 0
        const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "eo-warn-"))
        const table2 = yield* setup
        yield* Stream.fromIterable(rowsFrom(0, 100)).pipe(
          Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 100 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(StarRocksSink.layer(configFor(table2))),
          Effect.provide(CheckpointerFileSystem.layerFileSystem({ directory })),
          Effect.provide(NodeContext.layer),
          Effect.provide(Logger.replace(Logger.defaultLogger, capture))
        )
        assert.deepStrictEqual(warnings.filter((w) => w.includes("layerMemoryForTests")), [])
        Fs.rmSync(directory, { recursive: true, force: true })
      }))

    it.effect("a crash after the checkpoint save, before the commit: recovery commits the prepared labels", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx)
        const saves = yield* Ref.make(0)
        // the second save is durable, then the process "dies" before committing
        const crashing: Checkpointer.Checkpointer = {
          latest: ctx.checkpointer.latest,
          claim: ctx.checkpointer.claim,
          save: (record) =>
            ctx.checkpointer.save(record).pipe(
              Effect.zipRight(Ref.updateAndGet(saves, (n) => n + 1)),
              Effect.flatMap((n) => n === 2 ? Effect.interrupt : Effect.void)
            )
        }
        const exit = yield* Effect.exit(runSink(ctx, config, rowsFrom(0, 600), 200, undefined, crashing))
        assert.isTrue(Exit.isInterrupted(exit))
        const prepared = yield* openTxns(ctx)
        assert.deepStrictEqual(prepared.map((t) => t.status), ["PREPARED"])
        assert.strictEqual((yield* visibleIds(ctx)).length, 200)
        const resumed = yield* StarRocksSink.recover(options).pipe(Effect.provide(services(ctx, config)))
        assert.deepStrictEqual(resumed, Option.some(399))
        assert.strictEqual((yield* visibleIds(ctx)).length, 400)
        assert.deepStrictEqual(yield* openTxns(ctx), [])
        // idempotent
        assert.deepStrictEqual(
          yield* StarRocksSink.recover(options).pipe(Effect.provide(services(ctx, config))),
          Option.some(399)
        )
        yield* runSink(ctx, config, rowsFrom(400, 600), 200)
        yield* assertExactlyOnce(ctx, 600)
      }))

    it.effect("recovery rolls back lingering PREPARE/PREPARED transactions of the instance", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx)
        const label = (id: number) => StarRocksSink.batchLabel("effect-sr", ctx.table, "0", id)
        yield* Effect.gen(function*() {
          const client = yield* LoadClient.LoadClient
          const body = { chunks: [Buffer.from("\"1\",\"a\"\n")], byteLength: 8 }
          const headers = { format: "csv", column_separator: ",", enclose: "\"", escape: "\\" }
          const at = (id: number) => ({ database: db, table: ctx.table, label: label(id) })
          yield* client.begin(at(0))
          yield* client.loadTxn({ ...at(0), headers, body })
          yield* client.begin(at(1))
          yield* client.loadTxn({ ...at(1), headers, body })
          yield* client.prepare(at(1))
          yield* client.begin(at(2))
          yield* client.rollback(at(2))
          yield* client.begin(at(3))
        }).pipe(Effect.provide(services(ctx, config)))
        assert.deepStrictEqual((yield* openTxns(ctx)).map((t) => t.status).sort(), ["PREPARE", "PREPARE", "PREPARED"])
        const resumed = yield* StarRocksSink.recover(options).pipe(Effect.provide(services(ctx, config)))
        assert.isTrue(Option.isNone(resumed))
        assert.deepStrictEqual(yield* openTxns(ctx), [])
        // a new sink starts after the walked range
        yield* runSink(ctx, config, rowsFrom(0, 100), 100)
        yield* assertExactlyOnce(ctx, 100)
        const txns = (yield* ctx.emulator.transactions(db)).filter((t) => t.table === ctx.table)
        assert.deepStrictEqual(txns.filter((t) => t.status === "VISIBLE").map((t) => t.label), [label(4)])
      }))

    it.effect("a failed transaction load is replayed into a new transaction: no duplicates, the pipeline lives", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        // small buffers so that the replay spool spills to disk
        const config = configFor(ctx, { maxRows: 50, maxBytes: 1024 })
        yield* ctx.emulator.addFault({
          path: "/api/transaction/load",
          node: "be",
          nth: 3,
          action: { _tag: "close-mid-body" }
        })
        yield* ctx.emulator.addFault({
          path: "/api/transaction/load",
          node: "be",
          nth: 9,
          action: { _tag: "http-500" }
        })
        const summary = yield* runSink(ctx, config, rowsFrom(0, 600), 300)
        assert.strictEqual(summary.rows, 600)
        assert.isAtLeast(summary.retries, 2)
        yield* assertExactlyOnce(ctx, 600)
        const txns = (yield* ctx.emulator.transactions(db)).filter((t) => t.table === ctx.table)
        assert.isAtLeast(txns.filter((t) => t.status === "ABORTED").length, 2)
        assert.strictEqual(txns.filter((t) => t.status === "VISIBLE").length, 2)
        yield* ctx.emulator.clearFaults
      }))

    it.effect("TXN_IN_PROCESSING on a load is retried", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        yield* ctx.emulator.addFault({
          path: "/api/transaction/load",
          node: "be",
          nth: 2,
          times: 2,
          action: { _tag: "txn-in-processing" }
        })
        const summary = yield* runSink(ctx, configFor(ctx), rowsFrom(0, 300), 300)
        assert.strictEqual(summary.rows, 300)
        yield* assertExactlyOnce(ctx, 300)
        yield* ctx.emulator.clearFaults
      }))

    it.effect("a commit that keeps failing is a typed error (ack failed); recovery commits it later", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx, { maxRetries: 1 })
        yield* ctx.emulator.addFault({ path: "/api/transaction/commit", node: "fe", action: { _tag: "http-500" } })
        const acks = yield* Ref.make<ReadonlyArray<Checkpoint.Ack<number>>>([])
        const queue = yield* Queue.unbounded<Checkpoint.Envelope<Row, number>>()
        yield* Queue.offerAll(queue, rowsFrom(0, 100))
        const b = yield* Checkpoint.barrier(99)
        yield* Queue.offer(queue, b)
        const exit = yield* Stream.fromQueue(queue).pipe(
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(services(ctx, config)),
          Effect.exit
        )
        yield* ctx.emulator.clearFaults
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        assert.isTrue(Option.isSome(error))
        const e = Option.getOrThrow(error)
        assert.strictEqual(e._tag, "ExactlyOnceError")
        assert.strictEqual((e as StarRocksSink.ExactlyOnceError).reason, "CommitFailed")
        const ackExit = yield* Effect.exit(Checkpoint.awaitAck(b))
        assert.isTrue(Exit.isFailure(ackExit))
        assert.deepStrictEqual(yield* Ref.get(acks), [])
        assert.deepStrictEqual(yield* visibleIds(ctx), [])
        const resumed = yield* StarRocksSink.recover(options).pipe(Effect.provide(services(ctx, config)))
        assert.deepStrictEqual(resumed, Option.some(99))
        yield* assertExactlyOnce(ctx, 100)
      }))

    it.effect("Publish Timeout on commit counts as committed", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        yield* ctx.emulator.addFault({
          path: "/api/transaction/commit",
          node: "fe",
          nth: 1,
          action: { _tag: "publish-timeout", visibleAfterMs: 300 }
        })
        const summary = yield* runSink(ctx, configFor(ctx), rowsFrom(0, 200), 100)
        assert.strictEqual(summary.rows, 200)
        for (let i = 0; i < 100 && (yield* visibleIds(ctx)).length < 200; i++) yield* Effect.sleep("20 millis")
        yield* assertExactlyOnce(ctx, 200)
        yield* ctx.emulator.clearFaults
      }))

    it.effect("a label prefix colliding with committed labels is a typed error", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx)
        // someone else committed under this instance's label id 1, and there is no checkpoint
        yield* Effect.gen(function*() {
          const client = yield* LoadClient.LoadClient
          yield* client.loadBatch({
            database: db,
            table: ctx.table,
            label: StarRocksSink.batchLabel("effect-sr", ctx.table, "0", 1),
            headers: { format: "csv", column_separator: ",", enclose: "\"", escape: "\\" },
            body: { chunks: [Buffer.from("\"1\",\"a\"\n")], byteLength: 8 }
          })
        }).pipe(Effect.provide(services(ctx, config)))
        const exit = yield* Effect.exit(StarRocksSink.recover(options).pipe(Effect.provide(services(ctx, config))))
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        assert.isTrue(Option.isSome(error))
        const e = Option.getOrThrow(error) as StarRocksSink.ExactlyOnceError
        assert.strictEqual(e._tag, "ExactlyOnceError")
        assert.strictEqual(e.reason, "LabelCollision")
        assert.match(e.message, /label prefix collides/)
        // another instance is fine
        const other = yield* StarRocksSink.recover({ ...options, instance: "1" }).pipe(
          Effect.provide(services(ctx, config))
        )
        assert.isTrue(Option.isNone(other))
      }))

    it.effect("parallel instances over partitions of one stream share a Checkpointer", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx)
        const all = rowsFrom(0, 600)
        const summaries = yield* Effect.forEach(
          [0, 1, 2],
          (p) =>
            Stream.fromIterable(all.filter((r) => Number(r.id) % 3 === p)).pipe(
              Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 70 }),
              Stream.run(StarRocksSink.exactlyOnce(Row, { ...options, instance: `p${p}` })),
              Effect.provide(services(ctx, config))
            ),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(summaries.map((s) => s.rows), [200, 200, 200])
        yield* assertExactlyOnce(ctx, 600)
        for (const p of [0, 1, 2]) {
          const record = yield* ctx.checkpointer.latest(`effect-sr-${db}.${ctx.table}-p${p}`)
          assert.isTrue(Option.isSome(record))
          assert.strictEqual(Option.getOrThrow(record).position, 597 + p)
        }
        const labels = (yield* ctx.emulator.transactions(db)).filter((t) => t.table === ctx.table).map((t) => t.label)
        for (const p of [0, 1, 2]) assert.isTrue(labels.some((l) => l.includes(`-p${p}-`)))
      }))

    it.effect("a format change mid-transaction (the \\N JSON fallback) prepares one transaction per format", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const rows = rowsFrom(0, 90).map((r) => Number(r.id) === 40 ? { ...r, note: "\\N" } : r)
        const acks = yield* Ref.make<ReadonlyArray<Checkpoint.Ack<number>>>([])
        const summary = yield* runSink(ctx, configFor(ctx), rows, 90, acks)
        assert.strictEqual(summary.rows, 90)
        yield* assertExactlyOnce(ctx, 90)
        yield* Effect.sleep("20 millis")
        const got = yield* Ref.get(acks)
        assert.strictEqual(got.length, 1)
        // csv rows 0..39, then json from row 40 on: two transactions in one checkpoint
        assert.strictEqual(got[0]!.labels.length, 2)
        const stored = (yield* ctx.emulator.rows(db, ctx.table)).find((r) => Number(r["id"] as bigint) === 40)
        assert.strictEqual(stored?.["note"], "\\N")
      }))

    it.effect("interrupting the sink rolls back its open transaction", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const queue = yield* Queue.unbounded<Checkpoint.Envelope<Row, number>>()
        const fiber = yield* Stream.fromQueue(queue).pipe(
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(services(ctx, configFor(ctx))),
          Effect.fork
        )
        yield* Queue.offerAll(queue, rowsFrom(0, 150))
        for (let i = 0; i < 200 && (yield* openTxns(ctx)).length === 0; i++) yield* Effect.sleep("10 millis")
        assert.deepStrictEqual((yield* openTxns(ctx)).map((t) => t.status), ["PREPARE"])
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual(yield* openTxns(ctx), [])
        assert.deepStrictEqual(yield* visibleIds(ctx), [])
      }))

    it.effect("label path (V1): batches spooled to disk, loaded under their labels after the checkpoint", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx, { version: "V1" })
        const spoolDirectory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "eo-v1-"))
        const v1 = { ...options, spoolDirectory }
        const saves = yield* Ref.make(0)
        // the second save is durable, then the process "dies" before loading its batches
        const crashing: Checkpointer.Checkpointer = {
          latest: ctx.checkpointer.latest,
          claim: ctx.checkpointer.claim,
          save: (record) =>
            ctx.checkpointer.save(record).pipe(
              Effect.zipRight(Ref.updateAndGet(saves, (n) => n + 1)),
              Effect.flatMap((n) => n === 2 ? Effect.interrupt : Effect.void)
            )
        }
        const run = (rows: ReadonlyArray<Row>, checkpointer: Checkpointer.Checkpointer) =>
          Stream.fromIterable(rows).pipe(
            Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 200 }),
            Stream.run(StarRocksSink.exactlyOnce(Row, v1)),
            Effect.provide(services(ctx, config, checkpointer))
          )
        const exit = yield* Effect.exit(run(rowsFrom(0, 600), crashing))
        assert.isTrue(Exit.isInterrupted(exit))
        assert.strictEqual((yield* visibleIds(ctx)).length, 200)
        // the checkpoint's two batches (max-rows 100) wait on disk, nothing is in a transaction
        assert.strictEqual(Fs.readdirSync(spoolDirectory).filter((f) => f.endsWith(".bin")).length, 2)
        assert.deepStrictEqual(yield* openTxns(ctx), [])
        const resumed = yield* StarRocksSink.recover(v1).pipe(Effect.provide(services(ctx, config)))
        assert.deepStrictEqual(resumed, Option.some(399))
        assert.strictEqual((yield* visibleIds(ctx)).length, 400)
        assert.deepStrictEqual(Fs.readdirSync(spoolDirectory), [])
        const summary = yield* run(rowsFrom(400, 600), ctx.checkpointer)
        assert.strictEqual(summary.rows, 200)
        yield* assertExactlyOnce(ctx, 600)
        // plain stream loads only
        const txnCalls = (yield* ctx.emulator.requests).filter((r) =>
          r.path.startsWith("/api/transaction") && r.headers["label"]?.includes(ctx.table)
        )
        assert.deepStrictEqual(txnCalls, [])
        Fs.rmSync(spoolDirectory, { recursive: true, force: true })
      }))

    it.effect("aligned checkpoints: no instance saves checkpoint k+1 before every instance saved k", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx)
        const coordinator = yield* Checkpoint.coordinator(3)
        const saved = yield* Ref.make<ReadonlyArray<number>>([])
        const recording: Checkpointer.Checkpointer = {
          latest: ctx.checkpointer.latest,
          claim: ctx.checkpointer.claim,
          save: (record) =>
            Effect.zipRight(ctx.checkpointer.save(record), Ref.update(saved, (ids) => [...ids, record.id]))
        }
        const all = rowsFrom(0, 600)
        const summaries = yield* Effect.forEach(
          [0, 1, 2],
          (p) =>
            Stream.fromIterable(all.filter((r) => Number(r.id) % 3 === p)).pipe(
              Stream.rechunk(10),
              // one slow instance
              Stream.tap(() => p === 1 ? Effect.sleep("2 millis") : Effect.void),
              Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: p === 2 ? 40 : 50 }),
              Stream.run(StarRocksSink.exactlyOnce(Row, { ...options, instance: `a${p}`, coordinator })),
              Effect.provide(services(ctx, config, recording))
            ),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(summaries.map((s) => s.rows), [200, 200, 200])
        yield* assertExactlyOnce(ctx, 600)
        const ids = yield* Ref.get(saved)
        // instance a2 takes 5 checkpoints, the others 4 (they leave the group when their stream ends)
        assert.strictEqual(ids.length, 13)
        for (let i = 1; i < ids.length; i++) assert.isAtLeast(ids[i]!, ids[i - 1]!)
      }))

    it.effect("aligned checkpoints: a failing instance aborts the group instead of leaving it waiting", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx)
        const coordinator = yield* Checkpoint.coordinator(2)
        const broken: Checkpointer.Checkpointer = {
          latest: ctx.checkpointer.latest,
          claim: ctx.checkpointer.claim,
          save: () => Effect.fail(new Checkpointer.CheckpointerError({ reason: "disk full" }))
        }
        const exits = yield* Effect.forEach(
          [0, 1],
          (p) =>
            Stream.fromIterable(rowsFrom(0, 300).filter((r) => Number(r.id) % 2 === p)).pipe(
              Stream.tap(() => p === 0 ? Effect.sleep("1 millis") : Effect.void),
              Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 50 }),
              Stream.run(StarRocksSink.exactlyOnce(Row, { ...options, instance: `f${p}`, coordinator })),
              Effect.provide(services(ctx, config, p === 1 ? broken : ctx.checkpointer)),
              Effect.exit
            ),
          { concurrency: "unbounded" }
        )
        const tags = exits.map((e) =>
          Exit.isFailure(e) ? Option.getOrUndefined(Cause.failureOption(e.cause))?._tag : "success"
        )
        assert.deepStrictEqual(tags, ["ExactlyOnceError", "CheckpointerError"])
      }))

    it.effect("a barrier stopped between prepare and save rolls its prepared transactions back", () =>
      Effect.gen(function*() {
        // aligned checkpoints whose other instance never comes: the sink prepares its transaction and waits in
        // `arrive` before saving. Stopped there, no record lists the transaction, so no recovery would commit it:
        // the sink rolls it back instead of leaving it PREPARED until prepared_timeout.
        const ctx = yield* setup
        const arrived = yield* Deferred.make<void>()
        const coordinator: Checkpoint.Coordinator = {
          size: 2,
          arrive: () => Effect.zipRight(Deferred.succeed(arrived, undefined), Effect.never),
          leave: Effect.void,
          abort: () => Effect.void
        }
        const fiber = yield* Stream.fromIterable(rowsFrom(0, 60)).pipe(
          Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 50, final: false }),
          Stream.concat(Stream.never),
          Stream.run(StarRocksSink.exactlyOnce(Row, { ...options, instance: "alone", coordinator })),
          Effect.provide(services(ctx, configFor(ctx))),
          Effect.fork
        )
        yield* Deferred.await(arrived).pipe(Effect.timeoutFail({
          duration: "20 seconds",
          onTimeout: () => new Error("the first barrier did not reach arrive within 20 s")
        }))
        const prepared = (yield* openTxns(ctx)).filter((t) => t.status === "PREPARED").map((t) => t.label)
        assert.strictEqual(prepared.length, 1)
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual(yield* openTxns(ctx), [])
        const states = (yield* ctx.emulator.transactions(db)).filter((t) => prepared.includes(t.label))
        assert.deepStrictEqual(states.map((t) => t.status), ["ABORTED"])
        assert.deepStrictEqual(yield* visibleIds(ctx), [])
      }))

    it.effect("rows after the last barrier are rolled back at stream end", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const summary = yield* Stream.fromIterable(rowsFrom(0, 250)).pipe(
          Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 100, final: false }),
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(services(ctx, configFor(ctx)))
        )
        assert.strictEqual(summary.rows, 200)
        assert.deepStrictEqual(summary.lastPosition, Option.some(199))
        yield* assertExactlyOnce(ctx, 200)
        assert.deepStrictEqual(yield* openTxns(ctx), [])
      }))

    it.effect("rows after a barrier are loaded while its checkpoint commits; its ack completes after the commit", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx, { maxRows: 25 })
        const label = (id: number) => StarRocksSink.batchLabel("effect-sr", ctx.table, "0", id)
        // the first checkpoint's commit waits for a gate; the rows after its barrier go into label 1 meanwhile
        const commitEntered = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const loadedNext = yield* Deferred.make<void>()
        const gated = hookedClient(label(1), loadedNext, (request, commit) =>
          request.label === label(0)
            ? Effect.zipRight(
              Effect.zipRight(Deferred.succeed(commitEntered, undefined), Deferred.await(gate)),
              commit(request)
            )
            : commit(request))
        const first = yield* Deferred.make<Checkpoint.Barrier<number>>()
        const fiber = yield* Stream.fromIterable(rowsFrom(0, 400)).pipe(
          Stream.rechunk(10),
          Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 200 }),
          Stream.tap((e) => Checkpoint.isBarrier(e) ? Deferred.succeed(first, e) : Effect.void),
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(gated),
          Effect.provide(services(ctx, config)),
          Effect.fork
        )
        yield* Deferred.await(commitEntered)
        // before, the row loop waited for the commit: nothing after the barrier was taken until it was done
        yield* Deferred.await(loadedNext).pipe(Effect.timeoutFail({
          duration: "10 seconds",
          onTimeout: () => new Error("the rows after the barrier were not loaded while its checkpoint committed")
        }))
        const barrier = yield* Deferred.await(first)
        assert.isTrue(Option.isNone(yield* Deferred.poll(barrier.ack)), "the ack waits for the commit")
        assert.deepStrictEqual(yield* visibleIds(ctx), [])
        yield* Deferred.succeed(gate, undefined)
        const summary = yield* Fiber.join(fiber)
        assert.strictEqual(summary.checkpoints, 2)
        const ack = yield* Checkpoint.awaitAck(barrier)
        assert.deepStrictEqual([ack.id, ack.position, ack.labels], [1, 199, [label(0)]])
        yield* assertExactlyOnce(ctx, 400)
        assert.deepStrictEqual(yield* openTxns(ctx), [])
      }))

    it.effect("a background checkpoint's commit failure fails the sink with a quiet upstream; the next transaction is rolled back", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx, { maxRows: 25, maxRetries: 1 })
        const label = (id: number) => StarRocksSink.batchLabel("effect-sr", ctx.table, "0", id)
        yield* ctx.emulator.addFault({ path: "/api/transaction/commit", node: "fe", action: { _tag: "http-500" } })
        // the first checkpoint's commit goes (and fails) once the rows after its barrier are in label 1
        const loadedNext = yield* Deferred.make<void>()
        const ordered = hookedClient(label(1), loadedNext, (request, commit) =>
          Effect.zipRight(
            Deferred.await(loadedNext).pipe(Effect.timeout("10 seconds"), Effect.ignore),
            commit(request)
          ))
        // the upstream stays open and quiet after the rows after the barrier
        const queue = yield* Queue.unbounded<Checkpoint.Envelope<Row, number>>()
        yield* Queue.offerAll(queue, rowsFrom(0, 100))
        const b = yield* Checkpoint.barrier(99)
        yield* Queue.offer(queue, b)
        yield* Queue.offerAll(queue, rowsFrom(100, 150))
        const exit = yield* Stream.fromQueue(queue).pipe(
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(ordered),
          Effect.provide(services(ctx, config)),
          Effect.exit
        )
        yield* ctx.emulator.clearFaults
        assert.isTrue(Option.isSome(yield* Deferred.poll(loadedNext)), "rows after the barrier were loaded")
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        assert.strictEqual(Option.getOrUndefined(error)?._tag, "ExactlyOnceError")
        assert.strictEqual((Option.getOrThrow(error) as StarRocksSink.ExactlyOnceError).reason, "CommitFailed")
        assert.isTrue(Exit.isFailure(yield* Effect.exit(Checkpoint.awaitAck(b))))
        // the saved checkpoint's transaction waits for recovery; the next one's (never saved) is rolled back
        const states = new Map((yield* ctx.emulator.transactions(db)).map((t) => [t.label, t.status]))
        assert.deepStrictEqual([states.get(label(0)), states.get(label(1))], ["PREPARED", "ABORTED"])
        const resumed = yield* StarRocksSink.recover(options).pipe(Effect.provide(services(ctx, config)))
        assert.deepStrictEqual(resumed, Option.some(99))
        yield* assertExactlyOnce(ctx, 100)
        assert.deepStrictEqual(yield* openTxns(ctx), [])
      }))

    it.effect("checkpoints commit in order: every commit of checkpoint k comes before the save of k+1", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx, { maxRows: 25 })
        const events: Array<string> = []
        const records: Array<Checkpointer.CheckpointRecord> = []
        const recording: Checkpointer.Checkpointer = {
          latest: ctx.checkpointer.latest,
          claim: ctx.checkpointer.claim,
          save: (record) =>
            Effect.zipRight(
              ctx.checkpointer.save(record),
              Effect.sync(() => {
                records.push(record)
                events.push(`save ${record.id}`)
              })
            )
        }
        // slow commits: the rows after each barrier move on meanwhile
        const slow = Layer.effect(
          LoadClient.LoadClient,
          Effect.map(LoadClient.LoadClient, (client) => ({
            ...client,
            commit: (request: Parameters<typeof client.commit>[0]) =>
              Effect.zipRight(Effect.sleep("5 millis"), client.commit(request)).pipe(
                Effect.tap(() => Effect.sync(() => events.push(`commit ${request.label}`)))
              )
          }))
        )
        const acks = yield* Ref.make<ReadonlyArray<Checkpoint.Ack<number>>>([])
        const summary = yield* Stream.fromIterable(rowsFrom(0, 1000)).pipe(
          Stream.rechunk(10),
          Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 100 }),
          Stream.tap((e) =>
            Checkpoint.isBarrier(e)
              ? Effect.forkDaemon(Effect.flatMap(Deferred.await(e.ack), (ack) => Ref.update(acks, (a) => [...a, ack])))
              : Effect.void
          ),
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(slow),
          Effect.provide(services(ctx, config, recording))
        )
        assert.strictEqual(summary.checkpoints, 10)
        assert.deepStrictEqual(records.map((r) => r.id), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        for (const record of records.slice(0, -1)) {
          const next = events.indexOf(`save ${record.id + 1}`)
          for (const labels of Object.values(record.prepared)) {
            for (const l of labels) {
              const at = events.indexOf(`commit ${l}`)
              assert.isTrue(
                at >= 0 && at < next,
                `${l} (checkpoint ${record.id}) is committed before save ${record.id + 1}`
              )
            }
          }
        }
        yield* assertExactlyOnce(ctx, 1000)
        for (let i = 0; i < 100 && (yield* Ref.get(acks)).length < 10; i++) yield* Effect.sleep("10 millis")
        assert.deepStrictEqual(
          (yield* Ref.get(acks)).map((a) => [a.id, a.position]),
          records.map((r) => [r.id, r.position])
        )
      }))

    it.effect("interrupted during a background checkpoint's commit: it is left to recovery, the next one's transactions rolled back", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx, { maxRows: 25 })
        const label = (id: number) => StarRocksSink.batchLabel("effect-sr", ctx.table, "0", id)
        // the first checkpoint's commit never comes back; after its barrier, a CSV transaction (label 1) is prepared
        // at the \N JSON fallback (row 150) and a JSON one (label 2) is open
        const commitEntered = yield* Deferred.make<void>()
        const loadedJson = yield* Deferred.make<void>()
        const stuck = hookedClient(
          label(2),
          loadedJson,
          () => Effect.zipRight(Deferred.succeed(commitEntered, undefined), Effect.never)
        )
        const rows = rowsFrom(0, 200).map((r) => Number(r.id) === 150 ? { ...r, note: "\\N" } : r)
        const fiber = yield* Stream.fromIterable(rows).pipe(
          Stream.rechunk(10),
          Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 100, final: false }),
          Stream.concat(Stream.never),
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(stuck),
          Effect.provide(services(ctx, config)),
          Effect.fork
        )
        yield* Deferred.await(commitEntered)
        yield* Deferred.await(loadedJson).pipe(Effect.timeoutFail({
          duration: "10 seconds",
          onTimeout: () => new Error("the rows after the barrier were not loaded while its checkpoint committed")
        }))
        const before = new Map((yield* ctx.emulator.transactions(db)).map((t) => [t.label, t.status]))
        assert.deepStrictEqual(
          [before.get(label(0)), before.get(label(1)), before.get(label(2))],
          ["PREPARED", "PREPARED", "PREPARE"]
        )
        yield* Fiber.interrupt(fiber)
        // saved: recovery's; prepared after the barrier and open: no record lists them, rolled back
        const after = new Map((yield* ctx.emulator.transactions(db)).map((t) => [t.label, t.status]))
        assert.deepStrictEqual(
          [after.get(label(0)), after.get(label(1)), after.get(label(2))],
          ["PREPARED", "ABORTED", "ABORTED"]
        )
        const resumed = yield* StarRocksSink.recover(options).pipe(Effect.provide(services(ctx, config)))
        assert.deepStrictEqual(resumed, Option.some(99))
        yield* assertExactlyOnce(ctx, 100)
        assert.deepStrictEqual(yield* openTxns(ctx), [])
      }))

    it.effect("a checkpoint's transaction replayed after the next one began: recovery commits it and rolls the next one back", () =>
      Effect.gen(function*() {
        const ctx = yield* setup
        const config = configFor(ctx, { maxRows: 25 })
        const label = (id: number) => StarRocksSink.batchLabel("effect-sr", ctx.table, "0", id)
        // the first checkpoint's last load (label 0's fourth) fails once the rows after its barrier have begun
        // label 1: it is replayed into label 2, after label 1
        const loadedNext = yield* Deferred.make<void>()
        let zeroLoads = 0
        const reset = new StarRocksError.TransportError({
          url: "test",
          reason: "connection reset (test)",
          code: "ECONNRESET",
          phase: "send",
          bodySent: true
        })
        const replayedLate = Layer.effect(
          LoadClient.LoadClient,
          Effect.map(LoadClient.LoadClient, (client) => ({
            ...client,
            loadTxn: (request: Parameters<typeof client.loadTxn>[0]) =>
              request.label === label(0) && ++zeroLoads === 4
                ? Effect.zipRight(
                  Deferred.await(loadedNext).pipe(Effect.timeout("10 seconds"), Effect.ignore),
                  Effect.fail(reset)
                )
                : Effect.tap(
                  client.loadTxn(request),
                  () => request.label === label(1) ? Deferred.succeed(loadedNext, undefined) : Effect.void
                ),
            // as after a SIGKILL: the sink's finalizer cannot roll label 1 back
            rollback: (request: Parameters<typeof client.rollback>[0]) =>
              request.label === label(1) ? Effect.fail(reset) : client.rollback(request)
          }))
        )
        // the process "dies" right after the first checkpoint's save
        const crashing: Checkpointer.Checkpointer = {
          latest: ctx.checkpointer.latest,
          claim: ctx.checkpointer.claim,
          save: (record) => Effect.zipRight(ctx.checkpointer.save(record), Effect.interrupt)
        }
        const exit = yield* Stream.fromIterable(rowsFrom(0, 200)).pipe(
          Stream.rechunk(10),
          Checkpoint.withBarriers({ position: (r: Row) => Number(r.id), everyRows: 100 }),
          Stream.run(StarRocksSink.exactlyOnce(Row, options)),
          Effect.provide(replayedLate),
          Effect.provide(services(ctx, config, crashing)),
          Effect.exit
        )
        assert.isTrue(Exit.isInterrupted(exit))
        const before = new Map((yield* ctx.emulator.transactions(db)).map((t) => [t.label, t.status]))
        assert.deepStrictEqual(
          [before.get(label(0)), before.get(label(1)), before.get(label(2))],
          ["ABORTED", "PREPARE", "PREPARED"]
        )
        const record = Option.getOrThrow(yield* ctx.checkpointer.latest(`effect-sr-${db}.${ctx.table}-0`))
        assert.deepStrictEqual([record.prepared[`${db}.${ctx.table}`], record.nextLabelId], [[label(2)], {
          [`${db}.${ctx.table}`]: 1
        }])
        // recovery commits label 2 (the record lists it, past its next id) and rolls back label 1
        const resumed = yield* StarRocksSink.recover(options).pipe(Effect.provide(services(ctx, config)))
        assert.deepStrictEqual(resumed, Option.some(99))
        yield* assertExactlyOnce(ctx, 100)
        assert.deepStrictEqual(yield* openTxns(ctx), [])
        // a sink starts after both
        yield* runSink(ctx, config, rowsFrom(100, 200), 100)
        yield* assertExactlyOnce(ctx, 200)
      }))
  })
})
