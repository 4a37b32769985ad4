// Contention: W workers take one key again and again around a critical section of two
// Redis commands (GET a counter, SET it one higher), for a few seconds per library. It
// reports throughput, the wait per acquire (p50, p99, max), the Redis commands each
// critical section cost, and lost updates (the counter against the count of sections: a
// lock that let two workers in at once loses some).
//
//   deno run -A bench/contention.ts [--workers 8] [--seconds 2] [--rounds 3]
//     [--mode connections|processes|both] [--libs baton,redis-semaphore,...] [--poll-ms 1]
//     [--windows 0,20]   (also baton with these fairness windows, as reference rows)
//
// Each library runs `rounds` times for `seconds`, the libraries taking turns; the
// throughput shown is the median run's, the waits are pooled over all runs.
//
// `connections`: the workers share this process, each on its own connection.
// `processes`: each worker is a process of its own (this file, in the worker role).
// Every library runs with its default retry settings; only the give-up limits are raised
// so that no worker gives up during a run (see CONTENDERS).
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import { Mutex } from "redis-semaphore";
import { Redlock as SesameRedlock } from "@sesamecare-oss/redlock";
import Redlock from "redlock";
import { acquireLock, type RedisClient } from "../mod.ts";
import { IOREDIS } from "../tests/_clients.ts";
import { startRedis } from "../tests/_redis.ts";
import {
  floorOf,
  formatMs,
  isBun,
  machine,
  markdownTable,
  quantile,
  SMOKE,
  TTL_MS,
  TTL_SECONDS,
  writeResult,
} from "./_setup.ts";

/** Takes the lock and resolves to the function that releases it. */
type Acquire = () => Promise<() => Promise<unknown>>;

