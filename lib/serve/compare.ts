/**
 * Comparing runs or variants: which config keys differ, how the final metrics differ, and the loss
 * curves of each side. Used by the dashboard's compare view and by `deno task diff` in the terminal.
 *
 * A reference is a run hash (or a unique prefix of at least 6 digits), `<experiment>/<run_id>`, or
 * `<experiment>/<variant>` (the variant's runs of the experiment's latest plan, averaged over seeds).
 *
 * @module
 */
import { type Curve, curves, type Query, type Source, withDb } from "./data.ts";

/** One side of a comparison: a run or a variant's runs. */
export interface CompareGroup {
  /** The reference as given. */
  ref: string;
  /** `experiment/run_id` or `experiment/variant (n runs)`. */
  label: string;
  hashes: string[];
  runIds: string[];
  /** Flattened config (dotted keys); a key whose value differs between the group's runs holds VARIES. */
  config: Record<string, string>;
  /** Final metric -> mean over the group's completed runs (null when none). */
  finals: Record<string, number | null>;
  /** Final metric -> sample std over the group's runs (null for fewer than two). */
  spread: Record<string, number | null>;
}

/** What {@link compare} returns. */
export interface Comparison {
  groups: CompareGroup[];
  /** Config keys whose values differ between groups, sorted. */
  differing: string[];
  /** Final metrics compared (rows), in display order. */
  metrics: string[];
  curves: (Curve & { group: number; label: string })[];
}

/** Shown for a key whose value is not the same in all runs of a variant. */
export const VARIES = "(varies)";

/** The fixed final metrics compared, then the runs' extra metrics. */
const FINALS = ["val_loss", "val_ppl", "final_train_loss", "params", "flops_per_token", "tokens_per_sec", "wall_s"];

/** A reference that does not name a run or variant (a user input error). */
export class CompareError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "CompareError";
  }
}

/** `{a: {b: 1}}` -> `{"a.b": "1"}` (values as JSON text; arrays whole). */
export function flattenDotted(value: unknown, prefix = "", out: Record<string, string> = {}): Record<string, string> {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      flattenDotted(v, prefix ? `${prefix}.${k}` : k, out);
    }
  } else out[prefix] = typeof value === "string" ? value : JSON.stringify(value ?? null);
  return out;
}

/** Config of a group of runs: keys that agree keep their value, the others hold {@link VARIES}. */
export function groupConfig(configs: readonly unknown[]): Record<string, string> {
  const flat = configs.map((c) => flattenDotted(c));
  const keys = new Set(flat.flatMap((f) => Object.keys(f)));
  const out: Record<string, string> = {};
  for (const k of keys) {
    const vals = new Set(flat.map((f) => f[k] ?? "(absent)"));
    out[k] = vals.size === 1 ? [...vals][0] : VARIES;
  }
  return out;
}

