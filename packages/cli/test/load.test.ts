/**
 * `effect-starrocks load`: the batch cutter and the flag parsers in process; the command itself as a child process
 * (packages/cli/bin/effect-starrocks.mjs) against the emulator started in this process: a 1,000,000-row CSV into
 * MariaDB storage, a SIGKILL half-way and a rerun, gzip, NDJSON, Ctrl-C, and the typed errors.
 */
import * as LoadBody from "@effect-starrocks/sink/LoadBody"
import * as SinkMetrics from "@effect-starrocks/sink/SinkMetrics"
import * as MysqlStorage from "@effect-starrocks/testkit/MysqlStorage"
import * as StarRocksEmulator from "@effect-starrocks/testkit/StarRocksEmulator"
import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Metric, Schedule, Stream } from "effect"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"
import * as Load from "../src/Commands/Load.js"
import * as Cutter from "../src/internal/load/cutter.js"
import * as FileBatches from "../src/internal/load/fileBatches.js"
import {
  decodeDelimiter,
  delimiterHeader,
  grouped,
  label,
  parseProperties,
  parseSize
} from "../src/internal/load/options.js"
import type { Run } from "./launcher.js"
import { runCli } from "./launcher.js"

/** MariaDB on 127.0.0.1:3306 answers (always required under CI=true, as in packages/sink/test/integration). */
const mariaDb = await new Promise<boolean>((resolve) => {
  const socket = net.connect({ host: "127.0.0.1", port: 3306 })
  const done = (ok: boolean) => {
    socket.destroy()
    resolve(ok)
  }
  socket.setTimeout(2000, () => done(false))
  socket.once("connect", () => done(true))
  socket.once("error", () => done(false))
})
const requireMariaDb = () => mariaDb || process.env["CI"] === "true"

// -----------------------------------------------------------------------------
// the cutter
// -----------------------------------------------------------------------------

/** A seeded PRNG (mulberry32). */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** Pushes `data` in chunks of random sizes (1..maxChunk) and returns every piece. */
const cut = (data: Buffer, maxBytes: number, delimiter: string, maxChunk: number, seed: number, start = 0) => {
  const cutter = Cutter.make({ maxBytes, delimiter: Buffer.from(delimiter), start })
  const random = prng(seed)
  const pieces: Array<Cutter.Piece> = []
  for (let i = 0; i < data.length;) {
    const n = 1 + Math.floor(random() * maxChunk)
    pieces.push(...cutter.push(data.subarray(i, i + n)))
    i += n
  }
  pieces.push(...cutter.finish())
  return pieces
}

const bytesOf = (p: Cutter.Piece) => Buffer.concat(p.chunks.map((c) => Buffer.from(c)))

const rowsText = (n: number, seed: number, delimiter: string, lastDelimiter = true) => {
  const random = prng(seed)
  const rows: Array<string> = []
  for (let i = 0; i < n; i++) rows.push(`${i},${"x".repeat(Math.floor(random() * 40))}`)
  return Buffer.from(rows.join(delimiter) + (lastDelimiter ? delimiter : ""))
}

