import assert from "node:assert/strict";
import { splitDocuments, valCount } from "./split.ts";

const ids = Array.from({ length: 18 }, (_, i) => `doc-${String(i).padStart(2, "0")}`);

Deno.test("split is deterministic, disjoint, covers all documents and ignores input order", () => {
  const a = splitDocuments(ids, 0.1, 0);
  const b = splitDocuments([...ids].reverse(), 0.1, 0);
  assert.deepEqual(a, b);
  assert.equal(a.val.length, 2); // ceil(0.1 * 18)
  assert.equal(a.train.length, 16);
  assert.equal(new Set([...a.train, ...a.val]).size, 18);
  assert.ok(a.val.every((id) => !a.train.includes(id)));
  assert.deepEqual([...a.train].sort(), a.train);
  assert.deepEqual([...a.val].sort(), a.val);
});

Deno.test("split changes with split_seed", () => {
  const seen = new Set<string>();
  for (let s = 0; s < 10; s++) seen.add(splitDocuments(ids, 0.1, s).val.join(","));
  assert.ok(seen.size >= 8, `only ${seen.size} distinct splits over 10 seeds`);
  assert.notDeepEqual(splitDocuments(ids, 0.1, 0).val, splitDocuments(ids, 0.1, 1).val);
});

Deno.test("valCount: ceil with float noise removed, clamped to [1, n-1]", () => {
  assert.equal(valCount(10, 0.3), 3); // 0.3 * 10 = 3.0000000000000004 in floats
  assert.equal(valCount(18, 0.1), 2);
  assert.equal(valCount(2, 0.5), 1);
  assert.equal(valCount(100, 0.001), 1);
  assert.equal(valCount(3, 0.5), 2);
  assert.equal(valCount(2, 0.01), 1);
});

Deno.test("split errors: fewer than 2 documents, duplicate ids", () => {
  assert.throws(() => splitDocuments(["only"], 0.1, 0), /has 1 document\(s\); .* needs at least 2/);
  assert.throws(() => splitDocuments([], 0.1, 0), /has 0 document/);
  assert.throws(() => splitDocuments(["a", "b", "a"], 0.1, 0), /duplicate document id "a"/);
  const two = splitDocuments(["x", "y"], 0.5, 3);
  assert.equal(two.train.length, 1);
  assert.equal(two.val.length, 1);
});
