// The soak: many acquire/release cycles and contended withLock calls in a child process of
// each runtime, which forces a full GC and reads its heap after a warm-up and at the end,
// then closes its clients and must end by itself. Heap growth, listeners or connections
// left, or a process kept alive mean the library leaks.
//
// Short form (CI): 20,000 uncontended cycles and 2,000 contended calls per process.
// Long form, on demand: SOAK=long bun test --timeout 1200000 tests/soak_test.ts (or
// deno test -A), ten times as many, also on node-redis.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { startRedisWithAdmin, stopRedisWithAdmin } from "./_fixtures.ts";
import type { RedisServer } from "./_redis.ts";
import type { RespClient } from "./_resp.ts";
import { exitWithin, type RUNTIMES, startChild, stopChildren, until } from "./_child.ts";
import type { SoakConfig, SoakReport } from "./_soak_worker.ts";

const LONG = process.env.SOAK === "long";
const CYCLES = LONG ? 200_000 : 20_000;
const CONTENDED = LONG ? 20_000 : 2_000;
const CALLERS = 4;
/** The most the heap may grow between the warm-up and the end, after a full GC. */
const MAX_GROWTH = 1024 * 1024;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`;

// Raw sendCommand clients cannot subscribe, and their waiters poll: 2,000 contended calls
// take minutes, so they are left out here.
type Process = [keyof typeof RUNTIMES, string];
const PROCESSES: Process[] = [
  ["deno-gc", "ioredis"],
  ["bun", "Bun RedisClient"],
];
if (LONG) PROCESSES.push(["deno-gc", "node-redis"], ["bun", "ioredis"]);

describe(`soak (${LONG ? "long" : "short"} form): ${CYCLES} uncontended cycles and ${CONTENDED} contended withLock calls per process`, () => {
  let server: RedisServer;
  let admin: RespClient;
  before(async () => ({ server, admin } = await startRedisWithAdmin()));
  after(() => stopRedisWithAdmin(server, admin));

  for (const [runtime, client] of PROCESSES) {
    const name = `${runtime === "bun" ? "Bun" : "Deno"}, ${client}`;
    it(`${name}: the heap grows less than 1 MB from the warm-up to the end, no listener or connection is left, and the process ends by itself once its clients are closed`, async () => {
      const soak = startChild<SoakReport>(
        runtime,
        "./_soak_worker.ts",
        {
          url: server.url,
          client,
          cycles: CYCLES,
          contended: CONTENDED,
          callers: CALLERS,
        } satisfies SoakConfig,
      );
      try {
        // About 10 s per process here; bounded at ten times that.
        await until(() => soak.events.length > 0, LONG ? 1_100_000 : 110_000, "the report");
        const reportedAt = performance.now();
        const report = soak.events[0]!;
        const { warm, end } = report;
        // Closing its clients must be enough for the process to end.
        const exit = await exitWithin(soak, 5_000);
        const exitMs = performance.now() - reportedAt;
        console.error(
          `soak: ${name}: ${report.cycles} uncontended cycles + ${report.contended} contended ` +
            `calls (${CALLERS} callers) in ${(report.elapsedMs / 1000).toFixed(1)} s; ` +
            `heap after GC ${mb(warm.heapUsed)} at warm-up, ${mb(end.heapUsed)} at the end ` +
            `(${end.heapUsed >= warm.heapUsed ? "+" : "-"}` +
            `${mb(Math.abs(end.heapUsed - warm.heapUsed))}); listeners ${warm.listeners} -> ` +
            `${end.listeners}; connections ${end.connections}; failures ` +
            `${report.failures.length}; exit ${exit} ${Math.round(exitMs)} ms after the report`,
        );
        assert.deepEqual(report.failures, []);
        assert.ok(
          end.heapUsed - warm.heapUsed < MAX_GROWTH,
          `heap grew ${mb(end.heapUsed - warm.heapUsed)} (${warm.heapUsed} -> ${end.heapUsed})`,
        );
        assert.equal(end.listeners, warm.listeners);
        // The two clients and this test's admin connection: no subscriber left open.
        assert.equal(end.connections, 3);
        assert.deepEqual(report.resources, []);
        assert.equal(exit, 0);
      } finally {
        await stopChildren([soak]);
      }
    });
  }
});
