/**
 * Small deterministic PRNGs. Everything random in finelab (init, batch order,
 * document split) derives from these so a run is a pure function of its config.
 *
 * @module
 */

/** Mixes two 32-bit integers into one well-spread 32-bit seed (splitmix32 finaliser). */
export function mixSeed(a: number, b = 0): number {
  let z = (Math.imul(a | 0, 0x9e3779b9) ^ (b | 0)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * mulberry32: a 32-bit state PRNG returning floats in [0, 1). Its whole state is one
 * integer, exposed as `state` so checkpoints can save and restore it exactly.
 */
export class Rng {
  /** The full generator state (a uint32). */
  state: number;
  /** Creates a generator from a seed. */
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Next float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Fills `out` with N(0, std^2) samples (Box-Muller, pairs). */
  normal(out: Float32Array, std: number): Float32Array {
    for (let i = 0; i < out.length; i += 2) {
      const u1 = Math.max(this.next(), 1e-12), u2 = this.next();
      const r = Math.sqrt(-2 * Math.log(u1)) * std;
      out[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
    return out;
  }
}
