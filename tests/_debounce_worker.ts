// One instance of a service, for the multi-process debounce tests: run by Deno or Bun with a
// JSON config as its argument. It connects, prints {"type":"ready"}, waits for "go" on stdin,
// then makes its calls at their offsets (ms after "go") and prints each call's outcome and
// each execution of the callback as one JSON line. When stdin ends it aborts, closes its
// client and exits.
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
}

/** One line a worker prints. */
export type WorkerEvent =
  | { type: "ready" }
  | { type: "result"; name: string; call: number; result: unknown }
  | { type: "ran"; name: string; args: unknown[] }
  | { type: "error"; name: string; message: string };

const config = JSON.parse(process.argv[2]!) as WorkerConfig;
const print = (event: WorkerEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);

const kind = [...CLIENTS, BUN_CLIENT].find((k) => k.name === config.client);
if (!kind) throw new Error(`unknown client ${config.client}`);
const redis = await kind.connect(config.url);
const controller = new AbortController();
const call = debounce(redis, config.key, (...args: unknown[]) => {
  print({ type: "ran", name: config.name, args });
  return config.name;
}, {
  wait: config.wait,
  takeoverAfter: config.takeoverAfter,
  signal: controller.signal,
  onError: (error) => print({ type: "error", name: config.name, message: String(error) }),
});

const timers: ReturnType<typeof setTimeout>[] = [];
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line !== "go") return;
  config.calls.forEach(({ at, args }, i) => {
    timers.push(setTimeout(() => {
      call(...args).then(
        (result) => print({ type: "result", name: config.name, call: i, result }),
        (error) => print({ type: "error", name: config.name, message: String(error) }),
      );
    }, at));
  });
});
lines.once("close", async () => {
  for (const timer of timers) clearTimeout(timer);
  controller.abort();
  await kind.close(redis);
  process.exit(0);
});
print({ type: "ready" });
