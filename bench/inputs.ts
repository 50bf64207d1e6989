/**
 * The bench's shared inputs: each FFN kind's reference model and its seed-1 initial weights, and the
 * batches every backend and the peer train on.
 *
 * @module
 */
import { DEFAULT_DATA, type ModelConfig } from "../lib/core/config.ts";
import { type Tokens, trainBatch } from "../lib/data/batches.ts";
import { loadDataset } from "../lib/data/dataset.ts";
import { initValues } from "../lib/models/transformer.ts";
import { loadFfn, paramSpecs } from "../lib/models/variants.ts";
import type { SafeTensor } from "../lib/train/safetensors.ts";
import { writeSafetensors } from "../lib/train/safetensors.ts";
import { Rng } from "../lib/util/rng.ts";

/** FFN kinds benched by default (those that exist): the reference model and its twins with each FFN's defaults. */
export const DEFAULT_KINDS = ["dense", "finedeep", "dsmoe", "finermoe"];

/** Writes the seed-1 initial weights of `cfg` (with the config and specs as metadata). */
export async function writeWeights(path: string, cfg: ModelConfig, seed = 1): Promise<void> {
  const ffn = await loadFfn(cfg.ffn.kind);
  const specs = paramSpecs(cfg, ffn);
  const tensors: [string, SafeTensor][] = specs.map((s) => [s.name, {
    dtype: "F32",
    shape: [...s.shape],
    data: initValues(s, seed),
  }]);
  await writeSafetensors(path, tensors, {
    model_config: JSON.stringify(cfg),
    param_specs: JSON.stringify(specs.map((s) => ({ name: s.name, shape: s.shape, decay: s.decay }))),
    seed: String(seed),
  });
}

/** Token source of the batches: the default dataset's train split, or random bytes when it cannot load. */
export async function benchTokens(log: (m: string) => void): Promise<{ tokens: Tokens; source: string }> {
  try {
    const d = await loadDataset({ ...DEFAULT_DATA, max_tokens: 2_000_000 }, { log: () => {} });
    return {
      tokens: d.train,
      source: `gutenberg train split (${d.train.length} bytes, ${d.manifest.hash.slice(0, 12)})`,
    };
  } catch (e) {
    log(`bench: the default dataset did not load (${(e as Error).message.split("\n")[0]}); using random bytes`);
    const r = new Rng(5);
    return { tokens: Uint8Array.from({ length: 400_000 }, () => r.int(256)), source: "random bytes (Rng 5)" };
  }
}

/** Writes `count` batches [count, B, T] of x and y (int32). */
export async function writeBatches(path: string, tokens: Tokens, count: number, B: number, T: number) {
  const x = new Int32Array(count * B * T), y = new Int32Array(count * B * T);
  for (let s = 0; s < count; s++) {
    const b = trainBatch(tokens, 1, s, { batchSize: B, seqLen: T });
    x.set(b.x, s * B * T);
    y.set(b.y, s * B * T);
  }
  await writeSafetensors(path, [["x", { dtype: "I32", shape: [count, B, T], data: x }], ["y", {
    dtype: "I32",
    shape: [count, B, T],
    data: y,
  }]]);
}
