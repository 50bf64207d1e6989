/**
 * Reports of the FineRMoE experiments: experiments/finermoe-upcycle.ts (FineRMoE upcycled from a dense run vs continued dense, copy- and split-upcycled top-2), experiments/finermoe-dims.ts (which fine-grained dimension helps), finermoe-routers.ts (one router vs one per level) and finermoe-granularity.ts (the G_I × G_O sweep).
 * Each prints a table of lib/report/sparse.ts's variant summary, the inference speeds, a one-line verdict on
 * the paper's claim derived mechanically from the table, and draws its plots.
 *
 * @module
 */
import type { ReportContext } from "../experiment/define.ts";
import { valLossCurves } from "./charts.ts";
import { pplVsActiveParams, printSparseSummary } from "./sparse.ts";
import { fmt, fmtPct, meanStd, num, type Row, T_CRIT, welchT } from "./stats.ts";

// ---- finermoe-upcycle --------------------------------------------------------------------------

/** The verdict line from the variant summary rows (pure; exported for tests). */
export function finermoeUpcycleVerdict(rows: Row[], meta: string): string {
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
    const better = t === null ? pct < 0 : t < -T_CRIT;
    return { v: String(o.variant), pct, t, better };
  });
  const wins = parts.filter((p) => p.better).length;
  return `${head} FineRMoE ppl ${fmt(f.ppl_mean, 3)} with ${fmt(f.ffn_active_pct, 0)}% of the dense FFN active; ` +
    parts.map((p) =>
      `vs ${p.v} ${p.pct >= 0 ? "+" : ""}${p.pct.toFixed(2)}% (${p.t === null ? "t n/a" : `t ${p.t.toFixed(1)}`})`
    ).join(", ") +
    `: better than ${wins}/${parts.length} baselines${parts.every((p) => p.t === null) ? " (by the mean only)" : ""}` +
    ` — claim (FineRMoE beats dense continued training and copy/split upcycling) ` +
    `${wins === parts.length ? "supported" : "not supported"} at this scale`;
}

/** The finermoe-upcycle report: its table, the inference-speed table, the verdict and the plots. */
export async function finermoeUpcycleReport(ctx: ReportContext): Promise<string[]> {
  const order = Object.keys(ctx.variants);
  await printSparseSummary(ctx, {
    title: `\n${ctx.experiment}: upcycled from the same dense parent, same tokens, mean over seeds`,
    header: ["variant", "seeds", "val ppl", "vs dense", "t", "params", "active params", "FFN active", "load CV"],
    row: (r, rows) => {
      const d = rows.find((x) => x.variant === "dense");
      const t = d && r !== d ? welchT(r, d) : null;
      const pct = d && num(d.ppl_mean) !== null && num(r.ppl_mean) !== null
        ? 100 * ((r.ppl_mean as number) / (d.ppl_mean as number) - 1)
        : null;
      return [
        String(r.variant),
        String(r.seeds),
        meanStd(r.ppl_mean, r.ppl_std),
        pct === null ? "-" : `${pct >= 0 ? "+" : ""}${pct.toFixed(2)}%`,
        t === null ? "-" : t.toFixed(1),
        fmt(r.params_total, 0),
        fmt(r.params_active, 0),
        fmtPct(r.ffn_active_pct),
        fmt(r.load_cv, 2),
      ];
    },
    verdict: finermoeUpcycleVerdict,
  });
  const files = await pplVsActiveParams(ctx, {
    subtitle: "Children of one dense parent trained on the same tokens; activated parameters measured from the " +
      "routing on the validation batches.",
  });
  files.push(...await valLossCurves(ctx, order, "Children count steps from their start."));
  return files;
}

// ---- finermoe-dims -----------------------------------------------------------------------------

/** "a < b" judged on perplexity: `true` (clearly or, without a t, by the mean), `false`, or null (missing). */
function lower(a: Row | undefined, b: Row | undefined): { yes: boolean; t: number | null } | null {
  if (!a || !b || num(a.ppl_mean) === null || num(b.ppl_mean) === null) return null;
  const t = welchT(a, b);
  return { yes: t === null ? (a.ppl_mean as number) < (b.ppl_mean as number) : t < -T_CRIT, t };
}

