/**
 * Reports of the DSMoE (arXiv 2502.12455) experiments: experiments/dsmoe-tau.ts (perplexity vs activated parameters over τ and λ, against top-k MoE), experiments/dsmoe-ste.ts (does DSMoE need its straight-through estimator?) and experiments/dsmoe-soft.ts (soft-trained vs STE-trained gates, and the inference-time τ sweep of one model).
 * Each prints a table of lib/report/sparse.ts's variant summary, the inference speeds, a verdict line with the
 * table's numbers and the claim's word (supported / not supported / inconclusive, with its scale) from the claims
 * ledger (lib/report/ledger_verdict.ts), and draws its plots.
 *
 * @module
 */
import type { ReportContext } from "../experiment/define.ts";
import { labelledScatter } from "../plot/scatter.ts";
import { saveChartOf, valLossCurves } from "./charts.ts";
import { meanCurve, meanOf, monotoneViolations, pplAtActive, type TauPoint, tauPoints } from "./dsmoe_curve.ts";
import type { ClaimRow } from "./claims.ts";
import { experimentLedger, ledgerClause } from "./ledger_verdict.ts";
import { LEAD_HEADER, leadCells, PARAM_HEADER, paramCells, pplVsActiveParams, printSparseSummary } from "./sparse.ts";
import { fmt, fmtPct, num, type Row, runMetaText, textTable, welchT } from "./stats.ts";

// ---- dsmoe-tau ---------------------------------------------------------------------------------

/** Method family of a variant, for the plot's series. */
function family(variant: string): string {
  if (variant.startsWith("dsmoe_t0.5_l")) return "DSMoE τ=0.5, λ varied";
  if (variant.startsWith("dsmoe")) return "DSMoE λ=1, τ varied";
  if (variant.startsWith("topk")) return "top-k MoE (split-upcycled)";
  return variant === "dense" ? "dense (continued)" : "dense parent";
}

/** The verdict line from the variant summary rows, the claim's word from the ledger (pure; exported for tests). */
export function dsmoeTauVerdict(rows: Row[], meta: string, ledger: ClaimRow[]): string {
  const by = new Map(rows.map((r) => [String(r.variant), r]));
  const d = by.get("dense"), m = by.get("dsmoe_t0.5");
  const head = `verdict (dsmoe-tau; ${meta}):`;
  if (!d || !m || num(m.ppl_mean) === null || num(d.ppl_mean) === null) {
    return `${head} not enough completed runs (need dense and dsmoe_t0.5)`;
  }
  const t = welchT(m, d);
  const pct = 100 * ((m.ppl_mean as number) / (d.ppl_mean as number) - 1);
  const act = num(m.ffn_active_pct);
  const sparse = act !== null && act < 90;
  const topks = rows.filter((r) => String(r.variant).startsWith("topk") && num(r.ffn_active_pct) !== null);
  const near = act === null
    ? undefined
    : topks.sort((a, b) =>
      Math.abs((a.ffn_active_pct as number) - act) - Math.abs((b.ffn_active_pct as number) - act)
    )[0];
  const vsTopk = near
    ? `; ${near.variant} (${fmt(near.ffn_active_pct, 0)}% FFN active) ppl ${fmt(near.ppl_mean, 3)}: DSMoE ${
      (m.ppl_mean as number) < (near.ppl_mean as number) ? "better" : "worse"
    }`
    : "";
  return `${head} DSMoE at τ=0.5 reaches ppl ${fmt(m.ppl_mean, 3)} with ${fmt(act, 1)}% of the dense FFN's ` +
    `parameters active per token vs dense ppl ${fmt(d.ppl_mean, 3)} (${pct >= 0 ? "+" : ""}${pct.toFixed(2)}%` +
    `${t === null ? ", t n/a" : `, Welch t ${t.toFixed(1)}`})${vsTopk}${
      sparse ? "" : " (DSMoE did not sparsify: ≥ 90% active)"
    }; ${ledgerClause(ledger, "dsmoe-dense-quality")}`;
}

