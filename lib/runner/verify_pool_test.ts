import assert from "node:assert/strict";
import { generateCache } from "../../bench/store_synth.ts";
import { verifyForStore, verifyPool } from "./verify_pool.ts";
import { entryNames } from "./cache.ts";

Deno.test("verifyPool: Workers verify as this thread does, in order; a damaged entry is reported", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finelab-verify-pool-" });
  const pool = verifyPool(5000, 2); // as many as make a rebuild use Workers
  try {
    await generateCache(dir, 9, { experiments: 2, steps: 30 });
    const cache = `${dir}/cache`;
    const names = await entryNames(cache);
    await Deno.writeTextFile(`${cache}/${names[3]}/config.yaml`, "# altered\n", { append: true });
    const inline: unknown[] = [];
    for (const n of names) inline.push(await verifyForStore(cache, n));
    const got = await pool.verify(cache, names);
    assert.deepEqual(got, inline);
    assert.equal(got.filter((v) => v.problems.length).length, 1);
    assert.match(got[3].problems.join(), /config\.yaml has sha256/);
    const ok = got.filter((v) => v.record);
    assert.equal(ok.length, 8);
    assert.ok(ok.every((v) => v.record!.attempts! >= 1 && !("code" in v.record!.manifest.hash_inputs)));
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});
