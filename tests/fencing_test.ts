import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { acquireLock, type Lock, type RedisClient, withLock } from "../mod.ts";
import { _keysOf } from "../lock/_redis_store.ts";
import { IOREDIS, isBun, MINIMAL } from "./_clients.ts";
import { fencedWrite } from "./_fenced_storage.ts";
import { startRedisWithAdmin, stopRedisWithAdmin } from "./_fixtures.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import type { RespClient } from "./_resp.ts";
import { closePair, connectPair, type StoreClient, STORES } from "./_stores.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const uniqueKey = (name: string) => `fencing:${name}:${Date.now()}:${n++}`;

describe("fencing tokens", () => {
  let server: RedisServer;
  let admin: RespClient;
  before(async () => ({ server, admin } = await startRedisWithAdmin()));
  after(() => stopRedisWithAdmin(server, admin));

  for (const kind of STORES) {
    describe(kind.name, () => {
      let a: StoreClient;
      let b: StoreClient;
      before(async () => [a, b] = await connectPair(kind, server.url));
      after(() => closePair(kind, a, b));

      it("a lock taken with fencing has a bigint fence; one taken without has none", async () => {
        const key = uniqueKey("type");
        const plain = await acquireLock(a, key);
        assert.equal(plain.fence, undefined);
        await plain.release();
        const fenced = await acquireLock(a, key, { fencing: true });
        assert.equal(typeof fenced.fence, "bigint");
        // A clock in µs (the server's, or for memory this machine's): within a minute of
        // this machine's.
        const nowUs = BigInt(Date.now()) * 1000n;
        const drift = fenced.fence! > nowUs ? fenced.fence! - nowUs : nowUs - fenced.fence!;
        assert.ok(drift < 60_000_000n, `fence ${fenced.fence} vs now ${nowUs}`);
        await fenced.release();
        assert.equal(await withLock(a, key, ({ lock }) => lock.fence), undefined);
        const inside = await withLock(a, key, ({ lock }) => lock.fence, { fencing: true });
        assert.ok(inside! > fenced.fence!);
      });

      it("a fenced attempt at a held lock fails and leaves the holder's lock and fence alone", async () => {
        const key = uniqueKey("held");
        const holder = await acquireLock(a, key, { fencing: true, ttl: 10 });
        assert.equal(await acquireLock(b, key, { fencing: true, throwOnFail: false }), null);
        assert.equal((await holder.status()).owned, true);
        await holder.release();
        const next = await acquireLock(b, key, { fencing: true });
        assert.ok(next.fence! > holder.fence!);
        await next.release();
      });

      it("a lock handed over on release carries a fence above the releasing owner's", async () => {
        const key = uniqueKey("handover");
        const first = await acquireLock(a, key, { fencing: true, ttl: 10 });
        const waiting = acquireLock(b, key, { fencing: true, timeout: 5000, fairnessWindow: 0 });
        await sleep(100); // queued
        assert.equal(await first.release(), true);
        const second = await waiting;
        assert.ok(second.fence! > first.fence!, `${second.fence} > ${first.fence}`);
        assert.equal((await second.status()).owned, true);
        // A waiter without fencing is handed the lock without a fence.
        const third = acquireLock(a, key, { timeout: 5000, fairnessWindow: 0 });
        await sleep(100);
        await second.release();
        assert.equal((await third).fence, undefined);
        await (await third).release();
      });

      it("fences rise across 200 acquisitions by two clients, with releases, expiries and handovers mixed", async () => {
        const key = uniqueKey("monotonic");
        const fences: bigint[] = [];
        const take = async (redis: StoreClient, i: number) => {
          const lock = await acquireLock(redis, key, {
            fencing: true,
            ttl: 0.05,
            timeout: 5000,
            fairnessWindow: i % 3 === 0 ? 0 : 10,
          });
          fences.push(lock.fence!);
          // Every fourth lease runs out instead of being released.
          if (i % 4 === 0) await sleep(60);
          else await lock.release();
        };
        for (let i = 0; i < 100; i++) await Promise.all([take(a, 2 * i), take(b, 2 * i + 1)]);
        assert.equal(fences.length, 200);
        for (let i = 1; i < fences.length; i++) {
          assert.ok(fences[i]! > fences[i - 1]!, `fence ${i}: ${fences[i]} after ${fences[i - 1]}`);
        }
      });
    });
  }

  it("monotonic across 1,000 acquisitions by four clients of two kinds, releases and expiries mixed", async () => {
    const clients = [
      await IOREDIS.connect(server.url),
      await IOREDIS.connect(server.url),
      await MINIMAL.connect(server.url),
      await MINIMAL.connect(server.url),
    ];
    try {
      const key = uniqueKey("thousand");
      const fences: bigint[] = [];
      let expired = 0;
      await Promise.all(clients.map(async (redis, c) => {
        for (let i = 0; i < 250; i++) {
          const lock = await acquireLock(redis, key, { fencing: true, ttl: 0.02, timeout: 10_000 });
          fences.push(lock.fence!);
          if ((i + c) % 10 === 0) {
            await sleep(25);
            expired++;
          } else await lock.release();
        }
      }));
      assert.equal(fences.length, 1000);
      assert.ok(expired >= 90, `expired ${expired}`);
      for (let i = 1; i < fences.length; i++) {
        assert.ok(fences[i]! > fences[i - 1]!, `fence ${i}: ${fences[i]} after ${fences[i - 1]}`);
      }
    } finally {
      await IOREDIS.close(clients[0]!);
      await IOREDIS.close(clients[1]!);
      await MINIMAL.close(clients[2]!);
      await MINIMAL.close(clients[3]!);
    }
  });

  it("the fence key shares the lock key's slot, expires after the lease, and is extended with it", async () => {
    const redis = await MINIMAL.connect(server.url);
    try {
      const key = uniqueKey("keys");
      const fenceKey = _keysOf(key)[3];
      const lock = await acquireLock(redis, key, { fencing: true, ttl: 2 });
      const pttl = Number(await admin.sendCommand(["PTTL", fenceKey]));
      assert.ok(pttl > 2000 && pttl <= 62_000, `fence key pttl ${pttl}`);
      assert.equal(await lock.extend(600), true);
      const extended = Number(await admin.sendCommand(["PTTL", fenceKey]));
      assert.ok(extended > 600_000, `fence key pttl after extend ${extended}`);
      assert.equal(await admin.sendCommand(["GET", fenceKey]), String(lock.fence));
      await lock.release();
    } finally {
      await MINIMAL.close(redis);
    }
  });

  it("a fence is raised above the last one known, even when the server's clock is behind it", async () => {
    const redis = await MINIMAL.connect(server.url);
    try {
      const key = uniqueKey("clock");
      // As if a fence came from a clock 1,000 s ahead (a failover to a server whose clock
      // is behind): the next fences go on from it, not from this server's clock.
      const ahead = BigInt(Date.now() + 1_000_000) * 1000n;
      await admin.sendCommand(["SET", _keysOf(key)[3], String(ahead), "PX", "60000"]);
      const first = await acquireLock(redis, key, { fencing: true });
      assert.equal(first.fence, ahead + 1n);
      await first.release();
      const second = await acquireLock(redis, key, { fencing: true });
      assert.equal(second.fence, ahead + 2n);
      await second.release();
    } finally {
      await MINIMAL.close(redis);
    }
  });

  it("a fenced acquire is one round trip, whose script issues the fence", async () => {
    const redis = await MINIMAL.connect(server.url);
    const sent: string[][] = [];
    const spy: RedisClient = {
      sendCommand: (args: string[]) => {
        sent.push(args);
        return (redis as unknown as RespClient).sendCommand(args);
      },
    };
    try {
      const key = uniqueKey("trip");
      await (await acquireLock(spy, key, { fencing: true })).release(); // loads the scripts
      sent.length = 0;
      const lock = await acquireLock(spy, key, { fencing: true });
      assert.deepEqual(sent.map((c) => c[0]), ["EVALSHA"]);
      assert.equal(typeof lock.fence, "bigint");
      await lock.release();
    } finally {
      await MINIMAL.close(redis);
    }
  });

  it("fences keep rising across a restart of a Redis server that persists its data", async () => {
    const dir = mkdtempSync(join(tmpdir(), "baton-fence-"));
    const args = ["--dir", dir, "--appendonly", "yes", "--appendfsync", "always"];
    let own = await startRedis({ useEnv: false, args });
    const port = own.port;
    let redis = await MINIMAL.connect(own.url);
    try {
      const key = uniqueKey("restart");
      const before = await acquireLock(redis, key, { fencing: true, ttl: 30 });
      await MINIMAL.close(redis);
      await own.stop(); // SIGKILL: the lock and its fence survive in the append-only file
      own = await startRedis({ useEnv: false, port, args });
      redis = await MINIMAL.connect(own.url);
      assert.equal(
        await (redis as unknown as RespClient).sendCommand(["GET", key]),
        before.token,
        "the lock survived the restart",
      );
      await (redis as unknown as RespClient).sendCommand(["DEL", key]); // as if it expired
      const afterRestart = await acquireLock(redis, key, { fencing: true });
      assert.ok(afterRestart.fence! > before.fence!, `${afterRestart.fence} > ${before.fence}`);
      await afterRestart.release();
    } finally {
      await MINIMAL.close(redis);
      await own.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a holder stopped past its lease and resumed has its fenced write rejected; the new owner's lands", async () => {
    const key = uniqueKey("paused");
    const resource = uniqueKey("resource");
    const bin = new URL(`../node_modules/.bin/${isBun ? "bun" : "deno"}`, import.meta.url).pathname;
    const script = new URL("./_fence_worker.ts", import.meta.url).pathname;
    const config = JSON.stringify({ url: server.url, key, resource });
    const child = spawn(bin, isBun ? ["run", script, config] : ["run", "-A", script, config], {
      stdio: ["pipe", "pipe", "inherit"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    child.stdin!.on("error", () => {});
    const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
    // The worker's JSON lines, each taken once by next().
    const lines: string[] = [];
    let arrived = () => {};
    createInterface({ input: child.stdout! }).on("line", (line) => {
      lines.push(line);
      arrived();
    });
    const next = async () => {
      for (let i = 0; i < 200 && lines.length === 0; i++) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 50);
          arrived = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      const line = lines.shift();
      assert.ok(line !== undefined, "the worker said nothing within 10 s");
      return JSON.parse(line);
    };
    try {
      const { fence: oldFence } = await next();
      assert.ok(process.kill(child.pid!, "SIGSTOP"));
      await sleep(700); // its 500 ms lease runs out while it is stopped
      const owner: Lock = await acquireLock(admin as unknown as RedisClient, key, {
        fencing: true,
        timeout: 2000,
      });
      assert.ok(owner.fence! > BigInt(oldFence));
      assert.equal(await fencedWrite(admin, resource, owner.fence!, "from the new owner"), true);
      assert.ok(process.kill(child.pid!, "SIGCONT"));
      child.stdin!.end("write\n");
      const result = await next();
      assert.deepEqual(result, { written: false, extended: false, released: false });
      assert.equal(await admin.sendCommand(["HGET", resource, "value"]), "from the new owner");
      assert.equal(await admin.sendCommand(["GET", key]), owner.token, "the new owner's key");
      await owner.release();
      await exited;
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
    }
  });
});
