/**
 * How the transport hands an in-memory body to the socket (internal/client/transport.ts `writeBody`): after
 * `100 Continue`, in one pass, so that node sends the body's chunks in one `writev` rather than one write per chunk
 * after each `drain` (docs/benchmark.md, "Session 10: the cost of a load"); chunks of 4 KiB and more as they are,
 * small ones coalesced. The bytes that arrive are the body's, in order.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Net from "node:net"
import { exchange, makeAgents } from "../src/internal/client/transport.js"
import type { LoadBody } from "../src/LoadBody.js"

/** A server that honours `Expect: 100-continue`, keeps the body it reads and answers `Success`. */
const withServer = <A, E>(use: (port: number, received: () => Buffer) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.async<{ server: Http.Server; parts: Array<Buffer> }>((resume) => {
      const parts: Array<Buffer> = []
      const server = Http.createServer((req, res) => {
        req.on("data", (d: Buffer) => parts.push(d))
        req.on("end", () => {
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify({ Status: "Success" }))
        })
      })
      server.on("checkContinue", (req, res) => {
        res.writeContinue()
        server.emit("request", req, res)
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, parts })))
    }),
    ({ parts, server }) => use((server.address() as AddressInfo).port, () => Buffer.concat(parts)),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
  )

/** The writes of the client sockets to `port` (`_write` and `_writev` of node's sockets, recorded), while `f` runs. */
const recordingWrites = <A, E>(port: number, f: Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const writes: Array<ReadonlyArray<Uint8Array>> = []
      const proto = Net.Socket.prototype as unknown as {
        _write: (chunk: Uint8Array, encoding: string, cb: () => void) => void
        _writev: (chunks: Array<{ chunk: Uint8Array }>, cb: () => void) => void
      }
      const write = proto._write
      const writev = proto._writev
      proto._write = function(this: Net.Socket, chunk, encoding, cb) {
        if (this.remotePort === port) writes.push([chunk])
        return write.call(this, chunk, encoding, cb)
      }
      proto._writev = function(this: Net.Socket, chunks, cb) {
        if (this.remotePort === port) writes.push(chunks.map((c) => c.chunk))
        return writev.call(this, chunks, cb)
      }
      return { writes, restore: () => Object.assign(proto, { _write: write, _writev: writev }) }
    }),
    ({ writes }) => Effect.map(f, (a) => [a, writes] as const),
    ({ restore }) => Effect.sync(restore)
  )

const options = (agents: ReturnType<typeof makeAgents>) => ({
  connectTimeoutMs: 5_000,
  continueTimeoutMs: 5_000,
  socketTimeoutMs: 10_000,
  maxRedirects: 3,
  beHostMap: new Map<string, string>(),
  agents
})

const put = (port: number, body: LoadBody) =>
  Effect.acquireUseRelease(
    Effect.sync(() => makeAgents()),
    (agents) =>
      exchange({
        method: "PUT",
        url: new URL(`http://127.0.0.1:${port}/api/db/t/_stream_load`),
        headers: { label: "l1", format: "csv" },
        body,
        expectContinue: true
      }, options(agents)),
    (agents) => Effect.sync(() => agents.destroy())
  )

const filled = (size: number, byte: number) => Buffer.alloc(size, byte)

describe("transport: an in-memory body on the socket", () => {
  it.live("the chunks a batch builder makes go out in one writev, as they are, after 100 Continue", () =>
    withServer((port, received) =>
      Effect.gen(function*() {
        // 16 KiB doubling to 1 MiB, as RowEncoder's batch builder grows its buffers
        const chunks = [16, 32, 64, 128, 256, 512, 1024].map((k, i) => filled(k * 1024, 0x41 + i))
        const body: LoadBody = { chunks, byteLength: chunks.reduce((n, c) => n + c.byteLength, 0) }
        const [response, writes] = yield* recordingWrites(port, put(port, body))
        assert.strictEqual(response.status, 200)
        assert.isTrue(received().equals(Buffer.concat(chunks)), "the server got the body's bytes, in order")
        // the write that carries the body's first chunk carries all of them, each the body's own buffer (no copy)
        const first = writes.find((w) => w.includes(chunks[0]!))
        assert.isDefined(first, "the first chunk went to the socket as it is")
        assert.deepStrictEqual(
          chunks.map((c) => first!.includes(c)),
          chunks.map(() => true),
          `one writev with every chunk (writes: ${writes.map((w) => w.length).join(", ")})`
        )
      })
    ))

  it.live("small chunks are coalesced, large ones sent as they are; the bytes arrive in order", () =>
    withServer((port, received) =>
      Effect.gen(function*() {
        // 3 MiB of 100-byte chunks (one per row, say) with a 200 KiB chunk among them
        const chunks: Array<Buffer> = []
        for (let i = 0; i < 30_000; i++) chunks.push(filled(100, 0x30 + (i % 10)))
        const large = filled(200 * 1024, 0x7a)
        chunks.splice(15_000, 0, large)
        const body: LoadBody = { chunks, byteLength: chunks.reduce((n, c) => n + c.byteLength, 0) }
        const [response, writes] = yield* recordingWrites(port, put(port, body))
        assert.strictEqual(response.status, 200)
        assert.isTrue(received().equals(Buffer.concat(chunks)), "the server got the body's bytes, in order")
        const sent = writes.flat()
        assert.isTrue(sent.includes(large), "the large chunk went as it is")
        assert.isFalse(sent.includes(chunks[0]!), "a 100-byte chunk went in a coalesced write")
      })
    ))
})
