import assert from "node:assert/strict";
import { dashFixture } from "./testing.ts";
import { compare, differingKeys, flattenDotted, formatComparison, groupConfig, VARIES } from "./compare.ts";
import { escapeHtml, html } from "./html.ts";
import { curveOf, experimentList, experimentPage, liveRuns } from "./data.ts";
import { openStore } from "../store/mod.ts";
import { liveUpdate, runPage } from "./run_data.ts";
import { serve } from "./server.ts";
import { join } from "node:path";
import { permissionFlags } from "../cli/permissions.ts";
import { REPO_ROOT } from "../util/paths.ts";

Deno.test("html escapes every interpolation; nested templates stay markup", () => {
  const name = `<img src=x onerror="alert(1)">&'`;
  assert.equal(
    html`<td>${name}</td>${html`<b>${1}</b>`}${null}${[name, "x"]}`.text,
    `<td>${escapeHtml(name)}</td><b>1</b>${escapeHtml(name)}x`,
  );
  assert.equal(escapeHtml(name), "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;");
});

Deno.test("config diff: flattened keys, a variant's seeds vary, only differing keys listed", () => {
  assert.deepEqual(flattenDotted({ a: { b: 1, c: [1, 2] }, d: "x", e: null }), {
    "a.b": "1",
    "a.c": "[1,2]",
    d: "x",
    e: "null",
  });
  const g1 = groupConfig([{ seed: 0, lr: 1, d: 4 }, { seed: 1, lr: 1, d: 4 }]);
  const g2 = groupConfig([{ seed: 0, lr: 2, d: 4 }, { seed: 1, lr: 2, d: 4, extra: true }]);
  assert.equal(g1.seed, VARIES);
  assert.deepEqual(differingKeys([g1, g2]), ["extra", "lr"]);
  assert.deepEqual(differingKeys([g1, g1]), []);
});

Deno.test("compare and the diff text: variants by reference, differing keys, final-metric deltas", async () => {
  const fx = await dashFixture();
  try {
    const c = await compare({ paths: fx.paths }, ["synth/dense", "synth/wide"]);
    assert.deepEqual(c.groups.map((g) => g.hashes.length), [2, 2]);
    assert.deepEqual(c.differing, ["model.d_ff", "train.lr", "variant"]);
    const ppl = c.groups.map((g) => g.finals.val_ppl!);
    assert.ok(ppl[1] < ppl[0], "wide has the lower floor");
    const text = formatComparison(c);
    assert.match(text, /config: 3 keys differ/);
    assert.match(text, /model\.d_ff\s+384\s+1024/);
    assert.match(text, new RegExp(`val_ppl .*-${(ppl[0] - ppl[1]).toPrecision(3).slice(0, 4)}`));
    // A run hash prefix against a run: seeds differ too.
    const runs = fx.records.filter((r) => r.manifest.variant === "dense");
    const c2 = await compare({ paths: fx.paths }, runs.map((r) => r.manifest.hash.slice(0, 10)));
    assert.deepEqual(c2.differing, ["seed"]);
    await assert.rejects(compare({ paths: fx.paths }, ["synth/nope", "synth/dense"]), /names no run or variant/);
    await assert.rejects(compare({ paths: fx.paths }, ["synth/dense"]), /two or more/);
  } finally {
    await fx.cleanup();
  }
});

Deno.test("data: the running run shows as running with its curve; lineage from parent_hash; live rows after n", async () => {
  const fx = await dashFixture();
  try {
    const src = { paths: fx.paths };
    const e = (await experimentPage(src, "synth"))!;
    assert.equal(e.runs.find((r) => r.hash === fx.live.hash)?.status, "running");
    assert.equal(e.curves.find((c) => c.hash === fx.live.hash)?.train.length, 12);
    assert.equal(e.runs.length, 6);
    const child = (await runPage(src, fx.child.manifest.hash))!;
    assert.equal(child.parent?.hash, fx.records[0].manifest.hash);
    assert.deepEqual(child.ancestors.map((a) => a.depth), [1]);
    const parent = (await runPage(src, fx.records[0].manifest.hash))!;
    assert.deepEqual(parent.children.map((c) => c.hash), [fx.child.manifest.hash]);
    assert.match(parent.hashInputsYaml, /key_schema: 1/);
    const u = await liveUpdate(src, { [fx.live.hash]: 10 });
    assert.equal(u[fx.live.hash].status, "running");
    assert.equal(u[fx.live.hash].total, fx.live.rows.length);
    assert.deepEqual(u[fx.live.hash].rows, fx.live.rows.slice(10));
    assert.equal(await runPage(src, "../../etc/passwd"), null);
    assert.equal(await experimentPage(src, "../x"), null);
  } finally {
    await fx.cleanup();
  }
});

