/**
 * Deterministic fault injection: faults match requests by node and path, fire on the nth match, a number of
 * times, or with a probability drawn from a seeded PRNG.
 *
 * @internal
 */

export type FaultAction =
  | { readonly _tag: "delay"; readonly ms: number }
  | { readonly _tag: "close-before-response" }
  | { readonly _tag: "close-mid-body" }
  | { readonly _tag: "http-500" }
  | { readonly _tag: "fail"; readonly message: string }
  | { readonly _tag: "too-many-versions" }
  | { readonly _tag: "mem-limit" }
  | { readonly _tag: "txn-in-processing" }
  | { readonly _tag: "publish-timeout"; readonly visibleAfterMs: number }
  /** The commit succeeds (VISIBLE) but the BE answers `Fail` "… Transaction status unknown, you can retry …". */
  | { readonly _tag: "commit-unknown" }
  /**
   * A slow server with a capacity (loads only: `_stream_load` and `transaction/load`): a load waits `baseMs` plus
   * `perLoadMs` for every other load of this fault in flight beside it, then, when more than `capacity` of them are
   * in flight (itself included), it is answered "too many versions" (its body read, its transaction rolled back).
   */
  | { readonly _tag: "overload"; readonly capacity: number; readonly baseMs: number; readonly perLoadMs: number }

export interface Fault {
  /** `"fe"`, `"be"` (any FE / BE) or one node: `"fe0"`, `"be1"`, ... Default: any node. */
  readonly node?: string | undefined
  /** Substring of the request path (with query), or a regular expression source. Default: any path. */
  readonly path?: string | undefined
  /** Fire on the nth matching request (1-based) and, with `times`, the following ones. */
  readonly nth?: number | undefined
  /** How many times the fault fires (default 1 with `nth`, unlimited otherwise). */
  readonly times?: number | undefined
  /** Fire with this probability (seeded PRNG) on each matching request. */
  readonly probability?: number | undefined
  readonly action: FaultAction
}

/** Status-body actions: only answered where a load is answered (BE load endpoints; FE commit for publish). */
export const isBodyAction = (a: FaultAction): boolean =>
  a._tag === "fail" || a._tag === "too-many-versions" || a._tag === "mem-limit" || a._tag === "txn-in-processing" ||
  a._tag === "publish-timeout" || a._tag === "commit-unknown"

/** mulberry32 */
const prng = (seed: number) => {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6D2B79F5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Entry {
  readonly fault: Fault
  readonly regex: RegExp | undefined
  seen: number
  fired: number
}

const nodeMatches = (pattern: string | undefined, node: string): boolean => {
  if (pattern === undefined || pattern === "") return true
  if (pattern === "fe" || pattern === "be") return node.startsWith(pattern)
  return pattern === node
}

export class FaultInjector {
  private entries: Array<Entry> = []
  private random: () => number

  constructor(private readonly seed: number) {
    this.random = prng(seed)
  }

  add(fault: Fault): void {
    let regex: RegExp | undefined
    if (fault.path !== undefined) {
      try {
        regex = new RegExp(fault.path)
      } catch {
        regex = undefined
      }
    }
    this.entries.push({ fault, regex, seen: 0, fired: 0 })
  }

  clear(): void {
    this.entries = []
    this.random = prng(this.seed)
  }

  list(): ReadonlyArray<Fault> {
    return this.entries.map((e) => e.fault)
  }

  /**
   * The action to apply to this request, if any. `accepts` says which actions the endpoint can answer; a fault
   * whose action it cannot answer does not count the request.
   */
  take(node: string, path: string, accepts: (a: FaultAction) => boolean): FaultAction | undefined {
    let chosen: FaultAction | undefined
    // Every matching fault counts the request (so `nth` means the nth matching request of that fault); the first
    // one that is due fires.
    for (const e of this.entries) {
      const f = e.fault
      if (!nodeMatches(f.node, node)) continue
      if (f.path !== undefined && f.path !== "" && !path.includes(f.path) && !(e.regex?.test(path) ?? false)) continue
      if (!accepts(f.action)) continue
      e.seen++
      if (chosen !== undefined) continue
      if (f.nth !== undefined && e.seen < f.nth) continue
      const times = f.times ?? (f.nth !== undefined ? 1 : Number.POSITIVE_INFINITY)
      if (e.fired >= times) continue
      if (f.probability !== undefined && this.random() >= f.probability) continue
      e.fired++
      chosen = f.action
    }
    return chosen
  }
}
