/**
 * Deterministic byte-level BPE training, written out as a Hugging Face `tokenizer.json`
 * (GPT-2 style: ByteLevel pre-tokenizer and decoder, BPE model), so the same file
 * encodes here (tokenizers.js), in Python `tokenizers` and in Rust.
 *
 * Hand-written because no npm library trains BPE with a chosen vocabulary size: the
 * `tokenizers` napi binding's `train()` takes no trainer options and tokenizers.js only
 * encodes. The algorithm is the classic one on word counts: pre-tokenise with the
 * GPT-2 pattern, then repeatedly merge the most frequent adjacent pair (ties: the
 * smaller (left id, right id)), with pair counts kept incrementally and a lazy max-heap.
 * The same texts and vocab size give the same merges, bit for bit (no hashing order,
 * no threads, no floating point).
 *
 * @module
 */
import { DataError } from "./normalize.ts";

/** The GPT-2 pre-tokenisation pattern (HF ByteLevel `use_regex: true`). */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's byte -> printable character map (byte `b` is token id `b` in our vocabularies). */
export const BYTE_CHARS: readonly string[] = (() => {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + n++);
  return out;
})();

/** Options of {@link trainBpe}. */
export interface TrainBpeOptions {
  /** Called now and then with the number of merges done (for a progress bar). */
  onProgress?: (merges: number, total: number) => void;
}

