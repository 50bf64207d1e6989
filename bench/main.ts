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
import { existsSync, mkdirSync, realpathSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_DATA, DEFAULT_MODEL, type FfnConfig, type ModelConfig } from "../lib/core/config.ts";
import { trainBatch } from "../lib/data/batches.ts";
import { loadDataset } from "../lib/data/dataset.ts";
import { availableFfnKinds, flopsPerToken, initValues, loadFfn, paramSpecs } from "../lib/models/transformer.ts";
import type { SafeTensor } from "../lib/train/safetensors.ts";
import { writeSafetensors } from "../lib/train/safetensors.ts";
import type { BenchResult } from "../lib/train/bench.ts";
import { Rng } from "../lib/util/rng.ts";
import { projectPaths } from "../lib/util/paths.ts";
import { resolveBackend } from "../lib/backends/mod.ts";
import type { ConcreteBackend } from "../lib/core/config.ts";
import { loadBlas, measurePeak, nativeAvailability, type Peak } from "../lib/backends/native/mod.ts";
import { type BenchRow, insertBench } from "../lib/store/bench.ts";

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

/** One child process's result, tagged. */
export interface RunResult {
  backend: string;
  ffn: string;
  repeat: number;
  result: BenchResult | null;
  error: string | null;
}

/** Aggregate of one (backend, ffn) over its repeats. */
export interface Summary {
  backend: string;
  ffn: string;
  runs: number;
  /** Median over runs of each run's median step time, and the min / max of those run medians. */
  median_ms: number;
  min_ms: number;
  max_ms: number;
  tokens_per_sec: number;
  gflops: number | null;
  mfu: number | null;
  peak_rss_bytes: number | null;
  /** Median over runs of the 1-minute load average at the end of the run (the machine's contention). */
  load_avg: number | null;
  /** Median over runs of CPU ms per step (user + system, all threads). */
  cpu_ms: number | null;
  /**
   * Median over runs of each run's fastest step: the least disturbed estimate on a shared machine,
   * whose speed can change for seconds at a time (other tenants), which moves medians.
   */
  fastest_ms: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Aggregates runs per (backend, ffn), in first-seen order. */
export function summarize(runs: readonly RunResult[], peak: number | null): Summary[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of runs) {
    if (!r.result) continue;
    const key = `${r.backend}\u0000${r.ffn}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((g) => {
    const meds = g.map((r) => r.result!.median_ms), m = median(meds);
    const res = g[0].result!;
    const flops = (res as Partial<BenchResult>).flops_per_step ?? null;
    const gflops = flops ? flops / (m / 1000) / 1e9 : null;
    const rss = g.map((r) => r.result!.peak_rss_bytes).filter((x): x is number => x !== null);
    const load = g.map((r) => r.result!.cpu_load?.load_avg_1m).filter((x): x is number => typeof x === "number");
    const cpu = g.map((r) => r.result!.cpu_ms_per_step).filter((x): x is number => typeof x === "number");
    return {
      backend: g[0].backend,
      ffn: g[0].ffn,
      runs: g.length,
      median_ms: m,
      min_ms: Math.min(...meds),
      max_ms: Math.max(...meds),
      tokens_per_sec: res.tokens_per_step / (m / 1000),
      gflops,
      mfu: gflops !== null && peak ? gflops / peak : null,
      peak_rss_bytes: rss.length ? Math.max(...rss) : null,
      load_avg: load.length ? median(load) : null,
      cpu_ms: cpu.length ? median(cpu) : null,
      fastest_ms: median(g.map((r) => r.result!.min_ms)),
    };
  });
}

/** Plain-text table with right-aligned numeric columns. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const w = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [line(cells[0]), w.map((n) => "-".repeat(n)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

const fmt = (x: number | null | undefined, d = 1) => (x === null || x === undefined ? "n/a" : x.toFixed(d));
const mib = (b: number | null) => (b === null ? "n/a" : `${(b / 2 ** 20).toFixed(0)} MiB`);

/** Relative difference |a - b| / max(|b|, 1e-12). */
export function relDiff(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
}

// ---- inputs ----------------------------------------------------------------------------------------

/** FFN kinds benched by default (those that exist): the reference model and its twins with each FFN's defaults. */
export const DEFAULT_KINDS = ["dense", "finedeep", "dsmoe", "finermoe"];

/** Model config of an FFN kind for the bench (the reference model with that FFN, default options). */
export function benchModel(kind: string): ModelConfig {
  return { ...DEFAULT_MODEL, ffn: { kind } as FfnConfig }; // an unknown kind fails when the model loads it
}

/** Writes the seed-1 initial weights of `cfg` (with the config and specs as metadata). */
export async function writeWeights(path: string, cfg: ModelConfig, seed = 1): Promise<void> {
  const ffn = await loadFfn(cfg.ffn.kind);
  const specs = paramSpecs(cfg, ffn);
  const tensors: [string, SafeTensor][] = specs.map((s) => [s.name, {
    dtype: "F32",
    shape: [...s.shape],
    data: initValues(s, seed),
  }]);
  await writeSafetensors(path, tensors, {
    model_config: JSON.stringify(cfg),
    param_specs: JSON.stringify(specs.map((s) => ({ name: s.name, shape: s.shape, decay: s.decay }))),
    seed: String(seed),
  });
}

/** Token source of the batches: the default dataset's train split, or random bytes when it cannot load. */
async function benchTokens(log: (m: string) => void): Promise<{ tokens: ArrayLike<number>; source: string }> {
  try {
    const d = await loadDataset({ ...DEFAULT_DATA, max_bytes: 2_000_000 }, { log: () => {} });
    return {
      tokens: d.train,
      source: `gutenberg train split (${d.train.length} bytes, ${d.manifest.hash.slice(0, 12)})`,
    };
  } catch (e) {
    log(`bench: the default dataset did not load (${(e as Error).message.split("\n")[0]}); using random bytes`);
    const r = new Rng(5);
    return { tokens: Uint8Array.from({ length: 400_000 }, () => r.int(256)), source: "random bytes (Rng 5)" };
  }
}

/** Writes `count` batches [count, B, T] of x and y (int32). */
export async function writeBatches(path: string, tokens: ArrayLike<number>, count: number, B: number, T: number) {
  const x = new Int32Array(count * B * T), y = new Int32Array(count * B * T);
  for (let s = 0; s < count; s++) {
    const b = trainBatch(tokens, 1, s, { batchSize: B, seqLen: T });
    x.set(b.x, s * B * T);
    y.set(b.y, s * B * T);
  }
  await writeSafetensors(path, [["x", { dtype: "I32", shape: [count, B, T], data: x }], ["y", {
    dtype: "I32",
    shape: [count, B, T],
    data: y,
  }]]);
}

// ---- peers and backends ------------------------------------------------------------------------------

/** A Python that imports torch, with its version and BLAS, or why there is none. */
export function findTorch(preferred: string | null): { python: string; version: string; blas: string } | {
  error: string;
} {
  const tried: string[] = [];
  for (const py of preferred ? [preferred] : [Deno.env.get("FINELAB_PYTHON"), "/usr/bin/python3", "python3"]) {
    if (!py) continue;
    try {
      const r = new Deno.Command(py, {
        args: ["-c", "import torch;print(torch.__version__);print(torch.__config__.show())"],
        stdout: "piped",
        stderr: "piped",
      }).outputSync();
      const out = new TextDecoder().decode(r.stdout);
      if (r.success) {
        const blas = /BLAS_INFO=([^,\n]+)/.exec(out)?.[1] ?? "unknown";
        return { python: py, version: out.split("\n")[0].trim(), blas };
      }
      tried.push(`${py}: ${new TextDecoder().decode(r.stderr).trim().split("\n").pop()}`);
    } catch (e) {
      tried.push(`${py}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  return { error: `no Python with torch (${tried.join("; ")})` };
}

/** Which BLAS a Debian `libblas.so.3` resolves to (torch links it), or null when unknown. */
function systemLibblas(): string | null {
  for (const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"]) {
    const p = join(dir, "libblas.so.3");
    if (existsSync(p)) {
      try {
        return realpathSync(p);
      } catch {
        return p;
      }
    }
  }
  return null;
}

/** Backends to measure by default: the available fast ones (never the pure-JS cpu, never a software GPU). */
async function defaultBackends(log: (m: string) => void): Promise<string[]> {
  const out: string[] = [];
  for (const b of ["tensorflow", "webgpu", "native", "wasm"] as ConcreteBackend[]) {
    try {
      await resolveBackend(b);
    } catch (e) {
      if (b === "native" || b === "wasm") log(`bench: skipping ${b}: ${(e as Error).message}`);
      continue;
    }
    if (b === "webgpu") {
      const auto = await resolveBackend("auto");
      if (/software fallback/.test(auto.reason)) {
        log("bench: skipping webgpu: software adapter (~6x slower than wasm); --backends webgpu to include it");
        continue;
      }
    }
    out.push(b);
  }
  return out;
}

function machine(): { cpu: string; cpus: number; os: string; deno: string } {
  let cpu = os.cpus()[0]?.model ?? "unknown";
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? cpu;
  } catch { /* not Linux */ }
  return { cpu, cpus: navigator.hardwareConcurrency, os: `${Deno.build.os} ${os.release()}`, deno: Deno.version.deno };
}

