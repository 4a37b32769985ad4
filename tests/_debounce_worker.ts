// One instance of a service, for the multi-process debounce tests: run by Deno or Bun with a
// JSON config as its argument. It connects, prints {"type":"ready"}, waits for "go" on stdin,
// then makes its calls at their offsets (ms after "go") and prints each call's outcome and
// each execution of the callback as one JSON line. On "block <path>" it blocks its event
// loop (a busy loop, as a long synchronous task or a stop-the-world pause would) until the
// file <path> exists. On "call <JSON array>" it makes one more call with those arguments
// (call number -1). When stdin ends it aborts, closes its client and exits.
import { existsSync } from "node:fs";
import process from "node:process";
import { createInterface } from "node:readline";
import { debounce } from "../mod.ts";
import { BUN_CLIENT, CLIENTS } from "./_clients.ts";

/** What the test tells a worker to do. */
export interface WorkerConfig {
  /** Printed with each execution, to tell who ran. */
  name: string;
  url: string;
  key: string;
  /** The name of a client kind from CLIENTS. */
  client: string;
  wait: number;
  takeoverAfter: number;
  calls: { at: number; args: unknown[] }[];
  /** False: debounce without `onError`. By default errors are printed as "error" events. */
  onError?: false;
  /** The callback throws `new Error("<name> failed")` when its first argument is this. */
  throwOn?: string;
}

/** One line a worker prints. */
export type WorkerEvent =
  | { type: "ready" }
  | { type: "result"; name: string; call: number; result: unknown }
  | { type: "ran"; name: string; args: unknown[] }
  | { type: "error"; name: string; message: string; cause?: string };

const config = JSON.parse(process.argv[2]!) as WorkerConfig;
const print = (event: WorkerEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);

const kind = [...CLIENTS, BUN_CLIENT].find((k) => k.name === config.client);
if (!kind) throw new Error(`unknown client ${config.client}`);
const redis = await kind.connect(config.url);
const controller = new AbortController();
const call = debounce(redis, config.key, (...args: unknown[]) => {
  print({ type: "ran", name: config.name, args });
  if (config.throwOn !== undefined && args[0] === config.throwOn) {
    throw new Error(`${config.name} failed`);
  }
  return config.name;
}, {
  wait: config.wait,
  takeoverAfter: config.takeoverAfter,
  signal: controller.signal,
  ...config.onError === false ? {} : {
    onError: (error: unknown) =>
      print({ type: "error", name: config.name, message: String(error) }),
  },
});

const callAndPrint = (args: unknown[], i: number) =>
  call(...args).then(
    (result) => print({ type: "result", name: config.name, call: i, result }),
    (error) =>
      print({
        type: "error",
        name: config.name,
        message: String(error),
        ...(error as Error)?.cause === undefined ? {} : { cause: String((error as Error).cause) },
      }),
  );

const timers: ReturnType<typeof setTimeout>[] = [];
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.startsWith("block ")) {
    const path = line.slice("block ".length);
    const giveUpAt = performance.now() + 30_000;
    while (!existsSync(path) && performance.now() < giveUpAt) {
      // Busy: no timer, no I/O callback and no promise continuation runs meanwhile.
    }
    return;
  }
  if (line.startsWith("call ")) {
    callAndPrint(JSON.parse(line.slice("call ".length)), -1);
    return;
  }
  if (line !== "go") return;
  config.calls.forEach(({ at, args }, i) => {
    timers.push(setTimeout(() => callAndPrint(args, i), at));
  });
});
lines.once("close", async () => {
  for (const timer of timers) clearTimeout(timer);
  controller.abort();
  await kind.close(redis);
  process.exit(0);
});
print({ type: "ready" });
