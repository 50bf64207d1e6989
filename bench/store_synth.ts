/**
 * Synthetic cache entries for the store benchmark (bench/store.ts): `n` runs spread over a few hundred
 * experiments, each a complete, verified entry as a finished run leaves it (manifest.json, config.yaml,
 * status.json sealed with the sha256 of every file, summary.json, metrics.jsonl, attempts.jsonl; no
 * checkpoints), plus each experiment's plan file (`cache/plans/<id>.json`, what `current_runs` shows).
 *
 * Realistic where it matters for the store: a real manifest's size (the code map of a dense run's
 * module graph, its hash inputs and environment), the metric rows a 300-step run logs (train loss every
 * step, lr and grad norm every 10 steps, val loss and ppl every 50), a summary with a few dozen extra
 * metrics, 97% completed, 2% failed (NaN) and 1% interrupted runs (status `running`, dead process).
 * Hashes are sha256 of the run's index and seed (not of hash inputs: the cache never recomputes them).
 *
 *   deno run -A bench/store_synth.ts <results-dir> <n> [--experiments k] [--seed s]
 *
 * @module
 */
import { stringify as toYaml } from "yaml";
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { DEFAULT_DATA, DEFAULT_MODEL, DEFAULT_TRAIN, type RunConfig } from "../lib/core/config.ts";
import type { RunManifest, RunStatusRecord, RunSummary } from "../lib/core/records.ts";
import { KEY_SCHEMA, runCode } from "../lib/runner/identity.ts";
import { sealStatus } from "../lib/runner/cache.ts";
import { REPO_ROOT } from "../lib/util/paths.ts";

/** Options of {@link generateCache}. */
export interface SynthOptions {
  /** Number of experiments (default: min(400, max(1, n / 5))). */
  experiments?: number;
  /** Steps per run (default 300). */
  steps?: number;
  /** Seed of the synthetic values (default 1). */
  seed?: number;
}

/** What {@link generateCache} wrote. */
export interface SynthReport {
  runs: number;
  experiments: string[];
  hashes: string[];
  seconds: number;
}

const sha256 = (b: string) => createHash("sha256").update(b).digest("hex");

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The metric rows of one run as metrics.jsonl text (train loss per step, lr/grad_norm every 10, val every 50). */
export function metricsText(steps: number, r: () => number, failAt: number | null): string {
  const parts: string[] = [];
  const floor = 1.2 + r(), speed = 0.01 + 0.02 * r();
  const end = failAt ?? steps;
  for (let s = 0; s < end; s++) {
    const loss = floor + 4.3 * Math.exp(-speed * s) + 0.05 * (r() - 0.5);
    parts.push(`{"step":${s},"split":"train","name":"loss","value":${loss}}\n`);
    if (s % 10 === 0) {
      parts.push(`{"step":${s},"split":"train","name":"lr","value":${1e-3 * Math.min(1, (s + 1) / 20)}}\n`);
      parts.push(`{"step":${s},"split":"train","name":"grad_norm","value":${0.5 + r()}}\n`);
    }
    if ((s + 1) % 50 === 0 || s === steps - 1) {
      const v = loss + 0.05 + 0.02 * r();
      parts.push(`{"step":${s + 1},"split":"val","name":"loss","value":${v}}\n`);
      parts.push(`{"step":${s + 1},"split":"val","name":"ppl","value":${Math.exp(v)}}\n`);
    }
  }
  return parts.join("");
}

/** The (last) value of a metric in metrics text. */
function lastValue(text: string, split: string, name: string): number | null {
  const key = `"split":"${split}","name":"${name}","value":`;
  const i = text.lastIndexOf(key);
  if (i < 0) return null;
  const v = Number(text.slice(i + key.length, text.indexOf("}", i)));
  return Number.isFinite(v) ? v : null;
}

/** Experiment ids of a synthetic cache: `synth-0000`, ... */
export const experimentId = (i: number) => `synth-${String(i).padStart(4, "0")}`;

