// One call of acquireLock: attempts, and between them a sleep that news, the caller's
// deadline or its signal ends. Works on any store; where the store delivers no news,
// the waiter polls with backoff.
import { _Lock } from "./_lock.ts";
import type { _AcquireOptions } from "./_options.ts";
import type { _Attempt, _Inbox, _News, _NewsKind, _Queue, _Store } from "./_store.ts";
import { _backoffMs, _bounded, _NoAnswer, _sleep } from "./_wait.ts";
import { LockAcquireError, RedisUnavailableError } from "./errors.ts";

/**
 * How long after its window a first waiter that heard nothing tries again, in ms: by
 * then a holder taking the lock again and again has usually handed it over.
 */
const HEAD_SLACK_MS = 2;

/** With a single attempt, how long the store has to answer it at most (less with a short lease). */
const SINGLE_ANSWER_MS = 1000;

/** While waiting, how long the store has to answer an attempt sent just before the deadline. */
const MIN_ANSWER_MS = 50;

/** How long a waiter that gives up waits for its leave to be answered, at most. */
const LEAVE_MS = 100;

/** A lock handed over by a release: when the news came (performance.now()) and its fence. */
interface Handed {
  at: number;
  fence: bigint | undefined;
}

/** One caller waiting for one lock. Call {@linkcode _Waiter.run} once. */
export class _Waiter {
  readonly #store: _Store;
  readonly #key: string;
  readonly #o: _AcquireOptions;
  readonly #token = crypto.randomUUID();
  readonly #startedAt = performance.now();
  readonly #deadline: number;
  readonly #retries: number;
  /** Set when the caller waits: its place in the store's queue. */
  readonly #queue: _Queue | undefined;
  /** Set when the store can tell this waiter its news. */
  readonly #news: _News | undefined;
  #attempts = 0;
  /** Whether the store answered any attempt. */
  #answered = false;
  #handed: Handed | undefined;
  #inbox: _Inbox | undefined;
  /** Whether news can reach the inbox (it is subscribed). */
  #listening = false;
  /** While this waiter is first: when to try again should no news come. */
  #headDueAt: number | undefined;
  #headNews = false;
  #wake: () => void = () => {};

  constructor(store: _Store, key: string, options: _AcquireOptions) {
    this.#store = store;
    this.#key = key;
    this.#o = options;
    // timeout alone waits that long; retries alone wait with no time bound.
    const timeoutMs = options.timeoutMs ?? (options.retries ? Infinity : 0);
    this.#retries = options.retries ?? (timeoutMs > 0 ? Infinity : 0);
    this.#deadline = this.#startedAt + timeoutMs;
    const waiting = timeoutMs > 0 || this.#retries > 0;
    this.#queue = waiting && store.queues
      ? {
        // A waiter keeps its place in the queue by attempting at least this often.
        leaseMs: 2 * options.backoff.maxRetryDelayMs + 2000,
        windowMs: options.windowMs,
        address: "",
        queued: false,
      }
      : undefined;
    this.#news = waiting ? store.news(options.subscriber) : undefined;
  }

