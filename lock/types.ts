import type { _STORE } from "./_store.ts";
import type { LockLostError } from "./errors.ts";

/**
 * A client in the shape of ioredis (`new Redis()`, also `Cluster` and Valkey's
 * iovalkey): it sends a raw command with `call(command, ...args)`.
 */
export interface CallClient {
  /** Sends one raw command and resolves to its reply. */
  call(command: string, ...args: string[]): Promise<unknown>;
}

/**
 * A client in the shape of node-redis (`createClient()` from `redis` v4 and
 * later), and any client that can send a raw command as one array of strings.
 */
export interface SendCommandClient {
  /** Sends one raw command, given as `[command, ...args]`, and resolves to its reply. */
  sendCommand(args: string[]): Promise<unknown>;
}

/**
 * A client in the shape of Bun's built-in `RedisClient` (`import { RedisClient } from "bun"`):
 * it sends a raw command with `send(command, args)`.
 */
export interface SendClient {
  /** Sends one raw command and resolves to its reply. */
  send(command: string, args: string[]): Promise<unknown>;
}

/**
 * The `Redis` client of `@upstash/redis`, which speaks Upstash's REST API over HTTP (for
 * serverless and edge runtimes). baton recognises it by these two methods and sends each
 * command through the requester the client is built on, with none of its JSON
 * deserialization; it cannot subscribe, so its waiters poll.
 */
export interface UpstashClient {
  /** Runs a cached script (recognised by baton, not called). */
  evalsha(sha1: string, keys: string[], args: string[]): Promise<unknown>;
  /** Loads a script (recognised by baton, not called). */
  scriptLoad(script: string): Promise<unknown>;
}

/**
 * Any Redis client that baton can drive. baton needs nothing but a way to send one
 * raw command, so it works with the client you already have:
 *
 * | client | shape | sends with |
 * | --- | --- | --- |
 * | ioredis, iovalkey | {@linkcode CallClient} | `call(command, ...args)` |
 * | ioredis' and iovalkey's `Cluster` | {@linkcode CallClient} | `call(command, ...args)`, routed by its keys |
 * | node-redis (`redis`) | {@linkcode SendCommandClient} | `sendCommand([command, ...args])` |
 * | node-redis' `createCluster()` | none yet: pass it `as unknown as RedisClient` | `sendCommand(firstKey, false, [command, ...args])` |
 * | Bun's `RedisClient` | {@linkcode SendClient} | `send(command, args)` |
 * | `@upstash/redis` (`new Redis({ url, token })`) | {@linkcode UpstashClient} | one HTTP request per command |
 * | anything else | {@linkcode SendCommandClient} | a `sendCommand` you write |
 *
 * When an object has several of these methods, `call` wins over `sendCommand`, and
 * `sendCommand` over `send`.
 *
 * On Redis Cluster, a lock's keys share its hash slot, and its waiters' news goes by
 * sharded pub/sub (Redis 7+) where the client can subscribe to it (node-redis' cluster,
 * ioredis' Cluster), else by classic pub/sub (iovalkey's Cluster).
 */
export type RedisClient = CallClient | SendCommandClient | SendClient | UpstashClient;

/**
 * A store of locks that is not a Redis client, passed where a Redis client goes: a
 * `MemoryStore` from `@baton/lock/memory`, which keeps locks in this process (to test
 * code that takes locks without a Redis server, or for an application of one process).
 * Only baton's own stores implement it: its one member is the store baton drives, under
 * a symbol of baton's.
 *
 * @example A function that takes any store of locks, tested on a MemoryStore
 * ```ts
 * import { type LockClient, withLock } from "@baton/lock";
 * import { MemoryStore } from "@baton/lock/memory";
 *
 * const chargeOnce = (redis: LockClient, orderId: string) =>
 *   withLock(redis, `lock:charge:${orderId}`, () => "charged");
 *
 * console.log(await chargeOnce(new MemoryStore(), "order-1")); // "charged"
 * ```
 */
export interface LockStore {
  /**
   * The store that baton drives; not for use outside baton.
   *
   * @ignore
   */
  readonly [_STORE]: unknown;
}

/**
 * Where locks live, as passed to {@linkcode acquireLock}, {@linkcode withLock} and
 * {@linkcode debounce}: one Redis client; a {@linkcode LockStore} such as a `MemoryStore`
 * (from `@baton/lock/memory`); or, for locks, an array of clients of independent Redis
 * servers, whose majority holds the lock (Redlock; clients of different kinds may be
 * mixed).
 */
export type LockClient = RedisClient | LockStore | readonly RedisClient[];

/**
 * A duration with an explicit unit: `"250ms"`, `"10s"`, `"1.5m"`, `"2h"` or `"7d"`.
 * Every duration option takes one, as well as a bare number in the option's own unit
 * (seconds for `ttl`, milliseconds for the others).
 */