interface Contender {
  name: string;
  /** Whether it counts as a peer: the targets compare baton with the best peer. */
  peer: boolean;
  /** What the row runs with, beyond the library's defaults. */
  settings: string;
  /** Makes one worker's acquire on its own client. */
  worker(client: Redis, key: string, pollMs: number): Promise<Acquire>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * baton with its defaults, or (a reference row, `--windows`) with another fairness
 * window: the trade between throughput and the longest wait.
 */
function batonContender(windowMs?: number): Contender {
  const variant = windowMs !== undefined;
  return {
    name: variant ? `baton fairnessWindow ${windowMs}` : "baton",
    peer: false,
    settings: variant
      ? `ttl 10 s, timeout 10 s, fairnessWindow ${windowMs} ms`
      : "ttl 10 s, timeout 10 s",
    worker: (client, key) =>
      Promise.resolve(async () => {
        const lock = await acquireLock(client as unknown as RedisClient, key, {
          ttl: TTL_SECONDS,
          timeout: 10_000,
          ...(variant ? { fairnessWindow: windowMs } : {}),
        });
        return () => lock.release();
      }),
  };
}

/** The shape both redlock packages share. */
interface RedlockLike {
  on(event: "error", listener: () => void): unknown;
  acquire(keys: string[], ttlMs: number): Promise<{ release(): Promise<unknown> }>;
}

/** One of the redlocks, with its defaults but no limit on retries. */
function redlockContender(name: string, make: (client: Redis) => RedlockLike): Contender {
  return {
    name,
    peer: true,
    settings: "defaults (retry every 200 ± 100 ms); retryCount -1 (no limit)",
    worker: (client, key) => {
      const redlock = make(client);
      redlock.on("error", () => {});
      return Promise.resolve(async () => {
        const lock = await redlock.acquire([key], TTL_MS);
        return () => lock.release();
      });
    },
  };
}

const CONTENDERS: Contender[] = [
  batonContender(),
  {
    name: "redis-semaphore Mutex",
    peer: true,
    settings: "defaults (poll every 10 ms); acquireTimeout 60 s",
    worker: (client, key) =>
      Promise.resolve(async () => {
        const mutex = new Mutex(client, key, { acquireTimeout: 60_000 });
        await mutex.acquire();
        return () => mutex.release();
      }),
  },
  redlockContender(
    "@sesamecare-oss/redlock",
    (client) => new SesameRedlock([client], { retryCount: -1 }),
  ),
  redlockContender("redlock", (client) => new Redlock([client], { retryCount: -1 })),
  {
    name: "raw SET NX poll loop",
    peer: false,
    settings: "SET NX PX, poll every --poll-ms (1 ms); EVALSHA release",
    async worker(client, key, pollMs) {
      const floor = await floorOf(client as unknown as RedisClient);
      return async () => {
        const token = crypto.randomUUID();
        while (!await floor.acquire(key, token, TTL_MS)) await sleep(pollMs);
        return () => floor.release(key, token);
      };
    },
  },
];

/** What one worker measured. */
interface WorkerResult {
  /** The wait of every acquire, in ms. */
  waits: number[];
  /**
   * When it held the lock: the start and end (before release) of every critical
   * section, as one flat list of ms since the epoch (a clock its processes share).
   */
  spans: number[];
  /** From the start signal to the end of its last critical section, in ms. */
  elapsedMs: number;
  /** CPU time (user + system) of its process while it worked, in ms. */
  cpuMs?: number;
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

/** Takes the lock until `seconds` have passed (or `stop()` says so), timing each wait. */
async function work(
  client: Redis,
  acquire: Acquire,
  counterKey: string,
  seconds: number,
  stop: () => boolean = () => false,
): Promise<WorkerResult> {
  const startedAt = performance.now();
  const stopAt = startedAt + seconds * 1000;
  const waits: number[] = [];
  const spans: number[] = [];
  while (performance.now() < stopAt && !stop()) {
    const askedAt = performance.now();
    const release = await acquire();
    const gotAt = performance.now();
    waits.push(gotAt - askedAt);
    try {
      // The critical section: two commands, a read-modify-write that a broken lock loses.
      const value = Number(await client.get(counterKey) ?? 0);
      await client.set(counterKey, String(value + 1));
    } finally {
      spans.push(performance.timeOrigin + gotAt, performance.timeOrigin + performance.now());
      await release();
    }
  }
  return { waits, spans, elapsedMs: performance.now() - startedAt };
}

interface Options {
  workers: number;
  seconds: number;
  pollMs: number;
  url: string;
}

function contender(name: string): Contender {
  const window = /^baton(?: |-)fairnesswindow(?: |-)(\d+)$/i.exec(name);
  if (window) return batonContender(Number(window[1]));
  const found = CONTENDERS.find((c) => c.name === name || slug(c.name) === name);
  if (!found) throw new RangeError(`unknown library "${name}"`);
  return found;
}

function slug(name: string): string {
  return name.toLowerCase().replace(/^@/, "").replace(/[^a-z0-9]+/g, "-").replace(/-$/, "");
}

/** Runs one library with all workers in this process, each on its own connection. */
async function runConnections(c: Contender, key: string, o: Options): Promise<WorkerResult[]> {
  const clients: Redis[] = [];
  try {
    for (let i = 0; i < o.workers; i++) {
      clients.push(await IOREDIS.connect(o.url) as unknown as Redis);
    }
    const acquires = await Promise.all(clients.map((client) => c.worker(client, key, o.pollMs)));
    let failed = false;
    const cpu = process.cpuUsage();
    const results = await Promise.all(
      clients.map((client, i) =>
        work(client, acquires[i]!, `${key}:counter`, o.seconds, () => failed).catch((error) => {
          failed = true;
          throw error;
        })
      ),
    );
    // The workers share this process: its CPU time is theirs.
    results[0]!.cpuMs = cpuMsSince(cpu);
    return results;
  } finally {
    for (const client of clients) await IOREDIS.close(client as unknown as RedisClient);
  }
}

/** The command that runs this file in the worker role. */
function workerCommand(): [string, string[]] {
  const file = fileURLToPath(import.meta.url);
  return isBun ? [process.execPath, [file]] : [process.execPath, ["run", "-A", file]];
}

/** Runs one library with each worker in a process of its own. */
async function runProcesses(c: Contender, key: string, o: Options): Promise<WorkerResult[]> {
  const [command, prefix] = workerCommand();
  const children: ChildProcess[] = [];
  const lines: Promise<string>[][] = [];
  try {
    for (let i = 0; i < o.workers; i++) {
      const child = spawn(command, [
        ...prefix,
        "--role=worker",
        `--lib=${c.name}`,
        `--url=${o.url}`,
        `--key=${key}`,
        `--seconds=${o.seconds}`,
        `--poll-ms=${o.pollMs}`,
      ], { stdio: ["pipe", "pipe", "inherit"] });
      children.push(child);
      lines.push(readLines(child, 2));
    }
    // Start every worker at once, when all are connected.
    for (const i of children.keys()) {
      const ready = await lines[i]![0]!;
      if (ready !== "ready") throw new Error(`worker ${i} did not start: ${ready}`);
    }
    for (const child of children) child.stdin!.write("go\n");
    const results: WorkerResult[] = [];
    for (const i of children.keys()) {
      const reply = JSON.parse(await lines[i]![1]!) as WorkerResult | { error: string };
      if ("error" in reply) throw new Error(reply.error);
      results.push(reply);
    }
    return results;
  } finally {
    await Promise.all(children.map((child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.stdin?.end();
        setTimeout(() => child.kill("SIGKILL"), 5_000).unref?.();
      })
    ));
  }
}

/** Promises of the first `count` lines a child writes; they reject if it exits before. */
function readLines(child: ChildProcess, count: number): Promise<string>[] {
  const waiters = Array.from({ length: count }, () => Promise.withResolvers<string>());
  let got = 0;
  let buffer = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (data: string) => {
    buffer += data;
    let eol;
    while ((eol = buffer.indexOf("\n")) >= 0 && got < count) {
      waiters[got++]!.resolve(buffer.slice(0, eol));
      buffer = buffer.slice(eol + 1);
    }
  });
  child.once("exit", (code, signal) => {
    for (let i = got; i < count; i++) {
      waiters[i]!.reject(new Error(`worker exited (${signal ?? code}) before its result`));
    }
    got = count;
  });
  for (const w of waiters) w.promise.catch(() => {});
  return waiters.map((w) => w.promise);
}

