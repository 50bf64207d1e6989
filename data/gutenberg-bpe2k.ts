/**
 * gutenberg-bpe2k: the gutenberg documents and split, tokenised by a byte-level BPE of
 * 2,048 tokens trained on the training split only (lib/data/bpe.ts; pinned by the
 * sha256 of its tokenizer.json, which the trainer reproduces bit for bit). A vocabulary
 * sized for the toy models: the tied embedding is 2,048 x d_model.
 */
import { defineDataset } from "../lib/data/mod.ts";

export default defineDataset({
  id: "gutenberg-bpe2k",
  description: "gutenberg, byte-level BPE with 2,048 tokens trained on its training split",
  source: { kind: "npm", corpus: "gutenberg" },
  split: { val_fraction: 0.1, seed: 0 },
  tokenizer: {
    kind: "bpe",
    vocab_size: 2048,
    sha256: "92b0992ffa15da08a423f847cbe1b1040500d64c440f21ae27eb3fba1145325d",
  },
  documents_sha256: "efb65236266d357025aa0c96c0597001747ff6829d70c93530e24ff50c3d9ea3",
});
