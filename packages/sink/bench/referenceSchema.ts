import { ReferenceRows } from "@effect-starrocks/testkit"

/** The benchmark's reference row as a typed Schema (issue 3, section Benchmark). */
export const ReferenceRow = ReferenceRows.schema
