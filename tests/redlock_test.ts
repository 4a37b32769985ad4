// Redlock: acquireLock and withLock over arrays of clients of independent redis-server
// processes (3 and 5), with servers SIGKILLed, slow, restarted, and contended from Deno
// and Bun processes at once.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { createInterface } from "node:readline";
import { Redis } from "ioredis";
import {
  acquireLock,
  LockAcquireError,
  LockLostError,
  QuorumError,
  type RedisClient,
  RedisUnavailableError,
  withLock,
} from "../mod.ts";
import { _driftMs, _SERVER_ANSWER_MS, _STRAGGLER_MS } from "../lock/_redlock_store.ts";
import { type ClientKind, CLIENTS, IOREDIS, isBun, MINIMAL, NODE_REDIS } from "./_clients.ts";
import { assertNoConnections, assertNoLeaks } from "./_leaks.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { RespClient } from "./_resp.ts";
import {
  connectReconnecting,
  contend,
  counterKeys,
  type RedlockWorkerConfig,
  type Tally,
} from "./_redlock_worker.ts";
import { aborted as abortedWithin } from "./_fixtures.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const uniqueKey = (name: string) => `redlock:${name}:${Date.now()}:${n++}`;

/** Prints a measured time to stderr, to be quoted. */
function report(what: string, ms: number): void {
  process.stderr.write(`  [redlock] ${what}: ${Math.round(ms)} ms\n`);
}

