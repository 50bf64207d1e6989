/**
 * `deno run lib/cli/permissions.ts` prints the CLI's permission flags; the flags themselves are computed by lib/runner/permissions.ts (see there for each flag and why).
 *
 * @module
 */
import { flagsFromEnv } from "../runner/permissions.ts";

export {
  ENV_VARS,
  flagsFromEnv,
  permissionFlags,
  type PermissionOptions,
  SYS_NAMES,
  SYSTEM_READS,
} from "../runner/permissions.ts";

if (import.meta.main) {
  // Paths may contain spaces only when quoted by the caller; deno task splits on whitespace.
  const flags = flagsFromEnv();
  for (const f of flags) {
    if (/\s/.test(f)) {
      console.error(`finelab: a permission path contains whitespace (${f}); use a path without spaces`);
      Deno.exit(2);
    }
  }
  console.log(flags.join(" "));
}
