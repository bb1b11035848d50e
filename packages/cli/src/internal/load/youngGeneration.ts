/**
 * The young generation's size, held for a long load (issue 11: peak RSS flat in the file's size).
 *
 * V8 grows its young generation (the semi-spaces new objects are made in) each time the bytes that survived its
 * scavenges since the last growth exceed its size, up to 16 MiB a semi-space: in a long process that is a matter of
 * time, not of what the process keeps. A load's batches are garbage once they landed, whatever the file's size, but
 * the young generation had grown from 2 MiB to 8 MiB by the end of a 4 GiB load, against 5 MiB at 1 GiB, and the
 * peak RSS with it (docs/cli.md, "Memory flat in the file's size"). From the first large batch on, the young
 * generation keeps the size it has (`--semi-space-growth-factor=1`: each growth is to 1 × the current size).
 *
 * Set then, not at start: a one-row load does not load node:v8 (docs/cli.md, "What a start loads"), and V8 rejects a
 * code cache that was made, or is read, under other flags; the bundle's cache is read at start and made by a run on
 * four rows (packages/cli/scripts/bundle.ts, `train`), which never gets here. The row counter sets a flag the same
 * way (count.ts).
 */
import * as Module from "node:module"
import type * as V8 from "node:v8"

/** The flag: the young generation grows by a factor of 1, that is, not at all. */
export const flag = "--semi-space-growth-factor=1"

let held = false

/**
 * Holds the young generation at its size for the rest of the process (once; later calls do nothing).
 * `setFlags` is V8's `setFlagsFromString` (a test passes its own).
 */
export const hold = (
  setFlags: (flags: string) => void = (flags) =>
    (Module.createRequire(import.meta.url)("node:v8") as typeof V8).setFlagsFromString(flags)
): void => {
  if (held) return
  held = true
  setFlags(flag)
}
