// The Lua scripts baton runs in Redis, and how they are sent: by SHA, falling back to
// the source when the server does not have them yet (a new server, or SCRIPT FLUSH).
//
// Keys of one lock: KEYS[1] the lock (value: owner token, with a PX lease),
// KEYS[2] the waiters' queue (zset "token|leaseMs" -> arrival time in µs), KEYS[3] the
// waiters' liveness (zset "token|leaseMs" -> deadline in ms). Waiters refresh their
// deadline on every attempt; a waiter that stops (a crashed process) is dropped once its
// deadline passes. A release hands the lock straight to the first live waiter.
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

// Sets `now` (ms) and `nowUs` (µs) from the server's clock.
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
`;

// Drops the waiters whose deadline has passed, then hands the free lock to the first
// live waiter: sets it to that waiter's token with that waiter's lease, takes the
// waiter out of the queue, publishes its token on `channel` and sets `handed`. Queue members
// are "token|leaseMs".
const HAND_OFF = `
${NOW}
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for i = 1, #dead do redis.call('ZREM', KEYS[2], dead[i]) end
if #dead > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) end
local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
if head then
  local sep = string.find(head, '|', 1, true)
  local next = string.sub(head, 1, sep - 1)
  redis.call('SET', KEYS[1], next, 'PX', string.sub(head, sep + 1))
  redis.call('ZREM', KEYS[2], head)
  redis.call('ZREM', KEYS[3], head)
  redis.call('PUBLISH', channel, next)
  handed = true
end
`;

/**
 * Takes the lock for token ARGV[1] with a lease of ARGV[2] ms, unless it is held or
 * waiters are queued. With ARGV[3] == '1' the caller waits: it joins the queue in
 * arrival order (or keeps its place) with a deadline ARGV[4] ms from now, and a release
 * hands it the lock. Returns {1, pttl} when the caller holds the lock (also when it was
 * handed the lock while it slept), otherwise {0, pttl of the lock} (-2: free, but the
 * first waiter's turn). An uncontended acquire is one SET NX PX.
 */
export const _ACQUIRE: _Script = _script(
  "acquire",
  `if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, tonumber(ARGV[2])} end
  if ARGV[3] ~= '1' then return {0, redis.call('PTTL', KEYS[1])} end
end
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then return {1, redis.call('PTTL', KEYS[1])} end
${NOW}
local member = ARGV[1] .. '|' .. ARGV[2]
if not owner then
  -- Free, with waiters queued: only the first live one may take it.
  local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
  for i = 1, #dead do redis.call('ZREM', KEYS[2], dead[i]) end
  if #dead > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) end
  local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if head == nil or head == member then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    if head then
      redis.call('ZREM', KEYS[2], member)
      redis.call('ZREM', KEYS[3], member)
    end
    return {1, tonumber(ARGV[2])}
  end
end
if ARGV[3] == '1' then
  local lease = tonumber(ARGV[4])
  redis.call('ZADD', KEYS[2], 'NX', nowUs, member)
  redis.call('ZADD', KEYS[3], now + lease, member)
  for i = 2, 3 do
    if redis.call('PTTL', KEYS[i]) < lease then redis.call('PEXPIRE', KEYS[i], lease) end
  end
end
return {0, redis.call('PTTL', KEYS[1])}`,
);

/**
 * Deletes the lock only while token ARGV[1] owns it (compare-and-delete), then hands it
 * to the first live waiter, if any, announcing it on channel ARGV[2]. Returns 1 when this owner released
 * it, 0 when the key held another token or none.
 */
export const _RELEASE: _Script = _script(
  "release",
  `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local handed = false
if redis.call('EXISTS', KEYS[2]) == 1 then
  local channel = ARGV[2]
${HAND_OFF}
end
if not handed then redis.call('DEL', KEYS[1]) end
return 1`,
);

/**
 * Takes waiter "ARGV[1]|ARGV[2]" out of the queue (it gave up). A lock handed to it
 * meanwhile is given back, and a free lock goes to the next waiter (announced on
 * channel ARGV[3]). Returns 1.
 */
export const _LEAVE: _Script = _script(
  "leave",
  `local member = ARGV[1] .. '|' .. ARGV[2]
local handed = false
redis.call('ZREM', KEYS[2], member)
redis.call('ZREM', KEYS[3], member)
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  local channel = ARGV[3]
${HAND_OFF}
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
