/**
 * Bad input: every case runs the real CLI and must end with a non-zero exit code and one short
 * error paragraph (no stack trace) that names the problem and says how to fix it, with no partial
 * rows in the database and no finished run in the cache.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cleanup, cli, SUITE, tempResults } from "./helpers.ts";
import { assertNothingStored, assertOneParagraph, badInputFixtures, exp } from "./bad_input_fixtures.ts";

const { tmp: TMP, opts: OPTS } = badInputFixtures();

// ---- the cases ---------------------------------------------------------------------------------

interface Case {
  name: string;
  args: string[];
  /** The problem, named. */
  problem: RegExp;
  /** The fix, stated. */
  fix: RegExp;
  /** Expected exit code (default 2: bad input). */
  code?: number;
  env?: Record<string, string>;
}

const FIX_CONFIG = /Fix the experiment module, the --config file or the --set value/;
const FIX_MODULE = /Fix the module|Wrap the declaration|Rename the file or change the id/;
const FIX_DATA = /Fix the data\.\* settings|Use a larger dataset/;

const CASES: Case[] = [
  // Experiment modules and ids.
  {
    name: "unknown experiment id",
    args: exp("nope"),
    problem: /Unknown experiment "nope"\. Available: .*ok/,
    fix: /check the spelling, or create the module/,
  },
  {
    name: "experiment id that is a path",
    args: exp("../../etc/passwd"),
    problem: /Unknown experiment "\.\.\/\.\.\/etc\/passwd"/,
    fix: /create the module/,
  },
  {
    name: "module with a syntax error",
    args: exp("syntax"),
    problem: /Cannot load experiment module .*syntax\.ts/,
    fix: FIX_MODULE,
  },
  {
    name: "module that throws when imported",
    args: exp("throws"),
    problem: /Cannot load experiment module .*throws\.ts: Error:\n\s+cannot find the tokenizer config/,
    fix: FIX_MODULE,
  },
  {
    name: "module importing a missing file",
    args: exp("badimport"),
    problem: /Cannot load experiment module .*badimport\.ts: .*\n.*missing\.ts/,
    fix: FIX_MODULE,
  },
  {
    name: "module without a default export",
    args: exp("nodefault"),
    problem: /nodefault\.ts must `export default defineExperiment\(\{\.\.\.\}\)`.*default export is missing/,
    fix: FIX_MODULE,
  },
  {
    name: "default export not made by defineExperiment",
    args: exp("plain"),
    problem: /its default export is a plain object/,
    fix: FIX_MODULE,
  },
  {
    name: "module whose id differs from its file name",
    args: exp("wrongid"),
    problem: /wrongid\.ts declares id "other"/,
    fix: FIX_MODULE,
  },
  // Type-correct but invalid configs.
  {
    name: "d_model not divisible by n_heads",
    args: exp("ok", "--set", "model.n_heads=3"),
    problem: /model\.d_model = 16 must be divisible by model\.n_heads = 3/,
    fix: FIX_CONFIG,
  },
  {
    name: "odd head dimension (RoPE needs pairs)",
    args: exp("ok", "--set", "model.d_model=18"),
    problem: /model\.d_model.*18|head/,
    fix: FIX_CONFIG,
  },
  {
    name: "negative learning rate",
    args: exp("ok", "--set", "train.lr=-1"),
    problem: /train\.lr = -1 is out of range/,
    fix: FIX_CONFIG,
  },
  {
    name: "NaN learning rate from --set",
    args: exp("ok", "--set", "train.lr=nan"),
    problem: /train\.lr = NaN must be a finite number/,
    fix: FIX_CONFIG,
  },
  {
    name: "NaN learning rate in the module",
    args: exp("nanlr"),
    problem: /train\.lr = NaN must be a finite number/,
    fix: FIX_CONFIG,
  },
  {
    name: "infinite weight decay",
    args: exp("ok", "--set", "train.weight_decay=inf"),
    problem: /train\.weight_decay = Infinity must be a finite number/,
    fix: FIX_CONFIG,
  },
  {
    name: "fractional step count",
    args: exp("ok", "--set", "train.steps=2.5"),
    problem: /train\.steps = 2\.5 must be an integer/,
    fix: FIX_CONFIG,
  },
  {
    name: "zero batch size",
    args: exp("ok", "--set", "train.batch_size=0"),
    problem: /train\.batch_size = 0 is out of range/,
    fix: FIX_CONFIG,
  },
  {
    name: "warmup longer than training",
    args: exp("ok", "--set", "train.warmup_steps=50"),
    problem: /train\.warmup_steps = 50 must be <= train\.steps = 4/,
    fix: FIX_CONFIG,
  },
  {
    name: "vocabulary size that is not the byte tokenizer's",
    args: exp("ok", "--set", "model.vocab_size=100"),
    problem: /model\.vocab_size = 100 does not match the vocabulary of dataset "file" \(256\)/,
    fix: FIX_CONFIG,
  },
  {
    name: "unknown FFN variant",
    args: exp("ok", "--set", "model.ffn.kind=nosuch"),
    problem: /model\.ffn\.kind = "nosuch" is not an FFN variant/,
    fix: FIX_CONFIG,
  },
  // Option defaults are filled in only after the options are valid: a bad one is still named as given.
  {
    name: "FFN option out of range",
    args: exp("ok", "--set", "model.ffn.kind=finedeep", "--set", "model.ffn.m=0"),
    problem: /model\.ffn\.m = 0 must be an integer in \[1, 1024\]/,
    fix: FIX_CONFIG,
  },
  {
    name: "FFN option of another variant",
    args: exp("ok", "--set", "model.ffn.kind=finedeep", "--set", "model.ffn.experts=8"),
    problem: /model\.ffn\.experts is not an option of ffn kind "finedeep" \(options: m, k,/,
    fix: FIX_CONFIG,
  },
  {
    name: "unknown backend on the command line",
    args: exp("ok", "--backend", "tpu"),
    problem: /argument 'tpu' is invalid/,
    fix: /Allowed choices are auto, .*wasm, cpu/,
  },
  {
    name: "backend that is not installed here",
    args: exp("ok", "--backend", "tensorflow"),
    problem: /backend "tensorflow" is unavailable: /,
    fix: /To fix: /,
  },
  {
    name: "unknown backend in the module",
    args: exp("badbackend"),
    problem: /backend = "tpu" is not one of: auto, .*wasm, cpu/,
    fix: FIX_CONFIG,
  },
  { name: "empty grid", args: exp("emptygrid"), problem: /grid train\.lr must be a non-empty array/, fix: FIX_CONFIG },
  {
    name: "duplicate run ids",
    args: exp("dupids"),
    problem: /duplicate run id toy|duplicate run id base\/lr=0\.001\/s0/,
    fix: FIX_CONFIG,
  },
  {
    name: "invalid variant name",
    args: exp("badvariant"),
    problem: /variant name "bad name" must be letters, digits/,
    fix: FIX_CONFIG,
  },
  {
    name: "empty seed list",
    args: exp("ok", "--set", "seeds=[]"),
    problem: /seeds = \[\] must be a non-empty array/,
    fix: FIX_CONFIG,
  },
  {
    name: "duplicate seeds",
    args: exp("ok", "--set", "seeds=[1,1]"),
    problem: /seeds = \[1,1\] has duplicates/,
    fix: FIX_CONFIG,
  },
  {
    name: "misspelt config key",
    args: exp("ok", "--set", "train.lrr=0.1"),
    problem: /unknown key train\.lrr \(did you mean train\.lr\?\)/,
    fix: FIX_CONFIG,
  },
  {
    name: "--set without a value",
    args: exp("ok", "--set", "train.lr"),
    problem: /--set "train\.lr" must have the form path=value/,
    fix: /e\.g\. --set train\.lr=3e-4/,
  },
  {
    name: "unknown scale",
    args: exp("ok", "--scale", "huge"),
    problem: /--scale huge is not defined; available: default/,
    fix: FIX_CONFIG,
  },
  {
    name: "--config file that does not exist",
    args: exp("ok", "--config", join(TMP, "absent.yaml")),
    problem: /Cannot read --config .*absent\.yaml/,
    fix: /Check the path/,
  },
  {
    name: "--config file that is not YAML",
    args: exp("ok", "--config", join(TMP, "bad.yaml")),
    problem: /--config .*bad\.yaml is not valid YAML/,
    fix: FIX_CONFIG,
  },
  {
    name: "--config file with an unknown section",
    args: exp("ok", "--config", join(TMP, "extra.yaml")),
    problem: /unknown top-level key trainer \(allowed: data, model, train, seeds, backend, slurm\)/,
    fix: FIX_CONFIG,
  },
  // Datasets.
  {
    name: "dataset path that does not exist",
    args: exp("nodata"),
    problem: /data\.path = ".*absent\.txt" does not exist/,
    fix: FIX_DATA,
  },
  {
    name: "file dataset without a path",
    args: exp("nopath"),
    problem: /data\.path must name a \.txt\/\.jsonl\/\.parquet file/,
    fix: FIX_CONFIG,
  },
  { name: "empty dataset file", args: exp("emptyfile"), problem: /empty\.txt is empty/, fix: FIX_DATA },
  { name: "dataset that is not UTF-8", args: exp("latin1"), problem: /UTF-8/, fix: FIX_DATA },
  {
    name: "dataset smaller than one sequence",
    args: exp("tiny"),
    problem: /split of the dataset .* has \d+ tokens, fewer than one sequence of model\.seq_len \+ 1 = 17/,
    fix: /Use a larger dataset or data\.max_tokens, a smaller model\.seq_len/,
  },
  { name: "dataset folder without text files", args: exp("nofiles"), problem: /nofiles/, fix: FIX_DATA },
  { name: "JSONL dataset without the text field", args: exp("jsonl"), problem: /"text"/, fix: FIX_DATA },
  {
    name: "unknown dataset id",
    args: exp("ok", "--set", "data.dataset=nope", "--set", "data.path=null"),
    problem: /data\.dataset = "nope" is not a known dataset; known: gutenberg, gutenberg-bpe2k/,
    fix: FIX_CONFIG,
  },
  {
    name: "validation fraction out of range",
    args: exp("ok", "--set", "data.val_fraction=0.9"),
    problem: /data\.val_fraction = 0\.9/,
    fix: FIX_CONFIG,
  },
  {
    name: "model that cannot fit in memory",
    args: exp(
      "ok",
      ...["--set", "model.d_model=65536", "--set", "model.n_heads=1", "--set", "model.d_ff=262144"],
      ...["--set", "model.n_layers=64"],
    ),
    problem: /would need about [\d.]+ [TP]iB of memory .* this machine has .* available of/,
    fix: /--no-memory-check/,
  },
  // Queries and other commands.
  {
    name: "SQL syntax error",
    args: ["query", "SELEKT 1"],
    problem: /Parser Error: syntax error at or near "SELEKT"/,
    fix: /Fix the SQL statement and run again/,
  },
  {
    name: "SQL on an unknown table",
    args: ["query", "SELECT * FROM nosuch"],
    problem: /Catalog Error: Table with name nosuch does not exist/,
    fix: /Tables: experiments, runs, current_runs, metrics, run_metrics/,
  },
  {
    name: "SQL on an unknown column",
    args: ["query", "SELECT val_lost FROM runs"],
    problem: /Binder Error: .*val_lost/,
    fix: /DESCRIBE runs/,
  },
  {
    name: "empty SQL statement",
    args: ["query", " "],
    problem: /empty SQL statement/,
    fix: /deno task query "SELECT run_id, val_ppl FROM runs"/,
  },
  {
    name: "unknown output format",
    args: ["query", "SELECT 1", "--format", "xml"],
    problem: /argument 'xml' is invalid/,
    fix: /Allowed choices are table, csv, json, md/,
  },
  {
    name: "plot of an unknown experiment",
    args: ["plot", "nope"],
    problem: /Unknown experiment "nope"/,
    fix: /create the module/,
  },
  {
    name: "plot of an experiment without results",
    args: ["plot", "ok"],
    problem: /no results for ok/,
    fix: /run `deno task exp ok` first/,
  },
  {
    name: "unknown db action",
    args: ["db", "drop"],
    problem: /'drop' is invalid for argument 'action'/,
    fix: /expected rebuild or path/,
  },
  { name: "unknown command", args: ["train", "ok"], problem: /unknown command 'train'/, fix: /Usage: finelab|help/ },
];

const results = await tempResults("badinput");

for (const c of CASES) {
  Deno.test({
    name: `bad input: ${c.name}`,
    ...SUITE,
    async fn() {
      const o = await cli(results, c.args, { ...OPTS, env: c.env });
      assert.equal(o.code, c.code ?? 2, `${c.name}: exit ${o.code}\nstdout:\n${o.stdout}\nstderr:\n${o.stderr}`);
      assert.match(o.stderr, c.problem, `${c.name}: the problem is not named:\n${o.stderr}`);
      assert.match(o.stderr, c.fix, `${c.name}: the fix is not stated:\n${o.stderr}`);
      assertOneParagraph(o, c.name);
      await assertNothingStored(results, c.name);
    },
  });
}

Deno.test({
  name: "bad input: cleanup",
  ...SUITE,
  async fn() {
    await cleanup(results, TMP);
  },
});
