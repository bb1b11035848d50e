/**
 * The restart policy (issue #9, "What to build" 2) against the emulator over real sockets, its timers on the
 * TestClock: a last checkpoint whose prepared transaction expired fails recovery with `PreparedLost` naming the
 * label, its state, StarRocks' reason and what to do, and commits nothing; the opt-in skips it with a warning; the
 * `Labels` API lists, aborts and commits the labels under a prefix; the start-up warnings against the timers.
 */
import type { StarRocksEmulator as Emu } from "@effect-starrocks/testkit"
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import type { Duration, Scope } from "effect"
import { Effect, Exit, Layer, Logger, Option, Redacted, Ref, Schema, Stream, TestClock } from "effect"
import { Checkpointer, Labels, LabelStore, LoadClient, StarRocksConfig, StarRocksSink } from "../src/index.js"

const db = "db"
const prefix = "rp"

interface Ctx {
  readonly emulator: Emu.StarRocksEmulator
  readonly table: string
  readonly checkpointer: Checkpointer.Checkpointer
  readonly logs: Ref.Ref<ReadonlyArray<string>>
}

/** The test's log lines (level, message, annotations); `setup` empties it. */
const captured = Ref.unsafeMake<ReadonlyArray<string>>([])

/** Captures every log line of a test (provided once around the test's body). */
const capture = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ annotations, logLevel, message }) => {
    const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
    const notes = [...annotations].map(([k, v]) => `${k}=${String(v)}`).join(" ")
    Effect.runSync(Ref.update(captured, (xs) => [...xs, `${logLevel.label} ${text} ${notes}`]))
  })
)

/** `it.scoped` with the log captured. */
const test = (name: string, body: () => Effect.Effect<void, unknown, Scope.Scope>) =>
  it.scoped(name, () => Effect.provide(body(), capture))

let seq = 0

/** An emulator on the test's clock, a table, a checkpoint store and a log capture. */
const setup = Effect.gen(function*() {
  const emulator = yield* StarRocksEmulator.make({ users: { root: "" }, clock: yield* Effect.clock })
  const table = `restart_${++seq}`
  yield* emulator.createTable({
    database: db,
    table,
    model: "DUPLICATE",
    key: [],
    columns: [{ name: "id", type: "INT" }, { name: "name", type: "VARCHAR(16)" }]
  })
  const checkpointer = yield* Checkpointer.makeMemoryForTests
  yield* Ref.set(captured, [])
  return { emulator, table, checkpointer, logs: captured } satisfies Ctx
})

const configOf = (ctx: Ctx, overrides: Partial<StarRocksConfig.Options> = {}) =>
  StarRocksConfig.make({
    loadUrl: ctx.emulator.fe,
    database: db,
    table: ctx.table,
    username: "root",
    password: Redacted.make(""),
    labelPrefix: prefix,
    maxRetries: 0,
    ...overrides
  })

const servicesOf = (ctx: Ctx, config: StarRocksConfig.StarRocksConfig) =>
  Layer.mergeAll(
    StarRocksSink.layer(config),
    Layer.succeed(Checkpointer.Checkpointer, ctx.checkpointer)
  )

const labelOf = (ctx: Ctx, id: number) => Labels.labelOf(prefix, ctx.table, "0", id)

/** Begins label `id`, loads one row into it and, unless `begunOnly`, prepares it with `prepared_timeout`. */
const txn = (ctx: Ctx, id: number, options: { readonly preparedTimeout?: number; readonly begunOnly?: boolean } = {}) =>
  Effect.gen(function*() {
    const client = yield* LoadClient.LoadClient
    const target = { database: db, table: ctx.table, label: labelOf(ctx, id) }
    const body = new TextEncoder().encode(`${id},n${id}\n`)
    yield* client.begin({ ...target, headers: { timeout: "600" } })
    yield* client.loadTxn({
      ...target,
      headers: { format: "csv", column_separator: "," },
      body: { chunks: [body], byteLength: body.byteLength }
    })
    if (options.begunOnly === true) return target.label
    yield* client.prepare({
      ...target,
      headers: options.preparedTimeout !== undefined ? { prepared_timeout: String(options.preparedTimeout) } : {}
    })
    return target.label
  }).pipe(Effect.provide(LoadClient.layer(configOf(ctx))))

/** The checkpoint the sink would have saved after preparing `prepared` (position 5, next label id `next`). */
const saveCheckpoint = (ctx: Ctx, prepared: ReadonlyArray<string>, next: number) =>
  Effect.gen(function*() {
    const now = yield* TestClockNow
    yield* ctx.checkpointer.save(
      new Checkpointer.CheckpointRecord({
        key: `${prefix}-${db}.${ctx.table}-0`,
        id: 1,
        position: 5,
        prepared: { [`${db}.${ctx.table}`]: [...prepared] },
        nextLabelId: { [`${db}.${ctx.table}`]: next },
        createdAt: now
      })
    )
  })

