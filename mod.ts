/**
 * Distributed locks on Redis for Deno and Bun, on the Redis client you already have.
 *
 * One critical section, such as a withdrawal for one user, runs in one place at a time
 * across every instance of your service:
 *
 * ```ts
 * import { lockKey, type RedisClient, withLock } from "@baton/lock";
 *
 * // Stands in for your client (new Redis(), createClient(), ...): it grants every lock.
 * const redis: RedisClient = { sendCommand: ([cmd]) => Promise.resolve(cmd === "SET" ? "OK" : 1) };
 * const withdraw = (_userId: string, amount: number) => Promise.resolve(2000 - amount);
 * const userId = "user123";
 *
 * const balance = await withLock(redis, lockKey("withdraw", userId), () => withdraw(userId, 100), {
 *   ttl: "10s",
 *   errorMessage: "Withdrawal in progress, please try again later",
 * });
 * ```
 *
 * - {@linkcode acquireLock} takes a lock and returns a handle to release, extend or
 *   inspect it; {@linkcode withLock} runs a function under the lock.
 * - {@linkcode lockKey} names locks consistently: `lock:{prefix}:{parts}`.
 * - {@linkcode debounce} runs work that many instances trigger in bursts once per burst,
 *   on exactly one instance.
 * - Any client with `call()` (ioredis), `sendCommand()` (node-redis) or `send()` (Bun's
 *   `RedisClient`) works; see {@linkcode RedisClient}.
 *
 * @module
 */
export * from "./lock/acquire_lock.ts";
export * from "./lock/with_lock.ts";
export * from "./lock/lock_key.ts";
export * from "./lock/debounce.ts";
export * from "./lock/errors.ts";
export * from "./lock/types.ts";
