/**
 * `deno task bench:inference`: inference speed of the dense FFN against its sparse twins (DSMoE, top-k MoE,
 * FineRMoE) on the native backend, at batched prefill and batch-1 decode, and how the FFN's time falls
 * with its activated FLOPs.
 *
 * ```sh
 * deno task bench:inference                      # d 256 and 512, seq 256, batch 4, all cores
 * deno task bench:inference --sizes 256 --reps 5 --threads 1
 * ```
 *
 * Per width d (heads d/32, d_ff 3d, 4 layers) and FFN kind:
 * - **FFN layer** (one layer's `apply` on `x` `[N, d]`, unit-RMS random rows, evaluation mode): prefill
 *   N = batch·seq rows, decode N = 1 row (what a KV-cache decoder hands the FFN per token). DSMoE and top-k
 *   run twice: the model's own inference form (`sparseMixture`: tfjs ops per expert) and the BLAS form of
 *   lib/models/sparse_infer.ts. The active fraction is measured from the routing of these rows.
 * - **model**: `forward` on `[batch, seq]` (prefill) and, as the model has **no KV cache**, decode as one
 *   forward of a batch-1 window of `seq` tokens per generated token. DSMoE and top-k again in both forms
 *   (`blas`: the same weights in a model whose FFN variant's evaluation `apply` is `sparseFfnInfer`).
 * Every call of a size runs in rounds (each round calls every kind and form once; decode FFN calls ten
 *   times), so that a shared machine's drift hits all alike; rows give the median and the fastest call.
 * - **time saved / FLOPs saved** of the FFN relative to dense: (1 - t/t_dense) / (1 - F/F_dense), with F the
 *   measured active FLOPs (experts that ran + router); 1 = the time falls exactly with the FLOPs.
 *
 * DSMoE's threshold τ is set to the 75th percentile of the gate values on the same rows (so ~25% of
 * blocks are active); top-k uses 8 experts with k = 2 (25%); FineRMoE runs with its defaults.
 * Writes results/bench/inference-<id>.json.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backends/mod.ts";
import type { ModelConfig } from "../lib/core/config.ts";
import { createModel, initValues, Transformer } from "../lib/models/transformer.ts";
import { loadFfn } from "../lib/models/variants.ts";
import type { FfnContext, FfnParams, FfnVariant } from "../lib/models/ffn/types.ts";
import { sparseFfnInfer } from "../lib/models/sparse_infer.ts";
import { projectPaths } from "../lib/util/paths.ts";
import { Rng } from "../lib/util/rng.ts";
import { sizedModel } from "./config.ts";
import { table } from "./report.ts";
import { machine } from "./peers.ts";

/** One measured row. */
export interface InferRow {
  d_model: number;
  kind: string;
  form: string;
  phase: "prefill" | "decode";
  what: "ffn" | "model";
  rows: number;
  /** Median and fastest of the timed calls (ms); the fastest is the least disturbed on a shared machine. */
  ms: number;
  min_ms: number;
  active_frac: number | null;
  ffn_flops: number | null;
}

const ms = (x: number) => (x < 1 ? x.toFixed(3) : x.toFixed(1));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One measured call: the row it fills, the call (its tensor is read back), and how often per round. */
interface Case {
  row: Omit<InferRow, "ms" | "min_ms">;
  fn: () => tf.Tensor;
  calls: number;
}

/**
 * Times every case in rounds (2 untimed rounds, then `reps`), each round calling every case in turn, so
 * that a shared machine's drift hits every contender alike; the median and the fastest call per case.
 */
export function timeRounds(cases: readonly Case[], reps: number, clock = () => performance.now()): InferRow[] {
  const ts = cases.map(() => [] as number[]);
  for (let round = 0; round < reps + 2; round++) {
    cases.forEach((c, i) => {
      for (let j = 0; j < c.calls; j++) {
        const t0 = clock();
        const y = tf.tidy(c.fn);
        y.dataSync();
        y.dispose();
        if (round >= 2) ts[i].push(clock() - t0);
      }
    });
  }
  return cases.map((c, i) => ({ ...c.row, ms: median(ts[i]), min_ms: Math.min(...ts[i]) }));
}

/** The model config of a kind at width d: DSMoE with τ (set later), top-k with 8 experts and k = 2. */
function kindModel(kind: string, d: number, seq: number, tau: number | null): ModelConfig {
  const m = sizedModel(kind, d, seq);
  if (kind === "dsmoe") m.ffn = { kind, tau: tau ?? 0.5 } as ModelConfig["ffn"];
  if (kind === "topk_moe") m.ffn = { kind, experts: 8, top_k: 2 } as ModelConfig["ffn"];
  return m;
}

