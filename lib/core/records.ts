/**
 * The records a run leaves in its cache directory `results/cache/<hash>/`.
 * The cache is the source of truth; the DuckDB store is rebuilt from these.
 *
 * Files of a cache entry (each written atomically: temp file + rename):
 * - `manifest.json`  RunManifest: config, hash inputs, environment.
 * - `config.yaml`    the resolved RunConfig, for humans.
 * - `status.json`    RunStatusRecord: queued/running/completed/failed/interrupted, heartbeat, and the
 *                    sha256 of the other files (checked before any of them is trusted) and of itself.
 * - `summary.json`   RunSummary: final metrics (only once the run ended).
 * - `metrics.jsonl`  MetricRow per line: every logged step, appended while the run trains (a live view; a resumed
 *                    attempt cuts it back to its checkpoint's rows) and rewritten atomically when it ends.
 * - `checkpoints/`   resumable checkpoints (lib/train) and `final/`.
 * - `attempts.jsonl` one line per training attempt start and end (pid, host, time, outcome): history.
 *
 * @module
 */
import type { RunConfig } from "./config.ts";

/** One logged scalar. `split` tells where it was measured. */
export interface MetricRow {
  step: number;
  split: "train" | "val";
  name: string;
  value: number;
}

/** Lifecycle of a run. `interrupted` is derived: a `running` run whose owner process is gone. */
export type RunStatus = "queued" | "running" | "completed" | "failed" | "diverged" | "interrupted";

/** Why a run failed (NaN/Inf loss, an exception). */
export interface RunFailure {
  step: number;
  reason: string;
  last_good_loss: number | null;
}

/** Final numbers of a run. Extra metrics (NSAR, router stats, ...) go to `extra`. */
export interface RunSummary {
  /** `diverged`: trained to the end, but the loss ended far above its start (lib/runner/divergence.ts). */
  status: "completed" | "failed" | "diverged";
  steps_done: number;
  tokens_seen: number;
  final_train_loss: number | null;
  val_loss: number | null;
  val_ppl: number | null;
  params: number;
  flops_per_token: number;
  tokens_per_sec: number;
  /**
   * Measured inference speed at batch 1 of the final model (lib/models/sparse_metrics.ts
   * measureInferenceSpeed; no KV cache): prompt tokens/s of one forward pass over a seq_len prompt, and
   * greedy-decoding tokens/s. Timings, so `--verify` ignores them. Null when not measured (failed runs,
   * or the measurement itself failed); absent in runs cached before they existed.
   */
  prefill_tokens_per_sec?: number | null;
  decode_tokens_per_sec?: number | null;
  wall_s: number;
  /** Steps this process trained (less than steps_done after a resume). */
  steps_this_attempt: number;
  resumed_from_step: number | null;
  failure: RunFailure | null;
  extra: Record<string, number>;
}

/** Environment of the process that trained the run (recorded, not hashed unless listed in hash inputs). */
export interface RunEnvironment {
  deno: string;
  v8: string;
  typescript: string;
  tfjs: string;
  backend: string;
  backend_details: Record<string, string | number | boolean | null>;
  os: string;
  arch: string;
  cpu: string;
  cpus: number;
  hostname: string;
  git_commit: string | null;
  git_dirty: boolean | null;
}

/** Everything that went into the run hash, as printed by `--explain`. */
export interface HashInputs {
  key_schema: number;
  config: RunConfig;
  code: Record<string, string>;
  deps: Record<string, string>;
  data: string;
  backend: string;
  tfjs: string;
  parent: Record<string, string>;
}

/** Identity and provenance of a run. */
export interface RunManifest {
  hash: string;
  run_id: string;
  experiment: string;
  variant: string;
  seed: number;
  config: RunConfig;
  hash_inputs: HashInputs;
  env: RunEnvironment;
  created_at: string;
}

/** `status.json`. */
export interface RunStatusRecord {
  status: RunStatus;
  pid: number | null;
  hostname: string | null;
  heartbeat_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  step: number | null;
  /** Why the last attempt stopped with an error (an exception, not a NaN: those are in summary.failure). */
  error?: string | null;
  /** sha256 hex of the entry's files this status vouches for (manifest.json, config.yaml; summary.json and metrics.jsonl once finished). */
  files?: Record<string, string>;
  /** sha256 hex of this record's canonical JSON without this field: a corrupt status.json is never trusted. */
  sha256?: string;
}

/** All a store needs to know of one run. */
export interface RunRecord {
  manifest: RunManifest;
  status: RunStatusRecord;
  summary: RunSummary | null;
  metrics: MetricRow[];
  /**
   * Training attempts started (the `start` events of attempts.jsonl), when the reader counted them (the store's
   * `runs.attempts`, which `deno task runs` shows without reading the entry again).
   */
  attempts?: number;
}
