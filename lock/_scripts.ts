// The Lua scripts baton runs in Redis, and how they are sent: by SHA, falling back to
// the source when the server does not have them yet (a new server, or SCRIPT FLUSH).
//
// Keys of one lock (see _keysOf): KEYS[1] the lock (value: the owner's token, with a PX
// lease); KEYS[2] the waiters' queue (zset: token -> arrival time in µs); KEYS[3] the
// waiters' data (hash: token -> "ttlMs|windowMs|deadlineMs|channel", and field "~head"
// -> "token|sinceMs|windowMs" for the first live waiter, since when it has been first).
// Every attempt of a waiter renews its deadline; a waiter whose deadline passed (its
// process died) is dropped when it comes first.
//
// Unfairness is bounded: while the first waiter's window runs, a free lock goes to
// whoever asks and is not queued (typically the holder that just released it, asking
// again: a streak without a switch between processes). After the window, a release
// hands the lock straight to the first waiter: it sets the waiter's token and lease and
// publishes "+token" on the channel of the waiter's subscriber connection, so that only
// that process wakes. A release that frees the lock within the window tells its caller,
// who hands the lock over (NUDGE) unless it takes it again within a moment. A waiter
// that becomes first is told so ("!token"): should nothing reach it, it tries again
// shortly after its window, rather than at its next fallback poll.
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

// Shared Lua: the clock (`now`, ms, from the server) and the queue's bookkeeping.
// `fmt` writes whole numbers in full (Lua's own formatting turns large ones into
// exponents). `waiter(token)` reads a waiter's ttl, window, deadline and channel (nil
// when unknown). `nextHead()` finds the first live waiter (dropping the dead ones
// before it), records it as the head from now on, and returns its token, since and
// window (nil when nobody waits). `head(h)` parses the recorded head `h` (read when not
// given), or finds it. `handOver(token)` gives the free lock to that waiter.
const QUEUE = `
local K, Q, D = KEYS[1], KEYS[2], KEYS[3]
${_NOW}local function fmt(n) return string.format('%.0f', n) end
local function waiter(token)
  local info = redis.call('HGET', D, token)
  if not info then return nil end
  local ttl, window, deadline, channel = string.match(info, '^(%d+)|(%d+)|(%d+)|(.*)$')
  return tonumber(ttl), tonumber(window), tonumber(deadline), channel
end
local function drop(token)
  redis.call('ZREM', Q, token)
  redis.call('HDEL', D, token)
end
local function nextHead()
  for _ = 1, 100 do
    local first = redis.call('ZRANGE', Q, 0, 0)[1]
    if not first then break end
    local _, window, deadline, channel = waiter(first)
    if window and deadline >= now then
      redis.call('HSET', D, '~head', first .. '|' .. fmt(now) .. '|' .. window)
      if channel ~= '' and window > 0 then redis.call('PUBLISH', channel, '!' .. first) end
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
-- Gives the free lock to waiter 'token' when it is alive (its token, its lease) and says
-- so on its channel; returns whether it did. The waiter leaves the queue either way,
-- and the next one becomes the head.
local function handOver(token)
  local ttl, _, deadline, channel = waiter(token)
  drop(token)
  if not deadline or deadline < now then return false end
  redis.call('SET', K, token, 'PX', ttl)
  nextHead()
  if channel ~= '' then redis.call('PUBLISH', channel, '+' .. token) end
  return true
end
`;

/**
 * A waiter's attempt: takes the lock for token ARGV[1] with a lease of ARGV[2] ms when it
 * is free and nobody waits, or the caller is the first waiter, or the first waiter's
 * window runs and the caller is not queued (ARGV[6] is "1" when it may be: it attempted
 * before). A free lock after the first waiter's window goes to that waiter. Otherwise
 * the caller joins the queue in arrival order (or keeps its place), with a deadline
 * ARGV[3] ms from now, window ARGV[4] ms and channel ARGV[5]. Returns {1, pttl} when the
 * caller holds the lock (also when a release handed it over), else {0, pttl, ms left of
 * the caller's window when it is the first waiter, else -1}.
 */
