// Faults: Redis killed, frozen or unreachable, holders killed, frozen or blocked, and
// clients that answer with something Redis never sends. Each test asserts how long the
// fault took to surface, against a bound that the old behaviour (waiting on the client
// for as long as it reconnects: minutes) fails, and prints the time measured to stderr.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { createInterface } from "node:readline";
import { Redis } from "ioredis";
import { createClient } from "redis";
import {
  acquireLock,
  type AcquireLockOptions,
  type Lock,
  LockAcquireError,
  LockLostError,
  type RedisClient,
  RedisReplyError,
  RedisUnavailableError,
  withLock,
} from "../mod.ts";
import { aborted, closePair, connectPair } from "./_fixtures.ts";
import { BUN_CLIENT, CLIENTS, IOREDIS, isBun, NODE_REDIS } from "./_clients.ts";
import { assertNoLeaks } from "./_leaks.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { RespClient } from "./_resp.ts";
import type { FaultWorkerConfig, FaultWorkerEvent } from "./_fault_worker.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const uniqueKey = (name: string) => `faults:${name}:${Date.now()}:${n++}`;

/** Prints a measured time to stderr, to be quoted. */
function report(what: string, ms: number): void {
  process.stderr.write(`  [faults] ${what}: ${Math.round(ms)} ms\n`);
}

/** How a promise turned out within its bound; `ms` is measured from `since`. */
type Settled<T> =
  | { state: "fulfilled"; value: T; ms: number }
  | { state: "rejected"; error: unknown; ms: number }
  | { state: "pending"; ms: number };

/**
 * Waits for `promise` until `boundMs` after `since` at most, so that a call that hangs
 * fails the test at its bound instead of hanging it. The promise keeps its handlers: a
 * rejection after the bound is not unhandled.
 */
function settle<T>(
  promise: Promise<T>,
  boundMs: number,
  since: number = performance.now(),
): Promise<Settled<T>> {
  return new Promise((resolve) => {
    const timer = setTimeout(
      () => resolve({ state: "pending", ms: performance.now() - since }),
      Math.max(0, since + boundMs - performance.now()),
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve({ state: "fulfilled", value, ms: performance.now() - since });
      },
      (error) => {
        clearTimeout(timer);
        resolve({ state: "rejected", error, ms: performance.now() - since });
      },
    );
  });
}

/** The error a settled call rejected with, asserting it rejected within `boundMs`. */
function rejection<T>(s: Settled<T>, boundMs: number, what: string): unknown {
  assert.notEqual(s.state, "pending", `${what}: still pending after ${Math.round(s.ms)} ms`);
  if (s.state === "fulfilled") {
    assert.fail(`${what}: resolved to ${String(s.value)} in ${Math.round(s.ms)} ms`);
  }
  assert.ok(s.ms < boundMs, `${what}: took ${Math.round(s.ms)} ms, bound ${boundMs} ms`);
  report(what, s.ms);
  return s.state === "rejected" ? s.error : undefined;
}

/** The same outcome, its time measured from `from` (a performance.now()) instead. */
function measuredFrom<T>(s: Settled<T>, since: number, from: number): Settled<T> {
  return s.state === "pending" ? s : { ...s, ms: since + s.ms - from };
}

/** Asserts a LockLostError for `key` that carries fn's `value`. */
function assertLostWithValue(error: unknown, key: string, value: unknown): void {
  assert.ok(error instanceof LockLostError, `expected LockLostError, got ${error}`);
  assert.equal(error.key, key);
  assert.equal(error.hasValue, true, "hasValue");
  assert.equal(error.value, value);
}

/** Resolves once `done()` is true, checking every 10 ms; rejects after `timeoutMs`. */
async function until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(10);
  }
}

// ---------------------------------------------------------------------------------------------
// Clients as applications create them: default options, so they reconnect and queue
// commands meanwhile (ioredis, node-redis, Bun's), or keep a dead socket (the raw client).

