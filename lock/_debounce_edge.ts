// What the two edges of debounce share: the options they run with, how the callback runs,
// and the abort listener that sits on the signal only while an edge has something to stop.
import type { _DebounceStore } from "./_store.ts";
import type { DebounceRan } from "./debounce.ts";

/** The action named by the errors that a call of a debounced function rejects with. */
export const _CALL_ACTION = "call debounced function";

/** What both edges run with, checked by debounce(). */
export interface _EdgeOptions<A extends unknown[], T> {
  store: _DebounceStore;
  /** The burst's key. */
  key: string;
  fn: (...args: A) => T | Promise<T>;
  /** The quiet period, in ms. */
  waitMs: number;
  signal: AbortSignal | undefined;
}

/**
 * A new instance id, `"<uuid>:"`. A call's token is the id followed by the call's number, so
 * that the scripts tell an instance's calls apart, and its earlier calls from its later ones.
 */
export function _instanceId(): string {
  return `${crypto.randomUUID()}:`;
}

/** Runs `fn` with `args` and returns its value, awaited, or its error, as an outcome. */
export async function _execute<A extends unknown[], T>(
  fn: (...args: A) => T | Promise<T>,
  args: A,
): Promise<DebounceRan<T>> {
  try {
    return { ran: true, ok: true, value: await fn(...args) };
  } catch (error) {
    return { ran: true, ok: false, error };
  }
}

/** See {@linkcode _abortWhileBusy}. */
export interface _AbortListener {
  /** Puts the listener on the signal, if it is not on it yet. */
  busy(): void;
  /** Takes the listener off the signal, unless the edge is still busy. */
  idle(): void;
}

/**
 * Calls `onAbort` when `signal` aborts while `isBusy()`: the listener is on the signal only
 * between `busy()` and an `idle()` that finds nothing to stop, so that debounced functions
 * made and dropped under one long-lived signal do not pile up on it.
 */
export function _abortWhileBusy(
  signal: AbortSignal | undefined,
  onAbort: () => void,
  isBusy: () => boolean,
): _AbortListener {
  let on = false;
  const listener = () => {
    on = false;
    onAbort();
  };
  return {
    busy() {
      if (!signal || on) return;
      signal.addEventListener("abort", listener, { once: true });
      on = true;
    },
    idle() {
      if (!on || isBusy()) return;
      signal!.removeEventListener("abort", listener);
      on = false;
    },
  };
}
