// Load across runtimes: Deno and Bun processes, each on its own kind of client, make
// withLock read-modify-write increments on the same keys at the same time. A lost update
// (a counter short of the increments made) or an overlap (a critical section that found
// another one inside) means the lock let two holders in. Each case prints one line of
// figures to stderr.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { lockKey } from "../mod.ts";
import { startRedisWithAdmin, stopRedisWithAdmin } from "./_fixtures.ts";
import type { RedisServer } from "./_redis.ts";
import type { RespClient } from "./_resp.ts";
import { exitWithin, startChild, stopChildren, until } from "./_child.ts";
import type { LoadConfig, LoadEvent } from "./_load_worker.ts";

type Done = Extract<LoadEvent, { type: "done" }>;

/** One worker process: its runtime and its client kind. */
type Process = ["deno" | "bun", string];

/** How a case runs, the same for each of its processes. */
type Work = Omit<LoadConfig, "name" | "url" | "client" | "seed">;

let run = 0;

/** Keys for a case, fresh for each run. */
const keysFor = (name: string, count: number) => {
  const at = `${Date.now()}-${run++}`;
  return Array.from({ length: count }, (_, i) => lockKey("load", name, at, i));
};

describe("load across runtimes: Deno and Bun processes on four kinds of client", () => {
  let server: RedisServer;
  let admin: RespClient;
  before(async () => ({ server, admin } = await startRedisWithAdmin()));
  after(() => stopRedisWithAdmin(server, admin));

  /**
   * Starts one worker per process, lets them go together once all are ready, and
   * resolves to what each reported and the time from "go" to the last report. Every
   * worker must then end by itself with exit code 0.
   */
  async function load(processes: Process[], work: Work, boundMs: number) {
    const workers = processes.map(([runtime, client], i) => ({
      name: `${runtime} ${client}`,
      ...startChild<LoadEvent>(
        runtime,
        "./_load_worker.ts",
        {
          ...work,
          name: `${runtime} ${client}`,
          url: server.url,
          client,
          seed: i + 1,
        } satisfies LoadConfig,
      ),
    }));
    const done = () => workers.flatMap((w) => w.events.filter((e): e is Done => e.type === "done"));
    try {
      await until(
        () => workers.every((w) => w.events.some((e) => e.type === "ready")),
        30_000,
        "every worker ready",
      );
      const startedAt = performance.now();
      for (const w of workers) w.child.stdin!.write("go\n");
      await until(() => done().length === workers.length, boundMs, "every worker done");
      const elapsedMs = performance.now() - startedAt;
      // Closing its client must be enough for a worker to end: nothing left keeps it alive.
      const exits = await Promise.all(workers.map((w) => exitWithin(w, 10_000)));
      assert.deepEqual(
        exits.map((exit, i) => `${workers[i]!.name}: ${exit}`),
        workers.map((w) => `${w.name}: 0`),
        "every worker ends by itself within 10 s of its report, with exit code 0",
      );
      return { reports: done(), elapsedMs };
    } finally {
      await stopChildren(workers);
    }
  }

  /**
   * Reads each key's counter and detector. `made`: the increments the workers wrote;
   * `lost`: how many of them the counters miss; `wrong`: the keys whose counter is not
   * the increments made on it, or whose detector is not back at 0.
   */
  async function count(keys: string[], reports: Done[]) {
    let made = 0;
    let counted = 0;
    const wrong: string[] = [];
    for (const key of keys) {
      const expected = reports.reduce((sum, r) => sum + (r.increments[key] ?? 0), 0);
      const counter = Number(await admin.sendCommand(["GET", `${key}:counter`]) ?? 0);
      const inside = Number(await admin.sendCommand(["GET", `${key}:inside`]) ?? 0);
      made += expected;
      counted += counter;
      if (counter !== expected || inside !== 0) {
        wrong.push(`${key}: counter ${counter} for ${expected} increments, ${inside} inside`);
      }
    }
    const overlaps = reports.reduce((sum, r) => sum + r.overlaps, 0);
    const errors = reports.flatMap((r) => r.errors);
    return { made, lost: made - counted, wrong, overlaps, errors };
  }

  /**
   * Prints a case's figures to stderr on one line, then asserts that every increment
   * landed (each key's counter exact), no section overlapped another and no withLock failed.
   */
  async function check(
    title: string,
    processes: Process[],
    keys: string[],
    operations: number,
    { reports, elapsedMs }: { reports: Done[]; elapsedMs: number },
  ) {
    const { made, lost, wrong, overlaps, errors } = await count(keys, reports);
    const who = processes.map(([runtime, client]) => `${runtime}/${client}`).join(", ");
    console.error(
      `load: ${title}: ${processes.length} processes (${who}) x ${operations} operations = ` +
        `${made} increments, overlaps ${overlaps}, lost updates ${lost}, ` +
        `errors ${errors.length}, ${(elapsedMs / 1000).toFixed(1)} s`,
    );
    // A lost lock rejects withLock with LockLostError; a timeout with LockAcquireError.
    assert.deepEqual(errors, []);
    assert.deepEqual(wrong, []);
    assert.equal(made, processes.length * operations);
    assert.equal(overlaps, 0);
  }

  it("4 processes (2 Deno, 2 Bun) x 250 withLock increments on one key: the counter ends at exactly 1000, no critical sections overlap, within 45 s", async () => {
    const processes: Process[] = [
      ["deno", "ioredis"],
      ["deno", "node-redis"],
      ["bun", "raw sendCommand"],
      ["bun", "Bun RedisClient"],
    ];
    const keys = keysFor("one-key", 1);
    const run = await load(processes, {
      keys,
      operations: 250,
      callers: 1,
      ttl: 5,
      timeout: 60_000,
      holdMs: [0],
    }, 45_000);
    await check("one key", processes, keys, 250, run);
    assert.ok(run.elapsedMs < 45_000, `took ${run.elapsedMs} ms`);
  });

  it("4 processes x 250 withLock increments over 100 keys, 8 callers per process: each key's counter ends exact, 1000 in all, no overlaps, within 45 s", async () => {
    const processes: Process[] = [
      ["deno", "raw sendCommand"],
      ["deno", "ioredis"],
      ["bun", "node-redis"],
      ["bun", "Bun RedisClient"],
    ];
    const keys = keysFor("hundred-keys", 100);
    const run = await load(processes, {
      keys,
      operations: 250,
      callers: 8,
      ttl: 5,
      timeout: 60_000,
      holdMs: [0],
    }, 45_000);
    await check("100 keys, 8 callers per process", processes, keys, 250, run);
    const used = keys.filter((key) => run.reports.some((r) => r.increments[key])).length;
    assert.ok(used > 90, `only ${used} of the 100 keys were used`);
    assert.ok(run.elapsedMs < 45_000, `took ${run.elapsedMs} ms`);
  });

  it("ttl 0.3 s, critical sections of 0.5 to 1 s: 4 processes x 10 on one key stay exclusive by the watchdog alone (40 sections, 29.6 s of holding, run end to end)", async () => {
    const processes: Process[] = [
      ["deno", "node-redis"],
      ["deno", "raw sendCommand"],
      ["bun", "ioredis"],
      ["bun", "Bun RedisClient"],
    ];
    const keys = keysFor("watchdog", 1);
    // Each process holds 500 + 800 + 1000 + 600 + 900 + 700 + 500 + 800 + 1000 + 600 ms.
    const holdMs = [500, 800, 1000, 600, 900, 700];
    const heldMs = 4 * Array.from({ length: 10 }, (_, i) => holdMs[i % holdMs.length]!)
      .reduce((a, b) => a + b);
    assert.equal(heldMs, 29_600);
    const run = await load(processes, {
      keys,
      operations: 10,
      callers: 1,
      ttl: 0.3,
      timeout: 60_000,
      holdMs,
    }, heldMs + 15_000);
    await check("ttl 0.3 s, sections 0.5-1 s", processes, keys, 10, run);
    // One at a time: the run lasts at least the sum of the sections, and not much more.
    const took = `took ${run.elapsedMs} ms for ${heldMs} ms of sections`;
    assert.ok(run.elapsedMs >= heldMs, took);
    assert.ok(run.elapsedMs < heldMs + 15_000, took);
  });
});
