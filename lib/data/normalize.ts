/**
 * Decoding and normalisation of source text: strict UTF-8 (a bad byte is an error
 * naming the file and byte offset), LF line endings, Unicode NFC. The only exception
 * to strict UTF-8 is an explicit per-file Latin-1 (windows-1252) fallback for known
 * package files, see `LATIN1_FILES` in sources.ts.
 *
 * @module
 */

/** Name of the normalisation, recorded in every manifest. */
export const NORMALIZATION = "utf8-strict+lf+nfc";

/** Thrown for unusable input data (missing, empty, badly encoded, too small). */
export class DataError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "DataError";
  }
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const latin1Decoder = new TextDecoder("windows-1252");

/** LF line endings (CRLF and lone CR become LF) and Unicode NFC. */
export function normalizeText(text: string): string {
  const lf = text.includes("\r") ? text.replace(/\r\n?/g, "\n") : text;
  return lf.normalize("NFC");
}

/**
 * Offset of the first byte that starts an invalid UTF-8 sequence, or -1 when all bytes
 * are valid. Follows the Unicode well-formed byte table (no overlongs, surrogates or
 * code points above U+10FFFF). Only used to explain a failed strict decode.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number, lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0; // no overlong 3-byte forms
      if (b === 0xed) hi = 0x9f; // no UTF-16 surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90; // no overlong 4-byte forms
      if (b === 0xf4) hi = 0x8f; // nothing above U+10FFFF
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < lo || c > hi) return i;
      lo = 0x80;
      hi = 0xbf;
    }
    i += need + 1;
  }
  return -1;
}

/** 1-based line number of byte `offset`. */
function lineOf(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

/**
 * Strict UTF-8 decode. A leading BOM is dropped. On a bad byte, throws a DataError
 * naming `what` (usually the file), the byte offset, line and value, and how to convert.
 */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    const at = Math.max(0, firstInvalidUtf8(bytes));
    const hex = bytes[at]?.toString(16).padStart(2, "0") ?? "??";
    throw new DataError(
      `${what} is not valid UTF-8: byte 0x${hex} at offset ${at} (line ${lineOf(bytes, at)}) does not start a ` +
        `valid UTF-8 sequence. Convert the file to UTF-8 first, e.g. \`iconv -f latin1 -t utf-8 in.txt > out.txt\` ` +
        `(use the file's real encoding in place of latin1).`,
    );
  }
}

/** Result of {@link decodeText}. */
export interface Decoded {
  text: string;
  /** `utf-8`, or `windows-1252` when the Latin-1 fallback was used. */
  encoding: "utf-8" | "windows-1252";
}

/**
 * Strict UTF-8, or, only when `latin1Fallback` is true and the bytes are not valid
 * UTF-8, windows-1252 (the WHATWG meaning of "latin1"; identical to ISO-8859-1 outside
 * 0x80-0x9F). Without the flag a bad byte throws as in {@link decodeUtf8}.
 */
export function decodeText(bytes: Uint8Array, what: string, latin1Fallback = false): Decoded {
  try {
    return { text: strictDecoder.decode(bytes), encoding: "utf-8" };
  } catch (e) {
    if (latin1Fallback) return { text: latin1Decoder.decode(bytes), encoding: "windows-1252" };
    decodeUtf8(bytes, what); // throws the explanatory DataError
    throw e;
  }
}
