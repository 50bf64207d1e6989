import assert from "node:assert/strict";
import { formatInference, type InferRow } from "./inference.ts";

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
