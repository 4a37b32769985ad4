// One instance of a service, for the load test: run by Deno or Bun with a JSON config as its
// argument. It connects one client, prints {"type":"ready"}, waits for "go" on stdin, then
// makes its withLock read-modify-write increments (GET, then SET +1, on its own connection)
// and prints one {"type":"done"} line with what it saw. Then it closes its client and ends
// by itself: nothing of the library may keep it alive.
//
// Each critical section checks that it is alone: it INCRs the key's "inside" counter on
// entry (anything but 1 is an overlap) and DECRs it on exit.
import process from "node:process";
import { createInterface } from "node:readline";
import { type RedisClient, withLock } from "../mod.ts";
import { BUN_CLIENT, CLIENTS, sendRaw } from "./_clients.ts";

/** What the test tells a worker to do. */
export interface LoadConfig {
  /** Names the worker in the test's messages. */
  name: string;
  url: string;
  /** The name of a client kind from CLIENTS, or BUN_CLIENT's. */
  client: string;
  /** The lock keys; the counter of `key` is `${key}:counter`, its detector `${key}:inside`. */
  keys: string[];
  /** How many increments in all. */
  operations: number;
  /** How many callers in this process take increments at once, each from the next. */
  callers: number;
  /** The lease, in seconds. */
  ttl: number;
  /** How long to wait for the lock, in ms. */
  timeout: number;
  /** Ms between the GET and the SET of increment i: holdMs[i % length]; 0 = none. */
  holdMs: number[];
  /** Seeds the choice of a key per increment. */
  seed: number;
}

/** One line a worker prints. */
export type LoadEvent =
  | { type: "ready"; name: string }
  | {
    type: "done";
    name: string;
    /** Increments written, per key (also those whose withLock then failed). */
    increments: Record<string, number>;
    /** Critical sections that found another one inside. */
    overlaps: number;
    /** Errors of withLock (timeouts, a lost lock), as strings. */
    errors: string[];
    elapsedMs: number;
  };

const config = JSON.parse(process.argv[2]!) as LoadConfig;
const print = (event: LoadEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small seeded generator (mulberry32), so that a run's keys can be told again. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Sends a raw command on this worker's own client, whatever its kind. */
const send = sendRaw;

async function run(redis: RedisClient): Promise<Extract<LoadEvent, { type: "done" }>> {
  const next = random(config.seed);
  const plan = Array.from(
    { length: config.operations },
    () => config.keys[Math.floor(next() * config.keys.length)]!,
  );
  const increments: Record<string, number> = {};
  const errors: string[] = [];
  let overlaps = 0;
  let taken = 0;
  const startedAt = performance.now();
  const caller = async () => {
    for (let i = taken++; i < plan.length; i = taken++) {
      const key = plan[i]!;
      const holdMs = config.holdMs[i % config.holdMs.length] ?? 0;
      try {
        await withLock(redis, key, async () => {
          if (Number(await send(redis, ["INCR", `${key}:inside`])) !== 1) overlaps++;
          const value = Number(await send(redis, ["GET", `${key}:counter`]) ?? 0);
          if (holdMs > 0) await sleep(holdMs);
          await send(redis, ["SET", `${key}:counter`, String(value + 1)]);
          // Counted once written, even should withLock then find the lock was lost.
          increments[key] = (increments[key] ?? 0) + 1;
          await send(redis, ["DECR", `${key}:inside`]);
        }, { ttl: config.ttl, timeout: config.timeout });
      } catch (error) {
        const cause = (error as { cause?: unknown }).cause;
        errors.push(`${config.name}: ${error}${cause ? ` (cause: ${cause})` : ""}`);
      }
    }
  };
  await Promise.all(Array.from({ length: config.callers }, caller));
  const elapsedMs = Math.round(performance.now() - startedAt);
  return { type: "done", name: config.name, increments, overlaps, errors, elapsedMs };
}

const kind = [...CLIENTS, BUN_CLIENT].find((k) => k.name === config.client);
if (!kind) throw new Error(`unknown client ${config.client}`);
const redis = await kind.connect(config.url);
let going: Promise<void> | undefined;
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line !== "go" || going) return;
  going = run(redis).then(async (done) => {
    await kind.close(redis);
    print(done);
  });
  lines.close();
  // Deno keeps a process alive while stdin is open, even with no reader.
  process.stdin.destroy();
});
// stdin ended before "go" (the test gave up): close the client, and so end.
lines.once("close", () => {
  if (!going) kind.close(redis);
});
print({ type: "ready", name: config.name });
