/**
 * Deterministic fault injection, for the fault suite (lib/cli/faults/) and for anyone who wants to
 * see what finelab does when a process dies at a given moment.
 *
 * `FINELAB_FAULT=<spec>[,<spec>...]`, each spec `[<action>@]<point>:<n>`, makes the process act the
 * n-th time (1-based, counted per process) it reaches the named point:
 *
 * - `kill` (the default action): SIGKILL itself, so nothing after the point runs (no finally, no
 *   signal handler, no flush);
 * - `enospc`: throw the error a full disk gives (`code: "ENOSPC"`), as if the write at that point failed;
 * - `nan`: make {@link faultNaN} return true (the trainer then poisons that step's gradients with NaN);
 * - `hang`: block forever (a stuck process that still holds its locks), until it is killed.
 *
 * Example: `FINELAB_FAULT=ckpt.state:2 deno task exp dense-baseline` dies with the second checkpoint's
 * files written into its temp directory but not yet renamed into place.
 *
 * When the variable is unset every hook is one null check: the points stay in production code at no cost.
 *
 * @module
 */

/** The named points, and what has happened when the process reaches them. */
export const FAULT_POINTS = {
  "fs.rename": "atomicWrite: a file is written and fsynced under its temp name, not yet renamed over the target",
  "run.manifest": "runner: manifest.json and config.yaml written, status.json not yet",
  "train.step": "trainer: a training step (forward, backward, AdamW update) is done and logged",
  "train.eval": "trainer: a validation pass is done and logged",
  "train.grad": "trainer: gradients of a step are about to be computed (action nan makes them NaN)",
  "train.loss": "trainer: a step's loss is about to be read (action nan makes it +Infinity)",
  "ckpt.model": "checkpoint: model.safetensors written into the checkpoint's temp dir",
  "ckpt.optimizer": "checkpoint: optimizer.safetensors written into the temp dir",
  "ckpt.state": "checkpoint: state.json written, every file fsynced, temp dir not yet renamed into place",
  "ckpt.renamed": "checkpoint: renamed into place, older checkpoints not yet pruned",
  "run.metrics": "runner: metrics.jsonl written, summary.json not yet",
  "run.summary": "runner: summary.json written, the final status.json (with checksums) not yet",
  "run.status": "runner: the final status.json written, the run's lock not yet released",
  "exp.plan": "exp: the plan file written, nothing ingested into DuckDB yet",
  "db.delete": "DuckDB ingest: old rows of the runs deleted inside the open transaction",
  "db.append": "DuckDB ingest: runs rows appended inside the open transaction, metrics not yet",
  "db.commit": "DuckDB ingest: every row appended, COMMIT not yet run",
  "db.committed": "DuckDB ingest: committed, the database not yet closed",
  "db.swap": "db rebuild: the new database file is complete beside the old one, not yet renamed over it",
  "exp.ingested": "exp: results ingested, plots not yet drawn",
} as const;

/** A point name. */
export type FaultPoint = keyof typeof FAULT_POINTS;

/** What a fault does when its point is reached. */
export type FaultAction = "kill" | "enospc" | "nan" | "hang";

/** One parsed spec of `FINELAB_FAULT`. */
export interface FaultSpec {
  action: FaultAction;
  point: FaultPoint;
  /** Fires at this (1-based) visit of the point. */
  n: number;
}

/** Parses a `FINELAB_FAULT` value; throws an Error naming the bad spec and the accepted form. */
export function parseFaults(value: string): FaultSpec[] {
  const out: FaultSpec[] = [];
  for (const raw of value.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(?:(kill|enospc|nan|hang)@)?([a-z.]+):([1-9]\d*)$/.exec(raw);
    if (!m || !(m[2] in FAULT_POINTS)) {
      throw new Error(
        `FINELAB_FAULT: bad spec ${JSON.stringify(raw)}; expected [kill|enospc|nan|hang@]<point>:<n> with n >= 1 ` +
          `and point one of: ${Object.keys(FAULT_POINTS).join(", ")}`,
      );
    }
    out.push({ action: (m[1] ?? "kill") as FaultAction, point: m[2] as FaultPoint, n: Number(m[3]) });
  }
  return out;
}

function fromEnv(): FaultSpec[] | null {
  let v: string | undefined;
  try {
    v = Deno.env.get("FINELAB_FAULT");
  } catch {
    return null; // no env permission for it: faults off
  }
  return v ? parseFaults(v) : null;
}

/** Active specs (null when FINELAB_FAULT is unset: every hook returns at once). */
let specs: FaultSpec[] | null = fromEnv();
const visits = new Map<FaultPoint, number>();

/** Replaces the active faults (tests of this module); `null` turns them off. Resets the visit counts. */
export function setFaults(value: string | null): void {
  specs = value ? parseFaults(value) : null;
  visits.clear();
}

/** Counts a visit of `point` and returns the spec that fires on it, if any. */
function visit(point: FaultPoint): FaultSpec | null {
  const n = (visits.get(point) ?? 0) + 1;
  visits.set(point, n);
  return specs!.find((s) => s.point === point && s.n === n) ?? null;
}

/** Ends the process the way a crash or `kill -9` does. */
function die(point: FaultPoint, n: number): never {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`\nFINELAB_FAULT: SIGKILL at ${point}:${n}\n`));
  } catch { /* stderr closed */ }
  try {
    Deno.kill(Deno.pid, "SIGKILL");
  } catch { /* no permission to signal: exit just as abruptly (no finally blocks run either) */ }
  Deno.exit(137);
}

/** Blocks the process for good (it keeps its locks and open files, like a process stuck in I/O). */
function hang(point: FaultPoint, n: number): never {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`\nFINELAB_FAULT: hanging at ${point}:${n}\n`));
  } catch { /* stderr closed */ }
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(cell, 0, 0);
}

/** Acts on a fired spec: kill, hang or throw ENOSPC (nan is the caller's business). */
function act(s: FaultSpec): void {
  if (s.action === "kill") die(s.point, s.n);
  if (s.action === "hang") hang(s.point, s.n);
  if (s.action === "enospc") throw enospcError(s.point);
}

/** The error a full disk gives, marked as simulated. */
export function enospcError(point: string): Error {
  return Object.assign(
    new Error(`No space left on device (os error 28), simulated by FINELAB_FAULT at ${point}`),
    { code: "ENOSPC" },
  );
}

/**
 * A fault point: does nothing unless FINELAB_FAULT names it; then, at the n-th visit, SIGKILLs the
 * process (kill), blocks it (hang) or throws an ENOSPC error (enospc).
 */
export function faultPoint(point: FaultPoint): void {
  if (specs === null) return;
  const s = visit(point);
  if (s) act(s);
}

/** Like {@link faultPoint}, and true when a `nan@<point>:<n>` spec fires at this visit. */
export function faultNaN(point: FaultPoint): boolean {
  if (specs === null) return false;
  const s = visit(point);
  if (!s) return false;
  act(s);
  return s.action === "nan";
}
