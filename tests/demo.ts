// The withdrawal story: 8 workers, each on its own Redis connection as if in its own
// service instance, withdraw from one account whose balance lives in Redis. Each
// withdrawal reads the balance, checks it, calls the (slow) payment provider, then
// writes the new balance. Run: npm run demo (or deno run -A tests/demo.ts).
//
// With --memory (npm run demo -- --memory), no Redis: the locks live in a MemoryStore and
// the balance in a Map, both in this one process, whose 8 workers share them. That is
// the same API for an application of one process only: a MemoryStore excludes nothing
// in another process.
import { Redis } from "ioredis";
import { LockAcquireError, type LockClient, lockKey, withLock } from "../mod.ts";
import { MemoryStore } from "../lock/memory.ts";
import { startRedis } from "./_redis.ts";

const WORKERS = 8;
const ATTEMPTS = 5; // per worker
const AMOUNT = 100;
const OPENING = 2_000;
const MESSAGE = "Withdrawal in progress, please try again later";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Mode = "no lock" | "withLock (fail fast)" | "withLock (wait 2 s)";

/** Where the balances live: Redis (an ioredis client), or a Map in this process. */
interface Balances {
  get(account: string): Promise<string | null>;
  set(account: string, value: string): Promise<unknown>;
}

/** One worker: where it takes its locks, and where it reads and writes the balance. */
interface Worker {
  locks: LockClient;
  balances: Balances;
}

async function withdraw(balances: Balances, account: string): Promise<boolean> {
  const balance = Number(await balances.get(account));
  if (balance < AMOUNT) return false;
  await sleep(2 + Math.random() * 3); // the payment provider
  await balances.set(account, String(balance - AMOUNT));
  return true;
}

async function run(workers: Worker[], mode: Mode) {
  const account = `account:alice:${mode}`;
  await workers[0]!.balances.set(account, String(OPENING));
  let paid = 0, refused = 0, busy = 0;
  const messages = new Set<string>();
  await Promise.all(workers.map(async ({ locks, balances }) => {
    for (let i = 0; i < ATTEMPTS; i++) {
      try {
        const ok = mode === "no lock" ? await withdraw(balances, account) : await withLock(
          locks,
          lockKey("withdraw", "alice"),
          () => withdraw(balances, account),
          { ttl: 10, errorMessage: MESSAGE, timeout: mode === "withLock (wait 2 s)" ? 2000 : 0 },
        );
        if (ok) paid += AMOUNT;
        else refused++;
      } catch (error) {
        if (!(error instanceof LockAcquireError)) throw error;
        busy++;
        messages.add(error.message);
      }
      await sleep(Math.random() * 4);
    }
  }));
  const final = Number(await workers[0]!.balances.get(account));
  const expected = OPENING - paid;
  return { mode, paid, refused, busy, final, expected, messages };
}

const memory = Deno.args.includes("--memory");
const server = memory ? undefined : await startRedis();
const clients = server === undefined ? [] : await Promise.all(
  Array.from({ length: WORKERS }, async () => {
    const c = new Redis(server.url, { lazyConnect: true });
    await c.connect();
    return c;
  }),
);
/** In memory, the workers share one store of locks and one Map of balances. */
function inMemory(): Worker[] {
  const locks = new MemoryStore();
  const map = new Map<string, string>();
  const balances: Balances = {
    get: (account) => Promise.resolve(map.get(account) ?? null),
    set: (account, value) => Promise.resolve(map.set(account, value)),
  };
  return Array.from({ length: WORKERS }, () => ({ locks, balances }));
}
const workers: Worker[] = memory
  ? inMemory()
  : clients.map((redis) => ({ locks: redis as unknown as LockClient, balances: redis }));
try {
  if (memory) {
    console.log(
      "--memory: no Redis. The locks live in a MemoryStore, in this process only: its 8 " +
        "workers\nshare them, and no other process would see them. For several processes " +
        "or machines, use Redis.\n",
    );
  }
  console.log(
    `${WORKERS} workers x ${ATTEMPTS} withdrawals of ${AMOUNT} from a balance of ${OPENING}\n`,
  );
  const rows = [];
  for (const mode of ["no lock", "withLock (fail fast)", "withLock (wait 2 s)"] as Mode[]) {
    rows.push(await run(workers, mode));
  }
  const cols = ["mode", "paid out", "refused", "busy", "final", "should be", "verdict"];
  const table = rows.map((r) => [
    r.mode,
    String(r.paid),
    String(r.refused),
    String(r.busy),
    String(r.final),
    String(r.expected),
    r.final === r.expected ? "exact" : `wrong by ${r.final - r.expected}`,
  ]);
  const widths = cols.map((c, i) => Math.max(c.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  console.log(line(cols));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const row of table) console.log(line(row));
  console.log(
    `\npaid out: money sent to the user; final: the balance left in ${
      memory ? "memory" : "Redis"
    }.`,
  );
  for (const r of rows) {
    for (const m of r.messages) console.log(`${r.mode}: busy attempts were told "${m}"`);
  }
  const [unlocked, ...locked] = rows;
  if (unlocked!.final === unlocked!.expected) console.log("(no update was lost this time)");
  if (locked.some((r) => r.final !== r.expected)) {
    console.error("a locked run ended wrong");
    Deno.exit(1);
  }
} finally {
  await Promise.all(clients.map((c) => c.quit()));
  await server?.stop();
}
