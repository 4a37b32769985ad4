// One subscriber connection per client, shared by all of that client's waiters (and
// debounced calls): opened (by duplicating the client) when the first one listens,
// reference-counted, and closed when the last one has left and no other came within
// _SUBSCRIBER_IDLE_MS. A subscriber the user passed is used as it is and never closed.
// Each connection has a channel of its own, on which a release tells one lock waiter
// of this client its news, so that no other process wakes.
//
// On Redis Cluster a PUBLISH goes to every node of the cluster. Where the client can
// subscribe to sharded channels (node-redis' cluster, ioredis' Cluster), news goes by
// sharded pub/sub instead, and stays on the shard that owns the lock: the connection's
// channel is one per hash slot it waits in, `<the lock key's tag>:baton:news:<uuid>`, and
// a waiter's address is that channel after "s:", which the scripts SPUBLISH to. node-redis'
// cluster subscribes on connections of its own, so it subscribes itself rather than a
// duplicate; ioredis' Cluster is duplicated with `shardedSubscribers: true`.
import { _isNodeRedisCluster } from "./_client.ts";
import type { RedisClient } from "./types.ts";
import { _unref } from "./_wait.ts";

/** How long a subscriber connection stays open after its last waiter left, in ms. */
export const _SUBSCRIBER_IDLE_MS = 250;

/**
 * What starts a sharded channel's name in a hub, and a news address that the scripts
 * SPUBLISH to: "s:" and the channel.
 */
export const _SHARDED = "s:";

type OnMessage = (channel: string, message: string) => void;

/** A connection in subscriber mode, whatever the client. Sharded channels start with "s:". */
interface _PubSub {
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  /** Whether it is the hub's own (it closes it), else its channels are unsubscribed. */
  owned: boolean;
  close(): void;
}

type Fn = (...args: unknown[]) => unknown;
type Client = Record<string, Fn | undefined>;

/** Whether `client` is ioredis' (or iovalkey's) Cluster. */
function isIoredisCluster(client: Client): boolean {
  return (client as Record<string, unknown>).isCluster === true &&
    typeof client.call === "function";
}

/**
 * Whether the news of `client`'s waiters goes by sharded pub/sub: node-redis' cluster, and
 * an ioredis Cluster that can subscribe to sharded channels on every node (one that has the
 * `shardedSubscribers` option, as ioredis 5.11 and 6 have; when `given`, only when made
 * with it on). An older one, and iovalkey's Cluster, cannot: their news is classic.
 */
function shardsNews(client: Client, given: boolean): boolean {
  if (_isNodeRedisCluster(client)) return typeof client.sSubscribe === "function";
  if (!isIoredisCluster(client)) return false;
  const sharded = (client as { options?: { shardedSubscribers?: unknown } }).options
    ?.shardedSubscribers;
  return given ? sharded === true : typeof sharded === "boolean";
}

/** Whether `client` can open a subscriber connection of its own (it has duplicate()). */
export function _canSubscribe(client: unknown): boolean {
  const c = client as Client;
  return typeof c?.duplicate === "function" &&
    (typeof c.call === "function" ? typeof c.on === "function" : typeof c.subscribe === "function");
}

/**
 * Subscribes on `sub` itself (ioredis, node-redis or Bun shape), to channels and to sharded
 * channels ("s:" and the name); `owned` closes it at the end.
 */
