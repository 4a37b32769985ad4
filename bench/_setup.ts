// What the benches share: a Redis server (REDIS_URL, or a throwaway redis-server), the
// clients on it, the smoke-mode flag, the "floor" (the raw commands a lock needs at the
// least), and a shutdown that leaves no socket or process behind.
//
// Runs under Deno and Bun: no Deno API here, only node: modules and the test helpers.
import process from "node:process";
import type { Redis } from "ioredis";
import type { RedisClient } from "../mod.ts";
import { IOREDIS, NODE_REDIS } from "../tests/_clients.ts";
import { type RedisServer, startRedis } from "../tests/_redis.ts";

/** Whether this is a smoke run (`BENCH_SMOKE=1`): few iterations, only to prove the benches run. */
export const SMOKE: boolean = process.env.BENCH_SMOKE === "1";

/** Whether the bench runs under Bun. */
export const isBun: boolean = "Bun" in globalThis;

/**
 * `Deno.bench` options for a case that makes Redis round trips (tens of µs each): enough
 * iterations for a stable average, or a handful in smoke mode.
 */
export const ROUND_TRIP: { n: number; warmup: number } = SMOKE
  ? { n: 20, warmup: 2 }
  : { n: 2_000, warmup: 200 };

/** `Deno.bench` options for a case without I/O: Deno picks the count, except in smoke mode. */
export const IN_MEMORY: { n?: number; warmup?: number } = SMOKE ? { n: 200, warmup: 20 } : {};

/** The lease the benches take, in seconds, and the same in ms for the peers that want ms. */
export const TTL_SECONDS = 10;
/** {@linkcode TTL_SECONDS} in milliseconds. */
export const TTL_MS: number = TTL_SECONDS * 1000;

/** node-redis, as far as the benches use it. */
export interface NodeRedis {
  sendCommand(args: string[]): Promise<unknown>;
  close(): Promise<void>;
  destroy(): void;
  readonly isOpen: boolean;
}

/** One raw command, `[command, ...args]`, through a client's own raw-command method. */
export type RawSend = (args: string[]) => Promise<unknown>;

/**
 * The raw-command method of a client: `call` (ioredis), `sendCommand` (node-redis) or
 * `send` (Bun). baton sends through the same method, so floor and baton differ only by
 * what baton adds.
 */
export function rawSendOf(client: RedisClient): RawSend {
  const c = client as {
    call?: (...args: string[]) => Promise<unknown>;
    sendCommand?: (args: string[]) => Promise<unknown>;
    send?: (command: string, args: string[]) => Promise<unknown>;
  };
  if (c.call) return (args) => c.call!(...args);
  if (c.sendCommand) return (args) => c.sendCommand!(args);
  return (args) => c.send!(args[0]!, args.slice(1));
}

// The floor's two scripts: the smallest correct release and extend, by owner token.
const RELEASE_IF_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;
const EXTEND_IF_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;

/**
 * The floor: what any correct Redis lock costs at the least. Acquire is one
 * `SET key token NX PX ttl`; release and extend are one EVALSHA of a compare-by-token
 * script. Each returns whether it took effect.
 */
export interface Floor {
  acquire(key: string, token: string, ttlMs: number): Promise<boolean>;
  release(key: string, token: string): Promise<boolean>;
  extend(key: string, token: string, ttlMs: number): Promise<boolean>;
}

/** Loads the floor's scripts on the client's server and returns the floor on that client. */
export async function floorOf(client: RedisClient): Promise<Floor> {
  const send = rawSendOf(client);
  const releaseSha = String(await send(["SCRIPT", "LOAD", RELEASE_IF_OWNER]));
  const extendSha = String(await send(["SCRIPT", "LOAD", EXTEND_IF_OWNER]));
  return {
    async acquire(key, token, ttlMs) {
      return await send(["SET", key, token, "NX", "PX", String(ttlMs)]) !== null;
    },
    async release(key, token) {
      return Number(await send(["EVALSHA", releaseSha, "1", key, token])) === 1;
    },
    async extend(key, token, ttlMs) {
      return Number(await send(["EVALSHA", extendSha, "1", key, token, String(ttlMs)])) === 1;
    },
  };
}

/** The server and the clients of one bench process. */
export interface BenchRedis {
  server: RedisServer;
  /** An ioredis client, the client every peer library runs on. */
  ioredis: Redis;
  /** A node-redis client. */
  nodeRedis: NodeRedis;
  /** Sends raw commands for set-up (deleting keys, say) on the ioredis connection. */
  admin: RawSend;
  /** Returns a key unique to this run, so that runs on a shared REDIS_URL do not collide. */
  key(name: string): string;
  /** Quits the clients and stops the server if this process started it. */
  close(): Promise<void>;
  /**
   * Closes the sockets and kills the server at once, for an `unload` handler, which
   * cannot wait: `deno bench` has no hook after the last bench.
   */
  closeNow(): void;
}

