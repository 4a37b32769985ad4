// A throwaway Redis Cluster for tests and benches: masters started on free loopback
// ports with cluster mode on and no persistence, joined by `redis-cli --cluster create`,
// and stopped (their config files removed) afterwards. Also the cluster clients baton
// supports, made and closed the same way, and the hash slot of a key.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster as IoredisCluster } from "ioredis";
import { Cluster as Ioredis6Cluster } from "ioredis6";
import { Cluster as ValkeyCluster } from "iovalkey";
import { createCluster } from "redis";
import type { RedisClient } from "../mod.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { RespClient } from "./_resp.ts";

/** One master of a test cluster, with an admin connection to it. */
export interface ClusterNode {
  server: RedisServer;
  admin: RespClient;
  /** Its node id, from CLUSTER MYID. */
  id: string;
}

/** A running test cluster. */
export interface TestCluster {
  nodes: ClusterNode[];
  /** The node that serves `slot` now (asked of the cluster, not cached). */
  nodeOf(slot: number): Promise<ClusterNode>;
  /** Stops every node and removes the cluster's files. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `redis-cli` with `args`; resolves to its stdout, rejects when it fails. */
export function redisCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("redis-cli", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d) => out += d);
    child.stderr!.on("data", (d) => out += d);
    child.once("error", reject);
    child.once(
      "exit",
      (code) =>
        code === 0 ? resolve(out) : reject(new Error(`redis-cli ${args.join(" ")}: ${out}`)),
    );
  });
}

/** A field of CLUSTER INFO on `node`. */
export async function clusterInfo(node: ClusterNode, field: string): Promise<string> {
  const info = String(await node.admin.sendCommand(["CLUSTER", "INFO"]));
  const line = info.split("\n").find((l) => l.startsWith(`${field}:`));
  return line?.slice(field.length + 1).trim() ?? "";
}

/**
 * Starts a cluster of `masters` masters (no replicas) and waits until every node says
 * `cluster_state:ok` and agrees on who serves every slot.
 */