/** Resolves once `done()` resolves true, checking every 10 ms; rejects after `timeoutMs`. */
async function until(done: () => Promise<boolean> | boolean, timeoutMs: number, what: string) {
  const deadline = performance.now() + timeoutMs;
  while (!await done()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** The error `promise` rejects with, and how long that took. */
async function rejectionOf(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const startedAt = performance.now();
  try {
    const value = await promise;
    assert.fail(`resolved to ${String(value)}`);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    return { error, ms: performance.now() - startedAt };
  }
}

/** Throwaway redis-server processes with an admin connection each; any may be killed. */
class Servers {
  readonly servers: RedisServer[];
  readonly admins: (RespClient | undefined)[];

  private constructor(servers: RedisServer[], admins: RespClient[]) {
    this.servers = servers;
    this.admins = admins;
  }

  static async start(count: number): Promise<Servers> {
    const servers = await Promise.all(
      Array.from({ length: count }, () => startRedis({ useEnv: false })),
    );
    return new Servers(servers, await Promise.all(servers.map((s) => RespClient.connect(s.url))));
  }

  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /** SIGKILLs server `i`. */
  async kill(i: number): Promise<void> {
    await this.admins[i]?.close();
    this.admins[i] = undefined;
    await this.servers[i]!.stop();
  }

  /** Starts server `i` again on its port, empty. */
  async restart(i: number): Promise<void> {
    this.servers[i] = await startRedis({ useEnv: false, port: this.servers[i]!.port });
    this.admins[i] = await RespClient.connect(this.servers[i]!.url);
  }

  /** Sends `args` to every live server; null for a killed one. */
  each(args: string[]): Promise<unknown[]> {
    return Promise.all(this.admins.map((admin) => admin ? admin.sendCommand(args) : null));
  }

  /** `GET key` on every server (null for a killed one). */
  get(key: string): Promise<unknown[]> {
    return this.each(["GET", key]);
  }

  /** Resets the command counts of every live server. */
  async resetStats(): Promise<void> {
    await this.each(["CONFIG", "RESETSTAT"]);
  }

  /** The calls of SET, EVALSHA and EVAL per server since the reset. */
  async lockCommands(): Promise<Record<string, number>[]> {
    const infos = await this.each(["INFO", "commandstats"]);
    return infos.map((info) => {
      const calls: Record<string, number> = {};
      for (const [, name, count] of String(info ?? "").matchAll(/cmdstat_(\w+):calls=(\d+)/g)) {
        // Top-level commands only: those a script calls count too.
        if (["set", "evalsha", "eval"].includes(name!)) {
          calls[name!] = Number(count);
        }
      }
      return calls;
    });
  }

  /** Checks no connection but the admins' is left, closes the admins, stops the servers. */
  async stop(): Promise<void> {
    try {
      for (const admin of this.admins) if (admin) await assertNoConnections(admin);
    } finally {
      for (const admin of this.admins) await admin?.close();
      await Promise.all(this.servers.map((s) => s.stop()));
    }
  }
}

/** One client of `kind` per url. */
function connectAll(kind: ClientKind, urls: string[]): Promise<RedisClient[]> {
  return Promise.all(urls.map((url) => kind.connect(url)));
}

/** Closes clients of `kind`; those of killed servers too. */
async function closeAll(kind: ClientKind, clients: RedisClient[]): Promise<void> {
  for (const client of clients) await kind.close(client).catch(() => {});
}

/** An ioredis client with default options: it reconnects, and queues commands meanwhile. */
const QUEUEING: ClientKind = {
  name: "ioredis (default options: reconnects, queues commands meanwhile)",
  async connect(url) {
    const client = new Redis(url);
    client.on("error", () => {});
    await client.ping();
    return client as unknown as RedisClient;
  },
  close(client) {
    (client as unknown as Redis).disconnect();
    return Promise.resolve();
  },
};

/** A client that sends each command `delayMs` late (a slow link), through `client`. */
function delayed(client: RespClient, delayMs: number): RedisClient {
  return {
    sendCommand: async (args) => {
      await sleep(delayMs);
      return await client.sendCommand(args);
    },
  };
}

/** The lease each server holds for a lock of `ttlMs`: the ttl plus the drift. */
const leaseOf = (ttlMs: number) => ttlMs + _driftMs(ttlMs);

/**
 * Takes, inspects, extends and releases a lock over `clients`, checking every server
 * (`live`: the indexes of those up) after each step.
 */
async function takeExtendRelease(servers: Servers, clients: RedisClient[], live: number[]) {
  const key = uniqueKey("basics");
  const startedAt = performance.now();
  // Long leases, so that the drift added on the servers (1% of the ttl) shows in PTTL.
  const lock = await acquireLock(clients, key, { ttl: "10m" });
  report(
    `acquire over ${live.length} of ${clients.length} live servers`,
    performance.now() - startedAt,
  );
  assert.equal(lock.isAcquired(), true);
  assert.equal(lock.fence, undefined);
  const held = async (ttlMs: number) => {
    // The call returns once a majority answered; the others follow at once.
    const settled = async () => {
      const [values, pttls] = [await servers.get(key), await servers.each(["PTTL", key])];
      return live.every((i) => values[i] === lock.token && Number(pttls[i]) > ttlMs);
    };
    await until(settled, 1000, "held on all").catch(() => {}); // asserted below
    const values = await servers.get(key);
    const pttls = await servers.each(["PTTL", key]);
    for (const i of live) {
      assert.equal(values[i], lock.token, `redis[${i}] holds the token`);
      const pttl = pttls[i] as number;
      assert.ok(pttl <= leaseOf(ttlMs) && pttl > leaseOf(ttlMs) - 2000, `redis[${i}] pttl ${pttl}`);
    }
  };
  await held(600_000);
  const status = await lock.status();
  assert.equal(status.owned, true);
  assert.ok(status.remainingMs <= 600_000 && status.remainingMs > 598_000, `${status.remainingMs}`);
  // Held elsewhere: a LockAcquireError, never a QuorumError.
  const { error } = await rejectionOf(acquireLock(clients, key));
  assert.ok(error instanceof LockAcquireError, `${error}`);
  assert.ok(!(error instanceof RedisUnavailableError));
  assert.equal(await lock.extend("20m"), true);
  await held(1_200_000);
  assert.equal(await lock.release(), true);
  assert.equal(lock.isAcquired(), false);
  // The servers beyond the majority release right after.
  await until(async () => (await servers.get(key)).every((v) => v === null), 1000, "released");
  assert.equal(await lock.release(), false);
}

describe("Redlock", () => {
  after(() => assertNoLeaks());

  describe("over 3 servers, all up", () => {
    let servers: Servers;
    before(async () => servers = await Servers.start(3));
    after(() => servers.stop());

    for (const kind of CLIENTS) {
      it(`${kind.name}: acquire takes every server with one token and a lease of ttl plus the drift; status, extend and release act on all`, async () => {
        const clients = await connectAll(kind, servers.urls);
        try {
          await takeExtendRelease(servers, clients, [0, 1, 2]);
        } finally {
          await closeAll(kind, clients);
        }
      });
    }

    it("clients of different kinds may be mixed", async () => {
      const kinds = isBun ? [IOREDIS, NODE_REDIS, CLIENTS.at(-1)!] : [IOREDIS, NODE_REDIS, MINIMAL];
      const clients = await Promise.all(kinds.map((kind, i) => kind.connect(servers.urls[i]!)));
      try {
        await takeExtendRelease(servers, clients, [0, 1, 2]);
        assert.equal(await withLock(clients, uniqueKey("mixed"), () => "done"), "done");
      } finally {
        for (const [i, kind] of kinds.entries()) await kind.close(clients[i]!);
      }
    });

    it("one round trip per server: a take is one SET NX PX each, release, extend and status one EVALSHA each", async () => {
      const clients = await connectAll(MINIMAL, servers.urls);
      try {
        // Loads the scripts, so that what follows is counted without NOSCRIPT retries.
        const warmUp = await acquireLock(clients, uniqueKey("warm-up"));
        await warmUp.status();
        await warmUp.extend();
        await warmUp.release();
        await sleep(50);
        const counted = async (step: () => Promise<unknown>, expected: Record<string, number>) => {
          await servers.resetStats();
          await step();
          await sleep(50); // the servers beyond the majority answer right after
          assert.deepEqual(await servers.lockCommands(), [expected, expected, expected]);
        };
        const key = uniqueKey("round-trips");
        let lock = await acquireLock(clients, key);
        await lock.release();
        await counted(async () => lock = await acquireLock(clients, key), { set: 1 });
        await counted(() => lock.status(), { evalsha: 1 });
        await counted(() => lock.extend(), { evalsha: 1 });
        await counted(() => lock.release(), { evalsha: 1 });
      } finally {
        await closeAll(MINIMAL, clients);
      }
    });

    it("a lock held by another owner is a LockAcquireError; waiting with timeout takes it once released", async () => {
      const clients = await connectAll(IOREDIS, servers.urls);
      try {
        const key = uniqueKey("held");
        const holder = await acquireLock(clients, key, { ttl: 10 });
        const { error, ms } = await rejectionOf(acquireLock(clients, key, { timeout: 200 }));
        assert.ok(error instanceof LockAcquireError && !(error instanceof QuorumError), `${error}`);
        assert.ok(error.attempts > 1, `attempts ${error.attempts}`);
        assert.ok(ms >= 190 && ms < 1500, `gave up after ${ms} ms`);
        assert.equal(await acquireLock(clients, key, { throwOnFail: false }), null);
        const waiting = acquireLock(clients, key, { timeout: 5000 });
        await sleep(100);
        const releasedAt = performance.now();
        assert.equal(await holder.release(), true);
        const next = await waiting;
        report(
          "waiter polling with backoff got the lock after release",
          performance.now() - releasedAt,
        );
        assert.deepEqual(await servers.get(key), [next.token, next.token, next.token]);
        await next.release();
      } finally {
        await closeAll(IOREDIS, clients);
      }
    });

    it("a key held by someone else on one server: the lock is taken on the other two", async () => {
      const clients = await connectAll(IOREDIS, servers.urls);
      try {
        const key = uniqueKey("one-taken");
        await servers.admins[1]!.sendCommand(["SET", key, "someone", "PX", "10000"]);
        const lock = await acquireLock(clients, key);
        assert.deepEqual(await servers.get(key), [lock.token, "someone", lock.token]);
        assert.equal((await lock.status()).owned, true);
        assert.equal(await lock.extend(), true);
        assert.equal(await lock.release(), true);
        await until(async () => (await servers.get(key))[2] === null, 1000, "released");
        assert.deepEqual(await servers.get(key), [null, "someone", null]);
      } finally {
        await closeAll(IOREDIS, clients);
      }
    });

    it("keys held by someone else on two servers: LockAcquireError, and the third server's grant is given back at once", async () => {
      const clients = await connectAll(IOREDIS, servers.urls);
      try {
        const key = uniqueKey("two-taken");
        for (const i of [0, 2]) {
          await servers.admins[i]!.sendCommand(["SET", key, "someone", "PX", "10000"]);
        }
        await servers.resetStats();
        const { error } = await rejectionOf(acquireLock(clients, key, { ttl: 10 }));
        const failedAt = performance.now();
        assert.ok(error instanceof LockAcquireError && !(error instanceof QuorumError), `${error}`);
        await until(async () => (await servers.get(key))[1] === null, 100, "given back");
        report("partial grant given back after the failed take", performance.now() - failedAt);
        // Each server was asked once; the one that granted, and only that one, released.
        assert.deepEqual(await servers.lockCommands(), [{ set: 1 }, { set: 1, evalsha: 1 }, {
          set: 1,
        }]);
        assert.deepEqual(await servers.get(key), ["someone", null, "someone"]);
      } finally {
        await closeAll(IOREDIS, clients);
      }
    });

    it("release is true while a majority held the lock; false (withLock: LockLostError) once a majority lost it", async () => {
      const clients = await connectAll(IOREDIS, servers.urls);
      try {
        const key = uniqueKey("release");
        const one = await acquireLock(clients, key);
        await servers.admins[0]!.sendCommand(["DEL", key]);
        assert.equal(await one.release(), true);
        const two = await acquireLock(clients, key);
        await servers.admins[0]!.sendCommand(["DEL", key]);
        await servers.admins[2]!.sendCommand(["SET", key, "someone", "PX", "10000"]);
        assert.equal(await two.release(), false);
        await until(async () => (await servers.get(key))[1] === null, 1000, "released");
        await servers.admins[2]!.sendCommand(["DEL", key]);
        const { error } = await rejectionOf(withLock(clients, key, async () => {
          await servers.admins[1]!.sendCommand(["DEL", key]);
          await servers.admins[2]!.sendCommand(["DEL", key]);
          return 42;
        }));
        assert.ok(error instanceof LockLostError, `${error}`);
        assert.equal(error.value, 42);
      } finally {
        await closeAll(IOREDIS, clients);
      }
    });

    it("extend finding a majority lost resolves false, aborts the signal with LockLostError, and gives back the server that still held it", async () => {
      const clients = await connectAll(IOREDIS, servers.urls);
      try {
        const key = uniqueKey("extend-lost");
        // Long leases, so that the drift added on the servers (1% of the ttl) shows in PTTL.
        const lock = await acquireLock(clients, key, { ttl: "10m" });
        await servers.admins[0]!.sendCommand(["DEL", key]);
        assert.equal(await lock.extend(), true, "a majority still holds it");
        await servers.admins[1]!.sendCommand(["SET", key, "someone", "PX", "10000"]);
        assert.equal(await lock.extend(), false);
        assert.equal(lock.signal.aborted, true);
        assert.ok(lock.signal.reason instanceof LockLostError);
        assert.equal(lock.isAcquired(), false);
        await until(async () => (await servers.get(key))[2] === null, 1000, "given back");
        assert.deepEqual(await servers.get(key), [null, "someone", null]);
      } finally {
        await closeAll(IOREDIS, clients);
      }
    });

    it("status reports owned while a majority owns it, with the majority's shortest lease less the drift", async () => {
      const clients = await connectAll(IOREDIS, servers.urls);
      try {
        const key = uniqueKey("status");
        const lock = await acquireLock(clients, key, { ttl: 30 });
        await servers.admins[0]!.sendCommand(["PEXPIRE", key, "5000"]);
        const status = await lock.status();
        assert.equal(status.owned, true);
        // Whichever two answer first, the shortest of them: at most the 30 s lease's.
        assert.ok(
          status.remainingMs <= 30_000 && status.remainingMs > 4_000,
          `${status.remainingMs}`,
        );
        await servers.admins[1]!.sendCommand(["PEXPIRE", key, "8000"]);
        const shorter = await lock.status();
        assert.ok(
          shorter.remainingMs <= 8_000 - _driftMs(8_000) && shorter.remainingMs > 4_000,
          `${shorter.remainingMs}`,
        );
        await servers.admins[2]!.sendCommand(["DEL", key]);
        const majority = await lock.status();
        assert.ok(
          majority.remainingMs <= 5_000 - _driftMs(5_000) && majority.remainingMs > 3_000,
          `${majority.remainingMs}`,
        );
        await servers.admins[1]!.sendCommand(["DEL", key]);
        assert.deepEqual(await lock.status(), { owned: false, remainingMs: 0 });
        assert.equal(await lock.release(), false);
      } finally {
        await closeAll(IOREDIS, clients);
      }
    });

    it("a majority that answers too late counts as failed (QuorumError), and its grants are given back when they land", async () => {
      const raw = await Promise.all(servers.urls.map((url) => RespClient.connect(url)));
      try {
        for (
          const { ttl, delayMs, boundMs } of [
            { ttl: 30, delayMs: 700, boundMs: _SERVER_ANSWER_MS },
            { ttl: 0.2, delayMs: 150, boundMs: 100 }, // half the lease
          ]
        ) {
          const clients = [raw[0]!, delayed(raw[1]!, delayMs), delayed(raw[2]!, delayMs)];
          const key = uniqueKey("slow");
          const { error, ms } = await rejectionOf(
            acquireLock(clients as RedisClient[], key, { ttl }),
          );
          assert.ok(error instanceof QuorumError, `${error}`);
          assert.equal(error.answered, 1);
          assert.equal(error.needed, 2);
          assert.equal(error.key, key);
          assert.equal(error.command, "SET");
          assert.equal(error.errors[0], undefined);
          for (const i of [1, 2]) {
            assert.ok(error.errors[i] instanceof RedisUnavailableError, `${error.errors[i]}`);
            assert.match(String(error.errors[i]), new RegExp(`redis\\[${i}\\] did not answer SET`));
          }
          assert.match(
            error.message,
            /2 of 3 Redis servers failed, and a decision needs 2 answers/,
          );
          assert.ok(ms >= boundMs - 5 && ms < boundMs + 300, `QuorumError after ${ms} ms`);
          // The quick server's grant is given back at once.
          await until(async () => (await servers.get(key))[0] === null, 100, "given back");
          // The slow grants land (the release that follows is as slow), then go.
          await sleep(delayMs - ms + 50);
          const late = await servers.get(key);
          assert.equal(late[1], late[2]);
          assert.ok(typeof late[1] === "string", "the late grants landed");
          await until(
            async () => (await servers.get(key)).every((v) => v === null),
            delayMs + 500,
            "late grants given back",
          );
        }
      } finally {
        for (const client of raw) await client.close();
      }
    });

    it("a split vote waits for a slow third server only 20 ms: a LockAcquireError, and both grants given back", async () => {
      const raw = await Promise.all(servers.urls.map((url) => RespClient.connect(url)));
      try {
        const key = uniqueKey("straggler");
        await servers.admins[0]!.sendCommand(["SET", key, "someone", "PX", "10000"]);
        const clients = [raw[0]!, raw[1]!, delayed(raw[2]!, 300)] as RedisClient[];
        const { error, ms } = await rejectionOf(acquireLock(clients, key));
        report("split vote with a 300 ms straggler: LockAcquireError", ms);
        assert.ok(error instanceof LockAcquireError, `${error}`);
        assert.ok(ms >= _STRAGGLER_MS - 5 && ms < 250, `${ms} ms`);
        await until(async () => (await servers.get(key))[1] === null, 100, "given back");
        // The straggler's grant lands at 300 ms, and is given back (as slowly).
        await until(async () => typeof (await servers.get(key))[2] === "string", 500, "landed");
        await until(async () => (await servers.get(key))[2] === null, 1000, "given back");
        assert.deepEqual(await servers.get(key), ["someone", null, null]);
      } finally {
        for (const client of raw) await client.close();
      }
    });

    it("the array's store is made once, and again when its elements change", async () => {
      const clients = await connectAll(IOREDIS, servers.urls);
      try {
        const key = uniqueKey("cache");
        const array = [...clients];
        await (await acquireLock(array, key)).release();
        array[1] = {} as RedisClient;
        await assert.rejects(acquireLock(array, key), /"redis\[1\]" must be a Redis client/);
        array[1] = clients[1]!;
        await (await acquireLock(array, key)).release();
      } finally {
        await closeAll(IOREDIS, clients);
      }
    });

    it("bad arrays and fencing: true are rejected, naming the index or the option, before anything is sent", async () => {
      const clients = await connectAll(IOREDIS, servers.urls);
      const [a, b, c] = clients as [RedisClient, RedisClient, RedisClient];
      try {
        class NotAnInstance {
          call() {}
        }
        const rows: [string, unknown[], ErrorConstructor, RegExp][] = [
          ["empty", [], RangeError, /"redis" must hold at least 3 clients.*current length is 0/],
          ["one client", [a], RangeError, /at least 3 clients.*current length is 1/],
          ["two clients", [a, b], RangeError, /at least 3 clients.*current length is 2/],
          ["an object", [a, {}, c], TypeError, /"redis\[1\]" must be a Redis client.*an object/],
          ["null", [a, b, null], TypeError, /"redis\[2\]" must be a Redis client.*null/],
          ["a hole", [a, , c], TypeError, /"redis\[1\]" must be a Redis client.*undefined/],
          ["an array", [a, [b, c], c], TypeError, /"redis\[1\]" must be.*an array/],
          ["a class", [NotAnInstance, b, c], TypeError, /"redis\[0\]".*the class NotAnInstance/],
          [
            "a client twice",
            [a, b, a],
            TypeError,
            /"redis\[2\]" must be a client of another Redis server than "redis\[0\]"/,
          ],
        ];
        await servers.resetStats();
        for (const [name, array, type, message] of rows) {
          const redis = array as RedisClient[];
          for (const call of [() => acquireLock(redis, "k"), () => withLock(redis, "k", () => 1)]) {
            const { error } = await rejectionOf(call());
            assert.ok(error instanceof type, `${name}: ${error}`);
            assert.match((error as Error).message, message, name);
            assert.match((error as Error).message, /^Cannot (acquire lock|run with lock) as /);
          }
        }
        const fenced = [
          () => acquireLock(clients, "k", { fencing: true }),
          () => withLock(clients, "k", () => 1, { fencing: true }),
        ];
        for (const call of fenced) {
          const { error } = await rejectionOf(call());
          assert.ok(error instanceof TypeError, `${error}`);
          assert.match(
            error.message,
            /"fencing" is true, but 3 Redis servers \(Redlock\) cannot issue fencing tokens: each server counts fences on its own/,
          );
        }
        assert.deepEqual(await servers.lockCommands(), [{}, {}, {}], "nothing was sent");
      } finally {
        await closeAll(IOREDIS, clients);
      }
    });
  });

  describe("with servers down", () => {
    it("1 of 3 SIGKILLed: acquire, status, extend and release work on the other two, promptly", async () => {
      const servers = await Servers.start(3);
      const clients = await connectAll(IOREDIS, servers.urls);
      try {
        await servers.kill(1);
        await takeExtendRelease(servers, clients, [0, 2]);
        const startedAt = performance.now();
        assert.equal(await withLock(clients, uniqueKey("one-down"), () => "done"), "done");
        assert.ok(performance.now() - startedAt < 1000);
      } finally {
        await closeAll(IOREDIS, clients);
        await servers.stop();
      }
    });

    it("2 of 5 SIGKILLed: acquire, status, extend and release work on the other three", async () => {
      const servers = await Servers.start(5);
      const clients = await connectAll(IOREDIS, servers.urls);
      try {
        await takeExtendRelease(servers, clients, [0, 1, 2, 3, 4]);
        await servers.kill(1);
        await servers.kill(3);
        await takeExtendRelease(servers, clients, [0, 2, 4]);
      } finally {
        await closeAll(IOREDIS, clients);
        await servers.stop();
      }
    });

    for (const kind of CLIENTS) {
      it(`${kind.name}, 2 of 3 SIGKILLed: a QuorumError within 2 s naming the counts and the errors, and the live server's grant given back`, async () => {
        const servers = await Servers.start(3);
        const clients = await connectAll(kind, servers.urls);
        try {
          await servers.kill(0);
          await servers.kill(2);
          await sleep(50);
          const key = uniqueKey("majority-down");
          const { error, ms } = await rejectionOf(acquireLock(clients, key));
          report(`${kind.name}, 2 of 3 down: QuorumError`, ms);
          assert.ok(ms < 2000, `${ms} ms`);
          assert.ok(error instanceof QuorumError, `${error}`);
          assert.ok(error instanceof RedisUnavailableError);
          assert.equal(error.name, "QuorumError");
          assert.equal(error.key, key);
          // The live server may not have answered yet: the quorum was out of reach before.
          assert.ok(error.answered <= 1, `answered ${error.answered}`);
          assert.equal(error.needed, 2);
          assert.equal(error.errors.length, 3);
          assert.equal(error.errors[1], undefined);
          assert.ok(error.errors[0] instanceof Error && error.errors[2] instanceof Error);
          assert.match(
            error.message,
            /^Cannot acquire lock "[^"]+": 2 of 3 Redis servers failed, and a decision needs 2 answers \(redis\[0\]/,
          );
          await until(async () => (await servers.get(key))[1] === null, 200, "given back");
          // withLock: the same error, fn not run.
          let ran = false;
          await assert.rejects(withLock(clients, key, () => ran = true), QuorumError);
          assert.equal(ran, false);
        } finally {
          await closeAll(kind, clients);
          await servers.stop();
        }
      });
    }

    it("3 of 5 SIGKILLed: a QuorumError naming the 3 failed servers, 3 answers needed", async () => {
      const servers = await Servers.start(5);
      const clients = await connectAll(IOREDIS, servers.urls);
      try {
        for (const i of [0, 2, 3]) await servers.kill(i);
        const { error, ms } = await rejectionOf(acquireLock(clients, uniqueKey("5-down")));
        assert.ok(ms < 2000, `${ms} ms`);
        assert.ok(error instanceof QuorumError, `${error}`);
        assert.ok(error.answered <= 2, `answered ${error.answered}`);
        assert.equal(error.needed, 3);
        assert.match(error.message, /3 of 5 Redis servers failed, and a decision needs 3 answers/);
        assert.deepEqual(error.errors.map((e) => e !== undefined), [
          true,
          false,
          true,
          true,
          false,
        ]);
      } finally {
        await closeAll(IOREDIS, clients);
        await servers.stop();
      }
    });

    it("clients that queue commands while reconnecting, 2 of 3 down: a single attempt fails with QuorumError after 500 ms, a wait ends by its timeout; nothing is left held", async () => {
      const servers = await Servers.start(3);
      const clients = await connectAll(QUEUEING, servers.urls);
      try {
        await servers.kill(0);
        await servers.kill(2);
        const key = uniqueKey("queueing");
        const single = await rejectionOf(acquireLock(clients, key));
        report("queueing clients, single attempt: QuorumError", single.ms);
        assert.ok(single.error instanceof QuorumError, `${single.error}`);
        assert.equal(single.error.answered, 1);
        assert.match(single.error.message, /redis\[0\] did not answer SET within 500 ms/);
        assert.ok(single.ms >= _SERVER_ANSWER_MS - 5 && single.ms < 1500, `${single.ms} ms`);
        const waited = await rejectionOf(acquireLock(clients, key, { timeout: 300 }));
        report("queueing clients, timeout 300 ms", waited.ms);
        assert.ok(waited.error instanceof RedisUnavailableError, `${waited.error}`);
        assert.ok(waited.ms >= 290 && waited.ms < 1000, `${waited.ms} ms`);
        await until(async () => (await servers.get(key))[1] === null, 1000, "given back");
        // Once the servers are back, the queued SETs land late and are given back.
        await servers.restart(0);
        await servers.restart(2);
        await until(
          async () =>
            (await Promise.all(clients.map((c) => (c as unknown as Redis).ping()))).length === 3,
          5000,
          "reconnected",
        );
        await sleep(100);
        assert.deepEqual(await servers.get(key), [null, null, null]);
        await (await acquireLock(clients, key)).release();
      } finally {
        await closeAll(QUEUEING, clients);
        await servers.stop();
      }
    });

    it("the watchdog keeps a lock whose server dies under fn, and loses it (LockLostError) when a majority dies", async () => {
      const servers = await Servers.start(3);
      const clients = await connectAll(IOREDIS, servers.urls);
      try {
        const key = uniqueKey("watchdog");
        let aborted = false;
        const value = await withLock(clients, key, async ({ signal }) => {
          await sleep(200);
          await servers.kill(2);
          await sleep(1000); // more than three leases of 0.3 s
          const values = await servers.get(key);
          assert.equal(values[0], values[1]);
          assert.ok(typeof values[0] === "string", "renewed on the live servers");
          aborted = signal.aborted;
          return "done";
        }, { ttl: 0.3 });
        assert.equal(value, "done");
        assert.equal(aborted, false);
        const lost = withLock(clients, uniqueKey("watchdog-lost"), async ({ signal }) => {
          await servers.kill(1);
          const startedAt = performance.now();
          const reason = await abortedWithin(signal, 3000);
          report("2 of 3 down: the watchdog declared the lock lost", performance.now() - startedAt);
          assert.ok(reason instanceof LockLostError, `signal: ${reason}`);
          assert.ok(performance.now() - startedAt < 300 + 400);
          return "late";
        }, { ttl: 0.3 });
        const { error } = await rejectionOf(lost);
        assert.ok(error instanceof LockLostError, `${error}`);
        assert.equal(error.value, "late");
        assert.ok(error.cause instanceof QuorumError, `cause ${error.cause}`);
      } finally {
        await closeAll(IOREDIS, clients);
        await servers.stop();
      }
    });
  });

  describe("contention across processes", () => {
    /** A contender process and the JSON lines it printed. */
    interface Worker {
      name: string;
      child: ChildProcess;
      events: ({ type: "ready" } | ({ type: "done" } & Tally))[];
      exited: Promise<void>;
    }

    const root = new URL("..", import.meta.url);
    const RUNTIMES = {
      deno: { bin: new URL("node_modules/.bin/deno", root).pathname, args: ["run", "-A"] },
      bun: { bin: new URL("node_modules/.bin/bun", root).pathname, args: ["run"] },
    };

    function startWorker(runtime: keyof typeof RUNTIMES, config: RedlockWorkerConfig): Worker {
      const { bin, args } = RUNTIMES[runtime];
      const script = new URL("./_redlock_worker.ts", import.meta.url).pathname;
      const child = spawn(bin, [...args, script, JSON.stringify(config)], {
        cwd: root.pathname,
        stdio: ["pipe", "pipe", "inherit"],
        env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      });
      child.stdin!.on("error", () => {});
      const worker: Worker = {
        name: runtime,
        child,
        events: [],
        exited: new Promise((resolve) => child.once("close", () => resolve())),
      };
      createInterface({ input: child.stdout! }).on("line", (line) => {
        try {
          worker.events.push(JSON.parse(line));
        } catch {
          // Not an event.
        }
      });
      return worker;
    }

    it("no two owners at once: Deno and Bun processes and two in-process instances, one server killed and restarted on its port after the ttl", async () => {
      const servers = await Servers.start(3);
      const counterServer = await startRedis({ useEnv: false });
      const counter = await RespClient.connect(counterServer.url);
      const config: RedlockWorkerConfig = {
        urls: servers.urls,
        counterUrl: counterServer.url,
        key: uniqueKey("contention"),
        ttl: 1,
        queueing: false,
      };
      // Half the contenders' clients queue commands while a server is down, half fail them.
      const workers = [
        startWorker("deno", { ...config, queueing: true }),
        startWorker("bun", config),
      ];
      const instances = await Promise.all([true, false].map(async (queueing) => ({
        queueing,
        clients: await Promise.all(servers.urls.map((url) => connectReconnecting(url, queueing))),
        counter: await RespClient.connect(counterServer.url),
      })));
      let stopped = false;
      const sectionsSoFar = async () =>
        Number(await counter.sendCommand(["GET", counterKeys(config.key).sections]) ?? 0);
      try {
        await until(
          () => workers.every((w) => w.events.some((e) => e.type === "ready")),
          30_000,
          "workers ready",
        );
        for (const w of workers) w.child.stdin!.write("go\n");
        const running = instances.map(({ queueing, clients, counter }) =>
          contend(
            clients as unknown as RedisClient[],
            counter,
            { ...config, queueing },
            () => stopped,
          )
        );
        await sleep(1500);
        const beforeKill = await sectionsSoFar();
        await servers.kill(1);
        // Restarted empty only after the ttl and the drift: the Redlock description's delayed restart.
        await sleep(1500);
        const whileDown = await sectionsSoFar();
        await servers.restart(1);
        await sleep(1500);
        const afterRestart = await sectionsSoFar();
        stopped = true;
        for (const w of workers) w.child.stdin!.write("stop\n");
        const tallies: [string, Tally][] = (await Promise.all(running)).map((
          t,
          i,
        ) => [`in-process ${i}`, t]);
        await until(
          () => workers.every((w) => w.events.some((e) => e.type === "done")),
          15_000,
          "workers done",
        );
        for (const w of workers) {
          const { type: _, ...tally } = w.events.find((e) => e.type === "done") as
            & { type: "done" }
            & Tally;
          tallies.push([w.name, tally]);
        }
        process.stderr.write(
          `  [redlock] sections: ${beforeKill} all up, ${whileDown - beforeKill} with one down, ${
            afterRestart - whileDown
          } after the restart; ${JSON.stringify(Object.fromEntries(tallies))}\n`,
        );
        for (const [name, tally] of tallies) {
          assert.equal(tally.overlaps, 0, `${name} found another owner inside`);
          assert.ok(tally.sections > 0, `${name} never got the lock`);
          for (const error of Object.keys(tally.errors)) {
            assert.match(error, /^Lock(Acquire|Lost)Error$/, `${name}: ${tally.details}`);
          }
        }
        // A holder whose majority was exactly two servers, one of them the killed one,
        // has lost its lock, and its release says so: once at most, at the kill.
        const lost = tallies.reduce((sum, [, t]) => sum + (t.errors.LockLostError ?? 0), 0);
        assert.ok(lost <= 1, `${lost} LockLostErrors`);
        assert.ok(beforeKill > 20, `${beforeKill} sections with all up`);
        assert.ok(whileDown - beforeKill > 20, `${whileDown - beforeKill} sections with one down`);
        assert.ok(afterRestart - whileDown > 20, `${afterRestart - whileDown} after the restart`);
        assert.equal(await counter.sendCommand(["GET", counterKeys(config.key).inside]), "0");
        // The restarted server takes part again.
        const lock = await acquireLock(
          instances[1]!.clients as unknown as RedisClient[],
          config.key,
          {
            timeout: 5000,
          },
        );
        await until(
          async () => (await servers.get(config.key))[1] === lock.token,
          1000,
          "the restarted server holds the lock",
        );
        await lock.release();
      } finally {
        stopped = true;
        for (const w of workers) w.child.stdin!.end();
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          Promise.all(workers.map((w) => w.exited)),
          new Promise((resolve) => timer = setTimeout(resolve, 10_000)),
        ]);
        clearTimeout(timer);
        for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
        await Promise.all(workers.map((w) => w.exited));
        for (const instance of instances) {
          for (const client of instance.clients) client.disconnect();
          await instance.counter.close();
        }
        await counter.close();
        await counterServer.stop();
        await servers.stop();
      }
    });
  });
});
