import { _CLIENT_EXPECTED, _describe } from "./_client.ts";
import { _storeOf } from "./_store_of.ts";
import { _leadingEdge } from "./_debounce_leading.ts";
import { _trailingEdge } from "./_debounce_trailing.ts";
import {
  _checkFunction,
  _checkKey,
  _checkKnownOptions,
  _checkOptions,
  _checkSignal,
  _checkSubscriber,
  _positiveMs,
} from "./_validate.ts";
import type { Duration, LockStore, RedisClient } from "./types.ts";

/** The names {@linkcode DebounceOptions} has. */
const OPTION_NAMES = [
  "wait",
  "edge",
  "takeoverAfter",
  "signal",
  "onError",
  "subscriber",
] satisfies (keyof DebounceOptions)[];

const ACTION = "debounce";

/**
 * Which call of a burst runs: the last one, once the burst has been quiet for `wait` ms
 * (`"trailing"`), or the first one, at once (`"leading"`).
 */
export type DebounceEdge = "trailing" | "leading";

/** Options of {@linkcode debounce}. */
export interface DebounceOptions {
  /**
   * The quiet period: a burst ends once no instance has called for this long. Milliseconds
   * as a number, or a {@linkcode Duration} such as `"500ms"` or `"2s"`; positive, up to 30
   * days; fractions are rounded up to whole ms. Required.
   */
  wait: number | Duration;
  /**
   * `"trailing"`: the last call of the burst runs, `wait` ms after it, with its arguments;
   * every earlier call is superseded. `"leading"`: the first call of the burst runs at once;
   * every later call until the burst has been quiet for `wait` ms is dropped (duplicate
   * webhooks, rate limits).
   *
   * @default {"trailing"}
   */
  edge?: DebounceEdge;
  /**
   * Trailing edge only: how long, in milliseconds, after the quiet period ends the other
   * instances that called in the burst wait for the instance holding the last call to run it,
   * before one of them runs it instead, with the last call's arguments read from Redis. This
   * is what makes a burst survive the crash of the instance that would have run it. It also
   * bounds how long the burst's key outlives its last call: `wait + 2 * takeoverAfter` ms.
   *
   * Milliseconds as a number, or a {@linkcode Duration}.
   *
   * @default {1000}
   */
  takeoverAfter?: number | Duration;
  /**
   * Cancels this debounced function: calls of this instance that have not run yet reject
   * with `signal.reason`, the pending burst is cancelled in Redis if this instance holds its
   * last call, and later calls reject at once. An execution that already started finishes.
   */
  signal?: AbortSignal;
  /**
   * Receives the errors that have no caller to go to: `fn`'s error when this instance ran a
   * burst it took over from another instance, and Redis errors of the background check that
   * looks for such bursts (after which that burst may not run). It is called from a timer;
   * if it throws, what it threw is kept for the next call, as below.
   *
   * Without it, such an error is neither thrown from the timer (it would crash the process)
   * nor dropped: this debounced function keeps the first one (and counts the later ones),
   * and its next call, or `flush()`, rejects with an `Error` whose `cause` is that error,
   * before anything is sent to Redis. The call after that goes ahead as usual. Pass
   * `onError` to hear of these errors when they happen instead.
   */
  onError?: (error: unknown) => void;
  /**
   * Trailing edge only: how a waiting call learns that a later call of another instance
   * superseded it. Every call announces itself on the channel `baton:debounce:<key>`; by
   * default baton listens on one subscriber connection per client, opened with `duplicate()`,
   * shared with the lock's waiters and closed when the last listener is done, so a
   * superseded call resolves within a round trip. Pass a client connection to subscribe on
   * instead (baton never closes it), or `false` to not subscribe: a call superseded by
   * another instance then learns it when its own `wait` ends. A superseded call of the same
   * instance always learns at once.
   *
   * @default {a duplicate of `redis`, where the client has duplicate()}
   */
  subscriber?: RedisClient | false;
}

/** The outcome of a call whose execution ran and returned (or resolved to) `value`. */
export interface DebounceRanValue<T> {
  /** The callback ran for this call. */
  ran: true;
  /** The callback returned. */
  ok: true;
  /** What the callback returned, awaited. */
  value: T;
}

