/**
 * Storage for the StarRocks emulator in a MySQL-protocol database (MariaDB, MySQL) through @effect/sql-mysql2.
 *
 * Every StarRocks database `db` is the MySQL database of the same name (created when missing) and every table
 * `db.t` is the real table `db`.`t`, so `SELECT * FROM db.t` shows the loaded rows and `information_schema.COLUMNS`
 * describes the table. The database named in the URL also holds the emulator's metadata (tables prefixed `__sr_`:
 * the StarRocks definitions of the tables it created, the FE transaction records and the staged rows of PREPARED
 * transactions), so an emulator restarted on the same URL keeps committed rows, labels and PREPARED transactions.
 * Tables that already exist in the server are served as they are (columns and primary key from
 * information_schema). See `docs/testkit.md`.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/mysqlStorage.js"
import type { Storage, StorageError } from "./internal/storage.js"

/**
 * Opens the storage on `mysql://user[:password]@host:port/database` (the pool lives in the scope); pass it to
 * `StarRocksEmulator.make({ storage })` / `StarRocksEmulator.layer({ storage })`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MysqlStorage, StarRocksEmulator } from "@effect-starrocks/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const storage = yield* MysqlStorage.make("mysql://root@127.0.0.1:3306/test")
 *   const emulator = yield* StarRocksEmulator.make({ storage })
 *   return emulator.fe
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (url: string) => Effect.Effect<Storage, StorageError, Scope.Scope> = internal.make
