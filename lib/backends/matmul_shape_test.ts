import assert from "node:assert/strict";
import { matmulShape } from "./matmul_shape.ts";

const f = (shape: number[], dtype = "float32") => ({ shape, dtype });

Deno.test("matmulShape: m, k, n under the transpose flags; batches; what the fast paths do not cover", () => {
  const g = matmulShape(f([3, 5, 4]), f([4, 7]), {});
  assert.deepEqual([g.supported, g.m, g.k, g.n, g.batchA, g.batchB, g.outShape], [true, 5, 4, 7, 3, 1, [3, 5, 7]]);
  const t = matmulShape(f([2, 4, 5]), f([2, 7, 4]), { transposeA: true, transposeB: true });
  assert.deepEqual([t.supported, t.m, t.k, t.n, t.outShape], [true, 5, 4, 7, [2, 5, 7]]);
  assert.equal(matmulShape(f([2, 3, 5, 4]), f([3, 4, 7]), {}).supported, false, "general broadcasting");
  assert.equal(matmulShape(f([5, 4]), f([3, 7]), {}).supported, false, "k mismatch");
  assert.equal(matmulShape(f([0, 4]), f([4, 7]), {}).supported, false, "empty");
  assert.equal(matmulShape(f([5, 4], "int32"), f([4, 7]), {}).supported, false, "int32");
});
