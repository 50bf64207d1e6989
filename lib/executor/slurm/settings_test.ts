import assert from "node:assert/strict";
import { ConfigError } from "../../experiment/validate.ts";
import { mergeSettings, sbatchOptions } from "./settings.ts";
import { arrayScript, collectScript, q } from "./submit.ts";
import { projectPaths } from "../../util/paths.ts";

Deno.test("slurm settings: module < --config < command line; sbatch_args add up; sbatch options", () => {
  const s = mergeSettings([
    { where: "module", value: { partition: "cpu", time: "1:00:00", max_parallel: 4, sbatch_args: ["--qos=low"] } },
    { where: "--config c.yaml", value: { partition: "gpu", gres: "gpu:1", sbatch_args: ["--account=lab"] } },
    { where: "command line", value: { time: "2:00:00", mem: "16G" } },
  ]);
  assert.deepEqual(s, {
    partition: "gpu",
    time: "2:00:00",
    max_parallel: 4,
    sbatch_args: ["--qos=low", "--account=lab"],
    gres: "gpu:1",
    mem: "16G",
  });
  assert.deepEqual(sbatchOptions(s), [
    "--partition=gpu",
    "--gres=gpu:1",
    "--time=2:00:00",
    "--mem=16G",
    "--cpus-per-task=1",
    "--qos=low",
    "--account=lab",
  ]);
});

Deno.test("slurm settings: every bad value is reported with where it came from", () => {
  assert.throws(
    () =>
      mergeSettings([
        { where: "module", value: { partiton: "x", max_parallel: 0 } },
        { where: "command line", value: { gres: "gpu 1", sbatch_args: ["account=lab"], signal_s: -1 } },
      ]),
    (e) => {
      assert.ok(e instanceof ConfigError);
      const all = e.problems.join("\n");
      assert.match(all, /module\.partiton: unknown key/);
      assert.match(all, /module\.max_parallel: 0 must be an integer >= 1/);
      assert.match(all, /command line\.gres: "gpu 1" is not a word/);
      assert.match(all, /command line\.sbatch_args: .* must be a list of options starting with "-"/);
      assert.match(all, /command line\.signal_s: -1 must be an integer >= 0/);
      return true;
    },
  );
});

Deno.test("slurm scripts: task i trains hashes[i]; USR1 becomes USR2; exit 75 requeues; the node checks the folder", () => {
  const paths = projectPaths(undefined, "/shared/it's results");
  const s = arrayScript(paths, "/shared/sub", ["a".repeat(64), "b".repeat(64)]);
  assert.match(s, /^#!\/bin\/bash\n/);
  assert.match(s, /RESULTS='\/shared\/it'\\''s results'/);
  assert.match(s, new RegExp(`HASHES=\\(${"a".repeat(64)} ${"b".repeat(64)}\\)`));
  assert.match(s, /exp --run "\$\{HASHES\[\$SLURM_ARRAY_TASK_ID\]\}" --plain &/);
  assert.match(s, /trap 'kill -USR2 \$child 2>\/dev\/null' USR1/);
  assert.match(s, /if \[ "\$rc" = 75 \]; then\n.*\n {2}scontrol requeue/);
  assert.match(s, /if \[ ! -f "\$SUB\/token" \]; then/);
  assert.match(s, /'--allow-write=\/shared\/it'\\''s results/);
  const c = collectScript(paths, "/shared/sub", "dense-baseline", "sub-1");
  assert.match(c, /exp 'dense-baseline' --collect 'sub-1' --plain\n$/);
  assert.equal(q("a'b"), `'a'\\''b'`);
});
