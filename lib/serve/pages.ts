/**
 * The dashboard's pages as HTML strings, the same for `deno task serve` and the static export. Charts
 * are drawn in the browser by assets/app.js from the JSON block each page embeds.
 *
 * Page paths (relative links, so the export works from disk): index.html, exp/<id>.html, run/<hash>.html,
 * compare/<experiment>.html (all variants), compare/<hash>.html (a run vs its parent), and, served only,
 * compare.html?runs=a,b and sql.html.
 *
 * @module
 */
import { badge, expHref, type Html, html, layout, meanStd, type Mode, num, runHref, when } from "./html.ts";
import type { ExperimentInfo, ExperimentPage, LiveRun, RunRow } from "./data.ts";
import { type Comparison, delta, VARIES } from "./compare.ts";

export { runPageHtml } from "./run_page.ts";

function counts(c: Record<string, number>): Html {
  const order = ["running", "completed", "failed", "interrupted", "queued"];
  return html`${
    Object.entries(c).sort(([a], [b]) => order.indexOf(a) - order.indexOf(b)).map(([s, n]) =>
      html`
        ${badge(s)}<span class="n">${n}</span>
      `
    )
  }`;
}

/** A table head of one row of column titles. */
function thead(titles: readonly string[]): Html {
  return html`
    <thead>
      <tr>${titles.map((t) => html`<th>${t}</th>`)}</tr>
    </thead>
  `;
}

/** The index: running runs and every experiment with status counts, verdict line and last change. */
export function indexPage(o: { experiments: ExperimentInfo[]; live: LiveRun[]; mode: Mode }): string {
  const root = "";
  const live = o.live.length
    ? html`
      <section>
        <h2>Training now</h2>
        <table class="runs" id="live-runs">
          ${thead(["run", "experiment", "step", "started"])}
          <tbody>${o.live.map((l) =>
            html`
              <tr>
                <td><a href="${runHref(root, l.hash)}">${l.run_id}</a></td>
                <td><a href="${expHref(root, l.experiment)}">${l.experiment}</a></td>
                <td>${num(l.step)} / ${num(l.steps)}</td>
                <td>${when(l.started_at)}</td>
              </tr>
            `
          )}</tbody>
        </table>
      </section>
    `
    : "";
  const body = html`
    <h1>Experiments</h1>${live}
    <table class="experiments" id="experiments">
      ${thead(["experiment", "runs", "status", "verdict", "last change"])}
      <tbody>${o.experiments.map((e) =>
        html`
          <tr>
            <td><a href="${expHref(root, e.id)}">${e.id}</a><div class="desc">${e.description}</div></td>
            <td class="num">${e.n_runs}</td>
            <td class="status">${counts(e.counts)}</td>
            <td class="verdict">${e.verdict ?? ""}</td>
            <td>${when(e.last_change)}</td>
          </tr>
        `
      )}</tbody>
    </table>${o.experiments.length
      ? ""
      : html`<p class="empty">No results yet: run <code>deno task exp &lt;id&gt;</code>.</p>`}
  `;
  return layout({ title: "Experiments", root, mode: o.mode, body, data: { page: "index", live: o.live } });
}

function runTable(root: string, runs: RunRow[], o: { select?: boolean } = {}): Html {
  return html`
    <table class="runs">
      <thead>
        <tr>${o.select ? html`<th></th>` : ""}<th>run</th><th>variant</th><th>seed</th><th>status</th>
    <th>steps</th><th>val loss</th><th>val ppl</th><th>params</th><th>parent</th></tr>
      </thead>
      <tbody>${runs.map((r) =>
        html`
          <tr
            data-hash="${r.hash}">${o.select
              ? html`<td><input type="checkbox" class="pick" value="${r.hash}"></td>`
              : ""}<td><a href="${runHref(root, r.hash)}">${r.run_id}</a></td><td>${r.variant}</td><td class="num">${r
              .seed}</td>
          <td class="st">${badge(r.status)}</td><td class="num steps"><span class="done">${num(
            r.steps_done,
          )}</span>${r.steps
            ? html`
              / ${num(r.steps)}
            `
            : ""}</td><td class="num">${num(r.val_loss)}</td><td class="num">${num(
              r.val_ppl,
            )}</td><td class="num">${num(r.params)}</td><td>${r.parent_hash
            ? html`<a href="${runHref(root, r.parent_hash)}">${r.parent_hash.slice(0, 10)}</a>`
            : ""}</td></tr>
        `
      )}</tbody>
    </table>
  `;
}

