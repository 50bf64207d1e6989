/**
 * The results database schema and the mapping from {@link RunRecord} to rows.
 *
 * Tables (documented for users in lib/store/README.md):
 * - `experiments`  one row per experiment: id, description, module, n_runs, updated_at.
 * - `runs`         one row per run hash: identity, status, final metrics, provenance, `config_json`,
 *                  plus one column per leaf of the RunConfig, named by its path joined with `_`
 *                  (`model.ffn.kind` -> `model_ffn_kind`): the data, model and train leaves and the FFN
 *                  kind are declared with the table ({@link configColumns}); FFN options and other keys
 *                  are added as runs bring them.
 * - `metrics`      every logged MetricRow: (hash, step, split, name, value).
 * - `run_metrics`  the `summary.extra` scalars of each run, long format: (hash, name, value).
 * - `experiment_runs` the runs of each experiment's latest plan (experiment, hash, run_id, scale).
 * - view `current_runs` `runs` restricted to each experiment's latest plan, plus its `scale`.
 * - view `run_ancestry` (hash, ancestor, depth): every ancestor of a run through `parent_hash` (init_from).
 * - `finelab_meta` key/value: `schema_version`, `schema_digest` (sha256 of this DDL: opening skips it when equal),
 *                  `tags_digest` (of the tags file last synced into `run_tags`).
 * - `claims`       the claims ledger (lib/report/claims.ts): one row per paper claim, experiment testing it and
 *   scale point, with the effect, its 95% CI over seeds and the verdict; written after each experiment's report.
 * - view `variant_stats`  per experiment and variant of the latest plan (`current_runs`): run counts, mean and
 *   sample std of val_loss/val_ppl.
 *
 * @module
 */
import type { RunRecord } from "../core/records.ts";
import { DEFAULT_DATA, DEFAULT_MODEL, DEFAULT_TRAIN } from "../core/config.ts";

/** Bumped when the fixed schema changes; an older file must be rebuilt from the cache. */
export const SCHEMA_VERSION = 1;

/** SQL types the store writes. Flattened config columns use only DOUBLE, BOOLEAN and VARCHAR. */
export type ColumnType = "VARCHAR" | "DOUBLE" | "BOOLEAN" | "INTEGER" | "BIGINT" | "TIMESTAMP";

/** One fixed column of `runs`: name, type, description and how to read it from a record. */
export interface FixedColumn {
  name: string;
  type: ColumnType;
  doc: string;
  get: (r: RunRecord) => unknown;
}