/** Keys whose value is not the same in every config (a key missing on one side differs). */
export function differingKeys(configs: readonly Record<string, string>[]): string[] {
  const keys = new Set(configs.flatMap((c) => Object.keys(c)));
  return [...keys].filter((k) => new Set(configs.map((c) => c[k] ?? "(absent)")).size > 1).sort();
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
function std(xs: number[]): number | null {
  if (xs.length < 2) return null;
  const m = mean(xs)!;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

async function resolve(q: Query, ref: string): Promise<{ label: string; rows: Record<string, unknown>[] }> {
  const cols = `hash, run_id, experiment, variant, status, config_json, ${FINALS.join(", ")}`;
  if (/^[0-9a-f]{6,64}$/.test(ref)) {
    const r = (await q(`SELECT ${cols} FROM runs WHERE starts_with(hash, $p) ORDER BY hash LIMIT 3`, { p: ref })).rows;
    if (r.length === 1) return { label: `${r[0].experiment}/${r[0].run_id}`, rows: r };
    if (r.length > 1) throw new CompareError(`run hash prefix ${ref} is ambiguous; give more digits`);
  }
  const slash = ref.indexOf("/");
  if (slash > 0) {
    const exp = ref.slice(0, slash), name = ref.slice(slash + 1);
    const byRun =
      (await q(`SELECT ${cols} FROM current_runs WHERE experiment = $e AND run_id = $n`, { e: exp, n: name }))
        .rows;
    if (byRun.length) return { label: `${exp}/${name}`, rows: byRun };
    const byVariant = (await q(
      `SELECT ${cols} FROM current_runs WHERE experiment = $e AND variant = $n ORDER BY run_id`,
      { e: exp, n: name },
    )).rows;
    if (byVariant.length) return { label: `${exp}/${name} (${byVariant.length} runs)`, rows: byVariant };
  }
  throw new CompareError(
    `${JSON.stringify(ref)} names no run or variant in the results database. Give a run hash (or a prefix of 6+ ` +
      `digits), <experiment>/<run_id> or <experiment>/<variant>; \`deno task runs\` lists runs.`,
  );
}

/** Resolves the references and compares them (at least two). */
export async function compare(src: Source, refs: readonly string[]): Promise<Comparison> {
  if (refs.length < 2) throw new CompareError(`compare needs two or more runs or variants, got ${refs.length}`);
  const got = await withDb(src, async (q) => {
    const groups: CompareGroup[] = [];
    const extraNames = new Set<string>();
    for (const ref of refs) {
      const { label, rows } = await resolve(q, ref);
      const hashes = rows.map((r) => String(r.hash));
      const extra = (await q(
        `SELECT name, value FROM run_metrics WHERE hash IN (${hashes.map((h) => `'${h}'`).join(", ")})`,
      )).rows;
      const finals: Record<string, number | null> = {}, spread: Record<string, number | null> = {};
      const done = rows.filter((r) => r.status === "completed");
      for (const m of FINALS) {
        const xs = done.map((r) => r[m]).filter((v): v is number => typeof v === "number");
        finals[m] = mean(xs);
        spread[m] = std(xs);
      }
      const byName = new Map<string, number[]>();
      for (const e of extra) {
        if (typeof e.value !== "number") continue;
        const n = `extra.${e.name}`;
        extraNames.add(n);
        if (!byName.has(n)) byName.set(n, []);
        byName.get(n)!.push(e.value);
      }
      for (const [n, xs] of byName) {
        finals[n] = mean(xs);
        spread[n] = std(xs);
      }
      groups.push({
        ref,
        label,
        hashes,
        runIds: rows.map((r) => String(r.run_id)),
        config: groupConfig(rows.map((r) => JSON.parse(String(r.config_json)))),
        finals,
        spread,
      });
    }
    const cs = await curves(src, groups.flatMap((g) => g.hashes), q);
    return { groups, extra: [...extraNames].sort(), cs };
  });
  if (!got) throw new CompareError(`no results database at ${src.paths.db}; run an experiment first`);
  const { groups, extra, cs } = got;
  const labelOf = new Map<string, { group: number; label: string }>();
  groups.forEach((g, i) =>
    g.hashes.forEach((h, j) => labelOf.set(h, { group: i, label: `${g.label}: ${g.runIds[j]}` }))
  );
  return {
    groups,
    differing: differingKeys(groups.map((g) => g.config)),
    metrics: [...FINALS, ...extra].filter((m) => groups.some((g) => g.finals[m] !== null && g.finals[m] !== undefined)),
    curves: cs.map((c) => ({ ...c, ...labelOf.get(c.hash)! })),
  };
}

/** `v` with 6 significant digits (integers whole). */
export function fmtNum(v: number | null | undefined): string {
  if (v === null || v === undefined) return "-";
  if (Number.isInteger(v)) return String(v);
  return Number(v.toPrecision(6)).toString();
}

/** Difference of group `i` to the first group: `+0.0123 (+1.2%)`. */
export function delta(base: number | null | undefined, v: number | null | undefined): string {
  if (base === null || base === undefined || v === null || v === undefined) return "";
  const d = v - base;
  const pct = base !== 0 ? ` (${d >= 0 ? "+" : ""}${(100 * d / Math.abs(base)).toFixed(2)}%)` : "";
  return `${d >= 0 ? "+" : ""}${fmtNum(d)}${pct}`;
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd();
  return [line(header), line(w.map((n) => "-".repeat(n))), ...rows.map(line)].join("\n");
}

/** The comparison as terminal text (what `deno task diff` prints). */
export function formatComparison(c: Comparison): string {
  const names = c.groups.map((g, i) => `[${String.fromCharCode(65 + i)}] ${g.label}`);
  const out = [...names, ""];
  const heads = c.groups.map((_, i) => String.fromCharCode(65 + i));
  out.push(
    c.differing.length
      ? `config: ${c.differing.length} key${c.differing.length === 1 ? "" : "s"} differ\n` +
        table(["key", ...heads], c.differing.map((k) => [k, ...c.groups.map((g) => g.config[k] ?? "(absent)")]))
      : "config: identical",
    "",
  );
  const rows = c.metrics.map((m) => {
    const base = c.groups[0].finals[m];
    return [
      m,
      ...c.groups.flatMap((g, i) => {
        const s = g.spread[m];
        const v = fmtNum(g.finals[m]) + (s !== null && s !== undefined ? ` ± ${fmtNum(s)}` : "");
        return i === 0 ? [v] : [v, delta(base, g.finals[m])];
      }),
    ];
  });
  const mheads = heads.flatMap((h, i) => (i === 0 ? [h] : [h, `${h} - A`]));
  out.push(`final metrics (mean ± std over completed runs)\n${table(["metric", ...mheads], rows)}`);
  return out.join("\n");
}
