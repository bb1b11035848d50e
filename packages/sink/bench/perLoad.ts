/**
 * The CPU cost of one load to the sink's process, apart from encoding: `loads` loads of a 2 MiB body (in the chunks
 * a batch builder makes: 16 KiB doubling to 1 MiB) to the null endpoint (nullEndpoint.mjs, a child process), one at
 * a time, through
 *
 * - `http`: bare node:http, a keep-alive agent, `Expect: 100-continue`, the body written on `100 Continue`: the
 *   floor of a load on node:http;
 * - `http2` (asked for by name only): the same with two loads in flight, as the dispatcher has them: what the
 *   concurrency alone costs;
 * - `client`: `LoadClient.loadBatch` (transport, failover, the Stream Load operation);
 * - `client2` (asked for by name only): the same in two fibers, two loads in flight, without the dispatcher;
 * - `dispatcher`: the sink's dispatcher (internal/sink/dispatcher.ts) over that client: the byte budget, the
 *   in-flight slots, the load's fiber, the ledger (labels, metrics, the landed log line), two loads in flight and
 *   a byte budget of four bodies (two in flight, two waiting for a slot: each later dispatch waits for budget);
 * - `burst`: the same, the loads dispatched 20 at a time (as a stream's end seals the batches of 20 tables at once),
 *   two in flight;
 * - `dispatcherOnly` (asked for by name only): the dispatcher over a client that answers at once, 20 × `loads`
 *   loads: what the dispatcher and the ledger cost without HTTP.
 *
 * `PERLOAD_OPS=1` first prints the Effect operations of one `client` load (the fiber's run loop steps, counted by a
 * supervisor with `OpSupervision` on, over 50 loads after 5 of warm-up), by kind, then those of one
 * `dispatcherOnly` load (200 loads after 40 of warm-up; the stub client's own `succeed` included), then those of a
 * `dispatcher` load (80 after 40, the client's included), each with the fibers forked per load (Effect's runtime metrics look up a histogram's key at each fiber's end).
 *
 * The three alternate, `rounds` times; each prints CPU µs per load (process.cpuUsage, user + system) of its best
 * and median round. `npx tsx packages/sink/bench/perLoad.ts [loads] [rounds] [bodyBytes]`; `PERLOAD_MODES=client`
 * (a comma-separated list) runs only those, for `node --cpu-prof --import tsx`.
 */
import { Duration, Effect, Logger, LogLevel, Redacted, RuntimeFlags, RuntimeFlagsPatch, Supervisor } from "effect"
import * as Http from "node:http"
import { LabelStore, LoadClient, StarRocksConfig } from "../src/index.js"
import * as Dispatcher from "../src/internal/sink/dispatcher.js"
import type { Lane, Sealed } from "../src/internal/sink/lane.js"
import * as Ledger from "../src/internal/sink/ledger.js"
import type { LoadBody } from "../src/LoadBody.js"
import { startEndpoint } from "./sinkRun.js"

const loads = Number(process.argv[2] ?? 300)
const rounds = Number(process.argv[3] ?? 5)
const bodyBytes = Number(process.argv[4] ?? 2 * 1024 * 1024)

const { child, port } = await startEndpoint()

/** The chunks a batch builder makes for `bytes`: 16 KiB, doubling to 1 MiB, the rest in the last one. */
const body = (bytes: number): LoadBody => {
  const chunks: Array<Uint8Array> = []
  let size = 16 * 1024
  let left = bytes
  while (left > 0) {
    const n = Math.min(size, left)
    chunks.push(Buffer.allocUnsafeSlow(size).fill(0x31).subarray(0, n))
    left -= n
    size = Math.min(size * 2, 1024 * 1024)
  }
  return { chunks, byteLength: bytes }
}
const loadBody = body(bodyBytes)

// bare node:http --------------------------------------------------------------------------------------------------
const agent = new Http.Agent({ keepAlive: true, maxSockets: 4, scheduling: "lifo" })
const authorization = `Basic ${Buffer.from("root:", "utf8").toString("base64")}`
let seq = 0
const httpLoad = () =>
  new Promise<void>((resolve, reject) => {
    const req = Http.request({
      hostname: "127.0.0.1",
      port,
      path: "/api/db/t/_stream_load",
      method: "PUT",
      agent,
      headers: {
        format: "csv",
        label: `perload-http-${process.pid}-${seq++}`,
        Authorization: authorization,
        "Content-Length": String(loadBody.byteLength),
        Expect: "100-continue"
      }
    })
    req.on("continue", () => {
      for (const chunk of loadBody.chunks) req.write(chunk)
      req.end()
    })
    req.on("response", (res) => {
      const parts: Array<Buffer> = []
      res.on("data", (d: Buffer) => parts.push(d))
      res.on("end", () => {
        const text = Buffer.concat(parts).toString("utf8")
        if (!text.includes("Success")) reject(new Error(text))
        else resolve()
      })
    })
    req.on("error", reject)
    req.flushHeaders()
  })

