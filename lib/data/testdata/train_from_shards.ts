/**
 * Child of shards_test.ts: trains a tiny model for a few steps from the token shards in
 * `dir` (tokens.json names them) and prints {steps, loss, vmhwm_bytes}: the process's
 * peak resident memory, read from /proc/self/status after training.
 */
import { join } from "node:path";
import { TokenStream } from "../shards.ts";
import { train } from "../../train/mod.ts";
import { tinyRunConfig } from "../../train/test_util.ts";
import type { Dataset } from "../types.ts";

const dir = Deno.args[0];
const meta = JSON.parse(await Deno.readTextFile(join(dir, "tokens.json")));
const trainSplit = await TokenStream.open(dir, meta.train), val = await TokenStream.open(dir, meta.val);
const config = tinyRunConfig("cpu", { steps: 3, eval_every: 3, eval_batches: 1, checkpoint_every: 0 });
config.model.vocab_size = meta.vocab_size;
const dataset: Dataset = {
  manifest: {} as Dataset["manifest"],
  vocabSize: meta.vocab_size,
  train: trainSplit,
  val,
};
const run = await Deno.makeTempDir({ prefix: "finelab-shards-run-" });
try {
  const out = await train({ config, dataset, dir: run, warn: () => {} });
  const status = await Deno.readTextFile("/proc/self/status");
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
  console.log(JSON.stringify({ steps: config.train.steps, loss: out.summary.val_loss, vmhwm_bytes: hwm }));
} finally {
  await Deno.remove(run, { recursive: true });
}
