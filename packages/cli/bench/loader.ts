/**
 * The loader's benchmark (issue 11, "Performance"): `effect-starrocks load` of a generated CSV file into the null
 * Stream Load endpoint (packages/sink/bench/nullEndpoint.mjs) on loopback, next to `curl -T` of the same file to
 * the same endpoint and `curl --parallel` with 2 transfers (the file's two halves), in the same run; then the
 * loader's peak RSS for two file sizes. The command runs as it runs installed: the bundle that `npm run pack` ships
 * (packages/cli/scripts/bundle.ts), started by the launcher it ships as the package's bin
 * (packages/cli/scripts/launcher.ts: sh, then plain node; the in-repository launcher's tsx alone adds about
 * 190 MB), with its defaults (`--parallel 2`, 90 MB batches). Each throughput figure is the best of `BENCH_LOADER_ROUNDS` rounds (default 2) of wall time, start-up
 * included (`loader_start_s`: the same command on a one-row file, its fixed cost); peak RSS is the child's VmHWM,
 * read at its exit.
 *
 * Prints figures, then one JSON line:
 * {"gb":…,"big_gb":…,"bytes":…,"loader_mb_per_s":…,"curl_mb_per_s":…,"curl_parallel2_mb_per_s":…,
 *  "loader_vs_curl":…,"loader_start_s":…,"loader_vs_curl_parallel2":…,"loader_parallel1_mb_per_s":…,
 *  "node_start_s":…,"floor_mb_per_s":…,"floor_parallel2_mb_per_s":…,"floor_parallel2_vs_curl_parallel2":…,
 *  "zero_copy_parallel2_mb_per_s":…,"zero_copy_parallel2_vs_curl_parallel2":…,"endpoint_busy_curl":…,
 *  "endpoint_busy_curl_parallel2":…,"endpoint_busy_loader":…,"endpoint_busy_floor_parallel2":…,
 *  "endpoint_busy_zero_copy_parallel2":…,
 *  "extra_ca_certs":…,"loader_no_extra_ca_mb_per_s":…,"loader_no_extra_ca_vs_curl":…,
 *  "loader_no_extra_ca_vs_curl_parallel2":…,"loader_start_no_extra_ca_s":…,"node_start_no_extra_ca_s":…,
 *  "rss_mb":…,"rss_big_mb":…,"rss_big_vs_small":…}
 * The `no_extra_ca` figures (null when the environment sets no `NODE_EXTRA_CA_CERTS`) are the loader's and node's
 * runs with that variable removed (`bare` below).
 * `loader_parallel1_mb_per_s` is the same command with `--parallel 1`; `node_start_s` is `node -e 0`; the floor
 * (bench/floor.mjs) is a plain node script that PUTs the same file the fastest way we found (no Effect, no row
 * count), with 1 and 2 loads in flight: what node itself allows next to curl; it runs without NODE_EXTRA_CA_CERTS,
 * as the launcher runs the loader. The zero-copy sender
 * (bench/zeroCopy.py, run when python3 is on the PATH; its figures null otherwise) makes curl --parallel 2's two PUTs
 * but sends each body with sendfile(2), never copying it into the process: what the endpoint and the machine allow
 * when the sender costs almost nothing. `endpoint_busy_*` is the null endpoint's CPU time (user and system) over
 * the best run of each, divided by that run's wall time: near 1, the endpoint's one thread was busy all along.
 * (MB are MiB.) Run by packages/sink/bench/bench.ts as its last section, or alone:
 * `npx tsx packages/cli/bench/loader.ts`. Environment: BENCH_LOADER_GB (the file of the throughput runs and the
 * first RSS run, default 1), BENCH_LOADER_BIG_GB (the second RSS run, default 4; 0 skips it),
 * BENCH_LOADER_ROUNDS (default 2). The files are generated in a temporary directory, written to disk (fsync) before
 * anything is measured (the kernel would write the dirty pages back during the runs), and deleted after use.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import { startEndpoint } from "../../sink/bench/sinkRun.js"
import { bundle } from "../scripts/bundle.js"
import { writeLauncher } from "../scripts/launcher.js"
import { generate, runMain } from "./csvFile.js"

const here = Path.dirname(Url.fileURLToPath(import.meta.url))

const GiB = 1024 ** 3
const MiB = 1024 ** 2

const gb = Number(process.env["BENCH_LOADER_GB"] ?? 1)
const bigGb = Number(process.env["BENCH_LOADER_BIG_GB"] ?? 4)
const rounds = Math.max(1, Number(process.env["BENCH_LOADER_ROUNDS"] ?? 2))

/** Splits `file` at the first row boundary after its middle into `a` and `b` (for curl's two transfers). */
const halves = (file: string, a: string, b: string): void => {
  const size = Fs.statSync(file).size
  const input = Fs.openSync(file, "r")
  try {
    const buf = Buffer.alloc(4 * MiB)
    const n = Fs.readSync(input, buf, 0, buf.length, Math.floor(size / 2))
    const middle = Math.floor(size / 2) + buf.subarray(0, n).indexOf(10) + 1
    for (const [to, start, end] of [[a, 0, middle], [b, middle, size]] as const) {
      const out = Fs.openSync(to, "w")
      try {
        for (let at = start; at < end;) {
          const got = Fs.readSync(input, buf, 0, Math.min(buf.length, end - at), at)
          Fs.writeSync(out, buf, 0, got)
          at += got
        }
        Fs.fsyncSync(out)
      } finally {
        Fs.closeSync(out)
      }
    }
  } finally {
    Fs.closeSync(input)
  }
}

