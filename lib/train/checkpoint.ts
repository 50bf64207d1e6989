/**
 * Resumable checkpoints of a run, under `<run dir>/checkpoints/`:
 *
 * ```text
 * step-000050/            periodic (the newest 2 are kept; all are removed once final/ exists)
 *   model.safetensors     parameters by their stable names (lib/models/transformer.ts), F32
 *   optimizer.safetensors AdamW moments: `<param>.exp_avg` (m) and `<param>.exp_avg_sq` (v), F32;
 *                         metadata {"step": "<optimizer step count>"}
 *   state.json            CheckpointState: step, optimizer step, RNG state, data position,
 *                         metrics so far, tokens seen, wall time, sha256 of both files, config,
 *                         and the sha256 of its own canonical JSON (a flipped digit is caught too)
 * final/                  same layout, written after the last step
 * .tmp-*                  a checkpoint being written (or left by a crash): never read
 * ```
 *
 * A checkpoint is written into a `.tmp-*` directory, every file fsynced, then renamed into place,
 * so a directory named `step-*` or `final` is always complete. Loading re-hashes both files
 * against state.json and checks format, config and tensor names/shapes; anything that fails is
 * skipped with a warning (an older checkpoint is used, else training starts fresh), never loaded.
 *
 * @module
 */
import { writeSynced } from "../util/fs.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import canonicalize from "canonicalize";
import type { RunConfig } from "../core/config.ts";
import type { MetricRow } from "../core/records.ts";
import type { ParamSpec } from "../models/ffn/types.ts";
import type { AdamWState } from "./optim.ts";
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from "./safetensors.ts";
import { faultPoint } from "../util/fault.ts";

/** Bumped when the checkpoint layout changes; other versions are not loaded. v2: state.json carries its own sha256. */
export const CHECKPOINT_FORMAT_VERSION = 2;
const MODEL_FILE = "model.safetensors", OPT_FILE = "optimizer.safetensors", STATE_FILE = "state.json";

/** `state.json` of a checkpoint. */
export interface CheckpointState {
  format: "finelab-checkpoint";
  format_version: number;
  /** Optimizer steps completed; training resumes at this (0-based) step. */
  step: number;
  /** AdamW's update count (equals step). */
  optimizer_step: number;
  /** State of the trainer's Rng (lib/util/rng.ts) after `step` steps. */
  rng_state: number;
  /** Position in the training data: the next batch is trainBatch(train, seed, data_position). */
  data_position: number;
  tokens_seen: number;
  /** Wall time spent in training loops so far, over all attempts. */
  wall_s: number;
  /** Training loss of the last completed step (null before the first). */
  last_train_loss: number | null;
  /** All metric rows logged up to `step`. */
  metrics: MetricRow[];
  /** sha256 hex of the other files, by file name. */
  files: Record<string, string>;
  /** sha256 hex of this state's canonical JSON (RFC 8785) without this field. */
  sha256: string;
  /** The run config the checkpoint belongs to (a different config is not resumed). */
  config: RunConfig;
  final: boolean;
  created_at: string;
}

/** Everything needed to continue training or to use the weights. */
export interface Checkpoint {
  dir: string;
  state: CheckpointState;
  /** Parameters by name. */
  weights: Map<string, { shape: number[]; data: Float32Array }>;
  optimizer: AdamWState;
}

/** What to write. */
export interface CheckpointPayload {
  state: Omit<CheckpointState, "files" | "format" | "format_version" | "created_at" | "sha256">;
  specs: readonly ParamSpec[];
  weights: ReadonlyMap<string, { data: Float32Array }>;
  optimizer: AdamWState;
}