interface DefaultKind {
  name: string;
  connect(url: string): Promise<RedisClient>;
  /** PING through the client's own API: resolves once it answers again. */
  ping(client: RedisClient): Promise<unknown>;
  close(client: RedisClient): Promise<void>;
  /** Whether it reconnects by itself and then sends what it queued meanwhile. */
  reconnects: boolean;
}

const DEFAULT_IOREDIS: DefaultKind = {
  name: "ioredis (default options)",
  async connect(url) {
    const client = new Redis(url);
    client.on("error", () => {}); // it reports every failed reconnect
    await client.ping();
    return client as unknown as RedisClient;
  },
  ping: (client) => (client as unknown as Redis).ping(),
  close(client) {
    (client as unknown as Redis).disconnect();
    return Promise.resolve();
  },
  reconnects: true,
};

type NodeRedis = ReturnType<typeof createClient>;
const DEFAULT_NODE_REDIS: DefaultKind = {
  name: "node-redis (default options)",
  async connect(url) {
    const client = createClient({ url });
    client.on("error", () => {}); // without a listener an error event is thrown
    await client.connect();
    return client as unknown as RedisClient;
  },
  ping: (client) => (client as unknown as NodeRedis).ping(),
  close(client) {
    const c = client as unknown as NodeRedis;
    if (c.isOpen) c.destroy();
    return Promise.resolve();
  },
  reconnects: true,
};

const DEFAULT_RAW: DefaultKind = {
  name: "raw sendCommand (no reconnect)",
  connect: (url) => RespClient.connect(url) as Promise<RedisClient>,
  ping: (client) => (client as unknown as RespClient).sendCommand(["PING"]),
  close: (client) => (client as unknown as RespClient).close(),
  reconnects: false,
};

interface BunRedis {
  connect(): Promise<void>;
  send(command: string, args: string[]): Promise<unknown>;
  close(): void;
}
const DEFAULT_BUN: DefaultKind = {
  name: "Bun RedisClient (default options)",
  async connect(url) {
    const specifier = "bun"; // a variable specifier keeps Deno from resolving "bun"
    const { RedisClient } = await import(specifier);
    const client = new RedisClient(url) as BunRedis;
    await client.connect();
    return client as unknown as RedisClient;
  },
  ping: (client) => (client as unknown as BunRedis).send("PING", []),
  close(client) {
    (client as unknown as BunRedis).close();
    return Promise.resolve();
  },
  reconnects: true,
};

const DEFAULT_CLIENTS: DefaultKind[] = [
  DEFAULT_IOREDIS,
  DEFAULT_NODE_REDIS,
  DEFAULT_RAW,
  ...(isBun ? [DEFAULT_BUN] : []),
];

/** The pid of the redis-server behind `admin`, to SIGSTOP and SIGCONT it. */
async function serverPid(admin: RespClient): Promise<number> {
  const info = String(await admin.sendCommand(["INFO", "server"]));
  const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
  assert.ok(pid > 0, "INFO server gives the process id");
  return pid;
}

/** A throwaway Redis of this test's own, which it may kill and start again on its port. */
async function ownServer(): Promise<RedisServer> {
  return await startRedis({ useEnv: false });
}

// ---------------------------------------------------------------------------------------------
// Child processes, Deno and Bun, holding or taking locks (tests/_fault_worker.ts).

const root = new URL("..", import.meta.url);
const workerPath = new URL("./_fault_worker.ts", import.meta.url).pathname;
const runtimes = {
  deno: { bin: new URL("node_modules/.bin/deno", root).pathname, args: ["run", "-A", workerPath] },
  bun: { bin: new URL("node_modules/.bin/bun", root).pathname, args: ["run", workerPath] },
};
type Runtime = keyof typeof runtimes;

interface Worker {
  name: string;
  child: ChildProcess;
  /** Whether it has exited. */
  done: boolean;
  events: FaultWorkerEvent[];
  /** performance.now() when each event arrived, by index. */
  arrivedAt: number[];
  exited: Promise<void>;
}

