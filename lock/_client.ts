// Turns any supported Redis client into one internal "send this command" function,
// and normalises the replies that differ between clients.
import type { CallClient, RedisClient, SendClient, SendCommandClient } from "./types.ts";

/** A reply as baton sees it, whatever the client: bytes become strings, `undefined` becomes `null`. */
export type _Reply = string | number | null | _Reply[];

/** Sends one raw command (`[command, ...args]`) and resolves to its normalised reply. */
export type _Send = (args: string[]) => Promise<_Reply>;

const decoder = new TextDecoder();

/** Whether `value` has one of the methods of a supported client. */
export function _isRedisClient(value: unknown): value is RedisClient {
  if (
    value === null || (typeof value !== "object" && typeof value !== "function")
  ) return false;
  const c = value as Record<string, unknown>;
  return typeof c.call === "function" ||
    typeof c.sendCommand === "function" ||
    typeof c.send === "function";
}

/** Describes a value for an error message without dumping a whole client object. */
export function _describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value === null || value === undefined) return String(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return `a function`;
  const name = (value as object).constructor?.name;
  return name && name !== "Object" ? `an instance of ${name}` : "an object";
}

/**
 * The send function of a client. Throws a TypeError when `redis` is not a supported
 * client. Callers keep it (the lock backend is cached per client).
 */
export function _sendOf(redis: RedisClient, action: string): _Send {
  if (!_isRedisClient(redis)) {
    throw new TypeError(
      `Cannot ${action} as "redis" must be a Redis client with a call(), sendCommand() or send() method: current value is ${
        _describe(redis)
      }`,
    );
  }
  if (typeof (redis as CallClient).call === "function") {
    const c = redis as CallClient;
    return async (args) => _normalize(await c.call(...args as [string, ...string[]]));
  }
  if (typeof (redis as SendCommandClient).sendCommand === "function") {
    const c = redis as SendCommandClient;
    return async (args) => _normalize(await c.sendCommand(args));
  }
  const c = redis as SendClient;
  return async (args) => _normalize(await c.send(args[0]!, args.slice(1)));
}

/** Normalises a reply: bytes to strings, `undefined` to `null`, bigints to numbers. */
export function _normalize(reply: unknown): _Reply {
  if (reply === null || reply === undefined) return null;
  if (typeof reply === "string" || typeof reply === "number") return reply;
  if (typeof reply === "bigint") return Number(reply);
  if (typeof reply === "boolean") return reply ? 1 : 0;
  if (reply instanceof Uint8Array) return decoder.decode(reply);
  if (Array.isArray(reply)) return reply.map(_normalize);
  // Some clients deliver an error reply nested in an array as an Error object.
  if (reply instanceof Error) throw reply;
  return String(reply);
}

/** Whether a Redis error is the server's answer to EVALSHA of a script it does not have. */
export function _isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.includes("NOSCRIPT");
}
