/**
 * Test doubles' answers: a successful `LoadClient.loadBatch` result for a request.
 */
import type { LoadClient } from "../src/index.js"

/** A `Success` result of `request` with `loadedRows` rows (the rest zero, no hops or timings unless given). */
export const loaded = (
  request: LoadClient.LoadRequest,
  loadedRows: number,
  extra: Partial<LoadClient.LoadResult> = {}
): LoadClient.LoadResult => ({
  label: request.label,
  status: "Success",
  txnId: 1,
  loadedRows,
  filteredRows: 0,
  unselectedRows: 0,
  loadBytes: request.body.byteLength,
  retries: 0,
  hops: [],
  timings: {},
  ...extra
})
