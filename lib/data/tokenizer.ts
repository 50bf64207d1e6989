/**
 * Tokenizers. Only the byte-level one exists: a token is one byte of the UTF-8
 * encoding, so the vocabulary is 256 and every string round-trips exactly.
 *
 * Documents of a split are joined with {@link DOCUMENT_SEPARATOR} ("\n\n", two LF
 * bytes) before tokenising. For the byte tokenizer `encode(a + sep + b)` equals
 * `encode(a) ++ encode(sep) ++ encode(b)`, which lets the loader encode documents one
 * at a time (tested in tokenizer_test.ts).
 *
 * @module
 */
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
// Non-fatal on purpose: a window cut by max_bytes or a model sample may split a character; show U+FFFD there.
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

/** The tokenizer named by `data.tokenizer`. */
export function getTokenizer(name: string): Tokenizer {
  if (name === "bytes") return new ByteTokenizer();
  throw new Error(`data.tokenizer = ${JSON.stringify(name)} is not a known tokenizer; use "bytes"`);
}
