/**
 * Test helpers for the backends: run tfjs ops on a named backend and keep plain copies of their values, so that a
 * test can compare one backend's outputs with another's.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type ConcreteBackend, initBackend } from "./mod.ts";

/** Runs `fn` on `backend` inside `tf.tidy` and returns copies of the outputs' values (the tensors are disposed). */
export async function valuesOn(backend: ConcreteBackend, fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await initBackend(backend);
  const outs = tf.tidy(fn);
  const vals = [];
  for (const t of outs) vals.push(Float32Array.from(await t.data()));
  tf.dispose(outs);
  return vals;
}
