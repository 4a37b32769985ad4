// The Lua scripts baton runs in Redis, and how they are sent: by SHA, falling back to
// the source when the server does not have them yet (a new server, or SCRIPT FLUSH).
//
// Keys of one lock (see _keysOf): KEYS[1] the lock (value: the owner's token, with a PX
// lease); KEYS[2] the waiters' queue (zset: token -> arrival time in µs); KEYS[3] the
// waiters' data (hash: token -> "ttlMs|windowMs|deadlineMs|fenced|channel", and field
// "~head" -> "token|sinceMs|windowMs" for the first live waiter, since when it has been
// first); KEYS[4] the last fencing token issued (a string of µs, expiring a while after
// its lease). All four share the lock key's hash slot.
// Every attempt of a waiter renews its deadline; a waiter whose deadline passed (its
// process died) is dropped when it comes first.
//
// Unfairness is bounded: while the first waiter's window runs, a free lock goes to
// whoever asks and is not queued (typically the holder that just released it, asking
// again: a streak without a switch between processes). After the window, a release
// hands the lock straight to the first waiter: it sets the waiter's token and lease and
// publishes "+token" on the channel of the waiter's subscriber connection, so that only
// that process wakes (on Redis Cluster, where the client can, SPUBLISHes it on that
// connection's channel in the lock's hash slot: see _TELL). A release that frees the
// lock within the window tells its caller, who hands the lock over (NUDGE) unless it
// takes it again within a moment. A waiter that becomes first is told so ("!token"):
// should nothing reach it, it tries again shortly after its window, rather than at its
// next fallback poll.
import { _isNoScript, type _Reply, _scriptNames, type _Send } from "./_client.ts";

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
      (digest) => {
        const sha = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"))
          .join("");
        _scriptNames.set(sha, name);
        return s.sha = sha;
      },
    ),
  };
  return s;
}

/**
 * Lua that sets `now` (ms) and `t` (TIME's reply) from the server's clock, so that every
 * instance measures time on the same clock.
 */
export const _NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** How long a fence outlives the lease it came with, in ms: see _FENCE. */
export const _FENCE_KEEP_MS = 60_000;

/**
 * Lua `tell(address, message)`: publishes `message` at a subscriber's `address`, a channel
 * (PUBLISH), or "s:" and a sharded channel in the script's hash slot (SPUBLISH, Redis 7+):
 * on Redis Cluster a PUBLISH goes to every node, an SPUBLISH only to the shard that owns
 * the slot, where the subscriber listens.
 */
export const _TELL = `local function tell(address, message)
  if string.sub(address, 1, 2) == 's:' then
    redis.call('SPUBLISH', string.sub(address, 3), message)
  else
    redis.call('PUBLISH', address, message)
  end
end
`;

// Shared Lua of the lock scripts, which all take the four keys of one lock. Names
// `now` (ms) and `t` from the server's clock; `fmt(n)` writes whole numbers in full
// (Lua's own formatting turns large ones into exponents).
const LOCK = `local K, Q, D, F = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
${_NOW}local function fmt(n) return string.format('%.0f', n) end
`;

// `fence(ttl)` issues a fencing token: the server's clock in µs, raised above the last
// fence of this lock while that one is still known (kept for the lease plus
// _FENCE_KEEP_MS). Strictly increasing for as long as the server's clock does not go
// back by more than that, with no key that outlives its lock for long.
const FENCE_OF = `local function fence(ttl)
  local fenceUs = t[1] * 1000000 + t[2]
  local last = tonumber(redis.call('GET', F) or '0')
  if last >= fenceUs then fenceUs = last + 1 end
  redis.call('SET', F, fmt(fenceUs), 'PX', ttl + ${_FENCE_KEEP_MS})
  return fmt(fenceUs)
end
`;

const FENCE = `${FENCE_OF}
-- Takes the lock for 'token' for 'ttl' ms; returns its fence when 'fenced', else nil.
local function take(token, ttl, fenced)
  redis.call('SET', K, token, 'PX', ttl)
  if fenced then return fence(ttl) end
  return nil
end
`;

