// Redlock: one lock on several independent Redis servers, held while a majority of them
// hold it. Every operation goes to all servers at once, through each server's own Redis
// store (a plain SET NX PX to take the lock, one script each to release, extend or
// inspect it: one round trip per server), and is decided as soon as a majority has
// decided it, so that a server that is slow or down costs nothing while a majority
// answers. A server that has not answered within a bound counts as failed; a lock it
// grants after the take was decided against is given back when the grant lands.
//
// Timing. Each server holds the lease for `ttl + drift` by its own clock, where drift
// (1% of the ttl, plus 2 ms) is what clocks may disagree by over that time; the holder
// counts `ttl` from before its request, which is the Redlock description's validity
// (the servers' lease minus the time elapsed and the drift). A take or an extension
// counts only when a majority answered yes within half the ttl (and 500 ms), so the
// holder always keeps at least half of its lease. The handle (_lock.ts) counts a lease
// as `ttl` from before the request, for takes and extensions alike: adding the drift
// on the servers' side is what makes that count true here.
import { _CLIENT_EXPECTED, _clientProblem } from "./_client.ts";
import type { _Attempt, _DebounceStore, _Store } from "./_store.ts";
import { _bounded, _NoAnswer } from "./_wait.ts";
import { QuorumError, RedisUnavailableError } from "./errors.ts";
import type { RedisClient } from "./types.ts";

/** The fewest servers a Redlock store runs on: a majority of 1 or 2 survives no failure. */
export const _MIN_SERVERS = 3;

/** How long a server has to answer one request, in ms, at most: then it counts as failed. */
export const _SERVER_ANSWER_MS = 500;

/**
 * How long a take waits for the servers that have not answered, in ms at least, once a
 * majority answered and the outcome waits on the others (a split vote): then they count
 * as failed, and the take fails as for a held lock (the caller may try again). A server
 * that is down behind a client that queues commands would otherwise hold every split
 * vote for {@linkcode _SERVER_ANSWER_MS}, and with it the lock from everyone. Releases,
 * extensions and status requests wait for them: there a missing answer changes the
 * outcome (a release or extension that a majority did not confirm means a lost lock).
 */
export const _STRAGGLER_MS = 20;

/**
 * How far the servers' clocks may drift apart over `ms`, in ms: 1% of it, plus 2 ms for
 * the resolution of their timers (the Redlock description's allowance).
 */
export function _driftMs(ms: number): number {
  return Math.ceil(ms * 0.01) + 2;
}

/**
 * How long a take or an extension of a `ttlMs` lease waits for the servers, in ms: half
 * the lease (a grant that comes later leaves too little of it), and at most
 * {@linkcode _SERVER_ANSWER_MS}.
 */
export function _grantBoundMs(ttlMs: number): number {
  return Math.min(_SERVER_ANSWER_MS, ttlMs / 2);
}

/** Why a Redlock store gives no fencing tokens, for `_checkFencing`'s TypeError. */
const FENCING_REFUSAL = "each server counts fences on its own, the majority that grants the " +
  "next lock may be a different one, and a restarted server forgets its count, so no " +
  "fence is sure to exceed the last owner's; use one server with fencing: true when the " +
  "storage you write to must reject a paused holder's writes";

/** How one server stands on one request. */
type Vote = "pending" | "yes" | "no" | "failed";

/** What the servers said to one request, once a majority decided it or could not. */
interface Poll<T> {
  /** What each server answered, by its index; undefined where it did not (yet). */
  answers: (T | undefined)[];
  votes: Vote[];
  /** What each server that failed gave, by its index. */
  failures: unknown[];
  yes: number;
  /** How many servers answered, yes or no. */
  answered: number;
  /** How long the request took until it was decided, in ms. */
  elapsedMs: number;
  /** How long each server had to answer, in ms. */
  boundMs: number;
}

/** How {@linkcode poll} waits for the servers. */
interface PollOptions<T> {
  /** How long each server has to answer, in ms; then it counts as failed. */
  boundMs: number;
  /**
   * Once a majority has answered and the outcome waits on the others, how long they get
   * (or as long again as the majority took, if that is more), in ms; then they count as
   * failed. Unset: they get `boundMs`.
   */
  stragglerMs?: number;
  /** Gets what a server answers after it counted as failed, or after the outcome. */
  onLate?: (server: number, answer: T) => void;
}

/**
 * Asks every server at once and resolves as soon as the outcome is known: `needed` of
 * them said yes; or too few can still say yes and either `needed` have answered (the
 * answer is no) or too few can still answer (no quorum). The servers still unanswered at
 * the bound (or at the straggler cut-off) count as failed, through one bounded wait for
 * the whole request ({@linkcode _bounded}, given up once the outcome is known).
 */
