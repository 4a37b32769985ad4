import { _backendOf, type _LockBackend, type _Wait } from "./_backend.ts";
import { _Lock } from "./_lock.ts";
import { _canSubscribe, type _Inbox, _inbox, _subscriberOpen } from "./_subscriber.ts";
import {
  _checkBoolean,
  _checkFunction,
  _checkKey,
  _checkNonNegative,
  _checkOptions,
  _checkSignal,
  _checkString,
  _checkSubscriber,
  _ttlMs,
} from "./_validate.ts";
import { type _Backoff, _backoffMs, _sleep } from "./_wait.ts";
import { LockAcquireError } from "./errors.ts";
import type { AcquireLockOptions, Lock, RedisClient } from "./types.ts";

const ACTION = "acquire lock";

/**
 * How long after its window a first waiter that heard nothing tries again, in ms: by
 * then a holder taking the lock again and again has usually handed it over.
 */
const HEAD_SLACK_MS = 2;

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
  const o = options ?? {};
  const ttlMs = _ttlMs(o.ttl === undefined ? 30 : o.ttl, ACTION);
  _checkBoolean(o.throwOnFail, "throwOnFail", ACTION);
  _checkString(o.errorMessage, "errorMessage", ACTION);
  const ms = "a number of milliseconds from 0";
  _checkNonNegative(o.timeout, "timeout", ACTION, `${ms}, or Infinity`, { infinite: true });
  _checkNonNegative(o.retries, "retries", ACTION, "a whole number from 0, or Infinity", {
    infinite: true,
    integer: true,
  });
  _checkNonNegative(o.retryDelay, "retryDelay", ACTION, ms);
  _checkNonNegative(o.maxRetryDelay, "maxRetryDelay", ACTION, ms);
  _checkNonNegative(o.jitter, "jitter", ACTION, "a number from 0 to 1", { max: 1 });
  _checkNonNegative(o.fairnessWindow, "fairnessWindow", ACTION, ms);
  _checkSignal(o.signal, ACTION);
  _checkSubscriber(o.subscriber, ACTION);
  _checkBoolean(o.watchdog, "watchdog", ACTION);
  if (o.onLost !== undefined) _checkFunction(o.onLost, "onLost", ACTION);
  const backend = _backendOf(redis, ACTION);
  o.signal?.throwIfAborted();

  // timeout alone waits that long; retries alone wait with no time bound.
  const timeoutMs = o.timeout ?? (o.retries ? Infinity : 0);
  const retries = o.retries ?? (timeoutMs > 0 ? Infinity : 0);
  const backoff: _Backoff = {
    retryDelayMs: o.retryDelay ?? 10,
    maxRetryDelayMs: o.maxRetryDelay ?? 500,
    jitter: o.jitter ?? 0.5,
  };
  // A waiter keeps its place in the queue by attempting at least this often.
  const waiting = timeoutMs > 0 || retries > 0;
  const wait: _Wait | undefined = waiting
    ? {
      leaseMs: 2 * backoff.maxRetryDelayMs + 2000,
      windowMs: Math.round(o.fairnessWindow ?? 10),
      channel: "",
      queued: false,
    }
    : undefined;
  const canSubscribe = o.subscriber !== false &&
    (o.subscriber !== undefined || _canSubscribe(redis));

  const token = crypto.randomUUID();
  const startedAt = performance.now();
  const deadline = startedAt + timeoutMs;
  const lockOf = (expiresAt: number) => new _Lock(backend, key, token, ttlMs, expiresAt, o.onLost);
  let attempts = 0;
  // Set when a release hands this waiter the lock: performance.now() at the news.
  let handedAt: number | undefined;
  // While this waiter is first: when to try again should no news come.
  let headDueAt: number | undefined;
  let headNews = false;
  let wake: () => void = () => {};
  let subscribed = false;
  let inbox: _Inbox | undefined;
  const listen = (w: _Wait) => {
    // News for this waiter on the channel of this client's subscriber connection: "+",
    // a release handed it the lock; "!", it is first now.
    inbox = _inbox(redis, o.subscriber || undefined, token, (kind) => {
      if (handedAt !== undefined) return;
      if (kind === "+") handedAt = performance.now();
      else if (kind === "!") {
        headDueAt = performance.now() + w.windowMs + HEAD_SLACK_MS;
        headNews = true;
      } else return;
      wake();
    });
    w.channel = inbox.channel;
    // If the channel was not subscribed yet, news may have come before it was: try
    // again at once when it is.
    inbox.ready.then((missed) => {
      subscribed = true;
      if (missed) wake();
    }, () => w.channel = "");
  };
  // With the subscriber already open, listening costs nothing: start before the first
  // attempt, so that no release can come between the attempt and the listening.
  if (wait && canSubscribe && _subscriberOpen(redis, o.subscriber || undefined)) listen(wait);
  let lock: _Lock | undefined;
  try {
    while (!lock) {
      attempts++;
      const sentAt = performance.now();
      const attempt = await backend.acquire(key, token, ttlMs, wait);
      if (attempt.acquired) lock = lockOf(sentAt + attempt.remainingMs);
      else if (handedAt !== undefined) lock = lockOf(handedAt + ttlMs);
      else if (attempts > retries || performance.now() >= deadline) break;
      else {
        wait!.queued = true;
        if (canSubscribe && !inbox) listen(wait!);
        // The try shortly after the window is made once (this attempt, if it was due).
        if (headDueAt !== undefined && sentAt >= headDueAt - 1) headDueAt = undefined;
        if (attempt.dueInMs >= 0) headDueAt = sentAt + attempt.dueInMs + HEAD_SLACK_MS;
        // A subscribed waiter is told when the lock is its: it polls only in case news
        // got lost, at the cap, or shortly after its window once it is first. One that
        // cannot subscribe polls with the growing backoff.
        let delayMs = subscribed
          ? _backoffMs(1, { ...backoff, retryDelayMs: backoff.maxRetryDelayMs })
          : _backoffMs(attempts, backoff);
        // Never sleep past the holder's lease.
        if (attempt.remainingMs >= 0) delayMs = Math.min(delayMs, attempt.remainingMs + 1);
        const until = Math.min(performance.now() + delayMs, deadline);
        do {
          headNews = false;
          const due = Math.min(until, headDueAt ?? Infinity);
          await _sleep(due - performance.now(), o.signal, (w) => wake = w);
          // News that this waiter is first only moves its next try.
        } while (headNews && handedAt === undefined);
        if (handedAt !== undefined) lock = lockOf(handedAt + ttlMs);
      }
    }
  } catch (error) {
    // Aborted (or Redis failed): leave the queue, giving back a lock handed over meanwhile.
    if (wait?.queued) await leaveQueue(backend, key, token);
    throw error;
  } finally {
    inbox?.stop();
  }
  if (lock) {
    if (o.signal?.aborted) {
      await lock.release();
      throw o.signal.reason;
    }
    if (o.watchdog) lock._startWatchdog();
    return lock;
  }
  if (wait?.queued) await leaveQueue(backend, key, token);
  if (o.throwOnFail === false) return null;
  throw new LockAcquireError(
    o.errorMessage ?? `Cannot acquire lock "${key}": it is held elsewhere`,
    { key, attempts, waitedMs: performance.now() - startedAt },
  );
}

/**
 * Takes a waiter that gives up out of the queue (giving back a lock handed to it
 * meanwhile), so that the next waiter gets the lock now rather than when this one's
 * place lapses. Bounded to 100 ms, and a failure is
 * ignored: the place lapses on its own.
 */
async function leaveQueue(backend: _LockBackend, key: string, token: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    backend.leave(key, token).catch(() => {}),
    new Promise<void>((resolve) => timer = setTimeout(resolve, 100)),
  ]);
  clearTimeout(timer);
}