// The queue's bookkeeping. `waiter(token)` reads a waiter's ttl, window, deadline,
// whether it wants a fence, and its channel (nil when unknown). `nextHead()` finds the
// first live waiter (dropping the dead ones before it), records it as the head from
// now on, tells it so, and returns its token, since and window (nil when nobody waits).
// `head(h)` parses the recorded head `h` (read when not given), or finds it.
// `handOver(token)` gives the free lock to that waiter; `handOverNext()` to the first
// live one.
const QUEUE = `${_TELL}local function waiter(token)
  local info = redis.call('HGET', D, token)
  if not info then return nil end
  local ttl, window, deadline, fenced, channel =
    string.match(info, '^(%d+)|(%d+)|(%d+)|([01])|(.*)$')
  return tonumber(ttl), tonumber(window), tonumber(deadline), fenced == '1', channel
end
local function drop(token)
  redis.call('ZREM', Q, token)
  redis.call('HDEL', D, token)
end
local function nextHead()
  for _ = 1, 100 do
    local first = redis.call('ZRANGE', Q, 0, 0)[1]
    if not first then break end
    local _, window, deadline, _, channel = waiter(first)
    if window and deadline >= now then
      redis.call('HSET', D, '~head', first .. '|' .. fmt(now) .. '|' .. window)
      if channel ~= '' and window > 0 then tell(channel, '!' .. first) end
      return first, now, window
    end
    drop(first)
  end
  redis.call('HDEL', D, '~head')
  return nil
end
local function head(h)
  if h == nil then h = redis.call('HGET', D, '~head') end
  if not h then return nextHead() end
  local token, since, window = string.match(h, '^(.-)|(%d+)|(%d+)$')
  return token, tonumber(since), tonumber(window)
end
-- Gives the free lock to waiter 'token' when it is alive (its token, its lease, its
-- fence) and says so on its channel ("+token", or "+token|fence"); returns whether it
-- did. The waiter leaves the queue either way, and the next one becomes the head.
local function handOver(token)
  local ttl, _, deadline, fenced, channel = waiter(token)
  drop(token)
  if not deadline or deadline < now then return false end
  local fenceUs = take(token, ttl, fenced)
  nextHead()
  if channel ~= '' then
    local news = '+' .. token
    if fenceUs then news = news .. '|' .. fenceUs end
    tell(channel, news)
  end
  return true
end
-- Hands the free lock to the first live waiter, from head token 'hToken' on; returns
-- whether someone got it.
local function handOverNext(hToken)
  while hToken do
    if handOver(hToken) then return true end
    hToken = nextHead()
  end
  return false
end
`;

/** The reply codes of _ACQUIRE's first element. */
export const _ACQUIRED = { No: 0, Yes: 1 } as const;

/**
 * An attempt to take the lock for a caller. Granted when the lock is free and nobody
 * waits, or the caller is the first waiter, or the first waiter's window runs and the
 * caller is not queued; a free lock after the first waiter's window goes to that
 * waiter. Otherwise a waiter (mode 'wait') joins the queue in arrival order (or keeps
 * its place) with a deadline `lease` ms from now; a caller that only tries (mode
 * 'try') does not. With `fenced` the grant carries a fencing token.
 * Returns {1, pttl} or {1, pttl, fence} when the caller holds the lock (also when a
 * release handed it over), else {0, pttl, ms left of the caller's window when it is the
 * first waiter, else -1}.
 */
export const _ACQUIRE: _Script = _script(
  "acquire",
  `${LOCK}local token, ttl, lease, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local channel, queued, fenced, waits = ARGV[5], ARGV[6] == '1', ARGV[7] == '1', ARGV[8] == 'wait'
${FENCE}${QUEUE}
local function granted(fenceUs)
  if fenceUs then return {1, ttl, fenceUs} end
  return {1, ttl}
end
local owner = redis.call('GET', K)
if owner == token then
  -- Handed over by a release whose news has not reached the caller (it polls): its lease
  -- starts now, as a grant's would, since part of it ran out before the caller knew.
  redis.call('PEXPIRE', K, ttl)
  if fenced then
    redis.call('PEXPIRE', F, ttl + ${_FENCE_KEEP_MS})
    return {1, ttl, redis.call('GET', F)}
  end
  return {1, ttl}
end
if not owner then
  local h = redis.call('HGET', D, '~head')
  if not h then
    -- Nobody waits: take it.
    if queued then drop(token) end
    return granted(take(token, ttl, fenced))
  end
  local hToken, since, window0 = head(h)
  if hToken and hToken ~= token and now - since >= window0 then
    -- Free after the first waiter's window: it is that waiter's, unless it died; then
    -- the next one's window starts now.
    if handOver(hToken) then owner = true else hToken, since, window0 = nextHead() end
  end
  if not owner and (not hToken or hToken == token or (now - since < window0 and not queued)) then
    if queued then
      drop(token)
      if hToken == token then nextHead() end
    end
    return granted(take(token, ttl, fenced))
  end
end
if not waits then return {0, redis.call('PTTL', K), -1} end
redis.call('ZADD', Q, 'NX', fmt(t[1] * 1000000 + t[2]), token)
redis.call('HSET', D, token, ARGV[2] .. '|' .. ARGV[4] .. '|' .. fmt(now + lease) .. '|' ..
  (fenced and '1' or '0') .. '|' .. channel)
if redis.call('PTTL', D) < lease then
  redis.call('PEXPIRE', Q, lease)
  redis.call('PEXPIRE', D, lease)
end
-- First in an empty queue: the head from now on, with its whole window to run. (With no
-- window there is nothing to try after it: every release hands over.)
local dueIn = -1
if redis.call('HSETNX', D, '~head', token .. '|' .. fmt(now) .. '|' .. window) == 1 then
  if window > 0 then dueIn = window end
elseif queued then
  local hToken, since, window0 = head()
  if hToken == token and since + window0 > now then dueIn = since + window0 - now end
end
return {0, redis.call('PTTL', K), dueIn}`,
);