function pubSubOf(sub: Client, onMessage: OnMessage, owned: boolean): _PubSub {
  const shard = (channel: string) => channel.slice(_SHARDED.length);
  if (typeof sub.call === "function") {
    // ioredis: messages are events; "error" must have a listener or it is thrown.
    const onError = () => {};
    const onShardMessage = (channel: string, message: string) =>
      onMessage(_SHARDED + channel, message);
    sub.on!("message", onMessage);
    sub.on!("smessage", onShardMessage);
    sub.on!("error", onError);
    return {
      subscribe: (channel) =>
        (channel.startsWith(_SHARDED)
          ? sub.ssubscribe!(shard(channel))
          : sub.subscribe!(channel)) as Promise<unknown>,
      unsubscribe: (channel) =>
        (channel.startsWith(_SHARDED)
          ? sub.sunsubscribe!(shard(channel))
          : sub.unsubscribe!(channel)) as Promise<unknown>,
      owned,
      close() {
        sub.off?.("message", onMessage);
        sub.off?.("smessage", onShardMessage);
        sub.off?.("error", onError);
        if (owned) sub.disconnect!();
      },
    };
  }
  // node-redis and Bun: a listener per channel, called with (message, channel).
  const listener = (message: unknown, channel: unknown) =>
    onMessage(String(channel), String(message));
  const shardListener = (message: unknown, channel: unknown) =>
    onMessage(_SHARDED + String(channel), String(message));
  return {
    subscribe: (channel) =>
      (channel.startsWith(_SHARDED)
        ? sub.sSubscribe!(shard(channel), shardListener)
        : sub.subscribe!(channel, listener)) as Promise<unknown>,
    unsubscribe: (channel) =>
      (channel.startsWith(_SHARDED)
        ? sub.sUnsubscribe!(shard(channel), shardListener)
        : sub.unsubscribe!(channel, listener)) as Promise<unknown>,
    owned,
    close() {
      if (!owned) return;
      if (typeof sub.destroy === "function") sub.destroy(); // node-redis 5+
      else if (typeof sub.disconnect === "function") sub.disconnect(); // node-redis 4
      else sub.close?.(); // Bun
    },
  };
}

/** Whether a sharded subscription failed as the server refuses the command itself. */
function refusesSharded(error: unknown): boolean {
  return error instanceof Error && /unknown command|NOPERM/i.test(error.message);
}

