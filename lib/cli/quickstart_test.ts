/**
 * The README quickstart on a clean clone: `git clone` of this repository (its HEAD commit) into a temp folder,
 * `deno install --frozen`, then `deno task exp dense-baseline --scale tiny` with the system font folder hidden
 * (a private mount namespace with an empty tmpfs on /usr/share/fonts, where `unshare` allows it). The plots must
 * carry text: each PNG equals the in-process rendering of its SVG with the bundled font and differs from a
 * rendering without any font (resvg silently drops text without one).
 *
 * With `FINELAB_TEST_FRESH_DENO_DIR=1` the clone also gets an empty Deno cache (DENO_DIR), so every npm package
 * is downloaded (needs the npm registry; about a minute more), as on a fresh machine.
 *
 * @module
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../util/paths.ts";
import { renderPng } from "../plot/render.ts";

const dec = new TextDecoder();

async function sh(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), ...opts, stdout: "piped", stderr: "piped" })
    .output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Whether this machine lets an unprivileged process mount a tmpfs in its own namespace. */
async function canHideFonts(): Promise<boolean> {
  try {
    const r = await sh(["unshare", "-rm", "sh", "-c", "mount -t tmpfs none /usr/share/fonts 2>/dev/null || exit 3"]);
    return r.code === 0;
  } catch {
    return false;
  }
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

const hasGit = await sh(["git", "-C", REPO_ROOT, "rev-parse", "HEAD"]).then((r) => r.code === 0).catch(() => false);
if (!hasGit) console.log("quickstart test skipped: the project folder is not a git checkout (or git is missing)");

Deno.test({
  name: "quickstart on a clean clone with the system fonts hidden: trains, plots with text, exit 0",
  ignore: !hasGit,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "finelab-quickstart-" });
    try {
      const clone = `${tmp}/finelab`;
      const c = await sh(["git", "clone", "-q", REPO_ROOT, clone]);
      assert.equal(c.code, 0, c.stderr);
      const fresh = env("FINELAB_TEST_FRESH_DENO_DIR") === "1";
      const childEnv: Record<string, string> = { NO_COLOR: "1", FINELAB_PROGRESS_EVERY: "0" };
      if (fresh) childEnv.DENO_DIR = `${tmp}/deno_dir`;
      else console.log("quickstart test: shared Deno cache (FINELAB_TEST_FRESH_DENO_DIR=1 starts from an empty one)");
      const inst = await sh([Deno.execPath(), "install", "--frozen"], { cwd: clone, env: childEnv });
      assert.equal(inst.code, 0, `deno install: ${inst.stderr}`);

      const task = [Deno.execPath(), "task", "exp", "dense-baseline", "--scale", "tiny", "--plain"];
      const hide = await canHideFonts();
      if (!hide) {
        console.log("quickstart test: system fonts not hidden (unshare -rm with a tmpfs mount is not allowed)");
      }
      const cmd = hide
        ? [
          "unshare",
          "-rm",
          "sh",
          "-c",
          'mount -t tmpfs none /usr/share/fonts && test -z "$(ls -A /usr/share/fonts)" && exec "$@"',
          "_",
        ]
          .concat(task)
        : task;
      const r = await sh(cmd, { cwd: clone, env: childEnv });
      assert.equal(r.code, 0, `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      assert.match(r.stdout, /2 runs: 2 trained/);

      const dir = `${clone}/results/plots/dense-baseline`;
      const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assert.ok(names.includes("loss_curves.png") && names.includes("loss_curves.svg"), names.join(", "));
      for (const base of names.filter((n) => n.endsWith(".svg")).map((n) => n.slice(0, -4))) {
        const svg = await Deno.readTextFile(`${dir}/${base}.svg`);
        const png = await Deno.readFile(`${dir}/${base}.png`);
        assert.match(svg, /<text[^>]*>[^<]+<\/text>/, `${base}.svg has text`);
        assert.deepEqual(png, renderPng(svg).png, `${base}.png is the SVG drawn with the bundled font`);
        assert.notDeepEqual(png, renderPng(svg, { fontFiles: [], fontDirs: [] }).png, `${base}.png has glyphs`);
      }
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});