const seconds = (f: () => void): number => {
  const t0 = process.hrtime.bigint()
  f()
  return Number(process.hrtime.bigint() - t0) / 1e9
}

/**
 * The environment without `NODE_EXTRA_CA_CERTS`, when it sets it (else undefined). Node 20 reads and parses that
 * file of certificates at every start, whether the process uses TLS or not; where it names the system's whole bundle
 * (as on the machine these figures come from: 144 certificates), that is about 420 M of the 498 M instructions of
 * `node -e 0` and 0.05-0.08 s of wall time (docs/benchmark.md, session 16). curl reads no certificate for an
 * `http://` URL. The figures above are taken with the environment as it is (the installed command's launcher then
 * moves the variable aside for `load`, packages/cli/scripts/launcher.ts); the loader is also run without the
 * variable (its loads are plain HTTP, the certificates are never used), and those figures are printed beside.
 */
const bare: NodeJS.ProcessEnv | undefined = (() => {
  if (process.env["NODE_EXTRA_CA_CERTS"] === undefined) return undefined
  const { NODE_EXTRA_CA_CERTS: _, ...rest } = process.env
  return rest
})()

/** A figure of the runs without `NODE_EXTRA_CA_CERTS`, null when there were none. */
const ifBare = (x: number): number | null => bare === undefined ? null : x

/** python3, when it is on the PATH (for the zero-copy sender), else undefined. */
const python: string | undefined = ChildProcess.spawnSync("python3", ["-c", "0"]).status === 0 ? "python3" : undefined

/** A measured run: wall seconds, and the endpoint's CPU time over it as a share of them. */
interface Run {
  readonly seconds: number
  readonly busy: number
}

/** A share, rounded, or null when not measured. */
const share = (x: number): number | null => Number.isFinite(x) ? Number(x.toFixed(2)) : null

