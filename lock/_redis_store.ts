// The store on one Redis server (or anything that speaks its commands): baton's Lua
// scripts through the client's raw command, news through the client's shared subscriber.
import { type _Reply, type _Send, _sendOf } from "./_client.ts";
import { _redisDebounceOf } from "./_redis_debounce.ts";
import type { _Attempt, _Inbox, _News, _NewsKind, _Store } from "./_store.ts";
import {
  _canSubscribe,
  type _Inbox as _HubInbox,
  _inbox,
  _SHARDED,
  _subscriberOpen,
} from "./_subscriber.ts";
import {
  _ACQUIRE,
  _ACQUIRED,
  _evalScript,
  _EXTEND,
  _LEAVE,
  _NUDGE,
  _RELEASE,
  _RELEASED as Released,
  _STATUS,
  _TAKE_FENCED,
} from "./_scripts.ts";
import { _nextTurn } from "./_wait.ts";
import { RedisReplyError } from "./errors.ts";
import type { LockStatus, RedisClient } from "./types.ts";

/**
 * What the names derived from a lock key start with (its other keys, its waiters' sharded
 * news channels), so that they carry the key's hash slot: the key itself when it has a hash
 * tag, else the whole key as their tag. (A key with a `}` but no hash tag cannot be given
 * one; it stays as it is.)
 */
export function _slotBase(key: string): string {
  const open = key.indexOf("{");
  const close = open < 0 ? -1 : key.indexOf("}", open + 1);
  const tagged = close > open + 1;
  return tagged || key.includes("}") ? key : `{${key}}`;
}

/**
 * The keys of one lock: the lock, the waiters' queue, the waiters' data and the last
 * fence. The derived keys carry the lock key's hash slot (see {@linkcode _slotBase}), so
 * that one script may touch all of them on Redis Cluster.
 */
export function _keysOf(
  key: string,
): [lock: string, queue: string, data: string, fence: string] {
  const base = _slotBase(key);
  return [key, `${base}:baton:queue`, `${base}:baton:waiters`, `${base}:baton:fence`];
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

/** A fence as the acquire script sends it: a string of digits (or a number, decoded). */
function decodeFence(reply: _Reply | undefined): bigint | undefined {
  if (typeof reply === "string" && /^[1-9][0-9]*$/.test(reply)) return BigInt(reply);
  if (isInt(reply) && reply > 0) return BigInt(reply);
  return undefined;
}

/**
 * The acquire script's reply: {1, pttl}, {1, pttl, fence} (when `fenced`) or
 * {0, pttl, dueIn}; else an error.
 */
function decodeAcquire(reply: _Reply, ttlMs: number, fenced: boolean): _Attempt {
  if (Array.isArray(reply) && isInt(reply[0]) && isInt(reply[1])) {
    const [granted, pttl] = reply as [number, number];
    const remainingMs = pttl >= 0 ? pttl : -1;
    if (granted === _ACQUIRED.Yes && reply.length === (fenced ? 3 : 2)) {
      const fence = fenced ? decodeFence(reply[2]) : undefined;
      if (!fenced || fence !== undefined) {
        return { acquired: true, remainingMs: remainingMs >= 0 ? remainingMs : ttlMs, fence };
      }
    }
    if (granted === _ACQUIRED.No && reply.length === 3 && isInt(reply[2])) {
      return { acquired: false, remainingMs, dueInMs: reply[2] };
    }
  }
  const expected = fenced
    ? "{1, pttl, fence} or {0, pttl, dueIn}"
    : "{1, pttl} or {0, pttl, dueIn}";
  throw new RedisReplyError("EVALSHA acquire", reply, expected);
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

/** Keys remembered per client at most as handed to a waiter. */
const MAX_KEYS = 1000;

/** The store of a client that runs baton's scripts through `send`. */
export function _redisStoreOf(client: RedisClient, send: _Send): _Store {
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
  // The inboxes of this client's waiters, by token: with sharded news, a waiter's address
  // is a channel in the lock's hash slot, known once the key is.
  const inboxes = new Map<string, _HubInbox>();
  return {
    name: "Redis",
    queues: true,
    debounce: _redisDebounceOf(client, send),
    fences: true,
    async acquire(key, token, ttlMs, { queue: wait, fencing }) {
      const pending = nudges.get(key);
      if (pending !== undefined) {
        pending();
        nudges.delete(key);
      }
      try {
        if (!fencing && !wait?.queued && !(wait && handedOver.delete(key))) {
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
        if (!wait) {
          // A single fenced attempt: SET NX PX and the fence, in one lean script.
          const [lock, , , fence] = _keysOf(key);
          const reply = await _evalScript(send, _TAKE_FENCED, [lock, fence], [
            token,
            String(ttlMs),
          ]);
          return decodeAcquire(reply, ttlMs, true);
        }
        // A waiter queues; a fenced lock is taken by the script, which issues the fence.
        const address = wait?.address === _SHARDED
          ? await inboxes.get(token)?.addressIn(_slotBase(key)) ?? ""
          : wait?.address ?? "";
        const reply = await _evalScript(send, _ACQUIRE, _keysOf(key), [
          token,
          String(ttlMs),
          String(wait?.leaseMs ?? 0),
          String(wait?.windowMs ?? 0),
          address,
          wait?.queued ? "1" : "0",
          fencing ? "1" : "0",
          wait ? "wait" : "try",
        ]);
        return decodeAcquire(reply, ttlMs, fencing);
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
      const [lock, , , fence] = _keysOf(key);
      const reply = await _evalScript(send, _EXTEND, [lock, fence], [token, String(ttlMs)]);
      return decodeCode("extend", reply, [0, 1]) === 1;
    },
    async status(key, token) {
      return decodeStatus(await _evalScript(send, _STATUS, [key], [token]));
    },
    async leave(key, token) {
      await _evalScript(send, _LEAVE, _keysOf(key), [token]);
    },
    news(subscriber) {
      if (subscriber === false) return undefined;
      const given = subscriber as RedisClient | undefined;
      if (given === undefined && !_canSubscribe(client)) return undefined;
      return newsOf(client, given, inboxes);
    },
  };
}

/**
 * News through the shared subscriber connection of `client` (or `given`): a release
 * publishes "+token" (the lock is the waiter's) or "!token" (it is first now) on the
 * connection's own channel, which is the waiter's address; with sharded news (Redis
 * Cluster), SPUBLISHes it on the connection's channel in the lock's hash slot, whose
 * address the store asks of the waiter's inbox in `inboxes`.
 */
function newsOf(
  client: RedisClient,
  given: RedisClient | undefined,
  inboxes: Map<string, _HubInbox>,
): _News {
  return {
    get open() {
      return _subscriberOpen(client, given);
    },
    inbox(token, onNews): _Inbox {
      const inbox = _inbox(client, given, token, (kind, extra) => {
        const news: _NewsKind | undefined = kind === "+"
          ? "granted"
          : kind === "!"
          ? "first"
          : undefined;
        if (news === undefined) return;
        onNews(news, extra ? BigInt(extra) : undefined);
      });
      inboxes.set(token, inbox);
      return {
        address: inbox.channel,
        ready: inbox.ready,
        stop() {
          inboxes.delete(token);
          inbox.stop();
        },
      };
    },
  };
}

/** The store of a Redis client. Throws a TypeError for a value that is not a client. */
export function _redisStore(redis: RedisClient, action: string): _Store {
  return _redisStoreOf(redis, _sendOf(redis, action));
}
