// The lock handle that acquireLock returns and withLock hands to its callback.
import type { _LockBackend } from "./_backend.ts";
import { _ttlMs } from "./_validate.ts";
import type { Lock, LockStatus } from "./types.ts";

/** The handle behind the public {@linkcode Lock} interface. */
export class _Lock implements Lock {
  readonly key: string;
  readonly token: string;
  #backend: _LockBackend;
  #ttlMs: number;
  /** Local deadline of the lease (performance.now() ms), measured from before the request. */
  #expiresAt: number;
  #held = true;

  constructor(backend: _LockBackend, key: string, token: string, ttlMs: number, sentAt: number) {
    this.#backend = backend;
    this.key = key;
    this.token = token;
    this.#ttlMs = ttlMs;
    this.#expiresAt = sentAt + ttlMs;
  }

  async release(): Promise<boolean> {
    if (!this.#held) return false;
    this.#held = false;
    try {
      return await this.#backend.release(this.key, this.token);
    } catch (error) {
      // Redis did not answer: the lock may still be ours, so a later release may retry.
      this.#held = true;
      throw error;
    }
  }

  async extend(ttl?: number): Promise<boolean> {
    const ttlMs = ttl === undefined ? this.#ttlMs : _ttlMs(ttl, "extend lock");
    if (!this.#held) return false;
    const sentAt = performance.now();
    const extended = await this.#backend.extend(this.key, this.token, ttlMs);
    if (extended) this.#expiresAt = sentAt + ttlMs;
    else this.#held = false;
    return extended;
  }

  isAcquired(): boolean {
    return this.#held && performance.now() < this.#expiresAt;
  }

  status(): Promise<LockStatus> {
    return this.#backend.status(this.key, this.token);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}
