// What is particular to the memory store: its injected clock (leases, places in the
// queue and debounce's bursts lapse when it moves, without sleeping; baton's own waits
// stay on real timers), fences that outlast the store, stores that share nothing, no
// timer that keeps a process alive, and its entry point. Its behaviour as a store (the
// same as Redis') is tested with every store's, in the *_test.ts files that loop over
// tests/_stores.ts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import { acquireLock, debounce, LockLostError, withLock } from "../mod.ts";
import { MemoryStore } from "../lock/memory.ts";
import { _storeOf } from "../lock/_store_of.ts";
import { isBun } from "./_clients.ts";
import { aborted } from "./_fixtures.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const uniqueKey = (name: string) => `memory:${name}:${n++}`;

/** A MemoryStore on a clock that moves only when told to. */
function fakeClock() {
  let nowMs = 1_000;
  const store = new MemoryStore({ now: () => nowMs });
  return { store, advance: (ms: number) => void (nowMs += ms) };
}

describe("the memory store's clock", () => {
  it("a lease runs out when the clock passes it, without sleeping: then another caller takes the lock", async () => {
    const { store, advance } = fakeClock();
    const key = uniqueKey("expiry");
    const crashed = await acquireLock(store, key, { ttl: 10 });
    assert.deepEqual(await crashed.status(), { owned: true, remainingMs: 10_000 });
    advance(4_000);
    assert.deepEqual(await crashed.status(), { owned: true, remainingMs: 6_000 });
    advance(6_000); // the lease's last ms: held, as Redis holds a key until past its expiry
    assert.equal(await acquireLock(store, key, { throwOnFail: false }), null);
    advance(1);
    const next = await acquireLock(store, key, { ttl: 10 });
    assert.deepEqual(await crashed.status(), { owned: false, remainingMs: 0 });
    assert.equal(await crashed.extend(), false, "the old owner cannot extend");
    assert.equal(await crashed.release(), false, "nor release the new owner's lock");
    assert.deepEqual(await next.status(), { owned: true, remainingMs: 10_000 });
    assert.equal(await next.release(), true);
  });

  it("extend() resets the lease to ttl from the clock's now", async () => {
    const { store, advance } = fakeClock();
    const key = uniqueKey("extend");
    const lock = await acquireLock(store, key, { ttl: 10 });
    advance(8_000);
    assert.equal(await lock.extend(), true);
    advance(8_000); // 16 s after the acquire, 8 s after the extension
    assert.equal(await acquireLock(store, key, { throwOnFail: false }), null);
    assert.deepEqual(await lock.status(), { owned: true, remainingMs: 2_000 });
    assert.equal(await lock.extend("1m"), true);
    advance(59_000);
    assert.equal((await lock.status()).owned, true);
    advance(1_001);
    assert.equal((await lock.status()).owned, false);
    assert.ok(await acquireLock(store, key, { throwOnFail: false }));
  });

  it("lock.isAcquired() is the local view, on real time: it does not follow the store's clock", async () => {
    const { store, advance } = fakeClock();
    const lock = await acquireLock(store, uniqueKey("local"), { ttl: 10 });
    advance(60_000);
    assert.equal(lock.isAcquired(), true);
    assert.equal((await lock.status()).owned, false);
  });

  it("a waiter gets a lock whose holder crashed once the clock passes the lease, at its next poll", async () => {
    const { store, advance } = fakeClock();
    const key = uniqueKey("crashed-holder");
    await acquireLock(store, key, { ttl: 10 }); // never released
    let got = false;
    const waiter = acquireLock(store, key, { timeout: 5_000, maxRetryDelay: 50 })
      .then((lock) => {
        got = true;
        return lock;
      });
    await sleep(150);
    assert.equal(got, false, "held for 10 s by the store's clock");
    const advancedAt = performance.now();
    advance(10_001);
    const next = await waiter;
    // It polls every 25-50 ms (maxRetryDelay with jitter): the clock does not wake it.
    assert.ok(performance.now() - advancedAt < 500, "taken at the next poll");
    assert.equal(await next.release(), true);
  });

  it("a release hands the lock to the waiter at once, whatever the clock, through news in this process", async () => {
    const { store } = fakeClock();
    const key = uniqueKey("handoff");
    const holder = await acquireLock(store, key, { ttl: 10 });
    // No poll for 5 s: only the news of the release can bring the lock to it in time.
    const waiter = acquireLock(store, key, {
      timeout: 10_000,
      retryDelay: 5_000,
      maxRetryDelay: 5_000,
    });
    await sleep(50);
    const releasedAt = performance.now();
    assert.equal(await holder.release(), true);
    const next = await waiter;
    assert.ok(performance.now() - releasedAt < 200, "woken by the release");
    assert.deepEqual(await next.status(), { owned: true, remainingMs: 30_000 });
    await next.release();
  });

  it("a crashed waiter keeps its place until the clock passes its lease; then the release goes to the next one", async () => {
    const { store, advance } = fakeClock();
    const key = uniqueKey("ghost");
    const holder = await acquireLock(store, key, { ttl: 10 });
    // A waiter that joined and died: first in the queue, its place lapsing in 300 ms of
    // the store's clock, with no fairness window (a release hands over at once).
    const ghost = await _storeOf(store, "test").acquire(key, "ghost", 10_000, {
      queue: { leaseMs: 300, windowMs: 0, address: "", queued: false },
      fencing: false,
    });
    assert.deepEqual(ghost, { acquired: false, remainingMs: 10_000, dueInMs: -1 });
    const waiter = acquireLock(store, key, {
      timeout: 10_000,
      fairnessWindow: 0,
      retryDelay: 5_000,
      maxRetryDelay: 5_000,
    });
    await sleep(50);
    // Still in its place: the release hands the lock to the ghost, whose lease runs out.
    const ghostKey = uniqueKey("ghost-alive");
    const stillHeld = await acquireLock(store, ghostKey, { ttl: 10 });
    const alive = await _storeOf(store, "test").acquire(ghostKey, "ghost", 10_000, {
      queue: { leaseMs: 300, windowMs: 0, address: "", queued: false },
      fencing: false,
    });
    assert.equal(alive.acquired, false);
    assert.equal(await stillHeld.release(), true);
    assert.equal(
      await acquireLock(store, ghostKey, { throwOnFail: false }),
      null,
      "handed to the ghost, whose place had not lapsed",
    );
    // Past the ghost's lease by the clock, the release skips it for the live waiter.
    advance(301);
    const releasedAt = performance.now();
    await holder.release();
    const next = await waiter;
    assert.ok(performance.now() - releasedAt < 200, "handed over at the release");
    await next.release();
  });

  it("the watchdog renews on real timers; a lease the clock jumps past is lost, and the signal says so", async () => {
    const { store, advance } = fakeClock();
    const key = uniqueKey("watchdog");
    const lost: LockLostError[] = [];
    const lock = await acquireLock(store, key, {
      ttl: 0.3,
      watchdog: true,
      onLost: (e) => lost.push(e),
    });
    await sleep(250); // renewed at 100 and 200 ms, by the real clock
    assert.equal((await lock.status()).owned, true);
    advance(301); // past the lease before the next renewal: another owner takes it
    const thief = await acquireLock(store, key, { ttl: 10 });
    const reason = await aborted(lock.signal, 1_000);
    assert.ok(reason instanceof LockLostError, `signal reason ${reason}`);
    assert.match(String(reason.cause), /another owner/);
    assert.deepEqual(lost, [reason]);
    assert.equal(await lock.release(), false);
    assert.equal((await thief.status()).owned, true);
    await thief.release();
  });

  it("withLock rejects with LockLostError, carrying fn's value, when the clock ran past the lease during fn", async () => {
    const { store, advance } = fakeClock();
    const key = uniqueKey("withlock");
    await assert.rejects(
      withLock(store, key, () => {
        advance(30_001);
        return "done late";
      }, { watchdog: false }),
      (error: unknown) => {
        assert.ok(error instanceof LockLostError, `got ${error}`);
        assert.equal(error.value, "done late");
        return true;
      },
    );
  });
});