function poll<T>(
  servers: readonly _Store[],
  needed: number,
  ask: (server: _Store) => Promise<T>,
  isYes: (answer: T) => boolean,
  { boundMs, stragglerMs, onLate }: PollOptions<T>,
): Promise<Poll<T>> {
  const startedAt = performance.now();
  const n = servers.length;
  return new Promise((resolve) => {
    const p: Poll<T> = {
      answers: new Array(n).fill(undefined),
      votes: new Array<Vote>(n).fill("pending"),
      failures: new Array(n).fill(undefined),
      yes: 0,
      answered: 0,
      elapsedMs: 0,
      boundMs,
    };
    let failed = 0;
    let settled = false;
    let cutOff = false;
    // Settles once the outcome is known, which takes the bounded waits off the clock.
    let decided: () => void = () => {};
    const outcome = new Promise<void>((resolve) => decided = resolve);
    /** Counts every server still unanswered as failed, at the bound or the cut-off. */
    const giveUpAt = (untilMs: number) =>
      _bounded(outcome, untilMs).catch(() => {
        if (settled) return;
        for (let i = 0; i < n; i++) {
          if (p.votes[i] !== "pending") continue;
          p.votes[i] = "failed";
          p.failures[i] = new _NoAnswer();
          failed++;
        }
        settle();
      });
    const settle = () => {
      const pending = n - p.answered - failed;
      const undecided = p.yes < needed && p.yes + pending >= needed;
      const unknown = p.answered < needed && p.answered + pending >= needed;
      if (p.yes < needed && (undecided || unknown)) {
        if (stragglerMs !== undefined && !unknown && !cutOff) {
          // The stragglers decide it: a server much slower than the majority counts as
          // failed rather than hold everyone's split vote for the whole bound.
          cutOff = true;
          const elapsedMs = performance.now() - startedAt;
          giveUpAt(startedAt + elapsedMs + Math.max(stragglerMs, elapsedMs));
        }
        return;
      }
      settled = true;
      decided();
      p.elapsedMs = performance.now() - startedAt;
      resolve(p);
    };
    servers.forEach((server, i) => {
      ask(server).then(
        (answer) => {
          // After the outcome, or once counted as failed: late.
          if (settled || p.votes[i] !== "pending") return onLate?.(i, answer);
          p.answers[i] = answer;
          p.answered++;
          if (isYes(answer)) {
            p.votes[i] = "yes";
            p.yes++;
          } else p.votes[i] = "no";
          settle();
        },
        (error) => {
          if (settled || p.votes[i] !== "pending") return;
          p.votes[i] = "failed";
          p.failures[i] = error;
          failed++;
          settle();
        },
      );
    });
    giveUpAt(startedAt + boundMs);
  });
}

/**
 * Checks the clients of a Redlock store before anything is sent: at least
 * {@linkcode _MIN_SERVERS}, each a client, no client twice.
 */
function checkServers(redis: readonly unknown[], action: string): void {
  for (let i = 0; i < redis.length; i++) {
    const problem = _clientProblem(redis[i]);
    if (problem !== undefined) {
      throw new TypeError(
        `Cannot ${action} as "redis[${i}]" must be ${_CLIENT_EXPECTED}: current value is ${problem}`,
      );
    }
    const first = redis.indexOf(redis[i]);
    if (first < i) {
      throw new TypeError(
        `Cannot ${action} as "redis[${i}]" must be a client of another Redis server than "redis[${first}]": current value is the same client`,
      );
    }
  }
  if (redis.length < _MIN_SERVERS) {
    throw new RangeError(
      `Cannot ${action} as "redis" must hold at least ${_MIN_SERVERS} clients of independent Redis servers for Redlock (a majority of 1 or 2 servers survives no failure; for one server pass its client, not an array): current length is ${redis.length}`,
    );
  }
}

/**
 * The Redlock store over the clients `redis` of independent servers, each server's
 * store made by `storeOf`. Throws a TypeError naming the index of a value that is not a
 * client, or of a client passed twice, and a RangeError for fewer than 3 clients.
 */
