/**
 * The startup check: before the first row of a table, one `GET /api/{db}/{table}/_schema` on an FE tells apart the
 * ways a sink cannot start (no FE answers, the credentials are refused, the database or the table does not exist),
 * and the table's settings are checked against the server version when it is known (`current_version()` over
 * `jdbc-url`, else `sink.server-version`).
 *
 * Why `_schema` (`rest/TableSchemaAction.java`): `RestBaseAction.execute` checks the password before anything else
 * (HTTP 401, `Access denied for user@host`); the action then looks the database up (404,
 * `{"status":404,"exception":"Database [d] does not exists"}`) and the table (404, `Table [t] does not exists`),
 * refuses a table that is not an OLAP table (403), and answers 200 with the columns otherwise. `get_load_state` of
 * an unknown label would tell the first three apart but not the table, and a Stream Load cannot be asked without
 * loading. The action also checks the SELECT privilege: a user that may load but not select gets a 401 whose
 * message names the privilege; the credentials did work then, the table is left for the first load to find, and a
 * warning says so.
 *
 * The sinks run it through `guard`, which checks every table the routing knows at start, before the first row, and
 * each table that appears later (`byRoute`) when it first appears: while its rows are added, before its first load.
 *
 * @internal
 */
import type { Scope } from "effect"
import { Deferred, Duration, Effect, FiberId, Option } from "effect"
import type * as StarRocksConfig from "../StarRocksConfig.js"
import { StartupCheckError, UnsupportedByServerError } from "../StarRocksError.js"
import * as TableSchema from "../TableSchema.js"
import type { Connection } from "./client/connection.js"
import type { Target } from "./client/model.js"
import type { Router } from "./sink/batcher.js"
import type { Lane, TableSettings } from "./sink/lane.js"

// ---------------------------------------------------------------------------------------------------------------
// the table check
// ---------------------------------------------------------------------------------------------------------------

const textOf = (body: string): string => {
  try {
    const json = JSON.parse(body) as Record<string, unknown>
    for (const k of ["exception", "message", "msg", "Message"]) {
      const v = json[k]
      if (typeof v === "string" && v !== "") return v
    }
  } catch {
    // not JSON: the text itself, shortened
  }
  const text = body.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim()
  return text.length > 200 ? text.slice(0, 200) + "…" : text
}

const originOf = (url: string): string => {
  try {
    return new URL(url).origin
  } catch {
    return url
  }
}

/** A JSON body that says it failed (`"status":"FAILED"`, a status code other than 200, an `exception`). */
const failedBody = (body: string): boolean => {
  try {
    const json = JSON.parse(body) as Record<string, unknown>
    const status = json["status"] ?? json["Status"]
    return typeof json["exception"] === "string" ||
      (typeof status === "string" && /^fail/i.test(status)) ||
      (typeof status === "number" && status !== 200)
  } catch {
    return false
  }
}

/**
 * One `GET /api/{db}/{table}/_schema` on the first FE that answers (failover over the load URLs, with the
 * connection's connect and socket deadlines; no retry beyond trying each FE). Fails with a `StartupCheckError` per
 * failure; never names the password.
 * @internal
 */
