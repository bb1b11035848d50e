/**
 * Starting runner processes (runner.ts) from a parent: the crash test (scripts/crash-cluster.ts) and the benchmark
 * (bench.ts).
 */
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const runnerScript = path.join(path.dirname(fileURLToPath(import.meta.url)), "runner.ts")

/** A TCP port nothing listens on now (the OS picks it), for a runner's address. */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/** How to start a runner: a one-file ESM bundle of it (built once; it starts with far less CPU), or through tsx. */
export const runnerCommand = async (work: string, noBundle: boolean): Promise<ReadonlyArray<string>> => {
  if (noBundle) return ["--import", "tsx", runnerScript]
  const esbuild = await import("esbuild")
  const outfile = path.join(work, "runner.mjs")
  await esbuild.build({
    entryPoints: [runnerScript],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    logLevel: "warning",
    // CommonJS dependencies inside an ESM bundle call require
    banner: {
      js:
        "import { createRequire as __createRequire } from \"node:module\"; const require = __createRequire(import.meta.url);"
    }
  })
  return [outfile]
}
