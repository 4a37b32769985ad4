import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { acquireLock, type Lock, LockAcquireError, type RedisClient } from "../mod.ts";
import { _keysOf } from "../lock/_redis_store.ts";
import { _storeOf } from "../lock/_store_of.ts";
import { _SUBSCRIBER_IDLE_MS } from "../lock/_subscriber.ts";
import { _backoffMs } from "../lock/_wait.ts";
import { Redis } from "ioredis";
import { startRedisWithAdmin, stopRedisWithAdmin } from "./_fixtures.ts";
import { IOREDIS } from "./_clients.ts";
import type { RedisServer } from "./_redis.ts";
import type { RespClient } from "./_resp.ts";
import { closePair, connectPair, type StoreClient, STORES } from "./_stores.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const uniqueKey = (name: string) => `wait:${name}:${Date.now()}:${n++}`;

/**
 * Releases `lock` (then runs `afterRelease`) and waits for `waiter`: resolves to the next
 * owner and the ms from the release() call to its acquire resolving.
 */
async function handOff(
  lock: Lock,
  waiter: Promise<Lock>,
  afterRelease?: () => Promise<unknown>,
): Promise<[next: Lock, ms: number]> {
  const releasedAt = performance.now();
  await lock.release();
  await afterRelease?.();
  const next = await waiter;
  return [next, performance.now() - releasedAt];
}

describe("backoff", () => {
  const b = { retryDelayMs: 10, maxRetryDelayMs: 500, jitter: 0.5 };
  it("doubles per retry up to the cap, before jitter", () => {
    const noJitter = [1, 2, 3, 4, 5, 6, 7, 8].map((r) => _backoffMs(r, b, () => 0));
    assert.deepEqual(noJitter, [10, 20, 40, 80, 160, 320, 500, 500]);
  });
  it("jitter takes away at most its share, and differs between calls", () => {
    assert.equal(_backoffMs(3, b, () => 1), 20);
    const samples = Array.from({ length: 200 }, () => _backoffMs(4, b));
    assert.ok(
      samples.every((d) => d >= 40 && d <= 80),
      `${Math.min(...samples)}..${Math.max(...samples)}`,
    );
    assert.ok(new Set(samples).size > 100, "jittered delays should differ");
    assert.equal(_backoffMs(4, { ...b, jitter: 0 }), 80);
  });
});

/** Redis Cluster's hash slot of `key`: CRC16 (XMODEM) of its hash tag, or of all of it. */
function hashSlot(key: string): number {
  const open = key.indexOf("{");
  const close = open < 0 ? -1 : key.indexOf("}", open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of new TextEncoder().encode(hashed)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : crc << 1;
  }
  return crc % 16384;
}

describe("queue keys", () => {
  it("carry the lock key's hash slot, so one script may touch them on Redis Cluster", () => {
    assert.equal(hashSlot("123456789"), 0x31c3 % 16384); // CRC16/XMODEM's check value
    for (const key of ["withdraw:42", "lock:{user1}:withdraw", "a{b", "x}{y}"]) {
      const [lock, ...derived] = _keysOf(key);
      assert.equal(lock, key);
      assert.equal(derived.length, 3);
      for (const k of derived) assert.equal(hashSlot(k), hashSlot(key), k);
    }
    assert.deepEqual(_keysOf("withdraw:42").slice(1), [
      "{withdraw:42}:baton:queue",
      "{withdraw:42}:baton:waiters",
      "{withdraw:42}:baton:fence",
    ]);
    // A key with a "}" but no hash tag cannot be given one: its keys stay untagged.
    assert.deepEqual(_keysOf("a{}b").slice(1), [
      "a{}b:baton:queue",
      "a{}b:baton:waiters",
      "a{}b:baton:fence",
    ]);
  });
});

