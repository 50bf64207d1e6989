import assert from "node:assert/strict";
import { enospcError, FAULT_POINTS, faultNaN, faultPoint, parseFaults, setFaults } from "./fault.ts";

Deno.test("parseFaults: actions, points and counts; a bad spec names itself and the accepted form", () => {
  assert.deepEqual(parseFaults("ckpt.state:2, enospc@fs.rename:1,nan@train.grad:5,hang@train.step:3"), [
    { action: "kill", point: "ckpt.state", n: 2 },
    { action: "enospc", point: "fs.rename", n: 1 },
    { action: "nan", point: "train.grad", n: 5 },
    { action: "hang", point: "train.step", n: 3 },
  ]);
  assert.deepEqual(parseFaults(""), []);
  assert.throws(() => parseFaults("ckpt.nope:1"), /bad spec "ckpt\.nope:1".*point one of: fs\.rename, /);
  assert.throws(() => parseFaults("ckpt.state:0"), /n >= 1/);
  assert.throws(() => parseFaults("boom@ckpt.state:1"), /expected \[kill\|enospc\|nan\|hang@\]<point>:<n>/);
  assert.ok(Object.keys(FAULT_POINTS).length >= 18);
});

Deno.test("faultPoint: inert without a spec; fires only at the n-th visit of its own point", () => {
  setFaults(null);
  for (let i = 0; i < 5; i++) faultPoint("ckpt.model");
  assert.equal(faultNaN("train.grad"), false);

  setFaults("enospc@ckpt.model:2");
  faultPoint("ckpt.optimizer"); // other points do not count
  faultPoint("ckpt.model");
  assert.throws(() => faultPoint("ckpt.model"), (e: Error & { code?: string }) => {
    assert.equal(e.code, "ENOSPC");
    assert.match(e.message, /No space left on device \(os error 28\), simulated by FINELAB_FAULT at ckpt\.model/);
    return true;
  });
  faultPoint("ckpt.model"); // third visit: nothing

  setFaults("nan@train.grad:3");
  assert.deepEqual([1, 2, 3, 4].map(() => faultNaN("train.grad")), [false, false, true, false]);
  setFaults(null);
  assert.equal(enospcError("x").message.includes("os error 28"), true);
});

function child(spec: string, code: string): Deno.Command {
  const url = new URL("./fault.ts", import.meta.url).href;
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", `import { faultPoint } from ${JSON.stringify(url)};\n${code}`],
    env: { FINELAB_FAULT: spec },
    stdout: "piped",
    stderr: "piped",
  });
}

Deno.test("faultPoint kill: the process dies by SIGKILL at the n-th visit; nothing after it runs", async () => {
  const out = await child(
    "run.status:2",
    `faultPoint("run.status"); console.log("first"); faultPoint("run.status"); console.log("second");`,
  ).output();
  assert.equal(out.signal, "SIGKILL");
  assert.equal(new TextDecoder().decode(out.stdout), "first\n");
  assert.match(new TextDecoder().decode(out.stderr), /FINELAB_FAULT: SIGKILL at run\.status:2/);
});

Deno.test("faultPoint hang: the process blocks (alive) until it is killed", async () => {
  const p = child("hang@exp.plan:1", `faultPoint("exp.plan"); console.log("not reached");`).spawn();
  const timeout = new Promise((r) => setTimeout(() => r("alive"), 1500));
  assert.equal(await Promise.race([p.status.then(() => "exited"), timeout]), "alive");
  p.kill("SIGKILL");
  const out = await p.output();
  assert.equal(new TextDecoder().decode(out.stdout), "");
  assert.match(new TextDecoder().decode(out.stderr), /hanging at exp\.plan:1/);
});
