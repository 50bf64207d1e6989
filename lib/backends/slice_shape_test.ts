import assert from "node:assert/strict";
import type { TensorInfo } from "@tensorflow/tfjs-core";
import { copySliceRows, sliceParams, splitSlices } from "./slice_shape.ts";

const info = (shape: number[]) => ({ dataId: {}, shape, dtype: "float32" }) as TensorInfo;

Deno.test("sliceParams resolves -1 sizes and scalar begins as tfjs does", () => {
  assert.deepEqual(sliceParams(info([4, 6]), { begin: [1, 2], size: [-1, 3] }), [[1, 2], [3, 3]]);
  assert.deepEqual(sliceParams(info([5]), { begin: 2, size: -1 }), [[2], [3]]);
});

Deno.test("splitSlices gives each piece its own begin along the axis, in order", () => {
  const got = splitSlices(info([2, 7]), { axis: -1, numOrSizeSplits: [3, 4] }, (b, s) => [b, s]);
  assert.deepEqual(got, [[[0, 0], [2, 3]], [[0, 3], [2, 4]]]);
});

Deno.test("copySliceRows copies a strided 3-D slice row by row", () => {
  const shape = [2, 3, 4], xv = Float32Array.from({ length: 24 }, (_, i) => i);
  const ov = new Float32Array(1 * 2 * 2);
  copySliceRows(xv, ov, shape, { begin: [1, 1, 1], sz: [1, 2, 2] });
  // x[1][1][1..2] = 17, 18; x[1][2][1..2] = 21, 22.
  assert.deepEqual([...ov], [17, 18, 21, 22]);
});
