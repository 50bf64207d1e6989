/**
 * End-to-end tests of the command line on the tiny scale of dense-baseline (cpu backend):
 * train -> cache -> DuckDB -> plots, cache hits, --verify, kill + resume, db rebuild, errors.
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../util/paths.ts";
import { childFlags } from "./faults/helpers.ts";
import { backendLines } from "./exp.ts";

/** The CLI runs with exactly the permissions of `deno task exp` (lib/cli/permissions.ts). */
const perms = (results: string) => childFlags(results, { experiments: `${REPO_ROOT}/experiments` });
const MAIN = `${REPO_ROOT}/lib/cli/main.ts`;
const TINY = ["--scale", "tiny", "--backend", "cpu", "--plain"];

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(results: string, args: string[], env: Record<string, string> = {}): Promise<Out> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...perms(results), MAIN, ...args],
    cwd: REPO_ROOT,
    env: { FINELAB_RESULTS: results, NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function ok(o: Out): Out {
  assert.equal(o.code, 0, `exit ${o.code}\nstdout:\n${o.stdout}\nstderr:\n${o.stderr}`);
  return o;
}

async function json(results: string, sql: string): Promise<Record<string, unknown>[]> {
  return JSON.parse(ok(await cli(results, ["query", sql, "--format", "json"])).stdout);
}

Deno.test({
  name: "exp: trains, stores, plots; a rerun trains nothing; --verify is bit-identical; db rebuild loses nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const results = await Deno.makeTempDir({ prefix: "finelab-e2e-" });
    const first = ok(await cli(results, ["exp", "dense-baseline", ...TINY]));
    assert.match(first.stdout, /2 runs: 2 trained/);
    assert.match(first.stderr, /backend: cpu/);
    const runs = await json(
      results,
      "SELECT experiment, variant, seed, status, val_loss, val_ppl, params FROM runs ORDER BY seed",
    );
    assert.equal(runs.length, 2);
    assert.deepEqual(runs.map((r) => [r.experiment, r.variant, r.seed, r.status]), [
      ["dense-baseline", "dense", 0, "completed"],
      ["dense-baseline", "dense", 1, "completed"],
    ]);
    for (const r of runs) {
      assert.ok(Number(r.val_loss) > 0 && Number(r.val_loss) < 10);
      assert.ok(Math.abs(Number(r.val_ppl) - Math.exp(Number(r.val_loss))) < 1e-6 * Number(r.val_ppl));
    }
    assert.notEqual(runs[0].val_loss, runs[1].val_loss, "different seeds give different results");
    const pngs = [...Deno.readDirSync(`${results}/plots/dense-baseline`)].map((e) => e.name).filter((n) =>
      n.endsWith(".png")
    );
    assert.ok(pngs.length >= 2, `plots: ${pngs}`);

    const second = ok(await cli(results, ["exp", "dense-baseline", ...TINY]));
    assert.match(second.stdout, /2 runs: 2 cached/);

    const verify = ok(await cli(results, ["exp", "dense-baseline", ...TINY, "--verify"]));
    assert.match(verify.stdout, /verify: 2\/2 runs bit-identical \(\d+ values compared\)/);

    const before = await json(
      results,
      "SELECT hash, val_loss, (SELECT count(*) FROM metrics) AS n FROM runs ORDER BY hash",
    );
    await Deno.remove(`${results}/results.duckdb`);
    ok(await cli(results, ["db", "rebuild"]));
    assert.deepEqual(
      await json(results, "SELECT hash, val_loss, (SELECT count(*) FROM metrics) AS n FROM runs ORDER BY hash"),
      before,
    );
    await Deno.remove(results, { recursive: true });
  },
});

