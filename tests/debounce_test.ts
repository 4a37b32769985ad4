import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { debounce, type DebounceResult } from "../mod.ts";
import type { LockStore, RedisClient } from "../mod.ts";
import { type _DebounceStore, _STORE } from "../lock/_store.ts";
import { _storeOf } from "../lock/_store_of.ts";
import {
  closePair as closeClients,
  connectPair as connectClients,
  startRedisWithAdmin,
  stopRedisWithAdmin,
} from "./_fixtures.ts";
import { CLIENTS, IOREDIS, MINIMAL, sendRaw } from "./_clients.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { RespClient } from "./_resp.ts";
import { closePair, connectPair, MEMORY, type StoreClient, STORES } from "./_stores.ts";
import type { WorkerConfig, WorkerEvent } from "./_debounce_worker.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const uniqueKey = (name: string) => `test:debounce:${name}:${Date.now()}:${n++}`;

/** Resolves once `done()` is true, checking every 10 ms; rejects after `timeoutMs`. */
async function until(done: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!await done()) {
    if (performance.now() > deadline) throw new Error("condition not met in time");
    await sleep(10);
  }
}

/** A callback that records its calls' arguments and returns a value that names them. */
function recorder() {
  const runs: unknown[][] = [];
  const fn = (...args: unknown[]) => {
    runs.push(args);
    return `ran ${JSON.stringify(args)}`;
  };
  return { runs, fn };
}

/**
 * A client in front of `real` that counts the commands sent and, once `freeze()` is called,
 * never answers again: an instance whose process hung or died, seen from Redis.
 */
function frozenAfter(real: RedisClient) {
  const send = (real as unknown as { sendCommand?: (args: string[]) => Promise<unknown> })
    .sendCommand;
  const viaCall = (real as unknown as { call?: (...args: string[]) => Promise<unknown> }).call;
  const viaSend = (real as unknown as { send?: (c: string, a: string[]) => Promise<unknown> })
    .send;
  let frozen = false;
  const client = {
    sent: [] as string[][],
    sendCommand(args: string[]): Promise<unknown> {
      if (frozen) return new Promise(() => {});
      client.sent.push(args);
      if (viaCall) return viaCall.call(real, ...args);
      if (send) return send.call(real, args);
      return viaSend ? viaSend.call(real, args[0]!, args.slice(1)) : sendRaw(real, args);
    },
  };
  return { client, freeze: () => (frozen = true) };
}

/**
 * A client in front of `real` that counts the replies that were errors, to know when a
 * command in the background has failed.
 */
function failureCounting(real: RedisClient) {
  const { client: forward } = frozenAfter(real);
  const failures: unknown[] = [];
  const client = {
    async sendCommand(args: string[]): Promise<unknown> {
      try {
        return await forward.sendCommand(args);
      } catch (error) {
        // NOSCRIPT is part of sending a script the first time, not a failure.
        if (!/NOSCRIPT/.test(String(error))) failures.push(error);
        throw error;
      }
    },
  };
  return { client, failures };
}

/** A call the store recorded: its arguments as JSON, and its position in the burst. */
interface Recorded {
  argsJson: string;
  seq: number;
}

/**
 * `client` as one instance of a service, seen at the store's seam, on any store: the calls
 * the store has recorded (pushed to `recorded` once the store answered), `holdBack`'s first
 * call held back until `release()`, which records it at once (before anything that comes
 * after the call to release), as a call whose script Redis had to load first (NOSCRIPT, then
 * EVAL) reaches Redis late; and `freeze()`, after which the instance never hears from the
 * store again: its process hung or died.
 */
function spied(
  client: StoreClient,
  { holdBack, recorded = [] }: { holdBack?: string; recorded?: Recorded[] } = {},
) {
  const store = _storeOf(client, "test");
  const d = store.debounce;
  let frozen = false;
  let release: (() => void) | undefined;
  const gate = <T>(op: () => Promise<T>): Promise<T> => frozen ? new Promise(() => {}) : op();
  const debounceStore: _DebounceStore = {
    lead: (...args) => gate(() => d.lead(...args)),
    record: (key, token, argsJson, waitMs, ttlMs) =>
      gate(() => {
        const send = () =>
          d.record(key, token, argsJson, waitMs, ttlMs).then((result) => {
            recorded.push({ argsJson, seq: result.seq });
            return result;
          });
        if (holdBack === undefined || argsJson !== holdBack) return send();
        holdBack = undefined;
        return new Promise((resolve, reject) => {
          release = () => void send().then(resolve, reject);
        });
      }),
    claim: (...args) => gate(() => d.claim(...args)),
    takeover: (...args) => gate(() => d.takeover(...args)),
    flush: (...args) => gate(() => d.flush(...args)),
    cancel: (...args) => gate(() => d.cancel(...args)),
    announcements: (key, subscriber, onAnnouncement) =>
      d.announcements(key, subscriber, (announcement) => {
        if (!frozen) onAnnouncement(announcement);
      }),
  };
  const wrapped: LockStore = { [_STORE]: { ...store, debounce: debounceStore } };
  return {
    client: wrapped,
    recorded,
    /** Whether the store recorded a call with `args`. */
    has: (...args: unknown[]) => recorded.some((r) => r.argsJson === JSON.stringify(args)),
    release: () => release!(),
    freeze: () => void (frozen = true),
  };
}

/** Replaces a burst's hash with a string, so that every script on it fails with WRONGTYPE. */
async function breakKey(admin: RespClient, key: string): Promise<void> {
  await admin.sendCommand(["DEL", key]);
  await admin.sendCommand(["SET", key, "not a hash"]);
}

/** Checks an error that a call rejected with for a takeover that failed in the background. */
function isBackgroundError(cause: (cause: unknown) => boolean) {
  return (error: unknown) => {
    assert.ok(error instanceof Error, String(error));
    assert.match(error.message, /^Cannot call debounced function as a takeover of a burst on /);
    assert.match(error.message, /with no "onError" to receive it; nothing was sent/);
    assert.ok(cause(error.cause), `cause: ${String(error.cause)}`);
    return true;
  };
}

// ---------------------------------------------------------------------------------------------
// Several processes, Deno and Bun at the same time, on one debounced key.

const root = new URL("..", import.meta.url);
const worker = new URL("./_debounce_worker.ts", import.meta.url).pathname;
const runtimes = {
  deno: { bin: new URL("node_modules/.bin/deno", root).pathname, args: ["run", "-A", worker] },
  bun: { bin: new URL("node_modules/.bin/bun", root).pathname, args: ["run", worker] },
};

/** A worker process and the events it printed. */
interface Worker {
  name: string;
  child: ChildProcess;
  events: WorkerEvent[];
  exited: Promise<void>;
}

function startWorker(runtime: keyof typeof runtimes, config: WorkerConfig): Worker {
  const { bin, args } = runtimes[runtime];
  const child = spawn(bin, [...args, JSON.stringify(config)], {
    cwd: root.pathname,
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  });
  // A killed worker's stdin fails with EPIPE when ended; that is expected.
  child.stdin!.on("error", () => {});
  const events: WorkerEvent[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    try {
      events.push(JSON.parse(line));
    } catch {
      // Not an event (a runtime's own output): ignore it.
    }
  });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  return { name: config.name, child, events, exited };
}

/** Ends every worker: closes stdin (they exit by themselves), then kills what is left. */
async function stopWorkers(workers: Worker[]): Promise<void> {
  for (const w of workers) w.child.stdin?.end();
  const killer = setTimeout(() => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
  }, 3_000);
  await Promise.all(workers.map((w) => w.exited));
  clearTimeout(killer);
}