/** The worker role: connect, say "ready", wait for "go", work, print the result as JSON. */
async function workerMain(args: Map<string, string>): Promise<void> {
  const o = {
    lib: contender(args.get("lib")!),
    url: args.get("url")!,
    key: args.get("key")!,
    seconds: Number(args.get("seconds")),
    pollMs: Number(args.get("poll-ms")),
  };
  const client = await IOREDIS.connect(o.url) as unknown as Redis;
  let code = 0;
  try {
    const acquire = await o.lib.worker(client, o.key, o.pollMs);
    const go = new Promise<void>((resolve, reject) => {
      process.stdin.setEncoding("utf8");
      process.stdin.on("data", (data: string) => {
        if (data.includes("go")) resolve();
      });
      process.stdin.once("end", () => reject(new Error("the parent left before the start")));
    });
    process.stdout.write("ready\n");
    await go;
    process.stdin.pause();
    const cpu = process.cpuUsage();
    const result = await work(client, acquire, `${o.key}:counter`, o.seconds);
    result.cpuMs = cpuMsSince(cpu);
    process.stdout.write(JSON.stringify(result) + "\n");
  } catch (error) {
    process.stdout.write(JSON.stringify({ error: String(error) }) + "\n");
    code = 1;
  } finally {
    await IOREDIS.close(client as unknown as RedisClient);
  }
  process.exit(code);
}

