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
import { parseArgs } from "node:util";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_MODEL } from "../lib/core/config.ts";
import { availableFfnKinds, flopsPerToken, loadFfn } from "../lib/models/variants.ts";
import type { BenchResult } from "../lib/train/bench.ts";
import { projectPaths } from "../lib/util/paths.ts";
import { loadBlas, measurePeak, nativeAvailability, type Peak } from "../lib/backends/native/mod.ts";
import { type BenchRow, insertBench } from "../lib/store/bench.ts";
import { fmt, formatReport, type RunResult, summarize } from "./report.ts";
import { benchModel, benchTokens, DEFAULT_KINDS, writeBatches, writeWeights } from "./inputs.ts";
import { defaultBackends, findTorch, gitCommit, machine, systemLibblas } from "./peers.ts";

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

/** Bench settings (CLI flags). */
export interface BenchConfig {
  backends: string[];
  ffn: string[];
  steps: number;
  warmup: number;
  repeats: number;
  threads: number;
  batch: number;
  peer: "torch" | null;
  /** Device of the torch peer: `cpu`, or `cuda` (to compare webgpu on a GPU machine with PyTorch CUDA). */
  peerDevice: "cpu" | "cuda";
  store: boolean;
  python: string | null;
}

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

/** Parses the CLI flags. */
export function parseConfig(args: string[]): BenchConfig & { quick: boolean; help: boolean } {
  const { values: v } = parseArgs({
    args,
    options: {
      backends: { type: "string" },
      ffn: { type: "string" },
      steps: { type: "string" },
      warmup: { type: "string", default: "2" },
      repeats: { type: "string" },
      threads: { type: "string", default: "1" },
      batch: { type: "string", default: "16" },
      peer: { type: "string" },
      "peer-device": { type: "string", default: "cpu" },
      "no-store": { type: "boolean", default: false },
      python: { type: "string" },
      quick: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const int = (name: string, s: string | undefined, def: number, min: number) => {
    const n = s === undefined ? def : Number(s);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} = ${s} must be an integer >= ${min}`);
    return n;
  };
  if (v.peer !== undefined && v.peer !== "torch") throw new Error(`--peer = ${v.peer}: the only peer is torch`);
  const dev = v["peer-device"];
  if (dev !== "cpu" && dev !== "cuda") throw new Error(`--peer-device = ${dev}: use cpu or cuda`);
  const list = (s: string | undefined) => (s ? s.split(",").map((x) => x.trim()).filter(Boolean) : []);
  return {
    backends: list(v.backends),
    ffn: list(v.ffn),
    steps: int("steps", v.steps, v.quick ? 3 : 10, 1),
    warmup: int("warmup", v.warmup, 2, 0),
    repeats: int("repeats", v.repeats, v.quick ? 1 : 3, 1),
    threads: int("threads", v.threads, 1, 1),
    batch: int("batch", v.batch, 16, 1),
    peer: v.peer === "torch" ? "torch" : null,
    peerDevice: dev,
    store: !v["no-store"],
    python: v.python ?? null,
    quick: v.quick!,
    help: v.help!,
  };
}

const HELP = `deno task bench [flags]
  --backends a,b     backends to measure (default: the available ones of tensorflow, webgpu (hardware), native, wasm)
  --ffn a,b          FFN kinds (default: dense, finedeep, dsmoe, finermoe; each with its default options)
  --steps N          timed steps per run (default 10; --quick: 3)
  --warmup N         untimed first steps per run (default 2)
  --repeats N        runs per contender, alternating A B A B (default 3; --quick: 1)
  --threads N        CPU threads of native BLAS/kernels, wasm XNNPACK (at most 8) and the torch peer (default 1)
  --batch N          sequences per step (default 16)
  --peer torch       also run the PyTorch twin (bench/torch_peer.py) on the same weights and batches
  --peer-device D    cpu (default) or cuda: where the torch twin runs (cuda: compare webgpu on a GPU with PyTorch CUDA)
  --python PATH      Python with torch (default: $FINELAB_PYTHON, /usr/bin/python3, python3)
  --no-store         do not write results/bench/*.json and the DuckDB bench table
  --quick            3 steps, 1 repeat`;

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

/** The PyTorch peer when `--peer torch` asks for it and it is installed (else null, with how to install it). */
function torchPeer(
  cfg: BenchConfig,
  log: (m: string) => void,
): { python: string; version: string; blas: string } | null {
  if (cfg.peer !== "torch") return null;
  const t = findTorch(cfg.python);
  if ("error" in t) {
    log(
      `peer torch: unavailable: ${t.error}.\n  To install (Debian/Ubuntu): apt-get install python3-torch libopenblas0-openmp` +
        `\n  (Debian's torch links libblas.so.3; without OpenBLAS it gets the reference BLAS, ~25x slower)`,
    );
    return null;
  }
  const lib = systemLibblas();
  log(
    `peer torch (${cfg.peerDevice}): ${t.python} torch ${t.version}, BLAS ${t.blas}` +
      (lib ? `, libblas.so.3 -> ${lib}` : ""),
  );
  if (lib && !/openblas/i.test(lib)) {
    log("  warning: libblas.so.3 is not OpenBLAS: apt-get install libopenblas0-openmp for a fair comparison");
  }
  return t;
}

/** Stores the bench: one row per child in DuckDB (`bench` table) and the whole result in results/bench/<id>.json. */
async function storeBench(
  b: {
    benchId: string;
    cfg: BenchConfig;
    mach: ReturnType<typeof machine>;
    peak: Peak | null;
    source: string;
    summaries: ReturnType<typeof summarize>;
    runs: RunResult[];
  },
  log: (m: string) => void,
): Promise<void> {
  const { benchId, cfg, mach, peak, source, summaries, runs } = b;
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
      seq_len: DEFAULT_MODEL.seq_len,
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
      { bench_id: benchId, config: cfg, machine: mach, peak, data: source, rows, summaries, runs },
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

/** Runs the whole benchmark (see the module doc) and returns the runs and summaries. */
export async function runBench(cfg: BenchConfig, log: (m: string) => void = console.log) {
  const benchId = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const work = await Deno.makeTempDir({ prefix: "finelab-bench-" });
  const mach = machine();
  log(`bench ${benchId}: ${mach.cpu}, ${mach.cpus} CPUs, ${mach.os}, deno ${mach.deno}`);

  const nat = nativeAvailability();
  const { peak, peakNote } = peakOf(cfg, nat, log);

  const backends = cfg.backends.length ? cfg.backends : await defaultBackends(log);
  const kinds = cfg.ffn.length ? cfg.ffn : DEFAULT_KINDS.filter((k) => availableFfnKinds().includes(k));
  for (const k of kinds) await loadFfn(k); // fail early on unknown kinds

  const torch = torchPeer(cfg, log);

  // Shared inputs.
  const { tokens, source } = await benchTokens(log);
  const nBatches = cfg.warmup + cfg.steps;
  const batchesPath = join(work, "batches.safetensors");
  await writeBatches(batchesPath, tokens, nBatches, cfg.batch, DEFAULT_MODEL.seq_len);
  const weightsPath = new Map<string, string>();
  for (const k of kinds) {
    const p = join(work, `weights-${k}.safetensors`);
    await writeWeights(p, benchModel(k));
    weightsPath.set(k, p);
  }
  log(`data: ${source}; ${nBatches} batches of ${cfg.batch} x ${DEFAULT_MODEL.seq_len}`);

  // The env of native and torch children: the same OpenBLAS kernels and thread counts for both.
  const env: Record<string, string> = {
    OMP_NUM_THREADS: String(cfg.threads),
    OPENBLAS_NUM_THREADS: String(cfg.threads),
    NO_COLOR: "1",
  };
  if (nat.ok) {
    try {
      for (const [k, v] of Object.entries(loadBlas().env_set)) env[k] = v;
    } catch { /* reported by nativeAvailability */ }
  }

  // Schedule: repeat-major so each repeat runs every contender once (A B A B ...).
  const plan: { backend: string; ffn: string; repeat: number }[] = [];
  for (let r = 0; r < cfg.repeats; r++) {
    for (const k of kinds) {
      for (const b of backends) plan.push({ backend: b, ffn: k, repeat: r });
      if (torch && k === "dense") plan.push({ backend: "torch", ffn: k, repeat: r });
    }
  }
  if (torch && !kinds.includes("dense")) log("peer torch: only the dense model has a torch twin; add --ffn dense");
  const runs: RunResult[] = [];
  for (const [i, p] of plan.entries()) {
    const out = join(work, `r${i}.json`);
    const common = ["--weights", weightsPath.get(p.ffn)!, "--batches", batchesPath, "--steps", String(cfg.steps)];
    common.push("--warmup", String(cfg.warmup), "--threads", String(cfg.threads), "--out", out);
    let result: BenchResult | null = null, error: string | null = null;
    try {
      result = p.backend === "torch"
        ? await runChild(torch!.python, [join(HERE, "torch_peer.py"), "--device", cfg.peerDevice, ...common], env, out)
        : await runChild(
          Deno.execPath(),
          [...DENO_FLAGS, join(HERE, "worker.ts"), "--backend", p.backend, ...common],
          env,
          out,
        );
    } catch (e) {
      error = (e as Error).message;
    }
    runs.push({ ...p, result, error });
    const tag = `[${i + 1}/${plan.length}] ${p.backend} ${p.ffn} r${p.repeat}`;
    log(
      result
        ? `${tag}: median ${result.median_ms.toFixed(1)} ms/step (${
          (result.tokens_per_step / result.median_ms * 1000).toFixed(0)
        } tok/s), ` +
          `final loss ${result.losses.at(-1)?.toFixed(6)}, self ${fmt(result.cpu_load?.self_cores, 2)} cores, ` +
          `load avg ${fmt(result.cpu_load?.load_avg_1m, 2)}`
        : `${tag}: FAILED: ${error}`,
    );
  }

  // Fill FLOPs for the peer from the matching model (the peer does not count them).
  const flopsOf = new Map<string, number>();
  for (const k of kinds) {
    flopsOf.set(k, 3 * flopsPerToken(benchModel(k), await loadFfn(k)) * cfg.batch * DEFAULT_MODEL.seq_len);
  }
  for (const r of runs) if (r.result && !r.result.flops_per_step) r.result.flops_per_step = flopsOf.get(r.ffn)!;

  const summaries = summarize(runs, peak?.gflops ?? null);
  const report = formatReport(runs, summaries, { peak, peakNote, threads: cfg.threads, kinds });
  log("\n" + report);

  if (cfg.store) await storeBench({ benchId, cfg, mach, peak, source, summaries, runs }, log);
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
