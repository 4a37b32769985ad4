// Runs every bench in one go, on one Redis server, and ends with the targets: what
// `deno task bench` runs. BENCH_SMOKE=1 runs each with a handful of iterations, only to
// prove they still run (CI); the targets are then printed but mean nothing.
//
//   deno run -A bench/all.ts            (REDIS_URL, or a throwaway redis-server)
//   BENCH_SMOKE=1 deno run -A bench/all.ts
//
// Steps: deno bench on each bench/*_bench.ts, BENCH_PASSES times (3; rendered as one
// table of median ratios); lock_bench.ts as a script, timing its cases against their
// baselines taking turns (the figures the targets are checked with); the memory check
// under Deno and under Bun; Bun's RedisClient; handoff latency; the contention bench, with workers on
// separate connections and in separate processes. Results go to BENCH_OUT (default
// .bench-out/) as JSON, and the whole report to BENCH_OUT/report.md. The exit code is 1
// when a bench broke, never because a target was missed.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startRedis } from "../tests/_redis.ts";
import { machine, markdownTable, SMOKE } from "./_setup.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const outDir = Deno.env.get("BENCH_OUT") ?? join(root, ".bench-out");
const deno = Deno.execPath();

/** Bun from the dev dependencies, else from PATH, else none. */
async function findBun(): Promise<string | undefined> {
  const local = join(root, "node_modules", ".bin", "bun");
  for (const candidate of [local, "bun"]) {
    try {
      const { success } = await new Deno.Command(candidate, { args: ["--version"], stdout: "null" })
        .output();
      if (success) return candidate;
    } catch {
      // not there; try the next
    }
  }
  return undefined;
}

interface Step {
  name: string;
  command: string;
  args: string[];
  /** Keep stdout to parse (`deno bench --json`) instead of streaming it. */
  capture?: boolean;
  runtime: "deno" | "bun";
}

interface StepResult {
  name: string;
  status: "ok" | "failed" | "skipped";
  seconds: number;
  stdout?: string;
  /** What the report shows for the step: its output, or the table made from it. */
  report?: string;
}

