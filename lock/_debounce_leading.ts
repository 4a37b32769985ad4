// The leading edge of debounce: the first call of a burst runs at once, in the instance
// that made it, and every later call until the burst has been quiet for `wait` ms is
// dropped. One round trip per call; the arguments never leave the process; the burst's key
// lives `wait` ms after its last call. Nothing is pending in Redis, so clear() and flush()
// have nothing to do there.
import { _abortWhileBusy, type _EdgeOptions, _execute, _instanceId } from "./_debounce_edge.ts";
import type { DebouncedFunction, DebounceResult } from "./debounce.ts";

/** One call of this instance, from the call until it settles. */
interface LeadingCall<T> {
  /** The call's value in the burst's key, if it is the burst's first call. */
  token: string;
  /** Set once the call won the burst: it runs, whatever clear() or the signal say. */
  running: boolean;
  /** Set by clear() or the signal: a dropped call settles as cancelled or rejects. */
  stop: "cancel" | "abort" | undefined;
  resolve(result: DebounceResult<T>): void;
  reject(error: unknown): void;
}

/** The leading edge of {@linkcode debounce}, with options already checked. */
export function _leadingEdge<A extends unknown[], T>(
  { store, key, fn, waitMs, signal }: _EdgeOptions<A, T>,
): DebouncedFunction<A, T> {
  const instance = _instanceId();
  let count = 0;
  const calls = new Set<LeadingCall<T>>();
  const aborts = _abortWhileBusy(signal, () => {
    for (const call of calls) if (!call.running) call.stop = "abort";
  }, () => calls.size > 0);

  const forget = (call: LeadingCall<T>) => {
    calls.delete(call);
    aborts.idle();
  };
  const lead = async (call: LeadingCall<T>, args: A) => {
    if (await store.lead(key, call.token, waitMs)) {
      call.running = true;
      const result = await _execute(fn, args);
      forget(call);
      return call.resolve(result);
    }
    forget(call);
    if (call.stop === "abort") call.reject(signal!.reason);
    else call.resolve({ ran: false, reason: call.stop === "cancel" ? "cancelled" : "dropped" });
  };

  const debounced = (...args: A): Promise<DebounceResult<T>> => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const { promise, resolve, reject } = Promise.withResolvers<DebounceResult<T>>();
    const call: LeadingCall<T> = {
      token: `${instance}${++count}`,
      running: false,
      stop: undefined,
      resolve,
      reject,
    };
    calls.add(call);
    aborts.busy();
    lead(call, args).catch((error) => {
      forget(call);
      reject(error);
    });
    return promise;
  };
  const clear = (): Promise<boolean> => {
    for (const call of calls) if (!call.running) call.stop ??= "cancel";
    return Promise.resolve(false);
  };
  const flush = (): Promise<null> =>
    signal?.aborted ? Promise.reject(signal.reason) : Promise.resolve(null);
  return Object.defineProperties(debounced, {
    clear: { value: clear },
    flush: { value: flush },
    pending: { get: () => calls.size > 0 },
  }) as DebouncedFunction<A, T>;
}
