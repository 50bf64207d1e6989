/**
 * dense-bpe --scale tiny end to end through the CLI: the BPE dataset is built (trained
 * tokenizer, shards), the runs train with vocab_size 2048 from the dataset, the results
 * are stored and plotted, and --verify retrains them bit-identically.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../lib/util/paths.ts";
import { cli as run, ok } from "../lib/cli/faults/helpers.ts";

const experiments = `${REPO_ROOT}/experiments`;

/** `finelab <args>` with the task's permissions on `results`; asserts exit 0 and returns stdout and stderr. */
async function cli(results: string, args: string[]): Promise<string> {
  const o = ok(await run(results, args, { experiments }), args.join(" "));
  return o.stdout + o.stderr;
}

/** The JSON rows `deno task query ... --format json` prints on stdout. */
async function query(results: string, sql: string): Promise<Record<string, number>[]> {
  return JSON.parse(ok(await run(results, ["query", sql, "--format", "json"], { experiments })).stdout);
}

Deno.test({
  name: "dense-bpe --scale tiny: trains on gutenberg-bpe2k, stores, plots, and --verify is bit-identical",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const results = await Deno.makeTempDir({ prefix: "finelab-bpe-" });
    try {
      const first = await cli(results, ["exp", "dense-bpe", "--scale", "tiny", "--backend", "cpu", "--plain"]);
      assert.match(first, /2 runs: 2 trained/);
      const verify = await cli(results, [
        "exp",
        "dense-bpe",
        "--scale",
        "tiny",
        "--backend",
        "cpu",
        "--plain",
        "--verify",
      ]);
      assert.match(verify, /verify: 2\/2 runs bit-identical/);
      const rows = await query(
        results,
        "SELECT model_vocab_size AS v, val_loss FROM runs WHERE experiment = 'dense-bpe' ORDER BY run_id",
      );
      assert.equal(rows.length, 2);
      for (const r of rows) {
        assert.equal(r.v, 2048, "vocab_size comes from the dataset");
        // 8 tiny steps stay near the loss of a uniform 2048-way softmax (7.62); a 256-token model would be near 5.55
        assert.ok(Math.abs(r.val_loss - Math.log(2048)) < 0.5, `val_loss ${r.val_loss} near ln(2048)`);
      }
      const plots = [];
      for await (const e of Deno.readDir(join(results, "plots", "dense-bpe"))) plots.push(e.name);
      assert.ok(plots.some((p) => p.endsWith(".svg") || p.endsWith(".png")), plots.join());
    } finally {
      await Deno.remove(results, { recursive: true });
    }
  },
});
