/**
 * The first lines of a failed load's `ErrorURL` (the rows StarRocks rejected and why), fetched for the error.
 *
 * @internal
 */
import { Duration, Effect } from "effect"
import type { Connection } from "./connection.js"
import { applyHostMap, exchange, parseBaseUrl } from "./transport.js"

/**
 * Row data redacted when `sanitizeErrorLog` is set: the record after `Row:`, and the value a strict-mode line
 * quotes (`… Type: VARCHAR(8), Value length: 17, Value: <text>. Row: <record>`, docs/protocol.md §7.2).
 */
const sanitize = (connection: Connection, text: string): string =>
  connection.config.sanitizeErrorLog
    ? text.replace(/(\bValue:\s).*?(?=\. Row:|$)/gm, "$1<redacted>").replace(/(Row:\s*).*$/gm, "$1<redacted>")
    : text

/**
 * Fetches `errorUrl` (through the be-host-map), keeping at most `errorLogMaxLines` lines of the first
 * `errorLogMaxChars` characters. Never fails: a fetch that fails says why in the text.
 * @internal
 */
export const fetch = (connection: Connection, errorUrl: string): Effect.Effect<string> =>
  Effect.gen(function*() {
    let url: URL
    try {
      url = applyHostMap(parseBaseUrl(errorUrl), connection.config.beHostMap)
    } catch {
      return "error log unavailable: malformed ErrorURL"
    }
    const response = yield* exchange({
      method: "GET",
      url,
      headers: { Authorization: connection.authorization() },
      expectContinue: false
    }, connection.httpOptions(connection.controlSocketTimeout, 64 * 1024))
    if (response.status < 200 || response.status >= 300) return `error log unavailable (HTTP ${response.status})`
    const lines = response.body.slice(0, connection.errorLogMaxChars).split(/\r?\n/).filter((l) => l.length > 0)
    return sanitize(connection, lines.slice(0, connection.errorLogMaxLines).join("\n"))
  }).pipe(
    Effect.catchAll((e) => Effect.succeed(`error log unavailable: ${e.reason}`)),
    Effect.timeoutTo({
      duration: Duration.millis(connection.controlSocketTimeout + Duration.toMillis(connection.config.connectTimeout)),
      onSuccess: (s) => s,
      onTimeout: () => "error log unavailable: timeout"
    })
  )
