/**
 * HTML building with escaping by construction: {@link html} escapes every interpolated value unless it is
 * already {@link Html} (a nested template or {@link raw}), so user text (run names, descriptions, config
 * values, SQL results) cannot inject markup.
 *
 * @module
 */

/** Markup that is safe to insert as is. */
export class Html {
  /** The markup. */
  readonly text: string;
  /** Wraps markup (use {@link html} or {@link raw}). */
  constructor(text: string) {
    this.text = text;
  }
  /** The markup. */
  toString(): string {
    return this.text;
  }
}

/** Escapes text for HTML element content and double- or single-quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** Trusted markup (only for strings this module's callers built themselves). */
export function raw(s: string): Html {
  return new Html(s);
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function part(v: Value): string {
  if (v === null || v === undefined || v === false) return "";
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(part).join("");
  return escapeHtml(String(v));
}

/** Template tag: escapes interpolations (arrays are joined; null, undefined and false render nothing). */
export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1];
  return new Html(out);
}

/** JSON for a `<script type="application/json">` block (`<` escaped so no `</script>` can end it early). */
export function jsonBlock(id: string, value: unknown): Html {
  const json = JSON.stringify(value).replaceAll("<", "\\u003c").replaceAll("\u2028", "\\u2028")
    .replaceAll("\u2029", "\\u2029");
  return raw(`<script type="application/json" id="${escapeHtml(id)}">${json}</script>`);
}

/** Dashboard mode: served (live updates, SQL, ad-hoc compare) or exported as static files. */
export type Mode = "serve" | "static";

/** Page frame: title, navigation, assets (relative to `root`, "" or "../"). */
export function layout(o: { title: string; root: string; mode: Mode; body: Html; data?: unknown }): string {
  const r = o.root;
  return "<!doctype html>\n" + html`
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="icon" href="data:,">
        <title>${o.title} · finelab</title>
        <link rel="stylesheet" href="${r}assets/style.css">
        <script src="${r}assets/d3.min.js"></script>
        <script src="${r}assets/plot.umd.min.js"></script>
      </head>
      <body data-mode="${o.mode}" data-root="${r}">
    <header><a class="brand" href="${r}index.html">finelab</a>
    <nav><a href="${r}index.html">Experiments</a>${o.mode === "serve" ? html`<a href="${r}sql.html">SQL</a>` : ""}</nav>
    ${o.mode === "static"
      ? html`<span class="note">static export: no live updates or SQL (run <code>deno task serve</code>)</span>`
      : ""}
    </header>
    <main>${o.body}</main>
    ${o.data === undefined ? "" : jsonBlock("finelab-data", o.data)}
    <script src="${r}assets/app.js"></script>
      </body>
    </html>
  `.text;
}

/** A number for a table cell: 4 significant digits for floats, whole integers with separators. */
export function num(v: unknown, digits = 4): string {
  if (v === null || v === undefined || v === "") return "";
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  if (Number.isInteger(n)) return n.toLocaleString("en-US");
  return Number(n.toPrecision(digits)).toString();
}

/** `mean ± std` (std omitted when null). */
export function meanStd(m: unknown, s: unknown, digits = 4): string {
  if (m === null || m === undefined) return "";
  return s === null || s === undefined ? num(m, digits) : `${num(m, digits)} ± ${num(s, 2)}`;
}

/** A status badge. */
export function badge(status: string): Html {
  return html`<span class="badge s-${status.replace(/[^a-z]/g, "")}">${status}</span>`;
}

/** `2025-01-01 12:05` from an ISO time (UTC). */
export function when(iso: unknown): string {
  if (typeof iso !== "string" || !iso) return "";
  return iso.replace("T", " ").slice(0, 16) + " UTC";
}

/** The link to an experiment's page from a page `root` folders deep (relative, so the export works from disk). */
export const expHref = (root: string, id: string): string => `${root}exp/${encodeURIComponent(id)}.html`;

/** The link to a run's page (see {@link expHref}). */
export const runHref = (root: string, hash: string): string => `${root}run/${hash}.html`;