export type Duration = `${number}${"ms" | "s" | "m" | "h" | "d"}`;

/** Options of {@linkcode acquireLock}. */
export interface AcquireLockOptions {
  /**
   * How long the lease lasts: a number of **seconds** (as in other lock modules), or a
   * {@linkcode Duration} with a unit (`"10s"`, `"500ms"`, `"2h"`). Fractions are allowed
   * (`0.25` is 250 ms); the lease is sent to Redis in whole milliseconds, from 1 ms to
   * 30 days. A bare number above 3600 (an hour) is rejected, so that `ttl: 10_000` meant
   * as milliseconds fails loudly: write longer leases with a unit (`"2h"`).
   *
   * @default {30}
   */
  ttl?: number | Duration;
  /**
   * Whether a lock held elsewhere makes {@linkcode acquireLock} throw a
   * {@linkcode LockAcquireError} (`true`) or resolve to `null` (`false`).
   *
   * @default {true}
   */
  throwOnFail?: boolean;
  /**
   * The message of the {@linkcode LockAcquireError} thrown when the lock is held
   * elsewhere, for example one you can show your user. By default the message
   * names the key.
   */
  errorMessage?: string;
  /**
   * How long to wait for a held lock, in milliseconds or as a {@linkcode Duration}, before
   * giving up with a {@linkcode LockAcquireError} (or `null`). `0` makes a single
   * attempt; `Infinity` waits until `signal` aborts or `retries` run out. Waiters queue
   * in arrival order and are woken when the lock is released (see `subscriber`), with
   * polling as the fallback.
   *
   * It also bounds the wait for Redis itself: a command still unanswered at the timeout
   * (Redis down, the client queueing commands while it reconnects) is given up, and the
   * call rejects with a {@linkcode RedisUnavailableError} unless Redis had answered that
   * the lock is held. With a single attempt, an unanswered command is given up after
   * the lesser of `ttl` and 1 s. A grant that arrives after that is released at once.
   *
   * @default {0}
   */
  timeout?: number | Duration;
  /**
   * How many more attempts to make after the first. With a `timeout` above 0 and no
   * `retries`, attempts go on until the timeout.
   *
   * @default {0, or Infinity when `timeout` is above 0}
   */
  retries?: number;
  /**
   * The first polling delay of a waiter that cannot subscribe, in milliseconds; it
   * doubles per retry up to `maxRetryDelay`. A subscribed waiter is told when a release
   * hands it the lock, so it polls only in case that news got lost: every
   * `maxRetryDelay`, and once shortly after its `fairnessWindow` when it is first in
   * line. No waiter sleeps past the holder's lease. At least 1 ms, and not above
   * `maxRetryDelay` when both are given (when only `retryDelay` is, it raises the
   * default `maxRetryDelay` to match; when only `maxRetryDelay` is, the default
   * `retryDelay` is lowered to it). Milliseconds, or a {@linkcode Duration}.
   *
   * @default {10}
   */
  retryDelay?: number | Duration;
  /**
   * The longest polling delay of a waiter, in milliseconds. A waiter's place in the
   * queue lapses when it has not polled for `2 * maxRetryDelay + 2000` ms (its process
   * died). At least 1 ms. Milliseconds, or a {@linkcode Duration}.
   *
   * @default {500}
   */
  maxRetryDelay?: number | Duration;
  /**
   * The share (0 to 1) of each polling delay that is randomised away, so that waiters
   * that failed together do not retry together.
   *
   * @default {0.5}
   */
  jitter?: number;
  /**
   * How unfair waiting may be, in milliseconds. Waiters queue in arrival order; once a
   * waiter is first in line, a holder that releases may still take the lock straight
   * back (as may any caller not already queued) for this long, after which the next
   * release hands the lock to that waiter. Waiters further back never jump the line.
   * On a busy lock this keeps one process taking the lock again and again for a while
   * (switching processes costs far more than a round trip) while no waiter starves: the
   * k-th in line waits about k times (this window plus one hold). `0` grants in strict
   * arrival order. The first waiter's own value counts. Milliseconds, or a
   * {@linkcode Duration}.
   *
   * @default {10}
   */
  fairnessWindow?: number | Duration;
  /** Stops waiting as soon as it aborts: the call rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * How waiters learn that the lock was released. By default baton opens one
   * subscriber connection per client with `duplicate()`, shared by all of its waiters
   * and closed when the last one is done. Pass a client connection to subscribe on
   * instead (baton never closes it), or `false` to only poll.
   *
   * @default {a duplicate of `redis`, where the client can make one and subscribe on it:
   * ioredis shape with duplicate() and on(), node-redis or Bun shape with duplicate() and
   * subscribe(); otherwise waiters poll}
   */
  subscriber?: RedisClient | false;
  /**
   * Keeps the lease alive while the lock is held: extends it to `ttl` every `ttl / 3`
   * seconds until release. When an extension finds the lock lost (another owner or no
   * key), or Redis stays unreachable until the lease runs out, the handle's `signal`
   * aborts with a {@linkcode LockLostError} and `onLost` is called.
   *
   * @default {false for acquireLock, true for withLock}
   */
  watchdog?: boolean;
  /**
   * Called once when the lock is found lost while held, with the
   * {@linkcode LockLostError}. It must not throw: an exception it throws is dropped (it
   * runs from a timer, where a throw would crash the process); the loss is still on the
   * handle's `signal`.
   */
  onLost?: (error: LockLostError) => void;
  /**
   * Issues a fencing token with the lock, as the handle's `fence`: a `bigint` strictly
   * greater than every fence issued before for this key, whoever held it, also across
   * lease expiry and a restart of Redis. It comes in the acquire's own round trip (a
   * script instead of a plain `SET NX`), also when a release hands the lock to a waiter.
   * A storage that remembers the highest fence it has seen and rejects lower ones is
   * safe even from a holder that was paused past its lease. Not available on several
   * independent servers (Redlock): there it is a TypeError.
   *
   * @default {false}
   */
  fencing?: boolean;
}

