import assert from "node:assert/strict";
import { isLocked, readLockInfo, tryLock, waitLock } from "./lock.ts";

Deno.test("tryLock: exclusive within a process, released on release()", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/lock`;
  const a = tryLock(path);
  assert.ok("release" in a);
  const b = tryLock(path);
  assert.ok("heldBy" in b);
  assert.equal(b.heldBy?.pid, Deno.pid);
  assert.ok(isLocked(path));
  a.release();
  a.release(); // idempotent
  assert.ok(!isLocked(path));
  const c = tryLock(path);
  assert.ok("release" in c);
  c.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tryLock: a SIGKILLed owner leaves no stale lock", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/lock`;
  const code = `import { tryLock } from ${JSON.stringify(new URL("./lock.ts", import.meta.url).href)};
const l = tryLock(${JSON.stringify(path)}); if (!("release" in l)) Deno.exit(3);
console.log("locked"); await new Promise((r) => setTimeout(r, 60000));`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /locked/);
  assert.ok(isLocked(path));
  assert.ok("heldBy" in tryLock(path));
  assert.equal(readLockInfo(path)?.pid, child.pid);
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel();
  assert.ok(!isLocked(path));
  const l = await waitLock(path, { timeoutMs: 1000 });
  assert.ok(l);
  l.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("waitLock: times out while another holder keeps the lock", async () => {
  const dir = await Deno.makeTempDir();
  const a = tryLock(`${dir}/lock`);
  assert.ok("release" in a);
  assert.equal(await waitLock(`${dir}/lock`, { timeoutMs: 150, pollMs: 50 }), null);
  a.release();
  await Deno.remove(dir, { recursive: true });
});
