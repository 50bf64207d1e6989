/**
 * Reports of the FineRMoE experiments: experiments/finermoe-upcycle.ts (FineRMoE upcycled from a dense run vs continued dense, copy- and split-upcycled top-2), experiments/finermoe-dims.ts (which fine-grained dimension helps), finermoe-routers.ts (one router vs one per level) and finermoe-granularity.ts (the G_I × G_O sweep).
 * Each prints a table of lib/report/sparse.ts's variant summary, the inference speeds, a verdict line with the
 * table's numbers and the claim's word (supported / not supported / inconclusive, with its scale) from the claims
 * ledger (lib/report/ledger_verdict.ts), and draws its plots.
 *
 * @module
 */
import type { ReportContext } from "../experiment/define.ts";
import { valLossCurves } from "./charts.ts";
import type { ClaimRow } from "./claims.ts";
import { experimentLedger, ledgerClause } from "./ledger_verdict.ts";
import { LEAD_HEADER, leadCells, PARAM_HEADER, paramCells, pplVsActiveParams, printSparseSummary } from "./sparse.ts";
import { fmt, num, type Row, welchT } from "./stats.ts";

// ---- finermoe-upcycle --------------------------------------------------------------------------

/** The verdict line from the variant summary rows, the claim's word from the ledger (pure; exported for tests). */
export function finermoeUpcycleVerdict(rows: Row[], meta: string, ledger: ClaimRow[]): string {
  const head = `verdict (finermoe-upcycle; ${meta}):`;
  const by = new Map(rows.map((r) => [String(r.variant), r]));
  const f = by.get("finermoe");
  const others = ["dense", "finermoe_no_shared", "copy_top2", "split_top2"].map((v) => by.get(v)).filter((r) =>
    r && num(r.ppl_mean) !== null
  ) as Row[];
  if (!f || num(f.ppl_mean) === null || others.length === 0) {
    return `${head} not enough completed runs (need finermoe and at least one baseline)`;
  }
  const parts = others.map((o) => {
    const t = welchT(f, o);
    const pct = 100 * ((f.ppl_mean as number) / (o.ppl_mean as number) - 1);
    return { v: String(o.variant), pct, t };
  });
  return `${head} FineRMoE ppl ${fmt(f.ppl_mean, 3)} with ${fmt(f.ffn_active_pct, 0)}% of the dense FFN active; ` +
    parts.map((p) => `vs ${p.v} ${p.pct >= 0 ? "+" : ""}${p.pct.toFixed(2)}% (${tText(p.t)})`).join(", ") +
    `; ${ledgerClause(ledger, "finermoe-beats-upcycling")}`;
}

/** The finermoe-upcycle report: its table, the inference-speed table, the verdict and the plots. */
export async function finermoeUpcycleReport(ctx: ReportContext): Promise<string[]> {
  const order = Object.keys(ctx.variants);
  const ledger = await experimentLedger(ctx);
  await printSparseSummary(ctx, {
    title: `\n${ctx.experiment}: upcycled from the same dense parent, same tokens, mean over seeds`,
    header: [...LEAD_HEADER, "vs dense", "t", ...PARAM_HEADER, "load CV"],
    row: (r, rows) => {
      const d = rows.find((x) => x.variant === "dense");
      const t = d && r !== d ? welchT(r, d) : null;
      const pct = d && num(d.ppl_mean) !== null && num(r.ppl_mean) !== null
        ? 100 * ((r.ppl_mean as number) / (d.ppl_mean as number) - 1)
        : null;
      return [
        ...leadCells(r),
        pct === null ? "-" : `${pct >= 0 ? "+" : ""}${pct.toFixed(2)}%`,
        t === null ? "-" : t.toFixed(1),
        ...paramCells(r),
        fmt(r.load_cv, 2),
      ];
    },
    verdict: (rows, m) => finermoeUpcycleVerdict(rows, m, ledger),
  });
  const files = await pplVsActiveParams(ctx, {
    subtitle: "Children of one dense parent trained on the same tokens; activated parameters measured from the " +
      "routing on the validation batches.",
  });
  files.push(...await valLossCurves(ctx, order, "Children count steps from their start."));
  return files;
}

// ---- finermoe-dims -----------------------------------------------------------------------------

/** Welch t of a vs b on perplexity, as text (`t -3.1`, `t n/a`). */
const tText = (t: number | null) => (t === null ? "t n/a" : `Welch t ${t.toFixed(1)}`);
const tOf = (a: Row, b: Row) => tText(welchT(a, b));

