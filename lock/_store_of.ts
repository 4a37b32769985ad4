// Builds the store behind whatever the caller passed where a Redis client goes: a
// client, cached per client so that its scripts' state and news are shared.
import { _redisStore } from "./_redis_store.ts";
import type { _Store } from "./_store.ts";
import type { LockClient, RedisClient } from "./types.ts";

const stores = new WeakMap<object, _Store>();

/**
 * The store of `redis`, made once per value. Throws a TypeError, naming what was passed
 * and what is expected, for a value no store can be made of.
 */
export function _storeOf(redis: LockClient, action: string): _Store {
  let store = stores.get(redis);
  if (!store) {
    store = _redisStore(redis as RedisClient, action);
    stores.set(redis, store);
  }
  return store;
}
