// The seam between the lock logic and the store: the operations a lock needs, and
// their Redis implementation. Another store (an in-memory one, say) implements
// _LockBackend and reuses everything above it.
import { type _Reply, type _Send, _sendOf } from "./_client.ts";
import { _ACQUIRE, _evalScript, _EXTEND, _LEAVE, _NUDGE, _RELEASE, _STATUS } from "./_scripts.ts";
import { _nextTurn } from "./_wait.ts";
import type { LockStatus, RedisClient } from "./types.ts";

/** The outcome of one acquire attempt. */
export type _Attempt =
  /** `remainingMs`: the lease left, which is less than the ttl when the lock was handed over. */
  | { acquired: true; remainingMs: number }
  /**
   * `remainingMs`: the holder's lease left, or -1 when unknown; `dueInMs`: when the
   * caller is the first waiter, the ms left of its window, else -1.
   */
  | { acquired: false; remainingMs: number; dueInMs: number };

/** How a waiter waits: see {@linkcode _LockBackend.acquire}. */
export interface _Wait {
  /** How long its place is kept without a new attempt. */
  leaseMs: number;
  /** Once it is first, how long others may still take a free lock. */
  windowMs: number;
  /** The channel on which its process listens for its news, or "" when it polls. */
  channel: string;
  /** Whether it may be queued already: it attempted before. */
  queued: boolean;
}

/**
 * What a lock needs from its store. Every method is one round trip on Redis, but a
 * waiter's first attempt at a held lock: two (it tries, then queues).
 */
export interface _LockBackend {
  /**
   * Takes `key` for `token` for `ttlMs`. With `wait`, the caller is a waiter: it joins
   * (or keeps its place in) the queue, its place lapses after `leaseMs` unless it
   * attempts again, once it is first others may take a free lock for `windowMs`, and
   * a release that hands it the lock (or frees it in its turn) says so on `channel`.
   */
  acquire(
    key: string,
    token: string,
    ttlMs: number,
    wait?: _Wait,
  ): Promise<_Attempt>;
  /** Deletes `key` if `token` owns it, and hands it to the next waiter. */
  release(key: string, token: string): Promise<boolean>;
  /** Resets the lease of `key` to `ttlMs` if `token` owns it. */
  extend(key: string, token: string, ttlMs: number): Promise<boolean>;
  /** Whether `token` owns `key`, and the lease's remaining ms. */
  status(key: string, token: string): Promise<LockStatus>;
  /**
   * Takes waiter `token` out of the queue of `key`, giving back the lock if it was
   * handed to it meanwhile.
   */
  leave(key: string, token: string): Promise<void>;
}

/**
 * The keys of one lock: the lock, the waiters' queue and the waiters' data. The two
 * derived keys carry the lock key's hash slot: its hash tag when it has one, else the
 * whole key as their tag, so that one script may touch all three on Redis Cluster.
 * (A key with a `}` but no hash tag cannot be given one; its keys stay untagged.)
 */
export function _keysOf(key: string): [lock: string, queue: string, data: string] {
  const open = key.indexOf("{");
  const close = open < 0 ? -1 : key.indexOf("}", open + 1);
  const tagged = close > open + 1;
  const base = tagged || key.includes("}") ? key : `{${key}}`;
  return [key, `${base}:baton:queue`, `${base}:baton:waiters`];
}

function int(reply: _Reply | undefined): number {
  return typeof reply === "number" ? reply : Number(reply);
}

/** Keys remembered per client at most as handed to a waiter. */
const MAX_KEYS = 1000;

/** A backend that runs baton's scripts through `send`. */
export function _redisBackendOf(send: _Send): _LockBackend {
  // Keys this client freed during the first waiter's window: unless it asks for the key
  // again at once, in the code that runs on from the release (a holder taking it
  // straight back, which saves a switch between processes), the lock goes to that
  // waiter on the next turn of the event loop.
  const nudges = new Map<string, () => void>();
  // Keys this client last handed to a waiter: it will find them held, so its next
  // attempt queues at once rather than trying SET NX first.
  const handedOver = new Set<string>();
  const nudge = (key: string) => {
    nudges.delete(key);
    _evalScript(send, _NUDGE, _keysOf(key), []).catch(() => {});
  };
  return {
    async acquire(key, token, ttlMs, wait) {
      const pending = nudges.get(key);
      if (pending !== undefined) {
        pending();
        nudges.delete(key);
      }
      try {
        if (!wait?.queued && !(wait && handedOver.delete(key))) {
          // A caller that is not queued tries a plain SET NX PX first, the cheapest
          // command there is. It may take a free lock while waiters are queued; a free
          // lock with waiters is only ever seen during the first waiter's window (when
          // anyone not queued may take it), or for a moment after it or after a holder's
          // lease ran out (the first waiter then waits one more hold at most).
          const set = await send(["SET", key, token, "NX", "PX", String(ttlMs)]);
          if (set !== null) return { acquired: true, remainingMs: ttlMs };
          if (!wait) return { acquired: false, remainingMs: -1, dueInMs: -1 };
          // Held: join the queue.
        }
        const reply = await _evalScript(send, _ACQUIRE, _keysOf(key), [
          token,
          String(ttlMs),
          String(wait.leaseMs),
          String(wait.windowMs),
          wait.channel,
          wait.queued ? "1" : "0",
        ]) as _Reply[];
        const pttl = int(reply[1]);
        if (int(reply[0]) === 1) return { acquired: true, remainingMs: pttl >= 0 ? pttl : ttlMs };
        return { acquired: false, remainingMs: pttl >= 0 ? pttl : -1, dueInMs: int(reply[2]) };
      } catch (error) {
        // The lock may still be free with a waiter first: let the waiter have it.
        if (pending !== undefined) nudge(key);
        throw error;
      }
    },
    async release(key, token) {
      const released = int(await _evalScript(send, _RELEASE, _keysOf(key), [token]));
      if (released === 2) {
        nudges.get(key)?.();
        nudges.set(key, _nextTurn(() => nudge(key)));
      } else if (released === 3) {
        if (handedOver.size >= MAX_KEYS) handedOver.clear();
        handedOver.add(key);
      }
      return released > 0;
    },
    async extend(key, token, ttlMs) {
      return int(await _evalScript(send, _EXTEND, [key], [token, String(ttlMs)])) === 1;
    },
    async status(key, token) {
      const reply = await _evalScript(send, _STATUS, [key], [token]) as _Reply[];
      const owned = int(reply[0]) === 1;
      return { owned, remainingMs: owned ? Math.max(0, int(reply[1])) : 0 };
    },
    async leave(key, token) {
      await _evalScript(send, _LEAVE, _keysOf(key), [token]);
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
