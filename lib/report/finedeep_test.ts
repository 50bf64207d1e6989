/**
 * The Finedeep reports on synthetic results (no training): the SQL runs on a real DuckDB store,
 * the tables and verdicts come out as the numbers say, and the plots are written.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { ReportContext } from "../experiment/define.ts";
import type { FfnConfig } from "../core/config.ts";
import type { FinedeepNorm, FinedeepOptions, FinedeepScore } from "../models/ffn/finedeep.ts";
import { openStore, type Store } from "../store/mod.ts";
import { syntheticRunRecord } from "../store/testing.ts";
import type { RunRecord } from "../core/records.ts";
import { ablationReport, fvdReport, nsarReport, routingReport } from "./finedeep.ts";
import { ablationSql, ablationVerdict, routingSql } from "./finedeep_sql.ts";
import { judge, meanStd, T_CRIT, textTable } from "./stats.ts";
import { ledgerFor } from "./testing.ts";

const fd = (m: number, k: number, extra: Partial<FinedeepOptions> = {}): FfnConfig => ({
  kind: "finedeep",
  m,
  k,
  ...extra,
});

/** Runs of one experiment, 3 seeds per variant; `floor` sets the variant's loss level (seed jitter 0.002). */
function runs(
  experiment: string,
  variants: Record<
    string,
    { ffn: FfnConfig; floor: number; extra?: (seed: number) => Record<string, number>; layers?: number }
  >,
): RunRecord[] {
  return Object.entries(variants).flatMap(([variant, v]) =>
    [0, 1, 2].map((seed) =>
      syntheticRunRecord({
        experiment,
        variant,
        seed,
        ffn: v.ffn,
        floor: v.floor + 0.002 * seed,
        extra: v.extra?.(seed) ?? {},
        edit: (c) => {
          if (v.layers) c.model.n_layers = v.layers;
        },
      })
    )
  );
}

