// Redis Cluster, in one process against a throwaway 3-master cluster and a single server:
// - uncontended acquire + release through each cluster client, against the floor through
//   the same client (SET NX PX, then EVALSHA of a compare-and-delete script), timed turn by
//   turn (interleave());
// - handoff latency (a holder's release() to the waiter's acquireLock() resolving) on the
//   cluster, with sharded news (SPUBLISH in the lock's slot) and with classic news
//   (PUBLISH, which the cluster bus copies to every node), against the same client kind on
//   a single server; and the cluster bus messages each handoff costs.
//
//   deno run -A bench/cluster.ts   (or bun run bench/cluster.ts; BENCH_SMOKE=1: a few rounds)
import { Cluster as IoredisCluster, Redis } from "ioredis";
import { Cluster as ValkeyCluster, Redis as Valkey } from "iovalkey";
import { createClient, createCluster } from "redis";
import { acquireLock, type RedisClient } from "../mod.ts";
import { CLUSTER_CLIENTS, clusterInfo, hashSlot, startCluster } from "../tests/_cluster.ts";
import { startRedis } from "../tests/_redis.ts";
import { interleave, quantile, SMOKE } from "./_setup.ts";

const ROUNDS = SMOKE ? 10 : 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (ms: number) => ms.toFixed(3).padStart(7);

/** One raw command through a cluster client's own method, routed by its key. */
function rawSend(client: RedisClient): (args: string[]) => Promise<unknown> {
  const c = client as unknown as {
    call?: (...args: string[]) => Promise<unknown>;
    sendCommand: (key: string | undefined, readonly: boolean, args: string[]) => Promise<unknown>;
  };
  if (c.call) return (args) => c.call!(args[0]!.toLowerCase(), ...args.slice(1));
  return (args) => c.sendCommand(args[0] === "EVALSHA" ? args[3] : args[1], false, args);
}

const RELEASE_IF_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

/** The floor on a cluster: SET NX PX, then EVALSHA of compare-and-delete (EVAL at first). */
async function floorCycle(send: (args: string[]) => Promise<unknown>, key: string, sha: string) {
  const token = crypto.randomUUID();
  if (await send(["SET", key, token, "NX", "PX", "10000"]) === null) throw new Error("held");
  try {
    await send(["EVALSHA", sha, "1", key, token]);
  } catch {
    await send(["EVAL", RELEASE_IF_OWNER, "1", key, token]);
  }
}

async function sha1(source: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(source));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Handoff latencies over keys `keys` (taken in turn): ms from release() to the next owner. */
async function handoffs(
  a: RedisClient,
  b: RedisClient,
  keys: string[],
  subscriber?: RedisClient,
): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const key = keys[i % keys.length]!;
    const held = await acquireLock(a, key, { ttl: 10 });
    const waiter = acquireLock(b, key, {
      ttl: 10,
      timeout: 10_000,
      maxRetryDelay: 5000,
      ...(subscriber ? { subscriber } : {}),
    });
    await sleep(3); // the waiter has tried once, queued and subscribed
    const releasedAt = performance.now();
    await held.release();
    const next = await waiter;
    samples.push(performance.now() - releasedAt);
    await next.release();
  }
  return samples;
}

function p(samples: number[], q: number): number {
  return quantile(new Float64Array(samples).sort(), q);
}

const cluster = await startCluster(3);
const single = await startRedis({ useEnv: false });
const nodes = cluster.nodes.map((n) => ({ host: n.server.host, port: n.server.port }));
/** Cluster bus PUBLISH messages sent so far, classic and sharded, summed over the nodes. */
const busMessages = async () => {
  let sum = 0;
  for (const node of cluster.nodes) {
    for (const field of ["publish", "publishshard"]) {
      sum += Number(await clusterInfo(node, `cluster_stats_messages_${field}_sent`) || 0);
    }
  }
  return sum;
};
// Keys on each of the three nodes, untagged.
const keysByNode = new Map<string, string[]>();
for (let i = 0; keysByNode.size < 3 || [...keysByNode.values()].some((k) => k.length < 2); i++) {
  const key = `bench:cluster:${i}`;
  const node = await cluster.nodeOf(hashSlot(key));
  const list = keysByNode.get(node.id) ?? [];
  if (list.length < 2) keysByNode.set(node.id, [...list, key]);
}
const keys = [...keysByNode.values()].flat();

