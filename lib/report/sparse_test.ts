import assert from "node:assert/strict";
import { LEAD_HEADER, leadCells, PARAM_HEADER, paramCells } from "./sparse.ts";

Deno.test("sparse summary cells: lead and parameter cells format a summary row, '-' for missing values; headers match", () => {
  const r = {
    variant: "dsmoe_t0.5",
    seeds: 3,
    ppl_mean: 41.23456,
    ppl_std: 0.5,
    params_total: 1234567.4,
    params_active: 654321,
    ffn_active_pct: 37.25,
  };
  assert.deepEqual(leadCells(r), ["dsmoe_t0.5", "3", "41.235 ± 0.500"]);
  assert.deepEqual(paramCells(r), ["1234567", "654321", "37.3%"]);
  const bare = {
    variant: "dense",
    seeds: 1,
    ppl_mean: 40,
    ppl_std: null,
    params_total: null,
    params_active: 10,
    ffn_active_pct: null,
  };
  assert.deepEqual(leadCells(bare), ["dense", "1", "40.000"]);
  assert.deepEqual(paramCells(bare), ["-", "10", "-"]);
  // Each header names its cells, one column a cell.
  assert.equal(LEAD_HEADER.length, leadCells(r).length);
  assert.equal(PARAM_HEADER.length, paramCells(r).length);
});
