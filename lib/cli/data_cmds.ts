/**
 * `deno task data list|show|prepare|fetch <dataset>`: what is declared, what is cached
 * (sizes, token counts, hashes), building the token shards with a progress bar, and
 * downloading a dataset's declared files. `fetch` runs lib/cli/fetch_main.ts in a child
 * process whose only network permission is the dataset's declared hosts; nothing else
 * in finelab has network permission.
 *
 * @module
 */
import { join } from "node:path";
import { DEFAULT_DATA } from "../core/config.ts";
import {
  cacheBase,
  closeDataset,
  DataError,
  type DataManifest,
  datasetCacheDir,
  fetchDir,
  listDatasetIds,
  loadDataset,
  loadDefinition,
  specVocabSize,
} from "../data/mod.ts";
import { declaredHosts, fileUrl } from "../data/fetch.ts";
import type { ProjectPaths } from "../util/paths.ts";
import { progressBar } from "./progress.ts";
import { fetchName } from "../data/define.ts";

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

async function entrySize(dir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) if (e.isFile) n += (await Deno.stat(join(dir, e.name))).size;
  return n;
}

/** Cached entries (complete ones: with a manifest.json) of dataset `id`. */
async function cachedEntries(paths: ProjectPaths, id: string): Promise<{ dir: string; manifest: DataManifest }[]> {
  const base = join(paths.results, "data");
  const out: { dir: string; manifest: DataManifest }[] = [];
  try {
    for await (const e of Deno.readDir(base)) {
      if (!e.isDirectory || !e.name.startsWith(`${id}-`) || e.name.endsWith(".partial")) continue;
      const m = await Deno.readTextFile(join(base, e.name, "manifest.json")).then(JSON.parse, () => null);
      if (m?.dataset === id) out.push({ dir: join(base, e.name), manifest: m });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out;
}

/** `data list`: every dataset module with its source, tokenizer and cache state. */
export async function cmdDataList(opts: { paths: ProjectPaths }): Promise<void> {
  const rows = [["dataset", "source", "tokenizer", "vocab", "cached", "description"]];
  for (const id of await listDatasetIds(opts.paths.root)) {
    const { def } = await loadDefinition(id, opts.paths.root);
    const cached = await cachedEntries(opts.paths, id);
    rows.push([
      id,
      def.source.kind === "npm" ? `npm ${def.source.corpus}` : def.source.kind,
      def.tokenizer.kind,
      String(specVocabSize(def.tokenizer)),
      cached.length ? `${cached.length} entr${cached.length === 1 ? "y" : "ies"}` : "no",
      def.description,
    ]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => (i < r.length - 1 ? c.padEnd(w[i]) : c)).join("  ").trimEnd());
}

/** `data show <id>`: the declaration and every cached entry (tokens, sizes, hashes). */
export async function cmdDataShow(id: string, opts: { paths: ProjectPaths }): Promise<void> {
  const { def, dir } = await loadDefinition(id, opts.paths.root);
  console.log(`${id}: ${def.description}\n  module: ${join(dir, `${id}.ts`)}`);
  console.log(`  source: ${JSON.stringify(def.source)}`);
  console.log(`  split: val_fraction ${def.split.val_fraction}, seed ${def.split.seed}`);
  console.log(`  tokenizer: ${JSON.stringify(def.tokenizer)}`);
  console.log(`  documents_sha256 (pinned): ${def.documents_sha256 ?? "not pinned"}`);
  if (def.source.kind === "fetch") {
    const fdir = fetchDir(opts.paths.results, id);
    for (const f of def.source.files) {
      const have = await Deno.stat(join(fdir, fetchName(f))).then((s) => s.size, () => null);
      console.log(`  file ${fetchName(f)} <- ${fileUrl(f)}: ${have === null ? "not fetched" : `${mib(have)} fetched`}`);
    }
  }
  const want = await datasetCacheDir({ ...DEFAULT_DATA, dataset: id }, {
    root: opts.paths.root,
    cacheDir: opts.paths.results,
  })
    .catch(() => null);
  const entries = await cachedEntries(opts.paths, id);
  if (!entries.length) console.log(`  cached: no (\`deno task data prepare ${id}\` builds it)`);
  for (const { dir: d, manifest: m } of entries) {
    console.log(`  cached entry ${d}${d === want ? " (current)" : ""}`);
    console.log(`    manifest hash ${m.hash}; documents_sha256 ${m.documents_sha256}`);
    console.log(`    ${m.documents.length} documents; train ${m.train_tokens} / val ${m.val_tokens} tokens`);
    console.log(`    vocab ${m.vocab_size}; tokenizer ${m.tokenizer}; max_tokens ${m.max_tokens ?? "all"}`);
    console.log(`    on disk ${mib(await entrySize(d))}`);
  }
}

/** `data prepare <id>`: builds (or verifies) the token shards of the dataset, with progress. */
export async function cmdDataPrepare(
  id: string,
  opts: { paths: ProjectPaths; maxTokens?: number; plain?: boolean },
): Promise<void> {
  const bar = progressBar({ plain: opts.plain });
  const t0 = performance.now();
  try {
    const ds = await loadDataset({ ...DEFAULT_DATA, dataset: id, max_tokens: opts.maxTokens ?? null }, {
      root: opts.paths.root,
      cacheDir: opts.paths.results,
      log: (m) => console.error(m),
      progress: bar,
    });
    bar.stop();
    const m = ds.manifest;
    closeDataset(ds);
    console.log(
      `${id}: ${m.train_tokens} train / ${m.val_tokens} val tokens (vocab ${m.vocab_size}), manifest ${m.hash} ` +
        `(${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  } finally {
    bar.stop();
  }
}

/** `data fetch <id>`: downloads the declared files in a child allowed to reach only the declared hosts. */
export async function cmdDataFetch(id: string, opts: { paths: ProjectPaths; plain?: boolean }): Promise<void> {
  const { def } = await loadDefinition(id, opts.paths.root);
  if (def.source.kind !== "fetch") {
    console.log(`${id} has no files to fetch (its source is ${def.source.kind})`);
    return;
  }
  const base = cacheBase({ root: opts.paths.root, cacheDir: opts.paths.results })!;
  const dir = fetchDir(base, id);
  await Deno.mkdir(dir, { recursive: true });
  const hosts = declaredHosts(def.source.files);
  const child = new URL("./fetch_main.ts", import.meta.url).pathname;
  const args = [
    "run",
    "--no-prompt",
    `--allow-net=${hosts.join(",")}`,
    `--allow-read=${opts.paths.root},${dir}`,
    `--allow-write=${dir}`,
    "--allow-env=CI",
    child,
    opts.paths.root,
    dir,
    id,
    opts.plain ? "plain" : "bar",
  ];
  console.error(`data: fetching ${id} into ${dir} (network: ${hosts.join(", ")} only)`);
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "inherit" }).output();
  if (!out.success) throw new DataError(`fetching ${id} failed (see above); nothing unverified was kept`);
}