const closers: (() => Promise<unknown>)[] = [];
try {
  console.log(
    `\nuncontended acquire + release on a 3-master cluster, against the floor through the same client`,
  );
  console.log("client                      floor ms   baton ms   ratio (± noise)");
  for (const kind of CLUSTER_CLIENTS) {
    const client = await kind.connect(cluster);
    closers.push(() => kind.close(client));
    const send = rawSend(client);
    const sha = await sha1(RELEASE_IF_OWNER);
    const r = await interleave(
      async (t) => {
        t.start();
        await floorCycle(send, "{bench}:floor", sha);
        t.end();
      },
      async (t) => {
        t.start();
        await (await acquireLock(client, "{bench}:baton", { ttl: 10 })).release();
        t.end();
      },
      SMOKE ? { rounds: 3, perRound: 20, warmUp: 20 } : { rounds: 15, perRound: 200, warmUp: 300 },
    );
    console.log(
      `${kind.name.padEnd(26)}${fmt(r.floorMs)}    ${fmt(r.subjectMs)}    ${
        r.ratio.toFixed(2)
      }x (± ${r.noise.toFixed(2)})`,
    );
  }

  console.log(
    `\nhandoff latency, ${ROUNDS} rounds per row, locks on all three nodes (ms from release to the next owner)`,
  );
  console.log(
    "setup                                         news       p50      p90      p99   bus msgs/handoff",
  );
  const row = async (
    name: string,
    news: string,
    make: () => Promise<[RedisClient, RedisClient, RedisClient?]>,
    onCluster: boolean,
  ) => {
    const [a, b, subscriber] = await make();
    await handoffs(a, b, keys.slice(0, 3), subscriber); // warm up
    const before = onCluster ? await busMessages() : 0;
    const samples = await handoffs(a, b, keys, subscriber);
    const bus = onCluster ? ((await busMessages()) - before) / ROUNDS : 0;
    console.log(
      `${name.padEnd(46)}${news.padEnd(9)}${fmt(p(samples, 0.5))}  ${fmt(p(samples, 0.9))}  ${
        fmt(p(samples, 0.99))
      }   ${onCluster ? bus.toFixed(1) : "-"}`,
    );
  };
  const ioredisOpts = { lazyConnect: true } as const;
  const io = async (url: string) => {
    const c = new Redis(url, ioredisOpts);
    await c.connect();
    closers.push(() => c.quit());
    return c as unknown as RedisClient;
  };
  const ioCluster = async (options: Record<string, unknown> = {}) => {
    const c = new IoredisCluster(nodes, { ...ioredisOpts, ...options });
    await c.connect();
    closers.push(() => c.quit());
    return c as unknown as RedisClient;
  };
  const vk = async (url: string) => {
    const c = new Valkey(url, ioredisOpts);
    await c.connect();
    closers.push(() => c.quit());
    return c as unknown as RedisClient;
  };
  const vkCluster = async () => {
    const c = new ValkeyCluster(nodes, ioredisOpts);
    await c.connect();
    closers.push(() => c.quit());
    return c as unknown as RedisClient;
  };
  const nr = async (url: string) => {
    const c = createClient({ url });
    await c.connect();
    closers.push(() => c.close());
    return c as unknown as RedisClient;
  };
  const nrCluster = async () => {
    const c = createCluster({ rootNodes: cluster.nodes.map((n) => ({ url: n.server.url })) });
    await c.connect();
    closers.push(() => c.close());
    return c as unknown as RedisClient;
  };
  await row("ioredis, single server", "classic", async () => [
    await io(single.url),
    await io(single.url),
  ], false);
  await row("ioredis Cluster", "sharded", async () => [
    await ioCluster(),
    await ioCluster(),
  ], true);
  await row("ioredis Cluster, subscriber without sharding", "classic", async () => [
    await ioCluster(),
    await ioCluster(),
    // A Cluster given as the subscriber, made without shardedSubscribers: classic news.
    await ioCluster(),
  ], true);
  await row("node-redis, single server", "classic", async () => [
    await nr(single.url),
    await nr(single.url),
  ], false);
  await row("node-redis createCluster", "sharded", async () => [
    await nrCluster(),
    await nrCluster(),
  ], true);
  await row("iovalkey, single server", "classic", async () => [
    await vk(single.url),
    await vk(single.url),
  ], false);
  await row("iovalkey Cluster", "classic", async () => [
    await vkCluster(),
    await vkCluster(),
  ], true);
} finally {
  for (const close of closers.reverse()) await close().catch(() => {});
  await sleep(400); // baton's subscriber connections close once idle
  await single.stop();
  await cluster.stop();
}
