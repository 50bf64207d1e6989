/**
 * The dashboard's real pages in headless Chromium (Debian `chromium`, driven by puppeteer-core): served
 * pages and the static export. One browser for all steps. Skips, with the reason, where Chromium is
 * missing (`apt-get install chromium`; FINELAB_CHROMIUM names another binary). Screenshots go to the
 * fixture's temp folder, or to FINELAB_SCREENSHOTS when set.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { dashFixture, HOSTILE } from "./testing.ts";
import { serve } from "./server.ts";
import { exportReport } from "./export.ts";
import { toFileUrl } from "../util/paths.ts";

const CHROMIUM = Deno.env.get("FINELAB_CHROMIUM") ?? "/usr/bin/chromium";
const hasChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
if (!hasChromium) console.log(`skipping the browser tests: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

/** A page that records console errors and uncaught exceptions. */
async function openPage(browser: Browser, errors: string[]): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warn") errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e}`));
  page.on("requestfailed", (r) => errors.push(`requestfailed: ${r.url()}`));
  return page;
}

Deno.test({
  name: "dashboard in Chromium: pages, charts, toggles, live updates, compare, SQL box, escaping, static export",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const fx = await dashFixture();
    const shots = Deno.env.get("FINELAB_SCREENSHOTS") ?? join(fx.paths.results, "screenshots");
    await Deno.mkdir(shots, { recursive: true });
    const ac = new AbortController();
    const server = serve({ paths: fx.paths }, { port: 0, signal: ac.signal });
    const base = `http://127.0.0.1:${server.addr.port}`;
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      pipe: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    const errors: string[] = [];
    const page = await openPage(browser, errors);
    const visit = async (path: string, shot?: string) => {
      errors.length = 0;
      const res = await page.goto(base + path, { waitUntil: "networkidle0" });
      assert.equal(res?.status(), 200, path);
      if (shot) await page.screenshot({ path: join(shots, `${shot}.png`), fullPage: true });
      assert.deepEqual(errors, [], `no console errors on ${path}`);
    };
    const count = (sel: string) => page.$$eval(sel, (els) => els.length);
    /** An element's text with runs of white space as one space. */
    const text = async (sel: string) => (await page.$eval(sel, (e) => e.textContent ?? "")).replace(/\s+/g, " ").trim();
    try {
      await t.step("index: every experiment, status counts, the running run, escaped text", async () => {
        await visit("/", "index");
        assert.deepEqual(
          await page.$$eval("#experiments tbody tr td:first-child a", (a) => a.map((x) => x.textContent?.trim())),
          [
            "other",
            "synth",
          ],
        );
        const synth = await page.$eval("#experiments tbody tr:nth-child(2) .status", (e) => e.textContent);
        assert.match(synth!, /running\s*1/);
        assert.match(synth!, /completed\s*5/);
        assert.equal(await count("#live-runs tbody tr"), 1);
        const desc = await page.$eval("#experiments tbody tr:first-child .desc", (e) => e.textContent);
        assert.ok(desc!.includes(HOSTILE), "hostile description shown as text");
        assert.equal(await count("main img"), 0, "no element injected");
        assert.equal(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned), undefined);
      });

      await t.step("experiment page: variant table, one line per run, dots per completed run, toggles", async () => {
        await visit("/exp/synth.html", "experiment");
        // Sorted by mean val ppl: wide (lower floor) first; the running variant is not in the database yet.
        const variants = await page.$$eval(
          "#variants tbody td:nth-child(2)",
          (e) => e.map((x) => x.textContent?.trim()),
        );
        assert.equal(variants[0], "wide");
        assert.deepEqual([...variants].sort(), ["child", "dense", "wide"]);
        assert.match(await page.$eval("#variants tbody tr:first-child td:nth-child(6)", (e) => e.textContent!), / ± /);
        // 6 runs with training-loss rows (5 finished + the running one): 6 line paths.
        assert.equal(await count('#curves g[aria-label="line"] path'), 6);
        assert.equal(await count('#finals g[aria-label="dot"] circle'), 5);
        // Hide a variant: its 2 runs' lines go.
        await page.click('#curves .toggles.variants input[value="dense"]');
        assert.equal(await count('#curves g[aria-label="line"] path'), 4);
        await page.click('#curves .toggles.variants input[value="dense"]');
        await page.select("#curves select.split", "val");
        assert.equal(await count('#curves g[aria-label="line"] path'), 6);
        assert.ok((await count('#curves g[aria-label="dot"] circle')) >= 5 * 4, "validation points drawn");
        await page.select("#curves select.split", "train");
        // Tooltip on hover.
        const svg = await page.$("#curves figure > svg"); // the chart (the legend swatches are svgs too)
        const box = (await svg!.boundingBox())!;
        await page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.5);
        await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5, { steps: 4 });
        await page.waitForSelector('#curves g[aria-label="tip"] text', { timeout: 5000 });
        assert.match(await page.$eval('#curves g[aria-label="tip"]', (e) => e.textContent!), /step \d+.*loss \d/s);
      });

      await t.step("live: an appended metric row appears without a reload", async () => {
        const before = Number(await page.$eval("#curves", (e) => (e as HTMLElement).dataset.points));
        const next = { step: 13, split: "train", name: "loss", value: 2.5 };
        await Deno.writeTextFile(fx.live.paths.metrics, JSON.stringify(next) + "\n", { append: true });
        await page.waitForFunction(
          (n) => Number((document.querySelector("#curves") as HTMLElement).dataset.points) === n + 1,
          { timeout: 10_000 },
          before,
        );
        assert.equal(await text(`tr[data-hash="${fx.live.hash}"] .steps`), "14 / 40");
        // The run ends (its process releases the lock): the badge follows, still without a reload.
        fx.live.lock.release();
        await page.waitForFunction(
          (h) => document.querySelector(`tr[data-hash="${h}"] .st`)?.textContent === "interrupted",
          { timeout: 10_000 },
          fx.live.hash,
        );
        assert.deepEqual(errors, []);
      });

      await t.step("run page: lineage, hash inputs, environment, attempts, its curve", async () => {
        await visit(`/run/${fx.child.manifest.hash}.html`, "run");
        assert.match(await text("main"), /parent: synth\/dense-s0/);
        assert.match(await page.$eval("#hash-inputs", (e) => e.textContent!), /key_schema: 1[\s\S]*parent:/);
        assert.match(await page.$eval("#config", (e) => e.textContent!), /d_model: \d+/);
        assert.equal(await count('#curves g[aria-label="line"] path'), 1);
        await visit(`/run/${fx.records[0].manifest.hash}.html`);
        assert.match(await text("main"), /children: synth\/child-s0/);
      });

      await t.step("compare: exactly the differing config keys, deltas, curves overlaid", async () => {
        await visit("/exp/synth.html");
        await page.click('#variants input[value="synth/dense"]');
        await page.click('#variants input[value="synth/wide"]');
        await Promise.all([page.waitForNavigation({ waitUntil: "networkidle0" }), page.click("#compare-picked")]);
        assert.match(page.url(), /compare\.html\?runs=synth%2Fwide,synth%2Fdense$/);
        await page.screenshot({ path: join(shots, "compare.png"), fullPage: true });
        assert.deepEqual(errors, []);
        assert.deepEqual(await page.$$eval("#config-diff tbody th", (e) => e.map((x) => x.textContent?.trim())), [
          "model.d_ff",
          "train.lr",
          "variant",
        ]);
        assert.match(await page.$eval("#metric-diff", (e) => e.textContent!), /val_ppl.*[+-]\d.*%/s);
        assert.equal(await count('#curves g[aria-label="line"] path'), 4);
      });

      await t.step("SQL box: rows and a chart; DROP TABLE refused and nothing dropped", async () => {
        await visit("/sql.html", "sql");
        await page.$eval("#sql", (e) => ((e as HTMLTextAreaElement).value = ""));
        await page.type("#sql", "SELECT variant, avg(val_ppl) AS ppl FROM runs GROUP BY variant ORDER BY variant");
        await page.click("#sql-run");
        await page.waitForSelector("#sql-table");
        assert.equal(await count("#sql-table tbody tr"), 4);
        assert.equal(await count('#sql-chart g[aria-label="bar"] rect'), 4);
        await page.$eval("#sql", (e) => ((e as HTMLTextAreaElement).value = "DROP TABLE runs"));
        await page.click("#sql-run");
        await page.waitForSelector("#sql-error");
        assert.match(await page.$eval("#sql-error", (e) => e.className), /refused/);
        assert.match(await page.$eval("#sql-error", (e) => e.textContent!), /DDL|refused/i);
        await page.$eval("#sql", (e) => ((e as HTMLTextAreaElement).value = "SELECT count(*) AS n FROM runs"));
        await page.click("#sql-run");
        await page.waitForSelector("#sql-table");
        assert.equal(await page.$eval("#sql-table tbody td", (e) => e.textContent), "6");
      });

      await t.step("a ../ path is refused", async () => {
        const res = await page.goto(`${base}/run/..%2F..%2F..%2Fetc%2Fpasswd.html`);
        assert.equal(res?.status(), 400);
        assert.doesNotMatch(await page.content(), /root:/);
      });

      await t.step("static export: opens from file:// with charts and no console errors", async () => {
        const out = join(fx.paths.results, "report");
        const s = await exportReport({ paths: fx.paths }, out);
        assert.equal(s.runs, 6, "every run of the database (the live one ended above and is not ingested)");
        for (const [path, lines] of [["index.html", 0], ["exp/synth.html", 5], ["compare/synth.html", 5]] as const) {
          errors.length = 0;
          await page.goto(toFileUrl(join(out, path)).href, { waitUntil: "load" });
          assert.deepEqual(errors, [], `no console errors on ${path}`);
          if (lines) assert.equal(await count('#curves g[aria-label="line"] path'), lines, path);
        }
        await page.goto(toFileUrl(join(out, "exp/synth.html")).href, { waitUntil: "load" });
        await page.click("main table.runs tbody tr:first-child a");
        await page.waitForSelector("#hash-inputs");
        assert.match(page.url(), /^file:.*\/run\/[0-9a-f]{64}\.html$/);
      });
    } finally {
      await browser.close();
      ac.abort();
      await server.finished;
      await fx.cleanup();
    }
  },
});
