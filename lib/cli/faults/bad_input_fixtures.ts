/**
 * Fixtures and checks shared by the bad-input tests (bad_input_test.ts, disk_full_test.ts): a temp
 * folder of toy experiment modules (one valid, `ok`, and one per kind of bad module) and datasets,
 * and the checks that a failed command printed one short paragraph and stored nothing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliOptions, dbRows, entries, type Out } from "./helpers.ts";
import { REPO_ROOT } from "../../util/paths.ts";

const CORPUS = `${REPO_ROOT}/lib/cli/faults/testdata/corpus`;
const DEFINE = new URL("../../experiment/mod.ts", import.meta.url).href;

/** The valid toy experiment; `patch` is spliced into the spec (JS source, so NaN and Infinity work). */
function module(id: string, patch = "", data = `{ dataset: "file", path: ${JSON.stringify(CORPUS)} }`): string {
  return `import { defineExperiment } from ${JSON.stringify(DEFINE)};
export default defineExperiment({
  id: ${JSON.stringify(id)},
  description: "bad-input fixture",
  seeds: [0],
  backend: "wasm",
  data: ${data},
  model: { d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, seq_len: 16 },
  train: { steps: 4, batch_size: 2, warmup_steps: 1, eval_every: 2, eval_batches: 1, checkpoint_every: 2 },
  ${patch}
});
`;
}

/**
 * Writes the fixture modules (into `<tmp>/experiments`), datasets (`<tmp>/data`) and config files
 * (`<tmp>/bad.yaml`, `<tmp>/extra.yaml`) into a new temp folder; returns it and the CLI options
 * that point the CLI at it. The caller removes `tmp`.
 */
export function badInputFixtures(): { tmp: string; opts: CliOptions } {
  const TMP = Deno.makeTempDirSync({ prefix: "finelab-badinput-" });
  const MODS = join(TMP, "experiments");
  const DATA = join(TMP, "data");
  Deno.mkdirSync(MODS);
  Deno.mkdirSync(DATA);
  const files: Record<string, string> = {
    "ok.ts": module("ok"),
    "syntax.ts": module("syntax").replace("seeds: [0],", "seeds: [0,,"),
    "throws.ts": `throw new Error("cannot find the tokenizer config");\n`,
    "badimport.ts": `import "../../cli/faults/helpers/missing.ts";\n${module("badimport")}`,
    "nodefault.ts": `export const experiment = 1;\n`,
    "plain.ts": `export default { id: "plain", description: "x", seeds: [0] };\n`,
    "wrongid.ts": module("other"),
    "nanlr.ts": module("nanlr").replace("checkpoint_every: 2 }", "checkpoint_every: 2, lr: Number.NaN }"),
    "emptygrid.ts": module("emptygrid", `grid: { "train.lr": [] },`),
    "dupids.ts": module("dupids", `grid: { "train.lr": [0.001, 0.001] },`),
    "badbackend.ts": module("badbackend").replace(`backend: "wasm"`, `backend: "tpu" as "wasm"`),
    "badvariant.ts": module("badvariant", `variants: { "bad name": {} },`),
    "emptyfile.ts": module("emptyfile", "", `{ dataset: "file", path: ${JSON.stringify(join(DATA, "empty.txt"))} }`),
    "latin1.ts": module("latin1", "", `{ dataset: "file", path: ${JSON.stringify(join(DATA, "latin1"))} }`),
    "tiny.ts": module(
      "tiny",
      "",
      `{ dataset: "file", path: ${JSON.stringify(join(DATA, "tiny"))}, val_fraction: 0.5 }`,
    ),
    "nodata.ts": module("nodata", "", `{ dataset: "file", path: ${JSON.stringify(join(DATA, "absent.txt"))} }`),
    "nofiles.ts": module("nofiles", "", `{ dataset: "file", path: ${JSON.stringify(join(DATA, "nofiles"))} }`),
    "jsonl.ts": module("jsonl", "", `{ dataset: "file", path: ${JSON.stringify(join(DATA, "docs.jsonl"))} }`),
    "nopath.ts": module("nopath", "", `{ dataset: "file" }`),
  };
  for (const [name, text] of Object.entries(files)) Deno.writeTextFileSync(join(MODS, name), text);
  Deno.writeFileSync(join(DATA, "empty.txt"), new Uint8Array());
  Deno.mkdirSync(join(DATA, "latin1"));
  Deno.mkdirSync(join(DATA, "tiny"));
  Deno.mkdirSync(join(DATA, "nofiles"));
  for (let i = 0; i < 4; i++) {
    // "café" in Latin-1: 0xE9 is not valid UTF-8.
    Deno.writeFileSync(
      join(DATA, "latin1", `d${i}.txt`),
      new Uint8Array([...new TextEncoder().encode("caf"), 0xe9, 10]),
    );
    if (i < 2) Deno.writeTextFileSync(join(DATA, "tiny", `d${i}.txt`), "hi\n");
  }
  Deno.writeTextFileSync(join(DATA, "nofiles", "notes.md"), "# not a dataset\n");
  Deno.writeTextFileSync(join(DATA, "docs.jsonl"), '{"body": "the text is under another key"}\n{"body": "again"}\n');
  Deno.writeTextFileSync(join(TMP, "bad.yaml"), "train:\n  lr: [1, 2\n");
  Deno.writeTextFileSync(join(TMP, "extra.yaml"), "trainer:\n  lr: 0.1\n");
  return { tmp: TMP, opts: { experiments: MODS, extraRead: [TMP] } };
}

/** CLI arguments of `exp <id> --plain ...more`. */
export const exp = (id: string, ...more: string[]) => ["exp", id, "--plain", ...more];

/** Rows of a table (0 when there is no database at all). */
export async function countRows(results: string, table: string): Promise<number> {
  try {
    return (await dbRows(results, `SELECT count(*)::INTEGER AS n FROM ${table}`))[0].n as number;
  } catch (e) {
    if (/no results database/.test((e as Error).message)) return 0;
    throw e;
  }
}

/** Asserts that no rows were stored and no run finished in the cache. */
export async function assertNothingStored(results: string, what: string): Promise<void> {
  assert.equal(await countRows(results, "runs"), 0, `${what}: rows were stored`);
  for (const e of entries(results)) {
    const s = JSON.parse(await Deno.readTextFile(`${e}/status.json`).catch(() => "{}"));
    assert.ok(s.status !== "completed" && s.status !== "failed", `${what}: a run finished in ${e}`);
  }
}

/** Asserts that the error output is one short paragraph: no stack trace, not reported as a bug. */
export function assertOneParagraph(o: Out, what: string): void {
  assert.doesNotMatch(o.stderr, /^\s+at .*\.(ts|js):\d+/m, `${what}: a stack trace was printed:\n${o.stderr}`);
  assert.doesNotMatch(o.stderr, /looks like a bug/, `${what}: reported as a bug, not as bad input:\n${o.stderr}`);
  assert.ok(o.stderr.trim().split("\n").length <= 14, `${what}: the error is not short:\n${o.stderr}`);
}