function layerParams(cfg: ModelConfig, ffn: FfnVariant): FfnParams {
  return Object.fromEntries(ffn.params(cfg).map((s) => [s.name, tf.tensor(initValues(s, 1), [...s.shape])]));
}

const evalCtx = (cfg: ModelConfig, seqLen: number): FfnContext => ({
  cfg,
  layer: 0,
  training: false,
  rng: null,
  addAuxLoss: () => {},
  addStat: () => {},
  seqLen,
});

/** DSMoE's τ: the 75th percentile of the sigmoid gates on x (so ~25% of blocks are active). */
function calibrateTau(x: tf.Tensor2D, p: FfnParams): number {
  const g = tf.tidy(() => tf.sigmoid(tf.matMul(x, p.gate))).dataSync();
  return [...g].sort((a, b) => a - b)[Math.floor(0.75 * g.length)];
}

/** Active fraction of the experts from the routing the variant reports (capture "gate": 0 = skipped). */
function activeFrac(ffn: FfnVariant, x: tf.Tensor2D, p: FfnParams, cfg: ModelConfig): number | null {
  let frac: number | null = null;
  tf.tidy(() => {
    ffn.apply(x, p, {
      ...evalCtx(cfg, x.shape[0]),
      capture: (name, v) => {
        if (name === "gate" && frac === null) {
          const a = Array.from(v.dataSync());
          frac = a.filter((z) => z !== 0).length / a.length;
        }
      },
    });
  });
  return frac;
}

/** The FFN-layer and model cases of one kind at width d, and how to free them. */
async function kindCases(kind: string, d: number, o: { seq: number; batch: number; reps: number }) {
  const rng = new Rng(3), N = o.batch * o.seq, cases: Case[] = [];
  let cfg = kindModel(kind, d, o.seq, null);
  const ffn = await loadFfn(kind), p = layerParams(cfg, ffn);
  const xp = tf.tensor2d(rng.normal(new Float32Array(N * d), 1), [N, d]);
  const x1 = tf.tensor2d(rng.normal(new Float32Array(d), 1), [1, d]);
  if (kind === "dsmoe") cfg = kindModel(kind, d, o.seq, calibrateTau(xp, p));
  const frac = activeFrac(ffn, xp, p, cfg);
  const cost =
    (ffn as { sparseCost?: (c: ModelConfig) => { expert_flops: number; fixed_flops: number; experts: number } })
      .sparseCost?.(cfg);
  const flops = cost && frac !== null
    ? cost.fixed_flops + frac * cost.experts * cost.expert_flops
    : ffn.flopsPerToken(cfg);
  const sparse = kind === "dsmoe" || kind === "topk_moe";
  const forms: [string, (x: tf.Tensor2D) => tf.Tensor][] = [["model", (x) => ffn.apply(x, p, evalCtx(cfg, o.seq))]];
  if (sparse) forms.push(["blas", (x) => sparseFfnInfer(x, p, cfg)]);
  for (const [form, f] of forms) {
    for (const [phase, x] of [["prefill", xp], ["decode", x1]] as const) {
      const row = { d_model: d, kind, form, phase, what: "ffn" as const, rows: x.shape[0] };
      cases.push({
        row: { ...row, active_frac: frac, ffn_flops: flops },
        fn: () => f(x),
        calls: phase === "decode" ? 10 : 1,
      });
    }
  }
  const models: [string, Transformer][] = [["model", await createModel(cfg, 1)]];
  if (sparse) {
    // The same model with the BLAS form in its FFN layers (evaluation only): a wrapped variant, nothing edited.
    const apply: FfnVariant["apply"] = (x, q, c) => (c.training ? ffn.apply(x, q, c) : sparseFfnInfer(x, q, cfg));
    models.push(["blas", new Transformer(cfg, { ...ffn, apply }, 1)]);
  }
  const tok = (b: number) =>
    tf.tensor2d(Int32Array.from({ length: b * o.seq }, (_, i) => (i * 31 + 7) % 256), [b, o.seq], "int32");
  const ids = [tok(o.batch), tok(1)];
  for (const [form, model] of models) {
    for (const [phase, t] of [["prefill", ids[0]], ["decode", ids[1]]] as const) {
      const row = { d_model: d, kind, form, phase, what: "model" as const, rows: t.size };
      cases.push({ row: { ...row, active_frac: null, ffn_flops: null }, fn: () => model.forward(t), calls: 1 });
    }
  }
  const dispose = () => {
    tf.dispose([xp, x1, ...ids, ...Object.values(p)]);
    for (const [, m] of models) m.dispose();
  };
  return { cases, dispose };
}

