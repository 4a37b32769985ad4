import { type _Attempt, _backendOf, type _LockBackend, type _Wait } from "./_backend.ts";
import { _Lock } from "./_lock.ts";
import { _canSubscribe, type _Inbox, _inbox, _subscriberOpen } from "./_subscriber.ts";
import { _acquireOptions } from "./_options.ts";
import { _checkKey } from "./_validate.ts";
import { _backoffMs, _bounded, _NoAnswer, _sleep } from "./_wait.ts";
import { LockAcquireError, RedisUnavailableError } from "./errors.ts";
import type { AcquireLockOptions, Lock, RedisClient } from "./types.ts";

const ACTION = "acquire lock";

/**
 * How long after its window a first waiter that heard nothing tries again, in ms: by
 * then a holder taking the lock again and again has usually handed it over.
 */
const HEAD_SLACK_MS = 2;

/** With a single attempt, how long Redis has to answer it at most (less with a short lease). */
const SINGLE_ANSWER_MS = 1000;

/** While waiting, how long Redis has to answer an attempt sent just before the deadline. */
const MIN_ANSWER_MS = 50;

/**
 * Takes the lock on `key`, with a lease of `ttl` and a fresh random owner token. A free
 * lock takes one Redis round trip (`SET NX PX`); a waiter's first attempt at a held
 * lock takes two (it tries, then joins the queue), and a handover on release none more. Release it with `lock.release()` when the critical section
 * ends, or declare it with `await using` to release it on scope exit.
 *
 * @param redis Any supported Redis client; see {@linkcode RedisClient}.
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
  const o = _acquireOptions(options, ACTION);
  _checkKey(key, ACTION);
  const backend = _backendOf(redis, ACTION);
  o.signal?.throwIfAborted();

  // timeout alone waits that long; retries alone wait with no time bound.
  const { ttlMs, backoff } = o;
  const timeoutMs = o.timeoutMs ?? (o.retries ? Infinity : 0);
  const retries = o.retries ?? (timeoutMs > 0 ? Infinity : 0);
  // A waiter keeps its place in the queue by attempting at least this often.
  const waiting = timeoutMs > 0 || retries > 0;
  const wait: _Wait | undefined = waiting
    ? {
      leaseMs: 2 * backoff.maxRetryDelayMs + 2000,
      windowMs: o.windowMs,
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
  // Whether Redis answered any attempt: a wait that ends on an unanswered one is then
  // still a held lock, else Redis is unavailable.
  let answered = false;
  // An attempt that Redis has not answered is given up at the caller's deadline (with a
  // single attempt: after the lesser of the lease and 1 s). Should it land later, what it
  // took is given back at once.
  const giveBack = (attempt: _Attempt) => {
    if (wait) void leaveQueue(backend, key, token);
    else if (attempt.acquired) backend.release(key, token).catch(() => {});
  };
  const answerBy = (sentAt: number) =>
    timeoutMs > 0
      ? Math.max(deadline, sentAt + MIN_ANSWER_MS)
      : sentAt + Math.min(ttlMs, SINGLE_ANSWER_MS);
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
      let attempt: _Attempt;
      try {
        attempt = await _bounded(
          backend.acquire(key, token, ttlMs, wait),
          answerBy(sentAt),
          o.signal,
          giveBack,
        );
      } catch (error) {
        if (!(error instanceof _NoAnswer)) throw error;
        const waitedMs = performance.now() - startedAt;
        const unavailable = new RedisUnavailableError(
          `Cannot acquire lock "${key}": Redis did not answer within ${Math.round(waitedMs)} ms`,
          { key, command: wait?.queued ? "EVALSHA acquire" : "SET", waitedMs },
        );
        if (!answered) throw unavailable;
        // It was held at the last answer: give up as for a held lock.
        if (o.throwOnFail === false) return null;
        throw new LockAcquireError(
          o.errorMessage ?? `Cannot acquire lock "${key}": it is held elsewhere`,
          { key, attempts, waitedMs, cause: unavailable },
        );
      }
      answered = true;
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
