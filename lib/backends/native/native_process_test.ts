/**
 * The native backend seen from other processes: its fallback and errors when a CBLAS or a C
 * compiler is missing (lib/backends/native/testdata/resolve.ts), and whole training runs that
 * must give the same loss bits in two processes and match the wasm backend. Kernel-level
 * comparisons are in native_test.ts. Skipped (with the reason printed) where no CBLAS or C
 * compiler is available, except the no-CBLAS fallback, which needs neither.
 */
import assert from "node:assert/strict";
import { nativeAvailability } from "./mod.ts";

const avail = nativeAvailability();
const ignore = !avail.ok;
if (ignore) console.log(`native backend process tests skipped: ${avail.why}. To run them: ${avail.fix}`);

const DENO_RUN = ["run", "--no-prompt", "--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "--allow-sys"];

async function runJson(args: string[], env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [...DENO_RUN, "--allow-run", ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout), err = new TextDecoder().decode(r.stderr);
  assert.ok(r.success, `subprocess failed (${r.code}): ${err.slice(-1500)}`);
  return JSON.parse(out.slice(out.indexOf("{")));
}

const RESOLVE = new URL("./testdata/resolve.ts", import.meta.url).pathname;

Deno.test("without a CBLAS, auto falls back to wasm naming native's cause and fix; explicit native throws", async () => {
  const r = await runJson([RESOLVE], { FINELAB_BLAS: "/nonexistent/libcblas.so" });
  const auto = r.auto as { name: string; reason: string }, native = r.native as { error?: string };
  assert.equal(auto.name, "wasm");
  assert.match(auto.reason, /native: no usable CBLAS library \(tried \/nonexistent\/libcblas\.so: .*\(to fix: /);
  assert.match(native.error ?? "", /backend "native" is unavailable: no usable CBLAS library.*To fix: /);
});

Deno.test({
  name: "without a C compiler and no built kernels, native is unavailable with the reason and fix",
  ignore,
  async fn() {
    const empty = await Deno.makeTempDir();
    try {
      const r = await runJson([RESOLVE], { CC: "/nonexistent/cc", FINELAB_NATIVE_DIR: empty });
      assert.equal((r.auto as { name: string }).name, "wasm");
      assert.match((r.native as { error: string }).error, /no C compiler found .*To fix: install one/);
    } finally {
      await Deno.remove(empty, { recursive: true });
    }
  },
});

Deno.test({
  name: "native training (dense and Finedeep): bit-identical in two processes, and losses match wasm to 1e-5",
  ignore,
  async fn() {
    const bench = new URL("../../train/bench.ts", import.meta.url).pathname;
    for (const ffn of ["dense", "finedeep"]) {
      const args = (backend: string) => [bench, "--backend", backend, "--ffn", ffn, "--steps", "3", "--warmup", "0"];
      const a = await runJson(args("native")), b = await runJson(args("native"));
      assert.equal(a.backend, "native");
      assert.deepEqual(a.loss_hex, b.loss_hex, `${ffn}: two native processes must give the same loss bits`);
      const w = await runJson(args("wasm"));
      const la = a.losses as number[], lw = w.losses as number[];
      assert.equal(la.length, 3);
      for (let s = 0; s < 3; s++) {
        const rel = Math.abs(la[s] - lw[s]) / Math.abs(lw[s]);
        assert.ok(rel < 1e-5, `${ffn} step ${s}: native ${la[s]} vs wasm ${lw[s]} (relative ${rel})`);
      }
    }
  },
});
