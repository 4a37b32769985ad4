// Turns any supported Redis client into one internal "send this command" function,
// and normalises the replies that differ between clients.
import { RedisReplyError } from "./errors.ts";
import type { CallClient, RedisClient, SendClient, SendCommandClient } from "./types.ts";
import { _isUpstash, _upstashSend } from "./_upstash.ts";

/** A reply as baton sees it, whatever the client: bytes become strings, `undefined` becomes `null`. */
export type _Reply = string | number | null | _Reply[];

/** Sends one raw command (`[command, ...args]`) and resolves to its normalised reply. */
export type _Send = (args: string[]) => Promise<_Reply>;

const decoder = new TextDecoder();

/** Whether `value` is an object with one of the methods of a supported client. */
export function _isRedisClient(value: unknown): value is RedisClient {
  if (value === null || typeof value !== "object") return false;
  const c = value as Record<string, unknown>;
  return typeof c.call === "function" ||
    typeof c.sendCommand === "function" ||
    typeof c.send === "function";
}

/** What a supported client is, for error messages. */
export const _CLIENT_EXPECTED = "a Redis client instance with a call() (ioredis, iovalkey), " +
  "sendCommand() (node-redis, or one you write) or send() (Bun's RedisClient) method";

/**
 * Why `value` is not a supported client, in words for an error message, or undefined when
 * it is one. Names a class passed instead of an instance, and clients known not to be
 * supported yet.
 */