// the load client and the dispatcher -------------------------------------------------------------------------------
const config = StarRocksConfig.make({
  loadUrl: [`127.0.0.1:${port}`],
  database: "db",
  table: "t",
  username: "root",
  password: Redacted.make(""),
  format: "csv",
  allowSmallBuffers: true
})
const headers = { format: "csv", column_separator: ",", timezone: "UTC" }
const layer = LoadClient.layer(config)

const runClient = (n: number) =>
  Effect.gen(function*() {
    const client = yield* LoadClient.LoadClient
    for (let i = 0; i < n; i++) {
      yield* client.loadBatch({
        database: "db",
        table: "t",
        label: `perload-client-${process.pid}-${seq++}`,
        headers,
        body: loadBody
      })
    }
  })

const lane = {
  key: "db.t",
  settings: { database: "db", table: "t" },
  ordered: false
} as unknown as Lane

/** A client that answers every load at once, as the null endpoint does (for the dispatcher's own cost). */
const stubClient = LoadClient.fromPartial({
  loadBatch: (request) =>
    Effect.succeed({
      label: request.label,
      status: "Success",
      txnId: 1,
      loadedRows: 0,
      filteredRows: 0,
      unselectedRows: 0,
      totalRows: 0,
      loadBytes: request.body.byteLength,
      hops: [`http://127.0.0.1:${port}`],
      timings: { LoadTimeMs: 1, BeginTxnTimeMs: 0, StreamLoadPlanTimeMs: 0, ReadDataTimeMs: 0, WriteDataTimeMs: 0 },
      errorUrl: undefined,
      message: "OK",
      retries: 0,
      elapsedMs: 1
    }),
  getLoadState: () => Effect.succeed("VISIBLE")
})

/**
 * The dispatcher's loads, in runs of `RUN_LOADS` (about a 20-table sink run's), each run with a dispatcher and a
 * label store of its own, as each sink run has. `burst`: the loads are dispatched `burst` at a time (as a stream's
 * end seals every table's batch), then drained.
 */
const RUN_LOADS = 40
const runDispatcher = (n: number, burst = 1, stub = false) =>
  Effect.gen(function*() {
    const client = stub ? stubClient : yield* LoadClient.LoadClient
    const clock = yield* Effect.clock
    for (let done = 0; done < n; done += RUN_LOADS) {
      const labels = yield* LabelStore.makeMemory()
      yield* Effect.scoped(Effect.gen(function*() {
        const dispatcher = yield* Dispatcher.make({
          client,
          ledger: Ledger.make(labels, clock, { deadLetter: false }),
          clock,
          // as a sink of many tables: the budget holds several batches (or `burst`), two loads in flight
          maxBytes: bodyBytes * Math.max(4, burst),
          concurrency: 2,
          transactional: false,
          label: () => `perload-dispatcher-${process.pid}-${seq++}`,
          drainDeadline: Duration.seconds(30)
        })
        for (let i = 0; i < Math.min(RUN_LOADS, n - done); i++) {
          const sealed: Sealed = {
            lane,
            seq: i + 1,
            rows: 1,
            firstRow: i,
            body: loadBody,
            headers,
            release: () => {}
          }
          yield* dispatcher.dispatch(sealed)
          if (burst > 1 && (i + 1) % burst === 0) yield* dispatcher.drain
        }
        yield* dispatcher.drain
      }))
    }
  })

const run = <A, E>(effect: Effect.Effect<A, E, LoadClient.LoadClient>) =>
  effect.pipe(Effect.provide(layer), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.runPromise)

