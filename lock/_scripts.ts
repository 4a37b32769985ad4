// The Lua scripts baton runs in Redis, and how they are sent: by SHA, falling back to
// the source when the server does not have them yet (a new server, or SCRIPT FLUSH).
//
// Keys of one lock: KEYS[1] the lock (value: owner token, with a PX lease),
// KEYS[2] the waiters' queue (zset "token|leaseMs|windowMs" -> arrival time in µs),
// KEYS[3] the waiters' liveness (zset of the same members -> deadline in ms), KEYS[4]
// the head marker ("member|sinceMs|notified": since when the first waiter is first).
// Waiters refresh their deadline on every attempt; a waiter that stops (a crashed
// process) is dropped once its deadline passes. Unfairness is bounded: once the first
// waiter has been first for its fairness window, a release hands the lock to it.
import { _isNoScript, type _Reply, type _Send } from "./_client.ts";

/** A script with its source and, once computed, its SHA-1 digest in hex. */
export interface _Script {
  readonly name: string;
  readonly source: string;
  sha: string | undefined;
  readonly shaPromise: Promise<string>;
}

/** Declares a script; its SHA-1 is computed once, in the background. */
export function _script(name: string, source: string): _Script {
  const s: _Script = {
    name,
    source,
    sha: undefined,
    shaPromise: crypto.subtle.digest("SHA-1", new TextEncoder().encode(source)).then(
      (digest) =>
        s.sha = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join(""),
    ),
  };
  return s;
}

// Sets `now` (ms) from the server's clock, and `fmt` to write whole numbers in full
// (Lua's own formatting turns large ones into exponents).
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function fmt(n) return string.format('%.0f', n) end
`;

// Drops the waiters whose deadline has passed and reads the first live one: `head`
// (its queue member), `headToken`, `headTtl`, `headWindow`, and from the head marker
// since when it has been first (`since`, ms) and whether a release told it the lock
// was free (`notified`, '0' or '1').
const HEAD = `
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for i = 1, #dead do redis.call('ZREM', KEYS[2], dead[i]) end
if #dead > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) end
local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
local headToken, headTtl, headWindow, since, notified
if head then
  headToken, headTtl, headWindow = string.match(head, '^(.-)|(%d+)|(%d+)$')
  headWindow = tonumber(headWindow)
  local mark = redis.call('GET', KEYS[4])
  local markHead, markSince, markNotified
  if mark then markHead, markSince, markNotified = string.match(mark, '^(.*)|(%d+)|(%d)$') end
  if markHead == head then
    since, notified = tonumber(markSince), markNotified
  else
    since, notified = now, '0'
    redis.call('SET', KEYS[4], head .. '|' .. fmt(now) .. '|0', 'PX', 60000)
  end
end
`;

/**
 * A waiter's attempt: takes the lock for token ARGV[1] with a lease of ARGV[2] ms. When
 * waiters are queued and the lock is free, it goes to the first of them, or to anyone
 * while that first waiter's fairness window (its ARGV[4] ms from when it became first)
 * runs. Otherwise the caller joins the queue in arrival order (or keeps its place) with
 * a deadline ARGV[3] ms from now. Returns {1, pttl} when the caller holds the lock (also
 * when a release handed it over), otherwise {0, pttl of the lock, ms left of the caller's
 * fairness window if it is first and its turn has begun, else -1}. (A single attempt is a plain SET NX PX.)
 */
export const _ACQUIRE: _Script = _script(
  "acquire",
  `if redis.call('EXISTS', KEYS[2]) == 0 and
  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, tonumber(ARGV[2])}
end
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then return {1, redis.call('PTTL', KEYS[1])} end
${NOW}
local member = ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[4]
if not owner then
${HEAD}
  if head == nil or head == member or now - since < headWindow then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    if head then
      redis.call('ZREM', KEYS[2], member)
      redis.call('ZREM', KEYS[3], member)
    end
    return {1, tonumber(ARGV[2])}
  end
