/**
 * File-system helpers shared by the file-system `Checkpointer` and `LabelStore`: atomic, durable replacement of a
 * file (temporary file in the same directory, fsync, rename, fsync of the directory) and durable appends.
 *
 * @internal
 */
import type { PlatformError } from "@effect/platform/Error"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import { Effect, Option } from "effect"
import * as Crypto from "node:crypto"

const encoder = new TextEncoder()

/** @internal */
export const errorMessage = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "message" in error && typeof error.message === "string") {
    return error.message
  }
  return String(error)
}

/** The `code` of the Node error behind a `PlatformError` (`ENOENT`, `EISDIR`, …), when there is one. */
const errnoCode = (error: PlatformError): string | undefined => {
  const cause = "cause" in error ? (error.cause as unknown) : undefined
  if (typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string") {
    return cause.code
  }
  return undefined
}

/** Errors by which a platform refuses to fsync a directory (Windows, some network file systems). */
const DIRECTORY_SYNC_REFUSED = new Set(["EISDIR", "EINVAL", "EPERM", "ENOTSUP", "EOPNOTSUPP", "EBADF"])

/**
 * Fsyncs a directory so that a rename or a file creation in it survives a power loss. Best effort: platforms that
 * refuse to open or sync a directory are ignored; any other error fails.
 *
 * @internal
 */
export const syncDirectory = (fs: FileSystem.FileSystem, directory: string): Effect.Effect<void, PlatformError> =>
  Effect.scoped(Effect.flatMap(fs.open(directory, { flag: "r" }), (file) => file.sync)).pipe(
    Effect.catchIf(
      (error) => {
        const code = errnoCode(error)
        return code !== undefined && DIRECTORY_SYNC_REFUSED.has(code)
      },
      () => Effect.void
    )
  )

/** @internal */
export const tempSuffix = ".tmp"

/**
 * Replaces `path` atomically and durably with `content`: writes a temporary file next to it (same directory, so the
 * rename stays on one file system), fsyncs it, renames it over `path`, then fsyncs the directory. A reader sees the
 * old content or the new, never a mix; after success the new content survives a crash or power loss.
 *
 * @internal
 */
export const writeFileAtomic = (
  fs: FileSystem.FileSystem,
  pathService: Path.Path,
  path: string,
  content: string
): Effect.Effect<void, PlatformError> =>
  Effect.suspend(() => {
    const directory = pathService.dirname(path)
    const temp = pathService.join(
      directory,
      `.${pathService.basename(path)}.${Crypto.randomBytes(6).toString("hex")}${tempSuffix}`
    )
    const write = Effect.scoped(
      Effect.gen(function*() {
        const file = yield* fs.open(temp, { flag: "wx", mode: 0o644 })
        // `writeAll` of nothing fails with WriteZero.
        if (content !== "") yield* file.writeAll(encoder.encode(content))
        yield* file.sync
      })
    )
    return write.pipe(
      Effect.zipRight(fs.rename(temp, path)),
      Effect.onError(() => Effect.ignore(fs.remove(temp))),
      Effect.zipRight(syncDirectory(fs, directory))
    )
  })

/**
 * Creates `path` (failing when it exists), writes `content` and fsyncs it: a temporary file to link or rename.
 *
 * @internal
 */
export const writeNewFileSynced = (
  fs: FileSystem.FileSystem,
  path: string,
  content: string
): Effect.Effect<void, PlatformError> => writeSynced(fs, path, content, "wx")

/**
 * Appends `content` to `path` (created when missing) and fsyncs the file before returning.
 *
 * @internal
 */
export const appendDurable = (
  fs: FileSystem.FileSystem,
  path: string,
  content: string
): Effect.Effect<void, PlatformError> => writeSynced(fs, path, content, "a")

/** Opens `path` with `flag`, writes `content` and fsyncs the file before closing it. */
const writeSynced = (
  fs: FileSystem.FileSystem,
  path: string,
  content: string,
  flag: "wx" | "a"
): Effect.Effect<void, PlatformError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const file = yield* fs.open(path, { flag, mode: 0o644 })
      if (content !== "") yield* file.writeAll(encoder.encode(content))
      yield* file.sync
    })
  )

/**
 * Reads a file as UTF-8; a missing file is `None`.
 *
 * @internal
 */
export const readFileOption = (
  fs: FileSystem.FileSystem,
  path: string
): Effect.Effect<Option.Option<string>, PlatformError> =>
  fs.readFileString(path, "utf8").pipe(
    Effect.map(Option.some),
    Effect.catchIf((error) => error._tag === "SystemError" && error.reason === "NotFound", () => Effect.succeedNone)
  )

/**
 * Removes the temporary files (`.<name>.<random>.tmp`) that a crash between write and rename left in `directory`,
 * when they are older than `olderThanMs` (so that a concurrent writer's file in flight is never touched).
 *
 * @internal
 */
export const removeStaleTemporaries = (
  fs: FileSystem.FileSystem,
  pathService: Path.Path,
  directory: string,
  olderThanMs: number
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const names = yield* fs.readDirectory(directory)
    const now = Date.now()
    for (const name of names) {
      if (!name.startsWith(".") || !name.endsWith(tempSuffix)) continue
      const path = pathService.join(directory, name)
      const info = yield* fs.stat(path)
      const mtime = Option.getOrElse(Option.map(info.mtime, (d) => d.getTime()), () => now)
      if (now - mtime > olderThanMs) yield* fs.remove(path)
    }
  }).pipe(Effect.ignore)

/**
 * A file name derived from an arbitrary key, safe on every file system (also case-insensitive ones): the key's
 * UTF-8 bytes in hex, or their SHA-256 when that would be too long for a file name.
 *
 * @internal
 */
export const fileNameForKey = (prefix: string, key: string, extension: string): string => {
  const hex = Buffer.from(key, "utf8").toString("hex")
  return hex.length <= 180
    ? `${prefix}-${hex}${extension}`
    : `${prefix}-sha256-${Crypto.createHash("sha256").update(key, "utf8").digest("hex")}${extension}`
}