describe("the memory store's debounce on its clock", () => {
  it("leading: the burst's key lapses when the clock passes wait after the last call, without sleeping", async () => {
    const { store, advance } = fakeClock();
    const key = uniqueKey("leading");
    const runs: string[] = [];
    const call = debounce(store, key, (x: string) => void runs.push(x), {
      wait: "1m",
      edge: "leading",
    });
    assert.equal((await call("first")).ran, true);
    advance(40_000);
    assert.deepEqual(await call("dropped"), { ran: false, reason: "dropped" });
    advance(40_000); // 80 s after the first call, 40 s after the last: the burst goes on
    assert.deepEqual(await call("dropped too"), { ran: false, reason: "dropped" });
    advance(60_001);
    assert.equal((await call("next burst")).ran, true);
    assert.deepEqual(runs, ["first", "next burst"]);
  });

  it("trailing: the quiet period is judged on the clock, while a call sleeps wait on real time before it claims", async () => {
    const { store, advance } = fakeClock();
    const key = uniqueKey("trailing");
    const controller = new AbortController();
    const runs: string[] = [];
    const call = debounce(store, key, (x: string) => void runs.push(x), {
      wait: 30,
      signal: controller.signal,
    });
    try {
      const pending = call("x");
      await sleep(150); // several real waits: each claim finds the clock has not moved
      assert.deepEqual(runs, []);
      assert.equal(call.pending, true);
      advance(30);
      const result = await Promise.race([pending, sleep(1_000).then(() => "still waiting")]);
      assert.deepEqual(result, { ran: true, ok: true, value: undefined });
      assert.deepEqual(runs, ["x"]);
    } finally {
      controller.abort();
    }
  });

  it("trailing: flush() runs the pending burst at once, whatever the clock says", async () => {
    const { store } = fakeClock();
    const key = uniqueKey("flush");
    const controller = new AbortController();
    const call = debounce(store, key, (x: number) => x * 2, {
      wait: "1h",
      signal: controller.signal,
    });
    try {
      const first = call(1);
      const last = call(21);
      assert.deepEqual(await first, { ran: false, reason: "superseded" });
      assert.deepEqual(await call.flush(), { ran: true, ok: true, value: 42 });
      assert.deepEqual(await last, { ran: true, ok: true, value: 42 });
    } finally {
      controller.abort();
    }
  });

  it("trailing: another debounced function of the same store hears a call on its key at once; one on another key or another store does not", async () => {
    const key = uniqueKey("announce");
    const store = new MemoryStore();
    const controller = new AbortController();
    const options = { wait: "1h" as const, signal: controller.signal };
    const A = debounce(store, key, (x: string) => x, options);
    const B = debounce(store, key, (x: string) => x, options);
    const other = debounce(store, `${key}:other`, (x: string) => x, options);
    const elsewhere = debounce(new MemoryStore(), key, (x: string) => x, options);
    try {
      const fromA = A("a");
      const fromOther = other("o");
      const fromElsewhere = elsewhere("e");
      await sleep(20);
      const calledAt = performance.now();
      const fromB = B("b");
      assert.deepEqual(await fromA, { ran: false, reason: "superseded" });
      assert.ok(performance.now() - calledAt < 200, "told at once, long before its wait");
      assert.equal(other.pending, true);
      assert.equal(elsewhere.pending, true);
      assert.deepEqual(await B.flush(), { ran: true, ok: true, value: "b" });
      assert.deepEqual(await fromB, { ran: true, ok: true, value: "b" });
      assert.deepEqual(await other.flush(), { ran: true, ok: true, value: "o" });
      assert.deepEqual(await fromOther, { ran: true, ok: true, value: "o" });
      assert.deepEqual(await elsewhere.flush(), { ran: true, ok: true, value: "e" });
      assert.deepEqual(await fromElsewhere, { ran: true, ok: true, value: "e" });
    } finally {
      controller.abort();
    }
  });

  it("trailing: a call on the key of a leading burst fails as on Redis (WRONGTYPE): one key per edge", async () => {
    const store = new MemoryStore();
    const key = uniqueKey("edges");
    const leading = debounce(store, key, () => {}, { wait: 1_000, edge: "leading" });
    const trailing = debounce(store, key, () => {}, { wait: 1_000 });
    assert.equal((await leading()).ran, true);
    await assert.rejects(trailing(), /^Error: WRONGTYPE .*one key per edge/);
  });
});