describe("load: the cutter", () => {
  for (const delimiter of ["\n", "\r\n", "||"]) {
    it(`cuts at row boundaries only, the same way for any chunking (${JSON.stringify(delimiter)})`, () => {
      const data = rowsText(2000, 7, delimiter)
      const reference = cut(data, 1000, delimiter, data.length, 1)
      for (const [maxChunk, seed] of [[1, 2], [3, 3], [17, 4], [700, 5], [5000, 6]] as const) {
        const pieces = cut(data, 1000, delimiter, maxChunk, seed)
        assert.deepStrictEqual(
          pieces.map((p) => [p.offset, p.end, p.rows]),
          reference.map((p) => [p.offset, p.end, p.rows])
        )
      }
      assert.isAbove(reference.length, 40)
      assert.strictEqual(Buffer.concat(reference.map(bytesOf)).toString(), data.toString())
      let offset = 0
      for (const p of reference) {
        const text = bytesOf(p).toString()
        assert.strictEqual(p.offset, offset)
        assert.strictEqual(p.byteLength, p.end - p.offset)
        assert.isAtMost(p.byteLength, 1000)
        assert.isTrue(text.endsWith(delimiter), "a batch ends with a whole row")
        assert.strictEqual(p.rows, text.split(delimiter).length - 1)
        // the next row would not have fit
        offset = p.end
      }
      assert.strictEqual(reference.reduce((n, p) => n + p.rows, 0), 2000)
      for (let i = 0; i + 1 < reference.length; i++) {
        const next = bytesOf(reference[i + 1]!).toString()
        const firstRow = next.slice(0, next.indexOf(delimiter) + delimiter.length)
        assert.isAbove(reference[i]!.byteLength + firstRow.length, 1000, `batch ${i} was cut early`)
      }
    })
  }

  it("sends a final row without a delimiter, and a row longer than maxBytes alone", () => {
    const data = Buffer.from("1,a\n2," + "y".repeat(50) + "\n3,b\n4,c")
    const pieces = cut(data, 10, "\n", 3, 9)
    assert.deepStrictEqual(pieces.map((p) => bytesOf(p).toString()), [
      "1,a\n",
      "2," + "y".repeat(50) + "\n",
      "3,b\n4,c"
    ])
    assert.deepStrictEqual(pieces.map((p) => p.rows), [1, 1, 2])
  })

  it("cuts a one-byte delimiter (counted, not scanned row by row) where a scan of every row cuts", () => {
    // the cuts as the cutter's contract states them, one delimiter at a time
    const reference = (data: Buffer, maxBytes: number, start: number) => {
      const out: Array<[number, number, number]> = []
      let batchStart = start
      let lastEnd = -1
      let rows = 0
      for (let i = data.indexOf(10); i >= 0; i = data.indexOf(10, i + 1)) {
        const e = start + i + 1
        if (e - batchStart > maxBytes) {
          if (lastEnd > batchStart) {
            out.push([batchStart, lastEnd, rows])
            batchStart = lastEnd
            rows = 0
          }
          if (e - batchStart > maxBytes) {
            out.push([batchStart, e, 1])
            batchStart = lastEnd = e
            continue
          }
        }
        lastEnd = e
        rows++
      }
      const end = start + data.length
      if (end > batchStart) out.push([batchStart, end, rows + (end > Math.max(lastEnd, batchStart) ? 1 : 0)])
      return out
    }
    const random = prng(21)
    for (let round = 0; round < 60; round++) {
      // rows of 0-30 bytes and now and then one of up to 300 (longer than maxBytes), maybe no final delimiter
      const rows: Array<string> = []
      for (let i = 0, n = 1 + Math.floor(random() * 300); i < n; i++) {
        rows.push("r".repeat(Math.floor(random() * (random() < 0.05 ? 300 : 30))))
      }
      const data = Buffer.from(rows.join("\n") + (random() < 0.5 ? "\n" : ""))
      const maxBytes = 1 + Math.floor(random() * 200)
      const from = Math.floor(random() * data.length / 2)
      const start = data.lastIndexOf(10, from) + 1
      const expected = reference(data.subarray(start), maxBytes, start)
      for (const maxChunk of [1, 7, 64, 1000, data.length]) {
        const pieces = cut(data.subarray(start), maxBytes, "\n", maxChunk, round, start)
        assert.deepStrictEqual(pieces.map((p) => [p.offset, p.end, p.rows]), expected, `round ${round}`)
        assert.deepStrictEqual(
          Buffer.concat(pieces.map(bytesOf)),
          data.subarray(start),
          `round ${round}: the bytes, in order`
        )
      }
    }
  })

  it.scoped("reads a file into two reused buffers with the cutter's cuts, rows and bytes", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const LA = FileBatches.LOOK_AHEAD
      const check = (name: string, data: Buffer, maxBytes: number, start: number) =>
        Effect.gen(function*() {
          const file = path.join(dir, `${name}.csv`)
          fs.writeFileSync(file, data)
          const expected = cut(data.subarray(start), maxBytes, "\n", 4096, 1, start)
          const pool = yield* FileBatches.makePool(2, Math.min(maxBytes, data.length) + LA)
          const fd = fs.openSync(file, "r")
          const got = yield* FileBatches.batches({ fd, start, maxBytes, delimiter: 10, pool, onError: (e) => e }).pipe(
            // the bytes are copied out before the buffer goes back to the pool (and is read into again)
            Stream.mapEffect(({ piece, release, rows }) =>
              Effect.map(rows, (rows) => {
                const bytes = Buffer.from(bytesOf(piece))
                release()
                return { piece: { ...piece, rows }, bytes }
              })
            ),
            Stream.runCollect,
            Effect.ensuring(Effect.sync(() => fs.closeSync(fd)))
          )
          const pieces = Array.from(got)
          assert.deepStrictEqual(
            pieces.map(({ piece }) => [piece.offset, piece.end, piece.rows]),
            expected.map((p) => [p.offset, p.end, p.rows]),
            name
          )
          assert.deepStrictEqual(Buffer.concat(pieces.map((p) => p.bytes)), data.subarray(start), name)
        })
      const rowsOf = (...lengths: ReadonlyArray<number>) => lengths.map((n) => "r".repeat(n)).join("\n")
      const short = (n: number) => Array.from({ length: n }, () => 99)
      // a row longer than maxBytes plus the look-ahead, alone in its batch
      yield* check("long-row", Buffer.from(rowsOf(...short(30), LA + 9000, ...short(30)) + "\n"), 4000, 0)
      // a row past the limit running beyond the look-ahead: the batch before it is cut where it fits
      yield* check("long-next", Buffer.from(rowsOf(...short(35), 2 * LA, ...short(5)) + "\n"), 4000, 0)
      // a last row without a delimiter across the limit: the rest is one batch (no delimiter after the limit)
      yield* check("last-row", Buffer.from(rowsOf(...short(38), 500)), 4000, 0)
      const random = prng(31)
      for (let round = 0; round < 12; round++) {
        // short rows, now and then one longer than maxBytes, in some rounds one longer than the look-ahead
        const lengths: Array<number> = []
        for (let i = 0, n = 200 + Math.floor(random() * 2000); i < n; i++) {
          const r = random()
          lengths.push(Math.floor(random() * (r < 0.002 && round % 3 === 0 ? 2 * LA : r < 0.02 ? 9000 : 80)))
        }
        const data = Buffer.from(rowsOf(...lengths) + (round % 2 === 0 ? "\n" : ""))
        const start = round % 4 === 1 ? data.indexOf(10, Math.floor(data.length / 3)) + 1 : 0
        yield* check(`round-${round}`, data, 1000 + Math.floor(random() * 20_000), start)
      }
    }))

  it.scoped("streams a file as byte ranges with the cutter's cuts; a send's reading gives the bytes and the rows", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const LA = FileBatches.LOOK_AHEAD
      const LB = FileBatches.LOOK_BEHIND
      const slices = FileBatches.makeSlices(2)
      /**
       * One reading of a body, as the transport does it: slices until `byteLength`, into the source's own buffers
       * when it has them (a larger body), else 7777 bytes at a time.
       */
      const readAll = (body: { readonly byteLength: number; readonly source?: LoadBody.Source | undefined }) =>
        Effect.async<Buffer, Error>((resume) => {
          const reader = body.source!.open()
          const own = body.source!.slices
          const slot = own?.take()
          const out = Buffer.alloc(body.byteLength)
          let at = 0
          const step = () => {
            if (at === body.byteLength) {
              reader.close()
              if (slot !== undefined) own!.give(slot)
              return resume(Effect.succeed(out))
            }
            const into = slot === undefined ?
              out.subarray(at, Math.min(body.byteLength, at + 7777)) :
              slot.subarray(0, Math.min(slot.byteLength, body.byteLength - at))
            reader.read(into, (error, n) => {
              if (error !== null || n === 0) return resume(Effect.fail(error ?? new Error("ended early")))
              if (slot !== undefined) out.set(slot.subarray(0, n), at)
              at += n
              step()
            })
          }
          step()
        })
      const check = (name: string, data: Buffer, maxBytes: number, start: number) =>
        Effect.gen(function*() {
          const file = path.join(dir, `${name}.csv`)
          fs.writeFileSync(file, data)
          const expected = cut(data.subarray(start), maxBytes, "\n", 4096, 1, start)
          const fd = fs.openSync(file, "r")
          let i = 0
          const got = yield* FileBatches.ranges({
            fd,
            path: file,
            start,
            maxBytes,
            delimiter: 10,
            slices,
            onError: (e) => e
          })
            .pipe(
              Stream.mapEffect(({ body, piece, rows }) =>
                Effect.gen(function*() {
                  i++
                  // every other batch is read before its rows are asked for; each one's rows are counted by a
                  // reading of their own (what the loader asks of a batch found already loaded)
                  const bytes = LoadBody.isStreamed(body) && i % 2 === 0
                    ? yield* readAll(body)
                    : Buffer.concat(body.chunks.length > 0 ? body.chunks : [yield* readAll(body)])
                  return { piece: { ...piece, rows: yield* rows }, bytes }
                })
              ),
              Stream.runCollect,
              Effect.ensuring(Effect.sync(() => fs.closeSync(fd)))
            )
          const pieces = Array.from(got)
          assert.deepStrictEqual(
            pieces.map(({ piece }) => [piece.offset, piece.end, piece.rows]),
            expected.map((p) => [p.offset, p.end, p.rows]),
            name
          )
          assert.deepStrictEqual(Buffer.concat(pieces.map((p) => p.bytes)), data.subarray(start), name)
        })
      const rowsOf = (...lengths: ReadonlyArray<number>) => lengths.map((n) => "r".repeat(n)).join("\n")
      const short = (n: number) => Array.from({ length: n }, () => 99)
      // a row longer than maxBytes plus the look-ahead, alone in its batch
      yield* check("long-row", Buffer.from(rowsOf(...short(30), LA + 9000, ...short(30)) + "\n"), 4000, 0)
      // a row across the limit longer than the look-behind: the cutter's cut
      yield* check("long-behind", Buffer.from(rowsOf(...short(700), 2 * LB, ...short(700)) + "\n"), 100_000, 0)
      // a row past the limit running beyond the look-ahead: the batch before it is cut where it fits
      yield* check("long-next", Buffer.from(rowsOf(...short(35), 2 * LA, ...short(5)) + "\n"), 4000, 0)
      // a last row without a delimiter across the limit: the rest is one batch (no delimiter after the limit)
      yield* check("last-row", Buffer.from(rowsOf(...short(38), 500)), 4000, 0)
      const random = prng(37)
      for (let round = 0; round < 12; round++) {
        const lengths: Array<number> = []
        for (let i = 0, n = 200 + Math.floor(random() * 2000); i < n; i++) {
          const r = random()
          lengths.push(Math.floor(random() * (r < 0.002 && round % 3 === 0 ? 2 * LA : r < 0.02 ? 9000 : 80)))
        }
        const data = Buffer.from(rowsOf(...lengths) + (round % 2 === 0 ? "\n" : ""))
        const start = round % 4 === 1 ? data.indexOf(10, Math.floor(data.length / 3)) + 1 : 0
        yield* check(`round-${round}`, data, 1000 + Math.floor(random() * 20_000), start)
      }
    }))

  it("the slices of streamed batches: n kept for the next sends, fresh buffers once they run out", () => {
    const slices = FileBatches.makeSlices(2)
    const taken = [slices.take(), slices.take(), slices.take()]
    for (const slice of taken) assert.strictEqual(slice.byteLength, FileBatches.SLICE)
    assert.strictEqual(new Set(taken).size, 3)
    // given back (at most `n` kept), taken again
    for (const slice of taken) slices.give(slice)
    assert.strictEqual(slices.take(), taken[1])
    assert.strictEqual(slices.take(), taken[0])
    assert.notInclude(taken, slices.take())
  })

  it.scoped("a streamed batch calls back once a send has read a given number of its bytes (onRead)", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const file = path.join(dir, "rows.csv")
      fs.writeFileSync(file, rowsText(20_000, 3, "\n"))
      const fd = fs.openSync(file, "r")
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.closeSync(fd)))
      const [batch] = yield* FileBatches.ranges({
        fd,
        path: file,
        start: 0,
        maxBytes: 10 * 1024 * 1024,
        delimiter: 10,
        slices: FileBatches.makeSlices(1),
        onError: (e) => e
      }).pipe(Stream.runCollect, Effect.map((c) => Array.from(c)))
      const calls: Array<string> = []
      const size = batch!.piece.byteLength
      batch!.onRead(1000, () => calls.push("1000"))
      const reader = batch!.body.source!.open()
      const read = (n: number) => reader.read(Buffer.alloc(n), () => {})
      read(999)
      assert.deepStrictEqual(calls, [], "999 bytes read")
      read(1)
      assert.deepStrictEqual(calls, ["1000"], "1000 bytes read")
      read(5000)
      assert.deepStrictEqual(calls, ["1000"], "once")
      // a later reading (a retry) reads again from the start: what was read already counts, at once
      batch!.onRead(6000, () => calls.push("6000"))
      assert.deepStrictEqual(calls, ["1000", "6000"])
      batch!.onRead(size, () => calls.push("all"))
      const again = batch!.body.source!.open()
      again.read(Buffer.alloc(size), () => {})
      assert.deepStrictEqual(calls, ["1000", "6000", "all"])
      reader.close()
      again.close()
    }))

  it("resumes from an offset with the same cuts", () => {
    const data = rowsText(500, 11, "\n")
    const all = cut(data, 700, "\n", 333, 12)
    const from = all[3]!.offset
    const resumed = cut(data.subarray(from), 700, "\n", 97, 13, from)
    assert.deepStrictEqual(resumed.map((p) => [p.offset, p.end]), all.slice(3).map((p) => [p.offset, p.end]))
  })
})

