// The Lua scripts of debounce. Each decision that two instances could race on (who holds
// the burst's last call, who runs it, whether it was cancelled) is made inside one script,
// so Redis serialises them and a tie cannot produce two executions or none.
//
// Trailing edge: KEYS[1] is a hash with the burst's state, expiring `ttl` ms after its last
// call: `state` (pending | claimed | cancelled), `token` (the last call's token, which starts
// with its instance's id), `args` (the last call's arguments as JSON), `due` (server ms when
// the quiet period ends), `burst` (the first call's token) and `seq` (calls so far).
// Leading edge: KEYS[1] is a string that exists while a burst is going on.
import { _NOW, type _Script, _script, _TELL } from "./_scripts.ts";

/**
 * Records a call: ARGV[1] token, ARGV[2] args JSON, ARGV[3] wait ms, ARGV[4] ttl ms. Starts a
 * new burst when none is pending, makes this call the last one (superseding the previous last
 * call), moves `due` to now + wait and the expiry to now + ttl, and announces
 * "<seq> <token> <burst>" at address ARGV[5] (a channel, or "s:" and a sharded channel in
 * the key's hash slot: see _TELL), so that waiting calls of other instances learn at once
 * that they are superseded. Returns {burst, seq}: the burst's id and this call's
 * position in it.
 */
export const _DEBOUNCE_CALL: _Script = _script(
  "debounce-call",
  `${_NOW}${_TELL}
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'burst', ARGV[1])
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'state', 'pending', 'token', ARGV[1], 'args', ARGV[2],
  'due', now + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local burst = redis.call('HGET', KEYS[1], 'burst')
tell(ARGV[5], seq .. ' ' .. ARGV[1] .. ' ' .. burst)
return {burst, seq}`,
);

/**
 * Claims the burst for call ARGV[1] once its quiet period is over: only the last call can,
 * only once, and only while the burst is pending. Returns {'run'} when claimed;
 * {'wait', ms} when the quiet period has ms left; {'superseded', token, ms} when a later call
 * (token) holds a pending burst due in ms; {'superseded'} when a later call's burst is over;
 * {'cancelled'}; {'ran-elsewhere'} when another instance claimed this call's burst;
 * {'expired'} when there is no burst at all.
 */
export const _DEBOUNCE_CLAIM: _Script = _script(
  "debounce-claim",
  `${_NOW}
local s = redis.call('HMGET', KEYS[1], 'state', 'token', 'due')
if not s[1] then return {'expired'} end
if s[2] ~= ARGV[1] then
  if s[1] == 'pending' then return {'superseded', s[2], tonumber(s[3]) - now} end
  return {'superseded'}
end
if s[1] == 'cancelled' then return {'cancelled'} end
if s[1] == 'claimed' then return {'ran-elsewhere'} end
if tonumber(s[3]) > now then return {'wait', tonumber(s[3]) - now} end
redis.call('HSET', KEYS[1], 'state', 'claimed')
return {'run'}`,
);

/**
 * Takes over a burst whose last call's instance missed its turn by ARGV[1] ms (it crashed,
 * say), unless that call is one of instance ARGV[2]'s own. Returns {'run', token, args} when
 * claimed; {'wait', ms, token} when the burst is pending and the takeover is ms away;
 * {'idle'} when there is nothing to take over.
 */
export const _DEBOUNCE_TAKEOVER: _Script = _script(
  "debounce-takeover",
  `${_NOW}
local s = redis.call('HMGET', KEYS[1], 'state', 'token', 'due', 'args')
if s[1] ~= 'pending' or string.sub(s[2], 1, #ARGV[2]) == ARGV[2] then return {'idle'} end
local left = tonumber(s[3]) + tonumber(ARGV[1]) - now
if left > 0 then return {'wait', left, s[2]} end
redis.call('HSET', KEYS[1], 'state', 'claimed')
return {'run', s[2], s[4]}`,
);

// Tokens are "<instance id>:<n>", n counting that instance's calls from 1. `ours(token)` is
// n when the token is one of instance `instance`'s calls, nil otherwise; clear() and flush()
// pass the highest n that clear() has cancelled, so that they never touch a later call.
const OURS = `local function ours(token)
  if not token or string.sub(token, 1, #instance) ~= instance then return nil end
  return tonumber(string.sub(token, #instance + 1))
end
`;

/**
 * Claims a pending burst at once, whoever holds its last call (flush): ARGV[1] the instance
 * id, ARGV[2] the highest n of its calls that clear() cancelled. A burst whose last call is
 * one of those was cancelled: it is marked so instead of claimed, as the cancel would have
 * (Redis recorded that call after clear()'s cancel). Returns {'run', token, args} when
 * claimed, {'idle'} when no burst is pending (or it was cancelled here).
 */
export const _DEBOUNCE_FLUSH: _Script = _script(
  "debounce-flush",
  `local instance, cleared = ARGV[1], tonumber(ARGV[2])
${OURS}local s = redis.call('HMGET', KEYS[1], 'state', 'token', 'args')
if s[1] ~= 'pending' then return {'idle'} end
local n = ours(s[2])
if n and n <= cleared then
  redis.call('HSET', KEYS[1], 'state', 'cancelled')
  return {'idle'}
end
redis.call('HSET', KEYS[1], 'state', 'claimed')
return {'run', s[2], s[3]}`,
);

/**
 * Cancels the pending burst only while its last call is one of instance ARGV[1]'s calls
 * numbered ARGV[2] or lower: one instance never cancels another's call, and a cancel never
 * cancels a call made after it (clear() then a new call: the new call stands). Returns 1
 * when cancelled, 0 otherwise.
 */
export const _DEBOUNCE_CANCEL: _Script = _script(
  "debounce-cancel",
  `local instance, upTo = ARGV[1], tonumber(ARGV[2])
${OURS}local s = redis.call('HMGET', KEYS[1], 'state', 'token')
local n = ours(s[2])
if s[1] ~= 'pending' or not n or n > upTo then return 0 end
redis.call('HSET', KEYS[1], 'state', 'cancelled')
return 1`,
);

/**
 * Leading edge: the first call of a burst (no key) creates the key for ARGV[2] ms and runs;
 * every later call only pushes the expiry to ARGV[2] ms from now. Returns 1 to run, 0 to drop.
 */
export const _DEBOUNCE_LEAD: _Script = _script(
  "debounce-lead",
  `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0`,
);
