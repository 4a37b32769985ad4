import { _backendOf } from "./_backend.ts";
import { _Lock } from "./_lock.ts";
import { _checkBoolean, _checkKey, _checkOptions, _checkString, _ttlMs } from "./_validate.ts";
import { LockAcquireError } from "./errors.ts";
import type { AcquireLockOptions, Lock, RedisClient } from "./types.ts";

const ACTION = "acquire lock";

/**
 * Takes the lock on `key` in one Redis round trip, with a lease of `ttl` seconds and a
 * fresh random owner token. Release it with `lock.release()` when the critical section
 * ends, or declare it with `await using` to release it on scope exit.
 *
 * @param redis Any supported Redis client; see {@linkcode RedisClient}.
 * @param key The lock's key; see {@linkcode lockKey}.
 * @param options The lease (`ttl`, seconds, default 30) and what happens when the lock is
 * held elsewhere (`throwOnFail`, default true, and `errorMessage`).
 * @returns The lock handle, or `null` when the lock is held elsewhere and `throwOnFail`
 * is false.
 * @throws {LockAcquireError} When the lock is held elsewhere and `throwOnFail` is not
 * false; its message is `errorMessage` when given.
 * @throws {TypeError} When `redis` is not a supported client, or `key` or an option has
 * the wrong type; nothing is sent to Redis.
 * @throws {RangeError} When `ttl` is not a positive finite number of seconds up to 30 days.
 *
 * @example Usage
 * ```ts ignore
 * import { Redis } from "ioredis";
 * import { acquireLock, lockKey } from "@baton/lock";
 *
 * const redis = new Redis();
 * const lock = await acquireLock(redis, lockKey("user", 123), {
 *   ttl: 10,
 *   errorMessage: "Operation in progress",
 * });
 * try {
 *   await doSomething();
 * } finally {
 *   await lock.release();
 * }
 * ```
 *
 * @example Release on scope exit, and no throw when the lock is held
 * ```ts ignore
 * await using lock = await acquireLock(redis, "lock:user:456", { throwOnFail: false });
 * if (lock) await doSomething();
 * ```
 */
export function acquireLock(
  redis: RedisClient,
  key: string,
  options: AcquireLockOptions & { throwOnFail: false },
): Promise<Lock | null>;
/**
 * The same, with `throwOnFail` true or left out: never resolves to `null`.
 *
 * @param redis Any supported Redis client.
 * @param key The lock's key.
 * @param options The lease and the failure behaviour.
 * @returns The lock handle.
 * @throws {LockAcquireError} When the lock is held elsewhere.
 */
export function acquireLock(
  redis: RedisClient,
  key: string,
  options?: AcquireLockOptions & { throwOnFail?: true },
): Promise<Lock>;
/**
 * The same, with a `throwOnFail` known only at run time.
 *
 * @param redis Any supported Redis client.
 * @param key The lock's key.
 * @param options The lease and the failure behaviour.
 * @returns The lock handle, or `null` when the lock is held elsewhere and `throwOnFail` is false.
 * @throws {LockAcquireError} When the lock is held elsewhere and `throwOnFail` is not false.
 */
export function acquireLock(
  redis: RedisClient,
  key: string,
  options?: AcquireLockOptions,
): Promise<Lock | null>;
export async function acquireLock(
  redis: RedisClient,
  key: string,
  options?: AcquireLockOptions,
): Promise<Lock | null> {
  _checkOptions(options, ACTION);
  _checkKey(key, ACTION);
  const ttlMs = _ttlMs(options?.ttl === undefined ? 30 : options.ttl, ACTION);
  _checkBoolean(options?.throwOnFail, "throwOnFail", ACTION);
  _checkString(options?.errorMessage, "errorMessage", ACTION);
  const backend = _backendOf(redis, ACTION);

  const token = crypto.randomUUID();
  const startedAt = performance.now();
  const attempt = await backend.acquire(key, token, ttlMs);
  if (attempt.acquired) return new _Lock(backend, key, token, ttlMs, startedAt);
  if (options?.throwOnFail === false) return null;
  throw new LockAcquireError(
    options?.errorMessage ?? `Cannot acquire lock "${key}": it is held elsewhere`,
    { key, attempts: 1, waitedMs: performance.now() - startedAt },
  );
}
