// One lock holder or taker in its own process, for the fault tests: run by Deno or Bun
// with a JSON config as its argument, so that the test can SIGKILL it, SIGSTOP and
// SIGCONT it, or take its lock while it is frozen. It prints each step as one JSON line
// on stdout and takes its cues ("finish", "check", "take") on stdin. When stdin ends it
// closes its client and exits.
import process from "node:process";
import { createInterface } from "node:readline";
import { acquireLock, LockLostError, withLock } from "../mod.ts";
import { BUN_CLIENT, CLIENTS } from "./_clients.ts";

/** What the test tells a worker to do. */
export interface FaultWorkerConfig {
  url: string;
  /** The name of a client kind from CLIENTS (or Bun's). */
  client: string;
  /**
   * - `hold`: takes `keys[0]` with `acquireLock` and holds it until killed.
   * - `withLock`: runs `withLock` on `keys[0]` (watchdog on) whose `fn` returns
   *   `"child-value"` on "finish", then reports how `withLock` settled.
   * - `handles`: takes `keys[0]` and `keys[1]` with `acquireLock`; on "check" calls
   *   `release()` on the first and `extend()` on the second, and reports both.
   * - `take`: on "take" waits for `keys[0]` (timeout 5 s) and reports when it got it.
   */
  mode: "hold" | "withLock" | "handles" | "take";
  keys: string[];
  /** The lease, in seconds. */
  ttl: number;
}

/** One line a worker prints. `sentAt` and `at` are Date.now() (ms). */
export type FaultWorkerEvent =
  | { type: "ready" }
  | { type: "holding"; sentAt: number; tokens: string[] }
  | {
    type: "settled";
    ok: boolean;
    value?: unknown;
    error?: { name: string; message: string; hasValue?: boolean; value?: unknown };
    /** Whether the context's signal had aborted when `fn` returned. */
    signalAborted: boolean;
  }
  | { type: "checked"; released: boolean | string; extended: boolean | string }
  | { type: "taking" }
  | { type: "took"; token: string; at: number }
  | { type: "error"; message: string };

const config = JSON.parse(process.argv[2]!) as FaultWorkerConfig;
const print = (event: FaultWorkerEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);
const fail = (error: unknown) => print({ type: "error", message: String(error) });

const kind = [...CLIENTS, BUN_CLIENT].find((k) => k.name === config.client);
if (!kind) throw new Error(`unknown client ${config.client}`);
const redis = await kind.connect(config.url);
const [key, secondKey] = config.keys as [string, string?];

// Cues from the test, one per line; each waiter takes the next line with its word.
const cues = new Map<string, () => void>();
const cue = (word: string) => new Promise<void>((resolve) => cues.set(word, resolve));
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  cues.get(line)?.();
  cues.delete(line);
});
lines.once("close", async () => {
  await kind.close(redis);
  process.exit(0);
});

/** A boolean, or the error's name when the call threw. */
const outcome = (p: Promise<boolean>) => p.catch((e: unknown) => (e as Error).name ?? String(e));

print({ type: "ready" });
try {
  if (config.mode === "hold") {
    const sentAt = Date.now();
    const lock = await acquireLock(redis, key, { ttl: config.ttl });
    print({ type: "holding", sentAt, tokens: [lock.token] });
  } else if (config.mode === "withLock") {
    const sentAt = Date.now();
    let signalAborted = false;
    try {
      const value = await withLock(redis, key, async ({ lock, signal }) => {
        print({ type: "holding", sentAt, tokens: [lock.token] });
        await cue("finish");
        signalAborted = signal.aborted;
        return "child-value";
      }, { ttl: config.ttl });
      print({ type: "settled", ok: true, value, signalAborted });
    } catch (error) {
      const e = error as Error;
      const lost = error instanceof LockLostError
        ? { hasValue: error.hasValue, value: error.value }
        : {};
      print({
        type: "settled",
        ok: false,
        error: { name: e.name, message: e.message, ...lost },
        signalAborted,
      });
    }
  } else if (config.mode === "handles") {
    const sentAt = Date.now();
    const first = await acquireLock(redis, key, { ttl: config.ttl });
    const second = await acquireLock(redis, secondKey!, { ttl: config.ttl });
    print({ type: "holding", sentAt, tokens: [first.token, second.token] });
    await cue("check");
    const released = await outcome(first.release());
    const extended = await outcome(second.extend());
    print({ type: "checked", released, extended });
  } else {
    await cue("take");
    print({ type: "taking" });
    const lock = await acquireLock(redis, key, { ttl: config.ttl, timeout: 5_000 });
    print({ type: "took", token: lock.token, at: Date.now() });
  }
} catch (error) {
  fail(error);
}
