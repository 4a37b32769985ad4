// A minimal RESP2 client over node:net: the "anything that can send a raw command"
// case, with only sendCommand(). Also streams MONITOR for round-trip counts.
import { Socket } from "node:net";

type Reply = string | number | null | Error | Reply[];

/** Parses one RESP2 reply from `buf` at `pos`; returns undefined when incomplete. */
function parse(buf: Buffer, pos: number): [Reply, number] | undefined {
  const eol = buf.indexOf("\r\n", pos);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[pos]!);
  const line = buf.toString("utf8", pos + 1, eol);
  const next = eol + 2;
  switch (type) {
    case "+":
      return [line, next];
    case "-":
      return [new Error(line), next];
    case ":":
      return [Number(line), next];
    case "$": {
      const len = Number(line);
      if (len < 0) return [null, next];
      if (buf.length < next + len + 2) return undefined;
      return [buf.toString("utf8", next, next + len), next + len + 2];
    }
    case "*": {
      const count = Number(line);
      if (count < 0) return [null, next];
      const items: Reply[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buf, at);
        if (!item) return undefined;
        items.push(item[0]);
        at = item[1];
      }
      return [items, at];
    }
  }
  throw new Error(`bad RESP type ${type}`);
}

function encode(args: string[]): string {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return out;
}

/** A connection that sends raw commands and nothing else. */
export class RespClient {
  #socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #pending: { resolve: (r: unknown) => void; reject: (e: Error) => void }[] = [];
  #closed: Promise<void>;
  /** Called with every reply that no command waits for (MONITOR lines, pub/sub messages). */
  onPush?: (reply: Reply) => void;

  private constructor(socket: Socket) {
    this.#socket = socket;
    this.#closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (data: Buffer) => {
      this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, data]) : data;
      let at = 0;
      while (at < this.#buffer.length) {
        const parsed = parse(this.#buffer, at);
        if (!parsed) break;
        at = parsed[1];
        const waiter = this.#pending.shift();
        if (!waiter) this.onPush?.(parsed[0]);
        else if (parsed[0] instanceof Error) waiter.reject(parsed[0]);
        else waiter.resolve(parsed[0]);
      }
      this.#buffer = this.#buffer.subarray(at);
    });
    socket.on("error", (error) => {
      for (const w of this.#pending.splice(0)) w.reject(error);
    });
    socket.on("close", () => {
      for (const w of this.#pending.splice(0)) w.reject(new Error("connection closed"));
    });
  }

  /** Connects to `redis://host:port`. */
  static connect(url: string): Promise<RespClient> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = new Socket();
      socket.setNoDelay(true);
      socket.once("error", reject);
      socket.connect(Number(port), hostname, () => {
        socket.off("error", reject);
        resolve(new RespClient(socket));
      });
    });
  }

  /** Sends `[command, ...args]` and resolves to the reply. */
  sendCommand(args: string[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#socket.write(encode(args));
    });
  }

  /** Closes the connection and waits until it is closed. */
  async close(): Promise<void> {
    this.#socket.destroy();
    await this.#closed;
  }
}