/**
 * Options of {@linkcode withLock}: those of {@linkcode AcquireLockOptions}, with the
 * watchdog on by default.
 */
export interface WithLockOptions extends AcquireLockOptions {}

/** What Redis says about a lock handle, from {@linkcode Lock.status}. */
export interface LockStatus {
  /** Whether this handle's token still owns the key in Redis. */
  owned: boolean;
  /**
   * The milliseconds left on the lease when `owned` is true, otherwise 0.
   */
  remainingMs: number;
}

/**
 * The handle of a lock that {@linkcode acquireLock} took. Release it when the
 * critical section ends: `await lock.release()`, or declare it with
 * `await using` to release it on scope exit.
 */
export interface Lock extends AsyncDisposable {
  /** The lock's key in Redis. */
  readonly key: string;
  /**
   * This owner's random token, the value stored under `key`. Release and extend
   * only act while the key still holds this token.
   */
  readonly token: string;
  /**
   * The fencing token of this lock, when it was taken with `fencing: true`: strictly
   * greater than every fence issued before for this key, whoever held it. Pass it with
   * every write the lock protects, and have the storage reject a write whose fence is
   * lower than one it has seen (see the README). `undefined` without `fencing`.
   */
  readonly fence: bigint | undefined;
  /**
   * Aborts when the lock is found lost while held: by `extend()` or the watchdog
   * finding another owner or no key, or by the watchdog when Redis stayed unreachable
   * until the lease ran out. Its reason is then a {@linkcode LockLostError}.
   */
  readonly signal: AbortSignal;
  /**
   * Releases the lock: deletes the key only if it still holds this handle's token,
   * in one atomic step, so it never deletes a lock that another owner holds.
   * Calling it again is harmless and resolves to `false`. Redis is given until the
   * lease's end (plus a margin of 100 ms) to answer: by then the lease has run out, so it
   * resolves `false` whatever the client still has queued.
   *
   * @returns `true` when this handle still owned the key and deleted it, `false`
   * when the lease had already expired (or the lock was already released).
   */
  release(): Promise<boolean>;
  /**
   * Resets the lease to `ttl` from now, if this handle still owns the key. Redis is given
   * until the current lease's end to answer; after that the lock counts as lost.
   *
   * @param ttl The new lease: seconds as a number (up to 3600), or a
   * {@linkcode Duration} (`"90s"`, `"2h"`); by default the `ttl` the lock was taken with.
   * @returns `true` when the lease was reset, `false` when the lock was lost
   * (expired, taken by another owner, or released).
   */
  extend(ttl?: number | Duration): Promise<boolean>;
  /**
   * The local view: `true` from acquisition until {@linkcode Lock.release} or an
   * `extend()` that found the lock lost, and until the lease has run out by the
   * local clock. It asks nothing of Redis; use {@linkcode Lock.status} for that.
   */
  isAcquired(): boolean;
  /**
   * Asks Redis whether this handle still owns the key and how long the lease has left.
   * Unanswered at the lease's end, it resolves `{ owned: false, remainingMs: 0 }`.
   *
   * @returns The owner check and the remaining milliseconds.
   */
  status(): Promise<LockStatus>;
}

/**
 * What {@linkcode withLock} hands to its critical section.
 */
export interface LockContext {
  /**
   * Aborts when the lock is lost while the critical section runs, so that it can stop
   * early; its reason is then a {@linkcode LockLostError}.
   */
  readonly signal: AbortSignal;
  /** The held lock, to extend it or ask Redis about it. Release happens on return. */
  readonly lock: Lock;
}
