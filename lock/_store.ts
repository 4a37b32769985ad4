// The seam between the lock logic and where locks live. A store is one value that says
// what it can do: take, release, extend and inspect a lease (every store); queue
// waiters in arrival order, deliver news to a waiter, issue fencing tokens (where it
// can). Everything above it (waiting with timeout, backoff, abort and fairness; the
// Lock handle and its watchdog; withLock) works on any store, and polls where a store
// delivers no news.
import type { LockStatus } from "./types.ts";

/**
 * The property under which a value passed where a Redis client goes carries its own store
 * (a MemoryStore, say): `_storeOf` uses it as is.
 */
export const _STORE: unique symbol = Symbol.for("@baton/lock.store");

/** A value that carries its own store. */
export interface _HasStore {
  readonly [_STORE]: _Store;
}

/** The outcome of one acquire attempt. */
export type _Attempt =
  /**
   * `remainingMs`: the lease left, less than the ttl when the lock was handed over;
   * `fence`: the fencing token, when one was asked for.
   */
  | { acquired: true; remainingMs: number; fence?: bigint }
  /**
   * `remainingMs`: the holder's lease left, or -1 when unknown; `dueInMs`: when the
   * caller is the first waiter, the ms left of its window, else -1.
   */
  | { acquired: false; remainingMs: number; dueInMs: number };

/** How a waiter waits in a store's queue: see {@linkcode _Store.acquire}. */
export interface _Queue {
  /** How long its place is kept without a new attempt. */
  leaseMs: number;
  /** Once it is first, how long others may still take a free lock. */
  windowMs: number;
  /** Where its news is to be delivered (from {@linkcode _Inbox.address}), or "". */
  address: string;
  /** Whether it may be queued already: it attempted before. */
  queued: boolean;
}

/** What one acquire attempt asks for besides the lease. */
export interface _AcquireRequest {
  /** Set for a waiter: it joins (or keeps its place in) the queue, where there is one. */
  queue?: _Queue | undefined;
  /** Whether a fencing token is to be issued with the lock (only where `fences`). */
  fencing: boolean;
}

/** News for one waiter: a release handed it the lock (with its fence), or it is first. */
export type _NewsKind = "granted" | "first";

/** A waiter's registration for its news. */
export interface _Inbox {
  /** The address to give the store with each attempt, so its news reaches this inbox. */
  address: string;
  /**
   * Settles once news can arrive: `true` when news sent before then may have been
   * missed (try again at once), `false` when not. Rejects when no news can come (the
   * waiter polls).
   */
  ready: Promise<boolean>;
  /** Stops listening. */
  stop(): void;
}

/** How a store delivers news to its waiters. */
export interface _News {
  /** Whether listening costs nothing now (a subscriber connection is open). */
  readonly open: boolean;
  /** Listens for the news of waiter `token` until `stop()`. */
  inbox(token: string, onNews: (kind: _NewsKind, fence?: bigint) => void): _Inbox;
}

/**
 * A store of locks. Every method is one round trip on a Redis server, but a waiter's
 * first attempt at a held lock: two (it tries, then queues).
 */
