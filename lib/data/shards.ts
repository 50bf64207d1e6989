/**
 * Token shards: a split's token stream as raw little-endian files (`uint8`, `uint16` or
 * `uint32`, chosen by vocabulary size), each with its length and sha256 in the entry's
 * tokens.json. {@link TokenStream} verifies every shard (sha256 and largest id, one
 * streamed pass) when it opens them and then serves windows with positioned reads, so a
 * split never has to fit in memory. {@link memoryTokens} wraps an in-memory array in the
 * same {@link TokenSource} interface (tests, benches).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DataError } from "./normalize.ts";

/** Element type of a token file. */
export type TokenDtype = "uint8" | "uint16" | "uint32";

/** Where batches read tokens from: a length, windows and the largest id. */
export interface TokenSource {
  /** Number of tokens. */
  readonly length: number;
  /** The largest token id (checked against the model's vocab_size). */
  readonly maxId: number;
  /** Tokens `offset .. offset + n - 1` (throws a RangeError past the end). */
  window(offset: number, n: number): ArrayLike<number>;
}

/** One shard file of a split. */
export interface ShardInfo {
  file: string;
  tokens: number;
  sha256: string;
}

/** A split's shards, in order. */
export interface SplitShards {
  dtype: TokenDtype;
  tokens: number;
  max_id: number;
  shards: ShardInfo[];
}

const BYTES: Record<TokenDtype, number> = { uint8: 1, uint16: 2, uint32: 4 };
const ARRAY = { uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array } as const;

/** The smallest dtype holding ids 0..vocabSize-1; a DataError when none does. */
export function dtypeFor(vocabSize: number): TokenDtype {
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new DataError(`vocab size ${vocabSize} is not valid`);
  if (vocabSize <= 2 ** 8) return "uint8";
  if (vocabSize <= 2 ** 16) return "uint16";
  if (vocabSize <= 2 ** 32) return "uint32";
  throw new DataError(`a vocabulary of ${vocabSize} tokens does not fit the largest token dtype (uint32)`);
}

/** Wraps token ids held in memory. */
export function memoryTokens(tokens: ArrayLike<number>): TokenSource {
  let max: number | null = null;
  return {
    length: tokens.length,
    get maxId() {
      if (max === null) {
        max = -1;
        for (let i = 0; i < tokens.length; i++) if (tokens[i] > max) max = tokens[i];
      }
      return max;
    },
    window(offset, n) {
      if (offset < 0 || offset + n > tokens.length) throw new RangeError(`window ${offset}+${n} past ${tokens.length}`);
      return "subarray" in tokens
        ? (tokens as Uint8Array).subarray(offset, offset + n)
        : Array.prototype.slice.call(tokens, offset, offset + n) as number[];
    },
  };
}

/** Writes a split's tokens into shards of at most `shardTokens` ids, each written whole then renamed. */
export class ShardWriter {
  readonly #dir: string;
  readonly #prefix: string;
  readonly #dtype: TokenDtype;
  readonly #shardTokens: number;
  #buf: Uint8Array | Uint16Array | Uint32Array;
  #n = 0;
  #max = -1;
  #total = 0;
  readonly #shards: ShardInfo[] = [];

  /** Shards go to `dir/<prefix>-00000.bin`, ...; `done` lists shards already written (resume). */
  constructor(dir: string, prefix: string, opts: { dtype: TokenDtype; shardTokens: number; done?: SplitShards }) {
    this.#dir = dir;
    this.#prefix = prefix;
    this.#dtype = opts.dtype;
    this.#shardTokens = opts.shardTokens;
    this.#buf = new ARRAY[opts.dtype](opts.shardTokens);
    if (opts.done) {
      this.#shards.push(...opts.done.shards);
      this.#total = opts.done.tokens;
      this.#max = opts.done.max_id;
    }
  }

  /** Tokens written or buffered so far. */
  get tokens(): number {
    return this.#total + this.#n;
  }

