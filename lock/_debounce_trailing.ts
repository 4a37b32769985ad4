// The trailing edge of debounce: the burst's last call runs, `wait` ms after it, in the
// instance that made it. Each call is recorded in Redis (its token and arguments become
// the burst's last call) and then waits; when its wait ends it tries to claim the burst,
// which only the last call can, once. A call learns that it was superseded at once when a
// later call of this instance is recorded, through the channel when another instance's
// is, and at its claim otherwise. An instance whose call was superseded by another
// instance's stands by to take the burst over, should that instance miss its turn by
// `takeoverAfter` ms.
import { _argsJson } from "./_debounce_json.ts";
import {
  _abortWhileBusy,
  _CALL_ACTION,
  type _EdgeOptions,
  _execute,
  _instanceId,
} from "./_debounce_edge.ts";
import { _describe } from "./_client.ts";
import type { _Announcement, _Listening } from "./_store.ts";
import { _sleep, _unref } from "./_wait.ts";
import type { DebouncedFunction, DebounceRan, DebounceResult } from "./debounce.ts";
import type { RedisClient } from "./types.ts";

/** The trailing edge's options, besides those both edges have. */
export interface _TrailingOptions<A extends unknown[], T> extends _EdgeOptions<A, T> {
  /** How late the burst's last call may be before another instance runs it, in ms. */
  takeoverMs: number;
  onError: ((error: unknown) => void) | undefined;
  subscriber: RedisClient | false | undefined;
}

/**
 * One call of this instance, from the call until it settles (then it leaves `calls`).
 * Its phase: `calling` until Redis recorded it; then `waiting` for its quiet period to end
 * and `claiming` the burst, in turns; `running` once it claimed it. `flushed` from any of
 * the first three: flush() claimed the burst for it, runs it and settles it.
 */
interface TrailingCall<A, T> {
  /** This instance's id and `n`: what Redis records as the call. */
  token: string;
  /** The call's number in this instance, from 1. */
  n: number;
  args: A;
  phase: "calling" | "waiting" | "claiming" | "running" | "flushed";
  /** The burst it belongs to and its position in it, once Redis has recorded it. */
  burst: string | undefined;
  seq: number;
  /** Set by clear() or the signal: settle instead of claiming. */
  stop: "cancel" | "abort" | undefined;
  /** Ends the current wait early. */
  wake: (() => void) | undefined;
  resolve(result: DebounceResult<T>): void;
  reject(error: unknown): void;
}

/** Whether an execution started for the call, so that clear() and the signal leave it be. */
const started = (call: TrailingCall<unknown, unknown>) =>
  call.phase === "running" || call.phase === "flushed";