export function _clientProblem(value: unknown): string | undefined {
  if (_isRedisClient(value) || _isUpstash(value)) return undefined;
  if (typeof value === "function") {
    const name = value.name || "anonymous";
    const proto = (value as { prototype?: Record<string, unknown> }).prototype;
    const isClass = /^class[\s{]/.test(Function.prototype.toString.call(value)) ||
      (proto !== undefined &&
        ["call", "sendCommand", "send"].some((m) => typeof proto[m] === "function"));
    return isClass
      ? `the class ${name}, not an instance of it: pass a connected client, such as new ${name}(...)`
      : `a function (${name}): pass a client object, not a function`;
  }
  if (value !== null && typeof value === "object") {
    const c = value as Record<string, unknown>;
    if (typeof c.evalsha === "function" && typeof c.scriptLoad === "function") {
      return `${
        _describe(value)
      } that looks like @upstash/redis but has no client.request() to send through: pass the Redis instance of @upstash/redis 1.x`;
    }
    return `${_describe(value)} with none of the methods call(), sendCommand() or send()`;
  }
  return _describe(value);
}

/** Describes a value for an error message without dumping a whole client object. */
export function _describe(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}...` : value);
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value === null || value === undefined) return String(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "symbol") return value.toString();
  if (typeof value === "function") return `a function`;
  if (Array.isArray(value)) return "an array";
  const name = (value as object).constructor?.name;
  return name && name !== "Object" ? `an instance of ${name}` : "an object";
}

/** Script names by SHA, filled in by the scripts module, for error messages. */
export const _scriptNames: Map<string, string> = new Map();

/** How a command is named in error messages: `SET`, or `EVALSHA release` for a script. */
export function _commandLabel(args: readonly string[]): string {
  const command = args[0] ?? "";
  if (command === "EVALSHA") return `EVALSHA ${_scriptNames.get(args[1] ?? "") ?? args[1]}`;
  if (command === "EVAL") return "EVAL";
  return command;
}

/**
 * The send function of a client. Throws a TypeError when `redis` is not a supported
 * client. Callers keep it (the lock backend is cached per client).
 */
export function _sendOf(redis: RedisClient, action: string): _Send {
  const problem = _clientProblem(redis);
  if (problem !== undefined) {
    throw new TypeError(
      `Cannot ${action} as "redis" must be ${_CLIENT_EXPECTED}: current value is ${problem}`,
    );
  }
  if (_isUpstash(redis)) {
    const send = _upstashSend(redis);
    return async (args) => _normalize(await send(args), args);
  }
  if (typeof (redis as CallClient).call === "function") {
    const c = redis as CallClient;
    if ((redis as { isCluster?: unknown }).isCluster === true) {
      // A Cluster routes by the command's keys, which iovalkey's finds only when the
      // command is named in lower case (else it sends to any node, and follows MOVED).
      return async (args) =>
        _normalize(await c.call(args[0]!.toLowerCase(), ...args.slice(1)), args);
    }
    return async (args) => _normalize(await c.call(...args as [string, ...string[]]), args);
  }
  if (_isNodeRedisCluster(redis)) {
    // Its raw command is routed by the key given beside it.
    const c = redis;
    return async (args) => {
      const firstKey = _firstKey(args);
      for (let attempt = 1;; attempt++) {
        try {
          return _normalize(await c.sendCommand(firstKey, false, args), args);
        } catch (error) {
          if (!_isTryAgain(error) || attempt >= TRYAGAIN_ATTEMPTS) throw error;
          await new Promise((resolve) => setTimeout(resolve, TRYAGAIN_DELAY_MS));
        }
      }
    };
  }
  if (typeof (redis as SendCommandClient).sendCommand === "function") {
    const c = redis as SendCommandClient;
    return async (args) => _normalize(await c.sendCommand(args), args);
  }
  const c = redis as SendClient;
  return async (args) => _normalize(await c.send(args[0]!, args.slice(1)), args);
}

/**
 * node-redis' cluster client (`createCluster()`), whose raw command is
 * `sendCommand(firstKey, isReadonly, args)`: the key routes the command to the node that
 * serves its hash slot.
 */
interface NodeRedisCluster {
  sendCommand(firstKey: string | undefined, isReadonly: boolean, args: string[]): Promise<unknown>;
}

/**
 * Whether `redis` is node-redis' cluster client: its `sendCommand` comes with the methods
 * that only the cluster has, which pick a node for a slot (v4 to v6).
 */
export function _isNodeRedisCluster(redis: unknown): redis is NodeRedisCluster {
  const c = redis as Record<string, unknown>;
  return typeof c.sendCommand === "function" && typeof c.getSlotMaster === "function" &&
    typeof c.nodeClient === "function";
}

/**
 * How many times a command answered TRYAGAIN is sent, and how long apart (ms): what
 * ioredis' Cluster does by itself (`retryDelayOnTryAgain`, `maxRedirections`).
 */
const TRYAGAIN_ATTEMPTS = 16;
const TRYAGAIN_DELAY_MS = 100;

/**
 * Whether a cluster node answered TRYAGAIN: the command's keys are split between two
 * nodes while their hash slot moves, and it was not run.
 */
function _isTryAgain(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("TRYAGAIN");
}

/** Commands that take no key: a cluster client may send them to any node. */
const KEYLESS = new Set(["PING", "ECHO", "TIME", "INFO", "SCRIPT", "PUBLISH", "CLUSTER"]);

/**
 * The key that routes command `args` on a cluster: for EVALSHA and EVAL the first key after
 * numkeys, undefined for a command without keys, else the first argument (SET, GET, ...).
 */
export function _firstKey(args: readonly string[]): string | undefined {
  const command = args[0]?.toUpperCase() ?? "";
  if (command === "EVALSHA" || command === "EVAL") {
    return Number(args[2]) > 0 ? args[3] : undefined;
  }
  return KEYLESS.has(command) ? undefined : args[1];
}

/**
 * Normalises a reply: bytes to strings, `undefined` to `null`, bigints to numbers. A value
 * no Redis reply decodes to (a boolean, a plain object, ...) is a RedisReplyError naming
 * the command `args`.
 */
export function _normalize(reply: unknown, args: readonly string[] = []): _Reply {
  if (reply === null || reply === undefined) return null;
  if (typeof reply === "string" || typeof reply === "number") return reply;
  if (typeof reply === "bigint") return Number(reply);
  if (reply instanceof Uint8Array) return decoder.decode(reply);
  if (Array.isArray(reply)) return reply.map((r) => _normalize(r, args));
  // Some clients deliver an error reply nested in an array as an Error object.
  if (reply instanceof Error) throw reply;
  throw new RedisReplyError(_commandLabel(args), reply, "a Redis reply");
}

/** Whether a Redis error is the server's answer to EVALSHA of a script it does not have. */
export function _isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.includes("NOSCRIPT");
}
