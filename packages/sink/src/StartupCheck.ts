/**
 * The startup check on its own, for loaders that call the `LoadClient` themselves (the CLI's `load`):
 * `StarRocksSink.startupCheck` is this function. It lives in a module of its own so that such a loader does not
 * evaluate the sink's modules (its exactly-once, dead-letter, checkpointer and label-store schemas) to run it: a
 * `load` command evaluates what it imports at every start (docs/benchmark.md, session 13).
 *
 * @since 0.3.0
 */
import { Effect, Option } from "effect"
import * as InternalRouting from "./internal/sink/routing.js"
import * as Startup from "./internal/startup.js"
import * as LoadClient from "./LoadClient.js"
import * as StarRocksConfig from "./StarRocksConfig.js"
import type { StartupCheckError, UnsupportedByServerError } from "./StarRocksError.js"

/**
 * The startup check, as the sinks run it before their first row (they need no call to it): the config's settings
 * against the server version when it is known (`sink.server-version`: `UnsupportedByServerError`), and, unless
 * `sink.startup-check` is false, one `GET /api/{db}/{table}/_schema` per table (default: the config's table)
 * through the `LoadClient`, which tells whether an FE answers, the credentials work and the table exists
 * (`StartupCheckError`).
 *
 * @since 0.3.0
 * @category constructors
 */
export const startupCheck = (options?: {
  readonly semantic?: "at-least-once" | "exactly-once" | undefined
  readonly tables?: ReadonlyArray<LoadClient.Target> | undefined
}): Effect.Effect<
  void,
  StartupCheckError | UnsupportedByServerError,
  StarRocksConfig.StarRocksConfig | LoadClient.LoadClient
> =>
  Effect.gen(function*() {
    const config = yield* StarRocksConfig.StarRocksConfig
    const client = yield* LoadClient.LoadClient
    const semantic = options?.semantic ?? config.semantic
    const version = Option.getOrUndefined(config.serverVersion)
    yield* Startup.checkVersion(version, Startup.configNeeds(config, semantic))
    const check = Startup.enabled(config) ? client.checkTable : undefined
    for (const target of options?.tables ?? [{ database: config.database, table: config.table }]) {
      const settings = InternalRouting.settingsOf(config, target)
      yield* Startup.lookUp(check, settings)
      yield* Startup.checkVersion(version, Startup.tableNeeds(settings))
    }
  })
