/**
 * Planning: load an experiment module, expand it into runs, validate everything,
 * resolve the backend, and compute each run's hash and cache entry. Nothing trains here.
 *
 * @module
 */
import { resolve } from "node:path";
import { existsSync } from "node:fs";
import type { ConcreteBackend, RunConfig } from "../experiment/config.ts";
import { type Experiment, isExperiment } from "../experiment/define.ts";
import { expandRuns, type Expansion, type Overrides, type PlannedRun } from "../experiment/expand.ts";
import { ConfigError } from "../experiment/validate.ts";
import {
  type CodeGraph,
  hashValue,
  KEY_SCHEMA,
  lockedIntegrity,
  lockedVersion,
  moduleGraph,
} from "../experiment/hash.ts";
import type { DataManifest } from "../data/types.ts";
import { datasetManifest, validateData } from "../data/mod.ts";
import { resolveBackend } from "../backends/mod.ts";
import { loadFfn, validateModel } from "../models/mod.ts";
import { type EntryPaths, entryPaths } from "./cache.ts";
import type { HashInputs } from "./records.ts";
import type { ProjectPaths } from "../util/paths.ts";

/** A run with its identity. */
export interface HashedRun extends Omit<PlannedRun, "config"> {
  config: RunConfig;
  hash: string;
  hash_inputs: HashInputs;
  paths: EntryPaths;
}

/** Everything `exp` will do, before it does it. */
export interface Plan {
  experiment: Experiment;
  modulePath: string;
  scale: string;
  backend: { name: ConcreteBackend; reason: string };
  runs: HashedRun[];
  data: Map<string, DataManifest>;
  overrides: Expansion["overrides"];
}

/** Thrown when an experiment id or module is wrong (unknown id, no default export, ...). */
export class ExperimentError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ExperimentError";
  }
}

