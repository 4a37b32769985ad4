// A contender for the Redlock contention test: takes one lock over several servers again
// and again, and inside each critical section checks on a separate server that it is
// alone (INCR of an "inside" counter must give 1). Run as a process (Deno or Bun) it
// prints {"type":"ready"}, contends from "go" on stdin until "stop", then prints
// {"type":"done", ...}; the test also runs contend() in its own process.
import process from "node:process";
import { createInterface } from "node:readline";
import { Redis } from "ioredis";
import { type RedisClient, withLock } from "../mod.ts";
import { RespClient } from "./_resp.ts";

/** What the test tells a worker, as its one argument (JSON). */
export interface RedlockWorkerConfig {
  /** The lock's servers. */
  urls: string[];
  /** The server of the overlap counters. */
  counterUrl: string;
  key: string;
  /** The lease, in seconds. */
  ttl: number;
  /**
   * Whether the clients queue commands while their server is down (ioredis' default), or
   * fail them at once while they reconnect (no offline queue).
   */
  queueing: boolean;
}

/** What one contender did. */
export interface Tally {
  /** Critical sections run. */
  sections: number;
  /** Sections that found another owner inside. */
  overlaps: number;
  /** Failed calls, by error name. */
  errors: Record<string, number>;
  /** The messages (and causes) of the errors other than LockAcquireError, up to 10. */
  details: string[];
}

/** The counters on the counter server for `key`. */
export function counterKeys(key: string): { inside: string; sections: string } {
  return { inside: `${key}:inside`, sections: `${key}:sections` };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An ioredis client that reconnects every 50 ms. With `queueing` it queues commands while
 * its server is down and sends them once it is back (ioredis' default); without, it fails
 * them at once (no offline queue), which is how Redlock's clients are best configured: a
 * server that is down then costs nothing, where a queued command holds a split vote
 * undecided until the server's answer is given up (500 ms).
 */
export async function connectReconnecting(url: string, queueing: boolean): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    retryStrategy: () => 50,
    ...(queueing ? {} : { enableOfflineQueue: false, maxRetriesPerRequest: 0 }),
  });
  client.on("error", () => {}); // it reports every failed reconnect
  await client.connect();
  return client;
}

/**
 * Takes the lock until `stopped()`, running a short critical section each time. Waiters
 * poll every 1 to 5 ms, so that a lock granted to two owners at once is soon seen.
 */
export async function contend(
  clients: RedisClient[],
  counter: RespClient,
  config: RedlockWorkerConfig,
  stopped: () => boolean,
): Promise<Tally> {
  const { inside, sections } = counterKeys(config.key);
  const tally: Tally = { sections: 0, overlaps: 0, errors: {}, details: [] };
  while (!stopped()) {
    try {
      await withLock(clients, config.key, async () => {
        if (Number(await counter.sendCommand(["INCR", inside])) !== 1) tally.overlaps++;
        await counter.sendCommand(["INCR", sections]);
        await sleep(2 + 4 * Math.random());
        await counter.sendCommand(["DECR", inside]);
      }, { ttl: config.ttl, timeout: 10_000, retryDelay: 1, maxRetryDelay: 5 });
      tally.sections++;
    } catch (error) {
      const name = error instanceof Error ? error.name : String(error);
      tally.errors[name] = (tally.errors[name] ?? 0) + 1;
      if (name !== "LockAcquireError" && tally.details.length < 10) {
        const cause = (error as { cause?: unknown }).cause;
        tally.details.push(`${error}${cause === undefined ? "" : `, cause: ${cause}`}`);
      }
    }
    // Give the others a turn: a poller that just released would otherwise win again.
    await sleep(3 * Math.random());
  }
  return tally;
}

if (import.meta.main) {
  const config: RedlockWorkerConfig = JSON.parse(process.argv[process.argv.length - 1]!);
  const clients = await Promise.all(
    config.urls.map((url) => connectReconnecting(url, config.queueing)),
  );
  const counter = await RespClient.connect(config.counterUrl);
  const input = createInterface({ input: process.stdin });
  let stop = false;
  let go: () => void = () => {};
  const started = new Promise<void>((resolve) => go = resolve);
  input.on("line", (line) => {
    if (line === "go") go();
    if (line === "stop") stop = true;
  });
  input.on("close", () => {
    stop = true;
    go();
  });
  console.log(JSON.stringify({ type: "ready" }));
  await started;
  const tally = await contend(clients as unknown as RedisClient[], counter, config, () => stop);
  console.log(JSON.stringify({ type: "done", ...tally }));
  input.close();
  for (const client of clients) client.disconnect();
  await counter.close();
}
