import { acquireLock } from "./acquire_lock.ts";
import { _acquireOptions } from "./_options.ts";
import { _checkFunction } from "./_validate.ts";
import { LockLostError } from "./errors.ts";
import type { LockClient, LockContext, WithLockOptions } from "./types.ts";

const ACTION = "run with lock";

/**
 * Runs `fn` while holding the lock on `key`, and releases the lock afterwards, also
 * when `fn` throws. While `fn` runs, a watchdog keeps the lease alive, and `signal`
 * aborts if the lock is lost anyway. `fn`'s error comes back unchanged; its value comes
 * back only when the release shows the lock was still held to the end. Otherwise (the
 * lease ran out, another owner took it, Redis failed or stayed unreachable until the
 * lease's end) the call rejects with a {@linkcode LockLostError} that carries the value
 * as `error.value`, so that a success the lock cannot vouch for never looks like one.
 *
 * @typeParam T The value `fn` resolves to.
 * @param redis Any supported Redis client (see {@linkcode RedisClient}), or an array of
 * clients of independent servers for Redlock; see {@linkcode LockClient}.
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
 * `key`, `options` or an option has the wrong type, or an option name is unknown;
 * nothing is sent to Redis.
 * @throws {RangeError} When a duration or count is out of range.
 * @throws {LockLostError} When `fn` succeeded but the lock cannot vouch for it: the
 * release found another owner or no key, the watchdog found it lost, or Redis failed or
 * did not answer before the lease's end. `error.value` is what `fn` returned.
 * @throws {RedisUnavailableError} When Redis did not answer the acquire in time.
 * @throws {RedisReplyError} When the client gave a reply Redis does not send.
 *
 * @example Usage
 * ```ts
 * import { lockKey, type RedisClient, withLock } from "@baton/lock";
 *
 * // Stands in for your client (new Redis(), createClient(), ...): it grants every lock.
 * const redis: RedisClient = { sendCommand: ([cmd]) => Promise.resolve(cmd === "SET" ? "OK" : 1) };
 * const processWithdrawal = (_userId: string, amount: number) => Promise.resolve(2000 - amount);
 *
 * const balance = await withLock(
 *   redis,
 *   lockKey("withdraw", "user123"),
 *   () => processWithdrawal("user123", 1000),
 *   { ttl: "10s", errorMessage: "Withdrawal in progress, please try again later" },
 * );
 * console.log(balance); // 1000
 * ```
 */
export function withLock<T>(
  redis: LockClient,
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
  redis: LockClient,
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
  redis: LockClient,
  key: string,
  fn: (context: LockContext) => T | Promise<T>,
  options?: WithLockOptions,
): Promise<T | null>;
export async function withLock<T>(
  redis: LockClient,
  key: string,
  fn: (context: LockContext) => T | Promise<T>,
  options?: WithLockOptions,
): Promise<T | null> {
  // The options are checked as given (acquireLock then sees a copy with the watchdog on
  // by default, which must not hide a bad value).
  _acquireOptions(options, ACTION);
  _checkFunction(fn, "fn", ACTION);
  const lock = await acquireLock(redis, key, {
    ...options,
    watchdog: options?.watchdog === undefined ? true : options.watchdog,
  });
  if (lock === null) return null;
  let value: T;
  try {
    value = await fn({
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
  // fn succeeded: its value is returned only if the lock was still ours at the end.
  let released: boolean;
  try {
    released = await lock.release();
  } catch (error) {
    // Redis failed before the lease ran out: nothing vouches for the lock.
    throw new LockLostError(key, error, { value });
  }
  if (lock.signal.aborted) {
    // The error fn saw on its signal, now with fn's value.
    const reason = lock.signal.reason;
    if (reason instanceof LockLostError) throw Object.assign(reason, { hasValue: true, value });
    throw new LockLostError(key, reason, { value });
  }
  if (!released) {
    throw new LockLostError(
      key,
      new Error("the release found another owner's token or no key: the lease had run out"),
      { value },
    );
  }
  return value;
}
