/**
 * `deno task exp --run <hash>`: train exactly one planned run by its hash (what a Slurm array task runs; usable
 * by hand and by other engines). Never writes the database. Exit codes: 0 the run is complete (trained,
 * resumed or already cached), 1 it failed, 2 bad input, 75 SIGUSR2 made it checkpoint and stop (run it again to resume;
 * the Slurm task script turns Slurm's pre-kill SIGUSR1 into it: Deno opens its inspector on SIGUSR1), 130
 * interrupted.
 *
 * @module
 */
import { guardSignals, INTERRUPTED_EXIT, markInterrupted, PREEMPTED_EXIT, runOne } from "../api/mod.ts";
import type { ProjectPaths } from "../util/paths.ts";
import { progressFactory } from "./progress.ts";

/** Runs `exp --run <hash>`. */
export async function cmdRun(hash: string, o: { paths: ProjectPaths; plain?: boolean }): Promise<void> {
  let preempt = false;
  const onUsr2 = () => {
    if (!preempt) console.error("SIGUSR2: checkpointing before the scheduler's kill");
    preempt = true;
  };
  Deno.addSignalListener("SIGUSR2", onUsr2);
  const unguard = guardSignals(onInterrupt);
  try {
    const t0 = performance.now();
    const out = await runOne(hash, {
      paths: o.paths,
      progress: progressFactory({ plain: o.plain }),
      preempt: () => preempt,
    });
    const s = out.record.summary!;
    console.log(
      `${out.run.config.experiment}/${out.run.run_id} ${hash.slice(0, 12)}: ${out.action} (${s.status}, ` +
        `val_loss ${s.val_loss}, ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
    if (s.status === "failed") {
      console.error(`run ${out.run.run_id} FAILED at step ${s.failure?.step}: ${s.failure?.reason}`);
      Deno.exitCode = 1;
    }
  } catch (e) {
    if ((e as Error)?.name !== "Preempted") throw e;
    console.error(`finelab: ${(e as Error).message}`);
    Deno.exitCode = PREEMPTED_EXIT;
  } finally {
    Deno.removeSignalListener("SIGUSR2", onUsr2);
    unguard();
  }
}

/**
 * The main thread's SIGINT/SIGTERM handler while runs train (`exp`, `exp --run`): marks the run interrupted,
 * writes the attempt's end line, exits 130. The watchdog beside it (lib/runner/signal_guard.ts) does the same
 * when a blocked step keeps this handler from running.
 */
export function onInterrupt(): void {
  markInterrupted();
  console.error("\ninterrupted: the run is marked interrupted; run the same command again to resume it");
  Deno.exit(INTERRUPTED_EXIT);
}