Deno.test({
  name: "exp: a SIGKILLed run resumes from its checkpoint and ends with the uninterrupted metrics",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const a = await Deno.makeTempDir({ prefix: "finelab-kill-" });
    const b = await Deno.makeTempDir({ prefix: "finelab-ref-" });
    // wasm: the same kill and resume, ~20x faster than the cpu backend at 200 steps.
    const args = [
      "exp",
      "dense-baseline",
      ...TINY,
      "--backend",
      "wasm",
      "--set",
      "seeds=[3]",
      "--set",
      "train.steps=200",
      "--no-plot",
    ];
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...perms(a), MAIN, ...args],
      cwd: REPO_ROOT,
      env: { FINELAB_RESULTS: a, NO_COLOR: "1", FINELAB_PROGRESS_EVERY: "0" },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let seen = "";
    const reader = child.stderr.getReader();
    while (!/step (1\d)\/200/.test(seen)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stderr.cancel().catch(() => {});
    assert.match(seen, /step 1\d\/200/, seen);

    const status = ok(await cli(a, ["runs"]));
    assert.match(status.stdout, /interrupted/);
    const resumed = ok(await cli(a, ["exp", ...args.slice(1)]));
    assert.match(resumed.stdout, /1 runs: 1 resumed/);
    ok(await cli(b, ["exp", ...args.slice(1)]));
    const q = "SELECT hash, val_loss, final_train_loss, resumed_from_step FROM runs";
    const [ra] = await json(a, q), [rb] = await json(b, q);
    assert.equal(ra.hash, rb.hash);
    assert.equal(ra.val_loss, rb.val_loss);
    assert.equal(ra.final_train_loss, rb.final_train_loss);
    const from = Number(ra.resumed_from_step);
    assert.ok(from >= 8 && from < 200 && from % 4 === 0, `resumed from ${from}`);
    assert.equal(rb.resumed_from_step, null);
    const m = "SELECT step, split, name, value FROM metrics ORDER BY split, name, step";
    assert.deepEqual(await json(a, m), await json(b, m));
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  },
});

Deno.test({
  name: "cli: bad input gives one clear error and a non-zero exit",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const results = await Deno.makeTempDir({ prefix: "finelab-err-" });
    const unknown = await cli(results, ["exp", "no-such-exp"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown experiment "no-such-exp"\. Available: .*dense-baseline/);
    // Value errors are reported together; shape checks (which need valid values) come next.
    const bad = await cli(results, [
      "exp",
      "dense-baseline",
      ...TINY,
      "--set",
      "train.lr=-1",
      "--set",
      "train.batch_size=0",
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /train\.lr = -1 is out of range/);
    assert.match(bad.stderr, /train\.batch_size = 0 is out of range/);
    assert.match(bad.stderr, /Nothing was trained/);
    const shape = await cli(results, ["exp", "dense-baseline", ...TINY, "--set", "model.n_heads=3"]);
    assert.equal(shape.code, 2);
    assert.match(shape.stderr, /model\.d_model = 32 must be divisible by model\.n_heads = 3/);
    const sql = await cli(results, ["query", "SELEKT 1"]);
    assert.notEqual(sql.code, 0);
    assert.match(sql.stderr, /Parser Error|syntax error/i);
    await Deno.remove(results, { recursive: true });
  },
});

Deno.test("backendLines: one short line; a hint for the native backend only when auto skipped it", () => {
  assert.deepEqual(
    backendLines({
      name: "native",
      reason: "auto: native openblas libopenblas.so.0 (core Haswell); kernels /x/lib.so (compiled now in 7.8 s) " +
        "(tensorflow: neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed; webgpu: adapter " +
        "llvmpipe is a software fallback, ~6x slower than wasm (pass --backend webgpu to use it anyway))",
    }),
    ["backend: native (openblas)"],
  );
  const wasm = backendLines({
    name: "wasm",
    reason: "auto: wasm (tensorflow: not installed; webgpu: no adapter; native: no CBLAS library found " +
      "(to fix: apt-get install libopenblas0-openmp))",
  });
  assert.deepEqual(wasm, [
    "backend: wasm",
    "hint: the native backend is several times faster on CPU but unavailable here (no CBLAS library found); " +
    "apt-get install libopenblas0-openmp",
  ]);
  assert.deepEqual(backendLines({ name: "wasm", reason: "requested: binaries in /x/dist/" }), [
    "backend: wasm (requested)",
  ]);
});