/** The trailing edge of {@linkcode debounce}, with options already checked. */
export function _trailingEdge<A extends unknown[], T>(
  { store, key, fn, waitMs, signal, takeoverMs, onError, subscriber }: _TrailingOptions<A, T>,
): DebouncedFunction<A, T> {
  const ttlMs = waitMs + 2 * takeoverMs;
  const instance = _instanceId();
  let count = 0;
  /** The highest call number clear() cancelled: those calls never run, even via flush(). */
  let cleared = 0;
  /** This instance's calls that have not settled, by token. */
  const calls = new Map<string, TrailingCall<A, T>>();
  /** The cancel in Redis that an abort triggers, shared by the calls it stops. */
  let aborting: Promise<unknown> | undefined;
  /** The background check for a burst to take over, and when it fires (performance.now()). */
  let watchTimer: ReturnType<typeof setTimeout> | undefined;
  let watchAt = Infinity;
  /** The subscription to the channel, while this instance has calls. */
  let listening: _Listening | undefined;
  /** The latest call of another instance announced on the channel. */
  let announced: { burst: string; seq: number } | undefined;
  /** The first error that had no caller and no onError, and how many came after it. */
  let kept: { error: unknown; more: number } | undefined;
  const aborts = _abortWhileBusy(
    signal,
    () => onAbort(),
    () => calls.size > 0 || watchTimer !== undefined,
  );

  // -- Calls settle once, and leave.

  const forget = (call: TrailingCall<A, T>): boolean => {
    if (!calls.delete(call.token)) return false;
    call.wake?.();
    if (calls.size === 0) unlisten();
    aborts.idle();
    return true;
  };
  const settle = (call: TrailingCall<A, T>, result: DebounceResult<T>) => {
    if (forget(call)) call.resolve(result);
  };
  const fail = (call: TrailingCall<A, T>, error: unknown) => {
    if (forget(call)) call.reject(error);
  };
  /** Whether the call needs no more from its own trail: it settled, or flush() runs it. */
  const handedOver = (call: TrailingCall<A, T>) =>
    !calls.has(call.token) || call.phase === "flushed";

  // -- News of other instances' calls, on the channel.

  // Without announcements, a superseded call learns it at its own check.
  let canListen = true;
  const listen = () => {
    if (!canListen || listening) return;
    listening = store.announcements(key, subscriber, onAnnounce);
    if (listening) listening.ready.catch(() => {});
    else canListen = false;
  };
  const unlisten = () => {
    listening?.stop();
    listening = undefined;
    announced = undefined;
  };
  /** A call of another instance in a burst supersedes this instance's earlier calls in it. */
  const onAnnounce = ({ seq, token, burst }: _Announcement) => {
    if (token.startsWith(instance)) return;
    if (!announced || announced.burst !== burst || announced.seq < seq) announced = { burst, seq };
    let superseded = false;
    for (const call of calls.values()) {
      if (call.burst === burst && call.seq < seq && call.phase === "waiting" && !call.stop) {
        superseded = true;
        settle(call, { ran: false, reason: "superseded" });
      }
    }
    // Stand by to run the burst if the instance of its last call dies.
    if (superseded) watch(waitMs + takeoverMs);
  };

  // -- Errors with no caller: onError, or kept for the next call.

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
      `Cannot ${_CALL_ACTION} as ${what} on ${
        _describe(key)
      } failed in the background since the last call, with no "onError" to receive it; nothing was sent, and the next call goes ahead. The error (the cause): ${
        error instanceof Error ? error.message : _describe(error)
      }`,
      { cause: error },
    );
  };

  // -- Cancelling: clear() and the signal.

  /**
   * Cancels the pending burst in Redis if its last call is this instance's call number
   * `upTo` or an earlier one.
   */
  const cancel = (upTo: number) => store.cancel(key, instance, upTo);
  /** Ends a call that clear() or the signal stopped before it could run. */
  const stop = async (call: TrailingCall<A, T>, recorded: boolean) => {
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
  function onAbort(): void {
    clearTimeout(watchTimer);
    watchTimer = undefined;
    unlisten();
    for (const call of calls.values()) {
      if (started(call)) continue;
      call.stop = "abort";
      call.wake?.();
    }
  }

  // -- Taking over a burst whose last call's instance missed its turn.

  /** Arms the background check that takes over a burst whose holder missed its turn. */
  const watch = (delayMs: number) => {
    if (signal?.aborted) return;
    const at = performance.now() + delayMs;
    if (watchTimer !== undefined && watchAt <= at) return;
    clearTimeout(watchTimer);
    watchAt = at;
    aborts.busy();
    watchTimer = setTimeout(() => {
      watchTimer = undefined;
      watchAt = Infinity;
      aborts.idle();
      takeover().catch(report);
    }, Math.max(0, delayMs));
    _unref(watchTimer);
  };
  const takeover = async () => {
    const found = await store.takeover(key, takeoverMs, instance);
    if (found && "inMs" in found) watch(found.inMs);
    else if (found) {
      const result = await _execute(fn, JSON.parse(found.argsJson) as A);
      if (!result.ok) report(result.error);
    }
  };

  // -- A call: recorded, then waits and claims until it runs or learns it will not.

  /**
   * Settles the calls that a call Redis just recorded supersedes, in this instance, and the
   * call itself when a later one supersedes it; true in that case. Synchronous, so that no
   * other reply is handled between the record and the start of the call's wait.
   */
  const supersedeOnRecord = (call: TrailingCall<A, T>): boolean => {
    if (announced && announced.burst === call.burst && announced.seq > call.seq) {
      watch(waitMs + takeoverMs);
      settle(call, { ran: false, reason: "superseded" });
      return true;
    }
    // This call supersedes this instance's earlier calls in the burst at once, and is
    // superseded at once by a later one whose reply came first.
    for (const other of calls.values()) {
      if (other === call || other.burst !== call.burst || other.phase === "flushed") continue;
      if (other.seq < call.seq && other.phase === "waiting") {
        settle(other, { ran: false, reason: "superseded" });
      } else if (other.seq > call.seq) {
        settle(call, { ran: false, reason: "superseded" });
        return true;
      }
    }
    return false;
  };
  const trail = async (call: TrailingCall<A, T>, json: string) => {
    ({ burst: call.burst, seq: call.seq } = await store.record(
      key,
      call.token,
      json,
      waitMs,
      ttlMs,
    ));
    if (handedOver(call)) return;
    if (call.stop) return await stop(call, true);
    if (supersedeOnRecord(call)) return;
    let delayMs = waitMs;
    while (true) {
      call.phase = "waiting";
      await _sleep(delayMs, undefined, (wake) => call.wake = wake);
      if (handedOver(call)) return;
      if (call.stop) return await stop(call, false);
      call.phase = "claiming";
      const claim = await store.claim(key, call.token);
      if (claim.verdict === "run") {
        // Claimed: it runs, even if clear() or the signal came during the round trip.
        call.phase = "running";
        return settle(call, await _execute(fn, call.args));
      }
      if (handedOver(call)) return;
      if (call.stop) return await stop(call, false);
      if (claim.verdict === "wait") {
        delayMs = claim.inMs;
        continue;
      }
      // The burst's last call is another instance's: stand by to run it if that one dies.
      if (claim.verdict === "superseded" && claim.lastToken !== undefined) {
        if (!claim.lastToken.startsWith(instance)) watch(claim.dueInMs + takeoverMs);
      }
      return settle(call, { ran: false, reason: claim.verdict });
    }
  };

  // -- The debounced function.

  const debounced = (...args: A): Promise<DebounceResult<T>> => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let json: string;
    try {
      json = _argsJson(args);
    } catch (error) {
      return Promise.reject(error);
    }
    const background = takeKept();
    if (background) return Promise.reject(background);
    const { promise, resolve, reject } = Promise.withResolvers<DebounceResult<T>>();
    const n = ++count;
    const call: TrailingCall<A, T> = {
      token: `${instance}${n}`,
      n,
      args,
      phase: "calling",
      burst: undefined,
      seq: 0,
      stop: undefined,
      wake: undefined,
      resolve,
      reject,
    };
    calls.set(call.token, call);
    aborts.busy();
    listen();
    trail(call, json).catch((error) => fail(call, error));
    return promise;
  };

  const clear = async (): Promise<boolean> => {
    for (const call of calls.values()) {
      if (started(call)) continue;
      call.stop ??= "cancel";
      if (call.phase === "waiting") call.wake?.();
    }
    cleared = count;
    return await cancel(cleared);
  };

  const flush = async (): Promise<DebounceRan<T> | null> => {
    signal?.throwIfAborted();
    const background = takeKept();
    if (background) throw background;
    const claimed = await store.flush(key, instance, cleared);
    if (!claimed) return null;
    const call = calls.get(claimed.token);
    if (call) {
      call.phase = "flushed";
      const result = await _execute(fn, call.args);
      settle(call, result);
      return result;
    }
    return await _execute(fn, JSON.parse(claimed.argsJson) as A);
  };

  return Object.defineProperties(debounced, {
    clear: { value: clear },
    flush: { value: flush },
    pending: { get: () => calls.size > 0 },
  }) as DebouncedFunction<A, T>;
}
