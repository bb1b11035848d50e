/**
 * Compressed loads within the sink's memory bound (docs/configuration.md "Compression"): the bodies in flight hold
 * at most `maxBytes` (the other half of the sink's 2 × max-bytes is the building batches', unchanged), counting what
 * is really held: a raw body until its frame exists (its buffers handed back as the codec reads them), then the frame
 * alone. Measured through a LoadClient that wraps the real one against the emulator (memory storage): it counts a
 * raw body from the moment the sink hands it to the client until the client hands its last chunk back (or, if it is
 * never handed back, until its load ends), and a frame from the moment it exists until its load ends; several loads
 * are kept in flight by a slow BE. Every row lands, and a retried load resends the same valid frame. And the client's
 * side of it: `LoadClient.compress` hands each chunk back once, a request marked compressed is sent as it is (never
 * compressed twice) by plain and transaction loads, and what it cannot send is a typed error.
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Schema, Stream } from "effect"
import { Checkpoint, Checkpointer, ColumnType, LoadClient, StarRocksConfig, StarRocksSink } from "../src/index.js"
import type { LoadBody } from "../src/LoadBody.js"
import * as Fixture from "./emulatorFixture.js"

const Row = Schema.Struct({ id: ColumnType.Int, name: Schema.String, payload: Schema.String })

/** Rows whose payload compresses about 2:1 (hex digits): frames are a real share of the raw bodies. */
const rowsOf = (n: number) => {
  let x = 12345
  const hex = () => {
    let s = ""
    for (let i = 0; i < 8; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0
      s += x.toString(16).padStart(8, "0")
    }
    return s
  }
  return Array.from({ length: n }, (_, i) => ({ id: i, name: `name ${i % 7}`, payload: hex() }))
}

// labels of the client-level tests
let seq = 0

const start = Effect.gen(function*() {
  const em = yield* StarRocksEmulator.make({ users: { root: "" }, fes: 1, bes: 1 })
  const table = () =>
    Fixture.duplicateTable(em, "m", [
      { name: "id", type: "INT" },
      { name: "name", type: "VARCHAR(16)" },
      { name: "payload", type: "VARCHAR(80)" }
    ])
  return { em, table }
})

const MAX_BYTES = 2_000_000

const configOf = (fe: ReadonlyArray<string>, table: string, options: Partial<StarRocksConfig.Options> = {}) =>
  Fixture.configOf(fe, table, {
    // about a third of max-bytes per batch: three loads in flight fill the budget with raw bodies
    maxRows: 5_000,
    maxBytes: MAX_BYTES,
    allowSmallBuffers: true,
    retryInterval: 1,
    // more slots than batches fit in the budget: no body waits for a slot unseen by the count below
    ioThreadCount: 16,
    ...options
  })

/**
 * The real client, wrapped to count the body bytes the sink holds in its loads, at every change: a raw body from
 * its hand-over (`compress`, or the load itself when the sink does not compress first) until its chunks are all
 * handed back or its load ends, a frame from the moment it exists (the end of `compress`, or the load's start when
 * the client compresses inside the load, sized by `compressedBytes`) until its load ends.
 */