/** Starts (or finds, with REDIS_URL) a server and connects one ioredis and one node-redis client. */
export async function openBenchRedis(): Promise<BenchRedis> {
  const server = await startRedis();
  const ioredis = await IOREDIS.connect(server.url) as unknown as Redis;
  const nodeRedis = await NODE_REDIS.connect(server.url) as unknown as NodeRedis;
  const run = crypto.randomUUID().slice(0, 8);
  let closed = false;
  return {
    server,
    ioredis,
    nodeRedis,
    admin: rawSendOf(ioredis as unknown as RedisClient),
    key: (name) => `bench:${run}:${name}`,
    async close() {
      if (closed) return;
      closed = true;
      await IOREDIS.close(ioredis as unknown as RedisClient);
      await NODE_REDIS.close(nodeRedis as unknown as RedisClient);
      await server.stop();
    },
    closeNow() {
      if (closed) return;
      closed = true;
      ioredis.disconnect();
      if (nodeRedis.isOpen) nodeRedis.destroy();
      // stop() sends SIGKILL synchronously; only the wait for the exit is left behind.
      void server.stop();
    },
  };
}

/**
 * Closes `redis` when the bench module unloads: `deno bench` runs every case, then
 * unloads the module, and the sockets and the server must not outlive it.
 */
export function closeOnUnload(redis: BenchRedis): void {
  globalThis.addEventListener("unload", () => redis.closeNow());
}

/** Milliseconds to a human figure: "41.3 µs", "1.20 ms". */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "—";
  if (ms < 1) return `${(ms * 1000).toFixed(1)} µs`;
  if (ms < 100) return `${ms.toFixed(2)} ms`;
  return `${ms.toFixed(0)} ms`;
}

/** The `q` quantile (0..1) of ascending `sorted`, nearest-rank. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** Renders a markdown table. */
export function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** A one-line description of this machine: CPUs, CPU model, runtime. */
export async function machine(): Promise<string> {
  const os = await import("node:os");
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? "unknown CPU";
  const runtime = isBun
    ? `Bun ${(globalThis as { Bun?: { version: string } }).Bun?.version}`
    : `Deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno?.version.deno}`;
  return `${cpus.length} CPU(s), ${model}, ${os.platform()} ${os.arch()}, ${runtime}`;
}

/** Where results go as JSON for bench/all.ts (BENCH_OUT, a directory), if anywhere. */
export async function writeResult(name: string, value: unknown): Promise<void> {
  const dir = process.env.BENCH_OUT;
  if (!dir) return;
  const { mkdir, writeFile } = await import("node:fs/promises");
  await mkdir(dir, { recursive: true });
  await writeFile(`${dir}/${name}.json`, JSON.stringify(value, null, 2));
}

/** What {@linkcode interleave} measured for one pair. */
export interface InterleavedResult {
  /** Median over the rounds of the average time per operation, in ms. */
  floorMs: number;
  subjectMs: number;
  /** Median over the rounds of subject time / floor time within the round. */
  ratio: number;
  /** Half the interquartile range of the rounds' ratios: the noise of `ratio`. */
  noise: number;
  rounds: number;
  perRound: number;
}

/**
 * Marks the timed part of an operation, like `Deno.BenchContext`: without a call to
 * `start()`, timing starts with the call; without `end()`, it ends when it settles.
 */
export interface Timer {
  start(): void;
  end(): void;
}

/** One operation to time. */
export type TimedOp = (timer: Timer) => Promise<void>;

/** Runs `op` once and returns the ms of its timed part. */
async function timeOnce(op: TimedOp): Promise<number> {
  let startedAt = performance.now();
  let endedAt: number | undefined;
  await op({
    start: () => startedAt = performance.now(),
    end: () => endedAt = performance.now(),
  });
  return (endedAt ?? performance.now()) - startedAt;
}

/**
 * Times `subject` against `floor` with the two taking turns operation by operation
 * (swapping who goes first), so that whatever else the machine does in a moment hits
 * both alike. Each round yields one ratio; the result is their median. This is how the
 * targets are checked on a busy machine, where `deno bench` (one case after the other)
 * sees the load change between cases.
 */
export async function interleave(
  floor: TimedOp,
  subject: TimedOp,
  options: { rounds: number; perRound: number; warmUp: number },
): Promise<InterleavedResult> {
  for (let i = 0; i < options.warmUp; i++) {
    await timeOnce(floor);
    await timeOnce(subject);
  }
  const floorRounds: number[] = [];
  const subjectRounds: number[] = [];
  const ratios: number[] = [];
  for (let round = 0; round < options.rounds; round++) {
    let floorMs = 0;
    let subjectMs = 0;
    for (let i = 0; i < options.perRound; i++) {
      if ((i + round) % 2 === 0) {
        floorMs += await timeOnce(floor);
        subjectMs += await timeOnce(subject);
      } else {
        subjectMs += await timeOnce(subject);
        floorMs += await timeOnce(floor);
      }
    }
    floorRounds.push(floorMs / options.perRound);
    subjectRounds.push(subjectMs / options.perRound);
    ratios.push(subjectMs / floorMs);
  }
  const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
  const r = sorted(ratios);
  return {
    floorMs: quantile(sorted(floorRounds), 0.5),
    subjectMs: quantile(sorted(subjectRounds), 0.5),
    ratio: quantile(r, 0.5),
    noise: (quantile(r, 0.75) - quantile(r, 0.25)) / 2,
    rounds: options.rounds,
    perRound: options.perRound,
  };
}
