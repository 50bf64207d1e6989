import assert from "node:assert/strict";
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  type SafeTensor,
  writeSafetensors,
} from "./safetensors.ts";

Deno.test("header bytes follow the spec exactly", () => {
  const bytes = encodeSafetensors([["a", { dtype: "F32", shape: [2], data: new Float32Array([1, -2]) }]], {
    format: "pt",
  });
  const json = '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  // 85 bytes of JSON + 3 spaces so the data starts at 8 + 88 = 96, a multiple of 8.
  assert.equal(json.length, 85);
  const n = new DataView(bytes.buffer).getBigUint64(0, true);
  assert.equal(n, 88n);
  assert.deepEqual(Array.from(bytes.subarray(0, 8)), [88, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(new TextDecoder().decode(bytes.subarray(8, 96)), json + "   ");
  assert.equal(bytes.length, 96 + 8);
  // 1.0f and -2.0f little-endian
  assert.deepEqual(Array.from(bytes.subarray(96)), [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
});

Deno.test("round trip of several dtypes, shapes (incl. scalar and empty) and metadata", async () => {
  const tensors: [string, SafeTensor][] = [
    ["layers.0.w", { dtype: "F32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, Number.NaN]) }],
    ["f64", { dtype: "F64", shape: [1], data: new Float64Array([Math.PI]) }],
    ["i32", { dtype: "I32", shape: [], data: new Int32Array([-7]) }],
    ["u8", { dtype: "U8", shape: [3], data: new Uint8Array([1, 2, 255]) }],
    ["i64", { dtype: "I64", shape: [2], data: new BigInt64Array([-1n, 2n ** 40n]) }],
    ["bf16", { dtype: "BF16", shape: [1], data: new Uint16Array([0x3f80]) }],
    ["empty", { dtype: "F32", shape: [0, 4], data: new Float32Array(0) }],
  ];
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  await writeSafetensors(path, tensors, { step: "12" });
  const back = await readSafetensors(path);
  assert.deepEqual(back.metadata, { step: "12" });
  assert.deepEqual([...back.tensors.keys()], tensors.map(([n]) => n));
  for (const [name, t] of tensors) assert.deepEqual(back.tensors.get(name), t, name);
  await Deno.remove(path);
});

Deno.test("decoding rejects malformed files with a reason", () => {
  const good = encodeSafetensors({ a: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } });
  const hlen = Number(new DataView(good.buffer).getBigUint64(0, true));
  const withHeader = (h: string, data = new Uint8Array(8)) => {
    const hb = new TextEncoder().encode(h), out = new Uint8Array(8 + hb.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
    out.set(hb, 8);
    out.set(data, 8 + hb.length);
    return out;
  };
  assert.throws(() => decodeSafetensors(good.subarray(0, 5)), /fewer than the 8-byte/);
  assert.throws(() => decodeSafetensors(good.subarray(0, 8 + hlen - 1)), /runs past the end/);
  assert.throws(() => decodeSafetensors(good.subarray(0, good.length - 1)), /ends at 8, past the 7-byte buffer/);
  assert.throws(
    () => decodeSafetensors(withHeader('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}')),
    /needs 12/,
  );
  assert.throws(
    () => decodeSafetensors(withHeader('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}')),
    /hole in the byte buffer before tensor "a"/,
  );
  assert.throws(
    () =>
      decodeSafetensors(
        withHeader(
          '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        ),
      ),
    /overlaps/,
  );
  assert.throws(
    () => decodeSafetensors(withHeader('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}')),
    /4 trailing bytes/,
  );
  assert.throws(
    () => decodeSafetensors(withHeader('{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,8]}}')),
    /unknown dtype "Q4"/,
  );
  assert.throws(
    () => decodeSafetensors(withHeader('{"__metadata__":{"k":1}}', new Uint8Array(0))),
    /__metadata__.k is not a string/,
  );
  assert.throws(() => decodeSafetensors(withHeader(" {}", new Uint8Array(0))), /does not start with/);
  assert.throws(() => decodeSafetensors(withHeader('{"a":', new Uint8Array(0))), /not valid JSON/);
  assert.throws(() => encodeSafetensors({ a: { dtype: "F32", shape: [3], data: new Float32Array(2) } }), /needs 3/);
  assert.throws(
    () => encodeSafetensors({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } }),
    /__metadata__/,
  );
});
