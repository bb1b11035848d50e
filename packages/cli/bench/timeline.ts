/**
 * A timeline of `effect-starrocks load` of a large CSV file into the null Stream Load endpoint, as the loader's bench
 * runs it (packages/cli/bench/loader.ts: the bundle, started by the launcher, the defaults), and of the floor
 * (bench/floor.mjs) on the same file: from the spawn to node's start, the preload, the first read, each request's
 * headers, 100 Continue, first and last body bytes and answer, the summary, the exit event and the process's end
 * (bench/marks.cjs; the spawning process and the child both read CLOCK_MONOTONIC).
 *
 * `npx tsx packages/cli/bench/timeline.ts [BUNDLE_DIR...]`: each directory holds a bundle of
 * packages/cli/scripts/bundle.ts (its entry effect-starrocks.cjs); without one, this tree's is made. With several,
 * the runs alternate between them. Environment: TIMELINE_FILE (a CSV file to load; else 1 GiB is generated in a
 * temporary directory), TIMELINE_RUNS (runs of each, default 3), TIMELINE_FLOOR=0 (no floor runs), TIMELINE_NICE
 * (e.g. 10: the children run under `nice -n`), TIMELINE_ROWS=1 (load a one-row file instead). Prints each run's
 * marks, then one JSON line per bundle with the medians of the main intervals.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import { startEndpoint } from "../../sink/bench/sinkRun.js"
import { bundle, entryName } from "../scripts/bundle.js"
import { writeLauncher } from "../scripts/launcher.js"
import { generate, median } from "./csvFile.js"

const here = Path.dirname(Url.fileURLToPath(import.meta.url))

type Mark = [name: string, ms: number, detail?: string]

const main = async () => {
  const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-timeline-"))
  const endpoint = await startEndpoint()
  try {
    const dirs = process.argv.slice(2).map((d) => Path.resolve(d))
    if (dirs.length === 0) {
      await bundle(Path.join(tmp, "bundle"))
      dirs.push(Path.join(tmp, "bundle"))
    }
    const bins = dirs.map((dir, i) => {
      if (!Fs.existsSync(Path.join(dir, entryName))) throw new Error(`${dir} holds no ${entryName}`)
      const bin = Path.join(tmp, `bin${i}`, "effect-starrocks.cjs")
      Fs.mkdirSync(Path.dirname(bin))
      writeLauncher(bin, "effect-starrocks", Path.relative(Path.dirname(bin), Path.join(dir, entryName)))
      return bin
    })
    let file = process.env["TIMELINE_FILE"]
    if (process.env["TIMELINE_ROWS"] === "1") {
      file = Path.join(tmp, "one.csv")
      Fs.writeFileSync(file, "1,a,1.5,2024-01-01 12:00:00,note\n")
    } else if (file === undefined) {
      file = Path.join(tmp, "rows.csv")
      generate(file, 1024 ** 3)
    }
    const runs = Number(process.env["TIMELINE_RUNS"] ?? 3)
    const nice = process.env["TIMELINE_NICE"]
    const marksFile = Path.join(tmp, "marks.json")
    let n = 0
    // the floor runs without NODE_EXTRA_CA_CERTS, as the launcher runs `load` (scripts/launcher.ts)
    const { NODE_EXTRA_CA_CERTS: _ca, ...bare } = process.env
    const run = (command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env) =>
      new Promise<Array<Mark>>((resolve, reject) => {
        Fs.rmSync(marksFile, { force: true })
        const t0 = process.hrtime.bigint()
        const [cmd, argv] = nice === undefined ? [command, args] : ["nice", ["-n", nice, command, ...args]]
        const child = ChildProcess.spawn(cmd, argv, {
          stdio: ["ignore", "ignore", "pipe"],
          env: {
            ...env,
            MARKS_T0: String(t0),
            MARKS_FILE: marksFile,
            NODE_OPTIONS: `${process.env["NODE_OPTIONS"] ?? ""} --require ${Path.join(here, "marks.cjs")}`.trim()
          }
        })
        let stderr = ""
        child.stderr!.on("data", (d) => (stderr += d))
        child.on("exit", (code) => {
          const end = Number(process.hrtime.bigint() - t0) / 1e6
          if (code !== 0) return reject(new Error(`${command} exited ${code}: ${stderr}`))
          const marks = JSON.parse(Fs.readFileSync(marksFile, "utf8")) as Array<Mark>
          marks.push(["process end", end])
          resolve(marks.sort((a, b) => a[1] - b[1]))
        })
      })
    const loader = (bin: string) =>
      run(bin, [
        "load",
        file!,
        "--table",
        "db.t",
        "--load-url",
        `127.0.0.1:${endpoint.port}`,
        "--label-prefix",
        `timeline_${process.pid}_${n++}`
      ])
    const url = `http://127.0.0.1:${endpoint.port}/api/db/t/_stream_load`
    const floor = () => run(process.execPath, [Path.join(here, "floor.mjs"), file!, url, "2"], bare)
    const intervals = (marks: Array<Mark>) => {
      const at = (name: string, detail?: string) =>
        marks.find((m) => m[0] === name && (detail === undefined || (m[2] ?? "").startsWith(detail)))?.[1] ?? NaN
      const last = (name: string) => marks.filter((m) => m[0] === name).map((m) => m[1]).pop() ?? NaN
      const firstPut = marks.find((m) => m[0] === "headers written" && (m[2] ?? "").startsWith("PUT"))?.[2]?.split(" ")
        .slice(0, 2).join(" ")
      return {
        preload: at("preload"),
        entryOpen: at("openSync"),
        firstSocket: at("socket"),
        checkAnswered: at("response end", "GET"),
        firstPutHeaders: firstPut === undefined ? NaN : at("headers written", firstPut),
        firstBody: at("first body write", "PUT"),
        lastBody: last("last body write"),
        lastResponse: last("response end"),
        exitEvent: at("exit event"),
        end: at("process end")
      }
    }
    const all: Array<Array<ReturnType<typeof intervals>>> = bins.map(() => [])
    const floors: Array<ReturnType<typeof intervals>> = []
    for (let r = 0; r < runs; r++) {
      for (const [i, bin] of bins.entries()) {
        const marks = await loader(bin)
        console.log(`\n# ${dirs[i]} run ${r + 1}`)
        for (const [name, ms, detail] of marks) console.log(`${ms.toFixed(1).padStart(8)} ms  ${name} ${detail ?? ""}`)
        all[i]!.push(intervals(marks))
      }
      if (process.env["TIMELINE_FLOOR"] !== "0") {
        const marks = await floor()
        console.log(`\n# floor run ${r + 1}`)
        for (const [name, ms, detail] of marks) console.log(`${ms.toFixed(1).padStart(8)} ms  ${name} ${detail ?? ""}`)
        floors.push(intervals(marks))
      }
    }
    const summarize = (name: string, xs: Array<ReturnType<typeof intervals>>) => {
      if (xs.length === 0) return
      const keys = Object.keys(xs[0]!) as Array<keyof ReturnType<typeof intervals>>
      console.log(JSON.stringify({
        name,
        median_ms: Object.fromEntries(keys.map((k) => [k, Number(median(xs.map((x) => x[k])).toFixed(1))])),
        head_ms: median(xs.map((x) => x.firstBody)),
        check_to_put_ms: median(xs.map((x) => x.firstPutHeaders - x.checkAnswered)),
        socket_to_put_ms: median(xs.map((x) => x.firstPutHeaders - x.firstSocket)),
        transfer_ms: median(xs.map((x) => x.lastBody - x.firstBody)),
        tail_ms: median(xs.map((x) => x.end - x.lastBody))
      }))
    }
    console.log("")
    for (const [i, dir] of dirs.entries()) summarize(dir, all[i]!)
    summarize("floor", floors)
  } finally {
    endpoint.child.kill()
    Fs.rmSync(tmp, { recursive: true, force: true })
  }
}

await main()
