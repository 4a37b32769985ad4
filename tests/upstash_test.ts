// What is particular to @upstash/redis (an HTTP client of Upstash's REST API), on the
// unmodified client against the stand-in for that API (tests/_upstash_fixture.ts): replies
// that its JSON deserialization would change, the EVAL fallback through its errors, the
// order of commands sent together, and the errors it surfaces. The behaviour shared by
// every client runs on it too, from CLIENTS (tests/_clients.ts).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import { acquireLock, debounce, LockAcquireError, type RedisClient } from "../mod.ts";
import { _sendOf } from "../lock/_client.ts";
import { _canSubscribe } from "../lock/_subscriber.ts";
import { startRedisWithAdmin, stopRedisWithAdmin } from "./_fixtures.ts";
import type { RedisServer } from "./_redis.ts";
import type { RespClient } from "./_resp.ts";
import { startUpstashFixture, type UpstashFixture } from "./_upstash_fixture.ts";

let n = 0;
const uniqueKey = (name: string) => `test:upstash:${name}:${Date.now()}:${n++}`;

/**
 * Replies that @upstash/redis' deserialization may change: [label, the string Redis holds,
 * whether the client's own exec() changes it].
 */
const TEXTS: [string, string, boolean][] = [
  ["a string of digits", "123", true],
  ["digits with a leading zero", "0042", false],
  ["a JSON array", '["123"]', true],
  ["a JSON object", '{"a":1}', true],
  ["the word null", "null", true],
  ["the word true", "true", true],
  ["a JSON string", '"q"', true],
];

