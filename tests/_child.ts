// Child processes of Deno or Bun running a test's worker script, which talks to the test in
// JSON lines on stdout. Used by the load and soak tests.
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { createInterface } from "node:readline";

const root = new URL("..", import.meta.url);

/** The runtimes a worker can run on, with the flags each needs. */
export const RUNTIMES = {
  deno: { bin: new URL("node_modules/.bin/deno", root).pathname, args: ["run", "-A"] },
  /** Deno with `globalThis.gc()`. */
  "deno-gc": {
    bin: new URL("node_modules/.bin/deno", root).pathname,
    args: ["run", "-A", "--v8-flags=--expose-gc"],
  },
  bun: { bin: new URL("node_modules/.bin/bun", root).pathname, args: ["run"] },
};

/** A running worker process and the JSON lines it printed so far. */
export interface Child<Event> {
  child: ChildProcess;
  events: Event[];
  /** Resolves once the process has exited, with its exit code (null when killed). */
  exited: Promise<number | null>;
}

/**
 * Starts `script` (a path next to this file) under `runtime` with `config` as its one
 * argument, as JSON. Its stderr goes to the test's; each stdout line that is JSON is
 * an event.
 */
export function startChild<Event>(
  runtime: keyof typeof RUNTIMES,
  script: string,
  config: unknown,
): Child<Event> {
  const { bin, args } = RUNTIMES[runtime];
  const path = new URL(script, import.meta.url).pathname;
  const child = spawn(bin, [...args, path, JSON.stringify(config)], {
    cwd: root.pathname,
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  });
  // A killed worker's stdin fails with EPIPE when written or ended; that is expected.
  child.stdin!.on("error", () => {});
  const events: Event[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    try {
      events.push(JSON.parse(line));
    } catch {
      // Not an event (a runtime's own output): ignore it.
    }
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("close", (code) => resolve(code))
  );
  return { child, events, exited };
}

/** Whether `child` is still running. */
export function running(child: Child<unknown>): boolean {
  return child.child.exitCode === null && child.child.signalCode === null;
}

/**
 * Resolves to the exit code of `child` once it has exited, or to "still running" when it
 * has not after `timeoutMs`.
 */
export async function exitWithin(
  child: Child<unknown>,
  timeoutMs: number,
): Promise<number | null | "still running"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"still running">((r) =>
    timer = setTimeout(r, timeoutMs, "still running")
  );
  try {
    return await Promise.race([child.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Ends `children`: closes their stdin, and kills by PID whichever is left after `graceMs`. */
export async function stopChildren(children: Child<unknown>[], graceMs = 3_000): Promise<void> {
  for (const c of children) c.child.stdin?.end();
  const killer = setTimeout(() => {
    for (const c of children) if (running(c)) c.child.kill("SIGKILL");
  }, graceMs);
  await Promise.all(children.map((c) => c.exited));
  clearTimeout(killer);
}

/** Resolves once `done()` is true, checking every 20 ms; rejects after `timeoutMs`. */
export async function until(
  done: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what = "condition",
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!await done()) {
    if (performance.now() > deadline) throw new Error(`${what} not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
