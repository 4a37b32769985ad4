/** The fields of a {@linkcode LockAcquireError}. */
export interface LockAcquireErrorOptions {
  /** The key that could not be locked. */
  key: string;
  /** How many times the lock was tried. */
  attempts: number;
  /** How long the caller waited, in milliseconds. */
  waitedMs: number;
  /**
   * An error behind the failure, for subclasses and callers that build their own;
   * baton leaves it unset: the lock was simply held elsewhere.
   */
  cause?: unknown;
}

/**
 * Thrown by {@linkcode acquireLock} and {@linkcode withLock} when the lock is held
 * elsewhere (and `throwOnFail` is not `false`). Its message is the `errorMessage`
 * option when one was given, otherwise one that names the key.
 *
 * @example Usage
 * ```ts
 * import { LockAcquireError, lockKey, type RedisClient, withLock } from "@baton/lock";
 *
 * // Stands in for your client (new Redis(), createClient(), ...): it grants every lock.
 * const redis: RedisClient = { sendCommand: ([cmd]) => Promise.resolve(cmd === "SET" ? "OK" : 1) };
 * const userId = "user123";
 * try {
 *   await withLock(redis, lockKey("withdraw", userId), () => "paid");
 * } catch (error) {
 *   if (error instanceof LockAcquireError) console.log(`busy: ${error.key}`);
 *   else throw error;
 * }
 * ```
 */
export class LockAcquireError extends Error {
  /** The key that could not be locked. */
  readonly key: string;
  /** How many times the lock was tried. */
  readonly attempts: number;
  /** How long the caller waited, in milliseconds. */
  readonly waitedMs: number;

  /**
   * Makes the error; baton throws it, callers catch it.
   *
   * @param message What to tell the user.
   * @param options The key, attempts and time waited, and a cause if any.
   */
  constructor(message: string, options: LockAcquireErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LockAcquireError";
    this.key = options.key;
    this.attempts = options.attempts;
    this.waitedMs = options.waitedMs;
  }
}

/** The fields of a {@linkcode LockLostError} beyond its key. */
export interface LockLostErrorOptions {
  /**
   * What `fn` returned, when {@linkcode withLock} found the lock lost after `fn`
   * succeeded. Leave out when there is no such value.
   */
  value?: unknown;
  /** Whether `value` was given (it may itself be `undefined`). */
  hasValue?: boolean;
}

/**
 * The lock was lost while held: a release or an extension found another owner or no
 * key, or Redis stayed unreachable until the lease ran out.
 *
 * {@linkcode withLock} rejects with it once `fn` settles (unless `fn` failed), also
 * when `fn` succeeded: then `value` holds what `fn` returned and `hasValue` is true, so
 * that the caller decides whether a result computed without the lock may be kept (it
 * may have overlapped another owner's critical section). A handle's `signal` aborts
 * with it when the loss is found while the lock is held.
 *
 * @example Usage
 * ```ts
 * import { LockLostError, type RedisClient, withLock } from "@baton/lock";
 *
 * // Stands in for your client (new Redis(), createClient(), ...): it grants every lock.
 * const redis: RedisClient = { sendCommand: ([cmd]) => Promise.resolve(cmd === "SET" ? "OK" : 1) };
 * const handle = (item: string) => Promise.resolve(item.length);
 * const batch = ["a", "b"];
 * let handled = 0;
 * try {
 *   handled = await withLock(redis, "lock:batch", async ({ signal }) => {
 *     for (const item of batch) {
 *       signal.throwIfAborted(); // stop early once the lock is known lost
 *       await handle(item);
 *     }
 *     return batch.length;
 *   });
 * } catch (error) {
 *   // The lease ran out under fn: its result may overlap another owner's work.
 *   if (!(error instanceof LockLostError) || !error.hasValue) throw error;
 *   handled = error.value as number; // keep it only if the work is idempotent
 * }
 * console.log(`handled ${handled}`);
 * ```
 */
export class LockLostError extends Error {
  /** The key whose lock was lost. */
  readonly key: string;
  /** Whether `withLock`'s `fn` returned a value before the loss was found. */
  readonly hasValue: boolean;
  /** What `withLock`'s `fn` returned when `hasValue` is true, else `undefined`. */
  readonly value: unknown;

  /**
   * Makes the error; baton raises it, callers catch it.
   *
   * @param key The key whose lock was lost.
   * @param cause What showed the loss: the reply or the Redis error.
   * @param options The value `fn` returned, if any.
   */
  constructor(key: string, cause: unknown, options: LockLostErrorOptions = {}) {
    super(`The lock "${key}" was lost while held`, { cause });
    this.name = "LockLostError";
    this.key = key;
    this.hasValue = options.hasValue ?? ("value" in options);
    this.value = options.value;
  }
}

/** The fields of a {@linkcode RedisUnavailableError}. */
export interface RedisUnavailableErrorOptions {
  /** The lock's key. */
  key: string;
  /** The command that got no answer, such as `"SET"` or `"EVALSHA acquire"`. */
  command: string;
  /** How long the caller waited, in milliseconds. */
  waitedMs: number;
  /** The last error the client gave, if any. */
  cause?: unknown;
}

/**
 * Redis did not answer in time: the caller's `timeout` or the lease ran out while a
 * command was still unanswered (the server is down or unreachable, and the client
 * queues commands while it reconnects). baton gives up then rather than wait for the
 * client; a grant that arrives later is released at once.
 *
 * @example Usage
 * ```ts
 * import { acquireLock, RedisUnavailableError, type RedisClient } from "@baton/lock";
 *
 * // Stands in for your client (new Redis(), createClient(), ...): it grants every lock.
 * const redis: RedisClient = { sendCommand: ([cmd]) => Promise.resolve(cmd === "SET" ? "OK" : 1) };
 * try {
 *   const lock = await acquireLock(redis, "lock:report", { timeout: "2s" });
 *   await lock.release();
 * } catch (error) {
 *   if (!(error instanceof RedisUnavailableError)) throw error;
 *   console.log(`Redis did not answer ${error.command} in ${error.waitedMs} ms; try later`);
 * }
 * ```
 */
