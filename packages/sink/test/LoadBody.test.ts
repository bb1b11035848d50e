/**
 * Streamed bodies (`LoadBody.fromFile`: a byte range of a file read as it is sent) against the emulator: the range
 * lands whole and identical (every row of the range in the table, none else; the BE read exactly its bytes), through
 * the FE's 307 (and a follower's 307 to the leader for a transaction load), read into a source's own buffers by
 * synchronous reads when it has them, and again after a retry (the emulator
 * closes the first attempt's connection in the middle of the body: the retry reads the range afresh); what needs the body in memory
 * (compression, merge commit) refuses it with a typed error; a file shorter than the range fails the send, never
 * sends fewer bytes than announced, and leaves the load URL up.
 */
import { StarRocksEmulator } from "@effect-starrocks/testkit"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as LoadBody from "../src/LoadBody.js"
import * as LoadClient from "../src/LoadClient.js"
import * as StarRocksConfig from "../src/StarRocksConfig.js"

let seq = 0
const CSV = { format: "csv", column_separator: "," }

/** 3 MB of CSV rows `id,text` (several of the transport's 1 MiB slices); the text varies with the id. */
const ROWS = 30_000
const rowOf = (i: number) => `${i},row ${i} ${"abcdefghijklmnopqrstuvwxyz".repeat(1 + (i % 3)).slice(i % 26)}\n`

const fixture = (options: { readonly fes?: number } = {}) =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-loadbody-"))),
      (d) => Effect.sync(() => Fs.rmSync(d, { recursive: true, force: true }))
    )
    const file = Path.join(dir, "rows.csv")
    const lines = Array.from({ length: ROWS }, (_, i) => rowOf(i))
    Fs.writeFileSync(file, lines.join(""))
    // the range: rows 1000 .. 28999
    const offsets = [0]
    for (const l of lines) offsets.push(offsets[offsets.length - 1]! + Buffer.byteLength(l))
    const first = 1000
    const last = ROWS - 1000
    const em = yield* StarRocksEmulator.make({ users: { root: "" }, fes: options.fes ?? 1, bes: 1 })
    const table = `s${++seq}`
    yield* em.createTable({
      database: "db",
      table,
      model: "DUPLICATE",
      key: [],
      columns: [{ name: "id", type: "INT" }, { name: "text", type: "VARCHAR(200)" }]
    }).pipe(Effect.orDie)
    const config = StarRocksConfig.make({
      // the last FE: with two, a follower that sends the transaction calls to the leader (another 307)
      loadUrl: [em.fe[em.fe.length - 1]!],
      database: "db",
      table,
      username: "root",
      password: Redacted.make(""),
      retryInterval: 1,
      maxRetries: 3
    })
    const client = yield* LoadClient.make(config)
    const inner = LoadBody.fromFile({ path: file, start: offsets[first]!, end: offsets[last]! })
    // counts the readings of the body (one per send)
    const opens = { n: 0 }
    const body: LoadBody.LoadBody = {
      ...inner,
      source: { open: () => (opens.n++, inner.source!.open()) }
    }
    const expected = lines.slice(first, last).map((l) => l.slice(0, -1))
    /** The rows in the table, as `id,text` lines in id order. */
    const landed = Effect.map(
      em.rows("db", table),
      (rows) =>
        rows.map((r) => [Number(r["id"]), `${r["id"]},${r["text"]}`] as const).sort((a, b) => a[0] - b[0]).map((
          r
        ) => r[1])
    )
    const beBodies = Effect.map(
      em.requests,
      (log) =>
        log.filter((r) => r.node.startsWith("be") && r.path.includes(`/${table}/_stream_load`)).map((r) => r.bodyBytes)
    )
    return { em, file, dir, table, config, client, body, expected, landed, beBodies, offsets, opens }
  })

/**
 * A body read from `file` at `start` with `readSync`, into the buffers `slices` gives: each read calls back before it
 * returns (as the CLI loader's reads do); `onRead` sees each buffer before it is read into.
 */
const syncFileBody = (
  file: string,
  start: number,
  byteLength: number,
  slices: LoadBody.Slices,
  onRead: (buffer: Uint8Array) => void
): LoadBody.LoadBody => ({
  chunks: [],
  byteLength,
  source: {
    slices,
    open: () => {
      const fd = Fs.openSync(file, "r")
      let position = start
      return {
        read: (buffer, callback) => {
          onRead(buffer)
          const n = Fs.readSync(fd, buffer, 0, buffer.byteLength, position)
          position += n
          callback(null, n)
        },
        close: () => Fs.closeSync(fd)
      }
    }
  }
})