/** Directory name of the periodic checkpoint after `step` steps (`step-000123`). */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(6, "0")}`;
}

const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

/** sha256 of a state's canonical JSON without its `sha256` field. */
function stateDigest(state: Omit<CheckpointState, "sha256"> & { sha256?: string }): string {
  const { sha256: _, ...rest } = state;
  return sha256(canonicalize(rest)!);
}

async function syncDir(path: string): Promise<void> {
  try {
    const d = await Deno.open(path, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch { /* not every platform can fsync a directory */ }
}

/**
 * Writes checkpoint `name` (`step-000123` or `final`) atomically under `<runDir>/checkpoints/`
 * and returns its directory. An existing checkpoint of the same name is replaced.
 */
export async function saveCheckpoint(runDir: string, name: string, payload: CheckpointPayload): Promise<string> {
  const root = join(runDir, "checkpoints");
  await Deno.mkdir(root, { recursive: true });
  const tmp = join(root, `.tmp-${name}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
  await Deno.mkdir(tmp);
  try {
    const model: [string, SafeTensor][] = payload.specs.map((s) => {
      const w = payload.weights.get(s.name);
      if (!w) throw new Error(`checkpoint: no weights for ${s.name}`);
      return [s.name, { dtype: "F32", shape: s.shape, data: w.data }];
    });
    const opt: [string, SafeTensor][] = [];
    for (const s of payload.specs) {
      opt.push([`${s.name}.exp_avg`, { dtype: "F32", shape: s.shape, data: payload.optimizer.m.get(s.name)! }]);
      opt.push([`${s.name}.exp_avg_sq`, { dtype: "F32", shape: s.shape, data: payload.optimizer.v.get(s.name)! }]);
    }
    const meta = { format: "finelab", step: String(payload.state.step) };
    const modelBytes = encodeSafetensors(model, meta);
    const optBytes = encodeSafetensors(opt, { ...meta, step: String(payload.optimizer.step) });
    await writeSynced(join(tmp, MODEL_FILE), modelBytes);
    faultPoint("ckpt.model");
    await writeSynced(join(tmp, OPT_FILE), optBytes);
    faultPoint("ckpt.optimizer");
    const body = JSON.parse(JSON.stringify({
      format: "finelab-checkpoint",
      format_version: CHECKPOINT_FORMAT_VERSION,
      ...payload.state,
      files: { [MODEL_FILE]: sha256(modelBytes), [OPT_FILE]: sha256(optBytes) },
      created_at: new Date().toISOString(),
    })); // exactly what the file will hold, so the digest matches what is read back
    const state: CheckpointState = { ...body, sha256: stateDigest(body) };
    await writeSynced(join(tmp, STATE_FILE), new TextEncoder().encode(JSON.stringify(state, null, 1) + "\n"));
    await syncDir(tmp);
    faultPoint("ckpt.state");
    const dest = join(root, name);
    let old: string | null = null;
    try {
      await Deno.stat(dest);
      old = join(root, `.tmp-old-${name}-${crypto.randomUUID().slice(0, 8)}`);
      await Deno.rename(dest, old);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    await Deno.rename(tmp, dest);
    await syncDir(root);
    faultPoint("ckpt.renamed");
    if (old) await Deno.remove(old, { recursive: true });
    return dest;
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** Options of {@link loadCheckpoint}. */
export interface LoadOptions {
  /** When given, the checkpoint must belong to this config. */
  config?: RunConfig;
  /** When given, the weights and moments must have exactly these names and shapes. */
  specs?: readonly ParamSpec[];
}

/** Loads and fully verifies one checkpoint directory; throws an Error saying what is wrong. */
export async function loadCheckpoint(dir: string, opts: LoadOptions = {}): Promise<Checkpoint> {
  const state = JSON.parse(await Deno.readTextFile(join(dir, STATE_FILE))) as CheckpointState;
  if (state?.format !== "finelab-checkpoint" || state.format_version !== CHECKPOINT_FORMAT_VERSION) {
    throw new Error(
      `state.json has format ${state?.format} v${state?.format_version}, expected v${CHECKPOINT_FORMAT_VERSION}`,
    );
  }
  if (stateDigest(state) !== state.sha256) throw new Error("state.json does not match its own sha256 (altered)");
  const bytes: Record<string, Uint8Array> = {};
  for (const f of [MODEL_FILE, OPT_FILE]) {
    const want = state.files?.[f];
    if (!want) throw new Error(`state.json has no sha256 for ${f}`);
    bytes[f] = await Deno.readFile(join(dir, f));
    const got = sha256(bytes[f]);
    if (got !== want) throw new Error(`${f} has sha256 ${got.slice(0, 12)}…, state.json says ${want.slice(0, 12)}…`);
  }
  if (opts.config && canonicalize(opts.config) !== canonicalize(state.config)) {
    throw new Error("it was written for a different run config");
  }
  const model = decodeSafetensors(bytes[MODEL_FILE]).tensors;
  const opt = decodeSafetensors(bytes[OPT_FILE]).tensors;
  const asF32 = (t: SafeTensor | undefined, what: string) => {
    if (!t || t.dtype !== "F32") throw new Error(`${what} is missing or not F32`);
    return t.data as Float32Array;
  };
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  const m = new Map<string, Float32Array>(), v = new Map<string, Float32Array>();
  for (const [name, t] of model) {
    weights.set(name, { shape: t.shape, data: asF32(t, `${MODEL_FILE}: ${name}`) });
    m.set(name, asF32(opt.get(`${name}.exp_avg`), `${OPT_FILE}: ${name}.exp_avg`));
    v.set(name, asF32(opt.get(`${name}.exp_avg_sq`), `${OPT_FILE}: ${name}.exp_avg_sq`));
  }
  if (opts.specs) {
    if (opts.specs.length !== model.size) {
      throw new Error(`it has ${model.size} tensors, the model has ${opts.specs.length}`);
    }
    for (const s of opts.specs) {
      const w = weights.get(s.name);
      if (!w) throw new Error(`it lacks parameter ${s.name}`);
      if (w.shape.join() !== s.shape.join()) {
        throw new Error(`${s.name} has shape [${w.shape}], the model has [${s.shape}]`);
      }
    }
  }
  return { dir, state, weights, optimizer: { step: state.optimizer_step, m, v } };
}

/** Names of complete checkpoints, newest first (`final` first, then `step-*` by step). */
export async function listCheckpoints(runDir: string): Promise<string[]> {
  const root = join(runDir, "checkpoints"), steps: string[] = [];
  let hasFinal = false;
  try {
    for await (const e of Deno.readDir(root)) {
      if (!e.isDirectory) continue;
      if (e.name === "final") hasFinal = true;
      else if (/^step-\d+$/.test(e.name)) steps.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  steps.sort((a, b) => Number(b.slice(5)) - Number(a.slice(5)));
  return hasFinal ? ["final", ...steps] : steps;
}

/**
 * The newest checkpoint that verifies, or null. Invalid ones are reported through `warn` and
 * skipped (they are left on disk for inspection).
 */
export async function findLatestCheckpoint(
  runDir: string,
  opts: LoadOptions & { warn?: (message: string) => void } = {},
): Promise<Checkpoint | null> {
  for (const name of await listCheckpoints(runDir)) {
    const dir = join(runDir, "checkpoints", name);
    try {
      return await loadCheckpoint(dir, opts);
    } catch (e) {
      opts.warn?.(`ignoring checkpoint ${dir}: ${(e as Error).message}`);
    }
  }
  return null;
}

/** Keeps the newest `keep` periodic checkpoints (or none with keep = 0); `final` is never removed. */
export async function pruneCheckpoints(runDir: string, keep: number): Promise<void> {
  const steps = (await listCheckpoints(runDir)).filter((n) => n !== "final");
  for (const name of steps.slice(keep)) await Deno.remove(join(runDir, "checkpoints", name), { recursive: true });
}

/** Removes `.tmp-*` leftovers of interrupted writes (call only while holding the run's lock). */
export async function removeTempCheckpoints(runDir: string): Promise<string[]> {
  const root = join(runDir, "checkpoints"), removed: string[] = [];
  try {
    for await (const e of Deno.readDir(root)) {
      if (e.name.startsWith(".tmp-")) {
        await Deno.remove(join(root, e.name), { recursive: true });
        removed.push(e.name);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return removed;
}

/** Verified final weights of a finished run (`<runDir>/checkpoints/final/`), e.g. to upcycle from. */
export async function loadFinalWeights(runDir: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const dir = join(runDir, "checkpoints", "final");
  try {
    return (await loadCheckpoint(dir)).weights;
  } catch (e) {
    throw new Error(`cannot load final weights from ${dir}: ${(e as Error).message}`);
  }
}