async function runStep(step: Step, env: Record<string, string>): Promise<StepResult> {
  console.log(`\n## ${step.name}\n\n$ ${[step.command, ...step.args].join(" ")}`);
  const startedAt = performance.now();
  const child = new Deno.Command(step.command, {
    args: step.args,
    cwd: root,
    env,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  // Streams the output as it comes (unless captured for parsing) and keeps it for the report.
  let stdout = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    stdout += decoder.decode(chunk, { stream: true });
    if (!step.capture) await Deno.stdout.write(chunk);
  }
  const { success } = await child.status;
  return {
    name: step.name,
    status: success ? "ok" : "failed",
    seconds: (performance.now() - startedAt) / 1000,
    stdout,
  };
}

// The shape of `deno bench --json` (version 1), as far as it is read here.
interface BenchJson {
  benches: {
    origin: string;
    group: string | null;
    name: string;
    baseline: boolean;
    results: ({ ok: { n: number; avg: number; p75: number; p99: number } } | {
      failed: unknown;
    })[];
  }[];
}

/** A row of the deno bench table. Times in ns. */
interface BenchRow {
  file: string;
  group: string;
  name: string;
  baseline: boolean;
  avg?: number;
  p75?: number;
  p99?: number;
  n?: number;
  failed?: boolean;
}

function parseBenchJson(stdout: string): BenchRow[] {
  // Bench files may print before the report; the report is the last top-level object.
  const start = stdout.lastIndexOf('{\n  "version"');
  if (start < 0) return [];
  const report = JSON.parse(stdout.slice(start)) as BenchJson;
  return report.benches.map((b) => {
    const result = b.results[0];
    const row: BenchRow = {
      file: b.origin.slice(b.origin.lastIndexOf("/") + 1),
      group: b.group ?? "(no group)",
      name: b.name,
      baseline: b.baseline,
    };
    if (result && "ok" in result) Object.assign(row, result.ok);
    else row.failed = true;
    return row;
  });
}

function formatNs(ns: number | undefined): string {
  if (ns === undefined) return "—";
  if (ns < 1_000) return `${ns.toFixed(1)} ns`;
  if (ns < 1_000_000) return `${(ns / 1_000).toFixed(1)} µs`;
  return `${(ns / 1_000_000).toFixed(2)} ms`;
}

/** A case over every pass of its file: medians of the times, and its ratio in each pass. */
interface CaseSummary {
  file: string;
  group: string;
  name: string;
  baseline: boolean;
  failed: boolean;
  /** Medians over the passes, in ns. */
  avg?: number;
  p75?: number;
  p99?: number;
  /** Against the group's baseline of the same pass, one per pass. */
  ratiosAvg: number[];
  ratiosP75: number[];
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Folds the passes of one file into one summary per case, in the order of the first pass. */
function summarize(passes: BenchRow[][]): CaseSummary[] {
  const summaries = new Map<string, CaseSummary>();
  for (const rows of passes) {
    for (const r of rows) {
      const id = `${r.group}\u0000${r.name}`;
      let c = summaries.get(id);
      if (!c) {
        c = {
          ...r,
          failed: false,
          avg: undefined,
          p75: undefined,
          p99: undefined,
          ratiosAvg: [],
          ratiosP75: [],
        };
        summaries.set(id, c);
      }
      if (r.failed) {
        c.failed = true;
        continue;
      }
      const base = rows.find((b) => b.group === r.group && b.baseline && !b.failed);
      if (base) {
        c.ratiosAvg.push(r.avg! / base.avg!);
        c.ratiosP75.push(r.p75! / base.p75!);
      }
    }
  }
  for (const c of summaries.values()) {
    const mine = passes.flat().filter((r) => r.group === c.group && r.name === c.name && !r.failed);
    c.avg = median(mine.map((r) => r.avg!));
    c.p75 = median(mine.map((r) => r.p75!));
    c.p99 = median(mine.map((r) => r.p99!));
  }
  return [...summaries.values()];
}

const times = (ratio: number | undefined) => ratio === undefined ? "—" : `${ratio.toFixed(2)}x`;

function benchTable(cases: CaseSummary[], passes: number): string {
  const several = passes > 1;
  return markdownTable(
    [
      "group",
      "case",
      `time/iter (avg${several ? ", median of passes" : ""})`,
      "p75",
      "p99",
      "vs baseline (avg)",
      "vs baseline (p75)",
      ...several ? ["avg ratio in each pass"] : [],
    ],
    cases.map((c) => [
      c.group,
      c.failed ? `${c.name} (failed)` : c.name,
      formatNs(c.avg),
      formatNs(c.p75),
      formatNs(c.p99),
      c.baseline ? "1.00x (baseline)" : times(median(c.ratiosAvg)),
      c.baseline ? "1.00x (baseline)" : times(median(c.ratiosP75)),
      ...several ? [c.baseline ? "" : c.ratiosAvg.map((r) => r.toFixed(2)).join(", ")] : [],
    ]),
  );
}

async function readResult<T>(name: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(join(outDir, `${name}.json`))) as T;
  } catch {
    return undefined;
  }
}

