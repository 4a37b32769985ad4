// Bad input, one row per input, over every public function and option: acquireLock,
// withLock (which must reject exactly as acquireLock does), a lock's extend(), debounce,
// a debounced call and lockKey. Each row names the error class and the whole message
// (the option or argument, what it must be, the value as given, and any hint), and
// counts the commands a spy client received: none (extend: only its acquire's SET).
// A message that suggests another value is checked too: the suggestion is accepted.
//
// Then the inputs at the edges that must be accepted, against a real redis-server: each
// lock is proven by reading its key in the same atomic step as baton's SET (the value is
// the lock's token, the PTTL is the lease, within 100 ms); a lease of a second or more is
// also shown held against another owner; then it is released and the key is gone.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  acquireLock,
  type AcquireLockOptions,
  debounce,
  type DebounceOptions,
  lockKey,
  type RedisClient,
  RedisUnavailableError,
  withLock,
} from "../mod.ts";
import { type ClientKind, IOREDIS, MINIMAL } from "./_clients.ts";
import { startRedisWithAdmin, stopRedisWithAdmin } from "./_fixtures.ts";
import type { RedisServer } from "./_redis.ts";
import type { RespClient } from "./_resp.ts";

/** A client that records every command instead of sending it, and grants every lock. */
interface Spy {
  sent: string[][];
  sendCommand(args: string[]): Promise<unknown>;
  /** A method for a look-alike client: records its call as a command, named `name`. */
  record(name: string): (...args: unknown[]) => Promise<unknown>;
}

function spyClient(): Spy {
  const sent: string[][] = [];
  return {
    sent,
    sendCommand(args) {
      sent.push(args);
      return Promise.resolve(args[0] === "SET" ? "OK" : 1);
    },
    record: (name) => (...args) => {
      sent.push([name, ...args.map(String)]);
      return Promise.resolve("OK");
    },
  };
}

/** A bad value that is made per row, from the row's spy (so that its calls are counted). */
class Built {
  constructor(readonly make: (spy: Spy) => unknown) {}
}
const built = (make: (spy: Spy) => unknown) => new Built(make);
/** `value`, or its options with each Built value made from `spy`. */
function make(value: unknown, spy: Spy): unknown {
  if (value instanceof Built) return value.make(spy);
  if (
    value === null || typeof value !== "object" || Object.getPrototypeOf(value) !== Object.prototype
  ) {
    return value;
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, make(v, spy)]));
}

const bad = (value: unknown) => value as never;
const noop = () => {};
/** A callback that takes any arguments. */
const sink = (..._args: unknown[]) => {};
type Fail = typeof TypeError | typeof RangeError;

const esc = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The whole message `Cannot <action> as "<name>" must be <what>...: current value is
 * <shown>`, then ` <hint>` or nothing. `action` is a pattern; `what` is the start of the
 * expectation, taken literally (the rest of it, up to the colon, is free).
 */
function mustBe(action: string, name: string, what: string, shown: string, hint?: string): RegExp {
  return new RegExp(
    `^Cannot ${action} as "${esc(name)}" must be ${esc(what)}[^:]*: current value is ${esc(shown)}${
      hint === undefined ? "" : ` ${esc(hint)}`
    }$`,
  );
}

// What each kind of option must be, as its message starts to say it.
const TTL = "a number of seconds from 0.001 to 3600, or a string with a unit";
const TIMEOUT = "a number of milliseconds from 0 to 2592000000, Infinity, or a string with a unit";
const MS_FROM_0 = "a number of milliseconds from 0 to 2592000000, or a string with a unit";
const MS_FROM_1 = "a number of milliseconds from 1 to 2592000000, or a string with a unit";
const RETRIES = "a whole number from 0, or Infinity";
const JITTER = "a number from 0 to 1";
const BOOLEAN = "a boolean";
const STRING = "a string";
const FUNCTION = "a function";
const SIGNAL = "an AbortSignal";
const SUBSCRIBER = "a Redis client or false";
const OBJECT = "an object";
const KEY = "a non-empty string";
const CLIENT = "a Redis client instance with a call() (ioredis, iovalkey), sendCommand() " +
  "(node-redis, or one you write) or send() (Bun's RedisClient) method";
const EDGE = '"trailing" or "leading"';
const JSON_DATA = "JSON data (null, a boolean, a finite number, a string, an array or a plain " +
  "object of these), as the trailing edge stores the arguments in Redis";
const PART = "a non-empty string or a finite number";

/** How a message describes an object with no client method. */
const NO_METHODS = "with none of the methods call(), sendCommand() or send()";

// Values that are not Redis clients, as `redis` or `subscriber`: [label, value, as shown].
// Look-alikes record what they are asked into the row's spy, so that "nothing was sent"
// covers them too.
const NOT_CLIENTS: [string, unknown, string][] = [
  ["undefined", undefined, "undefined"],
  ["null", null, "null"],
  ["a URL string", "redis://localhost:6379", '"redis://localhost:6379"'],
  ["a port number", 6379, "6379"],
  ["true", true, "true"],
  ["a symbol", Symbol("redis"), "Symbol(redis)"],
  [
    "an object with get and set only",
    built((spy) => ({ get: spy.record("get"), set: spy.record("set") })),
    `an object ${NO_METHODS}`,
  ],
  ["an object whose call is not a function", { call: "CALL" }, `an object ${NO_METHODS}`],
  [
    "an object whose sendCommand is a string",
    { sendCommand: "SET" },
    `an object ${NO_METHODS}`,
  ],
  [
    "an @upstash/redis look-alike ({ evalsha, scriptLoad })",
    built((spy) => ({
      evalsha: spy.record("evalsha"),
      scriptLoad: spy.record("scriptLoad"),
      get: spy.record("get"),
    })),
    "an object that looks like @upstash/redis but has no client.request() to send through: " +
    "pass the Redis instance of @upstash/redis 1.x",
  ],
  [
    "a plain function",
    built((spy) =>
      function connect(...args: unknown[]) {
        return spy.record("connect")(...args);
      }
    ),
    "a function (connect): pass a client object, not a function",
  ],
  [
    "an anonymous arrow function",
    built((spy) => [(...args: unknown[]) => spy.record("arrow")(...args)][0]),
    "a function (anonymous): pass a client object, not a function",
  ],
  [
    "the class Redis instead of an instance",
    built((spy) =>
      class Redis {
        call(...args: unknown[]) {
          return spy.record("call")(...args);
        }
      }
    ),
    "the class Redis, not an instance of it: pass a connected client, such as new Redis(...)",
  ],
  [
    "an old-style constructor with sendCommand on its prototype",
    built((spy) => {
      function Client() {}
      Client.prototype.sendCommand = spy.record("sendCommand");
      return Client;
    }),
    "the class Client, not an instance of it: pass a connected client, such as new Client(...)",
  ],
  [
    "a promise of a client (a missing await)",
    built((spy) => Promise.resolve(spy)),
    `an instance of Promise ${NO_METHODS}`,
  ],
  ["a Map", new Map([["call", noop]]), `an instance of Map ${NO_METHODS}`],
];