async function withReport(
  experiment: string,
  records: RunRecord[],
  fn: (ctx: ReportContext, out: string[], store: Store) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "finelab-report-" });
  const store = await openStore(join(dir, "results.duckdb"));
  try {
    await store.ingest(records, [{
      id: experiment,
      description: "",
      module: "",
      n_runs: records.length,
      plan: { scale: "default", runs: records.map((r) => ({ hash: r.manifest.hash, run_id: r.manifest.run_id })) },
    }]);
    const out: string[] = [];
    await fn(
      {
        experiment,
        variants: {},
        query: (sql, params) => store.query(sql, params),
        plotDir: join(dir, "plots"),
        print: (t) => out.push(t),
      },
      out,
      store,
    );
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const LINES = {
  "1x16": 1.98,
  "2x8": 1.93,
  "4x4": 1.9,
  "8x2": 1.95,
  "16x1": 1.99,
  "1x4": 1.97,
  "2x2": 1.95,
  "4x1": 1.98,
};

Deno.test("ablation report: the ledger's words (4x4 beats dense and 1x16: supported; 2x2 vs 1x4 inconclusive); table, SQL and plots", async () => {
  const variants: Parameters<typeof runs>[1] = {
    dense: { ffn: { kind: "dense" }, floor: 2.0, extra: (s) => ({ "nsar_gate_0.1": 0.2 + s * 0.01 }) },
  };
  for (const [name, floor] of Object.entries(LINES)) {
    const [m, k] = name.split("x").map(Number);
    variants[name] = {
      ffn: fd(m, k),
      floor,
      extra: (s) => ({ "nsar_gate_0.1": 0.3 + s * 0.01, "nsar_gate_0.01": 0.9 }),
    };
  }
  await withReport("ablation-mk", runs("ablation-mk", variants), async (ctx, out) => {
    const rows = (await ctx.query(ablationSql())).rows;
    assert.deepEqual(rows.map((r) => r.variant), ["dense", "1x4", "2x2", "4x1", "1x16", "2x8", "4x4", "8x2", "16x1"]);
    const by = Object.fromEntries(rows.map((r) => [r.variant, r]));
    assert.deepEqual(rows.filter((r) => r.best_of_line).map((r) => r.variant), ["2x2", "4x4"]);
    assert.equal(by["4x4"].mk, 16);
    assert.equal(by["4x4"].seeds, 3);
    assert.ok((by["4x4"].ppl_vs_dense_pct as number) < -5, `4x4 vs dense ${by["4x4"].ppl_vs_dense_pct}`);
    assert.ok((by["4x4"].t_vs_dense as number) < -T_CRIT);
    assert.ok(Math.abs((by["4x4"].nsar_mean as number) - 0.31) < 1e-12);
    assert.equal(by.dense.params_vs_dense_pct, 0);
    const files = await ablationReport(ctx);
    const text = out.join("\n");
    assert.match(text, /4x4\s+4\s+4\s+3\s+[\d.]+ ± [\d.]+\s+-\d+\.\d\d%/);
    assert.match(
      text,
      /verdict \(ablation-mk; scale default, 3 seeds, cpu\): M·K=16: best 4x4 \(balanced\); M·K=4: best 2x2 \(balanced\); best Finedeep 4x4 vs dense: -\d+\.\d\d% ppl, Welch t=-[\d.]+; claim finedeep-balanced-mk: 2x2 vs 1x4 -[\d.]+% \[-[\d.]+, \+[\d.]+\]: inconclusive at 205k tokens, d=128; 4x4 vs 1x16 -[\d.]+% \[.*\]: supported at .*; claim finedeep-beats-dense: 4x4 vs dense -[\d.]+% \[.*\]: supported at /,
    );
    assert.doesNotMatch(text, /not supported/);
    for (const name of ["ppl_vs_m", "val_loss_curves", "nsar_by_variant", "nsar_vs_tau"]) {
      assert.ok(files.some((f) => f.endsWith(`${name}.png`)) && existsSync(join(ctx.plotDir!, `${name}.png`)), name);
    }
  });
});

Deno.test("ablation verdict: extremes best reads not supported (the ledger's word); noise is called noise", () => {
  const meta = { scale: "tiny", backend: "wasm", seeds: 3, completed: 9, planned: 9 };
  const row = (variant: string, m: number | null, k: number | null, ppl: number, std: number, t: number | null) => ({
    variant,
    m,
    k,
    mk: m === null ? null : m * k!,
    ppl_mean: ppl,
    ppl_std: std,
    ppl_vs_dense_pct: 1,
    t_vs_dense: t,
  });
  const rows = [
    row("dense", null, null, 10, 0.1, 0),
    row("1x4", 1, 4, 10.5, 0.1, 5),
    row("2x2", 2, 2, 10.8, 0.1, 8),
    row("4x1", 4, 1, 11, 0.1, 10),
  ];
  const ledger = (v: Record<string, number>) => ledgerFor("ablation-mk", v);
  const v = ablationVerdict(rows, meta, ledger({ dense: 10, "1x4": 10.5, "2x2": 10.8, "4x1": 11 }));
  assert.match(v, /M·K=4: best 1x4 \(an extreme\)/);
  assert.match(v, /best Finedeep 1x4 vs dense: \+1\.00% ppl, Welch t=\+5\.0/);
  assert.match(v, /claim finedeep-balanced-mk: 2x2 vs 1x4 \+2\.86% \[.*\]: not supported at 154k tokens, d=64; /);
  assert.match(v, /claim finedeep-beats-dense: no ledger row/);
  const noisy = ablationVerdict(
    [rows[0], { ...rows[1], ppl_std: 1 }, {
      ...rows[2],
      ppl_mean: 10.4,
      ppl_std: 1,
      t_vs_dense: 0.5,
    }, { ...rows[3], ppl_std: 1 }],
    { ...meta, completed: 8 },
    ledger({ "1x4": 10.5, "2x2": 10.4, "4x1": 11 }),
  );
  assert.match(noisy, /best 2x2 \(balanced, line spread within 2 seed-std\)/);
  assert.match(noisy, /claim finedeep-balanced-mk: 2x2 vs 1x4 -0\.95% \[.*\]: supported at 154k tokens, d=64/);
  assert.match(noisy, /only 8\/9 runs completed/);
});

Deno.test("routing report: ranks variants, compares with output-sigmoid and dense", async () => {
  const v = (score: FinedeepScore, norm_fn: FinedeepNorm, floor: number) => ({
    ffn: fd(4, 4, { score, norm_fn }),
    floor,
    extra: (): Record<string, number> => (norm_fn === "none" ? {} : { router_mean: 0.5, router_std: 0.1 }),
  });
  const records = runs("routing", {
    dense: { ffn: { kind: "dense" }, floor: 2.0 },
    "output-sigmoid": v("output", "sigmoid", 1.9),
    "output-softmax": v("output", "softmax", 1.95),
    "input-sigmoid": v("input", "sigmoid", 1.9),
    "input-softmax": v("input", "softmax", 1.96),
    none: v("output", "none", 2.05),
  });
  await withReport("routing", records, async (ctx, out) => {
    const rows = (await ctx.query(routingSql())).rows;
    assert.deepEqual(rows.slice(0, 2).map((r) => r.variant).sort(), ["input-sigmoid", "output-sigmoid"]);
    assert.deepEqual(rows.slice(2).map((r) => r.variant), ["output-softmax", "input-softmax", "dense", "none"]);
    assert.equal(rows.find((r) => r.variant === "none")!.gate_mean, null);
    await routingReport(ctx);
    const text = out.join("\n");
    assert.match(text, /softmax vs sigmoid: output-softmax \+\d+\.\d\d% \(Welch t=\+[\d.]+\)/);
    assert.match(text, /input vs output scores: input-sigmoid/);
    assert.match(
      text,
      /claim finedeep-output-routing: output-sigmoid vs input-sigmoid .*: (inconclusive|supported|not supported) at .*; claim finedeep-sigmoid-gates: output-sigmoid vs output-softmax -[\d.]+% \[.*\]: supported at /,
    );
  });
});

Deno.test("finedeep-vs-dense report: one row per size, verdict per size", async () => {
  const records = runs("finedeep-vs-dense", {
    "dense-L2": { ffn: { kind: "dense" }, floor: 2.2, layers: 2 },
    "finedeep-L2": { ffn: fd(4, 4), floor: 2.1, layers: 2 },
    "dense-L6": { ffn: { kind: "dense" }, floor: 2.0, layers: 6 },
    "finedeep-L6": { ffn: fd(4, 4), floor: 2.03, layers: 6 },
  });
  await withReport("finedeep-vs-dense", records, async (ctx, out) => {
    const files = await fvdReport(ctx);
    const text = out.join("\n");
    assert.match(text, /L=2 .*: -\d+\.\d\d% ppl, t=-[\d.]+; L=6 .*: \+\d\.\d\d% ppl/);
    assert.match(
      text,
      /claim finedeep-beats-dense: finedeep-L2 vs dense-L2 -[\d.]+% \[.*\]: supported at .*; finedeep-L6 vs dense-L6 \+[\d.]+% \[.*\]: not supported at /,
    );
    assert.ok(files.some((f) => f.endsWith("ppl_vs_params.png")));
  });
});

Deno.test("nsar report: per-τ and per-layer comparison, histograms per layer", async () => {
  const extra = (base: number) => (s: number) => {
    const e: Record<string, number> = {};
    for (const [i, tau] of [0.01, 0.05, 0.1, 0.2].entries()) {
      e[`nsar_gate_${tau}`] = base - 0.1 * i + 0.001 * s;
      e[`nsar_prod_${tau}`] = base - 0.1 * i;
      for (const l of [0, 1]) e[`nsar_gate_${tau}_l${l}`] = base - 0.1 * i + 0.01 * l + 0.001 * s;
    }
    for (let j = 0; j < 49; j++) e[`hist_gate_l0_b${j}`] = j === 12 ? 0.5 : 0.5 / 48;
    return e;
  };
  const records = runs("nsar", {
    dense: { ffn: { kind: "dense" }, floor: 2.0, extra: extra(0.5) },
    finedeep: { ffn: fd(4, 4), floor: 2.0, extra: extra(0.6) },
  });
  await withReport("nsar", records, async (ctx, out) => {
    const files = await nsarReport(ctx);
    const text = out.join("\n");
    assert.match(text, /nsar_gate_0\.1\s+0\.3010 ± 0\.0010\s+0\.4010 ± 0\.0010\s+\+0\.1000/);
    assert.match(
      text,
      /higher in 2\/2 layers at τ=0\.1; claim finedeep-nsar: finedeep vs dense \+0\.1000 \[.*\]: supported at /,
    );
    assert.ok(files.some((f) => f.endsWith("activation_histograms.png")));
    assert.ok(files.some((f) => f.endsWith("nsar_per_layer.png")));
  });
});

Deno.test("formatting helpers", () => {
  assert.equal(meanStd(1.23456, 0.1), "1.235 ± 0.100");
  assert.equal(meanStd(1.5, null, 1), "1.5");
  assert.equal(meanStd(null, 1), "-");
  assert.deepEqual([judge(-3), judge(3), judge(1), judge(null)], ["better", "worse", "~", "n/a"]);
  assert.equal(textTable(["a", "n"], [["x", "1.5"], ["yy", "10.25"]]), "a       n\n--  -----\nx     1.5\nyy  10.25");
});
