/**
 * Test helper: opens a DuckDB file for writing in this process, prints "locked", holds it for N ms, exits.
 * Usage: deno run --allow-ffi --allow-read --allow-write hold_lock.ts <db path> <ms>
 *
 * @module
 */
import { DuckDBInstance } from "@duckdb/node-api";

const [path, ms] = Deno.args;
const inst = await DuckDBInstance.create(path);
console.log("locked");
await new Promise((r) => setTimeout(r, Number(ms)));
inst.closeSync();