/**
 * Not a client as `subscriber` or as debounce's `redis`. (acquireLock and withLock are
 * becoming able to take an array of clients, for Redlock, so it has no row there.)
 */
const AN_ARRAY: [string, unknown, string] = ["an array", [], `an array ${NO_METHODS}`];

// Keys that are not keys: [value, as shown].
const NOT_KEYS: [unknown, string][] = [
  ["", '""'],
  [42, "42"],
  [null, "null"],
  [undefined, "undefined"],
  [{ key: "k" }, "an object"],
  [["k"], "an array"],
  [new String("k"), "an instance of String"],
];

/** One input to acquireLock's (and withLock's) options that must be rejected. */
interface OptionsCase {
  label: string;
  options: unknown;
  error: Fail;
  /** The message, for an action pattern. */
  message: (action: string) => RegExp;
  /** The option that the message may suggest another value for. */
  option?: string;
}

/** `{ [option]: value }`, rejected with `error`; the message shows the value as `shown`. */
function opt(
  option: string,
  value: unknown,
  error: Fail,
  what: string,
  shown: string,
  hint?: string,
): OptionsCase {
  return {
    label: `{ ${option}: ${shown} }`,
    options: { [option]: value },
    error,
    message: (action) => mustBe(action, option, what, shown, hint),
    option,
  };
}

/**
 * An unknown option name, and the known one its message suggests. The list of known names
 * is only checked to start with ttl, so that a new option does not break these rows.
 */
function unknown(name: string, close?: string): OptionsCase {
  return {
    label: `unknown option ${name}`,
    options: { [name]: 99 },
    error: TypeError,
    message: (action) =>
      new RegExp(
        `^Cannot ${action} as "${esc(name)}" is not one of its options${
          close ? `; did you mean "${close}"\\?` : ""
        } \\(known: ttl(?:, \\w+)+\\)$`,
      ),
  };
}

/** An options argument that is not an object. */
function notOptions(value: unknown, shown: string): OptionsCase {
  return {
    label: `options ${shown}`,
    options: value,
    error: TypeError,
    message: (action) => mustBe(action, "options", OBJECT, shown),
  };
}

/** retryDelay above maxRetryDelay: both named, both values in ms. */
function crossed(options: AcquireLockOptions, retryMs: number, maxMs: number): OptionsCase {
  return {
    label: `retryDelay above maxRetryDelay ${JSON.stringify(options)}`,
    options,
    error: RangeError,
    message: (action) =>
      new RegExp(
        `^Cannot ${action} as "retryDelay" must not be above "maxRetryDelay": current values are ${retryMs} ms and ${maxMs} ms$`,
      ),
  };
}

/** The hint for a bare ttl number above an hour. */
const seconds = (value: number, asMs: string, asUnit: string) =>
  `(ttl is in seconds: ${value} is about ${asUnit}; write "${value}ms" for ${asMs}, or "${value}s" if you mean it)`;
/** The hint for a string without a unit: seconds or ms for a lease, else ms. */
const needsUnit = (suggestion: string) =>
  suggestion.endsWith("ms")
    ? `(a string needs a unit: "${suggestion}")`
    : `(a string needs a unit: "${suggestion}", or "${suggestion.slice(0, -1)}ms")`;

