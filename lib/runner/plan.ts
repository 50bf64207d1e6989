/**
 * Planning: load an experiment module, expand it into runs, validate everything,
 * resolve the backend, and compute each run's hash and cache entry. Nothing trains here.
 *
 * @module
 */
import { isAbsolute, relative, resolve } from "node:path";
import { existsSync } from "node:fs";
import type { ConcreteBackend, FfnConfig, RunConfig } from "../core/config.ts";
import { type Experiment, isExperiment } from "../experiment/define.ts";
import { expandRuns, type Expansion, type Overrides, type PlannedRun } from "../experiment/expand.ts";
import { ConfigError } from "../experiment/validate.ts";
import { hashValue } from "../core/hash.ts";
import { type CodeGraph, KEY_SCHEMA, lockedIntegrity, lockedVersion, moduleGraph, runCode } from "./identity.ts";
import type { DataManifest } from "../data/types.ts";
import type { ProgressFn } from "../data/build.ts";
import { DataError, datasetManifest, FILE_DATASET, loadDefinition, specVocabSize, validateData } from "../data/mod.ts";
import { resolveBackend } from "../backends/mod.ts";
import { type FfnVariant, loadFfn, validateModel } from "../models/mod.ts";
import { budgetProblems } from "../models/budget.ts";
import { type EntryPaths, entryPaths } from "./cache.ts";
import type { HashInputs } from "../core/records.ts";
import { type ProjectPaths, toFileUrl } from "../util/paths.ts";

/** A run with its identity. */
export interface HashedRun extends Omit<PlannedRun, "config"> {
  config: RunConfig;
  hash: string;
  hash_inputs: HashInputs;
  paths: EntryPaths;
  /** The run this one starts from (`init_from`), trained before it; null for a fresh init. */
  parent: HashedRun | null;
}

/** Everything `exp` will do, before it does it. */
export interface Plan {
  experiment: Experiment;
  modulePath: string;
  scale: string;
  backend: { name: ConcreteBackend; reason: string };
  runs: HashedRun[];
  /** Parent runs of other experiments that this plan's runs start from (trained first, not part of the plan). */
  dependencies: HashedRun[];
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

/** How to show a path to the user: relative to the project root when inside it. */
function shown(path: string, paths: ProjectPaths): string {
  const rel = relative(paths.root, path);
  return rel.startsWith("..") || isAbsolute(rel) ? path : rel;
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
  const dir = shown(paths.experiments, paths);
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(id) || !available.includes(id)) {
    throw new ExperimentError(
      `Unknown experiment ${JSON.stringify(id)}. Available: ${available.join(", ") || "(none)"}.\n` +
        `An experiment is a module ${dir}/<id>.ts that default-exports defineExperiment({ id: "<id>", ... }); ` +
        `check the spelling, or create the module.`,
    );
  }
  const modulePath = resolve(paths.experiments, `${id}.ts`);
  const file = shown(modulePath, paths);
  let mod: Record<string, unknown>;
  try {
    mod = await import(toFileUrl(modulePath).href);
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split("\n")
      .filter((l) => l.trim() && !/^\s*at /.test(l)).slice(0, 6);
    throw new ExperimentError(
      `Cannot load experiment module ${file}: ${e instanceof Error ? e.name : "error"}:\n  ${msg.join("\n  ")}\n` +
        `Fix the module (\`deno check ${file}\` shows type errors) and run again. Nothing was trained.`,
    );
  }
  const exp = mod.default;
  if (!isExperiment(exp)) {
    throw new ExperimentError(
      `${file} must \`export default defineExperiment({...})\` (from lib/experiment/mod.ts); ` +
        `its default export is ${exp === undefined ? "missing" : exp === null ? "null" : `a plain ${typeof exp}`}. ` +
        `Wrap the declaration in defineExperiment and run again.`,
    );
  }
  if (exp.id !== id) {
    throw new ExperimentError(
      `${file} declares id ${JSON.stringify(exp.id)}; the id must equal the file name (${id}). ` +
        `Rename the file or change the id.`,
    );
  }
  return { exp, modulePath };
}

/** Local modules an experiment imports outside lib/ (user helpers): part of its runs' code hash. */
async function userCode(modulePath: string, paths: ProjectPaths): Promise<CodeGraph> {
  const g = await moduleGraph([modulePath], { repoRoot: paths.root });
  const rel = relative(paths.root, modulePath);
  const code: Record<string, string> = {};
  for (const [p, h] of Object.entries(g.code)) if (!p.startsWith("lib/") && p !== rel) code[p] = h;
  return { code, npm: [] };
}

/**
 * The FFN options with every default filled in (`kind` first), so a run's stored and hashed config is the
 * resolved one: `{kind: "finedeep"}` and `{kind: "finedeep", m: 4}` are the same run, and every option has
 * its column in the runs table.
 */
export function resolvedFfn(ffn: FfnConfig, variant: Pick<FfnVariant, "defaults">): FfnConfig {
  const { kind, ...options } = ffn;
  return { kind, ...variant.defaults, ...options } as FfnConfig;
}

