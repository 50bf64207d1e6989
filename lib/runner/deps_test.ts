/** Run dependencies (init_from): parents are hashed into children, trained first and only once. */
import assert from "node:assert/strict";
import { type ProjectPaths, projectPaths, REPO_ROOT } from "../util/paths.ts";
import { loadExperiment, makePlan } from "./plan.ts";
import { executePlan } from "./execute.ts";
import { readRecord } from "./cache.ts";
import { ConfigError } from "../experiment/validate.ts";
import { hashValue } from "../core/hash.ts";

const LIB = new URL("../experiment/mod.ts", import.meta.url).href;
const TINY = `data: { max_tokens: 20000 },
  model: { d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, seq_len: 16 },
  train: { steps: 5, batch_size: 2, warmup_steps: 1, eval_every: 5, eval_batches: 1, checkpoint_every: 0 },
  backend: "cpu",`;

function module(id: string, variants: string): string {
  return `import { defineExperiment } from ${JSON.stringify(LIB)};
export default defineExperiment({ id: ${JSON.stringify(id)}, description: "test", seeds: [0],
  ${TINY}
  variants: ${variants},
});\n`;
}

async function project(mods: Record<string, string>): Promise<ProjectPaths> {
  const dir = await Deno.makeTempDir({ prefix: "finelab-deps-" });
  await Deno.mkdir(`${dir}/experiments`);
  for (const [id, text] of Object.entries(mods)) await Deno.writeTextFile(`${dir}/experiments/${id}.ts`, text);
  return { ...projectPaths(REPO_ROOT, `${dir}/results`), experiments: `${dir}/experiments` };
}

async function plan(paths: ProjectPaths, id: string) {
  return makePlan(await loadExperiment(id, paths), { paths });
}

Deno.test({
  name: "init_from: the parent's hash is part of the child's, parents train first, a child starts from its weights",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const paths = await project({
      up: module("up", `{ parent: {}, child: { init_from: { variant: "parent" }, train: { lr: 5e-4 } } }`),
      up2: module(
        "up2",
        `{ parent: { train: { steps: 6 } }, child: { init_from: { variant: "parent" }, train: { lr: 5e-4 } } }`,
      ),
      other: module("other", `{ cont: { init_from: { experiment: "up", variant: "parent" }, train: { lr: 5e-4 } } }`),
    });
    const p = await plan(paths, "up");
    const [parent, child] = [p.runs.find((r) => r.variant === "parent")!, p.runs.find((r) => r.variant === "child")!];
    assert.equal(child.parent?.hash, parent.hash);
    assert.deepEqual(child.hash_inputs.parent, { [`up/${parent.run_id}`]: parent.hash });
    assert.ok("lib/models/upcycle.ts" in child.hash_inputs.code);
    assert.ok(!("lib/models/upcycle.ts" in parent.hash_inputs.code), "fresh runs do not hash upcycle.ts");

    // Same child config, different parent (6 steps instead of 5): a different child hash.
    const p2 = await plan(paths, "up2");
    const child2 = p2.runs.find((r) => r.variant === "child")!;
    assert.notEqual(child2.hash, child.hash);
    assert.notEqual(child2.parent!.hash, parent.hash);
    // Nothing but the parent (and the experiment id) differs: swapping them back gives the first child's hash.
    const swapped = {
      ...child2.hash_inputs,
      config: { ...child2.config, experiment: "up" },
      parent: child.hash_inputs.parent,
    };
    assert.equal(hashValue(swapped), child.hash);

    const out = await executePlan(p, { paths, log: () => {} });
    assert.deepEqual(out.map((o) => [o.run.variant, o.action]), [["parent", "trained"], ["child", "trained"]]);
    const pr = out[0].record, cr = out[1].record;
    const first = (r: typeof pr) =>
      r.metrics.find((m) => m.split === "train" && m.name === "loss" && m.step === 0)!.value;
    // The child's first batch is new (batch 5 of the stream), so compare with the parent's first and last losses.
    const [c0, p0, pLast] = [first(cr), first(pr), pr.summary!.final_train_loss!];
    assert.ok(Math.abs(c0 - pLast) < Math.abs(c0 - p0), `child starts from the parent: ${c0} vs ${p0} -> ${pLast}`);

    // Another experiment reuses the cached parent: it is not trained again.
    const po = await plan(paths, "other");
    assert.deepEqual(po.dependencies.map((d) => d.hash), [parent.hash]);
    const before = pr.status.finished_at;
    const oo = await executePlan(po, { paths, log: () => {} });
    assert.equal(oo[0].action, "trained");
    assert.equal((await readRecord(parent.paths))!.status.finished_at, before, "the parent was trained once");
    await Deno.remove(`${paths.experiments}/..`, { recursive: true });
  },
});

Deno.test({
  name: "init_from: an unknown parent, a cycle and a failed parent are clear errors naming it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const paths = await project({
      nope: module("nope", `{ child: { init_from: { variant: "missing" } } }`),
      cyc: module("cyc", `{ a: { init_from: { variant: "b" } }, b: { init_from: { variant: "a" } } }`),
      bad: module(
        "bad",
        `{ parent: { train: { lr: 10, grad_clip: 0 } }, child: { init_from: { variant: "parent" } } }`,
      ),
    });
    await assert.rejects(
      plan(paths, "nope"),
      (e) =>
        e instanceof ConfigError && /child\/s0: init_from nope variant missing seed 0: no such run/.test(e.message),
    );
    await assert.rejects(plan(paths, "cyc"), (e) => e instanceof ConfigError && /cycle/.test(e.message));
    const p = await plan(paths, "bad");
    const parentRun = p.runs.find((r) => r.variant === "parent")!;
    await Deno.mkdir(parentRun.paths.dir, { recursive: true });
    // A parent that never finished (killed before its first checkpoint) must stop the child with its name.
    await assert.rejects(
      executePlan({ ...p, runs: p.runs.filter((r) => r.variant === "child") }, { paths, log: () => {} }),
      /child\/s0 starts from bad\/parent\/s0 \(run [0-9a-f]{12}\), which has not been trained/,
    );
    await Deno.remove(`${paths.experiments}/..`, { recursive: true });
  },
});

Deno.test({
  name: "init_from a single_seed variant: one parent run for the children of every seed, trained once",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const text = module("shared", `{ parent: { single_seed: true }, child: { init_from: { variant: "parent" } } }`)
      .replace("seeds: [0]", "seeds: [3, 4]");
    const paths = await project({ shared: text });
    const p = await plan(paths, "shared");
    assert.deepEqual(p.runs.map((r) => r.run_id), ["parent/s3", "child/s3", "child/s4"]);
    const parent = p.runs[0];
    for (const c of p.runs.slice(1)) assert.equal(c.parent?.hash, parent.hash, `${c.run_id} starts from parent/s3`);
    const out = await executePlan(p, { paths, log: () => {} });
    assert.deepEqual(out.map((o) => [o.run.run_id, o.action]), [
      ["parent/s3", "trained"],
      ["child/s3", "trained"],
      ["child/s4", "trained"],
    ]);
    await Deno.remove(`${paths.experiments}/..`, { recursive: true });
  },
});
