// @upstash/redis, the HTTP client of Upstash's REST API (serverless and edge runtimes), as
// one send function. Each command is one HTTP request through the client's own requester
// (`client.request()`, which every one of its commands is built on): its URL, token,
// retries, base64 response encoding and read-your-writes token apply, and its JSON
// deserialization does not. That deserialization (on by default, also for `eval` and
// `exec`, with no per-call option) would turn a string of digits into a number, "null"
// into null and debounce's JSON arguments into objects, which no reply decoder could
// undo. Nothing here is imported from @upstash/redis: the client is found by its shape.
import { _commandLabel } from "./_client.ts";
import { RedisReplyError } from "./errors.ts";

/** The requester behind an @upstash/redis `Redis` (its `client`, an HttpClient). */
interface Requester {
  request(req: { body: unknown; path?: string[] }): Promise<{ result?: unknown; error?: unknown }>;
}

/**
 * Whether `value` looks like an @upstash/redis `Redis`: `evalsha()` and `scriptLoad()`, and
 * none of the methods of the clients that speak RESP (checked before this).
 */
export function _looksLikeUpstash(value: unknown): boolean {
  const c = value as Record<string, unknown>;
  return typeof c.evalsha === "function" && typeof c.scriptLoad === "function";
}

/** The requester of an @upstash/redis `Redis`, or undefined when it has none. */
function requesterOf(value: unknown): Requester | undefined {
  const requester = (value as { client?: Partial<Requester> }).client;
  return typeof requester?.request === "function" ? requester as Requester : undefined;
}

/** Whether `value` is an @upstash/redis `Redis` that baton can send through. */
export function _isUpstash(value: unknown): boolean {
  return value !== null && typeof value === "object" && _looksLikeUpstash(value) &&
    requesterOf(value) !== undefined;
}

/** A command waiting to be sent, and how to settle its promise. */
interface Pending {
  args: string[];
  resolve(result: unknown): void;
  reject(error: unknown): void;
}

/** The most commands sent in one `/pipeline` request. */
const MAX_BATCH = 100;

/**
 * Settles `pending` with one entry of a response body: its `result` as the server sent it
 * (strings decoded from base64 by the client), its `error` as an Error with Redis' message
 * (such as `NOSCRIPT ...`), or a RedisReplyError for a body with neither.
 */
function settle(pending: Pending, body: { result?: unknown; error?: unknown } | undefined): void {
  if (body?.error !== undefined && body.error !== null) {
    pending.reject(new Error(String(body.error)));
  } else if (body?.result === undefined) {
    pending.reject(
      new RedisReplyError(_commandLabel(pending.args), body, 'an HTTP body with a "result"'),
    );
  } else pending.resolve(body.result);
}

/**
 * The raw command function of an @upstash/redis `Redis` (see {@linkcode _isUpstash}): resolves
 * to the reply as the server sent it, for `_normalize` (lock/_client.ts) to check; rejects
 * with the client's error when the request fails (an `UpstashError` whose message starts
 * with Redis' own for an error reply).
 *
 * Commands reach the server in the order they were sent, as on one Redis connection
 * (concurrent HTTP requests may arrive in any order, and a debounced burst must end with its
 * last call): one request is in flight at a time, and the commands sent meanwhile go
 * together in the next, as one `/pipeline` request (executed in order, not atomically).
 */
export function _upstashSend(redis: unknown): (args: string[]) => Promise<unknown> {
  const requester = requesterOf(redis)!;
  const queue: Pending[] = [];
  let sending = false;
  const sendBatch = async (batch: Pending[]) => {
    try {
      if (batch.length === 1) {
        settle(batch[0]!, await requester.request({ body: batch[0]!.args }));
        return;
      }
      // A pipeline's body is an array of { result } or { error }, one per command.
      const replies: unknown = await requester.request({
        path: ["pipeline"],
        body: batch.map((p) => p.args),
      });
      if (!Array.isArray(replies) || replies.length !== batch.length) {
        const error = new RedisReplyError("a pipeline", replies, `${batch.length} replies`);
        for (const p of batch) p.reject(error);
        return;
      }
      batch.forEach((p, i) => settle(p, replies[i]));
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  };
  const sendAll = async () => {
    while (queue.length > 0) await sendBatch(queue.splice(0, MAX_BATCH));
    sending = false;
  };
  return (args) =>
    new Promise((resolve, reject) => {
      queue.push({ args, resolve, reject });
      if (sending) return;
      sending = true;
      // After the code that runs on from here, so that commands sent together go together.
      queueMicrotask(() => void sendAll());
    });
}
