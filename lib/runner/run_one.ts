/**
 * Train exactly one run, named by its hash: the entry point of cluster array tasks and of any other engine
 * (`deno task exp --run <hash>`).
 *
 * A run is found through its *request* (`<results>/requests/<hash>.json`: the experiment id and the
 * overrides it was planned with), written when a sweep is planned to run (`exp`, `exp --executor slurm`, or
 * {@link writeRunRequests} from another engine). {@link runOne} plans that experiment again on the machine it
 * runs on and trains the run whose hash matches, so a node with other code, data or dependencies finds no
 * match and refuses instead of training something else under the hash. It never writes the database: the
 * collect step (or `db rebuild`) is the one writer.
 *
 * @module
 */
import { ExperimentError, type HashedRun, loadExperiment, makePlan, type Plan } from "./plan.ts";
import { type ExecuteOptions, executePlan, type RunOutcome } from "./execute.ts";
import { isFinished } from "./cache.ts";
import { isLocked, waitLock } from "./lock.ts";
import type { Overrides } from "../experiment/expand.ts";
import type { ProjectPaths } from "../util/paths.ts";

/** What `<results>/requests/<hash>.json` holds. */
export interface RunRequest {
  hash: string;
  run_id: string;
  /** The experiment whose plan contains the run (for a parent of another experiment: the child's). */
  experiment: string;
  /** The overrides the plan was made with; `backend` is the concrete backend it resolved to. */
  overrides: Overrides;
  created_at: string;
}

const HASH = /^[0-9a-f]{64}$/;

/** Path of a run's request file. */
export function requestPath(paths: ProjectPaths, hash: string): string {
  return `${paths.results}/requests/${hash}.json`;
}

/** Every run of a plan, its parents of other experiments and their ancestors, once each. */
export function planRuns(plan: Plan): HashedRun[] {
  const out = new Map<string, HashedRun>();
  const add = (r: HashedRun | null) => {
    for (; r && !out.has(r.hash); r = r.parent) out.set(r.hash, r);
  };
  for (const r of [...plan.dependencies, ...plan.runs]) add(r);
  return [...out.values()];
}

/**
 * Writes the request of every run of `plan` (atomically, one file per hash), so `runOne(hash)` can find it.
 * `overrides` are the ones the plan was made with.
 */
export async function writeRunRequests(plan: Plan, overrides: Overrides, paths: ProjectPaths): Promise<void> {
  const dir = `${paths.results}/requests`;
  await Deno.mkdir(dir, { recursive: true });
  const ov: Overrides = { ...overrides, scale: plan.scale, backend: plan.backend.name };
  for (const r of planRuns(plan)) {
    const req: RunRequest = {
      hash: r.hash,
      run_id: r.run_id,
      experiment: plan.experiment.id,
      overrides: ov,
      created_at: new Date().toISOString(),
    };
    const tmp = `${dir}/.${r.hash}.tmp-${crypto.randomUUID()}`;
    await Deno.writeTextFile(tmp, JSON.stringify(req, null, 2) + "\n");
    await Deno.rename(tmp, requestPath(paths, r.hash));
  }
}

/** Reads a run's request; an ExperimentError (exit 2) names what is wrong. */
export async function readRunRequest(hash: string, paths: ProjectPaths): Promise<RunRequest> {
  if (!HASH.test(hash)) {
    throw new ExperimentError(
      `--run ${JSON.stringify(hash)} is not a run hash (64 lowercase hex digits; \`deno task runs\` lists them).`,
    );
  }
  try {
    return JSON.parse(await Deno.readTextFile(requestPath(paths, hash))) as RunRequest;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new ExperimentError(
      `no run ${hash.slice(0, 12)} is planned in ${paths.results} (no ${requestPath(paths, hash)}). A run is ` +
        `planned by \`deno task exp <id>\` or \`--executor slurm\`; check FINELAB_RESULTS points at the same ` +
        `(shared) results folder as the machine that planned it.`,
    );
  }
}

/** Options of {@link runOne}. */
export type RunOneOptions = Pick<ExecuteOptions, "paths" | "progress" | "log" | "preempt">;

/**
 * Trains the run `hash` (or returns it from the cache when finished; waits when another process holds it).
 * Its parent must have finished; a parent being trained elsewhere is waited for.
 */
export async function runOne(hash: string, opts: RunOneOptions): Promise<RunOutcome> {
  const { paths } = opts;
  const log = opts.log ?? ((m: string) => console.error(m));
  const req = await readRunRequest(hash, paths);
  const plan = await makePlan(await loadExperiment(req.experiment, paths), { paths, overrides: req.overrides });
  const run = planRuns(plan).find((r) => r.hash === hash);
  if (!run) {
    throw new ExperimentError(
      `run ${req.run_id} (${hash.slice(0, 12)}) of experiment ${req.experiment} is not in the plan made on this ` +
        `machine: its code, data, dependencies or backend differ from the machine that planned it. Use the same ` +
        `checkout and \`deno install\` on every node, or plan the sweep again here.`,
    );
  }
  const parent = run.parent;
  if (parent && !(await isFinished(parent.paths)) && isLocked(parent.paths.lock)) {
    log(`${run.run_id}: its parent ${parent.run_id} is being trained by another process; waiting for it`);
    (await waitLock(parent.paths.lock))?.release();
  }
  const [outcome] = await executePlan({ ...plan, runs: [run], dependencies: [] }, { ...opts, log });
  return outcome;
}