/** One row of the table. */
interface Row {
  library: string;
  peer: boolean;
  settings: string;
  ops?: number;
  opsPerSecond?: number;
  /** The lowest and highest throughput of single runs. */
  opsRange?: [min: number, max: number];
  meanMs?: number;
  p50Ms?: number;
  p99Ms?: number;
  maxMs?: number;
  commandsPerOp?: number;
  /** The workers' CPU time per acquire, in ms. */
  cpuPerOpMs?: number;
  /** How often the lock went to another worker. */
  switchesPerSecond?: number;
  /** The pace of a worker that keeps the lock (see Switching.streakCycleMs). */
  streakCycleMs?: number;
  /** The time beyond the streak pace that the run took, per switch, in ms. */
  lostPerSwitchMs?: number;
  lostUpdates?: number;
  /** The fewest and the most acquires of one worker: how evenly the lock was shared. */
  perWorker?: [min: number, max: number];
  error?: string;
}

async function totalCommands(admin: Redis): Promise<number> {
  const info = await admin.info("stats");
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN);
}

/** Deletes the case's keys, whatever the libraries named them under its key. */
async function deleteKeys(admin: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await admin.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    if (keys.length > 0) await admin.del(...keys);
    cursor = next;
  } while (cursor !== "0");
}

/** What one run of one library measured. */
interface Sample {
  waits: number[];
  opsPerSecond: number;
  commands: number;
  lostUpdates: number;
  perWorker: number[];
  cpuMs: number;
  switching: Switching;
}

/** How the lock moved between workers in one run. */
interface Switching {
  /** Times the lock went to another worker than the one that held it last. */
  switches: number;
  /**
   * The median time from one critical section's start to the next one's, late in long
   * streaks (the 20th section of a worker in a row and after): the pace of a worker
   * that keeps the lock. Undefined when no streak was that long.
   */
  streakCycleMs: number | undefined;
  /**
   * Time beyond that pace spent by the first 20 sections after each switch (the switch
   * itself, and a worker that just got the lock being slower at first), in ms.
   */
  excessMs: number;
}

/** Orders every worker's critical sections in time and measures the switches. */
function switchingOf(results: WorkerResult[]): Switching {
  const sections: [start: number, worker: number][] = [];
  results.forEach((r, worker) => {
    for (let i = 0; i < r.spans.length; i += 2) sections.push([r.spans[i]!, worker]);
  });
  sections.sort((a, b) => a[0] - b[0]);
  // Each section's distance to the previous one, and its place in its worker's streak.
  const cycles: [ms: number, inRow: number][] = [];
  let switches = 0;
  let inRow = 0;
  for (let i = 1; i < sections.length; i++) {
    if (sections[i]![1] === sections[i - 1]![1]) inRow++;
    else {
      switches++;
      inRow = 0;
    }
    cycles.push([sections[i]![0] - sections[i - 1]![0], inRow]);
  }
  const late = cycles.filter(([, n]) => n >= 20).map(([ms]) => ms).sort((a, b) => a - b);
  const pace = late.length ? late[late.length >> 1] : undefined;
  let excessMs = 0;
  if (pace !== undefined) {
    for (const [ms, n] of cycles) if (n < 20) excessMs += ms - pace;
  }
  return { switches, streakCycleMs: pace, excessMs };
}

async function runOnce(
  c: Contender,
  mode: "connections" | "processes",
  admin: Redis,
  key: string,
  o: Options,
): Promise<Sample> {
  const before = await totalCommands(admin);
  try {
    const results = mode === "connections"
      ? await runConnections(c, key, o)
      : await runProcesses(c, key, o);
    const commands = await totalCommands(admin) - before - 1;
    const waits = results.flatMap((r) => r.waits);
    const elapsedMs = Math.max(...results.map((r) => r.elapsedMs));
    const counter = Number(await admin.get(`${key}:counter`) ?? 0);
    return {
      waits,
      opsPerSecond: waits.length / (elapsedMs / 1000),
      commands,
      lostUpdates: waits.length - counter,
      perWorker: results.map((r) => r.waits.length),
      cpuMs: results.reduce((ms, r) => ms + (r.cpuMs ?? 0), 0),
      switching: switchingOf(results),
    };
  } finally {
    await deleteKeys(admin, `${key}*`);
  }
}

