/**
 * The Slurm executor on a real single-node Slurm (test_cluster.ts: munged, slurmctld, slurmd in a temp folder),
 * driving the CLI as users do. Skips with the reason where Slurm or root is missing; `.ci/run` installs
 * `slurm-wlm` and `munge`. The daemons are stopped in `finally`, whatever fails.
 */
import assert from "node:assert/strict";
import { cleanup, cli, type CliOptions, ok, type Out, snapshot, SUITE, tempResults } from "../../cli/faults/helpers.ts";
import { withTempDir } from "../../util/testing.ts";
import { FIXTURES } from "../../cli/faults/helpers.ts";
import { entryPaths, readAttempts } from "../../runner/cache.ts";
import { REPO_ROOT } from "../../util/paths.ts";
import { slurmMissing, startCluster, type TestCluster } from "./test_cluster.ts";
import { readSubmissions } from "./submit.ts";

const CHAIN = `${REPO_ROOT}/lib/executor/slurm/testdata/experiments`;
const missing = slurmMissing();
if (missing) console.log(`lib/executor/slurm/slurm_test.ts: Slurm tests skipped: ${missing}`);

/** A longer single run (the fault fixture, 600 steps, checkpoint every 50) to interrupt mid-run. */
const LONG = [
  "faults",
  ...["--set", "train.steps=600", "--set", "train.checkpoint_every=50", "--set", "train.eval_every=200"],
  "--plain",
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sh(c: TestCluster, cmd: string, args: string[]): Promise<string> {
  const o = await new Deno.Command(cmd, { args, env: c.env, stdout: "piped", stderr: "piped" }).output();
  return new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr);
}

/** How many times each cache entry of `results` started training. */
async function starts(results: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const e of Deno.readDirSync(`${results}/cache`)) {
    if (!/^[0-9a-f]{64}$/.test(e.name)) continue;
    out[e.name.slice(0, 12)] = (await readAttempts(entryPaths(`${results}/cache`, e.name)))
      .filter((a) => a.event === "start").length;
  }
  return out;
}

/** Waits until a checkpoint of the only run of `results` is on disk; returns the run's hash. */
async function waitCheckpoint(results: string, timeoutMs = 60_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    for (
      const e of (() => {
        try {
          return [...Deno.readDirSync(`${results}/cache`)];
        } catch {
          return [];
        }
      })()
    ) {
      try {
        if ([...Deno.readDirSync(`${results}/cache/${e.name}/checkpoints`)].some((c) => /^step-/.test(c.name))) {
          return e.name;
        }
      } catch { /* not yet */ }
    }
    await sleep(200);
  }
  throw new Error(`no checkpoint in ${results} after ${timeoutMs / 1000} s`);
}

/** A task log without its per-step lines. */
function brief(log: string): string {
  return log.split("\n").filter((l) => !/ step \d+\/\d+ loss/.test(l)).join("\n");
}

/** The last lines of the test cluster's daemon logs (for failure messages). */
function clusterLogs(c: TestCluster): string {
  return ["slurmctld.log", "slurmd.log"].map((f) => {
    try {
      return `--- ${f}\n${Deno.readTextFileSync(`${c.dir}/${f}`).split("\n").slice(-25).join("\n")}`;
    } catch {
      return "";
    }
  }).join("\n");
}

function assertSame(a: Awaited<ReturnType<typeof snapshot>>, b: Awaited<ReturnType<typeof snapshot>>) {
  assert.ok(a.runs.length > 0 && a.metrics.length > 0);
  assert.deepEqual(b.runs, a.runs);
  assert.deepEqual(b.metrics, a.metrics);
  assert.deepEqual(b.extra, a.extra);
}

