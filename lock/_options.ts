// The options of acquireLock and withLock, checked and read once, before anything is sent
// to Redis: durations in whole ms, with their defaults in one place.
import {
  _checkBoolean,
  _checkFunction,
  _checkKnownOptions,
  _checkNonNegative,
  _checkOptions,
  _checkSignal,
  _checkString,
  _checkSubscriber,
  _durationMs,
  _ttlMs,
} from "./_validate.ts";
import type { _Backoff } from "./_wait.ts";
import type { LockLostError } from "./errors.ts";
import type { _Store } from "./_store.ts";
import type { AcquireLockOptions, RedisClient } from "./types.ts";

/** The defaults behind the options' docs and the README's tables. */
export const _DEFAULTS: Readonly<{
  ttlSeconds: number;
  timeoutMs: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  jitter: number;
  fairnessWindowMs: number;
}> = Object.freeze({
  ttlSeconds: 30,
  timeoutMs: 0,
  retryDelayMs: 10,
  maxRetryDelayMs: 500,
  jitter: 0.5,
  fairnessWindowMs: 10,
});

/** The names {@linkcode AcquireLockOptions} has, in the order of its docs. */
export const _ACQUIRE_OPTION_NAMES: readonly string[] = [
  "ttl",
  "throwOnFail",
  "errorMessage",
  "timeout",
  "retries",
  "retryDelay",
  "maxRetryDelay",
  "jitter",
  "fairnessWindow",
  "signal",
  "subscriber",
  "watchdog",
  "onLost",
  "fencing",
] satisfies (keyof AcquireLockOptions)[];

/** {@linkcode AcquireLockOptions}, checked, with durations in whole ms. */
export interface _AcquireOptions {
  ttlMs: number;
  throwOnFail: boolean | undefined;
  errorMessage: string | undefined;
  /** Undefined when not given: then `retries` decides. */
  timeoutMs: number | undefined;
  retries: number | undefined;
  backoff: _Backoff;
  windowMs: number;
  signal: AbortSignal | undefined;
  subscriber: RedisClient | false | undefined;
  watchdog: boolean | undefined;
  onLost: ((error: LockLostError) => void) | undefined;
  fencing: boolean;
}

const MS_FROM_0 = { unit: "ms", minMs: 0, maxMs: 30 * 86_400_000 } as const;
const MS_FROM_1 = { unit: "ms", minMs: 1, maxMs: 30 * 86_400_000 } as const;

/**
 * Checks the options of acquireLock (and withLock) and reads them: a TypeError or
 * RangeError naming the option and its value for anything wrong, unknown names included.
 */
export function _acquireOptions(options: unknown, action: string): _AcquireOptions {
  _checkOptions(options, action);
  const o = (options ?? {}) as AcquireLockOptions;
  _checkKnownOptions(o, _ACQUIRE_OPTION_NAMES, action);
  const ttlMs = _ttlMs(o.ttl === undefined ? _DEFAULTS.ttlSeconds : o.ttl, action);
  _checkBoolean(o.throwOnFail, "throwOnFail", action);
  _checkString(o.errorMessage, "errorMessage", action);
  const timeoutMs = o.timeout === undefined
    ? undefined
    : _durationMs(o.timeout, "timeout", action, { ...MS_FROM_0, infinite: true });
  _checkNonNegative(o.retries, "retries", action, "a whole number from 0, or Infinity", {
    infinite: true,
    integer: true,
  });
  // Given alone, either one moves the other's default out of its way.
  const givenMaxMs = o.maxRetryDelay === undefined
    ? undefined
    : _durationMs(o.maxRetryDelay, "maxRetryDelay", action, MS_FROM_1);
  const retryDelayMs = o.retryDelay === undefined
    ? Math.min(_DEFAULTS.retryDelayMs, givenMaxMs ?? Infinity)
    : _durationMs(o.retryDelay, "retryDelay", action, MS_FROM_1);
  const maxRetryDelayMs = givenMaxMs ?? Math.max(_DEFAULTS.maxRetryDelayMs, retryDelayMs);
  if (retryDelayMs > maxRetryDelayMs) {
    throw new RangeError(
      `Cannot ${action} as "retryDelay" must not be above "maxRetryDelay": current values are ${retryDelayMs} ms and ${maxRetryDelayMs} ms`,
    );
  }
  _checkNonNegative(o.jitter, "jitter", action, "a number from 0 to 1", { max: 1 });
  const windowMs = o.fairnessWindow === undefined
    ? _DEFAULTS.fairnessWindowMs
    : _durationMs(o.fairnessWindow, "fairnessWindow", action, MS_FROM_0);
  _checkSignal(o.signal, action);
  _checkSubscriber(o.subscriber, action);
  _checkBoolean(o.watchdog, "watchdog", action);
  if (o.onLost !== undefined) _checkFunction(o.onLost, "onLost", action);
  _checkBoolean(o.fencing, "fencing", action);
  return {
    ttlMs,
    throwOnFail: o.throwOnFail,
    errorMessage: o.errorMessage,
    timeoutMs,
    retries: o.retries,
    backoff: { retryDelayMs, maxRetryDelayMs, jitter: o.jitter ?? _DEFAULTS.jitter },
    windowMs,
    signal: o.signal,
    subscriber: o.subscriber,
    watchdog: o.watchdog,
    onLost: o.onLost,
    fencing: o.fencing ?? false,
  };
}

/** Throws a TypeError when fencing tokens are asked of a store that cannot issue them. */
export function _checkFencing(o: _AcquireOptions, store: _Store, action: string): void {
  if (o.fencing && !store.fences) {
    throw new TypeError(
      `Cannot ${action} as "fencing" is true, but ${store.name} cannot issue fencing tokens: ${
        store.fencingRefusal ?? "it has no counter that every owner sees"
      }`,
    );
  }
}
