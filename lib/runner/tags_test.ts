import assert from "node:assert/strict";
import { addTags, checkTag, readTags, syncTags, TAG_MAX, TagError, tagsByHash } from "./tags.ts";
import { openStore } from "../store/mod.ts";

Deno.test("checkTag: letters, digits, . _ -, starting with a letter or digit, 1-64 characters", () => {
  for (const good of ["lr-probe", "A.b_c-1", "x".repeat(TAG_MAX), "0"]) checkTag(good);
  for (const bad of ["", "x".repeat(TAG_MAX + 1), "a b", "a/b", "-a", ".a", "a'b", "é"]) {
    assert.throws(() => checkTag(bad), TagError, JSON.stringify(bad));
  }
});

Deno.test("addTags: appends new associations once, several tags per run, torn lines skipped", async () => {
  const cache = await Deno.makeTempDir();
  try {
    const runs = [{ hash: "a".repeat(64), experiment: "e", run_id: "v/s0" }, {
      hash: "b".repeat(64),
      experiment: "e",
      run_id: "v/s1",
    }];
    assert.equal((await addTags({ cache }, "t1", runs)).length, 2);
    assert.equal((await addTags({ cache }, "t1", runs)).length, 0, "already tagged: nothing appended");
    assert.equal((await addTags({ cache }, "t2", runs.slice(0, 1))).length, 1);
    await Deno.writeTextFile(`${cache}/tags.jsonl`, '{"hash": "torn', { append: true });
    assert.equal((await readTags({ cache })).length, 3);
    assert.equal((await addTags({ cache }, "t3", runs.slice(1))).length, 1, "appended after the torn line");
    assert.deepEqual((await tagsByHash({ cache })).get("a".repeat(64)), ["t1", "t2"]);
    assert.deepEqual((await tagsByHash({ cache })).get("b".repeat(64)), ["t1", "t3"]);
    await assert.rejects(() => addTags({ cache }, "bad tag", runs), TagError);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("syncTags: copies the tags file into run_tags; an unchanged file is not rewritten, a changed one is", async () => {
  const cache = await Deno.makeTempDir();
  const store = await openStore(`${cache}/results.duckdb`);
  try {
    const runs = [{ hash: "a".repeat(64), experiment: "e", run_id: "v/s0" }];
    await addTags({ cache }, "t1", runs);
    await syncTags(store, { cache });
    const rows = async () => (await store.query("SELECT hash, tag FROM run_tags ORDER BY tag")).rows;
    assert.deepEqual(await rows(), [{ hash: "a".repeat(64), tag: "t1" }]);
    // Unchanged file: nothing written (a row removed behind its back stays removed).
    await store.query("DELETE FROM run_tags");
    await syncTags(store, { cache });
    assert.deepEqual(await rows(), []);
    // A new tag changes the file: the table is rewritten from it, whole.
    await addTags({ cache }, "t2", runs);
    await syncTags(store, { cache });
    assert.deepEqual(await rows(), [{ hash: "a".repeat(64), tag: "t1" }, { hash: "a".repeat(64), tag: "t2" }]);
    assert.equal((await store.query("SELECT count(*)::INTEGER AS n FROM tagged_runs")).rows[0].n, 0, "no such run");
  } finally {
    await store.close();
    await Deno.remove(cache, { recursive: true });
  }
});