  /** Attempts until the lock is taken, the caller's bounds run out, or its signal aborts. */
  async run(): Promise<_Lock | null> {
    // With news already flowing, listening costs nothing: start before the first
    // attempt, so that no release can come between the attempt and the listening.
    if (this.#news?.open) this.#listen();
    let lock: _Lock | undefined;
    try {
      while (!lock) {
        this.#attempts++;
        const sentAt = performance.now();
        const attempt = await this.#attempt(sentAt);
        if (attempt === undefined) return this.#giveUp(true);
        if (attempt.acquired) lock = this.#lockOf(sentAt + attempt.remainingMs, attempt.fence);
        else if (this.#handed) lock = this.#handedLock(this.#handed);
        else if (this.#attempts > this.#retries || performance.now() >= this.#deadline) break;
        else {
          await this.#pause(sentAt, attempt);
          if (this.#handed) lock = this.#handedLock(this.#handed);
        }
      }
    } catch (error) {
      // Aborted (or the store failed): leave the queue, giving back a lock handed over.
      await this.#leave();
      throw error;
    } finally {
      this.#inbox?.stop();
    }
    if (!lock) return this.#giveUp(false);
    if (this.#o.signal?.aborted) {
      await lock.release();
      throw this.#o.signal.reason;
    }
    if (this.#o.watchdog) lock._startWatchdog();
    return lock;
  }

  /**
   * One attempt, given up when the store does not answer by the caller's deadline (with
   * a single attempt: after the lesser of the lease and 1 s): then undefined. Should it
   * land later, what it took is given back at once.
   */
  async #attempt(sentAt: number): Promise<_Attempt | undefined> {
    const { ttlMs } = this.#o;
    const answerBy = this.#deadline > this.#startedAt
      ? Math.max(this.#deadline, sentAt + MIN_ANSWER_MS)
      : sentAt + Math.min(ttlMs, SINGLE_ANSWER_MS);
    const request = { queue: this.#queue, fencing: this.#o.fencing };
    try {
      const attempt = await _bounded(
        this.#store.acquire(this.#key, this.#token, ttlMs, request),
        answerBy,
        this.#o.signal,
        (late) => {
          // A waiter leaves the queue it may have joined (and gives back what it got).
          if (this.#queue) void this.#leave(true);
          else if (late.acquired) this.#store.release(this.#key, this.#token).catch(() => {});
        },
      );
      this.#answered = true;
      return attempt;
    } catch (error) {
      if (error instanceof _NoAnswer) return undefined;
      throw error;
    }
  }

  /** Sleeps until the next attempt is due, news comes, or the deadline. */
  async #pause(sentAt: number, attempt: _Attempt & { acquired: false }): Promise<void> {
    if (this.#queue) this.#queue.queued = true;
    if (this.#news && !this.#inbox) this.#listen();
    // The try shortly after the window is made once (this attempt, if it was due).
    if (this.#headDueAt !== undefined && sentAt >= this.#headDueAt - 1) this.#headDueAt = undefined;
    if (attempt.dueInMs >= 0) this.#headDueAt = sentAt + attempt.dueInMs + HEAD_SLACK_MS;
    const until = Math.min(performance.now() + this.#delayMs(attempt), this.#deadline);
    do {
      this.#headNews = false;
      const due = Math.min(until, this.#headDueAt ?? Infinity);
      await _sleep(due - performance.now(), this.#o.signal, (wake) => this.#wake = wake);
      // News that this waiter is first only moves its next try.
    } while (this.#headNews && !this.#handed);
  }

  /**
   * How long to wait before the next attempt. A waiter that hears news is told when the
   * lock is its: it polls only in case news got lost, at the cap, or shortly after its
   * window once it is first. One that cannot polls with the growing backoff. Nobody
   * sleeps past the holder's lease.
   */
  #delayMs(attempt: _Attempt & { acquired: false }): number {
    const { backoff } = this.#o;
    const delayMs = this.#listening
      ? _backoffMs(1, { ...backoff, retryDelayMs: backoff.maxRetryDelayMs })
      : _backoffMs(this.#attempts, backoff);
    return attempt.remainingMs >= 0 ? Math.min(delayMs, attempt.remainingMs + 1) : delayMs;
  }

  /** Starts listening for this waiter's news: the lock handed over, or it is first. */
  #listen(): void {
    const inbox = this.#inbox = this.#news!.inbox(
      this.#token,
      (kind, fence) => this.#onNews(kind, fence),
    );
    if (this.#queue) this.#queue.address = inbox.address;
    // If news could not arrive yet, some may have been missed: try again at once.
    inbox.ready.then((missed) => {
      this.#listening = true;
      if (missed) this.#wake();
    }, () => {
      if (this.#queue) this.#queue.address = "";
    });
  }

  #onNews(kind: _NewsKind, fence: bigint | undefined): void {
    if (this.#handed) return;
    // A grant without the fence asked for is not trusted: the next attempt, at once,
    // finds the lock this waiter's and reads its fence.
    if (kind === "granted" && (fence !== undefined || !this.#o.fencing)) {
      this.#handed = { at: performance.now(), fence };
    } else if (kind === "granted") this.#headDueAt = performance.now();
    else {
      this.#headDueAt = performance.now() + (this.#queue?.windowMs ?? 0) + HEAD_SLACK_MS;
      this.#headNews = true;
    }
    this.#wake();
  }

  #lockOf(expiresAt: number, fence: bigint | undefined): _Lock {
    const { ttlMs, onLost } = this.#o;
    return new _Lock(this.#store, this.#key, this.#token, ttlMs, expiresAt, onLost, fence);
  }

  #handedLock(handed: Handed): _Lock {
    return this.#lockOf(handed.at + this.#o.ttlMs, handed.fence);
  }

  /**
   * Ends a wait that did not get the lock: `null`, or a LockAcquireError, or, when the
   * store never answered, a RedisUnavailableError.
   */
  async #giveUp(unanswered: boolean): Promise<null> {
    await this.#leave();
    const waitedMs = performance.now() - this.#startedAt;
    const key = this.#key;
    let cause: RedisUnavailableError | undefined;
    if (unanswered) {
      cause = new RedisUnavailableError(
        `Cannot acquire lock "${key}": ${this.#store.name} did not answer within ${
          Math.round(waitedMs)
        } ms`,
        { key, command: this.#queue?.queued ? "EVALSHA acquire" : "SET", waitedMs },
      );
      if (!this.#answered) throw cause;
      // It was held at the last answer: give up as for a held lock.
    }
    if (this.#o.throwOnFail === false) return null;
    throw new LockAcquireError(
      this.#o.errorMessage ?? `Cannot acquire lock "${key}": it is held elsewhere`,
      { key, attempts: this.#attempts, waitedMs, cause },
    );
  }

  /**
   * Takes a waiter that gives up out of the queue (giving back a lock handed to it
   * meanwhile), so that the next waiter gets the lock now rather than when this one's
   * place lapses. Bounded, and a failure is ignored: the place lapses on its own.
   */
  async #leave(always = false): Promise<void> {
    if (!always && !this.#queue?.queued && !this.#handed) return;
    await _bounded(this.#store.leave(this.#key, this.#token), performance.now() + LEAVE_MS)
      .catch(() => {});
  }
}