/**
 * The row of one library from its runs: throughput is the median of the runs' (the
 * machine's load moves single runs), waits are pooled over all runs.
 */
function rowOf(c: Contender, samples: Sample[], error: string | undefined): Row {
  const row: Row = { library: c.name, peer: c.peer, settings: c.settings };
  if (error !== undefined) return { ...row, error };
  const waits = new Float64Array(samples.flatMap((s) => s.waits)).sort();
  const rates = new Float64Array(samples.map((s) => s.opsPerSecond)).sort();
  const counts = samples.flatMap((s) => s.perWorker);
  row.ops = waits.length;
  row.opsPerSecond = quantile(rates, 0.5);
  row.opsRange = [rates[0]!, rates[rates.length - 1]!];
  row.meanMs = waits.reduce((sum, ms) => sum + ms, 0) / waits.length;
  row.p50Ms = quantile(waits, 0.5);
  row.p99Ms = quantile(waits, 0.99);
  row.maxMs = waits[waits.length - 1];
  row.commandsPerOp = samples.reduce((n, s) => n + s.commands, 0) / waits.length;
  row.cpuPerOpMs = samples.reduce((ms, s) => ms + s.cpuMs, 0) / waits.length;
  row.lostUpdates = samples.reduce((n, s) => n + s.lostUpdates, 0);
  row.perWorker = [Math.min(...counts), Math.max(...counts)];
  const switches = samples.reduce((n, s) => n + s.switching.switches, 0);
  const seconds = samples.reduce((sum, s) => sum + s.waits.length / s.opsPerSecond, 0);
  const paces = samples.map((s) => s.switching.streakCycleMs).filter((ms) => ms !== undefined)
    .sort((a, b) => a - b);
  row.switchesPerSecond = switches / seconds;
  row.streakCycleMs = paces[paces.length >> 1];
  if (paces.length === samples.length && switches > 0) {
    row.lostPerSwitchMs = samples.reduce((ms, s) => ms + s.switching.excessMs, 0) / switches;
  }
  return row;
}

function ratio(value: number | undefined, best: number | undefined): string {
  if (value === undefined || best === undefined || !(best > 0)) return "—";
  return `${(value / best).toFixed(2)}x`;
}

/** The table of one mode, with each figure also as a ratio against the best peer. */
function table(rows: Row[]): string {
  const peers = rows.filter((r) => r.peer && r.error === undefined);
  const bestThroughput = Math.max(...peers.map((r) => r.opsPerSecond!));
  const bestP99 = Math.min(...peers.map((r) => r.p99Ms!));
  const bestMax = Math.min(...peers.map((r) => r.maxMs!));
  return markdownTable(
    [
      "library",
      "acquires",
      "throughput ops/s (runs' range)",
      "mean wait",
      "p50 wait",
      "p99 wait",
      "max wait",
      "Redis cmds/op",
      "client CPU/op",
      "lost updates",
      "acquires per worker (min–max)",
      "throughput vs best peer",
      "p99 vs best peer",
      "max vs best peer",
    ],
    rows.map((r) =>
      r.error !== undefined
        ? [
          r.library,
          `failed: ${r.error.replaceAll("|", "/").slice(0, 120)}`,
          ...Array(12).fill(""),
        ]
        : [
          r.library === "baton" ? "**baton**" : r.peer ? r.library : `${r.library} (reference)`,
          String(r.ops),
          `${r.opsPerSecond!.toFixed(0)} (${r.opsRange![0].toFixed(0)}–${
            r.opsRange![1].toFixed(0)
          })`,
          formatMs(r.meanMs!),
          formatMs(r.p50Ms!),
          formatMs(r.p99Ms!),
          formatMs(r.maxMs!),
          r.commandsPerOp!.toFixed(1),
          formatMs(r.cpuPerOpMs!),
          String(r.lostUpdates),
          `${r.perWorker![0]}–${r.perWorker![1]}`,
          ratio(r.opsPerSecond, bestThroughput),
          ratio(r.p99Ms, bestP99),
          ratio(r.maxMs, bestMax),
        ]
    ),
  );
}

