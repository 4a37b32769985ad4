// Every store baton runs on, made and closed the same way, so that each behaviour is
// tested once per store and their semantics cannot drift apart: Redis through each kind
// of client (tests/_clients.ts), and a MemoryStore (no server).
import type { LockStore, RedisClient } from "../mod.ts";
import { MemoryStore } from "../lock/memory.ts";
import { type ClientKind, CLIENTS } from "./_clients.ts";

/** What a test passes where a Redis client goes: a client, or a MemoryStore. */
export type StoreClient = RedisClient | LockStore;

/** One store to run the behaviour tests on: how to connect a client to it and close it. */
export interface StoreKind {
  name: string;
  /** The kind of client, for a store on Redis; undefined for the memory store. */
  client: ClientKind | undefined;
  /**
   * Whether its waiters hear that the lock was released (news), rather than poll, with
   * the default `subscriber`.
   */
  news: boolean;
  /**
   * A client of the store: one connected to the Redis server at `url`, or, for memory,
   * the kind's one MemoryStore (its clients share it, as clients of one server share
   * its keys; `url` is not used).
   */
  connect(url: string): Promise<StoreClient>;
  close(client: StoreClient): Promise<void>;
}

/**
 * The client kinds whose waiters poll: baton subscribes on a duplicate() of the client,
 * which the raw client of tests/_resp.ts does not have, and an HTTP client cannot
 * subscribe at all.
 */
const POLLING = new Set(["raw sendCommand", "@upstash/redis"]);

/** A store on Redis through clients of `kind`. */
function redisStore(kind: ClientKind): StoreKind {
  return {
    name: kind.name,
    client: kind,
    news: !POLLING.has(kind.name),
    connect: (url) => kind.connect(url),
    close: (client) => kind.close(client as RedisClient),
  };
}

let memoryStore: MemoryStore | undefined;

/** The memory store: every client is the same MemoryStore, with the default clock. */
export const MEMORY: StoreKind = {
  name: "memory",
  client: undefined,
  news: true,
  connect: () => Promise.resolve(memoryStore ??= new MemoryStore()),
  close: () => Promise.resolve(),
};

/** The stores to test under this runtime: Redis through each client kind, and memory. */
export const STORES: StoreKind[] = [...CLIENTS.map(redisStore), MEMORY];

/** Two clients of `kind`, as two instances of a service would have. */
export async function connectPair(
  kind: StoreKind,
  url: string,
): Promise<[StoreClient, StoreClient]> {
  return [await kind.connect(url), await kind.connect(url)];
}

/** Closes a pair from {@linkcode connectPair}. */
export async function closePair(kind: StoreKind, a: StoreClient, b: StoreClient): Promise<void> {
  await kind.close(a);
  await kind.close(b);
}
