import { _describe } from "./_client.ts";

/**
 * Builds a lock key in baton's convention, `lock:{prefix}:{parts joined by ":"}`, so
 * that every instance of a service names the same critical section the same way.
 *
 * @param prefix What is locked, such as `"withdraw"` or `"order"`.
 * @param parts What it is locked for, such as a user id; strings or finite numbers.
 * @returns The key, such as `"lock:order:user123:order456"`.
 * @throws {TypeError} When `prefix` or a part is empty, not a string, or a number that
 * is not finite.
 *
 * @example Usage
 * ```ts
 * import { lockKey } from "@baton/lock";
 * import assert from "node:assert/strict";
 *
 * assert.equal(lockKey("order", "user123", "order456"), "lock:order:user123:order456");
 * assert.equal(lockKey("withdraw", 42), "lock:withdraw:42");
 * ```
 */
export function lockKey(prefix: string, ...parts: (string | number)[]): string {
  if (typeof prefix !== "string" || prefix.length === 0) {
    throw new TypeError(
      `Cannot build lock key as "prefix" must be a non-empty string: current value is ${
        _describe(prefix)
      }`,
    );
  }
  let key = `lock:${prefix}`;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (
      !(typeof part === "string" && part.length > 0) &&
      !(typeof part === "number" && Number.isFinite(part))
    ) {
      throw new TypeError(
        `Cannot build lock key as "parts[${i}]" must be a non-empty string or a finite number: current value is ${
          _describe(part)
        }`,
      );
    }
    key += `:${part}`;
  }
  return key;
}
