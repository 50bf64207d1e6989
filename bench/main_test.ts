import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_MODEL } from "../lib/core/config.ts";
import { readSafetensors } from "../lib/train/safetensors.ts";
import type { BenchResult } from "../lib/train/bench.ts";
import { nativeAvailability } from "../lib/backends/native/mod.ts";
import { parseConfig } from "./main.ts";
import { ffnOfLabel, sizedModel } from "./config.ts";
import { validateModelConfig } from "../lib/models/variants.ts";
import { BENCH_VENV_PYTHON, findTorch, newestTorch, torchCandidates, versionKey } from "./peers.ts";
import { formatReport, relDiff, type RunResult, summarize } from "./report.ts";
import { writeBatches, writeWeights } from "./inputs.ts";
import { readBatches } from "./worker.ts";

const HERE = new URL(".", import.meta.url).pathname;

function fake(median: number, extra: Partial<BenchResult> = {}): BenchResult {
  return {
    backend: "x",
    backend_details: {},
    tokens_per_step: 2048,
    ms_per_step: [median],
    median_ms: median,
    min_ms: median,
    mean_ms: median,
    tokens_per_sec: 2048 / (median / 1000),
    gflops: 0,
    flops_per_step: 12.5e9,
    params: 1,
    losses: [1],
    loss_hex: ["3f800000"],
    tensors: 0,
    bytes: 0,
    peak_rss_bytes: 100,
    cpu_load: { self_cores: 1, load_avg_1m: 2 },
    cpu_ms_per_step: median,
    ...extra,
  };
}

Deno.test("summarize: median of run medians, min/max over runs, fastest steps, tokens/s, GFLOP/s and MFU", () => {
  const runs: RunResult[] = [100, 300, 200].map((m, i) => ({
    backend: "native",
    ffn: "dense",
    repeat: i,
    result: fake(m, { peak_rss_bytes: m, min_ms: m - 10 * (i + 1) }),
    error: null,
  }));
  runs.push({ backend: "native", ffn: "dense", repeat: 3, result: null, error: "boom" });
  const [s] = summarize(runs, 250);
  assert.equal(s.runs, 3);
  assert.equal(s.median_ms, 200);
  assert.equal(s.min_ms, 100);
  assert.equal(s.max_ms, 300);
  assert.equal(s.tokens_per_sec, 2048 / 0.2);
  assert.equal(s.gflops, 12.5e9 / 0.2 / 1e9);
  assert.equal(s.mfu, 62.5 / 250);
  assert.equal(s.peak_rss_bytes, 300);
  assert.equal(s.fastest_ms, 170, "median of the runs' fastest steps (90, 280, 170)");
  assert.equal(summarize(runs, null)[0].mfu, null);
});

Deno.test("parseConfig: defaults, --quick, and errors that name the flag", () => {
  const d = parseConfig([]);
  assert.equal(d.steps, 10);
  assert.equal(d.repeats, 3);
  assert.equal(d.peer, null);
  const q = parseConfig(["--quick", "--peer", "torch", "--backends", "native, wasm", "--threads", "2"]);
  assert.deepEqual([q.steps, q.repeats, q.peer, q.threads], [3, 1, "torch", 2]);
  assert.deepEqual(q.backends, ["native", "wasm"]);
  assert.throws(() => parseConfig(["--steps", "0"]), /--steps = 0 must be an integer >= 1/);
  assert.throws(() => parseConfig(["--peer", "jax"]), /--peer = jax: the only peer is torch/);
  assert.equal(d.peerDevice, "cpu");
  assert.equal(parseConfig(["--peer", "torch", "--peer-device", "cuda"]).peerDevice, "cuda");
  assert.throws(() => parseConfig(["--peer-device", "mps"]), /--peer-device = mps: use cpu or cuda/);
  assert.equal(relDiff(1.00001, 1), 1.0000000000065512e-5);
});

