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
import { BACKENDS } from "../core/config.ts";

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
    .option("--plain", "plain progress lines instead of a progress bar")
    .action(async (id: string, o) => {
      await cmdExp(id, { ...o, paths: projectPaths() });
    });

  program.command("query")
    .description("run SQL over every result (DuckDB) and print the rows")
    .argument("<sql>", 'a SQL statement, e.g. "SELECT * FROM runs"')
    .addOption(new Option("--format <fmt>", "output format").choices(["table", "csv", "json", "md"]).default("table"))
    .action(async (sql: string, o) => {
      await cmdQuery(sql, { format: o.format, paths: projectPaths() });
    });

  program.command("plot")
    .description("(re)draw an experiment's plots from the database into results/plots/<id>/")
    .argument("<id>", "experiment id")
    .action(async (id: string) => {
      await cmdPlot(id, { paths: projectPaths() });
    });

  program.command("db")
    .description("database maintenance")
    .argument("<action>", "rebuild: recreate results/results.duckdb from the run cache", (v: string) => {
      if (v !== "rebuild" && v !== "path") throw new InvalidArgumentError("expected rebuild or path");
      return v;
    })
    .action(async (action: string) => {
      await cmdDb(action, { paths: projectPaths() });
    });

  program.command("runs")
    .description("list cached runs and their live status (completed, failed, running, interrupted, corrupt)")
    .option("--experiment <id>", "only this experiment")
    .addOption(new Option("--format <fmt>", "output format").choices(["table", "csv", "json", "md"]).default("table"))
    .action(async (o) => {
      await cmdRuns({ experiment: o.experiment, format: o.format, paths: projectPaths() });
    });

  program.command("list")
    .description("list the experiments")
    .action(async () => {
      for (const id of await listExperiments(projectPaths())) console.log(id);
    });
  return program;
}

if (import.meta.main) {
  const program = buildProgram();
  try {
    await program.parseAsync(Deno.args, { from: "user" });
  } catch (e) {
    Deno.exit(reportError(e));
  }
}
