// The soak: run by `deno run -A --v8-flags=--expose-gc` or `bun run` with a JSON config as
// its argument. On two clients of one kind it makes uncontended acquire/release cycles,
// each on a key of its own, and contended withLock calls (several callers at once on one
// key), first a tenth of them as a warm-up, then all of them. After each part it waits
// for the subscriber connections to close, forces a full GC and reads the heap. Then it
// closes its clients, prints one JSON line with its figures, and must end by itself: a
// timer, socket or listener that the library left behind would keep it running.
import process from "node:process";
import { acquireLock, lockKey, type RedisClient, withLock } from "../mod.ts";
import { _SUBSCRIBER_IDLE_MS } from "../lock/_subscriber.ts";
import { BUN_CLIENT, CLIENTS, sendRaw } from "./_clients.ts";

/** What the test tells the soak to do. */
export interface SoakConfig {
  url: string;
  /** The name of a client kind from CLIENTS, or BUN_CLIENT's. */
  client: string;
  /** Uncontended acquire/release cycles after the warm-up. */
  cycles: number;
  /** Contended withLock calls after the warm-up. */
  contended: number;
  /** How many callers make the contended calls at once, taking turns on the two clients. */
  callers: number;
}

/** Heap figures (bytes after a full GC) and what was left at one point. */
export interface SoakPoint {
  heapUsed: number;
  /** Listeners on the two clients, where they are event emitters. */
  listeners: number;
  /** Connections the server has, counting the test's own. */
  connections: number;
}

/** The one line the soak prints. */
export interface SoakReport {
  type: "report";
  warm: SoakPoint;
  end: SoakPoint;
  /** What still ran once the clients were closed (Deno only: Bun lists nothing). */
  resources: string[];
  cycles: number;
  contended: number;
  /** Releases that returned false, withLock calls that failed, overlaps seen. */
  failures: string[];
  /** Ms of the part after the warm-up. */
  elapsedMs: number;
}

const config = JSON.parse(process.argv[2]!) as SoakConfig;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const kind = [...CLIENTS, BUN_CLIENT].find((k) => k.name === config.client);
if (!kind) throw new Error(`unknown client ${config.client}`);

/** A full garbage collection, by whichever runtime runs this. */
function collect(): void {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (bun) bun.gc(true);
  else if (gc) gc();
  else throw new Error("no gc(): run Deno with --v8-flags=--expose-gc");
}

/** Listeners on an event emitter client; 0 for the others. */
function listenersOf(client: RedisClient): number {
  const emitter = client as unknown as {
    eventNames?: () => (string | symbol)[];
    listenerCount?: (event: string | symbol) => number;
  };
  if (typeof emitter.eventNames !== "function") return 0;
  return emitter.eventNames().reduce((sum, e) => sum + emitter.listenerCount!(e), 0);
}

const a = await kind.connect(config.url);
const b = await kind.connect(config.url);
const send = (args: string[]): Promise<unknown> => sendRaw(a, args);

const failures: string[] = [];
let part = 0;

/** `cycles` uncontended cycles, then `contended` withLock calls by `config.callers` at once. */
async function soak(cycles: number, contended: number): Promise<void> {
  part++;
  for (let i = 0; i < cycles; i++) {
    const lock = await acquireLock(i % 2 ? b : a, lockKey("soak", "free", part, i), { ttl: 5 });
    if (!await lock.release()) failures.push(`release of free lock ${i} returned false`);
  }
  const key = lockKey("soak", "busy", part);
  let inside = 0;
  let taken = 0;
  const caller = async (client: RedisClient) => {
    for (let i = taken++; i < contended; i = taken++) {
      try {
        await withLock(client, key, async () => {
          if (++inside !== 1) failures.push(`call ${i} found ${inside - 1} others inside`);
          await sleep(0);
          inside--;
        }, { ttl: 5, timeout: 60_000 });
      } catch (error) {
        failures.push(`call ${i}: ${error}`);
      }
    }
  };
  await Promise.all(Array.from({ length: config.callers }, (_, i) => caller(i % 2 ? b : a)));
}

/** Waits for idle subscribers to close, collects garbage, and reads what is left. */
async function measure(): Promise<SoakPoint> {
  await sleep(_SUBSCRIBER_IDLE_MS + 150);
  for (let i = 0; i < 3; i++) {
    collect();
    await sleep(20);
  }
  const heapUsed = process.memoryUsage().heapUsed;
  const list = String(await send(["CLIENT", "LIST"]));
  return {
    heapUsed,
    listeners: listenersOf(a) + listenersOf(b),
    connections: list.split("\n").filter((line) => line.trim()).length,
  };
}

await soak(Math.ceil(config.cycles / 10), Math.ceil(config.contended / 10));
const warm = await measure();
const startedAt = performance.now();
await soak(config.cycles, config.contended);
const elapsedMs = Math.round(performance.now() - startedAt);
const end = await measure();
await kind.close(a);
await kind.close(b);
await sleep(50);
const resources =
  (process as { getActiveResourcesInfo?: () => string[] }).getActiveResourcesInfo?.() ?? [];
const report: SoakReport = {
  type: "report",
  warm,
  end,
  resources,
  cycles: config.cycles,
  contended: config.contended,
  failures: failures.slice(0, 20),
  elapsedMs,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
// No process.exit(): the process ends once nothing keeps it alive.