/**
 * What switching the lock between workers costs: per switch, the time the 20 critical
 * sections after it took beyond the pace of a worker that keeps the lock.
 */
function switchingTable(rows: Row[]): string {
  return markdownTable(
    ["library", "switches/s", "cycle within a long streak", "time lost per switch"],
    rows.filter((r) => r.error === undefined).map((r) => [
      r.library === "baton" ? "**baton**" : r.library,
      r.switchesPerSecond!.toFixed(0),
      r.streakCycleMs === undefined ? "— (no streak of 20)" : formatMs(r.streakCycleMs),
      r.lostPerSwitchMs === undefined ? "—" : formatMs(r.lostPerSwitchMs),
    ]),
  );
}

/** baton's targets at this mode: p99 and max wait ≤ 0.25x the best peer's, throughput ≥ 0.8x. */
function targets(rows: Row[]): string {
  const baton = rows.find((r) => r.library === "baton");
  const peers = rows.filter((r) => r.peer && r.error === undefined);
  if (!baton || baton.error !== undefined || peers.length === 0) {
    return "not measured (baton or every peer failed)";
  }
  const p99 = baton.p99Ms! / Math.min(...peers.map((r) => r.p99Ms!));
  const max = baton.maxMs! / Math.min(...peers.map((r) => r.maxMs!));
  const throughput = baton.opsPerSecond! / Math.max(...peers.map((r) => r.opsPerSecond!));
  const verdict = (ok: boolean) => ok ? "PASS" : "FAIL";
  return [
    `p99 wait ${p99.toFixed(2)}x the best peer's (≤ 0.25: ${verdict(p99 <= 0.25)}),`,
    `max wait ${max.toFixed(2)}x (≤ 0.25: ${verdict(max <= 0.25)}),`,
    `throughput ${throughput.toFixed(2)}x (≥ 0.80: ${verdict(throughput >= 0.8)})`,
  ].join(" ");
}

/**
 * What the p99 and max targets ask together, by Little's law: the workers waiting on
 * average (mean wait x throughput, about W - 1 for every lock here) equal throughput x
 * mean wait, and a lock with p99 <= P and max <= M has a mean wait of at most
 * 0.99 P + 0.01 M. So it needs a throughput of at least waiting / (0.99 P + 0.01 M).
 */
function littlesLaw(rows: Row[]): string {
  const measured = rows.filter((r) => r.error === undefined);
  const peers = measured.filter((r) => r.peer);
  if (peers.length === 0) return "";
  const p = 0.25 * Math.min(...peers.map((r) => r.p99Ms!));
  const m = 0.25 * Math.min(...peers.map((r) => r.maxMs!));
  const waiting = measured.map((r) => r.meanMs! * r.opsPerSecond! / 1000);
  const needed = Math.min(...waiting) / ((0.99 * p + 0.01 * m) / 1000);
  const fastest = Math.max(...measured.map((r) => r.opsPerSecond!));
  return `workers waiting on average (mean wait x throughput): ${
    Math.min(...waiting).toFixed(2)
  } to ${Math.max(...waiting).toFixed(2)}; a p99 of at most ${formatMs(p)} with a max of at most ${
    formatMs(m)
  } needs a throughput of at least ${needed.toFixed(0)} ops/s (the fastest row: ${
    fastest.toFixed(0)
  } ops/s)`;
}

function parseArgs(argv: string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new RangeError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf("=");
    if (eq >= 0) args.set(arg.slice(2, eq), arg.slice(eq + 1));
    else args.set(arg.slice(2), argv[++i] ?? "");
  }
  return args;
}

