/**
 * The young generation held for a long load (packages/cli/src/internal/load/youngGeneration.ts): V8 grows its
 * semi-spaces with the bytes that survive scavenges over time; once held, they keep their size.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import { flag, hold } from "../src/internal/load/youngGeneration.js"

const here = Path.dirname(Url.fileURLToPath(import.meta.url))

/**
 * A process that makes 3 million small objects and keeps the last 20,000 at any time (so that some survive each
 * scavenge, as a load's batches in flight do), after `hold()` or not: its young generation's size at start and end.
 */
const youngGeneration = (held: boolean): { readonly start: number; readonly end: number } => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sr-young-"))
  try {
    const script = Path.join(dir, "run.ts")
    Fs.writeFileSync(
      script,
      `import * as V8 from "node:v8"
import { hold } from ${JSON.stringify(Path.join(here, "../src/internal/load/youngGeneration.ts"))}
const size = () => V8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space")!.space_size
const start = size()
if (${held}) hold()
let kept: Array<{ readonly i: number; readonly s: string }> = []
for (let i = 0; i < 3_000_000; i++) {
  kept.push({ i, s: "x" + i })
  if (kept.length > 20_000) kept = []
}
console.log(JSON.stringify({ start, end: size() }))
`
    )
    const out = execFileSync(process.execPath, ["--import", "tsx", script], { encoding: "utf8" })
    return JSON.parse(out.trim().split("\n").pop()!)
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

describe("the young generation of a long load", () => {
  it("grows with the survivors of a long run, and keeps its size once held", () => {
    const free = youngGeneration(false)
    const held = youngGeneration(true)
    assert.strictEqual(held.start, free.start)
    // without it, V8 grows the semi-spaces several times (to 32 MiB on node 20 in this run)
    assert.isAtLeast(free.end, 8 * free.start)
    // held: at most twice its size at start (V8 took one step, 1 to 2 MiB, in this run)
    assert.isAtMost(held.end, 2 * held.start)
  }, 60_000)

  it("sets V8's flag once, whatever the number of calls", () => {
    const set: Array<string> = []
    hold((f) => set.push(f))
    hold((f) => set.push(f))
    assert.deepStrictEqual(set, [flag])
    assert.strictEqual(flag, "--semi-space-growth-factor=1")
  })
})