export async function startCluster(masters = 3): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), "baton-cluster-"));
  const nodes: ClusterNode[] = [];
  const stop = async () => {
    for (const node of nodes) {
      await node.admin.close().catch(() => {});
      await node.server.stop();
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const servers = await Promise.all(
      Array.from({ length: masters }, async () => {
        // Each node's cluster state in a file of its own, removed with the directory.
        return await startRedis({
          useEnv: false,
          args: [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            join(dir, `nodes-${crypto.randomUUID()}.conf`),
            "--cluster-node-timeout",
            "5000",
            "--dir",
            dir,
          ],
        });
      }),
    );
    for (const server of servers) {
      const admin = await RespClient.connect(server.url);
      nodes.push({ server, admin, id: String(await admin.sendCommand(["CLUSTER", "MYID"])) });
    }
    await redisCli([
      "--cluster",
      "create",
      ...servers.map((s) => `${s.host}:${s.port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ]);
    const cluster: TestCluster = {
      nodes,
      async nodeOf(slot) {
        const slots = await nodes[0]!.admin.sendCommand(["CLUSTER", "SLOTS"]) as [
          number,
          number,
          [string, number, string],
        ][];
        const range = slots.find(([from, to]) => slot >= from && slot <= to);
        const node = nodes.find((n) => n.id === range?.[2][2]);
        if (!node) throw new Error(`no node serves slot ${slot}`);
        return node;
      },
      stop,
    };
    await waitForClusterOk(cluster);
    return cluster;
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Resolves once every node says `cluster_state:ok` and sees the same slots served by
 * the same nodes; rejects after `timeoutMs`.
 */
export async function waitForClusterOk(cluster: TestCluster, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const states = await Promise.all(cluster.nodes.map((n) => clusterInfo(n, "cluster_state")));
    const views = await Promise.all(
      cluster.nodes.map(async (n) =>
        JSON.stringify(
          (await n.admin.sendCommand(["CLUSTER", "SLOTS"]) as [number, number, unknown[]][])
            .map(([from, to, [, , id]]) => [from, to, id]).sort((a, b) =>
              Number(a[0]) - Number(b[0])
            ),
        )
      ),
    );
    if (states.every((s) => s === "ok") && views.every((v) => v === views[0])) return;
    if (Date.now() > deadline) {
      throw new Error(`cluster not ok after ${timeoutMs} ms: ${states.join(", ")}`);
    }
    await sleep(50);
  }
}

/** Redis Cluster's hash slot of `key`: CRC16 (XMODEM) of its hash tag, or of all of it. */
export function hashSlot(key: string): number {
  const open = key.indexOf("{");
  const close = open < 0 ? -1 : key.indexOf("}", open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of new TextEncoder().encode(hashed)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : crc << 1;
  }
  return crc % 16384;
}

/**
 * Moves `slot` (and its keys) from the node that serves it to `to`, by hand as
 * `redis-cli --cluster reshard` does: IMPORTING on `to`, MIGRATING on the source, MIGRATE
 * of its keys in batches, then SETSLOT NODE on every node. `between` runs after the
 * first batch, while the slot is half-moved.
 */
export async function moveSlot(
  cluster: TestCluster,
  slot: number,
  to: ClusterNode,
  between?: () => Promise<unknown>,
): Promise<void> {
  const from = await cluster.nodeOf(slot);
  if (from === to) return;
  const s = String(slot);
  await to.admin.sendCommand(["CLUSTER", "SETSLOT", s, "IMPORTING", from.id]);
  await from.admin.sendCommand(["CLUSTER", "SETSLOT", s, "MIGRATING", to.id]);
  let first = true;
  while (true) {
    const keys = await from.admin.sendCommand(["CLUSTER", "GETKEYSINSLOT", s, "1"]) as string[];
    if (keys.length === 0) break;
    const host = to.server.host;
    await from.admin.sendCommand([
      "MIGRATE",
      host,
      String(to.server.port),
      "",
      "0",
      "5000",
      "KEYS",
      ...keys,
    ]);
    if (first && between) await between();
    first = false;
  }
  if (first && between) await between();
  for (const node of [to, from, ...cluster.nodes]) {
    await node.admin.sendCommand(["CLUSTER", "SETSLOT", s, "NODE", to.id]);
  }
  // The source keeps its MIGRATE connection for a while: close it, so that the nodes see
  // no connection but the clients' (and the leak check finds none left).
  const list = String(await to.admin.sendCommand(["CLIENT", "LIST"])).split("\n");
  for (const line of list.filter((l) => / cmd=restore-asking /.test(l))) {
    await to.admin.sendCommand(["CLIENT", "KILL", "ID", line.match(/^id=(\d+)/)![1]!]);
  }
  await waitForClusterOk(cluster);
}

/** One kind of cluster client: how to connect one to a cluster and close it. */
export interface ClusterClientKind {
  name: string;
  /** Whether baton's news goes by sharded pub/sub with it. */
  sharded: boolean;
  connect(cluster: TestCluster): Promise<RedisClient>;
  close(client: RedisClient): Promise<void>;
}

/** What the tests use of an ioredis-shaped Cluster (ioredis, iovalkey). */
interface IoredisClusterLike {
  status: string;
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: "error", listener: (error: Error) => void): unknown;
}

function ioredisClusterKind(
  name: string,
  sharded: boolean,
  Cluster: new (
    nodes: { host: string; port: number }[],
    options: Record<string, unknown>,
  ) => IoredisClusterLike,
): ClusterClientKind {
  return {
    name,
    sharded,
    async connect(cluster) {
      const client = new Cluster(
        cluster.nodes.map((n) => ({ host: n.server.host, port: n.server.port })),
        { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1 } },
      );
      client.on("error", () => {});
      await client.connect();
      return client as unknown as RedisClient;
    },
    async close(client) {
      const c = client as unknown as IoredisClusterLike;
      if (c.status === "ready") await c.quit().catch(() => {});
      c.disconnect();
    },
  };
}

const nodeRedisCluster: ClusterClientKind = {
  name: "node-redis createCluster",
  sharded: true,
  async connect(cluster) {
    const client = createCluster({
      rootNodes: cluster.nodes.map((n) => ({ url: n.server.url })),
      defaults: { socket: { reconnectStrategy: false } },
    });
    client.on("error", () => {});
    await client.connect();
    return client as unknown as RedisClient;
  },
  async close(client) {
    const c = client as unknown as ReturnType<typeof createCluster>;
    if (c.isOpen) await c.close().catch(() => c.destroy());
  },
};

/**
 * The cluster clients to test: ioredis' Cluster (5, and 6 which speaks RESP3), node-redis'
 * createCluster, iovalkey's Cluster.
 */
export const CLUSTER_CLIENTS: ClusterClientKind[] = [
  ioredisClusterKind("ioredis Cluster", true, IoredisCluster as never),
  ioredisClusterKind("ioredis 6 Cluster", true, Ioredis6Cluster as never),
  nodeRedisCluster,
  // iovalkey 0.4's Cluster cannot subscribe to sharded channels: its news is classic.
  ioredisClusterKind("iovalkey Cluster", false, ValkeyCluster as never),
];