/** Bad options of acquireLock, each also a row of withLock. */
const OPTIONS_CASES: OptionsCase[] = [
  notOptions(null, "null"),
  notOptions("ttl=10", '"ttl=10"'),
  notOptions(5, "5"),
  notOptions(true, "true"),
  // An array, a Map or an object with a prototype would be read as no options at all.
  notOptions([], "an array"),
  notOptions(new Map([["ttl", 10]]), "an instance of Map"),
  notOptions(Object.create({ ttl: 99_999 }), "an object"),
  unknown("tll", "ttl"),
  unknown("timeOut", "timeout"),
  unknown("lockTimeout"),
  unknown("ttlMs", "ttl"),
  unknown("retryCount"),
  unknown("onlost", "onLost"),
  unknown("watchDog", "watchdog"),

  opt("ttl", 0, RangeError, TTL, "0"),
  opt("ttl", -1, RangeError, TTL, "-1"),
  opt("ttl", NaN, RangeError, TTL, "NaN"),
  opt("ttl", Infinity, RangeError, TTL, "Infinity"),
  opt("ttl", -Infinity, RangeError, TTL, "-Infinity"),
  opt("ttl", 1e300, RangeError, TTL, "1e+300"),
  opt("ttl", Number.MAX_SAFE_INTEGER, RangeError, TTL, "9007199254740991"),
  opt("ttl", 10_000, RangeError, TTL, "10000", seconds(10_000, "10s", "2.8h")),
  opt("ttl", 3601, RangeError, TTL, "3601", seconds(3601, "3.6s", "1h")),
  opt("ttl", 86_400, RangeError, TTL, "86400", seconds(86_400, "1.4m", "1d")),
  opt("ttl", 31 * 86_400, RangeError, TTL, "2678400"),
  opt("ttl", 0.0005, RangeError, TTL, "0.0005"),
  opt("ttl", "0.5ms", RangeError, TTL, '"0.5ms"'),
  opt("ttl", "0s", RangeError, TTL, '"0s"'),
  opt("ttl", "31d", RangeError, TTL, '"31d"'),
  opt("ttl", "10", TypeError, TTL, '"10"', needsUnit("10s")),
  opt("ttl", " 10 ", TypeError, TTL, '" 10 "', needsUnit("10s")),
  // No hint for a string that is not a plain decimal: adding a unit would not help.
  opt("ttl", "1e3", TypeError, TTL, '"1e3"'),
  opt("ttl", "-5", TypeError, TTL, '"-5"'),
  opt("ttl", "0x10", TypeError, TTL, '"0x10"'),
  opt("ttl", "10 sec", TypeError, TTL, '"10 sec"'),
  opt("ttl", "10x", TypeError, TTL, '"10x"'),
  opt("ttl", "10S", TypeError, TTL, '"10S"'),
  opt("ttl", "-5s", TypeError, TTL, '"-5s"'),
  opt("ttl", "", TypeError, TTL, '""'),
  opt("ttl", null, TypeError, TTL, "null"),
  opt("ttl", true, TypeError, TTL, "true"),
  opt("ttl", 10n, TypeError, TTL, "10n"),
  opt("ttl", { seconds: 10 }, TypeError, TTL, "an object"),
  opt("ttl", [10], TypeError, TTL, "an array"),

  opt("throwOnFail", "false", TypeError, BOOLEAN, '"false"'),
  opt("throwOnFail", 0, TypeError, BOOLEAN, "0"),
  opt("throwOnFail", null, TypeError, BOOLEAN, "null"),
  opt("errorMessage", 1, TypeError, STRING, "1"),
  opt("errorMessage", new Error("busy"), TypeError, STRING, "an instance of Error"),
  opt("errorMessage", null, TypeError, STRING, "null"),

  opt("timeout", -1, RangeError, TIMEOUT, "-1"),
  opt("timeout", NaN, RangeError, TIMEOUT, "NaN"),
  opt("timeout", -Infinity, RangeError, TIMEOUT, "-Infinity"),
  opt("timeout", 1e300, RangeError, TIMEOUT, "1e+300"),
  opt("timeout", Number.MAX_SAFE_INTEGER, RangeError, TIMEOUT, "9007199254740991"),
  opt("timeout", "31d", RangeError, TIMEOUT, '"31d"'),
  opt("timeout", "1", TypeError, TIMEOUT, '"1"', needsUnit("1ms")),
  opt("timeout", "1 sec", TypeError, TIMEOUT, '"1 sec"'),
  opt("timeout", "Infinity", TypeError, TIMEOUT, '"Infinity"'),
  opt("timeout", null, TypeError, TIMEOUT, "null"),
  opt("timeout", false, TypeError, TIMEOUT, "false"),

  opt("retries", 1.5, RangeError, RETRIES, "1.5"),
  opt("retries", -1, RangeError, RETRIES, "-1"),
  opt("retries", NaN, RangeError, RETRIES, "NaN"),
  opt("retries", -Infinity, RangeError, RETRIES, "-Infinity"),
  opt("retries", "3", TypeError, RETRIES, '"3"'),
  opt("retries", null, TypeError, RETRIES, "null"),

  opt("retryDelay", 0, RangeError, MS_FROM_1, "0"),
  opt("retryDelay", -5, RangeError, MS_FROM_1, "-5"),
  opt("retryDelay", 0.5, RangeError, MS_FROM_1, "0.5"),
  opt("retryDelay", NaN, RangeError, MS_FROM_1, "NaN"),
  opt("retryDelay", Infinity, RangeError, MS_FROM_1, "Infinity"),
  opt("retryDelay", 1e300, RangeError, MS_FROM_1, "1e+300"),
  opt("retryDelay", "5", TypeError, MS_FROM_1, '"5"', needsUnit("5ms")),
  opt("retryDelay", "5 msec", TypeError, MS_FROM_1, '"5 msec"'),
  opt("maxRetryDelay", 0, RangeError, MS_FROM_1, "0"),
  opt("maxRetryDelay", -1, RangeError, MS_FROM_1, "-1"),
  opt("maxRetryDelay", Infinity, RangeError, MS_FROM_1, "Infinity"),
  opt("maxRetryDelay", "1x", TypeError, MS_FROM_1, '"1x"'),
  crossed({ retryDelay: 100, maxRetryDelay: 50 }, 100, 50),
  crossed({ retryDelay: "2s", maxRetryDelay: "1s" }, 2000, 1000),

  opt("jitter", 1.5, RangeError, JITTER, "1.5"),
  opt("jitter", -0.1, RangeError, JITTER, "-0.1"),
  opt("jitter", NaN, RangeError, JITTER, "NaN"),
  opt("jitter", Infinity, RangeError, JITTER, "Infinity"),
  opt("jitter", "0.5", TypeError, JITTER, '"0.5"'),

  opt("fairnessWindow", -1, RangeError, MS_FROM_0, "-1"),
  opt("fairnessWindow", NaN, RangeError, MS_FROM_0, "NaN"),
  opt("fairnessWindow", Infinity, RangeError, MS_FROM_0, "Infinity"),
  opt("fairnessWindow", 1e300, RangeError, MS_FROM_0, "1e+300"),
  opt("fairnessWindow", "10", TypeError, MS_FROM_0, '"10"', needsUnit("10ms")),

  opt("signal", { aborted: false }, TypeError, SIGNAL, "an object"),
  opt("signal", new AbortController(), TypeError, SIGNAL, "an instance of AbortController"),
  opt("signal", new EventTarget(), TypeError, SIGNAL, "an instance of EventTarget"),
  opt("signal", "abort", TypeError, SIGNAL, '"abort"'),
  opt("signal", null, TypeError, SIGNAL, "null"),

  ...[...NOT_CLIENTS, AN_ARRAY].filter(([, value]) => value !== undefined).map((
    [, value, shown],
  ) => opt("subscriber", value, TypeError, SUBSCRIBER, shown)),

  opt("watchdog", "yes", TypeError, BOOLEAN, '"yes"'),
  opt("watchdog", 1, TypeError, BOOLEAN, "1"),

  opt("onLost", 1, TypeError, FUNCTION, "1"),
  opt("onLost", "console.error", TypeError, FUNCTION, '"console.error"'),
  opt("onLost", null, TypeError, FUNCTION, "null"),
  opt("onLost", { handleEvent: noop }, TypeError, FUNCTION, "an object"),

  opt("fencing", "yes", TypeError, BOOLEAN, '"yes"'),
  opt("fencing", 1, TypeError, BOOLEAN, "1"),
  opt("fencing", null, TypeError, BOOLEAN, "null"),
];