/** The issue's targets, each with the figure measured in this run. */
async function targets(cases: CaseSummary[]): Promise<string[]> {
  const lines: string[] = [];
  const pass = (ok: boolean) => ok ? "PASS" : "FAIL";
  const interleaved = await readResult<
    { group: string; name: string; ratio: number; noise: number }[]
  >("interleaved") ?? [];
  for (const client of ["ioredis", "node-redis"]) {
    const group = `acquire + release, ${client}`;
    const inGroup = cases.filter((c) => c.group === group && !c.failed);
    const again = inGroup.find((c) => c.name.startsWith("floor, measured again"));
    const baton = inGroup.find((c) => c.name.startsWith("baton"));
    const turns = interleaved.filter((r) => r.group === group);
    const batonTurns = turns.find((r) => r.name.startsWith("baton"));
    if (!batonTurns) {
      lines.push(`- acquire + release on ${client} within 1.10x of the floor: not measured`);
      continue;
    }
    lines.push(
      `- acquire + release on ${client} within 1.10x of the floor: ` +
        `${times(batonTurns.ratio)} ±${batonTurns.noise.toFixed(2)} taking turns ` +
        `${pass(batonTurns.ratio <= 1.10)}; deno bench: ${times(median(baton?.ratiosAvg ?? []))} ` +
        `(passes: ${baton?.ratiosAvg.map((r) => r.toFixed(2)).join(", ") ?? "—"}; ` +
        `the floor measured again: ${again?.ratiosAvg.map((r) => r.toFixed(2)).join(", ") ?? "—"})`,
    );
    const peers = turns.filter((r) => r !== batonTurns);
    if (peers.length > 0) {
      // Beyond noise: ahead of baton by more than the two ratios' noise together.
      const faster = peers.filter((p) => p.ratio < batonTurns.ratio - (p.noise + batonTurns.noise));
      const closest = [...peers].sort((a, b) => a.ratio - b.ratio)[0]!;
      lines.push(
        `- no peer faster than baton on ${client} beyond noise: ` +
          (faster.length === 0
            ? `PASS (fastest peer: ${closest.name} at ${times(closest.ratio)} ` +
              `±${closest.noise.toFixed(2)})`
            : `FAIL (${
              faster.map((p) => `${p.name} at ${times(p.ratio)} ±${p.noise.toFixed(2)}`).join(", ")
            })`),
      );
    }
  }
  for (const runtime of ["deno", "bun"]) {
    const memory = await readResult<
      { client: string; what: string; growthBytes: number; forcedGc: boolean }[]
    >(`memory-${runtime}`);
    for (const m of memory?.filter((m) => m.what === "baton") ?? []) {
      const floor = memory!.find((f) => f.client === m.client && f.what === "floor");
      lines.push(
        `- heap growth under 1 MB over the cycles, ${runtime}, ${m.client}: ` +
          `${(m.growthBytes / 1024).toFixed(0)} KB (floor: ${
            floor ? (floor.growthBytes / 1024).toFixed(0) : "—"
          } KB)${m.forcedGc ? "" : ", no forced GC"} ${pass(m.growthBytes < 1024 * 1024)}` +
          (m.growthBytes >= 1024 * 1024 && floor &&
              m.growthBytes - floor.growthBytes < 1024 * 1024
            ? ` (the client's own: the floor grows as much)`
            : ""),
      );
    }
  }
  const bun = await readResult<{ name: string; ratio: number }[]>("bun-client");
  const bunAcquire = bun?.find((b) => b.name === "acquire + release");
  if (bunAcquire) {
    lines.push(
      `- (not a target) acquire + release on Bun's RedisClient: ${
        bunAcquire.ratio.toFixed(2)
      }x the floor`,
    );
  }
  const contention = await readResult<{ targets: Record<string, string> }>("contention-both");
  for (const [mode, text] of Object.entries(contention?.targets ?? {})) {
    lines.push(`- contention, ${mode}: ${text}`);
  }
  return lines;
}

function loadAverage(): string {
  return Deno.loadavg()[0]!.toFixed(2);
}

// --- main ---