describe("load: options", () => {
  it("writes counts as toLocaleString(\"en-US\") does, without it", () => {
    for (
      const n of [
        0,
        1,
        12,
        123,
        999,
        1000,
        1234.4,
        1234.6,
        99_999,
        100_000,
        999_999,
        1_000_000,
        17_532_270,
        2 ** 53 - 1,
        -4321
      ]
    ) {
      assert.strictEqual(grouped(n), Math.round(n).toLocaleString("en-US"), String(n))
    }
  })

  it("reads Java properties files", () => {
    const props = parseProperties(
      "# comment\n! also\nload-url = fe1:8030;fe2:8030\nsink.properties.column_separator=\\\\x01\n" +
        "database-name:db\ntable-name  t\nsink.label-prefix=a\\\n  b\n"
    )
    assert.deepStrictEqual(props, {
      "load-url": "fe1:8030;fe2:8030",
      "sink.properties.column_separator": "\\x01",
      "database-name": "db",
      "table-name": "t",
      "sink.label-prefix": "ab"
    })
  })

  it("decodes delimiters and writes them back as StarRocks reads headers", () => {
    assert.deepStrictEqual([...(decodeDelimiter("\\t") as Uint8Array)], [9])
    assert.deepStrictEqual([...(decodeDelimiter("\\x01") as Uint8Array)], [1])
    assert.deepStrictEqual([...(decodeDelimiter("\\r\\n") as Uint8Array)], [13, 10])
    assert.typeOf(decodeDelimiter("\\x1"), "string")
    assert.strictEqual(delimiterHeader(Buffer.from(",")), ",")
    assert.strictEqual(delimiterHeader(Buffer.from("\t")), "\\x09")
    assert.strictEqual(delimiterHeader(Buffer.from("\r\n")), "\\x0D0A")
    assert.strictEqual(parseSize("64MB"), 64 * 1024 * 1024)
    assert.strictEqual(parseSize("512kb"), 512 * 1024)
    assert.isUndefined(parseSize("lots"))
    assert.strictEqual(label("my prefix.v2", 3, 1024), "my_prefix_v2-3-1024")
    assert.match(label("p".repeat(200), 1, 2), /^p{124}-1-2$/)
  })
})

