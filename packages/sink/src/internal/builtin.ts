/**
 * A node builtin loaded on its first use instead of at import: node:https (with node:tls) for the first https URL,
 * node:zlib for the first gzip payload. A process that loads over plain http without compression (the common case,
 * and the loader's start-up) does not pay for them (docs/benchmark.md, session 14).
 *
 * @internal
 */
import { createRequire } from "node:module"

let require: NodeJS.Require | undefined

/** `id` required when the returned function is first called, then kept. */
export const lazyBuiltin = <A>(id: string): () => A => {
  let loaded: A | undefined
  return () => loaded ??= (require ??= createRequire(import.meta.url))(id) as A
}
