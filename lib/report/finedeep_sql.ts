/**
 * The tables and verdicts of the Finedeep experiments (experiments/ablation-mk.ts, routing.ts,
 * finedeep-vs-dense.ts, nsar.ts): ONE SQL query per experiment over the results database (exported, so
 * the README can show it and anyone can rerun it with `deno task query`), and a one-line verdict on the
 * paper's claim derived mechanically from its rows (pure functions). The reports that print them and
 * draw the plots are in lib/report/finedeep.ts; the statistics in lib/report/stats.ts.
 *
 * @module
 */
import type { ClaimRow } from "./claims.ts";
import { ledgerClause } from "./ledger_verdict.ts";
import { lit, meanStd, metaText, num, type Row, type RunMeta, signed, welchSql } from "./stats.ts";

// ---- SQL (one query per experiment) -------------------------------------------------------------

/**
 * ablation-mk: one row per variant with M, K, M·K, seeds, val ppl mean/std, the change vs dense (%,
 * Welch t), NSAR_0.1 of SiLU(gate) mean/std, params and FLOPs vs dense (%), whether M is strictly
 * inside its line (`balanced`: neither pure width M = 1 nor pure depth K = 1) and whether the
 * variant is the best of its M·K line. The verdict reads off these columns: "balanced best" when
 * every `best_of_line` row is `balanced`; "beats dense" when the lowest-perplexity Finedeep row has
 * `t_vs_dense < -T_CRIT`.
 */
export function ablationSql(experiment = "ablation-mk"): string {
  return `WITH r AS (
  SELECT hash, variant, model_ffn_kind AS kind, model_ffn_m AS m, model_ffn_k AS k, val_ppl, params, flops_per_token
  FROM current_runs WHERE experiment = ${lit(experiment)} AND status = 'completed'),
n AS (SELECT hash, value AS nsar FROM run_metrics WHERE name = 'nsar_gate_0.1'),
v AS (
  SELECT variant, any_value(kind) AS kind, any_value(m)::INTEGER AS m, any_value(k)::INTEGER AS k,
    count(*) AS v_n, avg(val_ppl) AS v_mean, stddev_samp(val_ppl) AS v_std,
    avg(nsar) AS nsar_mean, stddev_samp(nsar) AS nsar_std, avg(params) AS params, avg(flops_per_token) AS flops
  FROM r LEFT JOIN n USING (hash) GROUP BY variant),
d AS (SELECT v_n AS d_n, v_mean AS d_mean, v_std AS d_std, params AS d_params, flops AS d_flops
      FROM v WHERE kind = 'dense')
SELECT variant, m, k, m * k AS mk, v_n AS seeds, v_mean AS ppl_mean, v_std AS ppl_std,
  100 * (v_mean / d_mean - 1) AS ppl_vs_dense_pct, ${welchSql("v", "d")} AS t_vs_dense,
  nsar_mean, nsar_std,
  100 * (params / d_params - 1) AS params_vs_dense_pct, 100 * (flops / d_flops - 1) AS flops_vs_dense_pct,
  m > min(m) OVER (PARTITION BY m * k) AND m < max(m) OVER (PARTITION BY m * k) AS balanced,
  kind = 'finedeep' AND v_mean = min(v_mean) OVER (PARTITION BY m * k) AS best_of_line
FROM v LEFT JOIN d ON true
ORDER BY mk NULLS FIRST, m`;
}

/**
 * routing: one row per variant with the routing options, val ppl mean/std, the change vs the
 * paper's choice (output-guided sigmoid, variant `output-sigmoid`) and vs dense (%, Welch t), the
 * mean gate value and its spread (router_mean/router_std), and the rank by perplexity.
 */
export function routingSql(experiment = "routing"): string {
  return `WITH r AS (
  SELECT hash, variant, model_ffn_kind AS kind, model_ffn_score AS score, model_ffn_norm_fn AS norm_fn, val_ppl
  FROM current_runs WHERE experiment = ${lit(experiment)} AND status = 'completed'),
g AS (SELECT hash, max(value) FILTER (WHERE name = 'router_mean') AS gate_mean,
        max(value) FILTER (WHERE name = 'router_std') AS gate_std FROM run_metrics GROUP BY hash),
v AS (SELECT variant, any_value(kind) AS kind, any_value(score) AS score, any_value(norm_fn) AS norm_fn,
        count(*) AS v_n, avg(val_ppl) AS v_mean, stddev_samp(val_ppl) AS v_std,
        avg(gate_mean) AS gate_mean, avg(gate_std) AS gate_std
      FROM r LEFT JOIN g USING (hash) GROUP BY variant),
p AS (SELECT v_n AS p_n, v_mean AS p_mean, v_std AS p_std FROM v WHERE variant = 'output-sigmoid'),
d AS (SELECT v_n AS d_n, v_mean AS d_mean, v_std AS d_std FROM v WHERE kind = 'dense')
SELECT variant, kind, score, norm_fn, v_n AS seeds, v_mean AS ppl_mean, v_std AS ppl_std,
  100 * (v_mean / p_mean - 1) AS ppl_vs_paper_pct, ${welchSql("v", "p")} AS t_vs_paper,
  100 * (v_mean / d_mean - 1) AS ppl_vs_dense_pct, ${welchSql("v", "d")} AS t_vs_dense,
  gate_mean, gate_std, rank() OVER (ORDER BY v_mean) AS rank
FROM v LEFT JOIN p ON true LEFT JOIN d ON true
ORDER BY v_mean`;
}

