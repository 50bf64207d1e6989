/**
 * End-of-run activation analysis: NSAR, activation histograms and router statistics, measured on
 * the run's fixed validation batches after training. The results go to `summary.extra` and from
 * there to the `run_metrics` table (hash, name, value). Everything here is deterministic (exact
 * counts and float64 sums in a fixed order), so `--verify` compares it bit for bit.
 *
 * ## What is measured
 *
 * FFN variants report activations through `FfnContext.capture` (lib/models/ffn/types.ts):
 * `act` = SiLU(x·W_gate) and `prod` = SiLU(x·W_gate) ⊙ (x·W_up), `[tokens, units]`, and `gate` =
 * router gate values `[tokens, experts]` of sub-layer `m`. A Finedeep layer reports `act`/`prod`
 * once per sub-layer; they are pooled, so a layer's unit count is M·K·E ≈ d_ff, as for dense.
 *
 * NSAR_τ (non-sparse activation rate, our working definition; the paper's exact one was not
 * available) = fraction of values with |a| > τ, over all tokens of the validation batches and all
 * units, for τ in {@link NSAR_TAUS}.
 *
 * ## Metric names (`run_metrics.name`)
 *
 * | name | meaning |
 * |---|---|
 * | `nsar_gate_<τ>` | NSAR_τ of SiLU(gate) pooled over all layers (τ written as `0.01`, `0.05`, `0.1`, `0.2`) |
 * | `nsar_gate_<τ>_l<i>` | the same for layer i (0-based) |
 * | `nsar_gate_<τ>_l<i>_m<j>` | the same for sub-layer j of layer i (only variants with more than one sub-layer) |
 * | `nsar_prod_<τ>`, `nsar_prod_<τ>_l<i>` | NSAR_τ of the gated product SiLU(gate)·up |
 * | `hist_gate_b<j>`, `hist_gate_l<i>_b<j>` | fraction of SiLU(gate) values in bin j (all layers / layer i); see `HIST_BINS` in lib/core/analysis.ts |
 * | `router_mean_l<i>_m<j>_k<k>`, `router_std_l<i>_m<j>_k<k>` | mean and standard deviation over tokens of the gate of expert k in sub-layer j of layer i |
 * | `router_mean_l<i>_m<j>`, `router_std_l<i>_m<j>` | the same over all tokens and experts of the sub-layer |
 * | `router_mean`, `router_std` | the same over the whole model |
 *
 * Histogram bins: `b0..b47` are `[-0.3 + 0.025·j, -0.3 + 0.025·(j+1))`, `b48` is `[0.9, ∞)`; values
 * below -0.3 (impossible for SiLU, whose minimum is -0.278) would count in b0. Router standard
 * deviations are population std (n, not n-1) over tokens. An input-guided per-sub-layer router has
 * one gate per token, reported as expert `k0`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Batch } from "../data/batches.ts";
import type { Transformer } from "../models/transformer.ts";
import { HIST_SIZE, histBin, NSAR_TAUS } from "../core/analysis.ts";

/** Fraction of values with |v| > tau (NaN for no values). */
export function nsar(values: ArrayLike<number>, tau: number): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (Math.abs(values[i]) > tau) n++;
  return n / values.length;
}

/** Counts of |v| > tau per threshold, and the number of values. */
class Rate {
  readonly above: number[] = NSAR_TAUS.map(() => 0);
  total = 0;
  add(values: ArrayLike<number>): void {
    const taus = NSAR_TAUS, above = this.above;
    for (let i = 0; i < values.length; i++) {
      const a = Math.abs(values[i]);
      for (let t = 0; t < taus.length; t++) if (a > taus[t]) above[t]++;
    }
    this.total += values.length;
  }
}

/** Running sums of a gate value (float64). */
class Moments {
  n = 0;
  sum = 0;
  sumsq = 0;
  add(v: number): void {
    this.n++;
    this.sum += v;
    this.sumsq += v * v;
  }
  get mean(): number {
    return this.sum / this.n;
  }
  get std(): number {
    const m = this.mean;
    return Math.sqrt(Math.max(0, this.sumsq / this.n - m * m));
  }
}

const tauName = (t: number) => String(t);

/**
 * Accumulates captured activations over batches and turns them into named metrics
 * (see the module doc). Feed it with {@link ActivationStats.add} in a fixed order.
 */
export class ActivationStats {
  readonly #gate = new Map<number, Rate>();
  readonly #gateSub = new Map<string, Rate>();
  readonly #subs = new Map<number, Set<number>>();
  readonly #prod = new Map<number, Rate>();
  readonly #hist = new Map<number, number[]>();
  readonly #router = new Map<string, Moments>();
  readonly #routerSub = new Map<string, Moments>();
  readonly #routerAll = new Moments();

