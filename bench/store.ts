/**
 * The results store at scale: synthetic caches of 1k, 10k, 100k runs (bench/store_synth.ts) and, at each
 * size, the commands a lab runs on them, as the user runs them (fresh `deno task` processes: process start
 * and database open included), plus the in-process parts where a command is slow.
 *
 *   deno task bench:store [--sizes 1000,10000] [--dir /tmp/finelab-store] [--keep] [--sweep 10000]
 *                         [--skip rebuild,runs,query,dashboard,gc]   (measurements left out, e.g. at 100k on a
 *                         busy machine; `rebuild` is only skipped when the database exists, with --keep)
 *                         [--ingests 7]   (single-run ingests measured one after another: median, p90, max)
 *   deno task bench:store --concurrency 1000 [--runners 8] [--rebuild-at 0.5]   (bench/store_concurrency.ts: the
 *                         sweep's size, the runners, and the fraction of finished runs at which `db rebuild` starts)
 *
 * Measured per size: `db rebuild`; incremental ingest of one new run; `runs` (twice: the first lists the
 * cache folder again after the ingests; the newest 50), `runs --all`, `runs --experiment`, `runs --verify` (up to 20k);
 * a typical SQL query over runs and metrics (`deno task query`); the dashboard's index and an experiment
 * page (time to first byte, first and second request); bytes per run in the cache and the database;
 * what `gc` would reclaim. Once: planning (in-process) and `exp --dry-run` of a `--sweep`-run grid.
 * Wall seconds and the child's CPU seconds (user + system; /usr/bin/time) with the load average, since
 * the machine is shared. JSON goes to bench/measurements/<time>-store.json and stdout.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { generateCache } from "./store_synth.ts";
import { projectPaths, REPO_ROOT } from "../lib/util/paths.ts";
import { openResults } from "../lib/runner/results.ts";
import { entryPaths, inspectEntry } from "../lib/runner/cache.ts";
import { ingestRecords } from "../lib/runner/results.ts";
import { sweepModule } from "./store_sweep.ts";
import { runConcurrency } from "./store_concurrency.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    sizes: { type: "string", default: "1000,10000" },
    dir: { type: "string", default: "/tmp/finelab-store" },
    keep: { type: "boolean", default: false },
    sweep: { type: "string", default: "10000" },
    concurrency: { type: "string" },
    runners: { type: "string", default: "8" },
    "rebuild-at": { type: "string", default: "0.5" },
    skip: { type: "string", default: "" },
    ingests: { type: "string", default: "7" },
    out: { type: "string", default: resolve(REPO_ROOT, "bench/measurements") },
  },
});
const log = (m: string) => console.error(m);
const load = () => +Deno.loadavg()[0].toFixed(1);

/** One timed command: wall and CPU seconds of the child, its exit code and the start of its output. */
interface Timed {
  wall_s: number;
  cpu_s: number | null;
  load: number;
  rc: number;
  out: string;
}