export const checkTable = (connection: Connection, target: Target): Effect.Effect<void, StartupCheckError> => {
  const fail = (reason: StartupCheckError["reason"], fe: string, detail: string, code?: string) =>
    new StartupCheckError({
      reason,
      fe,
      database: target.database,
      table: target.table,
      detail,
      ...(code !== undefined ? { code } : {})
    })
  // a silent FE is given the connect timeout to answer (or the socket timeout, when shorter), not the 60 s of a
  // control request: the check is one small GET
  const deadline = Math.min(connection.controlSocketTimeout, Duration.toMillis(connection.config.connectTimeout))
  const path = `/api/${encodeURIComponent(target.database)}/${encodeURIComponent(target.table)}/_schema`
  return connection.send(
    connection.fes,
    (base) => ({
      method: "GET",
      url: new URL(path, base),
      headers: { Authorization: connection.authorization() },
      expectContinue: false
    }),
    deadline,
    64 * 1024
  ).pipe(
    Effect.mapError((e) =>
      e._tag === "TransportError"
        ? fail(
          "Unreachable",
          e.url === "" ? connection.fes.endpoints.map((x) => x.origin).join(", ") : originOf(e.url),
          `${e.code ?? e.phase ?? "transport"}: ${e.reason}`,
          e.code
        )
        : fail("Unexpected", originOf(e.url), `redirect refused: ${e.reason}`)
    ),
    Effect.flatMap((response) => {
      const fe = response.hops[0] ?? originOf(response.url)
      const detail = textOf(response.body)
      // a missing object is named in the body (404 in TableSchemaAction; a 200 with a failure body is read the same)
      if (/^Database \[.*\] does not exists?/.test(detail)) return Effect.fail(fail("NoSuchDatabase", fe, detail))
      if (/^Table \[.*\] does not exists?/.test(detail)) return Effect.fail(fail("NoSuchTable", fe, detail))
      if (response.status === 200) {
        return failedBody(response.body)
          ? Effect.fail(fail("Unexpected", fe, `HTTP 200 with a failure: ${detail}`))
          : Effect.void
      }
      if (response.status === 401 || (response.status === 403 && /access denied/i.test(detail))) {
        // the password was right and the SELECT privilege is missing: the table is left to the first load
        if (/privilege/i.test(detail)) {
          return Effect.logWarning(
            `startup check: ${target.database}.${target.table} cannot be looked up (the user lacks SELECT on it); ` +
              "the first load will tell whether it exists"
          ).pipe(Effect.annotateLogs({ fe, detail }))
        }
        return Effect.fail(fail("Unauthorized", fe, detail))
      }
      if (response.status === 403) return Effect.fail(fail("NotLoadable", fe, detail))
      return Effect.fail(
        fail(
          "Unexpected",
          fe,
          `HTTP ${response.status}${
            detail !== "" ? `: ${detail}` : ""
          } (is ${fe} an FE's HTTP port, as load-url needs?)`
        )
      )
    })
  )
}

// ---------------------------------------------------------------------------------------------------------------
// server versions
// ---------------------------------------------------------------------------------------------------------------

/**
 * What needs a newer server than the oldest StarRocks with Stream Load, and since when. From StarRocks' docs and
 * code (docs/operations.md, "Server versions", lists the sources).
 * @internal
 */
export const since = {
  transactions: "2.4.0",
  mergeCondition: "2.5.0",
  partialUpdateColumnMode: "3.1.0",
  logRejectedRecordNum: "3.1.0",
  compression: "3.2.7",
  mergeCommit: "3.4.0",
  preparedTimeout: "3.5.4"
} as const

interface Need {
  readonly feature: string
  readonly setting: string
  readonly requires: string
  readonly table?: string | undefined
}

/** The sink-wide needs of a config used with a sink. @internal */
export const configNeeds = (
  config: StarRocksConfig.StarRocksConfig,
  semantic: "at-least-once" | "exactly-once"
): ReadonlyArray<Need> => {
  const needs: Array<Need> = []
  if (semantic === "exactly-once" && config.version === "V2") {
    needs.push({ feature: "the transaction interface", setting: "sink.version=V2", requires: since.transactions })
  }
  if (semantic === "at-least-once" && config.useTransactionStreamLoad) {
    needs.push({
      feature: "the transaction interface",
      setting: "sink.at-least-once.use-transaction-stream-load",
      requires: since.transactions
    })
  }
  if (semantic === "exactly-once" && config.properties["prepared_timeout"] !== undefined) {
    needs.push({
      feature: "prepared_timeout",
      setting: "sink.properties.prepared_timeout",
      requires: since.preparedTimeout
    })
  }
  return needs
}

