// Prints "N passed, M failed" from a Deno JUnit report, counting only leaf tests
// (a describe() is a test case in the report too, and is left out).
import { readFileSync } from "node:fs";

const xml = readFileSync(process.argv[2], "utf8");
const cases = [...xml.matchAll(/<testcase name="([^"]*)"[^>]*>([\s\S]*?)<\/testcase>/g)]
  .map(([, name, body]) => ({ name, failed: /<failure|<error/.test(body) }));
const names = new Set(cases.map((c) => c.name));
const isParent = (name) => [...names].some((n) => n.startsWith(`${name} &gt; `));
const leaves = cases.filter((c) => !isParent(c.name));
const failed = leaves.filter((c) => c.failed).length;
console.log(`${leaves.length - failed} passed, ${failed} failed`);
