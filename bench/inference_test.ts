import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backends/mod.ts";
import { formatInference, type InferRow, timeRounds } from "./inference.ts";

const row = (
  kind: string,
  form: string,
  min_ms: number,
  ffn_flops: number,
  what: "ffn" | "model" = "ffn",
): InferRow => ({
  d_model: 256,
  kind,
  form,
  phase: "prefill",
  what,
  rows: 1024,
  ms: min_ms + 1,
  min_ms,
  active_frac: kind === "dense" ? null : 0.25,
  ffn_flops,
});

Deno.test("formatInference: speed-up and time saved / FLOPs saved against dense, by the fastest calls", () => {
  const text = formatInference([
    row("dense", "model", 10, 1000),
    row("dsmoe", "blas", 4, 250), // saved 60% of the time for 75% of the FLOPs: 0.80
    row("topk_moe", "model", 12, 250), // slower than dense: negative
    row("dense", "model", 50, 0, "model"),
    row("dsmoe", "model", 40, 0, "model"),
  ]);
  const line = (k: string) => text.split("\n").find((l) => l.startsWith(k) && l.includes("%"))!;
  assert.match(line("dsmoe"), /5\.0 \(4\.0\)\s+2\.50\s+25\.0%\s+0\.250\s+0\.80$/);
  assert.match(line("topk_moe"), /0\.83\s+25\.0%\s+0\.250\s+-0\.27$/);
  assert.match(text, /dsmoe\s+model\s+prefill\s+1024\s+41\.0 \(40\.0\)\s+1\.25/);
});

Deno.test("timeRounds: every case once per round (decode cases `calls` times), 2 untimed rounds, median and fastest", async () => {
  await initBackend("cpu");
  const order: string[] = [];
  let now = 0;
  const dt: Record<string, number[]> = { a: [5, 5, 9, 1, 3], b: [1, 1, 1, 1, 2, 2, 2, 2, 4, 4] };
  const mk = (name: string, calls: number) => ({
    row: { ...row("dense", name, 0, 1), ms: undefined, min_ms: undefined },
    fn: () => {
      order.push(name);
      now += dt[name].shift()!;
      return tf.scalar(0);
    },
    calls,
  });
  const rows = timeRounds([mk("a", 1), mk("b", 2)], 3, () => now);
  assert.deepEqual(order.join(""), "abbabbabbabbabb");
  assert.deepEqual([rows[0].ms, rows[0].min_ms], [3, 1], "a: timed 9, 1, 3");
  assert.deepEqual([rows[1].ms, rows[1].min_ms], [2, 2], "b: timed 2, 2, 2, 2, 4, 4");
  assert.equal(rows[1].form, "b");
});