Deno.test({
  name: "slurm executor on a real single-node Slurm",
  ignore: missing !== null,
  ...SUITE,
  async fn(t) {
    const cluster = await startCluster();
    const dirs: string[] = [];
    const tmp = async (p: string) => {
      const d = await tempResults(p);
      dirs.push(d);
      return d;
    };
    const chain: CliOptions = { experiments: CHAIN, env: cluster.env };
    const faults: CliOptions = { experiments: FIXTURES, env: cluster.env };
    try {
      await t.step(
        "a parent -> child sweep: each run trains once, collect fills DuckDB, bit-identical to local",
        async () => {
          const local = await tmp("slurm-local");
          ok(await cli(local, ["exp", "slurm-chain", "--plain"], chain), "local run");
          const dir = await tmp("slurm-chain");
          const o = ok(
            await cli(dir, ["exp", "slurm-chain", "--executor", "slurm", "--watch", "--plain"], chain),
            "submit",
          );
          assert.match(o.stdout, /3 runs in 2 job arrays/);
          const [sub] = await readSubmissions({ ...entryRoot(dir) });
          assert.deepEqual(sub.arrays.map((a) => a.run_ids), [["parent/s0"], ["cont/s0", "moe/s0"]]);
          assert.match(o.stdout, /collect job \d+: \w+ \(ingested 3 completed, 0 failed\)/);
          assert.deepEqual(Object.values(await starts(dir)), [1, 1, 1]);
          assertSame(await snapshot(local), await snapshot(dir));
          // The same sweep again: everything is cached, nothing is submitted but the collect job.
          const again = ok(await cli(dir, ["exp", "slurm-chain", "--executor", "slurm", "--plain"], chain), "resubmit");
          assert.match(again.stdout, /0 runs in 0 job arrays \(none\), 3 cached/);
          const st = ok(await cli(dir, ["exp", "slurm-chain", "--status"], chain), "status").stdout;
          assert.match(st, /collect job \d+/);
        },
      );

      await t.step("the same sweep submitted twice at once: no run trains twice", async () => {
        const dir = await tmp("slurm-twice");
        const args = ["exp", "slurm-chain", "--executor", "slurm", "--plain"];
        const [a, b] = await Promise.all([cli(dir, args, chain), cli(dir, args, chain)]);
        ok(a, "first submission");
        ok(b, "second submission");
        const both = a.stdout + b.stdout;
        assert.match(both, /3 runs in 2 job arrays/);
        assert.match(both, /0 runs in 0 job arrays \(none\), 0 cached, 3 in flight elsewhere/);
        // Follow the newer one: its collect job waits for the older one's tasks.
        ok(await cli(dir, ["exp", "slurm-chain", "--watch", "--plain"], chain), "watch");
        assert.deepEqual(Object.values(await starts(dir)), [1, 1, 1]);
        // Any engine calling `exp --run` on a finished run gets it from the cache.
        const hash = (await readSubmissions(entryRoot(dir)))[0].arrays[0].hashes[0];
        assert.match(ok(await cli(dir, ["exp", "--run", hash, "--plain"], chain)).stdout, /: cached \(completed/);
      });

      let reference: Awaited<ReturnType<typeof snapshot>>;
      await t.step(
        "Slurm's pre-kill signal: the task checkpoints, requeues itself and ends bit-identical",
        async () => {
          const local = await tmp("slurm-long-local");
          ok(await cli(local, ["exp", ...LONG], faults), "local long run");
          reference = await snapshot(local);
          const dir = await tmp("slurm-usr1");
          const o = ok(await cli(dir, ["exp", ...LONG, "--executor", "slurm"], faults), "submit");
          const job = o.stderr.match(/job array (\d+)/)![1];
          const hash = await waitCheckpoint(dir);
          await sh(cluster, "scancel", ["--batch", "--signal=USR1", `${job}_0`]); // what --signal=B:USR1@s sends
          let requeued = false;
          for (let i = 0; i < 100 && !requeued; i++) {
            await sleep(200);
            requeued = /PENDING/.test(await sh(cluster, "squeue", ["-h", "-j", `${job}_0`, "-o", "%T"]));
          }
          assert.ok(requeued, "the task requeued itself");
          await sleep(1000); // let slurmd finish cleaning up the first attempt
          // A requeued job waits out a begin-time delay; let it start now.
          await sh(cluster, "scontrol", ["update", `JobId=${job}_0`, "StartTime=now"]);
          const w = await cli(dir, ["exp", "faults", "--watch", "--plain"], faults);
          const log = await Deno.readTextFile(
            `${dir}/slurm/submissions/${(await readSubmissions(entryRoot(dir)))[0].id}/logs/${job}_0.out`,
          );
          assert.equal(
            w.code,
            0,
            `watch:\n${w.stdout}\n${w.stderr}\ntask log:\n${brief(log)}\n${clusterLogs(cluster)}`,
          );
          assert.match(log, /preempted: checkpoint written after \d+ steps/);
          assert.match(log, /requeueing/);
          const att = await readAttempts(entryPaths(`${dir}/cache`, hash));
          assert.equal(att.filter((a) => a.event === "start").length, 2);
          const summary = JSON.parse(await Deno.readTextFile(`${dir}/cache/${hash}/summary.json`));
          assert.ok(summary.resumed_from_step > 0, `resumed from step ${summary.resumed_from_step}`);
          assertSame(reference, await snapshot(dir));
        },
      );

      await t.step("a task SIGKILLed mid-run (node loss): resubmitting resumes it and ends bit-identical", async () => {
        const dir = await tmp("slurm-kill");
        // The task's trainer SIGKILLs itself after step 120 (FINELAB_FAULT, deterministic): a dead node.
        const kill = { ...faults, env: { ...cluster.env, FINELAB_FAULT: "train.step:120" } };
        ok(await cli(dir, ["exp", ...LONG, "--executor", "slurm"], kill), "submit");
        const w: Out = await cli(dir, ["exp", "faults", "--watch", "--plain"], faults);
        assert.equal(w.code, 1, `the watch reports the failed task\n${w.stdout}\n${w.stderr}`);
        assert.match(w.stdout, /toy\/s0 .* FAILED .* interrupted \(step \d+\/600\)/);
        assert.match(w.stdout, /1 missing/);
        const hash = (await readSubmissions(entryRoot(dir)))[0].arrays[0].hashes[0];
        ok(await cli(dir, ["exp", ...LONG, "--executor", "slurm", "--watch"], faults), "resubmit");
        const summary = JSON.parse(await Deno.readTextFile(`${dir}/cache/${hash}/summary.json`));
        assert.ok(summary.resumed_from_step > 0, `resumed from step ${summary.resumed_from_step}`);
        assertSame(reference, await snapshot(dir));
      });

      await t.step("bad input: an unknown partition (Slurm's message verbatim), nothing submitted", async () => {
        const dir = await tmp("slurm-partition");
        const o = await cli(dir, ["exp", "faults", "--executor", "slurm", "--partition", "nope"], faults);
        assert.equal(o.code, 2, o.stderr);
        assert.match(o.stderr, /sbatch: error: invalid partition specified: nope/);
        assert.deepEqual(await readSubmissions(entryRoot(dir)), []);
        assert.equal((await sh(cluster, "squeue", ["-h", "-n", "finelab:faults:L0", "-o", "%i"])).trim(), "");
      });

      await t.step("bad input: a results folder the compute node cannot see fails the task with why", async () => {
        const dir = await tmp("slurm-unshared");
        const o = ok(await cli(dir, ["exp", "faults", "--executor", "slurm", "--sbatch-arg=--hold"], faults));
        const [sub] = await readSubmissions(entryRoot(dir));
        await Deno.remove(`${dir}/slurm/submissions/${sub.id}/token`); // as if the node mounted another folder
        assert.match(o.stdout, /collect job/);
        await sh(cluster, "scontrol", ["release", sub.arrays[0].job_id, sub.collect]);
        const w = await cli(dir, ["exp", "faults", "--watch", "--plain"], faults);
        assert.equal(w.code, 1);
        assert.match(w.stdout, /error: toy\/s0 .*FAILED.*results folder .* is not visible from node/);
      });
    } finally {
      await cluster.stop();
      await cleanup(...dirs);
    }
  },
});

Deno.test(
  "slurm executor: no sbatch on PATH is one clear error (exit 2) that says how to install it",
  SUITE,
  async () => {
    await withTempDir("slurm-nosbatch", async (dir) => {
      const o = await cli(dir, ["exp", "faults", "--executor", "slurm"], { env: { PATH: "/nonexistent" } });
      assert.equal(o.code, 2, o.stderr);
      assert.match(o.stderr, /`sbatch` is not on PATH.*login node.*apt-get install slurm-client/s);
      assert.deepEqual(await readSubmissions(entryRoot(dir)), []);
    });
  },
);

/** The ProjectPaths bits readSubmissions needs for a results folder. */
function entryRoot(results: string) {
  return { root: REPO_ROOT, experiments: "", results, cache: `${results}/cache`, plots: "", db: "" };
}