describe("LoadBody.fromFile (a streamed body)", () => {
  it.scopedLive("lands whole and identical through the FE's 307 (Expect: 100-continue)", () =>
    Effect.gen(function*() {
      const f = yield* fixture()
      assert.isTrue(LoadBody.isStreamed(f.body))
      assert.strictEqual(f.body.chunks.length, 0)
      const result = yield* f.client.loadBatch({
        database: "db",
        table: f.table,
        label: `streamed_${seq}`,
        headers: CSV,
        body: f.body
      })
      assert.strictEqual(result.status, "Success")
      assert.strictEqual(result.loadedRows, f.expected.length)
      assert.deepStrictEqual(yield* f.landed, f.expected)
      assert.deepStrictEqual(yield* f.beBodies, [f.body.byteLength])
      // the FE answered 307 before 100 Continue: only the BE read the body
      assert.strictEqual(f.opens.n, 1)
    }))

  it.scopedLive("a source with buffers of its own and synchronous reads: read into those, each given back", () =>
    Effect.gen(function*() {
      const f = yield* fixture()
      const start = f.offsets[1000]!
      const made: Array<Uint8Array> = []
      const free: Array<Uint8Array> = []
      const readInto = new Set<ArrayBufferLike>()
      const slices: LoadBody.Slices = {
        take: () => free.pop() ?? (made.push(new Uint8Array(300_000)), made[made.length - 1]!),
        give: (slice) => void free.push(slice)
      }
      // calls back before it returns
      const body = syncFileBody(f.file, start, f.body.byteLength, slices, (buffer) => void readInto.add(buffer.buffer))
      const result = yield* f.client.loadBatch({
        database: "db",
        table: f.table,
        label: `own_${seq}`,
        headers: CSV,
        body
      })
      assert.strictEqual(result.status, "Success")
      assert.deepStrictEqual(yield* f.landed, f.expected)
      assert.deepStrictEqual(yield* f.beBodies, [f.body.byteLength])
      // read into the source's buffers only (a few: the send's slots), every one given back at the end
      assert.isAtLeast(made.length, 1)
      assert.isAtMost(made.length, 4)
      assert.deepStrictEqual([...readInto].sort(), made.map((b) => b.buffer).sort())
      assert.strictEqual(free.length, made.length)
    }))

  it.scopedLive("synchronous reads leave the event loop a turn between writes: at most a send's slots read in a row", () =>
    Effect.gen(function*() {
      const f = yield* fixture()
      const start = f.offsets[1000]!
      // small slices: many writes, each of which loopback takes at once (node then calls the write back from
      // process.nextTick, where a read and a write of the next slice would chain ticks without a turn of the loop)
      const free: Array<Uint8Array> = []
      const slices: LoadBody.Slices = {
        take: () => free.pop() ?? new Uint8Array(16 * 1024),
        give: (slice) => void free.push(slice)
      }
      let turned = true
      let inARow = 0
      let most = 0
      let reads = 0
      const body = syncFileBody(f.file, start, f.body.byteLength, slices, () => {
        // reads since the event loop last ran its check phase (an immediate set by an earlier read ran)
        inARow = turned ? 1 : inARow + 1
        most = Math.max(most, inARow)
        reads++
        if (turned) {
          turned = false
          setImmediate(() => {
            turned = true
          })
        }
      })
      const result = yield* f.client.loadBatch({
        database: "db",
        table: f.table,
        label: `turns_${seq}`,
        headers: CSV,
        body
      })
      assert.strictEqual(result.status, "Success")
      assert.deepStrictEqual(yield* f.landed, f.expected)
      assert.isAtLeast(reads, 40)
      // a send fills its 4 slots at once, then reads the next slice from the loop's next turn: the emulator (this
      // process) and another load's socket events are served meanwhile
      assert.isAtMost(most, 4)
    }))

  it.scopedLive("is read again for a retry: the first attempt's connection closed mid-body", () =>
    Effect.gen(function*() {
      const f = yield* fixture()
      yield* f.em.addFault({ node: "be", path: `/${f.table}/_stream_load`, nth: 1, action: { _tag: "close-mid-body" } })
      const result = yield* f.client.loadBatch({
        database: "db",
        table: f.table,
        label: `retried_${seq}`,
        headers: CSV,
        body: f.body
      })
      assert.strictEqual(result.status, "Success")
      assert.isAtLeast(result.retries, 1)
      assert.deepStrictEqual(yield* f.landed, f.expected)
      const bodies = yield* f.beBodies
      assert.strictEqual(bodies.length, 2)
      assert.isBelow(bodies[0]!, f.body.byteLength)
      assert.strictEqual(bodies[1], f.body.byteLength)
      assert.strictEqual(f.opens.n, 2)
    }))

  it.scopedLive("a transaction load streams it too, through two redirects (follower FE -> leader -> BE)", () =>
    Effect.gen(function*() {
      const f = yield* fixture({ fes: 2 })
      const result = yield* f.client.loadTransactional({
        database: "db",
        table: f.table,
        label: `txn_${seq}`,
        headers: CSV,
        body: f.body
      })
      assert.strictEqual(result.status, "Success")
      assert.deepStrictEqual(yield* f.landed, f.expected)
      const log = yield* f.em.requests
      const loads = log.filter((r) => r.path.includes("/api/transaction/load")).map((r) => [r.node, r.bodyBytes])
      assert.deepStrictEqual(loads, [["fe1", 0], ["fe0", 0], ["be0", f.body.byteLength]])
      assert.strictEqual(f.opens.n, 1)
    }))

  it.scopedLive("compression and merge commit refuse it with a typed error naming the reason; nothing is sent", () =>
    Effect.gen(function*() {
      const f = yield* fixture()
      const request = (label: string, headers: Record<string, string>) => ({
        database: "db",
        table: f.table,
        label,
        headers: { ...CSV, ...headers },
        body: f.body
      })
      // compressing ahead of the load (what the sink's dispatcher does) leaves a streamed body to the load's refusal
      const ahead: LoadClient.LoadRequest = f.client.compress !== undefined ?
        yield* f.client.compress(request(`gz_${seq}`, { Compression: "gzip" })) :
        request(`gz_${seq}`, { Compression: "gzip" })
      assert.strictEqual(ahead.compressed, undefined)
      const compressed = yield* Effect.exit(f.client.loadBatch(ahead))
      assert.isTrue(Exit.isFailure(compressed))
      if (Exit.isFailure(compressed)) {
        const e = compressed.cause._tag === "Fail" ? compressed.cause.error : undefined
        assert.strictEqual(e?._tag, "StreamLoadError")
        assert.strictEqual(e?._tag === "StreamLoadError" ? e.outcome : undefined, "Invalid")
        assert.strictEqual(e?._tag === "StreamLoadError" ? e.reason : undefined, "streamed body with compression gzip")
      }
      const merged = yield* Effect.exit(
        f.client.loadBatch(request(`mc_${seq}`, { enable_merge_commit: "true", merge_commit_interval_ms: "1000" }))
      )
      const me = Exit.isFailure(merged) && merged.cause._tag === "Fail" ? merged.cause.error : undefined
      assert.strictEqual(me?._tag === "StreamLoadError" ? me.reason : undefined, "streamed body with merge commit")
      const txn = yield* Effect.exit(f.client.loadTxn(request(`tz_${seq}`, { compression: "lz4_frame" })))
      const te = Exit.isFailure(txn) && txn.cause._tag === "Fail" ? txn.cause.error : undefined
      assert.strictEqual(te?._tag, "TransactionError")
      assert.strictEqual(
        te?._tag === "TransactionError" ? te.reason : undefined,
        "streamed body with compression lz4_frame"
      )
      assert.strictEqual(te?._tag === "TransactionError" ? te.retryable : undefined, false)
      assert.deepStrictEqual(yield* f.beBodies, [])
      assert.deepStrictEqual(yield* f.landed, [])
      assert.strictEqual(f.opens.n, 0)
    }))

  it.scopedLive("a file shorter than the range fails the send (EBODYSOURCE), nothing lands, the FE stays up", () =>
    Effect.gen(function*() {
      const f = yield* fixture()
      const short = Path.join(f.dir, "short.csv")
      Fs.copyFileSync(f.file, short)
      const body = LoadBody.fromFile({ path: short, start: 0, end: f.offsets[ROWS]! })
      Fs.truncateSync(short, f.offsets[ROWS / 2]!)
      const exit = yield* Effect.exit(f.client.loadBatch({
        database: "db",
        table: f.table,
        label: `short_${seq}`,
        headers: CSV,
        body
      }))
      const e = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
      assert.strictEqual(e?._tag, "TransportError")
      assert.strictEqual(e?._tag === "TransportError" ? e.code : undefined, "EBODYSOURCE")
      assert.include(e?.message ?? "", `ended after ${f.offsets[ROWS / 2]} of ${f.offsets[ROWS]} bytes`)
      assert.deepStrictEqual(yield* f.landed, [])
      assert.isTrue((yield* f.client.endpointStatus).every((s) => !s.down))
      // a source of your own that throws fails the send the same way
      const throwing = yield* Effect.exit(f.client.loadBatch({
        database: "db",
        table: f.table,
        label: `throws_${seq}`,
        headers: CSV,
        body: {
          chunks: [],
          byteLength: 10,
          source: {
            open: () => ({
              read: () => {
                throw new Error("disk gone")
              },
              close: () => {}
            })
          }
        }
      }))
      const t = Exit.isFailure(throwing) && throwing.cause._tag === "Fail" ? throwing.cause.error : undefined
      assert.strictEqual(t?._tag === "TransportError" ? t.code : undefined, "EBODYSOURCE")
      assert.include(t?.message ?? "", "disk gone")
    }))
})
