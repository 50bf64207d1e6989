/**
 * Reading and writing the safetensors format (https://github.com/huggingface/safetensors), by hand
 * since no npm package is available:
 *
 * ```text
 * [8 bytes]  N = header length, unsigned 64-bit little-endian
 * [N bytes]  UTF-8 JSON object, starting with `{`, right-padded with spaces (0x20):
 *            {"__metadata__": {"key": "string", ...},            (optional; string values only)
 *             "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 * [rest]     the byte buffer; offsets are relative to its start, data little-endian, row-major
 * ```
 *
 * Like the reference implementation, the writer pads the header so the buffer starts at a
 * multiple of 8 bytes, and the reader rejects overlapping ranges, holes and trailing bytes (the
 * buffer must be exactly covered), sizes that do not match dtype x shape, and headers over 100 MB.
 * Tensors are written in the order given (the header lists them in the same order).
 *
 * @module
 */
import { atomicWrite } from "../util/fs.ts";

/** Element types. F16 and BF16 are kept as raw 16-bit patterns (Uint16Array). */
export type SafetensorsDtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL";

/** Typed arrays that can hold safetensors data. */
export type TensorData =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | BigUint64Array
  | Uint32Array
  | Uint8Array;

/** One tensor: element type, shape (row-major) and values. */
export interface SafeTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

/** Decoded file contents. */
export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  /** The `__metadata__` map ({} when absent). */
  metadata: Record<string, string>;
}

type Ctor = { new (buf: ArrayBuffer, offset?: number, length?: number): TensorData; BYTES_PER_ELEMENT: number };

const DTYPES: Record<SafetensorsDtype, Ctor> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U64: BigUint64Array,
  U32: Uint32Array,
  U16: Uint16Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

/** Largest header accepted (as in the reference implementation). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function assertLittleEndian() {
  if (!LITTLE_ENDIAN) throw new Error("safetensors: big-endian hosts are not supported");
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function checkShape(name: string, shape: unknown): asserts shape is number[] {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new Error(`safetensors: tensor ${JSON.stringify(name)} has invalid shape ${JSON.stringify(shape)}`);
  }
}

/**
 * Serialises tensors (in the given order) and string metadata into safetensors bytes.
 * Throws on a name `__metadata__`, non-string metadata, unknown dtypes or data/shape mismatch.
 */
export function encodeSafetensors(
  tensors: Iterable<[string, SafeTensor]> | Record<string, SafeTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  assertLittleEndian();
  const entries = Symbol.iterator in tensors
    ? [...(tensors as Iterable<[string, SafeTensor]>)]
    : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new Error(`safetensors: metadata ${k} must be a string, got ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === "__metadata__") throw new Error("safetensors: a tensor cannot be named __metadata__");
    if (Object.hasOwn(header, name)) throw new Error(`safetensors: duplicate tensor name ${name}`);
    const ctor = DTYPES[t.dtype];
    if (!ctor) throw new Error(`safetensors: tensor ${name} has unknown dtype ${t.dtype}`);
    checkShape(name, t.shape);
    if (t.data.length !== numel(t.shape) || t.data.BYTES_PER_ELEMENT !== ctor.BYTES_PER_ELEMENT) {
      throw new Error(
        `safetensors: tensor ${name} has ${t.data.length} elements of ${t.data.BYTES_PER_ELEMENT} bytes; ` +
          `${t.dtype}[${t.shape}] needs ${numel(t.shape)} of ${ctor.BYTES_PER_ELEMENT}`,
      );
    }
    const bytes = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  let hlen = enc.encode(json).length;
  const pad = (8 - ((8 + hlen) % 8)) % 8; // buffer starts 8-byte aligned
  json += " ".repeat(pad);
  hlen += pad;
  const out = new Uint8Array(8 + hlen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hlen), true);
  enc.encodeInto(json, out.subarray(8, 8 + hlen));
  let pos = 8 + hlen;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

/** Parses safetensors bytes, validating the header strictly (see the module doc). Data is copied. */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsFile {
  assertLittleEndian();
  if (bytes.length < 8) {
    throw new Error(`safetensors: file has ${bytes.length} bytes, fewer than the 8-byte header length`);
  }
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new Error(`safetensors: header length ${n} exceeds ${MAX_HEADER_BYTES}`);
  const hlen = Number(n);
  if (8 + hlen > bytes.length) {
    throw new Error(`safetensors: header length ${hlen} runs past the end of the ${bytes.length}-byte file`);
  }
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + hlen));
  if (!text.startsWith("{")) throw new Error("safetensors: header does not start with '{'");
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new Error(`safetensors: header is not valid JSON: ${(e as Error).message}`);
  }
  if (!header || typeof header !== "object" || Array.isArray(header)) {
    throw new Error("safetensors: header is not an object");
  }
  const buffer = bytes.subarray(8 + hlen);
  const metadata: Record<string, string> = {};
  const ranges: { name: string; begin: number; end: number }[] = [];
  const tensors = new Map<string, SafeTensor>();
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!value || typeof value !== "object" || Array.isArray(value)) {
        throw new Error("safetensors: __metadata__ is not an object");
      }
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== "string") throw new Error(`safetensors: __metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const info = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const ctor = DTYPES[info?.dtype as SafetensorsDtype];
    if (!ctor) {
      throw new Error(`safetensors: tensor ${JSON.stringify(name)} has unknown dtype ${JSON.stringify(info?.dtype)}`);
    }
    checkShape(name, info.shape);
    const off = info.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 || off.some((o) => !Number.isSafeInteger(o) || o < 0) || off[1] < off[0]
    ) {
      throw new Error(`safetensors: tensor ${JSON.stringify(name)} has invalid data_offsets ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as [number, number];
    if (end > buffer.length) {
      throw new Error(
        `safetensors: tensor ${JSON.stringify(name)} ends at ${end}, past the ${buffer.length}-byte buffer`,
      );
    }
    const expected = numel(info.shape) * ctor.BYTES_PER_ELEMENT;
    if (end - begin !== expected) {
      throw new Error(
        `safetensors: tensor ${JSON.stringify(name)} spans ${
          end - begin
        } bytes; ${info.dtype}[${info.shape}] needs ${expected}`,
      );
    }
    const copy = buffer.slice(begin, end); // aligned copy
    const data = new ctor(copy.buffer, 0, numel(info.shape));
    tensors.set(name, { dtype: info.dtype as SafetensorsDtype, shape: info.shape, data });
    ranges.push({ name, begin, end });
  }
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const r of ranges) {
    if (r.begin !== pos) {
      throw new Error(
        r.begin < pos
          ? `safetensors: tensor ${JSON.stringify(r.name)} overlaps the previous tensor`
          : `safetensors: hole in the byte buffer before tensor ${JSON.stringify(r.name)} (bytes ${pos}..${r.begin})`,
      );
    }
    pos = r.end;
  }
  if (pos !== buffer.length) {
    throw new Error(`safetensors: ${buffer.length - pos} trailing bytes after the last tensor`);
  }
  return { tensors, metadata };
}

/** Writes a safetensors file atomically (temp file + fsync + rename). */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<[string, SafeTensor]> | Record<string, SafeTensor>,
  metadata: Record<string, string> = {},
): Promise<Uint8Array> {
  const bytes = encodeSafetensors(tensors, metadata);
  await atomicWrite(path, bytes);
  return bytes;
}

/** Reads and validates a safetensors file. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  return decodeSafetensors(await Deno.readFile(path));
}
