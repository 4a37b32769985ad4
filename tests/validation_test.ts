import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { acquireLock, lockKey, type RedisClient, withLock } from "../mod.ts";

/** A client that records every command instead of sending it. */
function spyClient(): RedisClient & { sent: string[][] } {
  const sent: string[][] = [];
  return {
    sent,
    sendCommand(args: string[]) {
      sent.push(args);
      return Promise.resolve(args[0] === "SET" ? "OK" : 1);
    },
  };
}

type Call = (redis: RedisClient) => Promise<unknown>;
const noop = () => {};
const bad = (v: unknown) => v as never;

// One row per bad input: what is called, the error class, and a pattern of its message.
const rows: [string, Call, typeof TypeError | typeof RangeError, RegExp][] = [
  [
    "empty key",
    (r) => acquireLock(r, ""),
    TypeError,
    /"key" must be a non-empty string: current value is ""/,
  ],
  ["numeric key", (r) => acquireLock(r, bad(42)), TypeError, /"key" .* current value is 42/],
  [
    "undefined key",
    (r) => acquireLock(r, bad(undefined)),
    TypeError,
    /"key" .* current value is undefined/,
  ],
  ["null key", (r) => withLock(r, bad(null), noop), TypeError, /"key" .* current value is null/],
  ["object key", (r) => acquireLock(r, bad({})), TypeError, /"key" .* current value is an object/],
  [
    "ttl of 0",
    (r) => acquireLock(r, "k", { ttl: 0 }),
    RangeError,
    /"ttl" must be a number of seconds from 0.001 to 3600, or a string with a unit .*: current value is 0$/,
  ],
  [
    "negative ttl",
    (r) => acquireLock(r, "k", { ttl: -1 }),
    RangeError,
    /"ttl" .* current value is -1$/,
  ],
  [
    "NaN ttl",
    (r) => acquireLock(r, "k", { ttl: NaN }),
    RangeError,
    /"ttl" .* current value is NaN/,
  ],
  [
    "Infinity ttl",
    (r) => acquireLock(r, "k", { ttl: Infinity }),
    RangeError,
    /"ttl" .* current value is Infinity/,
  ],
  [
    "-Infinity ttl",
    (r) => withLock(r, "k", noop, { ttl: -Infinity }),
    RangeError,
    /"ttl" .* current value is -Infinity/,
  ],
  [
    "ttl below 1 ms",
    (r) => acquireLock(r, "k", { ttl: 0.0001 }),
    RangeError,
    /"ttl" .* current value is 0.0001/,
  ],
  [
    "ttl above 30 days",
    (r) => acquireLock(r, "k", { ttl: 31 * 86_400 }),
    RangeError,
    /"ttl" .* \(up to 30d\): current value is 2678400$/,
  ],
  [
    "string ttl",
    (r) => acquireLock(r, "k", { ttl: bad("10") }),
    TypeError,
    /"ttl" must be a number of seconds .*: current value is "10" \(a string needs a unit: "10s", or "10ms"\)/,
  ],
  [
    "null ttl",
    (r) => acquireLock(r, "k", { ttl: bad(null) }),
    TypeError,
    /"ttl" .* current value is null/,
  ],
  [
    "bigint ttl",
    (r) => acquireLock(r, "k", { ttl: bad(10n) }),
    TypeError,
    /"ttl" .* current value is 10n/,
  ],
  [
    "string throwOnFail",
    (r) => acquireLock(r, "k", { throwOnFail: bad("false") }),
    TypeError,
    /"throwOnFail" must be a boolean: current value is "false"/,
  ],
  [
    "numeric throwOnFail",
    (r) => withLock(r, "k", noop, { throwOnFail: bad(0) }),
    TypeError,
    /"throwOnFail" .* current value is 0/,
  ],
  [
    "numeric errorMessage",
    (r) => acquireLock(r, "k", { errorMessage: bad(1) }),
    TypeError,
    /"errorMessage" must be a string: current value is 1/,
  ],
  [
    "string options",
    (r) => acquireLock(r, "k", bad("ttl=10")),
    TypeError,
    /"options" must be an object: current value is "ttl=10"/,
  ],
  [
    "null options",
    (r) => acquireLock(r, "k", bad(null)),
    TypeError,
    /"options" .* current value is null/,
  ],
  [
    "fn not a function",
    (r) => withLock(r, "k", bad("fn")),
    TypeError,
    /"fn" must be a function: current value is "fn"/,
  ],
  [
    "extend with ttl 0",
    async (r) => (await acquireLock(r, "k")).extend(0),
    RangeError,
    /Cannot extend lock as "ttl" .* current value is 0/,
  ],
];