/** The fixed columns of `runs`, in table order. Flattened config columns follow them. */
export const RUN_COLUMNS: readonly FixedColumn[] = [
  {
    name: "hash",
    type: "VARCHAR",
    doc: "run hash, unique (one row per run); the cache directory results/cache/<hash>/",
    get: (r) => r.manifest.hash,
  },
  {
    name: "run_id",
    type: "VARCHAR",
    doc: "human-readable run id within its experiment",
    get: (r) => r.manifest.run_id,
  },
  { name: "experiment", type: "VARCHAR", doc: "experiment id", get: (r) => r.manifest.experiment },
  { name: "variant", type: "VARCHAR", doc: "variant / grid point name", get: (r) => r.manifest.variant },
  { name: "seed", type: "BIGINT", doc: "run seed", get: (r) => r.manifest.seed },
  {
    name: "parent_hash",
    type: "VARCHAR",
    doc: "hash of the run whose final weights this run started from (`init_from`; NULL: seeded init)",
    get: (r) => Object.values(r.manifest.hash_inputs?.parent ?? {})[0] ?? null,
  },
  {
    name: "backend",
    type: "VARCHAR",
    doc: "concrete tfjs backend the run was hashed for",
    get: (r) => r.manifest.config.backend,
  },
  {
    name: "status",
    type: "VARCHAR",
    doc: "queued | running | completed | failed | interrupted (status.json)",
    get: (r) => r.status.status,
  },
  { name: "val_loss", type: "DOUBLE", doc: "final validation loss (nats/token)", get: (r) => r.summary?.val_loss },
  {
    name: "val_ppl",
    type: "DOUBLE",
    doc: "final validation perplexity, exp(val_loss)",
    get: (r) => r.summary?.val_ppl,
  },
  {
    name: "final_train_loss",
    type: "DOUBLE",
    doc: "training loss at the last step",
    get: (r) => r.summary?.final_train_loss,
  },
  {
    name: "steps_done",
    type: "INTEGER",
    doc: "optimizer steps completed (while running: the last step in status.json)",
    get: (r) => r.summary?.steps_done ?? r.status.step,
  },
  {
    name: "steps_this_attempt",
    type: "INTEGER",
    doc: "steps trained by the last process (less after a resume)",
    get: (r) => r.summary?.steps_this_attempt,
  },
  { name: "tokens_seen", type: "BIGINT", doc: "training tokens consumed", get: (r) => r.summary?.tokens_seen },
  { name: "params", type: "BIGINT", doc: "trainable parameters", get: (r) => r.summary?.params },
  {
    name: "flops_per_token",
    type: "DOUBLE",
    doc: "FLOPs per token as the trainer counts them (summary.json)",
    get: (r) => r.summary?.flops_per_token,
  },
  {
    name: "tokens_per_sec",
    type: "DOUBLE",
    doc: "measured training throughput",
    get: (r) => r.summary?.tokens_per_sec,
  },
  {
    name: "prefill_tokens_per_sec",
    type: "DOUBLE",
    doc: "measured inference speed, batch 1: prompt tokens/s of one forward pass over a seq_len prompt (no KV cache)",
    get: (r) => r.summary?.prefill_tokens_per_sec,
  },
  {
    name: "decode_tokens_per_sec",
    type: "DOUBLE",
    doc: "measured inference speed, batch 1: greedy-decoded tokens/s (each step re-runs its context; no KV cache)",
    get: (r) => r.summary?.decode_tokens_per_sec,
  },
  { name: "wall_s", type: "DOUBLE", doc: "wall-clock seconds of the run", get: (r) => r.summary?.wall_s },
  {
    name: "resumed_from_step",
    type: "INTEGER",
    doc: "step the last attempt resumed from (NULL: fresh start)",
    get: (r) => r.summary?.resumed_from_step,
  },
  {
    name: "failure_step",
    type: "INTEGER",
    doc: "step of the failure (failed runs)",
    get: (r) => r.summary?.failure?.step,
  },
  {
    name: "failure_reason",
    type: "VARCHAR",
    doc: "why the run failed (NaN loss, exception message)",
    get: (r) => r.summary?.failure?.reason,
  },
  {
    name: "failure_last_good_loss",
    type: "DOUBLE",
    doc: "last finite training loss before the failure",
    get: (r) => r.summary?.failure?.last_good_loss,
  },
  {
    name: "created_at",
    type: "TIMESTAMP",
    doc: "when the run was planned (manifest), UTC",
    get: (r) => r.manifest.created_at,
  },
  {
    name: "started_at",
    type: "TIMESTAMP",
    doc: "when training started (status.json), UTC",
    get: (r) => r.status.started_at,
  },
  {
    name: "finished_at",
    type: "TIMESTAMP",
    doc: "when training ended (status.json), UTC",
    get: (r) => r.status.finished_at,
  },
  {
    name: "git_commit",
    type: "VARCHAR",
    doc: "git commit of the code that trained the run",
    get: (r) => r.manifest.env.git_commit,
  },
  {
    name: "git_dirty",
    type: "BOOLEAN",
    doc: "whether the work tree had uncommitted changes",
    get: (r) => r.manifest.env.git_dirty,
  },
  { name: "tfjs", type: "VARCHAR", doc: "tfjs version", get: (r) => r.manifest.env.tfjs },
  { name: "deno", type: "VARCHAR", doc: "Deno version", get: (r) => r.manifest.env.deno },
  { name: "cpu", type: "VARCHAR", doc: "CPU model", get: (r) => r.manifest.env.cpu },
  { name: "hostname", type: "VARCHAR", doc: "machine that trained the run", get: (r) => r.manifest.env.hostname },
  {
    name: "attempts",
    type: "INTEGER",
    doc: "training attempts started (attempts.jsonl; NULL: not counted when ingested)",
    get: (r) => r.attempts,
  },
  {
    name: "config_json",
    type: "VARCHAR",
    doc: "the full resolved RunConfig as JSON",
    get: (r) => JSON.stringify(r.manifest.config),
  },
];

/** Names of the fixed `runs` columns, lower-cased (DuckDB identifiers are case-insensitive). */
export const FIXED_RUN_COLUMN_NAMES: ReadonlySet<string> = new Set(RUN_COLUMNS.map((c) => c.name));

/** Double-quotes an SQL identifier. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Single-quotes an SQL string literal. */
export function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** Column types of the config leaves whose default is null (the default alone does not tell the type). */
const NULL_DEFAULT_TYPES: Readonly<Record<string, ColumnType>> = { data_path: "VARCHAR", data_max_tokens: "DOUBLE" };