/**
 * finedeep-vs-dense: one row per model size (n_layers, d_model) with params, dense and Finedeep val
 * ppl mean/std, the change (%, Welch t) and NSAR_0.1 of both.
 */
export function fvdSql(experiment = "finedeep-vs-dense"): string {
  return `WITH r AS (
  SELECT hash, model_ffn_kind AS kind, model_n_layers::INTEGER AS n_layers, model_d_model::INTEGER AS d_model,
    val_ppl, params FROM current_runs WHERE experiment = ${lit(experiment)} AND status = 'completed'),
n AS (SELECT hash, value AS nsar FROM run_metrics WHERE name = 'nsar_gate_0.1'),
s AS (SELECT n_layers, d_model, kind, count(*) AS n, avg(val_ppl) AS mean, stddev_samp(val_ppl) AS std,
        avg(params) AS params, avg(nsar) AS nsar FROM r LEFT JOIN n USING (hash) GROUP BY ALL),
j AS (SELECT d.n_layers, d.d_model, d.params AS dense_params, f.params AS finedeep_params,
        d.n AS d_n, d.mean AS d_mean, d.std AS d_std, f.n AS f_n, f.mean AS f_mean, f.std AS f_std,
        d.nsar AS dense_nsar, f.nsar AS finedeep_nsar
      FROM s d JOIN s f ON d.n_layers = f.n_layers AND d.d_model = f.d_model
      WHERE d.kind = 'dense' AND f.kind = 'finedeep')
SELECT n_layers, d_model, dense_params, finedeep_params, d_n AS dense_seeds, d_mean AS dense_ppl_mean,
  d_std AS dense_ppl_std, f_n AS finedeep_seeds, f_mean AS finedeep_ppl_mean, f_std AS finedeep_ppl_std,
  100 * (f_mean / d_mean - 1) AS ppl_change_pct, ${welchSql("f", "d")} AS t, dense_nsar, finedeep_nsar
FROM j ORDER BY dense_params, n_layers, d_model`; // ties (equal sizes) in a fixed order
}

/**
 * nsar: one row per NSAR metric (SiLU(gate) and gated product, overall and per layer, every τ) with
 * dense and Finedeep mean/std over seeds, the difference and Welch t.
 */
export function nsarSql(experiment = "nsar"): string {
  return `WITH x AS (
  SELECT r.model_ffn_kind AS kind, m.name, m.value FROM current_runs r JOIN run_metrics m USING (hash)
  WHERE r.experiment = ${lit(experiment)} AND r.status = 'completed'
    AND regexp_matches(m.name, '^nsar_(gate|prod)_[0-9.]+(_l[0-9]+)?$')),
s AS (SELECT name, kind, count(*) AS n, avg(value) AS mean, stddev_samp(value) AS std FROM x GROUP BY name, kind)
SELECT f.name AS metric, d.n AS dense_seeds, d.mean AS dense_mean, d.std AS dense_std,
  f.n AS finedeep_seeds, f.mean AS finedeep_mean, f.std AS finedeep_std, f.mean - d.mean AS diff,
  (f.mean - d.mean) / nullif(sqrt(pow(f.std, 2) / f.n + pow(d.std, 2) / d.n), 0) AS t
FROM s f JOIN s d ON f.name = d.name AND f.kind = 'finedeep' AND d.kind = 'dense'
ORDER BY regexp_extract(f.name, '^nsar_(gate|prod)', 1),
  nullif(regexp_extract(f.name, '_l([0-9]+)$', 1), '')::INTEGER NULLS FIRST,
  regexp_extract(f.name, '^nsar_[a-z]+_([0-9.]+)', 1)::DOUBLE`;
}

// ---- verdicts (pure: rows of the SQL above -> one line; the claims' words from the ledger rows) -------------

