import assert from "node:assert/strict";
import { train } from "../train/mod.ts";
import { syntheticDataset, tinyRunConfig } from "../train/test_util.ts";
import { entryPaths, liveMetricsSink, readMetrics, writeResults } from "./cache.ts";
import type { MetricRow } from "../core/records.ts";

const dataset = syntheticDataset();

Deno.test("metrics.jsonl grows while a run trains; a resumed attempt truncates it to its checkpoint: no duplicates, same bytes as one run", async () => {
  const root = await Deno.makeTempDir();
  const config = tinyRunConfig("cpu", { steps: 8, checkpoint_every: 2, eval_every: 3, log_every: 1 });
  const full = await train({ config, dataset, dir: `${root}/full`, warn: () => {} });

  const p = entryPaths(root, "live");
  await Deno.mkdir(p.dir, { recursive: true });
  const sink = liveMetricsSink(p);
  const seen: number[] = []; // rows in the file after each append, read back from disk
  const probe = {
    start: sink.start,
    async append(rows: readonly MetricRow[]) {
      await sink.append(rows);
      seen.push((await readMetrics(p)).length);
    },
  };
  // First attempt: killed after 5 steps (checkpoint at 4): the file holds the rows of steps 0-4.
  const part = await train({ config, dataset, dir: p.dir, stopAfter: 5, metricsSink: probe });
  assert.equal(part.stopped, true);
  assert.deepEqual(await readMetrics(p), part.metrics, "the file holds every row logged so far");
  assert.ok(seen.length >= 5 && seen.every((n, i) => i === 0 || n > seen[i - 1]), `grows per step: ${seen}`);
  const step4 = part.metrics.filter((r) => r.step === 4 && r.split === "train").length;
  assert.ok(step4 > 0, "step 4 was logged before the kill");

  // Resume: start() truncates to the checkpoint's rows, the steps after it are logged again once.
  const resumed = await train({ config, dataset, dir: p.dir, metricsSink: probe, warn: () => {} });
  assert.equal(resumed.summary.resumed_from_step, 4);
  const live = await readMetrics(p);
  const key = (r: MetricRow) => `${r.split}/${r.name}@${r.step}`;
  assert.equal(new Set(live.map(key)).size, live.length, "no duplicate rows");
  assert.deepEqual(live, full.metrics, "the live file equals an uninterrupted run's metrics, value for value");
  const before = await Deno.readTextFile(p.metrics);
  await writeResults(p, resumed.summary, resumed.metrics);
  assert.equal(await Deno.readTextFile(p.metrics), before, "the final atomic write leaves the same bytes");
  for (const [a, b] of live.map((r, i) => [r.value, full.metrics[i].value])) assert.ok(Object.is(a, b));
  await Deno.remove(root, { recursive: true });
});