/**
 * Errors thrown from a timer or a callback of this process. Bun's test runner fails the test
 * they happen in; Deno's runs node:test tests on without a word, so this file listens for
 * them and fails when there was any.
 */
const uncaught: unknown[] = [];
const onUncaught = (error: unknown) => uncaught.push(error);

describe("debounce", () => {
  let server: RedisServer;
  let admin: RespClient;
  before(async () => {
    process.on("uncaughtException", onUncaught);
    ({ server, admin } = await startRedisWithAdmin());
  });
  after(async () => {
    process.off("uncaughtException", onUncaught);
    await stopRedisWithAdmin(server, admin);
    assert.deepEqual(uncaught, [], "errors thrown from timers or callbacks");
  });

  describe("on each store", () => {
    for (const kind of STORES) {
      describe(kind.name, () => {
        let a: StoreClient;
        let b: StoreClient;
        before(async () => [a, b] = await connectPair(kind, server.url));
        after(() => closePair(kind, a, b));

        it("trailing: a burst from two instances runs once, after the quiet period, on the instance of the last call, with its arguments", async () => {
          const key = uniqueKey("trailing");
          const controller = new AbortController();
          const order: string[] = [];
          const ranA = recorder();
          const ranB = recorder();
          const options = { wait: 250, takeoverAfter: 200, signal: controller.signal };
          const A = debounce(a, key, (...args: unknown[]) => {
            order.push("run");
            return ranA.fn(...args);
          }, options);
          const B = debounce(b, key, ranB.fn, options);
          try {
            const first = A("a", 1);
            first.then(() => order.push("first settled"));
            await sleep(30);
            const second = B({ b: 2 });
            await sleep(30);
            const lastCalledAt = performance.now();
            const last = A("a", 3);
            assert.equal(A.pending, true);
            const [r1, r2, r3] = await Promise.all([first, second, last]);
            const ranAfterMs = performance.now() - lastCalledAt;
            assert.deepEqual(r1, { ran: false, reason: "superseded" });
            assert.deepEqual(r2, { ran: false, reason: "superseded" });
            assert.deepEqual(r3, { ran: true, ok: true, value: `ran ["a",3]` });
            assert.deepEqual(ranA.runs, [["a", 3]]);
            assert.deepEqual(ranB.runs, []);
            // The earlier call of the same instance learnt at once, before the execution.
            assert.deepEqual(order, ["first settled", "run"]);
            assert.ok(ranAfterMs >= 240, `ran ${ranAfterMs} ms after the last call`);
            assert.equal(A.pending, false);
            // Past the takeover delay too, still one execution.
            await sleep(500);
            assert.equal(ranA.runs.length + ranB.runs.length, 1);
          } finally {
            controller.abort();
          }
        });

        it("a call after the quiet period starts a new burst, which runs again", async () => {
          const key = uniqueKey("bursts");
          const controller = new AbortController();
          const { runs, fn } = recorder();
          const spy = spied(a);
          const call = debounce(spy.client, key, fn, { wait: 60, signal: controller.signal });
          try {
            assert.equal((await call(1)).ran, true);
            assert.equal((await call(2)).ran, true);
            assert.deepEqual(runs, [[1], [2]]);
            assert.deepEqual(spy.recorded.map((r) => r.seq), [1, 1], "each the first of its burst");
          } finally {
            controller.abort();
          }
        });

        it("the caller whose call ran gets fn's error unchanged; the others learn they did not run", async () => {
          const key = uniqueKey("error");
          const controller = new AbortController();
          const thrown = new Error("index unavailable");
          let runs = 0;
          const call = debounce(a, key, async (_id: string) => {
            runs++;
            await sleep(1);
            throw thrown;
          }, { wait: 80, signal: controller.signal });
          try {
            const results = await Promise.all([call("doc1"), call("doc2")]);
            assert.deepEqual(results[0], { ran: false, reason: "superseded" });
            assert.equal(results[1].ran, true);
            assert.ok(results[1].ran && !results[1].ok && results[1].error === thrown);
            assert.equal(runs, 1);
          } finally {
            controller.abort();
          }
        });

        it("instances calling at the same moment: exactly one runs, with the arguments the store recorded last", async () => {
          const key = uniqueKey("tie");
          const controller = new AbortController();
          const runs: unknown[][] = [];
          const recorded: Recorded[] = [];
          const instances = [a, b, a, b].map((client) =>
            debounce(spied(client, { recorded }).client, key, (...args: unknown[]) => {
              runs.push(args);
              return args[0];
            }, { wait: 200, takeoverAfter: 150, signal: controller.signal })
          );
          try {
            const results: Promise<DebounceResult<unknown>>[] = [];
            for (let round = 0; round < 3; round++) {
              instances.forEach((call, i) => results.push(call(`i${i}r${round}`)));
              await sleep(20);
            }
            const settled = await Promise.all(results);
            const ran = settled.filter((r) => r.ran);
            assert.equal(ran.length, 1);
            assert.equal(runs.length, 1);
            assert.deepEqual(ran[0], { ran: true, ok: true, value: runs[0]![0] });
            // The call the store recorded last (the 12th of the burst) is the one that ran.
            const last = recorded.reduce((x, y) => y.seq > x.seq ? y : x);
            assert.equal(last.seq, 12);
            assert.equal(JSON.stringify(runs[0]), last.argsJson);
            for (const r of settled) if (!r.ran) assert.equal(r.reason, "superseded");
            await sleep(400);
            assert.equal(runs.length, 1);
          } finally {
            controller.abort();
          }
        });

        it("leading: the first call runs at once, calls until wait ms of quiet are dropped, then a new burst runs", async () => {
          const key = uniqueKey("leading");
          const controller = new AbortController();
          const ranA = recorder();
          const ranB = recorder();
          const options = { wait: 200, edge: "leading" as const, signal: controller.signal };
          const A = debounce(a, key, ranA.fn, options);
          const B = debounce(b, key, ranB.fn, options);
          try {
            assert.deepEqual(await A("first"), { ran: true, ok: true, value: `ran ["first"]` });
            // Each dropped call pushes the end of the burst: 3 × 90 ms > wait, one burst still.
            for (let i = 0; i < 3; i++) {
              await sleep(90);
              assert.deepEqual(await B(`dup${i}`), { ran: false, reason: "dropped" });
            }
            assert.deepEqual(await A("again"), { ran: false, reason: "dropped" });
            await sleep(300);
            assert.deepEqual(await B("next"), { ran: true, ok: true, value: `ran ["next"]` });
            assert.deepEqual(ranA.runs, [["first"]]);
            assert.deepEqual(ranB.runs, [["next"]]);
            assert.equal(await A.flush(), null);
          } finally {
            controller.abort();
          }
        });

        it("leading: clear() while a call is on its way cancels it if it is dropped, and lets it run if it is the burst's first", async () => {
          const key = uniqueKey("leading-clear");
          const controller = new AbortController();
          const { runs, fn } = recorder();
          const call = debounce(a, key, fn, {
            wait: 5_000,
            edge: "leading",
            signal: controller.signal,
          });
          try {
            const first = call("first");
            const dropped = call("dropped");
            assert.equal(await call.clear(), false);
            assert.deepEqual(await first, { ran: true, ok: true, value: `ran ["first"]` });
            assert.deepEqual(await dropped, { ran: false, reason: "cancelled" });
            assert.deepEqual(await call("later"), { ran: false, reason: "dropped" });
            assert.deepEqual(runs, [["first"]]);
          } finally {
            controller.abort();
          }
        });

        it("clear() cancels the pending burst held by this instance: no instance runs it", async () => {
          const key = uniqueKey("clear");
          const controller = new AbortController();
          const ranA = recorder();
          const ranB = recorder();
          const options = { wait: 250, takeoverAfter: 100, signal: controller.signal };
          const spyA = spied(a);
          const A = debounce(spyA.client, key, ranA.fn, options);
          const B = debounce(b, key, ranB.fn, options);
          try {
            const fromB = B("b");
            await sleep(20);
            const fromA = A("a");
            await until(() => spyA.has("a"));
            assert.equal(await A.clear(), true);
            assert.deepEqual(await fromA, { ran: false, reason: "cancelled" });
            assert.deepEqual(await fromB, { ran: false, reason: "superseded" });
            await sleep(450); // past due + takeoverAfter: no takeover of a cancelled burst
            assert.deepEqual(ranA.runs, []);
            assert.deepEqual(ranB.runs, []);
            assert.equal(await A.clear(), false);
            assert.equal(await B.flush(), null, "nothing pending");
            assert.deepEqual(await B("again"), { ran: true, ok: true, value: `ran ["again"]` });
          } finally {
            controller.abort();
          }
        });

        it("clear() leaves a later call of another instance alone", async () => {
          const key = uniqueKey("clear-other");
          const controller = new AbortController();
          const ranA = recorder();
          const ranB = recorder();
          const options = { wait: 100, signal: controller.signal };
          const spyB = spied(b);
          const A = debounce(a, key, ranA.fn, options);
          const B = debounce(spyB.client, key, ranB.fn, options);
          try {
            const fromA = A("a");
            await sleep(20);
            const fromB = B("b");
            await until(() => spyB.has("b"));
            assert.equal(await A.clear(), false);
            // Superseded when the announcement told it first, otherwise cancelled.
            assert.equal((await fromA).ran, false);
            assert.deepEqual(await fromB, { ran: true, ok: true, value: `ran ["b"]` });
            assert.deepEqual(ranA.runs, []);
          } finally {
            controller.abort();
          }
        });

        it("clear() then a new call: clear() cancels only the earlier call; the new one runs with its arguments", async () => {
          const key = uniqueKey("clear-then-call");
          const controller = new AbortController();
          const { runs, fn } = recorder();
          const call = debounce(a, key, fn, { wait: 100, signal: controller.signal });
          try {
            // Loads the cancel script, so that the three commands reach Redis in order.
            assert.equal(await call.clear(), false);
            const first = call("first");
            const cleared = call.clear();
            const second = call("second");
            assert.deepEqual(await first, { ran: false, reason: "cancelled" });
            assert.equal(await cleared, true);
            assert.deepEqual(await second, { ran: true, ok: true, value: `ran ["second"]` });
            assert.deepEqual(runs, [["second"]]);
          } finally {
            controller.abort();
          }
        });

        for (const thenFlush of [false, true]) {
          it(
            `a call that the store records after clear()'s cancel is still cancelled, by its own token${
              thenFlush ? ", and a flush() right behind it does not run it" : ""
            }`,
            async () => {
              const key = uniqueKey("clear-late");
              const controller = new AbortController();
              const { runs, fn } = recorder();
              const held = spied(a, { holdBack: `["late"]` });
              const call = debounce(held.client, key, fn, { wait: 150, signal: controller.signal });
              try {
                const late = call("late");
                assert.equal(await call.clear(), false); // nothing in the store yet
                held.release(); // the store records the call now, after the cancel
                if (thenFlush) assert.equal(await call.flush(), null);
                assert.deepEqual(await late, { ran: false, reason: "cancelled" });
                assert.ok(held.has("late"));
                await sleep(300); // past its due time
                assert.deepEqual(runs, []);
                assert.equal(await call.flush(), null);
              } finally {
                controller.abort();
              }
            },
          );
        }

        it("aborting the signal rejects waiting calls with its reason, cancels the burst, and rejects later calls at once", async () => {
          const key = uniqueKey("abort");
          const controller = new AbortController();
          const { runs, fn } = recorder();
          const spy = spied(a);
          const call = debounce(spy.client, key, fn, { wait: 300, signal: controller.signal });
          const other = debounce(b, key, fn, { wait: 300 });
          const reason = new Error("shutting down");
          const pending = call("a");
          await until(() => spy.has("a"));
          controller.abort(reason);
          await assert.rejects(pending, (error) => error === reason);
          // Cancelled in the store: another instance finds nothing pending to flush.
          assert.equal(await other.flush(), null);
          await assert.rejects(call("b"), (error) => error === reason);
          await assert.rejects(call.flush(), (error) => error === reason);
          await sleep(350);
          assert.deepEqual(runs, []);
        });

        it("flush() runs the pending burst at once, and the caller gets the same outcome", async () => {
          const key = uniqueKey("flush");
          const controller = new AbortController();
          const { runs, fn } = recorder();
          const spy = spied(a);
          const call = debounce(spy.client, key, fn, { wait: 5_000, signal: controller.signal });
          try {
            const first = call("old");
            const last = call("new");
            await until(() => spy.has("new"));
            const flushed = await call.flush();
            assert.deepEqual(flushed, { ran: true, ok: true, value: `ran ["new"]` });
            assert.deepEqual(await last, flushed);
            assert.deepEqual(await first, { ran: false, reason: "superseded" });
            assert.deepEqual(runs, [["new"]]);
            assert.equal(call.pending, false);
            assert.equal(await call.flush(), null);
          } finally {
            controller.abort();
          }
        });

        it("flush() in another instance runs the last call with its arguments read back from JSON; the caller learns it ran elsewhere", async () => {
          const key = uniqueKey("flush-elsewhere");
          const controller = new AbortController();
          const ranA = recorder();
          const ranB = recorder();
          const options = { wait: 300, signal: controller.signal };
          const spyA = spied(a);
          const A = debounce(spyA.client, key, ranA.fn, options);
          const B = debounce(b, key, ranB.fn, options);
          const args = [
            "dóc-42 ✓",
            { nested: { list: [1, -2.5, 0, null, true, false, ""], empty: {}, "a key": [] } },
            null,
            Number.MAX_SAFE_INTEGER,
          ];
          try {
            const fromA = A(...args);
            await until(() => spyA.recorded.length === 1);
            const flushed = await B.flush();
            assert.ok(flushed?.ran && flushed.ok);
            assert.deepEqual(ranB.runs, [args]);
            assert.notEqual(ranB.runs[0]![1], args[1]);
            assert.deepEqual(await fromA, { ran: false, reason: "ran-elsewhere" });
            assert.deepEqual(ranA.runs, []);
          } finally {
            controller.abort();
          }
        });

        it("an instance standing by for a takeover waits for a later call that moved the burst, which runs where it was made", async () => {
          const key = uniqueKey("takeover-moved");
          const controller = new AbortController();
          const ranA = recorder();
          const ranB = recorder();
          const options = { wait: 200, takeoverAfter: 100, signal: controller.signal };
          const A = debounce(a, key, ranA.fn, options);
          const B = debounce(b, key, ranB.fn, options);
          try {
            const fromA = A("a");
            await sleep(10);
            void B("b1"); // told at once, A stands by to take over at about 10 + 200 + 100
            await sleep(140);
            // Before b1's claim (210); due at 350, when B runs it: A's check at 310 finds
            // the takeover 140 ms away.
            const fromB = B("b2");
            assert.deepEqual(await fromA, { ran: false, reason: "superseded" });
            assert.deepEqual(await fromB, { ran: true, ok: true, value: `ran ["b2"]` });
            await sleep(200);
            assert.deepEqual(ranA.runs, []);
            assert.deepEqual(ranB.runs, [["b2"]]);
          } finally {
            controller.abort();
          }
        });

        it("when the instance holding the last call stops answering mid-wait, an instance that called in the burst runs it once, takeoverAfter ms later, with its arguments", async () => {
          const key = uniqueKey("takeover");
          const controller = new AbortController();
          const ranA = recorder();
          const ranB = recorder();
          const errors: unknown[] = [];
          const options = {
            wait: 300,
            takeoverAfter: 150,
            signal: controller.signal,
            onError: (e: unknown) => errors.push(e),
          };
          const A = debounce(a, key, ranA.fn, options);
          const frozen = spied(b);
          const B = debounce(frozen.client, key, ranB.fn, options);
          try {
            const fromA = A("a");
            await sleep(20);
            void B("b", { last: true });
            await until(() => frozen.has("b", { last: true }));
            frozen.freeze();
            assert.deepEqual(await fromA, { ran: false, reason: "superseded" });
            assert.deepEqual(ranA.runs, []);
            await until(() => ranA.runs.length > 0, 2_000);
            assert.deepEqual(ranA.runs, [["b", { last: true }]]);
            await sleep(200);
            assert.deepEqual(ranA.runs.length + ranB.runs.length, 1);
            assert.deepEqual(errors, []);
          } finally {
            controller.abort();
          }
        });
      });
    }
  });

  describe("on Redis: the keys and the channel", () => {
    for (const kind of CLIENTS) {
      describe(kind.name, () => {
        let a: RedisClient;
        let b: RedisClient;
        before(async () => [a, b] = await connectClients(kind, server.url));
        after(() => closeClients(kind, a, b));

        it("every key expires: the burst's key lives wait + 2 * takeoverAfter ms after its last call, then is gone", async () => {
          const key = uniqueKey("expiry");
          const controller = new AbortController();
          const { fn } = recorder();
          const call = debounce(a, key, fn, {
            wait: 300,
            takeoverAfter: 100,
            signal: controller.signal,
          });
          try {
            const pending = call("x");
            await until(async () => await admin.sendCommand(["EXISTS", key]) === 1);
            const pttl = Number(await admin.sendCommand(["PTTL", key]));
            assert.ok(pttl > 0 && pttl <= 500, `pttl ${pttl}`);
            assert.equal(await admin.sendCommand(["HGET", key, "state"]), "pending");
            assert.equal(await admin.sendCommand(["HGET", key, "args"]), `["x"]`);
            assert.equal((await pending).ran, true);
            assert.equal(await admin.sendCommand(["HGET", key, "state"]), "claimed");
            await until(async () => await admin.sendCommand(["EXISTS", key]) === 0, 1_000);
          } finally {
            controller.abort();
          }
        });

        it("leading: the burst's key lives wait ms after its last call, then is gone", async () => {
          const key = uniqueKey("leading-key");
          const controller = new AbortController();
          const { fn } = recorder();
          const options = { wait: 100, edge: "leading" as const, signal: controller.signal };
          const A = debounce(a, key, fn, options);
          const B = debounce(b, key, fn, options);
          try {
            assert.equal((await A("first")).ran, true);
            assert.ok(Number(await admin.sendCommand(["PTTL", key])) > 0);
            await sleep(60);
            assert.equal((await B("dup")).ran, false);
            const pttl = Number(await admin.sendCommand(["PTTL", key]));
            assert.ok(pttl > 60 && pttl <= 100, `pushed back to wait: pttl ${pttl}`);
            await sleep(150);
            assert.equal(await admin.sendCommand(["EXISTS", key]), 0);
          } finally {
            controller.abort();
          }
        });

        it("a cancelled burst stays in its key as cancelled, with the last call's arguments", async () => {
          const key = uniqueKey("cancelled-key");
          const controller = new AbortController();
          const { fn } = recorder();
          const call = debounce(a, key, fn, { wait: 300, signal: controller.signal });
          const pending = call("a");
          await until(async () => await admin.sendCommand(["HGET", key, "state"]) === "pending");
          controller.abort(new Error("shutting down"));
          await assert.rejects(pending);
          assert.equal(await admin.sendCommand(["HGET", key, "state"]), "cancelled");
          assert.equal(await admin.sendCommand(["HGET", key, "args"]), `["a"]`);
        });

        it("a waiting call superseded by another instance learns it at once through the channel, or at its own check when the client cannot subscribe", async () => {
          const key = uniqueKey("announce");
          const controller = new AbortController();
          const ranA = recorder();
          const ranB = recorder();
          const subscribes = typeof (a as { duplicate?: unknown }).duplicate === "function";
          const wait = subscribes ? 3_000 : 300;
          const options = { wait, takeoverAfter: 100, signal: controller.signal };
          const A = debounce(a, key, ranA.fn, options);
          const B = debounce(b, key, ranB.fn, options);
          const listeners = async () =>
            ((await admin.sendCommand(["PUBSUB", "NUMSUB", `baton:debounce:${key}`])) as [
              string,
              number,
            ])[1];
          try {
            const fromA = A("a");
            await until(async () => await admin.sendCommand(["HGET", key, "args"]) === `["a"]`);
            if (subscribes) await until(async () => await listeners() === 1);
            else assert.equal(await listeners(), 0);
            const fromB = B("b");
            const early = await Promise.race([fromA, sleep(wait / 2).then(() => "still waiting")]);
            if (subscribes) assert.deepEqual(early, { ran: false, reason: "superseded" });
            else {
              assert.equal(early, "still waiting");
              assert.deepEqual(await fromA, { ran: false, reason: "superseded" });
            }
            if (subscribes) await B.flush();
            assert.deepEqual(await fromB, { ran: true, ok: true, value: `ran ["b"]` });
            assert.deepEqual(ranA.runs, []);
            // Done: the shared subscriber lets the channel go once idle.
            await until(async () => await listeners() === 0);
          } finally {
            controller.abort();
          }
        });

        /** A burst whose last call is a frozen instance's, with `A` standing by to take it over. */
        async function orphanedBurst(
          key: string,
          A: (arg: string) => Promise<DebounceResult<unknown>>,
          signal: AbortSignal,
        ) {
          const frozen = frozenAfter(b);
          const B = debounce(frozen.client, key, (_arg: string) => {}, { wait: 300, signal });
          const fromA = A("a");
          await sleep(20);
          void B("b");
          await until(async () => await admin.sendCommand(["HGET", key, "args"]) === `["b"]`);
          frozen.freeze();
          assert.deepEqual(await fromA, { ran: false, reason: "superseded" });
        }

        it("a Redis error of the background takeover check goes to onError", async () => {
          const key = uniqueKey("takeover-redis-error");
          const controller = new AbortController();
          const errors: unknown[] = [];
          const { runs, fn } = recorder();
          const A = debounce(a, key, fn, {
            wait: 300,
            takeoverAfter: 150,
            signal: controller.signal,
            onError: (e) => errors.push(e),
          });
          try {
            await orphanedBurst(key, A, controller.signal);
            await breakKey(admin, key);
            await until(() => errors.length > 0, 3_000);
            await sleep(100);
            assert.equal(errors.length, 1);
            assert.match(String((errors[0] as Error).message), /WRONGTYPE/);
            assert.deepEqual(runs, []);
          } finally {
            controller.abort();
          }
        });

        it("without onError, a Redis error of the background takeover check does not crash the process: the next call rejects with it, before sending anything, and the call after that goes ahead", async () => {
          const key = uniqueKey("takeover-redis-error-kept");
          const controller = new AbortController();
          const { runs, fn } = recorder();
          const counted = failureCounting(a);
          const A = debounce(counted.client, key, fn, {
            wait: 300,
            takeoverAfter: 150,
            signal: controller.signal,
          });
          try {
            await orphanedBurst(key, A, controller.signal);
            await breakKey(admin, key);
            await until(() => counted.failures.length > 0, 3_000);
            await sleep(50); // an error thrown from the timer would be uncaught by now
            assert.deepEqual(uncaught, []);
            await admin.sendCommand(["DEL", key]);
            const sent = counted.failures.length;
            await assert.rejects(
              A("next"),
              isBackgroundError((cause) => cause === counted.failures[0]),
            );
            assert.match(String((counted.failures[0] as Error).message), /WRONGTYPE/);
            assert.equal(await admin.sendCommand(["EXISTS", key]), 0);
            assert.equal(counted.failures.length, sent);
            assert.deepEqual(await A("after"), { ran: true, ok: true, value: `ran ["after"]` });
            assert.deepEqual(runs, [["after"]]);
          } finally {
            controller.abort();
          }
        });
      });
    }
  });

  describe("cost and documented limits", () => {
    let real: RespClient;
    before(async () => {
      real = await RespClient.connect(server.url);
    });
    after(async () => {
      await real.close();
    });

    it("a trailing call costs two round trips (one when a later call of the same instance supersedes it); a leading call costs one", async () => {
      const controller = new AbortController();
      const sent: string[] = [];
      const counting = {
        sendCommand(args: string[]) {
          sent.push(args[0]!);
          return real.sendCommand(args);
        },
      };
      const { fn } = recorder();
      const trailing = debounce(counting, uniqueKey("cost"), fn, {
        wait: 50,
        signal: controller.signal,
      });
      const leading = debounce(counting, uniqueKey("cost-leading"), fn, {
        wait: 50,
        edge: "leading",
        signal: controller.signal,
      });
      try {
        // Load the scripts first (EVALSHA, NOSCRIPT, EVAL), then count.
        await trailing("warm-up");
        await leading("warm-up");
        sent.length = 0;
        assert.equal((await trailing("one")).ran, true);
        assert.deepEqual(sent, ["EVALSHA", "EVALSHA"]);
        sent.length = 0;
        await Promise.all([trailing(1), trailing(2), trailing(3)]);
        assert.deepEqual(sent, ["EVALSHA", "EVALSHA", "EVALSHA", "EVALSHA"]);
        sent.length = 0;
        await sleep(60);
        assert.equal((await leading("once")).ran, true);
        assert.equal((await leading("dropped")).ran, false);
        assert.deepEqual(sent, ["EVALSHA", "EVALSHA"]);
      } finally {
        controller.abort();
      }
    });

    it("a call superseded by another instance and told on the channel costs one round trip: it never claims (MONITOR)", async () => {
      const key = uniqueKey("channel-cost");
      const monitor = await RespClient.connect(server.url);
      const lines: string[] = [];
      monitor.onPush = (line) => lines.push(String(line));
      await monitor.sendCommand(["MONITOR"]);
      const a = await IOREDIS.connect(server.url);
      const b = await IOREDIS.connect(server.url);
      const controller = new AbortController();
      const { fn } = recorder();
      const options = { wait: 3_000, signal: controller.signal };
      const A = debounce(a, key, fn, options);
      const B = debounce(b, key, fn, options);
      try {
        await B.flush(); // loads the flush script: nothing pending
        const fromA = A("a");
        await until(async () =>
          ((await admin.sendCommand(["PUBSUB", "NUMSUB", `baton:debounce:${key}`])) as [
            string,
            number,
          ])[1] === 1
        );
        const fromB = B("b");
        assert.deepEqual(await fromA, { ran: false, reason: "superseded" });
        await B.flush();
        assert.equal((await fromB).ran, true);
        const marker = `marker:${key}`;
        await admin.sendCommand(["ECHO", marker]);
        await until(() => lines.some((l) => l.includes(marker)));
        const scripts = lines.filter((l) =>
          l.includes(key) && !l.includes(" lua]") && /\] "EVAL/.test(l)
        );
        // The flush that found nothing, A's call, B's call, B's flush: A never claimed.
        assert.equal(scripts.length, 4, scripts.join("\n"));
      } finally {
        controller.abort();
        await monitor.close();
        await IOREDIS.close(a);
        await IOREDIS.close(b);
      }
    });

    it("one client debouncing on many keys stays subscribed to at most 64 idle channels besides those in use: the rest are dropped", async () => {
      const prefix = uniqueKey("channels");
      const client = await IOREDIS.connect(server.url);
      const controller = new AbortController();
      const { fn } = recorder();
      const channels = async () =>
        await admin.sendCommand(["PUBSUB", "CHANNELS", `baton:debounce:${prefix}:*`]) as string[];
      try {
        // A call that waits all along keeps the shared subscriber connection in use.
        const anchor = debounce(client, `${prefix}:anchor`, fn, {
          wait: 60_000,
          signal: controller.signal,
        });
        const held = anchor("held");
        held.catch(() => {});
        await until(async () => (await channels()).length === 1);
        for (let i = 0; i < 100; i++) {
          const call = debounce(client, `${prefix}:${i}`, fn, {
            wait: 1,
            signal: controller.signal,
          });
          assert.equal((await call(i)).ran, true);
        }
        await until(async () => (await channels()).length <= 1 + 64);
        const left = await channels();
        assert.ok(left.includes(`baton:debounce:${prefix}:anchor`), left.join(", "));
        // The last keys' channels are still there, for a key called again soon.
        assert.ok(left.includes(`baton:debounce:${prefix}:99`), left.join(", "));
      } finally {
        controller.abort();
        await IOREDIS.close(client);
      }
    });

    it("if the only instance in a burst dies before running it, nothing runs and its key expires wait + 2 * takeoverAfter ms after the last call", async () => {
      const key = uniqueKey("lost");
      const frozen = frozenAfter(real as unknown as RedisClient);
      const { runs, fn } = recorder();
      const call = debounce(frozen.client, key, fn, { wait: 300, takeoverAfter: 100 });
      void call("lost");
      await until(async () => await admin.sendCommand(["HGET", key, "state"]) === "pending");
      frozen.freeze();
      const pttl = Number(await admin.sendCommand(["PTTL", key]));
      assert.ok(pttl > 0 && pttl <= 500, `pttl ${pttl}`);
      await until(async () => await admin.sendCommand(["EXISTS", key]) === 0, 1_000);
      assert.deepEqual(runs, []);
    });
  });

  describe("errors with no caller, and lost state", () => {
    // The raw client and the memory store: what is tested here does not depend on the
    // client, and each store is tested through every client above.
    for (const kind of STORES.filter((k) => k.client === MINIMAL || k === MEMORY)) {
      describe(kind.name, () => {
        let client: StoreClient;
        before(async () => client = await kind.connect(server.url));
        after(() => kind.close(client));

        it("fn's error in a takeover goes to onError, since no caller waits for it", async () => {
          const key = uniqueKey("takeover-error");
          const controller = new AbortController();
          const errors: unknown[] = [];
          const thrown = new Error("rebuild failed");
          const A = debounce(client, key, (_x: string) => {
            throw thrown;
          }, {
            wait: 200,
            takeoverAfter: 100,
            signal: controller.signal,
            onError: (e) => errors.push(e),
          });
          const frozen = spied(client);
          const B = debounce(frozen.client, key, (_x: string) => {}, {
            wait: 200,
            signal: controller.signal,
          });
          try {
            const fromA = A("a");
            await sleep(20);
            void B("b");
            await until(() => frozen.has("b"));
            frozen.freeze();
            assert.deepEqual(await fromA, { ran: false, reason: "superseded" });
            await until(() => errors.length > 0, 2_000);
            assert.deepEqual(errors, [thrown]);
            assert.equal(errors[0], thrown);
          } finally {
            controller.abort();
          }
        });

        it("without onError, fn's error in a takeover does not crash the process: the next call (or flush()) rejects with it, once", async () => {
          const key = uniqueKey("takeover-error-kept");
          const controller = new AbortController();
          const thrown = new Error("rebuild failed");
          const runs: string[] = [];
          const A = debounce(client, key, (x: string) => {
            runs.push(x);
            if (x === "b") throw thrown;
            return x;
          }, { wait: 200, takeoverAfter: 100, signal: controller.signal });
          const frozen = spied(client);
          const B = debounce(frozen.client, key, (_x: string) => {}, {
            wait: 200,
            signal: controller.signal,
          });
          try {
            const fromA = A("a");
            await sleep(20);
            void B("b");
            await until(() => frozen.has("b"));
            frozen.freeze();
            assert.deepEqual(await fromA, { ran: false, reason: "superseded" });
            await until(() => runs.length > 0, 2_000);
            await sleep(50); // an error thrown from the timer would be uncaught by now
            assert.deepEqual(uncaught, []);
            assert.deepEqual(runs, ["b"]);
            await assert.rejects(A.flush(), isBackgroundError((cause) => cause === thrown));
            assert.deepEqual(await A("c"), { ran: true, ok: true, value: "c" });
            assert.deepEqual(runs, ["b", "c"]);
          } finally {
            controller.abort();
          }
        });

        it("a debounced function listens on its signal only while it has calls, so many of them can share one signal", async () => {
          const controller = new AbortController();
          const signal = controller.signal;
          let listeners = 0;
          const add = signal.addEventListener.bind(signal);
          const remove = signal.removeEventListener.bind(signal);
          signal.addEventListener = ((...args: Parameters<typeof add>) => {
            listeners++;
            add(...args);
          }) as typeof add;
          signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
            listeners--;
            remove(...args);
          }) as typeof remove;
          const { runs, fn } = recorder();
          for (let i = 0; i < 5; i++) {
            const call = debounce(client, uniqueKey("signal"), fn, { wait: 30, signal });
            assert.equal(listeners, 0);
            const pending = call(i);
            assert.equal(listeners, 1);
            assert.equal((await pending).ran, true);
            assert.equal(listeners, 0);
          }
          assert.equal(runs.length, 5);
          controller.abort();
        });
      });
    }

    describe("on Redis", () => {
      let real: RespClient;
      before(async () => {
        real = await RespClient.connect(server.url);
      });
      after(async () => {
        await real.close();
      });

      it("without onError, a takeover that fails because Redis went away does not crash the process; the next call says so", async () => {
        const own = await startRedis({ useEnv: false });
        const a = await IOREDIS.connect(own.url);
        const b = await IOREDIS.connect(own.url);
        const ownAdmin = await RespClient.connect(own.url);
        const key = uniqueKey("takeover-redis-gone");
        const controller = new AbortController();
        const { runs, fn } = recorder();
        const counted = failureCounting(a);
        const A = debounce(counted.client, key, fn, {
          wait: 300,
          takeoverAfter: 150,
          signal: controller.signal,
        });
        const frozen = frozenAfter(b);
        const B = debounce(frozen.client, key, fn, { wait: 300, signal: controller.signal });
        try {
          const fromA = A("a");
          await sleep(20);
          void B("b");
          await until(async () => await ownAdmin.sendCommand(["HGET", key, "args"]) === `["b"]`);
          frozen.freeze();
          assert.deepEqual(await fromA, { ran: false, reason: "superseded" });
          await own.stop();
          await until(() => counted.failures.length > 0, 3_000);
          await sleep(50); // an error thrown from the timer would be uncaught by now
          assert.deepEqual(uncaught, []);
          await assert.rejects(
            A("next"),
            isBackgroundError((cause) => cause === counted.failures[0]),
          );
          assert.equal(counted.failures.length, 1);
          assert.deepEqual(runs, []);
        } finally {
          controller.abort();
          await IOREDIS.close(a);
          await IOREDIS.close(b);
          await ownAdmin.close();
          await own.stop();
        }
      });

      it("a call whose burst's key is gone when it comes to claim resolves expired, and nothing runs", async () => {
        const key = uniqueKey("expired");
        const controller = new AbortController();
        const { runs, fn } = recorder();
        const call = debounce(real as unknown as RedisClient, key, fn, {
          wait: 150,
          signal: controller.signal,
        });
        try {
          const pending = call("x");
          await until(async () => await admin.sendCommand(["EXISTS", key]) === 1);
          await admin.sendCommand(["DEL", key]);
          assert.deepEqual(await pending, { ran: false, reason: "expired" });
          assert.deepEqual(runs, []);
        } finally {
          controller.abort();
        }
      });
    });
  });

  describe("bad input is rejected before anything reaches Redis", () => {
    const sent: string[][] = [];
    const spy = {
      sendCommand(args: string[]): Promise<unknown> {
        sent.push(args);
        return Promise.resolve(null);
      },
    };
    const fn = () => {};
    const DURATION = "a number of milliseconds from 1 to 2592000000, or a string with a unit " +
      'such as "250ms", "10s", "5m" or "2h" (up to 30d)';
    const rows: [string, () => unknown, ErrorConstructor, string][] = [
      [
        "wait of 0",
        () => debounce(spy, "k", fn, { wait: 0 }),
        RangeError,
        `Cannot debounce as "wait" must be ${DURATION}: current value is 0`,
      ],
      [
        "negative wait",
        () => debounce(spy, "k", fn, { wait: -5 }),
        RangeError,
        `Cannot debounce as "wait" must be ${DURATION}: current value is -5`,
      ],
      [
        "NaN wait",
        () => debounce(spy, "k", fn, { wait: NaN }),
        RangeError,
        `Cannot debounce as "wait" must be ${DURATION}: current value is NaN`,
      ],
      [
        "infinite wait",
        () => debounce(spy, "k", fn, { wait: Infinity }),
        RangeError,
        `Cannot debounce as "wait" must be ${DURATION}: current value is Infinity`,
      ],
      [
        "wait as a string",
        () => debounce(spy, "k", fn, { wait: "100" as unknown as number }),
        TypeError,
        `Cannot debounce as "wait" must be ${DURATION}: current value is "100" (a string needs a unit: "100ms")`,
      ],
      [
        "no options",
        () => debounce(spy, "k", fn, undefined as unknown as { wait: number }),
        TypeError,
        `Cannot debounce as "wait" must be ${DURATION}: current value is undefined`,
      ],
      [
        "null options",
        () => debounce(spy, "k", fn, null as unknown as { wait: number }),
        TypeError,
        'Cannot debounce as "options" must be an object: current value is null',
      ],
      [
        "a non-function",
        () => debounce(spy, "k", "reindex" as unknown as () => void, { wait: 100 }),
        TypeError,
        'Cannot debounce as "fn" must be a function: current value is "reindex"',
      ],
      [
        "an empty key",
        () => debounce(spy, "", fn, { wait: 100 }),
        TypeError,
        'Cannot debounce as "key" must be a non-empty string: current value is ""',
      ],
      [
        "an unknown edge",
        () => debounce(spy, "k", fn, { wait: 100, edge: "both" as "leading" }),
        TypeError,
        'Cannot debounce as "edge" must be "trailing" or "leading": current value is "both"',
      ],
      [
        "takeoverAfter of 0",
        () => debounce(spy, "k", fn, { wait: 100, takeoverAfter: 0 }),
        RangeError,
        `Cannot debounce as "takeoverAfter" must be ${DURATION}: current value is 0`,
      ],
      [
        "a signal that is not an AbortSignal",
        () => debounce(spy, "k", fn, { wait: 100, signal: {} as AbortSignal }),
        TypeError,
        'Cannot debounce as "signal" must be an AbortSignal: current value is an object',
      ],
      [
        "an onError that is not a function",
        () => debounce(spy, "k", fn, { wait: 100, onError: 1 as unknown as () => void }),
        TypeError,
        'Cannot debounce as "onError" must be a function: current value is 1',
      ],
      [
        "a subscriber that is not a client",
        () => debounce(spy, "k", fn, { wait: 100, subscriber: "sub" as unknown as false }),
        TypeError,
        'Cannot debounce as "subscriber" must be a Redis client or false: current value is "sub"',
      ],
      [
        "a redis that is not a client",
        () => debounce({} as RedisClient, "k", fn, { wait: 100 }),
        TypeError,
        'Cannot debounce as "redis" must be a Redis client instance with a call() (ioredis, iovalkey), sendCommand() (node-redis, or one you write) or send() (Bun\'s RedisClient) method: current value is an object with none of the methods call(), sendCommand() or send()',
      ],
    ];
    for (const [name, make, type, message] of rows) {
      it(`${name}: ${type.name}`, () => {
        assert.throws(make, (error: unknown) => {
          assert.ok(error instanceof type, String(error));
          assert.equal(error.message, message);
          return true;
        });
        assert.deepEqual(sent, []);
      });
    }

    class Point {
      x = 1;
    }
    const circular: Record<string, unknown> = { id: 1 };
    circular.self = circular;
    const JSON_DATA =
      "JSON data (null, a boolean, a finite number, a string, an array or a plain " +
      "object of these), as the trailing edge stores the arguments in Redis";
    const argRows: [string, unknown[], string][] = [
      [
        "undefined",
        ["doc", undefined],
        `"args[1]" must be ${JSON_DATA}: current value is undefined`,
      ],
      ["NaN", [NaN], `"args[0]" must be ${JSON_DATA}: current value is NaN`],
      [
        "Infinity",
        [{ n: Infinity }],
        `"args[0].n" must be ${JSON_DATA}: current value is Infinity`,
      ],
      ["a bigint", [1n], `"args[0]" must be ${JSON_DATA}: current value is 1n`],
      [
        "a Date",
        [{ when: new Date(0) }],
        `"args[0].when" must be ${JSON_DATA}: current value is an instance of Date`,
      ],
      ["a Map", [new Map()], `"args[0]" must be ${JSON_DATA}: current value is an instance of Map`],
      [
        "a class instance",
        [[new Point()]],
        `"args[0][0]" must be ${JSON_DATA}: current value is an instance of Point`,
      ],
      [
        "a function",
        [{ "on done": fn }],
        `"args[0]["on done"]" must be ${JSON_DATA}: current value is a function`,
      ],
      [
        "a symbol",
        [Symbol("s")],
        `"args[0]" must be ${JSON_DATA}: current value is Symbol(s)`,
      ],
      // deno-lint-ignore no-sparse-arrays
      [
        "a hole in an array",
        [[1, , 3]],
        `"args[0][1]" must be ${JSON_DATA}: current value is undefined`,
      ],
      [
        "a cycle",
        [circular],
        `"args[0].self" must be ${JSON_DATA}, without cycles: current value is a reference to an enclosing object`,
      ],
    ];
    for (const [name, args, message] of argRows) {
      it(`an argument that is not JSON data (${name}) rejects the call with a TypeError naming it`, async () => {
        const call = debounce(spy, "k", (..._args: unknown[]) => {}, { wait: 100 });
        await assert.rejects(call(...args), (error: unknown) => {
          assert.ok(error instanceof TypeError, String(error));
          assert.equal(error.message, `Cannot call debounced function as ${message}`);
          return true;
        });
        assert.deepEqual(sent, []);
      });
    }

    it("on the leading edge arguments never leave the process, so any value is accepted", async () => {
      const local: unknown[] = [];
      const replying = {
        sendCommand(args: string[]): Promise<unknown> {
          local.push(args[0]);
          return Promise.resolve(1);
        },
      };
      const when = new Date(0);
      const call = debounce(replying, "k", (d: Date, f: () => number) => f() + d.getTime(), {
        wait: 100,
        edge: "leading",
      });
      assert.deepEqual(await call(when, () => 41), { ran: true, ok: true, value: 41 });
      assert.deepEqual(local, ["EVALSHA"]);
    });
  });

  describe("across processes, Deno and Bun at the same time", () => {
    let real: RespClient;
    before(async () => {
      real = await RespClient.connect(server.url);
    });
    after(async () => {
      await real.close();
    });

    it("four processes calling in one burst: exactly one execution, in the process of the last call, with its arguments", async () => {
      const key = uniqueKey("processes");
      const base = { url: server.url, key, wait: 300, takeoverAfter: 300 };
      // Each process calls every 40 ms for 200 ms; bun-2 then makes the burst's last call.
      const burst = (name: string, offset: number) =>
        Array.from({ length: 6 }, (_, i) => ({ at: offset + i * 40, args: [name, i] }));
      const plan: [keyof typeof runtimes, string, string, { at: number; args: unknown[] }[]][] = [
        ["deno", "deno-1", "ioredis", burst("deno-1", 0)],
        ["deno", "deno-2", "node-redis", burst("deno-2", 10)],
        ["bun", "bun-1", "ioredis", burst("bun-1", 20)],
        ["bun", "bun-2", "Bun RedisClient", [
          ...burst("bun-2", 30),
          { at: 420, args: ["bun-2", "last", { n: 1 }] },
        ]],
      ];
      const workers = plan.map(([runtime, name, client, calls]) =>
        startWorker(runtime, { ...base, name, client, calls })
      );
      try {
        await until(() => workers.every((w) => w.events.some((e) => e.type === "ready")), 30_000);
        for (const w of workers) w.child.stdin!.write("go\n");
        const total = plan.reduce((sum, p) => sum + p[3].length, 0);
        const all = () => workers.flatMap((w) => w.events);
        await until(() => all().filter((e) => e.type === "result").length === total, 10_000);
        // Past the last call's due + takeoverAfter: no late second execution either.
        await sleep(500);
        const events = all();
        assert.deepEqual(events.filter((e) => e.type === "error"), []);
        assert.deepEqual(events.filter((e) => e.type === "ran"), [
          { type: "ran", name: "bun-2", args: ["bun-2", "last", { n: 1 }] },
        ]);
        const results = events.flatMap((e) => e.type === "result" ? [e] : []);
        const ran = results.filter((e) => (e.result as DebounceResult<unknown>).ran);
        assert.deepEqual(ran, [{
          type: "result",
          name: "bun-2",
          call: 6,
          result: { ran: true, ok: true, value: "bun-2" },
        }]);
        for (const e of results) {
          if (e !== ran[0]) assert.deepEqual(e.result, { ran: false, reason: "superseded" });
        }
        assert.equal(await admin.sendCommand(["HGET", key, "seq"]), String(total));
      } finally {
        await stopWorkers(workers);
      }
    });

    it("the process that would run is killed mid-wait: another process of the burst runs it once, with the last arguments, and the key expires", async () => {
      const key = uniqueKey("killed");
      const base = { url: server.url, key, wait: 300, takeoverAfter: 200 };
      const survivor = startWorker("deno", {
        ...base,
        name: "survivor",
        client: "ioredis",
        calls: [{ at: 0, args: ["survivor", "first"] }],
      });
      const victim = startWorker("bun", {
        ...base,
        name: "victim",
        client: "Bun RedisClient",
        calls: [{ at: 100, args: ["victim", "last"] }],
      });
      const workers = [survivor, victim];
      try {
        await until(() => workers.every((w) => w.events.some((e) => e.type === "ready")), 30_000);
        for (const w of workers) w.child.stdin!.write("go\n");
        await until(
          async () => await admin.sendCommand(["HGET", key, "args"]) === `["victim","last"]`,
        );
        victim.child.kill("SIGKILL");
        await victim.exited;
        assert.equal(await admin.sendCommand(["HGET", key, "state"]), "pending");
        await until(() => survivor.events.some((e) => e.type === "ran"), 5_000);
        await sleep(300);
        assert.deepEqual(survivor.events.filter((e) => e.type === "ran" || e.type === "error"), [
          { type: "ran", name: "survivor", args: ["victim", "last"] },
        ]);
        assert.deepEqual(
          survivor.events.filter((e) => e.type === "result"),
          [{
            type: "result",
            name: "survivor",
            call: 0,
            result: { ran: false, reason: "superseded" },
          }],
        );
        assert.deepEqual(victim.events.filter((e) => e.type !== "ready"), []);
        // The claimed burst's key lives at most wait + 2 * takeoverAfter after the last call.
        await until(async () => await admin.sendCommand(["EXISTS", key]) === 0, 1_000);
      } finally {
        await stopWorkers(workers);
      }
    });

    it("without onError, a takeover's error crashes no process, Deno or Bun: fn's error, or a Redis error of the check, rejects the process's next call, and the call after that goes ahead", async () => {
      const wrongTypeErrors = async () =>
        Number(
          /errorstat_WRONGTYPE:count=(\d+)/.exec(
            String(await admin.sendCommand(["INFO", "errorstats"])),
          )?.[1] ?? 0,
        );
      const before = await wrongTypeErrors();
      const base = { url: server.url, wait: 300, takeoverAfter: 1_000, onError: false as const };
      const cases = (["deno", "bun"] as const).flatMap((runtime) => {
        const client = runtime === "deno" ? "ioredis" : "Bun RedisClient";
        return (["fn", "redis"] as const).map((fails) => {
          const name = `${runtime}-${fails}`;
          const key = uniqueKey(`no-onerror-${name}`);
          const worker = startWorker(runtime, {
            ...base,
            name,
            key,
            client,
            calls: [{ at: 0, args: ["first"] }],
            ...fails === "fn" ? { throwOn: "last" } : {},
          });
          return { runtime, fails, name, key, worker };
        });
      });
      const workers = cases.map((c) => c.worker);
      const frozen = cases.map(() => frozenAfter(real as unknown as RedisClient));
      const controller = new AbortController();
      const args = (key: string) => admin.sendCommand(["HGET", key, "args"]);
      const errors = (w: Worker) => w.events.filter((e) => e.type === "error");
      const results = (w: Worker) => w.events.filter((e) => e.type === "result");
      try {
        await until(() => workers.every((w) => w.events.some((e) => e.type === "ready")), 30_000);
        for (const w of workers) w.child.stdin!.write("go\n");
        for (const { key } of cases) await until(async () => await args(key) === `["first"]`);
        // The last call of each burst is this process's, which then stops answering.
        cases.forEach(({ key }, i) => {
          const last = debounce(frozen[i]!.client, key, (_arg: string) => {}, {
            wait: 300,
            signal: controller.signal,
          });
          void last("last");
        });
        for (const { key } of cases) await until(async () => await args(key) === `["last"]`);
        for (const f of frozen) f.freeze();
        // Each worker learns its call was superseded, and stands by to take the burst over.
        await until(() => cases.every(({ worker }) => results(worker).length === 1), 5_000);
        for (const { fails, key } of cases) if (fails === "redis") await breakKey(admin, key);
        // fn ran and threw in the fn cases; the check failed with WRONGTYPE in the others.
        await until(
          () =>
            cases.every(({ fails, worker }) =>
              fails === "redis" || worker.events.some((e) => e.type === "ran")
            ),
          10_000,
        );
        await until(async () => await wrongTypeErrors() >= before + 2, 10_000);
        await sleep(200); // an error thrown from a timer would have ended the process by now
        for (const { worker } of cases) {
          assert.equal(worker.child.exitCode, null, `${worker.name} exited`);
          assert.deepEqual(errors(worker), []);
          worker.child.stdin!.write(`call ["next"]\n`);
        }
        await until(() => cases.every(({ worker }) => errors(worker).length === 1), 10_000);
        for (const { fails, name, key, worker } of cases) {
          const [error] = errors(worker) as { message: string; cause?: string }[];
          assert.match(error!.message, /as a takeover of a burst on .* failed in the background/);
          assert.match(
            error!.cause ?? "",
            fails === "fn" ? new RegExp(`^Error: ${name} failed$`) : /WRONGTYPE/,
          );
          if (fails === "redis") await admin.sendCommand(["DEL", key]);
          worker.child.stdin!.write(`call ["after"]\n`);
        }
        await until(() => cases.every(({ worker }) => results(worker).length === 2), 10_000);
        for (const { fails, name, worker } of cases) {
          assert.deepEqual(results(worker).map((e) => e.type === "result" && e.result), [
            { ran: false, reason: "superseded" },
            { ran: true, ok: true, value: name },
          ]);
          assert.deepEqual(
            worker.events.filter((e) => e.type === "ran"),
            [
              ...fails === "fn" ? [{ type: "ran", name, args: ["last"] }] : [],
              { type: "ran", name, args: ["after"] },
            ],
          );
          assert.equal(worker.child.exitCode, null, `${worker.name} exited`);
        }
      } finally {
        controller.abort();
        await stopWorkers(workers);
      }
      for (const w of workers) assert.equal(w.child.exitCode, 0, `${w.name} exit code`);
    });

    it("the process that would run is slow, not dead (its event loop blocked past its turn): another process takes the burst over, and the slow one's call resolves ran-elsewhere without running", async () => {
      const key = uniqueKey("slow");
      const unblock = join(tmpdir(), `baton-debounce-unblock-${crypto.randomUUID()}`);
      const base = { url: server.url, key, wait: 600, takeoverAfter: 300 };
      const survivor = startWorker("deno", {
        ...base,
        name: "survivor",
        client: "ioredis",
        calls: [{ at: 0, args: ["survivor", "first"] }],
      });
      const slow = startWorker("bun", {
        ...base,
        name: "slow",
        client: "Bun RedisClient",
        calls: [{ at: 100, args: ["slow", "last"] }],
      });
      const workers = [survivor, slow];
      try {
        await until(() => workers.every((w) => w.events.some((e) => e.type === "ready")), 30_000);
        for (const w of workers) w.child.stdin!.write("go\n");
        await until(
          async () => await admin.sendCommand(["HGET", key, "args"]) === `["slow","last"]`,
        );
        // Blocked well before its 600 ms wait ends, until the survivor has run the burst.
        slow.child.stdin!.write(`block ${unblock}\n`);
        await until(() => survivor.events.some((e) => e.type === "ran"), 10_000);
        assert.equal(await admin.sendCommand(["HGET", key, "state"]), "claimed");
        writeFileSync(unblock, "");
        await until(() => slow.events.some((e) => e.type === "result"), 10_000);
        await sleep(300);
        assert.deepEqual(slow.events.filter((e) => e.type !== "ready"), [{
          type: "result",
          name: "slow",
          call: 0,
          result: { ran: false, reason: "ran-elsewhere" },
        }]);
        assert.deepEqual(survivor.events.filter((e) => e.type !== "ready"), [
          {
            type: "result",
            name: "survivor",
            call: 0,
            result: { ran: false, reason: "superseded" },
          },
          { type: "ran", name: "survivor", args: ["slow", "last"] },
        ]);
      } finally {
        await stopWorkers(workers);
        rmSync(unblock, { force: true });
      }
    });
  });
});