export const _ACQUIRE: _Script = _script(
  "acquire",
  `local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then return {1, redis.call('PTTL', KEYS[1])} end
local h = false
if not owner then
  h = redis.call('HGET', KEYS[3], '~head')
  if not h then
    -- Nobody waits: take it.
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    if ARGV[6] == '1' then
      redis.call('ZREM', KEYS[2], ARGV[1])
      redis.call('HDEL', KEYS[3], ARGV[1])
    end
    return {1, tonumber(ARGV[2])}
  end
end
${QUEUE}
local token = ARGV[1]
if h then
  local hToken, since, window = head(h)
  local free = true
  if hToken and hToken ~= token and now - since >= window then
    -- Free after the first waiter's window: it is that waiter's, unless it died; then
    -- the next one's window starts now.
    if handOver(hToken) then free = false else hToken, since, window = nextHead() end
  end
  if free and (not hToken or hToken == token or (now - since < window and ARGV[6] ~= '1')) then
    redis.call('SET', K, token, 'PX', ARGV[2])
    if ARGV[6] == '1' then
      drop(token)
      if hToken == token then nextHead() end
    end
    return {1, tonumber(ARGV[2])}
  end
end
local lease = tonumber(ARGV[3])
redis.call('ZADD', Q, 'NX', fmt(t[1] * 1000000 + t[2]), token)
redis.call('HSET', D, token, ARGV[2] .. '|' .. ARGV[4] .. '|' .. fmt(now + lease) .. '|' .. ARGV[5])
if redis.call('PTTL', D) < lease then
  redis.call('PEXPIRE', Q, lease)
  redis.call('PEXPIRE', D, lease)
end
-- First in an empty queue: the head from now on, with its whole window to run. (With no
-- window there is nothing to try after it: every release hands over.)
local dueIn = -1
if redis.call('HSETNX', D, '~head', token .. '|' .. fmt(now) .. '|' .. ARGV[4]) == 1 then
  if tonumber(ARGV[4]) > 0 then dueIn = tonumber(ARGV[4]) end
elseif ARGV[6] == '1' then
  local hToken, since, window = head()
  if hToken == token and since + window > now then dueIn = since + window - now end
end
return {0, redis.call('PTTL', K), dueIn}`,
);

/**
 * Deletes the lock only while token ARGV[1] owns it (compare-and-delete). With waiters
 * queued, once the first one's window has run, hands the lock straight to it instead.
 * Returns 0 when the key held another token or none; 1 when released; 2 when released
 * while the first waiter's window runs (the caller hands the lock over with NUDGE unless
 * it takes it again at once); 3 when handed to the first waiter.
 */
export const _RELEASE: _Script = _script(
  "release",
  `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local h = redis.call('HGET', KEYS[3], '~head')
if not h then
  redis.call('DEL', KEYS[1])
  return 1
end
${QUEUE}
local hToken, since, window = head(h)
if hToken and now - since >= window then
  if handOver(hToken) then return 3 end
  -- It died: the next waiter's window starts now.
  hToken = nextHead()
end
redis.call('DEL', K)
if hToken then return 2 end
return 1`,
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
${QUEUE}
local hToken = head(h)
while hToken do
  if handOver(hToken) then return 1 end
  hToken = nextHead()
end
return 0`,
);

/**
 * Takes waiter ARGV[1] out of the queue: it gave up. A lock handed to it meanwhile is
 * given back, and a free lock goes to the next waiter. Returns 1.
 */
export const _LEAVE: _Script = _script(
  "leave",
  `${QUEUE}
drop(ARGV[1])
if redis.call('GET', K) == ARGV[1] then redis.call('DEL', K) end
local hToken = head()
if hToken == ARGV[1] then hToken = nextHead() end
while hToken and redis.call('EXISTS', K) == 0 do
  if handOver(hToken) then break end
  hToken = nextHead()
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
