/** Fault-suite fixture: a sweep of 2 variants x 2 seeds of the toy model (what concurrent runners share). */
import { defineExperiment } from "../../../../experiment/mod.ts";
import base from "./faults.ts";

export default defineExperiment({
  ...base,
  id: "faults-sweep",
  description: "Fault-suite fixture: 2 variants x 2 seeds of the toy model.",
  seeds: [0, 1],
  variants: { lr3: {}, lr1: { train: { lr: 1e-3 } } },
});
