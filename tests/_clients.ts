// Every kind of client baton supports, made and closed the same way, so that each
// behaviour is tested once per client.
import { Redis } from "ioredis";
import { createClient } from "redis";
import { RespClient } from "./_resp.ts";
import type { RedisClient } from "../mod.ts";

/** One kind of Redis client: how to connect one to `url` and close it. */
export interface ClientKind {
  name: string;
  connect(url: string): Promise<RedisClient>;
  close(client: RedisClient): Promise<void>;
}

/** Whether the tests run under Bun. */
export const isBun: boolean = "Bun" in globalThis;

const ioredis: ClientKind = {
  name: "ioredis",
  async connect(url) {
    // No reconnecting, as with the other clients: a test that stops Redis ends the client.
    const client = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    });
    client.on("error", () => {}); // a test that stops Redis makes it retry, noisily
    await client.connect();
    return client as unknown as RedisClient;
  },
  async close(client) {
    const c = client as unknown as Redis;
    // quit() on a client that is reconnecting leaves its reconnect timers running.
    if (c.status === "ready") await c.quit().catch(() => {});
    c.disconnect();
  },
};

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

/** The clients to test under this runtime: Bun's own only under Bun. */
export const CLIENTS: ClientKind[] = isBun ? [ioredis, nodeRedis, minimal, bun] : [
  ioredis,
  nodeRedis,
  minimal,
];

export { bun as BUN_CLIENT, ioredis as IOREDIS, minimal as MINIMAL, nodeRedis as NODE_REDIS };