/** Max-heap of (count, pair key): larger count first, then smaller key. */
class PairHeap {
  #c: number[] = [];
  #k: number[] = [];
  get size(): number {
    return this.#c.length;
  }
  #above(i: number, j: number): boolean {
    return this.#c[i] > this.#c[j] || (this.#c[i] === this.#c[j] && this.#k[i] < this.#k[j]);
  }
  #swap(i: number, j: number): void {
    [this.#c[i], this.#c[j]] = [this.#c[j], this.#c[i]];
    [this.#k[i], this.#k[j]] = [this.#k[j], this.#k[i]];
  }
  push(count: number, key: number): void {
    this.#c.push(count);
    this.#k.push(key);
    for (let i = this.#c.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.#above(i, p)) break;
      this.#swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.#c[0], this.#k[0]];
    const lc = this.#c.pop()!, lk = this.#k.pop()!;
    if (this.#c.length) {
      this.#c[0] = lc;
      this.#k[0] = lk;
      for (let i = 0;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < this.#c.length && this.#above(l, m)) m = l;
        if (r < this.#c.length && this.#above(r, m)) m = r;
        if (m === i) break;
        this.#swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

const SHIFT = 2 ** 21; // pair key = left * SHIFT + right (ids < 2^21)

/** Counts of the pre-tokenised words of `texts`, in first-seen order. */
export function countWords(texts: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of texts) {
    for (const m of t.matchAll(GPT2_PATTERN)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  }
  return counts;
}

/**
 * Trains a byte-level BPE with `vocabSize` tokens (256 bytes + merges) on `texts` and
 * returns its `tokenizer.json` text (pretty-printed, stable key order).
 */
export function trainBpe(texts: Iterable<string>, vocabSize: number, opts: TrainBpeOptions = {}): string {
  if (!Number.isInteger(vocabSize) || vocabSize < 257 || vocabSize >= SHIFT) {
    throw new DataError(`bpe vocab_size = ${vocabSize} must be an integer in [257, ${SHIFT - 1}]`);
  }
  const counts = countWords(texts);
  const enc = new TextEncoder();
  const words: Int32Array[] = [];
  const freq: number[] = [];
  for (const [w, c] of counts) {
    words.push(Int32Array.from(enc.encode(w)));
    freq.push(c);
  }
  const strs: string[] = [...BYTE_CHARS];
  const idOf = new Map<string, number>(strs.map((s, i) => [s, i]));
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const add = (w: number, sign: number, touched: Set<number>) => {
    const ids = words[w];
    for (let i = 0; i + 1 < ids.length; i++) {
      const k = ids[i] * SHIFT + ids[i + 1];
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * freq[w]);
      touched.add(k);
      if (sign > 0) {
        const ws = pairWords.get(k);
        if (!ws) pairWords.set(k, [w]);
        else if (ws[ws.length - 1] !== w) ws.push(w);
      }
    }
  };
  const heap = new PairHeap();
  const init = new Set<number>();
  for (let w = 0; w < words.length; w++) add(w, 1, init);
  for (const k of init) heap.push(pairCount.get(k)!, k);

  const merges: [string, string][] = [];
  const target = vocabSize - 256;
  while (strs.length < vocabSize) {
    let best = -1;
    while (heap.size) {
      const [c, k] = heap.pop();
      if (c >= 2 && pairCount.get(k) === c) {
        best = k;
        break;
      }
    }
    if (best < 0) {
      throw new DataError(
        `the training split has too little text for a bpe vocab_size of ${vocabSize}: no pair occurs twice ` +
          `after ${strs.length} tokens. Use a smaller vocab_size or more text`,
      );
    }
    const a = Math.floor(best / SHIFT), b = best % SHIFT;
    const s = strs[a] + strs[b];
    let id = idOf.get(s);
    if (id === undefined) {
      id = strs.length;
      strs.push(s);
      idOf.set(s, id);
    }
    merges.push([strs[a], strs[b]]);
    const touched = new Set<number>();
    const seen = new Set<number>();
    for (const w of pairWords.get(best) ?? []) {
      if (seen.has(w)) continue;
      seen.add(w);
      const ids = words[w];
      let has = false;
      for (let i = 0; i + 1 < ids.length && !has; i++) has = ids[i] === a && ids[i + 1] === b;
      if (!has) continue;
      add(w, -1, touched);
      const out: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
          out.push(id);
          i++;
        } else out.push(ids[i]);
      }
      words[w] = Int32Array.from(out);
      add(w, 1, touched);
    }
    pairWords.delete(best);
    for (const k of touched) {
      const c = pairCount.get(k)!;
      if (c > 0) heap.push(c, k);
      else pairCount.delete(k);
    }
    if (merges.length % 256 === 0) opts.onProgress?.(strs.length - 256, target);
  }
  opts.onProgress?.(target, target);
  const vocab: Record<string, number> = {};
  strs.forEach((s, i) => (vocab[s] = i));
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  return JSON.stringify(
    {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { type: "ByteLevel", ...byteLevel },
      post_processor: null,
      decoder: { type: "ByteLevel", ...byteLevel },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges,
      },
    },
    null,
    1,
  ) + "\n";
}

/** The fields of a tokenizer.json that {@link ByteLevelBpe} encodes exactly (what {@link trainBpe} writes). */
export function isPlainByteLevelBpe(t: Record<string, unknown>): boolean {
  const pre = t.pre_tokenizer as Record<string, unknown> | null, m = t.model as Record<string, unknown> | null;
  return !!pre && pre.type === "ByteLevel" && pre.add_prefix_space === false && pre.use_regex === true &&
    t.normalizer === null && Array.isArray(t.added_tokens) && t.added_tokens.length === 0 && !!m &&
    m.type === "BPE" && m.dropout === null && m.unk_token === null && !m.continuing_subword_prefix &&
    !m.end_of_word_suffix && m.byte_fallback === false && m.ignore_merges === false && !Array.isArray(m.vocab) &&
    Array.isArray(m.merges) && m.merges.every((x) => Array.isArray(x) && x.length === 2);
}

/**
 * Encoder of a plain byte-level BPE tokenizer.json (see {@link isPlainByteLevelBpe}): GPT-2
 * pre-tokenisation, then per word the lowest-rank adjacent pair is merged until none is left
 * (the Rust `tokenizers` rule), with a per-word cache. Hand-written for speed: tokenizers.js
 * spends ~20x longer than the pre-tokenising regex on the BPE step (bench/data.ts); the test
 * checks it gives tokenizers.js's and Python `tokenizers`' ids.
 */
export class ByteLevelBpe {
  readonly #rank = new Map<number, [rank: number, id: number]>();
  readonly #cache = new Map<string, number[]>();
  readonly #enc = new TextEncoder();
  readonly #byteId: Int32Array = new Int32Array(256);

  /** From the parsed tokenizer.json (`model.vocab`, `model.merges`). */
  constructor(model: { vocab: Record<string, number>; merges: [string, string][] }) {
    BYTE_CHARS.forEach((c, b) => {
      const id = model.vocab[c];
      if (id === undefined) throw new DataError(`tokenizer.json has no token for byte ${b} (${JSON.stringify(c)})`);
      this.#byteId[b] = id;
    });
    model.merges.forEach(([a, b], r) => {
      const ia = model.vocab[a], ib = model.vocab[b], out = model.vocab[a + b];
      if (ia === undefined || ib === undefined || out === undefined) {
        throw new DataError(`tokenizer.json merge ${r} (${JSON.stringify([a, b])}) names a token not in the vocab`);
      }
      if (!this.#rank.has(ia * SHIFT + ib)) this.#rank.set(ia * SHIFT + ib, [r, out]);
    });
  }

  #word(w: string): number[] {
    const hit = this.#cache.get(w);
    if (hit) return hit;
    const ids = Array.from(this.#enc.encode(w), (b) => this.#byteId[b]);
    for (;;) {
      let best = -1, bestRank = Infinity, bestId = 0;
      for (let i = 0; i + 1 < ids.length; i++) {
        const r = this.#rank.get(ids[i] * SHIFT + ids[i + 1]);
        if (r && r[0] < bestRank) [best, bestRank, bestId] = [i, r[0], r[1]];
      }
      if (best < 0) break;
      ids.splice(best, 2, bestId);
    }
    if (this.#cache.size < 1 << 20) this.#cache.set(w, ids);
    return ids;
  }

  /** Token ids of `text`. */
  encode(text: string): Uint32Array {
    const out: number[] = [];
    for (const m of text.matchAll(GPT2_PATTERN)) for (const id of this.#word(m[0])) out.push(id);
    return Uint32Array.from(out);
  }
}
