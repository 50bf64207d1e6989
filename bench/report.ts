/**
 * The bench's numbers: one child's result, the summary per (backend, FFN kind) over repeats, and the
 * printed report (throughput table, peer comparison, FFN ratios).
 *
 * @module
 */
import type { BenchResult } from "../lib/train/bench.ts";
import type { Peak } from "../lib/backends/native/mod.ts";
import type { ModelConfig } from "../lib/core/config.ts";

/** Backend label of the PyTorch twin run eagerly, and with `torch.compile` on the loss. */
export const TORCH = "torch";
/** See {@link TORCH}. */
export const TORCH_COMPILE = "torch.compile";
const isPeer = (b: string) => b === TORCH || b === TORCH_COMPILE;

/** One child process's result, tagged. */
export interface RunResult {
  backend: string;
  ffn: string;
  repeat: number;
  /** The model's width and sequence length (absent in files written before `--sizes`: the reference model). */
  d_model?: number;
  seq_len?: number;
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

/** The median (the mean of the two middle values for an even count). */
export const median = (xs: readonly number[]): number => {
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

/** A number with d decimals, `n/a` when missing. */
export const fmt = (
  x: number | null | undefined,
  d = 1,
): string => (x === null || x === undefined ? "n/a" : x.toFixed(d));
const mib = (b: number | null) => (b === null ? "n/a" : `${(b / 2 ** 20).toFixed(0)} MiB`);

/** Relative difference |a - b| / max(|b|, 1e-12). */
export function relDiff(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
}

/** The printed report: throughput table, peer comparison, FFN ratios. */
export function formatReport(
  runs: readonly RunResult[],
  summaries: readonly Summary[],
  o: {
    peak: Peak | null;
    peakNote: string;
    threads: number;
    kinds: readonly string[];
    model: ModelConfig;
    batch: number;
    peerVersion: string | null;
  },
): string {
  const out: string[] = [], m = o.model;
  out.push(
    `Training throughput, d=${m.d_model}, ${m.n_layers} layers, ${m.n_heads} heads, d_ff ${m.d_ff}, seq ${m.seq_len}, ` +
      `batch ${o.batch}, bytes; ${o.threads} thread(s)${o.peerVersion ? `; peer: PyTorch ${o.peerVersion}` : ""}.` +
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
      isPeer(s.backend) && o.peerVersion ? `${s.backend} ${o.peerVersion}` : s.backend,
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

  for (const label of [TORCH, TORCH_COMPILE]) out.push(...peerSection(runs, label, o.peerVersion));

  // FFN kind / dense ratio per backend.
  const others = o.kinds.filter((k) => k !== "dense");
  if (others.length && o.kinds.includes("dense")) {
    out.push(
      "\nStep time relative to the dense twin. Targets (issue 20): Finedeep <= 1.1 (it computes the dense FFN's " +
        "FLOPs); a sparse FFN within 1.2x of its FLOP ratio (time ratio / FLOP ratio <= 1.2; FLOPs: the " +
        "variant's flopsPerToken, the activated FLOPs of a sparse FFN).",
    );
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
      // FLOPs per step of each = GFLOP/s x seconds per step.
      const flops = s.gflops !== null && d.gflops ? (s.gflops * s.median_ms) / (d.gflops * d.median_ms) : null;
      const limit = s.ffn.split(":")[0] === "finedeep" || flops === null ? 1.1 : 1.2 * flops;
      rows.push([
        s.backend,
        s.ffn,
        ratio.toFixed(3),
        pairs.length ? `${Math.min(...pairs).toFixed(2)}..${Math.max(...pairs).toFixed(2)}` : "n/a",
        s.cpu_ms !== null && d.cpu_ms ? (s.cpu_ms / d.cpu_ms).toFixed(3) : "n/a",
        (s.fastest_ms / d.fastest_ms).toFixed(3),
        flops === null ? "n/a" : flops.toFixed(3),
        flops === null ? "n/a" : (ratio / flops).toFixed(3),
        ratio <= limit ? `ok (<= ${limit.toFixed(2)})` : `ABOVE ${limit.toFixed(2)}`,
      ]);
    }
    out.push(
      table(
        [
          "backend",
          "ffn",
          "ratio (medians)",
          "per-repeat",
          "CPU-time ratio",
          "fastest-step ratio",
          "FLOP ratio",
          "time / FLOPs",
          "target (medians)",
        ],
        rows,
      ),
    );
  }
  return out.join("\n");
}

/** The peer `label`'s tokens/s ratio per A/B pair against each of our backends, and the per-step losses. */
function peerSection(runs: readonly RunResult[], label: string, version: string | null): string[] {
  const torchRuns = runs.filter((r) => r.backend === label && r.result);
  if (!torchRuns.length) return [];
  const out: string[] = [];
  const ours = [...new Set(runs.filter((r) => r.ffn === "dense" && !isPeer(r.backend)).map((r) => r.backend))];
  out.push(`\nPeer: PyTorch ${version ?? ""} twin (${label}) on the same weights and batches (dense).`);
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
    table([
      "backend",
      `tok/s ratio vs ${label} (median of A/B pairs)`,
      "min..max",
      "CPU-time ratio (median)",
    ], rows),
  );
  const ref = torchRuns[0].result!;
  const cols = ours.map((b) => runs.find((r) => r.backend === b && r.ffn === "dense" && r.result)?.result ?? null);
  const lossRows: (string | number)[][] = ref.losses.map((l, s) => [
    s,
    l.toFixed(7),
    ...cols.flatMap((c) => (c ? [c.losses[s].toFixed(7), relDiff(c.losses[s], l).toExponential(1)] : ["n/a", "n/a"])),
  ]);
  out.push(`\nLoss per step (step 0 = initial weights; relative difference to ${label}; fp32 agreement target ~1e-5):`);
  out.push(table(["step", label, ...ours.flatMap((b) => [b, "rel diff"])], lossRows));
  for (const [i, b] of ours.entries()) {
    const c = cols[i];
    if (!c) continue;
    const worst = Math.max(...ref.losses.map((l, s) => relDiff(c.losses[s], l)));
    out.push(
      `max relative loss difference ${b} vs ${label}: ${worst.toExponential(2)} ${
        worst <= 2e-5 ? "(ok)" : "(ABOVE 2e-5)"
      }`,
    );
  }
  return out;
}