/**
 * A single attempt with a fence, for a caller that does not wait: exactly what
 * `SET key token NX PX ttl` does (it takes a free lock, waiters or not), plus the fence,
 * in one step. KEYS[1] the lock, KEYS[2] its fence. Returns {1, ttl, fence} when taken,
 * {1, pttl, fence} when the caller already holds it, else {0, pttl, -1}.
 */
export const _TAKE_FENCED: _Script = _script(
  "take-fenced",
  `local K, F = KEYS[1], KEYS[2]
local token, ttl = ARGV[1], tonumber(ARGV[2])
local function fmt(n) return string.format('%.0f', n) end
if redis.call('SET', K, token, 'NX', 'PX', ttl) then
  local t = redis.call('TIME')
  ${FENCE_OF}  return {1, ttl, fence(ttl)}
end
if redis.call('GET', K) == token then return {1, redis.call('PTTL', K), redis.call('GET', F)} end
return {0, redis.call('PTTL', K), -1}`,
);

/** The reply codes of _RELEASE. */
export const _RELEASED = {
  /** The key held another token, or none. */
  NotOwner: 0,
  /** Deleted. */
  Freed: 1,
  /**
   * Deleted while the first waiter's window runs: the caller hands the lock over with
   * _NUDGE unless it takes it again at once.
   */
  FreedInWindow: 2,
  /** Handed to the first waiter. */
  HandedOver: 3,
} as const;

/**
 * Deletes the lock only while ARGV[1] owns it (compare-and-delete). With waiters
 * queued, once the first one's window has run, hands the lock straight to it instead.
 * Returns one of {@linkcode _RELEASED}.
 */
export const _RELEASE: _Script = _script(
  "release",
  `local token = ARGV[1]
if redis.call('GET', KEYS[1]) ~= token then return ${_RELEASED.NotOwner} end
local h = redis.call('HGET', KEYS[3], '~head')
if not h then
  redis.call('DEL', KEYS[1])
  return ${_RELEASED.Freed}
end
${LOCK}${FENCE}${QUEUE}
local hToken, since, window = head(h)
if hToken and now - since >= window then
  if handOver(hToken) then return ${_RELEASED.HandedOver} end
  -- It died: the next waiter's window starts now.
  hToken = nextHead()
end
redis.call('DEL', K)
if hToken then return ${_RELEASED.FreedInWindow} end
return ${_RELEASED.Freed}`,
);

/**
 * When the lock is free and waiters are queued, hands it to the first live one.
 * Returns 1 when it did, else 0.
 */
export const _NUDGE: _Script = _script(
  "nudge",
  `if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local h = redis.call('HGET', KEYS[3], '~head')
if not h then return 0 end
${LOCK}${FENCE}${QUEUE}
if handOverNext(head(h)) then return 1 end
return 0`,
);

/**
 * Takes waiter ARGV[1] out of the queue: it gave up. A lock handed to it meanwhile is
 * given back, and a free lock goes to the next waiter. Returns 1.
 */
export const _LEAVE: _Script = _script(
  "leave",
  `${LOCK}${FENCE}${QUEUE}
local token = ARGV[1]
drop(token)
if redis.call('GET', K) == token then redis.call('DEL', K) end
local hToken = head()
if hToken == token then hToken = nextHead() end
if redis.call('EXISTS', K) == 0 then handOverNext(hToken) end
return 1`,
);

/**
 * Resets the lease to ARGV[2] ms only while ARGV[1] owns the lock, and keeps the lock's
 * last fence (KEYS[2]) for as long, plus _FENCE_KEEP_MS.
 * Returns 1 when reset, 0 when the key held another token or none.
 */
export const _EXTEND: _Script = _script(
  "extend",
  `local token, ttl = ARGV[1], tonumber(ARGV[2])
if redis.call('GET', KEYS[1]) ~= token then return 0 end
-- A fence is remembered for as long as its lock lives, and a while after.
redis.call('PEXPIRE', KEYS[2], ttl + ${_FENCE_KEEP_MS})
return redis.call('PEXPIRE', KEYS[1], ttl)`,
);

/**
 * Reads, in one step, whether ARGV[1] owns the lock and the lease's remaining ms.
 * Returns {1, pttl} when owned, {0, 0} otherwise.
 */
export const _STATUS: _Script = _script(
  "status",
  `local token = ARGV[1]
if redis.call('GET', KEYS[1]) ~= token then return {0, 0} end
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