Deno.test("parseConfig: sizes, seq, all cores by default, --peer-compile implies the torch peer", () => {
  const d = parseConfig([]);
  assert.equal(d.threads, navigator.hardwareConcurrency);
  assert.deepEqual([d.sizes, d.seq, d.peerCompile], [[], null, false]);
  const c = parseConfig(["--sizes", "128, 256,512", "--seq", "256", "--peer-compile", "--threads", "1"]);
  assert.deepEqual([c.sizes, c.seq, c.peer, c.peerCompile, c.threads], [[128, 256, 512], 256, "torch", true, 1]);
  assert.throws(() => parseConfig(["--sizes", "100"]), /--sizes: 100 must be a multiple of 32/);
  assert.throws(() => parseConfig(["--sizes", "128,x"]), /--sizes = x must be an integer >= 32/);
  assert.throws(() => parseConfig(["--seq", "1"]), /--seq = 1 must be an integer >= 2/);
  assert.throws(() => parseConfig(["--threads", "0"]), /--threads = 0 must be an integer >= 1/);
});

Deno.test("sizedModel: the reference model's proportions at width d (heads of 32, d_ff 3d), seq as asked", () => {
  const r = sizedModel("dense", null, null);
  assert.deepEqual([r.d_model, r.n_heads, r.d_ff, r.seq_len], [DEFAULT_MODEL.d_model, 4, 384, DEFAULT_MODEL.seq_len]);
  const m = sizedModel("dsmoe", 512, 256);
  assert.deepEqual([m.d_model, m.n_heads, m.d_ff, m.seq_len, m.n_layers], [512, 16, 1536, 256, DEFAULT_MODEL.n_layers]);
  assert.deepEqual(m.ffn, { kind: "dsmoe" });
});

Deno.test("formatReport: the ratio to dense is judged against 1.1 (Finedeep) or 1.2x the FLOP ratio (sparse kinds)", () => {
  const run = (ffn: string, median: number, flops: number): RunResult => ({
    backend: "native",
    ffn,
    repeat: 0,
    result: fake(median, { flops_per_step: flops }),
    error: null,
  });
  const runs = [run("dense", 100, 10e9), run("finedeep", 115, 10e9), run("finermoe:train_compute=sparse", 130, 11.5e9)];
  const kinds = runs.map((r) => r.ffn);
  const text = formatReport(runs, summarize(runs, null), {
    peak: null,
    peakNote: "",
    threads: 1,
    kinds,
    model: DEFAULT_MODEL,
    batch: 16,
    peerVersion: null,
  });
  const row = (k: string) =>
    text.split("\n").find((l) => l.includes(k) && l.includes("ratio") === false && /\d\.\d{3}/.test(l))!;
  assert.match(row("finedeep"), /1\.150 .* 1\.000 +1\.150 +ABOVE 1\.10/);
  assert.match(row("finermoe:train_compute=sparse"), /1\.300 .* 1\.150 +1\.130 +ok \(<= 1\.38\)/);
});

Deno.test("--ffn labels: kind:option=value sets FFN options (YAML scalars); a bad option names the label", async () => {
  assert.deepEqual(ffnOfLabel("finermoe:train_compute=sparse:g_i=4"), {
    kind: "finermoe",
    train_compute: "sparse",
    g_i: 4,
  });
  assert.deepEqual(sizedModel("dsmoe:tau=0.35", 256, null).ffn, { kind: "dsmoe", tau: 0.35 });
  assert.throws(() => ffnOfLabel("finermoe:sparse"), /--ffn finermoe:sparse: "sparse" must have the form option=value/);
  const problems = await validateModelConfig(sizedModel("finermoe:train_compute=spars", null, null));
  assert.ok(problems.some((p) => p.includes("train_compute")), problems.join("; "));
});

Deno.test("torch peer selection: candidates in order, the newest version wins, ties keep the first", () => {
  assert.deepEqual(torchCandidates("/x/python", "/env/python"), ["/x/python"]);
  assert.deepEqual(torchCandidates(null, "/env/python"), [
    "/env/python",
    BENCH_VENV_PYTHON,
    "/usr/bin/python3",
    "python3",
  ]);
  assert.deepEqual(torchCandidates(null, undefined), [BENCH_VENV_PYTHON, "/usr/bin/python3", "python3"]);
  assert.deepEqual(versionKey("2.13.0+cpu"), [2, 13, 0]);
  assert.deepEqual(versionKey("1.13.0a0"), [1, 13, 0]);
  const t = (python: string, version: string) => ({ python, version, blas: "x" });
  const debian = t("/usr/bin/python3", "1.13.0a0"), venv = t("venv", "2.13.0+cpu"), env = t("env", "2.9.1");
  assert.equal(newestTorch([debian, venv, env]), venv);
  assert.equal(newestTorch([env, debian]), env);
  assert.equal(newestTorch([t("a", "2.13.0"), t("b", "2.13.0+cpu")])!.python, "a");
  assert.equal(newestTorch([t("a", "2.9.0"), t("b", "2.13")])!.python, "b", "2.13 > 2.9 numerically");
  assert.equal(newestTorch([]), null);
});

