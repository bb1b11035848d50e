/**
 * `effect-starrocks labels list|abort|commit --prefix P --table db.t [--load-url host:port] [...]`
 *
 * Recovery tooling for the exactly-once sink's transactions (`Labels` of `@effect-starrocks/sink`): `list` shows
 * the labels under a prefix with their state (and an ABORTED one's reason); `abort` rolls back every lingering
 * (PREPARE/PREPARED) one for a fresh start, only with `--confirm` (without it, a dry run that prints what it would
 * roll back); `commit --label L` commits one prepared transaction. The labels are found from a checkpoint record
 * (`--checkpoint-file`, a file of `Checkpointer/FileSystem`: its prepared labels, and the ids after its next label
 * id) and by probing the ids from `--from` (default 0) until 8 unknown ones in a row. Connection flags and
 * `STARROCKS_*` variables as `load` reads them. Prints one line per label, or JSON lines with `--json`; a failure is
 * printed on stderr with exit code 1. docs/cli.md describes every flag.
 *
 * @since 0.3.0
 */
import * as Labels from "@effect-starrocks/sink/Labels"
import * as LoadClient from "@effect-starrocks/sink/LoadClient"
import * as StarRocksConfig from "@effect-starrocks/sink/StarRocksConfig"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Console, Effect, Option } from "effect"
import * as fs from "node:fs"
import { connectionFlags, connectionRecord, logsOnStderr, optionError, set } from "./Load.js"

const optional = (text: string) => <A>(o: Options.Options<A>) => o.pipe(Options.withDescription(text), Options.optional)

const flags = {
  ...connectionFlags,
  database: Options.text("database").pipe(optional("the database, when --table names only the table")),
  prefix: Options.text("prefix").pipe(optional("the label prefix (default: sink.label-prefix of the config)")),
  instance: Options.text("instance").pipe(optional("the sink instance (default: from the checkpoint, else 0)")),
  checkpointFile: Options.file("checkpoint-file", { exists: "yes" }).pipe(
    optional("the last checkpoint record (a file of Checkpointer/FileSystem): its labels, its next label ids")
  ),
  from: Options.integer("from").pipe(optional("the first label id probed without a checkpoint (default 0)")),
  json: Options.boolean("json").pipe(Options.withDescription("print one JSON object per label")),
  verbose: Options.boolean("verbose").pipe(Options.withDescription("log every request (info level) on stderr"))
}

type Flags = {
  readonly [K in keyof typeof flags]: (typeof flags)[K] extends Options.Options<infer A> ? A : never
}

/** The client, the scope and the config from the flags. */
const setup = (options: Flags) =>
  Effect.gen(function*() {
    const record = yield* connectionRecord({
      ...options,
      table: Option.filter(options.table, (t) => t.includes("."))
    })
    if (Option.isSome(options.table) && !options.table.value.includes(".")) {
      set(record, "table-name", options.table.value)
    }
    if (Option.isSome(options.database)) set(record, "database-name", options.database.value)
    if (Option.isSome(options.prefix)) set(record, "sink.label-prefix", options.prefix.value)
    const checkpoint = Option.isNone(options.checkpointFile) ? undefined : yield* Effect.try({
      try: () => fs.readFileSync(options.checkpointFile.pipe(Option.getOrElse(() => "")), "utf8"),
      catch: (e) => optionError("--checkpoint-file", `cannot be read: ${(e as Error).message}`)
    }).pipe(
      Effect.flatMap(Labels.decodeCheckpoint),
      Effect.mapError((e) => e._tag === "CheckpointerError" ? optionError("--checkpoint-file", e.reason) : e)
    )
    if (record["sink.label-prefix"] === undefined) {
      return yield* optionError(
        "--prefix",
        "is required (or sink.label-prefix in --properties / STARROCKS_LABEL_PREFIX)"
      )
    }
    const noTable = record["table-name"] === undefined
    if (noTable && checkpoint === undefined) {
      return yield* optionError("--table", "is required without --checkpoint-file (whose tables it would take)")
    }
    if (!noTable && record["database-name"] === undefined) {
      return yield* optionError("--database", "is required when --table names only the table")
    }
    // a checkpoint alone names its tables: the config only needs some table
    if (noTable) {
      record["table-name"] = "_"
      record["database-name"] ??= "_"
    }
    const config = yield* StarRocksConfig.fromProperties(record)
    const scope: Labels.Scope = {
      prefix: config.labelPrefix,
      tables: noTable ? [] : [{ database: config.database, table: config.table }],
      ...(Option.isSome(options.instance) ? { instance: options.instance.value } : {}),
      ...(checkpoint !== undefined ? { checkpoint } : {}),
      ...(Option.isSome(options.from) ? { from: options.from.value } : {})
    }
    return { config, scope }
  })

