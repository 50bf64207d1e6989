/**
 * Tokenizers: `bytes` (a token is one byte of the UTF-8 encoding, vocabulary 256) and
 * any Hugging Face `tokenizer.json` (ours from lib/data/bpe.ts, or GPT-2/LLaMA/Qwen
 * files), encoded with tokenizers.js (`@huggingface/tokenizers`, pure JS: no FFI).
 *
 * A split's token stream is its documents encoded one at a time, joined by the ids of
 * {@link DOCUMENT_SEPARATOR} ("\n\n"). For the byte tokenizer that equals encoding the
 * joined text (tested in tokenizer_test.ts), so byte datasets keep their old streams.
 *
 * @module
 */
import { Tokenizer as HfTokenizerJs } from "@huggingface/tokenizers";
import { ByteLevelBpe, isPlainByteLevelBpe } from "./bpe.ts";
import { sha256Hex } from "./hash.ts";
import { DataError } from "./normalize.ts";
import type { TokenArray } from "./types.ts";

/** Text inserted between two documents of a split before tokenising. */
export const DOCUMENT_SEPARATOR = "\n\n";

/** Turns text into token ids and back. */
export interface Tokenizer {
  /** Config name (`data.tokenizer`). */
  readonly name: string;
  /** Number of distinct token ids (ids are 0..vocabSize-1). */
  readonly vocabSize: number;
  /** What the manifest records: name plus every choice that changes the token stream. */
  readonly description: string;
  /** Text to token ids. */
  encode(text: string): TokenArray;
  /** Token ids to text. */
  decode(ids: ArrayLike<number>): string;
}

const encoder = new TextEncoder();
// Non-fatal on purpose: a window cut by max_tokens or a model sample may split a character; show U+FFFD there.
const lenientDecoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** Byte-level tokenizer: ids are the UTF-8 bytes of the text. */
export class ByteTokenizer implements Tokenizer {
  /** Config name. */
  readonly name = "bytes";
  /** 256 byte values. */
  readonly vocabSize = 256;
  /** Recorded in the manifest (and so in its hash). */
  readonly description = 'bytes: UTF-8 byte ids 0-255, documents joined by "\\n\\n"';

  /** UTF-8 bytes of `text`. */
  encode(text: string): Uint8Array {
    return encoder.encode(text);
  }

  /**
   * Text of byte ids. Throws a RangeError for an id outside 0..255 or not an integer;
   * an invalid UTF-8 sequence decodes to U+FFFD (it can only come from a cut or a sample).
   */
  decode(ids: ArrayLike<number>): string {
    let bytes: Uint8Array;
    if (ids instanceof Uint8Array) {
      bytes = ids;
    } else {
      bytes = new Uint8Array(ids.length);
      for (let i = 0; i < ids.length; i++) {
        const v = ids[i];
        if (!Number.isInteger(v) || v < 0 || v > 255) {
          throw new RangeError(`token id ${v} at position ${i} is not a byte id (0..255) of the "bytes" tokenizer`);
        }
        bytes[i] = v;
      }
    }
    return lenientDecoder.decode(bytes);
  }
}

/** A Hugging Face `tokenizer.json`, encoded by tokenizers.js (no special tokens added). */
export class HfTokenizer implements Tokenizer {
  /** Config name. */
  readonly name = "hf";
  /** Ids are 0..vocabSize-1 (model vocabulary plus added tokens). */
  readonly vocabSize: number;
  /** Recorded in the manifest: the file's sha256. */
  readonly description: string;
  /** sha256 of the tokenizer.json text. */
  readonly sha256: string;
  #tok: HfTokenizerJs;
  #fast: ByteLevelBpe | null = null;

  /** Parses `json` (the text of a tokenizer.json); `what` names it in errors. */
  constructor(json: string, what: string) {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(json);
    } catch (e) {
      throw new DataError(
        `${what} is not valid JSON (${(e as Error).message}); expected a Hugging Face tokenizer.json`,
      );
    }
    const model = parsed?.model as { vocab?: Record<string, number> | unknown[] } | undefined;
    if (typeof parsed !== "object" || parsed === null || !model || typeof model !== "object" || !model.vocab) {
      throw new DataError(`${what} is not a Hugging Face tokenizer.json: it has no model.vocab`);
    }
    try {
      this.#tok = new HfTokenizerJs(parsed, {});
    } catch (e) {
      throw new DataError(`${what} could not be loaded as a tokenizer.json: ${(e as Error).message}`);
    }
    if (isPlainByteLevelBpe(parsed)) {
      this.#fast = new ByteLevelBpe(parsed.model as ConstructorParameters<typeof ByteLevelBpe>[0]);
    }
    const ids: number[] = Array.isArray(model.vocab)
      ? model.vocab.map((_, i) => i)
      : Object.values(model.vocab as Record<string, number>);
    for (const t of (parsed.added_tokens as { id: number }[] | undefined) ?? []) ids.push(t.id);
    this.vocabSize = ids.reduce((m, v) => Math.max(m, v), -1) + 1;
    this.sha256 = sha256Hex(json);
    this.description = `hf tokenizer.json sha256:${this.sha256}, documents joined by the ids of "\\n\\n"`;
  }

  /** Token ids of `text` (no special tokens); plain byte-level BPE files take the fast path of lib/data/bpe.ts. */
  encode(text: string): Uint32Array {
    if (this.#fast) return this.#fast.encode(text);
    return Uint32Array.from(this.#tok.encode(text, { add_special_tokens: false }).ids);
  }

  /** Token ids of `text` by tokenizers.js, whatever the file (the reference the fast path is tested against). */
  encodeWithLibrary(text: string): Uint32Array {
    return Uint32Array.from(this.#tok.encode(text, { add_special_tokens: false }).ids);
  }

  /** Text of `ids`. */
  decode(ids: ArrayLike<number>): string {
    return ids.length === 0 ? "" : this.#tok.decode(Array.from(ids), { skip_special_tokens: false });
  }
}

/** The byte tokenizer (the only one that needs no file). */
export function getTokenizer(name: string): Tokenizer {
  if (name === "bytes") return new ByteTokenizer();
  throw new Error(`tokenizer ${JSON.stringify(name)} needs a tokenizer.json; only "bytes" is built in`);
}
