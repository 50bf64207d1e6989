/**
 * `deno task bench`: training throughput of the reference model (and its FFN twins) on every
 * available backend, optionally against a PyTorch twin, in one run.
 *
 * ```sh
 * deno task bench                          # native + wasm (what is available) x dense/finedeep/dsmoe/finermoe, 3 repeats
 * deno task bench --peer torch             # + the PyTorch twin (bench/torch_peer.py), loss agreement per step
 * deno task bench --backends native,wasm --ffn dense --steps 20 --repeats 5 --threads 2
 * deno task bench --quick                  # 3 steps, 1 repeat: a smoke run
 * ```
 *
 * What it does:
 * 1. Measures the machine's FP32 peak (native FMA microbenchmark, best of 12; the MFU denominator).
 * 2. Writes the initial weights of each FFN kind (seed 1) as safetensors and the batches (the
 *    default gutenberg data, `trainBatch` with seed 1) as int32 tensors, so every backend and the
 *    peer start from the same bits and see the same batches.
 * 3. Runs one child process per (repeat, FFN kind, backend/peer) in the order A B A B ... so that
 *    drift of a shared machine hits every contender alike. Each child trains warmup + steps steps
 *    (bench/worker.ts or bench/torch_peer.py) and reports every step's time and loss.
 * 4. Prints: ms/step (median of the runs' medians, min and max over runs), tokens/s, achieved
 *    GFLOP/s and MFU, peak RSS, CPU contention; the peer's tokens/s ratio and per-step loss
 *    differences; the FFN-kind / dense step-time ratio per backend.
 * 5. Stores one row per child in DuckDB (`bench` table, lib/store/bench.ts) and the whole result
 *    in results/bench/<bench_id>.json.
 *
 * @module
 */
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_MODEL } from "../lib/core/config.ts";
import { availableFfnKinds, flopsPerToken, loadFfn, validateModelConfig } from "../lib/models/variants.ts";
import type { BenchResult } from "../lib/train/bench.ts";
import { projectPaths } from "../lib/util/paths.ts";
import { loadBlas, measurePeak, nativeAvailability, type Peak } from "../lib/backends/native/mod.ts";
import { type BenchRow, insertBench } from "../lib/store/bench.ts";
import type { Tokens } from "../lib/data/batches.ts";
import { fmt, formatReport, type RunResult, summarize, type Summary, TORCH, TORCH_COMPILE } from "./report.ts";
import { benchTokens, DEFAULT_KINDS, writeBatches, writeWeights } from "./inputs.ts";
import { defaultBackends, gitCommit, machine, torchPeer, type TorchPython } from "./peers.ts";
import { type BenchConfig, HELP, parseConfig, sizedModel } from "./config.ts";

export { type BenchConfig, parseConfig };

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");
const DENO_FLAGS = [
  "run",
  "--no-prompt",
  "--unstable-webgpu",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
  "--allow-run",
];

// ---- running -------------------------------------------------------------------------------------------

async function runChild(cmd: string, args: string[], env: Record<string, string>, out: string): Promise<BenchResult> {
  const r = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped", cwd: ROOT }).output();
  const err = new TextDecoder().decode(r.stderr).trim();
  if (!r.success || !existsSync(out)) {
    const tail = err.split("\n").filter((l) => !/^\s*(Stack backtrace|\d+: <unknown>)/.test(l)).slice(-6).join("\n");
    throw new Error(`${cmd} exited with ${r.code}${r.signal ? ` (${r.signal})` : ""}:\n${tail}`);
  }
  return JSON.parse(await Deno.readTextFile(out)) as BenchResult;
}

/** The machine's FP32 peak (native FMA microbenchmark; the MFU denominator), or why there is none. */
function peakOf(
  cfg: BenchConfig,
  nat: { ok: boolean; why: string },
  log: (m: string) => void,
): { peak: Peak | null; peakNote: string } {
  if (!nat.ok) {
    const peakNote = `no peak measured (native kernels unavailable: ${nat.why}); MFU is n/a`;
    log(`peak: ${peakNote}`);
    return { peak: null, peakNote };
  }
  const peak = measurePeak(cfg.threads);
  log(
    `peak: ${peak.gflops.toFixed(1)} GFLOP/s FP32 with ${cfg.threads} thread(s) (${peak.method}; FMA trials ${
      peak.trials.join(" ")
    })`,
  );
  return { peak, peakNote: "" };
}

