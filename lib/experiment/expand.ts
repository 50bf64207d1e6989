/**
 * Grid expansion: experiment + scale + overrides -> the list of resolved runs.
 * A sweep is a pure expansion into run configs, so resuming it is the same expansion
 * with finished runs skipped (no renumbering, no duplicates).
 *
 * @module
 */
import { parse as parseYaml } from "yaml";
import {
  type BackendName,
  BACKENDS,
  DEFAULT_DATA,
  DEFAULT_MODEL,
  DEFAULT_TRAIN,
  type RunConfig,
} from "../core/config.ts";
import type { ConfigPatch, Experiment, InitFrom, VariantPatch } from "./define.ts";
import { ConfigError, KNOWN_PATHS, nearest, show, unknownKeys, validateRunConfig } from "./validate.ts";

/** User overrides from the command line. */
export interface Overrides {
  /** Parsed `--config` YAML files, in order. */
  files?: { path: string; patch: ConfigPatch & { seeds?: number[]; backend?: BackendName }; slurm?: unknown }[];
  /** `--set path=value` pairs, in order. */
  sets?: string[];
  /** Scale preset name (default "default"). */
  scale?: string;
  /** Backend request (default: the experiment's, else "auto"). */
  backend?: BackendName;
}

/** One run of an expanded experiment (backend still as requested; the runner resolves `auto`). */
export interface PlannedRun {
  /** Human-readable id, unique within the experiment: `<variant>[/<k>=<v>...]/s<seed>`. */
  run_id: string;
  variant: string;
  /** Grid values of this run (dotted path -> value). */
  point: Record<string, unknown>;
  seed: number;
  /** The parent run this one starts from (from the variant's `init_from`), or null. */
  init_from: InitFrom | null;
  /** Resolved config with `backend` as requested (possibly "auto"). */
  config: Omit<RunConfig, "backend"> & { backend: BackendName };
}

/** Result of expanding an experiment. */
export interface Expansion {
  scale: string;
  runs: PlannedRun[];
  /** Resolved `--set` overrides as a patch (recorded for provenance). */
  overrides: Record<string, unknown>;
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** Deep merge of plain objects; arrays and scalars replace. Returns a new object. */
export function deepMerge<T>(base: T, patch: unknown): T {
  if (!isObj(patch)) return (patch === undefined ? structuredClone(base) : structuredClone(patch)) as T;
  const out: Record<string, unknown> = isObj(base) ? structuredClone(base) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    out[k] = isObj(v) && isObj(out[k]) ? deepMerge(out[k], v) : structuredClone(v);
  }
  return out as T;
}

/** Sets a dotted path on an object (creating objects on the way). */
export function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    if (!isObj(cur[k])) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]] = value;
}

/** Paths `--set` and `grid` accept besides data.*, model.*, train.*. */
const TOP_LEVEL = ["seeds", "backend"];

function checkPath(path: string, where: string): string | null {
  if (TOP_LEVEL.includes(path) || KNOWN_PATHS.includes(path) || /^model\.ffn\.[a-z0-9_]+$/.test(path)) return null;
  const hint = nearest(path, [...KNOWN_PATHS, ...TOP_LEVEL]);
  return `${where}: unknown key ${path}${hint ? ` (did you mean ${hint}?)` : ""}. ` +
    `Settable keys are data.*, model.*, model.ffn.<option>, train.*, seeds, backend.`;
}

/** A multirun value: `--set train.lr=1e-3,2e-3` sweeps the path over the values (a grid axis). */
export class Sweep {
  constructor(readonly values: unknown[]) {}
}

