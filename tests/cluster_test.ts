import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { acquireLock, debounce, type Lock, type RedisClient, withLock } from "../mod.ts";
import { _keysOf } from "../lock/_redis_store.ts";
import { assertNoConnections, assertNoLeaks } from "./_leaks.ts";
import {
  CLUSTER_CLIENTS,
  clusterInfo,
  type ClusterNode,
  hashSlot,
  moveSlot,
  startCluster,
  type TestCluster,
} from "./_cluster.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const run = Date.now();

/**
 * Handovers must come by news: a poll would come after maxRetryDelay (5 s), and with no
 * fairness window a first waiter makes no try of its own after the window.
 */
const NEWS = { timeout: 10_000, maxRetryDelay: 5000, fairnessWindow: 0 } as const;
const NEWS_BOUND_MS = 1000;

/** A key that `node` serves, the first that `make` makes from the next numbers. */
async function keyOn(
  cluster: TestCluster,
  node: ClusterNode,
  make: (i: number) => string,
): Promise<string> {
  for (let i = n++;; i = n++) {
    const key = make(i);
    if (await cluster.nodeOf(hashSlot(key)) === node) return key;
  }
}

/** One untagged and one tagged key per node: six keys over the three masters. */
async function keysOnEveryNode(cluster: TestCluster, name: string): Promise<string[]> {
  const keys: string[] = [];
  for (const node of cluster.nodes) {
    keys.push(await keyOn(cluster, node, (i) => `cluster:${run}:${name}:${i}`));
    keys.push(await keyOn(cluster, node, (i) => `cluster:{${run}-${name}-${i}}:lock`));
  }
  return keys;
}

/** The sum over the nodes of a CLUSTER INFO counter. */
async function busCount(cluster: TestCluster, field: string): Promise<number> {
  const counts = await Promise.all(cluster.nodes.map((node) => clusterInfo(node, field)));
  return counts.reduce((sum, count) => sum + Number(count || 0), 0);
}

/** How many `error` replies (MOVED, ASK, TRYAGAIN) the nodes sent, summed. */
async function errorCount(cluster: TestCluster, error: string): Promise<number> {
  let count = 0;
  for (const node of cluster.nodes) {
    const info = String(await node.admin.sendCommand(["INFO", "errorstats"]));
    count += Number(info.match(new RegExp(`errorstat_${error}:count=(\\d+)`))?.[1] ?? 0);
  }
  return count;
}

/** Resolves once a waiter is queued for `key` with a news address; returns the address. */
async function addressOf(cluster: TestCluster, key: string): Promise<string> {
  const [, , data] = _keysOf(key);
  for (let waited = 0; waited < 3000; waited += 10) {
    const node = await cluster.nodeOf(hashSlot(key));
    const fields = await node.admin.sendCommand(["HGETALL", data]) as string[];
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === "~head") continue;
      const address = fields[i + 1]!.split("|")[4];
      if (address) return address;
    }
    await sleep(10);
  }
  throw new Error(`no waiter with an address in the queue of ${key}`);
}

/** Releases `lock` and resolves to the waiter's lock and the ms from release to it. */
async function handOff(lock: Lock, waiter: Promise<Lock>): Promise<[Lock, number]> {
  const releasedAt = performance.now();
  assert.equal(await lock.release(), true);
  const next = await waiter;
  return [next, performance.now() - releasedAt];
}

/** Per node, the classic and the sharded subscriptions of all its connections. */
async function subscriptions(cluster: TestCluster): Promise<[number, number][]> {
  return await Promise.all(cluster.nodes.map(async (node) => {
    const list = String(await node.admin.sendCommand(["CLIENT", "LIST"])).split("\n");
    const count = (field: string) =>
      list.reduce((sum, line) => sum + Number(line.match(` ${field}=(\\d+)`)?.[1] ?? 0), 0);
    return [count("sub"), count("ssub")] as [number, number];
  }));
}

