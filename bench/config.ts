/**
 * `deno task bench` flags: parsing, validation and help text.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { DEFAULT_MODEL, type ModelConfig } from "../lib/core/config.ts";

/** Bench settings (CLI flags). */
export interface BenchConfig {
  backends: string[];
  ffn: string[];
  steps: number;
  warmup: number;
  repeats: number;
  /** Threads of native BLAS/kernels, wasm XNNPACK and the torch peer; default all logical cores. */
  threads: number;
  batch: number;
  peer: "torch" | null;
  /** Also run the torch peer with `torch.compile` on the loss (beside eager). */
  peerCompile: boolean;
  /** Device of the torch peer: `cpu`, or `cuda` (to compare webgpu on a GPU machine with PyTorch CUDA). */
  peerDevice: "cpu" | "cuda";
  /** Model widths d_model to bench (heads d/32, d_ff 3d: the reference model's proportions); [] = the reference model. */
  sizes: number[];
  /** Sequence length; null = the reference model's. */
  seq: number | null;
  store: boolean;
  python: string | null;
}

/**
 * An FFN entry of `--ffn`: a kind, optionally with options, `kind:option=value:option=value`
 * (`finermoe:train_compute=sparse`); values are YAML scalars, as with `exp --set`.
 */
export function ffnOfLabel(label: string): ModelConfig["ffn"] {
  const [kind, ...opts] = label.split(":");
  const ffn: Record<string, unknown> = { kind };
  for (const o of opts) {
    const eq = o.indexOf("=");
    if (eq <= 0) throw new Error(`--ffn ${label}: "${o}" must have the form option=value`);
    ffn[o.slice(0, eq)] = parseYaml(o.slice(eq + 1));
  }
  return ffn as unknown as ModelConfig["ffn"]; // checked at run time (validateModelConfig), as --set is
}

/**
 * The reference model scaled to width `d` (heads of 32, d_ff = 3·d, as d=128) and sequence `seq`,
 * with the FFN of `label` (a kind, or `kind:option=value...`, see {@link ffnOfLabel}).
 */
export function sizedModel(label: string, d: number | null, seq: number | null): ModelConfig {
  const base = { ...DEFAULT_MODEL, ffn: ffnOfLabel(label) };
  if (seq !== null) base.seq_len = seq;
  if (d === null) return base;
  return { ...base, d_model: d, n_heads: d / 32, d_ff: 3 * d };
}

/** Parses the CLI flags (bad input: an Error naming the flag). */
export function parseConfig(args: string[]): BenchConfig & { quick: boolean; help: boolean } {
  const { values: v } = parseArgs({
    args,
    options: {
      backends: { type: "string" },
      ffn: { type: "string" },
      steps: { type: "string" },
      warmup: { type: "string", default: "2" },
      repeats: { type: "string" },
      threads: { type: "string" },
      batch: { type: "string", default: "16" },
      peer: { type: "string" },
      "peer-compile": { type: "boolean", default: false },
      "peer-device": { type: "string", default: "cpu" },
      sizes: { type: "string" },
      seq: { type: "string" },
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
  const sizes = list(v.sizes).map((s) => int("sizes", s, 0, 32));
  for (const d of sizes) {
    if (d % 32 !== 0) throw new Error(`--sizes: ${d} must be a multiple of 32 (heads of 32 dimensions)`);
  }
  const peerCompile = v["peer-compile"]!;
  return {
    backends: list(v.backends),
    ffn: list(v.ffn),
    steps: int("steps", v.steps, v.quick ? 3 : 10, 1),
    warmup: int("warmup", v.warmup, 2, 0),
    repeats: int("repeats", v.repeats, v.quick ? 1 : 3, 1),
    threads: int("threads", v.threads, navigator.hardwareConcurrency, 1),
    batch: int("batch", v.batch, 16, 1),
    peer: v.peer === "torch" || peerCompile ? "torch" : null,
    peerCompile,
    peerDevice: dev,
    sizes,
    seq: v.seq === undefined ? null : int("seq", v.seq, 0, 2),
    store: !v["no-store"],
    python: v.python ?? null,
    quick: v.quick!,
    help: v.help!,
  };
}

/** The help text. */
export const HELP = `deno task bench [flags]
  --backends a,b     backends to measure (default: the available ones of tensorflow, webgpu (hardware), native, wasm)
  --ffn a,b          FFN kinds (default: dense, finedeep, dsmoe, finermoe; each with its default options);
                     kind:option=value[:option=value] sets options, e.g. finermoe:train_compute=sparse
  --sizes d,d        model widths, e.g. 128,256,512 (heads d/32, d_ff 3d, 4 layers; default: the reference d=128)
  --seq N            sequence length (default 128, the reference model's)
  --steps N          timed steps per run (default 10; --quick: 3)
  --warmup N         untimed first steps per run (default 2)
  --repeats N        runs per contender, alternating A B A B (default 3; --quick: 1)
  --threads N        CPU threads of native BLAS/kernels, wasm XNNPACK (at most 8) and the torch peer
                     (default: all ${navigator.hardwareConcurrency} logical cores)
  --batch N          sequences per step (default 16)
  --peer torch       also run the PyTorch twin (bench/torch_peer.py) on the same weights and batches, with the
                     newest torch found (bench/.venv from \`deno task bench:setup_torch\`, else the system's)
  --peer-compile     also run the twin with torch.compile on the loss (implies --peer torch)
  --peer-device D    cpu (default) or cuda: where the torch twin runs (cuda: compare webgpu on a GPU with PyTorch CUDA)
  --python PATH      Python with torch (default: the newest torch of $FINELAB_PYTHON, bench/.venv, /usr/bin/python3, python3)
  --no-store         do not write results/bench/*.json and the DuckDB bench table
  --quick            3 steps, 1 repeat`;
