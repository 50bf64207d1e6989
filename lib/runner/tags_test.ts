import assert from "node:assert/strict";
import { addTags, checkTag, readTags, TAG_MAX, TagError, tagsByHash } from "./tags.ts";

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
