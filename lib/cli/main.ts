/**
 * The `finelab` command line (what `deno task exp|query|plot|db|runs` run).
 *
 * @module
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { projectPaths } from "../util/paths.ts";
import { reportError, UserError } from "./errors.ts";
import { BACKENDS } from "../backends/names.ts";
import { checkResultsDir } from "./results_dir.ts";

// Each command's module is imported when the command runs: `exp` never loads DuckDB, the plots or the trainer
// unless it needs them (a no-op rerun loads none of them).
const store = () => import("./store_cmds.ts");
const dataCmds = () => import("./data_cmds.ts");

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
    .argument("[id]", "experiment id: a module experiments/<id>.ts")
    .option("--scale <name>", "scale preset (tiny, default, gpu, ...)", "default")
    .option("--set <path=value>", "override a config value, e.g. --set train.lr=3e-4 (repeatable)", collect, [])
    .option(
      "--config <file>",
      "YAML file of overrides: data:, model:, train:, seeds:, backend:, slurm: (repeatable)",
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
    .option(
      "--tag <name>",
      "name these runs (recorded with them, cached runs too; not part of the hash): SELECT ... FROM tagged_runs " +
        "WHERE tag = '<name>'; the experiment's current results and verdict stay its declared plan's",
    )
    .option("--no-memory-check", "train even when the memory estimate exceeds the machine's available memory")
    .option("--plain", "plain progress lines instead of a progress bar")
    .option("--run <hash>", "train exactly this planned run (by its hash) and nothing else; never writes the database")
    .addOption(new Option("--executor <name>", "where runs train").choices(["local", "slurm"]).default("local"))
    .option("--partition <name>", "slurm: partition of the array tasks")
    .option("--gres <spec>", "slurm: generic resources per task, e.g. gpu:1")
    .option("--time <limit>", "slurm: time limit per task, e.g. 2:00:00")
    .option("--mem <size>", "slurm: memory per task, e.g. 16G")
    .option("--max-parallel <n>", "slurm: at most n tasks of a level at once", (v: string) => {
      if (!/^[1-9]\d*$/.test(v)) throw new InvalidArgumentError("expected an integer >= 1");
      return Number(v);
    })
    .option("--sbatch-arg <arg>", "slurm: extra sbatch argument, passed verbatim (repeatable)", collect, [])
    .option("--status", "slurm: show the newest submission's runs, job ids and states")
    .option("--watch", "slurm: follow the submission with a progress bar until it is collected")
    .option("--cancel", "slurm: cancel every queued or running job this experiment submitted")
    .addOption(new Option("--collect <submission>", "(the collect job) ingest a submission's runs").hideHelp())
    .action(async (id: string | undefined, o) => {
      const paths = await checkedPaths({ write: !o.explain && !o.dryRun && !o.status });
      if (o.run !== undefined) {
        if (id !== undefined) throw new UserError(`--run <hash> trains one run by its hash: give no experiment id`);
        const { cmdRun } = await import("./run_cmd.ts");
        return await cmdRun(o.run, { paths, plain: o.plain });
      }
      if (id === undefined) throw new UserError("missing experiment id: deno task exp <id> (or --run <hash>)");
      const slurm = {
        partition: o.partition,
        gres: o.gres,
        time: o.time,
        mem: o.mem,
        max_parallel: o.maxParallel,
        sbatch_args: o.sbatchArg.length ? o.sbatchArg : undefined,
      };
      const { cmdExp } = await import("./exp.ts");
      await cmdExp(id, { ...o, slurm: JSON.parse(JSON.stringify(slurm)), paths });
    });

  program.command("query")
    .description("run SQL over every result (DuckDB) and print the rows")
    .argument("<sql>", 'a SQL statement, e.g. "SELECT * FROM runs"')
    .addOption(new Option("--format <fmt>", "output format").choices(["table", "csv", "json", "md"]).default("table"))
    .action(async (sql: string, o) => {
      await (await store()).cmdQuery(sql, { format: o.format, paths: await checkedPaths({ write: false }) });
    });

  program.command("claims")
    .description("the claims ledger: each paper claim's effect, 95% CI over seeds and verdict at every measured scale")
    .option("--claim <id>", "only this claim")
    .option("--experiment <id>", "only the rows of this experiment")
    .option("--by-scale", "the scale study: one row per claim and model size, one column per token budget")
    .addOption(new Option("--format <fmt>", "output format").choices(["table", "csv", "json", "md"]).default("table"))
    .action(async (o) => {
      await (await import("./claims_cmd.ts")).cmdClaims({ ...o, paths: await checkedPaths({ write: false }) });
    });

  program.command("plot")
    .description("(re)draw an experiment's plots from the database into results/plots/<id>/")
    .argument("<id>", "experiment id")
    .option("--out <folder>", "write the plots here instead (the results folder may then be read-only)")
    .action(async (id: string, o) => {
      await (await store()).cmdPlot(id, { paths: await checkedPaths({ write: !o.out }), out: o.out });
    });

  program.command("db")
    .description("database maintenance")
    .argument("<action>", "rebuild: recreate results/results.duckdb from the run cache", (v: string) => {
      if (v !== "rebuild" && v !== "path") throw new InvalidArgumentError("expected rebuild or path");
      return v;
    })
    .action(async (action: string) => {
      await (await store()).cmdDb(action, { paths: await checkedPaths({ write: action !== "path" }) });
    });

  program.command("runs")
    .description(
      "list cached runs, newest first, and their live status (completed, failed, running, interrupted, corrupt)",
    )
    .option("--experiment <id>", "only this experiment")
    .option("--verify", "read and verify every entry (checksums), finished ones too, instead of the database's copy")
    .option(
      "--limit <n>",
      "show the newest n runs (default 50 for table and md, all for csv and json)",
      (v: string) => {
        if (!/^[1-9]\d*$/.test(v)) throw new InvalidArgumentError("expected an integer >= 1");
        return Number(v);
      },
    )
    .option("--all", "show every run")
    .addOption(new Option("--format <fmt>", "output format").choices(["table", "csv", "json", "md"]).default("table"))
    .action(async (o) => {
      await (await store()).cmdRuns({
        experiment: o.experiment,
        format: o.format,
        verify: o.verify === true,
        limit: o.limit,
        all: o.all === true,
        paths: await checkedPaths({ write: false }),
      });
    });

  program.command("gc")
    .description("remove cache entries of unfinished or failed runs and old checkpoints (a dry run unless --yes)")
    .option("--yes", "remove them (default: only show what would go and how much it frees)")
    .option("--unplanned", "also remove finished runs that no experiment's latest plan names (parents are kept)")
    .action(async (o) => {
      await (await import("./gc.ts")).cmdGc({
        paths: await checkedPaths({ write: !!o.yes }),
        yes: o.yes,
        unplanned: o.unplanned,
      });
    });

  const data = program.command("data").description("datasets: list, show, prepare (tokenise), fetch (download)");
  data.command("list").description("every dataset module (data/<id>.ts) and whether it is cached")
    .action(async () => await (await dataCmds()).cmdDataList({ paths: projectPaths() }));
  data.command("show").description("a dataset's declaration and its cached entries (tokens, sizes, hashes)")
    .argument("<dataset>", "dataset id").action(async (id: string) =>
      await (await dataCmds()).cmdDataShow(id, { paths: projectPaths() })
    );
  data.command("prepare").description("build (or verify) a dataset's token shards, with progress")
    .argument("<dataset>", "dataset id")
    .option("--max-tokens <n>", "keep the first n tokens of each split", (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected an integer >= 1");
      return n;
    })
    .option("--plain", "plain progress lines instead of a progress bar")
    .action(async (id: string, o) =>
      await (await dataCmds()).cmdDataPrepare(id, { paths: projectPaths(), maxTokens: o.maxTokens, plain: o.plain })
    );
  data.command("fetch").description("download a dataset's declared files (the only command with network access)")
    .argument("<dataset>", "dataset id").option("--plain", "plain progress lines instead of a progress bar")
    .action(async (id: string, o) =>
      await (await dataCmds()).cmdDataFetch(id, { paths: projectPaths(), plain: o.plain })
    );

  program.command("list")
    .description("list the experiments")
    .action(async () => {
      const { listExperiments } = await import("../runner/plan.ts");
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
