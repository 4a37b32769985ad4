import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { acquireLock, LockAcquireError, type RedisClient, withLock } from "../mod.ts";
import {
  closePair as closeClients,
  connectPair as connectClients,
  startRedisWithAdmin,
  stopRedisWithAdmin,
} from "./_fixtures.ts";
import { CLIENTS } from "./_clients.ts";
import type { RedisServer } from "./_redis.ts";
import type { RespClient } from "./_resp.ts";
import { closePair, connectPair, type StoreClient, STORES } from "./_stores.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const uniqueKey = (name: string) => `test:${name}:${Date.now()}:${n++}`;

/** Asserts that `client` can take the lock on `key` now (it is free), and frees it again. */
async function assertFree(client: StoreClient, key: string): Promise<void> {
  const lock = await acquireLock(client, key, { throwOnFail: false });
  assert.ok(lock, `"${key}" is still held`);
  assert.equal(await lock.release(), true);
}

describe("acquireLock and withLock", () => {
  let server: RedisServer;
  let admin: RespClient;
  before(async () => ({ server, admin } = await startRedisWithAdmin()));
  after(() => stopRedisWithAdmin(server, admin));

  describe("on each store", () => {
    for (const kind of STORES) {
      describe(kind.name, () => {
        let a: StoreClient;
        let b: StoreClient;
        before(async () => [a, b] = await connectPair(kind, server.url));
        after(() => closePair(kind, a, b));

        it("acquires with a fresh owner token and the lease, holds it against others, and releases", async () => {
          const key = uniqueKey("basic");
          const lock = await acquireLock(a, key, { ttl: 10 });
          assert.equal(lock.key, key);
          assert.match(lock.token, /^[0-9a-f-]{36}$/);
          const held = await lock.status();
          assert.equal(held.owned, true);
          assert.ok(held.remainingMs > 9_000 && held.remainingMs <= 10_000, `${held.remainingMs}`);
          assert.equal(await acquireLock(b, key, { throwOnFail: false }), null);
          assert.equal(lock.isAcquired(), true);
          assert.equal(await lock.release(), true);
          assert.equal(lock.isAcquired(), false);
          assert.deepEqual(await lock.status(), { owned: false, remainingMs: 0 });
          await assertFree(b, key);
        });

        it("the default ttl is 30 seconds, and fractions are kept as milliseconds", async () => {
          const key = uniqueKey("ttl");
          const lock = await acquireLock(a, key);
          const { remainingMs } = await lock.status();
          assert.ok(remainingMs > 29_000 && remainingMs <= 30_000, `remaining ${remainingMs}`);
          await lock.release();
          const short = await acquireLock(a, key, { ttl: 0.25 });
          const left = (await short.status()).remainingMs;
          assert.ok(left > 150 && left <= 250, `remaining ${left}`);
          await short.release();
        });

        it("a second client cannot take a held lock; it throws LockAcquireError naming the key", async () => {
          const key = uniqueKey("contended");
          const lock = await acquireLock(a, key, { ttl: 10 });
          await assert.rejects(acquireLock(b, key, { ttl: 10 }), (error: unknown) => {
            assert.ok(error instanceof LockAcquireError);
            assert.equal(error.name, "LockAcquireError");
            assert.equal(error.key, key);
            assert.equal(error.attempts, 1);
            assert.ok(error.waitedMs >= 0);
            assert.ok(error.message.includes(key), error.message);
            return true;
          });
          assert.equal((await lock.status()).owned, true);
          await lock.release();
          const next = await acquireLock(b, key, { ttl: 10 });
          assert.equal(await next.release(), true);
        });

        it("errorMessage becomes the error's message", async () => {
          const key = uniqueKey("message");
          const lock = await acquireLock(a, key, { ttl: 10 });
          await assert.rejects(
            acquireLock(b, key, { ttl: 10, errorMessage: "Operation in progress" }),
            { name: "LockAcquireError", message: "Operation in progress" },
          );
          await assert.rejects(
            withLock(b, key, () => "never", { errorMessage: "Withdrawal in progress" }),
            { name: "LockAcquireError", message: "Withdrawal in progress" },
          );
          await lock.release();
        });

        it("throwOnFail: false resolves to null instead of throwing, in both functions", async () => {
          const key = uniqueKey("nothrow");
          const lock = await acquireLock(a, key, { ttl: 10 });
          assert.equal(await acquireLock(b, key, { ttl: 10, throwOnFail: false }), null);
          let ran = false;
          assert.equal(await withLock(b, key, () => (ran = true), { throwOnFail: false }), null);
          assert.equal(ran, false);
          await lock.release();
        });

        it("withLock returns fn's value and releases", async () => {
          const key = uniqueKey("with");
          const value = await withLock(a, key, async ({ lock, signal }) => {
            assert.equal((await lock.status()).owned, true);
            assert.equal(await acquireLock(b, key, { throwOnFail: false }), null);
            assert.equal(signal.aborted, false);
            return { balance: 900 };
          });
          assert.deepEqual(value, { balance: 900 });
          await assertFree(b, key);
        });

        it("withLock rethrows fn's error unchanged and releases", async () => {
          const key = uniqueKey("throws");
          const thrown = new Error("insufficient funds");
          await assert.rejects(
            withLock(a, key, () => {
              throw thrown;
            }),
            (error) => error === thrown,
          );
          await assertFree(b, key);
          const rejected = new RangeError("async failure");
          await assert.rejects(
            withLock(a, key, () => Promise.reject(rejected)),
            (e) => e === rejected,
          );
          await assertFree(b, key);
        });

        it("release() after the lease expired returns false and keeps the new owner's lock", async () => {
          const key = uniqueKey("expired");
          const old = await acquireLock(a, key, { ttl: 0.05 });
          await sleep(80);
          assert.equal(old.isAcquired(), false);
          assert.deepEqual(await old.status(), { owned: false, remainingMs: 0 });
          const owner = await acquireLock(b, key, { ttl: 10 });
          assert.equal(await old.release(), false);
          assert.equal((await owner.status()).owned, true);
          assert.equal(await old.extend(10), false);
          assert.equal((await owner.status()).owned, true);
          assert.equal(await owner.release(), true);
        });

        it("release() twice is harmless: the second resolves false and leaves the next owner's lock", async () => {
          const key = uniqueKey("twice");
          const lock = await acquireLock(a, key, { ttl: 10 });
          assert.equal(await lock.release(), true);
          const other = await acquireLock(b, key, { ttl: 10 });
          assert.equal(await lock.release(), false);
          assert.equal((await other.status()).owned, true);
          await other.release();
        });

        it("extend() resets the lease, and a lock kept alive by extend outlives its ttl", async () => {
          const key = uniqueKey("extend");
          const lock = await acquireLock(a, key, { ttl: 0.2 });
          for (let i = 0; i < 4; i++) {
            await sleep(100);
            assert.equal(await lock.extend(), true);
          }
          assert.equal((await lock.status()).owned, true);
          assert.equal(await acquireLock(b, key, { throwOnFail: false }), null);
          assert.equal(await lock.extend(20), true);
          const { remainingMs } = await lock.status();
          assert.ok(remainingMs > 19_000 && remainingMs <= 20_000, `remaining ${remainingMs}`);
          assert.equal(lock.isAcquired(), true);
          await lock.release();
          assert.equal(await lock.extend(), false);
        });

        it("status() says whether the handle owns the key and how long is left", async () => {
          const key = uniqueKey("status");
          const lock = await acquireLock(a, key, { ttl: 5 });
          const held = await lock.status();
          assert.equal(held.owned, true);
          assert.ok(held.remainingMs > 4_000 && held.remainingMs <= 5_000, `${held.remainingMs}`);
          await lock.release();
          assert.deepEqual(await lock.status(), { owned: false, remainingMs: 0 });
        });

        it("await using releases the lock on scope exit, also on throw", async () => {
          const key = uniqueKey("using");
          {
            await using lock = await acquireLock(a, key, { ttl: 10 });
            assert.equal((await lock.status()).owned, true);
          }
          await assertFree(b, key);
          await assert.rejects(async () => {
            await using _lock = await acquireLock(a, key, { ttl: 10 });
            throw new Error("boom");
          }, { message: "boom" });
          await assertFree(b, key);
        });
      });
    }
  });

  describe("on Redis: what the key holds", () => {
    for (const kind of CLIENTS) {
      describe(kind.name, () => {
        let a: RedisClient;
        let b: RedisClient;
        before(async () => [a, b] = await connectClients(kind, server.url));
        after(() => closeClients(kind, a, b));

        it("acquires, stores its token under the key with the lease, and releases", async () => {
          const key = uniqueKey("basic");
          const lock = await acquireLock(a, key, { ttl: 10 });
          assert.equal(await admin.sendCommand(["GET", key]), lock.token);
          const pttl = Number(await admin.sendCommand(["PTTL", key]));
          assert.ok(pttl > 9_000 && pttl <= 10_000, `pttl ${pttl}`);
          assert.equal(await lock.release(), true);
          assert.equal(await admin.sendCommand(["EXISTS", key]), 0);
          const short = await acquireLock(a, key, { ttl: 0.25 });
          const shortPttl = Number(await admin.sendCommand(["PTTL", key]));
          assert.ok(shortPttl > 150 && shortPttl <= 250, `pttl ${shortPttl}`);
          await short.release();
        });

        it("extend() and status() find another owner's token under the key: false, and nothing is touched", async () => {
          const key = uniqueKey("stolen");
          const lock = await acquireLock(a, key, { ttl: 10 });
          await admin.sendCommand(["SET", key, "someone-else"]);
          assert.deepEqual(await lock.status(), { owned: false, remainingMs: 0 });
          assert.equal(await lock.extend(), false);
          assert.equal(lock.isAcquired(), false);
          assert.equal(await admin.sendCommand(["GET", key]), "someone-else");
          assert.equal(await lock.release(), false);
          assert.equal(await admin.sendCommand(["GET", key]), "someone-else");
          await admin.sendCommand(["DEL", key]);
          await assertFree(b, key);
        });
      });
    }
  });
});
