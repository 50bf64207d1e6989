/**
 * dense-bpe: dense-baseline's model on gutenberg-bpe2k (a byte-level BPE of 2,048 tokens
 * trained on the training split) instead of bytes: the end-to-end check of the data layer's
 * trained tokenizer, token shards and vocab_size taken from the dataset. A BPE token carries
 * ~3 bytes of text, so the same steps see ~3x the text; val_loss is per token (not
 * comparable to bytes: divide by bytes per token for bits per byte).
 */
import { defineExperiment } from "../lib/experiment/mod.ts";

export default defineExperiment({
  id: "dense-bpe",
  description: "Dense SwiGLU decoder on gutenberg with a 2,048-token BPE trained on its training split.",
  seeds: [0, 1],
  data: { dataset: "gutenberg-bpe2k" },
  model: { d_model: 128, n_layers: 4, n_heads: 4, d_ff: 384, seq_len: 128, ffn: { kind: "dense" } },
  train: {
    steps: 150,
    batch_size: 16,
    lr: 2e-3,
    warmup_steps: 15,
    eval_every: 50,
    eval_batches: 8,
    checkpoint_every: 50,
  },
  variants: { dense: {} },
  scales: {
    // Used by the tests: seconds on the cpu backend (after the BPE is trained and the splits tokenised once).
    tiny: {
      data: { max_tokens: 60_000 },
      model: { d_model: 32, n_layers: 2, n_heads: 2, d_ff: 64, seq_len: 32 },
      train: { steps: 8, batch_size: 4, warmup_steps: 2, eval_every: 4, eval_batches: 2, checkpoint_every: 4 },
    },
  },
});