/** Bad options that withLock once let through (it defaults the watchdog to true). */
const ACQUIRE_ONLY_CASES: OptionsCase[] = [
  opt("watchdog", null, TypeError, BOOLEAN, "null"),
];

/** One row of the table. */
interface Row {
  name: string;
  /** The call, on the row's spy client. */
  call: (spy: Spy) => unknown;
  error: Fail;
  message: RegExp;
  /** Commands sent before the error: only extend's rows, whose lock is acquired first. */
  sent?: number;
  /** Thrown at once (lockKey, debounce), rather than a rejected promise. */
  throws?: boolean;
  /** For withLock: acquireLock with the same input, which must fail the same way. */
  sameAs?: (spy: Spy) => unknown;
  /** The call with a value the message suggests instead, which must be accepted. */
  retry?: (spy: Spy, suggestion: string) => unknown;
}

const ACQUIRE = "acquire lock";
/** withLock's own checks say "run with lock"; those it leaves to acquireLock, "acquire lock". */
const WITH_LOCK = "(?:run with|acquire) lock";

const rows: Row[] = [];

for (const c of [...OPTIONS_CASES, ...ACQUIRE_ONLY_CASES]) {
  const option = c.option;
  rows.push({
    name: `acquireLock options ${c.label}`,
    call: (spy) => acquireLock(spy, "k", bad(make(c.options, spy))),
    error: c.error,
    message: c.message(ACQUIRE),
    retry: option ? (spy, s) => acquireLock(spy, "k", { [option]: s }) : undefined,
  });
}
for (const c of OPTIONS_CASES) {
  const option = c.option;
  rows.push({
    name: `withLock options ${c.label}`,
    call: (spy) => withLock(spy, "k", noop, bad(make(c.options, spy))),
    error: c.error,
    message: c.message(WITH_LOCK),
    sameAs: (spy) => acquireLock(spy, "k", bad(make(c.options, spy))),
    retry: option ? (spy, s) => withLock(spy, "k", noop, { [option]: s }) : undefined,
  });
}
for (const c of ACQUIRE_ONLY_CASES) {
  rows.push({
    name: `withLock options ${c.label}`,
    call: (spy) => withLock(spy, "k", noop, bad(make(c.options, spy))),
    error: c.error,
    message: c.message(WITH_LOCK),
    sameAs: (spy) => acquireLock(spy, "k", bad(make(c.options, spy))),
  });
}

for (const [value, shown] of NOT_KEYS) {
  rows.push(
    {
      name: `acquireLock key ${shown}`,
      call: (spy) => acquireLock(spy, bad(value)),
      error: TypeError,
      message: mustBe(ACQUIRE, "key", KEY, shown),
    },
    {
      name: `withLock key ${shown}`,
      call: (spy) => withLock(spy, bad(value), noop),
      error: TypeError,
      message: mustBe(WITH_LOCK, "key", KEY, shown),
      sameAs: (spy) => acquireLock(spy, bad(value)),
    },
    {
      name: `debounce key ${shown}`,
      call: (spy) => debounce(spy, bad(value), noop, { wait: 10 }),
      error: TypeError,
      message: mustBe("debounce", "key", KEY, shown),
      throws: true,
    },
  );
}

const DEBOUNCE_ARRAY: [string, unknown, string] = [
  "an array",
  [],
  "an array (a burst runs on one server; an array of clients is for Redlock locks)",
];
for (const [label, value, shown] of [...NOT_CLIENTS, DEBOUNCE_ARRAY]) {
  rows.push({
    name: `debounce redis: ${label}`,
    call: (spy) => debounce(bad(make(value, spy)), "k", noop, { wait: 10 }),
    error: TypeError,
    message: mustBe("debounce", "redis", CLIENT, shown),
    throws: true,
  });
}
for (const [label, value, shown] of NOT_CLIENTS) {
  rows.push(
    {
      name: `acquireLock redis: ${label}`,
      call: (spy) => acquireLock(bad(make(value, spy)), "k"),
      error: TypeError,
      message: mustBe(ACQUIRE, "redis", CLIENT, shown),
    },
    {
      name: `withLock redis: ${label}`,
      call: (spy) => withLock(bad(make(value, spy)), "k", noop),
      error: TypeError,
      message: mustBe(WITH_LOCK, "redis", CLIENT, shown),
      sameAs: (spy) => acquireLock(bad(make(value, spy)), "k"),
    },
  );
}

// A callback that is not a function: [value, as shown].
const NOT_FUNCTIONS: [unknown, string][] = [
  ["fn", '"fn"'],
  [null, "null"],
  [undefined, "undefined"],
  [{ run: noop }, "an object"],
  [Promise.resolve(1), "an instance of Promise"],
];
for (const [value, shown] of NOT_FUNCTIONS) {
  rows.push(
    {
      name: `withLock fn ${shown}`,
      call: (spy) => withLock(spy, "k", bad(value)),
      error: TypeError,
      message: mustBe("run with lock", "fn", FUNCTION, shown),
    },
    {
      name: `debounce fn ${shown}`,
      call: (spy) => debounce(spy, "k", bad(value), { wait: 10 }),
      error: TypeError,
      message: mustBe("debounce", "fn", FUNCTION, shown),
      throws: true,
    },
  );
}

// extend(ttl) on a held lock: [value, error, as shown, hint].
const BAD_EXTENDS: [unknown, Fail, string, string?][] = [
  [0, RangeError, "0"],
  [-1, RangeError, "-1"],
  [NaN, RangeError, "NaN"],
  [Infinity, RangeError, "Infinity"],
  [-Infinity, RangeError, "-Infinity"],
  [1e300, RangeError, "1e+300"],
  [Number.MAX_SAFE_INTEGER, RangeError, "9007199254740991"],
  [10_000, RangeError, "10000", seconds(10_000, "10s", "2.8h")],
  [0.0005, RangeError, "0.0005"],
  ["0.5ms", RangeError, '"0.5ms"'],
  ["31d", RangeError, '"31d"'],
  ["10", TypeError, '"10"', needsUnit("10s")],
  ["10 sec", TypeError, '"10 sec"'],
  ["10x", TypeError, '"10x"'],
  ["", TypeError, '""'],
  [null, TypeError, "null"],
  [true, TypeError, "true"],
  [{ ttl: 10 }, TypeError, "an object"],
];
for (const [value, error, shown, hint] of BAD_EXTENDS) {
  rows.push({
    name: `extend(${shown})`,
    call: async (spy) => (await acquireLock(spy, "k")).extend(bad(value)),
    error,
    message: mustBe("extend lock", "ttl", TTL, shown, hint),
    sent: 1,
    retry: async (spy, s) => (await acquireLock(spy, "k")).extend(bad(s)),
  });
}