/** An experiment: verdict, variant table (mean ± std), loss curves and final metrics (interactive), runs. */
export function experimentPageHtml(e: ExperimentPage, mode: Mode): string {
  const root = "../";
  const body = html`
    <h1>${e.id}</h1><p class="desc">${e.description}</p>
    ${e.scale ? html`<p class="meta">scale <b>${e.scale}</b> · ${e.runs.length} runs</p>` : ""}
    ${e.report.verdict ? html`<p class="verdict" id="verdict">${e.report.verdict}</p>` : ""}
    ${e.report.text
      ? html`
        <details>
          <summary>full report</summary>
          <pre>${e.report.text}</pre>
        </details>
      `
      : ""}
    <h2>Variants</h2>
    <table class="variants" id="variants">
      <thead>
        <tr>${mode === "serve"
          ? html`<th></th>`
          : ""}<th>variant</th><th>runs</th><th>completed</th><th>val loss (mean ± std)</th>
    <th>val ppl (mean ± std)</th></tr>
      </thead>
      <tbody>${e.variants.map((v) =>
        html`<tr>${
          mode === "serve" ? html`<td><input type="checkbox" class="pick" value="${e.id}/${v.variant}"></td>` : ""
        }<td>${v.variant}</td><td class="num">${v.n_runs}</td><td class="num">${v.n_completed}</td>
<td class="num">${meanStd(v.val_loss_mean, v.val_loss_std)}</td><td class="num">${
          meanStd(v.val_ppl_mean, v.val_ppl_std)
        }</td></tr>`
      )}</tbody>
    </table>
    <p class="actions">${e.variants.length >= 2
      ? html`
        <a href="${root}compare/${encodeURIComponent(e.id)}.html">compare all variants</a> ·
      `
      : ""}${mode === "serve" ? html`<button id="compare-picked" type="button">compare selected</button>` : ""}</p>
    <h2>Loss curves</h2><div class="chart" id="curves" data-chart="curves"></div>
    <h2>Final validation perplexity</h2><div class="chart" id="finals" data-chart="finals"></div>
    <h2>Runs</h2>${runTable(root, e.runs, { select: mode === "serve" })}
  `;
  const live = e.runs.filter((r) => r.status === "running").map((r) => r.hash);
  return layout({
    title: e.id,
    root,
    mode,
    body,
    data: {
      page: "experiment",
      experiment: e.id,
      runs: e.runs.map((r) => ({
        hash: r.hash,
        run_id: r.run_id,
        variant: r.variant,
        seed: r.seed,
        status: r.status,
        val_ppl: r.val_ppl,
      })),
      curves: e.curves,
      live: mode === "serve" ? live : [],
    },
  });
}

function metricTable(id: string, c: Comparison, metrics: string[]): Html {
  return html`
    <table class="diff" id="${id}">
      <thead>
        <tr><th>metric</th>${c.groups.map((_, i) => html`<th>${String.fromCharCode(65 + i)}</th>`)}</tr>
      </thead>
      <tbody>${metrics.map((m) =>
        html`<tr><th>${m}</th>${
          c.groups.map((g, i) =>
            html`<td class="num">${meanStd(g.finals[m], g.spread[m], 6)}${
              i > 0
                ? html`
                  <span class="delta">${delta(c.groups[0].finals[m], g.finals[m])}</span>
                `
                : ""
            }</td>`
          )
        }</tr>`
      )}</tbody>
    </table>
  `;
}

/** The compare view: only the config keys that differ, final metrics with differences to the first, curves overlaid. */
export function comparePageHtml(c: Comparison, o: { mode: Mode; root: string }): string {
  const L = (i: number) => String.fromCharCode(65 + i);
  const body = html`
    <h1>Compare</h1><ol class="groups" type="A">${c.groups.map((g) =>
      html`<li>${g.label}: ${
        g.hashes.map((h, j) =>
          html`
            <a href="${runHref(o.root, h)}">${g.runIds[j]}</a>
          `
        )
      }</li>`
    )}</ol>
    <h2>Config: ${c.differing.length} differing key${c.differing.length === 1 ? "" : "s"}</h2>
    ${c.differing.length
      ? html`
        <table class="diff" id="config-diff">
          <thead>
            <tr><th>key</th>${c.groups.map((_, i) => html`<th>${L(i)}</th>`)}</tr>
          </thead>
          <tbody>${c.differing.map((k) =>
            html`<tr><th>${k}</th>${
              c.groups.map((g) =>
                html`<td class="${g.config[k] === VARIES ? "varies" : ""}">${g.config[k] ?? "(absent)"}</td>`
              )
            }</tr>`
          )}</tbody>
        </table>
      `
      : html`<p id="config-diff">identical configs</p>`}
    <h2>Final metrics (mean ± std over completed runs; difference to A)</h2>
    ${metricTable(
      "metric-diff",
      c,
      c.metrics.filter((m) => !m.startsWith("extra.")),
    )} ${c.metrics.some((m) => m.startsWith("extra."))
      ? html`<details class="extra"><summary>analysis metrics (summary.extra)</summary>${
        metricTable("extra-diff", c, c.metrics.filter((m) => m.startsWith("extra.")))
      }</details>`
      : ""}
    <h2>Loss curves</h2><div class="chart" id="curves" data-chart="curves"></div>
  `;
  return layout({
    title: "Compare",
    root: o.root,
    mode: o.mode,
    body,
    data: {
      page: "compare",
      runs: c.curves.map((x) => ({
        hash: x.hash,
        run_id: x.label,
        variant: `${L(x.group)}: ${c.groups[x.group].label}`,
      })),
      curves: c.curves,
      live: [],
    },
  });
}

/** An error page (unknown experiment or run, bad compare reference). */
export function messagePage(o: { title: string; message: string; root: string; mode: Mode }): string {
  return layout({
    title: o.title,
    root: o.root,
    mode: o.mode,
    body: html`
      <h1>${o.title}</h1>
      <p class="problem">${o.message}</p>
    `,
  });
}

/** The read-only SQL box (served only). */
export function sqlPage(o: { sql: string }): string {
  const body = html`
    <h1>SQL</h1>
    <p class="meta">Read-only queries over the results database (tables experiments, runs,
    current_runs, metrics, run_metrics, experiment_runs; views variant_stats, run_ancestry). Writes and DDL are refused.</p>
    <form id="sql-form">
      <textarea id="sql" name="sql" rows="6" spellcheck="false">${o.sql}</textarea>
      <p><button type="submit" id="sql-run">Run</button> <span id="sql-status"></span></p>
    </form>
    <div class="chart" id="sql-chart"></div>
    <div id="sql-result"></div>
  `;
  return layout({ title: "SQL", root: "", mode: "serve", body, data: { page: "sql" } });
}