const counting = (inner: LoadClient.LoadClient) => {
  // (moment, change of the bytes held): the peak is summed in order at the end, so that a frame whose size is known
  // only when its load ends can be counted from its load's start
  const events: Array<readonly [number, number]> = []
  let now = 0
  const add = (n: number, at = now++) => events.push([at, n])
  const frames = new WeakSet<LoadBody>()
  const load = <A extends { readonly compressedBytes?: number | undefined }>(
    request: LoadClient.LoadRequest,
    run: (request: LoadClient.LoadRequest) => Effect.Effect<A, any>
  ) =>
    Effect.suspend(() => {
      if (frames.has(request.body)) {
        return Effect.ensuring(run(request), Effect.sync(() => add(-request.body.byteLength)))
      }
      // the sink did not compress first: the raw body is held through the load, and the frame the client makes
      // at its start with it
      const started = now++
      add(request.body.byteLength, started)
      let frame = 0
      return run(request).pipe(
        Effect.tap((r) =>
          Effect.sync(() => {
            frame = r.compressedBytes ?? 0
            add(frame, started)
          })
        ),
        Effect.ensuring(Effect.sync(() => add(-request.body.byteLength - frame)))
      )
    })
  const client: LoadClient.LoadClient = {
    ...inner,
    loadBatch: (request) => load(request, inner.loadBatch),
    loadTransactional: (request) => load(request, inner.loadTransactional),
    compress: (request, release) =>
      Effect.suspend(() => {
        let rawHeld = request.body.byteLength
        add(rawHeld)
        return inner.compress!(request, (chunks) => {
          rawHeld -= chunks.byteLength
          add(-chunks.byteLength)
          release?.(chunks)
        }).pipe(
          Effect.tap((out) =>
            Effect.sync(() => {
              // the frame exists before any raw bytes not handed back (none: every chunk is handed back as read) drop
              frames.add(out.body)
              add(out.body.byteLength)
              add(-rawHeld)
              rawHeld = 0
            })
          )
        )
      })
  }
  const totals = () => {
    let held = 0
    let peak = 0
    for (const [, n] of [...events].sort((a, b) => a[0] - b[0])) {
      held += n
      peak = Math.max(peak, held)
    }
    return { peak, held }
  }
  return { client, totals }
}

const runCounted = (config: StarRocksConfig.StarRocksConfig, n: number) =>
  Effect.gen(function*() {
    const inner = yield* LoadClient.make(config)
    const count = counting(inner)
    const summary = yield* Stream.run(Stream.fromIterable(rowsOf(n)), StarRocksSink.make(Row)).pipe(
      Effect.provide(Layer.merge(StarRocksSink.layer(config), Layer.succeed(LoadClient.LoadClient, count.client)))
    )
    return { summary, ...count.totals() }
  })