describe("memory stores", () => {
  it("two MemoryStores share nothing: each has its own locks", async () => {
    const key = uniqueKey("apart");
    const one = await acquireLock(new MemoryStore(), key);
    const two = await acquireLock(new MemoryStore(), key);
    assert.equal(await one.release(), true);
    assert.equal(await two.release(), true);
  });

  it("fences rise across stores, as across a restart of the process: they come from the system clock in µs", async () => {
    const first = new MemoryStore({ now: () => 0 });
    const key = uniqueKey("fences");
    const fences: bigint[] = [];
    for (let i = 0; i < 500; i++) {
      const lock = await acquireLock(first, key, { fencing: true });
      fences.push(lock.fence!);
      await lock.release();
    }
    // A new store, as after a restart (which takes more than the millisecond that the
    // fences above may run ahead of the clock in), goes on above the old one's fences.
    await sleep(5);
    const restarted = new MemoryStore({ now: () => 0 });
    const after = await acquireLock(restarted, key, { fencing: true });
    fences.push(after.fence!);
    for (let i = 1; i < fences.length; i++) {
      assert.ok(fences[i]! > fences[i - 1]!, `fence ${i}: ${fences[i]} after ${fences[i - 1]}`);
    }
    const nowUs = BigInt(Date.now()) * 1000n;
    assert.ok(nowUs - fences[0]! < 60_000_000n, `fence ${fences[0]} vs now ${nowUs}`);
  });

  it("the options are checked: now must be a function, and option names are known", () => {
    const rows: [unknown, RegExp][] = [
      [{ now: 5 }, /^Cannot create MemoryStore as "now" must be a function: current value is 5$/],
      [{ clock: () => 0 }, /^Cannot create MemoryStore as "clock" is not one of its options/],
      [[], /^Cannot create MemoryStore as "options" must be an object: current value is an array$/],
    ];
    for (const [options, message] of rows) {
      assert.throws(
        () => new MemoryStore(options as ConstructorParameters<typeof MemoryStore>[0]),
        (error: unknown) => error instanceof TypeError && message.test(error.message),
        String(message),
      );
    }
  });

  it("no timer of the store keeps a process alive: a process with held locks, waiters given up and a release in a window ends by itself", async () => {
    const script = `
      import { acquireLock, debounce } from "./mod.ts";
      import { MemoryStore } from "./lock/memory.ts";
      const store = new MemoryStore();
      await acquireLock(store, "held", { ttl: "1h" });
      await acquireLock(store, "held", { timeout: 50, throwOnFail: false });
      const lock = await acquireLock(store, "window", { ttl: 10 });
      const waiter = acquireLock(store, "window", { timeout: 1000, fairnessWindow: "1h" });
      await new Promise((r) => setTimeout(r, 20));
      await lock.release();
      await (await waiter).release();
      const call = debounce(store, "burst", () => {}, { wait: 10 });
      await call();
      await debounce(store, "lead", () => {}, { wait: "1h", edge: "leading" })();
      console.log("done");
    `;
    const root = new URL("..", import.meta.url).pathname;
    const bin = new URL(`../node_modules/.bin/${isBun ? "bun" : "deno"}`, import.meta.url).pathname;
    const args = isBun ? ["-e", script] : ["eval", script];
    const started = performance.now();
    const child = spawn(bin, args, {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    });
    let out = "";
    child.stdout!.on("data", (chunk) => out += chunk);
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const code = await new Promise((resolve) => child.once("close", resolve));
    clearTimeout(killer);
    assert.equal(code, 0, `exit code ${code}, output ${out}`);
    assert.equal(out.trim(), "done");
    assert.ok(performance.now() - started < 10_000);
  });
});

describe("the @baton/lock/memory entry point", () => {
  const root = new URL("..", import.meta.url);

  it("deno.json exports ./memory as lock/memory.ts, beside . as mod.ts", () => {
    const config = JSON.parse(readFileSync(new URL("deno.json", root), "utf8"));
    assert.deepEqual(config.exports, { ".": "./mod.ts", "./memory": "./lock/memory.ts" });
  });

  it("mod.ts does not load it: no module mod.ts imports, directly or not, is the memory store's", () => {
    const seen = new Set<string>();
    const visit = (url: URL) => {
      if (seen.has(url.href)) return;
      seen.add(url.href);
      const source = readFileSync(url, "utf8");
      for (const [, specifier] of source.matchAll(/^(?:import|export)[^;]*?from "(\.[^"]+)"/gms)) {
        visit(new URL(specifier!, url));
      }
    };
    visit(new URL("mod.ts", root));
    const files = [...seen].map((href) => href.slice(root.href.length));
    assert.ok(files.includes("lock/acquire_lock.ts"), files.join(", "));
    assert.deepEqual(files.filter((f) => /memory/.test(f)), []);
  });
});