const line = (info: Labels.LabelInfo, json: boolean, extra: Record<string, unknown> = {}): string =>
  json
    ? JSON.stringify({ ...info, ...extra })
    : `${info.database}.${info.table}  ${info.label}  ${info.state}${
      info.reason !== undefined ? ` (${info.reason})` : ""
    }` +
      `  [${info.foundBy}]${Object.entries(extra).map(([k, v]) => `  ${k}: ${String(v)}`).join("")}`

const failed = (command: string) => (e: unknown) =>
  Console.error(`labels ${command}: ${e instanceof Error ? e.message : String(e)}`)

const list = Command.make("list", flags, (options) =>
  Effect.gen(function*() {
    const { config, scope } = yield* setup(options)
    const found = yield* Labels.list(scope).pipe(Effect.provide(LoadClient.layer(config)))
    for (const info of found) yield* Console.log(line(info, options.json))
    if (!options.json) {
      yield* Console.log(`${found.length} labels, ${found.filter(Labels.isLingering).length} lingering`)
    }
  }).pipe(Effect.tapError(failed("list")), logsOnStderr(options.verbose))).pipe(
    Command.withDescription("the labels under a prefix, with their state")
  )

const abort = Command.make(
  "abort",
  {
    ...flags,
    confirm: Options.boolean("confirm").pipe(
      Options.withDescription("roll back for real (without it: a dry run that prints what would be rolled back)")
    )
  },
  (options) =>
    Effect.gen(function*() {
      const { config, scope } = yield* setup(options)
      const result = yield* Labels.abort(scope, { dryRun: !options.confirm }).pipe(
        Effect.provide(LoadClient.layer(config))
      )
      const verb = options.confirm ? "rolled back" : "would roll back"
      for (const info of result.aborted) yield* Console.log(line(info, options.json, { action: verb }))
      for (const info of result.notAborted) {
        yield* Console.log(line(info, options.json, { action: "not rolled back", error: info.error }))
      }
      if (!options.json) {
        yield* Console.log(
          `${verb} ${result.aborted.length} lingering transactions` +
            (options.confirm ? "" : " (dry run: add --confirm to roll them back)") +
            (result.notAborted.length > 0
              ? `; ${result.notAborted.length} begun ones could not be (the FE aborts them at their timeout)`
              : "")
        )
      }
    }).pipe(Effect.tapError(failed("abort")), logsOnStderr(options.verbose))
).pipe(Command.withDescription("roll back every lingering transaction under a prefix (dry run without --confirm)"))

const commit = Command.make(
  "commit",
  { ...flags, label: Options.text("label").pipe(Options.withDescription("the label of the prepared transaction")) },
  (options) =>
    Effect.gen(function*() {
      const { config, scope } = yield* setup(options)
      const target = scope.tables[0]
      if (target === undefined) return yield* optionError("--table", "is required to commit a label")
      const state = yield* Labels.commit({ ...target, label: options.label }).pipe(
        Effect.provide(LoadClient.layer(config))
      )
      yield* Console.log(
        options.json
          ? JSON.stringify({ ...target, label: options.label, state })
          : `${target.database}.${target.table}  ${options.label}  ${state}`
      )
    }).pipe(Effect.tapError(failed("commit")), logsOnStderr(options.verbose))
).pipe(Command.withDescription("commit one prepared transaction by its label"))

/**
 * @since 0.3.0
 * @category commands
 */
export const labels = Command.make("labels").pipe(
  Command.withDescription("list, abort or commit the exactly-once sink's transactions under a label prefix"),
  Command.withSubcommands([list, abort, commit])
)