// debounce's options: [label, options, error, message].
const DEBOUNCE_CASES: [string, unknown, Fail, RegExp, string?][] = [
  ["no options", undefined, TypeError, mustBe("debounce", "wait", MS_FROM_1, "undefined")],
  ["options null", null, TypeError, mustBe("debounce", "options", OBJECT, "null")],
  ["options a string", "wait=10", TypeError, mustBe("debounce", "options", OBJECT, '"wait=10"')],
  ["options a number", 5, TypeError, mustBe("debounce", "options", OBJECT, "5")],
  ["wait missing", {}, TypeError, mustBe("debounce", "wait", MS_FROM_1, "undefined")],
  [
    "waitMs in place of wait",
    { waitMs: 10 },
    TypeError,
    /^Cannot debounce as "waitMs" is not one of its options; did you mean "wait"\? \(known: wait, edge, takeoverAfter, signal, onError, subscriber\)$/,
  ],
  ["wait 0", { wait: 0 }, RangeError, mustBe("debounce", "wait", MS_FROM_1, "0")],
  ["wait -1", { wait: -1 }, RangeError, mustBe("debounce", "wait", MS_FROM_1, "-1")],
  ["wait NaN", { wait: NaN }, RangeError, mustBe("debounce", "wait", MS_FROM_1, "NaN")],
  [
    "wait Infinity",
    { wait: Infinity },
    RangeError,
    mustBe("debounce", "wait", MS_FROM_1, "Infinity"),
  ],
  [
    "wait -Infinity",
    { wait: -Infinity },
    RangeError,
    mustBe("debounce", "wait", MS_FROM_1, "-Infinity"),
  ],
  ["wait 1e300", { wait: 1e300 }, RangeError, mustBe("debounce", "wait", MS_FROM_1, "1e+300")],
  [
    "wait Number.MAX_SAFE_INTEGER",
    { wait: Number.MAX_SAFE_INTEGER },
    RangeError,
    mustBe("debounce", "wait", MS_FROM_1, "9007199254740991"),
  ],
  [
    'wait "1"',
    { wait: "1" },
    TypeError,
    mustBe("debounce", "wait", MS_FROM_1, '"1"', needsUnit("1ms")),
    "wait",
  ],
  ['wait "1 sec"', { wait: "1 sec" }, TypeError, mustBe("debounce", "wait", MS_FROM_1, '"1 sec"')],
  ['wait "10x"', { wait: "10x" }, TypeError, mustBe("debounce", "wait", MS_FROM_1, '"10x"')],
  ['wait "0ms"', { wait: "0ms" }, RangeError, mustBe("debounce", "wait", MS_FROM_1, '"0ms"')],
  ["wait null", { wait: null }, TypeError, mustBe("debounce", "wait", MS_FROM_1, "null")],
  ["wait true", { wait: true }, TypeError, mustBe("debounce", "wait", MS_FROM_1, "true")],
  [
    'edge "middle"',
    { wait: 10, edge: "middle" },
    TypeError,
    mustBe("debounce", "edge", EDGE, '"middle"'),
  ],
  [
    'edge "Leading"',
    { wait: 10, edge: "Leading" },
    TypeError,
    mustBe("debounce", "edge", EDGE, '"Leading"'),
  ],
  ["edge true", { wait: 10, edge: true }, TypeError, mustBe("debounce", "edge", EDGE, "true")],
  ["edge null", { wait: 10, edge: null }, TypeError, mustBe("debounce", "edge", EDGE, "null")],
  [
    "takeoverAfter 0",
    { wait: 10, takeoverAfter: 0 },
    RangeError,
    mustBe("debounce", "takeoverAfter", MS_FROM_1, "0"),
  ],
  [
    "takeoverAfter -1",
    { wait: 10, takeoverAfter: -1 },
    RangeError,
    mustBe("debounce", "takeoverAfter", MS_FROM_1, "-1"),
  ],
  [
    "takeoverAfter NaN",
    { wait: 10, takeoverAfter: NaN },
    RangeError,
    mustBe("debounce", "takeoverAfter", MS_FROM_1, "NaN"),
  ],
  [
    "takeoverAfter Infinity",
    { wait: 10, takeoverAfter: Infinity },
    RangeError,
    mustBe("debounce", "takeoverAfter", MS_FROM_1, "Infinity"),
  ],
  [
    'takeoverAfter "1"',
    { wait: 10, takeoverAfter: "1" },
    TypeError,
    mustBe("debounce", "takeoverAfter", MS_FROM_1, '"1"', needsUnit("1ms")),
    "takeoverAfter",
  ],
  [
    'takeoverAfter "1 minute"',
    { wait: 10, takeoverAfter: "1 minute" },
    TypeError,
    mustBe("debounce", "takeoverAfter", MS_FROM_1, '"1 minute"'),
  ],
  [
    "takeoverAfter null",
    { wait: 10, takeoverAfter: null },
    TypeError,
    mustBe("debounce", "takeoverAfter", MS_FROM_1, "null"),
  ],
  [
    "signal an object",
    { wait: 10, signal: { aborted: false } },
    TypeError,
    mustBe("debounce", "signal", SIGNAL, "an object"),
  ],
  [
    "signal an AbortController",
    { wait: 10, signal: new AbortController() },
    TypeError,
    mustBe("debounce", "signal", SIGNAL, "an instance of AbortController"),
  ],
  [
    "signal null",
    { wait: 10, signal: null },
    TypeError,
    mustBe("debounce", "signal", SIGNAL, "null"),
  ],
  [
    "onError 1",
    { wait: 10, onError: 1 },
    TypeError,
    mustBe("debounce", "onError", FUNCTION, "1"),
  ],
  [
    'onError "log"',
    { wait: 10, onError: "log" },
    TypeError,
    mustBe("debounce", "onError", FUNCTION, '"log"'),
  ],
  [
    "onError null",
    { wait: 10, onError: null },
    TypeError,
    mustBe("debounce", "onError", FUNCTION, "null"),
  ],
  ...[...NOT_CLIENTS, AN_ARRAY].filter(([, value]) => value !== undefined).map((
    [label, value, shown],
  ): [string, unknown, Fail, RegExp] => [
    `subscriber: ${label}`,
    { wait: 10, subscriber: value },
    TypeError,
    mustBe("debounce", "subscriber", SUBSCRIBER, shown),
  ]),
  ...([["edg", "edge"], ["takeOverAfter", "takeoverAfter"], ["ttl", undefined]] as const).map((
    [name, close],
  ): [string, unknown, Fail, RegExp] => [
    `unknown option ${name}`,
    { wait: 10, [name]: 99 },
    TypeError,
    new RegExp(
      `^Cannot debounce as "${name}" is not one of its options${
        close ? `; did you mean "${close}"\\?` : ""
      } \\(known: wait, edge, takeoverAfter, signal, onError, subscriber\\)$`,
    ),
  ]),
];
for (const [label, options, error, message, option] of DEBOUNCE_CASES) {
  rows.push({
    name: `debounce options ${label}`,
    call: (spy) => debounce(spy, "k", noop, bad(make(options, spy))),
    error,
    message,
    throws: true,
    retry: option
      ? (spy, s) => debounce(spy, "k", noop, { wait: 10, [option]: s } as DebounceOptions)
      : undefined,
  });
}