// -----------------------------------------------------------------------------
// the command against the emulator
// -----------------------------------------------------------------------------

/** Runs `effect-starrocks load <args>`; `kill(child)` may stop it early (polled every 100 ms). */
const load = (args: ReadonlyArray<string>, options: Parameters<typeof runCli>[1] = {}) =>
  runCli(["load", ...args], options)

/** The command in this process. */
const inProcessExit = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const saved = Object.keys(env).map((k) => [k, process.env[k]] as const)
      Object.assign(process.env, env)
      return saved
    }),
    () =>
      Command.run(Command.make("effect-starrocks").pipe(Command.withSubcommands([Load.load])), {
        name: "effect-starrocks",
        version: "0.0.0"
      })(["node", "effect-starrocks", "load", ...args]).pipe(Effect.provide(NodeContext.layer), Effect.exit),
    (saved) =>
      Effect.sync(() => {
        for (const [k, v] of saved) {
          if (v === undefined) delete process.env[k]
          else process.env[k] = v
        }
      })
  )

/** The command in this process: its typed failure. */
const inProcess = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  inProcessExit(args, env).pipe(
    Effect.flatten,
    Effect.flip,
    Effect.map((e) =>
      e as unknown as { readonly _tag: string; readonly message: string; readonly [k: string]: unknown }
    )
  )

const summaryOf = (run: Run) => {
  const line = run.stdout.trim().split("\n").at(-1) ?? ""
  try {
    return JSON.parse(line) as Record<string, number | string | boolean>
  } catch {
    throw new Error(`no summary line; code ${run.code}\nstdout: ${run.stdout}\nstderr: ${run.stderr.slice(-3000)}`)
  }
}

const tmpDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "sr-load-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const ROWS = 1_000_000

/** `id,note` rows 1..n, written in slices. */
const writeCsv = (file: string, n: number) => {
  const fd = fs.openSync(file, "w")
  for (let from = 1; from <= n; from += 100_000) {
    let s = ""
    for (let i = from; i < Math.min(from + 100_000, n + 1); i++) s += `${i},row ${i}\n`
    fs.writeSync(fd, s)
  }
  fs.closeSync(fd)
}

const table = (database: string, name: string) => ({
  database,
  table: name,
  model: "DUPLICATE" as const,
  key: ["id"],
  columns: [{ name: "id", type: "BIGINT" }, { name: "note", type: "VARCHAR(64)", nullable: true }]
})

/** Row count and distinct ids of a table. */
const counted = (emu: StarRocksEmulator.StarRocksEmulator, database: string, name: string) =>
  Effect.map(emu.rows(database, name), (rows) => ({
    rows: rows.length,
    ids: new Set(rows.map((r) => String(r["id"]))).size
  }))

/** Listens on a free loopback port for the scope; its port. */
const listening = (server: http.Server) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.async<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
      () => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
    ),
    () => (server.address() as net.AddressInfo).port
  )

const suffix = () => `${process.pid}_${Date.now() % 1_000_000}`