/**
 * Writes `n` synthetic finished runs into `<results>/cache/` (files written directly, not atomically:
 * nothing reads the folder while it is generated). Returns the hashes in generation order.
 */
export async function generateCache(results: string, n: number, opts: SynthOptions = {}): Promise<SynthReport> {
  const t0 = performance.now();
  const nExp = opts.experiments ?? Math.min(400, Math.max(1, Math.floor(n / 5)));
  const steps = opts.steps ?? 300;
  const r = rng(opts.seed ?? 1);
  const cache = `${results}/cache`;
  await Deno.mkdir(`${cache}/plans`, { recursive: true });
  const code = await runCode({ kind: "dense", backend: "native" }, { repoRoot: REPO_ROOT });
  const deps = Object.fromEntries(code.npm.map((p) => [p, `sha512-${sha256(p)}${sha256(p + "!")}`]));
  const env = {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    tfjs: "4.22.0",
    backend: "native",
    backend_details: { blas: "openblas", threads: 2, simd: "avx512" },
    os: "linux",
    arch: "x86_64",
    cpu: "AMD EPYC (synthetic)",
    cpus: 2,
    hostname: "synth-node",
    git_commit: "0".repeat(40),
    git_dirty: false,
  };
  const plans = Array.from({ length: nExp }, () => [] as { hash: string; run_id: string }[]);
  const hashes: string[] = [];
  const enc = new TextEncoder();
  const write = (path: string, text: string) => Deno.writeFileSync(path, enc.encode(text));
  const base = Date.parse("2026-11-01T00:00:00Z");
  for (let i = 0; i < n; i++) {
    const e = i % nExp, k = Math.floor(i / nExp);
    const experiment = experimentId(e);
    const variant = `v${k % 10}`, seed = Math.floor(k / 10);
    const run_id = `${variant}/s${seed}`;
    const hash = sha256(`synth ${opts.seed ?? 1} ${i}`);
    const config: RunConfig = {
      experiment,
      variant,
      seed,
      backend: "native",
      data: { ...DEFAULT_DATA, max_tokens: 200_000 },
      model: { ...DEFAULT_MODEL, d_ff: 128 * (1 + (k % 10)), ffn: { kind: "dense" } },
      train: { ...DEFAULT_TRAIN, steps, lr: 1e-3 * (1 + (e % 5)) },
    };
    const created = new Date(base + i * 60_000).toISOString();
    const manifest: RunManifest = {
      hash,
      run_id,
      experiment,
      variant,
      seed,
      config,
      hash_inputs: {
        key_schema: KEY_SCHEMA,
        config,
        code: code.code,
        deps,
        data: sha256(`data ${e % 7}`),
        backend: "native",
        tfjs: "4.22.0",
        parent: {},
      },
      env,
      created_at: created,
    };
    const dir = `${cache}/${hash}`;
    Deno.mkdirSync(dir, { recursive: true });
    const u = r();
    const kind = u < 0.97 ? "completed" : u < 0.99 ? "failed" : "interrupted";
    const failAt = kind === "failed" ? Math.floor(steps * r()) : null;
    const manifestText = JSON.stringify(manifest, null, 2) + "\n";
    const configText = `# finelab run ${hash}\n# ${experiment} ${run_id}; resolved config (all defaults applied)\n` +
      toYaml(config);
    write(`${dir}/manifest.json`, manifestText);
    write(`${dir}/config.yaml`, configText);
    const files: Record<string, string> = { "manifest.json": sha256(manifestText), "config.yaml": sha256(configText) };
    const started = new Date(base + i * 60_000 + 1000).toISOString();
    const finished = new Date(base + i * 60_000 + 50_000).toISOString();
    const attempts = [{ event: "start", pid: 1000 + i, hostname: "synth-node", at: started }];
    let status: RunStatusRecord;
    if (kind === "interrupted") {
      const step = Math.floor(steps * r());
      write(`${dir}/metrics.jsonl`, metricsText(step, r, null)); // a live view; the status does not vouch for it
      status = {
        status: "running",
        pid: 1000 + i,
        hostname: "synth-node",
        heartbeat_at: started,
        started_at: started,
        finished_at: null,
        step,
        files,
      };
    } else {
      const metrics = metricsText(steps, r, failAt);
      const json = JSON.stringify(summaryOf(metrics, { steps, failAt, r }), null, 2) + "\n";
      write(`${dir}/metrics.jsonl`, metrics);
      write(`${dir}/summary.json`, json);
      files["metrics.jsonl"] = sha256(metrics);
      files["summary.json"] = sha256(json);
      status = {
        status: kind,
        pid: 1000 + i,
        hostname: "synth-node",
        heartbeat_at: finished,
        started_at: started,
        finished_at: finished,
        step: failAt ?? steps,
        files,
      };
      attempts.push(
        {
          event: "end",
          pid: 1000 + i,
          hostname: "synth-node",
          at: finished,
          step: failAt ?? steps,
          outcome: kind,
          detail: kind === "failed" ? "loss is NaN" : null,
        } as typeof attempts[number],
      );
    }
    write(`${dir}/status.json`, JSON.stringify(sealStatus(status), null, 2) + "\n");
    write(`${dir}/attempts.jsonl`, attempts.map((a) => JSON.stringify(a) + "\n").join(""));
    plans[e].push({ hash, run_id });
    hashes.push(hash);
  }
  const experiments = plans.map((_, e) => experimentId(e));
  plans.forEach((runs, e) => {
    const row = {
      id: experimentId(e),
      description: `synthetic experiment ${e}`,
      module: `experiments/${experimentId(e)}.ts`,
      n_runs: runs.length,
      updated_at: new Date(base + n * 60_000).toISOString(),
      plan: { scale: "default", runs },
    };
    write(`${cache}/plans/${row.id}.json`, JSON.stringify(row, null, 2) + "\n");
  });
  return { runs: n, experiments, hashes, seconds: (performance.now() - t0) / 1000 };
}