/**
 * Sets `model.vocab_size` from the run's dataset when it is 0 (the default); a different explicit
 * value is a problem. Returns the problems (an unknown dataset id among them).
 */
async function fillVocabSize(r: PlannedRun, root: string, vocabs: Map<string, Promise<number>>): Promise<string[]> {
  const d = r.config.data;
  let vocab = 256;
  if (typeof d?.dataset === "string" && d.dataset !== FILE_DATASET) {
    // One definition load per dataset and plan, however many runs use it.
    let v = vocabs.get(d.dataset);
    if (!v) vocabs.set(d.dataset, v = loadDefinition(d.dataset, root).then((x) => specVocabSize(x.def.tokenizer)));
    try {
      vocab = await v;
    } catch (e) {
      if (e instanceof DataError) return [e.message];
      throw e;
    }
  }
  const m = r.config.model;
  if (m.vocab_size === 0) m.vocab_size = vocab;
  else if (m.vocab_size !== vocab) {
    return [
      `model.vocab_size = ${m.vocab_size} does not match the vocabulary of dataset ${JSON.stringify(d.dataset)} ` +
      `(${vocab}); leave it unset (0) to take the dataset's`,
    ];
  }
  return [];
}

/** Options of {@link makePlan}. */
export interface PlanOptions {
  paths: ProjectPaths;
  overrides?: Overrides;
  /** Progress of a dataset built while planning (BPE training, tokenising) and its log lines. */
  data?: { progress?: ProgressFn; log?: (m: string) => void };
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
  // Inputs shared by many runs (dataset definitions, FFN modules, the lock file) are read once per plan.
  const problems: string[] = [];
  const vocabs = new Map<string, Promise<number>>();
  const isKind = new Map<string, boolean>();
  const kindExists = (kind: string) => {
    if (!isKind.has(kind)) {
      isKind.set(kind, /^[a-z0-9_]+$/.test(kind) && existsSync(resolve(paths.root, `lib/models/ffn/${kind}.ts`)));
    }
    return isKind.get(kind)!;
  };
  for (const r of expansion.runs) {
    const kind = r.config.model.ffn.kind;
    const p: string[] = [...await fillVocabSize(r, paths.root, vocabs)];
    if (!kindExists(kind)) {
      p.push(`model.ffn.kind = ${JSON.stringify(kind)} is not an FFN variant (lib/models/ffn/<kind>.ts)`);
    } else {
      p.push(...validateModel(r.config.model));
      const variant = await loadFfn(kind);
      p.push(...variant.validate(r.config.model));
      if (p.length === 0) r.config.model.ffn = resolvedFfn(r.config.model.ffn, variant);
    }
    p.push(...validateData(r.config.data));
    for (const x of p) problems.push(`${r.run_id}: ${x}`);
  }
  if (problems.length) throw new ConfigError(`Invalid experiment ${exp.id}`, [...new Set(problems)]);
  if (exp.budget) {
    // Budget-matched experiments refuse a grid whose variants differ by more than the stated tolerance.
    const mismatch = await budgetProblems(expansion.runs, exp.budget);
    if (mismatch.length) throw new ConfigError(`Budget mismatch in experiment ${exp.id}`, mismatch);
  }

  const requested = expansion.runs[0].config.backend;
  const backend = await resolveBackend(requested);
  const tfjs = await lockedVersion("@tensorflow/tfjs", { repoRoot: paths.root });
  const user = await userCode(modulePath, paths);
  const codeByKind = new Map<string, Promise<CodeGraph>>();
  const depsByKind = new Map<string, Promise<Record<string, string>>>();

  const data = new Map<string, DataManifest>();
  const manifestByCfg = new Map<string, DataManifest>();
  const runs: HashedRun[] = [];
  const withParent: HashedRun[] = [];
  const tooSmall = new Set<string>();
  for (const r of expansion.runs) {
    const config: RunConfig = { ...r.config, backend: backend.name };
    const dkey = JSON.stringify(config.data);
    let manifest = manifestByCfg.get(dkey);
    if (!manifest) {
      manifest = await datasetManifest(config.data, { root: paths.root, cacheDir: paths.results, ...opts.data });
      manifestByCfg.set(dkey, manifest);
      data.set(manifest.hash, manifest);
    }
    // One sequence (seq_len + 1 tokens) per split is the least a batch needs: say so before anything trains.
    for (const [split, n] of [["training", manifest.train_tokens], ["validation", manifest.val_tokens]] as const) {
      if (n < config.model.seq_len + 1) {
        tooSmall.add(
          `the ${split} split of the dataset (data.dataset = ${JSON.stringify(config.data.dataset)}` +
            `${config.data.path ? `, data.path = ${JSON.stringify(config.data.path)}` : ""}) has ${n} tokens, ` +
            `fewer than one sequence of model.seq_len + 1 = ${config.model.seq_len + 1}. Use a larger dataset or ` +
            `data.max_tokens, a smaller model.seq_len, or a different data.val_fraction (now ${config.data.val_fraction})`,
        );
      }
    }
    const codeKey = `${config.model.ffn.kind}\0${backend.name}`;
    let codePromise = codeByKind.get(codeKey);
    if (!codePromise) {
      codePromise = runCode({ kind: config.model.ffn.kind, backend: backend.name }, { repoRoot: paths.root });
      codeByKind.set(codeKey, codePromise);
    }
    const code = await codePromise;
    let deps = depsByKind.get(codeKey);
    if (!deps) depsByKind.set(codeKey, deps = lockedIntegrity(code.npm, { repoRoot: paths.root }));
    const hash_inputs: HashInputs = {
      key_schema: KEY_SCHEMA,
      config,
      code: { ...code.code, ...user.code },
      deps: { ...await deps },
      data: manifest.hash,
      backend: backend.name,
      tfjs,
      parent: {},
    };
    if (r.init_from) {
      withParent.push({ ...r, config, hash: "", hash_inputs, paths: entryPaths(paths.cache, "0"), parent: null });
      continue;
    }
    const hash = hashValue(hash_inputs);
    runs.push({ ...r, config, hash, hash_inputs, paths: entryPaths(paths.cache, hash), parent: null });
  }
  if (tooSmall.size) throw new ConfigError(`Dataset too small for experiment ${exp.id}`, [...tooSmall]);
  const dependencies = await resolveParents(withParent, runs, { exp, scale: expansion.scale, backend, opts });
  const order = new Map(expansion.runs.map((r, i) => [r.run_id, i]));
  runs.sort((a, b) => order.get(a.run_id)! - order.get(b.run_id)!);
  return {
    experiment: exp,
    modulePath,
    scale: expansion.scale,
    backend,
    runs,
    dependencies,
    data,
    overrides: expansion.overrides,
  };
}