/** The outcome of a call whose execution ran and threw (or rejected with) `error`. */
export interface DebounceRanError {
  /** The callback ran for this call. */
  ran: true;
  /** The callback threw. */
  ok: false;
  /** What the callback threw, unchanged. */
  error: unknown;
}

/**
 * Why a call did not run:
 * - `"superseded"`: a later call (in any instance) replaced it; the burst runs, or ran, with
 *   the later call's arguments.
 * - `"dropped"`: leading edge; the burst had already run on its first call.
 * - `"cancelled"`: `clear()` cancelled it.
 * - `"ran-elsewhere"`: it was the burst's last call, but another instance ran it, by
 *   `flush()` or by taking over after this instance missed its turn by `takeoverAfter` ms.
 * - `"expired"`: the burst's key was gone when this call came to claim it (this instance
 *   was late by more than the key lives, or the key was deleted); nothing ran for it.
 */
export type DebounceSkipReason =
  | "superseded"
  | "dropped"
  | "cancelled"
  | "ran-elsewhere"
  | "expired";

/** The outcome of a call that did not run. */
export interface DebounceSkipped {
  /** The callback did not run for this call. */
  ran: false;
  /** Why; see {@linkcode DebounceSkipReason}. */
  reason: DebounceSkipReason;
}

/** The outcome of an execution: the callback's value or its error. */
export type DebounceRan<T> = DebounceRanValue<T> | DebounceRanError;

/** What a call of a debounced function resolves to: whether it ran, and how it went. */
export type DebounceResult<T> = DebounceRan<T> | DebounceSkipped;

/**
 * The function {@linkcode debounce} returns. Call it with the callback's arguments, from any
 * number of instances; each call resolves once it is known whether it ran.
 *
 * @typeParam A The callback's parameters.
 * @typeParam T The value the callback resolves to.
 */
export interface DebouncedFunction<A extends unknown[], T> {
  /**
   * Records a call in the burst on the debounced key.
   *
   * @param args The callback's arguments. On the trailing edge they are stored in Redis as
   * JSON, so they must be JSON data: `null`, booleans, finite numbers, strings, arrays and
   * plain objects of these.
   * @returns The outcome: `{ ran: true, ok, value | error }` for the call that ran, or
   * `{ ran: false, reason }`.
   * @throws {TypeError} (rejects) When an argument is not JSON data (trailing edge); nothing
   * is sent to Redis.
   * @throws {unknown} (rejects) With `signal.reason` once `signal` aborts, and with a Redis
   * error when Redis fails.
   * @throws {Error} (rejects) When a takeover in the background failed since the last call
   * and there is no `onError`: the error is its `cause`, and nothing is sent to Redis; see
   * {@linkcode DebounceOptions.onError}.
   */
  (...args: A): Promise<DebounceResult<T>>;
  /**
   * Cancels the pending burst if its last call is one of this instance's calls made before
   * `clear()`, so that no instance runs it, and settles this instance's waiting calls as
   * `{ ran: false, reason: "cancelled" }`. Calls made after `clear()` are not cancelled: they
   * start a new burst, which runs as usual. An execution that already started finishes.
   *
   * @returns `true` when a pending burst was cancelled in Redis (always `false` on the
   * leading edge, which has nothing pending).
   */
  clear(): Promise<boolean>;
  /**
   * Runs the pending burst now, in this instance, whoever holds its last call, with that
   * call's arguments (this instance's own, or the JSON copy from Redis). When that call is
   * this instance's, it resolves with the same outcome; another instance's resolves as
   * `"ran-elsewhere"`. A call that `clear()` cancelled is never run by it.
   *
   * @returns The execution's outcome, or `null` when no burst was pending (always on the
   * leading edge).
   * @throws {unknown} (rejects) With `signal.reason` once `signal` aborts, with a Redis error
   * when Redis fails, and as a call does when a takeover in the background failed.
   */
  flush(): Promise<DebounceRan<T> | null>;
  /** Whether this instance has calls that have not settled yet. */
  readonly pending: boolean;
}

