import assert from "node:assert/strict";
import { cleanup, cli, dbRows, entries, ok, SUITE, tempResults } from "../cli/faults/helpers.ts";
import { planGc } from "./gc.ts";
import { tryLock } from "./lock.ts";

Deno.test({
  name: "gc: a dry run by default; --yes removes interrupted entries and periodic checkpoints of finished runs, " +
    "never a locked entry or a planned finished run; the database follows",
  ...SUITE,
  async fn() {
    const dir = await tempResults("gc");
    try {
      ok(await cli(dir, ["exp", "faults", "--no-plot"]), "exp");
      const [done] = entries(dir);
      const killed = await cli(dir, ["exp", "faults", "--no-plot", "--set", "train.steps=8"], {
        env: { FINELAB_FAULT: "ckpt.state:2" },
      });
      assert.notEqual(killed.code, 0);
      const interrupted = entries(dir).find((e) => e !== done)!;
      await Deno.mkdir(`${done}/checkpoints/step-000002`, { recursive: true });
      await Deno.writeFile(`${done}/checkpoints/step-000002/model.safetensors`, new Uint8Array(4096));

      const items = await planGc(`${dir}/cache`);
      assert.deepEqual(
        items.map((i) => [i.path, i.reason.split(":")[0]]),
        [
          [`${done}/checkpoints/step-000002`, "periodic checkpoint of a finished run"],
          [interrupted, "interrupted"],
        ].sort((a, b) => (a[0] < b[0] ? -1 : 1)).sort((a, b) => a[0].localeCompare(b[0])),
      );
      assert.ok(items.every((i) => i.bytes > 0));
      // the planned, finished run is kept even with --unplanned
      assert.equal((await planGc(`${dir}/cache`, { unplanned: true })).length, 2);
      // a locked (running) entry is never collected
      const lock = tryLock(`${interrupted}/lock`);
      assert.ok("release" in lock);
      try {
        assert.deepEqual((await planGc(`${dir}/cache`)).map((i) => i.path), [`${done}/checkpoints/step-000002`]);
      } finally {
        lock.release();
      }

      const dry = ok(await cli(dir, ["gc"]), "gc");
      assert.match(dry.stdout, /dry run: 2 items, [\d.]+ \w+ would be freed\. Run `deno task gc --yes`/);
      assert.equal(entries(dir).length, 2, "the dry run removed nothing");
      const yes = ok(await cli(dir, ["gc", "--yes"]), "gc --yes");
      assert.match(yes.stdout, /removed 2 items, freed/);
      assert.deepEqual(entries(dir), [done]);
      assert.deepEqual([...Deno.readDirSync(`${done}/checkpoints`)].map((e) => e.name), ["final"]);
      assert.deepEqual((await dbRows(dir, "SELECT status FROM runs")).map((r) => r.status), ["completed"]);
      assert.match(ok(await cli(dir, ["gc"])).stdout, /nothing to collect/);
    } finally {
      await cleanup(dir);
    }
  },
});
