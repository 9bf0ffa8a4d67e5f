import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/model/errors.ts';
import { parseSafetensors, serializeSafetensors, type SafeTensor } from '../../src/model/safetensors.ts';

const tensors: Record<string, SafeTensor> = {
  a: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-30, -7]) },
  idx: { dtype: 'I32', shape: [3], data: Int32Array.from([-1, 0, 2147483647]) },
  half: { dtype: 'F16', shape: [1, 3], data: Uint16Array.from([0x3c00, 0xc000, 0x7e00]) },
  empty: { dtype: 'I32', shape: [2, 0], data: new Int32Array(0) },
};

/** A file with a hand-written header and `data` bytes. */
function file(header: unknown, dataBytes = 0, rawHeader?: string): Uint8Array {
  const json = new TextEncoder().encode(rawHeader ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

function refuses(bytes: Uint8Array, re: RegExp): void {
  let err: unknown;
  try {
    parseSafetensors(bytes, 'x.safetensors');
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InputError);
  expect((err as Error).name).toBe('InputError');
  expect((err as Error).message).toMatch(/^x\.safetensors: /);
  expect((err as Error).message).toMatch(re);
  expect((err as Error).message).not.toContain('\n');
}

describe('safetensors', () => {
  it('round-trips F32, I32, F16 and empty tensors with metadata', () => {
    const bytes = serializeSafetensors(tensors, { top_k: '3', note: 'é ✓' });
    const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(hlen % 8).toBe(0); // padded so the data buffer is 8-byte aligned
    const f = parseSafetensors(bytes);
    expect(f.metadata).toEqual({ top_k: '3', note: 'é ✓' });
    expect([...f.tensors.keys()]).toEqual(['a', 'idx', 'half', 'empty']);
    for (const [name, t] of Object.entries(tensors)) {
      const g = f.tensors.get(name)!;
      expect(g.dtype).toBe(t.dtype);
      expect(g.shape).toEqual(t.shape);
      expect(g.data.constructor).toBe(t.data.constructor);
      expect([...g.data]).toEqual([...t.data]);
    }
  });

  it('reads a file whose buffer starts at an odd offset (Node Buffer pools)', () => {
    const bytes = serializeSafetensors({ a: tensors.a });
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    expect([...parseSafetensors(big.subarray(3)).tensors.get('a')!.data]).toEqual([...tensors.a.data]);
    // Buffer.slice() is a view, not a copy: the parser must not hand out views of the pool.
    const buf = Buffer.concat([Buffer.alloc(5, 9), Buffer.from(serializeSafetensors(tensors))]).subarray(5);
    const f = parseSafetensors(buf);
    for (const [name, t] of Object.entries(tensors)) expect([...f.tensors.get(name)!.data]).toEqual([...t.data]);
  });

  it('writes the header the Python library expects', () => {
    const bytes = serializeSafetensors({ x: { dtype: 'F32', shape: [1], data: Float32Array.from([2]) } }, { k: 'v' });
    const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
    expect(header).toEqual({ __metadata__: { k: 'v' }, x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } });
    expect(bytes.length).toBe(8 + hlen + 4);
  });

  const t = (dtype: string, shape: number[], off: number[]) => ({ dtype, shape, data_offsets: off });
  it('refuses a file shorter than 8 bytes', () => refuses(new Uint8Array(5), /fewer than the 8-byte header length/));
  it('refuses a header length beyond the file', () => {
    const b = file({}, 0);
    new DataView(b.buffer).setBigUint64(0, 1000n, true);
    refuses(b, /header length 1000 exceeds the 2 bytes after it/);
  });
  it('refuses a header that is not JSON', () => refuses(file(null, 0, '{"a": '), /header is not valid UTF-8 JSON/));
  it('refuses a header that is not an object', () => refuses(file([1, 2]), /header is not a JSON object/));
  it('refuses an unsupported dtype', () =>
    refuses(file({ a: t('BF16', [2], [0, 4]) }, 4), /tensor 'a' has dtype "BF16"; supported: F32, I32, F16/));
  it('refuses a bad shape', () => refuses(file({ a: t('F32', [2, -1], [0, 8]) }, 8), /tensor 'a' has shape \[2,-1\]/));
  it('refuses bad data_offsets', () =>
    refuses(file({ a: t('F32', [2], [8, 0]) }, 8), /tensor 'a' has data_offsets \[8,0\]/));
  it('refuses a shape that does not match its byte range', () =>
    refuses(file({ a: t('F32', [3], [0, 8]) }, 8), /F32 \[3\] needs 12 bytes but data_offsets \[0, 8\] hold 8/));
  it('refuses offsets past the end of the data', () =>
    refuses(file({ a: t('I32', [2], [4, 12]) }, 8), /run past the end of the data \(8 bytes\)/));
  it('refuses overlapping tensors', () =>
    refuses(
      file({ a: t('F32', [2], [0, 8]), b: t('F32', [1], [4, 8]) }, 8),
      /tensor 'b' \[4, 8\) overlaps tensor 'a'/,
    ));
  it('refuses holes in the data', () =>
    refuses(
      file({ a: t('F32', [1], [0, 4]), b: t('F32', [1], [8, 12]) }, 12),
      /data bytes \[4, 8\) before tensor 'b' belong to no tensor/,
    ));
  it('refuses trailing bytes', () =>
    refuses(file({ a: t('F32', [1], [0, 4]) }, 12), /data bytes \[4, 12\) after the last tensor/));
  it('refuses non-string metadata', () =>
    refuses(file({ __metadata__: { top_k: 3 } }), /__metadata__\.top_k is not a string/));

  it('refuses to write data that does not fill its shape', () => {
    expect(() => serializeSafetensors({ a: { dtype: 'F32', shape: [4], data: new Float32Array(3) } })).toThrow(
      /3 values do not fill shape \[4\]/,
    );
    expect(() => serializeSafetensors({ a: { dtype: 'I32', shape: [1], data: new Float32Array(1) } })).toThrow(
      /dtype I32 does not match its Float32Array/,
    );
  });
});
