import assert from "node:assert/strict";
import { defineExperiment } from "./define.ts";
import { deepMerge, expandRuns, parseSets, readConfigFile } from "./expand.ts";
import { ConfigError } from "./validate.ts";
import { DEFAULT_TRAIN } from "../core/config.ts";

const exp = defineExperiment({
  id: "t",
  description: "test",
  seeds: [0, 1],
  model: { d_model: 64, n_heads: 4 },
  train: { lr: 1e-3 },
  variants: { a: {}, b: { train: { lr: 2e-3 } } },
  grid: { "model.n_layers": [1, 2], "train.batch_size": [4] },
  scales: { tiny: { train: { steps: 3, warmup_steps: 1 }, seeds: [7] } },
});

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return (e as ConfigError).problems;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("expandRuns: variants x grid x seeds with stable ids", () => {
  const { runs } = expandRuns(exp);
  assert.equal(runs.length, 2 * 2 * 2);
  assert.deepEqual(runs.map((r) => r.run_id).slice(0, 4), [
    "a/n_layers=1/batch_size=4/s0",
    "a/n_layers=1/batch_size=4/s1",
    "a/n_layers=2/batch_size=4/s0",
    "a/n_layers=2/batch_size=4/s1",
  ]);
  const b = runs.find((r) => r.variant === "b")!;
  assert.equal(b.config.train.lr, 2e-3);
  assert.equal(runs[0].config.train.lr, 1e-3);
  assert.equal(runs[0].config.train.steps, DEFAULT_TRAIN.steps);
  assert.equal(runs[2].config.model.n_layers, 2);
  assert.equal(runs[0].config.model.d_model, 64);
});

Deno.test("expandRuns: precedence scale < variant < grid < --config < --set", () => {
  const { runs, scale } = expandRuns(exp, {
    scale: "tiny",
    files: [{ path: "x.yaml", patch: { train: { lr: 5e-3, steps: 9 } } }],
    sets: ["train.steps=11", "model.n_layers=3"],
  });
  assert.equal(scale, "tiny");
  assert.deepEqual([...new Set(runs.map((r) => r.seed))], [7]);
  for (const r of runs) {
    assert.equal(r.config.train.lr, 5e-3); // --config beats variant b's 2e-3
    assert.equal(r.config.train.steps, 11); // --set beats --config and scale
    assert.equal(r.config.model.n_layers, 3); // --set beats the grid
  }
});

Deno.test("expandRuns: every bad value is named with field, value and range", () => {
  const p = problems(() => expandRuns(exp, { sets: ["train.lr=-1", "model.d_model=0", "train.beta2=1"] }));
  assert.ok(
    p.some((x) => /train\.lr = -1 is out of range: must be a finite number in \(0, 10\]/.test(x)),
    p.join("\n"),
  );
  assert.ok(p.some((x) => /model\.d_model = 0 is out of range/.test(x)));
  assert.ok(p.some((x) => /train\.beta2 = 1 is out of range: must be a finite number in \[0, 1\)/.test(x)));
});

Deno.test("expandRuns: NaN, wrong types, unknown keys and backends are rejected", () => {
  assert.ok(
    problems(() => expandRuns(exp, { sets: ["train.lr=.nan"] })).some((x) => /train\.lr = NaN must be/.test(x)),
  );
  assert.ok(
    problems(() => expandRuns(exp, { sets: ["train.steps=abc"] })).some((x) =>
      /train\.steps = "abc" must be an integer/.test(x)
    ),
  );
  const unk = problems(() => expandRuns(exp, { sets: ["train.lrr=1"] }));
  assert.match(unk[0], /unknown key train\.lrr \(did you mean train\.lr\?\)/);
  assert.match(problems(() => expandRuns(exp, { backend: "tpu" as never }))[0], /backend = "tpu" is not one of/);
  const badVariant = defineExperiment({ ...exp, variants: { a: { train: { learning_rate: 1 } as never } } });
  assert.match(problems(() => expandRuns(badVariant))[0], /variant a: unknown key train\.learning_rate/);
});

Deno.test("expandRuns: empty grid, no seeds, duplicate seeds, unknown scale", () => {
  assert.ok(
    problems(() => expandRuns(defineExperiment({ ...exp, seeds: [] }))).some((x) =>
      /seeds = \[\] must be a non-empty/.test(x)
    ),
  );
  assert.ok(problems(() => expandRuns(defineExperiment({ ...exp, seeds: [1, 1] }))).some((x) => /duplicates/.test(x)));
  assert.ok(
    problems(() => expandRuns(defineExperiment({ ...exp, grid: { "train.lr": [] } }))).some((x) =>
      /non-empty array/.test(x)
    ),
  );
  assert.match(
    problems(() => expandRuns(exp, { scale: "huge" }))[0],
    /--scale huge is not defined; available: default, tiny/,
  );
});

Deno.test("expandRuns: warmup longer than training is a cross-field error; vocab_size 0 means the dataset's", () => {
  const p = problems(() =>
    expandRuns(exp, { sets: ["train.warmup_steps=500", "train.steps=10", "model.vocab_size=-1"] })
  );
  assert.ok(p.some((x) => /train\.warmup_steps = 500 must be <= train\.steps = 10/.test(x)));
  assert.ok(p.some((x) => /model\.vocab_size = -1 is out of range/.test(x)));
  assert.equal(expandRuns(exp).runs[0].config.model.vocab_size, 0); // filled from the dataset when planned
});

