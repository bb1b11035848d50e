// A null StarRocks endpoint on loopback: honours `Expect: 100-continue`, reads and discards every body, and answers
// as StarRocks does:
// - Stream Load (`PUT /api/{db}/{table}/_stream_load`): `Success`, like a BE;
// - the transaction interface (`/api/transaction/{begin,load,prepare,commit,rollback}`): `{"Status":"OK",...}`;
//   `begin` without a label answers `Empty label.` as current FEs do (the sink's probe reads that as "supported");
// - `GET /api/{db}/get_load_state?label=`: the label's state (PREPARE after begin/load, PREPARED, VISIBLE, ABORTED),
//   UNKNOWN for a label it has not seen.
// Run as a child process so that it does not share the event loop of the process being measured. Prints
// `{"port":N}` when ready; answers the IPC message "stats" with `{loads, bytes, cpuMs}` (loads: Stream Loads plus
// transaction loads; bytes: their bodies; cpuMs: this process's CPU time so far, user and system, in milliseconds).
// Options (environment; unset: as above): READ_MB_PER_S reads each request's body at most that many MiB/s (a BE
// parsing one load at its own pace: a load's rate is capped, loads in parallel are not), ANSWER_MS answers that many
// milliseconds after a body's last byte (a BE's commit and publish).
import * as Http from "node:http"

const readMbPerS = Number(process.env["READ_MB_PER_S"] ?? 0)
const answerMs = Number(process.env["ANSWER_MS"] ?? 0)

/** Paces `req`'s reading at `readMbPerS` (pauses it while it is ahead of that rate). */
const pace = (req) => {
  if (!(readMbPerS > 0)) return
  const bytesPerMs = (readMbPerS * 1024 * 1024) / 1000
  /** From the body's first bytes (not the request's start: a body that comes later earns no burst). */
  let t0
  let n = 0
  req.on("data", (chunk) => {
    t0 ??= performance.now()
    n += chunk.length
    const ahead = n / bytesPerMs - (performance.now() - t0)
    if (ahead > 1) {
      req.pause()
      setTimeout(() => req.resume(), ahead)
    }
  })
}

/** Runs `f` after ANSWER_MS (at once without it). */
const later = (f) => answerMs > 0 ? setTimeout(f, answerMs) : f()

let loads = 0
let bytes = 0
let txnIds = 0
/** label -> { txnId, state } */
const labels = new Map()

const reply = (res, body) => {
  res.writeHead(200, { "content-type": "application/json" })
  res.end(JSON.stringify(body, null, 4))
}

const server = Http.createServer((req, res) => {
  let n = 0
  req.on("data", (chunk) => (n += chunk.length))
  pace(req)
  req.on("end", () => later(() => {
    const url = new URL(req.url ?? "/", "http://localhost")
    const label = typeof req.headers["label"] === "string" ? req.headers["label"] : ""
    const txn = url.pathname.match(/^\/api\/transaction\/(begin|load|prepare|commit|rollback)$/)
    if (txn !== null) {
      const operation = txn[1]
      if (label === "") return reply(res, { Status: "FAILED", Message: "Empty label." })
      let known = labels.get(label)
      if (operation === "begin") {
        known = { txnId: ++txnIds, state: "PREPARE" }
        labels.set(label, known)
        return reply(res, { Status: "OK", Message: "", Label: label, TxnId: known.txnId, BeginTxnTimeMs: 0 })
      }
      const txnId = known?.txnId ?? 0
      if (operation === "load") {
        loads++
        bytes += n
        return reply(res, {
          TxnId: txnId,
          Label: label,
          Status: "OK",
          Message: "",
          NumberTotalRows: 0,
          NumberLoadedRows: 0,
          NumberFilteredRows: 0,
          NumberUnselectedRows: 0,
          LoadBytes: n,
          LoadTimeMs: 1,
          StreamLoadPlanTimeMs: 0,
          ReadDataTimeMs: 0,
          WriteDataTimeMs: 0
        })
      }
      if (known !== undefined) {
        known.state = operation === "prepare" ? "PREPARED" : operation === "commit" ? "VISIBLE" : "ABORTED"
      }
      return reply(res, { Status: "OK", Message: "", Label: label, TxnId: txnId })
    }
    if (url.pathname.endsWith("/get_load_state")) {
      const state = labels.get(url.searchParams.get("label") ?? "")?.state ?? "UNKNOWN"
      return reply(res, { Status: "OK", Message: "", State: state })
    }
    loads++
    bytes += n
    labels.set(label, { txnId: ++txnIds, state: "VISIBLE" })
    reply(res, {
      TxnId: txnIds,
      Label: label || "none",
      Status: "Success",
      Message: "OK",
      NumberTotalRows: 0,
      NumberLoadedRows: 0,
      NumberFilteredRows: 0,
      NumberUnselectedRows: 0,
      LoadBytes: n,
      LoadTimeMs: 1,
      BeginTxnTimeMs: 0,
      StreamLoadPlanTimeMs: 0,
      ReadDataTimeMs: 0,
      WriteDataTimeMs: 0,
      CommitAndPublishTimeMs: 0
    })
  }))
})
server.on("checkContinue", (req, res) => {
  res.writeContinue()
  server.emit("request", req, res)
})
server.keepAliveTimeout = 60_000
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n")
})
process.on("message", (m) => {
  if (m === "stats") {
    const cpu = process.cpuUsage()
    process.send?.({ loads, bytes, cpuMs: (cpu.user + cpu.system) / 1000 })
  }
})
process.on("SIGTERM", () => server.close(() => process.exit(0)))
