/**
 * Value validation of resolved run configs. Every problem names the field, the bad
 * value and the allowed range, so a user can fix it without reading code. Shape
 * (cross-field) checks of the model and data live beside them (lib/models, lib/data)
 * and are called by the runner; this module checks types, ranges and unknown keys.
 *
 * @module
 */
import { BACKENDS, DEFAULT_DATA, DEFAULT_MODEL, DEFAULT_TRAIN, type RunConfig } from "../core/config.ts";

/** Thrown for any invalid experiment, override or config value; `problems` lists each one. */
export class ConfigError extends Error {
  /** One line per problem. */
  readonly problems: string[];
  /** Builds the error; `context` says what was being validated. */
  constructor(context: string, problems: string[]) {
    super(
      `${context}:\n${problems.map((p) => `  - ${p}`).join("\n")}\n` +
        `Fix the experiment module, the --config file or the --set value, then run again. Nothing was trained.`,
    );
    this.name = "ConfigError";
    this.problems = problems;
  }
}

type Rule =
  | { type: "int"; min?: number; max?: number; nullable?: boolean }
  | { type: "number"; min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean; nullable?: boolean }
  | { type: "bool" }
  | { type: "enum"; values: readonly string[] }
  | { type: "string"; nullable?: boolean; nonEmpty?: boolean };

const U32 = 0xffffffff;

/** Field rules, by dotted path. */
export const RULES: Record<string, Rule> = {
  "seed": { type: "int", min: 0, max: U32 },
  "backend": { type: "enum", values: BACKENDS },
  "data.dataset": { type: "string", nonEmpty: true },
  "data.path": { type: "string", nullable: true, nonEmpty: true },
  "data.text_field": { type: "string", nonEmpty: true },
  "data.val_fraction": { type: "number", min: 0, max: 0.5, minExclusive: true, nullable: true },
  "data.split_seed": { type: "int", min: 0, max: U32, nullable: true },
  "data.max_tokens": { type: "int", min: 1, nullable: true },
  "model.vocab_size": { type: "int", min: 0, max: 1 << 24 },
  "model.d_model": { type: "int", min: 1, max: 65536 },
  "model.n_layers": { type: "int", min: 1, max: 1024 },
  "model.n_heads": { type: "int", min: 1, max: 4096 },
  "model.d_ff": { type: "int", min: 1, max: 1 << 20 },
  "model.seq_len": { type: "int", min: 1, max: 1 << 20 },
  "model.tie_embeddings": { type: "bool" },
  "model.rope_base": { type: "number", min: 1 },
  "model.norm_eps": { type: "number", min: 0, max: 1, minExclusive: true },
  "model.init_std": { type: "number", min: 0, max: 10, minExclusive: true },
  "model.ffn.kind": { type: "string", nonEmpty: true },
  "train.steps": { type: "int", min: 1, max: 1e9 },
  "train.batch_size": { type: "int", min: 1, max: 1 << 20 },
  "train.lr": { type: "number", min: 0, max: 10, minExclusive: true },
  "train.min_lr_ratio": { type: "number", min: 0, max: 1 },
  "train.warmup_steps": { type: "int", min: 0 },
  "train.weight_decay": { type: "number", min: 0, max: 10 },
  "train.beta1": { type: "number", min: 0, max: 1, maxExclusive: true },
  "train.beta2": { type: "number", min: 0, max: 1, maxExclusive: true },
  "train.eps": { type: "number", min: 0, max: 1, minExclusive: true },
  "train.grad_clip": { type: "number", min: 0 },
  "train.eval_every": { type: "int", min: 1 },
  "train.eval_batches": { type: "int", min: 1, max: 100000 },
  "train.checkpoint_every": { type: "int", min: 0 },
  "train.log_every": { type: "int", min: 1 },
};

/** Shows a value the way a user would write it. */
export function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" && !Number.isFinite(v)) return String(v); // NaN, Infinity (JSON would say null)
  if (v === undefined) return "(missing)";
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function range(r: { min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean }): string {
  const lo = r.min === undefined ? "(-inf" : `${r.minExclusive ? "(" : "["}${r.min}`;
  const hi = r.max === undefined ? "inf)" : `${r.max}${r.maxExclusive ? ")" : "]"}`;
  return `${lo}, ${hi}`;
}