const startedAt = performance.now();
const loadBefore = loadAverage();
await Deno.remove(outDir, { recursive: true }).catch(() => {});
await Deno.mkdir(outDir, { recursive: true });
const server = await startRedis();
const results: StepResult[] = [];
const benchCases: CaseSummary[] = [];
/** How many times each *_bench.ts file runs; the table shows medians and every pass's ratio. */
const PASSES = Number(Deno.env.get("BENCH_PASSES") ?? (SMOKE ? 1 : 3));
let redisVersion = "unknown";
try {
  const env = { REDIS_URL: server.url, BENCH_OUT: outDir, BENCH_SMOKE: SMOKE ? "1" : "0" };
  const info = await new Deno.Command("redis-cli", { args: ["-u", server.url, "INFO", "server"] })
    .output().catch(() => undefined);
  redisVersion = /redis_version:(\S+)/.exec(new TextDecoder().decode(info?.stdout))?.[1] ??
    redisVersion;
  const bun = await findBun();
  const benchFiles: string[] = [];
  for await (const entry of Deno.readDir(join(root, "bench"))) {
    if (entry.isFile && entry.name.endsWith("_bench.ts")) benchFiles.push(`bench/${entry.name}`);
  }
  benchFiles.sort();
  const steps: Step[] = [
    {
      name: "bench/lock_bench.ts interleaved (the targets' check)",
      command: deno,
      args: ["run", "-A", "bench/lock_bench.ts"],
      runtime: "deno",
    },
    {
      name: "memory, Deno",
      command: deno,
      args: ["run", "-A", "--v8-flags=--expose-gc", "bench/memory.ts"],
      runtime: "deno",
    },
    {
      name: "memory, Bun",
      command: bun ?? "bun",
      args: ["run", "bench/memory.ts"],
      runtime: "bun",
    },
    {
      name: "Bun's RedisClient",
      command: bun ?? "bun",
      args: ["run", "bench/bun_client.ts"],
      runtime: "bun",
    },
    {
      name: "handoff latency (release to the next owner), Deno",
      command: deno,
      args: ["run", "-A", "bench/handoff.ts"],
      runtime: "deno",
    },
    {
      name: "handoff latency (release to the next owner), Bun",
      command: bun ?? "bun",
      args: ["run", "bench/handoff.ts"],
      runtime: "bun",
    },
    {
      name: "contention, separate connections and separate processes",
      command: deno,
      args: [
        "run",
        "-A",
        "bench/contention.ts",
        "--mode",
        "both",
        ...(SMOKE ? [] : ["--windows", "0,5,20"]),
      ],
      runtime: "deno",
    },
  ];
  // Each bench file alone (one broken file must not hide the others' figures), PASSES times.
  for (const file of benchFiles) {
    const startedAt = performance.now();
    const passes: BenchRow[][] = [];
    let ok = true;
    for (let pass = 1; pass <= PASSES; pass++) {
      const result = await runStep({
        name: `deno bench ${file}${PASSES > 1 ? `, pass ${pass} of ${PASSES}` : ""}`,
        command: deno,
        args: ["bench", "-A", "--json", file],
        capture: true,
        runtime: "deno",
      }, env);
      const rows = parseBenchJson(result.stdout ?? "");
      if (result.status !== "ok" || rows.length === 0 || rows.some((r) => r.failed)) ok = false;
      passes.push(rows);
    }
    const cases = summarize(passes);
    benchCases.push(...cases);
    const report = benchTable(cases, PASSES);
    console.log(`\n${report}`);
    results.push({
      name: `deno bench ${file}`,
      status: ok ? "ok" : "failed",
      seconds: (performance.now() - startedAt) / 1000,
      report,
    });
  }
  for (const step of steps) {
    if (step.runtime === "bun" && !bun) {
      console.log(`\n## ${step.name}\n\nskipped: bun is not installed (npm ci installs it)`);
      results.push({ name: step.name, status: "skipped", seconds: 0 });
      continue;
    }
    const result = await runStep(step, env);
    results.push(result);
  }
} finally {
  await server.stop();
}

const header = [
  `# baton benchmarks${SMOKE ? " (smoke run: figures mean little)" : ""}`,
  "",
  `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${await machine()}, ` +
  `Redis ${redisVersion}. Load average (1 min) ${loadBefore} at the start, ${loadAverage()} ` +
  `at the end: other work on the machine is the main source of noise.`,
];
const summary = [
  `## Targets${SMOKE ? " (smoke run: the figures mean nothing)" : ""}`,
  "",
  ...await targets(benchCases),
  "",
  "## Steps",
  "",
  markdownTable(
    ["step", "status", "time"],
    results.map((r) => [r.name, r.status, `${r.seconds.toFixed(1)} s`]),
  ),
  "",
  `total ${((performance.now() - startedAt) / 1000).toFixed(0)} s`,
];
console.log(`\n${summary.join("\n")}`);
await Deno.writeTextFile(
  join(outDir, "report.md"),
  [
    ...header,
    ...results.flatMap((r) => ["", `## ${r.name}`, "", (r.report ?? r.stdout ?? r.status).trim()]),
    "",
    ...summary,
    "",
  ].join("\n"),
);
Deno.exitCode = results.some((r) => r.status === "failed") ? 1 : 0;
