// baton on Bun's built-in RedisClient, against the floor on the same client, in the same
// run. `deno bench` cannot load Bun's client, so this script times the cases itself, the
// way the targets are checked under Deno: floor and baton take turns operation by
// operation (see interleave()), so that a slow stretch of the machine hits both, and each
// figure is the median of the rounds.
//
//   bun run bench/bun_client.ts
import process from "node:process";
import { acquireLock, type Lock, type RedisClient, withLock } from "../mod.ts";
import { BUN_CLIENT } from "../tests/_clients.ts";
import { startRedis } from "../tests/_redis.ts";
import {
  floorOf,
  formatMs,
  interleave,
  isBun,
  machine,
  markdownTable,
  SMOKE,
  TTL_MS,
  TTL_SECONDS,
  writeResult,
} from "./_setup.ts";

if (!isBun) {
  console.error("bench/bun_client.ts measures Bun's RedisClient: run it with `bun run`");
  process.exit(2);
}

const OPTIONS = SMOKE
  ? { rounds: 3, perRound: 10, warmUp: 10 }
  : { rounds: 20, perRound: 500, warmUp: 2_000 };

/** One operation to time; it throws when the operation did not take effect. */
type Op = () => Promise<void>;

interface Case {
  name: string;
  floorName: string;
  floor: Op;
  baton: Op;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench case is broken: ${what}`);
}

const server = await startRedis();
const client = await BUN_CLIENT.connect(server.url);
const rows: string[][] = [];
const results: { name: string; floorMs: number; batonMs: number; ratio: number }[] = [];
try {
  const floor = await floorOf(client);
  const run = crypto.randomUUID().slice(0, 8);
  const key = (name: string) => `bench:${run}:bun:${name}`;
  const empty = async () => {};
  const leaseSeconds = 600;
  let floorHeld = false;
  const floorToken = crypto.randomUUID();
  let batonHeld: Lock | undefined;
  const cases: Case[] = [
    {
      name: "acquire + release",
      floorName: "SET NX PX + EVALSHA",
      async floor() {
        const token = crypto.randomUUID();
        check(await floor.acquire(key("ar-floor"), token, TTL_MS), "floor acquire");
        check(await floor.release(key("ar-floor"), token), "floor release");
      },
      async baton() {
        const lock = await acquireLock(client, key("ar-baton"), { ttl: TTL_SECONDS });
        check(await lock.release(), "baton release");
      },
    },
    {
      name: "withLock, empty fn",
      floorName: "SET NX PX, fn, EVALSHA",
      async floor() {
        const token = crypto.randomUUID();
        check(await floor.acquire(key("wl-floor"), token, TTL_MS), "floor acquire");
        try {
          await empty();
        } finally {
          check(await floor.release(key("wl-floor"), token), "floor release");
        }
      },
      async baton() {
        await withLock(client as RedisClient, key("wl-baton"), empty, { ttl: TTL_SECONDS });
      },
    },
    {
      name: "extend",
      floorName: "EVALSHA PEXPIRE",
      async floor() {
        if (!floorHeld) floorHeld = await floor.acquire(key("ex-floor"), floorToken, 600_000);
        check(await floor.extend(key("ex-floor"), floorToken, 600_000), "floor extend");
      },
      async baton() {
        batonHeld ??= await acquireLock(client, key("ex-baton"), { ttl: leaseSeconds });
        check(await batonHeld.extend(leaseSeconds), "baton extend");
      },
    },
  ];

  for (const c of cases) {
    const r = await interleave(c.floor, c.baton, OPTIONS);
    results.push({ name: c.name, floorMs: r.floorMs, batonMs: r.subjectMs, ratio: r.ratio });
    rows.push([c.name, `floor: ${c.floorName}`, formatMs(r.floorMs), "1.00x (baseline)", ""]);
    rows.push([
      c.name,
      "baton",
      formatMs(r.subjectMs),
      `${r.ratio.toFixed(2)}x`,
      `±${r.noise.toFixed(2)}`,
    ]);
  }
} finally {
  await BUN_CLIENT.close(client);
  await server.stop();
}

console.log(
  `\nBun's RedisClient, floor and baton taking turns: ${OPTIONS.rounds} rounds of ` +
    `${OPTIONS.perRound} each, median of the rounds` +
    `${SMOKE ? " (smoke)" : ""}`,
);
console.log(`${new Date().toISOString()}, ${await machine()}\n`);
console.log(markdownTable(
  ["group", "case", "time/iter", "vs floor", "noise (half the IQR)"],
  rows,
));
await writeResult("bun-client", results);
