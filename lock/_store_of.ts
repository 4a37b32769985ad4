// Builds the store behind whatever the caller passed where a Redis client goes: a
// client, cached per client so that its scripts' state and news are shared; an array of
// clients of independent servers, Redlock over their stores, cached per array; a value
// that carries its own store (a MemoryStore), that store.
import { _redisStore } from "./_redis_store.ts";
import { _redlockStore } from "./_redlock_store.ts";
import { type _HasStore, _STORE, type _Store } from "./_store.ts";
import type { LockClient, RedisClient } from "./types.ts";

const stores = new WeakMap<object, _Store>();

/** Redlock stores by array, with the clients the array held when its store was made. */
const redlocks = new WeakMap<object, { clients: readonly unknown[]; store: _Store }>();

/**
 * The store of `redis`, made once per value. Throws a TypeError, naming what was passed
 * and what is expected, for a value no store can be made of (for an array: naming the
 * index), and a RangeError for an array of fewer than 3 clients.
 */
export function _storeOf(redis: LockClient, action: string): _Store {
  const own = (redis as Partial<_HasStore> | null | undefined)?.[_STORE];
  if (own !== undefined) return own;
  if (Array.isArray(redis)) return redlockOf(redis as readonly unknown[], action);
  let store = stores.get(redis);
  if (!store) {
    store = _redisStore(redis as RedisClient, action);
    stores.set(redis, store);
  }
  return store;
}

/**
 * The Redlock store of an array of clients, made again when the array's elements
 * changed since (each server's store is the one its client has on its own).
 */
function redlockOf(redis: readonly unknown[], action: string): _Store {
  const cached = redlocks.get(redis);
  if (
    cached && cached.clients.length === redis.length &&
    cached.clients.every((client, i) => client === redis[i])
  ) return cached.store;
  const clients = Array.from(redis);
  const store = _redlockStore(clients, action, (client) => _storeOf(client, action));
  redlocks.set(redis, { clients, store });
  return store;
}