/** The needs of one table's headers and options. @internal */
export const tableNeeds = (settings: TableSettings): ReadonlyArray<Need> => {
  const table = `${settings.database}.${settings.table}`
  const p = settings.properties
  const needs: Array<Need> = []
  const header = (name: string) => `sink.properties.${name}`
  if (settings.mergeCondition !== undefined) {
    needs.push({
      feature: "conditional updates",
      setting: p["merge_condition"] !== undefined ? header("merge_condition") : "mergeCondition",
      requires: since.mergeCondition,
      table
    })
  }
  if (settings.partialUpdateMode === "column") {
    needs.push({
      feature: "partial updates in column mode",
      setting: p["partial_update_mode"] !== undefined ? header("partial_update_mode") : "partialUpdateMode",
      requires: since.partialUpdateColumnMode,
      table
    })
  }
  if (p["compression"] !== undefined) {
    needs.push({ feature: "compressed loads", setting: header("compression"), requires: since.compression, table })
  }
  if ((p["enable_merge_commit"] ?? "").toLowerCase() === "true") {
    needs.push({ feature: "merge commit", setting: header("enable_merge_commit"), requires: since.mergeCommit, table })
  }
  if (p["log_rejected_record_num"] !== undefined) {
    needs.push({
      feature: "rejected-record logging",
      setting: header("log_rejected_record_num"),
      requires: since.logRejectedRecordNum,
      table
    })
  }
  return needs
}

/** Whether `version` is older than `requires` (false when either does not parse). @internal */
export const below = (version: string, requires: string): boolean => {
  const v = TableSchema.parseVersion(version)
  const r = TableSchema.parseVersion(requires)
  if (Option.isNone(v) || Option.isNone(r)) return false
  const a = v.value
  const b = r.value
  return a.major !== b.major ? a.major < b.major : a.minor !== b.minor ? a.minor < b.minor : a.patch < b.patch
}

/** `major.minor.patch` of a version string (`3.3.5 6d2bd1e` → `3.3.5`), or the string. */
const shortVersion = (version: string): string =>
  Option.match(TableSchema.parseVersion(version), {
    onNone: () => version.trim(),
    onSome: (v) => `${v.major}.${v.minor}.${v.patch}`
  })

/**
 * The first need the server version does not meet, as an `UnsupportedByServerError`; nothing when the version is
 * unknown or unparsable (then the server itself answers the first load).
 * @internal
 */
export const checkVersion = (
  version: string | undefined,
  needs: ReadonlyArray<Need>
): Effect.Effect<void, UnsupportedByServerError> => {
  if (version === undefined) return Effect.void
  for (const need of needs) {
    if (below(version, need.requires)) {
      return Effect.fail(
        new UnsupportedByServerError({
          feature: need.feature,
          setting: need.setting,
          requires: need.requires,
          serverVersion: shortVersion(version),
          ...(need.table !== undefined ? { table: need.table } : {})
        })
      )
    }
  }
  return Effect.void
}

// ---------------------------------------------------------------------------------------------------------------
// the guard of a sink's router
// ---------------------------------------------------------------------------------------------------------------

/** @internal */
export interface GuardOptions {
  readonly config: StarRocksConfig.StarRocksConfig
  readonly semantic: "at-least-once" | "exactly-once"
  /** The client's table check (`LoadClient.checkTable`); a client without one (a test double) checks nothing. */
  readonly checkTable: ((target: Target) => Effect.Effect<void, StartupCheckError>) | undefined
}

/** Whether the startup check is on (a config built by hand without the field: on). @internal */
export const enabled = (config: StarRocksConfig.StarRocksConfig): boolean => config.startupCheck !== false

/**
 * One table's request (`check`: the client's table check, absent when the check is off or the client has none).
 * @internal
 */
export const lookUp = (
  check: GuardOptions["checkTable"],
  settings: TableSettings
): Effect.Effect<void, StartupCheckError> =>
  check === undefined ? Effect.void : check({ database: settings.database, table: settings.table })

