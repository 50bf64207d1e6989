/**
 * One lock per run hash, so two processes never train the same run at once.
 *
 * The lock is an advisory `flock` on `<entry>/lock` (Deno's FsFile.tryLock): the kernel
 * drops it the moment its owner dies, however it dies (SIGKILL included), so a lock is
 * never left stale and a dead run is never shown as held. The file also records the
 * owner (pid, host, time) for humans; it is never deleted, because deleting a lock file
 * that others may have open reintroduces races.
 *
 * @module
 */
import { hostname } from "node:os";

/** Who holds a lock (as written into the lock file by its owner). */
export interface LockInfo {
  pid: number;
  hostname: string;
  acquired_at: string;
}

/** A held lock. */
export interface Lock {
  path: string;
  info: LockInfo;
  /** Releases the lock (idempotent). */
  release(): void;
}

/** Reads the owner recorded in a lock file (null when empty or unreadable). */
export function readLockInfo(path: string): LockInfo | null {
  try {
    const t = Deno.readTextFileSync(path);
    return t ? JSON.parse(t) as LockInfo : null;
  } catch {
    return null;
  }
}

/**
 * Tries to take the lock at `path` without waiting. Returns the lock, or `{ heldBy }`
 * (the owner recorded in the file, if readable) when another process, or another
 * handle in this process, holds it.
 */
export function tryLock(path: string): Lock | { heldBy: LockInfo | null } {
  const f = Deno.openSync(path, { read: true, write: true, create: true });
  let ok = false;
  try {
    ok = f.tryLockSync(true);
  } catch (e) {
    f.close();
    throw e;
  }
  if (!ok) {
    f.close();
    return { heldBy: readLockInfo(path) };
  }
  const info: LockInfo = { pid: Deno.pid, hostname: hostname(), acquired_at: new Date().toISOString() };
  f.truncateSync(0);
  f.writeSync(new TextEncoder().encode(JSON.stringify(info)));
  let released = false;
  return {
    path,
    info,
    release() {
      if (released) return;
      released = true;
      try {
        f.truncateSync(0);
        f.unlockSync();
      } finally {
        f.close();
      }
    },
  };
}

/** True when some live process holds the lock at `path` (probes by trying to take it). */
export function isLocked(path: string): boolean {
  let f: Deno.FsFile;
  try {
    f = Deno.openSync(path, { read: true }); // flock needs no write access: works on a read-only results folder
  } catch {
    return false;
  }
  try {
    const got = f.tryLockSync(true);
    if (got) f.unlockSync();
    return !got;
  } finally {
    f.close();
  }
}

/** Waits until the lock at `path` is taken (polling), or the timeout passes (then null). */
export async function waitLock(path: string, opts: { timeoutMs?: number; pollMs?: number } = {}): Promise<Lock | null> {
  const deadline = Date.now() + (opts.timeoutMs ?? Infinity);
  for (;;) {
    const r = tryLock(path);
    if ("release" in r) return r;
    if (Date.now() >= deadline) return null;
    await new Promise((res) => setTimeout(res, opts.pollMs ?? 500));
  }
}
