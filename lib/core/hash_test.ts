import assert from "node:assert/strict";
import { canonicalJson, hashValue } from "./hash.ts";

Deno.test("canonicalJson: key order does not change the hash", () => {
  const a = { train: { lr: 1e-3, steps: 10 }, model: { d_model: 64, ffn: { kind: "dense" } } };
  const b = { model: { ffn: { kind: "dense" }, d_model: 64 }, train: { steps: 10, lr: 0.001 } };
  assert.equal(canonicalJson(a), canonicalJson(b));
  assert.equal(hashValue(a), hashValue(b));
  assert.match(hashValue(a), /^[0-9a-f]{64}$/);
});

Deno.test("canonicalJson: any changed value changes the hash", () => {
  const base = { train: { lr: 1e-3, steps: 10 }, flag: true, name: "x", list: [1, 2] };
  const h = hashValue(base);
  for (
    const v of [{ ...base, flag: false }, { ...base, name: "y" }, { ...base, list: [2, 1] }, {
      ...base,
      train: { lr: 1.0000000000000002e-3, steps: 10 },
    }]
  ) assert.notEqual(hashValue(v), h);
  assert.equal(canonicalJson(-0), "0"); // one spelling for zero
});

Deno.test("canonicalJson: rejects values JSON cannot carry", () => {
  assert.throws(() => canonicalJson({ a: NaN }), /a = NaN: not a finite number/);
  assert.throws(() => canonicalJson({ a: Infinity }), /not a finite number/);
  assert.throws(() => canonicalJson({ a: undefined }), /undefined is not plain JSON/);
  assert.throws(() => canonicalJson({ a: new Map() }), /Map is not plain JSON/);
  assert.throws(() => canonicalJson({ a: () => 1 }), /function is not plain JSON/);
  assert.throws(() => canonicalJson({ a: 1n }), /bigint is not plain JSON/);
});