describe.runIf(requireMariaDb())("load: 1,000,000 CSV rows into the emulator with MariaDB storage", () => {
  it.scoped("lands exactly 1,000,000 rows; again after a SIGKILL half-way and a rerun", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const csv = path.join(dir, "rows.csv")
      writeCsv(csv, ROWS)
      const storage = yield* MysqlStorage.make("mysql://root@127.0.0.1:3306/test")
      const emu = yield* StarRocksEmulator.make({ users: { root: "", loader: "s3cret-pw" }, storage })
      const plain = `load_plain_${suffix()}`
      const crashed = `load_crash_${suffix()}`
      yield* emu.createTable(table("test", plain))
      yield* emu.createTable(table("test", crashed))
      const common = ["--load-url", emu.fe[0]!, "--user", "loader", "--password-env", "LOADER_PW"]
      const env = { LOADER_PW: "s3cret-pw" }

      const first = yield* load([csv, "--table", `test.${plain}`, ...common, "--max-bytes", "2MB"], { env })
      assert.strictEqual(first.code, 0, first.stderr)
      const summary = summaryOf(first)
      assert.strictEqual(summary["rows"], ROWS)
      assert.strictEqual(summary["bytes"], fs.statSync(csv).size)
      assert.strictEqual(summary["loadedRows"], ROWS)
      assert.deepStrictEqual(yield* counted(emu, "test", plain), { rows: ROWS, ids: ROWS })
      assert.notInclude(first.stdout + first.stderr, "s3cret-pw")

      // SIGKILL once the checkpoint shows progress, before half of the file landed; then the same command
      const checkpoint = path.join(dir, "load.checkpoint.json")
      const size = fs.statSync(csv).size
      const args = [
        csv,
        "--table",
        `test.${crashed}`,
        ...common,
        "--max-bytes",
        "512KB",
        "--parallel",
        "2",
        "--checkpoint-file",
        checkpoint,
        "--exactly-once"
      ]
      let killedAt = -1
      const killed = yield* load(args, {
        env,
        stopWhen: () => {
          let offset = 0
          try {
            offset = JSON.parse(fs.readFileSync(checkpoint, "utf8")).files["0"].offset
          } catch {
            return undefined
          }
          if (offset > 0) {
            killedAt = offset
            return "SIGKILL"
          }
          return undefined
        }
      })
      assert.strictEqual(killed.signal, "SIGKILL", killed.stderr)
      assert.isAbove(killedAt, 0)
      assert.isBelow(killedAt, size / 2, "killed in the first half")
      const partial = yield* counted(emu, "test", crashed)
      assert.isAbove(partial.rows, 0)
      assert.isBelow(partial.rows, ROWS)

      const rerun = yield* load(args, { env })
      assert.strictEqual(rerun.code, 0, rerun.stderr)
      const resumed = summaryOf(rerun)
      assert.isAtLeast(resumed["skippedBytes"] as number, killedAt)
      assert.strictEqual((resumed["skippedBytes"] as number) + (resumed["bytes"] as number), size)
      assert.deepStrictEqual(yield* counted(emu, "test", crashed), { rows: ROWS, ids: ROWS })
      const saved = JSON.parse(fs.readFileSync(checkpoint, "utf8"))
      assert.deepStrictEqual([saved.files["0"].offset, saved.files["0"].done], [size, true])
    }), { timeout: 110_000 })
})