// Values that are not Redis clients, for acquireLock and withLock.
const notClients: [string, unknown, RegExp][] = [
  ["undefined", undefined, /current value is undefined/],
  ["null", null, /current value is null/],
  ["a string", "redis://localhost:6379", /current value is "redis:\/\/localhost:6379"/],
  ["a plain object", { get() {} }, /current value is an object/],
  ["a Map", new Map(), /current value is an instance of Map/],
];

describe("bad input is rejected before anything reaches Redis", () => {
  for (const [name, call, ErrorClass, message] of rows) {
    it(`${name}: ${ErrorClass.name}`, async () => {
      const redis = spyClient();
      const before = name.startsWith("extend") ? 1 : 0; // extend needs a lock first
      await assert.rejects(call(redis), (error: unknown) => {
        assert.ok(error instanceof ErrorClass, `got ${error}`);
        assert.match((error as Error).message, message);
        return true;
      });
      assert.equal(redis.sent.length, before, `commands sent: ${JSON.stringify(redis.sent)}`);
    });
  }
  for (const [name, value, message] of notClients) {
    it(`a client that is ${name}: TypeError naming "redis"`, async () => {
      for (
        const call of [() => acquireLock(bad(value), "k"), () => withLock(bad(value), "k", noop)]
      ) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(error instanceof TypeError);
          assert.match(
            error.message,
            /"redis" must be a Redis client instance with a call\(\) \(ioredis, iovalkey\), sendCommand\(\) \(node-redis, or one you write\) or send\(\) \(Bun's RedisClient\) method/,
          );
          assert.match(error.message, message);
          return true;
        });
      }
    });
  }
  it("a good call on the spy client does send a command, so the rows above are meaningful", async () => {
    const redis = spyClient();
    await acquireLock(redis, "k", { ttl: 1 });
    assert.deepEqual(redis.sent, [["SET", "k", redis.sent[0]![2]!, "NX", "PX", "1000"]]);
  });
});

describe("lockKey", () => {
  it("joins prefix and parts with colons behind lock:", () => {
    assert.equal(lockKey("order", "user123", "order456"), "lock:order:user123:order456");
    assert.equal(lockKey("withdraw", "user123"), "lock:withdraw:user123");
    assert.equal(lockKey("withdraw", 42, 0, -1.5), "lock:withdraw:42:0:-1.5");
    assert.equal(lockKey("reindex"), "lock:reindex");
  });
  const badKeys: [string, () => string, RegExp][] = [
    ["empty prefix", () => lockKey(""), /"prefix" must be a non-empty string: current value is ""/],
    ["numeric prefix", () => lockKey(bad(1)), /"prefix" .* current value is 1/],
    [
      "empty part",
      () => lockKey("a", "b", ""),
      /"parts\[1\]" must be a non-empty string or a finite number: current value is ""/,
    ],
    ["NaN part", () => lockKey("a", NaN), /"parts\[0\]" .* current value is NaN/],
    ["Infinity part", () => lockKey("a", Infinity), /"parts\[0\]" .* current value is Infinity/],
    ["null part", () => lockKey("a", bad(null)), /"parts\[0\]" .* current value is null/],
    [
      "object part",
      () => lockKey("a", bad({ id: 1 })),
      /"parts\[0\]" .* current value is an object/,
    ],
  ];
  for (const [name, call, message] of badKeys) {
    it(`rejects ${name} with a TypeError`, () => {
      assert.throws(call, (error: unknown) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});