/**
 * The config columns every run has, declared with the table (after the fixed columns): every leaf of the
 * default data, model and train sections, and `model_ffn_kind`. The FFN variants' options (an open set:
 * a new lib/models/ffn/<kind>.ts needs no schema change) and keys of other configs are added as runs
 * bring them; a leaf whose default is null and whose type is not listed above is left to that too.
 */
export function configColumns(): { name: string; type: ColumnType }[] {
  const defaults = { data: DEFAULT_DATA, model: { ...DEFAULT_MODEL, ffn: { kind: "dense" } }, train: DEFAULT_TRAIN };
  const out: { name: string; type: ColumnType }[] = [];
  for (const [name, v] of flattenConfig(defaults, { skip: FIXED_RUN_COLUMN_NAMES })) {
    const type = v.type ?? NULL_DEFAULT_TYPES[name];
    if (type) out.push({ name, type });
  }
  return out;
}

/** The columns of the `claims` table (the ledger's rows, lib/report/claims.ts `CLAIM_COLUMNS`), in order. */
export const CLAIMS_TABLE: readonly (readonly [string, ColumnType])[] = [
  ["claim", "VARCHAR"],
  ["paper", "VARCHAR"],
  ["experiment", "VARCHAR"],
  ["variant", "VARCHAR"],
  ["baseline", "VARCHAR"],
  ["metric", "VARCHAR"],
  ["scale", "VARCHAR"],
  ["d_model", "INTEGER"],
  ["tokens", "BIGINT"],
  ["params", "BIGINT"],
  ["effect", "DOUBLE"],
  ["effect_unit", "VARCHAR"],
  ["ci_low", "DOUBLE"],
  ["ci_high", "DOUBLE"],
  ["n_seeds", "INTEGER"],
  ["status", "VARCHAR"],
  ["verdict", "VARCHAR"],
  ["statement", "VARCHAR"],
];

/** Fixed `runs` columns added after schema version 1 was released: added to older files in place. */
const ADDED_COLUMNS = ["prefill_tokens_per_sec", "decode_tokens_per_sec", "parent_hash", "attempts"];

/** The DDL that creates the fixed schema (idempotent). */
export function schemaDdl(): string[] {
  // No PRIMARY KEY on runs.hash: ingest keeps it unique (delete, then insert) without an index to maintain.
  const runCols = RUN_COLUMNS.map((c) => `${ident(c.name)} ${c.type}`);
  const config = configColumns();
  return [
    `CREATE TABLE IF NOT EXISTS finelab_meta (key VARCHAR PRIMARY KEY, value VARCHAR)`,
    `CREATE TABLE IF NOT EXISTS experiments (id VARCHAR PRIMARY KEY, description VARCHAR, module VARCHAR, ` +
    `n_runs INTEGER, updated_at TIMESTAMP)`,
    `CREATE TABLE IF NOT EXISTS runs (${[...runCols, ...config.map((c) => `${ident(c.name)} ${c.type}`)].join(", ")})`,
    // Fixed columns added since schema version 1 (older files get them at the end; rows are written by name).
    ...ADDED_COLUMNS.map((n) => {
      const c = RUN_COLUMNS.find((x) => x.name === n)!;
      return `ALTER TABLE runs ADD COLUMN IF NOT EXISTS ${ident(c.name)} ${c.type}`;
    }),
    // Declared config columns a file written before they were declared lacks (ingest used to add them).
    ...config.map((c) => `ALTER TABLE runs ADD COLUMN IF NOT EXISTS ${ident(c.name)} ${c.type}`),
    `CREATE TABLE IF NOT EXISTS metrics (hash VARCHAR NOT NULL, step INTEGER NOT NULL, split VARCHAR NOT NULL, ` +
    `name VARCHAR NOT NULL, value DOUBLE)`,
    `CREATE TABLE IF NOT EXISTS run_metrics (hash VARCHAR NOT NULL, name VARCHAR NOT NULL, value DOUBLE)`,
    `CREATE TABLE IF NOT EXISTS experiment_runs (experiment VARCHAR NOT NULL, hash VARCHAR NOT NULL, ` +
    `run_id VARCHAR NOT NULL, scale VARCHAR)`,
    `CREATE TABLE IF NOT EXISTS claims (${CLAIMS_TABLE.map(([n, t]) => `${n} ${t}`).join(", ")})`,
    `CREATE OR REPLACE VIEW current_runs AS
SELECT r.*, e.scale FROM runs r JOIN experiment_runs e ON r.hash = e.hash AND r.experiment = e.experiment`,
    `CREATE OR REPLACE VIEW variant_stats AS
SELECT experiment, variant,
  count(*)::INTEGER AS n_runs,
  count(*) FILTER (WHERE status = 'completed')::INTEGER AS n_completed,
  count(*) FILTER (WHERE status = 'failed')::INTEGER AS n_failed,
  avg(val_loss) FILTER (WHERE status = 'completed') AS val_loss_mean,
  stddev_samp(val_loss) FILTER (WHERE status = 'completed') AS val_loss_std,
  avg(val_ppl) FILTER (WHERE status = 'completed') AS val_ppl_mean,
  stddev_samp(val_ppl) FILTER (WHERE status = 'completed') AS val_ppl_std
FROM current_runs GROUP BY experiment, variant`,
    // Every ancestor of each run through init_from chains (depth 1 = the parent), as far as the runs table reaches.
    `CREATE OR REPLACE VIEW run_ancestry AS
WITH RECURSIVE a(hash, ancestor, depth) AS (
  SELECT hash, parent_hash, 1 FROM runs WHERE parent_hash IS NOT NULL
  UNION ALL
  SELECT a.hash, r.parent_hash, a.depth + 1 FROM a JOIN runs r ON r.hash = a.ancestor
  WHERE r.parent_hash IS NOT NULL AND a.depth < 64)
SELECT hash, ancestor, depth FROM a`,
    `INSERT OR IGNORE INTO finelab_meta VALUES ('schema_version', '${SCHEMA_VERSION}')`,
  ];
}