export class RedisUnavailableError extends Error {
  /** The lock's key. */
  readonly key: string;
  /** The command that got no answer. */
  readonly command: string;
  /** How long the caller waited, in milliseconds. */
  readonly waitedMs: number;

  /**
   * Makes the error; baton throws it, callers catch it.
   *
   * @param message What to tell the user.
   * @param options The key, the command and the time waited.
   */
  constructor(message: string, options: RedisUnavailableErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "RedisUnavailableError";
    this.key = options.key;
    this.command = options.command;
    this.waitedMs = options.waitedMs;
  }
}

/** The fields of a {@linkcode QuorumError}. */
export interface QuorumErrorOptions extends RedisUnavailableErrorOptions {
  /**
   * How many servers had answered (yes or no) when too many had failed for a majority to
   * answer.
   */
  answered: number;
  /** How many answers a decision needed: a majority of the servers. */
  needed: number;
  /**
   * What each server failed with (its client's error, or a
   * {@linkcode RedisUnavailableError} when it did not answer in time), by its index in the
   * array of clients; `undefined` for a server that answered or had not failed yet.
   */
  errors: readonly unknown[];
}

/**
 * Redlock (an array of clients of independent servers) could not hear from a majority
 * of the servers: too many failed (connection refused, a closed client, an error reply)
 * or did not answer in time (500 ms, and for a take or an extension at most half the
 * `ttl`). It is a {@linkcode RedisUnavailableError}, so one `catch` covers one server
 * and several. A lock held elsewhere is never a `QuorumError`: when a majority answered
 * and did not grant the lock, `acquireLock` waits or fails with a
 * {@linkcode LockAcquireError} as on one server. Grants from the minority that answered
 * are given back at once.
 *
 * @example Usage
 * ```ts
 * import { acquireLock, QuorumError, type RedisClient } from "@baton/lock";
 *
 * // Stands in for clients of three independent servers (new Redis(url), ...): each
 * // grants every lock.
 * const server = (): RedisClient => ({
 *   sendCommand: ([cmd]) => Promise.resolve(cmd === "SET" ? "OK" : 1),
 * });
 * try {
 *   const lock = await acquireLock([server(), server(), server()], "lock:report");
 *   await lock.release();
 * } catch (error) {
 *   if (!(error instanceof QuorumError)) throw error;
 *   console.log(error.message); // names how many servers failed, and each one's error
 *   for (const [i, failure] of error.errors.entries()) {
 *     if (failure !== undefined) console.log(`redis[${i}] failed:`, failure);
 *   }
 * }
 * ```
 */
export class QuorumError extends RedisUnavailableError {
  /** How many servers had answered (yes or no) when a majority was out of reach. */
  readonly answered: number;
  /** How many answers a decision needed: a majority of the servers. */
  readonly needed: number;
  /**
   * What each server failed with, by its index; `undefined` for one that answered or had
   * not failed yet.
   */
  readonly errors: readonly unknown[];

  /**
   * Makes the error; baton throws it, callers catch it.
   *
   * @param message What to tell the user.
   * @param options The key, the command, the time waited, and the servers' answers.
   */
  constructor(message: string, options: QuorumErrorOptions) {
    super(message, options);
    this.name = "QuorumError";
    this.answered = options.answered;
    this.needed = options.needed;
    this.errors = options.errors;
  }
}

/**
 * The client returned a reply that is not one Redis sends for that command: baton
 * never turns such a reply into a lock. It happens with a client that is not talking
 * to Redis directly (a mock, a proxy, a client in a pipeline or `MULTI` context that
 * answers `"QUEUED"`), or one that transforms replies.
 *
 * @example Usage
 * ```ts
 * import { acquireLock, RedisReplyError, type RedisClient } from "@baton/lock";
 * import assert from "node:assert/strict";
 *
 * const queued: RedisClient = { sendCommand: () => Promise.resolve("QUEUED") };
 * await assert.rejects(acquireLock(queued, "lock:job"), RedisReplyError);
 * ```
 */
export class RedisReplyError extends Error {
  /** The command whose reply was unexpected, such as `"SET"` or `"EVALSHA release"`. */
  readonly command: string;
  /** The reply as the client returned it. */
  readonly reply: unknown;

  /**
   * Makes the error; baton throws it, callers catch it.
   *
   * @param command The command whose reply was unexpected.
   * @param reply The reply as the client returned it.
   * @param expected What Redis would have sent.
   */
  constructor(command: string, reply: unknown, expected: string) {
    super(
      `Redis client gave an unexpected reply to ${command}: ${
        _describeReply(reply)
      }, expected ${expected}`,
    );
    this.name = "RedisReplyError";
    this.command = command;
    this.reply = reply;
  }
}

/** A short description of a reply for an error message. */
function _describeReply(reply: unknown): string {
  if (reply === undefined) return "undefined";
  if (typeof reply === "bigint") return `${reply}n`;
  if (reply instanceof Uint8Array) {
    return `bytes ${JSON.stringify(new TextDecoder().decode(reply))}`;
  }
  try {
    const text = JSON.stringify(reply);
    if (text === undefined) return String(reply);
    return text.length > 100 ? `${text.slice(0, 100)}...` : text;
  } catch {
    return String(reply);
  }
}
