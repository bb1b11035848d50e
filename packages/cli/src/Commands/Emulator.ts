/**
 * `effect-starrocks emulator --tables tables.json [--fes N] [--bes N] [--storage memory|mysql://user@host:port/db]`
 *
 * Starts the StarRocks emulator, prints one JSON line `{"fe":[...],"bes":[...],"admin":"http://127.0.0.1:PORT"}`
 * on stdout when it is ready, and runs until SIGTERM / SIGINT (then closes the servers and exits 0).
 *
 * @since 0.1.0
 */
import * as MysqlStorage from "@effect-starrocks/testkit/MysqlStorage"
import * as StarRocksEmulator from "@effect-starrocks/testkit/StarRocksEmulator"
import * as TablesFile from "@effect-starrocks/testkit/TablesFile"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

const tables = Options.file("tables", { exists: "yes" }).pipe(
  Options.withDescription("the tables file: {\"users\":{...},\"tables\":[{database,table,model,key,columns}]}"),
  Options.optional
)

const fes = Options.integer("fes").pipe(
  Options.withDescription("number of FE nodes (HTTP servers on 127.0.0.1)"),
  Options.withDefault(1)
)

const bes = Options.integer("bes").pipe(
  Options.withDescription("number of BE nodes (HTTP servers on 127.0.0.2, 127.0.0.3, ...)"),
  Options.withDefault(1)
)

const storage = Options.text("storage").pipe(
  Options.withDescription(
    "where tables, rows and transactions live: memory (default) or mysql://user[:password]@host:port/database"
  ),
  Options.withDefault("memory")
)

/** The `--storage` value: `memory` or a MySQL URL. */
export const parseStorage = (value: string): { readonly _tag: "Memory" } | { readonly _tag: "Mysql"; url: string } =>
  value === "memory" ? { _tag: "Memory" } : { _tag: "Mysql", url: value }

const fail = (message: string) =>
  Effect.zipRight(Console.error(`effect-starrocks emulator: ${message}`), Effect.fail(message))

/**
 * @since 0.1.0
 * @category commands
 */
export const emulator = Command.make(
  "emulator",
  { tables, fes, bes, storage },
  (options) =>
    Effect.gen(function*() {
      if (options.fes < 1 || options.bes < 0) return yield* fail("--fes must be at least 1 and --bes at least 0")
      if (options.storage !== "memory" && !/^(mysql|mariadb):\/\//.test(options.storage)) {
        return yield* fail(`--storage must be memory or mysql://user@host:port/database, got ${options.storage}`)
      }
      const file = Option.isSome(options.tables)
        ? yield* TablesFile.readFile(options.tables.value).pipe(Effect.catchAll((e) => fail(e.message)))
        : {}
      const store = parseStorage(options.storage)
      const backend = store._tag === "Mysql"
        ? yield* MysqlStorage.make(store.url).pipe(Effect.catchAll((e) => fail(e.message)))
        : undefined
      const emu = yield* StarRocksEmulator.make({
        ...(file.users !== undefined ? { users: file.users } : {}),
        ...(file.tables !== undefined ? { tables: file.tables } : {}),
        fes: options.fes,
        bes: options.bes,
        ...(backend !== undefined ? { storage: backend } : {}),
        admin: true
      }).pipe(Effect.catchAll((e) => fail(e instanceof Error ? e.message : String(e))))
      yield* Console.log(JSON.stringify({ fe: emu.fe, bes: emu.bes, admin: emu.admin }))
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(Command.withDescription("run the StarRocks HTTP emulator until SIGTERM"))
