import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { acquireLock, type Lock, withLock } from "../mod.ts";
import { CLIENTS } from "./_clients.ts";
import { assertNoLeaks } from "./_leaks.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { RespClient } from "./_resp.ts";

/**
 * Records the commands that clients send, as MONITOR shows them. Commands run inside a
 * script are shown as coming from "lua", and are not round trips, so they are left out.
 */
class CommandLog {
  #monitor: RespClient;
  #admin: RespClient;
  #lines: string[] = [];
  #marker = 0;

  private constructor(monitor: RespClient, admin: RespClient) {
    this.#monitor = monitor;
    this.#admin = admin;
    monitor.onPush = (line) => this.#lines.push(String(line));
  }

  static async start(url: string): Promise<CommandLog> {
    const monitor = await RespClient.connect(url);
    const admin = await RespClient.connect(url);
    await monitor.sendCommand(["MONITOR"]);
    return new CommandLog(monitor, admin);
  }

  /** Runs `fn` and returns the commands that clients (not scripts) sent meanwhile. */
  async during(fn: () => Promise<unknown>): Promise<string[]> {
    await this.#sync();
    this.#lines.length = 0;
    await fn();
    await this.#sync();
    return this.#lines.filter((l) => !l.includes(" lua]") && !l.includes("baton-marker"))
      .map((l) => l.replace(/^.*?\] /, "").split(" ")[0]!.replaceAll('"', ""));
  }

  /** Runs `fn` and returns what was published meanwhile (by clients or scripts). */
  async published(fn: () => Promise<unknown>): Promise<[channel: string, message: string][]> {
    await this.#sync();
    this.#lines.length = 0;
    await fn();
    await this.#sync();
    return this.#lines.map((l) => [...l.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!))
      .filter((args) => args[0]?.toUpperCase() === "PUBLISH")
      .map((args) => [args[1]!, args[2]!]);
  }

  /** Waits until MONITOR has shown a marker command, so every earlier command is in. */
  async #sync(): Promise<void> {
    const marker = `baton-marker-${this.#marker++}`;
    await this.#admin.sendCommand(["ECHO", marker]);
    while (!this.#lines.some((l) => l.includes(marker))) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async stop(): Promise<void> {
    await this.#monitor.close();
    await this.#admin.close();
  }
}

