/**
 * Run tags (`deno task exp <id> --tag lr-probe`): names given to runs, for finding them again. A tag is
 * not part of a run's hash (the same config is the same cached result), so tagging a cached run records
 * the association without retraining, and a run can carry several tags.
 *
 * The cache holds them (the source of truth, so `db rebuild` restores them): `results/cache/tags.jsonl`,
 * one appended line `{hash, tag, experiment, run_id, at}` per association (a repeated association keeps
 * its first time). The database has them as the table `run_tags(hash, tag, experiment, run_id, tagged_at)`
 * and the view `tagged_runs` (every column of `runs` plus `tag` and `tagged_at`, one row per run and tag):
 * `SELECT run_id, val_loss FROM tagged_runs WHERE tag = 'lr-probe'`.
 *
 * @module
 */
import { sha256Hex } from "../core/hash.ts";
import type { Store } from "../store/mod.ts";
import type { ProjectPaths } from "../util/paths.ts";

/** Where the tags file is: the run cache folder. */
type CachePath = Pick<ProjectPaths, "cache">;

/** At most this many characters in a tag. */
export const TAG_MAX = 64;

/** A tag name that is empty, too long or has characters other than letters, digits, `.`, `_` and `-`. */
export class TagError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "TagError";
  }
}

/** Throws a {@link TagError} saying what is wrong unless `tag` is a valid tag name. */
export function checkTag(tag: string): void {
  const rule = `a tag is 1-${TAG_MAX} letters, digits, '.', '_' or '-', starting with a letter or digit ` +
    `(e.g. --tag lr-probe)`;
  if (tag.length === 0) throw new TagError(`empty tag: ${rule}`);
  if (tag.length > TAG_MAX) throw new TagError(`tag ${JSON.stringify(tag)} has ${tag.length} characters: ${rule}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(tag)) throw new TagError(`bad tag ${JSON.stringify(tag)}: ${rule}`);
}

/** One run-tag association. */
export interface RunTag {
  hash: string;
  tag: string;
  experiment: string;
  run_id: string;
  /** When it was first recorded (ISO 8601). */
  at: string;
}

function tagsFile(paths: CachePath): string {
  return `${paths.cache}/tags.jsonl`;
}

/** Every association in the cache, first record of each (hash, tag) pair; torn lines are skipped. */
export async function readTags(paths: CachePath): Promise<RunTag[]> {
  return parseTags(await readTagsText(paths));
}

async function readTagsText(paths: CachePath): Promise<string> {
  try {
    return await Deno.readTextFile(tagsFile(paths));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "";
    throw e;
  }
}

function parseTags(text: string): RunTag[] {
  const seen = new Map<string, RunTag>();
  for (const line of text.split("\n")) {
    let t: RunTag;
    try {
      t = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof t?.hash !== "string" || typeof t.tag !== "string") continue;
    const key = `${t.hash}\0${t.tag}`;
    if (!seen.has(key)) seen.set(key, t);
  }
  return [...seen.values()];
}

/** Records `tag` for these runs (those already carrying it are left as they are); returns the new associations. */
export async function addTags(
  paths: CachePath,
  tag: string,
  runs: { hash: string; experiment: string; run_id: string }[],
): Promise<RunTag[]> {
  checkTag(tag);
  const have = new Set((await readTags(paths)).filter((t) => t.tag === tag).map((t) => t.hash));
  const at = new Date().toISOString();
  const fresh = runs.filter((r, i) => !have.has(r.hash) && runs.findIndex((x) => x.hash === r.hash) === i)
    .map((r) => ({ hash: r.hash, tag, experiment: r.experiment, run_id: r.run_id, at }));
  if (fresh.length === 0) return [];
  await Deno.mkdir(paths.cache, { recursive: true });
  // A line torn by a crash must not swallow the first new one.
  const torn = await Deno.readTextFile(tagsFile(paths)).then((t) => t.length > 0 && !t.endsWith("\n"), () => false);
  // One append of whole lines: concurrent writers interleave lines, never parts of them.
  await Deno.writeTextFile(tagsFile(paths), (torn ? "\n" : "") + fresh.map((t) => JSON.stringify(t) + "\n").join(""), {
    append: true,
    create: true,
  });
  return fresh;
}

/** The tags of each run hash. */
export async function tagsByHash(paths: CachePath): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const t of await readTags(paths)) out.set(t.hash, [...out.get(t.hash) ?? [], t.tag]);
  return out;
}

const q = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * Makes the database's `run_tags` table and `tagged_runs` view match the cache's tags file (created when
 * missing). Nothing is written when the file is unchanged since the last sync (its sha256 is kept in
 * `finelab_meta` as `tags_digest`): an ingest that brings no new tag costs one read.
 */
export async function syncTags(store: Store, paths: CachePath): Promise<void> {
  const text = await readTagsText(paths);
  const digest = sha256Hex(text);
  const had = await store.query("SELECT value FROM finelab_meta WHERE key = 'tags_digest'");
  if (had.rows.length && had.rows[0].value === digest) return;
  const tags = parseTags(text);
  await store.query(
    "CREATE TABLE IF NOT EXISTS run_tags (hash VARCHAR NOT NULL, tag VARCHAR NOT NULL, experiment VARCHAR, " +
      "run_id VARCHAR, tagged_at VARCHAR, PRIMARY KEY (hash, tag))",
  );
  await store.query(
    "CREATE OR REPLACE VIEW tagged_runs AS SELECT r.*, t.tag, t.tagged_at FROM runs r JOIN run_tags t USING (hash)",
  );
  await store.query("DELETE FROM run_tags");
  if (tags.length) {
    const values = tags.map((t) => `(${[t.hash, t.tag, t.experiment, t.run_id, t.at].map(q).join(", ")})`);
    await store.query(`INSERT INTO run_tags VALUES ${values.join(", ")}`);
  }
  await store.query(`INSERT OR REPLACE INTO finelab_meta VALUES ('tags_digest', ${q(digest)})`);
}
