// debounce's store on one Redis server: its Lua scripts, with every reply checked and
// decoded in one place, and announcements on the key's channel through the client's
// shared subscriber.
import type { _Reply, _Send } from "./_client.ts";
import {
  _DEBOUNCE_CALL,
  _DEBOUNCE_CANCEL,
  _DEBOUNCE_CLAIM,
  _DEBOUNCE_FLUSH,
  _DEBOUNCE_LEAD,
  _DEBOUNCE_TAKEOVER,
} from "./_debounce_scripts.ts";
import { _evalScript } from "./_scripts.ts";
import type { _Claim, _ClaimedBurst, _DebounceStore } from "./_store.ts";
import { _canSubscribe, _listen } from "./_subscriber.ts";
import { RedisReplyError } from "./errors.ts";
import type { RedisClient } from "./types.ts";

const isInt = (reply: _Reply | undefined): reply is number =>
  typeof reply === "number" && Number.isInteger(reply);

/** A reply that is not what the script sends: an error naming the script. */
function unexpected(script: string, reply: _Reply, expected: string): RedisReplyError {
  return new RedisReplyError(`EVALSHA debounce-${script}`, reply, expected);
}

/** The reply of 0 or 1. */
function decodeFlag(script: string, reply: _Reply): boolean {
  if (reply === 0 || reply === 1) return reply === 1;
  throw unexpected(script, reply, "0 or 1");
}

/** {'run', token, args}: a claimed burst; {'idle'}: none. */
function decodeClaimed(script: string, reply: _Reply): _ClaimedBurst | undefined {
  if (Array.isArray(reply)) {
    const [what, token, argsJson] = reply;
    if (what === "idle" && reply.length === 1) return undefined;
    if (what === "run" && typeof token === "string" && typeof argsJson === "string") {
      return { token, argsJson };
    }
  }
  throw unexpected(script, reply, "{'run', token, args} or {'idle'}");
}

function decodeClaim(reply: _Reply): _Claim {
  if (Array.isArray(reply)) {
    const [verdict, a, b] = reply;
    if (verdict === "run" && reply.length === 1) return { verdict };
    if (verdict === "wait" && isInt(a)) return { verdict, inMs: a };
    if (verdict === "superseded" && reply.length === 1) {
      return { verdict, lastToken: undefined, dueInMs: 0 };
    }
    if (verdict === "superseded" && typeof a === "string" && isInt(b)) {
      return { verdict, lastToken: a, dueInMs: b };
    }
    if (
      (verdict === "cancelled" || verdict === "ran-elsewhere" || verdict === "expired") &&
      reply.length === 1
    ) return { verdict };
  }
  throw unexpected("claim", reply, "a verdict: run, wait, superseded, cancelled, ...");
}

/** The channel on which a key's calls are announced. */
const channelOf = (key: string) => `baton:debounce:${key}`;

/** debounce's store through `send`, announcing on the key's channel. */
export function _redisDebounceOf(client: RedisClient, send: _Send): _DebounceStore {
  return {
    async lead(key, token, waitMs) {
      const reply = await _evalScript(send, _DEBOUNCE_LEAD, [key], [token, String(waitMs)]);
      return decodeFlag("lead", reply);
    },
    async record(key, token, argsJson, waitMs, ttlMs) {
      const reply = await _evalScript(send, _DEBOUNCE_CALL, [key], [
        token,
        argsJson,
        String(waitMs),
        String(ttlMs),
        channelOf(key),
      ]);
      if (Array.isArray(reply) && typeof reply[0] === "string" && isInt(reply[1])) {
        return { burst: reply[0], seq: reply[1] };
      }
      throw unexpected("call", reply, "{burst, seq}");
    },
    async claim(key, token) {
      return decodeClaim(await _evalScript(send, _DEBOUNCE_CLAIM, [key], [token]));
    },
    async takeover(key, takeoverMs, instance) {
      const reply = await _evalScript(send, _DEBOUNCE_TAKEOVER, [key], [
        String(takeoverMs),
        instance,
      ]);
      if (Array.isArray(reply) && reply[0] === "wait" && isInt(reply[1])) return { inMs: reply[1] };
      return decodeClaimed("takeover", reply);
    },
    async flush(key, instance, cleared) {
      const reply = await _evalScript(send, _DEBOUNCE_FLUSH, [key], [instance, String(cleared)]);
      return decodeClaimed("flush", reply);
    },
    async cancel(key, instance, upTo) {
      const reply = await _evalScript(send, _DEBOUNCE_CANCEL, [key], [instance, String(upTo)]);
      return decodeFlag("cancel", reply);
    },
    announcements(key, subscriber, onAnnouncement) {
      if (subscriber === false || (subscriber === undefined && !_canSubscribe(client))) {
        return undefined;
      }
      const given = subscriber as RedisClient | undefined;
      return _listen(client, given, channelOf(key), (message) => {
        const [seq, token, burst] = message.split(" ");
        if (token && burst && /^\d+$/.test(seq ?? "")) {
          onAnnouncement({ seq: Number(seq), token, burst });
        }
      });
    },
  };
}