Deno.test("parseSets: YAML scalars and collections", () => {
  assert.deepEqual(parseSets(["train.lr=3e-4", "model.tie_embeddings=false", "seeds=[0, 1, 2]", "data.path=a b.txt"]), {
    "train.lr": 3e-4,
    "model.tie_embeddings": false,
    seeds: [0, 1, 2],
    "data.path": "a b.txt",
  });
  assert.match(problems(() => parseSets(["nonsense"]))[0], /must have the form path=value/);
});

Deno.test("readConfigFile: validates keys and YAML", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/ok.yaml`, "train:\n  lr: 0.0003\nseeds: [3]\n");
  const ok = await readConfigFile(`${dir}/ok.yaml`);
  assert.equal(ok.patch.train?.lr, 3e-4);
  await Deno.writeTextFile(`${dir}/bad.yaml`, "train:\n  lr: 1\n  stepz: 3\nfoo: 1\n");
  const e = await readConfigFile(`${dir}/bad.yaml`).then(() => null, (e) => e);
  assert.ok(e instanceof ConfigError);
  assert.ok(e.problems.some((x: string) => /unknown top-level key foo/.test(x)));
  assert.ok(e.problems.some((x: string) => /unknown key train\.stepz \(did you mean train\.steps\?\)/.test(x)));
  await Deno.writeTextFile(`${dir}/syntax.yaml`, "train: [1, 2\n");
  assert.ok((await readConfigFile(`${dir}/syntax.yaml`).then(() => null, (e) => e)) instanceof ConfigError);
  assert.ok((await readConfigFile(`${dir}/missing.yaml`).then(() => null, (e) => e)) instanceof ConfigError);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deepMerge: nested objects merge, arrays replace, inputs untouched", () => {
  const a = { x: { y: 1, z: [1, 2] }, w: 1 };
  const m = deepMerge(a, { x: { z: [3] } });
  assert.deepEqual(m, { x: { y: 1, z: [3] }, w: 1 });
  assert.deepEqual(a, { x: { y: 1, z: [1, 2] }, w: 1 });
});

Deno.test("expandRuns: a single_seed variant runs on the first seed; children of every seed start from it", () => {
  const e = defineExperiment({
    id: "ss",
    description: "d",
    seeds: [5, 6, 7],
    variants: { parent: { single_seed: true }, child: { init_from: { variant: "parent" } }, own: {} },
  });
  const x = expandRuns(e);
  assert.deepEqual(x.runs.filter((r) => r.variant === "parent").map((r) => r.seed), [5]);
  assert.deepEqual(x.runs.filter((r) => r.variant === "child").map((r) => [r.seed, r.init_from]), [
    [5, { variant: "parent", seed: 5 }],
    [6, { variant: "parent", seed: 5 }],
    [7, { variant: "parent", seed: 5 }],
  ]);
  assert.equal(x.runs.filter((r) => r.variant === "own").length, 3);
  // --set seeds follows: the parent takes the first of the new list.
  const y = expandRuns(e, { sets: ["seeds=[9, 8]"] });
  assert.deepEqual(y.runs.map((r) => r.run_id), ["parent/s9", "child/s9", "child/s8", "own/s9", "own/s8"]);
  assert.throws(
    () =>
      expandRuns(
        defineExperiment({ id: "b", description: "d", seeds: [0], variants: { a: { single_seed: 1 } } } as never),
      ),
    /variant a: single_seed = 1 must be true or false/,
  );
});

Deno.test("multirun: --set path=a,b sweeps the path (a grid axis, replacing the module's axis); seeds=0,1 lists seeds", () => {
  const { runs } = expandRuns(exp, {
    scale: "tiny",
    sets: ["train.lr=1e-3,2e-3,4e-3", "model.n_layers=1,3", "seeds=0,1"],
    files: [{ path: "x.yaml", patch: { train: { lr: 9e-3 } } }],
  });
  assert.equal(runs.length, 2 * 3 * 2 * 2); // variants x lr x n_layers x seeds (batch_size axis of 1)
  const a = runs.filter((r) => r.variant === "a" && r.seed === 0);
  assert.deepEqual(a.map((r) => r.run_id), [
    "a/n_layers=1/batch_size=4/lr=0.001/s0",
    "a/n_layers=1/batch_size=4/lr=0.002/s0",
    "a/n_layers=1/batch_size=4/lr=0.004/s0",
    "a/n_layers=3/batch_size=4/lr=0.001/s0",
    "a/n_layers=3/batch_size=4/lr=0.002/s0",
    "a/n_layers=3/batch_size=4/lr=0.004/s0",
  ]);
  assert.deepEqual(a.map((r) => [r.config.model.n_layers, r.config.train.lr]), [
    [1, 1e-3],
    [1, 2e-3],
    [1, 4e-3],
    [3, 1e-3],
    [3, 2e-3],
    [3, 4e-3],
  ]); // the sweep beats the --config file's lr and variant b's
  assert.ok(runs.filter((r) => r.variant === "b").every((r) => [1e-3, 2e-3, 4e-3].includes(r.config.train.lr)));
  // A flow list or a quoted string is one value, not a sweep.
  assert.deepEqual(parseSets(["seeds=[0,1]", 'data.path="a,b.txt"']), { seeds: [0, 1], "data.path": "a,b.txt" });
  // Bad multirun values name the problem.
  assert.match(problems(() => expandRuns(exp, { sets: ["train.lr=1e-3,"] })).join("\n"), /has an empty value/);
  assert.match(problems(() => expandRuns(exp, { sets: ["backend=cpu,wasm"] })).join("\n"), /cannot be swept/);
  assert.match(
    problems(() => expandRuns(exp, { sets: ["train.lr=1e-3,-1"] })).join("\n"),
    /train\.lr = -1/,
  );
});