describe("load: the emulator with memory storage", () => {
  const start = Effect.gen(function*() {
    const dir = yield* tmpDir
    const emu = yield* StarRocksEmulator.make({ users: { root: "", loader: "not-printed-pw" } })
    yield* emu.createTable(table("db", "t"))
    return { dir, emu, url: emu.fe[0]! }
  })

  it.scoped("a gzip file lands the same rows", () =>
    Effect.gen(function*() {
      const { dir, emu, url } = yield* start
      const csv = path.join(dir, "rows.csv")
      writeCsv(csv, ROWS)
      const gz = path.join(dir, "rows.csv.gz")
      fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(csv), { level: 1 }))
      const run = yield* load([gz, "--table", "db.t", "--load-url", url, "--max-bytes", "4MB"])
      assert.strictEqual(run.code, 0, run.stderr)
      assert.strictEqual(summaryOf(run)["rows"], ROWS)
      assert.deepStrictEqual(yield* counted(emu, "db", "t"), { rows: ROWS, ids: ROWS })
    }), { timeout: 60_000 })

  it.scoped(
    "NDJSON and a JSON array land; a second run of the same files lands nothing more",
    () =>
      Effect.gen(function*() {
        const { dir, emu, url } = yield* start
        const ndjson = path.join(dir, "a.ndjson")
        const json = path.join(dir, "b.json")
        fs.writeFileSync(
          ndjson,
          Array.from({ length: 1000 }, (_, i) => JSON.stringify({ id: i + 1, note: `n${i + 1}` })).join("\n")
        )
        fs.writeFileSync(json, JSON.stringify([{ id: 1001, note: "x" }, { id: 1002 }]))
        const args = [ndjson, json, "--table", "db.t", "--load-url", url, "--max-bytes", "4KB"]
        const run = yield* load(args)
        assert.strictEqual(run.code, 0, run.stderr)
        assert.strictEqual(summaryOf(run)["loadedRows"], 1002)
        assert.deepStrictEqual(yield* counted(emu, "db", "t"), { rows: 1002, ids: 1002 })
        // same files, same default label prefix: every batch is found loaded
        const again = yield* load(args)
        assert.strictEqual(again.code, 0, again.stderr)
        assert.strictEqual(summaryOf(again)["alreadyLoaded"], summaryOf(run)["loads"])
        assert.deepStrictEqual(yield* counted(emu, "db", "t"), { rows: 1002, ids: 1002 })
      }),
    { timeout: 60_000 }
  )

  it.scoped("Ctrl-C stops with the checkpoint written; the rerun completes it", () =>
    Effect.gen(function*() {
      const { dir, emu, url } = yield* start
      const csv = path.join(dir, "rows.csv")
      writeCsv(csv, 50_000)
      const checkpoint = path.join(dir, "cp.json")
      const args = [csv, "--table", "db.t", "--load-url", url, "--max-bytes", "4KB", "--parallel", "1"]
      const stopped = yield* load([...args, "--checkpoint-file", checkpoint], {
        stopWhen: () => fs.existsSync(checkpoint) ? "SIGINT" : undefined
      })
      assert.strictEqual(stopped.code, 130, stopped.stderr)
      const summary = summaryOf(stopped)
      assert.strictEqual(summary["interrupted"], true)
      const saved = JSON.parse(fs.readFileSync(checkpoint, "utf8"))
      assert.strictEqual(saved.files["0"].offset, summary["bytes"], "the checkpoint holds what landed")
      assert.isBelow(saved.files["0"].offset, fs.statSync(csv).size)
      const rerun = yield* load([...args, "--checkpoint-file", checkpoint])
      assert.strictEqual(rerun.code, 0, rerun.stderr)
      assert.deepStrictEqual(yield* counted(emu, "db", "t"), { rows: 50_000, ids: 50_000 })
      // a checkpoint cut otherwise is refused
      const refused = yield* inProcess([...args.slice(0, -4), "--max-bytes", "32KB", "--checkpoint-file", checkpoint])
      assert.strictEqual(refused._tag, "LoadCheckpointError")
      assert.match(refused.message, /maxBytes is 4096 in the checkpoint but 32768 now/)
    }), { timeout: 60_000 })

  it.scoped(
    "a missing table, a wrong password and a bad flag: a typed error and a non-zero exit",
    () =>
      Effect.gen(function*() {
        const { dir, emu, url } = yield* start
        const csv = path.join(dir, "rows.csv")
        fs.writeFileSync(csv, "1,a\n")
        const missing = yield* load([
          csv,
          "--table",
          "db.nope",
          "--load-url",
          url,
          "--user",
          "loader",
          "--password-env",
          "PW"
        ], {
          env: { PW: "not-printed-pw" }
        })
        // the startup check finds it (one _schema request) before any load is sent
        assert.strictEqual(missing.code, 1)
        assert.match(
          missing.stderr,
          /effect-starrocks load: StartupCheckError: startup check of db\.nope failed at http:\/\/\S+: table db\.nope does not exist/
        )
        assert.notInclude(missing.stdout + missing.stderr, "not-printed-pw")
        assert.isFalse((yield* emu.requests).some((r) => r.path.includes("/nope/_stream_load")))
        const refused = yield* load([
          csv,
          "--table",
          "db.t",
          "--load-url",
          url,
          "--user",
          "loader",
          "--password-env",
          "PW"
        ], {
          env: { PW: "wrong-pw-77" }
        })
        assert.strictEqual(refused.code, 1)
        assert.match(refused.stderr, /StartupCheckError: .*the FE refused the username or password/)
        assert.notInclude(refused.stdout + refused.stderr, "wrong-pw-77")
        const badFlag = yield* load([csv, "--table", "db.t", "--load-url", url, "--format", "xml"])
        assert.strictEqual(badFlag.code, 1)
        assert.match(badFlag.stderr + badFlag.stdout, /csv, ndjson, json/)
      }),
    { timeout: 60_000 }
  )

  it.scoped("STARROCKS_* variables < a properties file < flags (in process)", () =>
    Effect.gen(function*() {
      const { dir, emu, url } = yield* start
      const props = path.join(dir, "sink.properties")
      fs.writeFileSync(
        props,
        `load-url=${url}\ndatabase-name=db\ntable-name=nope\nsink.properties.column_separator=|\nsink.label-prefix=p1\n`
      )
      const env = { STARROCKS_USERNAME: "loader", STARROCKS_PASSWORD: "not-printed-pw", STARROCKS_TABLE: "nope2" }
      const a = path.join(dir, "a.csv")
      fs.writeFileSync(a, "1|a\n2|b\n")
      const first = yield* inProcessExit([a, "--properties", props, "--table", "db.t"], env)
      assert.strictEqual(first._tag, "Success", String(first))
      const b = path.join(dir, "b.csv")
      fs.writeFileSync(b, "3;c\n")
      const second = yield* inProcessExit(
        [b, "--properties", props, "--table", "db.t", "--column-separator", ";", "--label-prefix", "p2"],
        env
      )
      assert.strictEqual(second._tag, "Success", String(second))
      const rows = yield* emu.rows("db", "t")
      assert.deepStrictEqual(rows.map((r) => `${r["id"]} ${r["note"]}`).sort(), ["1 a", "2 b", "3 c"])
      const labels = (yield* emu.transactions("db")).map((t) => t.label).sort()
      assert.deepStrictEqual(labels, ["p1-0-0", "p2-0-0"])
    }))

  it.scoped("with compression a regular file is read into memory (a streamed body cannot be compressed)", () =>
    Effect.gen(function*() {
      const { dir, emu, url } = yield* start
      const csv = path.join(dir, "rows.csv")
      writeCsv(csv, 5000)
      const exit = yield* inProcessExit(
        [csv, "--table", "db.t", "--load-url", url, "--max-bytes", "16KB"],
        { STARROCKS_COMPRESSION: "gzip" }
      )
      assert.strictEqual(exit._tag, "Success", String(exit))
      assert.deepStrictEqual(yield* counted(emu, "db", "t"), { rows: 5000, ids: 5000 })
      const loads = (yield* emu.requests).filter((r) => r.node.startsWith("be") && r.path.includes("/_stream_load"))
      assert.isAbove(loads.length, 1)
      for (const r of loads) assert.strictEqual(r.headers["compression"], "gzip")
    }))

  it.scoped("typed errors before anything is sent (in process)", () =>
    Effect.gen(function*() {
      const { dir, url } = yield* start
      const csv = path.join(dir, "rows.csv")
      fs.writeFileSync(csv, "1,a\n")
      const badTable = yield* inProcess([csv, "--table", "t", "--load-url", url])
      assert.deepInclude(badTable, { _tag: "LoadOptionError", option: "--table" })
      const noFile = yield* inProcess([path.join(dir, "nope.csv"), "--table", "db.t", "--load-url", url])
      assert.deepInclude(noFile, { _tag: "LoadInputError", reason: "no such file" })
      const once = yield* inProcess([csv, "--table", "db.t", "--load-url", url, "--exactly-once"])
      assert.deepInclude(once, { _tag: "LoadOptionError", option: "--exactly-once" })
      const noUrl = yield* inProcess([csv, "--table", "db.t"])
      assert.deepInclude(noUrl, { _tag: "StarRocksConfigError", key: "load-url" })
      const header = yield* inProcess([csv, "--table", "db.t", "--load-url", url], {
        STARROCKS_PROPERTIES: "skip_header=1"
      })
      assert.deepInclude(header, { _tag: "LoadOptionError", option: "sink.properties.skip_header" })
      const adaptive = yield* inProcess([csv, "--table", "db.t", "--load-url", url], {
        STARROCKS_ADAPTIVE_CONCURRENCY_ENABLED: "true"
      })
      assert.deepInclude(adaptive, { _tag: "LoadOptionError", option: "sink.adaptive-concurrency.enabled" })
      const props = path.join(dir, "sink.properties")
      fs.writeFileSync(props, `load-url=${url}\nsink.buffer-flush.max-bytes=12\n`)
      const small = yield* inProcess([csv, "--table", "db.t", "--properties", props])
      assert.deepInclude(small, { _tag: "StarRocksConfigError", key: "sink.buffer-flush.max-bytes" })
      if (typeof (zlib as any).createZstdDecompress !== "function") {
        const zst = path.join(dir, "rows.csv.zst")
        fs.writeFileSync(zst, "")
        const noZstd = yield* inProcess([zst, "--table", "db.t", "--load-url", url])
        assert.strictEqual(noZstd._tag, "LoadInputError")
        assert.match(noZstd.message, /zstd needs Node\.js/)
      }
    }), { timeout: 60_000 })
})