function summaryOf(metrics: string, o: { steps: number; failAt: number | null; r: () => number }): RunSummary {
  const done = o.failAt ?? o.steps;
  const valLoss = o.failAt === null ? lastValue(metrics, "val", "loss") : null;
  const extra: Record<string, number> = { params_total: 890_000, params_active: 890_000 };
  for (let b = 0; b < 24; b++) extra[`hist_gate_b${b}`] = o.r() / 10;
  return {
    status: o.failAt === null ? "completed" : "failed",
    steps_done: done,
    tokens_seen: done * 16 * 128,
    final_train_loss: o.failAt === null ? lastValue(metrics, "train", "loss") : null,
    val_loss: valLoss,
    val_ppl: valLoss === null ? null : Math.exp(valLoss),
    params: 890_000,
    flops_per_token: 5_300_000,
    tokens_per_sec: 10_000 + 5_000 * o.r(),
    prefill_tokens_per_sec: null,
    decode_tokens_per_sec: null,
    wall_s: 40 + 20 * o.r(),
    steps_this_attempt: done,
    resumed_from_step: null,
    failure: o.failAt === null
      ? null
      : { step: o.failAt, reason: "loss is NaN", last_good_loss: lastValue(metrics, "train", "loss") },
    extra,
  };
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { experiments: { type: "string" }, seed: { type: "string" } },
  });
  const [dir, n] = positionals;
  if (!dir || !Number.isInteger(Number(n))) {
    console.error("usage: store_synth.ts <results-dir> <n> [--experiments k] [--seed s]");
    Deno.exit(2);
  }
  const rep = await generateCache(dir, Number(n), {
    experiments: values.experiments ? Number(values.experiments) : undefined,
    seed: values.seed ? Number(values.seed) : undefined,
  });
  console.log(
    `${rep.runs} runs in ${rep.experiments.length} experiments under ${dir}/cache (${rep.seconds.toFixed(1)} s)`,
  );
}
