// A holder for the fencing test, in its own process: takes the lock with a fence,
// prints {"fence": "..."}; then, told "write" on stdin (after it was stopped past its
// lease and resumed), makes its fenced write and prints what the storage said, and
// what release() and extend() said.
import process from "node:process";
import { createInterface } from "node:readline";
import { acquireLock } from "../mod.ts";
import { fencedWrite } from "./_fenced_storage.ts";
import { RespClient } from "./_resp.ts";

const { url, key, resource } = JSON.parse(process.argv[process.argv.length - 1]!);
const redis = await RespClient.connect(url);
const lock = await acquireLock(redis, key, { ttl: 0.5, fencing: true });
console.log(JSON.stringify({ fence: String(lock.fence) }));
const input = createInterface({ input: process.stdin });
for await (const line of input) {
  if (line !== "write") continue;
  const written = await fencedWrite(redis, resource, lock.fence!, "from the paused holder");
  const extended = await lock.extend();
  const released = await lock.release();
  console.log(JSON.stringify({ written, extended, released }));
  break;
}
input.close();
await redis.close();
