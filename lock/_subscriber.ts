// One subscriber connection per client, shared by all of that client's waiters:
// opened (by duplicating the client) when the first waiter listens, reference-counted,
// and closed when the last one has left and no other came within _SUBSCRIBER_IDLE_MS. A subscriber the user passed is used as it is
// and never closed.
import type { RedisClient } from "./types.ts";
import { _unref } from "./_wait.ts";

/** How long a subscriber connection stays open after its last waiter left, in ms. */
export const _SUBSCRIBER_IDLE_MS = 250;

type OnMessage = (channel: string, message: string) => void;

/** A connection in subscriber mode, whatever the client. */
interface _PubSub {
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  close(): void;
}

type Fn = (...args: unknown[]) => unknown;
type Client = Record<string, Fn | undefined>;

/** Whether `client` can open a subscriber connection of its own (it has duplicate()). */
export function _canSubscribe(client: unknown): boolean {
  const c = client as Client;
  return typeof c?.duplicate === "function" &&
    (typeof c.call === "function" ? typeof c.on === "function" : typeof c.subscribe === "function");
}

/** Subscribes on `sub` itself (ioredis, node-redis or Bun shape); `owned` closes it at the end. */
function pubSubOf(sub: Client, onMessage: OnMessage, owned: boolean): _PubSub {
  if (typeof sub.call === "function") {
    // ioredis: messages are events; "error" must have a listener or it is thrown.
    const onError = () => {};
    sub.on!("message", onMessage);
    sub.on!("error", onError);
    return {
      subscribe: (channel) => sub.subscribe!(channel) as Promise<unknown>,
      unsubscribe: (channel) => sub.unsubscribe!(channel) as Promise<unknown>,
      close() {
        sub.off?.("message", onMessage);
        sub.off?.("error", onError);
        if (owned) sub.disconnect!();
      },
    };
  }
  // node-redis and Bun: a listener per channel, called with (message, channel).
  const listener = (message: unknown, channel: unknown) =>
    onMessage(String(channel), String(message));
  return {
    subscribe: (channel) => sub.subscribe!(channel, listener) as Promise<unknown>,
    unsubscribe: (channel) => sub.unsubscribe!(channel, listener) as Promise<unknown>,
    close() {
      if (!owned) return;
      if (typeof sub.destroy === "function") sub.destroy(); // node-redis 5+
      else if (typeof sub.disconnect === "function") sub.disconnect(); // node-redis 4
      else sub.close?.(); // Bun
    },
  };
}

async function open(client: Client, onMessage: OnMessage): Promise<_PubSub> {
  if (typeof client.call === "function") {
    return pubSubOf(client.duplicate!() as Client, onMessage, true);
  }
  const dup = await client.duplicate!() as Client; // Bun resolves to a connected client
  if (typeof client.sendCommand === "function") {
    // node-redis: a duplicate starts disconnected, and errors need a listener.
    (dup.on as Fn | undefined)?.call(dup, "error", () => {});
    try {
      await dup.connect!();
    } catch (error) {
      (dup.destroy ?? dup.disconnect)?.call(dup);
      throw error;
    }
  }
  return pubSubOf(dup, onMessage, true);
}

/** The shared subscriber of one client. */
class Hub {
  #source: Client;
  #given: boolean;
  #conn: Promise<_PubSub> | undefined;
  #listeners = new Map<string, Set<(message: string) => void>>();
  #refs = 0;
  #idle: ReturnType<typeof setTimeout> | undefined;

  constructor(source: Client, given: boolean) {
    this.#source = source;
    this.#given = given;
  }

  #dispatch = (channel: string, message: string) => {
    for (const listener of this.#listeners.get(channel) ?? []) listener(message);
  };

  /** Closes an owned connection; hands a given one back unsubscribed. */
  #close(): void {
    const conn = this.#conn;
    this.#conn = undefined;
    const channels = [...this.#listeners.keys()];
    this.#listeners.clear();
    conn?.then(async (c) => {
      if (this.#given) await Promise.allSettled(channels.map((ch) => c.unsubscribe(ch)));
      c.close();
    }, () => {});
  }

  /**
   * Calls `listener` with each message on `channel` until the returned function is
   * called. Resolves once the subscription is active.
   */
  async listen(channel: string, listener: (message: string) => void): Promise<() => void> {
    this.#refs++;
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      const set = this.#listeners.get(channel);
      set?.delete(listener);
      const conn = this.#conn!;
      if (set?.size === 0) {
        this.#listeners.delete(channel);
        conn.then((c) => c.unsubscribe(channel)).catch(() => {});
      }
      if (--this.#refs === 0) {
        // Under steady contention waiters come and go all the time: keep the connection
        // for a short idle period rather than reconnecting for every wait.
        this.#idle = setTimeout(() => this.#close(), _SUBSCRIBER_IDLE_MS);
        _unref(this.#idle);
      }
    };
    clearTimeout(this.#idle);
    try {
      this.#conn ??= this.#given
        ? Promise.resolve(pubSubOf(this.#source, this.#dispatch, false))
        : open(this.#source, this.#dispatch);
      const conn = await this.#conn;
      let set = this.#listeners.get(channel);
      const first = !set;
      if (!set) this.#listeners.set(channel, set = new Set());
      set.add(listener);
      if (first) await conn.subscribe(channel);
      return leave;
    } catch (error) {
      leave();
      throw error;
    }
  }
}

const hubs = new WeakMap<object, Hub>();

/**
 * Listens on `channel` through the shared subscriber of `client` (or through `given`,
 * a subscriber connection the user passed). Resolves to the function that stops
 * listening; rejects when no subscription could be made (the caller then polls).
 */
export function _listen(
  client: RedisClient,
  given: RedisClient | undefined,
  channel: string,
  listener: (message: string) => void,
): Promise<() => void> {
  const source = (given ?? client) as unknown as Client;
  let hub = hubs.get(source);
  if (!hub) hubs.set(source, hub = new Hub(source, given !== undefined));
  return hub.listen(channel, listener);
}
