/**
 * An in-memory store of locks: {@linkcode MemoryStore}, passed where a Redis client goes
 * (to `acquireLock`, `withLock` and `debounce`), with the same behaviour as on Redis and
 * no server. Use it to test your own code that takes locks or debounces, with a clock you
 * move yourself, or in an application that runs as one process only: the locks live in
 * this process and no other process sees them.
 *
 * ```ts
 * import { withLock } from "@baton/lock";
 * import { MemoryStore } from "@baton/lock/memory";
 *
 * const store = new MemoryStore();
 * const balance = await withLock(store, "lock:withdraw:user123", () => 2000 - 100);
 * console.log(balance); // 1900
 * ```
 *
 * It is a separate entry point, so that an application on Redis never loads it.
 *
 * @module
 */
import { _memoryDebounce } from "./_memory_debounce.ts";
import { _fences, _memoryLocks } from "./_memory_store.ts";
import { _STORE, type _Store } from "./_store.ts";
import { _checkFunction, _checkKnownOptions, _checkOptions } from "./_validate.ts";
import type { LockStore } from "./types.ts";

const ACTION = "create MemoryStore";

/** Options of {@linkcode MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * The clock of the store, in milliseconds: whatever it returns, only the differences
   * between its readings count. Leases, a waiter's place in the queue, the fairness
   * window, debounce's quiet period and every key's expiry are measured on it, so a test
   * can make a lease run out by moving a fake clock forward, without sleeping.
   *
   * It does not control baton's own waits, which use real timers: a waiter's `timeout`
   * and polling delays, the watchdog's renewals (every `ttl / 3`), `lock.isAcquired()`
   * (the local view of the lease), and debounce's sleep of `wait` before a call claims
   * its burst. Nor does it set fencing tokens, which come from the system clock so that
   * they keep rising across a restart of the process.
   *
   * @default {() => performance.now()}
   */
  now?: () => number;
}

/** The names {@linkcode MemoryStoreOptions} has. */
const OPTION_NAMES = ["now"] satisfies (keyof MemoryStoreOptions)[];

/**
 * Locks, their waiters and debounce's bursts in this process's memory. Pass it where a
 * Redis client goes, to `acquireLock`, `withLock` and `debounce`: leases that expire, owner tokens, `extend()`, a release that only
 * the owner can make, `status()`, waiters queued in arrival order and woken on release
 * (with the same fairness window), fencing tokens (`fencing: true`), and debounce's edges,
 * all as on Redis. Every function given the same MemoryStore shares its locks, as
 * clients of one Redis server do; nothing is shared between processes, or between two
 * MemoryStores.
 *
 * Waiters hear releases, and debounced calls hear each other, in this process: a
 * `subscriber` connection given in the options is not used (`subscriber: false` makes
 * them poll, as on Redis). It keeps nothing alive: no timer of its own holds the process
 * open, and the keys nobody uses any more are forgotten as they lapse.
 *
 * @example Usage
 * ```ts
 * import { acquireLock } from "@baton/lock";
 * import { MemoryStore } from "@baton/lock/memory";
 *
 * const store = new MemoryStore();
 * const lock = await acquireLock(store, "lock:report", { ttl: "10s" });
 * const other = await acquireLock(store, "lock:report", { throwOnFail: false });
 * console.log(other); // null: held
 * await lock.release();
 * ```
 *
 * @example Make a lease run out without sleeping, with a clock you move
 * ```ts
 * import { acquireLock } from "@baton/lock";
 * import { MemoryStore } from "@baton/lock/memory";
 *
 * let nowMs = 0;
 * const store = new MemoryStore({ now: () => nowMs });
 *
 * const crashed = await acquireLock(store, "lock:job", { ttl: 10 }); // never released
 * console.log(await acquireLock(store, "lock:job", { throwOnFail: false })); // null: held
 *
 * nowMs += 11_000; // 11 s later, by the store's clock: the 10 s lease has run out
 * const next = await acquireLock(store, "lock:job", { ttl: 10 });
 * console.log((await crashed.status()).owned); // false
 * await next.release();
 * ```
 */
export class MemoryStore implements LockStore {
  readonly #store: _Store;

  /**
   * Makes an empty store.
   *
   * @param options The clock (`now`, in ms; by default `performance.now()`).
   * @throws {TypeError} When `options` is not an object, has an unknown option, or `now`
   * is not a function.
   */
  constructor(options?: MemoryStoreOptions) {
    _checkOptions(options, ACTION);
    _checkKnownOptions(options, OPTION_NAMES, ACTION);
    const given = options?.now;
    if (given !== undefined) _checkFunction(given, "now", ACTION);
    const now = given ?? (() => performance.now());
    this.#store = _memoryLocks(now, _fences(), _memoryDebounce(now));
  }

  /**
   * The store that baton drives; not for use outside baton.
   *
   * @ignore
   */
  get [_STORE](): _Store {
    return this.#store;
  }
}
