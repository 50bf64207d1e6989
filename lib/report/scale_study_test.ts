/**
 * The scale-study report on synthetic runs (no training, no database): one table row per claim test and model
 * size with the verdicts the numbers give, and one effect-vs-tokens plot per claim, for every claim of the ledger.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { ReportContext } from "../experiment/define.ts";
import { CLAIMS } from "./claims_declared.ts";
import { claimsOf, effectLabel, SCALE_STUDY, scaleStudyReport, testLabel } from "./scale_study.ts";
import type { Row } from "./stats.ts";

const BUDGETS = [51_200, 153_600, 307_200];

/** Each arm's val_ppl at budget index `ti` (before the seed jitter). */
const PPL: Record<string, (ti: number) => number> = {
  fd_dense: () => 10,
  fd_2x2: () => 9.5,
  fd_1x4: () => 9.8,
  fd_4x1: () => 9.9,
  fd_2x2_input: () => 9.7,
  fd_2x2_softmax: () => 9.6,
  sp_parent: () => 12,
  sp_dense: () => 10,
  sp_dsmoe: () => 10.05,
  sp_dsmoe_no_ste: () => 11,
  sp_split_top2: () => 9,
  sp_dsmoe_eval: () => 10.05,
  sp_dsmoe_soft: () => 10.5,
  sp_finermoe: () => 8.5,
  // Single vs separate router: +2%, 0, -2% as tokens grow (moves toward the paper's side).
  sp_finermoe_separate: (ti) => 8.5 / (1 + 0.02 * (1 - ti)),
  sp_fg_none: () => 10.5,
  sp_fg_inter: () => 10, // also G_I 8, G_O 1
  sp_fg_out: () => 9,
  sp_gi2_go1: () => 11,
  sp_gi2_go4: () => 9,
  sp_gi8_go4: () => 10.5,
};

/** τ curves (τ, blocks/token, ppl): the thresholded model's is monotone; the soft one's is 11 at 4 blocks. */
const CURVES: Record<string, [number, number, number][]> = {
  sp_dsmoe_eval: [[0.3, 6, 9.5], [0.5, 4, 10], [0.7, 2, 11]],
  sp_dsmoe_soft: [[0.3, 5, 10.5], [0.5, 3, 11.5]],
};

function synthetic(): { runs: Row[]; metrics: Row[] } {
  const runs: Row[] = [], metrics: Row[] = [];
  for (const [variant, ppl] of Object.entries(PPL)) {
    for (const [ti, tokens] of BUDGETS.entries()) {
      for (const d_model of [32, 64]) {
        for (const seed of [0, 1, 2]) {
          const jitter = 1 + 0.002 * (((variant.length + 7 * seed) % 3) - 1);
          const hash = `${variant}/${tokens}/${d_model}/${seed}`;
          const nsar = variant === "fd_dense" ? 0.2 : 0.3;
          runs.push({
            hash,
            experiment: SCALE_STUDY,
            variant,
            seed,
            scale: "default",
            d_model,
            tokens,
            params: 1000,
            val_ppl: ppl(ti) * jitter,
            val_loss: Math.log(ppl(ti) * jitter),
            "nsar_gate_0.1": nsar * jitter,
          });
          for (const [tau, active, p] of CURVES[variant] ?? []) {
            metrics.push({ hash, name: `eval_tau_${tau}_val_loss`, value: Math.log(p * jitter) });
            metrics.push({ hash, name: `eval_tau_${tau}_experts_active`, value: active });
          }
        }
      }
    }
  }
  return { runs, metrics };
}

