/**
 * Child process of `deno task data fetch`: `fetch_main.ts <root> <dir> <dataset> [plain|bar]`.
 * It runs with network permission for the dataset's declared hosts only, and write
 * permission for its fetch folder only.
 *
 * @module
 */
import { loadDefinition } from "../data/define.ts";
import { fetchFiles } from "../data/fetch.ts";
import { DataError } from "../data/normalize.ts";
import { progressBar } from "./progress.ts";

const [root, dir, id, mode] = Deno.args;
const bar = progressBar({ plain: mode === "plain" });
try {
  const { def } = await loadDefinition(id, root);
  if (def.source.kind !== "fetch") throw new DataError(`${id} has no files to fetch`);
  const res = await fetchFiles(def.source.files, { dir, progress: bar, log: (m) => console.error(m) });
  bar.stop();
  for (const r of res) console.log(`${r.name}: ${r.status} (${r.bytes} bytes, sha256 verified)`);
} catch (e) {
  bar.stop();
  if (!(e instanceof DataError)) throw e;
  console.error(`error: ${e.message}`);
  Deno.exit(2);
}