describe("compressed loads within the memory bound", () => {
  for (const codec of StarRocksConfig.compressionCodecs) {
    it.scopedLive(`${codec}: the bodies in flight hold at most max-bytes, every row lands, a retry resends the frame`, () =>
      Effect.gen(function*() {
        const { em, table } = yield* start
        const t = yield* table()
        // a slow BE keeps several loads in flight; the second load is answered "too many versions" once
        yield* em.addFault({ node: "be", path: `/${t}/_stream_load`, nth: 2, action: { _tag: "too-many-versions" } })
        yield* em.addFault({ node: "be", path: `/${t}/_stream_load`, action: { _tag: "delay", ms: 150 } })
        const n = 40_000
        const config = configOf(em.fe, t, { compression: codec, format: "json" })
        const { held, peak, summary } = yield* runCounted(config, n)
        assert.strictEqual(summary.rows, n)
        assert.isAbove(summary.retries, 0)
        const stored = yield* em.rows("db", t)
        assert.strictEqual(stored.length, n)
        assert.strictEqual(new Set(stored.map((r) => Number(r["id"]))).size, n)
        // the retried load sent the same frame twice, and the emulator decoded the one that landed
        const loads = (yield* em.requests).filter((r) => r.node.startsWith("be") && r.path.includes(`/${t}/`))
        const byLabel = new Map<string, Array<number>>()
        for (const r of loads) {
          byLabel.set(r.headers["label"]!, [...(byLabel.get(r.headers["label"]!) ?? []), r.bodyBytes])
        }
        const retried = [...byLabel.values()].filter((sizes) => sizes.length > 1)
        assert.isAbove(retried.length, 0)
        for (const sizes of retried) assert.isTrue(sizes.every((s) => s === sizes[0]))
        for (const r of loads) assert.strictEqual(r.headers["compression"], codec)
        assert.strictEqual(summary.sentBytes, [...byLabel.values()].reduce((a, s) => a + s[0]!, 0))
        // raw bodies of about a third of max-bytes, three in flight at once: their frames on top would not fit
        assert.isAbove(peak, MAX_BYTES / 2)
        assert.isAtMost(peak, MAX_BYTES, `the bodies in flight held ${peak} bytes at their peak`)
        assert.strictEqual(held, 0)
      }))
  }

  it.scopedLive("exactly-once: a failed transaction/load replays the transaction's data into a new one, compressed", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start
      const t = yield* table()
      // the third transaction/load fails: the spool's bodies are replayed into a new transaction
      yield* em.addFault({ node: "be", path: "/api/transaction/load", nth: 3, action: { _tag: "http-500" } })
      const n = 20_000
      const config = configOf(em.fe, t, { compression: "zstd", semantic: "exactly-once" })
      const summary = yield* Stream.fromIterable(rowsOf(n)).pipe(
        Checkpoint.withBarriers({ position: (r: typeof Row.Type) => r.id, everyRows: 12_000 }),
        Stream.run(StarRocksSink.exactlyOnce(Row, { position: Schema.Number })),
        Effect.provide(StarRocksSink.layer(config)),
        Effect.provide(Checkpointer.layerMemoryForTests)
      )
      assert.strictEqual(summary.rows, n)
      const stored = yield* em.rows("db", t)
      assert.strictEqual(stored.length, n)
      assert.strictEqual(new Set(stored.map((r) => Number(r["id"]))).size, n)
      const loads = (yield* em.requests).filter((r) =>
        r.node.startsWith("be") && r.path.includes("/transaction/load") && r.headers["table"] === t
      )
      // the replay sent more loads than there were batches, every one a zstd frame the emulator decoded
      assert.isAbove(loads.length, Math.ceil(n / 5_000))
      for (const r of loads) assert.strictEqual(r.headers["compression"], "zstd")
    }))

  it.scopedLive("exactly-once: each batch is compressed once; its loads, the spool and the replay hold the frame", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start
      const t = yield* table()
      // the third transaction/load fails: the spool's bodies are replayed into a new transaction
      yield* em.addFault({ node: "be", path: "/api/transaction/load", nth: 3, action: { _tag: "http-500" } })
      const n = 20_000
      const config = configOf(em.fe, t, { compression: "lz4_frame", semantic: "exactly-once" })
      const inner = yield* LoadClient.make(config)
      const frames = new Set<LoadBody>()
      const sent: Array<{ readonly frame: boolean; readonly rawBytes: number | undefined }> = []
      const client: LoadClient.LoadClient = {
        ...inner,
        compress: (request, release) =>
          Effect.tap(inner.compress!(request, release), (out) => Effect.sync(() => frames.add(out.body))),
        loadTxn: (request) =>
          Effect.suspend(() => {
            sent.push({ frame: frames.has(request.body), rawBytes: request.compressed?.rawBytes })
            return inner.loadTxn(request)
          })
      }
      const summary = yield* Stream.fromIterable(rowsOf(n)).pipe(
        Checkpoint.withBarriers({ position: (r: typeof Row.Type) => r.id, everyRows: 12_000 }),
        Stream.run(StarRocksSink.exactlyOnce(Row, { position: Schema.Number })),
        Effect.provide(Layer.merge(StarRocksSink.layer(config), Layer.succeed(LoadClient.LoadClient, client))),
        Effect.provide(Checkpointer.layerMemoryForTests)
      )
      assert.strictEqual(summary.rows, n)
      const stored = yield* em.rows("db", t)
      assert.strictEqual(stored.length, n)
      assert.strictEqual(new Set(stored.map((r) => Number(r["id"]))).size, n)
      // one frame per batch; every load of the transactions, the replayed ones included, sent one of them as it is
      assert.isAbove(sent.length, frames.size, "the replay sent loads again")
      assert.isAtLeast(frames.size, Math.ceil(n / 5_000))
      for (const s of sent) {
        assert.isTrue(s.frame, "a transaction load sent a body that is not a frame made by LoadClient.compress")
        assert.isAbove(s.rawBytes ?? 0, 0)
      }
    }))

  it.scopedLive("LoadClient.compress: each chunk handed back once, the frame sent as it is, typed errors", () =>
    Effect.gen(function*() {
      const { em, table } = yield* start
      const t = yield* table()
      const client = yield* LoadClient.make(configOf(em.fe, t, { maxRetries: 0 }))
      const text = rowsOf(300).map((r) => `${r.id},${r.name},${r.payload}\n`).join("")
      const bytes = Buffer.from(text)
      // a body of several chunks, as the encoder's are
      const chunks = [bytes.subarray(0, 1000), bytes.subarray(1000, 5000), bytes.subarray(5000)]
      const body = (): LoadBody => ({ chunks, byteLength: bytes.byteLength })
      const csv = { column_separator: "," }
      for (const codec of StarRocksConfig.compressionCodecs) {
        const handed: Array<Uint8Array> = []
        const request = yield* client.compress!(
          {
            database: "db",
            table: t,
            label: `c_${codec}_${++seq}`,
            headers: { ...csv, compression: codec },
            body: body()
          },
          (b) => handed.push(...b.chunks)
        )
        assert.deepStrictEqual(request.compressed, { rawBytes: bytes.byteLength })
        assert.isBelow(request.body.byteLength, bytes.byteLength)
        assert.strictEqual(handed.length, chunks.length)
        assert.isTrue(chunks.every((c) => handed.includes(c)))
        // compressing again changes nothing: the frame is never compressed twice
        assert.strictEqual(yield* client.compress!(request), request)
        const result = yield* client.loadBatch(request)
        assert.strictEqual(result.compressedBytes, request.body.byteLength)
        assert.strictEqual(result.loadedRows, 300)
      }
      // through the transaction interface too
      const label = `c_txn_${++seq}`
      const request = yield* client.compress!({
        database: "db",
        table: t,
        label,
        headers: { ...csv, compression: "lz4_frame" },
        body: body()
      })
      const loaded = yield* client.loadTransactional(request)
      assert.strictEqual(loaded.compressedBytes, request.body.byteLength)
      assert.strictEqual(loaded.loadBytes, bytes.byteLength)
      const sent = (yield* em.requests).filter((r) => r.node.startsWith("be") && r.path.includes("/transaction/load"))
      assert.strictEqual(sent.at(-1)!.bodyBytes, request.body.byteLength)
      assert.strictEqual(sent.at(-1)!.headers["format"], "lz4")
      assert.strictEqual((yield* em.rows("db", t)).length, 4 * 300)
      // nothing to compress: the request as it is, nothing handed back
      const plain: LoadClient.LoadRequest = { database: "db", table: t, label: "p", headers: {}, body: body() }
      assert.strictEqual(yield* client.compress!(plain, () => assert.fail("handed back")), plain)
      // a request marked compressed without a codec: refused before anything is sent
      const before = (yield* em.requests).length
      const unmarked = yield* client.loadBatch({ ...request, label: `c_bad_${++seq}`, headers: {} }).pipe(Effect.exit)
      if (Exit.isSuccess(unmarked) || unmarked.cause._tag !== "Fail") assert.fail("no typed error")
      const e = unmarked.cause.error as { _tag: string; outcome?: string; reason?: string }
      assert.strictEqual(e._tag, "StreamLoadError")
      assert.strictEqual(e.outcome, "Invalid")
      assert.strictEqual(e.reason, "unsupported compression")
      // merge commit: a CSV body without its final row delimiter is refused on its raw bytes, before compressing
      const unended = yield* client.compress!({
        database: "db",
        table: t,
        label: "u",
        headers: { compression: "gzip", enable_merge_commit: "true" },
        body: { chunks: [Buffer.from("1,a,b")], byteLength: 5 }
      }, () => assert.fail("handed back")).pipe(Effect.exit)
      if (Exit.isSuccess(unended) || unended.cause._tag !== "Fail") assert.fail("no typed error")
      assert.strictEqual(
        (unended.cause.error as { reason?: string }).reason,
        "csv body without a final row delimiter"
      )
      assert.strictEqual((yield* em.requests).length, before)
    }))
})
