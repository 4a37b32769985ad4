// The lock half of a MemoryStore: locks, their waiters' queues and their fences in this
// process's memory, with the semantics of the Redis store (_redis_store.ts and the scripts
// of _scripts.ts) step for step: a single attempt is a plain take of a free lock (SET NX
// PX), a waiter queues in arrival order and keeps its place by attempting within its
// lease, the first waiter's fairness window lets others take a free lock for a while, a
// release after the window hands the lock to the first live waiter (news "granted"), one
// within it frees the lock and hands it over on the next turn of the event loop unless it
// is taken again first (NUDGE), and a waiter that becomes first is told so (news "first").
// Each operation runs to its end synchronously, so it is as atomic as a script; it answers
// with a promise, as every store does. Time is the injected clock's; news is delivered in
// a microtask, after the operation, as a message arrives after the script that sent it.
import type {
  _Attempt,
  _DebounceStore,
  _Inbox,
  _News,
  _NewsKind,
  _Queue,
  _Store,
} from "./_store.ts";
import { _nextTurn } from "./_wait.ts";
import type { LockStatus } from "./types.ts";

/** A queued waiter: what the Redis store keeps in the waiters' hash. */
interface Waiter {
  ttlMs: number;
  windowMs: number;
  /** When its place lapses (clock ms), unless it attempts again. */
  deadline: number;
  fenced: boolean;
  /** Its inbox's address, or "". */
  address: string;
}

/** The first live waiter, since when it has been first (clock ms), and its window. */
interface Head {
  token: string;
  since: number;
  windowMs: number;
}

/** One lock key: the lock, its queue and its head. */
interface Entry {
  /** The owner's token; undefined when the lock is free. */
  owner: string | undefined;
  /** When the lease ends (clock ms): the lock is free once the clock is past it. */
  expiresAt: number;
  /** The owner's fence, when it took the lock with one. */
  fence: bigint | undefined;
  /** The waiters, in arrival order. */
  queue: Map<string, Waiter>;
  /** When the queue (and its head) lapses as a whole: the latest attempt's deadline. */
  queueExpiresAt: number;
  head: Head | undefined;
}

/** An inbox's listener. */
interface Box {
  token: string;
  onNews: (kind: _NewsKind, fence?: bigint) => void;
}

/**
 * The fencing tokens of one store: the wall clock in µs (not the injected clock: a fence
 * must keep rising across a restart of the process, which a fake clock does not), raised
 * above the last one issued. A strictly increasing bigint, in the same form as the Redis
 * store's, so that one column holds both.
 */
export function _fences(): () => bigint {
  let last = 0n;
  return () => {
    const us = BigInt(Date.now()) * 1000n;
    last = us > last ? us : last + 1n;
    return last;
  };
}

/**
 * How many operations may run between two sweeps of keys nobody touched since they
 * lapsed, at least: a sweep costs one pass over the keys, so it runs once per that many
 * operations, and the keys a process has left behind never outgrow the ones in use.
 */
export const _SWEEP_EVERY = 256;

/**
 * Answers with what `op` returns, or rejects with what it throws: a store's operations
 * answer with promises, never throw.
 */
