/** The fields of a {@linkcode LockAcquireError}. */
export interface LockAcquireErrorOptions {
  /** The key that could not be locked. */
  key: string;
  /** How many times the lock was tried. */
  attempts: number;
  /** How long the caller waited, in milliseconds. */
  waitedMs: number;
  /** Why it gave up, when it was not just a held lock: an abort reason, say. */
  cause?: unknown;
}

/**
 * Thrown by {@linkcode acquireLock} and {@linkcode withLock} when the lock is held
 * elsewhere (and `throwOnFail` is not `false`). Its message is the `errorMessage`
 * option when one was given, otherwise one that names the key.
 *
 * @example Usage
 * ```ts ignore
 * try {
 *   await withLock(redis, lockKey("withdraw", userId), () => withdraw(userId, 100));
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

/**
 * The lock was lost while held: an extension found another owner or no key, or Redis
 * stayed unreachable until the lease ran out. {@linkcode withLock} rejects with it
 * once `fn` settles (unless `fn` failed), and the lock's `signal` aborts with it.
 *
 * @example Usage
 * ```ts ignore
 * try {
 *   await withLock(redis, key, async ({ signal }) => {
 *     for (const item of batch) {
 *       signal.throwIfAborted();
 *       await process(item);
 *     }
 *   });
 * } catch (error) {
 *   if (error instanceof LockLostError) console.log(`lost ${error.key}`, error.cause);
 *   else throw error;
 * }
 * ```
 */
export class LockLostError extends Error {
  /** The key whose lock was lost. */
  readonly key: string;

  /**
   * Makes the error; baton raises it, callers catch it.
   *
   * @param key The key whose lock was lost.
   * @param cause What showed the loss: the reply or the Redis error.
   */
  constructor(key: string, cause: unknown) {
    super(`The lock "${key}" was lost while held`, { cause });
    this.name = "LockLostError";
    this.key = key;
  }
}
