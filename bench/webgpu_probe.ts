/**
 * WebGPU probe: readback latency, per-op dispatch cost and matmul throughput of stock tfjs-backend-webgpu 4.22
 * (no finelab kernels), to tell GPU-bound from host-bound steps. Run on a GPU machine:
 * `deno run --unstable-webgpu --allow-all bench/webgpu_probe.ts`. H200 output: bench/measurements/.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-webgpu";
await tf.setBackend("webgpu");
await tf.ready();
const now = () => performance.now();
const cpu = () => {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
};
function t(label: string, ms: number, extra = "") {
  console.log(`${label}: ${ms.toFixed(3)} ms ${extra}`);
}
// readback latency
{
  const s = tf.scalar(1);
  for (let i = 0; i < 5; i++) await tf.add(s, 1).data();
  const n = 50, t0 = now();
  for (let i = 0; i < n; i++) {
    const y = tf.add(s, i);
    await y.data();
    y.dispose();
  }
  t("readback round trip (add + data)", (now() - t0) / n);
}
// dispatch cost: many small ops, one readback
for (const size of [256, 65536]) {
  const a = tf.ones([size]);
  let x = tf.zeros([size]);
  for (let w = 0; w < 2; w++) {
    const n = 1000, t0 = now();
    for (let i = 0; i < n; i++) {
      const y = tf.add(x, a);
      x.dispose();
      x = y;
    }
    await x.data();
    t(`small op dispatch (add, ${size} floats), per op`, (now() - t0) / n);
  }
}
// matmul throughput
for (const n of [384, 1024, 4096]) {
  const a = tf.randomNormal([n, n]), b = tf.randomNormal([n, n]);
  for (let w = 0; w < 3; w++) {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  }
  const reps = n >= 4096 ? 5 : 20;
  const c0 = cpu();
  const t0 = now();
  let c: tf.Tensor | null = null;
  for (let i = 0; i < reps; i++) {
    c?.dispose();
    c = tf.matMul(a, b);
  }
  await c!.data();
  const ms = (now() - t0) / reps;
  t(
    `matmul ${n}^3`,
    ms,
    `${(2 * n ** 3 / ms / 1e9).toFixed(2)} TFLOP/s, cpu ${((cpu() - c0) / reps).toFixed(1)} ms/op`,
  );
}
// batched matmul shaped like the gpu preset FFN: [8192, 384] x [384, 1024]
{
  const a = tf.randomNormal([8192, 384]), b = tf.randomNormal([384, 1024]);
  for (let w = 0; w < 3; w++) {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  }
  const reps = 20, t0 = now();
  let c: tf.Tensor | null = null;
  for (let i = 0; i < reps; i++) {
    c?.dispose();
    c = tf.matMul(a, b);
  }
  await c!.data();
  const ms = (now() - t0) / reps;
  t("matmul 8192x384x1024", ms, `${(2 * 8192 * 384 * 1024 / ms / 1e9).toFixed(2)} TFLOP/s`);
}
