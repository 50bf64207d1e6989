/**
 * Checks the results folder (`results/` or FINELAB_RESULTS) before a command uses it, so an unusable one
 * gives one clear message and exit 2 instead of a stack trace deep inside a write.
 *
 * @module
 */
import { UserError } from "./errors.ts";

const HOW = "Point FINELAB_RESULTS at a folder you can write (or unset it to use results/ in the project).";

function describe(e: unknown): string {
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) return "permission denied";
  const msg = e instanceof Error ? e.message : String(e);
  if (/Read-only file system|os error 30/i.test(msg)) return "it is on a read-only file system";
  return msg.split("\n")[0];
}

/**
 * Throws a {@link UserError} (exit 2) when `dir` cannot be the results folder: it is a file, or (with
 * `write`) it cannot be created or written. Read-only commands pass `write: false`: a missing folder is fine
 * for them (nothing to read yet) and a read-only one too.
 */
export async function checkResultsDir(dir: string, opts: { write: boolean }): Promise<void> {
  let info: Deno.FileInfo | null = null;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new UserError(`cannot use the results folder ${dir}: ${describe(e)}. ${HOW}`);
    }
  }
  if (info && !info.isDirectory) {
    throw new UserError(`the results folder ${dir} is a file, not a folder. ${HOW}`);
  }
  if (!opts.write) return;
  const probe = `${dir}/.finelab-write-probe-${Deno.pid}`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (e) {
    await Deno.remove(probe).catch(() => {});
    throw new UserError(
      `cannot write to the results folder ${dir}: ${describe(e)}. ${HOW} Read-only commands (query, runs, ` +
        "plot --out <folder>) work on a read-only results folder.",
    );
  }
}