  /** Adds one captured tensor's values (row-major `[tokens, columns]`). */
  add(layer: number, name: "act" | "prod" | "gate", sub: number, values: ArrayLike<number>, columns: number): void {
    const get = <K, V>(m: Map<K, V>, k: K, make: () => V): V => {
      let v = m.get(k);
      if (v === undefined) m.set(k, v = make());
      return v;
    };
    if (name === "act") {
      get(this.#gate, layer, () => new Rate()).add(values);
      get(this.#gateSub, `${layer}/${sub}`, () => new Rate()).add(values);
      get(this.#subs, layer, () => new Set()).add(sub);
      const h = get(this.#hist, layer, () => new Array(HIST_SIZE).fill(0));
      for (let i = 0; i < values.length; i++) h[histBin(values[i])]++;
    } else if (name === "prod") {
      get(this.#prod, layer, () => new Rate()).add(values);
    } else {
      const sm = get(this.#routerSub, `l${layer}_m${sub}`, () => new Moments());
      const cols = Array.from(
        { length: columns },
        (_, k) => get(this.#router, `l${layer}_m${sub}_k${k}`, () => new Moments()),
      );
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        cols[i % columns].add(v);
        sm.add(v);
        this.#routerAll.add(v);
      }
    }
  }

  /** The metrics, by name (see the module doc); layers and sub-layers in ascending order. */
  metrics(): Record<string, number> {
    const out: Record<string, number> = {};
    const layers = (m: Map<number, unknown>) => [...m.keys()].sort((a, b) => a - b);
    const rates = (prefix: string, per: Map<number, Rate>) => {
      if (per.size === 0) return;
      const all = new Rate();
      for (const l of layers(per)) {
        const r = per.get(l)!;
        all.total += r.total;
        r.above.forEach((c, t) => (all.above[t] += c));
      }
      NSAR_TAUS.forEach((tau, t) => (out[`${prefix}_${tauName(tau)}`] = all.above[t] / all.total));
      for (const l of layers(per)) {
        const r = per.get(l)!;
        NSAR_TAUS.forEach((tau, t) => (out[`${prefix}_${tauName(tau)}_l${l}`] = r.above[t] / r.total));
      }
    };
    rates("nsar_gate", this.#gate);
    for (const l of layers(this.#subs)) {
      const subs = [...this.#subs.get(l)!].sort((a, b) => a - b);
      if (subs.length < 2) continue;
      for (const m of subs) {
        const r = this.#gateSub.get(`${l}/${m}`)!;
        NSAR_TAUS.forEach((tau, t) => (out[`nsar_gate_${tauName(tau)}_l${l}_m${m}`] = r.above[t] / r.total));
      }
    }
    rates("nsar_prod", this.#prod);
    if (this.#hist.size) {
      const all = new Array(HIST_SIZE).fill(0);
      for (const l of layers(this.#hist)) this.#hist.get(l)!.forEach((c, j) => (all[j] += c));
      const total = all.reduce((a, b) => a + b, 0);
      all.forEach((c, j) => (out[`hist_gate_b${j}`] = c / total));
      for (const l of layers(this.#hist)) {
        const h = this.#hist.get(l)!, n = h.reduce((a, b) => a + b, 0);
        h.forEach((c, j) => (out[`hist_gate_l${l}_b${j}`] = c / n));
      }
    }
    if (this.#routerAll.n) {
      out.router_mean = this.#routerAll.mean;
      out.router_std = this.#routerAll.std;
      const natural = (a: string, b: string) => a.localeCompare(b, "en", { numeric: true });
      for (const k of [...this.#routerSub.keys()].sort(natural)) {
        out[`router_mean_${k}`] = this.#routerSub.get(k)!.mean;
        out[`router_std_${k}`] = this.#routerSub.get(k)!.std;
      }
      for (const k of [...this.#router.keys()].sort(natural)) {
        out[`router_mean_${k}`] = this.#router.get(k)!.mean;
        out[`router_std_${k}`] = this.#router.get(k)!.std;
      }
    }
    return out;
  }
}

/**
 * Runs the model over `batches` with activation capture and returns the metrics of
 * {@link ActivationStats} (empty when the FFN variant reports nothing).
 */
export async function analyzeModel(model: Transformer, batches: readonly Batch[]): Promise<Record<string, number>> {
  const stats = new ActivationStats();
  for (const b of batches) {
    const captured: { layer: number; name: "act" | "prod" | "gate"; sub: number; t: tf.Tensor2D }[] = [];
    tf.tidy(() => {
      const x = tf.tensor2d(b.x, [b.batchSize, b.seqLen], "int32");
      model.forward(x, { capture: (layer, name, t, sub) => captured.push({ layer, name, sub, t: tf.keep(t) }) });
    });
    try {
      for (const c of captured) stats.add(c.layer, c.name, c.sub, await c.t.data(), c.t.shape[1]);
    } finally {
      tf.dispose(captured.map((c) => c.t));
    }
  }
  return stats.metrics();
}
