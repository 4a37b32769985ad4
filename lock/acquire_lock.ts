import { _acquireOptions, _checkFencing } from "./_options.ts";
import { _storeOf } from "./_store_of.ts";
import { _checkKey } from "./_validate.ts";
import { _Waiter } from "./_waiter.ts";
import type { AcquireLockOptions, Lock, LockClient } from "./types.ts";

const ACTION = "acquire lock";

/**
 * Takes the lock on `key`, with a lease of `ttl` and a fresh random owner token. A free
 * lock takes one Redis round trip (`SET NX PX`); a waiter's first attempt at a held
 * lock takes two (it tries, then joins the queue), and a handover on release none more. Release it with `lock.release()` when the critical section
 * ends, or declare it with `await using` to release it on scope exit.
 *
 * @param redis Any supported Redis client (see {@linkcode RedisClient}), or an array of
 * clients of independent servers for Redlock; see {@linkcode LockClient}.
 * @param key The lock's key; see {@linkcode lockKey}.
 * @param options The lease (`ttl`: seconds, or a duration such as `"10s"`; default 30 s),
 * what happens when the lock is held elsewhere (`throwOnFail`, default true, and
 * `errorMessage`), how long to wait for it (`timeout`, `retries`, `retryDelay`,
 * `maxRetryDelay`, `jitter`, `fairnessWindow`, `signal`, `subscriber`), and the
 * watchdog (`watchdog`, `onLost`); see {@linkcode AcquireLockOptions}.
 * @returns The lock handle, or `null` when the lock is held elsewhere and `throwOnFail`
 * is false.
 * @throws {LockAcquireError} When the lock is held elsewhere and `throwOnFail` is not
 * false; its message is `errorMessage` when given.
 * @throws {TypeError} When `redis` is not a supported client, `key`, `options` or an
 * option has the wrong type, or an option name is unknown; nothing is sent to Redis.
 * @throws {RangeError} When a duration or count is out of range (`ttl` from 1 ms to 30
 * days, a bare number of seconds at most 3600), or `retryDelay` is above `maxRetryDelay`.
 * @throws {RedisUnavailableError} When Redis did not answer by the `timeout` (with a
 * single attempt: within the lesser of `ttl` and 1 s) and had not said the lock is held.
 * @throws {RedisReplyError} When the client gave a reply Redis does not send.
 *
 * @example Usage
 * ```ts
 * import { acquireLock, lockKey, type RedisClient } from "@baton/lock";
 *
 * // Stands in for your client (new Redis(), createClient(), ...): it grants every lock.
 * const redis: RedisClient = { sendCommand: ([cmd]) => Promise.resolve(cmd === "SET" ? "OK" : 1) };
 * const doSomething = () => Promise.resolve();
 *
 * const lock = await acquireLock(redis, lockKey("user", 123), {
 *   ttl: "10s",
 *   errorMessage: "Operation in progress",
 * });
 * try {
 *   await doSomething();
 * } finally {
 *   await lock.release();
 * }
 * ```
 *
 * @example Wait up to 2 s, release on scope exit, and no throw when the lock stays held
 * ```ts
 * import { acquireLock, type RedisClient } from "@baton/lock";
 *
 * // Stands in for your client (new Redis(), createClient(), ...): it grants every lock.
 * const redis: RedisClient = { sendCommand: ([cmd]) => Promise.resolve(cmd === "SET" ? "OK" : 1) };
 * const doSomething = () => Promise.resolve();
 *
 * await using lock = await acquireLock(redis, "lock:user:456", {
 *   timeout: "2s",
 *   throwOnFail: false,
 * });
 * if (lock) await doSomething();
 * ```
 */
export function acquireLock(
  redis: LockClient,
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
  redis: LockClient,
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
  redis: LockClient,
  key: string,
  options?: AcquireLockOptions,
): Promise<Lock | null>;
export async function acquireLock(
  redis: LockClient,
  key: string,
  options?: AcquireLockOptions,
): Promise<Lock | null> {
  const o = _acquireOptions(options, ACTION);
  _checkKey(key, ACTION);
  const store = _storeOf(redis, ACTION);
  _checkFencing(o, store, ACTION);
  o.signal?.throwIfAborted();
  return await new _Waiter(store, key, o).run();
}