describe("Redis Cluster", () => {
  let cluster: TestCluster;
  before(async () => cluster = await startCluster(3));
  after(async () => {
    try {
      for (const node of cluster.nodes) await assertNoConnections(node.admin);
    } finally {
      await cluster.stop();
    }
    await assertNoLeaks();
  });

  for (const kind of CLUSTER_CLIENTS) {
    describe(kind.name, () => {
      let a: RedisClient;
      let b: RedisClient;
      before(async () => [a, b] = [await kind.connect(cluster), await kind.connect(cluster)]);
      after(async () => {
        await kind.close(a);
        await kind.close(b);
      });

      it("acquire, status, extend and release work on keys of every node, tagged and untagged", async () => {
        const keys = await keysOnEveryNode(cluster, "basic");
        const moved = await errorCount(cluster, "MOVED");
        for (const key of keys) {
          const node = await cluster.nodeOf(hashSlot(key));
          const lock = await acquireLock(a, key, { ttl: 5 });
          assert.equal(await node.admin.sendCommand(["GET", key]), lock.token, key);
          assert.equal(await acquireLock(b, key, { throwOnFail: false }), null, key);
          const status = await lock.status();
          assert.equal(status.owned, true);
          assert.ok(
            status.remainingMs > 4000 && status.remainingMs <= 5000,
            `${status.remainingMs}`,
          );
          assert.equal(await lock.extend(20), true);
          assert.ok(Number(await node.admin.sendCommand(["PTTL", key])) > 15_000);
          assert.equal(await lock.release(), true);
          assert.equal(await lock.release(), false);
          assert.equal(await node.admin.sendCommand(["EXISTS", key]), 0);
          const next = await acquireLock(b, key, { ttl: 5 });
          assert.equal(await next.release(), true);
        }
        // Every command went straight to the node that serves its key.
        assert.equal(await errorCount(cluster, "MOVED"), moved);
      });

      it("withLock's watchdog keeps the lease across 3x its ttl on every node", async () => {
        const keys = await keysOnEveryNode(cluster, "watchdog");
        await Promise.all(keys.map((key) =>
          withLock(a, key, async ({ signal, lock }) => {
            await sleep(900); // ttl 0.3 s
            assert.equal(signal.aborted, false);
            assert.equal((await lock.status()).owned, true);
            assert.equal(await acquireLock(b, key, { throwOnFail: false }), null);
          }, { ttl: 0.3 })
        ));
        for (const key of keys) {
          const node = await cluster.nodeOf(hashSlot(key));
          assert.equal(await node.admin.sendCommand(["EXISTS", key]), 0, key);
        }
      });

      it(
        `a waiter is handed the lock by ${
          kind.sharded ? "sharded news in the lock's slot" : "classic news"
        } within ${NEWS_BOUND_MS} ms, not by its ${NEWS.maxRetryDelay} ms poll`,
        async () => {
          for (const key of await keysOnEveryNode(cluster, "handover")) {
            const lock = await acquireLock(a, key, { ttl: 10 });
            const waiter = acquireLock(b, key, { ttl: 10, ...NEWS });
            const address = await addressOf(cluster, key);
            if (kind.sharded) {
              // A channel in the lock's hash slot, SPUBLISHed to.
              assert.match(address, /^s:.*:baton:news:/);
              assert.equal(hashSlot(address.slice(2)), hashSlot(key), address);
            } else assert.match(address, /^baton:waiters:/);
            const sent = await busCount(cluster, "cluster_stats_messages_publish_sent");
            const [next, ms] = await handOff(lock, waiter);
            assert.ok(ms < NEWS_BOUND_MS, `${key}: handed over in ${ms.toFixed(1)} ms`);
            const node = await cluster.nodeOf(hashSlot(key));
            assert.equal(await node.admin.sendCommand(["GET", key]), next.token);
            // A PUBLISH crosses the cluster bus to the two other nodes; an SPUBLISH does not
            // (there are no replicas to send it to).
            const bus = await busCount(cluster, "cluster_stats_messages_publish_sent") - sent;
            assert.equal(bus, kind.sharded ? 0 : 2, `PUBLISH messages on the bus: ${bus}`);
            await next.release();
          }
        },
      );

      it("a client's waiters on locks of all three nodes are woken by news, also where its subscriber is on another node", async () => {
        const keys = await Promise.all(
          cluster.nodes.map((node) => keyOn(cluster, node, (i) => `cluster:${run}:many:${i}`)),
        );
        const locks = await Promise.all(keys.map((key) => acquireLock(a, key, { ttl: 10 })));
        const waiters = keys.map((key) => acquireLock(b, key, { ttl: 10, ...NEWS }));
        await Promise.all(keys.map((key) => addressOf(cluster, key)));
        const subs = await subscriptions(cluster);
        if (kind.sharded) {
          // A sharded subscription on each lock's own node, none classic.
          assert.deepEqual(subs.map(([classic, sharded]) => [classic, sharded > 0]), [
            [0, true],
            [0, true],
            [0, true],
          ]);
        } else {
          // One classic subscriber on one node: two of the locks live elsewhere.
          assert.deepEqual(subs.map(([, sharded]) => sharded), [0, 0, 0]);
          assert.equal(subs.filter(([classic]) => classic > 0).length, 1, JSON.stringify(subs));
        }
        for (const [i, lock] of locks.entries()) {
          const [next, ms] = await handOff(lock, waiters[i]!);
          assert.ok(ms < NEWS_BOUND_MS, `${keys[i]}: handed over in ${ms.toFixed(1)} ms`);
          await next.release();
        }
      });

      it("fencing tokens strictly increase over direct and handed-over acquisitions", async () => {
        const key = await keyOn(cluster, cluster.nodes[1]!, (i) => `cluster:{${run}f${i}}:fenced`);
        let last = 0n;
        let holder = await acquireLock(a, key, { fencing: true, ttl: 10 });
        for (let i = 0; i < 12; i++) {
          assert.ok(holder.fence! > last, `${holder.fence} > ${last}`);
          last = holder.fence!;
          if (i % 2 === 0) {
            // Handed over on release, the fence in the news.
            const waiter = acquireLock(i % 4 === 0 ? b : a, key, {
              fencing: true,
              ttl: 10,
              ...NEWS,
            });
            await addressOf(cluster, key);
            const [next, ms] = await handOff(holder, waiter);
            assert.ok(ms < NEWS_BOUND_MS, `handed over in ${ms.toFixed(1)} ms`);
            holder = next;
          } else {
            await holder.release();
            holder = await acquireLock(i % 3 === 0 ? a : b, key, { fencing: true, ttl: 10 });
          }
        }
        assert.ok(holder.fence! > last);
        await holder.release();
      });

      it("debounce trailing: one run, on the last call's instance; the other instance hears it was superseded", async () => {
        const key = await keyOn(cluster, cluster.nodes[2]!, (i) => `cluster:${run}:debounce:${i}`);
        const controller = new AbortController();
        const runs: string[] = [];
        const options = { wait: 600, takeoverAfter: 300, signal: controller.signal };
        const A = debounce(a, key, (x: string) => void runs.push(`A ${x}`), options);
        const B = debounce(b, key, (x: string) => void runs.push(`B ${x}`), options);
        try {
          const first = B("first");
          await sleep(50);
          const lastAt = performance.now();
          const last = A("last");
          // B learns by the announcement on the cluster, long before the quiet period ends.
          assert.deepEqual(await first, { ran: false, reason: "superseded" });
          const heardMs = performance.now() - lastAt;
          assert.ok(heardMs < 300, `superseded after ${heardMs.toFixed(1)} ms`);
          assert.deepEqual(await last, { ran: true, ok: true, value: undefined });
          assert.ok(performance.now() - lastAt >= 590);
          assert.deepEqual(runs, ["A last"]);
        } finally {
          controller.abort();
        }
      });

      it("debounce leading: the first call runs, the burst's later calls are dropped", async () => {
        const key = await keyOn(cluster, cluster.nodes[0]!, (i) => `cluster:{${run}d${i}}:lead`);
        const controller = new AbortController();
        const runs: string[] = [];
        const options = { wait: 200, edge: "leading" as const, signal: controller.signal };
        const A = debounce(a, key, (x: string) => void runs.push(x), options);
        const B = debounce(b, key, (x: string) => void runs.push(x), options);
        try {
          assert.deepEqual(await A("one"), { ran: true, ok: true, value: undefined });
          assert.deepEqual(await B("two"), { ran: false, reason: "dropped" });
          assert.deepEqual(await A("three"), { ran: false, reason: "dropped" });
          await sleep(300);
          assert.deepEqual(await B("four"), { ran: true, ok: true, value: undefined });
          assert.deepEqual(runs, ["one", "four"]);
        } finally {
          controller.abort();
        }
      });

      it("a slot that moves while its lock is held and waited for keeps one owner, and the lock works after", async () => {
        const from = cluster.nodes[0]!;
        const to = cluster.nodes[1]!;
        const key = await keyOn(cluster, from, (i) => `cluster:${run}:moving:${i}`);
        const holder = await acquireLock(a, key, { fencing: true, ttl: 10 });
        // Polls every 300 ms at most, should news be lost in the move.
        const waiting = acquireLock(b, key, { fencing: true, timeout: 10_000, maxRetryDelay: 300 });
        const address = await addressOf(cluster, key);
        await moveSlot(cluster, hashSlot(key), to, async () => {
          // Half moved: nobody else gets the lock, and the waiter polls across it.
          assert.equal(await acquireLock(a, key, { throwOnFail: false }), null);
          await sleep(700);
          assert.equal(await acquireLock(b, key, { throwOnFail: false }), null);
        });
        assert.equal(await cluster.nodeOf(hashSlot(key)), to);
        assert.equal(await to.admin.sendCommand(["GET", key]), holder.token);
        const slot = String(hashSlot(key));
        assert.equal(await from.admin.sendCommand(["CLUSTER", "COUNTKEYSINSLOT", slot]), 0);
        assert.equal((await holder.status()).owned, true);
        assert.equal(await acquireLock(a, key, { throwOnFail: false }), null);
        assert.equal(await holder.extend(), true);
        const [next, ms] = await handOff(holder, waiting);
        // By news, or at the latest by the waiter's next poll.
        assert.ok(ms < 1000, `handed over ${ms.toFixed(1)} ms after the release`);
        assert.ok(next.fence! > holder.fence!);
        assert.equal(await to.admin.sendCommand(["GET", key]), next.token);
        assert.equal(await next.release(), true);
        if (kind.sharded) {
          // The old node dropped the waiter's sharded subscription: the client subscribes
          // it again at the new one (news sent before then is lost; the waiter polls).
          const channel = address.slice(2);
          const subscribedAt = async (node: ClusterNode) =>
            (await node.admin.sendCommand(["PUBSUB", "SHARDNUMSUB", channel]) as [string, number])[
              1
            ];
          for (let waited = 0; await subscribedAt(to) === 0; waited += 20) {
            assert.ok(waited < 3000, `${channel} not subscribed again at the slot's new node`);
            await sleep(20);
          }
          assert.equal(await subscribedAt(from), 0);
        }
        // And later waits on the moved key are woken by news again.
        const again = await acquireLock(a, key, { ttl: 10 });
        const waiter = acquireLock(b, key, { ttl: 10, ...NEWS });
        await addressOf(cluster, key);
        const [last, lastMs] = await handOff(again, waiter);
        assert.ok(lastMs < NEWS_BOUND_MS, `after the move: handed over in ${lastMs.toFixed(1)} ms`);
        await last.release();
        // Back where it was, for the next client.
        await moveSlot(cluster, hashSlot(key), from);
      });

      if (kind.sharded) {
        it("where the server refuses sharded pub/sub (before Redis 7, or by ACL), news goes by classic pub/sub", async () => {
          const [c, d] = [await kind.connect(cluster), await kind.connect(cluster)];
          const acl = (rule: string) =>
            Promise.all(
              cluster.nodes.map((node) =>
                node.admin.sendCommand(["ACL", "SETUSER", "default", rule])
              ),
            );
          await acl("-ssubscribe");
          try {
            for (const node of cluster.nodes) {
              const key = await keyOn(cluster, node, (i) => `cluster:${run}:no-shards:${i}`);
              const lock = await acquireLock(c, key, { ttl: 10 });
              const waiter = acquireLock(d, key, { ttl: 10, ...NEWS });
              assert.match(await addressOf(cluster, key), /^baton:waiters:/);
              const sent = await busCount(cluster, "cluster_stats_messages_publish_sent");
              const [next, ms] = await handOff(lock, waiter);
              assert.ok(ms < NEWS_BOUND_MS, `${key}: handed over in ${ms.toFixed(1)} ms`);
              assert.equal(
                await busCount(cluster, "cluster_stats_messages_publish_sent") - sent,
                2,
              );
              await next.release();
            }
          } finally {
            await acl("+ssubscribe");
            await kind.close(c);
            await kind.close(d);
          }
        });
      }
    });
  }
});