/** "best", or why not: the variants fg_both is not clearly better than (lowest mean but not significant, or not lowest). */
function bothText(both: Row, others: Row[], judged: { yes: boolean; t: number | null }[]): string {
  const fails = others.map((o, i) => ({ o, j: judged[i] })).filter((x) => !x.j.yes);
  if (!fails.length) return "best";
  const lowest = others.every((o) => (both.ppl_mean as number) < (o.ppl_mean as number));
  const list = fails.map((x) => `${x.o.variant}${x.j.t === null ? "" : ` t ${x.j.t.toFixed(1)}`}`).join(", ");
  return lowest ? `lowest, but not significantly below ${list}` : `not best (not below ${list})`;
}

/** The verdict line from the variant summary rows (pure; exported for tests). */
export function finermoeDimsVerdict(rows: Row[], meta: string): string {
  const head = `verdict (finermoe-dims; ${meta}):`;
  const by = new Map(rows.map((r) => [String(r.variant), r]));
  const fg = ["fg_none", "fg_inter", "fg_out", "fg_both"].map((v) => by.get(v));
  if (fg.some((r) => !r || num(r.ppl_mean) === null)) return `${head} not enough completed runs (need all four fg_*)`;
  const [none, inter, out, both] = fg as Row[];
  const outVsInter = lower(out, inter)!;
  const bothBest = [none, inter, out].map((o) => lower(both, o)!);
  const ranked = [none, inter, out, both].sort((a, b) => (a.ppl_mean as number) - (b.ppl_mean as number));
  const tTxt = (t: number | null) => (t === null ? "t n/a" : `t ${t.toFixed(1)}`);
  const supported = outVsInter.yes && bothBest.every((b) => b.yes);
  return `${head} ppl ranking ${
    ranked.map((r) => `${r.variant} ${fmt(r.ppl_mean, 3)} (${fmt(r.ffn_active_pct, 0)}% FFN active)`).join(" < ")
  }; output-only vs intermediate-only ${outVsInter.yes ? "better" : "not better"} (${tTxt(outVsInter.t)}); ` +
    `both ${bothText(both, [none, inter, out], bothBest)}: claim (output FG > intermediate FG, both best) ` +
    `${supported ? "supported" : "not supported"} at this scale${
      [outVsInter, ...bothBest].every((b) => b.t === null) ? " (by the means only)" : ""
    }`;
}

