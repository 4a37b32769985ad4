// Checks of arguments and options, done before anything reaches Redis. Messages name
// the option and the value: `Cannot acquire lock as "ttl" must be ...: current value is -1`.
import { _clientProblem, _describe } from "./_client.ts";
import { _isUpstash } from "./_upstash.ts";

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
  if (subscriber === undefined || subscriber === false) return;
  // @upstash/redis speaks HTTP: it has no connection that could listen on a channel.
  const problem = _isUpstash(subscriber)
    ? 'an @upstash/redis client, which cannot subscribe: leave "subscriber" out (its waiters poll)'
    : _clientProblem(subscriber);
  if (problem !== undefined) {
    throw new TypeError(
      `Cannot ${action} as "subscriber" must be a Redis client or false: current value is ${problem}`,
    );
  }
}

/**
 * Throws a TypeError unless `options` is a plain object (`{...}`, or one without a
 * prototype) or undefined: an array, a Map or a class instance would be read as no
 * options at all.
 */
export function _checkOptions(options: unknown, action: string): void {
  if (options === undefined) return;
  const proto = options !== null && typeof options === "object"
    ? Object.getPrototypeOf(options)
    : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(
      `Cannot ${action} as "options" must be an object: current value is ${_describe(options)}`,
    );
  }
}

/**
 * The longest lease written as a bare number of seconds: one hour. A longer one needs a
 * unit (`"2h"`), so that `ttl: 10_000` meant as milliseconds fails loudly rather than
 * making a lease of 2.8 hours.
 */
export const _MAX_TTL_NUMBER_SECONDS = 3600;

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?|\.\d+) ?(ms|s|m|h|d)$/;

/** Parses a duration with a unit (`"250ms"`, `"10s"`, `"1.5m"`, `"2h"`, `"7d"`) to ms. */
export function _parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** How a duration option is read: see {@linkcode _durationMs}. */
export interface _DurationSpec {
  /** The unit of a bare number: seconds (`ttl`) or milliseconds (the others). */
  unit: "s" | "ms";
  /** The smallest value in ms (inclusive). */
  minMs: number;
  /** The largest value in ms (inclusive), whatever the form. */
  maxMs: number;
  /** The largest bare number, in `unit`, when lower than `maxMs`. */
  maxNumber?: number;
  /** Whether `Infinity` is accepted (as a number). */
  infinite?: boolean;
}

const MAX_DAYS_MS = _MAX_TTL_SECONDS * 1000;

/** The lease: seconds as a number (up to an hour), or a duration up to 30 days. */
export const _TTL: _DurationSpec = {
  unit: "s",
  minMs: 1,
  maxMs: MAX_DAYS_MS,
  maxNumber: _MAX_TTL_NUMBER_SECONDS,
};

/**
 * Converts a duration option to milliseconds (whole ms: rounded, at least `minMs`), or
 * throws: a TypeError when it is neither a number nor a string, or a string without a
 * known unit; a RangeError when it is out of range. Messages name the option, its
 * units and the value.
 */
export function _durationMs(
  value: unknown,
  name: string,
  action: string,
  spec: _DurationSpec,
): number {
  const unitName = spec.unit === "s" ? "seconds" : "milliseconds";
  const numberMax = spec.maxNumber ?? spec.maxMs / (spec.unit === "s" ? 1000 : 1);
  const numberMin = spec.minMs / (spec.unit === "s" ? 1000 : 1);
  const what = `a number of ${unitName} from ${numberMin} to ${numberMax}${
    spec.infinite ? ", Infinity" : ""
  }, or a string with a unit such as "250ms", "10s", "5m" or "2h" (up to ${formatMs(spec.maxMs)})`;
  const fail = (Class: typeof TypeError, hint = "") =>
    new Class(
      `Cannot ${action} as "${name}" must be ${what}: current value is ${_describe(value)}${hint}`,
    );
  let ms: number;
  if (typeof value === "number") {
    if (value === Infinity && spec.infinite) return Infinity;
    if (!Number.isFinite(value) || value < numberMin) throw fail(RangeError);
    if (value > numberMax) {
      const hint = spec.unit === "s" && value <= spec.maxMs / 1000
        ? ` (${name} is in seconds: ${value} is about ${
          formatMs(value * 1000)
        }; write "${value}ms" for ${formatMs(value)}, or "${value}s" if you mean it)`
        : "";
      throw fail(RangeError, hint);
    }
    ms = spec.unit === "s" ? value * 1000 : value;
  } else if (typeof value === "string") {
    const parsed = _parseDuration(value);
    if (parsed === undefined) {
      const bare = /^(\d+(\.\d+)?|\.\d+)$/.test(value.trim());
      const hint = spec.unit === "s"
        ? ` (a string needs a unit: "${value.trim()}s", or "${value.trim()}ms")`
        : ` (a string needs a unit: "${value.trim()}ms")`;
      throw fail(TypeError, bare ? hint : "");
    }
    if (parsed < spec.minMs || parsed > spec.maxMs) throw fail(RangeError);
    ms = parsed;
  } else {
    throw fail(TypeError);
  }
  return Math.max(spec.minMs, Math.round(ms));
}

/** A duration in the largest unit that keeps it readable: "250ms", "10s", "2.8h". */
function formatMs(ms: number): string {
  for (const unit of ["d", "h", "m", "s"] as const) {
    const n = ms / UNIT_MS[unit];
    if (n >= 1) return `${Number(n.toFixed(1))}${unit}`;
  }
  return `${Number(ms.toFixed(3))}ms`;
}

/** Converts a lease (the `ttl` option, or `extend(ttl)`) to whole milliseconds, or throws. */
export function _ttlMs(ttl: unknown, action: string, name = "ttl"): number {
  return _durationMs(ttl, name, action, _TTL);
}

/**
 * Throws a TypeError when `options` has a property that is not one of `known`, naming it
 * and the closest known name: a typo such as `tll` must not pass silently.
 */
export function _checkKnownOptions(
  options: object | undefined,
  known: readonly string[],
  action: string,
): void {
  if (options === undefined) return;
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const close = closest(name, known);
    throw new TypeError(
      `Cannot ${action} as "${name}" is not one of its options${
        close ? `; did you mean "${close}"?` : ""
      } (known: ${known.join(", ")})`,
    );
  }
}

/** The known name within edit distance 2 of `name` (case-insensitive), if any. */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

/** Levenshtein distance, for short option names. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j]! + 1,
        next[j - 1]! + 1,
        row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length]!;
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
 * Converts a positive duration in milliseconds (a number, or a string with a unit) to
 * whole milliseconds (rounded up, so 0.5 is 1), or throws: a TypeError for a value of
 * another type, a RangeError for one that is not positive and finite, or is above
 * `maxMs` (by default 30 days).
 */
export function _positiveMs(
  value: unknown,
  name: string,
  action: string,
  maxMs: number = MAX_DAYS_MS,
): number {
  if (typeof value === "number" && value > 0 && value <= maxMs) return Math.ceil(value);
  const parsed = typeof value === "string" ? _parseDuration(value) : undefined;
  if (parsed !== undefined && parsed > 0 && parsed <= maxMs) return Math.ceil(parsed);
  return _durationMs(value, name, action, { unit: "ms", minMs: 1, maxMs });
}
