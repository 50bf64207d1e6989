import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { removeDirs, tempDir, withDir, withTempDir } from "./testing.ts";

Deno.test("withTempDir: a fresh folder named after the prefix, removed after fn returns; fn's value comes back", async () => {
  let seen = "";
  const value = await withTempDir("unit", async (dir) => {
    seen = dir;
    assert.match(dir, /\/finelab-unit-[^/]+$/);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "the folder is empty");
    await Deno.mkdir(`${dir}/a/b`, { recursive: true });
    await Deno.writeTextFile(`${dir}/a/b/f.txt`, "x");
    return 42;
  });
  assert.equal(value, 42);
  assert.ok(seen && !existsSync(seen), "the folder and its contents are gone");
});

Deno.test("withDir: the folder is removed when fn throws, and the error propagates", async () => {
  let seen = "";
  await assert.rejects(
    withDir(tempDir("unit-throw"), (dir) => {
      seen = dir;
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.ok(seen && !existsSync(seen));
});

Deno.test("removeDirs: removes several folders and ignores one already gone", async () => {
  const a = await tempDir("unit-a"), b = await tempDir("unit-b");
  await Deno.remove(b);
  await removeDirs(a, b);
  assert.equal(existsSync(a), false);
  const c = await tempDir("unit-c");
  assert.notEqual(c, a, "every call makes a new folder");
  await removeDirs(c);
});
