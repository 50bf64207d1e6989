/**
 * Test helper: opens the store at <db path>, ingests the synthetic run <variant>, prints "ingested" and then
 * waits to be killed (SIGKILL: no close, no checkpoint). What is committed must survive that.
 * Usage: deno run --allow-ffi --allow-read --allow-write --allow-env ingest_and_die.ts <db path> <variant>
 *
 * @module
 */
import { openStore } from "../mod.ts";
import { syntheticRunRecord } from "../testing.ts";

const [path, variant] = Deno.args;
const store = await openStore(path);
await store.ingest([syntheticRunRecord({ variant })]);
console.log("ingested");
await new Promise((r) => setTimeout(r, 60_000));