export function _redlockStore(
  redis: readonly unknown[],
  action: string,
  storeOf: (client: RedisClient) => _Store,
): _Store {
  checkServers(redis, action);
  const servers = redis.map((client) => storeOf(client as RedisClient));
  const n = servers.length;
  const needed = Math.floor(n / 2) + 1;
  const name = `${n} Redis servers (Redlock)`;

  /** The error of a request that too few servers answered. */
  const quorumError = (
    p: Poll<unknown>,
    verb: string,
    key: string,
    command: string,
  ): QuorumError => {
    const waitedMs = Math.round(p.elapsedMs);
    // The servers still unanswered when the quorum went out of reach have not failed.
    const errors = p.votes.map((vote, i) => {
      if (vote !== "failed") return undefined;
      const error = p.failures[i];
      if (!(error instanceof _NoAnswer)) return error;
      return new RedisUnavailableError(
        `redis[${i}] did not answer ${command} within ${Math.round(p.boundMs)} ms`,
        { key, command, waitedMs },
      );
    });
    const why = errors.flatMap((error, i) => {
      if (error === undefined) return [];
      if (error instanceof RedisUnavailableError) return [error.message];
      return [`redis[${i}]: ${error instanceof Error ? error.message : String(error)}`];
    });
    return new QuorumError(
      `Cannot ${verb} "${key}": ${why.length} of ${n} Redis servers failed, and a decision needs ${needed} answers (${
        why.join("; ")
      })`,
      { key, command, waitedMs, answered: p.answered, needed, errors },
    );
  };

  /** Releases on every server, for what a failed take or extension left behind. */
  const giveBack = (key: string, token: string, which: readonly number[]) => {
    for (const i of which) servers[i]!.release(key, token).catch(() => {});
  };

  return {
    name,
    queues: false,
    fences: false,
    fencingRefusal: FENCING_REFUSAL,
    async acquire(key, token, ttlMs) {
      const leaseMs = ttlMs + _driftMs(ttlMs);
      // Grants that land once the poll is over: kept when the lock is ours, else given
      // back (those landing before that is decided wait in `late`).
      let ours: boolean | undefined = undefined;
      const late: number[] = [];
      const p = await poll(
        servers,
        needed,
        (server) => server.acquire(key, token, leaseMs, { fencing: false }),
        (attempt: _Attempt) => attempt.acquired,
        {
          boundMs: _grantBoundMs(ttlMs),
          stragglerMs: _STRAGGLER_MS,
          onLate: (i, attempt) => {
            if (!attempt.acquired || ours) return;
            if (ours === false) giveBack(key, token, [i]);
            else late.push(i);
          },
        },
      );
      // The validity left: the servers' lease less the time taken and the drift.
      ours = p.yes >= needed && leaseMs - p.elapsedMs - _driftMs(ttlMs) > 0;
      if (ours) return { acquired: true, remainingMs: ttlMs };
      // Not ours: the grants it got are given back at once, without waiting for that.
      giveBack(key, token, [...late, ...p.votes.flatMap((v, i) => v === "yes" ? [i] : [])]);
      if (p.answered >= needed) return { acquired: false, remainingMs: -1, dueInMs: -1 };
      throw quorumError(p, "acquire lock", key, "SET");
    },
    async release(key, token) {
      const p = await poll(
        servers,
        needed,
        (server) => server.release(key, token),
        (released: boolean) => released,
        { boundMs: _SERVER_ANSWER_MS },
      );
      // A majority still held it: nobody else can have held it meanwhile.
      if (p.yes >= needed) return true;
      if (p.answered >= needed) return false;
      throw quorumError(p, "release lock", key, "EVALSHA release");
    },
    async extend(key, token, ttlMs) {
      const p = await poll(
        servers,
        needed,
        (server) => server.extend(key, token, ttlMs + _driftMs(ttlMs)),
        (extended: boolean) => extended,
        { boundMs: _grantBoundMs(ttlMs) },
      );
      if (p.yes >= needed) return true;
      if (p.answered >= needed) {
        // Lost: the servers that did extend it give it back rather than keep it a lease long.
        giveBack(key, token, servers.map((_, i) => i));
        return false;
      }
      throw quorumError(p, "extend lock", key, "EVALSHA extend");
    },
    async status(key, token) {
      const p = await poll(
        servers,
        needed,
        (server) => server.status(key, token),
        (status) => status.owned,
        { boundMs: _SERVER_ANSWER_MS },
      );
      if (p.yes >= needed) {
        // The majority that owns it holds it until the first of them lets it go.
        const leftMs = Math.min(
          ...p.answers.flatMap((s) => s?.owned ? [s.remainingMs] : []),
        );
        const remainingMs = Math.floor(leftMs - _driftMs(leftMs) - p.elapsedMs);
        if (remainingMs > 0) return { owned: true, remainingMs };
        return { owned: false, remainingMs: 0 };
      }
      if (p.answered >= needed) return { owned: false, remainingMs: 0 };
      throw quorumError(p, "read the status of lock", key, "EVALSHA status");
    },
    async leave(key, token) {
      await Promise.allSettled(servers.map((server) => server.release(key, token)));
    },
    news() {
      // Waiters poll with backoff: news from one server says nothing about a majority.
      return undefined;
    },
    get debounce(): _DebounceStore {
      // debounce() rejects an array before it asks for a store: a burst runs once on one
      // server, and a majority cannot hold its state.
      throw new TypeError(`debounce needs one Redis server, not ${name}`);
    },
  };
}
