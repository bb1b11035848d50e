// The loader's figures piece by piece, two builds alternating (docs/benchmark.md, session 11): a one-row load (the
// fixed cost), a 1 GiB load with `--parallel 1` and with `--parallel 2`, each run by /usr/bin/time for its wall,
// user and system seconds and peak RSS, against the null endpoint (packages/sink/bench/nullEndpoint.mjs). Builds are
// entries of packages/cli/scripts/bundle.ts (`npx tsx packages/cli/scripts/bundle.ts DIR` prints one); the order
// of the builds alternates from round to round.
//
// `node packages/cli/bench/pieces.mjs ROUNDS NAME=ENTRY [NAME=ENTRY ...]`; KINDS=start,p1,p2 (the default) picks
// the pieces, GB=1 the file's size; ANSWER_MS=30 uses an endpoint of this script's own instead, which answers a
// load that long after its body ended (as a BE answers after its commit and publish). Prints each run, then the
// medians.
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"

const here = Path.dirname(Url.fileURLToPath(import.meta.url))
const [roundsText, ...specs] = process.argv.slice(2)
const rounds = Number(roundsText)
if (!(rounds > 0) || specs.length === 0) {
  console.error("usage: pieces.mjs ROUNDS NAME=ENTRY [NAME=ENTRY ...]")
  process.exit(2)
}
const builds = specs.map((s) => s.split("="))
const kinds = (process.env.KINDS ?? "start,p1,p2").split(",")
const MiB = 1024 ** 2
/** An endpoint that reads every body and answers `Success`, a load `ANSWER_MS` after its body ended. */
const slowEndpoint = `const Http = require("node:http")
const delay = Number(process.env.ANSWER_MS)
const server = Http.createServer((req, res) => {
  req.resume()
  req.on("end", () => {
    const answer = () => {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify({ TxnId: 1, Label: String(req.headers.label ?? ""), Status: "Success", Message: "OK" }))
    }
    if (req.method === "PUT") setTimeout(answer, delay)
    else answer()
  })
})
server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: server.address().port })))`
const endpoint = ChildProcess.spawn(
  process.execPath,
  process.env.ANSWER_MS === undefined ? [Path.join(here, "../../sink/bench/nullEndpoint.mjs")] : ["-e", slowEndpoint],
  { stdio: ["ignore", "pipe", "inherit", "ipc"] }
)
const port = await new Promise((resolve) => endpoint.stdout.once("data", (d) => resolve(JSON.parse(d).port)))
const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-pieces-"))
try {
  // the loader bench's rows (packages/cli/bench/loader.ts): a 4 MiB block of CSV rows written again and again
  const file = Path.join(dir, "rows.csv")
  const rows = []
  let size = 0
  for (let i = 0; size < 4 * MiB; i++) {
    const row = `${i},name-${(i * 7919) % 100_000},${(i % 10_000) / 100},2024-01-${String(1 + (i % 28)).padStart(2, "0")} ` +
      `12:${String(i % 60).padStart(2, "0")}:00,${"note ".repeat(1 + (i % 6))}\n`
    rows.push(row)
    size += row.length
  }
  const block = Buffer.from(rows.join(""))
  const fd = Fs.openSync(file, "w")
  for (let written = 0; written + block.length <= Number(process.env.GB ?? 1) * 1024 * MiB; written += block.length) {
    Fs.writeSync(fd, block)
  }
  // on disk before anything is measured (as bench/loader.ts: the dirty pages' write-back would fall in the runs)
  Fs.fsyncSync(fd)
  Fs.closeSync(fd)
  const tiny = Path.join(dir, "one.csv")
  Fs.writeFileSync(tiny, "1,a,1.5,2024-01-01 12:00:00,note\n")
  let n = 0
  const run = (entry, files, extra) => {
    const t0 = process.hrtime.bigint()
    const out = ChildProcess.spawnSync("/usr/bin/time", [
      "-f",
      "TIME %e %U %S %M",
      process.execPath,
      entry,
      "load",
      ...files,
      "--table",
      "db.t",
      "--load-url",
      `127.0.0.1:${port}`,
      "--label-prefix",
      `pieces_${process.pid}_${n++}`,
      ...extra
    ], { encoding: "utf8" })
    const wall = Number(process.hrtime.bigint() - t0) / 1e9
    if (out.status !== 0) throw new Error(out.stderr)
    const m = /TIME (\S+) (\S+) (\S+) (\S+)/.exec(out.stderr)
    return { wall, user: Number(m[2]), sys: Number(m[3]), cpu: Number(m[2]) + Number(m[3]), rss: Number(m[4]) / 1024 }
  }
  const results = new Map()
  for (let k = 0; k < rounds; k++) {
    for (const kind of kinds) {
      for (const [name, entry] of k % 2 === 0 ? builds : [...builds].reverse()) {
        const r = kind === "start"
          ? run(entry, [tiny], [])
          : run(entry, [file], ["--parallel", kind === "p1" ? "1" : "2"])
        const key = `${kind} ${name}`
        if (!results.has(key)) results.set(key, [])
        results.get(key).push(r)
        console.log(
          `${k} ${key}: wall ${r.wall.toFixed(3)} s, cpu ${r.cpu.toFixed(2)} s (user ${r.user}, system ${r.sys}), ` +
            `peak RSS ${r.rss.toFixed(0)} MB`
        )
      }
    }
  }
  const median = (a) => {
    const s = [...a].sort((x, y) => x - y)
    return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
  }
  const bytes = Fs.statSync(file).size
  for (const [key, rs] of results) {
    const wall = median(rs.map((r) => r.wall))
    console.log(
      `median ${key}: wall ${wall.toFixed(3)} s, cpu ${median(rs.map((r) => r.cpu)).toFixed(3)} s` +
        (key.startsWith("start") ? "" : ` (${(bytes / MiB / wall).toFixed(0)} MiB/s)`)
    )
  }
} finally {
  endpoint.kill()
  Fs.rmSync(dir, { recursive: true, force: true })
}
