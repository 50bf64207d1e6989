/**
 * The signal watchdog (see lib/runner/signal_guard.ts): a Worker that listens for SIGINT and SIGTERM on its
 * own thread. If the main thread has not taken a signal after the grace period (it is blocked in a long
 * synchronous step), this writes the run's interrupted status and end line and ends the process.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type InterruptedRun, writeInterruptedSync } from "./signal_guard.ts";

let shared: Int32Array | null = null;
let run: InterruptedRun | null = null;
let graceMs = 1500, exitCode = 130;

self.onmessage = (e: MessageEvent) => {
  const d = e.data as { shared?: SharedArrayBuffer; graceMs?: number; exitCode?: number; run?: InterruptedRun | null };
  if (d.shared) shared = new Int32Array(d.shared);
  if (d.graceMs !== undefined) graceMs = d.graceMs;
  if (d.exitCode !== undefined) exitCode = d.exitCode;
  if ("run" in d) run = d.run ?? null;
};

/** Ends the whole process now (Deno.exit in a Worker ends only the Worker): libc `_exit`, else SIGKILL. */
function exitProcess(code: number): void {
  try {
    const lib = Deno.build.os === "darwin" ? "libSystem.B.dylib" : "libc.so.6";
    Deno.dlopen(lib, { _exit: { parameters: ["i32"], result: "void" } }).symbols._exit(code);
  } catch { /* no FFI: the hard way */ }
  Deno.kill(Deno.pid, "SIGKILL");
}

function onSignal(signal: Deno.Signal): void {
  setTimeout(() => {
    if (!shared || Atomics.compareExchange(shared, 0, 0, 2) !== 0) return; // the main thread took it
    const step = Atomics.load(shared, 1);
    const detail = `stopped by ${signal} while a step was blocking the main thread`;
    if (run) writeInterruptedSync(run, step, detail);
    try {
      Deno.stderr.writeSync(new TextEncoder().encode(
        `\ninterrupted (${signal}) inside a step that did not return within ${graceMs} ms: ` +
          `${run ? `the run is marked interrupted at step ${step}; ` : ""}run the same command again to resume it\n`,
      ));
    } catch { /* stderr closed */ }
    exitProcess(exitCode);
  }, graceMs);
}

Deno.addSignalListener("SIGINT", () => onSignal("SIGINT"));
Deno.addSignalListener("SIGTERM", () => onSignal("SIGTERM"));