  /** Shards complete on disk so far (what a resumed build can keep). */
  get written(): SplitShards {
    return { dtype: this.#dtype, tokens: this.#total, max_id: this.#max, shards: [...this.#shards] };
  }

  /** Appends ids; writes a shard when the buffer fills. */
  async push(ids: ArrayLike<number>): Promise<void> {
    const limit = 2 ** (8 * BYTES[this.#dtype]);
    let max = this.#max;
    for (let i = 0; i < ids.length; i++) {
      const v = ids[i];
      if (!(v >= 0 && v < limit && Number.isInteger(v))) {
        throw new DataError(`token id ${v} does not fit ${this.#dtype}`);
      }
      if (v > max) max = v;
    }
    this.#max = max;
    for (let i = 0; i < ids.length;) {
      const take = Math.min(ids.length - i, this.#shardTokens - this.#n);
      const part = "subarray" in ids
        ? (ids as Uint32Array).subarray(i, i + take)
        : Array.prototype.slice.call(ids, i, i + take) as number[];
      this.#buf.set(part, this.#n);
      this.#n += take;
      i += take;
      if (this.#n === this.#shardTokens) await this.flush();
    }
  }

  /** Writes the buffered ids as one shard (nothing when empty). */
  async flush(): Promise<void> {
    if (this.#n === 0) return;
    const bytes = new Uint8Array(this.#buf.buffer, 0, this.#n * BYTES[this.#dtype]);
    const file = `${this.#prefix}-${String(this.#shards.length).padStart(5, "0")}.bin`;
    const tmp = join(this.#dir, `.${file}.tmp`);
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, join(this.#dir, file));
    this.#shards.push({ file, tokens: this.#n, sha256: createHash("sha256").update(bytes).digest("hex") });
    this.#total += this.#n;
    this.#n = 0;
  }

  /** Flushes and describes the split. */
  async finish(): Promise<SplitShards> {
    await this.flush();
    return this.written;
  }
}

/** Streams a file through sha256 and the largest id without holding it in memory. */
async function scanShard(path: string, dtype: TokenDtype): Promise<{ sha256: string; bytes: number; max: number }> {
  const h = createHash("sha256");
  const f = await Deno.open(path, { read: true });
  const chunk = new Uint8Array(1 << 22);
  let bytes = 0, max = -1;
  try {
    for (;;) {
      const n = await f.read(chunk);
      if (n === null) break;
      const part = chunk.subarray(0, n);
      h.update(part);
      const w = BYTES[dtype], whole = n - (n % w);
      if (whole !== n) throw new DataError(`${path}: read a partial token; file length is not a multiple of ${w}`);
      const view = new ARRAY[dtype](chunk.buffer, 0, whole / w);
      for (let i = 0; i < view.length; i++) if (view[i] > max) max = view[i];
      bytes += n;
    }
  } finally {
    f.close();
  }
  return { sha256: h.digest("hex"), bytes, max };
}

/** A split served from its shards by positioned reads. Close it when done. */
export class TokenStream implements TokenSource {
  /** Number of tokens. */
  readonly length: number;
  /** Largest id, verified on open. */
  readonly maxId: number;
  readonly #dtype: TokenDtype;
  readonly #files: Deno.FsFile[];
  readonly #starts: number[];
  readonly #sizes: number[];

  private constructor(split: SplitShards, files: Deno.FsFile[]) {
    this.length = split.tokens;
    this.maxId = split.max_id;
    this.#dtype = split.dtype;
    this.#files = files;
    this.#starts = [];
    this.#sizes = split.shards.map((s) => s.tokens);
    let o = 0;
    for (const s of split.shards) {
      this.#starts.push(o);
      o += s.tokens;
    }
  }

  /**
   * Opens the shards of `split` in `dir`, checking each one's size, sha256 and largest id against
   * tokens.json (a DataError naming the file otherwise).
   */
  static async open(dir: string, split: SplitShards): Promise<TokenStream> {
    let sum = 0;
    for (const s of split.shards) {
      const path = join(dir, s.file);
      const got = await scanShard(path, split.dtype).catch((e) => {
        throw new DataError(`token shard ${path} cannot be read: ${(e as Error).message}`);
      });
      if (got.bytes !== s.tokens * BYTES[split.dtype]) {
        throw new DataError(`token shard ${path} has ${got.bytes} bytes, expected ${s.tokens * BYTES[split.dtype]}`);
      }
      if (got.sha256 !== s.sha256) throw new DataError(`token shard ${path} sha256 ${got.sha256} != ${s.sha256}`);
      if (got.max > split.max_id) throw new DataError(`token shard ${path} has id ${got.max} > max_id ${split.max_id}`);
      sum += s.tokens;
    }
    if (sum !== split.tokens) throw new DataError(`shards in ${dir} hold ${sum} tokens, expected ${split.tokens}`);
    const files = split.shards.map((s) => Deno.openSync(join(dir, s.file), { read: true }));
    return new TokenStream(split, files);
  }

  /** Tokens `offset .. offset + n - 1` as an Int32Array (read from disk). */
  window(offset: number, n: number): Int32Array {
    if (!(offset >= 0 && n >= 0 && offset + n <= this.length)) {
      throw new RangeError(`window ${offset}+${n} is past the split's ${this.length} tokens`);
    }
    const out = new Int32Array(n);
    const w = BYTES[this.#dtype];
    let i = this.#shardOf(offset), pos = offset, done = 0;
    while (done < n) {
      const inShard = pos - this.#starts[i], take = Math.min(n - done, this.#sizes[i] - inShard);
      const bytes = new Uint8Array(take * w);
      const f = this.#files[i];
      f.seekSync(inShard * w, Deno.SeekMode.Start);
      for (let got = 0; got < bytes.length;) {
        const r = f.readSync(bytes.subarray(got));
        if (r === null) throw new DataError(`token shard ${i} ended early (changed since it was verified?)`);
        got += r;
      }
      out.set(new ARRAY[this.#dtype](bytes.buffer, 0, take), done);
      done += take;
      pos += take;
      i++;
    }
    return out;
  }

  #shardOf(pos: number): number {
    let lo = 0, hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Closes the shard files. */
  close(): void {
    for (const f of this.#files) f.close();
  }
}
