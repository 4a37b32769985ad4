// The cost of one lock operation, next to the floor (the raw Redis commands any correct
// lock needs) and to the peer libraries, in the same run on the same client. Every group
// has a baseline, so the report reads as ratios: "1.04x slower than the floor".
//
//   deno bench -A bench/lock_bench.ts   (REDIS_URL, or a throwaway redis-server)
//
// `deno bench` times one case after the other, so load on the machine that comes and
// goes between cases moves the ratios. Run as a script, the same cases are timed against
// their group's baseline taking turns operation by operation instead (see interleave()),
// which is what the targets are checked with:
//
//   deno run -A bench/lock_bench.ts
import { Mutex } from "redis-semaphore";
import { Redlock as SesameRedlock } from "@sesamecare-oss/redlock";
import Redlock from "redlock";
import { acquireLock, type Lock, lockKey, type RedisClient, withLock } from "../mod.ts";
import {
  closeOnUnload,
  floorOf,
  formatMs,
  IN_MEMORY,
  interleave,
  type InterleavedResult,
  machine,
  markdownTable,
  openBenchRedis,
  ROUND_TRIP,
  SMOKE,
  TTL_MS,
  TTL_SECONDS,
  writeResult,
} from "./_setup.ts";
import { IOREDIS } from "../tests/_clients.ts";
import { startRedis } from "../tests/_redis.ts";