const TestClockNow = Effect.clockWith((c) => c.currentTimeMillis)

const stateOf = (ctx: Ctx, label: string) => ctx.emulator.loadState(db, label)

/** Two prepared labels in the last checkpoint; the first one's `prepared_timeout` (1 s) passes. */
const expiredCheckpoint = (ctx: Ctx) =>
  Effect.gen(function*() {
    const expired = yield* txn(ctx, 0, { preparedTimeout: 1 })
    const alive = yield* txn(ctx, 1)
    // the live one first: recovery must not commit it before finding the other lost
    yield* saveCheckpoint(ctx, [alive, expired], 2)
    yield* TestClock.adjust("2 seconds")
    yield* ctx.emulator.tick
    assert.strictEqual(yield* stateOf(ctx, expired), "ABORTED")
    assert.strictEqual(yield* stateOf(ctx, alive), "PREPARED")
    return { expired, alive }
  })

const recover = (ctx: Ctx, config: StarRocksConfig.StarRocksConfig, skip?: boolean) =>
  StarRocksSink.recover({ position: Schema.Number, ...(skip !== undefined ? { skipLostCheckpoint: skip } : {}) })
    .pipe(Effect.provide(servicesOf(ctx, config)), Effect.exit)

const failureOf = <A>(exit: Exit.Exit<A, unknown>): Record<string, any> => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") return assert.fail(`no typed failure: ${String(exit)}`)
  return exit.cause.error as Record<string, any>
}

const ids = (ctx: Ctx) =>
  Effect.map(ctx.emulator.rows(db, ctx.table), (rows) => rows.map((r) => Number(r["id"])).sort())

describe("restart policy", () => {
  test("an expired prepared transaction fails recovery naming label, state, reason and what to do", () =>
    Effect.gen(function*() {
      const ctx = yield* setup
      const { alive, expired } = yield* expiredCheckpoint(ctx)
      const e = failureOf(yield* recover(ctx, configOf(ctx)))
      assert.strictEqual(e._tag, "ExactlyOnceError")
      assert.strictEqual(e.reason, "PreparedLost")
      assert.strictEqual(e.label, expired)
      assert.strictEqual(e.labelState, "ABORTED")
      assert.strictEqual(e.table, `${db}.${ctx.table}`)
      assert.strictEqual(e.serverReason, "timeout by txn manager")
      assert.deepStrictEqual(e.labels, [expired])
      assert.include(e.message, `${expired} in ${db}.${ctx.table} is ABORTED (timeout by txn manager)`)
      assert.include(e.message, "sink.exactly-once.skip-lost-checkpoint")
      assert.include(e.message, "labels abort")
      assert.include(e.message, "Restart policy")
      assert.notInclude(e.message, alive)
      // nothing was committed: the checkpoint's other transaction is still prepared, no row landed
      assert.strictEqual(yield* stateOf(ctx, alive), "PREPARED")
      assert.deepStrictEqual(yield* ids(ctx), [])
    }))

  test("the opt-in skips the lost checkpoint: the rest is committed, the loss logged", () =>
    Effect.gen(function*() {
      const ctx = yield* setup
      const { alive, expired } = yield* expiredCheckpoint(ctx)
      const exit = yield* recover(ctx, configOf(ctx), true)
      assert.deepStrictEqual(exit, Exit.succeed(Option.some(5)))
      yield* ctx.emulator.tick
      assert.deepStrictEqual(yield* ids(ctx), [1])
      assert.strictEqual(yield* stateOf(ctx, expired), "ABORTED")
      const warning = (yield* Ref.get(ctx.logs)).find((l) => l.startsWith("WARN") && l.includes("skipping"))
      assert.isDefined(warning)
      assert.include(warning, `${expired} in ${db}.${ctx.table} is ABORTED (timeout by txn manager)`)
      assert.include(warning, "NOT in StarRocks")
      assert.include(warning, "position 5")
      assert.notInclude(warning, alive)
      // the skip is recorded: the next start, without the opt-in, finds a clean checkpoint at the same position
      const record = yield* ctx.checkpointer.latest(`${prefix}-${db}.${ctx.table}-0`)
      assert.deepStrictEqual(Option.map(record, (r) => [r.id, r.position, r.prepared]), Option.some([2, 5, {}]))
      yield* Ref.set(ctx.logs, [])
      assert.deepStrictEqual(yield* recover(ctx, configOf(ctx)), Exit.succeed(Option.some(5)))
      assert.isFalse((yield* Ref.get(ctx.logs)).some((l) => l.includes("skipping")))
    }))

  test("the opt-in as a config key (sink.exactly-once.skip-lost-checkpoint)", () =>
    Effect.gen(function*() {
      const ctx = yield* setup
      yield* expiredCheckpoint(ctx)
      const config = yield* StarRocksConfig.fromProperties({
        "load-url": ctx.emulator.fe.join(";"),
        "database-name": db,
        "table-name": ctx.table,
        username: "root",
        password: "",
        "sink.label-prefix": prefix,
        "sink.exactly-once.skip-lost-checkpoint": "true"
      })
      assert.deepStrictEqual(yield* recover(ctx, config), Exit.succeed(Option.some(5)))
      // the typed option wins over the key
      const again = yield* setup
      yield* expiredCheckpoint(again)
      const e = failureOf(yield* recover(again, { ...config, table: again.table }, false))
      assert.strictEqual(e.reason, "PreparedLost")
    }))

  test("a label evicted by retention and unknown to the LabelStore is lost too", () =>
    Effect.gen(function*() {
      const ctx = yield* setup
      yield* saveCheckpoint(ctx, [labelOf(ctx, 0)], 1)
      const e = failureOf(yield* recover(ctx, configOf(ctx)))
      assert.strictEqual(e.reason, "PreparedLost")
      assert.strictEqual(e.labelState, "UNKNOWN")
      assert.include(e.message, "label_keep_max_second")
    }))

  test("a label the LabelStore records as committed is not lost when evicted", () =>
    Effect.gen(function*() {
      const ctx = yield* setup
      const label = labelOf(ctx, 0)
      yield* saveCheckpoint(ctx, [label], 1)
      const store = yield* LabelStore.makeMemory()
      yield* store.put(
        new LabelStore.LabelRecord({
          label,
          table: `${db}.${ctx.table}`,
          state: "committed",
          rows: 1,
          bytes: 5,
          updatedAt: 0
        })
      )
      const exit = yield* StarRocksSink.recover({ position: Schema.Number }).pipe(
        Effect.provide(Layer.merge(servicesOf(ctx, configOf(ctx)), Layer.succeed(LabelStore.LabelStore, store))),
        Effect.exit
      )
      assert.deepStrictEqual(exit, Exit.succeed(Option.some(5)))
    }))
})