describe("waiting for a held lock", () => {
  let server: RedisServer;
  let admin: RespClient;

  /** How many connections named `name` the server has now. */
  async function named(name: string): Promise<number> {
    return String(await admin.sendCommand(["CLIENT", "LIST"])).split("\n")
      .filter((line) => line.includes(` name=${name} `)).length;
  }

  /** The count of connections named `name`, once it is `expected` or 3 s have passed. */
  async function namedBecome(name: string, expected: number): Promise<number> {
    let count = await named(name);
    for (let waited = 0; count !== expected && waited < 3000; waited += 25) {
      await sleep(25);
      count = await named(name);
    }
    return count;
  }
  before(async () => ({ server, admin } = await startRedisWithAdmin()));
  after(() => stopRedisWithAdmin(server, admin));

  for (const kind of STORES) {
    const subscribes = kind.news; // the raw client has no duplicate() to subscribe on
    describe(kind.name, () => {
      let a: StoreClient;
      let b: StoreClient;
      before(async () => [a, b] = await connectPair(kind, server.url));
      after(() => closePair(kind, a, b));

      it("the default is one attempt: a held lock fails at once", async () => {
        const key = uniqueKey("default");
        const lock = await acquireLock(a, key, { ttl: 10 });
        await assert.rejects(
          acquireLock(b, key),
          (e: unknown) => e instanceof LockAcquireError && e.attempts === 1,
        );
        await lock.release();
      });

      if (subscribes) {
        it("a waiter is woken by the release, long before its polling delay", async () => {
          const key = uniqueKey("wake");
          const lock = await acquireLock(a, key, { ttl: 10 });
          // Without the wake-up, the waiter's next attempt would come 3 s after its first.
          const waiter = acquireLock(b, key, {
            ttl: 10,
            timeout: 10_000,
            retryDelay: 3000,
            maxRetryDelay: 3000,
            jitter: 0,
          });
          await sleep(200);
          const [next, handoffMs] = await handOff(lock, waiter);
          assert.ok(handoffMs < 1500, `handoff took ${handoffMs} ms`);
          assert.equal((await next.status()).owned, true);
          await next.release();
        });

        it("a release within the first waiter's window hands the lock over a moment later, when the holder does not take it back", async () => {
          const key = uniqueKey("nudge");
          const lock = await acquireLock(a, key, { ttl: 10 });
          // A long window, and no poll for 5 s: only the releasing client's hand-over can
          // bring the lock to it early.
          const waiter = acquireLock(b, key, {
            timeout: 10_000,
            fairnessWindow: 3000,
            retryDelay: 5000,
            maxRetryDelay: 5000,
          });
          await sleep(100);
          const [next, handoffMs] = await handOff(lock, waiter);
          assert.ok(handoffMs < 1000, `handoff took ${handoffMs} ms`);
          await next.release();
        });

        // A MemoryStore has no connection to close: its hand-over always comes.
        if (kind.client) {
          it("if that hand-over never comes (the holder's client closed), the first waiter tries again shortly after its window", async () => {
            const key = uniqueKey("lost-nudge");
            const holder = await kind.connect(server.url);
            const lock = await acquireLock(holder, key, { ttl: 10 });
            const waiter = acquireLock(b, key, {
              timeout: 10_000,
              fairnessWindow: 300,
              retryDelay: 5000,
              maxRetryDelay: 5000,
            });
            await sleep(50);
            // The holder's client closes before its hand-over, on the next turn.
            const [next, handoffMs] = await handOff(lock, waiter, () => kind.close(holder));
            assert.ok(handoffMs < 2000, `got the lock ${handoffMs} ms after the release`);
            await next.release();
          });
        }
      } else {
        it("a client without duplicate() still gets the lock by polling", async () => {
          const key = uniqueKey("poll");
          const lock = await acquireLock(a, key, { ttl: 10 });
          const waiter = acquireLock(b, key, {
            ttl: 10,
            timeout: 5000,
            retryDelay: 20,
            maxRetryDelay: 50,
          });
          await sleep(100);
          await lock.release();
          const next = await waiter;
          assert.equal((await next.status()).owned, true);
          await next.release();
        });
      }

      it("timeout gives up promptly, not at the next poll, with key, attempts and time waited", async () => {
        const key = uniqueKey("timeout");
        const lock = await acquireLock(a, key, { ttl: 10 });
        const started = performance.now();
        await assert.rejects(
          acquireLock(b, key, { timeout: 150, retryDelay: 2000, errorMessage: "busy" }),
          (e: unknown) => {
            assert.ok(e instanceof LockAcquireError);
            assert.equal(e.message, "busy");
            assert.equal(e.key, key);
            assert.ok(e.attempts >= 2, `attempts ${e.attempts}`);
            assert.ok(e.waitedMs >= 150 && e.waitedMs < 1000, `waited ${e.waitedMs}`);
            return true;
          },
        );
        assert.ok(performance.now() - started < 1000);
        assert.equal(await acquireLock(b, key, { timeout: 50, throwOnFail: false }), null);
        await lock.release();
      });

      it("abort rejects with the signal's reason as soon as it fires, mid-sleep", async () => {
        const key = uniqueKey("abort");
        const lock = await acquireLock(a, key, { ttl: 10 });
        const controller = new AbortController();
        const reason = new Error("user went away");
        const waiter = acquireLock(b, key, {
          timeout: Infinity,
          retryDelay: 5000,
          maxRetryDelay: 5000,
          signal: controller.signal,
        });
        await sleep(50);
        const abortedAt = performance.now();
        controller.abort(reason);
        await assert.rejects(waiter, (e) => e === reason);
        // Its next poll is 2.5-5 s away: only an abort that ends the sleep at once passes.
        const tookMs = performance.now() - abortedAt;
        assert.ok(tookMs < 250, `settled ${tookMs} ms after the abort`);
        // An already aborted signal rejects before anything is tried.
        await assert.rejects(
          acquireLock(b, key, { signal: AbortSignal.abort(reason) }),
          (e) => e === reason,
        );
        await lock.release();
      });

      it("retries bounds the attempts", async () => {
        const key = uniqueKey("retries");
        const lock = await acquireLock(a, key, { ttl: 10 });
        await assert.rejects(
          acquireLock(b, key, { retries: 3, retryDelay: 5, subscriber: false }),
          (e: unknown) => e instanceof LockAcquireError && e.attempts === 4,
        );
        await lock.release();
      });

      it("a lease that expires while a waiter waits is noticed by the remaining TTL, not the poll", async () => {
        const key = uniqueKey("expires");
        await acquireLock(a, key, { ttl: 0.3 }); // never released: a crashed holder
        const started = performance.now();
        const next = await acquireLock(b, key, {
          timeout: 5000,
          retryDelay: 4000,
          maxRetryDelay: 4000,
          jitter: 0,
        });
        const waited = performance.now() - started;
        assert.ok(waited >= 250 && waited < 2000, `waited ${waited} ms`);
        assert.equal(await next.release(), true);
        // Taken by its own attempt, it left the queue: its release frees the lock.
        const again = await acquireLock(a, key, { throwOnFail: false });
        assert.ok(again, "free after the release");
        await again.release();
      });

      it("a waiter first in line does not poll a held lock: it waits for the release", async () => {
        const key = uniqueKey("quiet");
        const lock = await acquireLock(a, key, { ttl: 10 });
        await assert.rejects(
          acquireLock(b, key, { timeout: 400, retryDelay: 4000, maxRetryDelay: 4000, jitter: 0 }),
          (e: unknown) => {
            // The first attempt, one when the subscription is up, one shortly after its
            // fairness window (in case a release that freed the lock meanwhile went
            // unheard), one at the deadline.
            assert.ok(
              e instanceof LockAcquireError && e.attempts <= 4,
              `attempts ${(e as LockAcquireError).attempts}`,
            );
            return true;
          },
        );
        await lock.release();
      });

      it("with fairnessWindow: 0, waiters get the lock in strict arrival order", async () => {
        const key = uniqueKey("fifo");
        const lock = await acquireLock(a, key, { ttl: 10 });
        const order: number[] = [];
        const waiters: Promise<void>[] = [];
        for (let i = 0; i < 5; i++) {
          const client = i % 2 ? a : b;
          waiters.push(
            acquireLock(client, key, {
              ttl: 10,
              fairnessWindow: 0,
              timeout: 10_000,
              retryDelay: 5,
              maxRetryDelay: 20,
            })
              .then(async (l) => {
                order.push(i);
                await sleep(5);
                await l.release();
              }),
          );
          await sleep(40); // arrival order is the order of the first attempts
        }
        await lock.release();
        await Promise.all(waiters);
        assert.deepEqual(order, [0, 1, 2, 3, 4]);
      });

      it("a holder that takes the lock straight back yields to a waiter within its window", async () => {
        const key = uniqueKey("window");
        let lock = await acquireLock(a, key, { ttl: 10 });
        let waited = -1;
        const started = performance.now();
        const waiter = acquireLock(b, key, {
          ttl: 10,
          timeout: 10_000,
          fairnessWindow: 50,
          // Not told that the lock is free: it waits for its turn (the handoff), which
          // it learns at its next poll.
          subscriber: false,
          retryDelay: 200,
          maxRetryDelay: 200,
          jitter: 0,
        }).then(
          (l) => {
            waited = performance.now() - started;
            return l.release();
          },
        );
        await sleep(20); // the waiter has tried once and queued
        let retakes = 0;
        while (waited < 0 && performance.now() - started < 5000) {
          await lock.release();
          const again = await acquireLock(a, key, { ttl: 10, throwOnFail: false });
          if (!again) break; // handed to the waiter
          retakes++;
          lock = again;
        }
        await waiter;
        await lock.release(); // the loop may end right after a retake
        assert.ok(retakes > 0, "within the window the holder may take the lock back");
        assert.ok(waited >= 40 && waited < 3000, `the waiter got it after ${waited} ms`);
        // With no window, the first release hands the lock over.
        lock = await acquireLock(a, key, { ttl: 10 });
        const strict = acquireLock(b, key, { ttl: 10, timeout: 10_000, fairnessWindow: 0 });
        await sleep(50);
        await lock.release();
        assert.equal(await acquireLock(a, key, { throwOnFail: false }), null);
        await (await strict).release();
      });

      it("a waiter that gave up leaves the queue, and the next waiter gets the lock", async () => {
        const key = uniqueKey("leave");
        const lock = await acquireLock(a, key, { ttl: 10 });
        const quitter = acquireLock(b, key, { timeout: 100, throwOnFail: false });
        await sleep(20);
        const patient = acquireLock(a, key, {
          timeout: 10_000,
          retryDelay: 3000,
          maxRetryDelay: 3000,
          jitter: 0,
        });
        assert.equal(await quitter, null);
        await sleep(50);
        const [next, handoffMs] = await handOff(lock, patient);
        if (subscribes) assert.ok(handoffMs < 1500, `handoff took ${handoffMs} ms`);
        await next.release();
      });

      it("a waiter that gives up gives back a lock handed to it meanwhile; as first in line, it hands a free lock to the next one at once", async () => {
        const key = uniqueKey("leave-handed");
        const store = _storeOf(a, "test");
        const waiting = (windowMs: number) => ({
          queue: { leaseMs: 3000, windowMs, address: "", queued: false },
          fencing: false,
        });
        // Handed the lock by a release (no window), unknown to it: its leave gives it back.
        let holder = await acquireLock(a, key, { ttl: 10 });
        await store.acquire(key, "handed", 10_000, waiting(0));
        await holder.release();
        assert.equal((await store.status(key, "handed")).owned, true);
        await store.leave(key, "handed");
        assert.equal((await store.status(key, "handed")).owned, false);
        // First in line, in its window when the release frees the lock: its leave hands the
        // lock to the next waiter in the same step.
        holder = await acquireLock(b, key, { ttl: 10 });
        await store.acquire(key, "first", 10_000, waiting(10_000));
        await store.acquire(key, "second", 10_000, waiting(10_000));
        await holder.release();
        await store.leave(key, "first");
        assert.equal((await store.status(key, "second")).owned, true);
        await store.release(key, "second");
        const free = await acquireLock(b, key, { throwOnFail: false });
        assert.ok(free, "free once the waiters are done");
        await free.release();
      });

      it("a waiter that polls and finds the lock handed to it gets its lease from now, as with a grant", async () => {
        const key = uniqueKey("handed-late");
        const store = _storeOf(a, "test");
        const waiting = (queued: boolean) => ({
          queue: { leaseMs: 3000, windowMs: 0, address: "", queued },
          fencing: false,
        });
        const holder = await acquireLock(a, key, { ttl: 10 });
        await store.acquire(key, "late", 300, waiting(false));
        await holder.release(); // handed to it (no window), which hears nothing
        await sleep(150); // half its lease runs out before it attempts again
        const found = await store.acquire(key, "late", 300, waiting(true));
        assert.deepEqual(found, { acquired: true, remainingMs: 300, fence: undefined });
        const { owned, remainingMs } = await store.status(key, "late");
        assert.ok(owned && remainingMs > 250, `${remainingMs} ms left`);
        assert.equal(await store.release(key, "late"), true);
      });

      it("a queue whose waiters all died lapses as a whole: the next waiter is first at once", async () => {
        const key = uniqueKey("lapsed-queue");
        const holder = await acquireLock(a, key, { ttl: 10 });
        const store = _storeOf(a, "test");
        /** A waiter's attempt at the held lock: when its window ends, or -1 when not first. */
        const dueInMs = async (token: string, leaseMs: number) => {
          const attempt = await store.acquire(key, token, 10_000, {
            queue: { leaseMs, windowMs: 50, address: "", queued: false },
            fencing: false,
          });
          assert.ok(!attempt.acquired);
          return attempt.dueInMs;
        };
        // Waiters that joined and died: the first with its whole window to run.
        assert.equal(await dueInMs("ghost", 100), 50);
        assert.equal(await dueInMs("behind", 100), -1);
        await sleep(150); // past both places: the queue lapses
        assert.equal(await dueInMs("next", 3000), 50, "first at once, not behind the dead");
        await store.leave(key, "next");
        await holder.release();
      });

      it("a crashed waiter holds the queue only until its place lapses", async () => {
        const key = uniqueKey("ghost");
        const holder = await acquireLock(a, key, { ttl: 10 });
        // A waiter that joined and then died: first in the queue, its place lapsing in
        // 100 ms (a real waiter renews it at every attempt).
        const ghost = await _storeOf(a, "test").acquire(key, "ghost", 10_000, {
          queue: { leaseMs: 100, windowMs: 0, address: "", queued: false },
          fencing: false,
        });
        assert.deepEqual(ghost, { acquired: false, remainingMs: ghost.remainingMs, dueInMs: -1 });
        assert.ok(ghost.remainingMs > 9_000, `the holder's lease: ${ghost.remainingMs}`);
        const next = acquireLock(b, key, { timeout: 5000 });
        await sleep(150);
        // The release finds the first waiter gone, and the lock goes to the next one.
        const [lock, handoffMs] = await handOff(holder, next);
        assert.ok(handoffMs < 1000, `handoff took ${handoffMs} ms`);
        assert.equal((await lock.status()).owned, true);
        await lock.release();
      });
    });
  }

  it("on Redis, a crashed waiter stays in the queue key until a release finds its place lapsed", async () => {
    const redis = await IOREDIS.connect(server.url);
    try {
      const key = uniqueKey("ghost");
      const queue = _keysOf(key)[1];
      const holder = await acquireLock(redis, key, { ttl: 10 });
      // A waiter that joined and then died: first in the queue, its place lapsing in
      // 300 ms (a real waiter renews it at every attempt).
      const ghost = await _storeOf(redis, "test").acquire(key, "ghost", 10_000, {
        queue: { leaseMs: 300, windowMs: 0, address: "", queued: false },
        fencing: false,
      });
      assert.equal(ghost.acquired, false);
      assert.equal(await admin.sendCommand(["ZRANK", queue, "ghost"]), 0);
      const next = acquireLock(redis, key, { timeout: 5000 });
      await sleep(400);
      assert.equal(await admin.sendCommand(["ZRANK", queue, "ghost"]), 0, "still queued");
      // The release finds the first waiter gone, and the lock goes to the next one.
      const [lock, handoffMs] = await handOff(holder, next);
      assert.ok(handoffMs < 1000, `handoff took ${handoffMs} ms`);
      assert.equal(await admin.sendCommand(["ZSCORE", queue, "ghost"]), null);
      await lock.release();
    } finally {
      await IOREDIS.close(redis);
    }
  });

  it("on Redis, waiters that gave up or got the lock leave no queue key that does not expire", async () => {
    const redis = await IOREDIS.connect(server.url);
    try {
      const key = uniqueKey("leave-keys");
      const lock = await acquireLock(redis, key, { ttl: 10 });
      const quitter = acquireLock(redis, key, { timeout: 100, throwOnFail: false });
      await sleep(20);
      const patient = acquireLock(redis, key, { timeout: 10_000 });
      assert.equal(await quitter, null);
      const [next] = await handOff(lock, patient);
      await next.release();
      for (const queueKey of _keysOf(key).slice(1)) {
        const ttl = Number(await admin.sendCommand(["PTTL", queueKey]));
        assert.ok(ttl === -2 || ttl > 0, `${queueKey} pttl ${ttl}`);
      }
    } finally {
      await IOREDIS.close(redis);
    }
  });

  it("one subscriber connection per client, shared by its waiters, closed after the last leaves", async () => {
    // The waiters' client is named; its duplicates (the subscriber) carry the name too.
    const redis = new Redis(server.url, { connectionName: "waiters", retryStrategy: () => null });
    const holder = await IOREDIS.connect(server.url);
    let waiters: Promise<unknown>[] = [];
    try {
      assert.equal(await namedBecome("waiters", 1), 1);
      const keys = [uniqueKey("shared"), uniqueKey("shared")];
      const held: Lock[] = [];
      for (const key of keys) held.push(await acquireLock(holder, key, { ttl: 10 }));
      waiters = [0, 1, 2, 3, 4, 5].map((i) =>
        acquireLock(redis, keys[i % 2]!, { timeout: 10_000, retryDelay: 20, maxRetryDelay: 100 })
          .then((l) => l.release())
      );
      await sleep(100);
      assert.equal(
        await namedBecome("waiters", 2),
        2,
        "six waiters on two keys share one subscriber",
      );
      assert.equal(await named("waiters"), 2, "and open no other");
      for (const lock of held) await lock.release();
      await Promise.all(waiters);
      assert.equal(await named("waiters"), 2, "it stays open for a short idle period");
      assert.equal(await namedBecome("waiters", 1), 1, "then it closes");
    } finally {
      await Promise.allSettled(waiters);
      await IOREDIS.close(redis as unknown as RedisClient);
      await IOREDIS.close(holder);
    }
  });

  it("a subscriber passed in is used and left open; subscriber: false opens none", async () => {
    const redis = new Redis(server.url, { connectionName: "given", retryStrategy: () => null });
    const sub = await IOREDIS.connect(server.url);
    const connections = () => named("given");
    try {
      const key = uniqueKey("given");
      const base = await namedBecome("given", 1);
      assert.equal(base, 1);
      let lock = await acquireLock(redis, key, { ttl: 10 });
      const waiter = acquireLock(redis, key, {
        timeout: 10_000,
        retryDelay: 3000,
        maxRetryDelay: 3000,
        jitter: 0,
        subscriber: sub,
      });
      await sleep(200);
      assert.equal(await connections(), base);
      let handoffMs: number;
      [lock, handoffMs] = await handOff(lock, waiter);
      assert.ok(handoffMs < 1500, "woken through the given subscriber");
      const poller = acquireLock(redis, key, {
        timeout: 10_000,
        retryDelay: 20,
        maxRetryDelay: 50,
        subscriber: false,
      });
      await sleep(100);
      assert.equal(await connections(), base);
      await lock.release();
      await (await poller).release();
      // Once the idle period is over, the given connection is unsubscribed and usable
      // (a connection in subscriber mode answers PING with ["pong", ""]).
      await sleep(_SUBSCRIBER_IDLE_MS);
      const ping = () => (sub as unknown as { call(c: string): Promise<unknown> }).call("PING");
      let pong = await ping();
      for (let waited = 0; pong !== "PONG" && waited < 3000; waited += 25) {
        await sleep(25);
        pong = await ping();
      }
      assert.equal(pong, "PONG");
    } finally {
      await IOREDIS.close(redis as unknown as RedisClient);
      await IOREDIS.close(sub);
    }
  });
});
