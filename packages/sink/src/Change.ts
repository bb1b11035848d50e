/**
 * Change rows: what a change stream sends into a Primary Key table.
 *
 * A sink takes plain rows (each an upsert of the whole row; an insert where the table has no key) and `Change`
 * values side by side:
 *
 * - `Change.upsert(row)`: the whole row replaces the stored row of its key (`__op` 0);
 * - `Change.delete(key)`: deletes the row of the key (`__op` 1); `key` carries the key columns (more are allowed
 *   and ignored);
 * - `Change.update(partial)`: a partial update, changing only the columns `partial` carries (it must carry the
 *   key columns); the other columns of the stored row keep their values.
 *
 * Deletes and partial updates go only to Primary Key tables (known through `jdbc-url`, or declared with a table's
 * `primaryKey` option): anywhere else they are a typed error, never a silent insert. Changes of one table land in
 * the order they arrive, across batches and retries.
 *
 * ```ts
 * import { Change } from "@effect-starrocks/sink"
 *
 * const changes = [
 *   Change.upsert({ id: 1, name: "a", score: 10 }),
 *   Change.update({ id: 1, score: 11 }),
 *   Change.delete({ id: 1 })
 * ]
 * ```
 *
 * @since 0.2.0
 */

/**
 * @since 0.2.0
 * @category symbols
 */
export const TypeId: unique symbol = Symbol.for("@effect-starrocks/sink/Change")

/**
 * @since 0.2.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * The whole row replaces the stored row of its key (or is inserted).
 *
 * @since 0.2.0
 * @category models
 */
export interface Upsert<A> {
  readonly [TypeId]: TypeId
  readonly _tag: "Upsert"
  readonly row: A
}

/**
 * Deletes the stored row of the key. `key` carries at least the key columns.
 *
 * @since 0.2.0
 * @category models
 */
export interface Delete<A> {
  readonly [TypeId]: TypeId
  readonly _tag: "Delete"
  readonly key: Partial<A>
}

/**
 * A partial update: only the columns `row` carries change (the key columns must be among them).
 *
 * @since 0.2.0
 * @category models
 */
export interface Update<A> {
  readonly [TypeId]: TypeId
  readonly _tag: "Update"
  readonly row: Partial<A>
}

/**
 * @since 0.2.0
 * @category models
 */
export type Change<A> = Upsert<A> | Delete<A> | Update<A>

const proto = { [TypeId]: TypeId }

/**
 * @since 0.2.0
 * @category constructors
 */
export const upsert = <A>(row: A): Change<A> => {
  const self = Object.create(proto)
  self._tag = "Upsert"
  self.row = row
  return self
}

const del = <A>(key: Partial<A>): Change<A> => {
  const self = Object.create(proto)
  self._tag = "Delete"
  self.key = key
  return self
}

export {
  /**
   * A delete of the key's row (`Change.delete({ id: 1 })`).
   *
   * @since 0.2.0
   * @category constructors
   */
  del as delete
}

/**
 * @since 0.2.0
 * @category constructors
 */
export const update = <A>(row: Partial<A>): Change<A> => {
  const self = Object.create(proto)
  self._tag = "Update"
  self.row = row
  return self
}

/**
 * @since 0.2.0
 * @category guards
 */
export const isChange = (u: unknown): u is Change<unknown> => typeof u === "object" && u !== null && TypeId in u

/**
 * The row a change carries: the row of an upsert, the key of a delete, the columns of a partial update.
 *
 * @since 0.2.0
 * @category getters
 */
export const row = <A>(self: Change<A>): Partial<A> => self._tag === "Delete" ? self.key : self.row

/**
 * @since 0.2.0
 * @category pattern matching
 */
export const match = <A, R>(self: Change<A>, cases: {
  readonly Upsert: (row: A) => R
  readonly Delete: (key: Partial<A>) => R
  readonly Update: (row: Partial<A>) => R
}): R =>
  self._tag === "Upsert"
    ? cases.Upsert(self.row)
    : self._tag === "Delete"
    ? cases.Delete(self.key)
    : cases.Update(self.row)
