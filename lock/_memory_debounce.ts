// debounce's half of a MemoryStore: bursts in this process's memory, with the semantics of
// the Redis scripts of _debounce_scripts.ts step for step (record, claim, takeover, flush,
// cancel on the trailing edge; lead on the leading edge), each operation synchronous and so
// atomic. A recorded call is announced to the debounced functions of the same store that
// listen on the key, in a microtask after the operation, as a message arrives after the
// script that sent it. Time is the injected clock's.
import { _answer, _SWEEP_EVERY } from "./_memory_store.ts";
import type { _Announcement, _Claim, _ClaimedBurst, _DebounceStore } from "./_store.ts";

/** A trailing burst: what the Redis store keeps in the burst's hash. */
interface Burst {
  edge: "trailing";
  state: "pending" | "claimed" | "cancelled";
  /** The last call's token, "<instance id>:<n>". */
  token: string;
  /** The last call's arguments, as JSON. */
  argsJson: string;
  /** When the quiet period ends (clock ms). */
  due: number;
  /** The first call's token: the burst's id. */
  burst: string;
  /** Calls so far. */
  seq: number;
  /** When the key lapses (clock ms): `ttl` after the last call. */
  expiresAt: number;
}

/** A leading burst: the key that exists while the burst goes on. */
interface Lead {
  edge: "leading";
  expiresAt: number;
}

/** Whole ms from `t` to `at`, rounded up, as the scripts' integer arithmetic gives them. */
const msUntil = (at: number, t: number) => Math.ceil(at - t);

/** debounce's store in a MemoryStore, on clock `now` (ms). */
export function _memoryDebounce(now: () => number): _DebounceStore {
  const keys = new Map<string, Burst | Lead>();
  const listeners = new Map<string, Set<(announcement: _Announcement) => void>>();
  let opsSinceSweep = 0;

  /** The live value of `key` as of `t`: a lapsed key is gone, as in Redis. */
  const valueOf = (key: string, t: number): Burst | Lead | undefined => {
    if (++opsSinceSweep >= Math.max(_SWEEP_EVERY, keys.size)) {
      opsSinceSweep = 0;
      for (const [k, v] of keys) if (t > v.expiresAt) keys.delete(k);
    }
    const value = keys.get(key);
    if (value === undefined || t <= value.expiresAt) return value;
    keys.delete(key);
    return undefined;
  };
  /** The trailing burst of `key`; an error, as Redis gives, for a leading burst's key. */
  const burstOf = (key: string, t: number): Burst | undefined => {
    const value = valueOf(key, t);
    if (value?.edge === "leading") throw wrongEdge(key);
    return value;
  };
  /**
   * n when `token` is one of `instance`'s calls ("<instance><n>"), else undefined: clear()
   * and flush() never touch a call made after the clear().
   */
  const ours = (token: string, instance: string): number | undefined =>
    token.startsWith(instance) ? Number(token.slice(instance.length)) : undefined;
  const claimed = (b: Burst): _ClaimedBurst => {
    b.state = "claimed";
    return { token: b.token, argsJson: b.argsJson };
  };

  return {
    lead: (key, _token, waitMs) =>
      _answer(() => {
        const t = now();
        const value = valueOf(key, t);
        // The first call of a burst makes the key and runs; later ones push its expiry.
        // (As SET NX on Redis, a key of the other edge counts as a burst going on.)
        if (value === undefined) keys.set(key, { edge: "leading", expiresAt: t + waitMs });
        else value.expiresAt = t + waitMs;
        return value === undefined;
      }),
    record: (key, token, argsJson, waitMs, ttlMs) =>
      _answer(() => {
        const t = now();
        let b = burstOf(key, t);
        if (b?.state !== "pending") {
          b = {
            edge: "trailing",
            state: "pending",
            token,
            argsJson,
            due: 0,
            burst: token,
            seq: 0,
            expiresAt: 0,
          };
          keys.set(key, b);
        }
        b.seq++;
        b.state = "pending";
        b.token = token;
        b.argsJson = argsJson;
        b.due = t + waitMs;
        b.expiresAt = t + ttlMs;
        const announcement: _Announcement = { seq: b.seq, token, burst: b.burst };
        const listening = listeners.get(key);
        if (listening !== undefined) {
          const told = [...listening];
          queueMicrotask(() => {
            for (const listener of told) listener(announcement);
          });
        }
        return { burst: b.burst, seq: b.seq };
      }),
    claim: (key, token) =>
      _answer((): _Claim => {
        const t = now();
        const b = burstOf(key, t);
        if (b === undefined) return { verdict: "expired" };
        if (b.token !== token) {
          return b.state === "pending"
            ? { verdict: "superseded", lastToken: b.token, dueInMs: msUntil(b.due, t) }
            : { verdict: "superseded", lastToken: undefined, dueInMs: 0 };
        }
        if (b.state === "cancelled") return { verdict: "cancelled" };
        if (b.state === "claimed") return { verdict: "ran-elsewhere" };
        if (b.due > t) return { verdict: "wait", inMs: msUntil(b.due, t) };
        b.state = "claimed";
        return { verdict: "run" };
      }),
    takeover: (key, takeoverMs, instance) =>
      _answer(() => {
        const t = now();
        const b = burstOf(key, t);
        if (b?.state !== "pending" || b.token.startsWith(instance)) return undefined;
        const left = b.due + takeoverMs - t;
        if (left > 0) return { inMs: Math.ceil(left) };
        return claimed(b);
      }),
    flush: (key, instance, cleared) =>
      _answer(() => {
        const b = burstOf(key, now());
        if (b?.state !== "pending") return undefined;
        const n = ours(b.token, instance);
        if (n !== undefined && n <= cleared) {
          // Recorded after clear()'s cancel: cancelled here, as the cancel would have.
          b.state = "cancelled";
          return undefined;
        }
        return claimed(b);
      }),
    cancel: (key, instance, upTo) =>
      _answer(() => {
        const b = burstOf(key, now());
        const n = b === undefined ? undefined : ours(b.token, instance);
        if (b?.state !== "pending" || n === undefined || n > upTo) return false;
        b.state = "cancelled";
        return true;
      }),
    announcements(key, subscriber, onAnnouncement) {
      // Heard in this process; `subscriber: false` makes calls learn at their claim, as on
      // Redis.
      if (subscriber === false) return undefined;
      let listening = listeners.get(key);
      if (listening === undefined) listeners.set(key, listening = new Set());
      // One registration per listening, even when a function is given twice.
      const listener = (announcement: _Announcement) => onAnnouncement(announcement);
      listening.add(listener);
      return {
        ready: Promise.resolve(),
        stop() {
          listening.delete(listener);
          if (listening.size === 0 && listeners.get(key) === listening) listeners.delete(key);
        },
      };
    },
  };
}

/**
 * The error Redis gives a trailing edge's script that finds the key of a leading burst:
 * WRONGTYPE, with the key named.
 */
function wrongEdge(key: string): Error {
  return new Error(
    `WRONGTYPE Operation against a key holding the wrong kind of value: "${key}" holds a leading burst; use one key per edge`,
  );
}