// Arguments of a debounced call (trailing edge) that are not JSON data:
// [label, args, the argument's path, as shown].
const cycle: Record<string, unknown> = { id: 1 };
cycle.self = cycle;
const loop: unknown[] = [];
loop.push(loop);
const holey: unknown[] = [1];
holey[2] = 3;
const CYCLE = "a reference to an enclosing object";
const NOT_JSON: [string, unknown[], string, string][] = [
  ["a function", [noop], "args[0]", "a function"],
  ["a Date", [new Date(0)], "args[0]", "an instance of Date"],
  ["a Map", [new Map([["a", 1]])], "args[0]", "an instance of Map"],
  ["a Set", [new Set([1])], "args[0]", "an instance of Set"],
  ["a BigInt", [1n], "args[0]", "1n"],
  ["NaN", [NaN], "args[0]", "NaN"],
  ["Infinity, second", [1, Infinity], "args[1]", "Infinity"],
  ["-Infinity", [-Infinity], "args[0]", "-Infinity"],
  ["undefined", [undefined], "args[0]", "undefined"],
  ["a symbol", [Symbol("s")], "args[0]", "Symbol(s)"],
  ["a Uint8Array", [new Uint8Array(2)], "args[0]", "an instance of Uint8Array"],
  ["a class instance", [new (class Order {})()], "args[0]", "an instance of Order"],
  ["a Date in an object", [{ at: new Date(0) }], "args[0].at", "an instance of Date"],
  ["NaN under an odd name", [{ "a-b": NaN }], 'args[0]["a-b"]', "NaN"],
  ["a hole in an array", [holey], "args[0][1]", "undefined"],
  ["an object with a symbol key", [{ [Symbol("s")]: 1 }], "args[0]", "an object"],
];
for (const [label, args, path, shown] of NOT_JSON) {
  rows.push({
    name: `debounced call with ${label}`,
    call: (spy) => debounce(spy, "k", sink, { wait: 10 })(...args),
    error: TypeError,
    message: mustBe("call debounced function", path, JSON_DATA, shown),
  });
}
const CYCLES: [string, unknown[], string][] = [
  ["a cycle", [cycle], "args[0].self"],
  ["an array cycle", [loop], "args[0][0]"],
];
for (const [label, args, path] of CYCLES) {
  rows.push({
    name: `debounced call with ${label}`,
    call: (spy) => debounce(spy, "k", sink, { wait: 10 })(...args),
    error: TypeError,
    message: mustBe("call debounced function", path, `${JSON_DATA}, without cycles`, CYCLE),
  });
}

// lockKey: [label, call, the argument, as shown].
const BAD_LOCK_KEYS: [string, () => string, string, string][] = [
  ["empty prefix", () => lockKey(""), "prefix", '""'],
  ["numeric prefix", () => lockKey(bad(1)), "prefix", "1"],
  ["null prefix", () => lockKey(bad(null)), "prefix", "null"],
  ["no prefix", () => (lockKey as (...args: unknown[]) => string)(), "prefix", "undefined"],
  ["object prefix", () => lockKey(bad({ name: "order" })), "prefix", "an object"],
  ["empty part", () => lockKey("order", "user", ""), "parts[1]", '""'],
  ["NaN part", () => lockKey("order", NaN), "parts[0]", "NaN"],
  ["Infinity part", () => lockKey("order", 1, Infinity), "parts[1]", "Infinity"],
  ["-Infinity part", () => lockKey("order", -Infinity), "parts[0]", "-Infinity"],
  ["null part", () => lockKey("order", bad(null)), "parts[0]", "null"],
  ["undefined part", () => lockKey("order", bad(undefined)), "parts[0]", "undefined"],
  ["object part", () => lockKey("order", bad({ id: 1 })), "parts[0]", "an object"],
  ["boolean part", () => lockKey("order", bad(true)), "parts[0]", "true"],
  ["bigint part", () => lockKey("order", bad(1n)), "parts[0]", "1n"],
  ["array part", () => lockKey("order", bad(["a", "b"])), "parts[0]", "an array"],
];
for (const [label, call, name, shown] of BAD_LOCK_KEYS) {
  rows.push({
    name: `lockKey ${label}`,
    call,
    error: TypeError,
    message: mustBe(
      "build lock key",
      name,
      name === "prefix" ? "a non-empty string" : PART,
      shown,
    ),
    throws: true,
  });
}

/** What a call that did not fail settles to. */
const ACCEPTED = Symbol("accepted");

/** The error `call` throws (`throws`) or rejects with, or ACCEPTED. */
async function failure(call: () => unknown, throws: boolean): Promise<unknown> {
  let result: unknown;
  try {
    result = call();
  } catch (error) {
    assert.ok(throws, `threw at once rather than returning a rejected promise: ${error}`);
    return error;
  }
  if (throws) return ACCEPTED;
  assert.ok(result instanceof Promise, `returned ${String(result)} rather than a promise`);
  return await result.then(() => ACCEPTED, (error) => error);
}

