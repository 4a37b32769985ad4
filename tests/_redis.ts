// Throwaway redis-server processes for tests, demos and benches: started on a free
// loopback port with no persistence, stopped afterwards. REDIS_URL overrides the start.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, Socket } from "node:net";
import { fileURLToPath } from "node:url";

/** A running Redis server. */
export interface RedisServer {
  /** `redis://127.0.0.1:PORT`. */
  url: string;
  host: string;
  port: number;
  /** Stops the server if this process started it (REDIS_URL servers are left alone). */
  stop(): Promise<void>;
}

function env(name: string): string | undefined {
  return (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[
    name
  ];
}

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once a server answers PING on host:port, or rejects after `timeoutMs`. */
export async function waitForRedis(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      const done = (value: boolean) => {
        socket.destroy();
        resolve(value);
      };
      socket.once("error", () => done(false));
      socket.once("data", (data) => done(String(data).startsWith("+PONG")));
      socket.connect(port, host, () => socket.write("PING\r\n"));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on ${host}:${port} did not answer`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The servers a test can ask for by name: `redis7` is the `redis-server` on the PATH
 * (Debian bookworm's 7.0), the others are the wrappers `bash .ci/servers` leaves in
 * `.servers/bin/` (Debian trixie's Redis 8.0 and Valkey 8.1).
 */
export type ServerName = "redis7" | "redis8" | "valkey8";

/** The program that starts the server called `name`. */
export function serverBinary(name: ServerName): string {
  if (name === "redis7") return "redis-server";
  return fileURLToPath(new URL(`../.servers/bin/${name}-server`, import.meta.url));
}

/**
 * Starts a throwaway `redis-server` (or the binary in REDIS_SERVER) on a free loopback
 * port, without persistence, and waits until it answers. With `useEnv` (the default)
 * and REDIS_URL set, returns that server instead. With `server`, starts that one
 * (see {@linkcode ServerName}) whatever REDIS_URL and REDIS_SERVER say.
 */
export async function startRedis(
  options: { useEnv?: boolean; port?: number; args?: string[]; server?: ServerName } = {},
): Promise<RedisServer> {
  const fromEnv = env("REDIS_URL");
  if (fromEnv && options.useEnv !== false && options.server === undefined) {
    const url = new URL(fromEnv);
    return {
      url: fromEnv,
      host: url.hostname,
      port: Number(url.port || 6379),
      stop: () => Promise.resolve(),
    };
  }
  const host = "127.0.0.1";
  const port = options.port ?? await freePort();
  const bin = options.server ? serverBinary(options.server) : env("REDIS_SERVER") ?? "redis-server";
  const child: ChildProcess = spawn(bin, [
    "--port",
    String(port),
    "--bind",
    host,
    "--save",
    "",
    "--appendonly",
    "no",
    "--daemonize",
    "no",
    ...(options.args ?? []),
  ], { stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const failed = new Promise<never>((_, reject) =>
    child.once("error", (e) => reject(new Error(`cannot start ${bin}: ${e.message}`)))
  );
  try {
    await Promise.race([waitForRedis(host, port), failed]);
  } catch (error) {
    child.kill("SIGKILL");
    await exited;
    throw error;
  }
  return {
    url: `redis://${host}:${port}`,
    host,
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