/** The finermoe-dims report: its table, the inference-speed table, the verdict and the plots. */
export async function finermoeDimsReport(ctx: ReportContext): Promise<string[]> {
  const order = Object.keys(ctx.variants);
  await printSparseSummary(ctx, {
    title: `\n${ctx.experiment}: fine-grained dimension vs quality and activated parameters, mean over seeds`,
    header: [
      "variant",
      "G_I",
      "G_O",
      "seeds",
      "val ppl",
      "params",
      "active params",
      "FFN active",
      "experts/token",
      "load CV",
    ],
    row: (r) => {
      const v = ctx.variants[String(r.variant)]?.model?.ffn as Record<string, unknown> | undefined;
      return [
        String(r.variant),
        v?.g_i === undefined ? "-" : String(v.g_i),
        v?.g_o === undefined ? "-" : String(v.g_o),
        String(r.seeds),
        meanStd(r.ppl_mean, r.ppl_std),
        fmt(r.params_total, 0),
        fmt(r.params_active, 0),
        fmtPct(r.ffn_active_pct),
        fmt(r.experts_active, 2),
        fmt(r.load_cv, 2),
      ];
    },
    verdict: finermoeDimsVerdict,
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

/** The verdict line from the variant summary rows (pure; exported for tests). */
export function finermoeRoutersVerdict(rows: Row[], meta: string): string {
  const head = `verdict (finermoe-routers, Table 3; ${meta}):`;
  const by = new Map(rows.map((r) => [String(r.variant), r]));
  const single = by.get("single"), separate = by.get("separate");
  const j = lower(single, separate);
  if (!j) return `${head} not enough completed runs (need single and separate)`;
  const pct = 100 * ((single!.ppl_mean as number) / (separate!.ppl_mean as number) - 1);
  return `${head} single router ppl ${fmt(single!.ppl_mean, 3)} vs separate routers ${fmt(separate!.ppl_mean, 3)} ` +
    `(${pct >= 0 ? "+" : ""}${pct.toFixed(2)}% for single, ${j.t === null ? "t n/a" : `t ${j.t.toFixed(1)}`}): ` +
    `claim (one router for both levels is better) ${j.yes ? "supported" : "not supported"} at this scale` +
    (j.t === null ? " (by the mean only)" : "");
}

/** The finermoe-routers report: its table, the inference-speed table, the verdict and the plots. */
export async function finermoeRoutersReport(ctx: ReportContext): Promise<string[]> {
  await printSparseSummary(ctx, {
    title: `\n${ctx.experiment}: one router vs one router per level, same dense parent and tokens, mean over seeds`,
    header: ["variant", "seeds", "val ppl", "params", "active params", "FFN active", "load CV"],
    row: (r) => [
      String(r.variant),
      String(r.seeds),
      meanStd(r.ppl_mean, r.ppl_std),
      fmt(r.params_total, 0),
      fmt(r.params_active, 0),
      fmtPct(r.ffn_active_pct),
      fmt(r.load_cv, 2),
    ],
    verdict: finermoeRoutersVerdict,
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
 * One direction of the sweep (pure): for every value of the fixed axis, is the finest setting of the varied
 * axis lower in perplexity than the coarsest? Returns the text and whether every line says yes.
 */
function finerHelps(rows: Row[], varied: "gi" | "go"): { text: string; yes: boolean; lines: number } {
  const fixed = varied === "gi" ? "go" : "gi";
  const cells = rows.map((r) => ({ r, g: granularity(String(r.variant)) })).filter((c) => c.g && num(c.r.ppl_mean));
  const lines = [...new Set(cells.map((c) => c.g![fixed]))].sort((a, b) => a - b);
  const parts = lines.flatMap((v) => {
    const line = cells.filter((c) => c.g![fixed] === v).sort((a, b) => a.g![varied] - b.g![varied]);
    if (line.length < 2) return [];
    const [coarse, fine] = [line[0], line[line.length - 1]];
    const j = lower(fine.r, coarse.r)!;
    return [{
      text: `${fixed.toUpperCase()}=${v}: ${coarse.r.variant} ${fmt(coarse.r.ppl_mean, 3)} → ` +
        `${fine.r.variant} ${fmt(fine.r.ppl_mean, 3)} (${j.t === null ? "t n/a" : `t ${j.t.toFixed(1)}`})`,
      yes: j.yes,
    }];
  });
  return {
    text: parts.map((p) => p.text).join(", "),
    yes: parts.length > 0 && parts.every((p) => p.yes),
    lines: parts.filter((p) => p.yes).length,
  };
}

/** The two verdict lines (finer G_O helps; finer G_I helps) from the variant summary rows (pure). */
export function finermoeGranularityVerdict(rows: Row[], meta: string): string {
  const head = `verdict (finermoe-granularity, Table 4; ${meta}):`;
  const go = finerHelps(rows, "go"), gi = finerHelps(rows, "gi");
  if (!go.text && !gi.text) return `${head} not enough completed runs (need two G_I or G_O values on one line)`;
  return `${head} finer G_O: ${go.text || "-"}: claim (finer output granularity helps at every G_I) ` +
    `${go.yes ? "supported" : `not supported (lower at ${go.lines} lines)`} at this scale.\n` +
    `${head} finer G_I: ${gi.text || "-"}: claim (finer intermediate granularity helps at every G_O) ` +
    `${gi.yes ? "supported" : `not supported (lower at ${gi.lines} lines)`} at this scale.`;
}

/** The finermoe-granularity report: the G_I × G_O table, the inference-speed table, the verdicts and the plots. */
export async function finermoeGranularityReport(ctx: ReportContext): Promise<string[]> {
  await printSparseSummary(ctx, {
    title: `\n${ctx.experiment}: G_I × G_O, same dense parent and tokens, mean over seeds`,
    header: ["variant", "G_I", "G_O", "seeds", "val ppl", "params", "active params", "FFN active", "load CV"],
    row: (r) => {
      const g = granularity(String(r.variant));
      return [
        String(r.variant),
        g ? String(g.gi) : "-",
        g ? String(g.go) : "-",
        String(r.seeds),
        meanStd(r.ppl_mean, r.ppl_std),
        fmt(r.params_total, 0),
        fmt(r.params_active, 0),
        fmtPct(r.ffn_active_pct),
        fmt(r.load_cv, 2),
      ];
    },
    verdict: finermoeGranularityVerdict,
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
