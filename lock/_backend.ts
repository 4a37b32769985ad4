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
  /**
   * `remainingMs`: the holder's lease left, or -1 when unknown (free, but the first
   * waiter's turn); `dueInMs`: when the caller is the first waiter, the ms until its
   * fairness window ends and the lock is handed to it, otherwise -1.
   */
  | { acquired: false; remainingMs: number; dueInMs: number };

/** What a lock needs from its store. Every method is one round trip on Redis. */
export interface _LockBackend {
  /**
   * Takes `key` for `token` for `ttlMs`. With `wait`, the caller is a waiter: it joins
   * (or keeps its place in) the queue, its place lapses after `leaseMs` unless it
   * attempts again, and once it is first, others may take a free lock for `windowMs`.
   */
  acquire(
    key: string,
    token: string,
    ttlMs: number,
    wait?: { leaseMs: number; windowMs: number },
  ): Promise<_Attempt>;
  /** Deletes `key` if `token` owns it, and hands it to the next waiter. */
  release(key: string, token: string): Promise<boolean>;
  /** Resets the lease of `key` to `ttlMs` if `token` owns it. */
  extend(key: string, token: string, ttlMs: number): Promise<boolean>;
  /** Whether `token` owns `key`, and the lease's remaining ms. */
  status(key: string, token: string): Promise<LockStatus>;
  /**
   * Takes waiter `token` (that waited with `ttlMs` and `windowMs`) out of the queue of `key`, giving
   * back the lock if it was handed to it meanwhile.
   */
  leave(key: string, token: string, ttlMs: number, windowMs: number): Promise<void>;
}

/** The keys of one lock: the lock, the waiters' queue and liveness, the head marker. */
export function _keysOf(
  key: string,
): [lock: string, queue: string, alive: string, head: string] {
  return [key, `${key}:baton:queue`, `${key}:baton:alive`, `${key}:baton:head`];
}

/**
 * The channel on which a release of `key` tells its first waiter that it has the lock
 * ("+token") or that the lock is free ("?token").
 */
export function _channelOf(key: string): string {
  return `baton:released:${key}`;
}

function int(reply: _Reply | undefined): number {
  return typeof reply === "number" ? reply : Number(reply);
}

/** A backend that runs baton's scripts through `send`. */
export function _redisBackendOf(send: _Send): _LockBackend {
  return {
    async acquire(key, token, ttlMs, wait) {
      if (!wait) {
        // One attempt: a plain SET NX PX, the cheapest command there is. It may take a free
        // lock while waiters are queued; a free lock with waiters is only ever seen during
        // the first waiter's fairness window (when anyone may take it) or after a holder's
        // lease ran out.
        const set = await send(["SET", key, token, "NX", "PX", String(ttlMs)]);
        return set === null
          ? { acquired: false, remainingMs: -1, dueInMs: -1 }
          : { acquired: true, remainingMs: ttlMs };
      }
      const reply = await _evalScript(send, _ACQUIRE, _keysOf(key), [
        token,
        String(ttlMs),
        String(wait.leaseMs),
        String(wait.windowMs),
      ]) as _Reply[];
      const pttl = int(reply[1]);
      if (int(reply[0]) === 1) return { acquired: true, remainingMs: pttl >= 0 ? pttl : ttlMs };
      return { acquired: false, remainingMs: pttl >= 0 ? pttl : -1, dueInMs: int(reply[2]) };
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
    async leave(key, token, ttlMs, windowMs) {
      await _evalScript(send, _LEAVE, _keysOf(key), [
        token,
        String(ttlMs),
        String(windowMs),
        _channelOf(key),
      ]);
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
