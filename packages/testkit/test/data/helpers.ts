import type { CsvOptions } from "../../src/internal/data/csvReader.js"
import { readCsvV1, readCsvV2 } from "../../src/internal/data/csvReader.js"
import { runLoad } from "../../src/internal/data/pipeline.js"
import type { LoadHeaders, LoadOptions, LoadOutcome } from "../../src/internal/data/types.js"
import type { ColumnDef, TableDef } from "../../src/internal/model.js"

export const options: LoadOptions = { emptyLoadAsError: true, emptyLoadMessage: "new" }

export const table = (
  columns: ReadonlyArray<ColumnDef>,
  model: "DUPLICATE" | "PRIMARY" = "DUPLICATE",
  key: ReadonlyArray<string> = [columns[0]!.name]
): TableDef => ({ database: "d", table: "t", model, key, columns })

/** A table of `n` nullable STRING columns c0..c(n-1) (no key constraint). */
export const strings = (n: number): TableDef =>
  table(Array.from({ length: n }, (_, i) => ({ name: `c${i}`, type: "STRING", nullable: true })))

export const load = (
  t: TableDef,
  headers: LoadHeaders,
  body: string | Buffer | ReadonlyArray<string | Buffer>,
  opts: Partial<LoadOptions> = {}
): LoadOutcome => {
  const bodies = (Array.isArray(body) ? body : [body]).map((b) => (typeof b === "string" ? Buffer.from(b) : b))
  return runLoad(t, headers, bodies, { ...options, ...opts })
}

/** The values of the upsert/delete ops, as arrays in column order. */
export const rows = (out: LoadOutcome): Array<Array<unknown>> => {
  if (out._tag !== "Ok") throw new Error(`load failed: ${out.message} ${out.errorLog.join("|")}`)
  return out.ops.map((o) => Object.values(o.values))
}

export interface ReadOpts {
  readonly sep?: string
  readonly rd?: string
  readonly enclose?: string
  readonly escape?: string
  readonly trim?: boolean
  readonly skip?: number
  readonly legacy?: boolean
}

/** Runs the CSV reader alone and returns the fields of each record. */
export const readCsv = (body: string | Buffer, o: ReadOpts = {}): Array<Array<string>> =>
  readCsvRecords(body, o).map((r) => [...r.fields])

export const readCsvRecords = (body: string | Buffer, o: ReadOpts = {}) => {
  const opts: CsvOptions = {
    columnSeparator: Buffer.from(o.sep ?? ","),
    rowDelimiter: Buffer.from(o.rd ?? "\n"),
    enclose: o.enclose !== undefined ? Buffer.from(o.enclose)[0]! : 0,
    escape: o.escape !== undefined ? Buffer.from(o.escape)[0]! : 0,
    v2: o.enclose !== undefined || o.escape !== undefined,
    trimSpace: o.trim ?? false,
    skipHeader: o.skip ?? 0,
    legacyStartLookahead: o.legacy ?? false
  }
  const out: Array<{ fields: ReadonlyArray<string>; raw: string }> = []
  const buf = typeof body === "string" ? Buffer.from(body) : body
  if (opts.v2) readCsvV2(buf, opts, (r) => out.push(r))
  else readCsvV1(buf, opts, (r) => out.push(r))
  return out
}