Deno.test({
  name: "server: 127.0.0.1 by default; traversal, unknown routes and writes refused",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const fx = await dashFixture();
    const ac = new AbortController();
    const server = serve({ paths: fx.paths }, { port: 0, signal: ac.signal });
    try {
      assert.equal(server.addr.hostname, "127.0.0.1");
      const base = `http://127.0.0.1:${server.addr.port}`;
      const get = async (path: string) => {
        const r = await fetch(base + path);
        await r.body?.cancel();
        return r.status;
      };
      assert.equal(await get("/"), 200);
      assert.equal(await get("/assets/plot.umd.min.js"), 200);
      assert.equal(await get("/assets/..%2f..%2fdeno.json"), 400);
      assert.equal(await get("/run/..%2F..%2Fdeno.json.html"), 400);
      assert.equal(await get("/assets/mod.ts"), 404);
      assert.equal(await get(`/run/${"0".repeat(64)}.html`), 404);
      assert.equal(await get("/exp/nope.html"), 404);
      // A raw request line with ../ (fetch would normalise it away).
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      await conn.write(
        new TextEncoder().encode("GET /assets/../../deno.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
      );
      const buf = new Uint8Array(4096);
      const n = await conn.read(buf);
      conn.close();
      const head = new TextDecoder().decode(buf.subarray(0, n ?? 0));
      assert.doesNotMatch(head, /"tasks"/, "deno.json is never served");
      assert.match(head, /^HTTP\/1\.1 (400|404)/);
      const post = await fetch(`${base}/run/${fx.child.manifest.hash}.html`, { method: "POST" });
      await post.body?.cancel();
      assert.equal(post.status, 405);
      const sql = await fetch(`${base}/api/sql`, { method: "POST", body: JSON.stringify({ sql: "DROP TABLE runs" }) });
      const body = await sql.json();
      assert.equal(sql.status, 400);
      assert.equal(body.refused, true);
      assert.match(body.error, /DDL|refused/i);
    } finally {
      ac.abort();
      await server.finished;
      await fx.cleanup();
    }
  },
});

Deno.test("deno task diff (with the task's scoped permissions): the comparison, exit 2 for an unknown reference", async () => {
  const fx = await dashFixture();
  try {
    const run = async (...refs: string[]) => {
      const flags = permissionFlags({ root: REPO_ROOT, results: fx.paths.results });
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-prompt", ...flags, join(REPO_ROOT, "lib/serve/main.ts"), "diff", ...refs],
        env: { FINELAB_RESULTS: fx.paths.results },
        cwd: REPO_ROOT,
      }).output();
      const dec = new TextDecoder();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    };
    const ok = await run("synth/dense", "synth/wide");
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /config: 3 keys differ/);
    assert.match(ok.stdout, /val_ppl/);
    const bad = await run("synth/dense", "synth/nope");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"synth\/nope" names no run or variant/);
  } finally {
    await fx.cleanup();
  }
});

Deno.test("data: index counts by status (a live run as running, not as stored); curves of a gone entry from the database", async () => {
  const fx = await dashFixture();
  try {
    const src = { paths: fx.paths };
    const live = await liveRuns(src);
    assert.deepEqual(live.map((l) => l.hash), [fx.live.hash]);
    const list = await experimentList(src, { live });
    assert.deepEqual(list.map((e) => [e.id, e.counts]), [["other", { completed: 1 }], ["synth", {
      completed: 5,
      running: 1,
    }]]);
    assert.deepEqual(await experimentList(src), list, "live runs found when not given");
    // The live run stored as interrupted (an earlier attempt, now resumed): counted once, as running.
    const done = fx.records.find((r) => r.manifest.experiment === "synth")!;
    const again = structuredClone(done);
    again.manifest.hash = fx.live.hash;
    again.manifest.run_id = "live/s0";
    again.status.status = "interrupted";
    const store = await openStore(fx.paths.db);
    try {
      const runs = [...fx.records.filter((r) => r.manifest.experiment === "synth"), again];
      const plan = { scale: "default", runs: runs.map((r) => ({ hash: r.manifest.hash, run_id: r.manifest.run_id })) };
      await store.ingest([again], [{ id: "synth", description: "d", module: "", n_runs: 6, plan }]);
    } finally {
      await store.close();
    }
    assert.deepEqual((await experimentList(src)).find((e) => e.id === "synth")!.counts, { completed: 5, running: 1 });
    // An entry removed from the cache (gc): its curve comes from the database.
    const gone = fx.records[1];
    const before = (await experimentPage(src, "synth"))!.curves.find((c) => c.hash === gone.manifest.hash)!;
    assert.deepEqual(before, curveOf(gone.manifest.hash, gone.metrics));
    assert.ok(before.train.length > 0 && before.val.length > 0);
    await Deno.remove(`${fx.paths.cache}/${gone.manifest.hash}`, { recursive: true });
    const after = (await experimentPage(src, "synth", { live }))!.curves.find((c) => c.hash === gone.manifest.hash);
    assert.deepEqual(after, before);
  } finally {
    await fx.cleanup();
  }
});
