// A null Stream Load endpoint on loopback: honours `Expect: 100-continue`, reads and discards the body,
// answers `Success` like a BE. Run as a child process so that it does not share the event loop of the
// process being measured. Prints `{"port":N}` when ready.
import * as Http from "node:http"

let loads = 0
let bytes = 0
const server = Http.createServer((req, res) => {
  let n = 0
  req.on("data", (chunk) => (n += chunk.length))
  req.on("end", () => {
    loads++
    bytes += n
    const label = req.headers["label"] ?? "none"
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({
      TxnId: loads,
      Label: label,
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
    }, null, 4))
  })
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
  if (m === "stats") process.send?.({ loads, bytes })
})
process.on("SIGTERM", () => server.close(() => process.exit(0)))