/** Printed tables: per size, the FFN rows with time and time-saved / FLOPs-saved against dense, then the model rows. */
export function formatInference(rows: readonly InferRow[]): string {
  const out: string[] = [];
  for (const d of [...new Set(rows.map((r) => r.d_model))]) {
    const ffn = rows.filter((r) => r.d_model === d && r.what === "ffn");
    const lines = ffn.map((r) => {
      const dense = ffn.find((x) => x.kind === "dense" && x.phase === r.phase)!;
      const tSaved = 1 - r.min_ms / dense.min_ms, fSaved = 1 - r.ffn_flops! / dense.ffn_flops!;
      return [
        r.kind,
        r.form,
        r.phase,
        r.rows,
        `${ms(r.ms)} (${ms(r.min_ms)})`,
        (dense.min_ms / r.min_ms).toFixed(2),
        r.active_frac === null ? "-" : `${(100 * r.active_frac).toFixed(1)}%`,
        (r.ffn_flops! / dense.ffn_flops!).toFixed(3),
        r.kind === "dense" || Math.abs(fSaved) < 1e-9 ? "-" : (tSaved / fSaved).toFixed(2),
      ];
    });
    out.push(`\nd_model ${d}: one FFN layer (evaluation mode)`);
    out.push(
      table([
        "kind",
        "form",
        "phase",
        "rows",
        "ms",
        "speed-up vs dense",
        "active",
        "FLOPs / dense",
        "time saved / FLOPs saved",
      ], lines),
    );
    const mod = rows.filter((r) => r.d_model === d && r.what === "model");
    out.push(`\nd_model ${d}: whole model forward (decode = one batch-1 forward of the window per token: no KV cache)`);
    out.push(table(
      ["kind", "form", "phase", "tokens", "ms median (fastest)", "speed-up vs dense (fastest)"],
      mod.map((r) => {
        const dense = mod.find((x) => x.kind === "dense" && x.phase === r.phase)!;
        return [r.kind, r.form, r.phase, r.rows, `${ms(r.ms)} (${ms(r.min_ms)})`, (dense.min_ms / r.min_ms).toFixed(2)];
      }),
    ));
  }
  return out.join("\n");
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    options: {
      sizes: { type: "string", default: "256,512" },
      seq: { type: "string", default: "256" },
      batch: { type: "string", default: "4" },
      reps: { type: "string", default: "5" },
      threads: { type: "string", default: String(navigator.hardwareConcurrency) },
      kinds: { type: "string", default: "dense,dsmoe,topk_moe,finermoe" },
    },
  });
  const num = (k: "seq" | "batch" | "reps" | "threads") => {
    const n = Number(v[k]);
    if (!Number.isInteger(n) || n < 1) {
      console.error(`error: --${k} = ${v[k]} must be a positive integer`);
      Deno.exit(2);
    }
    return n;
  };
  const o = { seq: num("seq"), batch: num("batch"), reps: num("reps") }, threads = num("threads");
  const sizes = v.sizes!.split(",").map(Number);
  if (sizes.some((d) => !Number.isInteger(d) || d < 32 || d % 32)) {
    console.error(`error: --sizes = ${v.sizes}: widths must be multiples of 32`);
    Deno.exit(2);
  }
  const info = await initBackend("native", { threads });
  const id = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  console.log(`bench:inference ${id}: ${machine().cpu}, native, ${threads} thread(s), load avg ${Deno.loadavg()[0]}`);
  const rows: InferRow[] = [];
  for (const d of sizes) {
    const all = await Promise.all(v.kinds!.split(",").map((k) => kindCases(k, d, o)));
    rows.push(...timeRounds(all.flatMap((k) => k.cases), o.reps));
    for (const k of all) k.dispose();
    console.log(`  d ${d}: done (load avg ${Deno.loadavg()[0].toFixed(2)})`);
  }
  console.log(formatInference(rows));
  const dir = join(projectPaths().results, "bench");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `inference-${id}.json`);
  const meta = { id, machine: machine(), backend: info.details, threads, ...o, load_avg_end: Deno.loadavg() };
  await Deno.writeTextFile(file, JSON.stringify({ ...meta, rows }, null, 1));
  console.log(`stored: ${file}`);
}
