/**
 * The results dashboard: `deno task serve` (live, read-only, on 127.0.0.1), `deno task report` (the same
 * pages as a static folder) and `deno task diff` (the compare view in the terminal). It reads the results
 * database and the run cache and never writes them.
 *
 * @module
 */
export { handler, serve, type ServeOptions, SQL_ROW_LIMIT } from "./server.ts";
export { exportReport, type ExportSummary } from "./export.ts";
export { compare, CompareError, type Comparison, formatComparison } from "./compare.ts";
export type { Source } from "./data.ts";
