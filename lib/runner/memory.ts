/**
 * Memory estimate of a training run, checked before anything is allocated: a model that cannot fit is
 * refused with the estimate and the machine's memory instead of swapping the machine to a halt.
 *
 * The estimate is deliberately simple (float32 everywhere):
 * - weights, gradients and AdamW's two moments: 4 x params x 4 bytes;
 * - activations kept for the backward pass, per layer: about 14 x d_model plus 2 x the FFN's hidden width
 *   (from its FLOPs) floats per token, plus 3 attention maps (n_heads x seq_len^2) per sequence; the logits
 *   (3 x vocab per token); times 2 for the temporaries of tfjs's tape.
 *
 * @module
 */
import type { RunConfig } from "../core/config.ts";
import { budgetOf } from "../models/budget.ts";
import type { HashedRun, Plan } from "./plan.ts";
import { isFinished } from "./cache.ts";
import { MemoryError } from "./memory_error.ts";

export { MemoryError };

/** A run's estimated peak memory, bytes, and its parts. */
export interface MemoryEstimate {
  params: number;
  /** Weights, gradients and optimizer moments. */
  state: number;
  /** Activations of one training step at the run's batch size (with the tape's temporaries). */
  activations: number;
  total: number;
}

/** Factor on the activations for the temporaries tfjs's tape keeps. */
const TAPE_FACTOR = 2;

/** Estimates the peak memory of training `cfg` (no tensor is created). */
export async function estimateMemory(cfg: RunConfig): Promise<MemoryEstimate> {
  const b = await budgetOf(cfg.model);
  const { d_model: d, n_layers: L, n_heads: h, seq_len: T, vocab_size: V } = cfg.model;
  const B = cfg.train.batch_size;
  const ffnHidden = b.ffn_flops_per_token / L / (2 * d);
  const perLayer = B * T * (14 * d + 2 * ffnHidden) + 3 * B * h * T * T;
  const activations = 4 * TAPE_FACTOR * (L * perLayer + 3 * B * T * V);
  const state = 4 * 4 * b.params;
  return { params: b.params, state, activations, total: state + activations };
}

/** Bytes as "1.2 GiB", "340 MiB". */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

/** The machine's memory (total and available now), or null where Deno cannot tell. */
export function machineMemory(): { total: number; available: number } | null {
  try {
    const m = Deno.systemMemoryInfo();
    return { total: m.total, available: m.available };
  } catch {
    return null;
  }
}

/**
 * Throws a {@link MemoryError} (with the estimate and the machine's memory) when the largest run of the plan
 * still to train would not fit in the machine's available memory; finished runs are not counted. Checked
 * before anything is allocated.
 */
export async function checkMemory(plan: Plan): Promise<void> {
  const mem = machineMemory();
  if (!mem) return;
  let worst: { run: HashedRun; est: MemoryEstimate } | null = null;
  for (const run of [...plan.dependencies, ...plan.runs]) {
    if (await isFinished(run.paths)) continue;
    const est = await estimateMemory(run.config);
    if (!worst || est.total > worst.est.total) worst = { run, est };
  }
  if (!worst || worst.est.total <= mem.available) return;
  const { run, est } = worst;
  throw new MemoryError(
    `run ${run.run_id} would need about ${formatBytes(est.total)} of memory (${est.params.toExponential(2)} ` +
      `parameters: ${formatBytes(est.state)} for weights, gradients and AdamW state; ${formatBytes(est.activations)} ` +
      `of activations at batch ${run.config.train.batch_size}), but this machine has ${formatBytes(mem.available)} ` +
      `available of ${formatBytes(mem.total)}. Nothing was trained. Make the model or train.batch_size smaller, or ` +
      "pass --no-memory-check (or --force) to train it anyway.",
  );
}