/** Splits `a,b,c` at commas outside brackets and quotes (null when there is no such comma). */
function splitTopLevel(raw: string): string[] | null {
  if (/^["'[{]/.test(raw)) return null; // a quoted string or a flow collection is one value
  const parts: string[] = [];
  let depth = 0, start = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) {
      parts.push(raw.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (parts.length === 0) return null;
  parts.push(raw.slice(start).trim());
  return parts;
}

/**
 * Parses `--set` strings (`train.lr=3e-4`, `model.ffn.kind=dense`, `seeds=[0,1,2]`).
 * Values are YAML scalars or flow collections, so `3e-4` is a number and `true` a boolean.
 * A comma-separated value (`train.lr=1e-3,2e-3`) is a {@link Sweep}: Hydra-style multirun, one grid axis.
 */
export function parseSets(sets: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) {
      problems.push(`--set ${show(s)} must have the form path=value, e.g. --set train.lr=3e-4`);
      continue;
    }
    const path = s.slice(0, eq).trim(), raw = s.slice(eq + 1).trim();
    const bad = checkPath(path, `--set ${path}`);
    if (bad) {
      problems.push(bad);
      continue;
    }
    const parseOne = (text: string): unknown => {
      let value: unknown = text === "" ? "" : parseYaml(text);
      if (typeof value === "string" && /^[+-]?\.?(nan|inf|infinity)$/i.test(value)) {
        // Spelled out so the error names the value given: Number("inf") would be NaN.
        value = /nan$/i.test(value) ? NaN : value.startsWith("-") ? -Infinity : Infinity;
      }
      return value;
    };
    const parts = splitTopLevel(raw);
    try {
      if (parts && parts.some((p) => p === "")) {
        problems.push(`--set ${path}=${raw}: a multirun list has an empty value (write a,b,c)`);
        continue;
      }
      if (parts && path === "backend") {
        problems.push(`--set backend=${raw}: the backend cannot be swept; run once per backend`);
        continue;
      }
      out[path] = parts ? (path === "seeds" ? parts.map(parseOne) : new Sweep(parts.map(parseOne))) : parseOne(raw);
    } catch (e) {
      problems.push(`--set ${path}: cannot parse value ${show(raw)}: ${(e as Error).message.split("\n")[0]}`);
      continue;
    }
  }
  if (problems.length) throw new ConfigError("Invalid --set override", problems);
  return out;
}

/** Reads and checks a `--config overrides.yaml` file (same keys as an experiment: data, model, train, seeds, backend). */
export async function readConfigFile(path: string): Promise<NonNullable<Overrides["files"]>[number]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new ConfigError(`Cannot read --config ${path}`, [`${(e as Error).message}. Check the path.`]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError(`--config ${path} is not valid YAML`, [(e as Error).message.split("\n")[0]]);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isObj(doc)) {
    throw new ConfigError(`--config ${path}`, ["the file must hold a mapping (data:, model:, train:, ...)"]);
  }
  // `slurm:` holds the Slurm executor's settings (lib/executor/slurm/settings.ts validates them).
  const { slurm, ...rest } = doc;
  const problems = Object.keys(rest).filter((k) => !["data", "model", "train", "seeds", "backend"].includes(k))
    .map((k) => `--config ${path}: unknown top-level key ${k} (allowed: data, model, train, seeds, backend, slurm)`);
  problems.push(...unknownKeys(rest, `--config ${path}`));
  if (problems.length) throw new ConfigError(`Invalid --config ${path}`, problems);
  return { path, patch: rest as ConfigPatch, ...(slurm === undefined ? {} : { slurm }) };
}

