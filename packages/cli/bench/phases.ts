/**
 * The loader of two trees compared (written for the loads' phases, docs/benchmark.md, session 18): the bundled loader of each
 * tree (as bench/loader.ts runs it: packages/cli/scripts/bundle.ts plus the launcher) loads the same generated CSV
 * file into the null endpoint (packages/sink/bench/nullEndpoint.mjs), the trees alternating run by run, under the
 * same endpoint options: READ_MB_PER_S (each load's body read at most that fast, a BE's parse) and ANSWER_MS pass
 * through to it. Each run's wall time, the loader's CPU time (/usr/bin/time) and the endpoint's (its own
 * `process.cpuUsage()`, through the `stats` message of packages/sink/bench/sinkRun.ts) are printed, then one JSON line of medians and ranges per tree.
 *
 * `npx tsx packages/cli/bench/phases.ts` with BENCH_PHASES_TREES (comma-separated repository roots; default: this
 * one), BENCH_PHASES_PAIRS (runs per tree, default 5), BENCH_PHASES_GB (default 1), BENCH_PHASES_ARGS (more `load`
 * arguments, space-separated, e.g. "--parallel 1"; with "--verbose", stderr lines holding "the loads' phases:" are
 * printed, for a tree whose loader logs its phases' mode there).
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import { startEndpoint } from "../../sink/bench/sinkRun.js"
import { generate, median, runMain } from "./csvFile.js"

const here = Path.dirname(Url.fileURLToPath(import.meta.url))
const MiB = 1024 ** 2
const GiB = 1024 ** 3

const trees = (process.env["BENCH_PHASES_TREES"] ?? Path.resolve(here, "../../..")).split(",")
const pairs = Number(process.env["BENCH_PHASES_PAIRS"] ?? 5)
const gb = Number(process.env["BENCH_PHASES_GB"] ?? 1)
const extra = (process.env["BENCH_PHASES_ARGS"] ?? "").split(" ").filter((a) => a !== "")

const main = async () => {
  const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-bench-phases-"))
  const endpoint = await startEndpoint()
  const { port } = endpoint
  /** The endpoint's CPU seconds (user + system) so far. */
  const endpointCpu = async () => (await endpoint.stats()).cpuMs / 1000
  try {
    // each tree's command as it runs installed: its bundle, started by its launcher
    const bins: Array<string> = []
    for (const [i, tree] of trees.entries()) {
      const { bundle } = await import(Path.join(tree, "packages/cli/scripts/bundle.ts"))
      const { writeLauncher } = await import(Path.join(tree, "packages/cli/scripts/launcher.ts"))
      const entry: string = await bundle(Path.join(tmp, `t${i}`, "bundle"))
      Fs.mkdirSync(Path.join(tmp, `t${i}`, "bin"))
      const bin = Path.join(tmp, `t${i}`, "bin", "effect-starrocks.cjs")
      writeLauncher(bin, "effect-starrocks", `../bundle/${Path.basename(entry)}`)
      bins.push(bin)
    }
    const file = Path.join(tmp, "rows.csv")
    const bytes = generate(file, gb * GiB)
    const runs: Array<Array<{ mbPerS: number; cpu: number; endpointCpu: number }>> = trees.map(() => [])
    let n = 0
    for (let k = 0; k < pairs; k++) {
      for (const [i, bin] of bins.entries()) {
        const endpointBefore = await endpointCpu()
        const t0 = process.hrtime.bigint()
        const out = ChildProcess.spawnSync("/usr/bin/time", [
          "-f",
          "bench-cpu %U %S",
          bin,
          "load",
          file,
          "--table",
          "db.t",
          "--load-url",
          `127.0.0.1:${port}`,
          "--label-prefix",
          `phases_${process.pid}_${n++}`,
          ...extra
        ], { encoding: "utf8", maxBuffer: 64 * MiB })
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9
        if (out.status !== 0) throw new Error(`${bin} exited ${out.status}: ${out.stderr}`)
        const summary = JSON.parse(out.stdout.trim().split("\n").pop()!) as { bytes: number }
        if (summary.bytes !== bytes) throw new Error(`the loader sent ${summary.bytes} bytes of ${bytes}`)
        const cpu = /bench-cpu ([\d.]+) ([\d.]+)/.exec(out.stderr)!
        const run = {
          mbPerS: Math.round(bytes / MiB / seconds),
          cpu: Number((Number(cpu[1]) + Number(cpu[2])).toFixed(2)),
          endpointCpu: Number(((await endpointCpu()) - endpointBefore).toFixed(2))
        }
        // with BENCH_PHASES_ARGS="--verbose": the phases' modes, for a tree whose loader logs them
        for (const line of out.stderr.split("\n")) if (line.includes("the loads' phases:")) console.log(`  ${line}`)
        runs[i]!.push(run)
        console.log(`${trees[i]}: ${JSON.stringify(run)}`)
      }
    }
    for (const [i, tree] of trees.entries()) {
      const r = runs[i]!
      const of = (f: (x: (typeof r)[number]) => number) => ({
        median: median(r.map(f)),
        min: Math.min(...r.map(f)),
        max: Math.max(...r.map(f))
      })
      console.log(JSON.stringify({
        tree,
        readMbPerS: Number(process.env["READ_MB_PER_S"] ?? 0),
        args: extra,
        mb_per_s: of((x) => x.mbPerS),
        cpu_s: of((x) => x.cpu),
        endpoint_cpu_s: of((x) => x.endpointCpu)
      }))
    }
  } finally {
    endpoint.child.kill("SIGTERM")
    Fs.rmSync(tmp, { recursive: true, force: true })
  }
}

runMain(main)
