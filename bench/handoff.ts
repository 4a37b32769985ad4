// Handoff latency: the time from a holder's release() call to the moment the next
// owner's acquireLock() resolves, for a waiter woken by the release (the default) and
// for one that only polls (subscriber: false), against one uncontended acquire + release
// on the same client in the same run. Run: deno run -A bench/handoff.ts (or bun run).
// BENCH_SMOKE=1 runs a few rounds only.
import { acquireLock, type RedisClient } from "../mod.ts";
import { CLIENTS } from "../tests/_clients.ts";
import { startRedis } from "../tests/_redis.ts";
import { quantile, SMOKE } from "./_setup.ts";

const ROUNDS = SMOKE ? 10 : 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function quantiles(samples: number[]): { p50: number; p99: number; max: number } {
  const s = new Float64Array(samples).sort();
  return { p50: quantile(s, 0.5), p99: quantile(s, 0.99), max: s[s.length - 1]! };
}

async function handoffs(a: RedisClient, b: RedisClient, subscribe: boolean): Promise<number[]> {
  const samples: number[] = [];
  const key = `bench:handoff:${subscribe}`;
  for (let i = 0; i < ROUNDS; i++) {
    const held = await acquireLock(a, key, { ttl: 10 });
    const waiter = acquireLock(b, key, {
      ttl: 10,
      timeout: 10_000,
      ...(subscribe ? {} : { subscriber: false as const, retryDelay: 10, maxRetryDelay: 100 }),
    });
    await sleep(3); // the waiter has tried once, queued, and (if it can) subscribed
    const releasedAt = performance.now();
    await held.release();
    const next = await waiter;
    samples.push(performance.now() - releasedAt);
    await next.release();
  }
  return samples;
}

async function uncontended(a: RedisClient): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now();
    await (await acquireLock(a, "bench:handoff:floor", { ttl: 10 })).release();
    samples.push(performance.now() - t);
  }
  return samples;
}

const server = await startRedis();
const fmt = (ms: number) => ms.toFixed(3).padStart(8);
console.log(`handoff latency, ${ROUNDS} rounds per row (ms)`);
console.log(
  "client            case                               p50       p99       max   p50 vs floor",
);
try {
  for (const kind of CLIENTS) {
    const a = await kind.connect(server.url);
    const b = await kind.connect(server.url);
    try {
      const floor = quantiles(await uncontended(a));
      const rows: [string, { p50: number; p99: number; max: number }][] = [
        ["uncontended acquire + release", floor],
      ];
      if (kind.name !== "raw sendCommand") {
        rows.push(["handoff, woken by release", quantiles(await handoffs(a, b, true))]);
      }
      rows.push(["handoff, polling only", quantiles(await handoffs(a, b, false))]);
      for (const [name, q] of rows) {
        console.log(
          `${kind.name.padEnd(18)}${name.padEnd(32)}${fmt(q.p50)}  ${fmt(q.p99)}  ${fmt(q.max)}   ${
            (q.p50 / floor.p50).toFixed(2)
          }x`,
        );
      }
    } finally {
      await kind.close(a);
      await kind.close(b);
    }
  }
} finally {
  await server.stop();
}