describe("load: the rows", () => {
  // rows of 8 bytes: 3 in the first batch, 3 in the second (--max-bytes 24), 1 in the third; the endpoint reports
  // 10 times the rows of each body (none for the labels `uncounted` takes), and finds the second label already taken
  const loadRows = (uncounted: (label: string) => boolean) =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const csv = path.join(dir, "rows.csv")
      fs.writeFileSync(csv, "0001,aa\n0002,bb\n0003,cc\n0004,dd\n0005,ee\n0006,ff\n0007,gg\n")
      const server = http.createServer((req, res) => {
        let body = ""
        req.on("data", (chunk: Buffer) => (body += chunk.toString()))
        req.on("end", () => {
          const label = String(req.headers["label"] ?? "")
          const rows = body.split("\n").filter((line) => line !== "").length
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify(
            req.method !== "PUT"
              ? { status: 200 }
              : label.endsWith("-0-24")
              ? { TxnId: 2, Label: label, Status: "Label Already Exists", ExistingJobStatus: "FINISHED" }
              : uncounted(label)
              ? { TxnId: 1, Label: label, Status: "Success", Message: "OK" }
              : {
                TxnId: 1,
                Label: label,
                Status: "Success",
                Message: "OK",
                NumberTotalRows: 10 * rows,
                NumberLoadedRows: 10 * rows,
                NumberFilteredRows: 0
              }
          ))
        })
      })
      const port = yield* listening(server)
      const run = yield* load([
        csv,
        "--table",
        "db.t",
        "--load-url",
        `127.0.0.1:${port}`,
        "--max-bytes",
        "24",
        "--parallel",
        "1",
        "--label-prefix",
        "rows"
      ])
      assert.strictEqual(run.code, 0, run.stderr)
      return summaryOf(run)
    })

  it.scoped(
    "are StarRocks' (its reply's NumberTotalRows), not counted; a batch found already loaded is counted",
    () =>
      Effect.gen(function*() {
        const line = yield* loadRows(() => false)
        // 30 and 10 from the endpoint, 3 counted in the batch found already loaded
        assert.deepInclude(line, { rows: 43, loads: 3, alreadyLoaded: 1, loadedRows: 40 })
      }),
    { timeout: 60_000 }
  )

  it.scoped(
    "a reply without NumberTotalRows has its batch counted by the loader, not taken as 0 rows",
    () =>
      Effect.gen(function*() {
        const line = yield* loadRows((label) => label.endsWith("-0-48"))
        // 30 from the endpoint, 3 counted in the batch found already loaded, 1 counted in the uncounted reply's
        assert.deepInclude(line, { rows: 34, loads: 3, alreadyLoaded: 1, loadedRows: 30 })
      }),
    { timeout: 60_000 }
  )
})