const samePoint = (a: Record<string, unknown>, b: Record<string, unknown>) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Hashes the runs that start from a parent run (`init_from`): the parent is a run of this plan or of
 * another experiment planned at the same scale and backend; its hash and lib/models/upcycle.ts join the
 * child's hash inputs. Returns the parents of other experiments (to train first). Unknown parents and
 * cycles are ConfigErrors naming the run.
 */
async function resolveParents(
  pending: HashedRun[],
  runs: HashedRun[],
  ctx: { exp: Experiment; scale: string; backend: { name: ConcreteBackend }; opts: PlanOptions },
): Promise<HashedRun[]> {
  const { paths } = ctx.opts;
  if (pending.length === 0) return [];
  const upcycleCode = await moduleGraph([resolve(paths.root, "lib/models/upcycle.ts")], { repoRoot: paths.root });
  const others = new Map<string, Plan>();
  const dependencies: HashedRun[] = [];
  const problems: string[] = [];
  let remaining = pending;
  while (remaining.length) {
    const next: HashedRun[] = [];
    for (const child of remaining) {
      const ref = child.init_from!;
      const pexp = ref.experiment ?? ctx.exp.id, pseed = ref.seed ?? child.seed;
      const what = `${child.run_id}: init_from ${pexp} variant ${ref.variant} seed ${pseed}`;
      let parent: HashedRun | undefined;
      if (pexp === ctx.exp.id) {
        const match = (r: HashedRun) => r.variant === ref.variant && r.seed === pseed;
        parent = runs.find((r) => match(r) && samePoint(r.point, child.point)) ?? runs.find(match);
        if (!parent) {
          if (remaining.some((r) => r !== child && match(r))) next.push(child); // its parent has a parent too
          else problems.push(`${what}: no such run in this experiment (check the variant name and seeds)`);
          continue;
        }
      } else {
        let plan = others.get(pexp);
        if (!plan) {
          let loaded;
          try {
            loaded = await loadExperiment(pexp, paths);
          } catch (e) {
            problems.push(`${what}: ${(e as Error).message.split("\n")[0]}`);
            continue;
          }
          const scale = ctx.scale in (loaded.exp.scales ?? {}) ? ctx.scale : "default";
          plan = await makePlan(loaded, { paths, overrides: { scale, backend: ctx.backend.name } });
          others.set(pexp, plan);
        }
        parent = plan.runs.find((r) => r.variant === ref.variant && r.seed === pseed);
        if (!parent) {
          problems.push(`${what}: experiment ${pexp} has no such run at scale ${plan.scale}`);
          continue;
        }
        for (const d of [...plan.dependencies, parent]) {
          if (!dependencies.some((x) => x.hash === d.hash)) dependencies.push(d);
        }
      }
      const hash_inputs: HashInputs = {
        ...child.hash_inputs,
        code: { ...child.hash_inputs.code, ...upcycleCode.code },
        parent: { [`${pexp}/${parent.run_id}`]: parent.hash },
      };
      const hash = hashValue(hash_inputs);
      runs.push({ ...child, hash, hash_inputs, paths: entryPaths(paths.cache, hash), parent });
    }
    if (problems.length) throw new ConfigError(`Invalid init_from in experiment ${ctx.exp.id}`, problems);
    if (next.length === remaining.length) {
      throw new ConfigError(`Invalid init_from in experiment ${ctx.exp.id}`, [
        `init_from forms a cycle among: ${next.map((r) => r.run_id).join(", ")}`,
      ]);
    }
    remaining = next;
  }
  return dependencies;
}
