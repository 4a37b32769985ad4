// A storage that checks fences, as a database would with
// `UPDATE ... SET value = $2, fence = $1 WHERE id = ... AND fence < $1`: a Redis hash
// whose write goes through only with a fence above the last one it accepted.
import type { RespClient } from "./_resp.ts";

const WRITE = `local last = redis.call('HGET', KEYS[1], 'fence')
-- Fences are below 2^53: exact as Lua numbers.
if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'fence', ARGV[1], 'value', ARGV[2])
return 1`;

/** Writes `value` to `resource` with `fence`; true when the storage accepted it. */
export async function fencedWrite(
  redis: RespClient,
  resource: string,
  fence: bigint,
  value: string,
): Promise<boolean> {
  return await redis.sendCommand(["EVAL", WRITE, "1", resource, String(fence), value]) === 1;
}