/** The dsmoe-tau report: its table, the inference-speed table, the verdict and the plots. */
export async function dsmoeTauReport(ctx: ReportContext): Promise<string[]> {
  const order = Object.keys(ctx.variants);
  const ledger = await experimentLedger(ctx);
  await printSparseSummary(ctx, {
    title: `\n${ctx.experiment}: val perplexity vs activated parameters (measured from the gates), mean over seeds`,
    header: [...LEAD_HEADER, ...PARAM_HEADER, "experts/token", "no-expert", "load CV"],
    row: (r) => [
      ...leadCells(r),
      ...paramCells(r),
      fmt(r.experts_active, 2),
      fmt(r.no_expert, 3),
      fmt(r.load_cv, 2),
    ],
    verdict: (rows, m) => dsmoeTauVerdict(rows, m, ledger),
  });
  const files = await pplVsActiveParams(ctx, {
    series: family,
    subtitle: "All variants start from the same dense parent and train on the same tokens. " +
      "Activated parameters measured from the routing on the validation batches; mean over seeds.",
  });
  files.push(...await valLossCurves(ctx, order, "Children count steps from their start."));
  return files;
}

// ---- dsmoe-ste ---------------------------------------------------------------------------------

/** The verdict line at τ = 0.5 from the variant summary rows, the claim's word from the ledger (pure). */
export function dsmoeSteVerdict(rows: Row[], meta: string, ledger: ClaimRow[]): string {
  const tau = 0.5;
  const by = new Map(rows.map((r) => [String(r.variant), r]));
  const on = by.get(`ste_t${tau}`), off = by.get(`no_ste_t${tau}`);
  const head = `verdict (dsmoe-ste; ${meta}):`;
  if (!on || !off || num(on.experts_active) === null || num(off.experts_active) === null) {
    return `${head} not enough completed runs (need ste_t${tau} and no_ste_t${tau})`;
  }
  const [aOn, aOff] = [on.experts_active as number, off.experts_active as number];
  const noneOff = num(off.no_expert) ?? 0;
  const collapse = aOff < 0.5 * aOn || noneOff > 0.5;
  const t = welchT(off, on);
  const pct = 100 * ((off.ppl_mean as number) / (on.ppl_mean as number) - 1);
  return `${head} at τ=${tau} without the STE ${fmt(aOff, 2)} of 8 blocks active per token ` +
    `(${fmt(100 * noneOff, 1)}% of tokens with none), ppl ${fmt(off.ppl_mean, 3)}; with the STE ${fmt(aOn, 2)} ` +
    `blocks, ppl ${fmt(on.ppl_mean, 3)} (${pct >= 0 ? "+" : ""}${pct.toFixed(2)}% without, ` +
    `${t === null ? "t n/a" : `Welch t ${t.toFixed(1)}`}): the paper's collapse without the STE is ` +
    `${collapse ? "observed" : "not observed"}; ${ledgerClause(ledger, "dsmoe-ste", `ste_t${tau}`)}`;
}

