/**
 * Data throughput beside the training step: tokenizer speed (MB/s of text) for the byte
 * tokenizer, our byte-level BPE encoder and tokenizers.js on the same tokenizer.json, and
 * the sharded loader (tokens/s that `trainBatch` serves from verified token shards on disk),
 * against one training step of the default model (lib/train/bench.ts).
 *
 *   deno task bench:data [--backend wasm] [--mb 2] [--steps 5]
 *
 * Prints one JSON object. The loader must serve a step's tokens in a small fraction of the
 * step's time for it not to be the bottleneck; `loader_share_of_step` says how small.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BackendName, DEFAULT_DATA, DEFAULT_MODEL } from "../lib/core/config.ts";
import { closeDataset, loadDataset, trainBatch } from "../lib/data/mod.ts";
import { trainBpe } from "../lib/data/bpe.ts";
import { ByteTokenizer, HfTokenizer } from "../lib/data/tokenizer.ts";
import { benchmark } from "../lib/train/bench.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    backend: { type: "string", default: "wasm" },
    mb: { type: "string", default: "2" },
    steps: { type: "string", default: "5" },
  },
});
const log = (m: string) => console.error(m);

// Text: the gutenberg training split (bytes dataset), first --mb MB, decoded.
const bytes = await loadDataset({ ...DEFAULT_DATA, dataset: "gutenberg" }, { log });
const n = Math.min(bytes.train.length, Math.round(Number(values.mb) * 1e6));
const text = new TextDecoder().decode(Uint8Array.from(bytes.train.window(0, n)));
const mb = new TextEncoder().encode(text).length / 1e6;

function rate(f: () => ArrayLike<number>): { mb_per_s: number; tokens: number; seconds: number } {
  const t0 = performance.now();
  const ids = f();
  const s = (performance.now() - t0) / 1000;
  return { mb_per_s: +(mb / s).toFixed(3), tokens: ids.length, seconds: +s.toFixed(3) };
}
log(`data bench: ${mb.toFixed(2)} MB of gutenberg text`);
const bpeJson = trainBpe([text.slice(0, 1_000_000)], 2048);
const bpe = new HfTokenizer(bpeJson, "bench bpe");
const tokenizers = {
  bytes: rate(() => new ByteTokenizer().encode(text)),
  bpe2k_fast: rate(() => bpe.encode(text)),
  bpe2k_tokenizers_js: rate(() => bpe.encodeWithLibrary(text)),
};

// Loader: trainBatch windows from the gutenberg-bpe2k shards (the shards are built on first use).
const ds = await loadDataset({ ...DEFAULT_DATA, dataset: "gutenberg-bpe2k" }, { log });
const B = 16, T = DEFAULT_MODEL.seq_len, reps = 2000;
let t0 = performance.now();
for (let s = 0; s < reps; s++) trainBatch(ds.train, 1, s, { batchSize: B, seqLen: T });
const loaderS = (performance.now() - t0) / 1000;
const loader = {
  batches: reps,
  tokens_per_batch: B * T,
  ms_per_batch: +((1000 * loaderS) / reps).toFixed(4),
  tokens_per_s: Math.round((reps * B * T) / loaderS),
};
closeDataset(ds);
closeDataset(bytes);

t0 = performance.now();
const step = await benchmark({
  backend: values.backend as BackendName,
  model: { ...DEFAULT_MODEL, vocab_size: 2048 },
  steps: Number(values.steps),
  warmup: 2,
  batchSize: B,
});
console.log(JSON.stringify(
  {
    machine: { cpus: navigator.hardwareConcurrency, load_avg_1m: Deno.loadavg()[0] },
    text_mb: +mb.toFixed(3),
    tokenizers,
    loader,
    train_step: {
      backend: step.backend,
      model: "default (d128 x 4 layers, seq 128), vocab 2048",
      batch: B,
      median_ms: +step.median_ms.toFixed(1),
      tokens_per_s: Math.round(step.tokens_per_sec),
    },
    loader_share_of_step: +(loader.ms_per_batch / step.median_ms).toFixed(5),
  },
  null,
  2,
));
