/**
 * The scale-out crash test (scripts/crash-cluster.ts, `npm run crash-test -- --cluster`) in its short version:
 * 3 processes of examples/cluster/runner.ts under @effect/cluster (shard locks, runners and checkpoints in MariaDB),
 * 8 partitions of a JetStream stream, 20,000 messages published while they run; two processes SIGKILLed and
 * restarted, one SIGSTOPped past its shard lock expiry (its partitions move) and SIGCONTed, at seeded moments. At the
 * end every message is in the emulator's table exactly once with its values, no PREPARE/PREPARED transaction of a
 * partition remains, and the paused process acknowledged no checkpoint of a partition it lost while paused.
 *
 * Needs NATS with JetStream at 127.0.0.1:4222 (scripts/ensure-nats.sh) and MariaDB at 127.0.0.1:3306
 * (scripts/ensure-mariadb.sh): without them it fails, naming the missing service.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as net from "node:net"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../../../", import.meta.url))
const script = fileURLToPath(new URL("../../../../scripts/crash-test.ts", import.meta.url))

const listening = (port: number) =>
  Effect.async<boolean>((resume) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.setTimeout(2_000)
    socket.once("connect", () => (socket.destroy(), resume(Effect.succeed(true))))
    socket.once("error", () => (socket.destroy(), resume(Effect.succeed(false))))
    socket.once("timeout", () => (socket.destroy(), resume(Effect.succeed(false))))
  })

interface Result {
  readonly code: number | null
  readonly output: string
}

const crashTest = (args: ReadonlyArray<string>) =>
  Effect.async<Result>((resume) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, "--cluster", ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (b: Buffer) => (output += b.toString()))
    child.stderr.on("data", (b: Buffer) => (output = (output + b.toString()).slice(-200_000)))
    child.once("exit", (code) => resume(Effect.succeed({ code, output })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("scale-out crash test", () => {
  it.live(
    "3 processes, 8 partitions, kills and a pause: every message exactly once, nothing lingers, no stale commit",
    () =>
      Effect.gen(function*() {
        assert.isTrue(yield* listening(4222), "NATS is not listening on 127.0.0.1:4222: run scripts/ensure-nats.sh")
        assert.isTrue(
          yield* listening(3306),
          "MariaDB is not listening on 127.0.0.1:3306: run scripts/ensure-mariadb.sh"
        )
        const result = yield* crashTest([
          ...["--messages", "20000", "--kills", "2", "--pauses", "1", "--seed", "20261205"],
          ...["--every-rows", "1000", "--timeout", "160"]
        ])
        const tail = result.output.slice(-6000)
        const last = result.output.trim().split("\n").at(-1) ?? ""
        const m =
          /^cluster processes=3 partitions=8 messages=(\d+) kills=(\d+) pauses=(\d+) moves=(\d+) lost=(\d+) duplicated=(\d+) lingering=(\d+) stale-commits=(\d+) unexpected-exits=(\d+) fenced-leftovers=(\d+)$/
            .exec(last)
        assert.isNotNull(m, `last line: ${last}\n${tail}`)
        const [, messages, kills, pauses, moves, lost, duplicated, lingering, stale, , leftovers] = m!.map(Number)
        assert.strictEqual(messages, 20_000, tail)
        assert.strictEqual(kills, 2, tail)
        assert.strictEqual(pauses, 1, tail)
        // the paused process lost its partitions to the others while it was stopped
        assert.isAtLeast(moves!, 1, tail)
        assert.strictEqual(lost, 0, tail)
        assert.strictEqual(duplicated, 0, tail)
        assert.strictEqual(lingering, 0, tail)
        assert.strictEqual(stale, 0, tail)
        // nothing the paused owner prepared after losing its partitions stays PREPARED
        assert.strictEqual(leftovers, 0, tail)
        assert.match(result.output, /rows 20000 \(values wrong 0, outside 1\.\.20000 0\)/)
        assert.strictEqual(result.code, 0, tail)
      }),
    180_000
  )
})
