// The set-up most test files share: a throwaway Redis with an admin connection (and the
// leak check when it stops), and a pair of clients of one kind.
import type { RedisClient } from "../mod.ts";
import type { ClientKind } from "./_clients.ts";
import { assertNoConnections, assertNoLeaks } from "./_leaks.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { RespClient } from "./_resp.ts";

/** A throwaway Redis server (or REDIS_URL's) and an admin connection to it. */
export async function startRedisWithAdmin(): Promise<{ server: RedisServer; admin: RespClient }> {
  const server = await startRedis();
  return { server, admin: await RespClient.connect(server.url) };
}

/**
 * Checks the server sees no connection but the admin's, closes the admin connection,
 * stops the server, then checks nothing was left running in this process.
 */
export async function stopRedisWithAdmin(server: RedisServer, admin: RespClient): Promise<void> {
  try {
    await assertNoConnections(admin);
  } finally {
    await admin.close();
    await server.stop();
  }
  await assertNoLeaks();
}

/** Two connected clients of `kind`, as two instances of a service would have. */
export async function connectPair(
  kind: ClientKind,
  url: string,
): Promise<[RedisClient, RedisClient]> {
  return [await kind.connect(url), await kind.connect(url)];
}

/** Closes a pair from {@linkcode connectPair}. */
export async function closePair(kind: ClientKind, a: RedisClient, b: RedisClient): Promise<void> {
  await kind.close(a);
  await kind.close(b);
}

/** Resolves with `signal`'s reason once it aborts, or with undefined after `ms`. */
export function aborted(signal: AbortSignal, ms: number): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(undefined);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