/** What a table's check fails with. @internal */
export type CheckError = StartupCheckError | UnsupportedByServerError

/**
 * A guarded router: the router's lanes, each checked, and `ready`, which a sink runs before it hands a lane's sealed
 * batch on (its first load, or its first transaction).
 * @internal
 */
export interface Guarded<E, R> extends Router<E | CheckError, R> {
  /**
   * Waits for the check of `lane` when it is still running; fails with the first check that failed, of any table
   * (so that a table that does not exist fails the sink at the next seal of any table, not only at its own).
   */
  readonly ready: (lane: Lane) => Effect.Effect<void, CheckError>
}

/**
 * Checks the sink-wide settings against the config's server version, every lane the router has now (table check,
 * then its settings against its version: `jdbc-url`'s, else the config's; the tables' requests at once, at most
 * `concurrency` of them), and wraps `create` so that a lane that appears later is checked too: its settings against
 * the version before its first row is added, its table by a request that runs while its rows are added, in the
 * background (within the sink's scope), and that `ready` waits for before the lane's first batch goes on. A table
 * that appears while the stream runs thus costs the row loop no round trip, and no load of a table goes before its
 * check passed. With `sink.startup-check` false only the versions are checked (they cost no request).
 * @internal
 */
export const guard = <E, R>(
  router: Router<E, R>,
  options: GuardOptions
): Effect.Effect<Guarded<E, R>, CheckError, Scope.Scope> =>
  Effect.gen(function*() {
    const configVersion = Option.getOrUndefined(options.config.serverVersion)
    yield* checkVersion(configVersion, configNeeds(options.config, options.semantic))
    const check = enabled(options.config) ? options.checkTable : undefined
    const versionOf = (lane: Lane) => checkVersion(lane.serverVersion ?? configVersion, tableNeeds(lane.settings))
    const tableOf = (lane: Lane) => lookUp(check, lane.settings)
    /** Lanes whose checks passed, and those whose table request is still running. */
    const checked = new Set<string>()
    const running = new Map<string, Deferred.Deferred<void, CheckError>>()
    let failure: CheckError | undefined
    yield* Effect.forEach(
      Array.from(router.lanes()),
      (lane) =>
        Effect.zipRight(tableOf(lane), versionOf(lane)).pipe(
          Effect.tap(() => Effect.sync(() => checked.add(lane.key)))
        ),
      { concurrency: STARTUP_CONCURRENCY, discard: true }
    )
    const scope = yield* Effect.scope
    const started = (lane: Lane): Effect.Effect<void, CheckError> =>
      Effect.suspend(() => {
        if (checked.has(lane.key) || running.has(lane.key)) return Effect.void
        if (check === undefined) return Effect.tap(versionOf(lane), () => Effect.sync(() => checked.add(lane.key)))
        const done = Deferred.unsafeMake<void, CheckError>(FiberId.none)
        running.set(lane.key, done)
        return versionOf(lane).pipe(
          Effect.zipRight(
            tableOf(lane).pipe(
              Effect.tapBoth({
                onFailure: (e) => Effect.sync(() => failure ??= e),
                onSuccess: () =>
                  Effect.sync(() => {
                    checked.add(lane.key)
                    running.delete(lane.key)
                  })
              }),
              Effect.intoDeferred(done),
              Effect.forkIn(scope)
            )
          ),
          Effect.asVoid
        )
      })
    return {
      lane: router.lane,
      create: (row, rowIndex) => Effect.tap(router.create(row, rowIndex), started),
      lanes: router.lanes,
      ready: (lane) => {
        if (failure !== undefined) return Effect.fail(failure)
        if (checked.has(lane.key)) return Effect.void
        const done = running.get(lane.key)
        return done === undefined ? Effect.void : Deferred.await(done)
      }
    }
  })

/** How many tables known at start are checked at once. */
const STARTUP_CONCURRENCY = 8