function fmtValue(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

/**
 * Expands an experiment into runs: variants x grid points x seeds, each a fully
 * resolved config. Validates everything and throws a {@link ConfigError} listing
 * every problem before anything trains.
 */
export function expandRuns(exp: Experiment, overrides: Overrides = {}): Expansion {
  const problems: string[] = [];
  const scaleName = overrides.scale ?? "default";
  const scales = exp.scales ?? {};
  if (scaleName !== "default" && !(scaleName in scales)) {
    throw new ConfigError(`Unknown scale for experiment ${exp.id}`, [
      `--scale ${scaleName} is not defined; available: ${
        ["default", ...Object.keys(scales)].filter((v, i, a) => a.indexOf(v) === i).join(", ")
      }`,
    ]);
  }
  const scale = scales[scaleName] ?? {};
  const sets = parseSets(overrides.sets ?? []);
  const files = overrides.files ?? [];
  // Multirun: each `--set path=a,b` is a grid axis (replacing the experiment's axis on that path).
  const sweeps: Record<string, unknown[]> = {};
  for (const [k, v] of Object.entries(sets)) {
    if (v instanceof Sweep) {
      sweeps[k] = v.values;
      delete sets[k];
    }
  }

  // Patches that are not variant-specific, for the unknown-key check.
  problems.push(...unknownKeys({ data: exp.data, model: exp.model, train: exp.train }, `experiment ${exp.id}`));
  problems.push(...unknownKeys(scale, `experiment ${exp.id} scale ${scaleName}`));
  const variants = exp.variants && Object.keys(exp.variants).length ? exp.variants : { base: {} };
  for (const [name, patch] of Object.entries(variants)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(name)) {
      problems.push(
        `variant name ${show(name)} must be letters, digits, _ . + - (it is part of run ids and file names)`,
      );
    }
    const { init_from, single_seed, ...vconfig } = patch as VariantPatch;
    problems.push(...unknownKeys(vconfig, `variant ${name}`));
    if (single_seed !== undefined && typeof single_seed !== "boolean") {
      problems.push(`variant ${name}: single_seed = ${show(single_seed)} must be true or false`);
    }
    if (init_from !== undefined) {
      if (typeof init_from !== "object" || init_from === null || typeof init_from.variant !== "string") {
        problems.push(`variant ${name}: init_from must be { variant: "<name>", experiment?: "<id>", seed?: <int> }`);
      } else if ((init_from.experiment ?? exp.id) === exp.id && init_from.variant === name) {
        problems.push(`variant ${name}: init_from names the variant itself`);
      } else if (init_from.seed !== undefined && !(Number.isInteger(init_from.seed) && init_from.seed >= 0)) {
        problems.push(`variant ${name}: init_from.seed = ${show(init_from.seed)} must be an integer >= 0`);
      }
    }
  }
  const grid = { ...exp.grid ?? {}, ...sweeps };
  for (const [path, values] of Object.entries(grid)) {
    const bad = checkPath(path, `grid`);
    if (bad) problems.push(bad);
    if (!Array.isArray(values) || values.length === 0) {
      problems.push(`grid ${path} must be a non-empty array of values`);
    }
  }

  let seeds = scale.seeds ?? exp.seeds;
  for (const f of files) if (f.patch.seeds) seeds = f.patch.seeds;
  if (sets.seeds !== undefined) seeds = sets.seeds as number[];
  if (!Array.isArray(seeds) || seeds.length === 0) {
    problems.push(`seeds = ${show(seeds)} must be a non-empty array of integers, e.g. [0, 1]`);
    seeds = [];
  }
  if (new Set(seeds).size !== seeds.length) problems.push(`seeds = ${show(seeds)} has duplicates`);

  let backend: BackendName = exp.backend ?? "auto";
  for (const f of files) if (f.patch.backend) backend = f.patch.backend;
  if (sets.backend !== undefined) backend = sets.backend as BackendName;
  if (overrides.backend) backend = overrides.backend;
  if (!["auto", ...BACKENDS].includes(backend)) {
    problems.push(`backend = ${show(backend)} is not one of: auto, ${BACKENDS.join(", ")}`);
  }
  if (problems.length) throw new ConfigError(`Invalid experiment ${exp.id}`, problems);

  // Cartesian product of the grid.
  const gridKeys = Object.keys(grid).sort();
  let points: Record<string, unknown>[] = [{}];
  for (const k of gridKeys) points = points.flatMap((p) => grid[k].map((v) => ({ ...p, [k]: v })));

  const base = {
    data: deepMerge(deepMerge(DEFAULT_DATA, exp.data), scale.data),
    // vocab_size 0: the dataset's, set when the run is planned (lib/runner/plan.ts)
    model: deepMerge(deepMerge({ ...DEFAULT_MODEL, vocab_size: 0 }, exp.model), scale.model),
    train: deepMerge(deepMerge(DEFAULT_TRAIN, exp.train), scale.train),
  };
  const runs: PlannedRun[] = [];
  const ids = new Set<string>();
  for (const [variant, vpatch] of Object.entries(variants)) {
    for (const point of points) {
      const { init_from: from, single_seed, ...vconfig } = vpatch as VariantPatch;
      // A parent that runs on one seed only is the parent of every seed's child.
      const parentPatch = from && (from.experiment ?? exp.id) === exp.id
        ? variants[from.variant] as VariantPatch
        : null;
      const init_from = from && from.seed === undefined && parentPatch?.single_seed
        ? { ...from, seed: seeds[0] }
        : from;
      for (const seed of single_seed ? seeds.slice(0, 1) : seeds) {
        let cfg: Record<string, unknown> = deepMerge(base, vconfig);
        for (const [k, v] of Object.entries(point)) setPath(cfg, k, structuredClone(v));
        for (const f of files) cfg = deepMerge(cfg, { data: f.patch.data, model: f.patch.model, train: f.patch.train });
        for (const k of Object.keys(sweeps)) setPath(cfg, k, structuredClone(point[k])); // --set beats --config
        for (const [k, v] of Object.entries(sets)) if (!TOP_LEVEL.includes(k)) setPath(cfg, k, v);
        const config = { experiment: exp.id, variant, seed, backend, ...cfg } as PlannedRun["config"];
        const pointId = Object.entries(point).map(([k, v]) => `${k.split(".").pop()}=${fmtValue(v)}`).join("/");
        const run_id = [variant, pointId, `s${seed}`].filter(Boolean).join("/");
        if (ids.has(run_id)) {
          problems.push(`duplicate run id ${run_id}: two variants or grid points resolve to the same id`);
        }
        ids.add(run_id);
        const bad = validateRunConfig({ ...config, backend: backend === "auto" ? "wasm" : backend } as RunConfig);
        for (const b of bad) problems.push(`${run_id}: ${b}`);
        runs.push({ run_id, variant, point, seed, config, init_from: init_from ?? null });
      }
    }
  }
  if (runs.length === 0) problems.push(`the experiment expands to no runs (empty grid or no seeds)`);
  if (problems.length) throw new ConfigError(`Invalid experiment ${exp.id}`, dedupe(problems));
  return { scale: scaleName, runs, overrides: sets };
}

function dedupe(xs: string[]): string[] {
  // The same bad base value shows up once per run: report it once, naming the runs it affects.
  const byMsg = new Map<string, string[]>();
  for (const x of xs) {
    const m = /^(\S+\/s\d+): (.*)$/.exec(x);
    const key = m ? m[2] : x;
    if (!byMsg.has(key)) byMsg.set(key, []);
    if (m) byMsg.get(key)!.push(m[1]);
  }
  return [...byMsg].map(([msg, runs]) =>
    runs.length === 0
      ? msg
      : runs.length === 1
      ? `${runs[0]}: ${msg}`
      : `${msg} (in ${runs.length} runs: ${runs.slice(0, 4).join(", ")}${runs.length > 4 ? ", ..." : ""})`
  );
}
