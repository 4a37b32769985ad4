import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { acquireLock, type Lock, LockLostError, type RedisClient, withLock } from "../mod.ts";
import { aborted, startRedisWithAdmin, stopRedisWithAdmin } from "./_fixtures.ts";
import process from "node:process";
import { CLIENTS, MINIMAL } from "./_clients.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import type { RespClient } from "./_resp.ts";
import { closePair, connectPair, MEMORY, type StoreClient, STORES } from "./_stores.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const uniqueKey = (name: string) => `watchdog:${name}:${Date.now()}:${n++}`;

describe("holding a lock through long work", () => {
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

        it("withLock's watchdog keeps the lock across 3x its ttl, then releases", async () => {
          const key = uniqueKey("long");
          let held: Lock | undefined;
          const result = await withLock(a, key, async ({ lock, signal }) => {
            held = lock;
            for (let i = 0; i < 6; i++) {
              await sleep(100); // 600 ms in all, with a 200 ms lease
              assert.equal(await acquireLock(b, key, { throwOnFail: false }), null);
              assert.equal((await lock.status()).owned, true);
            }
            assert.equal(signal.aborted, false);
            return "done";
          }, { ttl: 0.2 });
          assert.equal(result, "done");
          assert.deepEqual(await held!.status(), { owned: false, remainingMs: 0 });
          await (await acquireLock(b, key)).release();
        });

        it("watchdog: false lets the lease run out while fn runs", async () => {
          const key = uniqueKey("off");
          let other: Awaited<ReturnType<typeof acquireLock>> | undefined;
          await assert.rejects(
            withLock(a, key, async () => {
              await sleep(300);
              other = await acquireLock(b, key, { ttl: 10 });
              return "done late";
            }, { ttl: 0.1, watchdog: false }),
            (error: unknown) => {
              assert.ok(error instanceof LockLostError, `got ${error}`);
              assert.equal(error.hasValue, true);
              assert.equal(error.value, "done late");
              return true;
            },
          );
          assert.ok(other);
          assert.equal((await other.status()).owned, true, "the new owner's lock stands");
          assert.equal(await other.release(), true);
        });

        it("release() stops the watchdog: no renewal recreates or extends the key", async () => {
          const key = uniqueKey("stops");
          // Generous leases: a busy machine must not make the watchdog itself miss a renewal.
          const lock = await acquireLock(a, key, { ttl: 0.6, watchdog: true });
          await sleep(300); // past its first renewal, at 200 ms
          assert.equal(await lock.release(), true);
          const next = await acquireLock(b, key, { ttl: 0.4 });
          await sleep(250); // past when the released lock's next renewal would have come
          const { owned, remainingMs } = await next.status();
          assert.ok(
            owned && remainingMs > 0 && remainingMs <= 150,
            `the new owner's lease was not touched: ${remainingMs} ms left`,
          );
          await next.release();
        });
      });
    }
  });

  describe("on Redis: another owner's token, or none, under the key", () => {
    for (const kind of CLIENTS) {
      describe(kind.name, () => {
        let a: RedisClient;
        before(async () => a = await kind.connect(server.url));
        after(() => kind.close(a));

        it("when another owner takes the key, signal aborts and withLock rejects with LockLostError", async () => {
          const key = uniqueKey("stolen");
          let seen: unknown;
          await assert.rejects(
            withLock(a, key, async ({ signal }) => {
              await admin.sendCommand(["SET", key, "thief", "PX", "10000"]);
              seen = await aborted(signal, 2000);
              return "finished anyway";
            }, { ttl: 0.3 }),
            (error: unknown) => {
              assert.ok(error instanceof LockLostError);
              assert.equal(error.key, key);
              assert.equal(error, seen, "the signal's reason is the error withLock rejects with");
              assert.match(String(error.cause), /another owner/);
              assert.equal(error.hasValue, true);
              assert.equal(error.value, "finished anyway");
              return true;
            },
          );
          assert.equal(await admin.sendCommand(["GET", key]), "thief");
          await admin.sendCommand(["DEL", key]);
        });

        it("after a forced DEL the signal aborts; fn's own error still wins", async () => {
          const key = uniqueKey("deleted");
          const fnError = new Error("fn gave up");
          await assert.rejects(
            withLock(a, key, async ({ signal }) => {
              await admin.sendCommand(["DEL", key]);
              assert.ok((await aborted(signal, 2000)) instanceof LockLostError);
              throw fnError;
            }, { ttl: 0.3 }),
            (error) => error === fnError,
          );
        });

        it("a manual handle can opt into the watchdog, with onLost and its signal", async () => {
          const key = uniqueKey("manual");
          const lost: LockLostError[] = [];
          const lock = await acquireLock(a, key, {
            ttl: 0.2,
            watchdog: true,
            onLost: (e) => lost.push(e),
          });
          await sleep(500);
          assert.equal(await admin.sendCommand(["GET", key]), lock.token, "renewed past its ttl");
          await admin.sendCommand(["SET", key, "thief"]);
          const reason = await aborted(lock.signal, 2000);
          assert.ok(reason instanceof LockLostError);
          assert.deepEqual(lost, [reason]);
          assert.equal(lock.isAcquired(), false);
          assert.equal(await lock.release(), false);
          assert.equal(await admin.sendCommand(["GET", key]), "thief");
          await admin.sendCommand(["DEL", key]);
        });
      });
    }
  });

  for (const kind of CLIENTS) {
    it(`${kind.name}: when Redis stops mid-hold, the signal aborts once the lease has run out`, async () => {
      const own = await startRedis({ useEnv: false });
      const redis = await kind.connect(own.url);
      let stopped = 0;
      try {
        await assert.rejects(
          withLock(redis, uniqueKey("down"), async ({ signal }) => {
            await own.stop();
            stopped = performance.now();
            const reason = await aborted(signal, 5000);
            assert.ok(reason instanceof LockLostError, `signal reason ${reason}`);
          }, { ttl: 0.5 }),
          (error: unknown) => error instanceof LockLostError && error.cause !== undefined,
        );
        assert.ok(performance.now() - stopped < 4000);
      } finally {
        await kind.close(redis);
        await own.stop();
      }
    });
  }

  // The raw client cannot subscribe; the memory store's waiter polls with subscriber: false.
  for (const kind of STORES.filter((k) => k.client === MINIMAL || k === MEMORY)) {
    it(`${kind.name}: a lock handed to a waiter that polls, found with little of its lease left, is renewed in time`, async () => {
      const [holder, waiter] = await connectPair(kind, server.url);
      try {
        const key = uniqueKey("handed");
        const held = await acquireLock(holder, key, { ttl: 10 });
        // The waiter polls at 0 and 500 ms. Handed the lock at ~260 ms with a 300 ms
        // lease, it finds it at its 500 ms poll with ~60 ms left.
        const section = withLock(waiter, key, async ({ lock }) => {
          await sleep(500);
          return (await lock.status()).owned;
        }, {
          ttl: 0.3,
          timeout: 10_000,
          retryDelay: 500,
          maxRetryDelay: 500,
          jitter: 0,
          subscriber: false,
        });
        await sleep(260);
        assert.equal(await held.release(), true);
        assert.equal(await section, true);
      } finally {
        await closePair(kind, holder, waiter);
      }
    });
  }

  it("an onLost that throws neither crashes the process nor keeps the signal from aborting", async () => {
    const uncaught: unknown[] = [];
    const record = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", record);
    const own = await startRedis({ useEnv: false });
    const redis = await MINIMAL.connect(own.url);
    try {
      const calls: string[] = [];
      const onLost = (e: LockLostError) => {
        calls.push(e.key);
        throw new Error("onLost failed");
      };
      // Found lost by a renewal (another owner), and by the lease's end (Redis gone).
      const stolen = await acquireLock(redis, uniqueKey("throws"), {
        ttl: 0.2,
        watchdog: true,
        onLost,
      });
      await (redis as unknown as RespClient).sendCommand(["SET", stolen.key, "thief"]);
      assert.ok((await aborted(stolen.signal, 2000)) instanceof LockLostError);
      const expired = await acquireLock(redis, uniqueKey("throws"), {
        ttl: 0.3,
        watchdog: true,
        onLost,
      });
      await own.stop();
      assert.ok((await aborted(expired.signal, 3000)) instanceof LockLostError);
      await sleep(50);
      assert.deepEqual(calls, [stolen.key, expired.key]);
      assert.deepEqual(uncaught, []);
    } finally {
      process.off("uncaughtException", record);
      await MINIMAL.close(redis);
      await own.stop();
    }
  });
});