/** The dsmoe-ste report: its table, the inference-speed table, the verdict and the plots. */
export async function dsmoeSteReport(ctx: ReportContext): Promise<string[]> {
  const order = Object.keys(ctx.variants);
  const ledger = await experimentLedger(ctx);
  await printSparseSummary(ctx, {
    title: `\n${ctx.experiment}: DSMoE with / without the straight-through estimator, mean over seeds`,
    header: [...LEAD_HEADER, "blocks/token", "no-block tokens", "FFN active", "load CV"],
    row: (r) => [
      ...leadCells(r),
      fmt(r.experts_active, 2),
      fmt(r.no_expert, 3),
      fmtPct(r.ffn_active_pct),
      fmt(r.load_cv, 2),
    ],
    verdict: (rows, m) => dsmoeSteVerdict(rows, m, ledger),
  });
  const files: string[] = [];
  // Per-layer activation: the collapse shows as blocks/token per layer.
  const layers = await ctx.query(
    `SELECT r.variant, r.seed, x.name, x.value FROM run_metrics x JOIN current_runs r USING (hash)
     WHERE r.experiment = $e AND r.status = 'completed' AND regexp_matches(x.name, '^experts_active_l[0-9]+$')`,
    { e: ctx.experiment },
  );
  const ppl = await ctx.query(
    `SELECT variant, seed, val_ppl FROM current_runs WHERE experiment = $e AND status = 'completed'`,
    { e: ctx.experiment },
  );
  const pplOf = new Map(ppl.rows.map((r) => [`${r.variant}/${r.seed}`, Number(r.val_ppl)]));
  const act = await ctx.query(
    `SELECT r.variant, r.seed, x.value FROM run_metrics x JOIN current_runs r USING (hash)
     WHERE r.experiment = $e AND r.status = 'completed' AND x.name = 'experts_active'`,
    { e: ctx.experiment },
  );
  files.push(
    ...await saveChartOf(ctx, act.rows, {
      name: "ppl_vs_blocks_active",
      draw: (rows) =>
        labelledScatter(
          rows.map((r) => ({
            series: String(r.variant).startsWith("no_ste") ? "without STE" : "with STE",
            label: String(r.variant),
            x: Number(r.value),
            y: pplOf.get(`${r.variant}/${r.seed}`) ?? NaN,
          })).filter((p) => Number.isFinite(p.y)),
          {
            title: `${ctx.experiment}: perplexity vs DSMoE blocks active per token`,
            subtitle: "Blocks (of 8) above τ per token on the validation batches, all layers; mean over seeds. " +
              "Collapse = few blocks active without the STE.",
            xLabel: "Blocks active per token →",
            yLabel: "↑ Validation perplexity (lower is better)",
          },
        ),
    }),
  );
  files.push(
    ...await saveChartOf(ctx, layers.rows, {
      name: "blocks_active_per_layer",
      draw: (rows) =>
        labelledScatter(
          rows.map((r) => {
            const layer = Number(String(r.name).slice("experts_active_l".length));
            return { series: String(r.variant), label: `${r.variant} l${layer}`, x: layer, y: Number(r.value) };
          }),
          {
            title: `${ctx.experiment}: DSMoE blocks active per token, per layer`,
            subtitle: "Measured from the gates on the validation batches; mean ± std over seeds.",
            xLabel: "Layer →",
            yLabel: "↑ Blocks active per token (of 8)",
          },
        ),
    }),
  );
  files.push(...await valLossCurves(ctx, order, "Children count steps from their start."));
  return files;
}

export { meanCurve, pplAtActive, type TauPoint, tauPoints } from "./dsmoe_curve.ts";

// ---- dsmoe-soft --------------------------------------------------------------------------------

/**
 * The Figure 2 line from the τ curves (pure): per seed, the soft run's curve interpolated at the thresholded
 * run's activation at τ = 0.5 (the numbers the ledger's `dsmoe-soft-worse` effect pairs by seed); the claim's
 * word from the ledger.
 */
export function dsmoeSoftVerdict(points: TauPoint[], meta: string, ledger: ClaimRow[]): string {
  const head = `verdict (dsmoe-soft, Figure 2; ${meta}):`, tau = 0.5;
  const seeds = [...new Set(points.map((p) => p.seed))].sort((a, b) => a - b);
  const pairs = seeds.flatMap((s) => {
    const thr = points.find((p) => p.variant === "threshold" && p.seed === s && p.tau === tau);
    const soft = points.filter((p) => p.variant === "soft" && p.seed === s);
    if (!thr || soft.length < 2) return [];
    const at = pplAtActive(soft, thr.active);
    return [{ active: thr.active, thr: Math.exp(thr.loss), soft: at }];
  });
  if (!pairs.length) return `${head} not enough completed runs (need threshold and soft of one seed)`;
  const inRange = pairs.filter((p) => p.soft !== null) as { active: number; thr: number; soft: number }[];
  if (!inRange.length) {
    return `${head} the thresholded model's activation (${fmt(meanOf(pairs.map((p) => p.active)), 2)} blocks) ` +
      `lies outside the soft model's re-thresholded curve; ${ledgerClause(ledger, "dsmoe-soft-worse")}`;
  }
  return `${head} at the STE-trained model's ${fmt(meanOf(inRange.map((p) => p.active)), 2)} blocks/token ` +
    `(τ=${tau}) its ppl ${fmt(meanOf(inRange.map((p) => p.thr)), 3)} vs the soft-trained model re-thresholded ` +
    `to the same activation ${fmt(meanOf(inRange.map((p) => p.soft)), 3)} (${inRange.length}/${pairs.length} ` +
    `seeds in range; soft worse in ${inRange.filter((p) => p.soft > p.thr).length}/${inRange.length}); ` +
    ledgerClause(ledger, "dsmoe-soft-worse");
}

