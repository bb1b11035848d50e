/**
 * The brand of a checkpoint barrier (`Checkpoint.Barrier`), apart from Checkpoint.ts so that the batcher can
 * recognise one without importing the public module. The exactly-once sink's input is the application's rows as
 * they are, with barriers between them: one check per item tells them apart, and a row is never wrapped.
 * `Symbol.for`, so that a barrier made by another copy of the package (a bundle beside the sources) is recognised.
 */
export const TypeId: unique symbol = Symbol.for("@effect-starrocks/sink/Checkpoint/Barrier")
export type TypeId = typeof TypeId

/** Whether `u` is a barrier: an object carrying the brand (a row never does). */
export const is = (u: unknown): boolean => typeof u === "object" && u !== null && TypeId in u
