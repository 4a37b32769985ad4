// The check that a trailing call's arguments are JSON data, since they are stored in Redis
// as JSON and another instance may run the burst with the copy it reads back.
import { _describe } from "./_client.ts";
import { _CALL_ACTION } from "./_debounce_edge.ts";

const JSON_DATA = "JSON data (null, a boolean, a finite number, a string, an array or a plain " +
  "object of these), as the trailing edge stores the arguments in Redis";

/**
 * The arguments as JSON, or a TypeError naming the first argument (by its path, such as
 * `args[0].at`) that would not come back the same from `JSON.parse`.
 */
export function _argsJson(args: unknown[]): string {
  checkJson(args, "args", []);
  return JSON.stringify(args);
}

function checkJson(value: unknown, path: string, parents: object[]): void {
  if (typeof value === "string" || typeof value === "boolean" || value === null) return;
  if (typeof value === "number" && Number.isFinite(value)) return;
  if (typeof value === "object") {
    if (parents.includes(value)) {
      throw new TypeError(
        `Cannot ${_CALL_ACTION} as "${path}" must be ${JSON_DATA}, without cycles: current value is a reference to an enclosing object`,
      );
    }
    const proto = Object.getPrototypeOf(value);
    if (Array.isArray(value) && proto === Array.prototype) {
      parents.push(value);
      for (let i = 0; i < value.length; i++) {
        checkJson(i in value ? value[i] : undefined, `${path}[${i}]`, parents);
      }
      parents.pop();
      return;
    }
    if (
      (proto === Object.prototype || proto === null) &&
      Object.getOwnPropertySymbols(value).length === 0
    ) {
      parents.push(value);
      for (const [name, item] of Object.entries(value)) {
        const step = /^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`;
        checkJson(item, path + step, parents);
      }
      parents.pop();
      return;
    }
  }
  throw new TypeError(
    `Cannot ${_CALL_ACTION} as "${path}" must be ${JSON_DATA}: current value is ${
      _describe(value)
    }`,
  );
}
