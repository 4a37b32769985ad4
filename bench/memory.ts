// Memory: 100,000 acquire + release cycles per client, with the heap measured before and
// after, each time after a forced garbage collection. What stays on the heap after the
// cycles is what baton or the client leaks; the target is less than 1 MB. The floor's
// cycles (raw SET NX PX + EVALSHA) run too, so that what the client itself keeps shows
// apart from what baton adds. Each measurement runs in a process of its own (this file,
// with --case), so that no measurement inherits another's heap.
//
//   deno run -A --v8-flags=--expose-gc bench/memory.ts [--cycles=100000]
//   bun run bench/memory.ts [--cycles=100000]
//
// Without a forced GC (Deno without --expose-gc) the growth includes garbage not yet
// collected, so it is an upper bound, and the output says so.
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { acquireLock, type RedisClient } from "../mod.ts";
import { BUN_CLIENT, type ClientKind, IOREDIS, NODE_REDIS } from "../tests/_clients.ts";
import { startRedis } from "../tests/_redis.ts";
import {
  floorOf,
  isBun,
  machine,
  markdownTable,
  SMOKE,
  TTL_MS,
  TTL_SECONDS,
  writeResult,
} from "./_setup.ts";

/** The most the heap may grow over the cycles, in bytes. */
const LIMIT_BYTES = 1024 * 1024;
/** Cycles in flight at once, each lane on its own key, so that the run takes seconds. */
const LANES = 16;
/** Untimed, unmeasured cycles first, so that lazy set-up (scripts, buffers, JIT) is done. */
const WARM_UP_CYCLES = 2_000;

const cyclesArg = process.argv.find((a) => a.startsWith("--cycles="));
const CYCLES = cyclesArg ? Number(cyclesArg.slice("--cycles=".length)) : SMOKE ? 5_000 : 100_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Forces a full collection where the runtime allows; returns whether it could. */
async function collect(): Promise<boolean> {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  const v8gc = (globalThis as { gc?: () => void }).gc;
  if (!bun && !v8gc) return false;
  // Several passes with turns of the event loop in between, so that objects held only
  // by settled promises and finalised sockets' buffers go too.
  for (let i = 0; i < 3; i++) {
    if (bun) bun.gc(true);
    else v8gc!();
    await sleep(20);
  }
  return true;
}

/** One acquire + release on one key; throws unless both took effect. */
type Cycle = (key: string) => Promise<void>;

function batonCycle(client: RedisClient): Cycle {
  return async (key) => {
    const lock = await acquireLock(client, key, { ttl: TTL_SECONDS });
    if (!await lock.release()) throw new Error("baton: release of a held lock returned false");
  };
}

async function floorCycle(client: RedisClient): Promise<Cycle> {
  const floor = await floorOf(client);
  return async (key) => {
    const token = crypto.randomUUID();
    if (!await floor.acquire(key, token, TTL_MS)) throw new Error("floor: acquire failed");
    if (!await floor.release(key, token)) throw new Error("floor: release failed");
  };
}

async function cycles(cycle: Cycle, key: string, count: number): Promise<void> {
  const perLane = Math.ceil(count / LANES);
  await Promise.all(Array.from({ length: LANES }, async (_, lane) => {
    for (let i = 0; i < perLane; i++) await cycle(`${key}:${lane}`);
  }));
}

interface Result {
  runtime: string;
  client: string;
  /** "baton" or "floor". */
  what: string;
  cycles: number;
  forcedGc: boolean;
  heapBeforeBytes: number;
  heapAfterBytes: number;
  growthBytes: number;
  seconds: number;
  pass: boolean;
}

