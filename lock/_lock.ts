// The lock handle that acquireLock returns and withLock hands to its callback, with
// its optional watchdog.
import type { _Store } from "./_store.ts";
import { _bounded, _NoAnswer, _unref } from "./_wait.ts";
import { _ttlMs } from "./_validate.ts";
import { LockLostError } from "./errors.ts";
import type { Lock, LockStatus } from "./types.ts";

/**
 * How long after the lease's end (by the local clock) a release, extension or status
 * request that Redis has not answered is given up: the lease has run out by then, so
 * the lock is gone whatever Redis would say.
 */
export const _LEASE_MARGIN_MS = 100;

/** The handle behind the public {@linkcode Lock} interface. */
export class _Lock implements Lock {
  readonly key: string;
  readonly token: string;
  readonly fence: bigint | undefined;
  #store: _Store;
  #ttlMs: number;
  /**
   * Local deadline of the lease (performance.now() ms), measured from before the request
   * that set it (or, for a lock handed over on release, from when the news arrived).
   */
  #expiresAt: number;
  #held = true;
  /** Made when first asked for: most locks are never lost, nor asked for their signal. */
  #controller: AbortController | undefined;
  #onLost: ((error: LockLostError) => void) | undefined;
  // The watchdog: renews every ttl/3, and declares the lock lost at the lease's end
  // when no renewal got through (Redis unreachable).
  #watching = false;
  #renewTimer: ReturnType<typeof setTimeout> | undefined;
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  #renewing: Promise<void> | undefined;
  #lastError: unknown;

  constructor(
    store: _Store,
    key: string,
    token: string,
    ttlMs: number,
    expiresAt: number,
    onLost?: (error: LockLostError) => void,
    fence?: bigint,
  ) {
    this.fence = fence;
    this.#store = store;
    this.key = key;
    this.token = token;
    this.#ttlMs = ttlMs;
    this.#expiresAt = expiresAt;
    this.#onLost = onLost;
  }

  get signal(): AbortSignal {
    return (this.#controller ??= new AbortController()).signal;
  }

  async release(): Promise<boolean> {
    if (!this.#held) return false; // losing the lock stopped the watchdog already
    await this.#stopWatchdog();
    if (!this.#held) return false; // the last renewal found it lost
    this.#held = false;
    try {
      return await this.#withinLease(this.#store.release(this.key, this.token));
    } catch (error) {
      // The lease ran out unanswered: the lock is gone whatever Redis says.
      if (error instanceof _NoAnswer) return false;
      // Redis failed: the lock may still be ours, so a later release may retry.
      this.#held = true;
      throw error;
    }
  }

  /**
   * Settles like `request`, or once the lease has run out (with {@linkcode _NoAnswer}),
   * whichever comes first: clients may hold a command for as long as they reconnect.
   */
  #withinLease<T>(request: Promise<T>): Promise<T> {
    return _bounded(request, this.#expiresAt + _LEASE_MARGIN_MS);
  }

  async extend(ttl?: number): Promise<boolean> {
    const ttlMs = ttl === undefined ? this.#ttlMs : _ttlMs(ttl, "extend lock");
    if (!this.#held) return false;
    const sentAt = performance.now();
    let extended: boolean;
    try {
      extended = await this.#withinLease(this.#store.extend(this.key, this.token, ttlMs));
    } catch (error) {
      if (!(error instanceof _NoAnswer)) throw error;
      if (this.#held) this.#lose(new Error("the lease ran out before Redis answered an extension"));
      return false;
    }
    if (!this.#held) return false; // released meanwhile
    if (extended) this.#expiresAt = sentAt + ttlMs;
    else this.#lose("the key holds another owner's token, or none");
    return extended;
  }

  isAcquired(): boolean {
    return this.#held && performance.now() < this.#expiresAt;
  }

  async status(): Promise<LockStatus> {
    try {
      return await this.#withinLease(this.#store.status(this.key, this.token));
    } catch (error) {
      if (error instanceof _NoAnswer) return { owned: false, remainingMs: 0 };
      throw error;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** Marks the lock lost: aborts the signal and calls onLost, once. */
  #lose(cause: unknown): void {
    this.#held = false;
    this.#stopWatchdog();
    const controller = this.#controller ??= new AbortController();
    if (controller.signal.aborted) return;
    const error = new LockLostError(this.key, cause);
    controller.abort(error);
    try {
      this.#onLost?.(error);
    } catch {
      // onLost must not throw (documented); a throw here would crash the process from a
      // timer, so it is dropped: the loss itself is on the signal.
    }
  }

  /** Starts renewing the lease every ttl/3 until release or loss. */
  _startWatchdog(): void {
    if (this.#watching || !this.#held) return;
    this.#watching = true;
    // A lock handed over while its waiter polled may have less than its ttl left: the
    // first renewal comes at a third of what is left.
    const leftMs = Math.max(0, this.#expiresAt - performance.now());
    this.#scheduleRenewal(Math.min(this.#ttlMs, leftMs) / 3);
    this.#armExpiry();
  }

  #scheduleRenewal(ms: number): void {
    clearTimeout(this.#renewTimer);
    this.#renewTimer = setTimeout(() => {
      this.#renewing = this.#renew().finally(() => this.#renewing = undefined);
    }, ms);
    _unref(this.#renewTimer);
  }

  #armExpiry(): void {
    clearTimeout(this.#expiryTimer);
    this.#expiryTimer = setTimeout(() => {
      if (this.#watching && this.#held) {
        this.#lose(this.#lastError ?? new Error("the lease ran out before a renewal got through"));
      }
    }, Math.max(0, this.#expiresAt - performance.now()));
    _unref(this.#expiryTimer);
  }

  async #renew(): Promise<void> {
    try {
      if (await this.extend() && this.#watching) {
        this.#lastError = undefined;
        this.#armExpiry();
        this.#scheduleRenewal(this.#ttlMs / 3);
      }
    } catch (error) {
      // Redis did not answer: try again soon, until the expiry timer calls it lost.
      this.#lastError = error;
      if (this.#watching) this.#scheduleRenewal(Math.min(this.#ttlMs / 6, 1000));
    }
  }

  /** Stops the watchdog; resolves once a renewal in flight has settled. */
  #stopWatchdog(): Promise<void> {
    this.#watching = false;
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#expiryTimer);
    // A renewal stuck on an unreachable Redis is not awaited once the lock is lost.
    return (this.#held && this.#renewing) || Promise.resolve();
  }
}
