/**
 * Runs one Slurm client command with inherited stdio and exits with its code: `deno run --allow-run=<cmd>
 * exec.ts <cmd> [args]`. finelab's CLI runs with `--allow-run` limited to git and its own deno binary, and
 * naming a missing binary in `--allow-run` makes Deno print a notice on every command; so Slurm commands are
 * spawned through this script, with that one command allowed, only when the Slurm executor needs them.
 *
 * @module
 */

/** Printed (and exit 127) when the command is not on PATH. */
export const NOT_FOUND_MARK = "finelab-slurm-exec: not found";

if (import.meta.main) {
  const [cmd, ...args] = Deno.args;
  try {
    const o = await new Deno.Command(cmd, { args, stdin: "inherit", stdout: "inherit", stderr: "inherit" }).output();
    Deno.exit(o.code);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    console.error(NOT_FOUND_MARK);
    Deno.exit(127);
  }
}
