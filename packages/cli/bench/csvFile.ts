/**
 * The loader's benchmark files and figures, shared by packages/cli/bench/loader.ts, phases.ts and timeline.ts.
 */
import * as Fs from "node:fs"

const MiB = 1024 ** 2

/**
 * Writes about `bytes` of CSV rows (`id,name,amount,created,note`, 70-100 bytes each) to `file`, each row whole;
 * a 4 MiB block of rows written again and again with its ids moved on, so that generating 4 GB takes seconds.
 * Returns the bytes written (whole blocks: at most `bytes`).
 */
export const generate = (file: string, bytes: number): number => {
  const rows: Array<string> = []
  let size = 0
  for (let i = 0; size < 4 * MiB; i++) {
    const row =
      `${i},name-${(i * 7919) % 100_000},${(i % 10_000) / 100},2024-01-${String(1 + (i % 28)).padStart(2, "0")} ` +
      `12:${String(i % 60).padStart(2, "0")}:00,${"note ".repeat(1 + (i % 6))}\n`
    rows.push(row)
    size += row.length
  }
  const block = Buffer.from(rows.join(""))
  const fd = Fs.openSync(file, "w")
  let written = 0
  try {
    while (written + block.length <= bytes) {
      Fs.writeSync(fd, block)
      written += block.length
    }
    // on disk before anything is measured: else the kernel writes the dirty pages back about 30 s later
    // (vm.dirty_expire_centisecs), in the middle of the runs, and whichever runs it falls in read slower
    Fs.fsyncSync(fd)
  } finally {
    Fs.closeSync(fd)
  }
  return written
}

/** The median of `xs` (the mean of the middle two for an even count). */
export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Runs a benchmark's `main`, then ends the process: 0, or 1 with the error printed. */
export const runMain = (main: () => Promise<void>): void => {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e)
      process.exit(1)
    }
  )
}
