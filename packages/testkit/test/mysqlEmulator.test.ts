import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as http from "node:http"
import * as MysqlStorage from "../src/MysqlStorage.js"
import * as StarRocksEmulator from "../src/StarRocksEmulator.js"
import * as Maria from "./utils/mariadb.js"

const up = Maria.isCI || (await Maria.reachable())
const suite = up ? describe : describe.skip
const title = up
  ? "StarRocksEmulator on MySQL storage (MariaDB)"
  : `StarRocksEmulator on MySQL storage — SKIPPED: nothing answers on ${Maria.host}:${Maria.port}; under CI=true this fails`

interface Reply {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  readonly hops: ReadonlyArray<string>
}

const auth = `Basic ${Buffer.from("root:").toString("base64")}`

/** One request with `Expect: 100-continue`: the body is written only after `100 Continue`. */
const once = (url: string, method: string, headers: Record<string, string>, body: Buffer) =>
  new Promise<Omit<Reply, "hops">>((resolve, reject) => {
    const req = http.request(url, {
      method,
      headers: { ...headers, Authorization: auth, Expect: "100-continue", "Content-Length": String(body.length) },
      agent: false
    })
    req.on("continue", () => req.end(body))
    req.on("response", (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") })
        req.destroy()
      })
      res.on("error", reject)
    })
    req.on("error", reject)
    if (body.length === 0) req.end()
  })

/** Follows 307s by hand with the same headers (Authorization included) and body, like the sink does. */
const call = (fe: string, method: string, path: string, headers: Record<string, string>, body = "") =>
  Effect.promise(async (): Promise<Reply> => {
    let url = `http://${fe}${path}`
    const hops: Array<string> = []
    for (let i = 0; i < 4; i++) {
      const reply = await once(url, method, headers, Buffer.from(body))
      if (reply.status !== 307) return { ...reply, hops }
      url = reply.headers.location!
      hops.push(new URL(url).host)
    }
    throw new Error("too many redirects")
  })

const json = (reply: Reply) => JSON.parse(reply.body) as Record<string, unknown>

const eventually = <A>(check: Effect.Effect<A>, ok: (a: A) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const a = yield* check
      if (ok(a)) return a
      yield* Effect.sleep("50 millis")
    }
    return yield* check
  })

