// Checks of arguments and options, done before anything reaches Redis. Messages name
// the option and the value: `Cannot acquire lock as "ttl" must be ...: current value is -1`.
import { _describe, _isRedisClient } from "./_client.ts";

/** The longest lease baton accepts, in seconds: 30 days. */
export const _MAX_TTL_SECONDS = 30 * 24 * 60 * 60;

/** Throws a TypeError unless `key` is a non-empty string. */
export function _checkKey(key: unknown, action: string): asserts key is string {
  if (typeof key !== "string" || key.length === 0) {
    throw new TypeError(
      `Cannot ${action} as "key" must be a non-empty string: current value is ${_describe(key)}`,
    );
  }
}

/** Throws a TypeError unless `signal` is an AbortSignal or undefined. */
export function _checkSignal(signal: unknown, action: string): void {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(
      `Cannot ${action} as "signal" must be an AbortSignal: current value is ${_describe(signal)}`,
    );
  }
}

/** Throws a TypeError unless `subscriber` is a Redis client, false or undefined. */
export function _checkSubscriber(subscriber: unknown, action: string): void {
  if (subscriber !== undefined && subscriber !== false && !_isRedisClient(subscriber)) {
    throw new TypeError(
      `Cannot ${action} as "subscriber" must be a Redis client or false: current value is ${
        _describe(subscriber)
      }`,
    );
  }
}

/** Throws a TypeError unless `options` is an object or undefined. */
export function _checkOptions(options: unknown, action: string): void {
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new TypeError(
      `Cannot ${action} as "options" must be an object: current value is ${_describe(options)}`,
    );
  }
}

/**
 * Converts a lease in seconds (the `ttl` option) to whole milliseconds, or throws:
 * a TypeError for a non-number, a RangeError for a number that is not a positive
 * finite lease of at least 1 ms and at most {@linkcode _MAX_TTL_SECONDS}.
 */
export function _ttlMs(ttl: unknown, action: string, name = "ttl"): number {
  if (typeof ttl !== "number") {
    throw new TypeError(
      `Cannot ${action} as "${name}" must be a number of seconds: current value is ${
        _describe(ttl)
      }`,
    );
  }
  const ms = Math.round(ttl * 1000);
  if (!Number.isFinite(ttl) || ms < 1 || ttl > _MAX_TTL_SECONDS) {
    throw new RangeError(
      `Cannot ${action} as "${name}" must be a positive finite number of seconds from 0.001 to ${_MAX_TTL_SECONDS}: current value is ${
        _describe(ttl)
      }`,
    );
  }
  return ms;
}

/** Throws a TypeError unless `value` is a boolean or undefined. */
export function _checkBoolean(value: unknown, name: string, action: string): void {
  if (value !== undefined && typeof value !== "boolean") {
    throw new TypeError(
      `Cannot ${action} as "${name}" must be a boolean: current value is ${_describe(value)}`,
    );
  }
}

/** Throws a TypeError unless `value` is a string or undefined. */
export function _checkString(value: unknown, name: string, action: string): void {
  if (value !== undefined && typeof value !== "string") {
    throw new TypeError(
      `Cannot ${action} as "${name}" must be a string: current value is ${_describe(value)}`,
    );
  }
}

/** Throws a TypeError unless `value` is a function. */
export function _checkFunction(value: unknown, name: string, action: string): void {
  if (typeof value !== "function") {
    throw new TypeError(
      `Cannot ${action} as "${name}" must be a function: current value is ${_describe(value)}`,
    );
  }
}

/**
 * Throws unless `value` is undefined or a number of milliseconds (or a count, for
 * `retries`) from 0, and a whole number when `integer`; Infinity only with `infinite`.
 */
export function _checkNonNegative(
  value: unknown,
  name: string,
  action: string,
  what: string,
  { infinite = false, integer = false, max = Infinity } = {},
): void {
  if (value === undefined) return;
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${action} as "${name}" must be ${what}: current value is ${_describe(value)}`,
    );
  }
  const ok = value >= 0 && value <= max &&
    (Number.isFinite(value)
      ? (!integer || Number.isInteger(value))
      : infinite && value === Infinity);
  if (!ok) {
    throw new RangeError(
      `Cannot ${action} as "${name}" must be ${what}: current value is ${_describe(value)}`,
    );
  }
}

/**
 * Converts a duration in milliseconds to whole milliseconds (rounded up, so 0.5 is 1), or
 * throws: a TypeError for a non-number, a RangeError for a number that is not positive and
 * finite, or is above `maxMs` (by default 30 days).
 */
export function _positiveMs(
  value: unknown,
  name: string,
  action: string,
  maxMs: number = _MAX_TTL_SECONDS * 1000,
): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${action} as "${name}" must be a number of milliseconds: current value is ${
        _describe(value)
      }`,
    );
  }
  if (!Number.isFinite(value) || value <= 0 || value > maxMs) {
    throw new RangeError(
      `Cannot ${action} as "${name}" must be a positive finite number of milliseconds up to ${maxMs}: current value is ${
        _describe(value)
      }`,
    );
  }
  return Math.ceil(value);
}