end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], 'NX', fmt(t[1] * 1000000 + t[2]), member)
redis.call('ZADD', KEYS[3], fmt(now + lease), member)
for i = 2, 4 do
  if redis.call('PTTL', KEYS[i]) < lease then redis.call('PEXPIRE', KEYS[i], lease) end
end
local dueIn = -1
if redis.call('ZRANK', KEYS[2], member) == 0 then
  local mark = redis.call('GET', KEYS[4])
  local markHead, markSince
  if mark then markHead, markSince = string.match(mark, '^(.*)|(%d+)|%d$') end
  -- Only while its turn runs: before it, a release will tell it; after it, the release
  -- hands the lock over. Either way there is nothing to poll for.
  if markHead == member then
    local left = tonumber(markSince) + tonumber(ARGV[4]) - now
    if left > 0 then dueIn = left end
  end
end
return {0, redis.call('PTTL', KEYS[1]), dueIn}`,
);

/**
 * Deletes the lock only while token ARGV[1] owns it (compare-and-delete). With waiters
 * queued: once the first one's fairness window has run, hands the lock straight to it
 * (its token and lease) and publishes "+token" on channel ARGV[2]; before that, frees
 * the lock and publishes "?token" once per turn, so that it tries at once. Returns 1
 * when this owner released it, 0 when the key held another token or none.
 */
export const _RELEASE: _Script = _script(
  "release",
  `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then
${NOW}${HEAD}
  if head and now - since >= headWindow then
    redis.call('SET', KEYS[1], headToken, 'PX', headTtl)
    redis.call('ZREM', KEYS[2], head)
    redis.call('ZREM', KEYS[3], head)
    redis.call('PUBLISH', ARGV[2], '+' .. headToken)
    return 1
  end
  if head and notified == '0' then
    redis.call('PUBLISH', ARGV[2], '?' .. headToken)
    redis.call('SET', KEYS[4], head .. '|' .. fmt(since) .. '|1', 'PX', 60000)
  end
end
redis.call('DEL', KEYS[1])
return 1`,
);

/**
 * Takes waiter ARGV[1] (lease ARGV[2], window ARGV[3]) out of the queue: it gave up.
 * A lock handed to it meanwhile is given back, and when the lock is free the first
 * waiter is told so ("?token" on channel ARGV[4]). Returns 1.
 */
export const _LEAVE: _Script = _script(
  "leave",
  `local member = ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[3]
redis.call('ZREM', KEYS[2], member)
redis.call('ZREM', KEYS[3], member)
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 1 then
${NOW}${HEAD}
  if head then redis.call('PUBLISH', ARGV[4], '?' .. headToken) end
end
return 1`,
);

/**
 * Resets the lease to ARGV[2] ms only while ARGV[1] owns the lock.
 * Returns 1 when reset, 0 when the key held another token or none.
 */
export const _EXTEND: _Script = _script(
  "extend",
  `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])`,
);

/**
 * Reads, in one step, whether ARGV[1] owns the lock and the lease's remaining ms.
 * Returns {1, pttl} when owned, {0, 0} otherwise.
 */
export const _STATUS: _Script = _script(
  "status",
  `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0, 0} end
return {1, redis.call('PTTL', KEYS[1])}`,
);

/**
 * Runs a script: EVALSHA (one round trip), or EVAL when the server answers NOSCRIPT,
 * which also loads it for the next call.
 */
export async function _evalScript(
  send: _Send,
  s: _Script,
  keys: string[],
  args: string[],
): Promise<_Reply> {
  const sha = s.sha ?? await s.shaPromise;
  try {
    return await send(["EVALSHA", sha, String(keys.length), ...keys, ...args]);
  } catch (error) {
    if (!_isNoScript(error)) throw error;
    return await send(["EVAL", s.source, String(keys.length), ...keys, ...args]);
  }
}