describe("@upstash/redis", () => {
  let server: RedisServer;
  let admin: RespClient;
  let fixture: UpstashFixture;
  let a: Redis;
  let b: Redis;
  const connect = () =>
    new Redis({ url: fixture.url, token: fixture.token, retry: { retries: 1, backoff: () => 10 } });
  const client = (redis: Redis) => redis as unknown as RedisClient;

  before(async () => {
    ({ server, admin } = await startRedisWithAdmin());
    fixture = await startUpstashFixture(server.url);
    [a, b] = [connect(), connect()];
  });
  after(async () => {
    await fixture.close();
    await stopRedisWithAdmin(server, admin);
  });

  for (const [label, text, changed] of TEXTS) {
    it(
      `a reply of ${label} (${text}) reaches baton as that string${
        changed ? ", where the client's own exec() deserializes it" : ""
      }`,
      async () => {
        const key = uniqueKey("reply");
        await admin.sendCommand(["SET", key, text]);
        const send = _sendOf(client(a), "test");
        assert.equal(await send(["GET", key]), text);
        assert.deepEqual(await send(["MGET", key, key]), [text, text]);
        // Why baton does not use exec(): what comes back is not always the string Redis holds.
        if (changed) assert.notEqual(await a.exec(["GET", key]), text);
      },
    );
  }

  it("debounce runs the burst's last call with its arguments as given, also when another instance reads them back from JSON (which the client's deserialization would turn into an array)", async () => {
    const bursts: unknown[][] = [
      ["123"],
      [{ a: 1 }],
      ["null"],
      [123, "123", "0042", '"q"', "true", true, null, [1, "2"], { "1": "b", a: "1" }],
    ];
    for (const args of bursts) {
      const key = uniqueKey("debounce-args");
      const controller = new AbortController();
      const ranA: unknown[][] = [];
      const ranB: unknown[][] = [];
      const options = { wait: 300, signal: controller.signal };
      const A = debounce(client(a), key, (...x: unknown[]) => ranA.push(x), options);
      const B = debounce(client(b), key, (...x: unknown[]) => ranB.push(x), options);
      try {
        const fromA = A(...args);
        for (let i = 0; await admin.sendCommand(["HGET", key, "state"]) !== "pending"; i++) {
          assert.ok(i < 100, "the call was not recorded");
          await new Promise((r) => setTimeout(r, 10));
        }
        const flushed = await B.flush();
        assert.ok(flushed?.ran && flushed.ok, JSON.stringify(flushed));
        assert.deepEqual(ranB, [args]);
        assert.deepEqual(await fromA, { ran: false, reason: "ran-elsewhere" });
        assert.deepEqual(ranA, []);
      } finally {
        controller.abort();
      }
    }
  });

  it("commands reach Redis in the order they were sent, also when a request is slow: of 20 debounced calls (in one tick, or a tick apart) whose first is held up 100 ms on its way, the last runs", async () => {
    // A stand-in of its own, which holds back every request that records the call "0".
    const slow = await startUpstashFixture(server.url, {
      hold: (commands) =>
        commands.some((c) => c.includes('["0"]'))
          ? new Promise((r) => setTimeout(r, 100))
          : undefined,
    });
    const redis = new Redis({ url: slow.url, token: slow.token, retry: false });
    try {
      for (const spacing of ["one tick", "a tick apart"]) {
        const key = uniqueKey("order");
        const runs: unknown[][] = [];
        const d = debounce(client(redis), key, (...x: unknown[]) => runs.push(x), { wait: 150 });
        const calls = [];
        for (let i = 0; i < 20; i++) {
          calls.push(d(String(i)));
          if (spacing === "a tick apart") await new Promise((r) => setTimeout(r, 0));
        }
        const outcomes = await Promise.all(calls);
        assert.deepEqual(runs, [["19"]], spacing);
        assert.deepEqual(outcomes.at(-1), { ran: true, ok: true, value: 1 }, spacing);
      }
    } finally {
      await slow.close();
    }
  });

  it("a response body with neither result nor error is a RedisReplyError, never a nil reply (a lock held elsewhere)", async () => {
    const requester = { request: () => Promise.resolve({}) };
    const empty = { evalsha() {}, scriptLoad() {}, client: requester };
    await assert.rejects(acquireLock(empty as unknown as RedisClient, uniqueKey("empty")), {
      name: "RedisReplyError",
      message:
        /^Redis client gave an unexpected reply to SET: .*, expected an HTTP body with a "result"$/,
    });
  });

  it("commands sent while a request is in flight go together in one /pipeline request, each with its own reply", async () => {
    const keys = Array.from({ length: 30 }, (_, i) => uniqueKey(`batch-${i}`));
    const before = fixture.requests;
    const locks = await Promise.all(keys.map((key) => acquireLock(client(a), key, { ttl: 5 })));
    const acquireRequests = fixture.requests - before;
    assert.ok(acquireRequests <= 2, `${acquireRequests} requests for 30 acquires`);
    for (const [i, lock] of locks.entries()) {
      assert.equal(await admin.sendCommand(["GET", keys[i]!]), lock.token);
    }
    const releases = await Promise.all(locks.map((lock) => lock.release()));
    assert.deepEqual(releases, keys.map(() => true));
    assert.equal(await admin.sendCommand(["EXISTS", ...keys]), 0);
  });

  it("after SCRIPT FLUSH, scripts sent alone and together fall back to EVAL on the NOSCRIPT the client reports", async () => {
    const keys = [uniqueKey("noscript-1"), uniqueKey("noscript-2"), uniqueKey("noscript-3")];
    const locks = await Promise.all(keys.map((key) => acquireLock(client(a), key, { ttl: 5 })));
    await admin.sendCommand(["SCRIPT", "FLUSH"]);
    assert.equal(await locks[0]!.release(), true); // alone: status 400, {"error": "NOSCRIPT ..."}
    await admin.sendCommand(["SCRIPT", "FLUSH"]);
    // Together: one /pipeline request, whose replies are {"error": "NOSCRIPT ..."} each.
    assert.deepEqual(await Promise.all(locks.slice(1).map((l) => l.release())), [true, true]);
    assert.equal(await admin.sendCommand(["EXISTS", ...keys]), 0);
  });

  it("a fence, sent by the script as a string of digits, is the fence stored in Redis", async () => {
    const key = uniqueKey("fence");
    const first = await acquireLock(client(a), key, { ttl: 5, fencing: true });
    const stored = await admin.sendCommand(["GET", `{${key}}:baton:fence`]);
    assert.equal(typeof first.fence, "bigint");
    assert.equal(String(first.fence), stored);
    await first.release();
    const second = await acquireLock(client(b), key, { ttl: 5, fencing: true });
    assert.ok(second.fence! > first.fence!, `${second.fence} after ${first.fence}`);
    await second.release();
  });

  it("cannot subscribe: its waiters poll, and it is refused as a subscriber", async () => {
    assert.equal(_canSubscribe(a), false);
    const key = uniqueKey("subscriber");
    for (
      const call of [
        () => acquireLock(client(a), key, { subscriber: client(b) }),
        () => debounce(client(a), key, () => {}, { wait: 10, subscriber: client(b) }),
      ]
    ) {
      await assert.rejects(async () => await call(), {
        name: "TypeError",
        message:
          /must be a Redis client or false: current value is an @upstash\/redis client, which cannot subscribe: leave "subscriber" out \(its waiters poll\)$/,
      });
    }
    const held = await acquireLock(client(a), key, { ttl: 5 });
    const waiter = acquireLock(client(b), key, { timeout: 3000, retryDelay: 20 });
    await new Promise((r) => setTimeout(r, 100));
    await held.release();
    const next = await waiter;
    assert.equal(await admin.sendCommand(["GET", key]), next.token);
    await next.release();
  });

  it("errors are the client's, never a lock held elsewhere: a wrong token is Unauthorized, a wrong type is WRONGTYPE", async () => {
    const key = uniqueKey("errors");
    const stranger = new Redis({ url: fixture.url, token: "not-the-token", retry: false });
    await assert.rejects(acquireLock(client(stranger), key), (error: unknown) => {
      assert.ok(!(error instanceof LockAcquireError));
      assert.match(String(error), /Unauthorized/);
      return true;
    });
    await admin.sendCommand(["HSET", key, "field", "value"]);
    await assert.rejects(acquireLock(client(a), key, { fencing: true }), /WRONGTYPE/);
    await admin.sendCommand(["DEL", key]);
  });
});