const main = async () => {
  const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-bench-loader-"))
  const endpoint = await startEndpoint()
  try {
    const url = `http://127.0.0.1:${endpoint.port}/api/db/t/_stream_load`

    // the command as it runs installed (scripts/pack.ts ships this bundle as the `effect-starrocks` command): the
    // bundle of packages/cli/scripts/bundle.ts in `bundle/`, started by the launcher that scripts/pack.ts writes as
    // the package's bin (packages/cli/scripts/launcher.ts: sh, which moves NODE_EXTRA_CA_CERTS aside for `load`,
    // then plain node); a preload (NODE_OPTIONS=--require, as a user's could be) prints the peak RSS at exit
    const entry = await bundle(Path.join(tmp, "package", "bundle"))
    Fs.mkdirSync(Path.join(tmp, "package", "bin"))
    const bin = Path.join(tmp, "package", "bin", "effect-starrocks.cjs")
    writeLauncher(bin, "effect-starrocks", `../bundle/${Path.basename(entry)}`)
    const preload = Path.join(tmp, "peak.cjs")
    Fs.writeFileSync(
      preload,
      "process.on('exit', () => { const m = /VmHWM:\\s+(\\d+) kB/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'));" +
        " if (m) require('fs').writeSync(2, `\\nbench-peak-rss-kb ${m[1]}\\n`) })\n"
    )
    let runs = 0
    /** One `load` of `files`: wall seconds, peak RSS (MiB) and the summary line. */
    const load = (files: ReadonlyArray<string>, extra: ReadonlyArray<string> = [], env = process.env) => {
      let out: ChildProcess.SpawnSyncReturns<string> | undefined
      const s = seconds(() => {
        out = ChildProcess.spawnSync(bin, [
          "load",
          ...files,
          "--table",
          "db.t",
          "--load-url",
          `127.0.0.1:${endpoint.port}`,
          "--label-prefix",
          `bench_${process.pid}_${runs++}`,
          ...extra
        ], {
          encoding: "utf8",
          maxBuffer: 64 * MiB,
          env: { ...env, NODE_OPTIONS: `${env["NODE_OPTIONS"] ?? ""} --require ${preload}`.trim() }
        })
      })
      if (out!.status !== 0) throw new Error(`effect-starrocks load exited ${out!.status}: ${out!.stderr}`)
      const peak = /bench-peak-rss-kb (\d+)/.exec(out!.stderr)
      const summary = JSON.parse(out!.stdout.trim().split("\n").pop()!) as { bytes: number; loads: number }
      // the preload reaches node through the launcher's exec (NODE_OPTIONS): its figure must be there
      if (peak === null) throw new Error(`effect-starrocks load printed no peak RSS: ${out!.stderr}`)
      return { seconds: s, peakMb: Number(peak[1]) / 1024, summary }
    }
    const curl = (extra: ReadonlyArray<string>) =>
      seconds(() => {
        ChildProcess.execFileSync("curl", [
          "-sS",
          "--no-progress-meter",
          "-u",
          "root:",
          "-H",
          "Expect:100-continue",
          "-H",
          `label:curl-${process.pid}-${runs++}`,
          ...extra
        ], { stdio: ["ignore", "ignore", "inherit"] })
      })

    // the floor (bench/floor.mjs): the same PUTs by the plainest fast node script, 1 and 2 loads in flight
    // run without NODE_EXTRA_CA_CERTS (`bare`), as the launcher runs `load`: like for like with the loader (until
    // session 19 the floor paid node's parse of that file at its start, about 33 ms, and the loader did not)
    const floor = (parallel: number) =>
      seconds(() => {
        ChildProcess.execFileSync(process.execPath, [Path.join(here, "floor.mjs"), file, url, String(parallel)], {
          stdio: ["ignore", "ignore", "inherit"],
          env: bare ?? process.env
        })
      })

    // the zero-copy sender (bench/zeroCopy.py): curl --parallel 2's two PUTs, each body sent by sendfile(2) from the
    // page cache, never copied into the process; run when python3 is there
    const zeroCopy = (files: ReadonlyArray<string>) =>
      seconds(() => {
        ChildProcess.execFileSync(python!, [Path.join(here, "zeroCopy.py"), String(endpoint.port), ...files], {
          stdio: ["ignore", "ignore", "inherit"]
        })
      })

    // throughput: the `gb` file, loader and both curls, `rounds` rounds alternating, best of each
    const file = Path.join(tmp, "rows.csv")
    const bytes = generate(file, gb * GiB)
    const a = Path.join(tmp, "a.csv")
    const b = Path.join(tmp, "b.csv")
    halves(file, a, b)
    // the fixed cost in every figure below: start-up, startup check and one load of a one-row file
    const tiny = Path.join(tmp, "one.csv")
    Fs.writeFileSync(tiny, "1,a,1.5,2024-01-01 12:00:00,note\n")
    /** `node -e 0` in `env`: node's own start. */
    const nodeStart = (env: NodeJS.ProcessEnv) =>
      seconds(() => ChildProcess.execFileSync(process.execPath, ["-e", "0"], { env }))
    let startSeconds = Infinity
    let nodeSeconds = Infinity
    let startBareSeconds = Infinity
    let nodeBareSeconds = Infinity
    for (let k = 0; k < rounds; k++) {
      startSeconds = Math.min(startSeconds, load([tiny]).seconds)
      // node's own start in the same conditions (the environment's NODE_EXTRA_CA_CERTS, say, is in both)
      nodeSeconds = Math.min(nodeSeconds, nodeStart(process.env))
      if (bare !== undefined) {
        startBareSeconds = Math.min(startBareSeconds, load([tiny], [], bare).seconds)
        nodeBareSeconds = Math.min(nodeBareSeconds, nodeStart(bare))
      }
    }
    /**
     * A run of `f` (its wall seconds) with the endpoint's CPU time over it, as a share of that wall time: near 1, the
     * endpoint (one node thread reading every socket) was busy all along and set the pace, whatever the sender.
     */
    const measured = async <A extends { readonly seconds: number }>(f: () => A): Promise<A & Run> => {
      const before = (await endpoint.stats()).cpuMs
      const a = f()
      const after = (await endpoint.stats()).cpuMs
      return { ...a, busy: (after - before) / 1000 / a.seconds }
    }
    const timed = (f: () => number) => measured(() => ({ seconds: f() }))
    /** The faster of two runs. */
    const best = (x: Run, y: Run): Run => y.seconds < x.seconds ? y : x
    const none: Run = { seconds: Infinity, busy: NaN }
    let loaderRun = none
    let curlRun = none
    let parallelRun = none
    let loaderBareSeconds = Infinity
    let loaderOneSeconds = Infinity
    let floorSeconds = Infinity
    let floorParallelRun = none
    let zeroCopyRun = none
    let rssMb = 0
    for (let k = 0; k < rounds; k++) {
      curlRun = best(curlRun, await timed(() => curl(["-o", "/dev/null", "-T", file, url])))
      parallelRun = best(
        parallelRun,
        await timed(() =>
          curl(["--parallel", "--parallel-max", "2", "-o", "/dev/null", "-o", "/dev/null", "-T", `{${a},${b}}`, url])
        )
      )
      const run = await measured(() => load([file]))
      if (run.summary.bytes !== bytes) throw new Error(`the loader sent ${run.summary.bytes} bytes of ${bytes}`)
      loaderRun = best(loaderRun, run)
      rssMb = Math.max(rssMb, run.peakMb)
      if (bare !== undefined) {
        const plain = load([file], [], bare)
        if (plain.summary.bytes !== bytes) throw new Error(`the loader sent ${plain.summary.bytes} bytes of ${bytes}`)
        loaderBareSeconds = Math.min(loaderBareSeconds, plain.seconds)
      }
      const one = load([file], ["--parallel", "1"])
      if (one.summary.bytes !== bytes) throw new Error(`the loader sent ${one.summary.bytes} bytes of ${bytes}`)
      loaderOneSeconds = Math.min(loaderOneSeconds, one.seconds)
      floorSeconds = Math.min(floorSeconds, floor(1))
      floorParallelRun = best(floorParallelRun, await timed(() => floor(2)))
      if (python !== undefined) zeroCopyRun = best(zeroCopyRun, await timed(() => zeroCopy([a, b])))
    }
    const loaderSeconds = loaderRun.seconds
    const curlSeconds = curlRun.seconds
    const parallelSeconds = parallelRun.seconds
    const floorParallelSeconds = floorParallelRun.seconds
    Fs.rmSync(a)
    Fs.rmSync(b)
    Fs.rmSync(file)

    // memory: the `bigGb` file, one run
    let rssBigMb: number | undefined
    let bigBytes: number | undefined
    if (bigGb > 0) {
      bigBytes = generate(file, bigGb * GiB)
      const run = load([file])
      if (run.summary.bytes !== bigBytes) throw new Error(`the loader sent ${run.summary.bytes} bytes of ${bigBytes}`)
      rssBigMb = run.peakMb
      Fs.rmSync(file)
    }

    const rate = (s: number) => bytes / MiB / s
    const figures = {
      gb,
      big_gb: bigGb,
      bytes,
      loader_mb_per_s: Math.round(rate(loaderSeconds)),
      curl_mb_per_s: Math.round(rate(curlSeconds)),
      curl_parallel2_mb_per_s: Math.round(rate(parallelSeconds)),
      loader_vs_curl: Number((curlSeconds / loaderSeconds).toFixed(3)),
      loader_start_s: Number(startSeconds.toFixed(3)),
      loader_vs_curl_parallel2: Number((parallelSeconds / loaderSeconds).toFixed(3)),
      loader_parallel1_mb_per_s: Math.round(rate(loaderOneSeconds)),
      node_start_s: Number(nodeSeconds.toFixed(3)),
      floor_mb_per_s: Math.round(rate(floorSeconds)),
      floor_parallel2_mb_per_s: Math.round(rate(floorParallelSeconds)),
      floor_parallel2_vs_curl_parallel2: Number((parallelSeconds / floorParallelSeconds).toFixed(3)),
      zero_copy_parallel2_mb_per_s: python === undefined ? null : Math.round(rate(zeroCopyRun.seconds)),
      zero_copy_parallel2_vs_curl_parallel2: python === undefined
        ? null
        : Number((parallelSeconds / zeroCopyRun.seconds).toFixed(3)),
      endpoint_busy_curl: share(curlRun.busy),
      endpoint_busy_curl_parallel2: share(parallelRun.busy),
      endpoint_busy_loader: share(loaderRun.busy),
      endpoint_busy_floor_parallel2: share(floorParallelRun.busy),
      endpoint_busy_zero_copy_parallel2: share(zeroCopyRun.busy),
      extra_ca_certs: bare !== undefined,
      loader_no_extra_ca_mb_per_s: ifBare(Math.round(rate(loaderBareSeconds))),
      loader_no_extra_ca_vs_curl: ifBare(Number((curlSeconds / loaderBareSeconds).toFixed(3))),
      loader_no_extra_ca_vs_curl_parallel2: ifBare(Number((parallelSeconds / loaderBareSeconds).toFixed(3))),
      loader_start_no_extra_ca_s: ifBare(Number(startBareSeconds.toFixed(3))),
      node_start_no_extra_ca_s: ifBare(Number(nodeBareSeconds.toFixed(3))),
      rss_mb: Math.round(rssMb),
      rss_big_mb: rssBigMb === undefined ? null : Math.round(rssBigMb),
      rss_big_vs_small: rssBigMb === undefined ? null : Number((rssBigMb / rssMb).toFixed(3))
    }
    console.log(
      `loader: effect-starrocks load of ${(bytes / GiB).toFixed(2)} GiB of CSV into the null endpoint: ` +
        `${figures.loader_mb_per_s} MiB/s; curl -T ${figures.curl_mb_per_s} MiB/s (loader/curl ` +
        `${figures.loader_vs_curl}); curl --parallel 2 ${figures.curl_parallel2_mb_per_s} MiB/s (loader/curl-parallel-2 ` +
        `${figures.loader_vs_curl_parallel2}); best of ${rounds}; the loader's fixed cost (a one-row file): ` +
        `${figures.loader_start_s} s (node -e 0: ${figures.node_start_s} s)`
    )
    console.log(
      `loader: --parallel 1 ${figures.loader_parallel1_mb_per_s} MiB/s; the floor (bench/floor.mjs, plain node) ` +
        `${figures.floor_mb_per_s} MiB/s, with 2 loads in flight ${figures.floor_parallel2_mb_per_s} MiB/s ` +
        `(floor-parallel-2/curl-parallel-2 ${figures.floor_parallel2_vs_curl_parallel2})`
    )
    console.log(
      `loader: the endpoint's CPU time ÷ the wall time (its busy share) in the best run of each: curl -T ` +
        `${figures.endpoint_busy_curl}, curl --parallel 2 ${figures.endpoint_busy_curl_parallel2}, loader ` +
        `${figures.endpoint_busy_loader}, floor with 2 in flight ${figures.endpoint_busy_floor_parallel2}` +
        (python === undefined
          ? "; no python3: no zero-copy sender"
          : `, zero-copy sender ${figures.endpoint_busy_zero_copy_parallel2}; the zero-copy sender (bench/zeroCopy.py, ` +
            `sendfile, 2 in flight) ${figures.zero_copy_parallel2_mb_per_s} MiB/s (zero-copy/curl-parallel-2 ` +
            `${figures.zero_copy_parallel2_vs_curl_parallel2})`)
    )
    if (bare !== undefined) {
      console.log(
        `loader without the environment's NODE_EXTRA_CA_CERTS (plain HTTP: the certificates are never used): ` +
          `${figures.loader_no_extra_ca_mb_per_s} MiB/s (loader/curl ${figures.loader_no_extra_ca_vs_curl}; ` +
          `loader/curl-parallel-2 ${figures.loader_no_extra_ca_vs_curl_parallel2}); fixed cost ` +
          `${figures.loader_start_no_extra_ca_s} s (node -e 0: ${figures.node_start_no_extra_ca_s} s)`
      )
    }
    console.log(
      `loader: peak RSS ${figures.rss_mb} MB for ${(bytes / GiB).toFixed(2)} GiB` +
        (rssBigMb === undefined
          ? " (BENCH_LOADER_BIG_GB=0: no second size)"
          : `, ${figures.rss_big_mb} MB for ${(bigBytes! / GiB).toFixed(2)} GiB (ratio ${figures.rss_big_vs_small})`)
    )
    console.log(JSON.stringify(figures))
  } finally {
    endpoint.child.kill("SIGTERM")
    Fs.rmSync(tmp, { recursive: true, force: true })
  }
}

runMain(main)