/**
 * The τ-sweep line (pure): the mean curve of the thresholded model over τ and its violations of monotonicity
 * (rises in activation, falls in perplexity as τ rises); the claim's word from the ledger (per-seed curves).
 */
export function dsmoeRethresholdVerdict(points: TauPoint[], meta: string, ledger: ClaimRow[]): string {
  const head = `verdict (dsmoe-soft, τ sweep at inference on "threshold"; ${meta}):`;
  const c = meanCurve(points, "threshold");
  if (c.length < 3) return `${head} not enough re-thresholded evaluations (need at least 3 τ)`;
  const { actUp, pplDown } = monotoneViolations(c);
  return `${head} ` + c.map((p) => `τ=${p.tau}: ${fmt(p.active, 2)} blocks, ppl ${fmt(p.ppl, 3)}`).join("; ") +
    `: mean curve ${
      actUp + pplDown === 0 ? "monotone" : `not monotone (${actUp} rises in activation, ${pplDown} falls in ppl)`
    }; ${ledgerClause(ledger, "dsmoe-tau-monotone")}`;
}

/** The dsmoe-soft report: the variant table, the τ-sweep table, the two verdicts and the plots. */
export async function dsmoeSoftReport(ctx: ReportContext): Promise<string[]> {
  const order = Object.keys(ctx.variants);
  const meta = await runMetaText(ctx);
  await printSparseSummary(ctx, {
    title: `\n${ctx.experiment}: STE-trained vs soft-trained DSMoE at τ=0.5, mean over seeds`,
    header: [...LEAD_HEADER, "blocks/token", "FFN active", "no-block tokens"],
    row: (r) => [
      ...leadCells(r),
      fmt(r.experts_active, 2),
      fmtPct(r.ffn_active_pct),
      fmt(r.no_expert, 3),
    ],
    verdict: (rows, m) => `(dense ppl ${fmt(rows.find((r) => r.variant === "dense")?.ppl_mean, 3)}; ${m})`,
  });
  const q = await ctx.query(
    `SELECT r.variant, r.seed, x.name, x.value FROM run_metrics x JOIN current_runs r USING (hash)
     WHERE r.experiment = $e AND r.status = 'completed' AND starts_with(x.name, 'eval_tau_')`,
    { e: ctx.experiment },
  );
  const points = tauPoints(q.rows);
  const variants = [...new Set(points.map((p) => p.variant))];
  ctx.print("re-thresholded after training (no retraining), mean over seeds:");
  ctx.print(textTable(
    ["variant", "τ", "blocks/token", "val ppl"],
    variants.flatMap((v) => meanCurve(points, v).map((p) => [v, String(p.tau), fmt(p.active, 2), fmt(p.ppl, 3)])),
  ));
  const ledger = await experimentLedger(ctx);
  ctx.print(dsmoeSoftVerdict(points, meta, ledger));
  ctx.print(dsmoeRethresholdVerdict(points, meta, ledger));
  const files: string[] = [];
  files.push(
    ...await saveChartOf(ctx, points, {
      name: "ppl_vs_blocks_active_tau_sweep",
      draw: (rows) =>
        labelledScatter(
          rows.map((p) => ({
            series: p.variant,
            label: `${p.variant} τ=${p.tau}`,
            x: p.active,
            y: Math.exp(p.loss),
          })),
          {
            title: `${ctx.experiment}: perplexity vs blocks active, one trained model per line, τ varied at inference`,
            subtitle: "Each model re-thresholded at τ = 0.01…0.9 after training; blocks (of 8) above τ per token on " +
              "the validation batches; mean ± std over seeds.",
            xLabel: "Blocks active per token →",
            yLabel: "↑ Validation perplexity (lower is better)",
          },
        ),
    }),
  );
  files.push(...await valLossCurves(ctx, order, "Children count steps from their start."));
  return files;
}
