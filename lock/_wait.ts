// Backoff with jitter, and sleeps that end early on abort or on a wake-up call, leaving
// no timer or listener behind.

/** How a waiter spaces its attempts. All durations in ms. */
export interface _Backoff {
  retryDelayMs: number;
  maxRetryDelayMs: number;
  /** 0 to 1: the share of each delay that is randomised away (0 = none). */
  jitter: number;
}

/**
 * The delay before retry number `retry` (1 for the first retry): `retryDelayMs` doubled
 * per retry, capped at `maxRetryDelayMs`, then shortened by a random share of at most
 * `jitter`, so that waiters that failed together do not retry together.
 */
export function _backoffMs(retry: number, b: _Backoff, random: () => number = Math.random): number {
  const exp = Math.min(b.maxRetryDelayMs, b.retryDelayMs * 2 ** Math.max(0, retry - 1));
  return exp * (1 - b.jitter * random());
}

/** Why a sleep ended. */
export type _Woke = "timeout" | "wake";

/**
 * Sleeps `ms`, or less: rejects with `signal.reason` as soon as `signal` aborts, and
 * resolves "wake" as soon as the function handed to `onWake` is called.
 */
export function _sleep(
  ms: number,
  signal: AbortSignal | undefined,
  onWake?: (wake: () => void) => void,
): Promise<_Woke> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    let done = false;
    const finish = (woke: _Woke | undefined, reason?: unknown) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      onWake?.(() => {});
      if (woke) resolve(woke);
      else reject(reason);
    };
    const onAbort = () => finish(undefined, signal!.reason);
    const timer = setTimeout(() => finish("timeout"), Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
    onWake?.(() => finish("wake"));
  });
}

/** Keeps a timer from holding the process open, in Deno, Bun and Node. */
export function _unref(timer: unknown): void {
  if (typeof timer === "object" && timer !== null) {
    (timer as { unref?: () => void }).unref?.();
  } else if (typeof timer === "number") {
    (globalThis as { Deno?: { unrefTimer?(id: number): void } }).Deno?.unrefTimer?.(timer);
  }
}

type Immediate = {
  setImmediate?: (fn: () => void) => unknown;
  clearImmediate?: (handle: unknown) => void;
};

/**
 * Calls `fn` on the next turn of the event loop (setImmediate where the runtime has it:
 * Deno 2, Bun, Node; else a 0 ms timer), after the code that runs on from the current
 * one, promise continuations included. Returns a function that cancels the call.
 */
export function _nextTurn(fn: () => void): () => void {
  const g = globalThis as Immediate;
  if (typeof g.setImmediate === "function" && typeof g.clearImmediate === "function") {
    const handle = g.setImmediate(fn);
    return () => g.clearImmediate!(handle);
  }
  const timer = setTimeout(fn, 0);
  return () => clearTimeout(timer);
}

/** Why {@linkcode _bounded} gave up on a promise: its time ran out. */
export class _NoAnswer extends Error {
  constructor() {
    super("no answer in time");
    this.name = "_NoAnswer";
  }
}

/** A bounded promise's give-up time (performance.now() ms) and what to do then. */
interface Watch {
  untilMs: number;
  expire(): void;
}

/**
 * The deadlines of every bounded promise in flight, checked by one shared timer rather
 * than a timer each: arming and clearing a timer per command cost more than the rest of
 * an uncontended acquire. The timer is unref'd (whoever waits on the command holds the
 * process open through its client) and stays armed while idle, for at most its delay.
 */
const watches = new Set<Watch>();
let watchTimer: ReturnType<typeof setTimeout> | undefined;
let armedForMs = Infinity;

function watch(w: Watch): void {
  watches.add(w);
  if (w.untilMs < armedForMs) arm(w.untilMs);
}

function arm(atMs: number): void {
  clearTimeout(watchTimer);
  armedForMs = atMs;
  watchTimer = setTimeout(checkWatches, Math.max(0, atMs - performance.now()));
  _unref(watchTimer);
}

function checkWatches(): void {
  watchTimer = undefined;
  armedForMs = Infinity;
  const now = performance.now();
  let next = Infinity;
  for (const w of watches) {
    if (w.untilMs <= now) {
      watches.delete(w);
      w.expire();
    } else if (w.untilMs < next) next = w.untilMs;
  }
  if (next < Infinity) arm(next);
}

/**
 * Settles like `work`, or earlier: rejects with {@linkcode _NoAnswer} at `untilMs`
 * (a performance.now() time) and with `signal.reason` as soon as `signal` aborts.
 * `work` itself cannot be cancelled (a client may send a queued command much later):
 * when it resolves after this gave up, `onLate` gets its value, to undo what it did.
 */
export function _bounded<T>(
  work: Promise<T>,
  untilMs: number,
  signal?: AbortSignal,
  onLate?: (value: T) => void,
): Promise<T> {
  if (untilMs === Infinity && signal === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = () => {
      done = true;
      watches.delete(w);
      signal?.removeEventListener("abort", onAbort);
    };
    const giveUp = (reason: unknown) => {
      if (done) return;
      finish();
      reject(reason);
      work.then((value) => onLate?.(value), () => {});
    };
    const onAbort = () => giveUp(signal!.reason);
    const w: Watch = { untilMs, expire: () => giveUp(new _NoAnswer()) };
    if (signal?.aborted) return onAbort();
    if (untilMs !== Infinity) watch(w);
    signal?.addEventListener("abort", onAbort, { once: true });
    work.then((value) => {
      if (done) return;
      finish();
      resolve(value);
    }, (error) => {
      if (done) return;
      finish();
      reject(error);
    });
  });
}