function startWorker(runtime: Runtime, config: FaultWorkerConfig): Worker {
  const { bin, args } = runtimes[runtime];
  const child = spawn(bin, [...args, JSON.stringify(config)], {
    cwd: root.pathname,
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  });
  child.stdin!.on("error", () => {}); // a killed worker's stdin fails with EPIPE
  const events: FaultWorkerEvent[] = [];
  const arrivedAt: number[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    try {
      events.push(JSON.parse(line));
      arrivedAt.push(performance.now());
    } catch {
      // Not an event (a runtime's own output): ignore it.
    }
  });
  const worker: Worker = {
    name: `${runtime} ${config.client} ${config.mode}`,
    child,
    done: false,
    events,
    arrivedAt,
    exited: new Promise<void>((resolve) => child.once("close", () => resolve())),
  };
  worker.exited.then(() => worker.done = true);
  return worker;
}

/**
 * Sends `signal` to the worker by its PID. (Deno's ChildProcess.kill() takes a
 * SIGSTOPped child for dead and sends nothing more, not even SIGKILL.)
 */
function signalWorker(w: Worker, signal: "SIGKILL" | "SIGSTOP" | "SIGCONT"): void {
  if (w.done) return;
  try {
    process.kill(w.child.pid!, signal);
  } catch {
    // It exited meanwhile.
  }
}

/** The worker's first event of `type`, waiting up to `timeoutMs` for it. */
async function eventOf<K extends FaultWorkerEvent["type"]>(
  w: Worker,
  type: K,
  timeoutMs: number,
): Promise<Extract<FaultWorkerEvent, { type: K }> & { arrivedAt: number }> {
  const index = () => w.events.findIndex((e) => e.type === type || e.type === "error");
  await until(() => index() >= 0, timeoutMs, `${w.name}: "${type}"`);
  const event = w.events[index()]!;
  assert.equal(event.type, type, `${w.name}: ${JSON.stringify(event)}`);
  return { ...(event as Extract<FaultWorkerEvent, { type: K }>), arrivedAt: w.arrivedAt[index()]! };
}

/** Ends every worker: resumes it, closes stdin (it exits), then kills what is left by PID. */
async function stopWorkers(workers: Worker[]): Promise<void> {
  for (const w of workers) {
    signalWorker(w, "SIGCONT");
    w.child.stdin?.end();
  }
  const killer = setTimeout(() => {
    for (const w of workers) signalWorker(w, "SIGKILL");
  }, 3_000);
  await Promise.all(workers.map((w) => w.exited));
  clearTimeout(killer);
}

// ---------------------------------------------------------------------------------------------

