/**
 * dense-bpe: dense-baseline's model on gutenberg-bpe2k (a byte-level BPE of 2,048 tokens
 * trained on the training split) instead of bytes: the end-to-end check of the data layer's
 * trained tokenizer, token shards and vocab_size taken from the dataset. A BPE token carries
 * ~3 bytes of text, so the same steps see ~3x the text; val_loss is per token (not
 * comparable to bytes: divide by bytes per token for bits per byte).
 */
import { defineExperiment } from "../lib/experiment/mod.ts";
import { denseSpec } from "./_dense.ts";

export default defineExperiment({
  id: "dense-bpe",
  description: "Dense SwiGLU decoder on gutenberg with a 2,048-token BPE trained on its training split.",
  // The tiny scale (the tests) runs in seconds on the cpu backend after the BPE is trained and the splits
  // tokenised once.
  ...denseSpec("gutenberg-bpe2k", { tinyTokens: 60_000 }),
});
