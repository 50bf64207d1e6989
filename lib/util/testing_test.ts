import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { assertSameBits, removeDirs, tempDir, withDir, withTempDir } from "./testing.ts";

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

Deno.test("assertSameBits: passes on equal float32 bits, names the first difference, tells -0 from 0 and lengths apart", () => {
  assertSameBits([1, 0.1, NaN], new Float32Array([1, 0.1, NaN]), "equal");
  assert.throws(
    () => assertSameBits([1, 2, 3, 4], [1, 2, 3.0000002, 5], "x"),
    /x: first difference at 2: 3 vs 3.0000002/,
  );
  assert.throws(() => assertSameBits([0], [-0], "zero"), /zero: first difference at 0/);
  assert.throws(() => assertSameBits([1, 2], [1], "len"), /len: lengths 2 vs 1/);
});