export interface _Store {
  /** What the store is, for error messages: "Redis", "3 Redis servers (Redlock)". */
  readonly name: string;
  /** Whether waiters queue in arrival order and may be handed the lock on release. */
  readonly queues: boolean;
  /** Whether it issues fencing tokens. */
  readonly fences: boolean;
  /** Why it cannot issue fencing tokens, for the error message, when it cannot. */
  readonly fencingRefusal?: string;
  /**
   * Takes `key` for `token` for `ttlMs`. With a queue, the caller is a waiter: it joins
   * (or keeps its place in) the queue, its place lapses after `leaseMs` unless it
   * attempts again, once it is first others may take a free lock for `windowMs`, and
   * a release that hands it the lock (or frees it in its turn) says so at `address`.
   */
  acquire(key: string, token: string, ttlMs: number, request: _AcquireRequest): Promise<_Attempt>;
  /** Deletes `key` if `token` owns it (and hands it to the next waiter). */
  release(key: string, token: string): Promise<boolean>;
  /** Resets the lease of `key` to `ttlMs` if `token` owns it. */
  extend(key: string, token: string, ttlMs: number): Promise<boolean>;
  /** Whether `token` owns `key`, and the lease's remaining ms. */
  status(key: string, token: string): Promise<LockStatus>;
  /**
   * Takes waiter `token` out of the queue of `key`, giving back the lock if it was
   * handed to it meanwhile (or releasing it, for a store without a queue).
   */
  leave(key: string, token: string): Promise<void>;
  /**
   * How its waiters get news, given the caller's `subscriber` option; undefined when
   * they cannot (they poll).
   */
  news(subscriber: unknown): _News | undefined;
  /** What debounce needs of it. */
  readonly debounce: _DebounceStore;
}

/** What a claim of a trailing burst's call found: see {@linkcode _DebounceStore.claim}. */
export type _Claim =
  /** Claimed: the call runs. */
  | { verdict: "run" }
  /** The quiet period has `inMs` left. */
  | { verdict: "wait"; inMs: number }
  /**
   * A later call holds the burst: `lastToken` when it is still pending, due in `dueInMs`.
   */
  | { verdict: "superseded"; lastToken: string | undefined; dueInMs: number }
  /** Cancelled, run by another instance, or no burst at all. */
  | { verdict: "cancelled" | "ran-elsewhere" | "expired" };

/** A burst claimed for running: its last call's token and arguments (JSON). */
export interface _ClaimedBurst {
  token: string;
  argsJson: string;
}

/** Another instance's call, announced to the instances of a burst. */
export interface _Announcement {
  seq: number;
  token: string;
  burst: string;
}

/** A subscription to a key's announcements. */
export interface _Listening {
  /** Settles once announcements can arrive; rejects when they cannot. */
  ready: Promise<unknown>;
  /** Stops listening. */
  stop(): void;
}

/**
 * What debounce needs of a store. Each decision two instances could race on is one atomic
 * step of the store. Tokens are "<instance id>:<n>", n counting that instance's calls.
 */
export interface _DebounceStore {
  /** Leading edge: true when this call starts a burst (and runs); the burst lasts `waitMs`. */
  lead(key: string, token: string, waitMs: number): Promise<boolean>;
  /**
   * Trailing edge: makes the call the burst's last one (due `waitMs` from now, the burst
   * expiring `ttlMs` after it), announces it, and returns the burst and the call's position.
   */
  record(
    key: string,
    token: string,
    argsJson: string,
    waitMs: number,
    ttlMs: number,
  ): Promise<{ burst: string; seq: number }>;
  /** Claims the burst for call `token` once its quiet period is over. */
  claim(key: string, token: string): Promise<_Claim>;
  /**
   * Claims a pending burst whose last call (not one of `instance`'s) is `takeoverMs` late:
   * the burst to run, or the ms until the takeover is due, or undefined when idle.
   */
  takeover(
    key: string,
    takeoverMs: number,
    instance: string,
  ): Promise<_ClaimedBurst | { inMs: number } | undefined>;
  /**
   * Claims the pending burst at once (flush), unless its last call is one of `instance`'s
   * numbered `cleared` or lower (then it is cancelled); undefined when none is pending.
   */
  flush(key: string, instance: string, cleared: number): Promise<_ClaimedBurst | undefined>;
  /** Cancels the pending burst while its last call is one of `instance`'s numbered `upTo` or lower. */
  cancel(key: string, instance: string, upTo: number): Promise<boolean>;
  /**
   * Listens for the announcements of calls on `key`, given the caller's `subscriber`
   * option; undefined where the store cannot deliver them (calls learn at their claim).
   */
  announcements(
    key: string,
    subscriber: unknown,
    onAnnouncement: (announcement: _Announcement) => void,
  ): _Listening | undefined;
}