/** Counts the operations the fibers it supervises run (with `OpSupervision` on), by kind. */
class OpCounter extends Supervisor.AbstractSupervisor<void> {
  readonly value = Effect.void
  readonly byKind = new Map<string, number>()
  fibers = 0
  override onStart(): void {
    this.fibers++
  }
  override onEffect(_fiber: unknown, effect: Effect.Effect<unknown, unknown, unknown>): void {
    const kind = String((effect as { readonly _op?: unknown })._op)
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1)
  }
}
if (process.env["PERLOAD_OPS"] === "1") {
  const counter = new OpCounter()
  await run(Effect.gen(function*() {
    yield* runClient(5)
    counter.byKind.clear()
    counter.fibers = 0
    yield* runClient(50).pipe(
      Effect.supervised(counter),
      Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
    )
  }))
  const print = (name: string, n: number) => {
    const kinds = [...counter.byKind].sort((a, b) => b[1] - a[1])
    const total = kinds.reduce((sum, [, k]) => sum + k, 0)
    console.log(
      `${name}: Effect operations per load ${Math.round(total / n)} (${
        kinds.map(([kind, k]) => `${kind} ${Math.round(k / n)}`).join(", ")
      }), fibers forked per load ${(counter.fibers / n).toFixed(2)}`
    )
  }
  print("client", 50)
  // the dispatcher and the ledger over the client that answers at once: what they add to a load (the run's own
  // dispatcher and scope spread over its RUN_LOADS loads)
  await run(Effect.gen(function*() {
    yield* runDispatcher(RUN_LOADS, 1, true)
    counter.byKind.clear()
    counter.fibers = 0
    yield* runDispatcher(5 * RUN_LOADS, 1, true).pipe(
      Effect.supervised(counter),
      Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
    )
  }))
  print("dispatcherOnly", 5 * RUN_LOADS)
  // the dispatcher over the client and HTTP (the `dispatcher` mode): the client's operations included, and the
  // waits for the byte budget and the slots that loads over HTTP meet
  await run(Effect.gen(function*() {
    yield* runDispatcher(RUN_LOADS)
    counter.byKind.clear()
    counter.fibers = 0
    yield* runDispatcher(2 * RUN_LOADS).pipe(
      Effect.supervised(counter),
      Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
    )
  }))
  print("dispatcher", 2 * RUN_LOADS)
}

/** `n` loads, `width` of them in flight: each of `width` workers takes the next load when its own ends. */
const inFlight = async (n: number, width: number, one: () => Promise<void>) => {
  let next = 0
  const worker = async () => {
    while (next < n) {
      next++
      await one()
    }
  }
  await Promise.all(Array.from({ length: width }, worker))
}

const allModes: Record<string, () => Promise<unknown>> = {
  http: async () => {
    for (let i = 0; i < loads; i++) await httpLoad()
  },
  // bare node:http with two loads in flight, as the dispatcher mode has: what the concurrency alone costs
  http2: () => inFlight(loads, 2, httpLoad),
  client: () => run(runClient(loads)),
  // the client with two loads in flight (two fibers, no dispatcher)
  client2: () => run(Effect.forEach([0, 1], () => runClient(loads / 2), { concurrency: 2, discard: true })),
  dispatcher: () => run(runDispatcher(loads)),
  burst: () => run(runDispatcher(loads, 20)),
  // the dispatcher and the ledger alone, over a client that answers at once (no HTTP): 20 × `loads` of them
  dispatcherOnly: () => run(runDispatcher(loads * 20, 1, true))
}
// PERLOAD_MODES=client,dispatcher runs only these (for a profile of one)
const chosen = (process.env["PERLOAD_MODES"] ?? "http,client,dispatcher,burst").split(",")
const modes = Object.fromEntries(Object.entries(allModes).filter(([name]) => chosen.includes(name)))

const perLoad: Record<string, Array<number>> = Object.fromEntries(Object.keys(modes).map((name) => [name, []]))
const sysPerLoad: Record<string, Array<number>> = Object.fromEntries(Object.keys(modes).map((name) => [name, []]))
// a warm-up of each
for (const f of Object.values(modes)) await f()
for (let r = 0; r < rounds; r++) {
  for (const [name, f] of Object.entries(modes)) {
    const c0 = process.cpuUsage()
    await f()
    const c = process.cpuUsage(c0)
    const n = name === "dispatcherOnly" ? loads * 20 : loads
    perLoad[name]!.push((c.user + c.system) / n)
    sysPerLoad[name]!.push(c.system / n)
  }
}
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const figures: Record<string, { best: number; median: number; medianSystem: number }> = {}
for (const [name, xs] of Object.entries(perLoad)) {
  const f = {
    best: Math.round(Math.min(...xs)),
    median: Math.round(median(xs)),
    medianSystem: Math.round(median(sysPerLoad[name]!))
  }
  figures[name] = f
  console.log(`${name}: CPU µs per load best ${f.best}, median ${f.median} (of which system ${f.medianSystem})`)
}
console.log(JSON.stringify({ loads, rounds, bodyBytes, cpuMicrosPerLoad: figures }))
agent.destroy()
child.kill("SIGTERM")