describe("Redis round trips", () => {
  let server: RedisServer;
  let log: CommandLog;
  let admin: RespClient;
  before(async () => {
    server = await startRedis({ useEnv: false });
    log = await CommandLog.start(server.url);
    admin = await RespClient.connect(server.url);
  });
  after(async () => {
    await log.stop();
    await admin.close();
    await server.stop();
    await assertNoLeaks();
  });

  for (const kind of CLIENTS) {
    it(`${kind.name}: an uncontended acquire is one round trip (SET NX PX), a release one (EVALSHA), a failed acquire one`, async () => {
      const redis = await kind.connect(server.url);
      const other = await kind.connect(server.url);
      try {
        // A server without the scripts answers NOSCRIPT once, then has them.
        await admin.sendCommand(["SCRIPT", "FLUSH"]);
        const first = await log.during(async () => {
          const warm = await acquireLock(redis, "rt:warm");
          await warm.extend();
          await warm.release();
          await (await acquireLock(redis, "rt:warm", { timeout: 1000 })).release();
        });
        assert.deepEqual(first, ["SET", "EVALSHA", "EVAL", "EVALSHA", "EVAL", "SET", "EVALSHA"]);

        let lock = await acquireLock(redis, "rt:key", { ttl: 5 });
        await lock.release();
        const acquire = await log.during(async () => (lock = await acquireLock(redis, "rt:key")));
        assert.deepEqual(acquire, ["SET"]);
        const failed = await log.during(() => acquireLock(other, "rt:key", { throwOnFail: false }));
        assert.deepEqual(failed, ["SET"]);
        assert.deepEqual(await log.during(() => lock.extend()), ["EVALSHA"]);
        assert.deepEqual(await log.during(() => lock.release()), ["EVALSHA"]);
        assert.deepEqual(await log.during(() => lock.release()), []);
        const run = await log.during(() => withLock(redis, "rt:key", () => 1));
        assert.deepEqual(run, ["SET", "EVALSHA"]);
        // A waiting acquire that finds the lock free is one round trip too.
        const waiting = await log.during(
          async () => (lock = await acquireLock(redis, "rt:key", { timeout: 1000 })),
        );
        assert.deepEqual(waiting, ["SET"]);
        await lock.release();
        // No duplicate() (a raw client, @upstash/redis): its waiters poll.
        if (typeof (redis as { duplicate?: unknown }).duplicate !== "function") return;
        // One that finds it held tries, then queues (the script); the release hands the
        // lock over in its own round trip, and the waiter, told so, sends nothing more.
        // (The first wait of `other` opens its subscriber; the second finds it open.)
        for (const round of ["opens the subscriber", "finds it open"]) {
          const held = await acquireLock(redis, "rt:key");
          const queued = log.during(() =>
            acquireLock(other, "rt:key", { timeout: 5000, fairnessWindow: 0 }).then((l) => lock = l)
          );
          await new Promise((r) => setTimeout(r, 50));
          await held.release();
          const sent = await queued;
          if (round === "finds it open") assert.deepEqual(sent, ["SET", "EVALSHA", "EVALSHA"]);
          await lock.release();
        }
        // The client that handed the lock over knows it is held: asking again, it queues at
        // once rather than trying SET NX first.
        const held = await acquireLock(redis, "rt:key");
        const waiter = acquireLock(other, "rt:key", { timeout: 5000, fairnessWindow: 0 });
        await new Promise((r) => setTimeout(r, 50));
        await held.release(); // handed to `other`
        lock = await waiter;
        const again = log.during(() =>
          acquireLock(redis, "rt:key", { timeout: 5000, fairnessWindow: 0 }).then((l) =>
            l.release()
          )
        );
        await new Promise((r) => setTimeout(r, 50));
        await lock.release();
        const sentAgain = await again;
        assert.equal(sentAgain[0], "EVALSHA", sentAgain.join(" "));
        assert.ok(!sentAgain.includes("SET"), sentAgain.join(" "));
      } finally {
        await admin.sendCommand(["DEL", "rt:key", "rt:warm"]);
        await kind.close(redis);
        await kind.close(other);
      }
    });
  }

  it("a handoff publishes one message, to the next owner's connection alone", async () => {
    const kind = CLIENTS[0]!;
    const [holder, first, second] = [
      await kind.connect(server.url),
      await kind.connect(server.url),
      await kind.connect(server.url),
    ];
    try {
      const lock = await acquireLock(holder, "rt:news");
      const options = { timeout: 5000, fairnessWindow: 0 };
      const next = acquireLock(first, "rt:news", options);
      await new Promise((r) => setTimeout(r, 50));
      const after = acquireLock(second, "rt:news", options);
      await new Promise((r) => setTimeout(r, 50));
      let nextLock: Lock | undefined;
      const news = await log.published(async () =>
        nextLock = await lock.release().then(() => next)
      );
      assert.equal(news.length, 1, JSON.stringify(news));
      const [channel, message] = news[0]!;
      assert.equal(message, `+${nextLock!.token}`);
      // Only the first waiter's client listens there; the second waiter does not wake.
      const [, listeners] = await admin.sendCommand(["PUBSUB", "NUMSUB", channel]) as [
        string,
        number,
      ];
      assert.equal(Number(listeners), 1);
      await nextLock!.release();
      await (await after).release();
    } finally {
      await admin.sendCommand(["DEL", "rt:news"]);
      for (const client of [holder, first, second]) await kind.close(client);
    }
  });
});