/** The verdict line from the variant summary rows, the claims' words from the ledger (pure; exported for tests). */
export function finermoeDimsVerdict(rows: Row[], meta: string, ledger: ClaimRow[]): string {
  const head = `verdict (finermoe-dims; ${meta}):`;
  const by = new Map(rows.map((r) => [String(r.variant), r]));
  const fg = ["fg_none", "fg_inter", "fg_out", "fg_both"].map((v) => by.get(v));
  if (fg.some((r) => !r || num(r.ppl_mean) === null)) return `${head} not enough completed runs (need all four fg_*)`;
  const [none, inter, out, both] = fg as Row[];
  const ranked = [none, inter, out, both].sort((a, b) => (a.ppl_mean as number) - (b.ppl_mean as number));
  return `${head} ppl ranking ${
    ranked.map((r) => `${r.variant} ${fmt(r.ppl_mean, 3)} (${fmt(r.ffn_active_pct, 0)}% FFN active)`).join(" < ")
  }; fg_out vs fg_inter ${tOf(out, inter)}; fg_both vs ${
    [none, inter, out].map((o) => `${o.variant} ${tOf(both, o)}`).join(", ")
  }; ${ledgerClause(ledger, "finermoe-output-fg")}; ${ledgerClause(ledger, "finermoe-both-fg")}`;
}

/** The column headers of {@link granularityCells}. */
const GRANULARITY_HEADER = ["variant", "G_I", "G_O", "seeds", "val ppl"];

/** The first cells of a G_I × G_O table row: {@link leadCells} with G_I and G_O ("-" where absent) after the variant. */
function granularityCells(r: Row, g: { gi?: unknown; go?: unknown }): string[] {
  const [variant, seeds, ppl] = leadCells(r);
  const cell = (x: unknown) => x === undefined ? "-" : String(x);
  return [variant, cell(g.gi), cell(g.go), seeds, ppl];
}

/** The finermoe-dims report: its table, the inference-speed table, the verdict and the plots. */
export async function finermoeDimsReport(ctx: ReportContext): Promise<string[]> {
  const order = Object.keys(ctx.variants);
  const ledger = await experimentLedger(ctx);
  await printSparseSummary(ctx, {
    title: `\n${ctx.experiment}: fine-grained dimension vs quality and activated parameters, mean over seeds`,
    header: [...GRANULARITY_HEADER, ...PARAM_HEADER, "experts/token", "load CV"],
    row: (r) => {
      const v = ctx.variants[String(r.variant)]?.model?.ffn as Record<string, unknown> | undefined;
      return [
        ...granularityCells(r, { gi: v?.g_i, go: v?.g_o }),
        ...paramCells(r),
        fmt(r.experts_active, 2),
        fmt(r.load_cv, 2),
      ];
    },
    verdict: (rows, m) => finermoeDimsVerdict(rows, m, ledger),
  });
  const files = await pplVsActiveParams(ctx, {
    series: (v) => v === "dense" ? "dense (continued)" : "FineRMoE",
    subtitle: "Which dimension is fine-grained: none, intermediate (G_I), output (G_O), both. " +
      "Same dense parent and tokens; mean ± std over seeds.",
  });
  files.push(...await valLossCurves(ctx, order, "Children count steps from their start."));
  return files;
}

// ---- finermoe-routers --------------------------------------------------------------------------

/** The verdict line from the variant summary rows, the claim's word from the ledger (pure; exported for tests). */
export function finermoeRoutersVerdict(rows: Row[], meta: string, ledger: ClaimRow[]): string {
  const head = `verdict (finermoe-routers, Table 3; ${meta}):`;
  const by = new Map(rows.map((r) => [String(r.variant), r]));
  const single = by.get("single"), separate = by.get("separate");
  if (!single || !separate || num(single.ppl_mean) === null || num(separate.ppl_mean) === null) {
    return `${head} not enough completed runs (need single and separate)`;
  }
  const pct = 100 * ((single.ppl_mean as number) / (separate.ppl_mean as number) - 1);
  return `${head} single router ppl ${fmt(single.ppl_mean, 3)} vs separate routers ${fmt(separate.ppl_mean, 3)} ` +
    `(${pct >= 0 ? "+" : ""}${pct.toFixed(2)}% for single, ${tOf(single, separate)}); ` +
    ledgerClause(ledger, "finermoe-single-router");
}

