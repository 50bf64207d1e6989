// Test helper (native_test.ts runs it in a subprocess with a changed environment): prints
// JSON {auto: {name, reason}, native: {name} | {error}} for this process's backend resolution.
import { resolveBackend } from "../../mod.ts";
const auto = await resolveBackend("auto");
let native: unknown;
try {
  native = { name: (await resolveBackend("native")).name };
} catch (e) {
  native = { error: (e as Error).message };
}
console.log(JSON.stringify({ auto, native }));
Deno.exit(0);
