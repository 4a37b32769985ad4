// The seam between the lock logic and the store: the operations a lock needs, and
// their Redis implementation. Another store (an in-memory one, say) implements
// _LockBackend and reuses everything above it.
import { type _Reply, type _Send, _sendOf } from "./_client.ts";
import { _ACQUIRE, _evalScript, _EXTEND, _LEAVE, _RELEASE, _STATUS } from "./_scripts.ts";
import type { LockStatus, RedisClient } from "./types.ts";

/** The outcome of one acquire attempt. */
export type _Attempt =
  /** `remainingMs`: the lease left, which is less than the ttl when the lock was handed over. */
  | { acquired: true; remainingMs: number }
  /** `remainingMs`: the holder's lease left, or -1 when unknown (free but reserved for a waiter). */
  | { acquired: false; remainingMs: number };

/** What a lock needs from its store. Every method is one round trip on Redis. */
export interface _LockBackend {
  /**
   * Takes `key` for `token` for `ttlMs`. With `waiterLeaseMs`, the caller is a waiter:
   * it joins (or keeps its place in) the queue, and its place lapses after that many ms
   * unless it attempts again.
   */
  acquire(key: string, token: string, ttlMs: number, waiterLeaseMs?: number): Promise<_Attempt>;
  /** Deletes `key` if `token` owns it, and hands it to the next waiter. */
  release(key: string, token: string): Promise<boolean>;
  /** Resets the lease of `key` to `ttlMs` if `token` owns it. */
  extend(key: string, token: string, ttlMs: number): Promise<boolean>;
  /** Whether `token` owns `key`, and the lease's remaining ms. */
  status(key: string, token: string): Promise<LockStatus>;
  /**
   * Takes waiter `token` (that waited with `ttlMs`) out of the queue of `key`, giving
   * back the lock if it was handed to it meanwhile.
   */
  leave(key: string, token: string, ttlMs: number): Promise<void>;
}

/** The names Redis keeps for one lock: the lock key, the waiters' queue and liveness, the channel. */
export function _keysOf(key: string): [lock: string, queue: string, alive: string] {
  return [key, `${key}:baton:queue`, `${key}:baton:alive`];
}

/** The channel on which a release of `key` tells its first waiter (by token) it has the lock. */
export function _channelOf(key: string): string {
  return `baton:released:${key}`;
}

function int(reply: _Reply | undefined): number {
  return typeof reply === "number" ? reply : Number(reply);
}

/** A backend that runs baton's scripts through `send`. */
export function _redisBackendOf(send: _Send): _LockBackend {
  return {
    async acquire(key, token, ttlMs, waiterLeaseMs) {
      const reply = await _evalScript(send, _ACQUIRE, _keysOf(key), [
        token,
        String(ttlMs),
        waiterLeaseMs === undefined ? "0" : "1",
        String(waiterLeaseMs ?? 0),
      ]) as _Reply[];
      const pttl = int(reply[1]);
      if (int(reply[0]) === 1) return { acquired: true, remainingMs: pttl >= 0 ? pttl : ttlMs };
      return { acquired: false, remainingMs: pttl >= 0 ? pttl : -1 };
    },
    async release(key, token) {
      return int(await _evalScript(send, _RELEASE, _keysOf(key), [token, _channelOf(key)])) === 1;
    },
    async extend(key, token, ttlMs) {
      return int(await _evalScript(send, _EXTEND, [key], [token, String(ttlMs)])) === 1;
    },
    async status(key, token) {
      const reply = await _evalScript(send, _STATUS, [key], [token]) as _Reply[];
      const owned = int(reply[0]) === 1;
      return { owned, remainingMs: owned ? Math.max(0, int(reply[1])) : 0 };
    },
    async leave(key, token, ttlMs) {
      await _evalScript(send, _LEAVE, _keysOf(key), [token, String(ttlMs), _channelOf(key)]);
    },
  };
}

const backends = new WeakMap<object, _LockBackend>();

/** The Redis backend of a client, cached per client. Throws a TypeError for a non-client. */
export function _backendOf(redis: RedisClient, action: string): _LockBackend {
  let backend = backends.get(redis);
  if (!backend) {
    backend = _redisBackendOf(_sendOf(redis, action));
    backends.set(redis, backend);
  }
  return backend;
}
