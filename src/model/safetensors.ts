/**
 * safetensors reading and writing (https://github.com/huggingface/safetensors), pure functions
 * over bytes so they run in Node and in the browser.
 *
 * Layout: u64 little-endian header length L, L bytes of UTF-8 JSON, then the data buffer. The
 * JSON maps tensor names to {dtype, shape, data_offsets: [begin, end]} (relative to the data
 * buffer) plus an optional "__metadata__" of string → string. Supported dtypes: F32, I32, F16
 * (F16 stays as raw bits in a Uint16Array). As in the reference implementation, the tensors
 * must tile the data buffer exactly: no overlaps, no holes, nothing after the last tensor.
 */

import { InputError } from './errors.ts';

export type SafeDType = 'F32' | 'I32' | 'F16';
export type SafeData = Float32Array | Int32Array | Uint16Array;

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: SafeData;
}

export interface SafeFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<SafeDType, number> = { F32: 4, I32: 4, F16: 2 };
/** Largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

function isDType(x: unknown): x is SafeDType {
  return x === 'F32' || x === 'I32' || x === 'F16';
}

function view(dtype: SafeDType, bytes: Uint8Array): SafeData {
  const copy = new Uint8Array(bytes).buffer; // an aligned copy (a Node Buffer's slice() would be a view)
  switch (dtype) {
    case 'F32':
      return new Float32Array(copy);
    case 'I32':
      return new Int32Array(copy);
    case 'F16':
      return new Uint16Array(copy);
    default:
      return dtype satisfies never;
  }
}

/**
 * Parses a safetensors file.
 * @param source names the file in error messages.
 * @throws InputError for a truncated file, a header length beyond the file or MAX_HEADER_BYTES,
 *   invalid JSON, an unsupported dtype, a bad shape, data_offsets that do not match the shape,
 *   point outside the data buffer, overlap, or leave holes, and non-string metadata.
 */
export function parseSafetensors(bytes: Uint8Array, source = 'file'): SafeFile {
  const fail: (msg: string) => never = (msg) => {
    throw new InputError(`${source}: ${msg}`);
  };
  if (bytes.length < 8) fail(`not a safetensors file: ${bytes.length} bytes, fewer than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = dv.getBigUint64(0, true);
  if (hlen > BigInt(bytes.length - 8)) fail(`header length ${hlen} exceeds the ${bytes.length - 8} bytes after it`);
  if (hlen > BigInt(MAX_HEADER_BYTES)) fail(`header length ${hlen} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  const L = Number(hlen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + L)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const data = bytes.subarray(8 + L);
  const metadata: Record<string, string> = {};
  const entries: Array<{ name: string; dtype: SafeDType; shape: number[]; begin: number; end: number }> = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        fail('__metadata__ is not an object of strings');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof t !== 'object' || t === null) fail(`tensor '${name}' is not an object`);
    const { dtype, shape, data_offsets: off } = t as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDType(dtype)) fail(`tensor '${name}' has dtype ${JSON.stringify(dtype)}; supported: F32, I32, F16`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor '${name}' has shape ${JSON.stringify(shape)}; expected an array of non-negative integers`);
    }
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((x) => Number.isSafeInteger(x) && x >= 0) ||
      off[0] > off[1]
    ) {
      fail(`tensor '${name}' has data_offsets ${JSON.stringify(off)}; expected [begin, end] with 0 ≤ begin ≤ end`);
    }
    const [begin, end] = off as number[];
    const shp = shape as number[];
    const want = shp.reduce((n, d) => n * d, 1) * BYTES[dtype as SafeDType];
    if (end - begin !== want)
      fail(
        `tensor '${name}' ${dtype} [${shp.join(', ')}] needs ${want} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    if (end > data.length)
      fail(`tensor '${name}' data_offsets [${begin}, ${end}] run past the end of the data (${data.length} bytes)`);
    entries.push({ name, dtype: dtype as SafeDType, shape: shp, begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev = '';
  for (const e of entries) {
    if (e.begin < at) fail(`tensor '${e.name}' [${e.begin}, ${e.end}) overlaps tensor '${prev}', which ends at ${at}`);
    if (e.begin > at) fail(`data bytes [${at}, ${e.begin}) before tensor '${e.name}' belong to no tensor`);
    at = e.end;
    prev = e.name;
  }
  if (at !== data.length) fail(`data bytes [${at}, ${data.length}) after the last tensor belong to no tensor`);
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries)
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: view(e.dtype, data.subarray(e.begin, e.end)) });
  return { tensors, metadata };
}

/** The safetensors dtype of a typed array (Uint16Array means F16 bits). */
export function dtypeOf(data: SafeData): SafeDType {
  return data instanceof Float32Array ? 'F32' : data instanceof Int32Array ? 'I32' : 'F16';
}

/**
 * Serialises tensors (in the given order) and string metadata. The header is padded with
 * spaces to a multiple of 8 bytes, so the data buffer starts 8-byte aligned (as the Python
 * library writes it).
 * @throws InputError when a tensor's data does not fill its shape or a name is "__metadata__".
 */
export function serializeSafetensors(
  tensors: Map<string, SafeTensor> | Record<string, SafeTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new InputError('a tensor cannot be named __metadata__');
    const n = t.shape.reduce((a, d) => a * d, 1);
    if (t.data.length !== n)
      throw new InputError(`tensor '${name}': ${t.data.length} values do not fill shape [${t.shape.join(', ')}]`);
    if (dtypeOf(t.data) !== t.dtype)
      throw new InputError(`tensor '${name}': dtype ${t.dtype} does not match its ${t.data.constructor.name}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const [, t] of list) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}
