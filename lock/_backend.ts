// The seam between the lock logic and the store: the operations a lock needs, and
// their Redis implementation. Another store (an in-memory one, say) implements
// _LockBackend and reuses everything above it.
import { type _Reply, type _Send, _sendOf } from "./_client.ts";
import { _ACQUIRE, _evalScript, _EXTEND, _LEAVE, _NUDGE, _RELEASE, _STATUS } from "./_scripts.ts";
import { _nextTurn } from "./_wait.ts";
import { RedisReplyError } from "./errors.ts";
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

/** Whether `reply` is a whole number, as Redis sends integers. */
function isInt(reply: _Reply | undefined): reply is number {
  return typeof reply === "number" && Number.isInteger(reply);
}

/** The reply of `SET key token NX PX ttl`: granted on "OK", not on null; else an error. */
function decodeSet(reply: _Reply): boolean {
  if (reply === "OK") return true;
  if (reply === null) return false;
  throw new RedisReplyError("SET", reply, '"OK" or null');
}

/** A script's integer reply, one of `allowed`; else an error naming the script. */
function decodeCode<C extends number>(script: string, reply: _Reply, allowed: readonly C[]): C {
  if (isInt(reply) && (allowed as readonly number[]).includes(reply)) return reply as C;
  throw new RedisReplyError(
    `EVALSHA ${script}`,
    reply,
    `one of the integers ${allowed.join(", ")}`,
  );
}

/** The acquire script's reply: {1, pttl} or {0, pttl, dueIn}; else an error. */
function decodeAcquire(reply: _Reply, ttlMs: number): _Attempt {
  if (Array.isArray(reply) && reply.every(isInt)) {
    const [granted, pttl, dueIn] = reply as number[];
    if (granted === 1 && reply.length === 2) {
      return { acquired: true, remainingMs: pttl! >= 0 ? pttl! : ttlMs };
    }
    if (granted === 0 && reply.length === 3) {
      return { acquired: false, remainingMs: pttl! >= 0 ? pttl! : -1, dueInMs: dueIn! };
    }
  }
  throw new RedisReplyError("EVALSHA acquire", reply, "{1, pttl} or {0, pttl, dueIn}");
}

/** The status script's reply: {1, pttl} or {0, 0}; else an error. */
function decodeStatus(reply: _Reply): LockStatus {
  if (Array.isArray(reply) && reply.length === 2 && reply.every(isInt)) {
    const [owned, pttl] = reply as number[];
    if (owned === 1) return { owned: true, remainingMs: Math.max(0, pttl!) };
    if (owned === 0) return { owned: false, remainingMs: 0 };
  }
  throw new RedisReplyError("EVALSHA status", reply, "{1, pttl} or {0, 0}");
}

/** What the release script says happened; see {@linkcode _RELEASE}. */
const Released = { NotOwner: 0, Freed: 1, FreedInWindow: 2, HandedOver: 3 } as const;

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
          const set = decodeSet(await send(["SET", key, token, "NX", "PX", String(ttlMs)]));
          if (set) return { acquired: true, remainingMs: ttlMs };
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
        ]);
        return decodeAcquire(reply, ttlMs);
      } catch (error) {
        // The lock may still be free with a waiter first: let the waiter have it.
        if (pending !== undefined) nudge(key);
        throw error;
      }
    },
    async release(key, token) {
      const released = decodeCode(
        "release",
        await _evalScript(send, _RELEASE, _keysOf(key), [token]),
        [Released.NotOwner, Released.Freed, Released.FreedInWindow, Released.HandedOver],
      );
      if (released === Released.FreedInWindow) {
        nudges.get(key)?.();
        nudges.set(key, _nextTurn(() => nudge(key)));
      } else if (released === Released.HandedOver) {
        if (handedOver.size >= MAX_KEYS) handedOver.clear();
        handedOver.add(key);
      }
      return released !== Released.NotOwner;
    },
    async extend(key, token, ttlMs) {
      const reply = await _evalScript(send, _EXTEND, [key], [token, String(ttlMs)]);
      return decodeCode("extend", reply, [0, 1]) === 1;
    },
    async status(key, token) {
      return decodeStatus(await _evalScript(send, _STATUS, [key], [token]));
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
