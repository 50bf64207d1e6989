/**
 * The `finelab` command line (what `deno task exp|query|plot|db|runs` run).
 *
 * @module
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { projectPaths } from "../util/paths.ts";
import { cmdExp } from "./exp.ts";
import { cmdDb, cmdPlot, cmdQuery, cmdRuns } from "./store_cmds.ts";
import { listExperiments } from "../runner/plan.ts";
import { reportError } from "./errors.ts";
import { BACKENDS } from "../experiment/config.ts";
import { checkResultsDir } from "./results_dir.ts";
import { cmdGc } from "./gc.ts";

/** The project paths, after checking the results folder is usable (for writing, or only reading). */
async function checkedPaths(opts: { write: boolean }) {
  const paths = projectPaths();
  await checkResultsDir(paths.results, opts);
  return paths;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** Builds the CLI program (exported for tests). */
export function buildProgram(): Command {
  const program = new Command("finelab")
    .description("Reproducible experiments on fine-grained expert architectures in LLMs")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  program.command("exp")
    .description("plan, train (cached), evaluate, store and plot an experiment")
    .argument("<id>", "experiment id: a module experiments/<id>.ts")
    .option("--scale <name>", "scale preset (tiny, default, gpu, ...)", "default")
    .option("--set <path=value>", "override a config value, e.g. --set train.lr=3e-4 (repeatable)", collect, [])
    .option(
      "--config <file>",
      "YAML file of overrides: data:, model:, train:, seeds:, backend: (repeatable)",
      collect,
      [],
    )
    .addOption(
      new Option("--backend <name>", "tensor backend").choices(["auto", ...BACKENDS]),
    )
    .option("--force", "retrain runs even when they are cached")
    .option("--verify", "retrain every run from scratch and check the metrics are bit-identical to the cache")
    .option("--explain", "print every input of every run hash and exit")
    .option("--dry-run", "print the plan (runs, hashes, cached or not) and exit")
    .option("--no-plot", "skip writing plots")
    .option("--no-memory-check", "train even when the memory estimate exceeds the machine's available memory")
    .option("--plain", "plain progress lines instead of a progress bar")
    .action(async (id: string, o) => {
      await cmdExp(id, { ...o, paths: await checkedPaths({ write: !o.explain && !o.dryRun }) });
    });

  program.command("query")
    .description("run SQL over every result (DuckDB) and print the rows")
    .argument("<sql>", 'a SQL statement, e.g. "SELECT * FROM runs"')
    .addOption(new Option("--format <fmt>", "output format").choices(["table", "csv", "json", "md"]).default("table"))
    .action(async (sql: string, o) => {
      await cmdQuery(sql, { format: o.format, paths: await checkedPaths({ write: false }) });
    });

  program.command("plot")
    .description("(re)draw an experiment's plots from the database into results/plots/<id>/")
    .argument("<id>", "experiment id")
    .option("--out <folder>", "write the plots here instead (the results folder may then be read-only)")
    .action(async (id: string, o) => {
      await cmdPlot(id, { paths: await checkedPaths({ write: !o.out }), out: o.out });
    });

  program.command("db")
    .description("database maintenance")
    .argument("<action>", "rebuild: recreate results/results.duckdb from the run cache", (v: string) => {
      if (v !== "rebuild" && v !== "path") throw new InvalidArgumentError("expected rebuild or path");
      return v;
    })
    .action(async (action: string) => {
      await cmdDb(action, { paths: await checkedPaths({ write: action !== "path" }) });
    });

  program.command("runs")
    .description("list cached runs and their live status (completed, failed, running, interrupted, corrupt)")
    .option("--experiment <id>", "only this experiment")
    .addOption(new Option("--format <fmt>", "output format").choices(["table", "csv", "json", "md"]).default("table"))
    .action(async (o) => {
      await cmdRuns({ experiment: o.experiment, format: o.format, paths: await checkedPaths({ write: false }) });
    });

  program.command("gc")
    .description("remove cache entries of unfinished or failed runs and old checkpoints (a dry run unless --yes)")
    .option("--yes", "remove them (default: only show what would go and how much it frees)")
    .option("--unplanned", "also remove finished runs that no experiment's latest plan names (parents are kept)")
    .action(async (o) => {
      await cmdGc({ paths: await checkedPaths({ write: !!o.yes }), yes: o.yes, unplanned: o.unplanned });
    });

  program.command("list")
    .description("list the experiments")
    .action(async () => {
      for (const id of await listExperiments(projectPaths())) console.log(id);
    });
  return program;
}

/** Runs the CLI on `args`; resolves to the exit code (errors are printed, never thrown). */
export async function main(args: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(args, { from: "user" });
    return typeof Deno.exitCode === "number" ? Deno.exitCode : 0;
  } catch (e) {
    return reportError(e);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
