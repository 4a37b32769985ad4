// The cost of one debounced call, next to one raw Redis round trip on the same client, in
// the same run. Round trips per call (checked below, before the benches run):
// - leading edge: 1 (one EVALSHA), whether the call runs or is dropped;
// - trailing edge: 2 (EVALSHA to record the call, EVALSHA to claim it when its wait ends;
//   here flush() claims it at once, so that the timer's `wait` is not what is measured);
//   1 for a call that a later call supersedes before its wait ends (one of the same instance,
//   or one of another instance heard on the channel).
// With the default subscriber, an instance with waiting calls also listens on the channel
// `baton:debounce:<key>` on the client's shared subscriber connection, off the caller's path.
//
// Run: deno bench -A bench/debounce_bench.ts   (REDIS_URL, or a throwaway redis-server)
import type { RedisClient } from "../mod.ts";
import { debounce } from "../mod.ts";
import { closeOnUnload, openBenchRedis, rawSendOf, ROUND_TRIP } from "./_setup.ts";

const redis = await openBenchRedis();
closeOnUnload(redis);

// Every command the benches send goes through this count, the baseline's too.
let sent = 0;
const io = redis.ioredis as unknown as RedisClient;
const send = rawSendOf(io);
const counted = {
  call: (...args: string[]) => {
    sent++;
    return send(args);
  },
};

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench case is broken: ${what}`);
}

const noop = (_n: number) => {};
const leading = debounce(counted, redis.key("debounce:leading"), noop, {
  wait: 60_000,
  edge: "leading",
});
const leadingRuns = debounce(counted, redis.key("debounce:leading-runs"), noop, {
  wait: 60_000,
  edge: "leading",
});
const trailing = debounce(counted, redis.key("debounce:trailing"), noop, {
  wait: 60_000,
  subscriber: false,
});
// On the client itself (not counted): baton subscribes on a duplicate of it.
const trailingSubscribed = debounce(io, redis.key("debounce:trailing-subscribed"), noop, {
  wait: 60_000,
});

/** Records a trailing call and claims it at once with flush(); resolves once it ran. */
async function callAndFlush(d: typeof trailing, n: number): Promise<void> {
  const outcome = d(n);
  check((await d.flush())?.ran === true, "flush runs the pending call");
  check((await outcome).ran === true, "the flushed call learns it ran");
}

// Count the round trips of each kind of call once (after loading the scripts).
{
  await leading(0);
  await leadingRuns(0);
  await callAndFlush(trailing, 0);
  const count = async (what: () => Promise<unknown>) => {
    sent = 0;
    await what();
    return sent;
  };
  check(await count(() => leading(1)) === 1, "a dropped leading call is 1 round trip");
  await redis.admin(["DEL", redis.key("debounce:leading-runs")]);
  check(await count(() => leadingRuns(1)) === 1, "a leading call that runs is 1 round trip");
  check(await count(() => callAndFlush(trailing, 1)) === 2, "trailing call + flush is 2");
}

const group = "debounce";
const baselineKey = redis.key("debounce:baseline");
Deno.bench(
  { ...ROUND_TRIP, group, name: "raw SET PX (1 round trip)", baseline: true },
  async () => {
    check(await counted.call("SET", baselineKey, "1", "PX", "60000") === "OK", "SET");
  },
);
let n = 0;
Deno.bench(
  { ...ROUND_TRIP, group, name: "leading call, dropped (1 round trip)" },
  async () => {
    check((await leading(n++)).ran === false, "the burst's later calls are dropped");
  },
);
const runsKey = redis.key("debounce:leading-runs");
Deno.bench(
  { ...ROUND_TRIP, group, name: "leading call that runs (1 round trip)" },
  async (b) => {
    await redis.admin(["DEL", runsKey]);
    b.start();
    const outcome = await leadingRuns(n++);
    b.end();
    check(outcome.ran, "the burst's first call runs");
  },
);
Deno.bench(
  { ...ROUND_TRIP, group, name: "trailing call + flush(), no subscriber (2 round trips)" },
  async () => await callAndFlush(trailing, n++),
);
Deno.bench(
  { ...ROUND_TRIP, group, name: "trailing call + flush(), with the channel (2 round trips)" },
  async () => await callAndFlush(trailingSubscribed, n++),
);
Deno.bench(
  { ...ROUND_TRIP, group, name: "raw SET PX, measured again (noise)" },
  async () => {
    check(await counted.call("SET", baselineKey, "1", "PX", "60000") === "OK", "SET");
  },
);
