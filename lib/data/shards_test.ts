import assert from "node:assert/strict";
import { join } from "node:path";
import { DataError } from "./normalize.ts";
import { dtypeFor, memoryTokens, ShardWriter, TokenStream } from "./shards.ts";
import { evalBatches, trainBatch } from "./batches.ts";
import { withTempDir } from "../util/testing.ts";

Deno.test("dtypeFor: the smallest type holding the vocabulary", () => {
  assert.equal(dtypeFor(256), "uint8");
  assert.equal(dtypeFor(257), "uint16");
  assert.equal(dtypeFor(65536), "uint16");
  assert.equal(dtypeFor(65537), "uint32");
  assert.throws(() => dtypeFor(2 ** 32 + 1), /does not fit the largest token dtype \(uint32\)/);
});

Deno.test("shards: windows across shard borders equal the array; batches equal the in-memory ones", async () => {
  await withTempDir("shards", async (dir) => {
    const ids = Uint16Array.from({ length: 10_007 }, (_, i) => (i * 7919) % 3000);
    const w = new ShardWriter(dir, "train", { dtype: "uint16", shardTokens: 1000 });
    await w.push(ids.subarray(0, 4321));
    await w.push(Array.from(ids.subarray(4321)));
    const split = await w.finish();
    assert.equal(split.shards.length, 11);
    assert.equal(split.tokens, ids.length);
    assert.equal(split.max_id, Math.max(...ids));
    const s = await TokenStream.open(dir, split);
    try {
      for (const [o, n] of [[0, 10], [995, 10], [999, 2002], [10_000, 7], [0, 10_007]]) {
        assert.deepEqual(Array.from(s.window(o, n)), Array.from(ids.subarray(o, o + n)), `${o}+${n}`);
      }
      assert.throws(() => s.window(10_000, 8), RangeError);
      const opts = { batchSize: 4, seqLen: 64 };
      for (let step = 0; step < 5; step++) {
        assert.deepEqual(trainBatch(s, 7, step, opts), trainBatch(ids, 7, step, opts));
      }
      assert.deepEqual(evalBatches(s, 3, opts), evalBatches(memoryTokens(ids), 3, opts));
    } finally {
      s.close();
    }
  });
});

Deno.test("shards: a flipped byte, a truncated shard or an id above max_id is refused on open", async () => {
  await withTempDir("shards", async (dir) => {
    const w = new ShardWriter(dir, "val", { dtype: "uint8", shardTokens: 100 });
    await w.push(Uint8Array.from({ length: 250 }, (_, i) => i % 200));
    const split = await w.finish();
    (await TokenStream.open(dir, split)).close();
    const p = join(dir, split.shards[1].file), good = await Deno.readFile(p);
    const bad = good.slice();
    bad[5] ^= 1;
    await Deno.writeFile(p, bad);
    await assert.rejects(
      TokenStream.open(dir, split),
      (e: unknown) => e instanceof DataError && /sha256/.test(e.message),
    );
    await Deno.writeFile(p, good.subarray(0, 50));
    await assert.rejects(TokenStream.open(dir, split), /has 50 bytes, expected 100/);
    await Deno.writeFile(p, good);
    await assert.rejects(TokenStream.open(dir, { ...split, max_id: 10 }), /has id \d+ > max_id 10/);
    await assert.rejects(
      new ShardWriter(dir, "x", { dtype: "uint8", shardTokens: 10 }).push([256]),
      /token id 256 does not fit uint8/,
    );
  });
});

Deno.test("training reads a token file larger than its memory cap (peak RSS of a child process)", async () => {
  // The corpus (uint16 shards) is 1.25x the cap; the child trains from windows of it and reports its VmHWM.
  const CAP = 320 * 2 ** 20, TOKENS = Math.ceil((1.25 * CAP) / 2), SHARD = 2 ** 24;
  await withTempDir("shards", async (dir) => {
    const w = new ShardWriter(dir, "train", { dtype: "uint16", shardTokens: SHARD });
    const chunk = Uint16Array.from({ length: 2 ** 20 }, (_, i) => (i * 2654435761) % 2048);
    for (let n = 0; n < TOKENS; n += chunk.length) await w.push(chunk.subarray(0, Math.min(chunk.length, TOKENS - n)));
    const train = await w.finish();
    const v = new ShardWriter(dir, "val", { dtype: "uint16", shardTokens: SHARD });
    await v.push(chunk.subarray(0, 50_000));
    const val = await v.finish();
    await Deno.writeTextFile(join(dir, "tokens.json"), JSON.stringify({ vocab_size: 2048, train, val }));
    let bytes = 0;
    for (const s of train.shards) bytes += (await Deno.stat(join(dir, s.file))).size;
    assert.ok(bytes > CAP, `token file ${bytes} B > cap ${CAP} B`);
    const child = new URL("./testdata/train_from_shards.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--allow-all", "--v8-flags=--max-old-space-size=256", child, dir],
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const r = JSON.parse(text.trim().split("\n").pop()!);
    assert.equal(r.steps, 3);
    assert.ok(Number.isFinite(r.loss), text);
    console.log(
      `token file ${(bytes / 2 ** 20).toFixed(0)} MiB, child peak RSS ${(r.vmhwm_bytes / 2 ** 20).toFixed(0)} MiB`,
    );
    assert.ok(r.vmhwm_bytes < CAP, `peak RSS ${r.vmhwm_bytes} B < cap ${CAP} B`);
  });
});
