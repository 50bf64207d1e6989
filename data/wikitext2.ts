/**
 * wikitext2: WikiText-2 (raw) from the Hugging Face Hub, Salesforce/wikitext at a pinned
 * revision, as Parquet files fetched with `deno task data fetch wikitext2` (one document
 * per non-empty row), tokenised by a 2,048-token BPE trained on its training split.
 *
 * The example of a fetched dataset. Its files are not pinned yet (this repository was
 * written offline): the first fetch prints each file's sha256 and size and keeps
 * nothing; pin them below and fetch again. Nothing unpinned is ever used.
 */
import { defineDataset } from "../lib/data/mod.ts";

const hf = (path: string) => ({
  hf: { repo: "Salesforce/wikitext", revision: "b08601e04326c79dfdd32d625aee71d232d685c3", path },
  sha256: null,
  bytes: null,
});

export default defineDataset({
  id: "wikitext2",
  description: "WikiText-2 raw (HF Salesforce/wikitext, pinned revision; fetch first), BPE 2,048",
  source: {
    kind: "fetch",
    files: [
      hf("wikitext-2-raw-v1/train-00000-of-00001.parquet"),
      hf("wikitext-2-raw-v1/validation-00000-of-00001.parquet"),
      hf("wikitext-2-raw-v1/test-00000-of-00001.parquet"),
    ],
    text_field: "text",
  },
  split: { val_fraction: 0.1, seed: 0 },
  tokenizer: { kind: "bpe", vocab_size: 2048, sha256: null },
  documents_sha256: null,
});