/** The finermoe-routers report: its table, the inference-speed table, the verdict and the plots. */
export async function finermoeRoutersReport(ctx: ReportContext): Promise<string[]> {
  const ledger = await experimentLedger(ctx);
  await printSparseSummary(ctx, {
    title: `\n${ctx.experiment}: one router vs one router per level, same dense parent and tokens, mean over seeds`,
    header: [...LEAD_HEADER, ...PARAM_HEADER, "load CV"],
    row: (r) => [
      ...leadCells(r),
      ...paramCells(r),
      fmt(r.load_cv, 2),
    ],
    verdict: (rows, m) => finermoeRoutersVerdict(rows, m, ledger),
  });
  return await valLossCurves(ctx, Object.keys(ctx.variants), "Children count steps from their start.");
}

// ---- finermoe-granularity ----------------------------------------------------------------------

/** G_I and G_O of a `gi<G_I>_go<G_O>` variant name, or null. */
export function granularity(variant: string): { gi: number; go: number } | null {
  const m = /^gi(\d+)_go(\d+)$/.exec(variant);
  return m ? { gi: Number(m[1]), go: Number(m[2]) } : null;
}

/**
 * One direction of the sweep (pure): for every value of the fixed axis, the coarsest and the finest setting of
 * the varied axis (perplexity, Welch t), as text.
 */
function finerHelps(rows: Row[], varied: "gi" | "go"): string {
  const fixed = varied === "gi" ? "go" : "gi";
  const cells = rows.map((r) => ({ r, g: granularity(String(r.variant)) })).filter((c) => c.g && num(c.r.ppl_mean));
  const lines = [...new Set(cells.map((c) => c.g![fixed]))].sort((a, b) => a - b);
  const parts = lines.flatMap((v) => {
    const line = cells.filter((c) => c.g![fixed] === v).sort((a, b) => a.g![varied] - b.g![varied]);
    if (line.length < 2) return [];
    const [coarse, fine] = [line[0], line[line.length - 1]];
    return [
      `${fixed.toUpperCase()}=${v}: ${coarse.r.variant} ${fmt(coarse.r.ppl_mean, 3)} → ` +
      `${fine.r.variant} ${fmt(fine.r.ppl_mean, 3)} (${tOf(fine.r, coarse.r)})`,
    ];
  });
  return parts.join(", ");
}

/** The two verdict lines (finer G_O helps; finer G_I helps): the numbers, the claims' words from the ledger (pure). */
export function finermoeGranularityVerdict(rows: Row[], meta: string, ledger: ClaimRow[]): string {
  const head = `verdict (finermoe-granularity, Table 4; ${meta}):`;
  const go = finerHelps(rows, "go"), gi = finerHelps(rows, "gi");
  if (!go && !gi) return `${head} not enough completed runs (need two G_I or G_O values on one line)`;
  return `${head} finer G_O: ${go || "-"}; ${ledgerClause(ledger, "finermoe-finer-go")}\n` +
    `${head} finer G_I: ${gi || "-"}; ${ledgerClause(ledger, "finermoe-finer-gi")}`;
}

/** The finermoe-granularity report: the G_I × G_O table, the inference-speed table, the verdicts and the plots. */
export async function finermoeGranularityReport(ctx: ReportContext): Promise<string[]> {
  const ledger = await experimentLedger(ctx);
  await printSparseSummary(ctx, {
    title: `\n${ctx.experiment}: G_I × G_O, same dense parent and tokens, mean over seeds`,
    header: [...GRANULARITY_HEADER, ...PARAM_HEADER, "load CV"],
    row: (r) => {
      const g = granularity(String(r.variant));
      return [
        ...granularityCells(r, { gi: g?.gi, go: g?.go }),
        ...paramCells(r),
        fmt(r.load_cv, 2),
      ];
    },
    verdict: (rows, m) => finermoeGranularityVerdict(rows, m, ledger),
  });
  const files = await pplVsActiveParams(ctx, {
    series: (v) => {
      const g = granularity(v);
      return g ? `G_O=${g.go}` : "dense (continued)";
    },
    subtitle: "FineRMoE over G_I (one line per G_O); same dense parent and tokens; mean ± std over seeds.",
  });
  files.push(...await valLossCurves(ctx, Object.keys(ctx.variants), "Children count steps from their start."));
  return files;
}