describe("load: --metrics-port", () => {
  /** GET `url` as text. */
  const scrape = (url: string) => Effect.promise(() => fetch(url).then((r) => r.text()))
  /** A sample's value in Prometheus text (`name{table="db.t"} value`). */
  const sample = (text: string, name: string) => {
    const m = new RegExp(`^${name}\\{table="db\\.t"\\} (\\S+)$`, "m").exec(text)
    return m === null ? undefined : Number(m[1])
  }
  /** Retries `self` every 50 ms until it succeeds, for at most 30 s. */
  const eventually = <A, E>(self: Effect.Effect<A, E>) =>
    self.pipe(Effect.retry(Schedule.spaced("50 millis")), Effect.timeout("30 seconds"))

  it.scopedLive(
    "serves the sink's metrics while the load runs: totalFlushRows counts the rows landed",
    () =>
      Effect.gen(function*() {
        const dir = yield* tmpDir
        const emu = yield* StarRocksEmulator.make({})
        yield* emu.createTable(table("db", "t"))
        // 100 rows of 8 bytes, 10 batches of 10 rows; the 10th load is held by the BE until the command stops
        const csv = path.join(dir, "rows.csv")
        fs.writeFileSync(csv, Array.from({ length: 100 }, (_, i) => `${String(i + 1).padStart(5, "0")},n\n`).join(""))
        yield* emu.addFault({ node: "be", path: "_stream_load", nth: 10, action: { _tag: "delay", ms: 600_000 } })
        let stderr = ""
        let stop = false
        const fiber = yield* Effect.fork(
          load([
            csv,
            "--table",
            "db.t",
            "--load-url",
            emu.fe[0]!,
            "--max-bytes",
            "80",
            "--parallel",
            "1",
            "--metrics-port",
            "0"
          ], {
            onStderr: (text) => (stderr = text),
            stopWhen: () => (stop ? "SIGINT" : undefined)
          })
        )
        const url = yield* eventually(Effect.suspend(() => {
          const m = /metrics at (http:\/\/\S+)/.exec(stderr)
          return m === null ? Effect.fail("no metrics URL yet") : Effect.succeed(m[1]!)
        }))
        assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
        // the first 9 loads landed and the 10th is in flight, held by the BE
        const text = yield* eventually(
          Effect.filterOrFail(
            scrape(url),
            (t) => sample(t, "totalFlushSucceededTimes") === 9 && /^numInflightLoads 1$/m.test(t),
            () => "not yet"
          )
        )
        assert.strictEqual(sample(text, "totalFlushRows"), 90, text)
        assert.strictEqual(sample(text, "totalFlushBytes"), 720)
        assert.strictEqual(sample(text, "totalFlushFailedTimes") ?? 0, 0)
        assert.match(text, /^# TYPE totalFlushRows counter$/m)
        assert.match(text, /^loadLatencyMs_count\{[^}]*table="db\.t"[^}]*\} 9$/m)
        assert.strictEqual((yield* emu.rows("db", "t")).length, 90)
        stop = true
        const run = yield* Fiber.join(fiber)
        assert.strictEqual(run.code, 130, run.stderr)
        assert.deepInclude(summaryOf(run), { rows: 90, loads: 9, interrupted: true })
      }),
    { timeout: 60_000 }
  )

  it.scoped(
    "without --metrics-port nothing can read them, and a load leaves them alone; with one it counts (in process)",
    () =>
      Effect.gen(function*() {
        const dir = yield* tmpDir
        const emu = yield* StarRocksEmulator.make({})
        yield* emu.createTable(table("db", "t"))
        const csv = path.join(dir, "rows.csv")
        fs.writeFileSync(csv, "00001,n\n00002,n\n")
        // this process's metric of db.t, which a --metrics-port of this process would serve
        const landed = Effect.map(
          Metric.value(Metric.tagged(SinkMetrics.totalFlushSucceededTimes, "table", "db.t")),
          (state) => state.count
        )
        const before = yield* landed
        const args = [csv, "--table", "db.t", "--load-url", emu.fe[0]!]
        const quiet = yield* inProcessExit([...args, "--label-prefix", "quiet"])
        assert.isTrue(Exit.isSuccess(quiet), String(quiet))
        assert.strictEqual(yield* landed, before)
        const metered = yield* inProcessExit([...args, "--label-prefix", "metered", "--metrics-port", "0"])
        assert.isTrue(Exit.isSuccess(metered), String(metered))
        assert.strictEqual(yield* landed, before + 1)
        assert.strictEqual((yield* emu.rows("db", "t")).length, 4)
      }),
    { timeout: 60_000 }
  )

  it.scoped(
    "a port that cannot be bound, a host without a port: typed errors (in process)",
    () =>
      Effect.gen(function*() {
        const { dir, url } = yield* Effect.gen(function*() {
          const dir = yield* tmpDir
          const emu = yield* StarRocksEmulator.make({})
          return { dir, url: emu.fe[0]! }
        })
        const csv = path.join(dir, "rows.csv")
        fs.writeFileSync(csv, "1,a\n")
        const taken = Number(url.split(":")[1])
        const busy = yield* inProcess([csv, "--table", "db.t", "--load-url", url, "--metrics-port", String(taken)])
        assert.deepInclude(busy, { _tag: "LoadOptionError", option: "--metrics-port" })
        assert.match(busy.message, /EADDRINUSE/)
        const range = yield* inProcess([csv, "--table", "db.t", "--load-url", url, "--metrics-port", "70000"])
        assert.deepInclude(range, { _tag: "LoadOptionError", option: "--metrics-port" })
        const hostOnly = yield* inProcess([csv, "--table", "db.t", "--load-url", url, "--metrics-host", "0.0.0.0"])
        assert.deepInclude(hostOnly, { _tag: "LoadOptionError", option: "--metrics-host" })
      }),
    { timeout: 60_000 }
  )
})

describe("load: the loads' phases", () => {
  it.scoped(
    "with two loads in flight, the second starts once the first has sent half its body, not at once",
    () =>
      Effect.gen(function*() {
        const dir = yield* tmpDir
        // 96 MiB in batches of 48 MB (the default 90 MB would make the file larger than needed)
        const csv = path.join(dir, "rows.csv")
        const block = Buffer.from(Array.from({ length: 65_536 }, (_, i) => `${i},${"x".repeat(i % 20)}\n`).join(""))
        const fd = fs.openSync(csv, "w")
        for (let n = 0; n < 96 * 1024 * 1024; n += block.length) fs.writeSync(fd, block)
        fs.closeSync(fd)
        // a Stream Load endpoint that notes, as each load's headers arrive, the bytes of the other loads so far
        const received = new Map<number, number>()
        const seen: Array<Array<number>> = []
        let next = 0
        const server = http.createServer((req, res) => {
          const id = next++
          seen.push([...received.values()])
          received.set(id, 0)
          req.on("data", (chunk: Buffer) => received.set(id, received.get(id)! + chunk.length))
          req.on("end", () => {
            received.delete(id)
            res.writeHead(200, { "content-type": "application/json" })
            res.end(
              JSON.stringify({ TxnId: id, Label: String(req.headers["label"]), Status: "Success", Message: "OK" })
            )
          })
        })
        const port = yield* listening(server)
        const exit = yield* inProcessExit([
          csv,
          "--table",
          "db.t",
          "--load-url",
          `127.0.0.1:${port}`,
          "--max-bytes",
          "48MB",
          "--parallel",
          "2",
          "--label-prefix",
          "phases"
        ])
        assert.strictEqual(exit._tag, "Success", String(exit))
        // the startup check's GET, then the loads (two of 48 MB and the rest): the second came when the first had
        // sent a good part of its body (half of it read by the send, less what the socket buffers held), where it
        // came at once before
        assert.strictEqual(seen.length, 4)
        const [, first, second] = seen
        assert.deepStrictEqual(first, [])
        assert.strictEqual(second!.length, 1)
        assert.isAbove(second![0]!, 8 * 1024 * 1024, `the first load had sent ${second![0]} bytes`)
      }),
    { timeout: 60_000 }
  )
})
