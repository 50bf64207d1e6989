/** Every dataset module loads, is valid, has the id of its file, and the shipped ones are pinned. */
import assert from "node:assert/strict";
import { definitionProblems } from "../lib/data/define.ts";
import { listDatasetIds, loadDefinition, specVocabSize } from "../lib/data/mod.ts";

Deno.test("data/: every module is a valid dataset named after its file", async () => {
  const ids = await listDatasetIds();
  for (const want of ["gutenberg", "gutenberg-bpe2k", "sotu", "wikitext2"]) assert.ok(ids.includes(want), want);
  for (const id of ids) {
    const { def } = await loadDefinition(id);
    assert.equal(def.id, id);
    assert.deepEqual(definitionProblems(def), [], id);
  }
  const bpe = (await loadDefinition("gutenberg-bpe2k")).def;
  assert.equal(specVocabSize(bpe.tokenizer), 2048);
  assert.match(bpe.tokenizer.kind === "bpe" ? bpe.tokenizer.sha256 ?? "" : "", /^[0-9a-f]{64}$/, "trained BPE pinned");
  const gut = (await loadDefinition("gutenberg")).def;
  assert.equal(gut.documents_sha256, bpe.documents_sha256, "same documents");
  assert.deepEqual(gut.split, { val_fraction: 0.1, seed: 0 }, "the split old runs used");
});