async function open(client: Client, onMessage: OnMessage): Promise<_PubSub> {
  // node-redis' cluster subscribes on connections of its own, which it closes when their
  // last channel is unsubscribed: it need not be duplicated.
  if (_isNodeRedisCluster(client)) return pubSubOf(client, onMessage, false);
  if (isIoredisCluster(client) && shardsNews(client, false)) {
    // One sharded subscriber connection per node, made when a channel of its slots is.
    const dup = client.duplicate!([], { shardedSubscribers: true }) as Client;
    // A node that gives a slot away unsubscribes its sharded channels. The duplicate
    // sends no command of its own, so it would not learn of the move: it learns when
    // the client does, and subscribes them again at the slot's new node.
    const refresh = () => dup.refreshSlotsCache?.();
    client.on!("refresh", refresh);
    const pubSub = pubSubOf(dup, onMessage, true);
    return {
      ...pubSub,
      close() {
        client.off?.("refresh", refresh);
        pubSub.close();
      },
    };
  }
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

/** How many subscribed channels without a listener a connection keeps before dropping them. */
const MAX_IDLE_CHANNELS = 64;

/** A registration on a channel. */
export interface _Listening {
  /**
   * Settles once the channel is subscribed: `true` when this call had to subscribe it
   * (messages sent before then were missed), `false` when it already was. Rejects when
   * no subscription could be made (the waiter then polls).
   */
  ready: Promise<boolean>;
  /** Stops listening. */
  stop(): void;
}

/**
 * A waiter's registration for its own news, on its connection's channel. With sharded news,
 * `ready` settles once the connection is open (`true` when this call opened it), and each
 * channel is subscribed by {@linkcode _Inbox.addressIn}.
 */
export interface _Inbox extends _Listening {
  /**
   * The address to publish this waiter's news to: the connection's channel, or, when its
   * news is sharded, just "s:" (see {@linkcode _Inbox.addressIn}).
   */
  channel: string;
  /**
   * The address of this waiter for a lock whose keys carry hash tag `base` (`{tag}`, or a
   * key with a hash tag), with sharded news: "s:" and the connection's channel in that
   * hash slot, once it is subscribed; the connection's own channel where the server
   * refuses sharded pub/sub; "" when no subscription can be made, or the inbox stopped
   * (the waiter polls).
   */
  addressIn(base: string): Promise<string>;
}

const READY: Promise<boolean> = Promise.resolve(false);

/**
 * The shared subscriber of one client. Besides the channels listened on by name, it
 * has a channel of its own, on which a release tells one waiter of this client its
 * news: messages are a kind character and the waiter's token. With sharded news, that
 * channel is one per hash slot its waiters wait in.
 */
class Hub {
  #source: Client;
  #given: boolean;
  /** Whether its news goes by sharded pub/sub. */
  #sharded: boolean;
  #conn: Promise<_PubSub> | undefined;
  /** Channels subscribed on the current connection: "done", or the subscription under way. */
  #subscribed = new Map<string, Promise<unknown> | "done">();
  #listeners = new Map<string, Set<(message: string) => void>>();
  readonly #id = crypto.randomUUID();
  readonly #own = `baton:waiters:${this.#id}`;
  /** How the sharded news channels end: "<tag>" and this, in the tag's hash slot. */
  readonly #newsSuffix = `:baton:news:${this.#id}`;
  /** Sharded news channels, by how many inboxes hold them. */
  #newsRefs = new Map<string, number>();
  #inboxes = new Map<string, (kind: string, extra: string) => void>();
  #refs = 0;
  /** When the last user left (performance.now()), and the timer that closes after it. */
  #idleSince = 0;
  #idle: ReturnType<typeof setTimeout> | undefined;

  constructor(source: Client, given: boolean) {
    this.#source = source;
    this.#given = given;
    this.#sharded = shardsNews(source, given);
  }

  /** Whether a subscriber connection is open (or opening). */
  get open(): boolean {
    return this.#conn !== undefined;
  }

  #dispatch = (channel: string, message: string) => {
    if (channel === this.#own || channel.endsWith(this.#newsSuffix)) {
      // A kind character, the waiter's token, and "|" with more for it, if any.
      const bar = message.indexOf("|", 1);
      const token = bar < 0 ? message.slice(1) : message.slice(1, bar);
      this.#inboxes.get(token)?.(message[0]!, bar < 0 ? "" : message.slice(bar + 1));
      return;
    }
    for (const listener of this.#listeners.get(channel) ?? []) listener(message);
  };

  /** Closes an owned connection; hands a given one back unsubscribed. */
  #close(): void {
    const conn = this.#conn;
    const channels = [...this.#subscribed.keys()];
    this.#conn = undefined;
    this.#subscribed.clear();
    conn?.then(async (c) => {
      if (!c.owned) await Promise.allSettled(channels.map((ch) => c.unsubscribe(ch)));
      c.close();
    }, () => {});
  }

  /**
   * Counts a user in, opens the connection if need be, and subscribes `channel` (when
   * given). Resolves true when this call subscribes it (or, without a channel, opens the
   * connection): news sent before then was missed.
   */
  #enter(channel: string | undefined): Promise<boolean> {
    this.#refs++;
    const opening = this.#conn === undefined;
    this.#conn ??= this.#given
      ? Promise.resolve(pubSubOf(this.#source, this.#dispatch, false))
      : open(this.#source, this.#dispatch);
    return channel === undefined ? this.#conn.then(() => opening) : this.#subscribe(channel);
  }

  /** Subscribes `channel` on the connection; true when this call did. */
  #subscribe(channel: string): Promise<boolean> {
    const entry = this.#subscribed.get(channel);
    if (entry === "done") return READY;
    if (entry) return entry.then(() => false);
    const under = this.#conn!.then((c) => c.subscribe(channel));
    this.#subscribed.set(channel, under);
    under.then(() => {
      if (this.#subscribed.get(channel) === under) this.#subscribed.set(channel, "done");
    }, () => {
      // A failed subscription is forgotten, so that the next user tries again.
      if (this.#subscribed.get(channel) === under) this.#subscribed.delete(channel);
    });
    return under.then(() => true);
  }

  /** Counts a user out; the connection closes _SUBSCRIBER_IDLE_MS after the last one. */
  #leave(): void {
    this.#dropIdleChannels();
    if (--this.#refs > 0) return;
    // Under steady contention waiters come and go all the time: keep the connection
    // and its channels for a short idle period rather than resubscribing, or
    // reconnecting, for every wait; and arm one timer per period, not one per wait.
    this.#idleSince = performance.now();
    this.#idle ??= this.#armIdle(_SUBSCRIBER_IDLE_MS);
  }

  #armIdle(ms: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      this.#idle = undefined;
      if (this.#refs > 0) return;
      const left = this.#idleSince + _SUBSCRIBER_IDLE_MS - performance.now();
      if (left > 1) this.#idle = this.#armIdle(left);
      else this.#close();
    }, ms);
    _unref(timer);
    return timer;
  }

  /** Calls `listener` with each message on `channel` until `stop()`. */
  listen(channel: string, listener: (message: string) => void): _Listening {
    let set = this.#listeners.get(channel);
    if (!set) this.#listeners.set(channel, set = new Set());
    set.add(listener);
    const ready = this.#enter(channel);
    let stopped = false;
    return {
      ready,
      stop: () => {
        if (stopped) return;
        stopped = true;
        set.delete(listener);
        if (set.size === 0) this.#listeners.delete(channel);
        this.#leave();
      },
    };
  }

  /**
   * Calls `onNews` with the kind of each message for waiter `token`, and what follows
   * its token after a "|", until `stop()`.
   */
  inbox(token: string, onNews: (kind: string, extra: string) => void): _Inbox {
    this.#inboxes.set(token, onNews);
    // Sharded news channels are subscribed as the waiter asks for them (addressIn).
    const ready = this.#enter(this.#sharded ? undefined : this.#own);
    /** The sharded news channels this inbox holds. */
    const held = new Set<string>();
    let stopped = false;
    return {
      channel: this.#sharded ? _SHARDED : this.#own,
      ready,
      addressIn: async (base) => {
        if (stopped) return "";
        if (this.#sharded) {
          const channel = `${_SHARDED}${base}${this.#newsSuffix}`;
          if (!held.has(channel)) {
            held.add(channel);
            this.#newsRefs.set(channel, (this.#newsRefs.get(channel) ?? 0) + 1);
          }
          try {
            await this.#subscribe(channel);
            return stopped ? "" : channel;
          } catch (error) {
            if (!refusesSharded(error)) return "";
            // A server that has no sharded pub/sub (before Redis 7), or a user that may
            // not use it: this connection's news goes by classic pub/sub from now on.
            this.#sharded = false;
          }
        }
        try {
          await this.#subscribe(this.#own);
        } catch {
          return "";
        }
        return stopped ? "" : this.#own;
      },
      stop: () => {
        if (stopped) return;
        stopped = true;
        this.#inboxes.delete(token);
        for (const channel of held) {
          const refs = this.#newsRefs.get(channel)! - 1;
          if (refs > 0) this.#newsRefs.set(channel, refs);
          else this.#newsRefs.delete(channel);
        }
        this.#leave();
      },
    };
  }

  /** Unsubscribes channels nobody listens on, once there are many of them. */
  #dropIdleChannels(): void {
    if (this.#subscribed.size <= MAX_IDLE_CHANNELS + 1 || !this.#conn) return;
    const idle = [...this.#subscribed.keys()].filter((ch) =>
      ch !== this.#own && !this.#listeners.has(ch) && !this.#newsRefs.has(ch)
    );
    if (idle.length <= MAX_IDLE_CHANNELS) return;
    for (const channel of idle) {
      this.#subscribed.delete(channel);
      this.#conn.then((c) => c.unsubscribe(channel)).catch(() => {});
    }
  }
}

const hubs = new WeakMap<object, Hub>();

function hubOf(client: RedisClient, given: RedisClient | undefined): Hub {
  const source = (given ?? client) as unknown as Client;
  let hub = hubs.get(source);
  if (!hub) hubs.set(source, hub = new Hub(source, given !== undefined));
  return hub;
}

/**
 * Listens on `channel` through the shared subscriber of `client` (or through `given`,
 * a subscriber connection the user passed), opening it if need be.
 */
export function _listen(
  client: RedisClient,
  given: RedisClient | undefined,
  channel: string,
  listener: (message: string) => void,
): _Listening {
  return hubOf(client, given).listen(channel, listener);
}

/**
 * Listens for the news of waiter `token` (its kind: "+" a release handed it the lock, "!" it
 * is first in line now) on the own channel of the shared subscriber of `client` (or of `given`).
 */
export function _inbox(
  client: RedisClient,
  given: RedisClient | undefined,
  token: string,
  onNews: (kind: string, extra: string) => void,
): _Inbox {
  return hubOf(client, given).inbox(token, onNews);
}

/** Whether the shared subscriber of `client` (or `given`) is open, so listening is cheap. */
export function _subscriberOpen(client: RedisClient, given: RedisClient | undefined): boolean {
  return hubs.get((given ?? client) as unknown as object)?.open ?? false;
}
