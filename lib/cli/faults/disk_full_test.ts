/**
 * Bad input that only shows while a run works: a disk that fills up (simulated with FINELAB_FAULT
 * enospc@...) must give a clear error, leave no partial rows, and let the same command finish when
 * run again; and --force / --no-memory-check must let a model that cannot fit past the memory check.
 */
import assert from "node:assert/strict";
import { cleanup, cli, dbRows, entries, ok, SUITE, tempResults } from "./helpers.ts";
import { assertNothingStored, assertOneParagraph, badInputFixtures, countRows, exp } from "./bad_input_fixtures.ts";

const { tmp: TMP, opts: OPTS } = badInputFixtures();

interface DiskFullCase {
  name: string;
  spec: string;
  /** What the entry's status says after the failure (null: no entry yet). */
  status: string | null;
}

const DISK_FULL: DiskFullCase[] = [
  { name: "while writing a checkpoint", spec: "enospc@ckpt.model:2", status: "interrupted" },
  { name: "while writing the dataset cache", spec: "enospc@fs.rename:2", status: null },
  { name: "while writing the database", spec: "enospc@db.append:1", status: "completed" },
];

for (const c of DISK_FULL) {
  Deno.test({
    name: `bad input: disk full (simulated) ${c.name}: clear error, no partial rows, the rerun finishes`,
    ...SUITE,
    async fn() {
      const dir = await tempResults("enospc");
      const o = await cli(dir, exp("ok"), { ...OPTS, env: { FINELAB_FAULT: c.spec } });
      assert.equal(o.code, 1, o.stderr);
      assert.match(o.stderr, /error: the disk is full: No space left on device/);
      assert.match(o.stderr, /Free some space .* then run the same command again: it resumes/);
      assertOneParagraph(o, c.name);
      if (c.status !== "completed") await assertNothingStored(dir, c.name);
      else {
        // The run finished in the cache; the database transaction was rolled back: no partial rows.
        assert.equal(await countRows(dir, "runs"), 0);
        assert.equal(await countRows(dir, "metrics"), 0);
      }
      const [entry] = entries(dir);
      if (c.status === null) assert.equal(entry, undefined);
      else {
        const s = JSON.parse(await Deno.readTextFile(`${entry}/status.json`));
        assert.equal(s.status, c.status);
        if (c.status === "interrupted") assert.match(s.error, /No space left on device/);
      }
      const again = ok(await cli(dir, exp("ok"), OPTS), `${c.name}: rerun`);
      assert.match(again.stdout, /1 runs: 1 (trained|resumed|cached)/);
      assert.deepEqual(await dbRows(dir, "SELECT status FROM runs"), [{ status: "completed" }]);
      await cleanup(dir);
    },
  });
}

Deno.test({
  name: "bad input: --force and --no-memory-check let a model that cannot fit past the memory check",
  ...SUITE,
  async fn() {
    const huge = ["--set", "model.d_model=65536", "--set", "model.n_heads=1", "--set", "model.d_ff=262144"];
    for (const flag of ["--force", "--no-memory-check"]) {
      const dir = await tempResults("memforce");
      // Killed at its first write into the run's entry (manifest written, before any weight is allocated):
      // reaching it proves the check let the run through.
      const o = await cli(dir, exp("ok", ...huge, flag), { ...OPTS, env: { FINELAB_FAULT: "run.manifest:1" } });
      assert.match(o.stderr, /FINELAB_FAULT: SIGKILL at run\.manifest:1/, `${flag}: ${o.stderr}`);
      assert.doesNotMatch(o.stderr, /would need about/);
      await cleanup(dir);
    }
  },
});

Deno.test({
  name: "bad input: disk-full fixtures cleanup",
  ...SUITE,
  async fn() {
    await cleanup(TMP);
  },
});