Deno.test("scale-study report: a row per claim test and size with the numbers' verdicts, a plot per claim", async () => {
  const { runs, metrics } = synthetic();
  const dir = await Deno.makeTempDir({ prefix: "finelab-scale-study-" });
  const out: string[] = [];
  const ctx: ReportContext = {
    experiment: SCALE_STUDY,
    variants: {},
    // computeLedger's two queries: the runs, then the run_metrics its custom effects read.
    query: (sql) => Promise.resolve({ columns: [], rows: sql.startsWith("SELECT hash, name, value") ? metrics : runs }),
    plotDir: join(dir, "plots"),
    print: (t) => out.push(t),
  };
  try {
    const files = await scaleStudyReport(ctx);
    const text = out.join("\n");
    const lines = text.split("\n");
    const row = (claim: string, test: string, d: number) => {
      const hit = lines.filter((l) => l.startsWith(`${claim} `) && l.includes(` ${test} `) && l.includes(` ${d} `));
      assert.equal(hit.length, 1, `${claim} ${test} d=${d}: ${hit.length} rows`);
      return hit[0];
    };
    // Every claim is in the study, one row per test and model size.
    const claims = claimsOf(SCALE_STUDY);
    assert.equal(claims.length, CLAIMS.length);
    for (const c of claims) {
      for (const t of c.tests) for (const d of [32, 64]) row(c.id, testLabel(t), d);
    }
    // Output- vs intermediate-only: -10% at every budget.
    assert.match(row("finermoe-output-fg", "sp_fg_out vs sp_fg_inter", 32), /(-10\.\d\d% \[.*\] supported\s+){3}/);
    // Both dimensions vs the strongest of the three others (fg_out, 9.0): -5.6%.
    assert.match(
      row("finermoe-both-fg", "sp_finermoe vs best of sp_fg_none, sp_fg_inter, sp_fg_out", 64),
      /-5\.\d\d% \[.*\] supported/,
    );
    // Single router: +2% (not supported), 0 (inconclusive), -2% (supported); the trend moves toward the paper.
    assert.match(
      row("finermoe-single-router", "sp_finermoe vs sp_finermoe_separate", 64),
      /\+2\.\d\d% \[.*\] NOT supported\s+[+-]0\.\d\d% \[.*\] inconclusive\s+-2\.\d\d% \[.*\] supported\s+-\d\.\d\d%\s+yes/,
    );
    // Finer G_O helps at G_I 2 (-18%) but not at G_I 8 (+5%); finer G_I helps at G_O 1 (-9%), not at G_O 4 (+17%).
    assert.match(row("finermoe-finer-go", "sp_gi2_go4 vs sp_gi2_go1", 32), /-18\.\d\d% \[.*\] supported/);
    assert.match(row("finermoe-finer-go", "sp_gi8_go4 vs sp_fg_inter", 32), /\+5\.\d\d% \[.*\] NOT supported/);
    assert.match(row("finermoe-finer-gi", "sp_fg_inter vs sp_gi2_go1", 64), /-9\.\d\d% \[.*\] supported/);
    assert.match(row("finermoe-finer-gi", "sp_gi8_go4 vs sp_gi2_go4", 64), /\+16\.\d\d% \[.*\] NOT supported/);
    // dsmoe-soft's claims from the τ curves: soft is +10% at the thresholded model's 4 blocks; the curve is monotone.
    assert.match(row("dsmoe-soft-worse", "sp_dsmoe_soft vs sp_dsmoe_eval", 32), /(\+10\.\d\d% \[.*\] supported\s+){3}/);
    assert.match(row("dsmoe-tau-monotone", "sp_dsmoe_eval", 64), /(\+0\.0000 \[\+0\.000, \+0\.000\] supported\s+){3}/);
    // One plot per claim (svg and png), series per test and size, the custom effects' axis labels.
    for (const c of CLAIMS) {
      for (const ext of ["svg", "png"]) {
        const f = join(ctx.plotDir!, `effect_vs_tokens_${c.id}.${ext}`);
        assert.ok(files.includes(f) && existsSync(f), f);
      }
    }
    const svg = (id: string) => Deno.readTextFileSync(join(ctx.plotDir!, `effect_vs_tokens_${id}.svg`));
    assert.match(svg("dsmoe-tau-monotone"), /monotonicity violations of the τ curve \(count\)/);
    assert.match(svg("dsmoe-soft-worse"), /soft vs thresholded ppl at matched activation, %/);
    assert.match(svg("finermoe-finer-go"), /sp_gi8_go4 vs sp_fg_inter, d=64/);
    assert.match(svg("finermoe-output-fg"), /val_ppl relative change, %/);
    assert.doesNotMatch(svg("finermoe-output-fg"), /sp_fg_out vs sp_fg_inter, d=/); // one test: series by size only
    assert.match(svg("finedeep-nsar"), /nsar_gate_0\.1 difference/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("effectLabel: a custom effect's own label, else the metric's relative change or difference", () => {
  const claim = (id: string) => CLAIMS.find((c) => c.id === id)!;
  assert.equal(effectLabel(claim("dsmoe-tau-monotone"), "abs"), "monotonicity violations of the τ curve (count)");
  assert.equal(effectLabel(claim("finermoe-single-router"), "%"), "val_ppl relative change, %");
  assert.equal(effectLabel(claim("finedeep-nsar"), "abs"), "nsar_gate_0.1 difference");
});
