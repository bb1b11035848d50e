/**
 * The `ErrorURL` of a load (the rows StarRocks filtered and why): its first lines, fetched for a failed load's
 * error (`fetch`), and all its entries, parsed, for the dead letter (`fetchEntries`, `parse`).
 *
 * One line per filtered row, `Error: <reason>. Row: <row text>`; a summary line is `Error: <reason>` alone
 * (`RuntimeState::append_error_msg_to_file`, be/src/runtime/runtime_state.cpp; docs/protocol.md §7.2). The BE
 * writes at most 51 row lines per load: the rows beyond are counted (`NumberFilteredRows`) but not listed.
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
  Effect.map(get(connection, errorUrl, 64 * 1024), (got) => {
    if ("unavailable" in got) {
      return got.http === true
        ? `error log unavailable (${got.unavailable})`
        : `error log unavailable: ${got.unavailable}`
    }
    const lines = got.body.slice(0, connection.errorLogMaxChars).split(/\r?\n/).filter((l) => l.length > 0)
    return sanitize(connection, lines.slice(0, connection.errorLogMaxLines).join("\n"))
  })

type Got = { readonly body: string } | { readonly unavailable: string; readonly http?: true }

/**
 * The GET of an ErrorURL (through the be-host-map, with Basic auth), at most `maxBytes`, with a deadline. Never
 * fails: `unavailable` says why there is no body (`malformed ErrorURL`, `HTTP <status>` with `http`, the
 * transport's reason, `timeout`).
 */
const get = (
  connection: Connection,
  errorUrl: string,
  maxBytes: number
): Effect.Effect<Got> =>
  Effect.gen(function*() {
    let url: URL
    try {
      url = applyHostMap(parseBaseUrl(errorUrl), connection.config.beHostMap)
    } catch {
      return { unavailable: "malformed ErrorURL" }
    }
    const response = yield* exchange({
      method: "GET",
      url,
      headers: { Authorization: connection.authorization() },
      expectContinue: false
    }, connection.httpOptions(connection.controlSocketTimeout, maxBytes))
    if (response.status < 200 || response.status >= 300) {
      return { unavailable: `HTTP ${response.status}`, http: true } as const
    }
    return { body: response.body }
  }).pipe(
    Effect.catchAll((e) => Effect.succeed<Got>({ unavailable: e.reason })),
    Effect.timeoutTo({
      duration: Duration.millis(connection.controlSocketTimeout + Duration.toMillis(connection.config.connectTimeout)),
      onSuccess: (got) => got,
      onTimeout: (): Got => ({ unavailable: "timeout" })
    })
  )

/**
 * One entry of an error log: a filtered row's reason, its text (the whole line when the line could not be
 * parsed) and the column where the reason names one.
 * @internal
 */
export interface Entry {
  readonly reason: string
  readonly text: string
  readonly column?: string | undefined
}

/**
 * The entries of a fetched error log; `unavailable` says why none could be read (the fetch failed).
 * @internal
 */
export interface Entries {
  readonly entries: ReadonlyArray<Entry>
  readonly unavailable?: string | undefined
}

/** The reason of a line that is not `Error: …` (nor the continuation of a row's text). */
export const NOT_UNDERSTOOD = "a line of the error log that is not understood (its whole text is kept)"

const ROW = ". Row: "

/** `The field (name = c, pos = i) is out of range. Type: T, Value length: n, Value: ` (strict mode, CSV). */
const STRICT_VALUE = /^The field \(name = (.+?), pos = \d+\) is out of range\. Type: .*?, Value length: (\d+), Value: /

const columnOf = (reason: string): string | undefined =>
  /^The field \(name = (.+?)(?:, pos = \d+)?\)/.exec(reason)?.[1] ??
    /non-nullable column '(.+?)'/.exec(reason)?.[1]

const entryOf = (reason: string, text: string): Entry => {
  const column = columnOf(reason)
  return column !== undefined ? { reason, text, column } : { reason, text }
}

/**
 * One `Error: …` line. A strict-mode reason quotes the value with its byte length: that many bytes are skipped
 * before looking for `. Row: ` (the value may hold that text itself); otherwise the first `. Row: ` ends the reason.
 */
const parseLine = (line: string): Entry => {
  const rest = line.slice("Error: ".length)
  const strict = STRICT_VALUE.exec(rest)
  if (strict !== null) {
    const after = Buffer.from(rest.slice(strict[0].length), "utf8")
    const n = Number(strict[2])
    const tail = after.subarray(n).toString("utf8")
    if (n <= after.length && tail.startsWith(ROW)) {
      return entryOf(rest.slice(0, strict[0].length) + after.subarray(0, n).toString("utf8"), tail.slice(ROW.length))
    }
  }
  const at = rest.indexOf(ROW)
  // a summary line (no row): its reason, and the whole line as the text
  return at < 0 ? entryOf(rest, line) : entryOf(rest.slice(0, at), rest.slice(at + ROW.length))
}

/**
 * The entries of an error log's text. A line that does not start with `Error: ` continues the row text of the
 * entry before (a CSV record that spans lines), or, first of all, is an entry of its own with its whole text.
 * Empty lines (the row delimiter the BE keeps in a row's text) are skipped.
 * @internal
 */
export const parse = (body: string): Array<Entry> => {
  const out: Array<Entry> = []
  for (const line of body.split(/\r?\n/)) {
    if (line === "") continue
    if (line.startsWith("Error: ")) out.push(parseLine(line))
    else if (out.length > 0) {
      const last = out[out.length - 1]!
      out[out.length - 1] = { ...last, text: `${last.text}\n${line}` }
    } else out.push({ reason: NOT_UNDERSTOOD, text: line })
  }
  return out
}

/** An entry with its row data redacted (`sanitizeErrorLog`): the row's text and the value a reason quotes. */
export const redact = (entry: Entry): Entry => ({
  ...entry,
  reason: entry.reason.replace(/(\bValue:\s).*$/s, "$1<redacted>"),
  text: "<redacted>"
})

/** The most of an error log read for the dead letter (the BE lists at most 51 rows; rows may be long). */
const ENTRIES_MAX_BYTES = 16 * 1024 * 1024

/**
 * Fetches `errorUrl` (through the be-host-map, with Basic auth) and parses all its entries, row data redacted when
 * `sanitizeErrorLog` is set. Never fails: a fetch that fails gives no entries and says why in `unavailable`.
 * @internal
 */
export const fetchEntries = (connection: Connection, errorUrl: string): Effect.Effect<Entries> =>
  Effect.map(get(connection, errorUrl, ENTRIES_MAX_BYTES), (got): Entries => {
    if ("unavailable" in got) return { entries: [], unavailable: got.unavailable }
    const entries = parse(got.body)
    return { entries: connection.config.sanitizeErrorLog ? entries.map(redact) : entries }
  })