describe("Labels", () => {
  test("list, abort (dry run, then for real) and commit the labels under a prefix", () =>
    Effect.gen(function*() {
      const ctx = yield* setup
      const prepared = yield* txn(ctx, 0)
      const begun = yield* txn(ctx, 1, { begunOnly: true })
      const committed = yield* txn(ctx, 2)
      const client = LoadClient.layer(configOf(ctx))
      const scope: Labels.Scope = { prefix, tables: [{ database: db, table: ctx.table }] }
      yield* Labels.commit({ database: db, table: ctx.table, label: committed }).pipe(Effect.provide(client))
      const listed = yield* Labels.list(scope).pipe(Effect.provide(client))
      assert.deepStrictEqual(
        listed.map((l) => [l.label, l.id, l.state, l.foundBy]),
        [[prepared, 0, "PREPARED", "walk"], [begun, 1, "PREPARE", "walk"], [committed, 2, "VISIBLE", "walk"]]
      )
      const dry = yield* Labels.abort(scope, { dryRun: true }).pipe(Effect.provide(client))
      assert.deepStrictEqual(dry.aborted.map((l) => l.label), [prepared, begun])
      assert.strictEqual(yield* stateOf(ctx, prepared), "PREPARED")
      const done = yield* Labels.abort(scope).pipe(Effect.provide(client))
      assert.deepStrictEqual(done.aborted.map((l) => l.label), [prepared, begun])
      assert.strictEqual(yield* stateOf(ctx, prepared), "ABORTED")
      assert.strictEqual(yield* stateOf(ctx, begun), "ABORTED")
      assert.strictEqual(yield* stateOf(ctx, committed), "VISIBLE")
      assert.deepStrictEqual(yield* ids(ctx), [2])
      // an aborted label cannot be committed: a typed error with its state and reason
      const e = failureOf(
        yield* Labels.commit({ database: db, table: ctx.table, label: prepared }).pipe(
          Effect.provide(client),
          Effect.exit
        )
      )
      assert.strictEqual(e._tag, "ExactlyOnceError")
      assert.strictEqual(e.reason, "CommitFailed")
      assert.strictEqual(e.labelState, "ABORTED")
      assert.strictEqual(e.serverReason, "User Aborted")
    }))

  test("with a checkpoint record: its prepared labels and the walk from its next label id", () =>
    Effect.gen(function*() {
      const ctx = yield* setup
      const old = yield* txn(ctx, 0)
      const lingering = yield* txn(ctx, 3)
      yield* saveCheckpoint(ctx, [old], 3)
      const record = Option.getOrThrow(yield* ctx.checkpointer.latest(`${prefix}-${db}.${ctx.table}-0`))
      assert.strictEqual(Labels.instanceOf(record, prefix), "0")
      const decoded = yield* Labels.decodeCheckpoint(
        JSON.stringify(Schema.encodeSync(Checkpointer.CheckpointRecord)(record))
      )
      const listed = yield* Labels.list({ prefix, tables: [], checkpoint: decoded }).pipe(
        Effect.provide(LoadClient.layer(configOf(ctx)))
      )
      assert.deepStrictEqual(listed.map((l) => [l.label, l.state, l.foundBy]), [
        [old, "PREPARED", "checkpoint"],
        [lingering, "PREPARED", "walk"]
      ])
      // the expiry of the checkpoint's label shows with StarRocks' reason
      yield* TestClock.adjust("2 days")
      yield* ctx.emulator.tick
      const later = yield* Labels.list({ prefix, tables: [], checkpoint: decoded }).pipe(
        Effect.provide(LoadClient.layer(configOf(ctx)))
      )
      assert.deepStrictEqual(later.map((l) => [l.state, l.reason]), [
        ["ABORTED", "timeout by txn manager"],
        ["ABORTED", "timeout by txn manager"]
      ])
    }))
})