/** Checks one value against its rule; returns a problem message or null. */
export function checkField(path: string, v: unknown, rule: Rule): string | null {
  if (v === null && "nullable" in rule && rule.nullable) return null;
  switch (rule.type) {
    case "bool":
      return typeof v === "boolean" ? null : `${path} = ${show(v)} must be true or false`;
    case "enum":
      return typeof v === "string" && rule.values.includes(v)
        ? null
        : `${path} = ${show(v)} is not one of: ${rule.values.join(", ")}`;
    case "string":
      if (typeof v !== "string") return `${path} = ${show(v)} must be a string${rule.nullable ? " or null" : ""}`;
      return rule.nonEmpty && v.length === 0 ? `${path} must not be empty` : null;
    case "int":
    case "number": {
      const kind = rule.type === "int" ? "an integer" : "a finite number";
      if (typeof v !== "number" || !Number.isFinite(v) || (rule.type === "int" && !Number.isInteger(v))) {
        return `${path} = ${show(v)} must be ${kind} in ${range(rule)}${rule.nullable ? " or null" : ""}`;
      }
      const r = rule as { min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean };
      const low = r.min !== undefined && (r.minExclusive ? v <= r.min : v < r.min);
      const high = r.max !== undefined && (r.maxExclusive ? v >= r.max : v > r.max);
      return low || high ? `${path} = ${show(v)} is out of range: must be ${kind} in ${range(r)}` : null;
    }
  }
}

/** Closest known key by edit distance, for "did you mean" hints. */
export function nearest(key: string, candidates: string[]): string | null {
  let best: string | null = null, bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(key, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

/** Every settable dotted path (used for unknown-key errors and `--set`). */
export const KNOWN_PATHS: string[] = [
  ...Object.keys(DEFAULT_DATA).map((k) => `data.${k}`),
  ...Object.keys(DEFAULT_MODEL).filter((k) => k !== "ffn").map((k) => `model.${k}`),
  "model.ffn.kind",
  ...Object.keys(DEFAULT_TRAIN).map((k) => `train.${k}`),
];

/**
 * Reports keys of a patch that are not part of the config (typos), with a
 * "did you mean" hint. `model.ffn.*` options are left to the FFN variant.
 */
export function unknownKeys(patch: object | undefined, where: string): string[] {
  const out: string[] = [];
  const walk = (obj: unknown, prefix: string) => {
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return;
    for (const [k, v] of Object.entries(obj)) {
      const p = prefix ? `${prefix}.${k}` : k;
      if (p === "model.ffn" || p === "seeds" || p === "backend") continue;
      if (p === "data" || p === "model" || p === "train") {
        walk(v, p);
        continue;
      }
      if (!KNOWN_PATHS.includes(p)) {
        const hint = nearest(p, KNOWN_PATHS);
        out.push(`${where}: unknown key ${p}${hint ? ` (did you mean ${hint}?)` : ""}`);
      }
    }
  };
  walk(patch, "");
  return out;
}

/** Reads a dotted path of an object. */
export function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const k of path.split(".")) {
    if (typeof cur !== "object" || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Type and range problems of a resolved run config (empty when valid). */
export function validateRunConfig(cfg: RunConfig): string[] {
  const problems: string[] = [];
  for (const [path, rule] of Object.entries(RULES)) {
    const p = checkField(path, getPath(cfg, path), rule);
    if (p) problems.push(p);
  }
  const t = cfg.train;
  if (Number.isInteger(t.warmup_steps) && Number.isInteger(t.steps) && t.warmup_steps > t.steps) {
    problems.push(`train.warmup_steps = ${t.warmup_steps} must be <= train.steps = ${t.steps}`);
  }
  if (cfg.data.dataset === "file" && !cfg.data.path) {
    problems.push(`data.path must name a .txt/.jsonl/.parquet file or directory when data.dataset = "file"`);
  }
  return problems;
}