/**
 * Debounces `fn` across every process that calls it: calls on `key` that come in a burst
 * (no gap of `wait` ms) lead to one execution of `fn`, on exactly one instance.
 *
 * On the trailing edge (the default), the burst's last call runs, `wait` ms after it, with
 * its arguments; every earlier call resolves as superseded as soon as its instance learns of
 * a later call: at once for a later call of the same instance, within a round trip for one of
 * another instance (announced on a channel; see `subscriber`), and at the latest when its own
 * `wait` ends. If the instance holding the last call dies before running it, another
 * instance that called in the burst runs it `takeoverAfter` ms later. On the leading edge,
 * the burst's first call runs at once and the rest of the burst is dropped.
 *
 * Every call tells its caller whether it was the one that ran, with `fn`'s value or error.
 * Each call costs two Redis round trips on the trailing edge (one when superseded within the
 * same instance) and one on the leading edge. Every key expires: on the trailing edge
 * `wait + 2 * takeoverAfter` ms after the burst's last call, on the leading edge `wait` ms
 * after it.
 *
 * @typeParam A The callback's parameters; JSON data on the trailing edge.
 * @typeParam T The value the callback resolves to.
 * @param redis Any supported Redis client (see {@linkcode RedisClient}), or a
 * {@linkcode LockStore} such as a `MemoryStore` (from `@baton/lock/memory`).
 * @param key The Redis key of the burst, the same in every instance, such as
 * `"debounce:reindex:doc42"`. Use one key per edge.
 * @param fn The callback, run once per burst with the arguments of the call that runs.
 * @param options The quiet period (`wait`, ms, required), the edge, the takeover delay, an
 * abort signal, an error handler and the subscriber connection.
 * @returns The debounced function, with `clear()`, `flush()` and `pending`.
 * @throws {TypeError} When `redis` is not a supported client, `key` is empty or not a string,
 * `fn` is not a function, or an option has the wrong type; nothing is sent to Redis.
 * @throws {RangeError} When `wait` or `takeoverAfter` is not a positive finite number of
 * milliseconds up to 30 days.
 *
 * @example Rebuild a cache once per burst of updates, on one instance
 * ```ts ignore
 * import { Redis } from "ioredis";
 * import { debounce } from "@baton/lock";
 *
 * const redis = new Redis();
 * const rebuild = debounce(redis, "debounce:leaderboard", (season: number) => rebuildBoard(season), {
 *   wait: 500,
 * });
 * // In every instance, on every score update:
 * const outcome = await rebuild(2026);
 * if (outcome.ran && !outcome.ok) console.error(outcome.error);
 * ```
 *
 * @example Handle a webhook once, dropping its duplicates
 * ```ts ignore
 * const handle = debounce(redis, `webhook:${event.id}`, () => fulfil(event), {
 *   wait: 60_000,
 *   edge: "leading",
 * });
 * const outcome = await handle();
 * if (!outcome.ran) return new Response("duplicate", { status: 200 });
 * ```
 */
export function debounce<A extends unknown[], T>(
  redis: RedisClient | LockStore,
  key: string,
  fn: (...args: A) => T | Promise<T>,
  options: DebounceOptions,
): DebouncedFunction<A, T> {
  _checkOptions(options, ACTION);
  _checkKnownOptions(options, OPTION_NAMES, ACTION);
  _checkKey(key, ACTION);
  _checkFunction(fn, "fn", ACTION);
  const waitMs = _positiveMs(options?.wait, "wait", ACTION);
  const edge = options.edge === undefined ? "trailing" : options.edge;
  if (edge !== "trailing" && edge !== "leading") {
    throw new TypeError(
      `Cannot ${ACTION} as "edge" must be "trailing" or "leading": current value is ${
        _describe(edge)
      }`,
    );
  }
  const takeoverMs = _positiveMs(
    options.takeoverAfter === undefined ? 1000 : options.takeoverAfter,
    "takeoverAfter",
    ACTION,
  );
  const signal = options.signal;
  _checkSignal(signal, ACTION);
  const onError = options.onError;
  if (onError !== undefined) _checkFunction(onError, "onError", ACTION);
  const subscriber = options.subscriber;
  _checkSubscriber(subscriber, ACTION);
  if (Array.isArray(redis)) {
    throw new TypeError(
      `Cannot ${ACTION} as "redis" must be ${_CLIENT_EXPECTED}: current value is an array (a burst runs on one server; an array of clients is for Redlock locks)`,
    );
  }
  const store = _storeOf(redis, ACTION).debounce;
  const common = { store, key, fn, waitMs, signal };
  if (edge === "leading") return _leadingEdge(common);
  return _trailingEdge({ ...common, takeoverMs, onError, subscriber });
}