describe("start-up warnings", () => {
  const warnings = (ctx: Ctx) =>
    Effect.map(Ref.get(ctx.logs), (xs) => xs.filter((l) => l.startsWith("WARN") && l.includes("exactly-once")))

  test("the checkpoint interval near timeout, prepared_timeout or label retention", () =>
    Effect.gen(function*() {
      const ctx = yield* setup
      const config = configOf(ctx, {
        properties: { timeout: "100", prepared_timeout: "200" },
        labelKeepMaxSecond: 300
      })
      const run = (interval: string) =>
        StarRocksSink.recover({ position: Schema.Number, checkpointInterval: interval as Duration.DurationInput }).pipe(
          Effect.provide(servicesOf(ctx, config))
        )
      yield* run("79 seconds")
      assert.deepStrictEqual(yield* warnings(ctx), [])
      yield* run("80 seconds")
      const near = yield* warnings(ctx)
      assert.strictEqual(near.length, 1, near.join("\n"))
      assert.include(near[0], "transaction timeout it sends at begin (100 s, sink.properties.timeout)")
      yield* Ref.set(ctx.logs, [])
      yield* run("250 seconds")
      const all = yield* warnings(ctx)
      assert.strictEqual(all.length, 3)
      assert.include(all[1], "prepared_timeout it sends (sink.properties.prepared_timeout) (200 s)")
      assert.include(all[2], "label retention, sink.label-keep-max-second (300 s)")
    }))

  test("the last checkpoint's age near prepared_timeout or label retention", () =>
    Effect.gen(function*() {
      const ctx = yield* setup
      yield* saveCheckpoint(ctx, [], 0)
      const config = configOf(ctx, { properties: { prepared_timeout: "1000" }, labelKeepMaxSecond: 2000 })
      const run = StarRocksSink.recover({ position: Schema.Number }).pipe(Effect.provide(servicesOf(ctx, config)))
      yield* TestClock.adjust("799 seconds")
      yield* run
      assert.deepStrictEqual(yield* warnings(ctx), [])
      yield* TestClock.adjust("1 second")
      yield* run
      const one = yield* warnings(ctx)
      assert.strictEqual(one.length, 1)
      assert.include(one[0], "the last checkpoint is 800 s old")
      assert.include(one[0], "prepared transactions may have been aborted")
      yield* Ref.set(ctx.logs, [])
      yield* TestClock.adjust("1000 seconds")
      yield* run
      const two = yield* warnings(ctx)
      assert.strictEqual(two.length, 2)
      assert.include(two[1], "label retention, sink.label-keep-max-second (2000 s): its labels may be evicted")
    }))

  test("the exactly-once sink logs them at start", () =>
    Effect.gen(function*() {
      const ctx = yield* setup
      const config = configOf(ctx, { properties: { timeout: "100" } })
      const Row = Schema.Struct({ id: Schema.Number, name: Schema.String })
      const summary = yield* Stream.empty.pipe(
        Stream.run(StarRocksSink.exactlyOnce(Row, { position: Schema.Number, checkpointInterval: "90 seconds" })),
        Effect.provide(servicesOf(ctx, config))
      )
      assert.strictEqual(summary.checkpoints, 0)
      const near = (yield* warnings(ctx)).filter((l) => l.includes("checkpoint interval"))
      assert.strictEqual(near.length, 1)
      assert.include(near[0], "the checkpoint interval (90 s) is at or above 80% of the transaction timeout")
    }))
})
