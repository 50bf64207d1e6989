/**
 * Test fixture: synthetic {@link RunRecord}s shaped exactly like the cache entries a real run leaves,
 * with a deterministic, plausible loss curve. Used by the store and plot tests.
 *
 * @module
 */
import { DEFAULT_DATA, DEFAULT_MODEL, DEFAULT_TRAIN, type FfnConfig, type RunConfig } from "../core/config.ts";
import type { MetricRow, RunRecord } from "../core/records.ts";
import { mixSeed, Rng } from "../util/rng.ts";
import { openStore, type Store } from "./mod.ts";

/** Options of {@link syntheticRunRecord}. */
export interface SyntheticRunOptions {
  experiment?: string;
  variant?: string;
  seed?: number;
  /** Default "completed". Failed runs get a failure at 60% of the steps; running runs have no summary or metrics. */
  status?: "completed" | "failed" | "running";
  /** Training steps (one train-loss row per step). Default 100. */
  steps?: number;
  /** Validation every N steps (and at the end). Default 25. */
  evalEvery?: number;
  /** FFN config, any kind and options (the store takes whatever a run recorded). Default `{ kind: "dense" }`. */
  ffn?: FfnConfig | { kind: string; [option: string]: unknown };
  /** Final loss level the curve decays to. Default 2.0. */
  floor?: number;
  /** summary.extra. Default `{}`. */
  extra?: Record<string, number>;
  /** Edits the config after defaults (e.g. to add a key). */
  edit?: (config: RunConfig) => void;
  /** Explicit hash; default derived from experiment/variant/seed/steps/status. */
  hash?: string;
}

/** A deterministic fake run record. Losses decay exponentially from ln(256) to `floor`, with small noise. */
export function syntheticRunRecord(opts: SyntheticRunOptions = {}): RunRecord {
  const experiment = opts.experiment ?? "synthetic";
  const variant = opts.variant ?? "dense";
  const seed = opts.seed ?? 0;
  const steps = opts.steps ?? 100;
  const evalEvery = opts.evalEvery ?? 25;
  const status = opts.status ?? "completed";
  const floor = opts.floor ?? 2.0;
  const config: RunConfig = {
    experiment,
    variant,
    seed,
    backend: "cpu",
    data: { ...DEFAULT_DATA },
    model: { ...DEFAULT_MODEL, ffn: (opts.ffn ?? { kind: "dense" }) as FfnConfig },
    train: { ...DEFAULT_TRAIN, steps, eval_every: evalEvery },
  };
  opts.edit?.(config);
  const key = `${experiment}/${variant}/${seed}/${steps}/${status}`;
  const hash = opts.hash ??
    [0, 1, 2, 3, 4, 5, 6, 7].map((i) => mixSeed(hashString(key), i).toString(16).padStart(8, "0"))
      .join("");
  const rng = new Rng(mixSeed(hashString(key), 99));
  const failAt = status === "failed" ? Math.floor(steps * 0.6) : steps;
  const lossAt = (step: number) => floor + (Math.log(256) - floor) * Math.exp(-step / (steps / 5));
  const metrics: MetricRow[] = [];
  if (status !== "running") {
    for (let step = 1; step <= failAt; step++) {
      metrics.push({ step, split: "train", name: "loss", value: lossAt(step) + (rng.next() - 0.5) * 0.1 });
      if (step % evalEvery === 0 || step === steps) {
        const v = lossAt(step) + 0.05 + rng.next() * 0.02;
        metrics.push({ step, split: "val", name: "loss", value: v });
        metrics.push({ step, split: "val", name: "ppl", value: Math.exp(v) });
      }
    }
  }
  const lastVal = [...metrics].reverse().find((m) => m.split === "val" && m.name === "loss")?.value ?? null;
  const lastTrain = [...metrics].reverse().find((m) => m.split === "train")?.value ?? null;
  const created = new Date(Date.UTC(2025, 0, 1, 12, 0, seed)).toISOString();
  const finished = new Date(Date.UTC(2025, 0, 1, 12, 5, seed)).toISOString();
  return {
    manifest: {
      hash,
      run_id: `${variant}-s${seed}`,
      experiment,
      variant,
      seed,
      config,
      hash_inputs: {
        key_schema: 1,
        config,
        code: {},
        deps: {},
        data: "data-hash",
        backend: "cpu",
        tfjs: "4.22.0",
        parent: {},
      },
      env: {
        deno: "2.9.6",
        v8: "15.0.245.2-rusty",
        typescript: "6.0.3",
        tfjs: "4.22.0",
        backend: "cpu",
        backend_details: {},
        os: "linux",
        arch: "x86_64",
        cpu: "Test CPU @ 2.0GHz",
        cpus: 2,
        hostname: "testhost",
        git_commit: "0123456789abcdef0123456789abcdef01234567",
        git_dirty: false,
      },
      created_at: created,
    },
    status: {
      status,
      pid: status === "running" ? 4242 : null,
      hostname: "testhost",
      heartbeat_at: finished,
      started_at: created,
      finished_at: status === "running" ? null : finished,
      step: status === "running" ? Math.floor(steps / 2) : failAt,
    },
    summary: status === "running" ? null : {
      status,
      steps_done: failAt,
      tokens_seen: failAt * config.train.batch_size * config.model.seq_len,
      final_train_loss: lastTrain,
      val_loss: status === "completed" ? lastVal : null,
      val_ppl: status === "completed" && lastVal !== null ? Math.exp(lastVal) : null,
      params: 890_000,
      flops_per_token: 6 * 890_000,
      tokens_per_sec: 1234.5,
      prefill_tokens_per_sec: status === "completed" ? 5678.5 : null,
      decode_tokens_per_sec: status === "completed" ? 91.25 : null,
      wall_s: 12.5,
      steps_this_attempt: failAt,
      resumed_from_step: null,
      failure: status === "failed" ? { step: failAt, reason: "loss is NaN", last_good_loss: lastTrain } : null,
      extra: opts.extra ?? {},
    },
    metrics,
  };
}

/** FNV-1a of a string (only to derive fixture seeds and hashes). */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The experiments row the store tests ingest with their runs. */
export const TEST_EXPERIMENTS = [{
  id: "synthetic",
  description: "fixture",
  module: "experiments/synthetic.ts",
  n_runs: 2,
}];

/** Runs `fn` on a store opened in a new temporary folder (closed and removed afterwards). */
export async function withTempStore(fn: (store: Store, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "finelab_store_" });
  const store = await openStore(`${dir}/results.duckdb`);
  try {
    await fn(store, dir);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** A dense and a Finedeep run (seed 0). */
export function twoRuns(): RunRecord[] {
  return [
    syntheticRunRecord({ variant: "dense", seed: 0 }),
    syntheticRunRecord({ variant: "finedeep", seed: 0, ffn: { kind: "finedeep", n_experts: 4, router: "softmax" } }),
  ];
}
