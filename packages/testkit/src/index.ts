/**
 * A StarRocks-compatible HTTP emulator for tests.
 *
 * @since 1.0.0
 */
export * as StarRocksEmulator from "./StarRocksEmulator.js"

/**
 * Storage for the emulator in a MySQL-protocol database.
 *
 * @since 0.1.0
 */
export * as MysqlStorage from "./MysqlStorage.js"

/**
 * The reference rows of the benchmark and the demo.
 *
 * @since 0.1.0
 */
export * as ReferenceRows from "./ReferenceRows.js"

/**
 * The emulator's tables file.
 *
 * @since 0.1.0
 */
export * as TablesFile from "./TablesFile.js"

/**
 * The emulator's version knobs and what each StarRocks version sets them to.
 *
 * @since 0.1.0
 */
export * as StarRocksVersion from "./StarRocksVersion.js"
