// Deno runs no sanitizers on node:test tests, so each test file checks itself: after
// its last hook, no timer, socket or child process of its own may be left. Under Deno
// process.getActiveResourcesInfo() lists them; Bun's always returns [], and there the
// tests that count Redis connections (CLIENT LIST) catch leaked sockets.
import process from "node:process";
import assert from "node:assert/strict";
import { _SUBSCRIBER_IDLE_MS } from "../lock/_subscriber.ts";

/**
 * Waits out the idle period of subscriber connections, then asserts that nothing is
 * left running, allowing 3 s for clients' own short timers to settle (an ioredis client
 * closed while Redis is down keeps one for about a second). Call it last in a file's
 * top-level `after`.
 */
export async function assertNoLeaks(): Promise<void> {
  const active = () =>
    (process as { getActiveResourcesInfo?: () => string[] }).getActiveResourcesInfo?.() ?? [];
  await new Promise((r) => setTimeout(r, _SUBSCRIBER_IDLE_MS + 50));
  for (let waited = 0; active().length > 0 && waited < 3000; waited += 50) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const left = active();
  assert.deepEqual(left, [], `left running after the tests: ${left.join(", ")}`);
}
