/**
 * A LoadClient that records every load (its database, table, label, headers and rows as lines) and answers that
 * every row landed, with the sink's layer around it: for tests of what a stream of rows becomes, without a server.
 */
import { Effect, Layer, Redacted, Ref } from "effect"
import { LabelStore, LoadClient, StarRocksConfig } from "../src/index.js"
import { loaded } from "./loadResults.js"

export interface Call {
  readonly database: string
  readonly table: string
  readonly label: string
  readonly headers: Readonly<Record<string, string>>
  readonly lines: ReadonlyArray<string>
}

export const recordingClient = Effect.gen(function*() {
  const calls = yield* Ref.make<Array<Call>>([])
  const client = LoadClient.fromPartial({
    loadBatch: (request) =>
      Effect.gen(function*() {
        const body = Buffer.concat(request.body.chunks.map((c) => Buffer.from(c))).toString("utf8")
        const lines = request.headers["format"] === "json"
          ? (JSON.parse(body) as Array<unknown>).map((o) => JSON.stringify(o))
          : body.split("\n").filter((l) => l.length > 0)
        yield* Ref.update(calls, (cs) => [...cs, {
          database: request.database,
          table: request.table,
          label: request.label,
          headers: request.headers,
          lines
        }])
        return loaded(request, lines.length)
      }),
    getLoadState: () => Effect.succeed("VISIBLE" as const)
  })
  return { client, calls }
})

export const config = (overrides: Partial<StarRocksConfig.Options> = {}) =>
  StarRocksConfig.make({
    loadUrl: "127.0.0.1:1",
    database: "db",
    table: "t",
    username: "root",
    password: Redacted.make(""),
    maxRows: 1_000,
    maxBytes: 1_000_000,
    flushInterval: "10 minutes",
    allowSmallBuffers: true,
    ...overrides
  })

export const layerWith = (c: StarRocksConfig.StarRocksConfig, client: LoadClient.LoadClient) =>
  Layer.mergeAll(
    Layer.succeed(StarRocksConfig.StarRocksConfig, c),
    Layer.succeed(LoadClient.LoadClient, client),
    LabelStore.layerMemory
  )
