/**
 * Report of experiments/finedeep-arms.ts: the Finedeep paper's ambiguous choices (RMSNorm placement,
 * router per expert or per sub-layer, gate initialisation) as arms, each against dense: final perplexity
 * (Welch t over seeds), the validation-loss gap to dense at early steps and at the end (paired by seed: the
 * same seed sees the same tokens), and NSAR under both readings the analysis implements. The claims' words
 * (supported / not supported / inconclusive) come from the ledger (lib/report/ledger_verdict.ts).
 * (lib/report/finedeep.ts holds the other Finedeep reports; it is at its size limit.)
 *
 * @module
 */
import type { ReportContext } from "../experiment/define.ts";
import { valLossCurves } from "./charts.ts";
import type { ClaimRow } from "./claims.ts";
import { experimentLedger, ledgerClause } from "./ledger_verdict.ts";
import { fmt, meanStd, num, type Row, runMetaText, signed, textTable, welchT } from "./stats.ts";

/** Per-variant summary: seeds, ppl mean/std, NSAR_0.1 of SiLU(gate) and of SiLU(gate)·up (both readings). */
export function armsSummarySql(): string {
  return `WITH r AS (SELECT hash, variant, val_ppl FROM current_runs WHERE experiment = $e AND status = 'completed'),
x AS (SELECT hash, max(value) FILTER (WHERE name = 'nsar_gate_0.1') AS nsar_gate,
        max(value) FILTER (WHERE name = 'nsar_prod_0.1') AS nsar_prod FROM run_metrics GROUP BY hash)
SELECT variant, count(*)::INTEGER AS seeds, avg(val_ppl) AS ppl_mean, stddev_samp(val_ppl) AS ppl_std,
  avg(nsar_gate) AS nsar_gate, avg(nsar_prod) AS nsar_prod
FROM r LEFT JOIN x USING (hash) GROUP BY variant ORDER BY variant`;
}

/** Loss gap of one arm to dense at one step: mean over seeds of (arm − dense) val loss, paired t. */
export interface Gap {
  variant: string;
  step: number;
  gap: number;
  t: number | null;
  seeds: number;
}

/** The steps the gaps are read at: 20 and 40 where evaluated (else the first two evaluations), and the last. */
export function gapSteps(steps: number[]): number[] {
  const s = [...new Set(steps)].sort((a, b) => a - b);
  if (!s.length) return [];
  const early = [20, 40].every((x) => s.includes(x)) ? [20, 40] : s.slice(0, Math.min(2, s.length - 1));
  return [...early, s[s.length - 1]];
}

/** {@link Gap}s of every non-dense variant from `(variant, seed, step, value)` val-loss rows (pure). */
export function lossGaps(rows: Row[]): Gap[] {
  const loss = new Map(rows.map((r) => [`${r.variant}/${r.seed}/${r.step}`, Number(r.value)]));
  const steps = gapSteps(rows.map((r) => Number(r.step)));
  const variants = [...new Set(rows.map((r) => String(r.variant)))].filter((v) => v !== "dense").sort();
  const seeds = [...new Set(rows.map((r) => Number(r.seed)))].sort((a, b) => a - b);
  return variants.flatMap((v) =>
    steps.map((step) => {
      const d = seeds.flatMap((s) => {
        const a = loss.get(`${v}/${s}/${step}`), b = loss.get(`dense/${s}/${step}`);
        return a === undefined || b === undefined ? [] : [a - b];
      });
      const m = d.reduce((x, y) => x + y, 0) / (d.length || 1);
      const sd = d.length > 1 ? Math.sqrt(d.reduce((x, y) => x + (y - m) ** 2, 0) / (d.length - 1)) : 0;
      return { variant: v, step, gap: m, t: sd > 0 ? m / (sd / Math.sqrt(d.length)) : null, seeds: d.length };
    })
  ).filter((g) => g.seeds > 0);
}

const gapText = (g: Gap | undefined) => g ? `${signed(g.gap, 3)}${g.t === null ? "" : ` (t ${g.t.toFixed(1)})`}` : "-";

/**
 * One verdict line per arm vs dense (the numbers; the claims' words from the ledger rows `o.ledger`), and the
 * gate-initialisation line (pure).
 */