/** The ablation-mk verdict from {@link ablationSql} rows: is a balanced M/K best, and does Finedeep beat dense? */
export function ablationVerdict(rows: Row[], meta: RunMeta, ledger: ClaimRow[]): string {
  const fd = rows.filter((r) => num(r.m) !== null);
  const lines = [...new Set(fd.map((r) => r.mk as number))].sort((a, b) => b - a);
  const parts: string[] = [];
  for (const mk of lines) {
    const line = fd.filter((r) => r.mk === mk).sort((a, b) => (a.m as number) - (b.m as number));
    if (line.length < 3) continue;
    const best = line.reduce((a, b) => ((b.ppl_mean as number) < (a.ppl_mean as number) ? b : a));
    const balanced = best.m !== line[0].m && best.m !== line[line.length - 1].m;
    const spread = Math.max(...line.map((r) => r.ppl_mean as number)) -
      Math.min(...line.map((r) => r.ppl_mean as number));
    const noise = line.reduce((a, r) => a + (num(r.ppl_std) ?? 0), 0) / line.length;
    parts.push(
      `M·K=${mk}: best ${best.variant} (${balanced ? "balanced" : "an extreme"}` +
        `${spread < 2 * noise ? ", line spread within 2 seed-std" : ""})`,
    );
  }
  const dense = rows.find((r) => num(r.m) === null);
  const best = fd.length ? fd.reduce((a, b) => ((b.ppl_mean as number) < (a.ppl_mean as number) ? b : a)) : null;
  const vsDense = dense && best
    ? `best Finedeep ${best.variant} vs dense: ${signed(best.ppl_vs_dense_pct, 2, "%")} ppl, ` +
      `Welch t=${signed(best.t_vs_dense, 1)}`
    : "no dense baseline";
  return `verdict (ablation-mk; ${metaText(meta)}): ${parts.join("; ")}; ${vsDense}; ` +
    `${ledgerClause(ledger, "finedeep-balanced-mk")}; ${ledgerClause(ledger, "finedeep-beats-dense")}`;
}

/** The routing verdict from {@link routingSql} rows. */
export function routingVerdict(rows: Row[], meta: RunMeta, ledger: ClaimRow[]): string {
  const by = (v: string) => rows.find((r) => r.variant === v);
  const paper = by("output-sigmoid");
  if (!paper) return `verdict (routing; ${metaText(meta)}): no output-sigmoid runs, nothing to judge.`;
  const cmp = (v: string, what: string) => {
    const r = by(v);
    if (!r) return null;
    return `${what}: ${v} ${signed(r.ppl_vs_paper_pct, 2, "%")} (Welch t=${signed(r.t_vs_paper, 1)})`;
  };
  const best = rows.filter((r) => num(r.ppl_mean) !== null)[0];
  const parts = [
    cmp("input-sigmoid", "input vs output scores"),
    cmp("output-softmax", "softmax vs sigmoid"),
    cmp("none", "no gate vs sigmoid"),
  ].filter(Boolean);
  return `verdict (routing; ${metaText(meta)}): best ${best?.variant}; ${parts.join("; ")}; ` +
    `${ledgerClause(ledger, "finedeep-output-routing")}; ${ledgerClause(ledger, "finedeep-sigmoid-gates")}`;
}

/** The finedeep-vs-dense verdict from {@link fvdSql} rows. */
export function fvdVerdict(rows: Row[], meta: RunMeta, ledger: ClaimRow[]): string {
  const parts = rows.map((r) =>
    `L=${r.n_layers} (${Math.round((r.dense_params as number) / 1000)}k params): ${
      signed(r.ppl_change_pct, 2, "%")
    } ppl, ` +
    `t=${signed(r.t, 1)}`
  );
  return `verdict (finedeep-vs-dense; ${metaText(meta)}): Finedeep vs dense ${parts.join("; ") || "no data"}; ` +
    ledgerClause(ledger, "finedeep-beats-dense");
}

/** The nsar verdict from {@link nsarSql} rows. */
export function nsarVerdict(rows: Row[], meta: RunMeta, ledger: ClaimRow[]): string {
  const overall = rows.filter((r) => /^nsar_gate_[0-9.]+$/.test(String(r.metric)));
  const layers = rows.filter((r) => /^nsar_gate_0\.1_l\d+$/.test(String(r.metric)));
  const lHigher = layers.filter((r) => (num(r.diff) ?? 0) > 0).length;
  const taus = overall.map((r) =>
    `τ=${String(r.metric).split("_")[2]}: ${meanStd(r.dense_mean, null, 3)} → ${meanStd(r.finedeep_mean, null, 3)}`
  );
  return `verdict (nsar; ${metaText(meta)}): NSAR of SiLU(gate), dense → Finedeep: ${taus.join(", ") || "no data"}; ` +
    `higher in ${lHigher}/${layers.length} layers at τ=0.1; ${ledgerClause(ledger, "finedeep-nsar")}`;
}