async function measure(
  kind: ClientKind,
  what: "baton" | "floor",
  url: string,
  key: string,
): Promise<Result> {
  const client = await kind.connect(url);
  try {
    const cycle = what === "baton" ? batonCycle(client) : await floorCycle(client);
    await cycles(cycle, key, WARM_UP_CYCLES);
    const forcedGc = await collect();
    const before = process.memoryUsage().heapUsed;
    const startedAt = performance.now();
    await cycles(cycle, key, CYCLES);
    const seconds = (performance.now() - startedAt) / 1000;
    await collect();
    const after = process.memoryUsage().heapUsed;
    return {
      runtime: isBun ? "Bun" : "Deno",
      client: kind.name,
      what,
      cycles: Math.ceil(CYCLES / LANES) * LANES,
      forcedGc,
      heapBeforeBytes: before,
      heapAfterBytes: after,
      growthBytes: after - before,
      seconds,
      pass: after - before < LIMIT_BYTES,
    };
  } finally {
    await kind.close(client);
  }
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(0)} KB`;

const KINDS: ClientKind[] = isBun ? [BUN_CLIENT, IOREDIS, NODE_REDIS] : [IOREDIS, NODE_REDIS];

/** Runs one measurement in a new process of this runtime and returns its result. */
function measureApart(kind: ClientKind, what: "baton" | "floor", url: string, key: string) {
  const file = fileURLToPath(import.meta.url);
  const caseArgs = [`--case=${kind.name}/${what}`, `--url=${url}`, `--key=${key}`];
  caseArgs.push(`--cycles=${CYCLES}`);
  const args = isBun
    ? [file, ...caseArgs]
    : ["run", "-A", "--v8-flags=--expose-gc", file, ...caseArgs];
  return new Promise<Result>((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (data: string) => out += data);
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code === 0) resolve(JSON.parse(out) as Result);
      else reject(new Error(`memory case ${kind.name}/${what} exited with ${code}`));
    });
  });
}

const arg = (name: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

const caseArg = arg("case");
if (caseArg !== undefined) {
  // The case role: one measurement, printed as JSON.
  const [name, what] = caseArg.split("/");
  const kind = KINDS.find((k) => k.name === name);
  if (!kind || (what !== "baton" && what !== "floor")) throw new RangeError(`bad case ${caseArg}`);
  const result = await measure(kind, what, arg("url")!, arg("key")!);
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}

const server = await startRedis();
const results: Result[] = [];
try {
  const key = `bench:${crypto.randomUUID().slice(0, 8)}:memory`;
  for (const kind of KINDS) {
    results.push(await measureApart(kind, "floor", server.url, `${key}:floor`));
    results.push(await measureApart(kind, "baton", server.url, `${key}:baton`));
  }
} finally {
  await server.stop();
}

console.log(
  `\nmemory: acquire + release cycles (${LANES} at a time), heap before and after` +
    `${SMOKE ? " (smoke: too few cycles for the verdict to mean much)" : ""}`,
);
console.log(`${new Date().toISOString()}, ${await machine()}\n`);
/** baton's verdict: its growth, and when that misses, whether the floor's misses too. */
function verdict(r: Result, floor: Result | undefined): string {
  const gc = r.forcedGc ? "" : " (no forced GC)";
  if (r.pass) return `PASS${gc}`;
  if (floor && r.growthBytes - floor.growthBytes < LIMIT_BYTES) {
    return `FAIL${gc}: the client's own, the floor grows as much`;
  }
  return `FAIL${gc}`;
}
console.log(markdownTable(
  ["runtime", "client", "cycles of", "cycles", "heap before", "heap after", "growth", "< 1 MB"],
  results.map((r) => [
    r.runtime,
    r.client,
    r.what,
    r.cycles.toLocaleString("en-US"),
    kb(r.heapBeforeBytes),
    kb(r.heapAfterBytes),
    kb(r.growthBytes),
    r.what === "floor"
      ? "(reference)"
      : verdict(r, results.find((f) => f.client === r.client && f.what === "floor")),
  ]),
));
if (results.some((r) => !r.forcedGc)) {
  console.log("\nno forced GC: run Deno with --v8-flags=--expose-gc for a figure without garbage");
}
await writeResult(`memory-${isBun ? "bun" : "deno"}`, results);
