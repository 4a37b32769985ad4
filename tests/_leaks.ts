// Deno runs no sanitizers on node:test tests, so each test file checks itself: after
// its last hook, no timer, socket or child process of its own may be left, and the
// test server may see no connection but the admin's.
//
// Under Deno process.getActiveResourcesInfo() lists what keeps the process alive. Bun's
// always returns [] (and its process._getActiveHandles() too), so under Bun this module
// keeps its own list from the moment it is imported: every timer made by the global
// setTimeout/setInterval (left running when it has neither fired nor been cleared and is
// not unref'd), every node:net socket that connects (left when not destroyed) and every
// node:child_process child (left until it exits). Bun's own RedisClient opens no node:net
// socket; the server's CLIENT LIST (assertNoConnections) sees its connections, and those of
// every other client.
import process from "node:process";
import { Socket } from "node:net";
import { ChildProcess } from "node:child_process";
import assert from "node:assert/strict";
import { _SUBSCRIBER_IDLE_MS } from "../lock/_subscriber.ts";
import type { RespClient } from "./_resp.ts";

/** How long what clients close by themselves may take to go, in ms. */
const SETTLE_MS = 3000;

/** Bun's timer object: fired or cleared ones are `_destroyed`, unref'd ones not `hasRef()`. */
interface BunTimer {
  _destroyed?: boolean;
  hasRef?(): boolean;
}

/** What is left running, and how to stop reporting it. */
interface Tracker {
  /** Describes each thing left running: what it is and where it was made. */
  left(): string[];
  /** Stops tracking what is left running now. */
  forget(): void;
}

/** Our own sleep, on the timer as it was before tracking. */
const sleep = ((wait) => (ms: number) => new Promise((r) => wait(r, ms)))(setTimeout);

/** Under Deno: what the runtime says keeps the process alive. */
const denoTracker: Tracker = {
  left: () =>
    (process as { getActiveResourcesInfo?: () => string[] }).getActiveResourcesInfo?.() ?? [],
  forget() {},
};

/** Starts tracking, under Bun, the timers, sockets and child processes made from now on. */
function trackUnderBun(): Tracker {
  const timers = new Map<BunTimer, Error>();
  const sockets = new Map<Socket, Error>();
  const children = new Map<ChildProcess, Error>();
  const running = {
    timers: (t: BunTimer) => !t._destroyed && t.hasRef?.() !== false,
    sockets: (s: Socket) => !s.destroyed,
    children: (c: ChildProcess) => c.exitCode === null && c.signalCode === null,
  };
  /** Drops what is no longer running from `map`; returns what is. */
  const prune = <T>(map: Map<T, Error>, isRunning: (item: T) => boolean) => {
    for (const item of map.keys()) if (!isRunning(item)) map.delete(item);
    return map;
  };
  let pruneAt = 1024;
  const g = globalThis as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of ["setTimeout", "setInterval"]) {
    const original = g[name]!;
    const wrapped = function (this: unknown, ...args: unknown[]) {
      const timer = original.apply(this, args) as BunTimer;
      // Forget the timers that are done now and then, so that the map stays small.
      if (timers.size >= pruneAt) {
        prune(timers, running.timers);
        pruneAt = Math.max(1024, 2 * timers.size);
      }
      timers.set(timer, new Error(`${name}(…, ${args[1] ?? 0})`));
      return timer;
    };
    Object.defineProperties(wrapped, Object.getOwnPropertyDescriptors(original));
    g[name] = wrapped;
  }
  const connect = Socket.prototype.connect;
  Socket.prototype.connect = function (this: Socket, ...args: unknown[]) {
    sockets.set(this, new Error("a node:net socket"));
    return (connect as (...a: unknown[]) => Socket).apply(this, args);
  } as typeof connect;
  const spawn = (ChildProcess.prototype as unknown as Record<string, unknown>).spawn as (
    ...args: unknown[]
  ) => unknown;
  (ChildProcess.prototype as unknown as Record<string, unknown>).spawn = function (
    this: ChildProcess,
    ...args: unknown[]
  ) {
    const command = (args[0] as { args?: string[] } | undefined)?.args?.join(" ");
    children.set(this, new Error(`child process "${command}"`));
    return spawn.apply(this, args);
  };

  const maps = () =>
    [
      prune(timers, running.timers),
      prune(sockets, running.sockets),
      prune(children, running.children),
    ] as Map<unknown, Error>[];
  return {
    left: () =>
      maps().flatMap((map) => [...map.values()]).map((made) => {
        // The first frame outside this file and the runtime says where it was made.
        const frames = (made.stack ?? "").split("\n").slice(1).map((f) => f.trim());
        const where = frames.find((f) => !f.includes("_leaks.ts") && !/\(node:/.test(f)) ??
          "at an unknown place";
        return `${made.message}, made ${where}`;
      }),
    forget: () => maps().forEach((map) => map.clear()),
  };
}

const tracker: Tracker = "Bun" in globalThis ? trackUnderBun() : denoTracker;

/**
 * Waits out the idle period of subscriber connections, then asserts that nothing is
 * left running, allowing 3 s for clients' own short timers to settle (an ioredis client
 * closed while Redis is down keeps one for about a second). Call it last in a file's
 * top-level `after`. Under Bun what it reports is forgotten, so that one leak fails one
 * file, not every file after it.
 */
export async function assertNoLeaks(): Promise<void> {
  await sleep(_SUBSCRIBER_IDLE_MS + 50);
  for (let waited = 0; tracker.left().length > 0 && waited < SETTLE_MS; waited += 50) {
    await sleep(50);
  }
  const left = tracker.left();
  tracker.forget();
  assert.deepEqual(left, [], `left running after the tests:\n  ${left.join("\n  ")}`);
}

/**
 * Asserts that the server `admin` is connected to sees no connection but `admin`'s own,
 * allowing for the idle period of subscriber connections and 3 s more for closing ones.
 * Call it before closing `admin`. Skipped with REDIS_URL: that server is not ours alone.
 */
export async function assertNoConnections(admin: RespClient): Promise<void> {
  if (process.env.REDIS_URL) return;
  const self = String(await admin.sendCommand(["CLIENT", "ID"]));
  const others = async () =>
    String(await admin.sendCommand(["CLIENT", "LIST"])).split("\n")
      .filter((line) => line.startsWith("id=") && !line.startsWith(`id=${self} `))
      // id, address, name and last command say which client it is.
      .map((line) => line.split(" ").filter((f) => /^(id|addr|name|cmd|sub)=/.test(f)).join(" "));
  let left = await others();
  for (let waited = 0; left.length > 0 && waited < _SUBSCRIBER_IDLE_MS + SETTLE_MS; waited += 50) {
    await sleep(50);
    left = await others();
  }
  assert.deepEqual(left, [], `connections left open after the tests:\n  ${left.join("\n  ")}`);
}
