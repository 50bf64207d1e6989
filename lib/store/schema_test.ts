import assert from "node:assert/strict";
import { configColumns, flattenConfig, ident, literal, mergeType, RUN_COLUMNS, runColumnsMarkdown } from "./schema.ts";

Deno.test("flattenConfig: paths joined by _, types inferred, arrays as JSON, nulls typeless", () => {
  const flat = flattenConfig({
    seed: 3,
    model: { d_model: 128, tie: true, ffn: { kind: "moe", sizes: [1, 2], nested: { deep: "x" } } },
    data: { path: null },
  }, { skip: new Set(["seed"]) });
  assert.deepEqual(Object.fromEntries(flat), {
    model_d_model: { type: "DOUBLE", value: 128 },
    model_tie: { type: "BOOLEAN", value: true },
    model_ffn_kind: { type: "VARCHAR", value: "moe" },
    model_ffn_sizes: { type: "VARCHAR", value: "[1,2]" },
    model_ffn_nested_deep: { type: "VARCHAR", value: "x" },
    data_path: { type: null, value: null },
  });
});

Deno.test("flattenConfig: two paths on one column name are rejected, naming both", () => {
  assert.throws(
    () => flattenConfig({ model: { ffn_kind: "a", ffn: { kind: "b" } } }),
    /config keys "model\.ffn_kind" and "model\.ffn\.kind" both map to the column "model_ffn_kind"/,
  );
});

Deno.test("mergeType: equal stays, null adopts, mixed widens to VARCHAR", () => {
  assert.equal(mergeType("DOUBLE", "DOUBLE"), "DOUBLE");
  assert.equal(mergeType(null, "BOOLEAN"), "BOOLEAN");
  assert.equal(mergeType("DOUBLE", null), "DOUBLE");
  assert.equal(mergeType("DOUBLE", "BOOLEAN"), "VARCHAR");
});

Deno.test("SQL quoting and the fixed run columns", () => {
  assert.equal(ident('we"ird'), '"we""ird"');
  assert.equal(literal("it's"), "'it''s'");
  assert.equal(RUN_COLUMNS[0].name, "hash");
  assert.equal(new Set(RUN_COLUMNS.map((c) => c.name)).size, RUN_COLUMNS.length);
});

Deno.test("README documents every fixed runs column, in order, with its type", async () => {
  const readme = await Deno.readTextFile(new URL("./README.md", import.meta.url));
  const section = readme.slice(readme.indexOf("### `runs`"), readme.indexOf("### `metrics`"));
  const documented = [...section.matchAll(/^\|\s*`(\w+)`\s*\|\s*(\w+)\s*\|/gm)].map((m) => `${m[1]} ${m[2]}`);
  // regenerate with runColumnsMarkdown() when a column changes
  assert.deepEqual(documented, RUN_COLUMNS.map((c) => `${c.name} ${c.type}`));
  assert.ok(runColumnsMarkdown().startsWith("| column | type | meaning |\n"));
});

Deno.test("schema: the data, model and train columns are declared with the table, typed from the defaults", async () => {
  const { openStore } = await import("./mod.ts");
  const dir = await Deno.makeTempDir();
  const store = await openStore(`${dir}/r.duckdb`);
  try {
    const cols = (await store.query("DESCRIBE runs")).rows.map((r) => [r.column_name, r.column_type]);
    const declared = configColumns();
    assert.ok(declared.length > 20, `${declared.length} config columns`);
    for (const c of [...RUN_COLUMNS, ...declared]) {
      assert.ok(cols.some(([n, t]) => n === c.name && t === c.type), c.name);
    }
    assert.deepEqual(
      declared.filter((c) => /^data_(path|max_tokens)$|^model_(d_model|ffn_kind)$|^train_lr$/.test(c.name)),
      [
        { name: "data_path", type: "VARCHAR" },
        { name: "data_max_tokens", type: "DOUBLE" },
        { name: "model_d_model", type: "DOUBLE" },
        { name: "model_ffn_kind", type: "VARCHAR" },
        { name: "train_lr", type: "DOUBLE" },
      ],
    );
    assert.equal(cols.length, RUN_COLUMNS.length + declared.length, "nothing else before any ingest");
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
