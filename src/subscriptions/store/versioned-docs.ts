/**
 * The stores of this folder keep each record as a hash `{ doc: <JSON>, version: <n> }`. This reads
 * them back: one hash, or many in one round trip, each through the store's own `parse`.
 */
import type { Redis } from 'ioredis';

/** Turns a stored `doc` and `version` into the record, undefined when the hash has no `doc`. */
export type ParseVersioned<T> = (
  doc: string | null | undefined,
  version: string | null | undefined,
  /** The record's place in the keys read (0 for one). */
  index: number,
) => T | undefined;

/** One record's `doc` and `version`. */
export async function readVersioned<T>(
  redis: Redis,
  key: string,
  parse: ParseVersioned<T>,
): Promise<T | undefined> {
  const [doc, version] = await redis.hmget(key, 'doc', 'version');
  return parse(doc, version, 0);
}

/** Several records in one round trip, in the order of `keys` (undefined where missing). */
export async function readManyVersioned<T>(
  redis: Redis,
  keys: readonly string[],
  parse: ParseVersioned<T>,
): Promise<(T | undefined)[]> {
  if (keys.length === 0) return [];
  const pipe = redis.pipeline();
  for (const key of keys) pipe.hmget(key, 'doc', 'version');
  const res = (await pipe.exec()) ?? [];
  return res.map(([err, value], i) => {
    if (err) throw err;
    const [doc, version] = value as (string | null)[];
    return parse(doc, version, i);
  });
}