export function _answer<T>(op: () => T): Promise<T> {
  try {
    return Promise.resolve(op());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The lock store of a MemoryStore, on clock `now` (ms). */
export function _memoryLocks(
  now: () => number,
  fence: () => bigint,
  debounce: _DebounceStore,
): _Store {
  const entries = new Map<string, Entry>();
  const inboxes = new Map<string, Box>();
  /** Keys freed within the first waiter's window, handed over on the next turn. */
  const nudges = new Map<string, () => void>();
  let inboxCount = 0;
  let opsSinceSweep = 0;

  // -- Keys, with what lapsed taken away.

  /** Takes away what lapsed by `t`: the lease, and the queue with its head. */
  const lapse = (e: Entry, t: number) => {
    if (e.owner !== undefined && t > e.expiresAt) {
      e.owner = undefined;
      e.fence = undefined;
    }
    if ((e.head !== undefined || e.queue.size > 0) && t > e.queueExpiresAt) {
      e.queue.clear();
      e.head = undefined;
    }
  };
  const isEmpty = (e: Entry) => e.owner === undefined && e.queue.size === 0;
  /** The entry of `key` as of `t`, or undefined when nothing is left of it. */
  const entryOf = (key: string, t: number): Entry | undefined => {
    if (++opsSinceSweep >= Math.max(_SWEEP_EVERY, entries.size)) sweep(t);
    const e = entries.get(key);
    if (e === undefined) return undefined;
    lapse(e, t);
    return e;
  };
  const newEntry = (key: string): Entry => {
    const e: Entry = {
      owner: undefined,
      expiresAt: 0,
      fence: undefined,
      queue: new Map(),
      queueExpiresAt: 0,
      head: undefined,
    };
    entries.set(key, e);
    return e;
  };
  /** Forgets `key` once nothing is left of it. */
  const tidy = (key: string, e: Entry) => {
    if (isEmpty(e)) entries.delete(key);
  };
  function sweep(t: number): void {
    opsSinceSweep = 0;
    for (const [key, e] of entries) {
      lapse(e, t);
      if (isEmpty(e)) entries.delete(key);
    }
  }

  /** The lease left, as PTTL says it: whole ms, or -1 when the lock is free. */
  const pttl = (e: Entry | undefined, t: number) =>
    e?.owner === undefined ? -1 : Math.max(0, Math.ceil(e.expiresAt - t));

  // -- News, delivered after the operation.

  const tell = (address: string, kind: _NewsKind, token: string, issued?: bigint) => {
    queueMicrotask(() => {
      const box = inboxes.get(address);
      if (box?.token === token) box.onNews(kind, issued);
    });
  };

  // -- The queue's bookkeeping, as the scripts' QUEUE.

  /** Takes the lock for `token`; returns its fence when `fenced`. */
  const take = (e: Entry, token: string, ttlMs: number, fenced: boolean, t: number) => {
    e.owner = token;
    e.expiresAt = t + ttlMs;
    e.fence = fenced ? fence() : undefined;
    return e.fence;
  };
  /**
   * Makes the first live waiter the head from now on (dropping the dead ones before it),
   * tells it so, and returns it; undefined when nobody waits.
   */
  const nextHead = (e: Entry, t: number): Head | undefined => {
    for (const [token, w] of e.queue) {
      if (w.deadline >= t) {
        e.head = { token, since: t, windowMs: w.windowMs };
        if (w.address !== "" && w.windowMs > 0) tell(w.address, "first", token);
        return e.head;
      }
      e.queue.delete(token);
    }
    e.head = undefined;
    return undefined;
  };
  /**
   * Gives the free lock to waiter `token` when it is alive, and tells it; returns whether
   * it did. The waiter leaves the queue either way, and the next one becomes the head.
   */
  const handOver = (e: Entry, token: string, t: number): boolean => {
    const w = e.queue.get(token);
    e.queue.delete(token);
    if (w === undefined || w.deadline < t) return false;
    const issued = take(e, token, w.ttlMs, w.fenced, t);
    nextHead(e, t);
    if (w.address !== "") tell(w.address, "granted", token, issued);
    return true;
  };
  /** Hands the free lock to the first live waiter from `head` on; whether someone got it. */
  const handOverNext = (e: Entry, head: Head | undefined, t: number): boolean => {
    while (head !== undefined) {
      if (handOver(e, head.token, t)) return true;
      head = nextHead(e, t);
    }
    return false;
  };
  /** Hands a lock freed within the first waiter's window over on the next turn (NUDGE). */
  const nudgeLater = (key: string) => {
    nudges.get(key)?.();
    nudges.set(
      key,
      _nextTurn(() => {
        nudges.delete(key);
        const t = now();
        const e = entryOf(key, t);
        if (e === undefined || e.owner !== undefined) return;
        handOverNext(e, e.head, t);
        tidy(key, e);
      }),
    );
  };

  // -- An attempt, as the Redis store makes it.

  /** The attempt of a waiter that may queue, as _ACQUIRE. */
  const attempt = (
    e: Entry,
    token: string,
    ttlMs: number,
    q: _Queue,
    fenced: boolean,
    t: number,
  ): _Attempt => {
    if (e.owner === token) {
      // Handed over by a release whose news has not reached the caller (it polls): its
      // lease starts now, as a grant's would, since part of it ran out before it knew.
      e.expiresAt = t + ttlMs;
      return {
        acquired: true,
        remainingMs: ttlMs,
        fence: fenced ? e.fence ??= fence() : undefined,
      };
    }
    const granted = (): _Attempt => {
      const issued = take(e, token, ttlMs, fenced, t);
      return { acquired: true, remainingMs: ttlMs, fence: issued };
    };
    if (e.owner === undefined) {
      if (e.head === undefined) {
        // Nobody waits: take it.
        if (q.queued) e.queue.delete(token);
        return granted();
      }
      let head: Head | undefined = e.head;
      let handed = false;
      if (head.token !== token && t - head.since >= head.windowMs) {
        // Free after the first waiter's window: it is that waiter's, unless it died; then
        // the next one's window starts now.
        if (handOver(e, head.token, t)) handed = true;
        else head = nextHead(e, t);
      }
      if (
        !handed &&
        (head === undefined || head.token === token ||
          (t - head.since < head.windowMs && !q.queued))
      ) {
        if (q.queued) {
          e.queue.delete(token);
          if (head?.token === token) nextHead(e, t);
        }
        return granted();
      }
    }
    // Joins the queue in arrival order, or keeps its place, with a new deadline.
    const w: Waiter = {
      ttlMs,
      windowMs: q.windowMs,
      deadline: t + q.leaseMs,
      fenced,
      address: q.address,
    };
    const place = e.queue.get(token);
    if (place) Object.assign(place, w);
    else e.queue.set(token, w);
    e.queueExpiresAt = Math.max(e.queueExpiresAt, t + q.leaseMs);
    // First in an empty queue: the head from now on, with its whole window to run.
    let dueInMs = -1;
    if (e.head === undefined) {
      e.head = { token, since: t, windowMs: q.windowMs };
      if (q.windowMs > 0) dueInMs = q.windowMs;
    } else if (q.queued) {
      const { token: first, since, windowMs } = e.head;
      if (first === token && since + windowMs > t) dueInMs = Math.ceil(since + windowMs - t);
    }
    return { acquired: false, remainingMs: pttl(e, t), dueInMs };
  };

  const news: _News = {
    open: true,
    inbox(token, onNews): _Inbox {
      const address = `memory:${++inboxCount}`;
      inboxes.set(address, { token, onNews });
      return {
        address,
        ready: Promise.resolve(false),
        stop: () => void inboxes.delete(address),
      };
    },
  };

  return {
    name: "a MemoryStore",
    queues: true,
    fences: true,
    debounce,
    acquire: (key, token, ttlMs, { queue, fencing }) =>
      _answer((): _Attempt => {
        const t = now();
        const e = entryOf(key, t);
        if (!fencing && !queue?.queued) {
          // A caller that is not queued tries a plain SET NX PX first.
          if (e?.owner === undefined) {
            take(e ?? newEntry(key), token, ttlMs, false, t);
            return { acquired: true, remainingMs: ttlMs };
          }
          if (!queue) return { acquired: false, remainingMs: -1, dueInMs: -1 };
          // Held: join the queue.
        }
        if (!queue) {
          // A single fenced attempt: SET NX PX and the fence, in one step (_TAKE_FENCED).
          if (e?.owner === undefined) {
            const issued = take(e ?? newEntry(key), token, ttlMs, true, t);
            return { acquired: true, remainingMs: ttlMs, fence: issued };
          }
          if (e.owner === token) {
            return { acquired: true, remainingMs: pttl(e, t), fence: e.fence ??= fence() };
          }
          return { acquired: false, remainingMs: pttl(e, t), dueInMs: -1 };
        }
        return attempt(e ?? newEntry(key), token, ttlMs, queue, fencing, t);
      }),
    release: (key, token) =>
      _answer(() => {
        const t = now();
        const e = entryOf(key, t);
        if (e === undefined || e.owner !== token) return false;
        let head = e.head;
        if (head !== undefined && t - head.since >= head.windowMs) {
          if (handOver(e, head.token, t)) return true;
          // It died: the next waiter's window starts now.
          head = nextHead(e, t);
        }
        e.owner = undefined;
        e.fence = undefined;
        // Freed within the first waiter's window: handed over on the next turn, unless
        // the code that runs on from here takes it again.
        if (head !== undefined) nudgeLater(key);
        tidy(key, e);
        return true;
      }),
    extend: (key, token, ttlMs) =>
      _answer(() => {
        const t = now();
        const e = entryOf(key, t);
        if (e === undefined || e.owner !== token) return false;
        e.expiresAt = t + ttlMs;
        return true;
      }),
    status: (key, token) =>
      _answer((): LockStatus => {
        const t = now();
        const e = entryOf(key, t);
        if (e === undefined || e.owner !== token) return { owned: false, remainingMs: 0 };
        return { owned: true, remainingMs: pttl(e, t) };
      }),
    leave: (key, token) =>
      _answer(() => {
        const t = now();
        const e = entryOf(key, t);
        if (e === undefined) return;
        // Out of the queue, giving back a lock handed to it meanwhile; a free lock goes
        // to the next waiter.
        e.queue.delete(token);
        if (e.owner === token) {
          e.owner = undefined;
          e.fence = undefined;
        }
        let head = e.head ?? nextHead(e, t);
        if (head?.token === token) head = nextHead(e, t);
        if (e.owner === undefined) handOverNext(e, head, t);
        tidy(key, e);
      }),
    news(subscriber) {
      // Waiters hear their news in this process; `subscriber: false` makes them poll, as
      // on Redis.
      return subscriber === false ? undefined : news;
    },
  };
}