async function main(args: Map<string, string>): Promise<number> {
  const workers = Number(args.get("workers") ?? 8);
  const seconds = Number(args.get("seconds") ?? (SMOKE ? 0.5 : 2));
  const rounds = Number(args.get("rounds") ?? (SMOKE ? 1 : 3));
  const pollMs = Number(args.get("poll-ms") ?? 1);
  const modeArg = args.get("mode") ?? "both";
  const modes = modeArg === "both"
    ? ["connections", "processes"] as const
    : modeArg === "connections" || modeArg === "processes"
    ? [modeArg] as const
    : undefined;
  if (!modes) throw new RangeError(`--mode must be connections, processes or both: "${modeArg}"`);
  const contenders = args.has("libs")
    ? args.get("libs")!.split(",").map((name) => contender(name.trim()))
    : [...CONTENDERS];
  // Reference rows of baton with other fairness windows, right after baton.
  const windows = args.get("windows")?.split(",").filter(Boolean).map(Number) ?? [];
  contenders.splice(1, 0, ...windows.map((ms) => batonContender(ms)));

  const server = await startRedis();
  const admin = await IOREDIS.connect(server.url) as unknown as Redis;
  const runId = crypto.randomUUID().slice(0, 8);
  const o: Options = { workers, seconds, pollMs, url: server.url };
  const out: Record<string, Row[]> = {};
  const verdicts: Record<string, string> = {};
  const bounds: Record<string, string> = {};
  let failures = 0;
  try {
    const redisVersion = /redis_version:(\S+)/.exec(await admin.info("server"))?.[1];
    console.log(
      `\ncontention: ${workers} workers, ${rounds} rounds of ${seconds} s per library, one key, critical section` +
        ` GET + SET${SMOKE ? " (smoke)" : ""}`,
    );
    console.log(`${new Date().toISOString()}, ${await machine()}, Redis ${redisVersion}`);
    for (const mode of modes) {
      // Rounds take turns, each starting with another library, so that load that comes
      // and goes on the machine hits every library alike.
      const samples = contenders.map(() => [] as Sample[]);
      const errors: (string | undefined)[] = contenders.map(() => undefined);
      for (let round = 0; round < rounds; round++) {
        for (let j = 0; j < contenders.length; j++) {
          const i = (j + round) % contenders.length;
          if (errors[i] !== undefined) continue;
          const key = `bench:${runId}:contention:${mode}:${round}:${slug(contenders[i]!.name)}`;
          try {
            samples[i]!.push(await runOnce(contenders[i]!, mode, admin, key, o));
          } catch (error) {
            errors[i] = error instanceof Error ? error.message : String(error);
            failures++;
          }
        }
      }
      const rows = contenders.map((c, i) => rowOf(c, samples[i]!, errors[i]));
      out[mode] = rows;
      console.log(
        `\n${
          mode === "connections" ? "separate connections, one process" : "separate processes"
        }:\n`,
      );
      console.log(table(rows));
      console.log("\nswitching the lock between workers:\n");
      console.log(switchingTable(rows));
      verdicts[mode] = targets(rows);
      console.log(`\ntargets: ${verdicts[mode]}`);
      bounds[mode] = littlesLaw(rows);
      console.log(`\nLittle's law: ${bounds[mode]}`);
    }
    console.log("\nsettings:");
    for (const c of contenders) console.log(`- ${c.name}: ${c.settings}`);
    await writeResult(`contention-${modeArg}`, {
      targets: verdicts,
      littlesLaw: bounds,
      workers,
      seconds,
      rounds,
      pollMs,
      redisVersion,
      modes: out,
    });
  } finally {
    await IOREDIS.close(admin as unknown as RedisClient);
    await server.stop();
  }
  return failures === 0 ? 0 : 1;
}

const args = parseArgs(process.argv.slice(2));
if (args.get("role") === "worker") {
  await workerMain(args);
} else {
  process.exitCode = await main(args);
}
