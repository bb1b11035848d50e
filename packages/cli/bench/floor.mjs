// The floor of the loader's benchmark (packages/cli/bench/loader.ts): the fastest plain node script we could write
// that does what `effect-starrocks load` does on the wire, to show what node itself allows next to curl. One
// process, no Effect, no dependencies: the file cut at the last row delimiter before every `--max-bytes` (90 MiB),
// each batch PUT with `Expect: 100-continue` on a keep-alive socket, `parallel` batches in flight, the body read with
// `readSync` into a few reused 1 MiB buffers per load (a buffer is read into again once the socket took its bytes).
// No row counting, no labels beyond a counter, no retries, no startup check: it is a floor, not a loader.
//
// `node packages/cli/bench/floor.mjs FILE URL [parallel] [maxBytes]`; prints one JSON line
// {"bytes":…,"loads":…,"seconds":…} (seconds: from the script's first line to the last answer).
import * as Fs from "node:fs"
import * as Http from "node:http"

const started = process.hrtime.bigint()
const [file, url, parallelText = "2", maxBytesText = String(90 * 1024 * 1024)] = process.argv.slice(2)
if (file === undefined || url === undefined) {
  console.error("usage: floor.mjs FILE URL [parallel] [maxBytes]")
  process.exit(2)
}
const parallel = Number(parallelText)
const maxBytes = Number(maxBytesText)
const SLICE = 1024 * 1024
const SLOTS = 4
const target = new URL(url)
const agent = new Http.Agent({ keepAlive: true, maxSockets: parallel })
const fd = Fs.openSync(file, "r")
const size = Fs.fstatSync(fd).size

/** The batches' ranges: each ends after the last "\n" at or before maxBytes (the loader's cut). */
const ranges = []
{
  const window = Buffer.allocUnsafe(64 * 1024)
  for (let at = 0; at < size;) {
    if (size - at <= maxBytes) {
      ranges.push([at, size])
      break
    }
    const from = at + maxBytes - window.length
    const n = Fs.readSync(fd, window, 0, window.length, from)
    const last = window.subarray(0, n).lastIndexOf(10)
    if (last < 0) throw new Error("a row longer than 64 KiB at the limit")
    ranges.push([at, from + last + 1])
    at = from + last + 1
  }
}

/** The spare 1 MiB buffers of finished loads. */
const spare = []
let loads = 0
let sent = 0

const put = ([start, end]) =>
  new Promise((resolve, reject) => {
    const length = end - start
    const req = Http.request({
      hostname: target.hostname,
      port: target.port,
      path: target.pathname,
      method: "PUT",
      agent,
      headers: {
        "Content-Length": String(length),
        Expect: "100-continue",
        Authorization: "Basic " + Buffer.from("root:").toString("base64"),
        label: `floor-${process.pid}-${start}`,
        format: "csv"
      }
    })
    req.on("error", reject)
    req.on("response", (res) => {
      const parts = []
      res.on("data", (d) => parts.push(d))
      res.on("end", () => {
        const body = JSON.parse(Buffer.concat(parts).toString("utf8"))
        if (body.Status !== "Success") return reject(new Error(`load ${start}: ${body.Status} ${body.Message}`))
        loads++
        resolve()
      })
    })
    req.on("continue", () => {
      let position = start
      let slots = 0
      let scheduled = false
      const free = []
      const resume = () => {
        scheduled = false
        pump()
      }
      const pump = () => {
        while (position < end) {
          let buffer = free.pop()
          if (buffer === undefined) {
            if (slots >= SLOTS) return
            slots++
            buffer = spare.pop() ?? Buffer.allocUnsafeSlow(SLICE)
          }
          const n = Fs.readSync(fd, buffer, 0, Math.min(SLICE, end - position), position)
          position += n
          sent += n
          const slot = buffer
          req.write(n === SLICE ? slot : slot.subarray(0, n), () => {
            if (position < end) {
              free.push(slot)
              // from the loop's next turn (as the sink's transport does): a write callback comes from
              // process.nextTick when the socket took the bytes at once, and reading on from there would keep
              // the other load's socket events waiting until this load's body is sent
              if (!scheduled) {
                scheduled = true
                setImmediate(resume)
              }
            } else {
              spare.push(slot)
            }
          })
        }
        if (position === end) {
          position++ // once
          for (const b of free.splice(0)) spare.push(b)
          req.end()
        }
      }
      pump()
    })
    req.flushHeaders()
  })

let next = 0
const worker = async () => {
  while (next < ranges.length) await put(ranges[next++])
}
await Promise.all(Array.from({ length: Math.min(parallel, ranges.length) }, worker))
agent.destroy()
Fs.closeSync(fd)
if (sent !== size) throw new Error(`sent ${sent} of ${size} bytes`)
console.log(JSON.stringify({ bytes: size, loads, seconds: Number(process.hrtime.bigint() - started) / 1e9 }))