export function finedeepArmsVerdict(summary: Row[], gaps: Gap[], o: { meta: string; ledger: ClaimRow[] }): string[] {
  const meta = o.meta;
  const head = `verdict (finedeep-arms; ${meta}):`;
  const by = new Map(summary.map((r) => [String(r.variant), r]));
  const dense = by.get("dense");
  if (!dense || num(dense.ppl_mean) === null) return [`${head} not enough completed runs (need dense)`];
  const arms = summary.filter((r) => r.variant !== "dense" && num(r.ppl_mean) !== null);
  const lines = arms.map((r) => {
    const t = welchT(r, dense), pct = 100 * ((r.ppl_mean as number) / (dense.ppl_mean as number) - 1);
    return `${head} ${r.variant}: ppl ${fmt(r.ppl_mean, 3)} vs dense ${fmt(dense.ppl_mean, 3)} (${
      signed(pct, 2, "%")
    }, ` +
      `${t === null ? "t n/a" : `Welch t ${t.toFixed(1)}`}); ${
        ledgerClause(o.ledger, "finedeep-beats-dense", String(r.variant))
      }; ${ledgerClause(o.ledger, "finedeep-nsar", String(r.variant))}`;
  });
  const steps = [...new Set(gaps.map((g) => g.step))].sort((a, b) => a - b);
  const at = (v: string, s: number) => gaps.find((g) => g.variant === v && g.step === s);
  if (steps.length >= 2 && at("headline", steps[0]) && at("gate_open", steps[0])) {
    const early = steps.slice(0, -1), end = steps[steps.length - 1];
    const lag = (v: string) => early.map((s) => `step ${s} ${gapText(at(v, s))}`).join(", ");
    const gap = (v: string, s: number) => at(v, s)?.gap ?? NaN;
    const headlineLags = early.some((s) => gap("headline", s) > 0);
    // Per early step where the headline lags: the lag is gone when gate_open's gap is ≤ 0 or under a quarter of
    // the headline's (with 2-3 seeds a paired t cannot screen a single step), smaller when below the headline's.
    const lagging = early.filter((s) => gap("headline", s) > 0);
    const removed = lagging.every((s) => gap("gate_open", s) <= 0.25 * gap("headline", s));
    const reduced = lagging.every((s) => gap("gate_open", s) < gap("headline", s));
    const endCut = 100 * (1 - gap("gate_open", end) / gap("headline", end));
    lines.push(
      `${head} early lag vs dense (val loss gap, nats): headline ${lag("headline")}, end ${
        gapText(at("headline", end))
      }; gate_open (b=3) ${lag("gate_open")}, end ${gapText(at("gate_open", end))}: ` +
        (!headlineLags
          ? "the headline shows no early lag at this scale"
          : `a gate-open init ${removed ? "removes" : reduced ? "reduces but does not remove" : "does not reduce"} ` +
            `the early lag (removed: gap ≤ 1/4 of the headline's at every early step where it lags)`) +
        (gap("headline", end) > 0 ? `; the end gap is ${endCut.toFixed(0)}% smaller with it` : "") +
        " at this scale",
    );
  }
  return lines;
}

/** The finedeep-arms report: table, verdicts, the validation-loss curves. */
export async function finedeepArmsReport(ctx: ReportContext): Promise<string[]> {
  const order = Object.keys(ctx.variants);
  const summary = (await ctx.query(armsSummarySql(), { e: ctx.experiment })).rows;
  const curves = await ctx.query(
    `SELECT r.variant, r.seed, m.step, m.value FROM metrics m JOIN current_runs r USING (hash)
     WHERE r.experiment = $e AND r.status = 'completed' AND m.split = 'val' AND m.name = 'loss'`,
    { e: ctx.experiment },
  );
  const gaps = lossGaps(curves.rows);
  const steps = [...new Set(gaps.map((g) => g.step))].sort((a, b) => a - b);
  const dense = summary.find((r) => r.variant === "dense");
  summary.sort((a, b) => order.indexOf(String(a.variant)) - order.indexOf(String(b.variant)));
  ctx.print(`\n${ctx.experiment}: Finedeep 4x4 arms vs dense, matched parameters and tokens, mean ± std over seeds`);
  ctx.print(textTable(
    ["variant", "seeds", "val ppl", "vs dense", "t", ...steps.map((s) => `gap@${s}`), "NSAR gate", "NSAR prod"],
    summary.map((r) => {
      const t = dense && r !== dense ? welchT(r, dense) : null;
      return [
        String(r.variant),
        String(r.seeds),
        meanStd(r.ppl_mean, r.ppl_std),
        dense && r !== dense ? signed(100 * ((r.ppl_mean as number) / (dense.ppl_mean as number) - 1), 2, "%") : "-",
        t === null ? "-" : t.toFixed(1),
        ...steps.map((s) => gapText(gaps.find((g) => g.variant === r.variant && g.step === s))),
        fmt(r.nsar_gate, 3),
        fmt(r.nsar_prod, 3),
      ];
    }),
  ));
  ctx.print(
    "gap@s: val loss of the arm minus dense at step s (nats, paired by seed). NSAR_0.1 under both readings: " +
      "|SiLU(gate)| > 0.1 (the headline reading, as nsar and ablation-mk) and |SiLU(gate)·up| > 0.1.",
  );
  const o = { meta: await runMetaText(ctx), ledger: await experimentLedger(ctx) };
  for (const line of finedeepArmsVerdict(summary, gaps, o)) ctx.print(line);
  return await valLossCurves(
    ctx,
    order,
    "Evaluated every 10 steps: the early gap is the gate-initialisation question.",
  );
}
