/**
 * The dashboard's run page (run/<hash>.html): status, final metrics, curve, lineage, resolved config, hash
 * inputs, environment, checkpoints and attempts. The other pages are in pages.ts.
 *
 * @module
 */
import { badge, expHref, type Html, html, layout, type Mode, num, runHref, when } from "./html.ts";
import type { RunPage } from "./run_data.ts";

function kv(rows: [string, unknown][]): Html {
  return html`
    <table class="kv">
      <tbody>${rows.map(([k, v]) =>
        html`
          <tr>
            <th>${k}</th>
            <td>${typeof v === "number" ? num(v, 6) : String(v ?? "")}</td>
          </tr>
        `
      )}</tbody>
    </table>
  `;
}

function runLink(root: string, r: { hash: string; run_id?: string | null; experiment?: string | null }): Html {
  return html`<a href="${runHref(root, r.hash)}">${
    r.run_id ? `${r.experiment ?? ""}/${r.run_id}` : r.hash.slice(0, 12)
  }</a>`;
}

/** A run: status, final metrics, curve, lineage, resolved config, hash inputs, environment, checkpoints, attempts. */
export function runPageHtml(r: RunPage, mode: Mode): string {
  const root = "../", m = r.manifest, s = r.summary;
  const env = Object.entries(m.env ?? {}).map(([k, v]): [string, unknown] => [
    k,
    typeof v === "object" && v !== null ? JSON.stringify(v) : v,
  ]);
  const compareParent = r.parent
    ? mode === "serve" ? `${root}compare.html?runs=${r.parent.hash},${r.hash}` : `${root}compare/${r.hash}.html`
    : null;
  const body = html`
    <h1>${m.run_id} ${badge(r.status)}</h1>
    <p class="meta">experiment <a href="${expHref(root, m.experiment)}">${m.experiment}</a> · variant <b>${m
      .variant}</b>
    · seed ${m.seed} · <code class="hash">${r.hash}</code></p>
    ${r.problems.length ? html`<p class="problem">cache entry fails verification: ${r.problems.join("; ")}</p>` : ""}
    ${s?.failure ? html`<p class="problem">failed at step ${s.failure.step}: ${s.failure.reason}</p>` : ""}
    <div class="cols">
      <section><h2>Results</h2>${kv([
        ["steps", `${s?.steps_done ?? r.statusRecord.step ?? 0} / ${m.config.train.steps}`],
        ["val_loss", s?.val_loss],
        ["val_ppl", s?.val_ppl],
        ["final_train_loss", s?.final_train_loss],
        ["params", s?.params],
        ["flops_per_token", s?.flops_per_token],
        ["tokens_per_sec", s?.tokens_per_sec],
        ["wall_s", s?.wall_s],
        ["resumed_from_step", s?.resumed_from_step],
      ])}${r.extra.length
        ? html`<details class="extra"><summary>${r.extra.length} more final metrics (analysis)</summary>${
          kv(r.extra)
        }</details>`
        : ""}</section>
      <section><h2>Lineage</h2>${r.parent
        ? html`<p>parent: ${runLink(root, r.parent)}${
          compareParent
            ? html`
              · <a href="${compareParent}">compare with parent</a>
            `
            : ""
        }</p>`
        : html`<p>seeded init (no parent)</p>`}${r.ancestors.length > 1
        ? html`<p>ancestors: ${
          r.ancestors.map((a) =>
            html`
              ${runLink(root, a)} (depth ${a.depth})
            `
          )
        }</p>`
        : ""}<p>children: ${r.children.length
        ? r.children.map((c) =>
          html`
            ${runLink(root, c)}
          `
        )
        : "none"}</p>
    <h2>Checkpoints</h2>${r.checkpoints.length
      ? html`
        <table class="kv">
          <tbody>${r.checkpoints.map((c) =>
            html`
              <tr>
                <th>${c.name}</th>
                <td>step ${c.step}</td>
                <td>${when(c.created_at)}</td>
              </tr>
            `
          )}</tbody>
        </table>
      `
      : html`<p>none</p>`}
    <h2>Attempts</h2><table class="kv" id="attempts"><tbody>${r.attempts.map((a) =>
      html`
        <tr>
          <th>${a.event}</th>
          <td>${when(a.at)}</td>
          <td>pid ${a.pid} on ${a.hostname}</td>
          <td>${a.event === "end" ? `${a.outcome} at step ${a.step}${a.detail ? `: ${a.detail}` : ""}` : ""}</td>
        </tr>
      `
    )}</tbody></table></section>
    </div>
    <h2>Loss</h2><div class="chart" id="curves" data-chart="curves"></div>
    <div class="cols">
      <section>
        <h2>Resolved config</h2>
        <pre id="config">${r.configYaml}</pre>
      </section>
      <section><h2>Hash inputs (as <code>--explain</code> shows them)</h2><pre id="hash-inputs">${r
        .hashInputsYaml}</pre>
    <h2>Environment</h2>${kv(env)}</section>
    </div>
  `;
  return layout({
    title: m.run_id,
    root,
    mode,
    body,
    data: {
      page: "run",
      runs: [{ hash: r.hash, run_id: m.run_id, variant: m.variant, seed: m.seed, status: r.status }],
      curves: [r.curve],
      live: mode === "serve" && r.status === "running" ? [r.hash] : [],
    },
  });
}