/** Stores the bench: one row per child in DuckDB (`bench` table) and the whole result in results/bench/<id>.json. */
async function storeBench(
  b: {
    benchId: string;
    cfg: BenchConfig;
    mach: ReturnType<typeof machine>;
    peak: Peak | null;
    source: string;
    peer: { python: string; torch: string; blas: string } | null;
    summaries: Summary[];
    runs: RunResult[];
  },
  log: (m: string) => void,
): Promise<void> {
  const { benchId, cfg, mach, peak, peer, source, summaries, runs } = b;
  const paths = projectPaths();
  const commit = await gitCommit();
  const rows: BenchRow[] = runs.filter((r) => r.result).map((r) => {
    const res = r.result!, st = [...res.ms_per_step].sort((a, b) => a - b);
    const gflops = res.flops_per_step ? res.flops_per_step / (res.median_ms / 1000) / 1e9 : null;
    return {
      bench_id: benchId,
      measured_at: new Date().toISOString(),
      backend: r.backend,
      ffn: r.ffn,
      repeat: r.repeat,
      threads: cfg.threads,
      steps: cfg.steps,
      warmup: cfg.warmup,
      batch_size: cfg.batch,
      seq_len: r.seq_len ?? DEFAULT_MODEL.seq_len,
      params: res.params ?? 0,
      median_ms: res.median_ms,
      min_ms: st[0],
      max_ms: st[st.length - 1],
      tokens_per_sec: res.tokens_per_step / (res.median_ms / 1000),
      gflops,
      mfu: gflops !== null && peak ? gflops / peak.gflops : null,
      peak_gflops: peak?.gflops ?? null,
      peak_method: peak?.method ?? null,
      peak_rss_bytes: res.peak_rss_bytes,
      self_cores: res.cpu_load?.self_cores ?? null,
      load_avg_1m: res.cpu_load?.load_avg_1m ?? null,
      final_loss: res.losses.at(-1) ?? null,
      losses_json: JSON.stringify(res.losses),
      backend_json: JSON.stringify(res.backend_details),
      ...mach,
      git_commit: commit,
    };
  });
  const dir = join(paths.results, "bench");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${benchId}.json`);
  await Deno.writeTextFile(
    file,
    JSON.stringify(
      { bench_id: benchId, config: cfg, machine: mach, peak, peer, data: source, rows, summaries, runs },
      null,
      1,
    ),
  );
  try {
    const { openStore } = await import("../lib/store/mod.ts");
    const store = await openStore(paths.db);
    try {
      await insertBench(store, rows);
    } finally {
      await store.close();
    }
    log(`stored: ${file} and ${rows.length} rows in ${paths.db} (table bench)`);
  } catch (e) {
    log(`stored: ${file}; the DuckDB bench table was NOT updated: ${(e as Error).message.split("\n")[0]}`);
  }
}

/** One planned child process. */
interface PlanItem {
  backend: string;
  ffn: string;
  repeat: number;
}

/** Everything one size's runs share. */
interface Shared {
  cfg: BenchConfig;
  backends: string[];
  kinds: string[];
  torch: TorchPython | null;
  env: Record<string, string>;
  work: string;
  tokens: Tokens;
  source: string;
  peak: Peak | null;
  peakNote: string;
}

/** Torch contenders: eager, and with `--peer-compile` the compiled loss. */
const peerLabels = (cfg: BenchConfig) => (cfg.peerCompile ? [TORCH, TORCH_COMPILE] : [TORCH]);

/** Runs one child (the worker on a backend, or the torch twin) and returns its result or error. */
async function runOne(p: PlanItem, files: string[], s: Shared, out: string) {
  const { cfg, torch, env } = s;
  const common = [...files, "--steps", String(cfg.steps), "--warmup", String(cfg.warmup)];
  common.push("--threads", String(cfg.threads), "--out", out);
  try {
    if (p.backend === TORCH || p.backend === TORCH_COMPILE) {
      const args = [join(HERE, "torch_peer.py"), "--device", cfg.peerDevice, ...common];
      if (p.backend === TORCH_COMPILE) args.push("--compile");
      return { result: await runChild(torch!.python, args, env, out), error: null };
    }
    const args = [...DENO_FLAGS, join(HERE, "worker.ts"), "--backend", p.backend, ...common];
    return { result: await runChild(Deno.execPath(), args, env, out), error: null };
  } catch (e) {
    return { result: null, error: (e as Error).message };
  }
}

/** Every contender at one width d (null: the reference model), A B A B ...; the runs, summaries and report. */
async function benchSize(d: number | null, s: Shared, log: (m: string) => void) {
  const { cfg, kinds, backends, torch, work } = s;
  const model = (k: string) => sizedModel(k, d, cfg.seq);
  const m0 = model("dense"), tag = `d${m0.d_model}`;
  const batches = join(work, `batches-${tag}.safetensors`), nBatches = cfg.warmup + cfg.steps;
  await writeBatches(batches, s.tokens, nBatches, cfg.batch, m0.seq_len);
  const weightsOf = (k: string) => join(work, `weights-${tag}-${kinds.indexOf(k)}.safetensors`); // labels may hold ":" and "="
  for (const k of kinds) await writeWeights(weightsOf(k), model(k));
  log(`\n== d_model ${m0.d_model}, ${m0.n_heads} heads, d_ff ${m0.d_ff}, ${m0.n_layers} layers, seq ${m0.seq_len}`);
  log(`data: ${s.source}; ${nBatches} batches of ${cfg.batch} x ${m0.seq_len}`);
  const plan: PlanItem[] = [];
  for (let r = 0; r < cfg.repeats; r++) {
    for (const k of kinds) {
      for (const b of backends) plan.push({ backend: b, ffn: k, repeat: r });
      if (torch && k === "dense") { for (const b of peerLabels(cfg)) plan.push({ backend: b, ffn: k, repeat: r }); }
    }
  }
  const runs: RunResult[] = [];
  for (const [i, p] of plan.entries()) {
    const files = ["--weights", weightsOf(p.ffn), "--batches", batches];
    const { result, error } = await runOne(p, files, s, join(work, `r-${tag}-${i}.json`));
    runs.push({ ...p, d_model: m0.d_model, seq_len: m0.seq_len, result, error });
    log(progressLine(`[${i + 1}/${plan.length}] ${tag} ${p.backend} ${p.ffn} r${p.repeat}`, result, error));
  }
  // FLOPs of the peer from the matching model (the peer does not count them).
  for (const r of runs) {
    if (r.result && !r.result.flops_per_step) {
      r.result.flops_per_step = 3 * flopsPerToken(model(r.ffn), await loadFfn(model(r.ffn).ffn.kind)) * cfg.batch *
        m0.seq_len;
    }
  }
  const summaries = summarize(runs, s.peak?.gflops ?? null).map((x) => ({ ...x, d_model: m0.d_model }));
  const report = formatReport(runs, summaries, {
    peak: s.peak,
    peakNote: s.peakNote,
    threads: cfg.threads,
    kinds,
    model: m0,
    batch: cfg.batch,
    peerVersion: torch?.version ?? null,
  });
  log("\n" + report);
  return { runs, summaries };
}

function progressLine(tag: string, result: BenchResult | null, error: string | null): string {
  if (!result) return `${tag}: FAILED: ${error}`;
  const tps = (result.tokens_per_step / result.median_ms * 1000).toFixed(0);
  return `${tag}: median ${result.median_ms.toFixed(1)} ms/step (${tps} tok/s), final loss ${
    result.losses.at(-1)?.toFixed(6)
  }, self ${fmt(result.cpu_load?.self_cores, 2)} cores, load avg ${fmt(result.cpu_load?.load_avg_1m, 2)}`;
}

/** The env of native and torch children: the same OpenBLAS kernels and thread counts for both. */
function childEnv(threads: number, nativeOk: boolean): Record<string, string> {
  const env: Record<string, string> = {
    OMP_NUM_THREADS: String(threads),
    OPENBLAS_NUM_THREADS: String(threads),
    NO_COLOR: "1",
  };
  if (nativeOk) {
    try {
      for (const [k, v] of Object.entries(loadBlas().env_set)) env[k] = v;
    } catch { /* reported by nativeAvailability */ }
  }
  return env;
}

/** Runs the whole benchmark (see the module doc) at every size and returns the runs and summaries. */
export async function runBench(cfg: BenchConfig, log: (m: string) => void = console.log) {
  const benchId = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const work = await Deno.makeTempDir({ prefix: "finelab-bench-" });
  const mach = machine();
  log(`bench ${benchId}: ${mach.cpu}, ${mach.cpus} CPUs, ${mach.os}, deno ${mach.deno}; ${cfg.threads} thread(s)`);
  const nat = nativeAvailability();
  const { peak, peakNote } = peakOf(cfg, nat, log);
  const backends = cfg.backends.length ? cfg.backends : await defaultBackends(log);
  const kinds = cfg.ffn.length ? cfg.ffn : DEFAULT_KINDS.filter((k) => availableFfnKinds().includes(k));
  for (const k of kinds) { // fail early on unknown kinds and bad options
    const problems = await validateModelConfig(sizedModel(k, cfg.sizes[0] ?? null, cfg.seq));
    if (problems.length) throw new Error(`--ffn ${k}: ${problems.join("; ")}`);
  }
  const torch = torchPeer(cfg, log);
  if (torch && !kinds.includes("dense")) log("peer torch: only the dense model has a torch twin; add --ffn dense");
  const { tokens, source } = await benchTokens(log);
  const env = childEnv(cfg.threads, nat.ok);
  const shared: Shared = { cfg, backends, kinds, torch, env, work, tokens, source, peak, peakNote };
  const runs: RunResult[] = [], summaries: Summary[] = [];
  for (const d of cfg.sizes.length ? cfg.sizes : [null]) {
    const r = await benchSize(d, shared, log);
    runs.push(...r.runs);
    summaries.push(...r.summaries);
  }
  const peer = torch ? { python: torch.python, torch: torch.version, blas: torch.blas } : null;
  if (cfg.store) await storeBench({ benchId, cfg, mach, peak, peer, source, summaries, runs }, log);
  await Deno.remove(work, { recursive: true }).catch(() => {});
  return { benchId, runs, summaries, peak };
}
if (import.meta.main) {
  let cfg;
  try {
    cfg = parseConfig(Deno.args);
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${HELP}`);
    Deno.exit(2);
  }
  if (cfg.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  const { runs } = await runBench(cfg);
  Deno.exit(runs.some((r) => r.result) ? 0 : 1);
}