async function gitCommit(): Promise<string | null> {
  try {
    const r = await new Deno.Command("git", { args: ["rev-parse", "HEAD"], cwd: ROOT, stdout: "piped", stderr: "null" })
      .output();
    return r.success ? new TextDecoder().decode(r.stdout).trim() : null;
  } catch {
    return null;
  }
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

/** Runs the whole benchmark (see the module doc) and returns the runs and summaries. */
export async function runBench(cfg: BenchConfig, log: (m: string) => void = console.log) {
  const paths = projectPaths();
  const benchId = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const work = await Deno.makeTempDir({ prefix: "finelab-bench-" });
  const mach = machine();
  log(`bench ${benchId}: ${mach.cpu}, ${mach.cpus} CPUs, ${mach.os}, deno ${mach.deno}`);

  // Peak FLOP/s (needs the native kernels library).
  let peak: Peak | null = null, peakNote = "";
  const nat = nativeAvailability();
  if (nat.ok) {
    peak = measurePeak(cfg.threads);
    log(
      `peak: ${peak.gflops.toFixed(1)} GFLOP/s FP32 with ${cfg.threads} thread(s) (${peak.method}; FMA trials ${
        peak.trials.join(" ")
      })`,
    );
  } else {
    peakNote = `no peak measured (native kernels unavailable: ${nat.why}); MFU is n/a`;
    log(`peak: ${peakNote}`);
  }

  const backends = cfg.backends.length ? cfg.backends : await defaultBackends(log);
  const kinds = cfg.ffn.length ? cfg.ffn : DEFAULT_KINDS.filter((k) => availableFfnKinds().includes(k));
  for (const k of kinds) await loadFfn(k); // fail early on unknown kinds

  // Peer availability.
  let torch: { python: string; version: string; blas: string } | null = null;
  if (cfg.peer === "torch") {
    const t = findTorch(cfg.python);
    if ("error" in t) {
      log(
        `peer torch: unavailable: ${t.error}.\n  To install (Debian/Ubuntu): apt-get install python3-torch libopenblas0-openmp` +
          `\n  (Debian's torch links libblas.so.3; without OpenBLAS it gets the reference BLAS, ~25x slower)`,
      );
    } else {
      torch = t;
      const lib = systemLibblas();
      log(
        `peer torch (${cfg.peerDevice}): ${t.python} torch ${t.version}, BLAS ${t.blas}` +
          (lib ? `, libblas.so.3 -> ${lib}` : ""),
      );
      if (lib && !/openblas/i.test(lib)) {
        log("  warning: libblas.so.3 is not OpenBLAS: apt-get install libopenblas0-openmp for a fair comparison");
      }
    }
  }

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

  // Store.
  if (cfg.store) {
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
  await Deno.remove(work, { recursive: true }).catch(() => {});
  return { benchId, runs, summaries, peak };
}

/** The printed report: throughput table, peer comparison, FFN ratios. */
export function formatReport(
  runs: readonly RunResult[],
  summaries: readonly Summary[],
  o: { peak: Peak | null; peakNote: string; threads: number; kinds: readonly string[] },
): string {
  const out: string[] = [];
  out.push(
    `Training throughput, reference model (d=128, 4 layers, 4 heads, seq 128, batch 16, bytes), ${o.threads} thread(s).` +
      `\nms/step: median over runs of each run's median step (min..max of the run medians). CPU ms/step: the ` +
      `process's CPU time per step (other processes slow the wall clock, much less this). load avg: the machine's ` +
      `1-minute load average after the run (with ${navigator.hardwareConcurrency} CPUs, above ~${navigator.hardwareConcurrency} means contention). MFU: model FLOPs ` +
      `(3 x forward) / s over ${
        o.peak ? `the measured peak ${o.peak.gflops.toFixed(1)} GFLOP/s` : o.peakNote || "an unmeasured peak"
      }.`,
  );
  out.push(table(
    ["backend", "ffn", "runs", "ms/step", "min..max", "tok/s", "GFLOP/s", "MFU", "CPU ms/step", "peak RSS", "load avg"],
    summaries.map((s) => [
      s.backend,
      s.ffn,
      s.runs,
      fmt(s.median_ms),
      `${fmt(s.min_ms)}..${fmt(s.max_ms)}`,
      s.tokens_per_sec.toFixed(0),
      fmt(s.gflops),
      s.mfu === null ? "n/a" : `${(s.mfu * 100).toFixed(1)}%`,
      fmt(s.cpu_ms),
      mib(s.peak_rss_bytes),
      fmt(s.load_avg, 2),
    ]),
  ));
  const failed = runs.filter((r) => r.error);
  if (failed.length) {
    out.push(`\nFailed runs:\n${failed.map((r) => `  ${r.backend} ${r.ffn} r${r.repeat}: ${r.error}`).join("\n")}`);
  }

  // Peer: ratio per repeat and loss agreement.
  const torchRuns = runs.filter((r) => r.backend === "torch" && r.result);
  if (torchRuns.length) {
    const ours = [...new Set(runs.filter((r) => r.ffn === "dense" && r.backend !== "torch").map((r) => r.backend))];
    out.push("\nPeer: PyTorch twin on the same weights and batches (dense).");
    const rows: (string | number)[][] = [];
    for (const b of ours) {
      const ratios: number[] = [], cpuRatios: number[] = [];
      for (const t of torchRuns) {
        const mine = runs.find((r) => r.backend === b && r.ffn === "dense" && r.repeat === t.repeat && r.result);
        if (!mine) continue;
        ratios.push(t.result!.median_ms / mine.result!.median_ms);
        const tc = t.result!.cpu_ms_per_step, mc = mine.result!.cpu_ms_per_step;
        if (tc && mc) cpuRatios.push(tc / mc);
      }
      if (ratios.length) {
        rows.push([
          b,
          median(ratios).toFixed(2),
          `${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)}`,
          cpuRatios.length ? median(cpuRatios).toFixed(2) : "n/a",
        ]);
      }
    }
    out.push(
      table(["backend", "tok/s ratio vs torch (median of A/B pairs)", "min..max", "CPU-time ratio (median)"], rows),
    );
    const ref = torchRuns[0].result!;
    const cols = ours.map((b) => runs.find((r) => r.backend === b && r.ffn === "dense" && r.result)?.result ?? null);
    const lossRows: (string | number)[][] = ref.losses.map((l, s) => [
      s,
      l.toFixed(7),
      ...cols.flatMap((c) => (c ? [c.losses[s].toFixed(7), relDiff(c.losses[s], l).toExponential(1)] : ["n/a", "n/a"])),
    ]);
    out.push(
      "\nLoss per step (step 0 = initial weights; relative difference to torch; fp32 agreement target ~1e-5):",
    );
    out.push(table(["step", "torch", ...ours.flatMap((b) => [b, "rel diff"])], lossRows));
    for (const [i, b] of ours.entries()) {
      const c = cols[i];
      if (!c) continue;
      const worst = Math.max(...ref.losses.map((l, s) => relDiff(c.losses[s], l)));
      out.push(
        `max relative loss difference ${b} vs torch: ${worst.toExponential(2)} ${
          worst <= 2e-5 ? "(ok)" : "(ABOVE 2e-5)"
        }`,
      );
    }
  }

  // FFN kind / dense ratio per backend.
  const others = o.kinds.filter((k) => k !== "dense");
  if (others.length && o.kinds.includes("dense")) {
    out.push("\nStep time relative to the dense twin (target <= 1.1):");
    const rows: (string | number)[][] = [];
    for (const s of summaries.filter((x) => x.ffn !== "dense")) {
      const d = summaries.find((x) => x.backend === s.backend && x.ffn === "dense");
      if (!d) continue;
      const pairs: number[] = [];
      for (const r of runs.filter((x) => x.backend === s.backend && x.ffn === s.ffn && x.result)) {
        const dr = runs.find((x) => x.backend === s.backend && x.ffn === "dense" && x.repeat === r.repeat && x.result);
        if (dr) pairs.push(r.result!.median_ms / dr.result!.median_ms);
      }
      const ratio = s.median_ms / d.median_ms;
      rows.push([
        s.backend,
        s.ffn,
        ratio.toFixed(3),
        pairs.length ? `${Math.min(...pairs).toFixed(2)}..${Math.max(...pairs).toFixed(2)}` : "n/a",
        s.cpu_ms !== null && d.cpu_ms ? (s.cpu_ms / d.cpu_ms).toFixed(3) : "n/a",
        (s.fastest_ms / d.fastest_ms).toFixed(3),
        ratio <= 1.1 ? "ok" : "ABOVE 1.1",
      ]);
    }
    out.push(
      table(
        ["backend", "ffn", "ratio (medians)", "per-repeat", "CPU-time ratio", "fastest-step ratio", "target (medians)"],
        rows,
      ),
    );
  }
  return out.join("\n");
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
