// finelab dashboard client: draws the charts of a page from its embedded JSON (Observable Plot, loaded
// as a UMD bundle beside d3), polls running runs for new metric rows (served mode), and drives the
// compare picker and the SQL box. Plain JS so the same file works served and from a static export.
"use strict";
(() => {
  const el = document.getElementById("finelab-data");
  const data = el ? JSON.parse(el.textContent) : {};
  const mode = document.body.dataset.mode;
  const root = document.body.dataset.root || "";
  const runs = new Map((data.runs || []).map((r) => [r.hash, r]));
  const curves = new Map((data.curves || []).map((c) => [c.hash, c]));

  function h(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "on") { for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn); }
      else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  // ---- loss curves with split, variant and seed toggles ----
  const curveState = { split: "train", variants: null, seeds: null, log: false };

  function curvePoints() {
    const pts = [];
    for (const [hash, c] of curves) {
      const r = runs.get(hash) || { run_id: hash.slice(0, 10), variant: "", seed: "" };
      if (curveState.variants && !curveState.variants.has(String(r.variant))) continue;
      if (curveState.seeds && !curveState.seeds.has(String(r.seed))) continue;
      for (const [step, loss] of c[curveState.split] || []) {
        pts.push({ hash, run: r.run_id, variant: String(r.variant), seed: r.seed, step, loss });
      }
    }
    return pts;
  }

  function drawCurves(box) {
    const pts = curvePoints();
    const plotBox = box.querySelector(".plot");
    plotBox.replaceChildren();
    box.dataset.points = String(pts.length);
    box.dataset.series = String(new Set(pts.map((p) => p.hash)).size);
    if (!pts.length) {
      plotBox.append(h("p", { class: "empty" }, "no points for this selection yet"));
      return;
    }
    const val = curveState.split === "val";
    const chart = Plot.plot({
      width: Math.min(960, box.clientWidth || 900),
      height: 340,
      marginLeft: 50,
      grid: true,
      color: { legend: true, type: "categorical" },
      x: { label: "step" },
      y: { label: `${val ? "validation" : "training"} loss (nats/token)`, type: curveState.log ? "log" : "linear" },
      marks: [
        Plot.lineY(pts, { x: "step", y: "loss", z: "hash", stroke: "variant", strokeWidth: 1.5, strokeOpacity: 0.85 }),
        val ? Plot.dot(pts, { x: "step", y: "loss", fill: "variant", r: 2.5 }) : null,
        Plot.tip(
          pts,
          Plot.pointerX({
            x: "step",
            y: "loss",
            title: (d) => `${d.run}\nvariant ${d.variant} · seed ${d.seed}\nstep ${d.step}\nloss ${d.loss.toFixed(4)}`,
          }),
        ),
      ],
    });
    plotBox.append(chart);
  }

  function setupCurves(box) {
    const variants = [...new Set([...runs.values()].map((r) => String(r.variant)))].sort();
    const seeds = [...new Set([...runs.values()].map((r) => String(r.seed)))].sort((a, b) => a - b);
    const controls = h("div", { class: "controls" });
    const redraw = () => drawCurves(box);
    controls.append(
      h(
        "label",
        {},
        "split ",
        h(
          "select",
          {
            class: "split",
            on: { change: (e) => (curveState.split = e.target.value, redraw()) },
          },
          h("option", { value: "train" }, "training loss"),
          h("option", { value: "val" }, "validation loss"),
        ),
      ),
      h(
        "label",
        {},
        h("input", {
          type: "checkbox",
          class: "log",
          on: { change: (e) => (curveState.log = e.target.checked, redraw()) },
        }),
        " log y",
      ),
    );
    const toggles = (name, values, key) => {
      if (values.length < 2) return;
      const group = h("span", { class: `toggles ${name}` }, `${name}: `);
      for (const v of values) {
        group.append(h(
          "label",
          {},
          h("input", {
            type: "checkbox",
            checked: true,
            value: v,
            on: {
              change: () => {
                const on = [...group.querySelectorAll("input:checked")].map((i) => i.value);
                curveState[key] = new Set(on);
                redraw();
              },
            },
          }),
          ` ${v} `,
        ));
      }
      controls.append(group);
    };
    toggles("variants", variants, "variants");
    toggles("seeds", seeds, "seeds");
    box.append(controls, h("div", { class: "plot" }));
    redraw();
    new ResizeObserver(() => redraw()).observe(box);
  }

  // ---- final metric per variant: one dot per completed run, the mean as a tick ----
  function setupFinals(box) {
    const done = [...runs.values()].filter((r) => r.status === "completed" && typeof r.val_ppl === "number");
    box.dataset.points = String(done.length);
    if (!done.length) return box.append(h("p", { class: "empty" }, "no completed runs yet"));
    const order = [...new Set(done.map((r) => r.variant))];
    box.append(Plot.plot({
      width: Math.min(960, box.clientWidth || 900),
      height: 40 + 28 * order.length,
      marginLeft: 140,
      grid: true,
      x: { label: "validation perplexity" },
      y: { label: null, domain: order },
      color: { type: "categorical" },
      marks: [
        Plot.tickX(done, Plot.groupY({ x: "mean" }, { x: "val_ppl", y: "variant", stroke: "#333", strokeWidth: 2 })),
        Plot.dot(done, {
          x: "val_ppl",
          y: "variant",
          fill: "variant",
          r: 4,
          tip: true,
          title: (d) => `${d.run_id}\nval ppl ${d.val_ppl.toFixed(4)}`,
        }),
      ],
    }));
  }

  // ---- live runs: new metric rows appear without a reload ----
  function startLive() {
    const live = new Map((data.live || []).map((h) => [h, 0]));
    if (mode !== "serve" || !live.size) return;
    const box = document.querySelector('[data-chart="curves"]');
    const tick = async () => {
      const q = [...live].map(([h, n]) => `${h}:${n}`).join(",");
      try {
        const res = await fetch(`${root}api/live?runs=${q}`);
        const upd = await res.json();
        let changed = false;
        for (const [hash, u] of Object.entries(upd)) {
          const seen = live.get(hash);
          if (seen === 0) curves.set(hash, { hash, train: [], val: [] }); // first answer: every row so far
          const c = curves.get(hash) || { hash, train: [], val: [] };
          for (const r of u.rows) {
            if (r.name === "loss" && Number.isFinite(r.value)) {
              (r.split === "val" ? c.val : c.train).push([r.step, r.value]);
            }
          }
          curves.set(hash, c);
          changed ||= u.rows.length > 0;
          live.set(hash, u.total);
          const row = document.querySelector(`tr[data-hash="${hash}"]`);
          const last = c.train.at(-1);
          if (row && last) row.querySelector(".steps .done").textContent = String(last[0] + 1);
          if (u.status !== "running") {
            live.delete(hash);
            const r = runs.get(hash);
            if (r) r.status = u.status;
            if (row) row.querySelector(".st").innerHTML = `<span class="badge s-${u.status}">${u.status}</span>`;
          }
        }
        if (changed && box) drawCurves(box);
      } catch (e) {
        console.warn("live update failed", e);
      }
      if (live.size) setTimeout(tick, 1000);
    };
    tick();
  }

  // ---- compare picker ----
  function setupCompare() {
    const btn = document.getElementById("compare-picked");
    if (!btn) return;
    btn.addEventListener("click", () => {
      const picked = [...document.querySelectorAll("input.pick:checked")].map((i) => i.value);
      if (picked.length < 2) return alert("Pick two or more variants or runs to compare.");
      location.href = `${root}compare.html?runs=${picked.map(encodeURIComponent).join(",")}`;
    });
  }

  // ---- SQL box ----
  function setupSql() {
    const form = document.getElementById("sql-form");
    if (!form) return;
    const status = document.getElementById("sql-status");
    const out = document.getElementById("sql-result");
    const chart = document.getElementById("sql-chart");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      status.textContent = "running…";
      out.replaceChildren();
      chart.replaceChildren();
      const res = await fetch(`${root}api/sql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ sql: document.getElementById("sql").value }),
      });
      const r = await res.json();
      if (r.error) {
        status.textContent = "";
        out.append(h("p", { class: `problem${r.refused ? " refused" : ""}`, id: "sql-error" }, r.error));
        return;
      }
      status.textContent = `${r.total} row${r.total === 1 ? "" : "s"}${
        r.total > r.rows.length ? ` (first ${r.rows.length} shown)` : ""
      }`;
      const cols = r.columns.map((c) => c.name);
      const table = h(
        "table",
        { class: "result", id: "sql-table" },
        h("thead", {}, h("tr", {}, ...cols.map((c) => h("th", {}, c)))),
        h(
          "tbody",
          {},
          ...r.rows.map((row) =>
            h(
              "tr",
              {},
              ...cols.map((c) => {
                const v = row[c];
                return h(
                  "td",
                  { class: typeof v === "number" ? "num" : "" },
                  v === null ? "NULL" : typeof v === "object" ? JSON.stringify(v) : v,
                );
              }),
            )
          ),
        ),
      );
      out.append(table);
      quickChart(chart, cols, r.rows);
    });
  }

  function quickChart(box, cols, rows) {
    const numeric = cols.filter((c) => rows.length && rows.every((r) => r[c] === null || typeof r[c] === "number"));
    if (cols.length < 2 || !numeric.length || !rows.length) return;
    const x = cols[0];
    const y = numeric.find((c) => c !== x);
    if (!y) return;
    const xNum = numeric.includes(x);
    box.append(Plot.plot({
      width: Math.min(960, box.clientWidth || 900),
      height: xNum ? 300 : 40 + 22 * Math.min(rows.length, 40),
      marginLeft: xNum ? 50 : 160,
      grid: true,
      marks: xNum
        ? [Plot.dot(rows, { x, y, tip: true })]
        : [Plot.barX(rows.slice(0, 40), { x: y, y: x, tip: true, fill: "steelblue" }), Plot.ruleX([0])],
    }));
  }

  for (const box of document.querySelectorAll('[data-chart="curves"]')) setupCurves(box);
  for (const box of document.querySelectorAll('[data-chart="finals"]')) setupFinals(box);
  setupCompare();
  setupSql();
  startLive();
})();