/** Ids of the experiments in `experiments/` (file names without .ts, tests excluded). */
export async function listExperiments(paths: ProjectPaths): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(paths.experiments)) {
      if (e.isFile && e.name.endsWith(".ts") && !e.name.endsWith("_test.ts") && !e.name.startsWith("_")) {
        out.push(e.name.slice(0, -3));
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** Imports `experiments/<id>.ts` and checks it default-exports a `defineExperiment(...)` whose id matches. */
export async function loadExperiment(
  id: string,
  paths: ProjectPaths,
): Promise<{ exp: Experiment; modulePath: string }> {
  const available = await listExperiments(paths);
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(id) || !available.includes(id)) {
    throw new ExperimentError(
      `Unknown experiment ${JSON.stringify(id)}. Available: ${available.join(", ") || "(none)"}.\n` +
        `An experiment is a module experiments/<id>.ts that default-exports defineExperiment({ id: "<id>", ... }).`,
    );
  }
  const modulePath = resolve(paths.experiments, `${id}.ts`);
  let mod: Record<string, unknown>;
  try {
    mod = await import(`file://${modulePath}`);
  } catch (e) {
    throw new ExperimentError(
      `Cannot load experiment module experiments/${id}.ts:\n  ${(e as Error).message.split("\n").join("\n  ")}\n` +
        `Fix the module (run \`deno check experiments/${id}.ts\` to see type errors) and run again.`,
    );
  }
  const exp = mod.default;
  if (!isExperiment(exp)) {
    throw new ExperimentError(
      `experiments/${id}.ts must \`export default defineExperiment({...})\` (from lib/experiment/mod.ts); ` +
        `its default export is ${exp === undefined ? "missing" : typeof exp}.`,
    );
  }
  if (exp.id !== id) {
    throw new ExperimentError(
      `experiments/${id}.ts declares id ${JSON.stringify(exp.id)}; the id must equal the file name (${id}).`,
    );
  }
  return { exp, modulePath };
}

/** Local modules an experiment imports outside lib/ (user helpers): part of its runs' code hash. */
async function userCode(modulePath: string, paths: ProjectPaths): Promise<CodeGraph> {
  const g = await moduleGraph(modulePath, { repoRoot: paths.root });
  const rel = modulePath.slice(paths.root.length + 1);
  const code: Record<string, string> = {};
  for (const [p, h] of Object.entries(g.code)) if (!p.startsWith("lib/") && p !== rel) code[p] = h;
  return { code, npm: [] };
}

/** The trainer's graph plus the FFN variant module actually used. */
async function codeFor(cfg: RunConfig, paths: ProjectPaths): Promise<CodeGraph> {
  const roots = [
    resolve(paths.root, "lib/train/mod.ts"),
    resolve(paths.root, `lib/models/ffn/${cfg.model.ffn.kind}.ts`),
  ];
  const graphs = await Promise.all(roots.map((r) => moduleGraph(r, { repoRoot: paths.root })));
  const code: Record<string, string> = {};
  const npm = new Set<string>();
  for (const g of graphs) {
    Object.assign(code, g.code);
    g.npm.forEach((p) => npm.add(p));
  }
  return { code, npm: [...npm].sort() };
}

/** Options of {@link makePlan}. */
export interface PlanOptions {
  paths: ProjectPaths;
  overrides?: Overrides;
}

/**
 * Expands and validates an experiment, resolves the backend, reads the data manifests
 * and hashes every run. Throws ConfigError listing every problem before anything trains.
 */
export async function makePlan(loaded: { exp: Experiment; modulePath: string }, opts: PlanOptions): Promise<Plan> {
  const { exp, modulePath } = loaded;
  const { paths } = opts;
  const expansion = expandRuns(exp, opts.overrides);

  // Shape checks that need the model and data layers (and the FFN variant modules).
  const problems: string[] = [];
  for (const r of expansion.runs) {
    const kind = r.config.model.ffn.kind;
    const p: string[] = [];
    if (!/^[a-z0-9_]+$/.test(kind) || !existsSync(resolve(paths.root, `lib/models/ffn/${kind}.ts`))) {
      p.push(`model.ffn.kind = ${JSON.stringify(kind)} is not an FFN variant (lib/models/ffn/<kind>.ts)`);
    } else {
      p.push(...validateModel(r.config.model));
      p.push(...(await loadFfn(kind)).validate(r.config.model));
    }
    p.push(...validateData(r.config.data));
    for (const x of p) problems.push(`${r.run_id}: ${x}`);
  }
  if (problems.length) throw new ConfigError(`Invalid experiment ${exp.id}`, [...new Set(problems)]);

  const requested = expansion.runs[0].config.backend;
  const backend = await resolveBackend(requested);
  const tfjs = await lockedVersion("@tensorflow/tfjs", { repoRoot: paths.root });
  const user = await userCode(modulePath, paths);

  const data = new Map<string, DataManifest>();
  const manifestByCfg = new Map<string, DataManifest>();
  const runs: HashedRun[] = [];
  for (const r of expansion.runs) {
    const config: RunConfig = { ...r.config, backend: backend.name };
    const dkey = JSON.stringify(config.data);
    let manifest = manifestByCfg.get(dkey);
    if (!manifest) {
      manifest = await datasetManifest(config.data, { root: paths.root, cacheDir: paths.results });
      manifestByCfg.set(dkey, manifest);
      data.set(manifest.hash, manifest);
    }
    const code = await codeFor(config, paths);
    const hash_inputs: HashInputs = {
      key_schema: KEY_SCHEMA,
      config,
      code: { ...code.code, ...user.code },
      deps: await lockedIntegrity(code.npm, { repoRoot: paths.root }),
      data: manifest.hash,
      backend: backend.name,
      tfjs,
      parent: {},
    };
    const hash = hashValue(hash_inputs);
    runs.push({ ...r, config, hash, hash_inputs, paths: entryPaths(paths.cache, hash) });
  }
  return { experiment: exp, modulePath, scale: expansion.scale, backend, runs, data, overrides: expansion.overrides };
}
