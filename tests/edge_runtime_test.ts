// baton on an edge runtime (Cloudflare Workers, Vercel Edge, Deno Deploy): only Web APIs,
// no `process`, no `Buffer`, no `node:*` module. The library may use nothing else at import
// time (Upstash's own lock broke edge runtimes that way), nor to take and release a lock.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { assertNoLeaks } from "./_leaks.ts";

const root = new URL("..", import.meta.url);
const deno = new URL("node_modules/.bin/deno", root).pathname;
const mod = new URL("mod.ts", root).href;

/** Runs `deno` with `args` (and `stdin`), resolving to its exit code, stdout and stderr. */
function runDeno(
  args: string[],
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      deno,
      args,
      { cwd: root.pathname, env: { PATH: "/usr/bin:/bin", NO_COLOR: "1" }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = (error as { code?: unknown } | null)?.code;
        resolve({ code: typeof code === "number" ? code : error ? 1 : 0, stdout, stderr });
      },
    );
    child.stdin!.end(stdin ?? "");
  });
}

/**
 * What the child runs: it removes the Node globals Deno has, then imports mod.ts (a dynamic
 * import, so that it is evaluated after the removal) and takes and releases locks on stub
 * clients, one of the shape of node-redis and one of @upstash/redis. Prints one JSON line.
 */
const script = `
const NODE_GLOBALS = ["process", "Buffer", "global", "setImmediate", "clearImmediate",
  "require", "module", "__dirname", "__filename"];
for (const name of NODE_GLOBALS) delete globalThis[name];
const left = NODE_GLOBALS.filter((name) => name in globalThis);
if (left.length > 0) throw new Error("could not remove " + left.join(", "));

const { acquireLock, debounce, lockKey, withLock } = await import(${JSON.stringify(mod)});

// Answers as Redis would to what an uncontended lock sends: SET NX PX, then the release,
// extend or lead script (EVALSHA), each granted.
const reply = (args) => args[0] === "SET" ? "OK" : 1;
const sent = [];
const raw = { sendCommand: async (args) => (sent.push(args[0]), reply(args)) };
const upstash = {
  evalsha() { throw new Error("baton sends through client.request()"); },
  scriptLoad() { throw new Error("baton sends through client.request()"); },
  client: { request: async ({ body }) => (sent.push(body[0]), { result: reply(body) }) },
};

const key = lockKey("edge", 42);
const out = { key, sent };
for (const [name, client] of [["raw", raw], ["upstash", upstash]]) {
  const lock = await acquireLock(client, key, { ttl: 5 });
  out[name] = {
    token: lock.token.length,
    extended: await lock.extend(),
    released: await lock.release(),
    withLock: await withLock(client, key, () => "ran"),
    debounced: await debounce(client, key, (x) => x, { wait: 10, edge: "leading" })("lead"),
  };
}
console.log(JSON.stringify(out));
`;

describe("an edge runtime: Web APIs only", () => {
  after(() => assertNoLeaks());

  it("mod.ts and everything it imports are files of this package: no node:, npm: or remote module", async () => {
    const { code, stdout, stderr } = await runDeno(["info", "--json", "mod.ts"]);
    assert.equal(code, 0, stderr);
    const specifiers = (JSON.parse(stdout) as { modules: { specifier: string }[] }).modules
      .map((m) => m.specifier);
    assert.ok(specifiers.includes(mod), `mod.ts in ${specifiers.join(", ")}`);
    assert.ok(specifiers.length > 10, `the whole graph: ${specifiers.join(", ")}`);
    const lib = new URL("lock/", root).href;
    const foreign = specifiers.filter((s) => s !== mod && !s.startsWith(lib));
    assert.deepEqual(foreign, []);
  });

  it("without process, Buffer, setImmediate and node:*, with no permission, mod.ts imports and takes, extends and releases locks (a raw client and @upstash/redis' shape) and runs a debounced call", async () => {
    // --no-npm and --no-remote: no npm: or remote module can load; no --allow-*: no file,
    // network or environment access either.
    const { code, stdout, stderr } = await runDeno(
      ["run", "--no-npm", "--no-remote", "--no-config", "--no-lock", "-"],
      script,
    );
    assert.equal(code, 0, stderr);
    const out = JSON.parse(stdout.trim().split("\n").at(-1)!);
    const ran = { ran: true, ok: true, value: "lead" };
    const each = { token: 36, extended: true, released: true, withLock: "ran", debounced: ran };
    assert.deepEqual(out, {
      key: "lock:edge:42",
      sent: [
        ...["SET", "EVALSHA", "EVALSHA", "SET", "EVALSHA", "EVALSHA"],
        ...["SET", "EVALSHA", "EVALSHA", "SET", "EVALSHA", "EVALSHA"],
      ],
      raw: each,
      upstash: each,
    });
  });
});
