/**
 * `deno task claims` through the CLI: after `exp` the ledger row of the claim the experiment tests is in the
 * `claims` table, printed by the report and by `claims` (json, md); bad arguments exit 2 with one message.
 *
 * @module
 */
import assert from "node:assert/strict";
import { cleanup, cli, dbRows, ok, SUITE, tempResults } from "./faults/helpers.ts";
import { REPO_ROOT } from "../util/paths.ts";
import { CLAIMS_TABLE } from "../store/schema.ts";
import { CLAIM_COLUMNS } from "../report/claims.ts";

const EXPERIMENTS = `${REPO_ROOT}/lib/cli/testdata/claims_experiments`;

Deno.test("the claims table's columns are the ledger's", () => {
  assert.deepEqual(CLAIMS_TABLE.map(([n]) => n), [...CLAIM_COLUMNS]);
});

Deno.test({
  name: "claims: the ledger of a tiny experiment in the report, the table and `claims`; bad arguments exit 2",
  ...SUITE,
  fn: async () => {
    const r = await tempResults("claims");
    try {
      const empty = await cli(r, ["claims"], { experiments: EXPERIMENTS });
      assert.equal(empty.code, 2, empty.stderr);
      assert.match(empty.stderr, /no results database/);

      const exp = ok(await cli(r, ["exp", "finedeep-vs-dense", "--no-plot"], { experiments: EXPERIMENTS }), "exp");
      assert.match(exp.stdout, /claims ledger \(finedeep-vs-dense; deno task claims\):\n.*\n.*\nfinedeep-beats-dense/);

      const json = ok(await cli(r, ["claims", "--format", "json"], { experiments: EXPERIMENTS }), "claims");
      const rows = JSON.parse(json.stdout) as Record<string, unknown>[];
      assert.equal(rows.length, 1);
      const row = rows[0];
      assert.equal(row.claim, "finedeep-beats-dense");
      assert.equal(row.variant, "finedeep-L2");
      assert.equal(row.baseline, "dense-L2");
      assert.equal(row.n_seeds, 2);
      assert.equal(row.tokens, 4 * 2 * 16);
      assert.equal(row.d_model, 16);
      assert.ok((row.ci_low as number) <= (row.effect as number) && (row.effect as number) <= (row.ci_high as number));
      assert.match(String(row.verdict), /^(supported|not supported|inconclusive) at 128 tokens, d=16$/);

      const stored = await dbRows(r, "SELECT claim, variant, effect, verdict FROM claims");
      assert.deepEqual(stored, [{ claim: row.claim, variant: row.variant, effect: row.effect, verdict: row.verdict }]);

      const md = ok(
        await cli(r, ["claims", "--format", "md", "--claim", "finedeep-beats-dense"], {
          experiments: EXPERIMENTS,
        }),
      );
      assert.match(md.stdout, /^\| claim \| paper \| experiment \|/);
      assert.equal(ok(await cli(r, ["claims", "--claim", "dsmoe-ste", "--format", "json"])).stdout.trim(), "[]");

      for (
        const [args, msg] of [
          [["claims", "--claim", "nope"], /unknown claim "nope"; declared claims: finedeep-beats-dense/],
          [["claims", "--format", "xml"], /Allowed choices are table, csv, json, md/],
          [["claims", "--by-scale", "--experiment", "nsar"], /--by-scale pivots the scale-study/],
          [["claims", "extra"], /too many arguments/],
        ] as const
      ) {
        const o = await cli(r, [...args], { experiments: EXPERIMENTS });
        assert.equal(o.code, 2, `${args.join(" ")}: ${o.stderr}`);
        assert.match(o.stderr, msg);
      }
    } finally {
      await cleanup(r);
    }
  },
});