Deno.test("bench inputs: weights carry config and specs; batches round-trip as [steps, B, T]", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cfg = { ...DEFAULT_MODEL, d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, seq_len: 8 };
    await writeWeights(join(dir, "w.safetensors"), cfg);
    const w = await readSafetensors(join(dir, "w.safetensors"));
    assert.deepEqual(JSON.parse(w.metadata.model_config), cfg);
    const specs = JSON.parse(w.metadata.param_specs) as { name: string; decay: boolean }[];
    assert.deepEqual(specs.map((s) => s.name), [...w.tensors.keys()]);
    assert.equal(specs.find((s) => s.name === "layers.0.norm1")!.decay, false);
    assert.deepEqual(w.tensors.get("tok_emb")!.shape, [256, 16]);
    const tokens = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);
    await writeBatches(join(dir, "b.safetensors"), tokens, 3, 2, 8);
    const b = await readBatches(join(dir, "b.safetensors"));
    assert.equal(b.length, 3);
    for (const x of b) {
      assert.equal(x.x.length, 16);
      for (let i = 0; i < 16; i++) {
        if (i % 8 < 7) assert.equal(x.y[i], x.x[i + 1], "y is x shifted by one within a sequence");
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const torch = findTorch(null);
const torchReason = "error" in torch ? torch.error : "";
if (torchReason) {
  console.log(
    `torch peer test skipped: ${torchReason}; install with deno task bench:setup_torch`,
  );
}

Deno.test({
  name: "torch peer: same weights and batches give the same losses as finelab to ~1e-5 (skipped without torch)",
  ignore: Boolean(torchReason),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const cfg = { ...DEFAULT_MODEL, d_model: 32, n_layers: 2, n_heads: 2, d_ff: 48, seq_len: 16 };
      await writeWeights(join(dir, "w.safetensors"), cfg);
      const tokens = Uint8Array.from({ length: 4000 }, (_, i) => (i * 7919 + (i >> 3)) % 256);
      await writeBatches(join(dir, "b.safetensors"), tokens, 4, 3, 16);
      const args = ["--weights", join(dir, "w.safetensors"), "--batches", join(dir, "b.safetensors")];
      args.push("--steps", "3", "--warmup", "1", "--threads", "1");
      const run = async (cmd: string, pre: string[], out: string) => {
        const r = await new Deno.Command(cmd, { args: [...pre, ...args, "--out", out], stderr: "piped" }).output();
        assert.ok(r.success, `${cmd} failed: ${new TextDecoder().decode(r.stderr).slice(-800)}`);
        return JSON.parse(await Deno.readTextFile(out)) as BenchResult;
      };
      const py = (torch as { python: string }).python;
      const t = await run(py, [join(HERE, "torch_peer.py")], join(dir, "t.json"));
      const backend = nativeAvailability().ok ? "native" : "wasm";
      const flags = [
        "run",
        "--no-prompt",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-ffi",
        "--allow-sys",
      ];
      const ours = await run(Deno.execPath(), [
        ...flags,
        "--allow-run",
        join(HERE, "worker.ts"),
        "--backend",
        backend,
      ], join(dir, "o.json"));
      assert.equal(t.losses.length, 4);
      assert.equal(ours.losses.length, 4);
      assert.ok(t.losses[3] < t.losses[0], `torch loss decreases: ${t.losses}`);
      for (let s = 0; s < 4; s++) {
        const rd = relDiff(ours.losses[s], t.losses[s]);
        assert.ok(rd < 1e-5, `step ${s}: ${backend} ${ours.losses[s]} vs torch ${t.losses[s]} (rel ${rd})`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