describe("faults", () => {
  after(() => assertNoLeaks());

  describe("Redis killed while fn runs in withLock (watchdog on), clients that reconnect", () => {
    const reconnecting = DEFAULT_CLIENTS.filter((k) => k.reconnects);
    for (const kind of reconnecting) {
      it(`${kind.name}: the signal aborts by the lease's end, withLock rejects with LockLostError carrying fn's value, and after a restart on the same port the same client locks again`, async () => {
        let server = await ownServer();
        const client = await kind.connect(server.url);
        const key = uniqueKey("killed-redis");
        const ttlMs = 600;
        let killedAt = 0;
        let abortedAt = 0;
        let returnedAt = 0;
        let reason: unknown;
        try {
          const calledAt = performance.now();
          const outcome = await settle(
            withLock(client, key, async ({ signal }) => {
              await server.stop(); // SIGKILL
              killedAt = performance.now();
              reason = await aborted(signal, ttlMs + 3_000);
              abortedAt = returnedAt = performance.now();
              return "computed while Redis died";
            }, { ttl: ttlMs / 1000 }),
            ttlMs + 6_000,
            calledAt,
          );
          assert.ok(reason instanceof LockLostError, `the signal's reason: ${reason}`);
          assert.ok(abortedAt - killedAt < ttlMs + 1_000, `aborted ${abortedAt - killedAt} ms`);
          report(`${kind.name}: Redis SIGKILLed -> signal aborted`, abortedAt - killedAt);
          const error = rejection(
            measuredFrom(outcome, calledAt, returnedAt),
            1_500,
            `${kind.name}: fn returned after the loss -> withLock rejected`,
          );
          assertLostWithValue(error, key, "computed while Redis died");

          server = await startRedis({ port: server.port, useEnv: false });
          const restartedAt = performance.now();
          let lock: Lock | undefined;
          while (!lock && performance.now() - restartedAt < 15_000) {
            const attempt = await settle(
              acquireLock(client, key, { ttl: 5, timeout: 1_000 }),
              3_000,
            );
            assert.notEqual(attempt.state, "pending", "an acquire with timeout 1 s still pending");
            if (attempt.state === "fulfilled") lock = attempt.value;
            else {
              const e = (attempt as { error: unknown }).error;
              assert.ok(
                e instanceof RedisUnavailableError || e instanceof LockAcquireError,
                `while reconnecting: ${e}`,
              );
            }
          }
          assert.ok(lock, "the same client locks again within 15 s of the restart");
          report(`${kind.name}: restart -> locked again`, performance.now() - restartedAt);
          const admin = await RespClient.connect(server.url);
          try {
            assert.equal(await admin.sendCommand(["GET", key]), lock.token);
            assert.equal(await lock.release(), true);
            assert.equal(await admin.sendCommand(["EXISTS", key]), 0);
          } finally {
            await admin.close();
          }
        } finally {
          await kind.close(client);
          await server.stop();
        }
      });
    }
  });

  describe("Redis unreachable during acquire, clients with default options", () => {
    /** One acquire while Redis does not answer, and how soon it must give up. */
    interface Row {
      name: string;
      options: AcquireLockOptions;
      boundMs: number;
      abortAtMs?: number;
    }
    const rows: Row[] = [
      { name: "timeout 500 ms", options: { timeout: 500 }, boundMs: 500 + 1_000 },
      { name: "a single attempt, ttl 30 s (gives up after 1 s)", options: {}, boundMs: 2_000 },
      {
        name: "a single attempt, ttl 0.3 s (gives up after the lease)",
        options: { ttl: 0.3 },
        boundMs: 300 + 600,
      },
      {
        name: "timeout 10 s, aborted at 200 ms",
        options: { timeout: 10_000 },
        abortAtMs: 200,
        boundMs: 200 + 500,
      },
    ];

    /**
     * Runs every row at once against a Redis that does not answer, and asserts each gave
     * up within its bound with the right error. Returns the keys tried.
     */
    async function acquireWhileDown(kind: DefaultKind, client: RedisClient, fault: string) {
      const keys = rows.map((row) => uniqueKey(`down:${row.name}`));
      const outcomes = await Promise.all(rows.map((row, i) => {
        const controller = new AbortController();
        const timer = row.abortAtMs === undefined
          ? undefined
          : setTimeout(() => controller.abort(new Error("the caller gave up")), row.abortAtMs);
        const options = { ...row.options, ...(timer ? { signal: controller.signal } : {}) };
        return settle(acquireLock(client, keys[i]!, options), row.boundMs + 1_000).then((s) => {
          clearTimeout(timer);
          return { s, reason: controller.signal.reason as unknown };
        });
      }));
      rows.forEach((row, i) => {
        const { s, reason } = outcomes[i]!;
        const error = rejection(s, row.boundMs, `${kind.name}, ${fault}: ${row.name}`);
        if (row.abortAtMs !== undefined) {
          assert.equal(error, reason, `${row.name}: rejects with the signal's reason`);
        } else if (error instanceof RedisUnavailableError) {
          assert.equal(error.key, keys[i]);
          assert.match(error.command, /^(SET|EVALSHA acquire)$/);
          assert.ok(error.waitedMs >= 0 && error.waitedMs <= s.ms + 50, `${error.waitedMs}`);
        } else {
          assert.ok(error instanceof LockAcquireError, `${row.name}: ${error}`);
          assert.equal(error.key, keys[i]);
        }
      });
      return keys;
    }

    /** Asserts no grant that came after its caller gave up holds any of `keys`. */
    async function assertNobodyHolds(admin: RespClient, keys: string[]): Promise<void> {
      for (const key of keys) {
        assert.equal(
          await admin.sendCommand(["GET", key]),
          null,
          `${key} is held by a grant that arrived after its caller gave up`,
        );
      }
    }

    for (const kind of DEFAULT_CLIENTS) {
      it(`${kind.name}, Redis killed: each acquire gives up in time, and once Redis is back on its port nothing left behind holds the keys`, async () => {
        let server = await ownServer();
        const client = await kind.connect(server.url);
        try {
          const warmUp = await acquireLock(client, uniqueKey("warm-up"));
          assert.equal(await warmUp.release(), true);
          await server.stop(); // SIGKILL
          await sleep(50);
          const keys = await acquireWhileDown(kind, client, "Redis killed");
          server = await startRedis({ port: server.port, useEnv: false });
          if (kind.reconnects) {
            const back = await settle(kind.ping(client), 15_000);
            assert.equal(back.state, "fulfilled", `${kind.name} did not reconnect in 15 s`);
            report(`${kind.name}: restart -> reconnected`, back.ms);
          }
          // Longer than the client's reconnect and a release sent upon a late grant.
          await sleep(1_000);
          const admin = await RespClient.connect(server.url);
          try {
            await assertNobodyHolds(admin, keys);
          } finally {
            await admin.close();
          }
        } finally {
          await kind.close(client);
          await server.stop();
        }
      });

      it(`${kind.name}, Redis frozen (SIGSTOP): each acquire gives up in time, and the grants Redis makes once resumed are given back`, async () => {
        const server = await ownServer();
        const admin = await RespClient.connect(server.url);
        const client = await kind.connect(server.url);
        const pid = await serverPid(admin);
        let frozen = false;
        try {
          const warmUp = await acquireLock(client, uniqueKey("warm-up"));
          assert.equal(await warmUp.release(), true);
          process.kill(pid, "SIGSTOP");
          frozen = true;
          const keys = await acquireWhileDown(kind, client, "Redis frozen");
          process.kill(pid, "SIGCONT");
          frozen = false;
          const back = await settle(kind.ping(client), 10_000);
          assert.equal(back.state, "fulfilled", `${kind.name} did not answer after SIGCONT`);
          await sleep(500);
          await assertNobodyHolds(admin, keys);
        } finally {
          if (frozen) process.kill(pid, "SIGCONT");
          await kind.close(client);
          await admin.close();
          await server.stop();
        }
      });
    }
  });

  describe("withLock whose fn returns while Redis is down", () => {
    for (const kind of DEFAULT_CLIENTS) {
      it(`${kind.name}: settles with LockLostError carrying fn's value by the lease's end`, async () => {
        const server = await ownServer();
        const client = await kind.connect(server.url);
        const key = uniqueKey("fn-returns-while-down");
        const ttlMs = 1_000;
        try {
          const startedAt = performance.now();
          const outcome = await settle(
            withLock(client, key, async () => {
              await server.stop(); // SIGKILL
              return "done while Redis was down";
            }, { ttl: ttlMs / 1000 }),
            ttlMs + 1_500 + 2_000,
            startedAt,
          );
          const error = rejection(
            outcome,
            ttlMs + 1_500,
            `${kind.name}: fn returned while Redis was down -> withLock settled (from its call)`,
          );
          assertLostWithValue(error, key, "done while Redis was down");
        } finally {
          await kind.close(client);
          await server.stop();
        }
      });
    }
  });

  describe("holders that succeed without the lock", () => {
    let server: RedisServer;
    let admin: RespClient;
    before(async () => {
      server = await ownServer();
      admin = await RespClient.connect(server.url);
    });
    after(async () => {
      await admin.close();
      await server.stop();
    });

    for (const kind of CLIENTS) {
      describe(kind.name, () => {
        let a: RedisClient;
        let b: RedisClient;
        before(async () => [a, b] = await connectPair(kind, server.url));
        after(() => closePair(kind, a, b));

        it("watchdog off, lease of 200 ms, fn of 500 ms, another client takes the lock at 300 ms: withLock rejects with LockLostError carrying fn's value", async () => {
          const key = uniqueKey("no-watchdog");
          let other: Lock | undefined;
          let returnedAt = 0;
          const calledAt = performance.now();
          const outcome = await settle(
            withLock(a, key, async () => {
              await sleep(300);
              other = await acquireLock(b, key, { ttl: 10 });
              await sleep(200);
              returnedAt = performance.now();
              return "late";
            }, { ttl: 0.2, watchdog: false }),
            5_000,
            calledAt,
          );
          try {
            const error = rejection(
              measuredFrom(outcome, calledAt, returnedAt),
              1_000,
              `${kind.name}: fn returned after the lease -> withLock rejected`,
            );
            assertLostWithValue(error, key, "late");
            assert.ok(other);
            assert.equal(await admin.sendCommand(["GET", key]), other.token, "the new owner's key");
          } finally {
            await other?.release();
          }
        });

        it("watchdog on, the key overwritten before the first renewal, fn returns at once: withLock rejects with LockLostError carrying fn's value", async () => {
          const key = uniqueKey("overwritten");
          const outcome = await settle(
            withLock(a, key, async () => {
              await admin.sendCommand(["SET", key, "thief", "PX", "10000"]);
              return "made under a stolen lock";
            }, { ttl: 3 }),
            2_000,
          );
          // Well before the first renewal (at 1 s): the final release found the key not ours.
          const error = rejection(outcome, 900, `${kind.name}: overwritten -> withLock rejected`);
          assertLostWithValue(error, key, "made under a stolen lock");
          assert.equal(await admin.sendCommand(["GET", key]), "thief");
          await admin.sendCommand(["DEL", key]);
        });
      });
    }

    const blockers = [IOREDIS, isBun ? BUN_CLIENT : NODE_REDIS];
    for (const kind of blockers) {
      it(`${kind.name}: a holder whose event loop is blocked 2.5 s under a 1 s lease (watchdog on) while another process takes the lock: withLock rejects with LockLostError carrying fn's value`, async () => {
        const key = uniqueKey("blocked");
        // The taker runs under the other runtime.
        const taker = startWorker(isBun ? "deno" : "bun", {
          url: server.url,
          client: "ioredis",
          mode: "take",
          keys: [key],
          ttl: 10,
        });
        const client = await kind.connect(server.url);
        try {
          await eventOf(taker, "ready", 30_000);
          let blockEndedAt = 0;
          let blockEndedWall = 0;
          const calledAt = performance.now();
          const outcome = await settle(
            withLock(client, key, async () => {
              taker.child.stdin!.write("take\n");
              await eventOf(taker, "taking", 5_000);
              await sleep(100); // its first attempt finds the lock held
              const end = performance.now() + 2_500;
              while (performance.now() < end) {
                // Busy: no timer, no socket, no watchdog runs.
              }
              blockEndedAt = performance.now();
              blockEndedWall = Date.now();
              return "computed while blocked";
            }, { ttl: 1 }),
            15_000,
            calledAt,
          );
          const error = rejection(
            measuredFrom(outcome, calledAt, blockEndedAt),
            1_000,
            `${kind.name}: event loop blocked past the lease -> withLock rejected`,
          );
          assertLostWithValue(error, key, "computed while blocked");
          const took = await eventOf(taker, "took", 5_000);
          assert.ok(took.at <= blockEndedWall, "the other process took the lock while blocked");
          assert.equal(await admin.sendCommand(["GET", key]), took.token, "its key is intact");
        } finally {
          await stopWorkers([taker]);
          await kind.close(client);
        }
      });
    }
  });

  describe("holder processes killed or frozen", () => {
    let server: RedisServer;
    let admin: RespClient;
    let b: RedisClient;
    before(async () => {
      server = await ownServer();
      admin = await RespClient.connect(server.url);
      b = await IOREDIS.connect(server.url);
    });
    after(async () => {
      await IOREDIS.close(b);
      await admin.close();
      await server.stop();
    });

    it("a holder SIGKILLed with a 1 s lease (Deno and Bun): the next owner gets the lock at the lease's end, never before", async () => {
      const plan: [Runtime, string][] = [["deno", "ioredis"], ["bun", "Bun RedisClient"]];
      const keys = plan.map(([runtime]) => uniqueKey(`killed-holder:${runtime}`));
      const workers = plan.map(([runtime, client], i) =>
        startWorker(runtime, { url: server.url, client, mode: "hold", keys: [keys[i]!], ttl: 1 })
      );
      const locks: Lock[] = [];
      try {
        await Promise.all(workers.map(async (w, i) => {
          const holding = await eventOf(w, "holding", 30_000);
          signalWorker(w, "SIGKILL");
          // A waiter that polls rarely (every 2 s): the lease's end, not its next poll, is
          // when it tries again.
          const options = { ttl: 5, timeout: 5_000, maxRetryDelay: 2_000, jitter: 0 };
          const outcome = await settle(acquireLock(b, keys[i]!, options), 6_000);
          const gotAt = Date.now();
          assert.equal(outcome.state, "fulfilled", `${w.name}: ${JSON.stringify(outcome)}`);
          locks.push((outcome as { value: Lock }).value);
          // From before the child's SET (Date.now(), one clock on this host) to after ours.
          const ms = gotAt - holding.sentAt;
          report(`${w.name}: took the lock -> next owner got it (lease 1000 ms)`, ms);
          assert.ok(ms >= 1_000, `the next owner got it ${ms} ms after, within the lease`);
          assert.ok(ms < 1_000 + 500, `the next owner got it ${ms} ms after`);
        }));
      } finally {
        await stopWorkers(workers);
        for (const lock of locks) await lock.release();
      }
    });

    it("holders SIGSTOPped past their lease and resumed (Deno and Bun): their withLock rejects with LockLostError carrying fn's value, their release() and extend() are false, and the new owner's keys are intact", async () => {
      const plan: [Runtime, string, FaultWorkerConfig["mode"]][] = [
        ["deno", "ioredis", "withLock"],
        ["bun", "Bun RedisClient", "withLock"],
        ["deno", "node-redis", "handles"],
        ["bun", "raw sendCommand", "handles"],
      ];
      const workers = plan.map(([runtime, client, mode]) => {
        const keys = mode === "withLock" ? [uniqueKey(`frozen:${runtime}`)] : [
          uniqueKey(`frozen-release:${runtime}`),
          uniqueKey(`frozen-extend:${runtime}`),
        ];
        return {
          keys,
          mode,
          worker: startWorker(runtime, { url: server.url, client, mode, keys, ttl: 1 }),
        };
      });
      const ours: Lock[] = [];
      try {
        for (const { worker } of workers) await eventOf(worker, "holding", 30_000);
        for (const { worker } of workers) signalWorker(worker, "SIGSTOP");
        const stoppedAt = performance.now();
        // The test takes every key once the frozen holders' leases run out.
        const allKeys = workers.flatMap((w) => w.keys);
        const taken = await Promise.all(
          allKeys.map((key) => settle(acquireLock(b, key, { ttl: 10, timeout: 5_000 }), 6_000)),
        );
        for (const t of taken) {
          assert.equal(t.state, "fulfilled", JSON.stringify(t));
          ours.push((t as { value: Lock }).value);
        }
        report("holders SIGSTOPped -> the test owns all their keys", performance.now() - stoppedAt);
        for (const { worker } of workers) signalWorker(worker, "SIGCONT");
        const resumedAt = performance.now();
        for (const { worker, mode } of workers) {
          worker.child.stdin!.write(mode === "withLock" ? "finish\n" : "check\n");
        }
        for (const { worker, mode } of workers) {
          if (mode === "withLock") {
            const settled = await eventOf(worker, "settled", 10_000);
            report(`${worker.name}: SIGCONT -> withLock settled`, settled.arrivedAt - resumedAt);
            assert.equal(settled.ok, false, `${worker.name}: ${JSON.stringify(settled)}`);
            assert.equal(settled.error?.name, "LockLostError");
            assert.equal(settled.error?.hasValue, true);
            assert.equal(settled.error?.value, "child-value");
          } else {
            const checked = await eventOf(worker, "checked", 10_000);
            report(
              `${worker.name}: SIGCONT -> release/extend answered`,
              checked.arrivedAt - resumedAt,
            );
            assert.deepEqual({ released: checked.released, extended: checked.extended }, {
              released: false,
              extended: false,
            }, worker.name);
          }
        }
        for (const lock of ours) {
          assert.equal(await admin.sendCommand(["GET", lock.key]), lock.token, lock.key);
          const pttl = Number(await admin.sendCommand(["PTTL", lock.key]));
          assert.ok(pttl > 5_000, `${lock.key}: the new owner's lease untouched, pttl ${pttl}`);
        }
        for (const lock of ours.splice(0)) assert.equal(await lock.release(), true);
      } finally {
        await stopWorkers(workers.map((w) => w.worker));
        for (const lock of ours) await lock.release();
      }
    });
  });

  describe("replies that are not what Redis sends", () => {
    /** A client that answers each command with a canned reply, and records what it got. */
    function fake(replies: Record<string, unknown>) {
      const sent: string[] = [];
      return {
        sent,
        sendCommand(args: string[]): Promise<unknown> {
          sent.push(args[0]!);
          return Promise.resolve(replies[args[0]!] ?? null);
        },
      };
    }

    /** Asserts a RedisReplyError naming `command` and carrying `reply`. */
    function assertReplyError(error: unknown, command: string, reply: unknown): true {
      assert.ok(error instanceof RedisReplyError, `expected RedisReplyError, got ${error}`);
      assert.equal(error.command, command);
      assert.deepEqual(error.reply, reply);
      assert.ok(error.message.includes(command), error.message);
      return true;
    }

    const badSetReplies: unknown[] = [0, false, "", "QUEUED", "NOT OK", {}, [], 1, ["OK"]];
    for (const reply of badSetReplies) {
      it(`SET answering ${JSON.stringify(reply)}: RedisReplyError naming SET, no handle`, async () => {
        const client = fake({ SET: reply });
        await assert.rejects(
          acquireLock(client, uniqueKey("bad-set")),
          (e) => assertReplyError(e, "SET", reply),
        );
      });
    }

    it("controls: SET answering OK gives a handle, and script replies of Redis's shape are read", async () => {
      const client = fake({ SET: "OK", EVALSHA: 1 });
      const lock = await acquireLock(client, uniqueKey("good"));
      assert.equal(await lock.extend(), true);
      assert.equal(await lock.release(), true);
      const waited = await acquireLock(
        fake({ SET: null, EVALSHA: [1, 500] }),
        uniqueKey("good-wait"),
        { timeout: 100 },
      );
      assert.equal(waited.isAcquired(), true);
    });

    const badScriptReplies: unknown[] = ["1", null, {}, [1], ["1", 5]];
    for (const reply of badScriptReplies) {
      it(`the waiting acquire script answering ${JSON.stringify(reply)}: RedisReplyError, no handle`, async () => {
        const client = fake({ SET: null, EVALSHA: reply });
        await assert.rejects(
          acquireLock(client, uniqueKey("bad-acquire"), { timeout: 100 }),
          (e) => assertReplyError(e, "EVALSHA acquire", reply),
        );
      });
      it(`the release script answering ${JSON.stringify(reply)}: RedisReplyError`, async () => {
        const lock = await acquireLock(
          fake({ SET: "OK", EVALSHA: reply }),
          uniqueKey("bad-release"),
        );
        await assert.rejects(lock.release(), (e) => assertReplyError(e, "EVALSHA release", reply));
      });
      it(`the extend script answering ${JSON.stringify(reply)}: RedisReplyError`, async () => {
        const lock = await acquireLock(
          fake({ SET: "OK", EVALSHA: reply }),
          uniqueKey("bad-extend"),
        );
        await assert.rejects(lock.extend(), (e) => assertReplyError(e, "EVALSHA extend", reply));
      });
    }
  });
});
