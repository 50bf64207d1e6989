/**
 * Bad dataset input: each case is one clear DataError, and no cache entry (complete or
 * partial) is left behind.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_DATA } from "../core/config.ts";
import { trainBpe } from "./bpe.ts";
import { loadDataset } from "./dataset.ts";
import { sha256Hex } from "./hash.ts";
import { DataError } from "./normalize.ts";
import type { DatasetDefinition } from "./types.ts";

const ZERO = "0".repeat(64);

/** A project root with corpus/ (4 documents) and data/<id>.ts modules for `defs`. */
async function project(defs: Partial<DatasetDefinition>[], extra: Record<string, string | Uint8Array> = {}) {
  const root = await Deno.makeTempDir({ prefix: "finelab-badin-" });
  await Deno.mkdir(join(root, "corpus"));
  await Deno.mkdir(join(root, "data"));
  for (let i = 0; i < 4; i++) await Deno.writeTextFile(join(root, "corpus", `d${i}.txt`), `doc ${i} `.repeat(200));
  for (const [name, body] of Object.entries(extra)) {
    await Deno.writeFile(join(root, name), typeof body === "string" ? new TextEncoder().encode(body) : body);
  }
  for (const d of defs) {
    const def = {
      description: "test",
      source: { kind: "file", path: "../corpus" },
      split: { val_fraction: 0.25, seed: 0 },
      tokenizer: { kind: "bytes" },
      documents_sha256: null,
      ...d,
    };
    await Deno.writeTextFile(join(root, "data", `${d.id}.ts`), `export default ${JSON.stringify(def)};`);
  }
  return root;
}

/** Loads `dataset` in `root` and expects one DataError matching `re`, with nothing cached. */
async function refused(root: string, patch: Record<string, unknown>, re: RegExp) {
  const cache = join(root, "cache");
  await assert.rejects(
    loadDataset({ ...DEFAULT_DATA, ...patch }, { root, cacheDir: cache }),
    (e: unknown) => e instanceof DataError && re.test(e.message) && !e.message.includes("\n    at "),
  );
  const left: string[] = [];
  try {
    for await (const e of Deno.readDir(join(cache, "data"))) if (!e.name.endsWith(".lock")) left.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  assert.deepEqual(left, [], `nothing cached after ${re}`);
}

Deno.test("bad dataset input: one clear DataError each, nothing cached", async (t) => {
  const bpe = trainBpe(["the quick brown fox jumps over the lazy dog; doc 0 doc 1 doc 2 ".repeat(20)], 270);
  const root = await project([
    { id: "pinned", documents_sha256: ZERO },
    { id: "badbpe", tokenizer: { kind: "bpe", vocab_size: 258, sha256: ZERO } },
    { id: "narrow", tokenizer: { kind: "bpe", vocab_size: 258, sha256: null }, dtype: "uint8" },
    { id: "badjson", tokenizer: { kind: "hf", path: "../tok.json", sha256: sha256Hex("{not json"), vocab_size: 10 } },
    { id: "okjson", tokenizer: { kind: "hf", path: "../bpe.json", sha256: sha256Hex(bpe), vocab_size: 270 } },
    { id: "wrongvocab", tokenizer: { kind: "hf", path: "../bpe.json", sha256: sha256Hex(bpe), vocab_size: 300 } },
    { id: "one", source: { kind: "file", path: "../one" } },
    {
      id: "remote",
      source: { kind: "fetch", files: [{ url: "https://example.org/a.txt", name: "a.txt", sha256: ZERO, bytes: 5 }] },
    },
  ], { "tok.json": "{not json", "bpe.json": bpe, "latin1.txt": new Uint8Array([0x41, 0xe9, 0x42]) });
  await Deno.mkdir(join(root, "one"));
  await Deno.writeTextFile(join(root, "one", "only.txt"), "a single document");
  /** [step, data patch, the one DataError expected]. */
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["unknown dataset id", { dataset: "nope" }, /data.dataset = "nope" is not a known dataset; known: .*pinned.*file/],
    ["missing file", { dataset: "file", path: "absent.txt" }, /data.path = "absent.txt" does not exist/],
    [
      "documents hash mismatch",
      { dataset: "pinned" },
      /documents of dataset pinned hash to [0-9a-f]{64}, but the dataset pins 0{64}/,
    ],
    [
      "trained BPE differs from its pin",
      { dataset: "badbpe" },
      /tokenizer of dataset badbpe has sha256 [0-9a-f]{64}, but the dataset pins 0{64}/,
    ],
    [
      "non-UTF-8 text",
      { dataset: "file", path: "latin1.txt" },
      /latin1\.txt is not valid UTF-8: byte 0xe9 at offset 1/,
    ],
    [
      "vocabulary that does not fit the token dtype",
      { dataset: "narrow" },
      /a vocabulary of 258 tokens does not fit the token dtype uint8/,
    ],
    ["empty split", { dataset: "one" }, /has 1 document\(s\); .* needs at least 2/],
    ["tokenizer.json that does not parse", { dataset: "badjson" }, /tok\.json is not valid JSON/],
    [
      "tokenizer.json with another vocabulary size than declared",
      { dataset: "wrongvocab" },
      /has 270 tokens but dataset wrongvocab declares vocab_size 300/,
    ],
    [
      "fetched dataset not fetched yet (offline)",
      { dataset: "remote" },
      /needs a\.txt \(5 bytes\), which is not fetched yet .*`deno task data fetch remote`/,
    ],
  ];
  try {
    for (const [name, patch, re] of cases) await t.step(name, () => refused(root, patch, re));
    await t.step("a pinned hf tokenizer.json loads (control)", async () => {
      const ds = await loadDataset({ ...DEFAULT_DATA, dataset: "okjson" }, { root, cacheDir: null });
      assert.equal(ds.vocabSize, 270);
      assert.equal(ds.manifest.tokenizer_sha256, sha256Hex(bpe));
      assert.ok(ds.train.length > 0 && ds.train.maxId < 270);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
