import { _describe, type _Reply, _sendOf } from "./_client.ts";
import {
  _DEBOUNCE_CALL,
  _DEBOUNCE_CANCEL,
  _DEBOUNCE_CLAIM,
  _DEBOUNCE_FLUSH,
  _DEBOUNCE_LEAD,
  _DEBOUNCE_TAKEOVER,
} from "./_debounce_scripts.ts";
import { _evalScript } from "./_scripts.ts";
import { _canSubscribe, _listen, type _Listening } from "./_subscriber.ts";
import {
  _checkFunction,
  _checkKey,
  _checkOptions,
  _checkSignal,
  _checkSubscriber,
  _positiveMs,
} from "./_validate.ts";
import { _sleep, _unref } from "./_wait.ts";
import type { RedisClient } from "./types.ts";

const ACTION = "debounce";
const CALL_ACTION = "call debounced function";

/**
 * Which call of a burst runs: the last one, once the burst has been quiet for `wait` ms
 * (`"trailing"`), or the first one, at once (`"leading"`).
 */
export type DebounceEdge = "trailing" | "leading";

/** Options of {@linkcode debounce}. */
export interface DebounceOptions {
  /**
   * The quiet period, in milliseconds: a burst ends once no instance has called for this
   * long. A positive finite number up to 30 days; fractions are rounded up to whole ms.
   * Required.
   */
  wait: number;
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
   * @default {1000}
   */
  takeoverAfter?: number;
  /**
   * Cancels this debounced function: calls of this instance that have not run yet reject
   * with `signal.reason`, the pending burst is cancelled in Redis if this instance holds its
   * last call, and later calls reject at once. An execution that already started finishes.
   */
  signal?: AbortSignal;
  /**
   * Receives the errors that have no caller to go to: `fn`'s error when this instance ran a
   * burst it took over from another instance, and Redis errors of the background check that
   * looks for such bursts (after which that burst may not run). It is called from a timer,
   * so what it throws is handled as if it had not been given.
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

/** One call of this instance, from the call until it settles. */
interface Call<A, T> {
  /** This instance's id and `n`: what Redis records as the call. */
  token: string;
  /** The call's number in this instance, from 1. */
  n: number;
  args: A;
  phase: "calling" | "waiting" | "claiming" | "running";
  /** The burst it belongs to and its position in it, once Redis has recorded it. */
  burst: string | undefined;
  seq: number;
  settled: boolean;
  /** Set by clear() or the signal: settle instead of claiming. */
  stop: "cancel" | "abort" | undefined;
  /** Set by flush() when it runs this call: flush settles it. */
  flushing: boolean;
  /** Ends the current wait early. */
  wake: (() => void) | undefined;
  resolve(result: DebounceResult<T>): void;
  reject(error: unknown): void;
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
 * @param redis Any supported Redis client; see {@linkcode RedisClient}.
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
  redis: RedisClient,
  key: string,
  fn: (...args: A) => T | Promise<T>,
  options: DebounceOptions,
): DebouncedFunction<A, T> {
  _checkOptions(options, ACTION);
  _checkKey(key, ACTION);
  _checkFunction(fn, "fn", ACTION);
  const waitMs = _positiveMs(options?.wait, "wait", ACTION);
  const edge = options.edge ?? "trailing";
  if (edge !== "trailing" && edge !== "leading") {
    throw new TypeError(
      `Cannot ${ACTION} as "edge" must be "trailing" or "leading": current value is ${
        _describe(edge)
      }`,
    );
  }
  const takeoverMs = _positiveMs(options.takeoverAfter ?? 1000, "takeoverAfter", ACTION);
  const signal = options.signal;
  _checkSignal(signal, ACTION);
  const onError = options.onError;
  if (onError !== undefined) _checkFunction(onError, "onError", ACTION);
  const subscriber = options.subscriber;
  _checkSubscriber(subscriber, ACTION);
  const send = _sendOf(redis, ACTION);

  const leading = edge === "leading";
  const keys = [key];
  const channel = `baton:debounce:${key}`;
  const canSubscribe = !leading && subscriber !== false &&
    (subscriber !== undefined || _canSubscribe(redis));
  const ttlMs = String(waitMs + 2 * takeoverMs);
  // Tokens are "<instance id>:<n>": the scripts tell this instance's calls by the prefix.
  const instance = `${crypto.randomUUID()}:`;
  let count = 0;
  /** The highest call number clear() cancelled: those calls never run, even via flush(). */
  let cleared = 0;
  const calls = new Map<string, Call<A, T>>();
  /** The cancel in Redis that an abort triggers, shared by the calls it stops. */
  let aborting: Promise<unknown> | undefined;
  let watchTimer: ReturnType<typeof setTimeout> | undefined;
  let watchAt = Infinity;
  /** The subscription to the channel, while this instance has calls. */
  let listening: _Listening | undefined;
  /** The latest call of another instance announced on the channel. */
  let announced: { burst: string; seq: number } | undefined;

  const settle = (call: Call<A, T>, result: DebounceResult<T>) => {
    if (call.settled) return;
    call.settled = true;
    forget(call);
    call.resolve(result);
  };
  const fail = (call: Call<A, T>, error: unknown) => {
    if (call.settled) return;
    call.settled = true;
    forget(call);
    call.reject(error);
  };
  const forget = (call: Call<A, T>) => {
    calls.delete(call.token);
    call.wake?.();
    if (calls.size === 0) unlisten();
    idle();
  };
  // The abort listener is only on the signal while there is something to stop, so that
  // debounced functions made and dropped under one long-lived signal do not pile up on it.
  let onSignal = false;
  const busy = () => {
    if (!signal || onSignal) return;
    signal.addEventListener("abort", onAbort, { once: true });
    onSignal = true;
  };
  const idle = () => {
    if (!onSignal || calls.size > 0 || watchTimer !== undefined) return;
    signal!.removeEventListener("abort", onAbort);
    onSignal = false;
  };
  const listen = () => {
    if (!canSubscribe || listening) return;
    listening = _listen(redis, subscriber || undefined, channel, onAnnounce);
    // Without a subscription, a superseded call learns it at its own check.
    listening.ready.catch(() => {});
  };
  const unlisten = () => {
    listening?.stop();
    listening = undefined;
    announced = undefined;
  };
  /** A call of another instance in a burst supersedes this instance's earlier calls in it. */
  const onAnnounce = (message: string) => {
    const [seqText, token, burst] = message.split(" ");
    if (!token || !burst || token.startsWith(instance)) return;
    const seq = Number(seqText);
    if (!announced || announced.burst !== burst || announced.seq < seq) announced = { burst, seq };
    let superseded = false;
    for (const call of calls.values()) {
      if (call.burst === burst && call.seq < seq && call.phase === "waiting" && !call.stop) {
        if (call.flushing) continue;
        superseded = true;
        settle(call, { ran: false, reason: "superseded" });
      }
    }
    // Stand by to run the burst if the instance of its last call dies.
    if (superseded) watch(waitMs + takeoverMs);
  };
  const execute = async (args: A): Promise<DebounceRan<T>> => {
    try {
      return { ran: true, ok: true, value: await fn(...args) };
    } catch (error) {
      return { ran: true, ok: false, error };
    }
  };
  /** The first error that had no caller and no onError, and how many came after it. */
  let kept: { error: unknown; more: number } | undefined;
  /** Hands an error with no caller to onError, or keeps it for the next call. */
  const report = (error: unknown) => {
    if (onError) {
      try {
        return onError(error);
      } catch (thrown) {
        error = thrown;
      }
    }
    if (kept) kept.more++;
    else kept = { error, more: 0 };
  };
  /** The kept error, as the rejection of the call that surfaces it; forgets it. */
  const takeKept = (): Error | undefined => {
    if (!kept) return undefined;
    const { error, more } = kept;
    kept = undefined;
    const what = more > 0 ? `${more + 1} takeovers of bursts` : "a takeover of a burst";
    return new Error(
      `Cannot ${CALL_ACTION} as ${what} on ${
        _describe(key)
      } failed in the background since the last call, with no "onError" to receive it; nothing was sent, and the next call goes ahead. The error (the cause): ${
        error instanceof Error ? error.message : _describe(error)
      }`,
      { cause: error },
    );
  };
  /**
   * Cancels the pending burst in Redis if its last call is this instance's call number
   * `upTo` or an earlier one.
   */
  const cancel = async (upTo: number) =>
    !leading &&
    Number(await _evalScript(send, _DEBOUNCE_CANCEL, keys, [instance, String(upTo)])) === 1;

  /** Ends a call that clear() or the signal stopped before it could run. */
  const stop = async (call: Call<A, T>, recorded: boolean) => {
    if (call.stop === "abort") {
      aborting ??= cancel(count);
      await aborting;
      fail(call, signal!.reason);
      return;
    }
    // A call that Redis recorded after clear()'s cancel is cancelled here, by its token.
    if (recorded) await cancel(call.n);
    settle(call, { ran: false, reason: "cancelled" });
  };

  /** Arms the background check that takes over a burst whose holder missed its turn. */
  const watch = (delayMs: number) => {
    if (signal?.aborted) return;
    const at = performance.now() + delayMs;
    if (watchTimer !== undefined && watchAt <= at) return;
    clearTimeout(watchTimer);
    watchAt = at;
    busy();
    watchTimer = setTimeout(() => {
      watchTimer = undefined;
      watchAt = Infinity;
      idle();
      takeover().catch(report);
    }, Math.max(0, delayMs));
    _unref(watchTimer);
  };
  const takeover = async () => {
    const reply = await _evalScript(send, _DEBOUNCE_TAKEOVER, keys, [
      String(takeoverMs),
      instance,
    ]) as _Reply[];
    if (reply[0] === "wait") watch(Number(reply[1]));
    else if (reply[0] === "run") {
      const result = await execute(JSON.parse(String(reply[2])) as A);
      if (!result.ok) report(result.error);
    }
  };

  const trail = async (call: Call<A, T>, json: string) => {
    const reply = await _evalScript(send, _DEBOUNCE_CALL, keys, [
      call.token,
      json,
      String(waitMs),
      ttlMs,
      channel,
    ]) as _Reply[];
    call.burst = String(reply[0]);
    call.seq = Number(reply[1]);
    if (call.settled || call.flushing) return;
    if (call.stop) return await stop(call, true);
    if (announced && announced.burst === call.burst && announced.seq > call.seq) {
      watch(waitMs + takeoverMs);
      return settle(call, { ran: false, reason: "superseded" });
    }
    // This call supersedes this instance's earlier calls in the burst at once, and is
    // superseded at once by a later one whose reply came first.
    for (const other of calls.values()) {
      if (other === call || other.burst !== call.burst || other.flushing) continue;
      if (other.seq < call.seq && other.phase === "waiting") {
        settle(other, { ran: false, reason: "superseded" });
      } else if (other.seq > call.seq) {
        return settle(call, { ran: false, reason: "superseded" });
      }
    }
    let delayMs = waitMs;
    while (true) {
      call.phase = "waiting";
      await _sleep(delayMs, undefined, (wake) => call.wake = wake);
      if (call.settled || call.flushing) return;
      if (call.stop) return await stop(call, false);
      call.phase = "claiming";
      const claim = await _evalScript(send, _DEBOUNCE_CLAIM, keys, [call.token]) as _Reply[];
      const verdict = String(claim[0]);
      if (verdict === "run") {
        // Claimed: it runs, even if clear() or the signal came during the round trip.
        call.phase = "running";
        return settle(call, await execute(call.args));
      }
      if (call.settled || call.flushing) return;
      if (call.stop) return await stop(call, false);
      if (verdict === "wait") {
        delayMs = Number(claim[1]);
        continue;
      }
      // The burst's last call is another instance's: stand by to run it if that one dies.
      if (verdict === "superseded" && typeof claim[1] === "string") {
        if (!claim[1].startsWith(instance)) watch(Number(claim[2]) + takeoverMs);
      }
      return settle(call, { ran: false, reason: verdict as DebounceSkipReason });
    }
  };

  const lead = async (call: Call<A, T>) => {
    const first = await _evalScript(send, _DEBOUNCE_LEAD, keys, [call.token, String(waitMs)]);
    if (Number(first) === 1) {
      call.phase = "running";
      return settle(call, await execute(call.args));
    }
    if (call.stop) return await stop(call, false);
    settle(call, { ran: false, reason: "dropped" });
  };

  function onAbort(): void {
    onSignal = false;
    clearTimeout(watchTimer);
    watchTimer = undefined;
    unlisten();
    for (const call of calls.values()) {
      if (call.phase === "running" || call.flushing) continue;
      call.stop = "abort";
      call.wake?.();
    }
  }

  const debounced = (...args: A): Promise<DebounceResult<T>> => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let json = "";
    if (!leading) {
      try {
        json = _argsJson(args);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const background = takeKept();
    if (background) return Promise.reject(background);
    const { promise, resolve, reject } = Promise.withResolvers<DebounceResult<T>>();
    const n = ++count;
    const call: Call<A, T> = {
      token: `${instance}${n}`,
      n,
      args,
      phase: "calling",
      burst: undefined,
      seq: 0,
      settled: false,
      stop: undefined,
      flushing: false,
      wake: undefined,
      resolve,
      reject,
    };
    calls.set(call.token, call);
    busy();
    listen();
    (leading ? lead(call) : trail(call, json)).catch((error) => fail(call, error));
    return promise;
  };

  const clear = async (): Promise<boolean> => {
    for (const call of calls.values()) {
      if (call.phase === "running" || call.flushing) continue;
      call.stop ??= "cancel";
      if (call.phase === "waiting") call.wake?.();
    }
    cleared = count;
    return await cancel(cleared);
  };

  const flush = async (): Promise<DebounceRan<T> | null> => {
    signal?.throwIfAborted();
    if (leading) return null;
    const background = takeKept();
    if (background) throw background;
    const reply = await _evalScript(send, _DEBOUNCE_FLUSH, keys, [
      instance,
      String(cleared),
    ]) as _Reply[];
    if (reply[0] !== "run") return null;
    const call = calls.get(String(reply[1]));
    if (call && !call.settled) {
      call.flushing = true;
      call.phase = "running";
      const result = await execute(call.args);
      settle(call, result);
      return result;
    }
    return await execute(JSON.parse(String(reply[2])) as A);
  };

  return Object.defineProperties(debounced, {
    clear: { value: clear },
    flush: { value: flush },
    pending: { get: () => calls.size > 0 },
  }) as DebouncedFunction<A, T>;
}

const JSON_DATA = "JSON data (null, a boolean, a finite number, a string, an array or a plain " +
  "object of these), as the trailing edge stores the arguments in Redis";

/**
 * The arguments as JSON, or a TypeError naming the first argument (by its path, such as
 * `args[0].at`) that would not come back the same from `JSON.parse`.
 */
function _argsJson(args: unknown[]): string {
  checkJson(args, "args", []);
  return JSON.stringify(args);
}

function checkJson(value: unknown, path: string, parents: object[]): void {
  if (typeof value === "string" || typeof value === "boolean" || value === null) return;
  if (typeof value === "number" && Number.isFinite(value)) return;
  if (typeof value === "object") {
    if (parents.includes(value)) {
      throw new TypeError(
        `Cannot ${CALL_ACTION} as "${path}" must be ${JSON_DATA}, without cycles: current value is a reference to an enclosing object`,
      );
    }
    const proto = Object.getPrototypeOf(value);
    if (Array.isArray(value) && proto === Array.prototype) {
      parents.push(value);
      for (let i = 0; i < value.length; i++) {
        checkJson(i in value ? value[i] : undefined, `${path}[${i}]`, parents);
      }
      parents.pop();
      return;
    }
    if (
      (proto === Object.prototype || proto === null) &&
      Object.getOwnPropertySymbols(value).length === 0
    ) {
      parents.push(value);
      for (const [name, item] of Object.entries(value)) {
        const step = /^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`;
        checkJson(item, path + step, parents);
      }
      parents.pop();
      return;
    }
  }
  throw new TypeError(
    `Cannot ${CALL_ACTION} as "${path}" must be ${JSON_DATA}: current value is ${_describe(value)}`,
  );
}