/** Runs `deno task <args>` (or any argv) with FINELAB_RESULTS=results under /usr/bin/time. */
export async function timed(argv: string[], env: Record<string, string>): Promise<Timed> {
  const fmt = "__time %e %U %S";
  const t0 = performance.now();
  const p = await new Deno.Command("/usr/bin/time", {
    args: ["-f", fmt, ...argv],
    cwd: REPO_ROOT,
    env: { ...env, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const wall = (performance.now() - t0) / 1000;
  const err = new TextDecoder().decode(p.stderr);
  const m = err.match(/__time ([\d.]+) ([\d.]+) ([\d.]+)/);
  const out = new TextDecoder().decode(p.stdout);
  if (p.code !== 0) log(`${argv.join(" ")} exited ${p.code}: ${err.slice(-600)}`);
  return {
    wall_s: +(m ? Number(m[1]) : wall).toFixed(2),
    cpu_s: m ? +(Number(m[2]) + Number(m[3])).toFixed(2) : null,
    load: load(),
    rc: p.code,
    out: out.length > 600 ? `${out.slice(0, 300)}…${out.slice(-300)}` : out,
  };
}

const task = (...args: string[]) => ["deno", "task", "-q", ...args];

async function duBytes(path: string): Promise<number> {
  const p = await new Deno.Command("du", { args: ["-sb", path], stdout: "piped" }).output();
  return Number(new TextDecoder().decode(p.stdout).split(/\s/)[0]);
}

/** Time to first byte of `url` (headers received) and to the whole body. */
async function ttfb(url: string): Promise<{ ttfb_s: number; total_s: number; status: number; bytes: number }> {
  const t0 = performance.now();
  const res = await fetch(url);
  const t1 = performance.now();
  const body = await res.arrayBuffer();
  const t2 = performance.now();
  return {
    ttfb_s: +((t1 - t0) / 1000).toFixed(3),
    total_s: +((t2 - t0) / 1000).toFixed(3),
    status: res.status,
    bytes: body.byteLength,
  };
}

async function dashboard(env: Record<string, string>, experiment: string) {
  const port = 8790 + Math.floor(Math.random() * 100);
  const child = new Deno.Command("deno", {
    args: ["task", "-q", "serve", "--port", String(port)],
    cwd: REPO_ROOT,
    env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (let i = 0; i < 200; i++) {
      try {
        await (await fetch(`http://127.0.0.1:${port}/assets/none`)).arrayBuffer();
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const base = `http://127.0.0.1:${port}`;
    return {
      index_first: await ttfb(`${base}/`),
      index_again: await ttfb(`${base}/`),
      experiment_first: await ttfb(`${base}/exp/${experiment}.html`),
      experiment_again: await ttfb(`${base}/exp/${experiment}.html`),
      load: load(),
    };
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

/** `k` ingests of one new run each ({@link ingestOne}): every sample, and median, p90 and max of each part. */
async function ingestMany(results: string, n: number, k: number) {
  const samples: Awaited<ReturnType<typeof ingestOne>>[] = [];
  for (let i = 0; i < k; i++) samples.push(await ingestOne(results, n + i));
  const stats = (key: keyof (typeof samples)[0]) => {
    const v = samples.map((x) => x[key]).sort((a, b) => a - b);
    const at = (q: number) => v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)];
    return { median: at(0.5), p90: at(0.9), max: v[v.length - 1] };
  };
  return {
    n: k,
    total_s: stats("total_s"),
    open_s: stats("open_s"),
    ingest_s: stats("ingest_s"),
    close_s: stats("close_s"),
    samples,
  };
}

/** Ingest of one new run into the database of `results`, in-process: open, ingest, close. */
async function ingestOne(results: string, n: number) {
  const extra = `${results}-extra`;
  await Deno.remove(extra, { recursive: true }).catch(() => {});
  // A fresh seed each time: a kept results folder (--keep) already holds the runs of earlier measurements.
  const rep = await generateCache(extra, 1, { experiments: 1, seed: 1000 + n + Math.floor(Math.random() * 1e9) });
  const hash = rep.hashes[0];
  await Deno.rename(`${extra}/cache/${hash}`, `${results}/cache/${hash}`);
  await Deno.remove(extra, { recursive: true });
  const paths = projectPaths(REPO_ROOT, results);
  const t0 = performance.now();
  const record = (await inspectEntry(entryPaths(paths.cache, hash))).record!;
  const t1 = performance.now();
  const store = await openResults(paths);
  const t2 = performance.now();
  await ingestRecords(store, [record], { paths, experiment: null });
  const t3 = performance.now();
  await store.close();
  const t4 = performance.now();
  const s = (a: number, b: number) => +((b - a) / 1000).toFixed(3);
  return {
    read_s: s(t0, t1),
    open_s: s(t1, t2),
    ingest_s: s(t2, t3),
    close_s: s(t3, t4),
    total_s: s(t0, t4),
    load: load(),
  };
}

const QUERY = `SELECT r.experiment, r.variant, count(*) AS runs, min(m.value) AS best_val_loss
FROM runs r JOIN metrics m USING (hash)
WHERE m.split = 'val' AND m.name = 'loss' AND r.status = 'completed'
GROUP BY ALL ORDER BY best_val_loss LIMIT 10`;

async function measureSize(n: number) {
  const results = `${values.dir}-${n}`;
  const env = { FINELAB_RESULTS: results };
  const out: Record<string, unknown> = { n_runs: n };
  let exists = false;
  try {
    exists = (await Deno.stat(`${results}/cache`)).isDirectory;
  } catch { /* generate */ }
  if (!exists || !values.keep) {
    await Deno.remove(results, { recursive: true }).catch(() => {});
    log(`generating ${n} runs under ${results}`);
    const g = await generateCache(results, n);
    out.generate = { seconds: +g.seconds.toFixed(1), experiments: g.experiments.length, load: load() };
  }
  const skip = new Set(values.skip!.split(","));
  const haveDb = await Deno.stat(`${results}/results.duckdb`).then(() => true, () => false);
  if (!(skip.has("rebuild") && haveDb)) {
    log(`${n}: db rebuild`);
    out.rebuild = await timed(task("db", "rebuild"), env);
  }
  log(`${n}: ingest one (x${values.ingests})`);
  out.ingest_one = await ingestMany(results, n, Number(values.ingests));
  log(`${n}: runs`);
  if (!skip.has("runs")) {
    // The first `runs` after the ingests lists the cache folder again (entries were added); the second reuses it.
    out.runs = await timed(task("runs"), env);
    out.runs_again = await timed(task("runs"), env);
    out.runs_all = await timed(task("runs", "--all"), env); // every row (the default shows the newest 50)
    out.runs_experiment = await timed(task("runs", "--experiment", "synth-0007"), env);
    // Every entry read and verified (what finds an entry damaged after ingest): minutes at 100k, so up to 20k.
    if (n <= 20_000) out.runs_verify = await timed(task("runs", "--verify"), env);
  }
  log(`${n}: query`);
  if (!skip.has("query")) {
    out.query = await timed(task("query", QUERY), env);
    out.query_trivial = await timed(task("query", "SELECT 1 AS one"), env);
  }
  log(`${n}: dashboard`);
  if (!skip.has("dashboard")) out.dashboard = await dashboard(env, "synth-0007");
  log(`${n}: gc (dry run)`);
  if (!skip.has("gc")) {
    const gc = await timed(task("gc"), env);
    out.gc = { ...gc, out: gc.out.split("\n").filter((l) => /dry run|nothing/.test(l)).join(" ") };
  }
  const cacheBytes = await duBytes(`${results}/cache`);
  const dbBytes = (await Deno.stat(`${results}/results.duckdb`)).size;
  out.bytes_per_run = { cache: Math.round(cacheBytes / (n + 1)), db: Math.round(dbBytes / (n + 1)) };
  if (!values.keep) await Deno.remove(results, { recursive: true });
  return out;
}

async function measureSweep(n: number) {
  const dir = `${values.dir}-sweep`;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${dir}/experiments`, { recursive: true });
  await Deno.writeTextFile(`${dir}/experiments/sweep.ts`, sweepModule(n));
  const env = { FINELAB_RESULTS: `${dir}/results`, FINELAB_EXPERIMENTS: `${dir}/experiments` };
  // The dataset is prepared once (not part of the measurement).
  await timed(task("exp", "sweep", "--scale", "tiny", "--dry-run"), env);
  const dry = await timed(task("exp", "sweep", "--scale", "tiny", "--dry-run"), env);
  const plan = await timed(["deno", "run", "-A", "bench/store_sweep.ts", `${dir}/experiments`, `${dir}/results`], env);
  return {
    runs: n,
    dry_run: { ...dry, out: undefined },
    plan_in_process: JSON.parse(plan.out || "null"),
    load: load(),
  };
}

if (import.meta.main) {
  const report: Record<string, unknown> = {
    machine: { cpus: navigator.hardwareConcurrency, load_avg_1m_start: load() },
    at: new Date().toISOString(),
  };
  if (values.concurrency) {
    report.concurrency = await runConcurrency({
      runs: Number(values.concurrency),
      runners: Number(values.runners),
      rebuildAt: Number(values["rebuild-at"]),
      dir: `${values.dir}-conc`,
    });
  } else {
    report.sizes = [] as unknown[];
    for (const n of values.sizes!.split(",").map(Number)) (report.sizes as unknown[]).push(await measureSize(n));
    if (Number(values.sweep) > 0) report.sweep = await measureSweep(Number(values.sweep));
  }
  report.load_avg_1m_end = load();
  const text = JSON.stringify(report, null, 2);
  console.log(text);
  await Deno.mkdir(values.out!, { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  await Deno.writeTextFile(`${values.out}/${stamp}-store${values.concurrency ? "-concurrency" : ""}.json`, text + "\n");
}
