/** The CLI's PNG / APNG encoders: chunks, CRCs and pixels read back with node:zlib. */
import { crc32, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeApng, encodePng, upscale } from '../../src/cli/png.ts';

interface Chunk {
  type: string;
  data: Uint8Array;
}

function chunks(png: Uint8Array): Chunk[] {
  expect(Array.from(png.subarray(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: Chunk[] = [];
  for (let at = 8; at < png.length;) {
    const n = dv.getUint32(at);
    const type = new TextDecoder().decode(png.subarray(at + 4, at + 8));
    expect(dv.getUint32(at + 8 + n)).toBe(crc32(png.subarray(at + 4, at + 8 + n)));
    out.push({ type, data: png.subarray(at + 8, at + 8 + n) });
    at += 12 + n;
  }
  return out;
}

/** Pixels of a filter-0 RGBA8 stream. */
function unfilter(z: Uint8Array, w: number, h: number): Uint8Array {
  const raw = inflateSync(z);
  const out = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    expect(raw[y * (w * 4 + 1)]).toBe(0);
    out.set(raw.subarray(y * (w * 4 + 1) + 1, (y + 1) * (w * 4 + 1)), y * w * 4);
  }
  return out;
}

const image = (w: number, h: number, seed: number): Uint8Array =>
  Uint8Array.from({ length: w * h * 4 }, (_, i) => (i * 37 + seed * 11) & 255);

describe('png', () => {
  it('encodes a still RGBA image that reads back exactly', () => {
    const img = image(5, 3, 1);
    const c = chunks(encodePng(img, 5, 3));
    expect(c.map((x) => x.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
    const ih = new DataView(c[0].data.buffer, c[0].data.byteOffset);
    expect([ih.getUint32(0), ih.getUint32(4), ...c[0].data.subarray(8)]).toEqual([5, 3, 8, 6, 0, 0, 0]);
    expect(unfilter(c[1].data, 5, 3)).toEqual(img);
    expect(() => encodePng(img, 4, 3)).toThrow(/not 4×3 RGBA/);
  });

  it('encodes an APNG: acTL, fcTL per frame, IDAT then fdAT with one sequence', () => {
    const frames = [image(4, 2, 1), image(4, 2, 2), image(4, 2, 3)];
    const c = chunks(encodeApng(frames, 4, 2, 8));
    expect(c.map((x) => x.type)).toEqual(['IHDR', 'acTL', 'fcTL', 'IDAT', 'fcTL', 'fdAT', 'fcTL', 'fdAT', 'IEND']);
    const u32 = (d: Uint8Array, i: number): number => new DataView(d.buffer, d.byteOffset).getUint32(i);
    expect([u32(c[1].data, 0), u32(c[1].data, 4)]).toEqual([3, 0]);
    const seqs = c.filter((x) => x.type === 'fcTL' || x.type === 'fdAT').map((x) => u32(x.data, 0));
    expect(seqs).toEqual([0, 1, 2, 3, 4]);
    const fc = new DataView(c[2].data.buffer, c[2].data.byteOffset);
    expect([fc.getUint32(4), fc.getUint32(8), fc.getUint16(20), fc.getUint16(22)]).toEqual([4, 2, 1, 8]);
    expect(unfilter(c[3].data, 4, 2)).toEqual(frames[0]);
    expect(unfilter(c[7].data.subarray(4), 4, 2)).toEqual(frames[2]);
  });

  it('upscales by pixel repetition', () => {
    const up = upscale(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 2, 1, 2);
    expect(Array.from(up)).toEqual([
      1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8, 5, 6, 7, 8, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8, 5, 6, 7, 8,
    ]);
  });
});
