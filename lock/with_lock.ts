import { acquireLock } from "./acquire_lock.ts";
import { _checkFunction } from "./_validate.ts";
import type { LockContext, RedisClient, WithLockOptions } from "./types.ts";

/**
 * Runs `fn` while holding the lock on `key`, and releases the lock afterwards, also
 * when `fn` throws. Its value and its error come back unchanged. While `fn` runs, a
 * watchdog keeps the lease alive, and `signal` aborts if the lock is lost anyway.
 *
 * @typeParam T The value `fn` resolves to.
 * @param redis Any supported Redis client; see {@linkcode RedisClient}.
 * @param key The lock's key; see {@linkcode lockKey}.
 * @param fn The critical section. It receives a {@linkcode LockContext} with the held
 * lock and a `signal` that aborts when the lock is lost.
 * @param options The lease (`ttl`, seconds, default 30), what happens when the lock
 * is held elsewhere (`throwOnFail`, `errorMessage`), how long to wait for it
 * (`timeout`, `retries`, `signal`, ...), and the watchdog (on by default: the lease is
 * renewed every `ttl / 3` while `fn` runs).
 * @returns What `fn` returned, or `null` when the lock was held elsewhere and
 * `throwOnFail` is false (then `fn` did not run).
 * @throws {LockAcquireError} When the lock is held elsewhere and `throwOnFail` is not
 * false; `fn` did not run.
 * @throws {TypeError} When `redis` is not a supported client, `fn` is not a function, or
 * `key` or an option has the wrong type.
 * @throws {RangeError} When `ttl` is out of range.
 * @throws {LockLostError} When the lock was lost while `fn` ran (the watchdog found
 * another owner or no key, or Redis stayed unreachable past the lease) and `fn` itself
 * did not fail; thrown once `fn` settles.
 *
 * @example Usage
 * ```ts ignore
 * import { Redis } from "ioredis";
 * import { lockKey, withLock } from "@baton/lock";
 *
 * const redis = new Redis();
 * const result = await withLock(
 *   redis,
 *   lockKey("withdraw", "user123"),
 *   async () => await processWithdrawal("user123", 1000),
 *   { ttl: 10, errorMessage: "Withdrawal in progress, please try again later" },
 * );
 * ```
 */
export function withLock<T>(
  redis: RedisClient,
  key: string,
  fn: (context: LockContext) => T | Promise<T>,
  options: WithLockOptions & { throwOnFail: false },
): Promise<T | null>;
/**
 * The same, with `throwOnFail` true or left out: never resolves to `null`.
 *
 * @param redis Any supported Redis client.
 * @param key The lock's key.
 * @param fn The critical section.
 * @param options The lease and the failure behaviour.
 * @returns What `fn` returned.
 * @throws {LockAcquireError} When the lock is held elsewhere.
 */
export function withLock<T>(
  redis: RedisClient,
  key: string,
  fn: (context: LockContext) => T | Promise<T>,
  options?: WithLockOptions & { throwOnFail?: true },
): Promise<T>;
/**
 * The same, with a `throwOnFail` known only at run time.
 *
 * @param redis Any supported Redis client.
 * @param key The lock's key.
 * @param fn The critical section.
 * @param options The lease and the failure behaviour.
 * @returns What `fn` returned, or `null` when the lock is held elsewhere and `throwOnFail` is false.
 * @throws {LockAcquireError} When the lock is held elsewhere and `throwOnFail` is not false.
 */
export function withLock<T>(
  redis: RedisClient,
  key: string,
  fn: (context: LockContext) => T | Promise<T>,
  options?: WithLockOptions,
): Promise<T | null>;
export async function withLock<T>(
  redis: RedisClient,
  key: string,
  fn: (context: LockContext) => T | Promise<T>,
  options?: WithLockOptions,
): Promise<T | null> {
  _checkFunction(fn, "fn", "run with lock");
  const lock = await acquireLock(redis, key, {
    ...options,
    watchdog: options?.watchdog ?? true,
  });
  if (lock === null) return null;
  let result: T;
  try {
    result = await fn({
      get signal() {
        return lock.signal;
      },
      lock,
    });
  } catch (error) {
    // fn's error wins; a failed release must not hide it.
    await lock.release().catch(() => {});
    throw error;
  }
  if (lock.signal.aborted) {
    await lock.release().catch(() => {});
    throw lock.signal.reason;
  }
  await lock.release();
  return result;
}