/** A flattened config leaf: its column type (null when the value is null) and value. */
export interface FlatValue {
  type: "DOUBLE" | "BOOLEAN" | "VARCHAR" | null;
  value: number | boolean | string | null;
}

/**
 * Flattens a config object into `path_joined_by_underscore -> FlatValue`.
 * Objects recurse; arrays become JSON text; numbers DOUBLE; booleans BOOLEAN; strings VARCHAR;
 * null/undefined a typeless NULL. Throws when two paths map to the same column name.
 */
export function flattenConfig(config: unknown, opts: { skip?: ReadonlySet<string> } = {}): Map<string, FlatValue> {
  const out = new Map<string, FlatValue>();
  const origin = new Map<string, string>();
  const visit = (value: unknown, path: string[]) => {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) visit(v, [...path, k]);
      return;
    }
    const name = path.join("_");
    if (opts.skip?.has(name.toLowerCase())) return;
    const key = name.toLowerCase();
    const dotted = path.join(".");
    const prev = origin.get(key);
    if (prev !== undefined) {
      throw new Error(`config keys "${prev}" and "${dotted}" both map to the column "${name}"; rename one of them`);
    }
    origin.set(key, dotted);
    out.set(name, leaf(value));
  };
  visit(config, []);
  return out;
}

function leaf(value: unknown): FlatValue {
  if (value === null || value === undefined) return { type: null, value: null };
  if (typeof value === "number") return { type: "DOUBLE", value };
  if (typeof value === "boolean") return { type: "BOOLEAN", value };
  if (typeof value === "string") return { type: "VARCHAR", value };
  if (Array.isArray(value)) return { type: "VARCHAR", value: JSON.stringify(value) };
  if (typeof value === "bigint") return { type: "DOUBLE", value: Number(value) };
  return { type: "VARCHAR", value: String(value) };
}

/** Type of a column that received values of types `a` and `b`: equal types stay, mixed types widen to VARCHAR. */
export function mergeType(
  a: FlatValue["type"],
  b: FlatValue["type"],
): FlatValue["type"] {
  if (a === null) return b;
  if (b === null || a === b) return a;
  return "VARCHAR";
}

/** The flattened config of a record, without the columns that duplicate fixed ones (experiment, variant, seed, backend). */
export function flatConfigOf(r: RunRecord): Map<string, FlatValue> {
  try {
    return flattenConfig(r.manifest.config, { skip: FIXED_RUN_COLUMN_NAMES });
  } catch (e) {
    throw new Error(`run ${r.manifest.hash}: ${(e as Error).message}`);
  }
}

/** The Markdown table of the fixed `runs` columns (kept verbatim in lib/store/README.md; a test checks it). */
export function runColumnsMarkdown(): string {
  const rows = RUN_COLUMNS.map((c) => `| \`${c.name}\` | ${c.type} | ${c.doc.replaceAll("|", "\\|")} |`);
  return ["| column | type | meaning |", "| --- | --- | --- |", ...rows].join("\n") + "\n";
}
