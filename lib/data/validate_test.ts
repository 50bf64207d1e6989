import assert from "node:assert/strict";
import { type DataConfig, DEFAULT_DATA } from "../core/config.ts";
import { assertValidData, validateData } from "./validate.ts";

const cfg = (patch: Record<string, unknown>) => ({ ...DEFAULT_DATA, ...patch }) as DataConfig;

Deno.test("the default data config is valid", () => {
  assert.deepEqual(validateData(DEFAULT_DATA), []);
  assert.deepEqual(validateData(cfg({ dataset: "file", path: "corpus/" })), []);
  assert.deepEqual(validateData(cfg({ max_tokens: 1, val_fraction: 0.5, split_seed: 4294967295 })), []);
  assert.deepEqual(validateData(cfg({ dataset: "gutenberg-bpe2k" })), []);
});

Deno.test("each bad value is named with its field, value and allowed range", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ val_fraction: 0.9 }, "data.val_fraction = 0.9 must be null (the dataset's) or in (0, 0.5]"],
    [{ val_fraction: 0 }, "data.val_fraction = 0 must be null"],
    [{ val_fraction: NaN }, "data.val_fraction = NaN must be null"],
    [{ dataset: "Wiki Text" }, 'data.dataset = "Wiki Text" must be a dataset id (a module data/<id>.ts, or "file")'],
    [
      { dataset: "file" },
      'data.path = null must name a .txt/.jsonl/.parquet file or a directory of them when data.dataset = "file"',
    ],
    [{ dataset: "file", path: "" }, 'data.path = "" must name'],
    [{ path: "x.txt" }, 'data.path = "x.txt" is only read when data.dataset = "file" (data.dataset is "gutenberg")'],
    [{ max_tokens: 0 }, "data.max_tokens = 0 must be null (all) or an integer >= 1"],
    [{ max_tokens: -5 }, "data.max_tokens = -5 must be null (all) or an integer >= 1"],
    [{ max_tokens: 1.5 }, "data.max_tokens = 1.5 must be"],
    [{ split_seed: -1 }, "data.split_seed = -1 must be null (the dataset's) or an integer in [0, 4294967295]"],
    [{ split_seed: 0.5 }, "data.split_seed = 0.5 must be null"],
    [{ text_field: "" }, 'data.text_field = "" must be a non-empty field/column name'],
    [{ val_frac: 0.2 }, "data.val_frac is not a known key; known keys: dataset, path"],
  ];
  for (const [patch, msg] of cases) {
    const problems = validateData(cfg(patch));
    assert.equal(problems.length, 1, `${JSON.stringify(patch)} -> ${JSON.stringify(problems)}`);
    assert.ok(problems[0].startsWith(msg), `${JSON.stringify(patch)}: got ${problems[0]}`);
  }
});

Deno.test("all problems are reported together, and assertValidData throws them", () => {
  const bad = cfg({ val_fraction: 2, max_tokens: 0, dataset: "" });
  assert.equal(validateData(bad).length, 3);
  assert.throws(
    () => assertValidData(bad),
    /invalid data config:\n {2}- data.dataset[^]*val_fraction = 2[^]*max_tokens = 0/,
  );
  assert.deepEqual(validateData(null as unknown as DataConfig).length, 1);
});
