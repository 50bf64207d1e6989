import assert from "node:assert/strict";
import { gitState } from "./env.ts";

Deno.test("gitState: an untracked (not ignored) file such as a new experiment module makes the tree dirty", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finelab_git_" });
  const git = (...args: string[]) =>
    new Deno.Command("git", { args: ["-C", dir, ...args], stdout: "null", stderr: "null" }).output();
  try {
    if (!(await git("init", "-q").catch(() => null))?.success) {
      console.log("gitState test skipped: git is not installed");
      return;
    }
    await Deno.writeTextFile(`${dir}/.gitignore`, "results/\n");
    await git("add", ".gitignore");
    await git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init");
    const clean = await gitState(dir);
    assert.match(clean.commit ?? "", /^[0-9a-f]{40}$/);
    assert.equal(clean.dirty, false);
    await Deno.mkdir(`${dir}/results`);
    await Deno.writeTextFile(`${dir}/results/x.json`, "{}"); // ignored: still clean
    assert.equal((await gitState(dir)).dirty, false);
    await Deno.mkdir(`${dir}/experiments`);
    await Deno.writeTextFile(`${dir}/experiments/new.ts`, "export default 1;\n");
    assert.equal((await gitState(dir)).dirty, true);
    assert.deepEqual(await gitState(`${dir}/results/..x`), { commit: null, dirty: null }); // not a repo
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
