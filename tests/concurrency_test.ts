import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { LockAcquireError, type RedisClient, withLock } from "../mod.ts";
import { CLIENTS, sendRaw } from "./_clients.ts";
import { assertNoLeaks } from "./_leaks.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { RespClient } from "./_resp.ts";

const WORKERS = 8;
const INCREMENTS = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A read-modify-write increment with a gap between the read and the write. */
async function increment(
  redis: RedisClient,
  send: (c: RedisClient, a: string[]) => Promise<unknown>,
  key: string,
) {
  const value = Number(await send(redis, ["GET", key]) ?? 0);
  await sleep(Math.random() < 0.5 ? 0 : 1);
  await send(redis, ["SET", key, String(value + 1)]);
}

describe("real concurrency: 8 clients x 50 read-modify-write increments", () => {
  let server: RedisServer;
  let admin: RespClient;
  const clients: { redis: RedisClient; kind: (typeof CLIENTS)[number] }[] = [];
  before(async () => {
    server = await startRedis();
    admin = await RespClient.connect(server.url);
    for (let i = 0; i < WORKERS; i++) {
      const kind = CLIENTS[i % CLIENTS.length]!;
      clients.push({ redis: await kind.connect(server.url), kind });
    }
  });
  after(async () => {
    for (const { redis, kind } of clients) await kind.close(redis);
    await admin.close();
    await server.stop();
    await assertNoLeaks();
  });

  // Each worker talks to Redis through its own client; this sends a raw command on it.
  const send = sendRaw;

  it("without the lock, concurrent increments lose updates", async () => {
    const key = `counter:unlocked:${Date.now()}`;
    await Promise.all(clients.map(async ({ redis }) => {
      for (let i = 0; i < INCREMENTS; i++) await increment(redis, send, key);
    }));
    const final = Number(await admin.sendCommand(["GET", key]));
    assert.ok(final < WORKERS * INCREMENTS, `expected lost updates, got ${final}`);
  });

  it("inside withLock, the counter ends exact", async () => {
    const key = `counter:locked:${Date.now()}`;
    let failures = 0;
    let concurrent = 0;
    let maxConcurrent = 0;
    await Promise.all(clients.map(async ({ redis }) => {
      for (let i = 0; i < INCREMENTS; i++) {
        while (true) {
          try {
            await withLock(redis, `lock:${key}`, async () => {
              maxConcurrent = Math.max(maxConcurrent, ++concurrent);
              await increment(redis, send, key);
              concurrent--;
            }, { ttl: 5 });
            break;
          } catch (error) {
            if (!(error instanceof LockAcquireError)) throw error;
            failures++;
            await sleep(Math.random() * 2);
          }
        }
      }
    }));
    assert.equal(Number(await admin.sendCommand(["GET", key])), WORKERS * INCREMENTS);
    assert.equal(maxConcurrent, 1);
    assert.ok(failures > 0, "the workers should have contended for the lock");
  });
});