const redis = await openBenchRedis();
closeOnUnload(redis);
const io = redis.ioredis as unknown as RedisClient;
const nodeRedis = redis.nodeRedis as unknown as RedisClient;
const floorIo = await floorOf(io);
const floorNodeRedis = await floorOf(nodeRedis);
// Both redlocks emit "error" for every vote against (a held lock); an EventEmitter
// without a listener would throw it.
const sesame = new SesameRedlock([redis.ioredis]);
sesame.on("error", () => {});
const redlock = new Redlock([redis.ioredis]);
redlock.on("error", () => {});

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench case is broken: ${what}`);
}

type Case = (b: Deno.BenchContext) => Promise<void>;

/** Every case that makes round trips, by group, for the warm-up and the interleaved check. */
const roundTrips: { group: string; name: string; baseline: boolean; fn: Case }[] = [];

function roundTrip(
  definition: { group: string; name: string; baseline?: boolean },
  fn: Case,
): void {
  Deno.bench({ ...ROUND_TRIP, ...definition }, fn);
  roundTrips.push({ baseline: false, ...definition, fn });
}

// lockKey: building a key, against the template string it replaces.
{
  const group = "lockKey";
  let id = 0;
  // Each case stores its key where the engine cannot prove it unused.
  const sink: string[] = [""];
  Deno.bench({ ...IN_MEMORY, group, name: "template string", baseline: true }, () => {
    sink[0] = `lock:order:user123:${id++}`;
  });
  Deno.bench({ ...IN_MEMORY, group, name: "lockKey()" }, () => {
    sink[0] = lockKey("order", "user123", id++);
  });
}

/**
 * One uncontended acquire + release group: the floor (its baseline), baton, then `peers`
 * (which get the group name and a key maker), then the floor again, whose drift is the noise.
 */
function acquireReleaseGroup(
  group: string,
  floorClient: typeof floorIo,
  client: RedisClient,
  peers: (group: string, key: (name: string) => string) => void = () => {},
): void {
  const key = (name: string) => redis.key(`${group}:${name}`);
  const floorKey = key("floor");
  const floor = async () => {
    const token = crypto.randomUUID();
    check(await floorClient.acquire(floorKey, token, TTL_MS), "floor acquire");
    check(await floorClient.release(floorKey, token), "floor release");
  };
  roundTrip({ group, name: "floor: SET NX PX + EVALSHA", baseline: true }, floor);
  const batonKey = key("baton");
  roundTrip({ group, name: "baton acquireLock + release" }, async () => {
    const lock = await acquireLock(client, batonKey, { ttl: TTL_SECONDS });
    check(await lock.release(), "baton release");
  });
  // With a fencing token: the acquire is one script (EVALSHA) instead of SET NX PX.
  const fencedKey = key("baton-fencing");
  roundTrip({ group, name: "baton acquireLock + release, fencing: true" }, async () => {
    const lock = await acquireLock(client, fencedKey, { ttl: TTL_SECONDS, fencing: true });
    check(typeof lock.fence === "bigint", "baton fence");
    check(await lock.release(), "baton fenced release");
  });
  peers(group, key);
  roundTrip({ group, name: "floor, measured again (noise)" }, floor);
}

// Uncontended acquire + release on ioredis: the floor, baton, and every peer on the same client.
acquireReleaseGroup("acquire + release, ioredis", floorIo, io, (group, key) => {
  const mutexKey = key("redis-semaphore");
  roundTrip({ group, name: "redis-semaphore Mutex" }, async () => {
    const mutex = new Mutex(redis.ioredis, mutexKey);
    await mutex.acquire();
    await mutex.release();
  });
  const sesameKey = key("sesamecare-redlock");
  roundTrip({ group, name: "@sesamecare-oss/redlock" }, async () => {
    const lock = await sesame.acquire([sesameKey], TTL_MS);
    await lock.release();
  });
  const redlockKey = key("redlock");
  roundTrip({ group, name: "redlock" }, async () => {
    const lock = await redlock.acquire([redlockKey], TTL_MS);
    await lock.release();
  });
});

// Uncontended acquire + release on node-redis. No peer runs on node-redis.
acquireReleaseGroup("acquire + release, node-redis", floorNodeRedis, nodeRedis);

// withLock around an empty function, against the floor with a try/finally, and the peers'
// own wrappers (redis-semaphore has none).
{
  const group = "withLock, empty fn, ioredis";
  const key = (name: string) => redis.key(`with-lock:${name}`);
  const empty = async () => {};
  const floorKey = key("floor");
  roundTrip(
    { group, name: "floor: SET NX PX, fn, EVALSHA", baseline: true },
    async () => {
      const token = crypto.randomUUID();
      check(await floorIo.acquire(floorKey, token, TTL_MS), "floor acquire");
      try {
        await empty();
      } finally {
        check(await floorIo.release(floorKey, token), "floor release");
      }
    },
  );
  const batonKey = key("baton");
  roundTrip({ group, name: "baton withLock" }, async () => {
    await withLock(io, batonKey, empty, { ttl: TTL_SECONDS });
  });
  const sesameKey = key("sesamecare-redlock");
  roundTrip({ group, name: "@sesamecare-oss/redlock using" }, async () => {
    await sesame.using([sesameKey], TTL_MS, empty);
  });
  const redlockKey = key("redlock");
  roundTrip({ group, name: "redlock using" }, async () => {
    await redlock.using([redlockKey], TTL_MS, empty);
  });
}

// extend: resetting the lease of a held lock. Each case takes its lock on its first call
// (in the warm-up) with a lease of 10 minutes, and every extend resets it to 10 minutes,
// so that no lease runs out while other groups run. redis-semaphore extends only by its
// own refresh timer, so it has no case here.
{
  const group = "extend, ioredis";
  const key = (name: string) => redis.key(`extend:${name}`);
  const leaseSeconds = 600;
  const leaseMs = leaseSeconds * 1000;
  const floorKey = key("floor");
  const floorToken = crypto.randomUUID();
  let floorHeld = false;
  roundTrip({ group, name: "floor: EVALSHA PEXPIRE", baseline: true }, async () => {
    if (!floorHeld) floorHeld = await floorIo.acquire(floorKey, floorToken, leaseMs);
    check(await floorIo.extend(floorKey, floorToken, leaseMs), "floor extend");
  });
  const batonKey = key("baton");
  let batonLock: Lock | undefined;
  roundTrip({ group, name: "baton lock.extend()" }, async () => {
    batonLock ??= await acquireLock(io, batonKey, { ttl: leaseSeconds });
    check(await batonLock.extend(leaseSeconds), "baton extend");
  });
  const sesameKey = key("sesamecare-redlock");
  let sesameLock: Awaited<ReturnType<typeof sesame.acquire>> | undefined;
  roundTrip({ group, name: "@sesamecare-oss/redlock lock.extend()" }, async () => {
    sesameLock ??= await sesame.acquire([sesameKey], leaseMs);
    sesameLock = await sesameLock.extend(leaseMs);
  });
  const redlockKey = key("redlock");
  let redlockLock: Awaited<ReturnType<typeof redlock.acquire>> | undefined;
  roundTrip({ group, name: "redlock lock.extend()" }, async () => {
    redlockLock ??= await redlock.acquire([redlockKey], leaseMs);
    redlockLock = await redlockLock.extend(leaseMs);
  });
}

// Release of a lock whose lease ran out: only the release is timed. Each iteration takes
// the lock and deletes the key (what expiry does) untimed. Both redlocks reject such a
// release only after their retry window (10 retries, about 200 ms apart), so they have no
// case here.
{
  const group = "release of an expired lock, ioredis";
  const key = (name: string) => redis.key(`release-expired:${name}`);
  const floorKey = key("floor");
  roundTrip(
    { group, name: "floor: EVALSHA compare-and-delete", baseline: true },
    async (b) => {
      const token = crypto.randomUUID();
      check(await floorIo.acquire(floorKey, token, TTL_MS), "floor acquire");
      await redis.admin(["DEL", floorKey]);
      b.start();
      const released = await floorIo.release(floorKey, token);
      b.end();
      check(!released, "floor release of an expired lock returns false");
    },
  );
  const batonKey = key("baton");
  roundTrip({ group, name: "baton lock.release()" }, async (b) => {
    const lock = await acquireLock(io, batonKey, { ttl: TTL_SECONDS });
    await redis.admin(["DEL", batonKey]);
    b.start();
    const released = await lock.release();
    b.end();
    check(!released, "baton release of an expired lock returns false");
  });
  const mutexKey = key("redis-semaphore");
  roundTrip({ group, name: "redis-semaphore Mutex release()" }, async (b) => {
    const mutex = new Mutex(redis.ioredis, mutexKey);
    await mutex.acquire();
    await redis.admin(["DEL", mutexKey]);
    b.start();
    await mutex.release();
    b.end();
  });
}

// Uncontended acquire + release with Redlock over three servers: this bench's and two more
// throwaway ones, one ioredis connection each. The floor sends the same commands to all
// three in parallel and waits for every answer; baton answers once a majority has (the
// third server's command still goes out), and so do the redlocks.
const redlockServers = await Promise.all([0, 1].map(() => startRedis({ useEnv: false })));
const redlockExtra = await Promise.all(redlockServers.map((s) => IOREDIS.connect(s.url)));
/** Closes the two extra servers and their clients (`now`: at once, for `unload`). */
async function closeRedlockServers(now = false): Promise<void> {
  for (const client of redlockExtra) {
    if (now) (client as unknown as { disconnect(): void }).disconnect();
    else await IOREDIS.close(client);
  }
  for (const server of redlockServers) {
    if (now) void server.stop(); // SIGKILL is sent at once; only the wait is left behind
    else await server.stop();
  }
}
globalThis.addEventListener("unload", () => void closeRedlockServers(true));
{
  const group = "acquire + release, Redlock over 3 servers, ioredis";
  const key = (name: string) => redis.key(`redlock-3:${name}`);
  const clients = [io, ...redlockExtra];
  const floors = await Promise.all(clients.map(floorOf));
  const floorKey = key("floor");
  const floor = async () => {
    const token = crypto.randomUUID();
    const taken = await Promise.all(floors.map((f) => f.acquire(floorKey, token, TTL_MS)));
    check(taken.every(Boolean), "floor acquire");
    const released = await Promise.all(floors.map((f) => f.release(floorKey, token)));
    check(released.every(Boolean), "floor release");
  };
  roundTrip({ group, name: "floor: 3 x SET NX PX, then 3 x EVALSHA", baseline: true }, floor);
  const batonKey = key("baton");
  roundTrip({ group, name: "baton acquireLock([a, b, c]) + release" }, async () => {
    const lock = await acquireLock(clients, batonKey, { ttl: TTL_SECONDS });
    check(await lock.release(), "baton release");
  });
  const ioredises = clients as unknown as (typeof redis.ioredis)[];
  const sesame3 = new SesameRedlock(ioredises);
  sesame3.on("error", () => {});
  const sesameKey = key("sesamecare-redlock");
  roundTrip({ group, name: "@sesamecare-oss/redlock" }, async () => {
    const lock = await sesame3.acquire([sesameKey], TTL_MS);
    await lock.release();
  });
  const redlock3 = new Redlock(ioredises);
  redlock3.on("error", () => {});
  const redlockKey = key("redlock");
  roundTrip({ group, name: "redlock" }, async () => {
    const lock = await redlock3.acquire([redlockKey], TTL_MS);
    await lock.release();
  });
  roundTrip({ group, name: "floor, measured again (noise)" }, floor);
}

const untimed: Deno.BenchContext = {
  name: "untimed",
  origin: import.meta.url,
  start() {},
  end() {},
};

if (!import.meta.main) {
  // Under deno bench: every case runs in a warm-up before the first is timed, all cases in
  // turn; otherwise the first case of the file pays for the JIT and the connections' first
  // buffers, and a baseline that runs first looks slower than it is.
  for (let round = 0; round < (SMOKE ? 0 : 500); round++) {
    for (const c of roundTrips) await c.fn(untimed);
  }
} else {
  // As a script: each case against its group's baseline, taking turns.
  const options = SMOKE
    ? { rounds: 3, perRound: 10, warmUp: 10 }
    : { rounds: 20, perRound: 200, warmUp: 500 };
  const rows: { group: string; name: string; result: InterleavedResult }[] = [];
  try {
    for (const c of roundTrips) {
      const base = roundTrips.find((b) => b.group === c.group && b.baseline);
      if (!base || c === base || c.name.startsWith("floor, measured again")) continue;
      const asTimed = (fn: Case) => (timer: { start(): void; end(): void }) =>
        fn({ ...untimed, start: timer.start, end: timer.end });
      const result = await interleave(asTimed(base.fn), asTimed(c.fn), options);
      rows.push({ group: c.group, name: c.name, result });
    }
  } finally {
    await redis.close();
    await closeRedlockServers();
  }
  console.log(
    `\neach case against its group's baseline, taking turns: ${options.rounds} rounds of ` +
      `${options.perRound} each, median of the rounds${SMOKE ? " (smoke)" : ""}`,
  );
  console.log(`${new Date().toISOString()}, ${await machine()}\n`);
  console.log(markdownTable(
    ["group", "case", "baseline", "case", "vs baseline", "noise (half the IQR)"],
    rows.map(({ group, name, result: r }) => [
      group,
      name,
      formatMs(r.floorMs),
      formatMs(r.subjectMs),
      `${r.ratio.toFixed(2)}x`,
      `±${r.noise.toFixed(2)}`,
    ]),
  ));
  await writeResult(
    "interleaved",
    rows.map(({ group, name, result }) => ({ group, name, ...result })),
  );
}
