import assert from "node:assert/strict";
import { fromFileUrl, toFileUrl } from "../util/paths.ts";

const REPO = fromFileUrl(new URL("../..", import.meta.url)).replace(/\/$/, "");

/** `deno check` on an experiment module written to a temp folder; returns the type errors (code, line, text). */
async function typeErrors(body: string): Promise<{ code: string; line: number; text: string }[]> {
  const dir = await Deno.makeTempDir({ prefix: "finelab-typecheck-" });
  try {
    const file = `${dir}/exp.ts`;
    const mod = toFileUrl(`${REPO}/lib/experiment/mod.ts`).href;
    await Deno.writeTextFile(file, `import { defineExperiment } from "${mod}";\n${body}\n`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--config", `${REPO}/deno.json`, file],
      cwd: REPO,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    const errors = [...text.matchAll(/(TS\d+) \[ERROR\]: ([^\n]*)[\s\S]*?at file:\/\/[^\n]*exp\.ts:(\d+):\d+/g)]
      .map((m) => ({ code: m[1], text: m[2], line: Number(m[3]) - 1 }));
    assert.equal(out.success, errors.length === 0, text);
    return errors;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("deno check rejects an experiment module with a mistyped or unknown FFN option, accepts a correct one", async () => {
  const errors = await typeErrors(`export default defineExperiment({
  id: "bad", description: "typed FFN options", seeds: [0],
  model: { ffn: { kind: "finedeep", m: 4, k: 4, score: "output" } },
  variants: {
    ok: { model: { ffn: { kind: "dsmoe", tau: 0.5, ste: true } } },
    typo_value: { model: { ffn: { kind: "finedeep", norm_fn: "sigmod" } } },
    typo_name: { model: { ffn: { kind: "dsmoe", tua: 0.5 } } },
  },
  scales: { tiny: { model: { ffn: { kind: "topk_moe", top_k: "2" } } } },
});`);
  // Lines (1-based within the body): 3 and 5 are correct; 6, 7 and 9 each carry one error.
  assert.deepEqual(errors.map((e) => e.line), [6, 7, 9], JSON.stringify(errors));
  assert.match(errors[0].text, /"sigmod".*not assignable to type 'FinedeepNorm \| undefined'.*"sigmoid"/);
  assert.match(errors[1].text, /'tua' does not exist/);
  assert.match(errors[2].text, /'string' is not assignable to type 'number'/);
});
