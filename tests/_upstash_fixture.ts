// A stand-in for Upstash's REST API on a loopback port, so that the unmodified
// @upstash/redis client can be tested against a throwaway redis-server: commands come as
// JSON arrays over HTTP POST (`/` one command, `/pipeline` several, `/multi-exec` several in
// MULTI ... EXEC), with the bearer token checked, and go to Redis over raw RESP connections
// (tests/_resp.ts). Replies are `{"result": ...}`, strings base64-encoded when the client
// sends `Upstash-Encoding: base64` (as @upstash/redis does by default); a failed command is
// `{"error": "..."}` with status 400, and a bad token status 401, as Upstash answers.
// Made with node:http, which Deno and Bun both have.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { RespClient } from "./_resp.ts";

/** A running stand-in for Upstash's REST API. */
export interface UpstashFixture {
  /** `http://127.0.0.1:PORT`, the `url` to give @upstash/redis. */
  url: string;
  /** The token it accepts, the `token` to give @upstash/redis. */
  token: string;
  /** How many HTTP requests it has answered. */
  readonly requests: number;
  /** Closes the server, the client connections and the RESP connections to Redis. */
  close(): Promise<void>;
}

/**
 * Commands that would change the state of a shared RESP connection (a subscriber, a
 * monitor, a transaction, another database): Upstash's REST API takes none of them as a
 * single command (transactions go to `/multi-exec`, pub/sub to its own endpoints).
 */
const NOT_OVER_REST = new Set([
  "SUBSCRIBE",
  "PSUBSCRIBE",
  "SSUBSCRIBE",
  "MONITOR",
  "MULTI",
  "EXEC",
  "DISCARD",
  "WATCH",
  "UNWATCH",
  "SELECT",
  "QUIT",
  "RESET",
  "HELLO",
]);

type Json = string | number | null | Json[];

/** A reply with its strings base64-encoded (their UTF-8 bytes), numbers and nulls kept. */
function base64(reply: Json): Json {
  if (typeof reply === "string") {
    let binary = "";
    for (const byte of new TextEncoder().encode(reply)) binary += String.fromCharCode(byte);
    return btoa(binary);
  }
  if (Array.isArray(reply)) return reply.map(base64);
  return reply;
}

/** A RESP reply as JSON: an error nested in an array (EXEC's) becomes its message. */
function toJson(reply: unknown): Json {
  if (reply instanceof Error) return reply.message;
  if (Array.isArray(reply)) return reply.map(toJson);
  return reply as Json;
}

/** A command from a request body: an array of strings (numbers and booleans as text). */
function commandOf(value: unknown): string[] {
  if (
    !Array.isArray(value) || value.length === 0 ||
    !value.every((a) => ["string", "number", "boolean"].includes(typeof a))
  ) {
    throw new Error("ERR a command must be a non-empty JSON array of strings");
  }
  const command = value.map(String);
  if (NOT_OVER_REST.has(command[0]!.toUpperCase())) {
    throw new Error(`ERR command is not allowed over REST: ${command[0]}`);
  }
  return command;
}

/** A list of commands from a `/pipeline` or `/multi-exec` body. */
function commandsOf(value: unknown): string[][] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new Error("ERR a pipeline must be a non-empty JSON array of commands");
  }
  return value.map(commandOf);
}

const message = (error: unknown) => error instanceof Error ? error.message : String(error);

/**
 * Starts the stand-in on a free loopback port, forwarding to the Redis at `redisUrl`
 * (`redis://host:port`). Requests must carry `Authorization: Bearer <token>`.
 */
export async function startUpstashFixture(
  redisUrl: string,
  options: {
    token?: string;
    /**
     * Called with each request's commands before they go to Redis; the request waits for
     * what it returns (to hold some back, so that a later request overtakes them).
     */
    hold?: (commands: string[][]) => Promise<void> | undefined;
  } = {},
): Promise<UpstashFixture> {
  const token = options.token ?? `test-token-${crypto.randomUUID()}`;
  // One connection for single commands and pipelines (Redis answers in order); one for
  // transactions, which run one at a time so that no other command joins a MULTI.
  const redis = await RespClient.connect(redisUrl);
  let transactions: Promise<RespClient> | undefined;
  let lastTransaction: Promise<unknown> = Promise.resolve();
  let requests = 0;
  const sockets = new Set<Socket>();

  const multiExec = (commands: string[][]) => {
    const run = lastTransaction.then(async () => {
      transactions ??= RespClient.connect(redisUrl);
      const conn = await transactions;
      const settled = await Promise.allSettled(
        [["MULTI"], ...commands, ["EXEC"]].map((c) => conn.sendCommand(c)),
      );
      // A command rejected while queueing makes EXEC fail with EXECABORT.
      const rejected = settled.find((s) => s.status === "rejected");
      if (rejected) throw (rejected as PromiseRejectedResult).reason;
      const replies = (settled.at(-1) as PromiseFulfilledResult<unknown>).value;
      if (replies === null) throw new Error("EXECABORT Transaction discarded");
      return replies as unknown[];
    });
    lastTransaction = run.catch(() => {});
    return run;
  };

  const answer = async (path: string, body: unknown): Promise<[number, unknown]> => {
    if (path === "/") {
      try {
        const command = commandOf(body);
        await options.hold?.([command]);
        return [200, { result: toJson(await redis.sendCommand(command)) }];
      } catch (error) {
        return [400, { error: message(error) }];
      }
    }
    if (path === "/pipeline") {
      let commands: string[][];
      try {
        commands = commandsOf(body);
      } catch (error) {
        return [400, { error: message(error) }];
      }
      await options.hold?.(commands);
      const settled = await Promise.allSettled(commands.map((c) => redis.sendCommand(c)));
      return [
        200,
        settled.map((s) =>
          s.status === "fulfilled" ? { result: toJson(s.value) } : { error: message(s.reason) }
        ),
      ];
    }
    if (path === "/multi-exec") {
      try {
        const commands = commandsOf(body);
        await options.hold?.(commands);
        const replies = await multiExec(commands);
        return [
          200,
          replies.map((r) => r instanceof Error ? { error: r.message } : { result: toJson(r) }),
        ];
      } catch (error) {
        return [400, { error: message(error) }];
      }
    }
    return [404, { error: `ERR unknown endpoint ${path}` }];
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    requests++;
    const chunks: Uint8Array[] = [];
    for await (const chunk of req) chunks.push(chunk as Uint8Array);
    const send = (status: number, payload: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(payload));
    };
    if (req.method !== "POST") return send(405, { error: "ERR only POST is supported here" });
    if (req.headers.authorization !== `Bearer ${token}`) {
      return send(401, { error: "Unauthorized" });
    }
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(concat(chunks)));
    } catch {
      return send(400, { error: "ERR the request body is not JSON" });
    }
    const path = new URL(req.url ?? "/", "http://localhost").pathname.replace(/(.)\/$/, "$1");
    const [status, payload] = await answer(path, body);
    const encode = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    if (encode && status === 200) {
      send(
        status,
        Array.isArray(payload)
          ? payload.map((p: { result?: Json }) => "result" in p ? { result: base64(p.result!) } : p)
          : { result: base64((payload as { result: Json }).result) },
      );
    } else send(status, payload);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: message(error) }));
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as { port: number };

  return {
    url: `http://127.0.0.1:${port}`,
    token,
    get requests() {
      return requests;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      await redis.close();
      const conn = await transactions?.catch(() => undefined);
      await conn?.close();
    },
  };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
