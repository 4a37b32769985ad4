// Every kind of client baton supports, made and closed the same way, so that each
// behaviour is tested once per client.
import { Redis } from "ioredis";
import { Redis as Redis6 } from "ioredis6";
import { Redis as Valkey } from "iovalkey";
import { createClient } from "redis";
import { Redis as Upstash } from "@upstash/redis";
import { RespClient } from "./_resp.ts";
import { startUpstashFixture, type UpstashFixture } from "./_upstash_fixture.ts";
import type { RedisClient } from "../mod.ts";
import { _upstashSend } from "../lock/_upstash.ts";

/** One kind of Redis client: how to connect one to `url` and close it. */
export interface ClientKind {
  name: string;
  connect(url: string): Promise<RedisClient>;
  close(client: RedisClient): Promise<void>;
}

/** Whether the tests run under Bun. */
export const isBun: boolean = "Bun" in globalThis;

/** What the tests use of an ioredis-shaped client (ioredis 5 and 6, iovalkey). */
interface IoredisLike {
  status: string;
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: "error", listener: (error: Error) => void): unknown;
}

/** The options the tests give every ioredis-shaped client. */
interface IoredisTestOptions {
  lazyConnect: boolean;
  maxRetriesPerRequest: number;
  retryStrategy: () => null;
}

/** A kind made by an ioredis-shaped client class, configured alike whatever the fork. */
function ioredisKind(
  name: string,
  Client: new (url: string, options: IoredisTestOptions) => IoredisLike,
): ClientKind {
  return {
    name,
    async connect(url) {
      // No reconnecting, as with the other clients: a test that stops Redis ends the client.
      const client = new Client(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 1,
        retryStrategy: () => null,
      });
      client.on("error", () => {}); // a test that stops Redis makes it retry, noisily
      await client.connect();
      return client as unknown as RedisClient;
    },
    async close(client) {
      const c = client as unknown as IoredisLike;
      // quit() on a client that is reconnecting leaves its reconnect timers running.
      if (c.status === "ready") await c.quit().catch(() => {});
      c.disconnect();
    },
  };
}

const ioredis = ioredisKind("ioredis", Redis);
/** ioredis 6 speaks RESP3 by default (5 speaks RESP2): the same calls, other reply types. */
const ioredis6 = ioredisKind("ioredis 6", Redis6);
/** Valkey's fork of ioredis. */
const iovalkey = ioredisKind("iovalkey", Valkey);

const nodeRedis: ClientKind = {
  name: "node-redis",
  async connect(url) {
    const client = createClient({ url, socket: { reconnectStrategy: false } });
    client.on("error", () => {});
    await client.connect();
    return client as unknown as RedisClient;
  },
  async close(client) {
    const c = client as unknown as ReturnType<typeof createClient>;
    if (c.isOpen) await c.close().catch(() => c.destroy());
  },
};

const minimal: ClientKind = {
  name: "raw sendCommand",
  connect: (url) => RespClient.connect(url) as Promise<RedisClient>,
  close: (client) => (client as unknown as RespClient).close(),
};

interface BunRedis {
  connect(): Promise<void>;
  close(): void;
}

const bun: ClientKind = {
  name: "Bun RedisClient",
  async connect(url) {
    // A variable specifier keeps Deno from resolving "bun".
    const specifier = "bun";
    const { RedisClient } = await import(specifier);
    const client = new RedisClient(url, { autoReconnect: false, enableOfflineQueue: false });
    await (client as BunRedis).connect();
    return client as RedisClient;
  },
  close(client) {
    (client as unknown as BunRedis).close();
    return Promise.resolve();
  },
};

/** The stand-in for Upstash's REST API behind each @upstash/redis client. */
const upstashFixtures = new WeakMap<object, UpstashFixture>();

/**
 * @upstash/redis as it comes (JSON deserialization and auto-pipelining on), over HTTP to a
 * stand-in for Upstash's REST API in this process (tests/_upstash_fixture.ts), one per
 * client, which forwards to the test's Redis. It retries a failed request once, after 10 ms
 * (by default 5 times over about 4 s), so that a test that stops Redis sees it fail soon.
 */
const upstash: ClientKind = {
  name: "@upstash/redis",
  async connect(url) {
    const fixture = await startUpstashFixture(url);
    const client = new Upstash({
      url: fixture.url,
      token: fixture.token,
      retry: { retries: 1, backoff: () => 10 },
    });
    upstashFixtures.set(client, fixture);
    return client as unknown as RedisClient;
  },
  async close(client) {
    await upstashFixtures.get(client)?.close();
    upstashFixtures.delete(client);
  },
};

/** How each @upstash/redis client sends a raw command, as baton sends it. */
const upstashSends = new WeakMap<object, (args: string[]) => Promise<unknown>>();

/**
 * Sends a raw command on `redis`, whatever its kind. @upstash/redis' goes as baton sends it
 * (lock/_upstash.ts), with the reply as Redis sent it: its own `exec` would deserialize it
 * (a string of digits would come back as a number, JSON text as an object).
 */
export function sendRaw(redis: RedisClient, args: string[]): Promise<unknown> {
  if ("call" in redis) return redis.call(args[0]!, ...args.slice(1));
  if ("sendCommand" in redis) return redis.sendCommand(args);
  if ("send" in redis) return redis.send(args[0]!, args.slice(1));
  let send = upstashSends.get(redis);
  if (!send) upstashSends.set(redis, send = _upstashSend(redis));
  return send(args);
}

/** The clients to test under this runtime: Bun's own only under Bun. */
export const CLIENTS: ClientKind[] = [
  ioredis,
  ioredis6,
  iovalkey,
  nodeRedis,
  minimal,
  upstash,
  ...(isBun ? [bun] : []),
];

export {
  bun as BUN_CLIENT,
  ioredis as IOREDIS,
  ioredis6 as IOREDIS6,
  iovalkey as IOVALKEY,
  minimal as MINIMAL,
  nodeRedis as NODE_REDIS,
  upstash as UPSTASH,
};
