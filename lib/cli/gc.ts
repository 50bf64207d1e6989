/**
 * `deno task gc [--yes] [--unplanned]`: shows (by default) or removes what the run cache no longer needs
 * (see lib/runner/gc.ts), then rebuilds the database from what is left.
 *
 * @module
 */
import { applyGc, planGc } from "../runner/gc.ts";
import { formatBytes } from "../runner/memory.ts";
import { formatResult } from "../store/format.ts";
import type { QueryResult } from "../store/result.ts";
import type { ProjectPaths } from "../util/paths.ts";
import { rebuildFromCache } from "../runner/results.ts";

/** Runs `gc`: a dry run unless `yes`. */
export async function cmdGc(opts: { paths: ProjectPaths; yes?: boolean; unplanned?: boolean }): Promise<void> {
  const items = await planGc(opts.paths.cache, { unplanned: opts.unplanned });
  const total = items.reduce((a, it) => a + it.bytes, 0);
  if (items.length === 0) {
    console.log(`nothing to collect in ${opts.paths.cache}`);
    return;
  }
  const table = {
    columns: ["experiment", "run_id", "hash", "reason", "size"].map((name) => ({ name, type: "VARCHAR" })),
    rows: items.map((it) => ({ ...it, size: formatBytes(it.bytes) })),
  } as unknown as QueryResult;
  console.log(formatResult(table, "table"));
  if (!opts.yes) {
    console.log(
      `dry run: ${items.length} items, ${
        formatBytes(total)
      } would be freed. Run \`deno task gc --yes\` to remove them.`,
    );
    return;
  }
  const freed = await applyGc(opts.paths.cache, items);
  await rebuildFromCache(opts.paths);
  console.log(`removed ${items.length} items, freed ${formatBytes(freed)}; ${opts.paths.db} rebuilt from the cache`);
}
