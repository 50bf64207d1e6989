import assert from "node:assert/strict";
import { formatFloat, formatResult } from "./format.ts";
import type { QueryResult } from "./result.ts";

const TINY: QueryResult = {
  columns: [
    { name: "variant", type: "VARCHAR" },
    { name: "seed", type: "BIGINT" },
    { name: "val_ppl", type: "DOUBLE" },
    { name: "ok", type: "BOOLEAN" },
    { name: "note", type: "VARCHAR" },
  ],
  rows: [
    { variant: "dense", seed: 0, val_ppl: 12.3456789, ok: true, note: null },
    { variant: "fine,deep", seed: "9007199254740993", val_ppl: 0.00001234, ok: false, note: 'say "hi"\nbye|x' },
  ],
};

Deno.test("table: aligned, numbers right, floats to 6 significant digits, NULL, footer", () => {
  assert.equal(
    formatResult(TINY, "table"),
    [
      " variant   |             seed |  val_ppl | ok    | note",
      "-----------+------------------+----------+-------+-----------------",
      " dense     |                0 |  12.3457 | true  | NULL",
      ' fine,deep | 9007199254740993 | 1.234e-5 | false | say "hi"\\nbye|x',
      "(2 rows)",
      "",
    ].join("\n"),
  );
  const one: QueryResult = { columns: [{ name: "n", type: "INTEGER" }], rows: [{ n: 7 }] };
  assert.equal(formatResult(one, "table"), " n\n---\n 7\n(1 row)\n");
  assert.equal(formatResult({ columns: [], rows: [] }, "table"), "(0 rows)\n");
});

Deno.test("table: long cells are cut at maxWidth", () => {
  const r: QueryResult = { columns: [{ name: "s", type: "VARCHAR" }], rows: [{ s: "abcdefghij" }] };
  assert.equal(formatResult(r, "table", { maxWidth: 5 }), " s\n-------\n abcd…\n(1 row)\n");
  assert.equal(formatResult(r, "table", { maxWidth: 0 }), " s\n------------\n abcdefghij\n(1 row)\n");
});

Deno.test("csv: RFC 4180 quoting, CRLF, empty NULL, full precision", () => {
  assert.equal(
    formatResult(TINY, "csv"),
    'variant,seed,val_ppl,ok,note\r\ndense,0,12.3456789,true,\r\n"fine,deep",9007199254740993,0.00001234,false,"say ""hi""\nbye|x"\r\n',
  );
});

Deno.test("json: array of row objects in column order", () => {
  const out = formatResult(TINY, "json");
  assert.equal(
    out,
    `[
  {
    "variant": "dense",
    "seed": 0,
    "val_ppl": 12.3456789,
    "ok": true,
    "note": null
  },
  {
    "variant": "fine,deep",
    "seed": "9007199254740993",
    "val_ppl": 0.00001234,
    "ok": false,
    "note": "say \\"hi\\"\\nbye|x"
  }
]
`,
  );
  assert.deepEqual(JSON.parse(out), TINY.rows);
});

Deno.test("md: GitHub table, numeric columns right-aligned, pipes escaped, newlines as <br>", () => {
  assert.equal(
    formatResult(TINY, "md"),
    [
      "| variant | seed | val_ppl | ok | note |",
      "| --- | ---: | ---: | --- | --- |",
      "| dense | 0 | 12.3457 | true | NULL |",
      '| fine,deep | 9007199254740993 | 1.234e-5 | false | say "hi"<br>bye\\|x |',
      "",
    ].join("\n"),
  );
});

Deno.test("formatFloat: plain in [1e-4, 1e15), exponent outside, trailing zeros dropped", () => {
  assert.equal(formatFloat(0), "0");
  assert.equal(formatFloat(3), "3");
  assert.equal(formatFloat(2.5), "2.5");
  assert.equal(formatFloat(-1.0000001), "-1");
  assert.equal(formatFloat(0.001234567), "0.00123457");
  assert.equal(formatFloat(123456.7), "123457");
  assert.equal(formatFloat(1.5e15), "1.5e+15");
  assert.equal(formatFloat(3e-7), "3e-7");
  assert.equal(formatFloat(NaN), "NaN");
});

Deno.test("unknown format is rejected with the list of formats", () => {
  assert.throws(
    () => formatResult(TINY, "xml" as "csv"),
    /unknown output format "xml"; use one of: table, csv, json, md/,
  );
});