suite(title, () => {
  it.live(
    "stream load lands in a real table; a restart keeps rows, labels and a PREPARED transaction that then commits",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { database, sql, url } = yield* Maria.freshDatabase("srt_emu")
        const tables = [{
          database,
          table: "t",
          model: "PRIMARY" as const,
          key: ["id"],
          columns: [{ name: "id", type: "BIGINT" }, { name: "note", type: "VARCHAR(64)", nullable: true }]
        }]
        const selectAll = sql.unsafe<{ id: unknown; note: string | null }>(
          `SELECT id, note FROM \`${database}\`.t ORDER BY id`
        ).unprepared.pipe(Effect.map((rows) => rows.map((r) => [String(r.id), r.note])), Effect.orDie)

        // first life
        const life1 = yield* Scope.make()
        const storage1 = yield* MysqlStorage.make(url).pipe(Scope.extend(life1))
        const emu1 = yield* StarRocksEmulator.make({ tables, storage: storage1, bes: 2 }).pipe(Scope.extend(life1))
        const fe1 = emu1.fe[0]!

        const load = yield* call(fe1, "PUT", `/api/${database}/t/_stream_load`, {
          label: "load_1",
          column_separator: ","
        }, "1,a\n2,b\n3,c\n")
        assert.strictEqual(load.hops.length, 1)
        assert.match(load.hops[0]!, /^127\.0\.0\.[23]:\d+$/)
        assert.strictEqual(json(load)["Status"], "Success", load.body)
        assert.strictEqual(json(load)["NumberLoadedRows"], 3)
        assert.deepStrictEqual(yield* selectAll, [["1", "a"], ["2", "b"], ["3", "c"]])

        // a transaction left PREPARED: begin, load (upsert 2, delete 3 via __op), prepare
        const txnHeaders = { label: "txn_1", db: database, table: "t" }
        const begin = yield* call(fe1, "POST", "/api/transaction/begin", txnHeaders)
        assert.strictEqual(json(begin)["Status"], "OK", begin.body)
        const txnLoad = yield* call(fe1, "PUT", "/api/transaction/load", {
          ...txnHeaders,
          column_separator: ",",
          columns: "id,note,__op"
        }, "2,bb,0\n3,,1\n4,d,0\n")
        assert.strictEqual(json(txnLoad)["Status"], "OK", txnLoad.body)
        const prepare = yield* call(fe1, "POST", "/api/transaction/prepare", txnHeaders)
        assert.strictEqual(json(prepare)["Status"], "OK", prepare.body)
        assert.strictEqual(yield* emu1.loadState(database, "txn_1"), "PREPARED")
        // staged, not visible
        assert.deepStrictEqual(yield* selectAll, [["1", "a"], ["2", "b"], ["3", "c"]])

        // restart: servers and the storage pool go away, then come back on the same database
        yield* Scope.close(life1, Exit.void)
        const storage2 = yield* MysqlStorage.make(url)
        const emu2 = yield* StarRocksEmulator.make({ tables, storage: storage2 })
        const fe2 = emu2.fe[0]!

        assert.deepStrictEqual(yield* selectAll, [["1", "a"], ["2", "b"], ["3", "c"]])
        const state1 = yield* call(fe2, "GET", `/api/${database}/get_load_state?label=load_1`, {})
        assert.strictEqual(json(state1)["state"], "VISIBLE", state1.body)
        const state2 = yield* call(fe2, "GET", `/api/${database}/get_load_state?label=txn_1`, {})
        assert.strictEqual(json(state2)["state"], "PREPARED", state2.body)

        // the label of the first load is still taken
        const reload = yield* call(fe2, "PUT", `/api/${database}/t/_stream_load`, {
          label: "load_1",
          column_separator: ","
        }, "9,z\n")
        assert.strictEqual(json(reload)["Status"], "Label Already Exists", reload.body)
        assert.strictEqual(json(reload)["ExistingJobStatus"], "FINISHED")

        // the PREPARED transaction commits after the restart
        const commit = yield* call(fe2, "POST", "/api/transaction/commit", txnHeaders)
        assert.strictEqual(json(commit)["Status"], "OK", commit.body)
        const rows = yield* eventually(selectAll, (r) => r.length === 3 && r[2]?.[0] === "4")
        assert.deepStrictEqual(rows, [["1", "a"], ["2", "bb"], ["4", "d"]])
        assert.deepStrictEqual(
          (yield* emu2.rows(database, "t")).map((r) => [String(r["id"]), r["note"]]),
          [["1", "a"], ["2", "bb"], ["4", "d"]]
        )
        const visible = yield* eventually(emu2.loadState(database, "txn_1"), (s) => s === "VISIBLE")
        assert.strictEqual(visible, "VISIBLE")
      })),
    { timeout: 60_000 }
  )

  it.live("serves a table created by hand in MariaDB", () =>
    Effect.scoped(Effect.gen(function*() {
      const { database, sql, url } = yield* Maria.freshDatabase("srt_emu")
      yield* sql.unsafe(
        `CREATE TABLE \`${database}\`.events (id BIGINT NOT NULL PRIMARY KEY, ts DATETIME NOT NULL, msg VARCHAR(32))`
      ).unprepared
      const storage = yield* MysqlStorage.make(url)
      const emu = yield* StarRocksEmulator.make({ storage })
      const load = yield* call(emu.fe[0]!, "PUT", `/api/${database}/events/_stream_load`, {
        label: "hand_1",
        format: "json",
        strip_outer_array: "true"
      }, JSON.stringify([{ id: 1, ts: "2024-05-06 07:08:09", msg: "hi" }, { id: 2, ts: "2024-05-06 07:08:10" }]))
      assert.strictEqual(json(load)["Status"], "Success", load.body)
      const rows = yield* sql.unsafe<{ id: unknown; ts: string; msg: string | null }>(
        `SELECT id, ts, msg FROM \`${database}\`.events ORDER BY id`
      ).unprepared
      assert.deepStrictEqual(rows.map((r) => [String(r.id), r.ts, r.msg]), [
        ["1", "2024-05-06 07:08:09", "hi"],
        ["2", "2024-05-06 07:08:10", null]
      ])
    })), { timeout: 60_000 })
})