const described = (error: unknown) =>
  error === ACCEPTED ? "accepted" : error instanceof Error ? String(error) : `a throw of ${error}`;

/** The message without its "Cannot <action> as " start. */
const afterAction = (message: string) => message.replace(/^Cannot [a-z ]+ as /, "");

/** The values a message suggests writing instead. */
const suggestions = (message: string) =>
  [...message.matchAll(/(?:a string needs a unit: |write |, or )"([^"]+)"/g)].map((m) => m[1]!);

describe("bad input is rejected, naming the option and the value, before anything reaches Redis", () => {
  it(`the table has ${rows.length} rows, over every public function`, () => {
    assert.ok(rows.length >= 80);
    const names = new Set(rows.map((row) => row.name.split(/[ (]/)[0]));
    assert.deepEqual([...names].sort(), [
      "acquireLock",
      "debounce",
      "debounced",
      "extend",
      "lockKey",
      "withLock",
    ]);
  });

  for (const row of rows) {
    it(`${row.name}: ${row.error.name}`, async () => {
      const spy = spyClient();
      const error = await failure(() => row.call(spy), row.throws ?? false);
      assert.equal(
        (error as Error)?.constructor,
        row.error,
        `expected a ${row.error.name}, got ${described(error)}`,
      );
      const message = (error as Error).message;
      assert.match(message, row.message);
      assert.equal(spy.sent.length, row.sent ?? 0, `commands sent: ${JSON.stringify(spy.sent)}`);
      if (row.sameAs) {
        const twin = await failure(() => row.sameAs!(spyClient()), false);
        assert.equal(
          (twin as Error)?.constructor,
          row.error,
          `acquireLock gave ${described(twin)}`,
        );
        assert.equal(afterAction(message), afterAction((twin as Error).message));
      }
      for (const suggestion of suggestions(message)) {
        assert.ok(row.retry, `the message suggests "${suggestion}", but the row cannot try it`);
        const retried = await failure(
          () => row.retry!(spyClient(), suggestion),
          row.throws ?? false,
        );
        assert.equal(
          retried,
          ACCEPTED,
          `the message suggests "${suggestion}", which is rejected: ${described(retried)}`,
        );
      }
    });
  }

  it("the same calls with good input do send commands to the spy, so the counts above mean something", async () => {
    const spy = spyClient();
    const lock = await acquireLock(spy, "k", { ttl: "10s" });
    assert.deepEqual(spy.sent, [["SET", "k", lock.token, "NX", "PX", "10000"]]);
    assert.equal(await lock.extend("5s"), true);
    assert.equal(spy.sent.length, 2);
    assert.equal(await withLock(spy, "k", () => 7), 7);
    assert.equal(spy.sent.length, 4); // SET, then the release script
    const call = debounce(spy, "k", sink, { wait: 10, edge: "leading" });
    await call({ at: "2024-01-01" });
    assert.equal(spy.sent.length, 5);
  });
});

// Inputs at the edges that must be accepted and really lock.
interface Good {
  name: string;
  key?: string;
  options?: AcquireLockOptions;
  /** The lease Redis must hold, in ms. */
  ttlMs: number;
  /** extend() with this ttl after acquiring, and the lease it must set, in ms. */
  extend?: [ttl: number | `${number}${"ms" | "s" | "m" | "h" | "d"}`, ms: number];
  via?: "withLock";
}
const GOOD: Good[] = [
  { name: "a key with spaces", key: "order 42 of user 7", ttlMs: 30_000 },
  { name: "a key with newlines", key: "line\nbreak\r\nend\n", ttlMs: 30_000 },
  { name: 'the key "{}"', key: "{}", ttlMs: 30_000 },
  { name: "the key {tag}", key: "{tag}", ttlMs: 30_000 },
  { name: "a key with a hash tag", key: "{user:7}:withdraw", ttlMs: 30_000 },
  { name: "a key with an unclosed brace", key: "order}{", ttlMs: 30_000 },
  { name: "a key of 100 KB", key: "k".repeat(100 * 1024), ttlMs: 30_000 },
  { name: "a non-ASCII key", key: "заказ:訂單:طلب:ß", ttlMs: 30_000 },
  { name: "an emoji key", key: "🔒🚀👩‍👩‍👧", ttlMs: 30_000 },
  { name: "a key with a NUL byte", key: "a\u0000b", ttlMs: 30_000 },
  { name: "a key of spaces only", key: "   ", ttlMs: 30_000 },
  { name: 'ttl "10s"', options: { ttl: "10s" }, ttlMs: 10_000 },
  { name: 'ttl "250ms"', options: { ttl: "250ms" }, ttlMs: 250 },
  { name: "ttl 0.25", options: { ttl: 0.25 }, ttlMs: 250 },
  { name: "ttl 0.001 (1 ms, the least)", options: { ttl: 0.001 }, ttlMs: 1 },
  { name: 'ttl "1ms"', options: { ttl: "1ms" }, ttlMs: 1 },
  { name: "ttl 3600 (the largest bare number)", options: { ttl: 3600 }, ttlMs: 3_600_000 },
  { name: 'ttl "1.5m"', options: { ttl: "1.5m" }, ttlMs: 90_000 },
  { name: 'ttl "2h"', options: { ttl: "2h" }, ttlMs: 7_200_000 },
  { name: 'ttl "30d" (the longest)', options: { ttl: "30d" }, ttlMs: 2_592_000_000 },
  { name: 'timeout "1s"', options: { timeout: "1s" }, ttlMs: 30_000 },
  { name: "timeout Infinity, free lock", options: { timeout: Infinity }, ttlMs: 30_000 },
  {
    name: 'retryDelay "5ms" with maxRetryDelay "1s"',
    options: { timeout: "1s", retryDelay: "5ms", maxRetryDelay: "1s" },
    ttlMs: 30_000,
  },
  {
    name: "retryDelay 1000 alone (raises the default maxRetryDelay)",
    options: { timeout: 100, retryDelay: 1000 },
    ttlMs: 30_000,
  },
  // maxRetryDelay alone lowers the default retryDelay to match.
  { name: "maxRetryDelay 5 alone", options: { timeout: 100, maxRetryDelay: 5 }, ttlMs: 30_000 },
  { name: "fairnessWindow 0", options: { timeout: "1s", fairnessWindow: 0 }, ttlMs: 30_000 },
  { name: "jitter 0", options: { timeout: "1s", jitter: 0 }, ttlMs: 30_000 },
  { name: "jitter 1", options: { timeout: "1s", jitter: 1 }, ttlMs: 30_000 },
  { name: "retries 0", options: { retries: 0 }, ttlMs: 30_000 },
  { name: "retries Infinity, free lock", options: { retries: Infinity }, ttlMs: 30_000 },
  {
    name: "throwOnFail false, errorMessage, subscriber false, signal, onLost",
    options: {
      throwOnFail: false,
      errorMessage: "busy",
      subscriber: false,
      signal: new AbortController().signal,
      onLost: noop,
    },
    ttlMs: 30_000,
  },
  { name: 'extend("5s")', options: { ttl: 1 }, ttlMs: 1000, extend: ["5s", 5000] },
  { name: "extend(2)", options: { ttl: "500ms" }, ttlMs: 500, extend: [2, 2000] },
  { name: 'extend("2h")', options: { ttl: 1 }, ttlMs: 1000, extend: ["2h", 7_200_000] },
  { name: "withLock, an emoji key", key: "🔒 withLock", via: "withLock", ttlMs: 30_000 },
  {
    name: 'withLock, ttl "10s", timeout "1s"',
    options: { ttl: "10s", timeout: "1s" },
    via: "withLock",
    ttlMs: 10_000,
  },
];

type Raw = (args: string[]) => Promise<unknown>;
/** Sends a raw command on `client` with its own method. */
function rawOf(client: RedisClient): Raw {
  const c = client as {
    call?: (...args: string[]) => Promise<unknown>;
    sendCommand?: (args: string[]) => Promise<unknown>;
  };
  return c.call ? (args) => c.call!(...args) : (args) => c.sendCommand!(args);
}

/**
 * Runs the SET it is given, with its arguments as they are, and reads the key's value and
 * PTTL back in the same atomic step: even a lease of 1 ms is still there to be read.
 */
const SET_AND_READ = "local set = redis.call('SET', KEYS[1], unpack(ARGV)) " +
  "return {set, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}";

/**
 * `client` behind its own method, with baton's SET of `key` sent as {@linkcode SET_AND_READ}
 * (baton gets the SET's own reply); every other command goes as it is.
 */
function witness(client: RedisClient, key: string) {
  const raw = rawOf(client);
  let read: Promise<unknown[]> | undefined;
  const send: Raw = (args) => {
    if (args[0] !== "SET" || args[1] !== key || read) return raw(args);
    read = raw(["EVAL", SET_AND_READ, "1", key, ...args.slice(2)]) as Promise<unknown[]>;
    return read.then((reply) => reply[0]);
  };
  const wrapped = "call" in client
    ? { call: (...args: string[]) => send(args) }
    : { sendCommand: send };
  return {
    client: wrapped as RedisClient,
    async seen(): Promise<{ value: string | null; pttl: number }> {
      assert.ok(read, "no SET of the key was sent");
      const [, value, pttl] = await read;
      return { value: value === null ? null : String(value), pttl: Number(pttl) };
    },
  };
}

/**
 * Asserts a lease of `ttlMs`, read in the script that set it (Redis 7.0's clock still runs
 * there: a loaded machine may lose a few ms between the SET and the PTTL).
 */
function assertLease(pttl: number, ttlMs: number) {
  const least = Math.max(0, ttlMs - 100);
  assert.ok(pttl >= least && pttl <= ttlMs, `PTTL ${pttl}, expected ${least} to ${ttlMs}`);
}

for (const kind of [IOREDIS, MINIMAL] as ClientKind[]) {
  describe(`good input at the edges is accepted and really locks (${kind.name})`, () => {
    let server: RedisServer;
    let admin: RespClient;
    let client: RedisClient;
    before(async () => {
      ({ server, admin } = await startRedisWithAdmin());
      client = await kind.connect(server.url);
    });
    after(async () => {
      await kind.close(client);
      await stopRedisWithAdmin(server, admin);
    });

    GOOD.forEach((good, i) => {
      it(good.name, async () => {
        const key = good.key ?? `bad-input:good:${i}`;
        // A lease of a few ms is given up (RedisUnavailableError) when Redis answers after
        // it ended, as on a loaded machine: such a lease is tried again, up to 20 times.
        for (let tries = good.ttlMs < 10 ? 20 : 1; tries > 0; tries--) {
          await admin.sendCommand(["DEL", key]);
          try {
            await holds(good, key);
            return;
          } catch (error) {
            if (tries === 1 || !(error instanceof RedisUnavailableError)) throw error;
          }
        }
      });
    });

    /** Takes the lock as `good` says, proves it held, and releases it. */
    async function holds(good: Good, key: string): Promise<void> {
      const w = witness(client, key);
      let token: string | undefined;
      if (good.via === "withLock") {
        await withLock(w.client, key, ({ lock }) => {
          token = lock.token;
        }, good.options);
      } else {
        const lock = await acquireLock(w.client, key, good.options);
        assert.ok(lock, "no lock");
        token = lock.token;
        if (good.ttlMs >= 1000) {
          assert.equal(
            await acquireLock(client, key, { throwOnFail: false }),
            null,
            "another owner took the lock",
          );
        }
        if (good.extend) {
          const [ttl, ms] = good.extend;
          assert.equal(await lock.extend(ttl), true);
          assert.equal(await admin.sendCommand(["GET", key]), token);
          const pttl = Number(await admin.sendCommand(["PTTL", key]));
          assert.ok(pttl > ms - 1000 && pttl <= ms, `PTTL after extend ${pttl}, expected ${ms}`);
        }
        const released = await lock.release();
        if (good.ttlMs >= 1000) assert.equal(released, true);
      }
      const { value, pttl } = await w.seen();
      assert.equal(value, token, "the key does not hold the lock's token");
      assertLease(pttl, good.ttlMs);
      assert.equal(await admin.sendCommand(["EXISTS", key]), 0, "the lock was not released");
    }
  });
}
